//! `rabitq`: 1-bit codes with two correction factors and an unbiased inner-product
//! estimator (RaBitQ, Gao & Long, SIGMOD 2024).
//!
//! # Encoding
//! With the centroid `c` (the calibration's per-dimension mean) and an orthogonal rotation
//! `P`, a vector `x` becomes the rotated residual `r = P (x - c)` in `B` dimensions. Its code
//! is the sign bits `b_i = [r_i > 0]`, packed MSB-first like the `binary` codec, followed by
//! two little-endian `f32`: the residual norm `|r|` and `ip = <s, r / |r|>`, where
//! `s = (2b - 1) / sqrt(B)` is the unit vector the bits stand for (`ip = sum |r_i| /
//! (sqrt(B) |r|)`, in `(0, 1]`). Column type: `FixedSizeBinary(B / 8 + 8)`.
//!
//! The rotation ([`Rotation::Hadamard`]) zero-pads `x - c` to the next power of two
//! `B >= D` and applies `rounds` times a random sign flip (a ±1 diagonal drawn from the stored
//! seed) followed by the orthonormal Walsh-Hadamard transform: `O(B log B)` per vector, and
//! reproducible from `(rounds, seed)` alone, so the file never stores a `B x B` matrix. It
//! spreads each residual's energy evenly over the coordinates, which is what the error bound
//! below assumes. [`Rotation::None`] uses `B = D` and the identity.
//!
//! # Estimator
//! For a float query `q` (not centered), with `q' = P q`:
//!
//! `<q, x> = <q, c> + <q', r> ~= <q, c> + |r| <q', s> / <s, r/|r|>`
//!
//! which is `<q, c> + F * sum_i q'_i (2 b_i - 1)` with `F = |r| / (ip sqrt(B))`. The estimate
//! equals the inner product of `q` with the decoded vector `c + P^T (F (2b - 1))` (what
//! [`RabitqCodec::decode`] returns), and is unbiased over the random rotation. RaBitQ's
//! bound: with probability at least `1 - 2 exp(-c0 eps0^2)`,
//!
//! `|<q', s> / <s, r^> - <q', r^>| <= |q'| * sqrt((1 - ip^2) / ip^2) * eps0 / sqrt(B - 1)`
//!
//! (`r^ = r / |r|`; `eps0 = 1.9` gives a failure probability near 0.1% in the paper); `ip`
//! concentrates near 0.8 for rotated data, so the error shrinks as `1 / sqrt(B)`.
//!
//! # Fast scoring
//! [`RabitqQuery::lut`] quantizes the rotated, centered query `P (q - c)` into 64-entry
//! lookup tables over 6-bit groups of the code (the centroid's share, `F <P c, 2b - 1>`, is a
//! per-code constant computed once when the corpus is loaded) (`crate::kernels::rabitq`); [`crate::kernels::rabitq::RabitqBlocks`]
//! scans codes with one `vpermb` per group per 64 codes on AVX-512 VBMI; elsewhere
//! [`RabitqQuery::nibbles`] builds 16-entry tables over 4-bit groups for
//! `crate::kernels::fastscan` (one `vpshufb` per group per 32 codes on AVX2). Either
//! estimate differs from the float estimator by at most `F * groups * delta` (`delta` the
//! table step), tested.

use std::sync::Arc;

use arrow_array::Array;
use serde::{Deserialize, Serialize};

use super::Encoded;
use super::{
    binary_codes, decode_rows, decoded, encode_rows, fixed_binary, read_vectors, row_nulls,
};
use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::kernels::fastscan::NibbleQuery;
use crate::kernels::rabitq::{group_patterns, LutQuery, GROUP_BITS};

/// Seed of the default rotation.
pub const DEFAULT_SEED: u64 = 0x5eed_2024;

/// Sign-flip + Hadamard rounds of the default rotation (three already spread a residual's
/// energy evenly over the coordinates, which is what the error bound assumes).
pub const DEFAULT_ROUNDS: u32 = 3;

/// The most rounds a rotation may have: each round costs `O(B log B)` per vector and query
/// and `B` stored sign flips per codec, so a recipe's `rounds` is bounded where it is read
/// ([`crate::metadata::ColumnRecipe::validate`]); more than a few rounds buys nothing.
pub const MAX_ROUNDS: u32 = 16;

/// The orthogonal transform applied before taking signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Rotation {
    /// No rotation: `B = D`.
    None,
    /// Randomized Hadamard transform: zero-pad to the next power of two, then `rounds` times
    /// (random ±1 diagonal from `seed`, orthonormal Walsh-Hadamard transform).
    Hadamard {
        /// Sign-flip + Hadamard rounds.
        rounds: u32,
        /// Seed of the sign flips (splitmix64).
        seed: u64,
    },
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation::Hadamard {
            rounds: DEFAULT_ROUNDS,
            seed: DEFAULT_SEED,
        }
    }
}

impl Rotation {
    /// Bits per code (`B`) of `dim`-dimensional vectors under this rotation: `dim` without
    /// rotation, else the next power of two (at least 8).
    pub fn code_bits(self, dim: usize) -> usize {
        match self {
            Rotation::None => dim,
            Rotation::Hadamard { .. } => dim.next_power_of_two().max(8),
        }
    }
}

impl std::str::FromStr for Rotation {
    type Err = Error;
    /// `none`, `hadamard` (3 rounds, default seed) or `hadamard:SEED`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "none" {
            return Ok(Rotation::None);
        }
        if s == "hadamard" {
            return Ok(Rotation::default());
        }
        if let Some(seed) = s.strip_prefix("hadamard:") {
            let seed = seed.parse().map_err(|_| {
                Error::bad_argument(
                    "rabitq_rotation",
                    format!("rotation seed {seed:?} is not an integer"),
                )
            })?;
            return Ok(Rotation::Hadamard {
                rounds: DEFAULT_ROUNDS,
                seed,
            });
        }
        Err(Error::bad_argument(
            "rabitq_rotation",
            format!("rotation {s:?}: expected none, hadamard or hadamard:SEED"),
        ))
    }
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// In-place orthonormal Walsh-Hadamard transform (`v.len()` a power of two).
fn fwht(v: &mut [f32]) {
    let n = v.len();
    let mut h = 1;
    while h < n {
        for i in (0..n).step_by(2 * h) {
            for j in i..i + h {
                let (a, b) = (v[j], v[j + h]);
                v[j] = a + b;
                v[j + h] = a - b;
            }
        }
        h *= 2;
    }
    let s = 1.0 / (n as f32).sqrt();
    for x in v.iter_mut() {
        *x *= s;
    }
}

/// Bytes of a RaBitQ code of `bits` (padded) bits: the sign bits and two `f32` factors.
pub(crate) fn code_width(bits: usize) -> usize {
    bits.div_ceil(8) + 8
}

/// The recipe's description of RaBitQ codes.
pub(crate) const ENCODING: &str = "RaBitQ: r = P (x - mean), P the rotation (randomized Hadamard: zero-pad to B = next power of \
     two, rounds of seeded sign flips + orthonormal Walsh-Hadamard), bits = r > 0 packed MSB-first (B / 8 bytes), \
     then f32 LE |r| and f32 LE ip = sum|r_i| / (sqrt(B) |r|); estimate <q, x> = <q, mean> + |r| / (ip sqrt(B)) \
     * sum_i (P q)_i (2 b_i - 1)";

/// RaBitQ codec: centroid, rotation and the code layout.
#[derive(Debug, Clone, PartialEq)]
pub struct RabitqCodec {
    dim: usize,
    bits: usize,
    rotation: Rotation,
    /// `rounds x bits` sign flips.
    signs: Vec<f32>,
    centroid: Vec<f32>,
    /// `P c`.
    rotated_centroid: Vec<f32>,
    /// For each 6-bit group, the 64 subset sums of `P c` (exact).
    centroid_tables: Vec<f64>,
    /// `sum_i (P c)_i`.
    centroid_sum: f64,
    fingerprint: String,
}

impl RabitqCodec {
    /// A codec for `cal`'s dimension, centered on its means. It holds `rounds x B` sign
    /// flips: a rotation read from a file must have passed
    /// [`crate::metadata::ColumnRecipe::validate`], which bounds `rounds` by [`MAX_ROUNDS`].
    pub fn new(cal: &Calibration, rotation: Rotation) -> Self {
        let dim = cal.dim();
        let (bits, signs) = match rotation {
            Rotation::None => (dim, Vec::new()),
            Rotation::Hadamard { rounds, seed } => {
                let bits = rotation.code_bits(dim);
                let mut s = seed;
                let signs = (0..rounds as usize * bits)
                    .map(|_| {
                        if splitmix64(&mut s) & 1 == 1 {
                            1.0
                        } else {
                            -1.0
                        }
                    })
                    .collect();
                (bits, signs)
            }
        };
        let mut codec = RabitqCodec {
            dim,
            bits,
            rotation,
            signs,
            centroid: cal.mean().to_vec(),
            rotated_centroid: Vec::new(),
            centroid_tables: Vec::new(),
            centroid_sum: 0.0,
            fingerprint: cal.fingerprint().to_string(),
        };
        let mut pc = vec![0f32; bits];
        codec.rotate(&codec.centroid, &mut pc);
        codec.centroid_tables = (0..codec.groups() * 64)
            .map(|k| {
                let (g, m) = (k / 64, k % 64);
                (0..GROUP_BITS)
                    .filter(|t| m >> t & 1 == 1)
                    .filter_map(|t| pc.get(g * GROUP_BITS + t))
                    .map(|&x| x as f64)
                    .sum()
            })
            .collect();
        codec.centroid_sum = pc.iter().map(|&x| x as f64).sum();
        codec.rotated_centroid = pc;
        codec
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bits per code (`B`).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Bytes of the sign bits.
    pub fn bit_bytes(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// Bytes per code: the bits and two `f32`.
    pub fn width(&self) -> usize {
        code_width(self.bits)
    }

    /// Lookup groups per code.
    pub fn groups(&self) -> usize {
        self.bits.div_ceil(GROUP_BITS)
    }

    /// The rotation.
    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    /// Fingerprint of the calibration.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `out = P x` (`x`: `dim` values, `out`: `bits`).
    pub fn rotate(&self, x: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        out[..self.dim].copy_from_slice(x);
        for signs in self.signs.chunks_exact(self.bits) {
            for (o, s) in out.iter_mut().zip(signs) {
                *o *= s;
            }
            fwht(out);
        }
    }

    /// `out = (P^T y)[..dim]`: the inverse rotation (each round undone in reverse order).
    pub fn rotate_back(&self, y: &[f32], out: &mut [f32]) {
        let mut v = y.to_vec();
        for signs in self.signs.chunks_exact(self.bits).rev() {
            fwht(&mut v);
            for (o, s) in v.iter_mut().zip(signs) {
                *o *= s;
            }
        }
        out.copy_from_slice(&v[..self.dim]);
    }

    /// Encodes a vector column to `FixedSizeBinary(width)`. `clipped` is always 0.
    pub fn encode(&self, array: &dyn Array) -> Result<Encoded> {
        let v = read_vectors(array, self.dim)?;
        let (codes, clipped) =
            encode_rows(&v, self.width(), |src, out| self.encode_slice(src, out))?;
        let array = Arc::new(fixed_binary(codes, self.width(), v.nulls().cloned()));
        Ok(Encoded { array, clipped })
    }

    /// Slice kernel: encodes whole rows of `src`. Returns 0, or `Err(row)` for the first row
    /// holding a NaN or infinity.
    pub fn encode_slice(&self, src: &[f32], out: &mut [u8]) -> std::result::Result<u64, usize> {
        let (dim, w) = (self.dim, self.width());
        assert!(
            src.len().is_multiple_of(dim) && out.len() == src.len() / dim * w,
            "slices are not whole rows"
        );
        let mut centered = vec![0f32; dim];
        let mut r = vec![0f32; self.bits];
        for (row, (x, o)) in src
            .chunks_exact(dim)
            .zip(out.chunks_exact_mut(w))
            .enumerate()
        {
            if x.iter().any(|v| !v.is_finite()) {
                return Err(row);
            }
            self.residual(x, &mut centered, &mut r);
            self.write_code(&r, o);
        }
        Ok(0)
    }

    /// `r = P (x - c)` (`centered`: `dim` values of scratch, `r`: `bits`).
    pub(crate) fn residual(&self, x: &[f32], centered: &mut [f32], r: &mut [f32]) {
        for ((c, &v), &m) in centered.iter_mut().zip(x).zip(&self.centroid) {
            *c = v - m;
        }
        self.rotate(centered, r);
    }

    /// Writes the 1-bit code of the rotated residual `r` (`width` bytes).
    pub(crate) fn write_code(&self, r: &[f32], o: &mut [u8]) {
        let nb = self.bit_bytes();
        o.fill(0);
        let (mut sq, mut abs) = (0f64, 0f64);
        for (i, &v) in r.iter().enumerate() {
            if v > 0.0 {
                o[i / 8] |= 1 << (7 - i % 8);
            }
            sq += v as f64 * v as f64;
            abs += v.abs() as f64;
        }
        let norm = sq.sqrt();
        let ip = if norm > 0.0 {
            abs / ((self.bits as f64).sqrt() * norm)
        } else {
            0.0
        };
        o[nb..nb + 4].copy_from_slice(&(norm as f32).to_le_bytes());
        o[nb + 4..nb + 8].copy_from_slice(&(ip as f32).to_le_bytes());
    }

    /// The centroid the residuals are taken from.
    pub fn centroid(&self) -> &[f32] {
        &self.centroid
    }

    /// The residual norm and `ip` stored in a code.
    pub fn code_factors(&self, code: &[u8]) -> (f32, f32) {
        let nb = self.bit_bytes();
        let f = |i: usize| f32::from_le_bytes(code[i..i + 4].try_into().expect("4 bytes"));
        (f(nb), f(nb + 4))
    }

    /// The first factor of a stored code that no encoder writes (`|r|` and `ip` are finite
    /// and `>= 0`), with its name (`norm` or `ip`): a corrupt or tampered code, refused
    /// before it is scored (a NaN factor would rank first and widen or void the bound).
    pub fn bad_factor(&self, code: &[u8]) -> Option<(&'static str, f32)> {
        let (norm, ip) = self.code_factors(code);
        [("norm", norm), ("ip", ip)]
            .into_iter()
            .find(|&(_, x)| !(x.is_finite() && x >= 0.0))
    }

    /// `F = |r| / (ip sqrt(B))`, the scale of the code's sign vector (0 for a vector at the
    /// centroid).
    pub fn scale(&self, code: &[u8]) -> f32 {
        let (norm, ip) = self.code_factors(code);
        if norm > 0.0 && ip > 0.0 {
            norm / (ip * (self.bits as f32).sqrt())
        } else {
            0.0
        }
    }

    /// `G = F * <P c, 2b - 1>`: the part of the estimate that comes from the centroid's
    /// component in the query, so the fast scan can quantize the centered query `P (q - c)`,
    /// whose tables are much finer when the data sit far from the origin.
    pub fn offset(&self, code: &[u8]) -> f32 {
        let mut p = vec![0u8; self.groups()];
        self.patterns(code, &mut p);
        self.offset_from_patterns(&p, self.scale(code))
    }

    /// [`RabitqCodec::offset`] from the code's group patterns and scale `f`.
    pub fn offset_from_patterns(&self, patterns: &[u8], f: f32) -> f32 {
        if f == 0.0 {
            return 0.0;
        }
        let set: f64 = patterns
            .iter()
            .enumerate()
            .map(|(g, &p)| self.centroid_tables[g * 64 + p as usize])
            .sum();
        (f as f64 * (2.0 * set - self.centroid_sum)) as f32
    }

    /// Decodes codes to `c + P^T (F (2b - 1))`, whose inner product with any query is the
    /// estimator's value (`FixedSizeList<Float32, D>`).
    pub fn decode(&self, codes: &dyn Array) -> Result<arrow_array::FixedSizeListArray> {
        let bytes = binary_codes(codes, self.width(), "rabitq")?;
        let values = decode_rows(bytes, self.width(), self.dim, |c, o| {
            for (code, out) in c
                .chunks_exact(self.width())
                .zip(o.chunks_exact_mut(self.dim))
            {
                self.decode_one(code, out);
            }
        });
        Ok(decoded(values, self.dim, row_nulls(codes)))
    }

    /// Decodes one code into `out` (`dim` values).
    pub fn decode_one(&self, code: &[u8], out: &mut [f32]) {
        let f = self.scale(code);
        let y: Vec<f32> = (0..self.bits)
            .map(|i| {
                if (code[i / 8] >> (7 - i % 8)) & 1 == 1 {
                    f
                } else {
                    -f
                }
            })
            .collect();
        self.rotate_back(&y, out);
        for (o, c) in out.iter_mut().zip(&self.centroid) {
            *o += c;
        }
    }

    /// Prepares a float query (`dim` values) for scoring.
    pub fn prepare_query(&self, query: &[f32]) -> RabitqQuery {
        assert_eq!(query.len(), self.dim, "query dimension");
        let mut rotated = vec![0f32; self.bits];
        self.rotate(query, &mut rotated);
        let qc: f64 = query
            .iter()
            .zip(&self.centroid)
            .map(|(&q, &c)| q as f64 * c as f64)
            .sum();
        let sum: f64 = rotated.iter().map(|&x| x as f64).sum();
        let centered: Vec<f32> = rotated
            .iter()
            .zip(&self.rotated_centroid)
            .map(|(q, c)| q - c)
            .collect();
        RabitqQuery {
            rotated,
            centered,
            qc: qc as f32,
            sum: sum as f32,
        }
    }

    /// The 6-bit group patterns of a code's bits (for `crate::kernels::rabitq`).
    pub fn patterns(&self, code: &[u8], out: &mut [u8]) {
        group_patterns(&code[..self.bit_bytes()], self.bits, out)
    }
}

/// A query prepared for a [`RabitqCodec`].
#[derive(Debug, Clone, PartialEq)]
pub struct RabitqQuery {
    /// `P q`.
    pub rotated: Vec<f32>,
    /// `<q, c>`.
    pub qc: f32,
    /// `sum_i (P q)_i`.
    pub sum: f32,
    /// `P (q - c)`: what the lookup tables quantize.
    pub centered: Vec<f32>,
}

impl RabitqQuery {
    /// The float estimator of `<q, x>` for a code of `codec`.
    pub fn score(&self, codec: &RabitqCodec, code: &[u8]) -> f32 {
        let mut set = 0f32;
        for (i, &q) in self.rotated.iter().enumerate() {
            if (code[i / 8] >> (7 - i % 8)) & 1 == 1 {
                set += q;
            }
        }
        self.qc + codec.scale(code) * (2.0 * set - self.sum)
    }

    /// The lookup tables of the fast scan, over the centered query: the estimate is
    /// `qc + G + F * sum_i (P (q - c))_i (2 b_i - 1)` with the code's offset `G`
    /// ([`RabitqCodec::offset`]), equal to [`RabitqQuery::score`] up to the tables' rounding.
    pub fn lut(&self) -> LutQuery {
        LutQuery::new(&self.centered, self.qc)
    }

    /// The 4-bit tables of the same estimate (`crate::kernels::fastscan`), scored on the
    /// code's bytes as stored.
    pub fn nibbles(&self) -> NibbleQuery {
        NibbleQuery::new(&self.centered, self.qc)
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use arrow_array::FixedSizeBinaryArray;
    use proptest::prelude::*;

    use super::*;
    use crate::codec::tests::{calibrate, DIMS};
    use crate::testutil::vectors_array;
    use crate::Vectors;

    #[test]
    fn rotation_is_orthonormal_and_inverted() {
        let a = vectors_array(4, 384, 3, 0.0);
        let codec = RabitqCodec::new(&calibrate(&a), Rotation::default());
        assert_eq!(codec.bits(), 512);
        let v = Vectors::try_new(&a).unwrap();
        let x = v.row(1);
        let mut y = vec![0f32; 512];
        codec.rotate(x, &mut y);
        let n0: f32 = x.iter().map(|v| v * v).sum();
        let n1: f32 = y.iter().map(|v| v * v).sum();
        assert!((n0 - n1).abs() <= 1e-4 * n0, "{n0} vs {n1}");
        // The rotation mixes: no output coordinate is a copy of an input one.
        assert!(y.iter().filter(|v| v.abs() > 1e-6).count() > 400);
        let mut back = vec![0f32; 384];
        codec.rotate_back(&y, &mut back);
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
        // The same seed gives the same rotation; another seed another one.
        let again = RabitqCodec::new(&calibrate(&a), Rotation::default());
        let mut y2 = vec![0f32; 512];
        again.rotate(x, &mut y2);
        assert_eq!(y, y2);
        let other = RabitqCodec::new(&calibrate(&a), "hadamard:7".parse().unwrap());
        other.rotate(x, &mut y2);
        assert_ne!(y, y2);
    }

    #[test]
    fn non_finite_values_name_the_row() {
        let a = vectors_array(5, 16, 1, 0.0);
        let codec = RabitqCodec::new(&calibrate(&a), Rotation::default());
        let mut v = Vectors::try_new(&a).unwrap().values().to_vec();
        v[3 * 16 + 2] = f32::NAN;
        let bad = crate::codec::tests::with_values(&a, v);
        let err = codec.encode(&bad).unwrap_err().to_string();
        assert!(err.contains("row 3"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn estimator_equals_dot_with_decoded_and_lut_is_within_bound(dim in prop::sample::select(DIMS.to_vec()), rotate in any::<bool>(), seed in any::<u64>()) {
            let a = vectors_array(12, dim, seed, 0.3);
            let rotation = if rotate { Rotation::default() } else { Rotation::None };
            let codec = RabitqCodec::new(&calibrate(&a), rotation);
            let enc = codec.encode(&a).unwrap();
            let codes = enc.array.as_any().downcast_ref::<FixedSizeBinaryArray>().unwrap().clone();
            prop_assert_eq!(codes.value_length() as usize, codec.width());
            let dec = codec.decode(&codes).unwrap();
            let dec = dec.values().as_primitive::<Float32Type>().values().to_vec();
            let q = Vectors::try_new(&vectors_array(1, dim, seed ^ 5, 0.0)).unwrap().values().to_vec();
            let p = codec.prepare_query(&q);
            let lut = p.lut();
            let nibbles = p.nibbles();
            let mut pats = vec![0u8; codec.groups()];
            for r in 0..codes.len() {
                if codes.is_null(r) {
                    continue;
                }
                let code = codes.value(r);
                let est = p.score(&codec, code) as f64;
                let dot: f64 = q.iter().zip(&dec[r * dim..(r + 1) * dim]).map(|(a, b)| *a as f64 * *b as f64).sum();
                let scale: f64 = q.iter().zip(&dec[r * dim..(r + 1) * dim]).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum::<f64>() + 1e-3;
                prop_assert!((est - dot).abs() <= 1e-4 * scale, "estimate {est} vs decoded dot {dot}");
                codec.patterns(code, &mut pats);
                let f = codec.scale(code);
                let fast = lut.estimate(&pats, f, codec.offset(code)) as f64;
                let bound = f as f64 * codec.groups() as f64 * lut.a as f64 / 2.0 + 1e-4 * (1.0 + est.abs());
                prop_assert!((fast - est).abs() <= bound, "lut {fast} vs float {est} (bound {bound})");
                let fast = nibbles.estimate(code, f, codec.offset(code)) as f64;
                let bound = f as f64 * nibbles.groups() as f64 * nibbles.a as f64 / 2.0 + 1e-4 * (1.0 + est.abs());
                prop_assert!((fast - est).abs() <= bound, "4-bit lut {fast} vs float {est} (bound {bound})");
            }
        }
    }

    #[test]
    fn estimates_track_the_true_inner_product() {
        // Rotated 1-bit estimates of 384-d vectors against the paper's error scale.
        let a = vectors_array(300, 384, 11, 0.0);
        let codec = RabitqCodec::new(&calibrate(&a), Rotation::default());
        let codes = codec.encode(&a).unwrap().array;
        let codes = codes
            .as_any()
            .downcast_ref::<FixedSizeBinaryArray>()
            .unwrap();
        let v = Vectors::try_new(&a).unwrap();
        let q = v.row(0).to_vec();
        let p = codec.prepare_query(&q);
        let qn: f64 = p
            .rotated
            .iter()
            .map(|&x| x as f64 * x as f64)
            .sum::<f64>()
            .sqrt();
        let mut within = [0; 2];
        for r in 0..v.len() {
            let x = v.row(r);
            let exact: f64 = q.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum();
            let est = p.score(&codec, codes.value(r)) as f64;
            let (norm, ip) = codec.code_factors(codes.value(r));
            let (norm, ip) = (norm as f64, ip as f64);
            let sigma = norm * qn * ((1.0 - ip * ip) / (ip * ip)).sqrt() / (511f64).sqrt();
            within[0] += ((est - exact).abs() <= 1.9 * sigma) as usize;
            within[1] += ((est - exact).abs() <= 3.0 * sigma) as usize;
        }
        // The error is close to normal with standard deviation sigma: about 94% of the
        // estimates fall within 1.9 sigma (the paper's eps0) and nearly all within 3 sigma.
        assert!(
            within[0] >= 270,
            "{within:?} of 300 estimates inside 1.9 / 3 sigma"
        );
        assert!(
            within[1] >= 296,
            "{within:?} of 300 estimates inside 1.9 / 3 sigma"
        );
    }
}
