//! Corpus files whose codes do not match their recipes, or whose recipes carry numbers no
//! writer produces, are refused by the search loader with a typed error naming the file,
//! the column and (for bad values) the row, instead of giving garbage rankings, a wrong
//! certificate, an abort or a hang.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embquant::arrow_array::{
    Array, ArrayRef, FixedSizeBinaryArray, FixedSizeListArray, RecordBatch,
};
use embquant::arrow_schema::{DataType, Field, Schema};
use embquant::job::{self, CalibrateOptions, JobOptions, NoProgress};
use embquant::search::{load_corpus, TierSpec};
use embquant::{Error, Scheme};

const ROWS: usize = 300;
const DIM: usize = 24;

/// `dir/q.parquet`: 300 rows of 24-d vectors quantized to int8 and 4-bit RaBitQ (columns
/// `embedding_rq` and `embedding_rq4`), in row groups of 100.
fn quantized(dir: &Path) -> std::path::PathBuf {
    let mut state = 11u64;
    let values: Vec<f32> = (0..ROWS * DIM)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    let emb: ArrayRef = Arc::new(FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        DIM as i32,
        Arc::new(embquant::arrow_array::Float32Array::from(values)),
        None,
    ));
    let batch = RecordBatch::try_from_iter([("embedding", emb)]).unwrap();
    let floats = dir.join("floats.parquet");
    let mut w = embquant::parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&floats).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let files = job::discover(&[floats.display().to_string()]).unwrap();
    let cal = rt
        .block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("embedding"),
            Arc::new(NoProgress),
        ))
        .unwrap();
    let mut opts = JobOptions::new("embedding");
    opts.quantize.schemes = vec![Scheme::Int8, Scheme::Rabitq];
    opts.quantize.rabitq_bits = 4;
    opts.row_group_rows = 100;
    let out = dir.join("q.parquet");
    rt.block_on(job::quantize(&files, &out, cal, &opts, &NoProgress))
        .unwrap();
    out
}

/// Rewrites `src` as `dst` with the recipe of `column` edited by `recipe` and its code
/// bytes by `codes`.
fn rewrite(
    src: &Path,
    dst: &Path,
    column: &str,
    recipe: &dyn Fn(&mut serde_json::Value),
    codes: &dyn Fn(&mut [u8]),
) {
    let reader = embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(src).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    let i = schema.index_of(column).unwrap();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let f = f.as_ref().clone();
            if j != i {
                return f;
            }
            let mut m = f.metadata().clone();
            let mut r: serde_json::Value =
                serde_json::from_str(&m[embquant::METADATA_KEY]).unwrap();
            recipe(&mut r);
            m.insert(embquant::METADATA_KEY.into(), r.to_string());
            f.with_metadata(m)
        })
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let mut w = embquant::parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(dst).unwrap(),
        schema.clone(),
        None,
    )
    .unwrap();
    let mut first = 0usize;
    for b in batches {
        let mut cols = b.columns().to_vec();
        let a = cols[i]
            .as_any()
            .downcast_ref::<FixedSizeBinaryArray>()
            .unwrap();
        let width = a.value_length() as usize;
        // The whole file's bytes, so `codes` addresses rows of the file.
        let mut all = vec![0u8; ROWS * width];
        let at = first * width;
        all[at..at + a.len() * width].copy_from_slice(a.value_data());
        codes(&mut all);
        let mine = all[at..at + a.len() * width].to_vec();
        cols[i] = Arc::new(FixedSizeBinaryArray::new(
            width as i32,
            mine.into(),
            a.logical_nulls(),
        ));
        first += b.num_rows();
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();
}

fn load(path: &Path, chain: &str) -> embquant::Result<embquant::search::LoadedCorpus> {
    let files = job::discover(&[path.display().to_string()]).unwrap();
    load_corpus(
        &files,
        "embedding",
        None,
        &TierSpec::parse_chain(chain).unwrap(),
    )
}

const CHAIN: &str = "rabitq1:bound,rabitq4:bound,int8";

#[test]
fn extra_bits_of_another_rotation_are_refused_naming_both_columns() {
    let d = tempfile::tempdir().unwrap();
    let q = quantized(d.path());
    load(&q, CHAIN).unwrap();
    let none = |_: &mut [u8]| {};
    for (edit, field) in [
        (
            &(|r: &mut serde_json::Value| r["rotation"]["seed"] = 42.into())
                as &dyn Fn(&mut serde_json::Value),
            "rotation.seed",
        ),
        (
            &|r: &mut serde_json::Value| r["rotation"]["rounds"] = 4.into(),
            "rotation.rounds",
        ),
        (
            &|r: &mut serde_json::Value| r["sign_column"] = "other_rq".into(),
            "sign_column",
        ),
    ] {
        let bad = d.path().join("bad.parquet");
        rewrite(&q, &bad, "embedding_rq4", edit, &none);
        let e = load(&bad, CHAIN).err().unwrap();
        let text = e.to_string();
        match e.kind() {
            Error::RecipeMismatch {
                column,
                other,
                field: f,
                ..
            } => assert_eq!(
                (column.as_str(), other.as_str(), *f),
                ("embedding_rq4", "embedding_rq", field)
            ),
            k => panic!("expected RecipeMismatch, got {k}"),
        }
        assert!(text.contains("bad.parquet"), "{text}");
        // The 1-bit tier alone does not read the extra bits.
        load(&bad, "rabitq:4,int8").unwrap();
    }
}

#[test]
fn crafted_rounds_are_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let q = quantized(d.path());
    for column in ["embedding_rq", "embedding_rq4"] {
        for rounds in [1_000_000u64, 1_000_000_000, u32::MAX as u64] {
            let bad = d.path().join("rounds.parquet");
            rewrite(
                &q,
                &bad,
                column,
                &|r| r["rotation"]["rounds"] = rounds.into(),
                &|_| {},
            );
            let t = Instant::now();
            let e = load(&bad, CHAIN).err().unwrap();
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "took {:?}",
                t.elapsed()
            );
            assert!(
                matches!(
                    e.kind(),
                    Error::RecipeOutOfRange {
                        field: "rotation.rounds",
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().contains(&rounds.to_string()), "{e}");
        }
    }
}

#[test]
fn non_finite_factors_name_file_column_and_row() {
    let d = tempfile::tempdir().unwrap();
    let q = quantized(d.path());
    // 24 dims pad to 32 bits: sign codes of 4 bytes, |r|, ip; extra codes of 3 x 4 bytes,
    // scale, ip_ex. Row 217 sits in the third row group.
    for (column, at, width, field) in [
        ("embedding_rq", 4, 12, "norm"),
        ("embedding_rq", 8, 12, "ip"),
        ("embedding_rq4", 12, 20, "scale"),
        ("embedding_rq4", 16, 20, "ip_ex"),
    ] {
        let bad = d.path().join("nan.parquet");
        let put = move |b: &mut [u8]| {
            let o = 217 * width + at;
            b[o..o + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        };
        rewrite(&q, &bad, column, &|_| {}, &put);
        let e = load(&bad, CHAIN).err().unwrap();
        match &e {
            Error::InFile {
                file,
                column: c,
                error,
            } => {
                assert!(file.ends_with("nan.parquet"), "{e}");
                assert_eq!(c, column, "{e}");
                assert!(
                    matches!(&**error, Error::BadCode { row: 217, field: f, .. } if f == field),
                    "{e}"
                );
            }
            e => panic!("expected an error naming the file, got {e}"),
        }
    }
}

#[test]
fn k_above_the_corpus_is_refused_with_the_maximum() {
    let d = tempfile::tempdir().unwrap();
    let q = quantized(d.path());
    let loaded = load(&q, CHAIN).unwrap();
    let chain = TierSpec::parse_chain(CHAIN).unwrap();
    let query = vec![0.1f32; DIM];
    let (_, reports) = loaded.corpus.search_reported(&query, ROWS, &chain).unwrap();
    assert_eq!(reports.len(), 1);
    let e = loaded
        .corpus
        .search_reported(&query, 100_000_000, &chain)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::KOutOfRange {
                k: 100_000_000,
                max: ROWS
            }
        ),
        "{e}"
    );
}
