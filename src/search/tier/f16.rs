//! The f16 tier: half-precision vectors, scored by the exact dot product with the query;
//! the scan widens blocks of rows to f32 once.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::{widened_scan, TierCodes, Valid};
use crate::search::chain::Tier;

pub(super) struct F16Tier {
    values: Vec<f16>,
    dim: usize,
}

impl F16Tier {
    pub(super) fn new(values: Vec<f16>, dim: usize) -> Self {
        F16Tier { values, dim }
    }
}

impl TierCodes for F16Tier {
    fn tier(&self) -> Tier {
        Tier::F16
    }

    fn query_group(&self) -> usize {
        crate::kernels::matmul::QUERY_TILE
    }

    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>> {
        let d = self.dim;
        let rows = self.values.len() / d.max(1);
        widened_scan(rows, d, group, keep, valid, &|start, n, out| {
            self.values[start * d..(start + n) * d].convert_to_f32_slice(out)
        })
    }

    fn scorer<'a>(&'a self, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
        let (d, q) = (self.dim, query.to_vec());
        Box::new(move |r| {
            let row = &self.values[r as usize * d..(r as usize + 1) * d];
            row.iter().zip(&q).map(|(a, b)| a.to_f32() * b).sum()
        })
    }
}
