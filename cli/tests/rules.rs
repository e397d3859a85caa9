//! One rule per question, in every front end (CLI search, SQL `tiered_search` and
//! `rabitq_inner_product`, `recall`), where they used to disagree (issue 11):
//! - ids: any integer column whose values fit in Int64; a NULL id or a UInt64 above
//!   `i64::MAX` is an error naming the row (it was wrapped by CLI search);
//! - NULL query vectors: an error naming the row (recall dropped them silently);
//! - a RaBitQ recipe without a rotation: an error (read as "no rotation" by search, as the
//!   default rotation by the estimator function).

mod common;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use common::{embquant, text};
use embquant::arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, UInt64Array,
};
use embquant::arrow_schema::{DataType, Field, Schema};
use embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use embquant::parquet::arrow::ArrowWriter;

const DIM: usize = 8;

fn vectors(rows: usize, seed: u64, nulls: &[usize]) -> FixedSizeListArray {
    let mut s = seed | 1;
    let values: Vec<f32> = (0..rows * DIM)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let valid: Vec<bool> = (0..rows).map(|r| !nulls.contains(&r)).collect();
    FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        DIM as i32,
        Arc::new(Float32Array::from(values)),
        Some(valid.into()),
    )
}

fn write(path: &Path, ids: ArrayRef, emb: FixedSizeListArray) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", ids.data_type().clone(), true),
        Field::new("embedding", emb.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(schema.clone(), vec![ids, Arc::new(emb)]).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn fails(o: &std::process::Output, needles: &[&str]) {
    let e = text(&o.stderr);
    assert!(
        !o.status.success(),
        "expected a failure: {}",
        text(&o.stdout)
    );
    for n in needles {
        assert!(e.contains(n), "expected {n:?} in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

/// The library's message in a failed run's stderr, from `from` to the end of its line: CLI
/// and SQL wrap it in different contexts (file, function), the message itself is one.
fn core(o: &std::process::Output, from: &str) -> String {
    let e = text(&o.stderr);
    let at = e
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not in: {e}"));
    e[at..].lines().next().unwrap_or_default().to_string()
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn ids_follow_one_rule_in_cli_search_and_sql() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let rows = 64;
    // Corpus ids: UInt64, one beyond Int64 at row 5.
    let mut big: Vec<u64> = (0..rows as u64).collect();
    big[5] = u64::MAX;
    write(
        &p.join("c.parquet"),
        Arc::new(UInt64Array::from(big)),
        vectors(rows, 1, &[]),
    );
    ok(&embquant(
        &[
            "quantize",
            "c.parquet",
            "--column",
            "embedding",
            "-o",
            "q.parquet",
        ],
        p,
    ));
    // Queries with valid ids.
    write(
        &p.join("qs.parquet"),
        Arc::new(Int64Array::from(vec![10, 11, 12])),
        vectors(3, 2, &[]),
    );
    let search = |corpus: &str, queries: &str| {
        embquant(
            &[
                "search",
                "--corpus",
                corpus,
                "--queries",
                queries,
                "--id-column",
                "id",
                "--query-id-column",
                "id",
                "--k",
                "3",
                "-o",
                "r.parquet",
            ],
            p,
        )
    };
    let sql = |corpus: &str, queries: &str| {
        embquant(
            &[
                "sql",
                "--table",
                &format!("c={corpus}"),
                "--table",
                &format!("qs={queries}"),
                "SELECT count(*) FROM tiered_search('c', 'qs', 3)",
            ],
            p,
        )
    };
    let runs = [
        search("q.parquet", "qs.parquet"),
        sql("q.parquet", "qs.parquet"),
    ];
    for o in &runs {
        fails(o, &["row 5", "does not fit in Int64"]);
    }
    // The typed error reaches SQL intact: the same message as the CLI's.
    assert_eq!(core(&runs[0], "row 5"), core(&runs[1], "row 5"));
    // Query ids with a NULL at row 1, against a corpus whose ids are fine.
    write(
        &p.join("c2.parquet"),
        Arc::new(UInt64Array::from((0..rows as u64).collect::<Vec<_>>())),
        vectors(rows, 1, &[]),
    );
    ok(&embquant(
        &[
            "quantize",
            "c2.parquet",
            "--column",
            "embedding",
            "-o",
            "q2.parquet",
        ],
        p,
    ));
    write(
        &p.join("qnull.parquet"),
        Arc::new(Int64Array::from(vec![Some(10), None, Some(12)])),
        vectors(3, 2, &[]),
    );
    let runs = [
        search("q2.parquet", "qnull.parquet"),
        sql("q2.parquet", "qnull.parquet"),
    ];
    assert_eq!(
        core(&runs[0], "the id at row 1"),
        core(&runs[1], "the id at row 1")
    );
    for o in runs {
        fails(&o, &["row 1 is NULL"]);
    }
    // The same ids, valid, are accepted by both and come back as Int64.
    ok(&search("q2.parquet", "qs.parquet"));
    let f = File::open(p.join("r.parquet")).unwrap();
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let qids = batches[0].column_by_name("query_id").unwrap();
    assert_eq!(qids.data_type(), &DataType::Int64);
    assert_eq!(qids.len(), 9);
    ok(&sql("q2.parquet", "qs.parquet"));
}

#[test]
fn null_queries_are_errors_in_search_recall_and_sql() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        &p.join("c.parquet"),
        Arc::new(Int64Array::from((0..64).collect::<Vec<i64>>())),
        vectors(64, 1, &[]),
    );
    ok(&embquant(
        &[
            "quantize",
            "c.parquet",
            "--column",
            "embedding",
            "-o",
            "q.parquet",
        ],
        p,
    ));
    write(
        &p.join("qs.parquet"),
        Arc::new(Int64Array::from(vec![0, 1, 2, 3])),
        vectors(4, 2, &[2]),
    );
    fails(
        &embquant(
            &[
                "search",
                "--corpus",
                "q.parquet",
                "--queries",
                "qs.parquet",
                "--k",
                "3",
                "-o",
                "r.parquet",
            ],
            p,
        ),
        &["row 2", "NULL"],
    );
    fails(
        &embquant(
            &[
                "recall",
                "--corpus",
                "c.parquet",
                "--queries",
                "qs.parquet",
                "--k",
                "3",
                "--configs",
                "int8",
                "--report",
                "rep",
            ],
            p,
        ),
        &["row 2", "NULL", "qs.parquet"],
    );
    fails(
        &embquant(
            &[
                "sql",
                "--table",
                "c=q.parquet",
                "--table",
                "qs=qs.parquet",
                "SELECT count(*) FROM tiered_search('c', 'qs', 3)",
            ],
            p,
        ),
        &["NULL"],
    );
}

#[test]
fn a_rabitq_recipe_without_a_rotation_is_refused_everywhere() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        &p.join("c.parquet"),
        Arc::new(Int64Array::from((0..64).collect::<Vec<i64>>())),
        vectors(64, 1, &[]),
    );
    ok(&embquant(
        &[
            "quantize",
            "c.parquet",
            "--column",
            "embedding",
            "--scheme",
            "rabitq",
            "--scheme",
            "int8",
            "-o",
            "q.parquet",
        ],
        p,
    ));
    // Rewrite the file with the rotation removed from the RaBitQ column's recipe.
    let f = File::open(p.join("q.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let schema = reader.schema().clone();
    let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
    let mut removed = false;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut m = f.metadata().clone();
            if let Some(r) = m.get("embquant").cloned() {
                let mut v: serde_json::Value = serde_json::from_str(&r).unwrap();
                if v["scheme"] == "rabitq" {
                    removed |= v.as_object_mut().unwrap().remove("rotation").is_some();
                    m.insert("embquant".into(), v.to_string());
                }
            }
            f.as_ref().clone().with_metadata(m)
        })
        .collect();
    assert!(removed, "the RaBitQ recipe recorded a rotation");
    let tampered = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let out = File::create(p.join("t.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(out, tampered.clone(), None).unwrap();
    for b in batches {
        w.write(&RecordBatch::try_new(tampered.clone(), b.columns().to_vec()).unwrap())
            .unwrap();
    }
    w.close().unwrap();
    write(
        &p.join("qs.parquet"),
        Arc::new(Int64Array::from(vec![0, 1])),
        vectors(2, 2, &[]),
    );
    let rule = "without a rotation";
    fails(
        &embquant(
            &[
                "search",
                "--corpus",
                "t.parquet",
                "--queries",
                "qs.parquet",
                "--tiers",
                "rabitq:4,int8",
                "--k",
                "3",
                "-o",
                "r.parquet",
            ],
            p,
        ),
        &[rule],
    );
    for q in [
        "SELECT count(*) FROM tiered_search('t', 'qs', 3, 'rabitq:4,int8')",
        "SELECT rabitq_inner_product([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], embedding_rq) FROM t",
    ] {
        fails(
            &embquant(
                &["sql", "--table", "t=t.parquet", "--table", "qs=qs.parquet", q],
                p,
            ),
            &[rule],
        );
    }
    // The untampered file works in all three.
    ok(&embquant(
        &[
            "search",
            "--corpus",
            "q.parquet",
            "--queries",
            "qs.parquet",
            "--tiers",
            "rabitq:4,int8",
            "--k",
            "3",
            "-o",
            "r.parquet",
        ],
        p,
    ));
}
