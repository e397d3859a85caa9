//! `embquant sql`: one statement over registered files, results printed or written, and
//! quantized columns written by `COPY ... TO` that `embquant search` then reads.

mod common;

use std::path::{Path, PathBuf};

use common::{embquant, text};

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(file)
}

#[test]
fn sql_prints_a_table_and_writes_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = format!("corpus={}", data("minilm-wordnet-5k.parquet").display());
    let out = embquant(
        &[
            "sql",
            "SELECT count(*) AS n, hamming_distance(X'ff', X'0f') AS h FROM corpus",
            "--table",
            &corpus,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("| 5000 | 4 |"), "{s}");
    assert!(s.contains("1 row in"), "{s}");

    // --output: a CSV with the rows
    let out = embquant(
        &[
            "sql",
            "SELECT id, round(inner_product(embedding, embedding), 3) AS norm2 FROM corpus ORDER BY id LIMIT 3",
            "--table",
            &corpus,
            "--output",
            "out.csv",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).expect("csv written");
    // MiniLM embeddings are unit length.
    assert_eq!(csv.trim(), "id,norm2\n0,1.0\n1,1.0\n2,1.0");
}

#[test]
fn sql_copy_keeps_metadata_for_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = format!("corpus={}", data("minilm-wordnet-5k.parquet").display());
    // The calibration, computed in SQL and written as JSON lines.
    let out = embquant(
        &[
            "sql",
            "SELECT embedding_calibration(embedding) AS cal FROM corpus",
            "--table",
            &corpus,
            "-o",
            "cal.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = std::fs::read_to_string(dir.path().join("cal.json")).expect("cal.json");
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    let cal = v["cal"].as_str().expect("cal string").to_string();
    let copy = format!(
        "COPY (SELECT id, embedding, binary_quantize(embedding) AS embedding_bin, \
         int8_quantize(embedding, '{cal}') AS embedding_int8 FROM corpus ORDER BY id) TO 'q.parquet'"
    );
    let out = embquant(&["sql", &copy, "--table", &corpus], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The library's search reads the recipe and calibration from the field metadata.
    let out = embquant(
        &[
            "search",
            "--corpus",
            "q.parquet",
            "--queries",
            data("minilm-wordnet-queries-50.parquet")
                .to_str()
                .expect("utf-8"),
            "--k",
            "10",
            "--id-column",
            "id",
            "--query-id-column",
            "id",
            "-o",
            "hits.parquet",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // ... and equals tiered_search over the same file, row for row.
    let cmp = "SELECT count(*) AS differing FROM (\
               SELECT query_id, rank, id FROM hits EXCEPT \
               SELECT query_id, rank, id FROM tiered_search('q', 'queries', 10))";
    let queries = format!(
        "queries={}",
        data("minilm-wordnet-queries-50.parquet").display()
    );
    let out = embquant(
        &[
            "sql",
            cmp,
            "--table",
            "q=q.parquet",
            "--table",
            "hits=hits.parquet",
            "--table",
            &queries,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("| 0         |"), "{s}");
}

#[test]
fn sql_errors_exit_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = embquant(
        &["sql", "SELECT inner_product([1.0], [1.0, 2.0])"],
        dir.path(),
    );
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("inner_product: dimension mismatch"), "{e}");
    let out = embquant(&["sql", "SELECT 1", "--table", "nonsense"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("expected NAME=PATH"));
}
