//! The first-tier scans over the whole corpus (binary, int8, int4, f16, RaBitQ) and the
//! per-row scorers the later tiers use.

use rayon::prelude::*;

use super::chain::Tier;
use super::select::TieSelect;
use super::tiered::Corpus;
use super::topk::TopK;
use crate::codec::rabitq::RabitqCodec;
use crate::error::Result;
use crate::kernels::hamming::hamming_scan;
use crate::kernels::rabitq::{LutQuery, RabitqBlocks};

/// Rows per block of the first-tier scan, and queries sharing a block.
pub(super) const BLOCK_ROWS: usize = 4096;
/// Rows per block of the binary scan: small enough (24 KiB of 384-bit codes) that the
/// block stays in L1 while every query of the group reads it.
pub(super) const BINARY_BLOCK_ROWS: usize = 4096;
pub(super) const QUERY_GROUP: usize = 8;
/// Rows of f16 or int4 codes widened to f32 at a time by their scans.
pub(super) const F16_BLOCK_ROWS: usize = 256;
/// Blocks of 64 RaBitQ codes scanned between updates of the queries' cut-offs.
pub(super) const RABITQ_STEP_BLOCKS: usize = 16;
/// Queries sharing a block in the int8 scan (one AVX-512 accumulator per query).
pub(super) const INT8_QUERY_GROUP: usize = 16;
/// Queries sharing a block in the binary scan: its codes are so small that fewer queries
/// per block leave it bound by memory bandwidth rather than popcount.
pub(super) const BINARY_QUERY_GROUP: usize = 32;

impl Corpus {
    /// A closure scoring one corpus row against `query` with `tier` (not for Float).
    pub(super) fn scorer<'a>(&'a self, tier: Tier, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
        match tier {
            Tier::Binary => {
                let (codes, codec) = self.binary.as_ref().expect("checked");
                let w = codec.width();
                let mut q = vec![0u8; w];
                let _ = codec.encode_slice(query, &mut q);
                let d = self.dim as f32;
                Box::new(move |r| {
                    let r = r as usize;
                    d - 2.0
                        * crate::kernels::hamming::hamming(&q, &codes[r * w..(r + 1) * w]) as f32
                })
            }
            Tier::Int8 => {
                let (codes, codec) = self.int8.as_ref().expect("checked");
                let p = codec.prepare_query(query);
                let d = self.dim;
                Box::new(move |r| p.score_int8(&codes[r as usize * d..(r as usize + 1) * d]))
            }
            Tier::Int4 => {
                let (codes, codec) = self.int4.as_ref().expect("checked");
                let p = codec.prepare_query(query);
                let w = codec.width();
                Box::new(move |r| p.score_int4(&codes[r as usize * w..(r as usize + 1) * w]))
            }
            Tier::F16 => {
                let v = self.f16.as_ref().expect("checked");
                let (d, q) = (self.dim, query.to_vec());
                Box::new(move |r| {
                    let row = &v[r as usize * d..(r as usize + 1) * d];
                    row.iter().zip(&q).map(|(a, b)| a.to_f32() * b).sum()
                })
            }
            Tier::Rabitq => {
                let (codes, codec) = self.rabitq.as_ref().expect("checked");
                let p = codec.prepare_query(query);
                let w = codec.width();
                Box::new(move |r| p.score(codec, &codes[r as usize * w..(r as usize + 1) * w]))
            }
            Tier::Float => unreachable!("float scores go through rescore_float"),
        }
    }

    /// First-tier scan of a group of queries over the whole corpus, blocked.
    pub(super) fn scan(
        &self,
        tier: Tier,
        group: &[f32],
        keep: usize,
    ) -> Vec<Result<Vec<(u32, f32)>>> {
        let nq = group.len() / self.dim;
        if tier == Tier::Float {
            let all: Vec<Vec<(u32, f32)>> = vec![
                (0..self.rows)
                    .filter(|&r| self.is_valid(r))
                    .map(|r| (r as u32, 0.0))
                    .collect();
                nq
            ];
            return match self.rescore_float(group, &all, keep) {
                Ok(v) => v.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
        }
        if tier == Tier::Binary {
            return self.scan_binary(group, keep).into_iter().map(Ok).collect();
        }
        if tier == Tier::Rabitq {
            return self.scan_rabitq(group, keep).into_iter().map(Ok).collect();
        }
        let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(keep)).collect();
        if tier == Tier::Int8 {
            let (codes, codec) = self.int8.as_ref().expect("checked");
            let prepared: Vec<_> = group
                .chunks_exact(self.dim)
                .map(|q| codec.prepare_query(q))
                .collect();
            let ws: Vec<f32> = prepared
                .iter()
                .flat_map(|p| p.weights.iter().copied())
                .collect();
            let g = prepared.len();
            let mut scratch = vec![0f32; self.dim];
            let mut scores = vec![0f32; BLOCK_ROWS * g];
            for start in (0..self.rows).step_by(BLOCK_ROWS) {
                let n = BLOCK_ROWS.min(self.rows - start);
                let block = &codes[start * self.dim..(start + n) * self.dim];
                crate::kernels::asym::weighted_i8_scan_group(
                    &ws,
                    block,
                    &mut scratch,
                    &mut scores[..n * g],
                );
                for i in (0..n).filter(|&i| self.is_valid(start + i)) {
                    for (q, (p, top)) in prepared.iter().zip(tops.iter_mut()).enumerate() {
                        top.push(p.offset + scores[i * g + q], (start + i) as u32);
                    }
                }
            }
        } else if tier == Tier::F16 || tier == Tier::Int4 {
            // Widen a block of rows to f32 once (f16 values, or int4 codes dequantized: the
            // dot product with those is the asymmetric int4 score), then score it against the
            // whole group with the blocked float kernel.
            use half::slice::HalfFloatSliceExt;
            let block = crate::kernels::matmul::QueryBlock::new(group, self.dim);
            let stride = block.stride();
            let mut rows = vec![0f32; F16_BLOCK_ROWS * self.dim];
            let mut scores = vec![0f32; F16_BLOCK_ROWS * stride];
            for start in (0..self.rows).step_by(F16_BLOCK_ROWS) {
                let n = F16_BLOCK_ROWS.min(self.rows - start);
                let r = &mut rows[..n * self.dim];
                match (tier, &self.f16, &self.int4) {
                    (Tier::F16, Some(v), _) => {
                        v[start * self.dim..(start + n) * self.dim].convert_to_f32_slice(r)
                    }
                    (_, _, Some((codes, codec))) => {
                        let w = codec.width();
                        codec.decode_slice(&codes[start * w..(start + n) * w], r)
                    }
                    _ => unreachable!("checked"),
                }
                let s = &mut scores[..n * stride];
                block.scores(r, s);
                for (i, row) in s.chunks_exact(stride).enumerate() {
                    if !self.is_valid(start + i) {
                        continue;
                    }
                    for (top, &x) in tops.iter_mut().zip(row) {
                        top.push(x, (start + i) as u32);
                    }
                }
            }
        } else {
            let scorers: Vec<_> = group
                .chunks_exact(self.dim)
                .map(|q| self.scorer(tier, q))
                .collect();
            for start in (0..self.rows).step_by(BLOCK_ROWS) {
                let end = (start + BLOCK_ROWS).min(self.rows);
                for (s, top) in scorers.iter().zip(tops.iter_mut()) {
                    for r in (start..end).filter(|&r| self.is_valid(r)) {
                        top.push(s(r as u32), r as u32);
                    }
                }
            }
        }
        tops.into_iter().map(|t| Ok(t.into_sorted())).collect()
    }

    /// Binary first tier. Hamming distances are small integers, so many rows tie at the
    /// cut-off distance: rather than dropping tied rows arbitrarily, keep every row strictly
    /// closer than the cut-off plus tied rows (lowest row ids first) up to `2 x keep` in all.
    /// One pass: each query keeps a bounded buffer of candidates (at most `4 x keep`), pruned
    /// to the current cut-off whenever it fills.
    pub(super) fn scan_binary(&self, group: &[f32], keep: usize) -> Vec<Vec<(u32, f32)>> {
        let (codes, codec) = self.binary.as_ref().expect("checked");
        let w = codec.width();
        let bits = 8 * w;
        let qs: Vec<Vec<u8>> = group
            .chunks_exact(self.dim)
            .map(|q| {
                let mut c = vec![0u8; w];
                let _ = codec.encode_slice(q, &mut c);
                c
            })
            .collect();
        let mut sel: Vec<TieSelect> = qs.iter().map(|_| TieSelect::new(keep, bits)).collect();
        let transposed = self.binary_words.as_ref();
        let qwords: Vec<Vec<u64>> = qs
            .iter()
            .map(|q| {
                q.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
                    .collect()
            })
            .collect();
        let mut dist = vec![0u32; BINARY_BLOCK_ROWS];
        let mut hits: Vec<Vec<(u32, u32)>> = vec![Vec::new(); qs.len()];
        let mut cuts: Vec<u32> = vec![0; qs.len()];
        for start in (0..self.rows).step_by(BINARY_BLOCK_ROWS) {
            let n = BINARY_BLOCK_ROWS.min(self.rows - start);
            match transposed {
                Some(t) => {
                    for (c, s) in cuts.iter_mut().zip(&sel) {
                        *c = s.cut;
                    }
                    t.scan_within(&qwords, &cuts, start, n, &mut hits);
                    for (h, s) in hits.iter_mut().zip(sel.iter_mut()) {
                        for &(row, d) in h.iter() {
                            if d <= s.cut && self.is_valid(row as usize) {
                                s.push(row, d);
                            }
                        }
                        h.clear();
                    }
                }
                None => {
                    let block = &codes[start * w..(start + n) * w];
                    for (q, s) in qs.iter().zip(sel.iter_mut()) {
                        hamming_scan(q, block, &mut dist[..n]);
                        for (i, &h) in dist[..n].iter().enumerate() {
                            if h <= s.cut && self.is_valid(start + i) {
                                s.push((start + i) as u32, h);
                            }
                        }
                    }
                }
            }
        }
        let d = self.dim as f32;
        sel.into_iter()
            .map(|s| {
                s.finish()
                    .into_iter()
                    .map(|(row, h)| (row, d - 2.0 * h as f32))
                    .collect()
            })
            .collect()
    }

    /// RaBitQ first tier: the table scan of [`crate::kernels::rabitq`], blocks of codes shared
    /// by the group's queries, each query's current k-th best estimate as its cut-off.
    pub(super) fn scan_rabitq(&self, group: &[f32], keep: usize) -> Vec<Vec<(u32, f32)>> {
        let (codes, codec) = self.rabitq.as_ref().expect("checked");
        let owned;
        let blocks = match &self.rabitq_blocks {
            Some(b) => b,
            None => {
                owned = rabitq_blocks(codes, codec);
                &owned
            }
        };
        let luts: Vec<LutQuery> = group
            .chunks_exact(self.dim)
            .map(|q| codec.prepare_query(q).lut())
            .collect();
        let refs: Vec<&LutQuery> = luts.iter().collect();
        let mut tops: Vec<TopK> = luts.iter().map(|_| TopK::new(keep)).collect();
        let mut hits: Vec<Vec<(u32, f32)>> = vec![Vec::new(); luts.len()];
        let mut cuts = vec![f32::NEG_INFINITY; luts.len()];
        let n = blocks.blocks();
        for b0 in (0..n).step_by(RABITQ_STEP_BLOCKS) {
            for (c, t) in cuts.iter_mut().zip(&tops) {
                *c = t.threshold().unwrap_or(f32::NEG_INFINITY);
            }
            blocks.scan_within(
                &refs,
                &cuts,
                b0..(b0 + RABITQ_STEP_BLOCKS).min(n),
                &mut hits,
            );
            for (h, t) in hits.iter_mut().zip(tops.iter_mut()) {
                for &(row, e) in h.iter() {
                    if self.is_valid(row as usize) {
                        t.push(e, row);
                    }
                }
                h.clear();
            }
        }
        tops.into_iter().map(|t| t.into_sorted()).collect()
    }
}

/// The table-scan layout of RaBitQ codes.
pub(super) fn rabitq_blocks(codes: &[u8], codec: &RabitqCodec) -> RabitqBlocks {
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
