//! CLI end-to-end tests of `embquant search` (tier chains, RaBitQ codes) and `embquant
//! recall`, run as a user would (the binary in a temporary directory).

mod common;

use std::path::Path;

use common::{embquant, text};

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

#[test]
fn multi_bit_rabitq_quantize_inspect_search_and_recall() {
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
            "int8,rabitq4",
            "-o",
            "rq.parquet",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    // The same file from --rabitq-bits.
    let q = embquant(
        &[
            "quantize",
            corpus,
            "--scheme",
            "int8,rabitq",
            "--rabitq-bits",
            "4",
            "-o",
            "rq-b.parquet",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    let i = embquant(&["inspect", "rq.parquet"], p);
    let out = text(&i.stdout);
    assert!(
        out.contains("embedding_rq: FixedSizeBinary(72)")
            && out.contains("embedding_rq4: FixedSizeBinary(200)")
            && out.contains("the extra bits of 4-bit RaBitQ"),
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
        (s.status.success(), text(&s.stdout), text(&s.stderr))
    };
    let (ok, _, err) = search("float", "exact.parquet");
    assert!(ok, "{err}");
    let (ok, out, err) = search("rabitq1:bound,rabitq4:bound,int8", "bound.parquet");
    assert!(ok, "{err}");
    assert!(
        out.contains("certified for") && out.contains("rows kept per query"),
        "{out}"
    );
    let exact = results(&p.join("exact.parquet"));
    let bound = results(&p.join("bound.parquet"));
    let hits: usize = exact
        .iter()
        .map(|(q, ids)| bound[q].iter().filter(|i| ids.contains(i)).count())
        .sum();
    assert!(
        hits as f64 / 500.0 >= 0.97,
        "recall@10 {}",
        hits as f64 / 500.0
    );
    // The report columns.
    let f = std::fs::File::open(p.join("bound.parquet")).unwrap();
    let b = embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap();
    let names: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert!(
        names.ends_with(&["kept".to_string(), "certified".to_string()]),
        "{names:?}"
    );
    let (ok, _, err) = search("rabitq4", "alone.parquet");
    assert!(ok, "{err}");
    // Drift reads the reference calibration from a file holding the extra-bits column too.
    let d = embquant(
        &[
            "drift",
            "--reference",
            "rq.parquet",
            corpus,
            "--column",
            "embedding",
        ],
        p,
    );
    assert!(d.status.success(), "{}", text(&d.stderr));
    assert!(text(&d.stdout).contains("clip rate"), "{}", text(&d.stdout));
    // A width the file does not hold is named.
    let (ok, _, err) = search("rabitq2:4,int8", "x.parquet");
    assert!(!ok && err.contains("rabitq2 extra bits"), "{err}");
    let e = embquant(
        &[
            "quantize",
            corpus,
            "--scheme",
            "rabitq2,rabitq4",
            "-o",
            "y.parquet",
        ],
        p,
    );
    assert!(!e.status.success() && text(&e.stderr).contains("one multi-bit width"));
    // The recall report measures the widths and the bound chain, and prices the bound chain
    // by the rows it actually kept.
    let r = embquant(
        &[
            "recall",
            "--corpus",
            corpus,
            "--queries",
            queries,
            "--k",
            "10",
            "--configs",
            "int8;rabitq2;rabitq4;rabitq4:2,int8;rabitq1:bound,rabitq4:bound,int8",
            "--report",
            "rep",
        ],
        p,
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("rep/report.json")).unwrap()).unwrap();
    let configs = json["configs"].as_array().unwrap();
    let get = |name: &str| {
        configs
            .iter()
            .find(|c| c["config"] == name)
            .unwrap_or_else(|| panic!("{name} in {configs:?}"))
    };
    // Bytes per vector: both RaBitQ columns (72 + 200).
    assert_eq!(get("rabitq4")["bytes_per_vector"], 272);
    let int8_read = get("int8")["bytes_read_per_query"].as_f64().unwrap();
    let bound_read = get("rabitq:bound,rabitq4:bound,int8")["bytes_read_per_query"]
        .as_f64()
        .unwrap();
    assert!(bound_read < int8_read / 3.0, "{bound_read} vs {int8_read}");
}
