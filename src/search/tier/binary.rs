//! The binary tier: packed sign bits scored by Hamming distance (`D - 2 x hamming`, the dot
//! product of the ±1 sign vectors), scanned over a transposed copy of the codes.

use super::{TierCodes, Valid};
use crate::codec::binary::BinaryCodec;
use crate::kernels::hamming::{hamming, hamming_scan, TransposedCodes};
use crate::search::chain::Tier;
use crate::search::select::TieSelect;

/// Rows per block of the scan: small enough (24 KiB of 384-bit codes) that the block stays
/// in L1 while every query of the group reads it.
const BLOCK_ROWS: usize = 4096;
/// Queries sharing a block: the codes are so small that fewer queries per block leave the
/// scan bound by memory bandwidth rather than popcount.
const QUERY_GROUP: usize = 32;

pub(super) struct BinaryTier {
    codes: Vec<u8>,
    codec: BinaryCodec,
    dim: usize,
    /// The codes transposed to words for the scan (None when the width has no transposed
    /// kernel: the scan then reads the codes row by row).
    words: Option<TransposedCodes>,
}

impl BinaryTier {
    pub(super) fn new(codes: Vec<u8>, codec: BinaryCodec, dim: usize) -> Self {
        let words = TransposedCodes::new(&codes, codec.width());
        BinaryTier {
            codes,
            codec,
            dim,
            words,
        }
    }

    fn encode(&self, query: &[f32]) -> Vec<u8> {
        let mut q = vec![0u8; self.codec.width()];
        // A query with a NaN still gets bits (NaN > t is false): no error mid-search.
        let _ = self.codec.encode_slice(query, &mut q);
        q
    }
}

impl TierCodes for BinaryTier {
    fn tier(&self) -> Tier {
        Tier::Binary
    }

    fn query_group(&self) -> usize {
        QUERY_GROUP
    }

    /// Hamming distances are small integers, so many rows tie at the cut-off distance:
    /// rather than dropping tied rows arbitrarily, keep every row strictly closer than the
    /// cut-off plus tied rows (lowest row ids first) up to `2 x keep` in all. One pass: each
    /// query keeps a bounded buffer of candidates (at most `4 x keep`), pruned to the current
    /// cut-off whenever it fills.
    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>> {
        let w = self.codec.width();
        let rows = self.codes.len() / w.max(1);
        let qs: Vec<Vec<u8>> = group
            .chunks_exact(self.dim)
            .map(|q| self.encode(q))
            .collect();
        let mut sel: Vec<TieSelect> = qs.iter().map(|_| TieSelect::new(keep, 8 * w)).collect();
        let qwords: Vec<Vec<u64>> = qs
            .iter()
            .map(|q| {
                q.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
                    .collect()
            })
            .collect();
        let mut dist = vec![0u32; BLOCK_ROWS];
        let mut hits: Vec<Vec<(u32, u32)>> = vec![Vec::new(); qs.len()];
        let mut cuts: Vec<u32> = vec![0; qs.len()];
        for start in (0..rows).step_by(BLOCK_ROWS) {
            let n = BLOCK_ROWS.min(rows - start);
            match &self.words {
                Some(t) => {
                    for (c, s) in cuts.iter_mut().zip(&sel) {
                        *c = s.cut;
                    }
                    t.scan_within(&qwords, &cuts, start, n, &mut hits);
                    for (h, s) in hits.iter_mut().zip(sel.iter_mut()) {
                        for &(row, d) in h.iter() {
                            if d <= s.cut && valid.get(row as usize) {
                                s.push(row, d);
                            }
                        }
                        h.clear();
                    }
                }
                None => {
                    let block = &self.codes[start * w..(start + n) * w];
                    for (q, s) in qs.iter().zip(sel.iter_mut()) {
                        hamming_scan(q, block, &mut dist[..n]);
                        for (i, &h) in dist[..n].iter().enumerate() {
                            if h <= s.cut && valid.get(start + i) {
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

    fn scorer<'a>(&'a self, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
        let q = self.encode(query);
        let (w, d) = (self.codec.width(), self.dim as f32);
        Box::new(move |r| {
            let r = r as usize;
            d - 2.0 * hamming(&q, &self.codes[r * w..(r + 1) * w]) as f32
        })
    }
}
