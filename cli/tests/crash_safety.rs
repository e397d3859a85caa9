//! A real SIGKILL (and SIGTERM, SIGHUP) at several moments of each command that writes:
//! the previous target stays intact or the new one is complete, never partial; the next
//! run removes what the killed one left. Two jobs writing one target at once: one wins
//! completely.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{embquant, text};

fn spawn(args: &[&str], cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_embquant"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn embquant")
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

/// Rows of a Parquet file, through `embquant inspect` (None: not a readable Parquet file).
fn rows(path: &Path) -> Option<u64> {
    let o = embquant(&["inspect", path.to_str()?, "--json"], Path::new("."));
    if !o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v["rows"].as_u64()
}

/// The entries of `dir` whose names mark them as embquant's temporaries.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".embquant-tmp-"))
        .collect()
}

const ROWS: u64 = 100_000;

fn setup() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(embquant(
        &[
            "gen-synthetic",
            "--rows",
            &ROWS.to_string(),
            "--dims",
            "64",
            "--row-group-rows",
            "30000",
            "-o",
            "in.parquet",
        ],
        p,
    ));
    ok(embquant(
        &[
            "gen-synthetic",
            "--rows",
            "2000",
            "--dims",
            "64",
            "--seed",
            "7",
            "-o",
            "q.parquet",
        ],
        p,
    ));
    d
}

/// When a run is killed: at once (while it starts), when its temporary output appears in
/// the working directory, and when that temporary holds data (mid-write).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Moment {
    AtOnce,
    TemporaryAppears,
    TemporaryHoldsData,
}

/// Bytes under `path` (a file or a directory).
fn size(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|es| es.flatten().map(|e| size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// The temporaries anywhere under `dir` (a report directory stages its files inside).
fn temporaries_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().contains(".embquant-tmp-") {
            out.push(path);
        } else if path.is_dir() {
            temporaries_under(&path, out);
        }
    }
}

/// Waits, polling, until `moment` has come for the run `child` in `dir`: true when it came
/// while the run was still going, false when the run ended first (or after 60 s).
fn reached(moment: Moment, child: &mut Child, dir: &Path) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        let mut temporaries = Vec::new();
        temporaries_under(dir, &mut temporaries);
        let came = match moment {
            Moment::AtOnce => true,
            Moment::TemporaryAppears => !temporaries.is_empty(),
            Moment::TemporaryHoldsData => {
                temporaries.iter().map(|t| size(t)).sum::<u64>() >= 64 << 10
            }
        };
        if came {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Kills `args` with `signal` at each [`Moment`], then checks `check` (the target is the
/// old one or a complete new one), and finally that a normal run leaves no leftovers.
/// Waits for events, not for fixed times: at least one kill must land while the temporary
/// output is being written, or the test proved nothing.
fn kill_at_moments(p: &Path, args: &[&str], signal: &str, check: &dyn Fn(&Path) -> bool) {
    let mut mid_write = 0;
    for moment in [
        Moment::AtOnce,
        Moment::TemporaryAppears,
        Moment::TemporaryHoldsData,
    ] {
        let mut child = spawn(args, p);
        let came = reached(moment, &mut child, p);
        let k = came
            && Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap()
                .success();
        let status = child.wait().unwrap();
        if k && !status.success() && moment != Moment::AtOnce {
            mid_write += 1;
        }
        assert!(
            check(p),
            "{args:?}: {signal} at {moment:?} left a partial target"
        );
        if signal != "-KILL" && !status.success() {
            // Handled signals clean up at once.
            assert_eq!(leftovers(p), Vec::<String>::new(), "{signal} at {moment:?}");
        }
    }
    assert!(
        mid_write >= 1,
        "{args:?}: no {signal} landed while the output was being written"
    );
    ok(embquant(args, p));
    assert!(check(p));
    assert_eq!(
        leftovers(p),
        Vec::<String>::new(),
        "the next run removes the killed runs' temporaries"
    );
}

#[test]
fn quantize_to_a_file_survives_kill_9_and_term_and_hup() {
    let d = setup();
    let p = d.path();
    let args = [
        "quantize",
        "in.parquet",
        "--scheme",
        "int8,binary,f16",
        "-o",
        "out.parquet",
    ];
    ok(embquant(&args, p));
    let check = |p: &Path| rows(&p.join("out.parquet")) == Some(ROWS);
    for sig in ["-KILL", "-TERM", "-HUP"] {
        kill_at_moments(p, &args, sig, &check);
    }
}

/// A directory output is complete: its manifest lists parts that all exist, hold all rows,
/// and no other part file is there.
fn complete_dir(dir: &Path) -> bool {
    let Ok(m) = std::fs::read(dir.join("_embquant_manifest.json")) else {
        return false;
    };
    let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
    let parts: Vec<String> = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    let mut sorted = on_disk.clone();
    sorted.sort();
    let total: Option<u64> = parts.iter().map(|n| rows(&dir.join(n))).sum();
    sorted == parts && total == Some(ROWS) && m["rows"].as_u64() == Some(ROWS)
}

#[test]
fn quantize_to_a_directory_survives_kill_9() {
    let d = setup();
    let p = d.path();
    let args = [
        "quantize",
        "in.parquet",
        "--scheme",
        "int8,binary",
        "--target-file-rows",
        "40000",
        "-o",
        "parts",
    ];
    ok(embquant(&args, p));
    kill_at_moments(p, &args, "-KILL", &|p: &Path| {
        complete_dir(&p.join("parts"))
    });
}

#[test]
fn search_and_sql_outputs_survive_kill_9() {
    let d = setup();
    let p = d.path();
    ok(embquant(
        &[
            "quantize",
            "in.parquet",
            "--scheme",
            "int8,binary",
            "-o",
            "c.parquet",
        ],
        p,
    ));
    let search = [
        "search",
        "--corpus",
        "c.parquet",
        "--queries",
        "q.parquet",
        "--k",
        "5",
        "--tiers",
        "binary:4,int8",
        "-o",
        "res.parquet",
    ];
    ok(embquant(&search, p));
    kill_at_moments(p, &search, "-KILL", &|p: &Path| {
        rows(&p.join("res.parquet")) == Some(2000 * 5)
    });
    // The recall report's files (and its ground-truth cache) are each complete or absent.
    let recall = [
        "recall",
        "--corpus",
        "in.parquet",
        "--queries",
        "q.parquet",
        "--k",
        "10",
        "--configs",
        "int8;binary:4,int8",
        "--report",
        "rep",
    ];
    ok(embquant(&recall, p));
    kill_at_moments(p, &recall, "-KILL", &|p: &Path| {
        let json: Option<serde_json::Value> = std::fs::read(p.join("rep/report.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        json.is_some_and(|j| j["configs"].as_array().is_some_and(|c| c.len() == 2))
            && rows(&p.join("rep/ground_truth.parquet")) == Some(2000 * 10)
    });
    // The last (normal) run removed what the killed ones left in the report directory.
    assert_eq!(leftovers(&p.join("rep")), Vec::<String>::new());
    let sql = [
        "sql",
        "--table",
        "t=in.parquet",
        "SELECT id, embedding FROM t",
        "--output",
        "o.parquet",
    ];
    ok(embquant(&sql, p));
    kill_at_moments(p, &sql, "-KILL", &|p: &Path| {
        rows(&p.join("o.parquet")) == Some(ROWS)
    });
    // A handled signal also removes DataFusion's own staging files (`NAME#N`).
    kill_at_moments(p, &sql, "-TERM", &|p: &Path| {
        rows(&p.join("o.parquet")) == Some(ROWS)
    });
}

#[test]
fn two_jobs_on_one_directory_target_one_wins_completely() {
    let d = setup();
    let p = d.path();
    for round in 0..3 {
        let a = spawn(
            &[
                "quantize",
                "in.parquet",
                "--scheme",
                "int8",
                "--target-file-rows",
                "40000",
                "-o",
                "parts",
            ],
            p,
        );
        let b = spawn(
            &[
                "quantize",
                "in.parquet",
                "--scheme",
                "int8",
                "--target-file-rows",
                "70000",
                "-o",
                "parts",
            ],
            p,
        );
        let (ra, rb) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(
            ra.status.success() || rb.status.success(),
            "round {round}: neither won: {} / {}",
            text(&ra.stderr),
            text(&rb.stderr)
        );
        assert!(
            complete_dir(&p.join("parts")),
            "round {round}: a mix or a partial set"
        );
        assert_eq!(leftovers(p), Vec::<String>::new(), "round {round}");
    }
}

#[test]
fn two_jobs_on_one_file_target_one_wins_completely() {
    let d = setup();
    let p = d.path();
    for round in 0..3 {
        let a = spawn(
            &[
                "quantize",
                "in.parquet",
                "--scheme",
                "int8",
                "-o",
                "one.parquet",
            ],
            p,
        );
        let b = spawn(
            &[
                "quantize",
                "in.parquet",
                "--scheme",
                "binary",
                "-o",
                "one.parquet",
            ],
            p,
        );
        let (ra, rb) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(
            ra.status.success() && rb.status.success(),
            "round {round}: {} / {}",
            text(&ra.stderr),
            text(&rb.stderr)
        );
        // Whole: all rows, and exactly one job's code column.
        assert_eq!(rows(&p.join("one.parquet")), Some(ROWS), "round {round}");
        let o = embquant(&["inspect", "one.parquet", "--json"], p);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let codes: Vec<&str> = v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["embquant"] == true)
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(
            codes == ["embedding_int8"] || codes == ["embedding_bin"],
            "round {round}: {codes:?}"
        );
        assert_eq!(leftovers(p), Vec::<String>::new(), "round {round}");
    }
}
