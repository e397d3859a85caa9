//! The streaming Parquet job: metadata, determinism, compaction, sampling, bad inputs and
//! interrupted runs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema};
use embquant::job::{self, CalibrateOptions, JobOptions, NoProgress, ReadOptions};
use embquant::metadata::{ColumnRecipe, FileMetadata, METADATA_KEY};
use embquant::{BinaryCodec, Calibration, Error, Int8Codec, RangeMethod, Stats, StatsOptions};
use embquant::{Int8Layout, Scheme};
use futures::StreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::reader::{FileReader, SerializedFileReader};

const DIM: usize = 24;

/// Deterministic vectors; `nulls` marks null rows; `nan_row` puts a NaN in that row.
fn batch(start: i64, rows: usize, nulls: bool, nan_row: Option<usize>) -> RecordBatch {
    let mut values = Vec::with_capacity(rows * DIM);
    for r in 0..rows {
        for d in 0..DIM {
            let x = ((start as usize + r) * 7919 + d * 104_729) % 10_007;
            values.push(x as f32 / 10_007.0 - 0.5 + d as f32 * 0.01);
        }
    }
    if let Some(r) = nan_row {
        values[r * DIM + 3] = f32::NAN;
    }
    let valid: Option<NullBuffer> =
        nulls.then(|| (0..rows).map(|r| (start as usize + r) % 13 != 5).collect());
    let item = Arc::new(Field::new_list_field(DataType::Float32, false));
    let emb = FixedSizeListArray::new(
        item,
        DIM as i32,
        Arc::new(Float32Array::from(values)),
        valid,
    );
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(start..start + rows as i64));
    let text: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|r| format!("row {}", start as usize + r)),
    ));
    RecordBatch::try_from_iter([
        ("id", ids),
        ("text", text),
        ("embedding", Arc::new(emb) as ArrayRef),
    ])
    .unwrap()
}

fn write(path: &Path, batches: &[RecordBatch]) {
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), batches[0].schema(), None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
}

fn footer(path: &Path) -> FileMetadata {
    let r = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    let kv = r
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .clone();
    let v = kv
        .iter()
        .find(|k| k.key == METADATA_KEY)
        .unwrap()
        .value
        .clone()
        .unwrap();
    FileMetadata::from_json(&v).unwrap()
}

fn inputs(dir: &Path, parts: &[(i64, usize)], nulls: bool) -> Vec<PathBuf> {
    parts
        .iter()
        .enumerate()
        .map(|(i, &(start, rows))| {
            let p = dir.join(format!("in-{i:02}.parquet"));
            write(&p, &[batch(start, rows, nulls, None)]);
            p
        })
        .collect()
}

fn strings(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("embquant-tmp"))
        .collect()
}

#[test]
fn quantized_file_keeps_columns_carries_metadata_and_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let ins = inputs(dir.path(), &[(0, 3000), (3000, 1234)], true);
    let files = job::discover(&strings(&ins)).unwrap();
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 4234);
    let rt = rt();
    let cal = rt
        .block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("embedding"),
            Arc::new(NoProgress),
        ))
        .unwrap();
    // Calibration over the files equals calibration over the concatenated data.
    let all = concat(&ins.iter().flat_map(|p| read(p)).collect::<Vec<_>>());
    let direct = Calibration::from_stats(
        &Stats::compute(all.column(2).as_ref(), &StatsOptions::default()).unwrap(),
        RangeMethod::MinMax,
    )
    .unwrap();
    assert_eq!(cal.fingerprint(), direct.fingerprint());

    let out = dir.path().join("out.parquet");
    let mut opts = JobOptions::new("embedding");
    opts.quantize.schemes = vec![Scheme::Int8, Scheme::Int4, Scheme::Binary, Scheme::F16];
    opts.row_group_rows = 1000;
    opts.read.batch_size = 700;
    let summary = rt
        .block_on(job::quantize(&files, &out, cal.clone(), &opts, &NoProgress))
        .unwrap();
    assert_eq!(summary.rows, 4234);
    assert_eq!(summary.files, vec![out.clone()]);
    assert!(leftovers(dir.path()).is_empty());

    let got = concat(&read(&out));
    assert_eq!(got.num_rows(), 4234);
    for name in ["id", "text", "embedding"] {
        assert_eq!(
            got.column_by_name(name).unwrap().as_ref(),
            all.column_by_name(name).unwrap().as_ref(),
            "{name}"
        );
    }
    // int8 codes (FixedSizeBinary layout) decode like the library's codec, nulls kept.
    let codec = Int8Codec::new(&cal);
    let codes = got.column_by_name("embedding_int8").unwrap();
    assert_eq!(codes.data_type(), &DataType::FixedSizeBinary(DIM as i32));
    assert_eq!(codes.null_count(), all.column(2).null_count());
    let dec = codec.decode(codes.as_ref()).unwrap();
    let lib = codec
        .decode(codec.encode(all.column(2).as_ref()).unwrap().array.as_ref())
        .unwrap();
    let (d, l) = (
        dec.values().as_primitive::<Float32Type>().values(),
        lib.values().as_primitive::<Float32Type>().values(),
    );
    for r in (0..all.num_rows()).filter(|&r| all.column(2).is_valid(r)) {
        assert!(
            d[r * DIM..(r + 1) * DIM] == l[r * DIM..(r + 1) * DIM],
            "row {r}"
        );
    }
    let bin = BinaryCodec::new(DIM)
        .encode(all.column(2).as_ref())
        .unwrap()
        .array;
    let got_bin = got.column_by_name("embedding_bin").unwrap();
    let (gb, lb) = (got_bin.as_fixed_size_binary(), bin.as_fixed_size_binary());
    for r in 0..all.num_rows() {
        assert_eq!(gb.is_valid(r), lb.is_valid(r));
        if lb.is_valid(r) {
            assert_eq!(gb.value(r), lb.value(r), "row {r}");
        }
    }

    // Field metadata: recipe and calibration; footer: the whole job.
    let schema = got.schema();
    let (recipe, fcal) = ColumnRecipe::from_field_metadata(
        schema.field_with_name("embedding_int8").unwrap().metadata(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(recipe.scheme, Scheme::Int8);
    assert_eq!(recipe.int8_layout, Some(Int8Layout::Binary));
    assert_eq!(fcal.unwrap().fingerprint(), cal.fingerprint());
    let meta = footer(&out);
    assert_eq!(meta.rows, 4234);
    assert_eq!(meta.calibration.fingerprint(), cal.fingerprint());
    assert_eq!(meta.lineage.inputs.len(), 2);
    assert_eq!(meta.lineage.inputs[1].rows, 1234);
    assert_eq!(meta.lineage.source_column, "embedding");
    assert_eq!(meta.columns.len(), 4);
    assert!(
        meta.columns.iter().all(|c| c.clipped == 0),
        "minmax on the same data never clips"
    );
    let groups = SerializedFileReader::new(File::open(&out).unwrap())
        .unwrap()
        .metadata()
        .num_row_groups();
    assert_eq!(groups, 5);
}

#[test]
fn rerun_is_byte_identical_and_compaction_splits_parts() {
    let dir = tempfile::tempdir().unwrap();
    let ins = inputs(
        dir.path(),
        &[(0, 500), (500, 700), (1200, 300), (1500, 900)],
        false,
    );
    let files = job::discover(&[dir.path().display().to_string()]).unwrap();
    assert_eq!(
        files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
        ins
    );
    let rt = rt();
    let cal = rt
        .block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("embedding"),
            Arc::new(NoProgress),
        ))
        .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("compacted");
    let mut opts = JobOptions::new("embedding");
    opts.target_file_rows = Some(1000);
    opts.quantize.drop_source = true;
    let s1 = rt
        .block_on(job::quantize(&files, &out, cal.clone(), &opts, &NoProgress))
        .unwrap();
    assert_eq!(s1.files.len(), 3);
    let bytes1: Vec<Vec<u8>> = s1.files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let rows: Vec<u64> = s1.files.iter().map(|p| footer(p).rows).collect();
    assert_eq!(rows, vec![1000, 1000, 400]);
    let firsts: Vec<u64> = s1
        .files
        .iter()
        .map(|p| footer(p).lineage.first_row)
        .collect();
    assert_eq!(firsts, vec![0, 1000, 2000]);
    let ids: Vec<i64> = s1
        .files
        .iter()
        .flat_map(|p| read(p))
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, (0..2400).collect::<Vec<_>>());
    assert!(
        read(&s1.files[0])[0].column_by_name("embedding").is_none(),
        "--drop-source"
    );
    // Same command again: byte-identical parts.
    let s2 = rt
        .block_on(job::quantize(&files, &out, cal, &opts, &NoProgress))
        .unwrap();
    let bytes2: Vec<Vec<u8>> = s2.files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(bytes1 == bytes2, "re-running gives byte-identical output");
    assert!(leftovers(out_dir.path()).is_empty());
}

#[test]
fn sampled_calibration_is_seeded_and_counts_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let ins = inputs(dir.path(), &[(0, 4000), (4000, 4000)], false);
    let files = job::discover(&strings(&ins)).unwrap();
    let rt = rt();
    let mut opts = CalibrateOptions::new("embedding");
    opts.sample_rows = Some(1500);
    opts.method = RangeMethod::Quantile { p: 0.99 }.into();
    let a = rt
        .block_on(job::calibrate(&files, &opts, Arc::new(NoProgress)))
        .unwrap();
    let b = rt
        .block_on(job::calibrate(&files, &opts, Arc::new(NoProgress)))
        .unwrap();
    assert_eq!(a.rows(), 1500);
    assert_eq!(a, b, "same seed, same calibration");
    opts.seed = 7;
    let c = rt
        .block_on(job::calibrate(&files, &opts, Arc::new(NoProgress)))
        .unwrap();
    assert_ne!(a.fingerprint(), c.fingerprint());
    let s = job::sample_indices(8000, 1500, 42);
    assert_eq!(s.len(), 1500);
    assert!(s.windows(2).all(|w| w[0] < w[1]) && *s.last().unwrap() < 8000);
    // Both files contribute.
    assert!(s.iter().any(|&r| r < 4000) && s.iter().any(|&r| r >= 4000));
}

#[test]
fn bad_inputs_name_file_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write(&good, &[batch(0, 100, false, None)]);
    let nan = dir.path().join("nan.parquet");
    write(
        &nan,
        &[
            batch(0, 1000, false, None),
            batch(1000, 1000, false, Some(517)),
        ],
    );
    let rt = rt();
    let files = job::discover(&[good.display().to_string()]).unwrap();
    let cal = rt
        .block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("embedding"),
            Arc::new(NoProgress),
        ))
        .unwrap();

    // NaN: file, column and the row counted from the file start.
    let nan_files = job::discover(&[nan.display().to_string()]).unwrap();
    let out = dir.path().join("out.parquet");
    let mut opts = JobOptions::new("embedding");
    opts.read.batch_size = 300;
    let e = rt
        .block_on(job::quantize(
            &nan_files,
            &out,
            cal.clone(),
            &opts,
            &NoProgress,
        ))
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("nan.parquet") && msg.contains("\"embedding\"") && msg.contains("row 1517"),
        "{msg}"
    );
    assert!(
        !out.exists() && leftovers(dir.path()).is_empty(),
        "nothing left after an error"
    );
    let e = rt
        .block_on(job::calibrate(
            &nan_files,
            &CalibrateOptions::new("embedding"),
            Arc::new(NoProgress),
        ))
        .unwrap_err();
    assert!(e.to_string().contains("row 1517"), "{e}");
    // A sample that includes the bad row still names it by its row in the file.
    let mut sampled = CalibrateOptions::new("embedding");
    sampled.sample_rows = Some(1999);
    sampled.read.batch_size = 128;
    let sample = job::sample_indices(2000, 1999, sampled.seed);
    if sample.contains(&1517) {
        let e = rt
            .block_on(job::calibrate(&nan_files, &sampled, Arc::new(NoProgress)))
            .unwrap_err();
        assert!(e.to_string().contains("row 1517"), "{e}");
    }

    // Missing column and non-vector column.
    let e = rt
        .block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("nope"),
            Arc::new(NoProgress),
        ))
        .unwrap_err();
    assert!(
        e.to_string().contains("good.parquet") && e.to_string().contains("no column \"nope\""),
        "{e}"
    );
    let e = rt
        .block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("text"),
            Arc::new(NoProgress),
        ))
        .unwrap_err();
    assert!(e.to_string().contains("unsupported vector type"), "{e}");

    // Not Parquet, truncated Parquet, missing path.
    let junk = dir.path().join("junk.parquet");
    std::fs::write(&junk, b"this is not parquet").unwrap();
    let e = job::discover(&[junk.display().to_string()]).unwrap_err();
    assert!(
        e.to_string().contains("junk.parquet") && e.to_string().contains("Parquet"),
        "{e}"
    );
    let trunc = dir.path().join("trunc.parquet");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    assert!(job::discover(&[trunc.display().to_string()])
        .unwrap_err()
        .to_string()
        .contains("trunc.parquet"));
    assert!(job::discover(&["/no/such/file.parquet".into()])
        .is_err_and(|e| matches!(e.kind(), embquant::Error::Io { .. })));

    // Calibration of another dimension.
    let other = Calibration::from_stats(
        &Stats::compute(
            &embquant::truncate(
                batch(0, 10, false, None).column(2).as_ref(),
                &embquant::MatryoshkaOptions::unnormalized(8),
            )
            .unwrap(),
            &StatsOptions::default(),
        )
        .unwrap(),
        RangeMethod::MinMax,
    )
    .unwrap();
    let e = rt
        .block_on(job::quantize(
            &files,
            &out,
            other,
            &JobOptions::new("embedding"),
            &NoProgress,
        ))
        .unwrap_err();
    assert!(
        matches!(&e, Error::InFile { error, .. } if matches!(**error, Error::DimensionMismatch { .. })),
        "{e}"
    );
    assert!(!out.exists());

    // The output may not be an input.
    let e = rt
        .block_on(job::quantize(
            &files,
            &good,
            cal,
            &JobOptions::new("embedding"),
            &NoProgress,
        ))
        .unwrap_err();
    assert!(matches!(e, Error::OutputIsInput { .. }), "{e}");
    assert!(e.to_string().contains("would replace the input"), "{e}");
    assert_eq!(
        std::fs::read(&good).unwrap(),
        bytes,
        "inputs are never modified"
    );
}

#[test]
fn an_interrupted_run_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ins = inputs(dir.path(), &[(0, 60_000), (60_000, 60_000)], false);
    let files = job::discover(&strings(&ins)).unwrap();
    let rt = rt();
    let cal = rt
        .block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("embedding"),
            Arc::new(NoProgress),
        ))
        .unwrap();
    let out = dir.path().join("out.parquet");
    let mut opts = JobOptions::new("embedding");
    opts.read.batch_size = 256;
    opts.row_group_rows = 1024;
    let started = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_millis(30),
            job::quantize(&files, &out, cal, &opts, &NoProgress),
        )
        .await
    });
    assert!(
        started.is_err(),
        "the job should still be running after 30 ms"
    );
    // Give the reader and writer threads time to notice.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!out.exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "temporary files left: {:?}",
        leftovers(dir.path())
    );
}

#[test]
fn quantize_stream_keeps_order_with_bounded_in_flight() {
    let b0 = batch(0, 10, false, None);
    let stats = Stats::compute(b0.column(2).as_ref(), &StatsOptions::default()).unwrap();
    let cal = Calibration::from_stats(&stats, RangeMethod::MinMax).unwrap();
    let q = Arc::new(
        embquant::Quantizer::try_new(
            b0.schema(),
            cal,
            embquant::QuantizeOptions::new("embedding"),
        )
        .unwrap(),
    );
    let input: Vec<_> = (0..50)
        .map(|i| Ok(batch(i * 10, 10, false, (i == 40).then_some(4))))
        .collect();
    let rt = rt();
    let out: Vec<_> =
        rt.block_on(embquant::quantize_stream(futures::stream::iter(input), q, 3).collect());
    for (i, r) in out.iter().take(40).enumerate() {
        let b = &r.as_ref().unwrap().batch;
        assert_eq!(
            b.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .value(0),
            i as i64 * 10
        );
    }
    // Rows in errors count from the stream start.
    let e = out[40].as_ref().unwrap_err();
    assert!(e.to_string().contains("row 404"), "{e}");
    let _ = Schema::empty();
}

#[test]
fn a_huge_row_group_is_split_across_readers_without_losing_order() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.parquet");
    // One 3,000-row row group, above a split threshold of 2,000 rows (the default,
    // 262,144, would need a file 100x larger to cross): two readers share it.
    const ROWS: usize = 3_000;
    let mut split = ReadOptions::default();
    split.split_rows = 2_000;
    split.batch_size = 256;
    write(&big, &[batch(0, ROWS, true, None)]);
    let files = job::discover(&[big.display().to_string()]).unwrap();
    assert_eq!(files[0].row_groups, vec![ROWS as u64]);
    let rt = rt();
    let mut copts = CalibrateOptions::new("embedding");
    copts.read = split;
    let cal = rt
        .block_on(job::calibrate(&files, &copts, Arc::new(NoProgress)))
        .unwrap();
    assert_eq!(
        cal.rows(),
        ROWS as u64 - (0..ROWS).filter(|r| r % 13 == 5).count() as u64
    );
    let out = dir.path().join("out.parquet");
    let mut jopts = JobOptions::new("embedding");
    jopts.read = split;
    let summary = rt
        .block_on(job::quantize(&files, &out, cal, &jopts, &NoProgress))
        .unwrap();
    assert_eq!(summary.rows, ROWS as u64);
    let ids: Vec<i64> = read(&out)
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert!(
        ids == (0..ROWS as i64).collect::<Vec<_>>(),
        "rows keep their order"
    );
    // A bad value in the second half is named by its row in the file.
    let bad = dir.path().join("bad.parquet");
    write(&bad, &[batch(0, ROWS, false, Some(2_800))]);
    let files = job::discover(&[bad.display().to_string()]).unwrap();
    let e = rt
        .block_on(job::calibrate(&files, &copts, Arc::new(NoProgress)))
        .unwrap_err();
    assert!(e.to_string().contains("row 2800"), "{e}");
}
