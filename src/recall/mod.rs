//! Recall reports: how much retrieval quality each quantization configuration keeps.
//!
//! - [`truth`]: exact top-k by inner product (blocked float32 scan, float64 rescoring of the
//!   finalists), cached as Parquet under a fingerprint of its inputs.
//! - [`report`]: recall@k per configuration (mean, 5th percentile, 95% confidence interval),
//!   the recall each tier loses, bytes and speed, the cheapest configuration meeting a target
//!   recall, gates, and calibration on a sample; as JSON and Markdown.
//! - [`plot`]: the report's plot, `recall.svg`.

pub mod plot;
pub mod report;
pub mod truth;

pub use report::{
    default_sweep, markdown, run, run_owned, Config, Gate, Queries, RecallOptions, RecallReport,
    Target,
};

use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::error::{Error, Result};
use crate::job::InputFile;
use crate::vectors::Vectors;

/// Vectors read from Parquet into memory: row-major values, dimension, row validity (None
/// when no row is null) and the value of an id column per row (the row number without one).
#[derive(Debug, Clone)]
pub struct LoadedVectors {
    /// Row-major values (zeros for null rows).
    pub values: Vec<f32>,
    /// Dimension.
    pub dim: usize,
    /// `valid[r]` is false for null rows.
    pub valid: Option<Vec<bool>>,
}

/// Reads `column` of every file (in order) into memory. Errors name the file, column and row.
pub fn read_vectors(files: &[InputFile], column: &str) -> Result<LoadedVectors> {
    let mut values = Vec::new();
    let mut valid: Vec<bool> = Vec::new();
    let mut dim = 0usize;
    for file in files {
        let ctx = |e: Error| e.in_file(file.path.display(), column);
        let f = std::fs::File::open(&file.path).map_err(|e| ctx(Error::io("opening", e)))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| ctx(e.into()))?;
        let idx = crate::quantizer::vector_column(b.schema(), column).map_err(ctx)?;
        let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
        let reader = b
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(|e| ctx(e.into()))?;
        let mut row = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| ctx(e.into()))?;
            let col = batch.column(0);
            let v = Vectors::try_new(col.as_ref()).map_err(|e| ctx(e.offset_rows(row)))?;
            if dim == 0 {
                dim = v.dim();
            } else if !v.is_empty() && v.dim() != dim {
                return Err(ctx(Error::DimensionMismatch {
                    context: format!("rows from {row}"),
                    expected: dim,
                    found: v.dim(),
                }));
            }
            if let Some(bad) =
                (0..v.len()).find(|&r| v.is_valid(r) && v.row(r).iter().any(|x| !x.is_finite()))
            {
                v.find_non_finite(bad..bad + 1)
                    .map_err(|e| ctx(e.offset_rows(row)))?;
            }
            values.extend_from_slice(v.values());
            valid.extend((0..v.len()).map(|r| v.is_valid(r)));
            row += v.len() as u64;
        }
    }
    let valid = valid.iter().any(|v| !v).then_some(valid);
    if let Some(v) = &valid {
        for (r, ok) in v.iter().enumerate() {
            if !ok {
                values[r * dim..(r + 1) * dim].fill(0.0);
            }
        }
    }
    Ok(LoadedVectors { values, dim, valid })
}

/// Writes `report.json`, `report.md` and `recall.svg` (at recall@10, or the largest k below
/// it) into `dir`, each through a temporary file renamed into place.
pub fn write_outputs(report: &RecallReport, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let k = report
        .ks
        .iter()
        .copied()
        .filter(|&k| k <= 10)
        .max()
        .unwrap_or(report.ks[0]);
    let files = [
        ("report.json", serde_json::to_string_pretty(report)?),
        ("report.md", markdown(report)),
        ("recall.svg", plot::svg(report, k)?),
    ];
    for (name, text) in files {
        crate::io::AtomicFile::write(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}
