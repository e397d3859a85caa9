//! The RaBitQ tier: 1-bit codes of the rotated, centered vectors with their factors, scored
//! by the RaBitQ inner-product estimate. The scan is a table scan: over 6-bit groups in
//! blocks of 64 rows ([`crate::kernels::rabitq`]) where AVX-512 VBMI runs it, else over 4-bit
//! groups in blocks of 32 rows ([`crate::kernels::fastscan`]). The layout is chosen once, when
//! the corpus is built, from the SIMD level the process runs at.

use crate::search::RabitqBits;
use rayon::prelude::*;

use super::{TierCodes, Valid};
use crate::codec::rabitq::RabitqCodec;
use crate::codec::rabitq_ex::{half_width, query_norm};
use crate::kernels::fastscan::{self, NibbleBlocks, NibbleQuery};
use crate::kernels::rabitq::{self, LutQuery, RabitqBlocks};
use crate::search::bound::Bounded;
use crate::search::chain::Tier;
use crate::search::topk::TopK;

/// Codes scanned between updates of the queries' cut-offs.
const STEP_ROWS: usize = 1024;
/// Queries sharing a block.
const QUERY_GROUP: usize = super::int8::QUERY_GROUP;

pub(super) struct RabitqTier {
    codes: std::sync::Arc<[u8]>,
    codec: RabitqCodec,
    dim: usize,
    /// The codes re-laid for the table scan.
    blocks: Layout,
    /// Per row, the bound's half-width per unit of `eps0 |q|`.
    widths: Vec<f32>,
    /// The largest of `widths`, and the largest scale `F` of a code: what the bounded scan
    /// lowers its cut-off by.
    widest: f32,
    widest_scale: f32,
}

/// The codes re-laid for the table scan the active SIMD level runs fastest.
enum Layout {
    /// 6-bit groups, 64 codes per block (AVX-512 VBMI).
    Groups(RabitqBlocks),
    /// 4-bit groups, 32 codes per block (everything else).
    Nibbles(NibbleBlocks),
}

impl RabitqTier {
    pub(super) fn new(codes: std::sync::Arc<[u8]>, codec: RabitqCodec, dim: usize) -> Self {
        let blocks = rabitq_blocks(&codes, &codec);
        let widths = codes
            .chunks_exact(codec.width())
            .map(|c| {
                let (norm, ip) = codec.code_factors(c);
                half_width(norm, ip, codec.bits())
            })
            .collect::<Vec<f32>>();
        let widest = widths.iter().cloned().fold(0f32, f32::max);
        let widest_scale = codes
            .chunks_exact(codec.width())
            .map(|c| codec.scale(c))
            .fold(0f32, f32::max);
        RabitqTier {
            codes,
            codec,
            dim,
            blocks,
            widths,
            widest,
            widest_scale,
        }
    }
}

impl TierCodes for RabitqTier {
    fn tier(&self) -> Tier {
        Tier::Rabitq(RabitqBits::ONE)
    }

    fn query_group(&self) -> usize {
        QUERY_GROUP
    }

    /// Blocks of codes shared by the group's queries, each query's current k-th best
    /// estimate as its cut-off.
    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>> {
        let queries = group
            .chunks_exact(self.dim)
            .map(|q| self.codec.prepare_query(q));
        match &self.blocks {
            Layout::Groups(b) => {
                let luts: Vec<LutQuery> = queries.map(|q| q.lut()).collect();
                let step = STEP_ROWS / rabitq::BLOCK;
                scan_steps(&luts, b.blocks(), step, keep, valid, |q, c, r, h| {
                    b.scan_within(q, c, r, h)
                })
            }
            Layout::Nibbles(b) => {
                let luts: Vec<NibbleQuery> = queries.map(|q| q.nibbles()).collect();
                let step = STEP_ROWS / fastscan::BLOCK;
                scan_steps(&luts, b.blocks(), step, keep, valid, |q, c, r, h| {
                    b.scan_within(q, c, r, h)
                })
            }
        }
    }

    fn bounded_scorer<'a>(&'a self, query: &[f32], eps0: f32) -> Option<super::BoundedScorer<'a>> {
        let p = self.codec.prepare_query(query);
        let unit = eps0 * query_norm(query);
        let w = self.codec.width();
        Some(Box::new(move |r| {
            let code = &self.codes[r as usize * w..(r as usize + 1) * w];
            (p.score(&self.codec, code), unit * self.widths[r as usize])
        }))
    }

    /// The table scan with bounds: a row's half-width adds the tables' rounding
    /// (`F * groups * a / 2`) to the RaBitQ bound; the scan's cut-off is each query's k-th
    /// best lower bound less the largest half-width, so a row it skips has an upper bound
    /// below the k-th best lower bound.
    fn scan_bounded(
        &self,
        group: &[f32],
        k: usize,
        eps0: f32,
        valid: Valid<'_>,
    ) -> Option<Vec<Bounded>> {
        let queries: Vec<_> = group
            .chunks_exact(self.dim)
            .map(|q| self.codec.prepare_query(q))
            .collect();
        let units: Vec<f32> = group
            .chunks_exact(self.dim)
            .map(|q| eps0 * query_norm(q))
            .collect();
        let rounding = |groups: usize, a: f32| groups as f32 * a / 2.0;
        Some(match &self.blocks {
            Layout::Groups(b) => {
                let luts: Vec<LutQuery> = queries.iter().map(|q| q.lut()).collect();
                let r: Vec<f32> = luts.iter().map(|l| rounding(l.groups(), l.a)).collect();
                let blocks = (b.blocks(), STEP_ROWS / rabitq::BLOCK);
                self.scan_steps_bounded(
                    &luts,
                    &units,
                    &r,
                    blocks,
                    k,
                    valid,
                    |r| b.factor(r),
                    |q, c, r, h| b.scan_within(q, c, r, h),
                )
            }
            Layout::Nibbles(b) => {
                let luts: Vec<NibbleQuery> = queries.iter().map(|q| q.nibbles()).collect();
                let r: Vec<f32> = luts.iter().map(|l| rounding(l.groups(), l.a)).collect();
                let blocks = (b.blocks(), STEP_ROWS / fastscan::BLOCK);
                self.scan_steps_bounded(
                    &luts,
                    &units,
                    &r,
                    blocks,
                    k,
                    valid,
                    |r| b.factor(r),
                    |q, c, r, h| b.scan_within(q, c, r, h),
                )
            }
        })
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

impl RabitqTier {
    /// [`scan_steps`] with bounds: `units[q]` is the query's `eps0 |q|`, `rounding[q]` its
    /// tables' rounding per unit of `F` (`groups * a / 2`), `blocks` the blocks and the blocks
    /// per step, `factor(row)` the row's scale `F`.
    #[allow(clippy::too_many_arguments)]
    fn scan_steps_bounded<Q>(
        &self,
        luts: &[Q],
        units: &[f32],
        rounding: &[f32],
        (blocks, step): (usize, usize),
        k: usize,
        valid: Valid<'_>,
        factor: impl Fn(usize) -> f32,
        scan: impl Fn(&[&Q], &[f32], std::ops::Range<usize>, &mut [Vec<(u32, f32)>]),
    ) -> Vec<Bounded> {
        let (widest, widest_f) = (self.widest, self.widest_scale);
        let refs: Vec<&Q> = luts.iter().collect();
        let n = luts.len();
        let mut lows: Vec<TopK> = (0..n).map(|_| TopK::new(k.max(1))).collect();
        let mut cands: Vec<Vec<(u32, f32, f32)>> = vec![Vec::new(); n];
        let mut pruned = vec![f32::NEG_INFINITY; n];
        let mut hits: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        let mut cuts = vec![f32::NEG_INFINITY; n];
        for b0 in (0..blocks).step_by(step) {
            for q in 0..n {
                let (u, lut) = (units[q], rounding[q]);
                cuts[q] = lows[q].threshold().map_or(f32::NEG_INFINITY, |c| {
                    // A skipped row's upper bound is below this query's k-th lower bound.
                    pruned[q] = pruned[q].max(c);
                    c - u * widest - widest_f * lut - 1e-4 * (1.0 + c.abs()) * 2.0
                });
            }
            scan(&refs, &cuts, b0..(b0 + step).min(blocks), &mut hits);
            for q in 0..n {
                let (u, lut) = (units[q], rounding[q]);
                for &(row, e) in &hits[q] {
                    if !valid.get(row as usize) {
                        continue;
                    }
                    let h = u * self.widths[row as usize]
                        + factor(row as usize) * lut
                        + 1e-4 * (1.0 + e.abs());
                    lows[q].push(e - h, row);
                    match lows[q].threshold() {
                        Some(c) if e + h < c => pruned[q] = pruned[q].max(e + h),
                        _ => cands[q].push((row, e, e + h)),
                    }
                }
                hits[q].clear();
            }
        }
        cands
            .into_iter()
            .zip(lows)
            .zip(pruned)
            .map(|((c, l), p)| Bounded::finish(c, l.threshold(), p))
            .collect()
    }
}

/// Runs `scan` (queries, cut-offs, a block range, hits) over `blocks` blocks, `step` at a
/// time, each query's current k-th best estimate as its cut-off.
fn scan_steps<Q>(
    luts: &[Q],
    blocks: usize,
    step: usize,
    keep: usize,
    valid: Valid<'_>,
    scan: impl Fn(&[&Q], &[f32], std::ops::Range<usize>, &mut [Vec<(u32, f32)>]),
) -> Vec<Vec<(u32, f32)>> {
    let refs: Vec<&Q> = luts.iter().collect();
    let mut tops: Vec<TopK> = luts.iter().map(|_| TopK::new(keep)).collect();
    let mut hits: Vec<Vec<(u32, f32)>> = vec![Vec::new(); luts.len()];
    let mut cuts = vec![f32::NEG_INFINITY; luts.len()];
    for b0 in (0..blocks).step_by(step) {
        for (c, t) in cuts.iter_mut().zip(&tops) {
            *c = t.threshold().unwrap_or(f32::NEG_INFINITY);
        }
        scan(&refs, &cuts, b0..(b0 + step).min(blocks), &mut hits);
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

/// The table-scan layout of RaBitQ codes for the active SIMD level.
fn rabitq_blocks(codes: &[u8], codec: &RabitqCodec) -> Layout {
    let (w, g) = (codec.width(), codec.groups());
    let rows = codes.len() / w;
    // The 6-bit patterns of every code are kept only for the layout built from them; the
    // 4-bit layout needs them just for each code's offset, one code at a time.
    let keep = crate::simd::has_vbmi();
    let mut patterns = vec![0u8; if keep { rows * g } else { 0 }];
    let mut factors = vec![0f32; rows];
    let mut offsets = vec![0f32; rows];
    let factor_and_offset = |code: &[u8], p: &mut [u8], f: &mut f32, o: &mut f32| {
        codec.patterns(code, p);
        *f = codec.scale(code);
        *o = codec.offset_from_patterns(p, *f);
    };
    let pairs = factors.par_iter_mut().zip(offsets.par_iter_mut());
    if keep {
        patterns
            .par_chunks_mut(g)
            .zip(pairs)
            .zip(codes.par_chunks(w))
            .for_each(|((p, (f, o)), code)| factor_and_offset(code, p, f, o));
    } else {
        pairs.zip(codes.par_chunks(w)).for_each_init(
            || vec![0u8; g],
            |p, ((f, o), code)| factor_and_offset(code, p, f, o),
        );
    }
    if keep {
        Layout::Groups(RabitqBlocks::new(&patterns, g, &factors, &offsets))
    } else {
        let bytes = codec.bit_bytes();
        Layout::Nibbles(NibbleBlocks::new(codes, w, bytes, &factors, &offsets))
    }
}
