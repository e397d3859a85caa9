//! Multi-bit RaBitQ: 2 to 8 bits per rotated dimension (Extended RaBitQ, Gao et al., SIGMOD
//! 2025; FAISS's multi-bit `RaBitQuantizer`), on the 1-bit codec's centering and rotation.
//!
//! # Codes
//! With `b` bits, `e = b - 1` extra bits. For the rotated residual `r = P (x - c)` (see
//! [`super::rabitq`]) and `o = |r| / |r|` (per coordinate), each coordinate gets a magnitude
//! level `k_i in 0..2^e` and the code vector is `y_i = sign(r_i) (k_i + 1/2)`: a point of the
//! grid of odd half-integers, scaled. The levels are `k_i = min(floor(t o_i), 2^e - 1)` for the
//! rescale factor `t` that maximizes the cosine `<y, r> / (|y| |r|)`: every `t` at which some
//! level steps up is visited in order (a heap of next steps) over `[t_end * tight(e), t_end]`,
//! `t_end = (2^e + 9) / max o` (the reference implementation's search window; the cosine only
//! changes at those steps). With `e = 0` this is the 1-bit code.
//!
//! A code is two columns, so a coarse scan reads only the first:
//! - `<column>_rq`: the 1-bit code, unchanged ([`super::rabitq`]): the sign bits
//!   `b_i = [r_i > 0]` packed MSB-first, f32 LE `|r|`, f32 LE `ip`.
//! - `<column>_rq<b>`: `FixedSizeBinary(e * B / 8 + 8)`: `e` bit planes of `B / 8` bytes each,
//!   packed MSB-first like the sign bits, then f32 LE `scale` and f32 LE `ip_ex`. Plane `j`
//!   (`j = 0..e`) holds bit `e - 1 - j` (most significant first) of the folded level
//!   `k'_i = k_i` when `b_i = 1`, `2^e - 1 - k_i` when `b_i = 0`, so that the full unsigned
//!   code is `u_i = 2^e b_i + k'_i` and `y_i = u_i - (2^b - 1) / 2`.
//!   `scale = |r|^2 / <y, r>`, `ip_ex = <y, r> / (|y| |r|)` (the cosine reached).
//!
//! # Estimator and error bound
//! `<q, x> ~= <q, c> + scale * <P q, y>`, with
//! `<P q, y> = 2^e S_sign + sum_j 2^(e-1-j) S_j - (2^b - 1) / 2 * sum_i (P q)_i`, where `S` is
//! the sum of `P q` over the set bits of a plane (`crate::kernels::planes`). It equals the
//! inner product of `q` with the decoded vector `c + P^T (scale * y)`
//! ([`RabitqExCodec::decode`]). The bound is the 1-bit one with the code's own cosine: with
//! probability at least `1 - 2 exp(-c0 eps0^2)` over the rotation,
//!
//! `|estimate - <q, x>| <= eps0 * |q| * |r| * sqrt(1 - ip^2) / ip / sqrt(B - 1)`
//!
//! ([`half_width`]; `eps0 = 1.9` as in the papers, [`DEFAULT_EPS0`]: the error is close to
//! normal with this bound at 1.9 standard deviations, so about 94% of single estimates fall
//! inside it, tested). `ip` rises towards 1 with
//! the bits (about 0.80 at 1 bit, 0.96 at 2, 0.99 at 4 on rotated data), so each extra bit
//! roughly halves the error.

use std::collections::BinaryHeap;
use std::sync::Arc;

use arrow_array::Array;

use super::rabitq::RabitqCodec;
use super::{binary_codes, decoded, encode_rows, fixed_binary, read_vectors, row_nulls, Encoded};
use crate::error::{Error, Result};
use crate::kernels::planes::PlaneQuery;

/// Widest code: 8 bits per dimension.
pub const MAX_BITS: u8 = 8;

/// Bytes of the extra bits of `bits`-bit RaBitQ over `code_bits` (padded) bits: `bits - 1`
/// planes and two `f32` factors.
pub(crate) fn extra_width(code_bits: usize, bits: u8) -> usize {
    (bits as usize).saturating_sub(1) * code_bits.div_ceil(8) + 8
}

/// The recipe's description of the extra bits.
pub(crate) const ENCODING: &str = "Extended RaBitQ extra bits (with the rabitq column of sign_column): levels k_i = min(floor(t |r_i| / |r|), \
     2^e - 1), e = bits - 1, t maximizing <y, r> / |y| for y_i = sign(r_i) (k_i + 1/2); e bit planes of B / 8 bytes, \
     plane j holding bit e-1-j of k'_i = (b_i ? k_i : 2^e - 1 - k_i), packed MSB-first; then f32 LE scale = |r|^2 / <y, r> \
     and f32 LE ip = <y, r> / (|y| |r|); estimate <q, x> = <q, mean> + scale * sum_i (P q)_i (2^e b_i + k'_i - (2^bits - 1) / 2)";

/// The confidence parameter of the bound used by default (`eps0` in the RaBitQ papers; about
/// 94% of single estimates fall inside the bound at 1.9).
pub const DEFAULT_EPS0: f32 = 1.9;

/// The smallest `eps0` a tier may prune by (`rabitqB:bound=EPS0`): the default. A top-k is
/// reported certified on the strength of the bound, and that claim is only as good as the
/// bound's confidence: at 1.9 about 6% of single estimates fall outside it (and a true
/// top-k row is lost only when its estimate errs by roughly twice that), while at 1.0 a
/// third do and at 1e-45 all of them, so a narrower bound would certify wrong answers.
/// Wider bounds (more candidates kept, a stronger certificate) are always allowed.
pub const MIN_EPS0: f32 = DEFAULT_EPS0;

/// Start of the rescale search window as a fraction of its end, per extra bits (from the
/// reference implementation, rabitqlib's `kTightStart`).
const TIGHT_START: [f64; 8] = [0.0, 0.15, 0.20, 0.52, 0.59, 0.71, 0.75, 0.77];

/// The bound's half-width for a code with residual norm `norm` and cosine `ip` over `b_pad`
/// rotated dimensions, per unit of `eps0 * |q|` (0 for a vector at the centroid; infinite for a
/// degenerate code).
pub fn half_width(norm: f32, ip: f32, b_pad: usize) -> f32 {
    if norm <= 0.0 {
        return 0.0;
    }
    if ip <= 0.0 || b_pad < 2 {
        return f32::INFINITY;
    }
    let ip = ip.min(1.0) as f64;
    (norm as f64 * (1.0 - ip * ip).sqrt() / ip / ((b_pad - 1) as f64).sqrt()) as f32
}

/// `|q|` (accumulated in f64), the query's share of every bound's half-width.
pub fn query_norm(q: &[f32]) -> f32 {
    q.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32
}

/// A multi-bit RaBitQ codec: the 1-bit codec and the bits per dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct RabitqExCodec {
    base: RabitqCodec,
    bits: u8,
}

/// A heap entry: the rescale factor at which coordinate `i` steps up (min-heap by `t`).
#[derive(PartialEq)]
struct Step(f64, usize);
impl Eq for Step {}
impl PartialOrd for Step {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Step {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
    }
}

impl RabitqExCodec {
    /// A codec of `bits` (2 to 8) per dimension on `base`'s centering and rotation.
    pub fn new(base: RabitqCodec, bits: u8) -> Result<Self> {
        if !(2..=MAX_BITS).contains(&bits) {
            return Err(Error::bad_argument(
                "rabitq_bits",
                format!(
                    "rabitq bits {bits}: expected 2 to {MAX_BITS} (1 is the sign-bit code alone)"
                ),
            ));
        }
        Ok(RabitqExCodec { base, bits })
    }

    /// The 1-bit codec (centering, rotation, the `_rq` column).
    pub fn base(&self) -> &RabitqCodec {
        &self.base
    }

    /// Bits per dimension.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Extra bits per dimension (`bits - 1`): planes in the extra column.
    pub fn planes(&self) -> usize {
        self.bits as usize - 1
    }

    /// Bytes of one plane (`B / 8`).
    pub fn plane_bytes(&self) -> usize {
        self.base.bit_bytes()
    }

    /// Bytes per extra code: the planes and two `f32`.
    pub fn width(&self) -> usize {
        extra_width(self.base.bits(), self.bits)
    }

    /// Encodes a vector column to the 1-bit codes (`_rq`) and the extra codes (`_rq<b>`).
    pub fn encode(&self, array: &dyn Array) -> Result<(Encoded, Encoded)> {
        let v = read_vectors(array, self.base.dim())?;
        let (w1, w2) = (self.base.width(), self.width());
        // Both codes of a row side by side (the shared row loop skips null rows and names
        // the first non-finite one), then split into the two columns.
        let (both, _) = encode_rows(&v, w1 + w2, |src, out| {
            let rows = out.len() / (w1 + w2);
            let mut s = vec![0u8; rows * w1];
            let mut e = vec![0u8; rows * w2];
            self.encode_slice(src, &mut s, &mut e)?;
            for ((o, s), e) in out
                .chunks_exact_mut(w1 + w2)
                .zip(s.chunks_exact(w1))
                .zip(e.chunks_exact(w2))
            {
                o[..w1].copy_from_slice(s);
                o[w1..].copy_from_slice(e);
            }
            Ok(0)
        })?;
        let mut signs = Vec::with_capacity(v.len() * w1);
        let mut extra = Vec::with_capacity(v.len() * w2);
        for row in both.chunks_exact(w1 + w2) {
            signs.extend_from_slice(&row[..w1]);
            extra.extend_from_slice(&row[w1..]);
        }
        let nulls = v.nulls().cloned();
        Ok((
            Encoded {
                array: Arc::new(fixed_binary(signs, w1, nulls.clone())),
                clipped: 0,
            },
            Encoded {
                array: Arc::new(fixed_binary(extra, w2, nulls)),
                clipped: 0,
            },
        ))
    }

    /// Slice kernel: encodes whole rows of `src` into both codes. `Err(row)` for the first
    /// row holding a NaN or infinity.
    pub fn encode_slice(
        &self,
        src: &[f32],
        signs: &mut [u8],
        extra: &mut [u8],
    ) -> std::result::Result<u64, usize> {
        let (dim, b_pad) = (self.base.dim(), self.base.bits());
        let (w1, w2) = (self.base.width(), self.width());
        assert!(
            src.len().is_multiple_of(dim)
                && signs.len() == src.len() / dim * w1
                && extra.len() == src.len() / dim * w2,
            "slices are not whole rows"
        );
        let mut centered = vec![0f32; dim];
        let mut r = vec![0f32; b_pad];
        let mut levels = vec![0u8; b_pad];
        for (row, ((x, s), e)) in src
            .chunks_exact(dim)
            .zip(signs.chunks_exact_mut(w1))
            .zip(extra.chunks_exact_mut(w2))
            .enumerate()
        {
            if x.iter().any(|v| !v.is_finite()) {
                return Err(row);
            }
            self.base.residual(x, &mut centered, &mut r);
            self.base.write_code(&r, s);
            self.encode_residual(&r, &mut levels, e);
        }
        Ok(0)
    }

    /// The levels `k_i` of the best rescale of `r` (see the module docs), into `levels`.
    pub fn levels(&self, r: &[f32], levels: &mut [u8]) {
        let ex = self.planes();
        let max_code = (1u32 << ex) - 1;
        let norm = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        levels.fill(0);
        if norm == 0.0 {
            return;
        }
        let o: Vec<f64> = r.iter().map(|&v| v.abs() as f64 / norm).collect();
        let max_o = o.iter().cloned().fold(0.0, f64::max);
        let t_end = (max_code as f64 + 10.0) / max_o;
        let t_start = t_end * TIGHT_START[ex];
        let mut k: Vec<u32> = o
            .iter()
            .map(|&x| ((t_start * x) as u32).min(max_code))
            .collect();
        let (mut num, mut den) = (0f64, 0f64);
        for (&ki, &x) in k.iter().zip(&o) {
            num += (ki as f64 + 0.5) * x;
            den += (ki as f64 + 0.5) * (ki as f64 + 0.5);
        }
        let mut heap: BinaryHeap<Step> = k
            .iter()
            .zip(&o)
            .enumerate()
            .filter(|(_, (&ki, &x))| ki < max_code && x > 0.0)
            .map(|(i, (&ki, &x))| Step((ki + 1) as f64 / x, i))
            .collect();
        let mut best = num / den.sqrt();
        // The best configuration holds from `best_t` until the next step after it.
        let (mut best_t, mut until) = (t_start, None::<f64>);
        while let Some(Step(t, i)) = heap.pop() {
            if until.is_none() {
                until = Some(t);
            }
            if t >= t_end {
                break;
            }
            k[i] += 1;
            num += o[i];
            den += 2.0 * k[i] as f64;
            let cos = num / den.sqrt();
            if cos > best {
                best = cos;
                best_t = t;
                until = None;
            }
            if k[i] < max_code {
                heap.push(Step((k[i] + 1) as f64 / o[i], i));
            }
        }
        let t = (best_t + until.unwrap_or(t_end)) / 2.0;
        for (l, &x) in levels.iter_mut().zip(&o) {
            *l = ((t * x) as u32).min(max_code) as u8;
        }
    }

    /// Writes the extra code of the rotated residual `r` (`levels`: scratch of `B` values).
    fn encode_residual(&self, r: &[f32], levels: &mut [u8], out: &mut [u8]) {
        let ex = self.planes();
        let nb = self.plane_bytes();
        let max_code = (1u8 << ex) - 1;
        self.levels(r, levels);
        out.fill(0);
        let (mut yr, mut yy, mut rr) = (0f64, 0f64, 0f64);
        for (i, (&v, &k)) in r.iter().zip(levels.iter()).enumerate() {
            let folded = if v > 0.0 { k } else { max_code - k };
            for j in 0..ex {
                if folded >> (ex - 1 - j) & 1 == 1 {
                    out[j * nb + i / 8] |= 1 << (7 - i % 8);
                }
            }
            let m = k as f64 + 0.5;
            yr += m * v.abs() as f64;
            yy += m * m;
            rr += v as f64 * v as f64;
        }
        let (scale, ip) = if yr > 0.0 {
            (rr / yr, yr / (yy.sqrt() * rr.sqrt()))
        } else {
            (0.0, 0.0)
        };
        let f = ex * nb;
        out[f..f + 4].copy_from_slice(&(scale as f32).to_le_bytes());
        out[f + 4..f + 8].copy_from_slice(&(ip as f32).to_le_bytes());
    }

    /// `scale` and `ip_ex` stored in an extra code.
    pub fn factors(&self, extra: &[u8]) -> (f32, f32) {
        let f = self.planes() * self.plane_bytes();
        let g = |i: usize| f32::from_le_bytes(extra[i..i + 4].try_into().expect("4 bytes"));
        (g(f), g(f + 4))
    }

    /// The first factor of a stored extra code that no encoder writes (`scale` and `ip_ex`
    /// are finite and `>= 0`), with its name: a corrupt or tampered code, refused before it
    /// is scored.
    pub fn bad_factor(&self, extra: &[u8]) -> Option<(&'static str, f32)> {
        let (scale, ip) = self.factors(extra);
        [("scale", scale), ("ip_ex", ip)]
            .into_iter()
            .find(|&(_, x)| !(x.is_finite() && x >= 0.0))
    }

    /// The code vector `y` of one code (`B` values).
    pub fn code_vector(&self, sign: &[u8], extra: &[u8], y: &mut [f32]) {
        let (ex, nb) = (self.planes(), self.plane_bytes());
        let half = ((1u32 << self.bits) - 1) as f32 / 2.0;
        for (i, y) in y.iter_mut().enumerate() {
            let bit = |p: &[u8]| (p[i / 8] >> (7 - i % 8) & 1) as u32;
            let mut u = bit(sign) << ex;
            for j in 0..ex {
                u |= bit(&extra[j * nb..]) << (ex - 1 - j);
            }
            *y = u as f32 - half;
        }
    }

    /// Decodes one code into `out` (`dim` values): `c + P^T (scale * y)`.
    pub fn decode_one(&self, sign: &[u8], extra: &[u8], out: &mut [f32]) {
        let (scale, _) = self.factors(extra);
        let mut y = vec![0f32; self.base.bits()];
        self.code_vector(sign, extra, &mut y);
        y.iter_mut().for_each(|v| *v *= scale);
        self.base.rotate_back(&y, out);
        for (o, c) in out.iter_mut().zip(self.base.centroid()) {
            *o += c;
        }
    }

    /// Decodes the two columns to the vectors whose inner product with any query is the
    /// estimator's value (`FixedSizeList<Float32, D>`; null where either code is null).
    pub fn decode(
        &self,
        signs: &dyn Array,
        extra: &dyn Array,
    ) -> Result<arrow_array::FixedSizeListArray> {
        if signs.len() != extra.len() {
            return Err(Error::Schema(format!(
                "{} sign codes and {} extra codes: the two rabitq columns must have the same rows",
                signs.len(),
                extra.len()
            )));
        }
        let (w1, w2, dim) = (self.base.width(), self.width(), self.base.dim());
        let s = binary_codes(signs, w1, "rabitq")?;
        let e = binary_codes(extra, w2, "rabitq extra bits")?;
        let mut values = vec![0f32; signs.len() * dim];
        for ((s, e), o) in s
            .chunks_exact(w1)
            .zip(e.chunks_exact(w2))
            .zip(values.chunks_exact_mut(dim))
        {
            self.decode_one(s, e, o);
        }
        let nulls =
            arrow_buffer::NullBuffer::union(row_nulls(signs).as_ref(), row_nulls(extra).as_ref());
        Ok(decoded(values, dim, nulls))
    }

    /// Prepares a float query (`dim` values) for scoring.
    pub fn prepare_query(&self, query: &[f32]) -> RabitqExQuery {
        let base = self.base.prepare_query(query);
        RabitqExQuery {
            planes: PlaneQuery::new(&base.rotated),
            qc: base.qc,
            sum: base.sum,
            norm: query_norm(query),
        }
    }
}

/// A query prepared for a [`RabitqExCodec`].
#[derive(Debug, Clone, PartialEq)]
pub struct RabitqExQuery {
    planes: PlaneQuery,
    /// `<q, c>`.
    pub qc: f32,
    /// `sum_i (P q)_i`.
    pub sum: f32,
    /// `|q|`.
    pub norm: f32,
}

impl RabitqExQuery {
    /// The estimator of `<q, x>` for one code (its sign code and extra code).
    pub fn score(&self, codec: &RabitqExCodec, sign: &[u8], extra: &[u8]) -> f32 {
        let (ex, nb) = (codec.planes(), codec.plane_bytes());
        let mut planes: [&[u8]; crate::kernels::planes::MAX_PLANES] = [&[]; 8];
        planes[0] = &sign[..nb];
        for j in 0..ex {
            planes[1 + j] = &extra[j * nb..(j + 1) * nb];
        }
        let mut s = [0f32; crate::kernels::planes::MAX_PLANES];
        self.planes.sums(&planes[..ex + 1], &mut s[..ex + 1]);
        let mut dot = s[0] * (1u32 << ex) as f32;
        for j in 0..ex {
            dot += s[1 + j] * (1u32 << (ex - 1 - j)) as f32;
        }
        let half = ((1u32 << codec.bits) - 1) as f32 / 2.0;
        let (scale, _) = codec.factors(extra);
        self.qc + scale * (dot - half * self.sum)
    }

    /// The estimate and its bound's half-width at confidence `eps0` ([`half_width`]).
    pub fn score_bounded(
        &self,
        codec: &RabitqExCodec,
        sign: &[u8],
        extra: &[u8],
        eps0: f32,
    ) -> (f32, f32) {
        let (norm, _) = codec.base.code_factors(sign);
        let (_, ip) = codec.factors(extra);
        let h = eps0 * self.norm * half_width(norm, ip, codec.base.bits());
        (self.score(codec, sign, extra), h)
    }
}

#[cfg(test)]
#[path = "rabitq_ex_tests.rs"]
mod tests;
