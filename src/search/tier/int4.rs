//! The int4 tier: packed 4-bit codes, scored by the query's dot product with the
//! dequantized vector (asymmetric); the scan widens blocks of rows to f32 once.

use super::{widened_scan, TierCodes, Valid};
use crate::codec::int4::Int4Codec;
use crate::search::chain::Tier;

pub(super) struct Int4Tier {
    codes: Vec<u8>,
    codec: Int4Codec,
    dim: usize,
}

impl Int4Tier {
    pub(super) fn new(codes: Vec<u8>, codec: Int4Codec, dim: usize) -> Self {
        Int4Tier { codes, codec, dim }
    }
}

impl TierCodes for Int4Tier {
    fn tier(&self) -> Tier {
        Tier::Int4
    }

    fn query_group(&self) -> usize {
        crate::kernels::matmul::QUERY_TILE
    }

    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>> {
        let w = self.codec.width();
        let rows = self.codes.len() / w.max(1);
        widened_scan(rows, self.dim, group, keep, valid, &|start, n, out| {
            self.codec
                .decode_slice(&self.codes[start * w..(start + n) * w], out)
        })
    }

    /// `sum_i |q_i| step_i / 2`: a value inside the calibrated range is at most half a step
    /// from its level (codes that clipped values are outside this bound), plus float rounding.
    fn slack(&self, query: &[f32]) -> Option<f32> {
        Some(super::affine_slack(query, self.codec.step()))
    }

    fn scorer<'a>(&'a self, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
        let p = self.codec.prepare_query(query);
        let w = self.codec.width();
        Box::new(move |r| p.score_int4(&self.codes[r as usize * w..(r as usize + 1) * w]))
    }
}
