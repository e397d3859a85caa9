//! `embquant drift` end to end: quantize the bundled MiniLM slice, then compare the same
//! data (no alarm) and a copy shifted on purpose (advice, moved dimensions first, the
//! `--max-clip-rate` check fails) with the calibration stored in the quantized file.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use embquant::arrow_array::cast::AsArray;
use embquant::arrow_array::types::Float32Type;
use embquant::arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch};
use embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use embquant::parquet::arrow::ArrowWriter;

use common::{embquant, text};

/// Dimensions moved on purpose in the shifted copy.
const MOVED: std::ops::Range<usize> = 0..10;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/minilm-wordnet-5k.parquet")
}

/// Writes a copy of the bundled sample with `f(row, dim, value)` applied to the embeddings.
fn write_modified(out: &Path, f: impl Fn(usize, usize, f32) -> f32) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(sample()).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut writer: Option<ArrowWriter<File>> = None;
    let mut row0 = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let idx = batch.schema().index_of("embedding").unwrap();
        let list = batch.column(idx).as_fixed_size_list();
        let dim = list.value_length() as usize;
        let values = list.values().as_primitive::<Float32Type>().values();
        let moved: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(i, &x)| f(row0 + i / dim, i % dim, x))
            .collect();
        let field = match list.data_type() {
            embquant::arrow_schema::DataType::FixedSizeList(f, _) => f.clone(),
            other => panic!("{other}"),
        };
        let new = FixedSizeListArray::new(
            field,
            dim as i32,
            Arc::new(Float32Array::from(moved)),
            list.logical_nulls(),
        );
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns[idx] = Arc::new(new);
        let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
        row0 += batch.num_rows();
        writer
            .get_or_insert_with(|| {
                ArrowWriter::try_new(File::create(out).unwrap(), batch.schema(), None).unwrap()
            })
            .write(&batch)
            .unwrap();
    }
    writer.unwrap().close().unwrap();
}

/// Quantizes the sample (int8, minmax calibration over all rows) into `dir/ref.parquet`.
fn reference(dir: &Path) {
    let data = sample().display().to_string();
    let q = embquant(
        &[
            "quantize",
            &data,
            "--scheme",
            "int8",
            "-o",
            "ref.parquet",
            "--quiet",
        ],
        dir,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn drift_of_the_calibration_data_is_no_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    reference(p);
    let data = sample().display().to_string();
    let out = embquant(
        &[
            "drift",
            "--reference",
            "ref.parquet",
            &data,
            "--max-clip-rate",
            "0.01",
            "--json",
            "--quiet",
        ],
        p,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = json(&out);
    assert_eq!(r["rows"], 5000);
    assert_eq!(r["dim"], 384);
    assert_eq!(r["clipped"], 0);
    assert_eq!(r["clip_rate"], 0.0);
    assert_eq!(r["recalibrate"], false, "{}", r["reasons"]);
    assert_eq!(r["check"]["passed"], true);
    assert_eq!(
        r["degenerate_dims"],
        serde_json::json!([127, 223, 319]),
        "MiniLM's dead dimensions"
    );
    assert!(r["max_mean_shift"].as_f64().unwrap() < 1e-4);
    // The fingerprint is the one stored in the reference.
    let i = embquant(&["inspect", "ref.parquet", "--json"], p);
    assert_eq!(
        r["reference_fingerprint"],
        json(&i)["embquant"]["calibration"]["fingerprint"]
    );

    // The readable summary says so too.
    let out = embquant(
        &["drift", "--reference", "ref.parquet", &data, "--quiet"],
        p,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for needle in [
        "drift of 5000 rows",
        "clip rate 0.0000%",
        "field metadata of \"embedding_int8\"",
        "top 10 moved dimension(s)",
        "advice: the calibration still fits",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in:\n{s}");
    }
}

#[test]
fn drift_of_shifted_data_advises_recalibration_and_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    reference(p);
    // Spread every dimension by 1.5 and move ten of them by 0.15 (about 3 standard
    // deviations of a MiniLM dimension, 0.4 of its calibrated range).
    write_modified(&p.join("shifted.parquet"), |_, d, x| {
        1.5 * x + if MOVED.contains(&d) { 0.15 } else { 0.0 }
    });
    let out = embquant(
        &[
            "drift",
            "--reference",
            "ref.parquet",
            "shifted.parquet",
            "--json",
            "--quiet",
        ],
        p,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = json(&out);
    assert_eq!(r["recalibrate"], true);
    let mut top: Vec<u64> = r["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dim"].as_u64().unwrap())
        .collect();
    top.sort();
    assert_eq!(
        top,
        MOVED.map(|d| d as u64).collect::<Vec<_>>(),
        "{}",
        r["top"]
    );
    let clip = r["clip_rate"].as_f64().unwrap();
    assert!(clip > 0.01, "clip rate {clip}");
    for d in MOVED {
        let m = r["dims"][d]["mean_shift"].as_f64().unwrap();
        assert!(m > 0.2, "dimension {d}: mean shift {m}");
        let s = r["dims"][d]["std_ratio"].as_f64().unwrap();
        assert!((s - 1.5).abs() < 1e-3, "dimension {d}: std ratio {s}");
    }
    // Degenerate dimensions never count as clipped, however far they moved.
    assert_eq!(r["dims"][127]["clip_rate"], 0.0);

    // The check fails: non-zero exit, a message naming it, the report still printed.
    let out = embquant(
        &[
            "drift",
            "--reference",
            "ref.parquet",
            "shifted.parquet",
            "--max-clip-rate",
            "0.01",
            "--quiet",
        ],
        p,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("check --max-clip-rate failed"), "{err}");
    let s = text(&out.stdout);
    println!("{s}");
    for needle in ["advice: recalibrate", "moved their mean", "FAILED"] {
        assert!(s.contains(needle), "missing {needle:?} in:\n{s}");
    }
    // The first row of the table is one of the moved dimensions.
    let first = s
        .lines()
        .skip_while(|l| !l.contains("mean shift  "))
        .nth(1)
        .unwrap();
    let dim: usize = first.split_whitespace().next().unwrap().parse().unwrap();
    assert!(MOVED.contains(&dim), "{first}");
}

#[test]
fn drift_errors_name_the_file_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    reference(p);
    let data = sample().display().to_string();
    // A reference without a calibration.
    let out = embquant(&["drift", "--reference", &data, &data, "--quiet"], p);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("minilm-wordnet-5k.parquet") && err.contains("embquant.calibration"),
        "{err}"
    );
    // A NaN in the new data.
    write_modified(&p.join("nan.parquet"), |r, d, x| {
        if (r, d) == (4321, 17) {
            f32::NAN
        } else {
            x
        }
    });
    let out = embquant(
        &[
            "drift",
            "--reference",
            "ref.parquet",
            "nan.parquet",
            "--quiet",
        ],
        p,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for needle in [
        "nan.parquet",
        "column \"embedding\"",
        "row 4321",
        "dimension 17",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in: {err}");
    }
    // Another source column than the reference's.
    let out = embquant(
        &[
            "drift",
            "--reference",
            "ref.parquet",
            &data,
            "--column",
            "text",
            "--quiet",
        ],
        p,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("made from column(s) [\"embedding\"]"), "{err}");
}

#[test]
fn drift_applies_the_reference_matryoshka_prefix_and_checks_the_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = sample().display().to_string();
    // Codes of re-normalized 128-dimensional prefixes: drift compares prefixes too.
    let q = embquant(
        &[
            "quantize",
            &data,
            "--scheme",
            "int8",
            "--dims",
            "128",
            "-o",
            "m.parquet",
            "-q",
        ],
        p,
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    let out = embquant(
        &["drift", "--reference", "m.parquet", &data, "--json", "-q"],
        p,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = json(&out);
    assert_eq!(r["dim"], 128);
    assert_eq!(r["clipped"], 0);
    assert_eq!(r["recalibrate"], false, "{}", r["reasons"]);

    // New data of another dimension than the calibration.
    let g = embquant(
        &[
            "gen-synthetic",
            "--rows",
            "100",
            "--dims",
            "32",
            "-o",
            "small.parquet",
        ],
        p,
    );
    assert!(g.status.success(), "{}", text(&g.stderr));
    reference(p);
    let out = embquant(
        &["drift", "--reference", "ref.parquet", "small.parquet", "-q"],
        p,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for needle in [
        "small.parquet",
        "column \"embedding\"",
        "dimension mismatch",
        "from row 0",
        "has dimension 32, expected 384",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in: {err}");
    }
}
