//! What the commands share: the input and calibration flags, the spec they fill, the
//! output guard's read set, atomic writes of small outputs.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use embquant::io::Inputs;
use embquant::job::{defaults, InputFile};

#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// Input Parquet files, directories or globs.
    #[arg(required = true)]
    pub(crate) inputs: Vec<String>,
    /// The float vector column.
    #[arg(long, default_value = defaults::DEFAULT_COLUMN)]
    pub(crate) column: String,
    /// Rows per batch (small batches stay in cache: 1024 measured fastest here).
    #[arg(long, default_value_t = defaults::DEFAULT_BATCH_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) batch_rows: usize,
    /// Row groups (or halves of large ones) read at once, one thread each.
    #[arg(long, default_value_t = defaults::DEFAULT_CONCURRENCY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) concurrency: usize,
}

#[derive(Debug, Args)]
pub(crate) struct CalibrationArgs {
    /// Range method: minmax, quantile:P (e.g. quantile:0.999) or meanstd:K, optionally
    /// followed by +symmetric (ranges ±max|x|, int8 codes round(x / step): zero-point 0)
    /// and/or +per-tensor (one range for every dimension), e.g. minmax+symmetric.
    #[arg(long, default_value = defaults::DEFAULT_METHOD)]
    pub(crate) method: String,
    /// Calibrate on a uniform sample of N rows (fixed seed) instead of all rows.
    #[arg(long)]
    pub(crate) sample_rows: Option<u64>,
    /// Seed of the sample.
    #[arg(long, default_value_t = defaults::DEFAULT_SEED)]
    pub(crate) seed: u64,
}

/// The spec's reading and calibration options from the flags `calibrate` and `quantize`
/// share (the rest at their defaults).
pub(crate) fn calibration_spec(
    input: &InputArgs,
    c: &CalibrationArgs,
    dims: Option<usize>,
) -> embquant::job::QuantizeSpec {
    let mut s = embquant::job::QuantizeSpec::new(&input.column);
    s.method = c.method.clone();
    s.sample_rows = c.sample_rows;
    s.seed = c.seed;
    s.dims = dims;
    s.batch_rows = input.batch_rows;
    s.concurrency = input.concurrency;
    s
}

/// Mean bytes per input row (for progress in bytes).
pub(crate) fn bytes_per_row(files: &[InputFile]) -> u64 {
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    files.iter().map(|f| f.bytes).sum::<u64>() / rows.max(1)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(embquant::io::AtomicFile::write(path, bytes)?)
}

/// What a command reads, for the output guard: the inputs as spelled (directories and
/// prefixes guard what lies below them) and the files they expanded to.
pub(crate) fn read_set<S: AsRef<str>>(spellings: &[S], files: &[InputFile]) -> Result<Inputs> {
    let mut inputs = Inputs::new();
    for s in spellings {
        inputs.add_spelling(s.as_ref())?;
    }
    inputs.add_files(files);
    Ok(inputs)
}
