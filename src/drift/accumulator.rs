//! [`DriftAccumulator`]: per-dimension sums of new vectors against a calibration, streamed
//! and merged.

use arrow_array::Array;
use rayon::prelude::*;

use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::vectors::Vectors;

/// Rows per parallel block within one batch.
const BLOCK_ROWS: usize = 2048;

/// Streaming per-dimension comparison of new vectors with a calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftAccumulator {
    pub(super) dim: usize,
    pub(super) lo: Vec<f32>,
    pub(super) hi: Vec<f32>,
    /// The calibrated mean: sums are of `x - center`, so they stay small and exact-ish.
    pub(super) center: Vec<f32>,
    pub(super) rows: u64,
    pub(super) null_rows: u64,
    pub(super) sum: Vec<f64>,
    pub(super) sum_sq: Vec<f64>,
    pub(super) below: Vec<u64>,
    pub(super) above: Vec<u64>,
    pub(super) min: Vec<f32>,
    pub(super) max: Vec<f32>,
}

impl DriftAccumulator {
    /// An empty accumulator against `cal`.
    pub fn new(cal: &Calibration) -> Self {
        let dim = cal.dim();
        Self {
            dim,
            lo: cal.lo().to_vec(),
            hi: cal.hi().to_vec(),
            center: cal.mean().to_vec(),
            rows: 0,
            null_rows: 0,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
            below: vec![0; dim],
            above: vec![0; dim],
            min: vec![f32::INFINITY; dim],
            max: vec![f32::NEG_INFINITY; dim],
        }
    }

    fn empty_like(&self) -> Self {
        let dim = self.dim;
        Self {
            dim,
            lo: self.lo.clone(),
            hi: self.hi.clone(),
            center: self.center.clone(),
            rows: 0,
            null_rows: 0,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
            below: vec![0; dim],
            above: vec![0; dim],
            min: vec![f32::INFINITY; dim],
            max: vec![f32::NEG_INFINITY; dim],
        }
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Non-null rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Null rows seen (skipped).
    pub fn null_rows(&self) -> u64 {
        self.null_rows
    }

    /// Adds the rows of a vector column (one batch). Its dimension must be the
    /// calibration's; a NaN or infinity is an error naming the row and dimension.
    pub fn update(&mut self, array: &dyn Array) -> Result<()> {
        let v = Vectors::try_new_with_dim(array, self.dim)?;
        self.update_vectors(&v)
    }

    /// Adds the rows of an already validated view, in parallel over blocks of rows (merged
    /// in row order, so the result does not depend on scheduling).
    pub fn update_vectors(&mut self, v: &Vectors<'_>) -> Result<()> {
        if v.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                context: "vector column".into(),
                expected: self.dim,
                found: v.dim(),
            });
        }
        let blocks = v.len().div_ceil(BLOCK_ROWS);
        let parts: Vec<DriftAccumulator> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let mut part = self.empty_like();
                let end = ((b + 1) * BLOCK_ROWS).min(v.len());
                part.add_rows(v, b * BLOCK_ROWS..end)?;
                Ok(part)
            })
            .collect::<Result<_>>()?;
        for p in &parts {
            self.merge(p)?;
        }
        Ok(())
    }

    /// Scalar core over rows `range` of `v`.
    fn add_rows(&mut self, v: &Vectors<'_>, range: std::ops::Range<usize>) -> Result<()> {
        for r in range.clone() {
            if !v.is_valid(r) {
                self.null_rows += 1;
                continue;
            }
            self.rows += 1;
            for (d, &x) in v.row(r).iter().enumerate() {
                let y = x as f64 - self.center[d] as f64;
                self.sum[d] += y;
                self.sum_sq[d] += y * y;
                self.below[d] += (x < self.lo[d]) as u64;
                self.above[d] += (x > self.hi[d]) as u64;
                self.min[d] = self.min[d].min(x);
                self.max[d] = self.max[d].max(x);
            }
        }
        // A NaN or infinity makes a sum non-finite (finite f32 inputs cannot overflow f64):
        // only then look for the offending value.
        if self.sum_sq.iter().any(|s| !s.is_finite()) {
            v.find_non_finite(range)?;
        }
        Ok(())
    }

    /// Adds `other` (the same comparison over other rows).
    pub fn merge(&mut self, other: &DriftAccumulator) -> Result<()> {
        if other.dim != self.dim || other.lo != self.lo || other.hi != self.hi {
            return Err(Error::CalibrationMismatch(
                "cannot merge drift accumulators of different calibrations".into(),
            ));
        }
        self.rows += other.rows;
        self.null_rows += other.null_rows;
        for d in 0..self.dim {
            self.sum[d] += other.sum[d];
            self.sum_sq[d] += other.sum_sq[d];
            self.below[d] += other.below[d];
            self.above[d] += other.above[d];
            self.min[d] = self.min[d].min(other.min[d]);
            self.max[d] = self.max[d].max(other.max[d]);
        }
        Ok(())
    }
}
