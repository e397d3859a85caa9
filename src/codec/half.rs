//! `f16` and `bf16`: 16-bit floats (crate `half`), 2x smaller than `f32`.
//!
//! Both are stored as `FixedSizeList<Float16, D>`. For `bf16`, Arrow has no bfloat16 type,
//! so the column holds the **bf16 bit patterns** in `Float16` slots: read them with
//! [`HalfCodec::decode`] (or reinterpret the 16 bits as bf16), not as IEEE halves. The kind
//! is part of the recipe a file stores next to the column.
//!
//! Conversion rounds to nearest even (hardware F16C when available). Finite values beyond
//! the format's largest finite value (65504 for f16) are clipped to it and counted.

use std::sync::Arc;

use arrow_array::types::Float16Type;
use arrow_array::{Array, FixedSizeListArray};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};

use super::{decode_rows, decoded, encode_rows, list_codes, read_vectors, row_nulls, Encoded};
use crate::error::{Error, Result};

/// Which 16-bit float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HalfKind {
    /// IEEE 754 binary16: 10-bit mantissa, range ±65504.
    #[default]
    F16,
    /// bfloat16: 7-bit mantissa, the range of `f32`.
    Bf16,
}

impl HalfKind {
    fn max(self) -> f32 {
        match self {
            HalfKind::F16 => f16::MAX.to_f32(),
            HalfKind::Bf16 => bf16::MAX.to_f32(),
        }
    }
}

/// The recipe's description of `kind` codes.
pub(crate) fn encoding(kind: HalfKind) -> &'static str {
    match kind {
        HalfKind::F16 => "IEEE 754 binary16, round to nearest even, clipped to +-65504",
        HalfKind::Bf16 => "bfloat16 bit patterns stored in a Float16 column, round to nearest even",
    }
}

/// The f16 / bf16 codec (no calibration needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfCodec {
    dim: usize,
    kind: HalfKind,
}

impl HalfCodec {
    /// A codec for `dim`-dimensional vectors.
    pub fn new(dim: usize, kind: HalfKind) -> Self {
        Self { dim, kind }
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// f16 or bf16.
    pub fn kind(&self) -> HalfKind {
        self.kind
    }

    /// Encodes a vector column to `FixedSizeList<Float16, D>` (bf16: bit patterns).
    pub fn encode(&self, array: &dyn Array) -> Result<Encoded> {
        let v = read_vectors(array, self.dim)?;
        let (bits, clipped) = encode_rows(&v, self.dim, |src, out: &mut [u16]| {
            self.encode_slice(src, out)
        })?;
        let values = ScalarBuffer::<f16>::new(Buffer::from_vec(bits), 0, v.len() * self.dim);
        let values = arrow_array::PrimitiveArray::<Float16Type>::new(values, None);
        let array = FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float16, false)),
            self.dim as i32,
            Arc::new(values),
            v.nulls().cloned(),
        );
        Ok(Encoded {
            array: Arc::new(array),
            clipped,
        })
    }

    /// Decodes `FixedSizeList<Float16, D>` to `FixedSizeList<Float32, D>`.
    pub fn decode(&self, codes: &dyn Array) -> Result<FixedSizeListArray> {
        let what = match self.kind {
            HalfKind::F16 => "f16",
            HalfKind::Bf16 => "bf16",
        };
        let c = list_codes::<Float16Type>(codes, self.dim, what)?;
        let bits: &[u16] = bytemuck_u16(c);
        let values = decode_rows(bits, self.dim, self.dim, |c, o| self.decode_slice(c, o));
        Ok(decoded(values, self.dim, row_nulls(codes)))
    }

    /// Slice kernel: converts whole rows to 16-bit patterns. Returns the number of values
    /// clipped to the format's range, or `Err(row)` for the first row holding a NaN or
    /// infinity.
    pub fn encode_slice(&self, src: &[f32], out: &mut [u16]) -> std::result::Result<u64, usize> {
        let dim = self.dim;
        assert!(
            src.len() == out.len() && src.len().is_multiple_of(dim),
            "slices are not whole rows"
        );
        let max = self.kind.max();
        let mut row = vec![0f32; dim];
        let mut clipped = 0u64;
        for (r, (x, o)) in src
            .chunks_exact(dim)
            .zip(out.chunks_exact_mut(dim))
            .enumerate()
        {
            let mut bad = 0u32;
            let mut clip = 0u32;
            for (t, &v) in row.iter_mut().zip(x) {
                bad |= (v.to_bits() & 0x7f80_0000 == 0x7f80_0000) as u32;
                clip += (v.abs() > max) as u32;
                *t = v.clamp(-max, max);
            }
            if bad != 0 {
                return Err(r);
            }
            clipped += clip as u64;
            match self.kind {
                HalfKind::F16 => o.reinterpret_cast_mut::<f16>().convert_from_f32_slice(&row),
                HalfKind::Bf16 => o
                    .reinterpret_cast_mut::<bf16>()
                    .convert_from_f32_slice(&row),
            }
        }
        Ok(clipped)
    }

    /// Scalar twin of [`HalfCodec::encode_slice`].
    pub fn encode_slice_scalar(
        &self,
        src: &[f32],
        out: &mut [u16],
    ) -> std::result::Result<u64, usize> {
        let max = self.kind.max();
        let mut clipped = 0;
        for (i, &v) in src.iter().enumerate() {
            if !v.is_finite() {
                return Err(i / self.dim);
            }
            clipped += (v.abs() > max) as u64;
            let v = v.clamp(-max, max);
            out[i] = match self.kind {
                HalfKind::F16 => f16::from_f32(v).to_bits(),
                HalfKind::Bf16 => bf16::from_f32(v).to_bits(),
            };
        }
        Ok(clipped)
    }

    /// Slice kernel: converts 16-bit patterns back to `f32`.
    pub fn decode_slice(&self, codes: &[u16], out: &mut [f32]) {
        match self.kind {
            HalfKind::F16 => codes.reinterpret_cast::<f16>().convert_to_f32_slice(out),
            HalfKind::Bf16 => codes.reinterpret_cast::<bf16>().convert_to_f32_slice(out),
        }
    }
}

fn bytemuck_u16(c: &[f16]) -> &[u16] {
    c.reinterpret_cast()
}

impl std::str::FromStr for HalfKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            _ => Err(Error::BadArgument {
                name: "half kind".into(),
                problem: format!("{s:?}: expected f16 or bf16"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;
    use crate::codec::tests::{with_values, DIMS};
    use crate::testutil::vectors_array;
    use crate::Vectors;

    #[rstest]
    fn round_trip_within_half_ulp(
        #[values(1, 7, 8, 9, 383, 384, 1536)] dim: usize,
        #[values(HalfKind::F16, HalfKind::Bf16)] kind: HalfKind,
    ) {
        let a = vectors_array(64, dim, dim as u64, 0.2);
        let s = a.slice(2, 60);
        let codec = HalfCodec::new(dim, kind);
        let enc = codec.encode(&s).unwrap();
        assert_eq!(enc.clipped, 0);
        assert_eq!(enc.array.null_count(), s.null_count());
        let dec = codec.decode(enc.array.as_ref()).unwrap();
        let v = Vectors::try_new(&s).unwrap();
        let out = dec.values().as_primitive::<Float32Type>().values();
        // Relative half-ulp: 2^-11 for f16 (normal range), 2^-8 for bf16.
        let rel = if kind == HalfKind::F16 {
            1.0 / 2048.0
        } else {
            1.0 / 256.0
        };
        for r in (0..v.len()).filter(|&r| v.is_valid(r)) {
            for d in 0..dim {
                let (x, y) = (v.row(r)[d], out[r * dim + d]);
                assert!((x - y).abs() <= rel * x.abs() + 6e-8, "{kind:?} {x} -> {y}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn fast_kernel_equals_scalar_twin(
            dim in prop::sample::select(DIMS.to_vec()),
            seed in any::<u64>(),
            scale in -8i32..8,
            bf in any::<bool>(),
        ) {
            let a = vectors_array(3, dim, seed, 0.0);
            let src: Vec<f32> = Vectors::try_new(&a).unwrap().values().iter().map(|x| x * 10f32.powi(scale)).collect();
            let codec = HalfCodec::new(dim, if bf { HalfKind::Bf16 } else { HalfKind::F16 });
            let (mut f, mut s) = (vec![0u16; src.len()], vec![0u16; src.len()]);
            prop_assert_eq!(codec.encode_slice(&src, &mut f), codec.encode_slice_scalar(&src, &mut s));
            prop_assert_eq!(f, s);
        }
    }

    #[test]
    fn out_of_range_values_clip_and_nan_is_an_error() {
        let a = vectors_array(2, 2, 1, 0.0);
        let codec = HalfCodec::new(2, HalfKind::F16);
        let enc = codec
            .encode(&with_values(&a, vec![1e6, -1e6, 0.5, 0.25]))
            .unwrap();
        assert_eq!(enc.clipped, 2);
        let dec = codec.decode(enc.array.as_ref()).unwrap();
        assert_eq!(
            dec.values().as_primitive::<Float32Type>().values().to_vec(),
            vec![65504.0, -65504.0, 0.5, 0.25]
        );
        let e = codec
            .encode(&with_values(&a, vec![0.0, 0.0, f32::NAN, 0.0]))
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { row: 1, dim: 0, .. }));
    }

    #[test]
    fn values_that_would_overflow_to_infinity_are_counted_as_clipped() {
        // f16: anything beyond 65504 (65520 and up would round to infinity). bf16: beyond
        // its largest value, about 3.39e38 (f32::MAX would round to infinity).
        let a = vectors_array(2, 3, 1, 0.0);
        for (kind, values, clipped) in [
            (
                HalfKind::F16,
                vec![65504.0, 65519.0, -7e4, 1e9, 0.5, -65504.0],
                3,
            ),
            (
                HalfKind::Bf16,
                vec![f32::MAX, -f32::MAX, 3.3e38, 1e9, -1e38, 0.5],
                2,
            ),
        ] {
            let codec = HalfCodec::new(3, kind);
            let enc = codec.encode(&with_values(&a, values.clone())).unwrap();
            assert_eq!(enc.clipped, clipped, "{kind:?}");
            let mut out = vec![0u16; 6];
            assert_eq!(
                codec.encode_slice_scalar(&values, &mut out),
                Ok(clipped),
                "{kind:?}"
            );
            // Nothing decodes to infinity.
            let dec = codec.decode(enc.array.as_ref()).unwrap();
            let v = dec.values().as_primitive::<Float32Type>().values();
            assert!(v.iter().all(|x| x.is_finite()), "{kind:?}: {v:?}");
        }
    }
}
