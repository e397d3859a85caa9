//! Recall reports: how much retrieval quality each quantization configuration keeps.
//!
//! - `source`: the corpus's float vectors, streamed in blocks (from memory or Parquet):
//!   the report holds codes, not the float column.
//! - `truth`: exact top-k by inner product (blocked float32 scan, float64 rescoring of the
//!   finalists), cached as Parquet under a fingerprint of its inputs.
//! - `config`: what is measured (chains on prefixes, targets, gates, options); `model`:
//!   the results (`report.json`).
//! - `report`: recall@k per configuration (mean, 5th percentile, 95% confidence interval),
//!   the recall each tier loses, bytes and speed, the cheapest configuration meeting a target
//!   recall, gates, and calibration on a sample; as JSON and Markdown.
//! - `plot`: the report's plot, `recall.svg`.

mod calibration_check;
pub(crate) mod config;
pub(crate) mod model;
pub(crate) mod plot;
mod render;
pub(crate) mod report;
pub(crate) mod source;
pub(crate) mod truth;
mod tune;
mod variant;

pub use config::{
    chain_string, default_sweep, Config, Gate, Queries, RecallOptions, Target, DEFAULT_CODE_BUDGET,
    SWEEP_FACTORS,
};
pub use model::{
    CalibrationCheck, CalibrationDelta, ConfigResult, GateResult, GroundTruthInfo, RecallReport,
    RecallStat, Recommendation, TierLoss, REPORT_VERSION,
};
pub use render::{markdown, table};
pub use report::{ground_truth, ground_truth_scan, run, run_owned, run_source, values_of};
pub use source::{MemorySource, ParquetSource, ScanRows, VectorSource};
pub use truth::{exact_topk, fingerprint, GroundTruth};

use std::path::Path;

use crate::error::{Error, Result};
use crate::job::InputFile;

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
    source::read_batches(files, column, true, &mut |_, v| {
        if dim == 0 && !v.is_empty() {
            dim = v.dim();
        }
        for r in 0..v.len() {
            source::push_row(v, r, &mut values);
            valid.push(v.is_valid(r));
        }
        Ok(())
    })?;
    let valid = valid.iter().any(|v| !v).then_some(valid);
    Ok(LoadedVectors { values, dim, valid })
}

/// Writes `report.json`, `report.md` and `recall.svg` (at recall@10, or the largest k below
/// it) into `dir`, as a set: all three written to temporary files, then renamed into place.
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
    // Replaced as a set: every file complete before the first rename, the
    // renames back to back; a failure before then leaves the previous report whole.
    let mut staged = Vec::with_capacity(files.len());
    for (name, text) in files {
        use std::io::Write;
        let (out, mut f) = crate::io::AtomicFile::create(&dir.join(name))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", out.path().display()), e))?;
        staged.push(out);
    }
    for out in staged {
        out.commit()?;
    }
    Ok(())
}
