//! `int8`: per-dimension affine quantization to 256 levels.
//!
//! For dimension `d` with calibrated range `[lo, hi]` and `step = (hi - lo) / 255`, the
//! unsigned level is `u = floor(clamp((x - lo) / step + 0.5, 0, 255))` (round half up,
//! clipped to the range) and decodes to `lo + u * step`. The `int8` code is `u - 128`
//! (so codes span -128..=127 and the middle of the range maps to 0); the `uint8` variant
//! stores `u` itself, for tools that expect unsigned codes. For values inside `[lo, hi]`
//! the round trip error is at most `step / 2` (plus `f32` rounding).
//!
//! A degenerate dimension (see [`Calibration::degenerate_mask`]) encodes every value to the
//! middle level (int8 code 0) and decodes to `(lo + hi) / 2`.
//!
//! Output: `FixedSizeList<Int8, D>` (or `<UInt8, D>`).

use arrow_array::types::{Int8Type, UInt8Type};
use arrow_array::Array;
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_schema::DataType;

use super::affine::{Affine, Decoding};
use super::{
    decode_rows, decoded, encode_rows, fixed_list, list_codes, read_vectors, row_nulls, Encoded,
};
use crate::calibration::Calibration;
use crate::error::Result;

/// How int8 codes are laid out in Arrow / Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Int8Layout {
    /// `FixedSizeBinary(D)` holding the int8 bit patterns: one fixed-length value per row in
    /// Parquet (fast to read; see BENCHMARKS.md).
    #[default]
    Binary,
    /// `FixedSizeList<Int8, D>`: a Parquet LIST with per-element levels.
    List,
}

impl std::str::FromStr for Int8Layout {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "binary" => Ok(Int8Layout::Binary),
            "list" => Ok(Int8Layout::List),
            _ => Err(crate::error::Error::BadArgument {
                name: "int8_layout".into(),
                problem: format!("{s:?}: expected list or binary"),
            }),
        }
    }
}

/// The recipe's description of int8 codes in `layout` on ranges of `shape`.
pub(crate) fn encoding(layout: Int8Layout, shape: crate::calibration::RangeShape) -> String {
    format!(
        "{}{}",
        if shape.symmetric {
            "symmetric: step = hi / 127 (lo = -hi), code = round half up (x / step), clipped to [-128, 127] (zero-point 0)"
        } else {
            "per-dimension affine, 256 levels over [lo, hi], round half up, clipped; code = level - 128 (int8)"
        },
        if layout == Int8Layout::Binary {
            ", bytes are the int8 bit patterns in dimension order"
        } else {
            ""
        }
    )
}

/// Per-dimension parameters of the int8 codec.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Codec {
    /// Level kernel: `lo`, `1 / step` (0 for degenerate dimensions), bias 0.5 (round half
    /// up) or 128.5 (degenerate: middle level), clip bounds (unbounded when degenerate).
    affine: Affine,
    /// Decoded value of level 0.
    base: Vec<f32>,
    step: Vec<f32>,
    fingerprint: String,
}

impl Int8Codec {
    /// The codec for a calibration.
    pub fn new(cal: &Calibration) -> Self {
        let (affine, Decoding { base, step }) = Affine::from_calibration(cal, 255.0, 128.0);
        Int8Codec {
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
        crate::kernels::asym::AsymQuery::int8(query, &self.base, &self.step)
    }

    /// Encodes a vector column to `FixedSizeList<Int8, D>`.
    pub fn encode(&self, array: &dyn Array) -> Result<Encoded> {
        self.encode_impl(array, 0x80)
    }

    /// Encodes a vector column to `FixedSizeList<UInt8, D>` (level `u`, no offset).
    pub fn encode_uint8(&self, array: &dyn Array) -> Result<Encoded> {
        self.encode_impl(array, 0)
    }

    fn encode_impl(&self, array: &dyn Array, xor: u8) -> Result<Encoded> {
        let dim = self.dim();
        let v = read_vectors(array, dim)?;
        let (codes, clipped) = encode_rows(&v, dim, |src, out: &mut [u8]| {
            self.encode_slice(src, out, xor)
        })?;
        let nulls = v.nulls().cloned();
        let array = if xor == 0 {
            std::sync::Arc::new(fixed_list::<UInt8Type>(codes.into(), dim, nulls)) as _
        } else {
            // The bytes are already int8 bit patterns: reinterpret, don't copy.
            let n = codes.len();
            let codes = ScalarBuffer::<i8>::new(Buffer::from_vec(codes), 0, n);
            std::sync::Arc::new(fixed_list::<Int8Type>(codes, dim, nulls)) as _
        };
        tracing::debug!(rows = v.len(), clipped, "int8 encoded");
        Ok(Encoded { array, clipped })
    }

    /// Decodes `FixedSizeList<Int8, D>`, `FixedSizeList<UInt8, D>` or `FixedSizeBinary(D)`
    /// (int8 bit patterns) codes to `FixedSizeList<Float32, D>`.
    pub fn decode(&self, codes: &dyn Array) -> Result<arrow_array::FixedSizeListArray> {
        let nulls = row_nulls(codes);
        let dim = self.dim();
        let values = match codes.data_type() {
            DataType::FixedSizeList(f, _) if f.data_type() == &DataType::UInt8 => {
                let c = list_codes::<UInt8Type>(codes, dim, "uint8")?;
                decode_rows(c, dim, dim, |c, o| self.decode_slice(c, o, 0))
            }
            DataType::FixedSizeBinary(_) => {
                // The binary layout: int8 bit patterns, one fixed-size value per row.
                let c = super::binary_codes(codes, dim, "int8")?;
                decode_rows(c, dim, dim, |c, o| self.decode_slice(c, o, 0x80))
            }
            _ => {
                let c = list_codes::<Int8Type>(codes, dim, "int8")?;
                // SAFETY: i8 and u8 have the same size and alignment; every bit pattern is valid.
                let c: &[u8] = unsafe { std::slice::from_raw_parts(c.as_ptr().cast(), c.len()) };
                decode_rows(c, dim, dim, |c, o| self.decode_slice(c, o, 0x80))
            }
        };
        Ok(decoded(values, dim, nulls))
    }

    /// Slice kernel: encodes whole rows of `src` into `out` (levels XOR `xor`: `0x80` for
    /// int8 bit patterns, 0 for uint8). Returns the number of values outside `[lo, hi]`,
    /// or `Err(row)` for the first row holding a NaN or infinity.
    pub fn encode_slice(
        &self,
        src: &[f32],
        out: &mut [u8],
        xor: u8,
    ) -> std::result::Result<u64, usize> {
        self.affine.encode_rows(src, out, xor)
    }

    /// Scalar twin of [`Int8Codec::encode_slice`]: one value at a time, no tricks.
    pub fn encode_slice_scalar(
        &self,
        src: &[f32],
        out: &mut [u8],
        xor: u8,
    ) -> std::result::Result<u64, usize> {
        let (dim, a) = (self.affine.dim, &self.affine);
        check_len(src.len(), out.len(), dim);
        let mut clipped = 0u64;
        for (i, &v) in src.iter().enumerate() {
            let d = i % dim;
            if !v.is_finite() {
                return Err(i / dim);
            }
            // Clipped when x is outside [lo, hi], i.e. t outside [0.5, 255.5].
            let t = (v - a.lo[d]) * a.inv[d] + a.bias[d];
            clipped += !(0.5..=255.5).contains(&t) as u64;
            out[i] = (t.clamp(0.5, 255.5).floor() as u8) ^ xor;
        }
        Ok(clipped)
    }

    /// Slice kernel: decodes whole rows of levels (XOR `xor`) into `out`.
    pub fn decode_slice(&self, codes: &[u8], out: &mut [f32], xor: u8) {
        let dim = self.affine.dim;
        check_len(out.len(), codes.len(), dim);
        let (base, step) = (&self.base[..dim], &self.step[..dim]);
        for (c, o) in codes.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let (c, o) = (&c[..dim], &mut o[..dim]);
            for d in 0..dim {
                o[d] = base[d] + (c[d] ^ xor) as f32 * step[d];
            }
        }
    }
}

fn check_len(src: usize, out: usize, dim: usize) {
    assert!(
        src == out && src.is_multiple_of(dim),
        "slice lengths {src} and {out} are not whole rows of {dim}"
    );
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;
    use crate::codec::tests::{calibrate, check_round_trip, DIMS};
    use crate::error::Error;
    use crate::testutil::{vectors_array, Rng};

    #[test]
    fn symmetric_ranges_put_a_code_at_zero() {
        use crate::calibration::CalibrationMethod;
        let a = vectors_array(300, 7, 5, 0.0);
        let s = crate::Stats::compute(&a, &crate::StatsOptions::default()).unwrap();
        let m: CalibrationMethod = "minmax+symmetric".parse().unwrap();
        let cal = Calibration::from_stats(&s, m).unwrap();
        let c = Int8Codec::new(&cal);
        let four = super::super::int4::Int4Codec::new(&cal);
        let hi = cal.hi().to_vec();
        // Rows: zero, +hi, -hi, 0.4 hi (50.8 steps).
        let mut rows = vec![0.0f32; 7];
        rows.extend(&hi);
        rows.extend(hi.iter().map(|h| -h));
        rows.extend(hi.iter().map(|h| h * 0.4));
        let mut out = vec![0u8; 28];
        assert_eq!(c.encode_slice(&rows, &mut out, 0x80), Ok(0));
        let codes: Vec<i8> = out.iter().map(|&b| b as i8).collect();
        assert_eq!(&codes[..7], &[0; 7]);
        assert_eq!(&codes[7..14], &[127; 7]);
        assert_eq!(&codes[14..21], &[-127; 7]);
        assert!(codes[21..].iter().all(|&q| q == 51), "{:?}", &codes[21..]);
        // Zero-point 0: each value decodes to code x step.
        let mut back = vec![0f32; 28];
        c.decode_slice(&out, &mut back, 0x80);
        for (i, (&q, &x)) in codes.iter().zip(&back).enumerate() {
            let step = hi[i % 7] / 127.0;
            assert!(
                (x - q as f32 * step).abs() <= 1e-6 * hi[i % 7],
                "{i}: {x} vs {q} x {step}"
            );
        }
        // int4: zero is level 8, +-hi levels 15 and 1.
        let mut nib = vec![0u8; 4 * four.width()];
        four.encode_slice(&rows, &mut nib).unwrap();
        let w = four.width();
        assert_eq!(nib[0] >> 4, 8);
        assert_eq!(nib[w] >> 4, 15);
        assert_eq!(nib[2 * w] >> 4, 1);
    }

    #[rstest]
    fn round_trip_within_half_step(#[values(1, 7, 8, 9, 383, 384, 1536)] dim: usize) {
        let a = vectors_array(300, dim, dim as u64, 0.1);
        let cal = calibrate(&a);
        let codec = Int8Codec::new(&cal);
        let sliced = a.slice(17, 250);
        let enc = codec.encode(&sliced).unwrap();
        assert_eq!(enc.clipped, 0);
        assert_eq!(
            enc.array.data_type(),
            &DataType::new_fixed_size_list(DataType::Int8, dim as i32, false)
        );
        let dec = codec.decode(enc.array.as_ref()).unwrap();
        check_round_trip(&sliced, &dec, &cal, codec.step());
        // uint8 codes are the int8 codes + 128.
        let u = codec.encode_uint8(&sliced).unwrap();
        let (ci, cu) = (enc.array.as_fixed_size_list(), u.array.as_fixed_size_list());
        let ci = ci.values().as_primitive::<Int8Type>().values();
        let cu = cu.values().as_primitive::<UInt8Type>().values();
        for r in (0..sliced.len()).filter(|&r| sliced.is_valid(r)) {
            let (ci, cu) = (&ci[r * dim..(r + 1) * dim], &cu[r * dim..(r + 1) * dim]);
            assert!(
                ci.iter()
                    .zip(cu)
                    .all(|(&i, &u)| (i as i16 + 128) as u8 == u),
                "row {r}"
            );
        }
        let du = codec.decode(u.array.as_ref()).unwrap();
        let (fu, fi) = (
            du.values().as_primitive::<Float32Type>().values(),
            dec.values().as_primitive::<Float32Type>().values(),
        );
        for r in (0..sliced.len()).filter(|&r| sliced.is_valid(r)) {
            assert_eq!(fu[r * dim..(r + 1) * dim], fi[r * dim..(r + 1) * dim]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn fast_kernel_equals_scalar_twin(
            dim in prop::sample::select(DIMS.to_vec()),
            rows in 1usize..20,
            seed in any::<u64>(),
            outside in 0.0f32..3.0,
        ) {
            let a = vectors_array(rows, dim, seed, 0.0);
            let codec = Int8Codec::new(&calibrate(&a));
            // Widen the inputs so that some values fall outside the range and clip.
            let mut rng = Rng::new(seed ^ 1);
            let src: Vec<f32> = crate::Vectors::try_new(&a).unwrap().values().iter()
                .map(|x| x * (1.0 + outside * rng.uniform())).collect();
            let mut fast = vec![0u8; src.len()];
            let mut slow = vec![0u8; src.len()];
            let cf = codec.encode_slice(&src, &mut fast, 0x80);
            let cs = codec.encode_slice_scalar(&src, &mut slow, 0x80);
            prop_assert_eq!(cf, cs);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn error_bound_holds_for_values_in_range(
            dim in prop::sample::select(DIMS.to_vec()),
            rows in 2usize..40,
            seed in any::<u64>(),
            offset in 0usize..2,
        ) {
            let a = vectors_array(rows, dim, seed, 0.2);
            let cal = calibrate(&a);
            let codec = Int8Codec::new(&cal);
            let s = a.slice(offset, rows - offset);
            let dec = codec.decode(codec.encode(&s).unwrap().array.as_ref()).unwrap();
            check_round_trip(&s, &dec, &cal, codec.step());
        }
    }

    #[test]
    fn dead_and_constant_dimensions_round_trip_without_nan() {
        // dims 0-4: normal; dim 5: MiniLM-style dead (~1e-33 with a rare -5e-8 outlier);
        // dim 6: exactly constant; dim 7: subnormal values.
        let mut rng = Rng::new(5);
        let mut values = Vec::new();
        for r in 0..500 {
            let dead = if r == 17 {
                -5e-8
            } else {
                1e-33 * rng.uniform()
            };
            values.extend((0..5).map(|_| rng.normal() * 0.1));
            values.extend([dead, 0.25, 1e-40 * rng.uniform()]);
        }
        let a = crate::codec::tests::with_values(&vectors_array(500, 8, 1, 0.0), values);
        let cal = calibrate(&a);
        assert_eq!(cal.degenerate_dims(), vec![5, 6, 7]);
        let codec = Int8Codec::new(&cal);
        let enc = codec.encode(&a).unwrap();
        assert_eq!(enc.clipped, 0);
        let list = enc.array.as_fixed_size_list();
        let codes = list.values().as_primitive::<Int8Type>().values();
        assert!((0..500).all(|r| codes[r * 8 + 5..r * 8 + 8] == [0, 0, 0]));
        let dec = codec.decode(enc.array.as_ref()).unwrap();
        let out = dec.values().as_primitive::<Float32Type>().values();
        assert!(out.iter().all(|x| x.is_finite()));
        assert!((0..500).all(|r| out[r * 8 + 6] == 0.25 && out[r * 8 + 5].abs() < 3e-8));
        check_round_trip(&a, &dec, &cal, codec.step());
        // Values far outside a degenerate range are not counted as clipped.
        let mut src = vec![0f32; 8];
        src[5] = 1.0;
        assert_eq!(codec.encode_slice(&src, &mut [0u8; 8], 0x80), Ok(0));
    }

    #[test]
    fn values_outside_the_range_clip_and_are_counted() {
        let a = vectors_array(50, 4, 3, 0.0);
        let codec = Int8Codec::new(&calibrate(&a));
        let src = [1e3f32, -1e3, 0.0, 0.0];
        let mut out = [0u8; 4];
        let clipped = codec.encode_slice(&src, &mut out, 0x80).unwrap();
        assert_eq!(out[0] as i8, 127);
        assert_eq!(out[1] as i8, -128);
        assert!(clipped >= 2);
    }

    #[test]
    fn non_finite_names_the_row_and_null_rows_may_hold_garbage() {
        let a = vectors_array(5000, 3, 9, 0.3); // null rows hold NaN
        let codec = Int8Codec::new(&calibrate(&a));
        let enc = codec.encode(&a).unwrap();
        assert_eq!(enc.array.null_count(), a.null_count());
        let valid_row = (0..a.len()).rev().find(|&r| a.is_valid(r)).unwrap();
        let mut values = crate::Vectors::try_new(&a).unwrap().values().to_vec();
        values[valid_row * 3 + 2] = f32::NEG_INFINITY;
        let bad = crate::codec::tests::with_values(&a, values);
        match codec.encode(&bad) {
            Err(Error::NonFinite { row, dim: 2, .. }) => assert_eq!(row, valid_row),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dimension_mismatch_and_wrong_code_types_are_errors() {
        let a = vectors_array(5, 4, 3, 0.0);
        let codec = Int8Codec::new(&calibrate(&vectors_array(5, 5, 3, 0.0)));
        assert!(matches!(
            codec.encode(&a),
            Err(Error::DimensionMismatch {
                expected: 5,
                found: 4,
                ..
            })
        ));
        assert!(matches!(
            codec.decode(&a),
            Err(Error::UnsupportedCodeType { .. })
        ));
    }
}
