//! `int4`: per-dimension affine quantization to 16 levels, two codes per byte.
//!
//! For dimension `d` with calibrated range `[lo, hi]` and `step = (hi - lo) / 15`, the
//! level is `u = floor(clamp((x - lo) / step + 0.5, 0, 15))` and decodes to
//! `lo + u * step`; for values inside the range the error is at most `step / 2`.
//!
//! **Nibble order**: dimension `2j` goes in the *high* nibble of byte `j` and dimension
//! `2j + 1` in the low nibble (the same "first element in the most significant bits"
//! convention as `numpy.packbits`). For odd `D` the last byte's low nibble is zero.
//! Output: `FixedSizeBinary(ceil(D / 2))`.
//!
//! A degenerate dimension encodes to level 0 and decodes to `(lo + hi) / 2`.

use std::sync::Arc;

use arrow_array::Array;

use super::affine::{Affine, Decoding};
use super::{
    binary_codes, decode_rows, decoded, encode_rows, fixed_binary, read_vectors, row_nulls, Encoded,
};
use crate::calibration::Calibration;
use crate::error::Result;

/// Bytes of an int4 code of `dims` dimensions: two per byte.
pub(crate) fn width(dims: usize) -> usize {
    dims.div_ceil(2)
}

/// The recipe's description of int4 codes on ranges of `shape`.
pub(crate) fn encoding(shape: crate::calibration::RangeShape) -> String {
    format!(
        "{}; two codes per byte, dimension 2j in the high nibble of byte j (high-nibble-first), odd D pads a zero low nibble",
        if shape.symmetric {
            "symmetric: step = hi / 7 (lo = -hi), level = 8 + round half up (x / step), clipped to [0, 15]"
        } else {
            "per-dimension affine, 16 levels over [lo, hi], round half up, clipped"
        }
    )
}

/// Per-dimension parameters of the int4 codec.
#[derive(Debug, Clone, PartialEq)]
pub struct Int4Codec {
    /// Level kernel: `lo`, `1 / step` (0 for degenerate dimensions), bias 0.5, clip bounds
    /// (unbounded when degenerate), 15 as the top level.
    affine: Affine,
    /// Decoded value of level 0.
    base: Vec<f32>,
    step: Vec<f32>,
    fingerprint: String,
}

impl Int4Codec {
    /// The codec for a calibration.
    pub fn new(cal: &Calibration) -> Self {
        let (affine, Decoding { base, step }) = Affine::from_calibration(cal, 15.0, 0.0);
        Int4Codec {
            affine,
            base,
            step,
            fingerprint: cal.fingerprint().to_string(),
        }
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.affine.dim
    }

    /// Bytes per encoded vector: `ceil(D / 2)`.
    pub fn width(&self) -> usize {
        width(self.dim())
    }

    /// Per-dimension quantization step (0 for degenerate dimensions).
    pub fn step(&self) -> &[f32] {
        &self.step
    }

    /// Fingerprint of the calibration the codec was built from.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Prepares a float query for asymmetric scoring against this codec's codes: the score
    /// of a code is the query's dot product with the decoded vector.
    pub fn prepare_query(&self, query: &[f32]) -> crate::kernels::asym::AsymQuery {
        crate::kernels::asym::AsymQuery::int4(query, &self.base, &self.step)
    }

    /// Encodes a vector column to `FixedSizeBinary(ceil(D / 2))`.
    pub fn encode(&self, array: &dyn Array) -> Result<Encoded> {
        let v = read_vectors(array, self.dim())?;
        let (codes, clipped) =
            encode_rows(&v, self.width(), |src, out| self.encode_slice(src, out))?;
        let array = Arc::new(fixed_binary(codes, self.width(), v.nulls().cloned()));
        Ok(Encoded { array, clipped })
    }

    /// Decodes `FixedSizeBinary(ceil(D / 2))` codes to `FixedSizeList<Float32, D>`.
    pub fn decode(&self, codes: &dyn Array) -> Result<arrow_array::FixedSizeListArray> {
        let bytes = binary_codes(codes, self.width(), "int4")?;
        let values = decode_rows(bytes, self.width(), self.dim(), |c, o| {
            self.decode_slice(c, o)
        });
        Ok(decoded(values, self.dim(), row_nulls(codes)))
    }

    /// Slice kernel: encodes whole rows of `src` into packed nibbles. Returns the number
    /// of values outside `[lo, hi]`, or `Err(row)` for the first row holding a NaN or
    /// infinity.
    pub fn encode_slice(&self, src: &[f32], out: &mut [u8]) -> std::result::Result<u64, usize> {
        let (dim, w) = (self.dim(), self.width());
        assert!(
            src.len().is_multiple_of(dim) && out.len() == src.len() / dim * w,
            "slices are not whole rows"
        );
        // Levels of one row (padded to an even count with a zero level), then nibble pairs.
        let mut levels = vec![0u8; 2 * w];
        let mut clipped = 0u64;
        for (r, (x, o)) in src
            .chunks_exact(dim)
            .zip(out.chunks_exact_mut(w))
            .enumerate()
        {
            clipped += self.affine.row(x, &mut levels[..dim], 0).ok_or(r)? as u64;
            for (o, pair) in o.iter_mut().zip(levels.chunks_exact(2)) {
                *o = (pair[0] << 4) | pair[1];
            }
        }
        Ok(clipped)
    }

    /// Scalar twin of [`Int4Codec::encode_slice`].
    pub fn encode_slice_scalar(
        &self,
        src: &[f32],
        out: &mut [u8],
    ) -> std::result::Result<u64, usize> {
        let (dim, w, a) = (self.dim(), self.width(), &self.affine);
        out.fill(0);
        let mut clipped = 0u64;
        for (i, &v) in src.iter().enumerate() {
            let (r, d) = (i / dim, i % dim);
            if !v.is_finite() {
                return Err(r);
            }
            // Clipped when x is outside [lo, hi], i.e. t outside [0.5, 15.5].
            let t = (v - a.lo[d]) * a.inv[d] + a.bias[d];
            clipped += !(0.5..=15.5).contains(&t) as u64;
            let level = t.clamp(0.5, 15.5).floor() as u8;
            let shift = if d % 2 == 0 { 4 } else { 0 };
            out[r * w + d / 2] |= level << shift;
        }
        Ok(clipped)
    }

    /// Slice kernel: decodes whole rows of packed nibbles into `out`.
    pub fn decode_slice(&self, codes: &[u8], out: &mut [f32]) {
        let (dim, w) = (self.dim(), self.width());
        for (c, o) in codes.chunks_exact(w).zip(out.chunks_exact_mut(dim)) {
            for d in 0..dim {
                let level = (c[d / 2] >> (if d % 2 == 0 { 4 } else { 0 })) & 0x0f;
                o[d] = self.base[d] + level as f32 * self.step[d];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_schema::DataType;
    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;
    use crate::codec::tests::{calibrate, check_round_trip, DIMS};
    use crate::error::Error;
    use crate::testutil::{vectors_array, Rng};

    #[rstest]
    fn round_trip_within_half_step(#[values(1, 7, 8, 9, 383, 384, 1536)] dim: usize) {
        let a = vectors_array(200, dim, 40 + dim as u64, 0.1);
        let cal = calibrate(&a);
        let codec = Int4Codec::new(&cal);
        let s = a.slice(3, 190);
        let enc = codec.encode(&s).unwrap();
        assert_eq!(enc.clipped, 0);
        assert_eq!(
            enc.array.data_type(),
            &DataType::FixedSizeBinary(dim.div_ceil(2) as i32)
        );
        let dec = codec.decode(enc.array.as_ref()).unwrap();
        check_round_trip(&s, &dec, &cal, codec.step());
    }

    #[test]
    fn nibble_order_is_high_first_and_odd_padding_is_zero() {
        // Range [0, 15] per dimension: levels equal the values.
        let a = crate::codec::tests::with_values(
            &vectors_array(2, 3, 1, 0.0),
            vec![0., 0., 0., 15., 15., 15.],
        );
        let codec = Int4Codec::new(&calibrate(&a));
        let mut out = [0u8; 2];
        codec.encode_slice(&[1.0, 2.0, 3.0], &mut out).unwrap();
        assert_eq!(out, [0x12, 0x30]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn fast_kernel_equals_scalar_twin(
            dim in prop::sample::select(DIMS.to_vec()),
            rows in 1usize..12,
            seed in any::<u64>(),
        ) {
            let a = vectors_array(rows, dim, seed, 0.0);
            let codec = Int4Codec::new(&calibrate(&a));
            let mut rng = Rng::new(seed);
            let src: Vec<f32> = crate::Vectors::try_new(&a).unwrap().values().iter()
                .map(|x| x * (0.5 + 2.0 * rng.uniform())).collect();
            let w = codec.width();
            let (mut fast, mut slow) = (vec![0u8; rows * w], vec![0u8; rows * w]);
            prop_assert_eq!(codec.encode_slice(&src, &mut fast), codec.encode_slice_scalar(&src, &mut slow));
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn error_bound_holds_on_sliced_arrays_with_nulls(
            dim in prop::sample::select(DIMS.to_vec()),
            rows in 2usize..30,
            seed in any::<u64>(),
        ) {
            let a = vectors_array(rows, dim, seed, 0.25);
            let cal = calibrate(&a);
            let codec = Int4Codec::new(&cal);
            let s = a.slice(1, rows - 1);
            let dec = codec.decode(codec.encode(&s).unwrap().array.as_ref()).unwrap();
            check_round_trip(&s, &dec, &cal, codec.step());
        }
    }

    #[test]
    fn wrong_width_codes_are_rejected() {
        let a = vectors_array(4, 6, 1, 0.0);
        let codec = Int4Codec::new(&calibrate(&a));
        let other = Int4Codec::new(&calibrate(&vectors_array(4, 8, 1, 0.0)));
        let enc = other.encode(&vectors_array(4, 8, 1, 0.0)).unwrap();
        assert!(matches!(
            codec.decode(enc.array.as_ref()),
            Err(Error::UnsupportedCodeType { .. })
        ));
    }
}
