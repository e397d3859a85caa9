//! The int8 tier: the query's dot product with each row's dequantized vector (asymmetric),
//! scanned in blocks of rows shared by a group of queries.

use super::{TierCodes, Valid};
use crate::codec::int8::Int8Codec;
use crate::search::chain::Tier;
use crate::search::topk::TopK;

/// Rows per block of the scan.
const BLOCK_ROWS: usize = 4096;
/// Queries sharing a block (one AVX-512 accumulator per query).
pub(crate) const QUERY_GROUP: usize = 16;

pub(super) struct Int8Tier {
    codes: Vec<i8>,
    codec: Int8Codec,
    dim: usize,
}

impl Int8Tier {
    pub(super) fn new(codes: Vec<i8>, codec: Int8Codec, dim: usize) -> Self {
        Int8Tier { codes, codec, dim }
    }
}

impl TierCodes for Int8Tier {
    fn tier(&self) -> Tier {
        Tier::Int8
    }

    fn query_group(&self) -> usize {
        QUERY_GROUP
    }

    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>> {
        let d = self.dim;
        let rows = self.codes.len() / d.max(1);
        let prepared: Vec<_> = group
            .chunks_exact(d)
            .map(|q| self.codec.prepare_query(q))
            .collect();
        let ws: Vec<f32> = prepared
            .iter()
            .flat_map(|p| p.weights.iter().copied())
            .collect();
        let g = prepared.len();
        let mut tops: Vec<TopK> = (0..g).map(|_| TopK::new(keep)).collect();
        let mut scratch = vec![0f32; d];
        let mut scores = vec![0f32; BLOCK_ROWS * g];
        for start in (0..rows).step_by(BLOCK_ROWS) {
            let n = BLOCK_ROWS.min(rows - start);
            let block = &self.codes[start * d..(start + n) * d];
            crate::kernels::asym::weighted_i8_scan_group(
                &ws,
                block,
                &mut scratch,
                &mut scores[..n * g],
            );
            for i in (0..n).filter(|&i| valid.get(start + i)) {
                for (q, (p, top)) in prepared.iter().zip(tops.iter_mut()).enumerate() {
                    top.push(p.offset + scores[i * g + q], (start + i) as u32);
                }
            }
        }
        tops.into_iter().map(TopK::into_sorted).collect()
    }

    /// `sum_i |q_i| step_i / 2`: a value inside the calibrated range is at most half a step
    /// from its level (codes that clipped values are outside this bound), plus float rounding.
    fn slack(&self, query: &[f32]) -> Option<f32> {
        Some(super::affine_slack(query, self.codec.step()))
    }

    fn scorer<'a>(&'a self, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
        let p = self.codec.prepare_query(query);
        let d = self.dim;
        Box::new(move |r| p.score_int8(&self.codes[r as usize * d..(r as usize + 1) * d]))
    }
}
