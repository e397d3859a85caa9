//! `embquant gen-synthetic`: unit-norm float32 vectors with per-dimension offsets and
//! spreads and a clustered structure, written streaming (bounded memory at any size).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use embquant::arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
use embquant::arrow_schema::{DataType, Field, Schema};
use embquant::parquet::arrow::ArrowWriter;
use embquant::parquet::basic::{Compression, ZstdLevel};
use embquant::parquet::file::properties::WriterProperties;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        ((0..4).map(|_| self.uniform()).sum::<f32>() - 2.0) * 1.732
    }
}

/// Writes `rows` x `dims` vectors (`id` int64, `embedding` FixedSizeList<Float32, dims>)
/// to `path` (zstd), `row_group_rows` rows per row group.
pub fn generate(
    path: &Path,
    rows: u64,
    dims: usize,
    seed: u64,
    row_group_rows: usize,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    let mut rng = Rng(seed);
    let clusters = 256;
    let mu: Vec<f32> = (0..dims).map(|_| rng.normal() * 0.3).collect();
    let sigma: Vec<f32> = (0..dims).map(|_| (rng.normal() * 0.35).exp()).collect();
    let centers: Vec<f32> = (0..clusters * dims).map(|_| rng.normal()).collect();
    let item = Arc::new(Field::new_list_field(DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "embedding",
            DataType::FixedSizeList(item.clone(), dims as i32),
            false,
        ),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build();
    let (out, file) = embquant::io::AtomicFile::create(path)?;
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
    let batch = 8192u64;
    let mut row = 0u64;
    while row < rows {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            // Dropping `out` removes the temporary file.
            return Err(embquant::Error::Cancelled.into());
        }
        let n = batch.min(rows - row) as usize;
        let mut values = Vec::with_capacity(n * dims);
        for _ in 0..n {
            let c = (rng.next() % clusters as u64) as usize;
            let v: Vec<f32> = (0..dims)
                .map(|d| mu[d] + sigma[d] * (0.6 * centers[c * dims + d] + 0.8 * rng.normal()))
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            values.extend(v.iter().map(|x| x / norm));
        }
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
            row as i64..(row as i64 + n as i64),
        ));
        let emb: ArrayRef = Arc::new(FixedSizeListArray::new(
            item.clone(),
            dims as i32,
            Arc::new(Float32Array::from(values)),
            None,
        ));
        let batch = RecordBatch::try_new(schema.clone(), vec![ids, emb])?;
        // One row group per call at most (arrow's writer recurses once per row group).
        for start in (0..n).step_by(row_group_rows.max(1)) {
            w.write(&batch.slice(start, row_group_rows.max(1).min(n - start)))?;
        }
        row += n as u64;
    }
    w.close()?;
    Ok(out.commit()?)
}
