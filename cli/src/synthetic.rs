//! `embquant gen-synthetic`: unit-norm float32 vectors with per-dimension offsets and
//! spreads and a clustered structure, written streaming (bounded memory at any size).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use embquant::arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
use embquant::arrow_schema::{DataType, Field, Schema};
use embquant::io::Inputs;
use embquant::parquet::arrow::ArrowWriter;
use embquant::parquet::basic::{Compression, ZstdLevel};
use embquant::parquet::file::properties::WriterProperties;

use crate::output::Output;

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

#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// Rows.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Dimensions.
    #[arg(long, default_value_t = 384, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    dims: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows per row group.
    #[arg(long, default_value_t = 131_072, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    row_group_rows: usize,
    /// Output Parquet file.
    #[arg(long, short)]
    output: PathBuf,
}

/// The widest synthetic vectors `gen-synthetic` writes (its cluster centres are held in
/// memory: 256 x dims floats).
const MAX_SYNTHETIC_DIMS: usize = 65_536;

/// `embquant gen-synthetic`.
pub(crate) async fn run(a: GenArgs) -> Result<()> {
    let t = Instant::now();
    if a.dims == 0 || a.row_group_rows == 0 {
        bail!("--dims and --row-group-rows must be at least 1");
    }
    if a.dims > MAX_SYNTHETIC_DIMS {
        bail!("--dims {}: at most {MAX_SYNTHETIC_DIMS}", a.dims);
    }
    let output = Output::new(&a.output, &Inputs::new(), false)?;
    let guard = crate::signals::CancelOnDrop::default();
    let (cancel, out) = (guard.0.clone(), output.path().to_path_buf());
    let (rows, dims, seed, rg) = (a.rows, a.dims, a.seed, a.row_group_rows);
    tokio::task::spawn_blocking(move || {
        crate::synthetic::generate(&out, rows, dims, seed, rg, &cancel)
    })
    .await??;
    drop(guard);
    let shown = output.display();
    output.finish().await?;
    println!(
        "wrote {} rows x {} dims to {} in {:.1} s",
        a.rows,
        a.dims,
        shown,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
