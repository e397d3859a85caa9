//! Which Parquet layout for int8 codes? Writes the same int8 codes of N x D vectors as
//! `FixedSizeList<Int8, D>` (a Parquet LIST: one repetition/definition level per element)
//! and as `FixedSizeBinary(D)` (one fixed-length value per row), zstd and uncompressed, and
//! times arrow-rs reading each back (best of 3, one thread, page cache warm).
//!
//! `cargo run --release --example int8_layout -- [rows] [dims] [dir]`

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, FixedSizeBinaryArray, FixedSizeListArray, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field};
use embquant::{Calibration, Int8Codec, RangeMethod, Stats, StatsOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let dims: usize = args.get(2).map_or(Ok(384), |s| s.parse())?;
    let dir = PathBuf::from(
        args.get(3)
            .cloned()
            .unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    // Codes of realistic vectors (so compression sees real entropy).
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let values: Vec<f32> = (0..rows * dims)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2 + (i % dims) as f32 * 1e-4
        })
        .collect();
    let item = Arc::new(Field::new_list_field(DataType::Float32, false));
    let vectors = FixedSizeListArray::new(
        item,
        dims as i32,
        Arc::new(Float32Array::from(values)),
        None,
    );
    let cal = Calibration::from_stats(
        &Stats::compute(&vectors, &StatsOptions::moments_only())?,
        RangeMethod::MinMax,
    )?;
    let list = Int8Codec::new(&cal).encode(&vectors)?.array;
    let l = list.as_fixed_size_list();
    let fsb: ArrayRef = Arc::new(FixedSizeBinaryArray::new(
        dims as i32,
        l.values().to_data().buffers()[0].clone(),
        None,
    ));
    println!("| layout | compression | file MB | arrow-rs read GB/s of codes (best of 3) |");
    println!("| --- | --- | ---: | ---: |");
    for (name, col) in [
        ("FixedSizeList<Int8>", list.clone()),
        ("FixedSizeBinary", fsb),
    ] {
        for (cname, comp) in [
            ("none", Compression::UNCOMPRESSED),
            ("zstd(3)", Compression::ZSTD(ZstdLevel::try_new(3)?)),
        ] {
            let path = dir.join(format!(
                "int8-layout-{}-{}.parquet",
                name.len(),
                cname.len()
            ));
            let batch = RecordBatch::try_from_iter([("codes", col.clone())])?;
            let props = WriterProperties::builder()
                .set_compression(comp)
                .set_dictionary_enabled(false)
                .set_max_row_group_row_count(Some(65_536))
                .build();
            let mut w = ArrowWriter::try_new(File::create(&path)?, batch.schema(), Some(props))?;
            for start in (0..rows).step_by(65_536) {
                w.write(&batch.slice(start, 65_536.min(rows - start)))?;
            }
            w.close()?;
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = Instant::now();
                let mut n = 0;
                for b in ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?
                    .with_batch_size(8192)
                    .build()?
                {
                    n += b?.num_rows();
                }
                assert_eq!(n, rows);
                best = best.min(t.elapsed().as_secs_f64());
            }
            let mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
            println!(
                "| {name} | {cname} | {mb:.1} | {:.2} |",
                (rows * dims) as f64 / best / 1e9
            );
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
