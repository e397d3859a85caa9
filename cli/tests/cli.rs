//! The `embquant` binary end to end: demo, calibrate -> quantize -> inspect, errors, and
//! an interrupted run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{embquant, text};

#[test]
fn demo_runs_calibrate_quantize_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let out = embquant(&["demo", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in [
        "embquant calibrate",
        "embquant quantize",
        "embquant inspect",
        "embquant recall",
        "recommendation for recall 0.95@10",
        "embedding_int8",
        "degenerate dims [127, 223, 319]",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let demo = dir.path().join("embquant-demo");
    for f in [
        "minilm-wordnet.parquet",
        "calibration.json",
        "minilm-wordnet.quantized.parquet",
    ] {
        assert!(demo.join(f).exists(), "{f}");
    }
}

#[test]
fn calibrate_then_quantize_split_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let gen = embquant(
        &[
            "gen-synthetic",
            "--rows",
            "5000",
            "--dims",
            "32",
            "--output",
            "syn.parquet",
        ],
        p,
    );
    assert!(gen.status.success(), "{}", text(&gen.stderr));
    let cal = embquant(
        &[
            "calibrate",
            "syn.parquet",
            "--method",
            "quantile:0.99",
            "--sample-rows",
            "2000",
            "-o",
            "cal.json",
        ],
        p,
    );
    assert!(cal.status.success(), "{}", text(&cal.stderr));
    assert!(
        text(&cal.stdout).contains("calibrated 2000 rows x 32 dims"),
        "{}",
        text(&cal.stdout)
    );
    let q = embquant(
        &[
            "quantize",
            "syn.parquet",
            "--calibration",
            "cal.json",
            "--scheme",
            "int8,int4,binary,bf16",
            "--target-file-rows",
            "2000",
            "--drop-source",
            "-o",
            "parts",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    let s = text(&q.stdout);
    assert!(
        s.contains("quantized 5000 rows from 1 file(s) into 3 file(s)")
            && s.contains("clip rate embedding_int8"),
        "{s}"
    );
    let i = embquant(&["inspect", "parts/part-00002.parquet", "--json"], p);
    assert!(i.status.success(), "{}", text(&i.stderr));
    let v: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert_eq!(v["rows"], 1000);
    assert_eq!(v["embquant"]["lineage"]["first_row"], 4000);
    assert_eq!(v["embquant"]["lineage"]["part"], 2);
    assert_eq!(v["embquant"]["calibration"]["rows"], 2000);
    let names: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "embedding_int8",
            "embedding_int4",
            "embedding_bin",
            "embedding_bf16"
        ]
    );
}

#[test]
fn matryoshka_dims_and_calibration_checks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert!(embquant(
        &[
            "gen-synthetic",
            "--rows",
            "3000",
            "--dims",
            "32",
            "--output",
            "syn.parquet"
        ],
        p
    )
    .status
    .success());
    let q = embquant(
        &[
            "quantize",
            "syn.parquet",
            "--dims",
            "16",
            "--scheme",
            "int8,int4,binary",
            "-o",
            "m.parquet",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    let i = embquant(&["inspect", "m.parquet", "--json"], p);
    let v: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    let cols = v["embquant"]["columns"].as_array().unwrap();
    assert_eq!(cols[0]["dims"], 16);
    assert_eq!(cols[0]["source_dims"], 32);
    assert_eq!(cols[0]["truncation"]["dims"], 16);
    assert_eq!(cols[1]["bytes_per_vector"], 8);
    assert_eq!(cols[2]["bytes_per_vector"], 2);
    // A 32-dim calibration does not fit 16-dim prefixes.
    assert!(
        embquant(&["calibrate", "syn.parquet", "-o", "cal32.json"], p)
            .status
            .success()
    );
    let out = embquant(
        &[
            "quantize",
            "syn.parquet",
            "--dims",
            "16",
            "--calibration",
            "cal32.json",
            "-o",
            "x.parquet",
        ],
        p,
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("dimension mismatch"),
        "{}",
        text(&out.stderr)
    );
    // An edited calibration fails its fingerprint check.
    let mut cal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("cal32.json")).unwrap()).unwrap();
    cal["hi"][0] = serde_json::json!(9.0);
    std::fs::write(p.join("edited.json"), cal.to_string()).unwrap();
    let out = embquant(
        &[
            "quantize",
            "syn.parquet",
            "--calibration",
            "edited.json",
            "-o",
            "x.parquet",
        ],
        p,
    );
    let e = text(&out.stderr);
    assert!(
        !out.status.success() && e.contains("edited.json") && e.contains("fingerprint"),
        "{e}"
    );
    assert!(!p.join("x.parquet").exists());
}

#[test]
fn errors_name_the_file_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert!(embquant(
        &[
            "gen-synthetic",
            "--rows",
            "100",
            "--dims",
            "8",
            "--output",
            "a.parquet"
        ],
        p
    )
    .status
    .success());
    let out = embquant(
        &[
            "quantize",
            "a.parquet",
            "--column",
            "vec",
            "-o",
            "b.parquet",
        ],
        p,
    );
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("a.parquet") && e.contains("no column \"vec\""),
        "{e}"
    );
    assert!(!p.join("b.parquet").exists());
    std::fs::write(p.join("bad.parquet"), b"PAR1 nope").unwrap();
    let out = embquant(&["calibrate", "bad.parquet", "-o", "c.json"], p);
    assert!(
        !out.status.success() && text(&out.stderr).contains("bad.parquet"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(p.join("tampered.json"), b"{\"version\": 1}").unwrap();
    let out = embquant(
        &[
            "quantize",
            "a.parquet",
            "--calibration",
            "tampered.json",
            "-o",
            "b.parquet",
        ],
        p,
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("tampered.json"),
        "{}",
        text(&out.stderr)
    );
    let out = embquant(
        &[
            "quantize",
            "a.parquet",
            "--scheme",
            "int7",
            "-o",
            "b.parquet",
        ],
        p,
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("int7"),
        "{}",
        text(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn sigint_leaves_nothing_at_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert!(embquant(
        &[
            "gen-synthetic",
            "--rows",
            "400000",
            "--dims",
            "64",
            "--output",
            "big.parquet"
        ],
        p
    )
    .status
    .success());
    let child = Command::new(env!("CARGO_BIN_EXE_embquant"))
        .args([
            "quantize",
            "big.parquet",
            "--scheme",
            "int8,int4,binary,f16",
            "--batch-rows",
            "512",
            "-o",
            "out.parquet",
        ])
        .current_dir(p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        eprintln!("SKIPPED: the run finished before the interrupt arrived");
        return;
    }
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("interrupted"));
    let left: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["big.parquet"], "only the input remains");
}

#[test]
fn search_writes_ranked_results_and_rejects_bad_chains() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert!(embquant(
        &[
            "gen-synthetic",
            "--rows",
            "3000",
            "--dims",
            "32",
            "--output",
            "c.parquet"
        ],
        p
    )
    .status
    .success());
    assert!(embquant(
        &[
            "gen-synthetic",
            "--rows",
            "20",
            "--dims",
            "32",
            "--seed",
            "7",
            "--output",
            "q.parquet"
        ],
        p
    )
    .status
    .success());
    let q = embquant(
        &[
            "quantize",
            "c.parquet",
            "--scheme",
            "int8,binary",
            "-o",
            "cq.parquet",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    let s = embquant(
        &[
            "search",
            "--corpus",
            "cq.parquet",
            "--queries",
            "q.parquet",
            "--k",
            "5",
            "--tiers",
            "binary:4,int8:2,float",
            "--id-column",
            "id",
            "-o",
            "r.parquet",
        ],
        p,
    );
    assert!(s.status.success(), "{}", text(&s.stderr));
    assert!(
        text(&s.stdout).contains("searched 20 queries over 3000 rows")
            && text(&s.stdout).contains("queries/s")
    );
    let i = embquant(&["inspect", "r.parquet", "--json"], p);
    let v: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert_eq!(v["rows"], 100);
    let names: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["query_id", "rank", "id", "score", "tier"]);
    // The float tier needs the float column; int4 codes were not written.
    let q = embquant(
        &[
            "quantize",
            "c.parquet",
            "--scheme",
            "int8,binary",
            "--drop-source",
            "-o",
            "dropped.parquet",
        ],
        p,
    );
    assert!(q.status.success());
    let e = embquant(
        &[
            "search",
            "--corpus",
            "dropped.parquet",
            "--queries",
            "q.parquet",
            "--tiers",
            "binary:4,float",
            "-o",
            "x.parquet",
        ],
        p,
    );
    assert!(
        !e.status.success() && text(&e.stderr).contains("float column"),
        "{}",
        text(&e.stderr)
    );
    let e = embquant(
        &[
            "search",
            "--corpus",
            "cq.parquet",
            "--queries",
            "q.parquet",
            "--tiers",
            "int4",
            "-o",
            "x.parquet",
        ],
        p,
    );
    assert!(
        !e.status.success() && text(&e.stderr).contains("no int4 codes"),
        "{}",
        text(&e.stderr)
    );
    let e = embquant(
        &[
            "search",
            "--corpus",
            "cq.parquet",
            "--queries",
            "q.parquet",
            "--tiers",
            "binary,int8",
            "-o",
            "x.parquet",
        ],
        p,
    );
    assert!(
        !e.status.success() && text(&e.stderr).contains("factor"),
        "{}",
        text(&e.stderr)
    );
}

/// `(query_id, id)` pairs of a search result file, grouped per query.
fn results(path: &Path) -> std::collections::BTreeMap<i64, Vec<i64>> {
    use embquant::arrow_array::cast::AsArray;
    use embquant::arrow_array::types::Int64Type;
    let f = std::fs::File::open(path).unwrap();
    let reader =
        embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
    let mut out: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for b in reader {
        let b = b.unwrap();
        let q = b
            .column_by_name("query_id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        let id = b
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        for r in 0..b.num_rows() {
            out.entry(q.value(r)).or_default().push(id.value(r));
        }
    }
    out
}

#[test]
fn rabitq_quantize_inspect_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let corpus = data.join("minilm-wordnet-5k.parquet");
    let queries = data.join("minilm-wordnet-queries-50.parquet");
    let (corpus, queries) = (corpus.to_str().unwrap(), queries.to_str().unwrap());
    let q = embquant(
        &[
            "quantize",
            corpus,
            "--scheme",
            "int8,rabitq",
            "-o",
            "rq.parquet",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    let i = embquant(&["inspect", "rq.parquet"], p);
    let out = text(&i.stdout);
    assert!(
        out.contains("embedding_rq: FixedSizeBinary(72)")
            && out.contains("512 bits after a randomized Hadamard rotation"),
        "{out}"
    );
    let search = |tiers: &str, file: &str| {
        let s = embquant(
            &[
                "search",
                "--corpus",
                "rq.parquet",
                "--queries",
                queries,
                "--k",
                "10",
                "--tiers",
                tiers,
                "--id-column",
                "id",
                "--query-id-column",
                "id",
                "-o",
                file,
            ],
            p,
        );
        assert!(s.status.success(), "{}", text(&s.stderr));
        results(&p.join(file))
    };
    let exact = search("float", "exact.parquet");
    let approx = search("rabitq:4,int8", "approx.parquet");
    assert_eq!(exact.len(), 50);
    let hits: usize = exact
        .iter()
        .map(|(q, ids)| approx[q].iter().filter(|i| ids.contains(i)).count())
        .sum();
    let recall = hits as f64 / 500.0;
    assert!(recall >= 0.95, "rabitq:4,int8 recall@10 {recall}");
    // Codes of another rotation are not comparable: a corpus mixing them is refused.
    let q = embquant(
        &[
            "quantize",
            corpus,
            "--scheme",
            "int8,rabitq",
            "--rabitq-rotation",
            "hadamard:7",
            "-o",
            "rq7.parquet",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    let e = embquant(
        &[
            "search",
            "--corpus",
            "rq.parquet",
            "rq7.parquet",
            "--queries",
            queries,
            "--tiers",
            "rabitq:4,int8",
            "-o",
            "x.parquet",
        ],
        p,
    );
    assert!(
        !e.status.success() && text(&e.stderr).contains("another calibration or recipe"),
        "{}",
        text(&e.stderr)
    );
    let e = embquant(
        &[
            "quantize",
            corpus,
            "--scheme",
            "rabitq",
            "--rabitq-rotation",
            "dct",
            "-o",
            "y.parquet",
        ],
        p,
    );
    assert!(
        !e.status.success() && text(&e.stderr).contains("expected none, hadamard"),
        "{}",
        text(&e.stderr)
    );
}

#[test]
fn recall_report_gates_and_its_ground_truth_cache() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let corpus = data.join("minilm-wordnet-5k.parquet");
    let queries = data.join("minilm-wordnet-queries-50.parquet");
    let (corpus, queries) = (corpus.to_str().unwrap(), queries.to_str().unwrap());
    let run = |extra: &[&str]| {
        let mut args = vec![
            "recall",
            "--corpus",
            corpus,
            "--k",
            "1,10",
            "--configs",
            "int8;binary:4,int8;rabitq:4,int8",
            "--report",
            "rep",
        ];
        args.extend_from_slice(extra);
        embquant(&args, p)
    };
    let first = run(&[
        "--queries",
        queries,
        "--target-recall",
        "0.9@10",
        "--min-recall",
        "rabitq:4,int8=0.9@10",
    ]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    assert!(out.contains("ground truth computed"), "{out}");
    assert!(out.contains("recommendation for recall 0.9@10"), "{out}");
    assert!(
        out.contains("gate rabitq:4,int8=0.9@10") && out.contains("passed"),
        "{out}"
    );
    for f in [
        "report.json",
        "report.md",
        "recall.svg",
        "ground_truth.parquet",
    ] {
        assert!(p.join("rep").join(f).exists(), "{f}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("rep/report.json")).unwrap()).unwrap();
    assert_eq!(json["queries"], 50);
    assert_eq!(json["configs"].as_array().unwrap().len(), 3);
    let svg = std::fs::read_to_string(p.join("rep/recall.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Pareto front"));
    // Same inputs: the ground truth comes from the cache.
    let second = run(&["--queries", queries]);
    assert!(second.status.success());
    assert!(text(&second.stdout).contains("ground truth from the cache"));
    // Other queries (a sample of the corpus): recomputed; a gate that cannot hold fails.
    let third = run(&[
        "--sample-queries",
        "30",
        "--min-recall",
        "binary:4,int8=0.999@10",
    ]);
    assert!(!third.status.success());
    assert!(text(&third.stdout).contains("ground truth computed"));
    let err = text(&third.stderr);
    assert!(
        err.contains("recall gate failed: binary:4,int8=0.999@10"),
        "{err}"
    );
    // A gate at a k deeper than the ground truth is an error, not a pass.
    let bad = run(&["--queries", queries, "--min-recall", "int4=0.5@100"]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("--k"));
}
