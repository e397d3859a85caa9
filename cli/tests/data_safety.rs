//! Nothing the user did not name is replaced or deleted: directory outputs over inputs or
//! foreign files, outputs that are inputs (also through symlinks and other spellings), SQL
//! writes onto registered tables, and a property test over random layouts.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use proptest::prelude::*;

use common::{embquant, text};

/// Every file below `root` (relative path -> bytes); symlinks as "-> target".
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m = p.symlink_metadata().unwrap();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", t.display()).into_bytes());
            } else if m.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A small float corpus, shared by the tests of this file (generated once per test).
fn corpus(dir: &Path, name: &str) {
    let o = embquant(
        &[
            "gen-synthetic",
            "--rows",
            "600",
            "--dims",
            "16",
            "--row-group-rows",
            "200",
            "--output",
            name,
        ],
        dir,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
}

fn refused(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected a refusal");
    let e = text(&o.stderr);
    assert!(e.contains(needle), "expected {needle:?} in: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn a_directory_output_over_its_input_directory_deletes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir(p.join("in")).unwrap();
    corpus(&p.join("in"), "a.parquet");
    std::fs::write(p.join("in/NOTES.txt"), "notes").unwrap();
    let before = snapshot(p);
    let o = embquant(
        &[
            "quantize",
            "in",
            "--column",
            "embedding",
            "--target-file-rows",
            "500",
            "-o",
            "in",
        ],
        p,
    );
    refused(&o, "would replace the input");
    // Spelled another way, and with --overwrite: still an input.
    let o = embquant(
        &[
            "quantize",
            "in",
            "--target-file-rows",
            "500",
            "--overwrite",
            "-o",
            "./in/../in/",
        ],
        p,
    );
    refused(&o, "would replace the input");
    assert_eq!(snapshot(p), before, "nothing changed");
}

#[test]
fn an_existing_directory_with_other_files_is_refused_or_kept_with_overwrite() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "a.parquet");
    std::fs::create_dir_all(p.join("docs/sub")).unwrap();
    std::fs::write(p.join("docs/report.docx"), "report").unwrap();
    std::fs::write(p.join("docs/sub/thesis.tex"), "thesis").unwrap();
    let before = snapshot(p);
    let args = [
        "quantize",
        "a.parquet",
        "--target-file-rows",
        "250",
        "-o",
        "docs",
    ];
    refused(&embquant(&args, p), "report.docx");
    assert_eq!(snapshot(p), before);
    // --overwrite: the parts join the user's files, which stay as they were.
    for rows in ["250", "400"] {
        let o = embquant(
            &[
                "quantize",
                "a.parquet",
                "--target-file-rows",
                rows,
                "--overwrite",
                "-o",
                "docs",
            ],
            p,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let after = snapshot(p);
        for (k, v) in &before {
            assert_eq!(after.get(k), Some(v), "{} changed", k.display());
        }
    }
    // The second run replaced the first run's parts (2 parts of 400 rows, not 3 of 250).
    let mut names: Vec<String> = std::fs::read_dir(p.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_embquant_manifest.json",
            "part-00000.parquet",
            "part-00001.parquet",
            "report.docx",
            "sub"
        ]
    );
    // Nothing left beside the target.
    let mut top: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["a.parquet", "docs"]);
}

#[test]
fn embquants_own_directory_output_is_replaced_whole() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "a.parquet");
    for rows in ["200", "500"] {
        let o = embquant(
            &[
                "quantize",
                "a.parquet",
                "--target-file-rows",
                rows,
                "-o",
                "parts",
            ],
            p,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("parts/_embquant_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["parts"],
        serde_json::json!(["part-00000.parquet", "part-00001.parquet"])
    );
    assert_eq!(m["rows"], 600);
    assert!(
        !p.join("parts/part-00002.parquet").exists(),
        "the older run's third part is gone"
    );
}

#[test]
fn outputs_that_are_inputs_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "a.parquet");
    corpus(p, "q.parquet");
    assert!(embquant(&["calibrate", "a.parquet", "-o", "cal.json"], p)
        .status
        .success());
    assert!(embquant(&["quantize", "a.parquet", "-o", "c.parquet"], p)
        .status
        .success());
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.parquet", p.join("link.parquet")).unwrap();
    let before = snapshot(p);
    let cases: Vec<Vec<&str>> = vec![
        vec!["calibrate", "a.parquet", "-o", "a.parquet"],
        vec!["calibrate", "a.parquet", "-o", "./sub/../a.parquet"],
        vec![
            "quantize",
            "a.parquet",
            "--calibration",
            "cal.json",
            "-o",
            "cal.json",
        ],
        vec!["quantize", "a.parquet", "-o", "a.parquet"],
        vec![
            "search",
            "--corpus",
            "c.parquet",
            "--queries",
            "q.parquet",
            "-o",
            "q.parquet",
        ],
        vec![
            "search",
            "--corpus",
            "c.parquet",
            "--queries",
            "q.parquet",
            "-o",
            "c.parquet",
        ],
        vec![
            "search",
            "--corpus",
            ".",
            "--queries",
            "q.parquet",
            "-o",
            "c.parquet",
        ],
    ];
    for args in &cases {
        refused(&embquant(args, p), "would replace the input");
        assert_eq!(snapshot(p), before, "{args:?} changed something");
    }
    #[cfg(unix)]
    {
        refused(
            &embquant(&["quantize", "a.parquet", "-o", "link.parquet"], p),
            "would replace the input",
        );
        refused(
            &embquant(&["calibrate", "link.parquet", "-o", "a.parquet"], p),
            "would replace the input",
        );
        assert_eq!(snapshot(p), before);
    }
}

#[test]
fn sql_copy_onto_a_table_the_session_created_is_refused() {
    // Tables made by CREATE EXTERNAL TABLE in the REPL are guarded like --table ones.
    use std::io::Write;
    use std::process::{Command, Stdio};
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "a.parquet");
    std::fs::create_dir(p.join("t")).unwrap();
    corpus(&p.join("t"), "b.parquet");
    let before = snapshot(p);
    let mut child = Command::new(env!("CARGO_BIN_EXE_embquant"))
        .arg("sql")
        .current_dir(p)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"CREATE EXTERNAL TABLE e STORED AS PARQUET LOCATION 'a.parquet';\n\
              COPY (SELECT id FROM e) TO 'a.parquet';\n\
              CREATE EXTERNAL TABLE d STORED AS PARQUET LOCATION 't/';\n\
              COPY (SELECT id FROM d) TO 't/x.parquet';\n\
              COPY (SELECT id FROM e) TO 'elsewhere.parquet';\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let e = text(&out.stderr);
    assert!(e.contains("would replace the input"), "{e}");
    assert!(e.contains("inside an input directory"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    // Only the write elsewhere happened.
    let mut after = snapshot(p);
    assert!(
        after.remove(Path::new("elsewhere.parquet")).is_some(),
        "{e}"
    );
    assert_eq!(after, before);
}

#[test]
fn sql_writes_onto_registered_tables_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "a.parquet");
    std::fs::create_dir(p.join("t")).unwrap();
    corpus(&p.join("t"), "b.parquet");
    let before = snapshot(p);
    let copy = embquant(
        &[
            "sql",
            "--table",
            "a=a.parquet",
            "COPY (SELECT id FROM a) TO 'a.parquet'",
        ],
        p,
    );
    refused(&copy, "would replace the input");
    let into_dir = embquant(
        &[
            "sql",
            "--table",
            "t=t",
            "COPY (SELECT id FROM t) TO 't/x.parquet'",
        ],
        p,
    );
    refused(&into_dir, "inside an input directory");
    let out = embquant(
        &[
            "sql",
            "--table",
            "a=a.parquet",
            "SELECT id FROM a",
            "--output",
            "a.parquet",
        ],
        p,
    );
    refused(&out, "would replace the input");
    assert_eq!(snapshot(p), before);
    // The same writes elsewhere work, through a temporary name.
    let ok = embquant(
        &[
            "sql",
            "--table",
            "a=a.parquet",
            "SELECT id FROM a",
            "--output",
            "ids.parquet",
        ],
        p,
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("wrote 600 rows"),
        "{}",
        text(&ok.stdout)
    );
}

/// One random layout: files and directories the user owns, and one command writing one
/// output somewhere in it.
#[derive(Debug, Clone)]
struct Layout {
    /// Directories (0..3) holding the input copy, a notes file, a nested file.
    input_dir: usize,
    notes_dir: usize,
    /// The command: 0 calibrate, 1 quantize to a file, 2 quantize to a directory,
    /// 3 the same with --overwrite, 4 search.
    command: usize,
    /// Where the output goes: 0 an input, 1 a directory, 2 a notes file, 3 a new path in a
    /// directory, 4 the calibration, 5 a symlink to the input, 6 the parent of a directory.
    target: usize,
    target_dir: usize,
}

fn layouts() -> impl Strategy<Value = Layout> {
    (0..3usize, 0..3usize, 0..5usize, 0..7usize, 0..3usize).prop_map(
        |(input_dir, notes_dir, command, target, target_dir)| Layout {
            input_dir,
            notes_dir,
            command,
            target,
            target_dir,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the command and wherever its output points, every file that existed before
    /// and is not the named target (or one of embquant's own parts in a target directory)
    /// is still there, unchanged.
    #[test]
    fn no_file_outside_the_target_changes(l in layouts()) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let dirs = ["d0", "d0/d1", "d2"];
        for x in dirs {
            std::fs::create_dir_all(root.join(x)).unwrap();
        }
        let base = std::env::temp_dir().join(format!("embquant-safety-{}", std::process::id()));
        if !base.join("a.parquet").exists() {
            std::fs::create_dir_all(&base).unwrap();
            corpus(&base, "a.parquet");
            assert!(embquant(&["calibrate", "a.parquet", "-o", "cal.json"], &base).status.success());
            assert!(embquant(&["quantize", "a.parquet", "-o", "c.parquet"], &base).status.success());
        }
        let input = root.join(dirs[l.input_dir]).join("a.parquet");
        std::fs::copy(base.join("a.parquet"), &input).unwrap();
        std::fs::copy(base.join("c.parquet"), root.join("c.parquet")).unwrap();
        std::fs::copy(base.join("cal.json"), root.join("cal.json")).unwrap();
        std::fs::write(root.join(dirs[l.notes_dir]).join("NOTES.txt"), "notes").unwrap();
        std::fs::write(root.join("d0/d1/deep.txt"), "deep").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&input, root.join("link.parquet")).unwrap();
        let target: PathBuf = match l.target {
            0 => input.clone(),
            1 => root.join(dirs[l.target_dir]),
            2 => root.join(dirs[l.notes_dir]).join("NOTES.txt"),
            3 => root.join(dirs[l.target_dir]).join("new.out"),
            4 => root.join("cal.json"),
            5 => root.join("link.parquet"),
            _ => root.join("d0"),
        };
        let t = target.to_str().unwrap();
        let inp = input.to_str().unwrap();
        let args: Vec<&str> = match l.command {
            0 => vec!["calibrate", inp, "-o", t],
            1 => vec!["quantize", inp, "--calibration", "cal.json", "-o", t],
            2 => vec!["quantize", inp, "--target-file-rows", "250", "-o", t],
            3 => vec!["quantize", inp, "--target-file-rows", "250", "--overwrite", "-o", t],
            _ => vec!["search", "--corpus", "c.parquet", "--queries", inp, "--k", "3", "--tiers", "int8", "-o", t],
        };
        let before = snapshot(root);
        let out = embquant(&args, root);
        let stderr = text(&out.stderr);
        prop_assert!(!stderr.contains("panicked"), "{stderr}");
        let after = snapshot(root);
        let target_rel = embquant::io::resolve(&target);
        let target_rel = target_rel.strip_prefix(embquant::io::resolve(root)).unwrap_or(&target_rel).to_path_buf();
        let dir_output = matches!(l.command, 2 | 3);
        for (path, bytes) in &before {
            let is_target = *path == target_rel;
            if is_target && !dir_output {
                continue; // the named file output may be replaced
            }
            prop_assert_eq!(after.get(path), Some(bytes), "{} changed by {:?}: {}", path.display(), args, stderr);
        }
    }
}

#[test]
fn sql_read_only_mode_writes_nothing_and_reads_only_registered_tables() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "a.parquet");
    let before = snapshot(p);
    for sql in [
        "COPY (SELECT id FROM a) TO 'copy.parquet'",
        "CREATE EXTERNAL TABLE b STORED AS PARQUET LOCATION 'a.parquet'",
        "SELECT count(*) FROM 'a.parquet'",
        "SET datafusion.execution.batch_size = 1",
        "INSERT INTO a SELECT * FROM a",
    ] {
        let o = embquant(&["sql", "--read-only", "--table", "a=a.parquet", sql], p);
        assert!(
            !o.status.success(),
            "{sql} was accepted: {}",
            text(&o.stdout)
        );
        let e = text(&o.stderr);
        assert!(e.starts_with("error: "), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    assert_eq!(snapshot(p), before, "nothing written");
    let ok = embquant(
        &[
            "sql",
            "--read-only",
            "--table",
            "a=a.parquet",
            "SELECT count(*) AS n FROM a",
        ],
        p,
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("600"), "{}", text(&ok.stdout));
}

#[test]
fn sql_reads_a_directory_output_as_one_table_of_its_listed_parts() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "a.parquet");
    std::fs::create_dir(p.join("parts")).unwrap();
    // A foreign Parquet file kept by --overwrite is not one of the table's parts.
    corpus(&p.join("parts"), "other.parquet");
    let o = embquant(
        &[
            "quantize",
            "a.parquet",
            "--target-file-rows",
            "250",
            "--overwrite",
            "-o",
            "parts",
        ],
        p,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = embquant(
        &[
            "sql",
            "--table",
            "c=parts",
            "SELECT count(*) AS n, count(DISTINCT id) AS ids, \
             sum(hamming_distance(embedding_bin, embedding_bin)) AS zero FROM c",
        ],
        p,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(s.contains("| 600 | 600 | 0    |"), "{s}");
}

/// The hostile round's spellings: an input named one way, the output another way (`file:`
/// URLs with `localhost`, one slash, upper case or `%` escapes, globs, directories), never
/// replaced; SQL writes hidden under `EXPLAIN ANALYZE` or made with `INSERT INTO` refused.
#[test]
fn inputs_in_other_spellings_are_never_replaced() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let abs = p.canonicalize().unwrap().display().to_string();
    std::fs::create_dir_all(p.join("q")).unwrap();
    std::fs::create_dir_all(p.join("cal")).unwrap();
    std::fs::create_dir_all(p.join("t")).unwrap();
    corpus(p, "a.parquet");
    corpus(&p.join("q"), "qry.parquet");
    corpus(&p.join("t"), "part.parquet");
    let ok = |args: &[&str]| {
        let o = embquant(args, p);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    };
    ok(&["calibrate", "a.parquet", "-o", "cal/cal.json"]);
    ok(&["quantize", "a.parquet", "-o", "corp.parquet"]);
    let before = snapshot(p);
    let file_q = format!("file://{abs}/q/qry.parquet");
    let file_cal = format!("file://{abs}/cal/cal.json");
    let escaped_cal = format!("file://{abs}/cal/%63al.json");
    let search = |queries: &str, out: &str| -> Vec<String> {
        [
            "search",
            "--corpus",
            "corp.parquet",
            "--queries",
            queries,
            "-o",
            out,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut cases: Vec<Vec<String>> = vec![
        search(&file_q, "q/qry.parquet"),
        search("q/qry*.parquet", "q/qry.parquet"),
        search("q", "q/qry.parquet"),
        search("q", "q/new.parquet"),
        search(
            "q/qry.parquet",
            &format!("file://localhost{abs}/q/qry.parquet"),
        ),
        search("q/qry.parquet", &format!("FILE:{abs}/q/%71ry.parquet")),
    ];
    for cal in [&file_cal, &escaped_cal] {
        cases.push(
            [
                "quantize",
                "a.parquet",
                "--calibration",
                cal,
                "-o",
                "cal/cal.json",
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    cases.push(
        [
            "quantize",
            "a.parquet",
            "--calibration",
            "cal/cal.json",
            "-o",
            &escaped_cal,
        ]
        .map(String::from)
        .to_vec(),
    );
    cases.push(
        [
            "calibrate",
            "a.parquet",
            "-o",
            &format!("file:{abs}/a.parquet"),
        ]
        .map(String::from)
        .to_vec(),
    );
    // SQL: COPY onto the table in other spellings, hidden under EXPLAIN ANALYZE, and
    // INSERT INTO a table registered as a directory.
    let corp = format!("{abs}/corp.parquet");
    for target in [
        format!("file://localhost{corp}"),
        format!("file:{corp}"),
        format!("FILE://{corp}"),
        format!("file://{abs}/corp%2Eparquet"),
    ] {
        cases.push(
            [
                "sql".to_string(),
                "-t".into(),
                "c=corp.parquet".into(),
                format!("COPY (SELECT id FROM c) TO '{target}' STORED AS PARQUET"),
            ]
            .to_vec(),
        );
    }
    cases.push(
        [
            "sql",
            "-t",
            "c=corp.parquet",
            "EXPLAIN ANALYZE COPY (SELECT id FROM c) TO 'corp.parquet'",
        ]
        .map(String::from)
        .to_vec(),
    );
    cases.push(
        [
            "sql",
            "-t",
            "t=t",
            "EXPLAIN ANALYZE COPY (SELECT id FROM t) TO 't/x.parquet'",
        ]
        .map(String::from)
        .to_vec(),
    );
    cases.push(
        [
            "sql",
            "-t",
            "t=t",
            "-o",
            &format!("file://{abs}/t/y.parquet"),
            "SELECT id FROM t",
        ]
        .map(String::from)
        .to_vec(),
    );
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&embquant(&args, p), "would replace the input");
        assert_eq!(snapshot(p), before, "{args:?} changed something");
    }
    let insert = embquant(&["sql", "-t", "t=t", "INSERT INTO t SELECT * FROM t"], p);
    refused(&insert, "never modifies its inputs");
    assert_eq!(snapshot(p), before, "INSERT INTO changed something");
    // memory:// is no output: it vanishes with the process.
    refused(
        &embquant(&["calibrate", "a.parquet", "-o", "memory://b/cal.json"], p),
        "memory://",
    );

    // file: outputs are decoded like file: inputs: `%2E` is a dot, `localhost` is no
    // directory.
    ok(&[
        "calibrate",
        "a.parquet",
        "-o",
        &format!("file://localhost{abs}/out%2Ejson"),
    ]);
    assert!(p.join("out.json").is_file());
    assert!(!p.join("localhost").exists() && !p.join("out%2Ejson").exists());
    ok(&[
        "sql",
        "-t",
        "c=corp.parquet",
        "-o",
        &format!("file:{abs}/ids.parquet"),
        "SELECT id FROM c",
    ]);
    assert!(p.join("ids.parquet").is_file());
}
