//! Hostile inputs to the CLI and the SQL functions: every case ends in an error message
//! (or a result), never a panic or an abort. Sizes the user controls are capped where they
//! enter, tampered metadata is caught before any kernel sees it.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use embquant::arrow_array::RecordBatch;
use embquant::arrow_schema::{Field, Schema};
use embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use embquant::parquet::arrow::ArrowWriter;

use common::{embquant, text};

/// The case ran to an end: exit 0 or 1 with `error: ...`, no panic, no abort, and no
/// clause said twice.
fn clean(args: &[&str], o: &Output) {
    let e = text(&o.stderr);
    assert!(
        !e.contains("panicked") && !e.contains("memory allocation"),
        "{args:?}: {e}"
    );
    let code = o.status.code();
    // 0: done, 1: an error, 2: a usage error (clap).
    assert!(
        matches!(code, Some(0..=2)),
        "{args:?}: exit {code:?} (a signal?): {e}"
    );
    if code != Some(0) {
        let line = e
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| {
                panic!("{args:?}: no `error:` line in {e}");
            });
        let clauses: Vec<&str> = line
            .trim_start_matches("error: ")
            .split(": ")
            .filter(|c| c.len() > 12)
            .collect();
        for (i, c) in clauses.iter().enumerate() {
            assert!(
                !clauses[i + 1..].contains(c),
                "{args:?}: {c:?} said twice in {line}"
            );
        }
    }
}

fn setup(p: &Path) {
    for (rows, dims, name) in [
        ("3000", "48", "a.parquet"),
        ("20", "48", "qs.parquet"),
        ("500", "16", "small.parquet"),
    ] {
        let o = embquant(
            &["gen-synthetic", "--rows", rows, "--dims", dims, "-o", name],
            p,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    for args in [
        vec![
            "quantize",
            "a.parquet",
            "--scheme",
            "int8,int4,binary,f16,rabitq",
            "-o",
            "c.parquet",
        ],
        vec!["calibrate", "small.parquet", "-o", "small.json"],
    ] {
        let o = embquant(&args, p);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
}

/// Rewrites `src` into `dst` with each code column's field metadata passed through `edit`.
fn tamper(src: &Path, dst: &Path, edit: &dyn Fn(&str, &mut HashMap<String, String>)) {
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(src).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = r.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut m = f.metadata().clone();
            if m.contains_key(embquant::METADATA_KEY) {
                edit(f.name(), &mut m);
            }
            f.as_ref().clone().with_metadata(m)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(dst).unwrap(), schema.clone(), None).unwrap();
    for b in batches {
        w.write(&RecordBatch::try_new(schema.clone(), b.columns().to_vec()).unwrap())
            .unwrap();
    }
    w.close().unwrap();
}

#[test]
fn hostile_cli_and_sql_inputs_end_in_errors_not_panics() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup(p);
    // A calibration of another dimension with a valid fingerprint, and the recipe's
    // recorded fingerprint edited to match: only the dimension check can catch it.
    let other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("small.json")).unwrap()).unwrap();
    let other_fp = other["fingerprint"].as_str().unwrap().to_string();
    tamper(
        &p.join("c.parquet"),
        &p.join("other_dim.parquet"),
        &|_, m| {
            m.insert("embquant.calibration".into(), other.to_string());
            let mut r: serde_json::Value =
                serde_json::from_str(&m[embquant::METADATA_KEY]).unwrap();
            r["calibration_fingerprint"] = other_fp.clone().into();
            m.insert(embquant::METADATA_KEY.into(), r.to_string());
        },
    );
    // Huge dimensions in the recipe.
    tamper(
        &p.join("c.parquet"),
        &p.join("huge_dims.parquet"),
        &|_, m| {
            let mut r: serde_json::Value =
                serde_json::from_str(&m[embquant::METADATA_KEY]).unwrap();
            r["dims"] = 1_000_000_000_000u64.into();
            r["source_dims"] = 1_000_000_000_000u64.into();
            m.insert(embquant::METADATA_KEY.into(), r.to_string());
        },
    );
    // A recorded fingerprint that is not the calibration's; an unknown format version.
    tamper(
        &p.join("c.parquet"),
        &p.join("wrong_fp.parquet"),
        &|_, m| {
            let mut r: serde_json::Value =
                serde_json::from_str(&m[embquant::METADATA_KEY]).unwrap();
            r["calibration_fingerprint"] = "0000".into();
            m.insert(embquant::METADATA_KEY.into(), r.to_string());
        },
    );
    tamper(&p.join("c.parquet"), &p.join("future.parquet"), &|_, m| {
        let mut r: serde_json::Value = serde_json::from_str(&m[embquant::METADATA_KEY]).unwrap();
        r["format_version"] = 99.into();
        m.insert(embquant::METADATA_KEY.into(), r.to_string());
    });
    // A directory with two symlinks to its parent.
    std::fs::create_dir_all(p.join("loop/x")).unwrap();
    std::fs::copy(p.join("a.parquet"), p.join("loop/x/a.parquet")).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("..", p.join("loop/x/up")).unwrap();
        std::os::unix::fs::symlink("../..", p.join("loop/x/up2")).unwrap();
    }
    let search = |k: &str, tiers: &str, corpus: &str| -> Vec<String> {
        [
            "search",
            "--corpus",
            corpus,
            "--queries",
            "qs.parquet",
            "--k",
            k,
            "--tiers",
            tiers,
            "-o",
            "r.parquet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut cases: Vec<Vec<String>> = vec![
        search("1000000000000", "binary:8,int8", "c.parquet"),
        search("4294967297", "int8", "c.parquet"),
        search("10", "binary:1000000000,int8", "c.parquet"),
        search("10", "binary:18446744073709551615,int8", "c.parquet"),
        search("10", "binary:2,binary:2,float", "c.parquet"),
        search("10", "int8:2,int8", "c.parquet"),
        search("10", "int4:2,int4", "c.parquet"),
        search("10", "rabitq:2,rabitq:2,int8", "c.parquet"),
        search("10", "binary:4,int8", "other_dim.parquet"),
        search("10", "int4:4,int8", "other_dim.parquet"),
        search("10", "binary:4,int8", "huge_dims.parquet"),
        search("10", "binary:4,int8", "wrong_fp.parquet"),
        search("10", "binary:4,int8", "future.parquet"),
        search("0", "int8", "c.parquet"),
        search("10", "", "c.parquet"),
        search("10", "binary:0,int8", "c.parquet"),
        search("10", "nosuch:2,int8", "c.parquet"),
        search("10", "int8:-1,float", "c.parquet"),
    ];
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    cases.extend([
        strs(&[
            "recall",
            "--corpus",
            "a.parquet",
            "--sample-queries",
            "5",
            "--k",
            "1000000000000",
            "--configs",
            "int8",
            "--report",
            "rep",
        ]),
        strs(&[
            "recall",
            "--corpus",
            "a.parquet",
            "--sample-queries",
            "5",
            "--dims",
            "0",
            "--configs",
            "int8",
            "--report",
            "rep",
        ]),
        strs(&[
            "recall",
            "--corpus",
            "a.parquet",
            "--sample-queries",
            "5",
            "--k",
            "10",
            "--configs",
            "binary:18446744073709551615,int8",
            "--report",
            "rep",
        ]),
        strs(&[
            "recall",
            "--corpus",
            "a.parquet",
            "--sample-queries",
            "0",
            "--report",
            "rep",
        ]),
        strs(&[
            "quantize",
            "a.parquet",
            "--row-group-rows",
            "0",
            "-o",
            "z.parquet",
        ]),
        strs(&[
            "quantize",
            "a.parquet",
            "--target-file-rows",
            "0",
            "-o",
            "z",
        ]),
        strs(&["quantize", "a.parquet", "--dims", "0", "-o", "z.parquet"]),
        strs(&[
            "quantize",
            "a.parquet",
            "--dims",
            "100000",
            "-o",
            "z.parquet",
        ]),
        strs(&[
            "quantize",
            "a.parquet",
            "--calibration",
            "small.json",
            "-o",
            "z.parquet",
        ]),
        strs(&["calibrate", "loop", "-o", "loop.json"]),
        strs(&[
            "calibrate",
            "a.parquet",
            "--method",
            "quantile:7",
            "-o",
            "q.json",
        ]),
        strs(&[
            "gen-synthetic",
            "--rows",
            "10",
            "--dims",
            "0",
            "-o",
            "g.parquet",
        ]),
        strs(&["inspect", "other_dim.parquet"]),
        strs(&["inspect", "huge_dims.parquet"]),
        strs(&["drift", "--reference", "huge_dims.parquet", "a.parquet"]),
        strs(&["drift", "--reference", "other_dim.parquet", "a.parquet"]),
    ]);
    let sql = |q: &str| {
        strs(&[
            "sql",
            "--table",
            "c=c.parquet",
            "--table",
            "t=other_dim.parquet",
            "--table",
            "h=huge_dims.parquet",
            "--table",
            "q=qs.parquet",
            q,
        ])
    };
    for q in [
        "SELECT * FROM tiered_search('c', 'q', 1000000000000, 'binary:4,int8') LIMIT 1",
        "SELECT * FROM tiered_search('c', 'q', 9223372036854775807, 'int8') LIMIT 1",
        "SELECT * FROM tiered_search('c', 'q', 10, 'binary:18446744073709551615,int8') LIMIT 1",
        "SELECT * FROM tiered_search('c', 'q', 10, 'binary:2,binary:2,float') LIMIT 1",
        "SELECT * FROM tiered_search('t', 'q', 10, 'binary:4,int8') LIMIT 1",
        "SELECT * FROM tiered_search('t', 'q', 10, 'int4:4,int8') LIMIT 1",
        "SELECT * FROM tiered_search('h', 'q', 10, 'binary:4,int8') LIMIT 1",
        "SELECT * FROM tiered_search('c', 'q', -1) LIMIT 1",
        "SELECT * FROM tiered_search('c', 'q', NULL) LIMIT 1",
        "SELECT int8_quantize(embedding, 'not json') FROM q LIMIT 1",
        "SELECT int8_quantize(embedding, NULL) FROM q LIMIT 1",
        "SELECT int8_inner_product(embedding, embedding_int8) FROM t LIMIT 1",
        "SELECT int4_dequantize(embedding_int4) FROM t LIMIT 1",
        "SELECT rabitq_inner_product(embedding, embedding_rq) FROM t LIMIT 1",
        "SELECT subvector(embedding, 0, 0) FROM q LIMIT 1",
        "SELECT subvector(embedding, 1, 9223372036854775807) FROM q LIMIT 1",
        "SELECT hamming_distance(X'00', X'0000')",
        "SELECT embedding_calibration(embedding, 'quantile:2') FROM q",
    ] {
        cases.push(sql(q));
    }
    let run = |args: &[String]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = embquant(&a, p);
        clean(&a, &o);
        o
    };
    for args in &cases {
        run(args);
    }
    // The tampered files are refused with the reason, not searched.
    let o = run(&search("10", "binary:4,int8", "other_dim.parquet"));
    assert!(
        text(&o.stderr).contains("dimension 16, the codes 48"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&search("10", "int8", "wrong_fp.parquet"));
    assert!(
        text(&o.stderr).contains("fingerprint"),
        "{}",
        text(&o.stderr)
    );
    // A k above the corpus is refused with the largest k it can answer, never cut to the
    // corpus and then called certified.
    let o = run(&search("1000000000000", "binary:8,int8", "c.parquet"));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("ask for at most"),
        "{}",
        text(&o.stderr)
    );
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup(p);
    for args in [
        vec!["inspect", "c.parquet", "--json"],
        vec!["inspect", "c.parquet"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_embquant"))
            .args(&args)
            .current_dir(p)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end at once, as `| head -c 0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// Malformed object-store settings end in an error naming the setting (they panicked inside
/// object_store), an endpoint that accepts connections and never answers fails within about
/// EMBQUANT_IO_TIMEOUT, and sizes that would not fit in memory are refused.
#[test]
fn store_settings_silent_endpoints_and_huge_sizes_end_in_errors() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let o = embquant(
        &[
            "gen-synthetic",
            "--rows",
            "50",
            "--dims",
            "8",
            "-o",
            "s.parquet",
        ],
        p,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_embquant"))
            .args(args)
            .current_dir(p)
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_ALLOW_HTTP", "true")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let commands: [&[&str]; 3] = [
        &["inspect", "s3://b/x.parquet"],
        &["sql", "-t", "c=s3://b/x.parquet", "SELECT 1"],
        &["calibrate", "s.parquet", "-o", "s3://b/cal.json"],
    ];
    for (k, v) in [
        ("AWS_ENDPOINT", "not a url"),
        ("AWS_ENDPOINT", "http://[::1"),
        ("AWS_ENDPOINT", "http://a host:9000"),
        ("AWS_REGION", "no such region!"),
        ("AWS_SESSION_TOKEN", "abc\ndef"),
    ] {
        for args in commands {
            let o = run(args, &[(k, v)]);
            clean(args, &o);
            assert!(!o.status.success(), "{args:?} with {k}={v:?} succeeded");
            assert!(text(&o.stderr).contains(k), "{args:?}: {}", text(&o.stderr));
        }
    }
    // A plain-HTTP endpoint without AWS_ALLOW_HTTP: the setting is named, not "builder
    // error".
    for args in commands {
        let o = run(
            args,
            &[
                ("AWS_ENDPOINT", "http://127.0.0.1:9"),
                ("AWS_ALLOW_HTTP", "false"),
            ],
        );
        clean(args, &o);
        assert!(
            text(&o.stderr).contains("AWS_ALLOW_HTTP=true"),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
    // Accepts, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let t = std::time::Instant::now();
    let args = ["inspect", "s3://b/x.parquet"];
    let o = run(
        &args,
        &[
            ("AWS_ENDPOINT", endpoint.as_str()),
            ("EMBQUANT_IO_TIMEOUT", "7"),
        ],
    );
    clean(&args, &o);
    assert!(!o.status.success());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(40),
        "a silent endpoint held the command {:?}",
        t.elapsed()
    );
    // Not silent meanwhile: a line names what it waits for and when it gives up.
    let err = text(&o.stderr);
    assert!(
        err.contains("waiting for s3://b/x.parquet") && err.contains("gives up after about 7 s"),
        "{err}"
    );
    // `--quiet` keeps the wait silent (the error is still printed).
    let quiet = ["inspect", "--quiet", "s3://b/x.parquet"];
    let o = run(
        &quiet,
        &[
            ("AWS_ENDPOINT", endpoint.as_str()),
            ("EMBQUANT_IO_TIMEOUT", "6"),
        ],
    );
    assert!(!o.status.success());
    assert!(
        !text(&o.stderr).contains("waiting for"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&args, &[("EMBQUANT_IO_TIMEOUT", "soon")]);
    assert!(
        text(&o.stderr).contains("EMBQUANT_IO_TIMEOUT"),
        "{}",
        text(&o.stderr)
    );
    // Synthetic vectors wider than any embedding: refused, not a 100 GB allocation.
    let args = [
        "gen-synthetic",
        "--rows",
        "10",
        "--dims",
        "100000000",
        "-o",
        "w.parquet",
    ];
    let o = embquant(&args, p);
    clean(&args, &o);
    assert!(text(&o.stderr).contains("--dims"), "{}", text(&o.stderr));
    assert!(!p.join("w.parquet").exists());
}

/// Writes `batch` to `path` as Parquet.
fn write(path: &Path, batch: &RecordBatch) {
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// The first batch of `path` (all of a small file).
fn read(path: &Path) -> RecordBatch {
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap();
    r.map(|b| b.unwrap()).next().unwrap()
}

#[test]
fn lenient_values_ambiguous_inputs_and_unclear_messages() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup(p);
    let refused = |args: &[&str], needle: &str| {
        let o = embquant(args, p);
        clean(args, &o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            text(&o.stderr).contains(needle),
            "{args:?}: expected {needle:?} in {}",
            text(&o.stderr)
        );
    };
    // Typos are not widths or levels.
    for scheme in ["rabitq+4", "rabitq04", "rabitq4.0", "rabitq9"] {
        refused(
            &[
                "quantize",
                "a.parquet",
                "--scheme",
                scheme,
                "-o",
                "x.parquet",
            ],
            "expected rabitq1 to rabitq8",
        );
    }
    refused(
        &[
            "quantize",
            "a.parquet",
            "--zstd-level",
            "99",
            "-o",
            "x.parquet",
        ],
        "99",
    );
    refused(
        &[
            "recall",
            "--corpus",
            "a.parquet",
            "--sample-queries",
            "5",
            "--configs",
            ";;;",
            "--report",
            "rep",
        ],
        "names no configuration",
    );
    assert!(!p.join("x.parquet").exists() && !p.join("rep").exists());

    // Two columns named `embedding`: which one is meant cannot be told.
    let b = read(&p.join("qs.parquet"));
    let schema = b.schema();
    let col = schema.index_of("embedding").unwrap();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = b.columns().to_vec();
    fields.push(fields[col].clone());
    columns.push(columns[col].clone());
    let dup = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    write(&p.join("dup.parquet"), &dup);
    refused(
        &["quantize", "dup.parquet", "-o", "x.parquet"],
        "appears 2 times",
    );
    refused(
        &["calibrate", "dup.parquet", "-o", "x.json"],
        "appears 2 times",
    );

    // An empty corpus is called empty, not "dimension 16, expected 0".
    write(&p.join("empty.parquet"), &b.slice(0, 0));
    refused(
        &[
            "search",
            "--corpus",
            "empty.parquet",
            "--queries",
            "qs.parquet",
            "--tiers",
            "float",
            "-o",
            "r.parquet",
        ],
        "has no rows",
    );

    // A directory output is read by inspect and drift --reference like by search and sql.
    let o = embquant(
        &[
            "quantize",
            "a.parquet",
            "--scheme",
            "int8",
            "--target-file-rows",
            "1000",
            "-o",
            "parts",
        ],
        p,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = embquant(&["inspect", "parts"], p);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("a directory of 3 Parquet file(s), 3000 rows"),
        "{}",
        text(&o.stdout)
    );
    let o = embquant(&["inspect", "parts", "--json"], p);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(3), "{v}");
    let o = embquant(&["drift", "a.parquet", "--reference", "parts"], p);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// Run as root, in a private mount namespace with device nodes of its own (a tmpfs, so the
/// host's /dev is never at risk): a device, a symlink to one and a FIFO given as an output
/// of every writing command are refused and left as they were; a FIFO or a device given
/// as an input is refused without blocking. Skipped, with a message, when not root or
/// when `unshare` cannot make the namespace.
#[cfg(target_os = "linux")]
#[test]
fn device_nodes_are_never_replaced_in_a_private_mount_namespace() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the device-node cases need root (mknod, a private mount namespace)");
        return;
    }
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        // Root in CI can make one: a skip there would hide the cases.
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "root but `unshare --mount` fails"
        );
        eprintln!("skipped: `unshare --mount` cannot make a private mount namespace here");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let o = embquant(
        &[
            "gen-synthetic",
            "--rows",
            "64",
            "--dims",
            "8",
            "-o",
            "s.parquet",
        ],
        p,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = embquant(&["calibrate", "s.parquet", "-o", "cal.json"], p);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = embquant(
        &[
            "quantize",
            "s.parquet",
            "--scheme",
            "int8",
            "-o",
            "q.parquet",
        ],
        p,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::create_dir(p.join("dev")).unwrap();
    // Each case prints `name status kind`; the checks run inside the namespace, where the
    // tmpfs and its nodes exist.
    let script = r#"
        set -u
        mount -t tmpfs embquant-test dev || exit 90
        mknod dev/null c 1 3 && mknod dev/zero c 1 5 && mkfifo dev/fifo || exit 91
        ln -s null dev/link
        chmod 666 dev/null dev/zero
        kind() { stat -c %F "$1"; }
        for t in null link fifo; do
          for cmd in "calibrate s.parquet -o" "quantize s.parquet --calibration cal.json -o" \
                     "search --corpus q.parquet --queries s.parquet --k 3 --tiers int8 -o" "gen-synthetic --rows 8 --dims 4 -o"; do
            timeout 60 "$BIN" $cmd "dev/$t" >/dev/null 2>err.txt; rc=$?
            echo "out $t $rc $(kind dev/$t | tr ' ' _) $(head -c 300 err.txt | tr '\n ' '__')"
          done
        done
        for t in fifo zero; do
          timeout 20 "$BIN" inspect "dev/$t" >/dev/null 2>err.txt; rc=$?
          echo "in $t $rc $(kind dev/$t | tr ' ' _) $(head -c 300 err.txt | tr '\n ' '__')"
        done
        echo "nodes $(readlink dev/link) $(ls -A dev | tr '\n' ' ')"
    "#;
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .current_dir(p)
        .env("BIN", common::BIN)
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3 * 4 + 2 + 1, "{out}");
    for l in &lines {
        let f: Vec<&str> = l.splitn(5, ' ').collect();
        match f[0] {
            "out" | "in" => {
                let (what, name, rc, kind, err) = (f[0], f[1], f[2], f[3], f.get(4).copied());
                assert_ne!(rc, "0", "{l}: succeeded");
                assert_ne!(rc, "124", "{l}: blocked until killed");
                let want = match name {
                    "fifo" => "fifo",
                    "link" => "symbolic_link",
                    _ => "character_special_file",
                };
                assert_eq!(kind, want, "{l}: the node was replaced");
                let err = err.unwrap_or("");
                assert!(err.contains("regular_file"), "{what} {name}: {err}");
            }
            _ => {
                // The link still names the device, and no temporary was left beside them.
                assert_eq!(l.trim_end(), "nodes null fifo link null zero", "{out}");
            }
        }
    }
}

/// A path that is not UTF-8 is refused with a message naming the argument (not clap's
/// "invalid UTF-8 was detected in one or more arguments"), also in cluster mode.
#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_named() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.parquet");
    std::fs::write(d.path().join(name), b"x").unwrap();
    for args in [
        vec![std::ffi::OsStr::new("inspect"), name],
        vec![
            std::ffi::OsStr::new("quantize"),
            std::ffi::OsStr::new("--cluster"),
            std::ffi::OsStr::new("df://127.0.0.1:1"),
            name,
        ],
    ] {
        let o = Command::new(common::BIN)
            .args(&args)
            .current_dir(d.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = text(&o.stderr);
        assert!(
            err.contains("(\"caf\u{fffd}.parquet\") is not valid UTF-8") && err.contains("symlink"),
            "{err}"
        );
    }
}
