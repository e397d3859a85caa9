//! The recall report read from Parquet block by block (floats never in memory, codes within
//! a budget) gives exactly the report computed from the vectors in memory.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, FixedSizeListArray, Float32Array, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema};
use embquant::io::DenseColumn;
use embquant::job::discover;
use embquant::recall::{run, run_source, Queries, RecallOptions, Target};
use embquant::recall::{ParquetSource, ScanRows, VectorSource};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

/// `rows x dim` unit vectors around 16 centres (so the ranking is not trivial).
fn data(rows: usize, dim: usize) -> Vec<f32> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 20001) as f32 / 10000.0 - 1.0
    };
    let centres: Vec<f32> = (0..16 * dim).map(|_| next()).collect();
    let mut v = Vec::with_capacity(rows * dim);
    for r in 0..rows {
        let c = &centres[(r % 16) * dim..(r % 16 + 1) * dim];
        let row: Vec<f32> = c.iter().map(|x| x + 0.6 * next()).collect();
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.extend(row.iter().map(|x| x / n));
    }
    v
}

fn write(path: &Path, values: &[f32], dim: usize, valid: &[bool], group_rows: usize) {
    let field = Arc::new(Field::new_list_field(DataType::Float32, false));
    let col = FixedSizeListArray::new(
        field.clone(),
        dim as i32,
        Arc::new(Float32Array::from(values.to_vec())),
        Some(NullBuffer::from(valid.to_vec())),
    );
    let schema = Arc::new(Schema::new(vec![Field::new(
        "embedding",
        col.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The report without what depends on timing.
fn numbers(r: &embquant::recall::RecallReport) -> Value {
    fn strip(v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "seconds" | "queries_per_s" | "cached"))
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(strip).collect()),
            v => v,
        }
    }
    strip(serde_json::to_value(r).unwrap())
}

#[test]
fn a_report_streamed_from_parquet_equals_the_in_memory_one_at_any_code_budget() {
    // More rows than one pass block (32,768), two files: null rows in the first (read
    // through Arrow), none in the second (decoded straight from the column reader), one
    // block running across both.
    let (dim, rows, split) = (16, 40_000, 23_000);
    let mut values = data(rows, dim);
    let valid: Vec<bool> = (0..rows).map(|r| r % 997 != 5 || r >= split).collect();
    for (r, ok) in valid.iter().enumerate() {
        if !ok {
            values[r * dim..(r + 1) * dim].fill(0.0);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("a.parquet"),
        &values[..split * dim],
        dim,
        &valid[..split],
        5000,
    );
    write(
        &dir.path().join("b.parquet"),
        &values[split * dim..],
        dim,
        &valid[split..],
        7000,
    );
    let files = discover(&[dir.path().display().to_string()]).unwrap();
    assert_eq!(DenseColumn::of(&files[0], "embedding").unwrap(), None);
    assert_eq!(
        DenseColumn::of(&files[1], "embedding").unwrap(),
        Some(DenseColumn { leaf: 0, dim })
    );
    let source = ParquetSource::open(files, "embedding").unwrap();
    assert_eq!((source.rows(), source.dim()), (rows, dim));
    assert_eq!(source.valid().unwrap(), &valid[..]);
    // Queries sampled from the corpus (each excludes its own row), read through the float
    // tier's row reader.
    let picks: Vec<u32> = (0..40u32)
        .map(|i| i * 997 + 11)
        .filter(|&r| valid[r as usize])
        .collect();
    let queries = Queries {
        values: source.floats(None).fetch(&picks).unwrap(),
        exclude: Some(picks.clone()),
    };
    for (q, &r) in picks.iter().enumerate() {
        assert_eq!(
            &queries.values[q * dim..(q + 1) * dim],
            &values[r as usize * dim..(r as usize + 1) * dim]
        );
    }
    let mut options = RecallOptions::default();
    options.ks = vec![1, 10];
    options.dims = vec![8];
    options.target = Some("0.9@10".parse::<Target>().unwrap());
    options.gates = vec![
        "binary:4,int8=0.5@10".parse().unwrap(),
        "f16@8=0.5@1".parse().unwrap(),
    ];
    options.calibration_rows = Some(3000);
    let in_memory = run(&values, dim, Some(&valid), &queries, &options, None).unwrap();
    let source: Arc<dyn VectorSource> = Arc::new(source);
    let streamed = run_source(source.clone(), &queries, &options, None).unwrap();
    assert_eq!(numbers(&streamed), numbers(&in_memory));
    // A budget below one scheme's codes: every chain re-encodes what it reads, and the
    // numbers do not change.
    options.code_budget = 1;
    let tight = run_source(source, &queries, &options, None).unwrap();
    assert_eq!(numbers(&tight), numbers(&in_memory));
    // The report measured something real: every default configuration on both variants,
    // the gates, the tuning and the calibration check.
    assert!(in_memory.configs.len() > 20);
    assert!(in_memory.config("int8@8").is_some());
    assert_eq!(in_memory.gates.len(), 2);
    assert!(in_memory.recommendation.is_some());
    assert!(in_memory.calibration_check.is_some());
    // The float tier reranks exactly: more candidates never lose recall.
    let at = |c: &str| in_memory.config(c).unwrap().recall[&10].mean;
    assert!(at("binary:16,float") > at("binary:1,float"));
    assert!(at("binary:16,float") >= at("binary:16,int8"));
}

#[test]
fn a_non_finite_value_in_a_dense_file_is_named_by_file_column_and_row() {
    let (dim, rows) = (8, 40_000);
    let mut values = data(rows, dim);
    values[35_001 * dim + 3] = f32::NAN;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.parquet");
    write(&path, &values, dim, &vec![true; rows], 10_000);
    let files = discover(&[path.display().to_string()]).unwrap();
    assert!(DenseColumn::of(&files[0], "embedding").unwrap().is_some());
    let err = ParquetSource::open(files, "embedding")
        .err()
        .expect("a NaN is an error")
        .to_string();
    assert!(err.contains("nan.parquet"), "{err}");
    assert!(err.contains("\"embedding\""), "{err}");
    assert!(err.contains("row 35001, dimension 3"), "{err}");
}
