//! The coded tiers of a corpus, one file per scheme, each behind [`TierCodes`]: its codes,
//! its codec and any scan layout derived from them (built once, when the codes are given,
//! so it cannot go stale), its first-tier scan over the whole corpus and its per-row scorer
//! for rescoring candidates. The float tier reads vectors on demand instead
//! ([`super::floats`]).

mod binary;
mod f16;
mod int4;
mod int8;
mod rabitq;
mod rabitq_ex;

use crate::search::RabitqBits;
use std::sync::Arc;

use half::f16 as F16;

use super::chain::Tier;
pub(crate) use super::topk::{TopK, Valid};
use crate::codec::binary::BinaryCodec;
use crate::codec::int4::Int4Codec;
use crate::codec::int8::Int8Codec;
use crate::codec::rabitq::RabitqCodec;
use crate::codec::rabitq_ex::RabitqExCodec;
use crate::error::{Error, Result};
use crate::search::bound::Bounded;

/// A per-row scorer with the half-width of its error bound.
pub(crate) type BoundedScorer<'a> = Box<dyn Fn(u32) -> (f32, f32) + 'a>;

/// One coded tier of a corpus.
pub(crate) trait TierCodes: Send + Sync {
    /// The tier these codes serve.
    fn tier(&self) -> Tier;
    /// Queries scanned together over each block of codes by the first-tier scan.
    fn query_group(&self) -> usize;
    /// First-tier scan: the best `keep` valid rows for each query of `group` (row-major,
    /// `dim` per query), best first.
    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>>;
    /// Scores one row against `query` (the rescoring of later tiers).
    fn scorer<'a>(&'a self, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a>;
    /// Scores one row with the half-width of its error bound at confidence `eps0`
    /// ([`crate::search::bound`]); None for a tier whose estimates have no such bound.
    fn bounded_scorer<'a>(&'a self, _query: &[f32], _eps0: f32) -> Option<BoundedScorer<'a>> {
        None
    }
    /// First-tier scan pruning by the bound: for each query of `group`, the rows whose upper
    /// bound reaches the k-th best lower bound (None for a tier without a bound).
    fn scan_bounded(
        &self,
        _group: &[f32],
        _k: usize,
        _eps0: f32,
        _valid: Valid<'_>,
    ) -> Option<Vec<Bounded>> {
        None
    }
    /// The deterministic bound on `|score - <q, x>|` for `query` over every row (for
    /// certifying a top-k, [`crate::search::bound`]); None when the tier has none.
    fn slack(&self, _query: &[f32]) -> Option<f32> {
        None
    }
}

/// The codes of one tier and their codec: what a [`super::Corpus`] searches. Rows are
/// row-major, `width` bytes (or `dim` values) per row.
#[non_exhaustive]
pub enum Codes {
    /// Packed sign bits (`BinaryCodec::width` bytes per row).
    Binary(Vec<u8>, BinaryCodec),
    /// int8 codes (`dim` per row).
    Int8(Vec<i8>, Int8Codec),
    /// Packed int4 codes (`Int4Codec::width` bytes per row).
    Int4(Vec<u8>, Int4Codec),
    /// f16 vectors (`dim` per row).
    F16(Vec<F16>),
    /// RaBitQ codes (`RabitqCodec::width` bytes per row), shared with the multi-bit tier
    /// of the same encoding (one copy of the sign codes for both).
    Rabitq(Arc<[u8]>, RabitqCodec),
    /// Multi-bit RaBitQ: the two columns of one encoding, scored together.
    RabitqEx {
        /// The 1-bit codes with their factors (`RabitqCodec::width` bytes per row), shared
        /// with the 1-bit tier.
        signs: Arc<[u8]>,
        /// The extra bits with their factors (`RabitqExCodec::width` bytes per row).
        extra: Vec<u8>,
        /// The codec of both.
        codec: RabitqExCodec,
    },
}

impl Codes {
    /// The tier these codes serve.
    pub fn tier(&self) -> Tier {
        match self {
            Codes::Binary(..) => Tier::Binary,
            Codes::Int8(..) => Tier::Int8,
            Codes::Int4(..) => Tier::Int4,
            Codes::F16(..) => Tier::F16,
            Codes::Rabitq(..) => Tier::Rabitq(RabitqBits::ONE),
            Codes::RabitqEx { codec, .. } => {
                Tier::Rabitq(RabitqBits::new(codec.bits()).expect("the codec's bits are 2 to 8"))
            }
        }
    }

    /// Checks there are `rows` rows of `dim` dimensions and builds the tier (and its scan
    /// layout).
    pub(crate) fn build(self, rows: usize, dim: usize) -> Result<Box<dyn TierCodes>> {
        let tier = self.tier();
        // Values held, values per row, and the codec's dimension.
        let (len, width, codec_dim) = match &self {
            Codes::Binary(c, k) => (c.len(), k.width(), Some(k.dim())),
            Codes::Int8(c, k) => (c.len(), dim, Some(k.dim())),
            Codes::Int4(c, k) => (c.len(), k.width(), Some(k.dim())),
            Codes::F16(c) => (c.len(), dim, None),
            Codes::Rabitq(c, k) => (c.len(), k.width(), Some(k.dim())),
            Codes::RabitqEx {
                signs: s,
                extra: e,
                codec: k,
            } => {
                if Some(s.len()) != rows.checked_mul(k.base().width()) {
                    return Err(Error::Schema(format!(
                        "the {tier} sign codes hold {} bytes, {rows} rows x {} expected",
                        s.len(),
                        k.base().width()
                    )));
                }
                (e.len(), k.width(), Some(k.base().dim()))
            }
        };
        if codec_dim.is_some_and(|d| d != dim) {
            return Err(Error::DimensionMismatch {
                context: format!("the {tier} codec"),
                expected: dim,
                found: codec_dim.unwrap_or(0),
            });
        }
        if Some(len) != rows.checked_mul(width) {
            return Err(Error::Schema(format!(
                "the {tier} codes hold {len} values, {rows} rows x {width} expected"
            )));
        }
        // Floats in stored codes are checked before any scan layout or bound is built from
        // them (rows counted over the corpus).
        match &self {
            Codes::F16(c) => check_halves(c, dim, 0)?,
            Codes::Rabitq(c, k) => check_factors(c, k.width(), 0, |x| k.bad_factor(x))?,
            Codes::RabitqEx {
                signs: s,
                extra: e,
                codec: k,
            } => {
                check_factors(s, k.base().width(), 0, |x| k.base().bad_factor(x))?;
                check_factors(e, k.width(), 0, |x| k.bad_factor(x))?;
            }
            _ => {}
        }
        Ok(match self {
            Codes::Binary(c, k) => Box::new(binary::BinaryTier::new(c, k, dim)),
            Codes::Int8(c, k) => Box::new(int8::Int8Tier::new(c, k, dim)),
            Codes::Int4(c, k) => Box::new(int4::Int4Tier::new(c, k, dim)),
            Codes::F16(c) => Box::new(f16::F16Tier::new(c, dim)),
            Codes::Rabitq(c, k) => Box::new(rabitq::RabitqTier::new(c, k, dim)),
            Codes::RabitqEx {
                signs: s,
                extra: e,
                codec: k,
            } => Box::new(rabitq_ex::RabitqExTier::new(s, e, k, dim)),
        })
    }
}

/// The first row of `codes` (`width` bytes per row; rows counted from `first_row`) with a
/// factor `bad` refuses (a RaBitQ factor NaN, infinite or negative: see
/// [`RabitqCodec::bad_factor`]), as [`Error::BadCode`]. Such a factor would rank its row
/// first, or widen or void its error bound and so the certificate.
pub(crate) fn check_factors(
    codes: &[u8],
    width: usize,
    first_row: u64,
    bad: impl Fn(&[u8]) -> Option<(&'static str, f32)>,
) -> Result<()> {
    for (r, code) in codes.chunks_exact(width.max(1)).enumerate() {
        if let Some((field, value)) = bad(code) {
            return Err(Error::BadCode {
                row: first_row + r as u64,
                field: field.to_string(),
                value: value as f64,
                rule: " and >= 0",
            });
        }
    }
    Ok(())
}

/// The first row of f16 `values` (`dim` per row; rows counted from `first_row`) holding a
/// NaN or infinity (the f16 codec clips to ±65504 and never writes one), as
/// [`Error::BadCode`].
pub(crate) fn check_halves(values: &[F16], dim: usize, first_row: u64) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::BadCode {
            row: first_row + (i / dim.max(1)) as u64,
            field: format!("value at dimension {}", i % dim.max(1)),
            value: values[i].to_f64(),
            rule: "",
        }),
    }
}

/// `sum_i |q_i| step_i / 2` and a margin for float rounding: how far the asymmetric score of
/// an affine code (int8, int4) can be from the exact inner product.
pub(super) fn affine_slack(query: &[f32], step: &[f32]) -> f32 {
    let s: f64 = query
        .iter()
        .zip(step)
        .map(|(&q, &d)| (q as f64).abs() * d as f64 / 2.0)
        .sum();
    (s * (1.0 + 1e-5) + 1e-5) as f32
}

/// Rows of f16 or int4 codes widened to f32 at a time by their scans.
const WIDE_BLOCK_ROWS: usize = 256;

/// The first-tier scan of the tiers whose rows widen to f32 (f16 values, int4 codes
/// dequantized: the dot product with those is the asymmetric int4 score): a block of rows
/// widened once by `widen(first_row, rows, out)`, then scored against the whole group with
/// the blocked float kernel.
pub(super) fn widened_scan(
    rows: usize,
    dim: usize,
    group: &[f32],
    keep: usize,
    valid: Valid<'_>,
    widen: &dyn Fn(usize, usize, &mut [f32]),
) -> Vec<Vec<(u32, f32)>> {
    let nq = group.len() / dim;
    let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(keep)).collect();
    let block = crate::kernels::matmul::QueryBlock::new(group, dim);
    let stride = block.stride();
    let mut wide = vec![0f32; WIDE_BLOCK_ROWS * dim];
    let mut scores = vec![0f32; WIDE_BLOCK_ROWS * stride];
    for start in (0..rows).step_by(WIDE_BLOCK_ROWS) {
        let n = WIDE_BLOCK_ROWS.min(rows - start);
        let r = &mut wide[..n * dim];
        widen(start, n, r);
        let s = &mut scores[..n * stride];
        block.scores(r, s);
        for (i, row) in s.chunks_exact(stride).enumerate() {
            if !valid.get(start + i) {
                continue;
            }
            for (top, &x) in tops.iter_mut().zip(row) {
                top.push(x, (start + i) as u32);
            }
        }
    }
    tops.into_iter().map(TopK::into_sorted).collect()
}
