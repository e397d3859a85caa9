//! Inputs in an object store: the same job over `memory://` URLs (read through read-ahead
//! windows much smaller than a column chunk) gives the same calibration and the same
//! quantized columns as over the local files. The real-S3 test is `cli/tests/s3.rs`.
#![cfg(feature = "cloud")]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field};
use embquant::io::object::{register_store, ObjectStoreStore};
use embquant::job::{self, CalibrateOptions, JobOptions, NoProgress};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const DIM: usize = 64;

fn write(path: &Path, start: usize, rows: usize) {
    let values: Vec<f32> = (0..rows * DIM)
        .map(|i| (((start * DIM + i) * 7919) % 10_007) as f32 / 10_007.0 - 0.5)
        .collect();
    let item = Arc::new(Field::new_list_field(DataType::Float32, false));
    let emb = FixedSizeListArray::new(item, DIM as i32, Arc::new(Float32Array::from(values)), None);
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        start as i64..(start + rows) as i64,
    ));
    let batch =
        RecordBatch::try_from_iter([("id", ids), ("emb", Arc::new(emb) as ArrayRef)]).unwrap();
    // Small pages, two row groups: many ranged reads per column chunk.
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows / 2 + 1))
        .set_data_page_size_limit(16 << 10)
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn columns(path: &Path) -> Vec<ArrayRef> {
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
    let all = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    all.columns().to_vec()
}

#[test]
fn a_job_over_object_store_urls_equals_the_job_over_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("in");
    std::fs::create_dir(&local).unwrap();
    let store = register_store(
        ObjectStoreStore::new(
            Arc::new(embquant::io::object::object_store::memory::InMemory::new()),
            "memory://jobtest",
        )
        // 64 KiB windows against ~1 MB column chunks: reads cross windows constantly.
        .with_window(64 << 10),
    )
    .unwrap();
    for (i, (start, rows)) in [(0, 3000), (3000, 5000)].into_iter().enumerate() {
        let p = local.join(format!("part-{i}.parquet"));
        write(&p, start, rows);
        store
            .upload(&p, &format!("memory://jobtest/emb/date=1/part-{i}.parquet"))
            .unwrap();
    }
    // A writer's scratch next to the data is not an input.
    store
        .upload(
            &local.join("part-0.parquet"),
            "memory://jobtest/emb/_temporary/part-9.parquet",
        )
        .unwrap();

    let remote = job::discover(&["memory://jobtest/emb".to_string()]).unwrap();
    let names: Vec<String> = remote
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "memory://jobtest/emb/date=1/part-0.parquet",
            "memory://jobtest/emb/date=1/part-1.parquet"
        ]
    );
    let globbed = job::discover(&["memory://jobtest/emb/*/part-1.parquet".to_string()]).unwrap();
    assert_eq!(globbed.len(), 1);
    assert_eq!(globbed[0].rows, 5000);
    let locals = job::discover(&[local.display().to_string()]).unwrap();
    assert_eq!(
        remote.iter().map(|f| (f.bytes, f.rows)).collect::<Vec<_>>(),
        locals.iter().map(|f| (f.bytes, f.rows)).collect::<Vec<_>>()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = |files: &[embquant::io::InputFile], out: &Path| {
        let cal = rt
            .block_on(job::calibrate(
                files,
                &CalibrateOptions::new("emb"),
                Arc::new(NoProgress),
            ))
            .unwrap();
        let mut opts = JobOptions::new("emb");
        opts.quantize.schemes = vec!["int8".parse().unwrap(), "binary".parse().unwrap()];
        rt.block_on(job::quantize(files, out, cal.clone(), &opts, &NoProgress))
            .unwrap();
        cal
    };
    let (a, b) = (
        dir.path().join("local.parquet"),
        dir.path().join("remote.parquet"),
    );
    let cal_local = run(&locals, &a);
    let cal_remote = run(&remote, &b);
    assert_eq!(cal_local.mean(), cal_remote.mean());
    assert_eq!(cal_local.fingerprint(), cal_remote.fingerprint());
    assert_eq!(columns(&a), columns(&b), "same rows, same codes");

    // A missing object names its URL.
    let e = job::discover(&["memory://jobtest/nothing/here".to_string()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory://jobtest/nothing/here"), "{e}");
}
