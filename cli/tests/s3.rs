//! `s3://` inputs against a real S3 server: moto's S3 server, started by this test on
//! 127.0.0.1 and stopped when it ends. The binary is configured only from the environment
//! (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, keys, region), as a user configures it.
//!
//! `.ci/run` installs moto in `$HOME/.cache/embquant-s3-venv`; elsewhere the test looks for
//! `moto_server` there, in `$EMBQUANT_MOTO_SERVER` or on the PATH, and skips with a message
//! when there is none (it fails instead under `CI=true`).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::text;
use embquant::io::object::object_store::aws::AmazonS3Builder;
use embquant::io::object::ObjectStoreStore;
use embquant::io::Store;

const BUCKET: &str = "embq";

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("EMBQUANT_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = Path::new(&home).join(".cache/embquant-s3-venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    })
}

fn start_moto() -> Option<Moto> {
    let Some(bin) = moto_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "moto_server not found under CI=true (.ci/run installs it in ~/.cache/embquant-s3-venv)"
        );
        eprintln!("SKIPPED: no moto_server (pip install 'moto[server]') for the S3 tests");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Create the bucket (moto takes unsigned requests).
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "creating the bucket: {reply}"
    );
    Some(moto)
}

/// The variables a user sets for an S3-compatible server.
fn env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", moto.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn run(args: &[&str], cwd: &Path, moto: &Moto) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embquant"))
        .args(args)
        .current_dir(cwd)
        .envs(env(moto))
        .output()
        .expect("run embquant")
}

fn ok(args: &[&str], cwd: &Path, moto: &Moto) -> String {
    let out = run(args, cwd, moto);
    assert!(
        out.status.success(),
        "embquant {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The columns of every batch of a Parquet file, for comparing two outputs.
fn columns(path: &Path) -> impl PartialEq + std::fmt::Debug {
    let file = embquant::io::open_file(path).unwrap();
    file.reader()
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().columns().to_vec())
        .collect::<Vec<_>>()
}

/// Every row of a Parquet file, whatever its batches: one array per column.
fn rows(path: &Path) -> Vec<embquant_udfs::datafusion::arrow::array::ArrayRef> {
    let file = embquant::io::open_file(path).unwrap();
    let batches: Vec<_> = file
        .reader()
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    embquant_udfs::datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches)
        .unwrap()
        .columns()
        .to_vec()
}

#[test]
fn s3_urls_are_read_like_local_files() {
    let Some(moto) = start_moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let corpus = data.join("minilm-wordnet-5k.parquet");
    let queries = data.join("minilm-wordnet-queries-50.parquet");
    let s3 = AmazonS3Builder::new()
        .with_endpoint(&moto.endpoint)
        .with_allow_http(true)
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let store = ObjectStoreStore::new(Arc::new(s3), &format!("s3://{BUCKET}"));
    // The corpus under a partition prefix, beside a writer's scratch copy.
    for (local, key) in [
        (&corpus, "emb/date=2026-11-30/part-0.parquet"),
        (&queries, "q/queries.parquet"),
        (&corpus, "emb/_temporary/part-0.parquet"),
    ] {
        store
            .upload(local, &format!("s3://{BUCKET}/{key}"))
            .unwrap();
    }

    // inspect reads the footer through ranged GETs.
    let shown = ok(
        &[
            "inspect",
            &format!("s3://{BUCKET}/emb/date=2026-11-30/part-0.parquet"),
        ],
        p,
        &moto,
    );
    assert!(shown.contains("5000"), "{shown}");

    // quantize from a prefix: the same codes as from the local file.
    let local_out = p.join("local.parquet");
    let s3_out = p.join("s3.parquet");
    ok(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8,binary",
            "-o",
            local_out.to_str().unwrap(),
            "--quiet",
        ],
        p,
        &moto,
    );
    ok(
        &[
            "quantize",
            &format!("s3://{BUCKET}/emb/"),
            "--column",
            "embedding",
            "--scheme",
            "int8,binary",
            "-o",
            s3_out.to_str().unwrap(),
            "--quiet",
        ],
        p,
        &moto,
    );
    assert_eq!(
        columns(&local_out),
        columns(&s3_out),
        "the _temporary copy is not read"
    );

    // search with corpus and queries in the bucket: the same results.
    store
        .upload(&s3_out, &format!("s3://{BUCKET}/quantized/corpus.parquet"))
        .unwrap();
    let (r_local, r_s3) = (p.join("r-local.parquet"), p.join("r-s3.parquet"));
    ok(
        &[
            "search",
            "--corpus",
            local_out.to_str().unwrap(),
            "--queries",
            queries.to_str().unwrap(),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            r_local.to_str().unwrap(),
        ],
        p,
        &moto,
    );
    ok(
        &[
            "search",
            "--corpus",
            &format!("s3://{BUCKET}/quantized/*.parquet"),
            "--queries",
            &format!("s3://{BUCKET}/q/queries.parquet"),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            r_s3.to_str().unwrap(),
        ],
        p,
        &moto,
    );
    assert_eq!(columns(&r_local), columns(&r_s3));

    // Outputs to URLs: a file, a calibration and a directory of parts, each uploaded once
    // complete; the quantized file in the bucket is the same file as the local one.
    let url = |k: &str| format!("s3://{BUCKET}/{k}");
    ok(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8,binary",
            "-o",
            &url("out/q.parquet"),
            "--quiet",
        ],
        p,
        &moto,
    );
    ok(
        &[
            "calibrate",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "-o",
            &url("out/cal.json"),
        ],
        p,
        &moto,
    );
    assert!(store.exists(&url("out/cal.json")).unwrap());
    let r_out = p.join("r-out.parquet");
    let said = ok(
        &[
            "search",
            "--corpus",
            &url("out/q.parquet"),
            "--queries",
            queries.to_str().unwrap(),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            &url("out/results.parquet"),
        ],
        p,
        &moto,
    );
    assert!(said.contains(&url("out/results.parquet")), "{said}");
    ok(
        &[
            "search",
            "--corpus",
            &url("out/q.parquet"),
            "--queries",
            queries.to_str().unwrap(),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            r_out.to_str().unwrap(),
        ],
        p,
        &moto,
    );
    assert_eq!(columns(&r_local), columns(&r_out));
    ok(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8",
            "--target-file-rows",
            "2000",
            "-o",
            &url("parts"),
            "--quiet",
        ],
        p,
        &moto,
    );
    let parts = store.objects_below(&url("parts")).unwrap();
    assert_eq!(parts.len(), 4, "three parts and the manifest: {parts:?}");
    let listed = ok(&["inspect", &url("parts/part-00002.parquet")], p, &moto);
    assert!(listed.contains("1000 rows"), "{listed}");
    let again = run(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8",
            "--target-file-rows",
            "2000",
            "-o",
            &url("parts"),
            "--quiet",
        ],
        p,
        &moto,
    );
    assert!(
        !again.status.success(),
        "a directory output into a prefix that holds objects"
    );
    assert!(
        text(&again.stderr).contains("already holds objects"),
        "{}",
        text(&again.stderr)
    );
    // SQL over a table in the bucket.
    let sql = ok(
        &[
            "sql",
            "SELECT count(*) AS n FROM t",
            "--table",
            &format!("t={}", url("out/q.parquet")),
        ],
        p,
        &moto,
    );
    assert!(sql.contains("5000"), "{sql}");
    // COPY to a bucket no --table names: the session resolves its store from the
    // environment. COPY onto a table's own object is refused.
    ok(
        &[
            "sql",
            &format!(
                "COPY (SELECT * FROM t) TO '{}' STORED AS PARQUET",
                url("copied/t.parquet")
            ),
            "--table",
            &format!("t={}", local_out.display()),
        ],
        p,
        &moto,
    );
    {
        let back = p.join("copied.parquet");
        let src = store.open(Path::new(&url("copied/t.parquet"))).unwrap();
        let mut bytes = vec![0u8; src.len() as usize];
        src.read_exact_at(0, &mut bytes).unwrap();
        std::fs::write(&back, bytes).unwrap();
        // The same values (DataFusion writes strings as views: compared as the local types).
        let (want, got) = (rows(&local_out), rows(&back));
        assert_eq!(want.len(), got.len());
        for (w, g) in want.iter().zip(&got) {
            let g = embquant_udfs::datafusion::arrow::compute::cast(g, w.data_type()).unwrap();
            assert_eq!(w, &g);
        }
    }
    let over = run(
        &[
            "sql",
            &format!(
                "COPY (SELECT * FROM t) TO '{}' STORED AS PARQUET",
                url("out/q.parquet")
            ),
            "--table",
            &format!("t={}", url("out/q.parquet")),
        ],
        p,
        &moto,
    );
    assert!(!over.status.success());
    assert!(
        text(&over.stderr).contains("would replace the table input"),
        "{}",
        text(&over.stderr)
    );
    // drift against a calibration JSON in the bucket.
    let drift = ok(
        &[
            "drift",
            "--reference",
            &url("out/cal.json"),
            &url("emb/date=2026-11-30/"),
            "--column",
            "embedding",
            "--json",
        ],
        p,
        &moto,
    );
    assert!(drift.contains("clip_rate"), "{drift}");
    // A recall report into a prefix; run again, its ground truth comes from the cached
    // object there.
    let recall = |p: &Path| {
        ok(
            &[
                "recall",
                "--corpus",
                &url("emb/date=2026-11-30/part-0.parquet"),
                "--queries",
                &url("q/queries.parquet"),
                "--column",
                "embedding",
                "--k",
                "10",
                "--configs",
                "int8",
                "--report",
                &url("reports/r1"),
            ],
            p,
            &moto,
        )
    };
    let first = recall(p);
    assert!(first.contains(&url("reports/r1")), "{first}");
    for name in [
        "report.json",
        "report.md",
        "recall.svg",
        "ground_truth.parquet",
    ] {
        assert!(
            store.exists(&url(&format!("reports/r1/{name}"))).unwrap(),
            "{name}"
        );
    }
    let second = recall(p);
    assert!(second.contains("from the cache"), "{second}");

    // A command that fails leaves no object behind.
    let bad = run(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "nope",
            "--scheme",
            "int8",
            "-o",
            &url("out/bad.parquet"),
            "--quiet",
        ],
        p,
        &moto,
    );
    assert!(!bad.status.success());
    assert!(!store.exists(&url("out/bad.parquet")).unwrap());

    // A missing object and a bad credential are errors naming the URL.
    let out = run(
        &["inspect", &format!("s3://{BUCKET}/emb/nope.parquet")],
        p,
        &moto,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("s3://{BUCKET}/emb/nope.parquet")),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &[
            "calibrate",
            "s3://no-such-bucket/emb",
            "--column",
            "embedding",
            "-o",
            "c.json",
        ],
        p,
        &moto,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("s3://no-such-bucket"),
        "{}",
        text(&out.stderr)
    );
}
