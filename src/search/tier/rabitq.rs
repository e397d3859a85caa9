//! The RaBitQ tier: 1-bit codes of the rotated, centered vectors with their factors, scored
//! by the RaBitQ inner-product estimate; the scan is the table scan of
//! [`crate::kernels::rabitq`] over the codes re-laid in blocks of 64 rows.

use rayon::prelude::*;

use super::{TierCodes, Valid};
use crate::codec::rabitq::RabitqCodec;
use crate::kernels::rabitq::{LutQuery, RabitqBlocks};
use crate::search::chain::Tier;
use crate::search::topk::TopK;

/// Blocks of 64 codes scanned between updates of the queries' cut-offs.
const STEP_BLOCKS: usize = 16;
/// Queries sharing a block.
const QUERY_GROUP: usize = super::int8::QUERY_GROUP;

pub(super) struct RabitqTier {
    codes: Vec<u8>,
    codec: RabitqCodec,
    dim: usize,
    /// The codes re-laid for the table scan.
    blocks: RabitqBlocks,
}

impl RabitqTier {
    pub(super) fn new(codes: Vec<u8>, codec: RabitqCodec, dim: usize) -> Self {
        let blocks = rabitq_blocks(&codes, &codec);
        RabitqTier {
            codes,
            codec,
            dim,
            blocks,
        }
    }
}

impl TierCodes for RabitqTier {
    fn tier(&self) -> Tier {
        Tier::Rabitq
    }

    fn query_group(&self) -> usize {
        QUERY_GROUP
    }

    /// Blocks of codes shared by the group's queries, each query's current k-th best
    /// estimate as its cut-off.
    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>> {
        let luts: Vec<LutQuery> = group
            .chunks_exact(self.dim)
            .map(|q| self.codec.prepare_query(q).lut())
            .collect();
        let refs: Vec<&LutQuery> = luts.iter().collect();
        let mut tops: Vec<TopK> = luts.iter().map(|_| TopK::new(keep)).collect();
        let mut hits: Vec<Vec<(u32, f32)>> = vec![Vec::new(); luts.len()];
        let mut cuts = vec![f32::NEG_INFINITY; luts.len()];
        let n = self.blocks.blocks();
        for b0 in (0..n).step_by(STEP_BLOCKS) {
            for (c, t) in cuts.iter_mut().zip(&tops) {
                *c = t.threshold().unwrap_or(f32::NEG_INFINITY);
            }
            self.blocks
                .scan_within(&refs, &cuts, b0..(b0 + STEP_BLOCKS).min(n), &mut hits);
            for (h, t) in hits.iter_mut().zip(tops.iter_mut()) {
                for &(row, e) in h.iter() {
                    if valid.get(row as usize) {
                        t.push(e, row);
                    }
                }
                h.clear();
            }
        }
        tops.into_iter().map(TopK::into_sorted).collect()
    }

    fn scorer<'a>(&'a self, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
        let p = self.codec.prepare_query(query);
        let w = self.codec.width();
        Box::new(move |r| {
            p.score(
                &self.codec,
                &self.codes[r as usize * w..(r as usize + 1) * w],
            )
        })
    }
}

/// The table-scan layout of RaBitQ codes.
fn rabitq_blocks(codes: &[u8], codec: &RabitqCodec) -> RabitqBlocks {
    let (w, g) = (codec.width(), codec.groups());
    let rows = codes.len() / w;
    let mut patterns = vec![0u8; rows * g];
    let mut factors = vec![0f32; rows];
    let mut offsets = vec![0f32; rows];
    patterns
        .par_chunks_mut(g)
        .zip(factors.par_iter_mut().zip(offsets.par_iter_mut()))
        .zip(codes.par_chunks(w))
        .for_each(|((p, (f, o)), code)| {
            codec.patterns(code, p);
            *f = codec.scale(code);
            *o = codec.offset_from_patterns(p, *f);
        });
    RabitqBlocks::new(&patterns, g, &factors, &offsets)
}
