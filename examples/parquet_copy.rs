//! The I/O floor of a Parquet -> Parquet job: read every batch of a file with arrow-rs and
//! write it back (zstd, no dictionary, like `embquant quantize`), nothing else.
//!
//! `cargo run --release --example parquet_copy -- IN.parquet OUT.parquet [batch_rows]`

use std::fs::File;

use arrow_array::RecordBatchReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: parquet_copy IN.parquet OUT.parquet [batch_rows]".into());
    }
    let batch_rows = args.get(3).map_or(Ok(8192), |s| s.parse())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&args[1])?)?
        .with_batch_size(batch_rows)
        .build()?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(65_536))
        .build();
    let mut writer = ArrowWriter::try_new(File::create(&args[2])?, reader.schema(), Some(props))?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch?;
        rows += batch.num_rows();
        writer.write(&batch)?;
    }
    writer.close()?;
    println!("copied {rows} rows");
    Ok(())
}
