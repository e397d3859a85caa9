//! The tier chain over an in-memory corpus of codes.
//!
//! A chain such as `binary:8,int8:2,float` scans every corpus row with the first tier and
//! keeps `k x 8` candidates per query, rescores those with int8 and keeps `k x 2`, and
//! rescores those with the float vectors for the final top-k. Scores are similarities
//! (higher is better): binary `D - 2 * hamming` (the dot product of the ±1 sign vectors),
//! int8 / int4 the query's dot product with the dequantized vector (asymmetric), f16 and float
//! the exact dot product. Queries run in parallel (rayon); the first tier scans the corpus in
//! blocks shared by a group of queries, so a block of codes is reused from cache.

use std::fmt;
use std::str::FromStr;

use half::f16;
use rayon::prelude::*;

use super::topk::TopK;
use crate::codec::binary::BinaryCodec;
use crate::codec::int4::Int4Codec;
use crate::codec::int8::Int8Codec;
use crate::codec::rabitq::RabitqCodec;
use crate::error::{Error, Result};
use crate::kernels::rabitq::{LutQuery, RabitqBlocks};
use crate::kernels::{float::dot, hamming::hamming_scan};

/// A scoring tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Hamming distance of binary codes.
    Binary,
    /// Asymmetric float x int8.
    Int8,
    /// Asymmetric float x int4.
    Int4,
    /// Float x f16.
    F16,
    /// Exact float.
    Float,
    /// RaBitQ estimator over 1-bit codes.
    Rabitq,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Binary => "binary",
            Tier::Int8 => "int8",
            Tier::Int4 => "int4",
            Tier::F16 => "f16",
            Tier::Float => "float",
            Tier::Rabitq => "rabitq",
        })
    }
}

impl FromStr for Tier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "binary" => Tier::Binary,
            "int8" => Tier::Int8,
            "int4" => Tier::Int4,
            "f16" => Tier::F16,
            "float" => Tier::Float,
            "rabitq" => Tier::Rabitq,
            _ => {
                return Err(Error::InvalidOption(format!(
                    "tier {s:?}: expected binary, rabitq, int8, int4, f16 or float"
                )))
            }
        })
    }
}

/// The memory the candidates of one block of queries may take (256 MiB); more queries are
/// searched in several blocks.
const CANDIDATE_BUDGET_BYTES: usize = 256 << 20;

/// One tier of a chain: every tier but the last keeps `k x factor` candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSpec {
    /// The tier.
    pub tier: Tier,
    /// Oversampling factor (ignored for the last tier).
    pub factor: usize,
}

impl TierSpec {
    /// Parses `binary:8,int8:2,float` (the last tier takes no factor).
    pub fn parse_chain(s: &str) -> Result<Vec<TierSpec>> {
        let parts: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(Error::InvalidOption("empty tier chain".into()));
        }
        let n = parts.len();
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (name, factor) = p.split_once(':').map_or((*p, None), |(a, b)| (a, Some(b)));
                let tier: Tier = name.parse()?;
                let factor = match (factor, i + 1 == n) {
                    (Some(f), false) => {
                        f.parse::<usize>().ok().filter(|&f| f >= 1).ok_or_else(|| {
                            Error::InvalidOption(format!(
                                "tier {p:?}: the factor must be a whole number >= 1"
                            ))
                        })?
                    }
                    (None, false) => {
                        return Err(Error::InvalidOption(format!(
                            "tier {p:?}: every tier but the last needs a factor, e.g. {name}:4"
                        )))
                    }
                    (Some(_), true) => {
                        return Err(Error::InvalidOption(format!(
                            "the last tier {p:?} takes no factor"
                        )))
                    }
                    (None, true) => 1,
                };
                Ok(TierSpec { tier, factor })
            })
            .collect()
    }
}

/// One result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row in the corpus (0-based over all corpus files).
    pub row: u32,
    /// Similarity in the scoring tier's units (see the module docs).
    pub score: f32,
    /// The tier that gave the score.
    pub tier: Tier,
}

/// Reads float vectors of corpus rows for the float tier, a run of rows at a time, so
/// neither the float column nor every candidate's vector need be in memory at once (the CLI
/// and the recall report read just the candidate rows from Parquet).
pub trait FloatRows: Send + Sync {
    /// Calls `f(i, values)` with the row-major vectors of `rows[i..i + n]` (`values.len()`
    /// is `n x dim`, `n > 0`) for consecutive runs covering `rows` (sorted, unique) in order.
    fn visit(&self, rows: &[u32], f: &mut dyn FnMut(usize, &[f32]) -> Result<()>) -> Result<()>;

    /// The vectors of `rows` (sorted, unique), row-major, in that order.
    fn fetch(&self, rows: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.visit(rows, &mut |_, v| {
            out.extend_from_slice(v);
            Ok(())
        })?;
        Ok(out)
    }
}

/// Rows per run of [`visit_rows`].
const VISIT_ROWS: usize = 4096;

/// [`FloatRows::visit`] over row-major `values` (`dim` per row) in memory, each run's
/// vectors passed through `map` (e.g. a Matryoshka prefix) before `f` sees them.
pub(crate) fn visit_rows(
    values: &[f32],
    dim: usize,
    rows: &[u32],
    map: &dyn Fn(Vec<f32>) -> Result<Vec<f32>>,
    f: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
) -> Result<()> {
    for (c, run) in rows.chunks(VISIT_ROWS).enumerate() {
        f(c * VISIT_ROWS, &map(rows_of(values, dim, run))?)?;
    }
    Ok(())
}

/// Float vectors held in memory.
#[derive(Debug, Clone)]
pub struct InMemoryFloats {
    /// Row-major values.
    pub values: Vec<f32>,
    /// Dimension.
    pub dim: usize,
}

impl FloatRows for InMemoryFloats {
    fn visit(&self, rows: &[u32], f: &mut dyn FnMut(usize, &[f32]) -> Result<()>) -> Result<()> {
        visit_rows(&self.values, self.dim, rows, &Ok, f)
    }
}

/// The vectors of `rows` from row-major `values` (`dim` per row), in that order.
pub(crate) fn rows_of(values: &[f32], dim: usize, rows: &[u32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * dim);
    for &r in rows {
        let r = r as usize;
        out.extend_from_slice(&values[r * dim..(r + 1) * dim]);
    }
    out
}

/// The searchable corpus: codes in memory, floats on demand.
pub struct Corpus {
    /// Rows.
    pub rows: usize,
    /// Dimension of the vectors the codes encode.
    pub dim: usize,
    /// Binary codes (`width` bytes per row) and their codec.
    pub binary: Option<(Vec<u8>, BinaryCodec)>,
    /// int8 codes and their codec.
    pub int8: Option<(Vec<i8>, Int8Codec)>,
    /// Packed int4 codes and their codec.
    pub int4: Option<(Vec<u8>, Int4Codec)>,
    /// f16 vectors.
    pub f16: Option<Vec<f16>>,
    /// Float vectors.
    pub floats: Option<Box<dyn FloatRows>>,
    /// Rows whose vector is null are never returned (`None`: every row is valid).
    pub valid: Option<Vec<bool>>,
    /// The binary codes transposed to words (built by [`Corpus::prepare`]) for the scan.
    pub binary_words: Option<crate::kernels::hamming::TransposedCodes>,
    /// RaBitQ codes (`width` bytes per row) and their codec.
    pub rabitq: Option<(Vec<u8>, RabitqCodec)>,
    /// The RaBitQ codes re-laid for the table scan (built by [`Corpus::prepare`]).
    pub rabitq_blocks: Option<RabitqBlocks>,
}

impl Corpus {
    /// A corpus of `rows` vectors of `dim` dimensions with no codes yet: fill the fields of
    /// the tiers you need, then call [`Corpus::prepare`].
    pub fn new(rows: usize, dim: usize) -> Self {
        Corpus {
            rows,
            dim,
            binary: None,
            int8: None,
            int4: None,
            f16: None,
            floats: None,
            valid: None,
            binary_words: None,
            rabitq: None,
            rabitq_blocks: None,
        }
    }
}

/// Streaming selection of the rows closest in Hamming distance, ties kept (see
/// `Corpus::scan_binary`).
struct TieSelect {
    keep: usize,
    /// Rows farther than this are not candidates.
    cut: u32,
    cands: Vec<(u32, u32)>,
    counts: Vec<u64>,
}

impl TieSelect {
    fn new(keep: usize, bits: usize) -> Self {
        Self {
            keep,
            cut: bits as u32,
            cands: Vec::with_capacity(4 * keep + 1),
            counts: vec![0; bits + 1],
        }
    }

    #[inline]
    fn push(&mut self, row: u32, dist: u32) {
        self.cands.push((row, dist));
        self.counts[dist as usize] += 1;
        if self.cands.len() > 4 * self.keep.max(1) {
            self.prune();
        }
    }

    /// The smallest distance with at least `keep` rows at or below it.
    fn cut_off(&self) -> u32 {
        let mut below = 0;
        for (d, &c) in self.counts.iter().enumerate() {
            below += c;
            if below >= self.keep as u64 {
                return d as u32;
            }
        }
        (self.counts.len() - 1) as u32
    }

    fn prune(&mut self) {
        let cut = self.cut_off();
        if cut < self.cut {
            self.cut = cut;
            let counts = &mut self.counts;
            self.cands.retain(|&(_, d)| {
                if d > cut {
                    counts[d as usize] -= 1;
                }
                d <= cut
            });
        }
    }

    /// Rows closer than the cut-off, then tied rows in row order up to `2 x keep` in all;
    /// best first (distance, then row).
    fn finish(mut self) -> Vec<(u32, u32)> {
        let cut = self.cut_off();
        let below: u64 = self.counts[..cut as usize].iter().sum();
        let at = self.counts[cut as usize];
        let ties = (self.keep as u64)
            .saturating_sub(below)
            .max(at.min((2 * self.keep as u64).saturating_sub(below)));
        let mut taken = 0;
        self.cands.retain(|&(_, d)| {
            if d == cut {
                taken += 1;
                taken <= ties
            } else {
                d < cut
            }
        });
        self.cands.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        self.cands
    }
}

/// Rows per block of the first-tier scan, and queries sharing a block.
const BLOCK_ROWS: usize = 4096;
/// Rows per block of the binary scan: small enough (24 KiB of 384-bit codes) that the
/// block stays in L1 while every query of the group reads it.
const BINARY_BLOCK_ROWS: usize = 4096;
const QUERY_GROUP: usize = 8;
/// Rows of f16 or int4 codes widened to f32 at a time by their scans.
const F16_BLOCK_ROWS: usize = 256;
/// Blocks of 64 RaBitQ codes scanned between updates of the queries' cut-offs.
const RABITQ_STEP_BLOCKS: usize = 16;
/// Queries sharing a block in the int8 scan (one AVX-512 accumulator per query).
const INT8_QUERY_GROUP: usize = 16;
/// Queries sharing a block in the binary scan: its codes are so small that fewer queries
/// per block leave it bound by memory bandwidth rather than popcount.
const BINARY_QUERY_GROUP: usize = 32;

impl Corpus {
    /// Builds the scan-friendly copies of the codes (the transposed binary codes, the RaBitQ
    /// table layout) that are missing. Call after filling the corpus (and after replacing
    /// codes, with their copies reset to None); searching works without it, only slower.
    pub fn prepare(&mut self) {
        if let (Some((codes, codec)), None) = (&self.binary, &self.binary_words) {
            self.binary_words = crate::kernels::hamming::TransposedCodes::new(codes, codec.width());
        }
        if let (Some((codes, codec)), None) = (&self.rabitq, &self.rabitq_blocks) {
            self.rabitq_blocks = Some(rabitq_blocks(codes, codec));
        }
    }

    #[inline]
    fn is_valid(&self, row: usize) -> bool {
        self.valid.as_ref().is_none_or(|v| v[row])
    }

    fn check(&self, chain: &[TierSpec]) -> Result<()> {
        for s in chain {
            let ok = match s.tier {
                Tier::Binary => self.binary.is_some(),
                Tier::Int8 => self.int8.is_some(),
                Tier::Int4 => self.int4.is_some(),
                Tier::F16 => self.f16.is_some(),
                Tier::Float => self.floats.is_some(),
                Tier::Rabitq => self.rabitq.is_some(),
            };
            if !ok {
                return Err(Error::InvalidOption(format!(
                    "the corpus has no {} codes for the {} tier",
                    s.tier, s.tier
                )));
            }
        }
        Ok(())
    }

    /// The top-`k` rows for each query (`queries` row-major, `dim` per query), best first.
    pub fn search(&self, queries: &[f32], k: usize, chain: &[TierSpec]) -> Result<Vec<Vec<Hit>>> {
        self.search_inner(queries, k, chain, None)
    }

    /// [`Corpus::search`], also returning the candidate rows each tier kept: `trace[t][q]`
    /// holds the rows tier `t` passed on for query `q` (for the last tier, its top-k), best
    /// first. The recall report attributes the recall lost to each tier with it.
    #[allow(clippy::type_complexity)]
    pub fn search_traced(
        &self,
        queries: &[f32],
        k: usize,
        chain: &[TierSpec],
    ) -> Result<(Vec<Vec<Hit>>, Vec<Vec<Vec<u32>>>)> {
        let mut trace = Vec::new();
        let hits = self.search_inner(queries, k, chain, Some(&mut trace))?;
        Ok((hits, trace))
    }

    fn search_inner(
        &self,
        queries: &[f32],
        k: usize,
        chain: &[TierSpec],
        mut trace: Option<&mut Vec<Vec<Vec<u32>>>>,
    ) -> Result<Vec<Vec<Hit>>> {
        if chain.is_empty() {
            return Err(Error::InvalidOption("empty tier chain".into()));
        }
        self.check(chain)?;
        if self.dim == 0 || !queries.len().is_multiple_of(self.dim) {
            return Err(Error::DimensionMismatch {
                context: "queries".into(),
                expected: self.dim,
                found: if self.dim == 0 {
                    queries.len()
                } else {
                    queries.len() % self.dim
                },
            });
        }
        // No tier can keep more rows than the corpus has, whatever k and the factors say:
        // sizes the user controls never reach an allocation uncapped.
        let k = k.min(self.rows);
        let most = chain
            .iter()
            .map(|s| k.saturating_mul(s.factor).min(self.rows))
            .max()
            .unwrap_or(k)
            .max(1);
        // Candidates of a block of queries are held at once: blocks of queries keep them
        // within CANDIDATE_BUDGET_BYTES (at least one scan group per block).
        let per_query = most * std::mem::size_of::<(u32, f32)>() * 4;
        let block =
            (CANDIDATE_BUDGET_BYTES / per_query).max(BINARY_QUERY_GROUP.max(INT8_QUERY_GROUP));
        let nq = queries.len() / self.dim;
        if nq <= block {
            return self.search_block(queries, k, chain, trace);
        }
        let mut hits = Vec::with_capacity(nq);
        for qs in queries.chunks(block * self.dim) {
            let mut t = trace.as_ref().map(|_| Vec::new());
            hits.extend(self.search_block(qs, k, chain, t.as_mut())?);
            if let (Some(all), Some(t)) = (trace.as_deref_mut(), t) {
                if all.is_empty() {
                    *all = t;
                } else {
                    for (a, b) in all.iter_mut().zip(t) {
                        a.extend(b);
                    }
                }
            }
        }
        Ok(hits)
    }

    /// [`Corpus::search_inner`] over one block of queries (`k` already capped).
    fn search_block(
        &self,
        queries: &[f32],
        k: usize,
        chain: &[TierSpec],
        mut trace: Option<&mut Vec<Vec<Vec<u32>>>>,
    ) -> Result<Vec<Vec<Hit>>> {
        let nq = queries.len() / self.dim;
        let keep = |i: usize| {
            if i + 1 == chain.len() {
                k
            } else {
                k.saturating_mul(chain[i].factor).min(self.rows)
            }
        };
        // Tier 1: scan everything, in groups of queries sharing corpus blocks.
        let first = chain[0].tier;
        let mut candidates: Vec<Vec<(u32, f32)>> = queries
            .par_chunks(
                self.dim
                    * match first {
                        Tier::Binary => BINARY_QUERY_GROUP,
                        Tier::Int8 | Tier::Rabitq => INT8_QUERY_GROUP,
                        Tier::F16 | Tier::Int4 => crate::kernels::matmul::QUERY_TILE,
                        _ => QUERY_GROUP,
                    },
            )
            .flat_map_iter(|group| self.scan(first, group, keep(0)))
            .collect::<Result<Vec<_>>>()?;
        let mut record = |c: &[Vec<(u32, f32)>], last: bool| {
            if let Some(t) = trace.as_deref_mut() {
                t.push(
                    c.iter()
                        .map(|v| {
                            let n = if last { k.min(v.len()) } else { v.len() };
                            v[..n].iter().map(|&(r, _)| r).collect()
                        })
                        .collect(),
                );
            }
        };
        record(&candidates, chain.len() == 1);
        let mut tier = first;
        // Further tiers rescore the candidates.
        for (i, spec) in chain.iter().enumerate().skip(1) {
            tier = spec.tier;
            let want = keep(i);
            candidates = if spec.tier == Tier::Float {
                self.rescore_float(queries, &candidates, want)?
            } else {
                candidates
                    .par_iter()
                    .enumerate()
                    .map(|(q, cands)| {
                        let query = &queries[q * self.dim..(q + 1) * self.dim];
                        let mut top = TopK::new(want);
                        let scorer = self.scorer(spec.tier, query);
                        for &(row, _) in cands {
                            top.push(scorer(row), row);
                        }
                        top.into_sorted()
                    })
                    .collect()
            };
            record(&candidates, i + 1 == chain.len());
        }
        debug_assert_eq!(candidates.len(), nq);
        Ok(candidates
            .into_iter()
            .map(|c| {
                // The binary tier keeps tied rows beyond its count: the answer is the top k.
                c.into_iter()
                    .take(k)
                    .map(|(row, score)| Hit { row, score, tier })
                    .collect()
            })
            .collect())
    }

    /// A closure scoring one corpus row against `query` with `tier` (not for Float).
    fn scorer<'a>(&'a self, tier: Tier, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
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
    fn scan(&self, tier: Tier, group: &[f32], keep: usize) -> Vec<Result<Vec<(u32, f32)>>> {
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
    fn scan_binary(&self, group: &[f32], keep: usize) -> Vec<Vec<(u32, f32)>> {
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
    fn scan_rabitq(&self, group: &[f32], keep: usize) -> Vec<Vec<(u32, f32)>> {
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

    /// Rescores candidates with the float vectors, reading each candidate row once, a run of
    /// rows at a time (the vectors of every candidate are never held together).
    fn rescore_float(
        &self,
        queries: &[f32],
        cands: &[Vec<(u32, f32)>],
        keep: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        let floats = self.floats.as_ref().expect("checked");
        let mut rows: Vec<u32> = cands.iter().flatten().map(|c| c.0).collect();
        rows.sort_unstable();
        rows.dedup();
        // Every (row, query, position) pair, in row order, scored as its row's run arrives.
        let mut pairs: Vec<(u32, u32, u32)> = cands
            .iter()
            .enumerate()
            .flat_map(|(q, cs)| {
                cs.iter()
                    .enumerate()
                    .map(move |(j, &(row, _))| (row, q as u32, j as u32))
            })
            .collect();
        pairs.sort_unstable();
        let mut scores: Vec<Vec<f32>> = cands.iter().map(|c| vec![0f32; c.len()]).collect();
        let d = self.dim;
        let mut at = 0usize;
        floats.visit(&rows, &mut |first, values| {
            let run = &rows[first..first + values.len() / d];
            let Some(&last) = run.last() else {
                return Ok(());
            };
            let end = at + pairs[at..].partition_point(|p| p.0 <= last);
            let part = &pairs[at..end];
            let s: Vec<f32> = part
                .par_iter()
                .map(|&(row, q, _)| {
                    let i = run.binary_search(&row).expect("visited");
                    let q = q as usize;
                    dot(&queries[q * d..(q + 1) * d], &values[i * d..(i + 1) * d])
                })
                .collect();
            for (&(_, q, j), s) in part.iter().zip(s) {
                scores[q as usize][j as usize] = s;
            }
            at = end;
            Ok(())
        })?;
        if at != pairs.len() {
            let missing = rows.len() - rows.partition_point(|&r| r <= pairs[at].0) + 1;
            return Err(Error::InvalidOption(format!(
                "the float column returned {} of the {} candidate rows",
                rows.len() - missing,
                rows.len()
            )));
        }
        Ok(cands
            .par_iter()
            .zip(scores.par_iter())
            .map(|(cs, sc)| {
                let mut top = TopK::new(keep);
                for (&(row, _), &s) in cs.iter().zip(sc) {
                    top.push(s, row);
                }
                top.into_sorted()
            })
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::calibrate;
    use crate::testutil::vectors_array;
    use crate::vectors::Vectors;

    fn corpus(rows: usize, dim: usize) -> (Corpus, Vec<f32>) {
        let a = vectors_array(rows, dim, 11, 0.0);
        let cal = calibrate(&a);
        let values = Vectors::try_new(&a).unwrap().values().to_vec();
        let i8c = Int8Codec::new(&cal);
        let mut i8codes = vec![0u8; values.len()];
        i8c.encode_slice(&values, &mut i8codes, 0x80).unwrap();
        let bc = BinaryCodec::new(dim);
        let mut bin = vec![0u8; rows * bc.width()];
        bc.encode_slice(&values, &mut bin).unwrap();
        let c = Corpus {
            rows,
            dim,
            binary: Some((bin, bc)),
            int8: Some((i8codes.into_iter().map(|c| c as i8).collect(), i8c)),
            int4: None,
            f16: None,
            floats: Some(Box::new(InMemoryFloats {
                values: values.clone(),
                dim,
            })),
            valid: None,
            binary_words: None,
            rabitq: None,
            rabitq_blocks: None,
        };
        let mut c = c;
        c.prepare();
        (c, values)
    }

    fn exact(values: &[f32], q: &[f32], k: usize) -> Vec<u32> {
        let d = q.len();
        let mut s: Vec<(u32, f32)> = values
            .chunks_exact(d)
            .enumerate()
            .map(|(i, v)| (i as u32, dot(q, v)))
            .collect();
        s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        s.into_iter().take(k).map(|x| x.0).collect()
    }

    #[test]
    fn float_chain_is_exact_and_tiers_are_labelled() {
        let (c, values) = corpus(5000, 33);
        let queries = Vectors::try_new(&vectors_array(20, 33, 99, 0.0))
            .unwrap()
            .values()
            .to_vec();
        let res = c
            .search(&queries, 10, &TierSpec::parse_chain("float").unwrap())
            .unwrap();
        for (q, hits) in res.iter().enumerate() {
            let want = exact(&values, &queries[q * 33..(q + 1) * 33], 10);
            assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), want);
            assert!(hits.iter().all(|h| h.tier == Tier::Float));
        }
        // When the coarse tiers keep every row, the float tier's answer is exact.
        let res2 = c
            .search(
                &queries,
                10,
                &TierSpec::parse_chain("binary:500,int8:500,float").unwrap(),
            )
            .unwrap();
        assert_eq!(res, res2);
        // Scores are sorted best first.
        for hits in &res2 {
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }

    #[test]
    fn int8_alone_ranks_by_the_dequantized_dot_product() {
        let (c, _) = corpus(3000, 16);
        let (codes, codec) = c.int8.as_ref().unwrap();
        let bytes: Vec<u8> = codes.iter().map(|&x| x as u8).collect();
        let mut dec = vec![0f32; bytes.len()];
        codec.decode_slice(&bytes, &mut dec, 0x80);
        let queries = Vectors::try_new(&vectors_array(5, 16, 3, 0.0))
            .unwrap()
            .values()
            .to_vec();
        let res = c
            .search(&queries, 7, &TierSpec::parse_chain("int8").unwrap())
            .unwrap();
        for (q, hits) in res.iter().enumerate() {
            let want = exact(&dec, &queries[q * 16..(q + 1) * 16], 7);
            let got: Vec<u32> = hits.iter().map(|h| h.row).collect();
            // Equal up to float rounding of near-ties.
            let same = got.iter().filter(|r| want.contains(r)).count();
            assert!(same >= 6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn int4_and_f16_alone_rank_by_their_decoded_dot_product() {
        let (mut c, values) = corpus(3000, 16);
        let a = vectors_array(3000, 16, 11, 0.0);
        let i4 = crate::Int4Codec::new(&calibrate(&a));
        let mut codes = vec![0u8; 3000 * i4.width()];
        i4.encode_slice(&values, &mut codes).unwrap();
        let mut dec = vec![0f32; values.len()];
        i4.decode_slice(&codes, &mut dec);
        c.int4 = Some((codes, i4));
        c.f16 = Some(values.iter().map(|&x| f16::from_f32(x)).collect());
        let h: Vec<f32> = values.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
        // 70 queries: more than one 64-query tile of the blocked scan.
        let queries = Vectors::try_new(&vectors_array(70, 16, 3, 0.0))
            .unwrap()
            .values()
            .to_vec();
        for (chain, truth) in [("int4", &dec), ("f16", &h)] {
            let res = c
                .search(&queries, 7, &TierSpec::parse_chain(chain).unwrap())
                .unwrap();
            assert_eq!(res.len(), 70);
            for (q, hits) in res.iter().enumerate() {
                let want = exact(truth, &queries[q * 16..(q + 1) * 16], 7);
                let got: Vec<u32> = hits.iter().map(|h| h.row).collect();
                // Equal up to float rounding of near-ties.
                let same = got.iter().filter(|r| want.contains(r)).count();
                assert!(same >= 6, "{chain}: {got:?} vs {want:?}");
                // Scores are the dot products with the decoded vectors.
                let r = hits[0].row as usize;
                let dot: f32 = queries[q * 16..(q + 1) * 16]
                    .iter()
                    .zip(&truth[r * 16..(r + 1) * 16])
                    .map(|(a, b)| a * b)
                    .sum();
                assert!((hits[0].score - dot).abs() <= 1e-4 * (1.0 + dot.abs()));
            }
        }
    }

    #[test]
    fn null_rows_are_never_returned_by_any_tier() {
        let (mut c, _) = corpus(200, 16);
        c.valid = Some((0..200).map(|r| r % 2 == 0).collect());
        let queries = Vectors::try_new(&vectors_array(4, 16, 5, 0.0))
            .unwrap()
            .values()
            .to_vec();
        for chain in ["float", "int8", "binary", "binary:3,int8:2,float"] {
            let res = c
                .search(&queries, 10, &TierSpec::parse_chain(chain).unwrap())
                .unwrap();
            for hits in &res {
                assert_eq!(hits.len(), 10, "{chain}");
                assert!(hits.iter().all(|h| h.row % 2 == 0), "{chain}: {hits:?}");
            }
        }
    }

    #[test]
    fn chains_parse_and_missing_tiers_are_errors() {
        let c = TierSpec::parse_chain("binary:8,int8:2,float").unwrap();
        assert_eq!(
            c.iter().map(|s| (s.tier, s.factor)).collect::<Vec<_>>(),
            vec![(Tier::Binary, 8), (Tier::Int8, 2), (Tier::Float, 1)]
        );
        for bad in ["", "binary,int8", "int8:2", "binary:0,int8", "bits:2,int8"] {
            assert!(TierSpec::parse_chain(bad).is_err(), "{bad}");
        }
        let (mut corpus, _) = corpus(10, 8);
        corpus.floats = None;
        assert!(corpus
            .search(
                &[0.0; 8],
                3,
                &TierSpec::parse_chain("int8:2,float").unwrap()
            )
            .is_err());
        assert!(corpus
            .search(&[0.0; 8], 3, &TierSpec::parse_chain("int4").unwrap())
            .is_err());
    }
}
