//! The progress callbacks of a job and the row sample draw. Input discovery and the
//! Parquet reader live in [`crate::io::input`].

pub use crate::io::input::{discover, InputFile};

/// Reports progress (the CLI draws bars; the library logs nothing per batch).
pub trait Progress: Send + Sync {
    /// A phase starts (`calibrate`, `quantize`) over `rows` rows.
    fn begin(&self, _phase: &str, _rows: u64) {}
    /// `rows` more rows are done.
    fn advance(&self, _rows: u64) {}
    /// The phase is over.
    fn end(&self) {}
}

/// A seeded uniform sample of `n` of `total` row numbers, sorted (the calibration sample's
/// draw, also used for query samples).
pub fn sample_rows(total: u64, n: u64, seed: u64) -> Vec<u64> {
    super::segments::sample_indices(total, n, seed)
}

/// Progress that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}
