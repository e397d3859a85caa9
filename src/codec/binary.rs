//! `binary`: one bit per dimension, set when the value is above a threshold.
//!
//! The threshold is 0 ([`BinaryThreshold::Zero`], plain sign bits) or, for *centered*
//! codes, each dimension's mean or median from the calibration. Bits are packed
//! **MSB-first** like `numpy.packbits`: dimension `8j + i` is bit `7 - i` of byte `j`, and
//! the padding bits of the last byte (when `D % 8 != 0`) are zero. With threshold 0 the
//! bytes equal `sentence_transformers.quantize_embeddings(x, precision="ubinary")`.
//! Output: `FixedSizeBinary(ceil(D / 8))`.
//!
//! Decoding gives `threshold ± spread` per dimension: `spread = 1` for sign bits (so a code
//! decodes to its ±1 sign vector) and `std * sqrt(2 / pi)` for centered bits (the mean
//! distance of a normal variable from its center, the least-squares reconstruction under a
//! normal model).

use std::sync::Arc;

use arrow_array::Array;

use super::{
    binary_codes, decode_rows, decoded, encode_rows, fixed_binary, read_vectors, row_nulls, Encoded,
};
use crate::calibration::Calibration;
use crate::error::{Error, Result};

/// Where the bit threshold sits (named `zero`, `mean`, `median` in options and recipes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BinaryThreshold {
    /// Sign bits: value > 0.
    #[default]
    Zero,
    /// Centered: value > the dimension's mean.
    Mean,
    /// Centered: value > the dimension's (approximate) median.
    Median,
}

impl std::str::FromStr for BinaryThreshold {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "zero" => Ok(Self::Zero),
            "mean" => Ok(Self::Mean),
            "median" => Ok(Self::Median),
            _ => Err(Error::BadArgument {
                name: "binary_threshold".into(),
                problem: format!("{s:?}: expected zero, mean or median"),
            }),
        }
    }
}

/// Bytes of binary codes of `dims` dimensions: one bit each.
pub(crate) fn width(dims: usize) -> usize {
    dims.div_ceil(8)
}

/// The recipe's description of binary codes.
pub(crate) const ENCODING: &str =
    "bit = value > threshold; packed MSB-first like numpy.packbits (dimension 8j+i is bit \
     7-i of byte j), padding bits zero";

/// Binary codec: thresholds and decode spreads per dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryCodec {
    dim: usize,
    threshold: BinaryThreshold,
    thresholds: Vec<f32>,
    spread: Vec<f32>,
    fingerprint: Option<String>,
}

impl BinaryCodec {
    /// Sign bits (threshold 0) for `dim`-dimensional vectors; needs no calibration.
    pub fn new(dim: usize) -> Self {
        BinaryCodec {
            dim,
            threshold: BinaryThreshold::Zero,
            thresholds: vec![0.0; dim],
            spread: vec![1.0; dim],
            fingerprint: None,
        }
    }

    /// Bits thresholded as `threshold` says, taking means or medians from `cal`.
    pub fn with_calibration(cal: &Calibration, threshold: BinaryThreshold) -> Result<Self> {
        let dim = cal.dim();
        let centers = match threshold {
            BinaryThreshold::Zero => {
                return Ok(Self {
                    fingerprint: Some(cal.fingerprint().into()),
                    ..Self::new(dim)
                })
            }
            BinaryThreshold::Mean => cal.mean().to_vec(),
            BinaryThreshold::Median => cal
                .median()
                .ok_or(Error::MissingCalibrationData(
                    "per-dimension medians (calibrate with a quantile sketch)",
                ))?
                .to_vec(),
        };
        let k = (2.0 / std::f32::consts::PI).sqrt();
        Ok(BinaryCodec {
            dim,
            threshold,
            thresholds: centers,
            spread: cal.std().iter().map(|s| s * k).collect(),
            fingerprint: Some(cal.fingerprint().into()),
        })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes per encoded vector: `ceil(D / 8)`.
    pub fn width(&self) -> usize {
        width(self.dim)
    }

    /// The threshold kind.
    pub fn threshold(&self) -> BinaryThreshold {
        self.threshold
    }

    /// Per-dimension thresholds.
    pub fn thresholds(&self) -> &[f32] {
        &self.thresholds
    }

    /// Fingerprint of the calibration, when one was used.
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Encodes a vector column to `FixedSizeBinary(ceil(D / 8))`. `clipped` is always 0.
    pub fn encode(&self, array: &dyn Array) -> Result<Encoded> {
        let v = read_vectors(array, self.dim)?;
        let (codes, clipped) =
            encode_rows(&v, self.width(), |src, out| self.encode_slice(src, out))?;
        let array = Arc::new(fixed_binary(codes, self.width(), v.nulls().cloned()));
        Ok(Encoded { array, clipped })
    }

    /// Decodes codes to `threshold ± spread` vectors (`FixedSizeList<Float32, D>`).
    pub fn decode(&self, codes: &dyn Array) -> Result<arrow_array::FixedSizeListArray> {
        let bytes = binary_codes(codes, self.width(), "binary")?;
        let values = decode_rows(bytes, self.width(), self.dim, |c, o| {
            self.decode_slice(c, o)
        });
        Ok(decoded(values, self.dim, row_nulls(codes)))
    }

    /// Slice kernel: packs whole rows of `src` into bits. Returns 0, or `Err(row)` for the
    /// first row holding a NaN or infinity.
    pub fn encode_slice(&self, src: &[f32], out: &mut [u8]) -> std::result::Result<u64, usize> {
        let (dim, w) = (self.dim, self.width());
        assert!(
            src.len().is_multiple_of(dim) && out.len() == src.len() / dim * w,
            "slices are not whole rows"
        );
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2() {
            // SAFETY: AVX2 was detected at run time; lengths were checked above.
            return unsafe { self.encode_slice_avx2(src, out) };
        }
        self.encode_slice_portable(src, out)
    }

    /// Portable kernel: eight compares folded into a byte, branch-free.
    #[allow(clippy::needless_range_loop)]
    fn encode_slice_portable(
        &self,
        src: &[f32],
        out: &mut [u8],
    ) -> std::result::Result<u64, usize> {
        let (dim, w) = (self.dim, self.width());
        for (r, (x, o)) in src
            .chunks_exact(dim)
            .zip(out.chunks_exact_mut(w))
            .enumerate()
        {
            let mut bad = 0u32;
            for (j, o) in o.iter_mut().enumerate() {
                let end = (8 * j + 8).min(dim);
                let mut byte = 0u8;
                for d in 8 * j..end {
                    let v = x[d];
                    bad |= (v.to_bits() & 0x7f80_0000 == 0x7f80_0000) as u32;
                    byte |= ((v > self.thresholds[d]) as u8) << (7 - (d - 8 * j));
                }
                *o = byte;
            }
            if bad != 0 {
                return Err(r);
            }
        }
        Ok(0)
    }

    /// AVX2 kernel, 32 values per step: four 8-lane compares, packed to 32 mask bytes in
    /// dimension order, reversed within each group of 8 (so dimension `8j` lands in the most
    /// significant bit), gathered with `movemask` into 4 output bytes. NaN / infinity are
    /// caught by an integer max over the absolute bit patterns.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::needless_range_loop)]
    unsafe fn encode_slice_avx2(
        &self,
        src: &[f32],
        out: &mut [u8],
    ) -> std::result::Result<u64, usize> {
        use std::arch::x86_64::*;
        let (dim, w) = (self.dim, self.width());
        let blocks = dim / 32;
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let rev = _mm256_setr_epi8(
            7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 15, 14,
            13, 12, 11, 10, 9, 8,
        );
        let abs = _mm256_set1_epi32(0x7fff_ffff);
        let thr = self.thresholds.as_ptr();
        for (r, (x, o)) in src
            .chunks_exact(dim)
            .zip(out.chunks_exact_mut(w))
            .enumerate()
        {
            let mut worst = _mm256_setzero_si256();
            let xp = x.as_ptr();
            for b in 0..blocks {
                // Prefetch 2 KiB ahead (prefetches never fault, even past the end).
                // A block of 32 floats spans two cache lines: prefetch both.
                _mm_prefetch::<_MM_HINT_T0>(xp.wrapping_add(32 * b + 512).cast());
                _mm_prefetch::<_MM_HINT_T0>(xp.wrapping_add(32 * b + 528).cast());
                let mut m = [_mm256_setzero_si256(); 4];
                for (k, m) in m.iter_mut().enumerate() {
                    let i = 32 * b + 8 * k;
                    // SAFETY: i + 8 <= 32 * blocks <= dim == x.len() == thresholds.len().
                    let (v, t) =
                        unsafe { (_mm256_loadu_ps(xp.add(i)), _mm256_loadu_ps(thr.add(i))) };
                    worst = _mm256_max_epi32(worst, _mm256_and_si256(_mm256_castps_si256(v), abs));
                    *m = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(v, t));
                }
                let bytes = _mm256_packs_epi16(
                    _mm256_packs_epi32(m[0], m[1]),
                    _mm256_packs_epi32(m[2], m[3]),
                );
                let bytes = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(bytes, order), rev);
                let bits = _mm256_movemask_epi8(bytes) as u32;
                o[4 * b..4 * b + 4].copy_from_slice(&bits.to_le_bytes());
            }
            let mut lanes = [0i32; 8];
            // SAFETY: lanes holds 8 i32.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), worst) };
            let mut bad = lanes.iter().any(|&l| l >= 0x7f80_0000);
            for (j, o) in o.iter_mut().enumerate().skip(4 * blocks) {
                let mut byte = 0u8;
                for d in 8 * j..(8 * j + 8).min(dim) {
                    bad |= !x[d].is_finite();
                    byte |= ((x[d] > self.thresholds[d]) as u8) << (7 - (d - 8 * j));
                }
                *o = byte;
            }
            if bad {
                return Err(r);
            }
        }
        Ok(0)
    }

    /// Scalar twin of [`BinaryCodec::encode_slice`].
    pub fn encode_slice_scalar(
        &self,
        src: &[f32],
        out: &mut [u8],
    ) -> std::result::Result<u64, usize> {
        let (dim, w) = (self.dim, self.width());
        out.fill(0);
        for (i, &v) in src.iter().enumerate() {
            let (r, d) = (i / dim, i % dim);
            if !v.is_finite() {
                return Err(r);
            }
            if v > self.thresholds[d] {
                out[r * w + d / 8] |= 0x80 >> (d % 8);
            }
        }
        Ok(0)
    }

    /// Slice kernel: unpacks whole rows of bits into `threshold ± spread` values.
    pub fn decode_slice(&self, codes: &[u8], out: &mut [f32]) {
        let (dim, w) = (self.dim, self.width());
        for (c, o) in codes.chunks_exact(w).zip(out.chunks_exact_mut(dim)) {
            for d in 0..dim {
                let bit = (c[d / 8] >> (7 - d % 8)) & 1;
                let s = if bit == 1 {
                    self.spread[d]
                } else {
                    -self.spread[d]
                };
                o[d] = self.thresholds[d] + s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use arrow_array::FixedSizeBinaryArray;
    use arrow_schema::DataType;
    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;
    use crate::codec::tests::{calibrate, with_values, DIMS};
    use crate::testutil::vectors_array;
    use crate::Vectors;

    /// `numpy.packbits(x > t, axis=-1)`, written out.
    fn packbits(x: &[f32], t: &[f32], dim: usize) -> Vec<u8> {
        let w = dim.div_ceil(8);
        let mut out = vec![0u8; x.len() / dim * w];
        for (i, &v) in x.iter().enumerate() {
            let (r, d) = (i / dim, i % dim);
            let bit = (v > t[d]) as u8;
            out[r * w + d / 8] += bit * (1 << (7 - d % 8));
        }
        out
    }

    #[test]
    fn known_bytes_match_numpy_packbits() {
        // numpy.packbits([1,0,1,1,0,0,0,1, 1,1,0]) == [0b10110001, 0b11000000]
        let x = [0.3, -0.1, 0.2, 0.9, 0.0, -0.0, -5.0, 1e-9, 0.1, 0.2, -0.3];
        let codec = BinaryCodec::new(11);
        let mut out = [0u8; 2];
        codec.encode_slice(&x, &mut out).unwrap();
        assert_eq!(out, [0b1011_0001, 0b1100_0000]);
    }

    #[rstest]
    fn zero_threshold_equals_packbits(#[values(1, 7, 8, 9, 383, 384, 1536)] dim: usize) {
        let a = vectors_array(100, dim, 7 + dim as u64, 0.2);
        let s = a.slice(5, 90);
        let enc = BinaryCodec::new(dim).encode(&s).unwrap();
        assert_eq!(
            enc.array.data_type(),
            &DataType::FixedSizeBinary(dim.div_ceil(8) as i32)
        );
        let v = Vectors::try_new(&s).unwrap();
        let expect = packbits(v.values(), &vec![0.0; dim], dim);
        let got = enc
            .array
            .as_any()
            .downcast_ref::<FixedSizeBinaryArray>()
            .unwrap();
        let w = dim.div_ceil(8);
        for r in 0..v.len() {
            assert_eq!(got.is_valid(r), v.is_valid(r));
            if v.is_valid(r) {
                assert_eq!(got.value(r), &expect[r * w..(r + 1) * w], "row {r}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn fast_kernel_equals_scalar_twin_and_portable(
            dim in prop::sample::select(DIMS.to_vec()),
            rows in 1usize..12,
            seed in any::<u64>(),
            centered in any::<bool>(),
        ) {
            let a = vectors_array(rows, dim, seed, 0.0);
            let codec = if centered {
                BinaryCodec::with_calibration(&calibrate(&a), BinaryThreshold::Median).unwrap()
            } else {
                BinaryCodec::new(dim)
            };
            let v = Vectors::try_new(&a).unwrap();
            let w = codec.width();
            let mut fast = vec![0u8; rows * w];
            let mut slow = vec![0u8; rows * w];
            let mut port = vec![0u8; rows * w];
            prop_assert_eq!(codec.encode_slice(v.values(), &mut fast), Ok(0));
            prop_assert_eq!(codec.encode_slice_scalar(v.values(), &mut slow), Ok(0));
            prop_assert_eq!(codec.encode_slice_portable(v.values(), &mut port), Ok(0));
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(&fast, &port);
            prop_assert_eq!(fast, packbits(v.values(), codec.thresholds(), dim));
        }
    }

    #[test]
    fn centered_thresholds_balance_the_bits() {
        let a = vectors_array(4000, 16, 5, 0.0);
        let cal = calibrate(&a);
        let codec = BinaryCodec::with_calibration(&cal, BinaryThreshold::Median).unwrap();
        let dec = codec
            .decode(codec.encode(&a).unwrap().array.as_ref())
            .unwrap();
        let vals = dec.values().as_primitive::<Float32Type>().values();
        for d in 0..16 {
            let above = (0..4000)
                .filter(|r| vals[r * 16 + d] > cal.median().unwrap()[d])
                .count();
            assert!(
                (1800..=2200).contains(&above),
                "dim {d}: {above} of 4000 above the median"
            );
        }
        let sign = BinaryCodec::new(16);
        assert!(sign
            .decode(sign.encode(&a).unwrap().array.as_ref())
            .unwrap()
            .values()
            .as_primitive::<Float32Type>()
            .values()
            .iter()
            .all(|x| x.abs() == 1.0));
    }

    #[test]
    fn non_finite_in_the_tail_is_found() {
        let a = vectors_array(3, 9, 5, 0.0);
        let mut vals = Vectors::try_new(&a).unwrap().values().to_vec();
        vals[2 * 9 + 8] = f32::NAN;
        let e = BinaryCodec::new(9)
            .encode(&with_values(&a, vals))
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { row: 2, dim: 8, .. }), "{e}");
    }

    #[test]
    fn median_needs_a_sketch() {
        let a = vectors_array(10, 4, 5, 0.0);
        let s = crate::Stats::compute(&a, &crate::StatsOptions::moments_only()).unwrap();
        let cal = crate::Calibration::from_stats(&s, crate::RangeMethod::MinMax).unwrap();
        assert_err!(
            BinaryCodec::with_calibration(&cal, BinaryThreshold::Median),
            crate::Error::MissingCalibrationData(_)
        );
        assert!(BinaryCodec::with_calibration(&cal, BinaryThreshold::Mean).is_ok());
    }
}
