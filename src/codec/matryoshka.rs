//! Matryoshka truncation: keep the first `d` dimensions, optionally re-normalized to unit
//! length, before any codec.
//!
//! Models trained with Matryoshka representation learning put the most information in the
//! leading dimensions, so a prefix is a smaller embedding of its own. The output is a
//! plain `FixedSizeList<Float32, d>`: calibrate it and encode it with any codec. Without
//! re-normalization the prefix of a full calibration applies
//! ([`crate::Calibration::prefix`]); with it, calibrate the truncated vectors.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{cast::AsArray, types::Float32Type, FixedSizeListArray, Float32Array};
//! use arrow_schema::{DataType, Field};
//! use embquant::{truncate, MatryoshkaOptions};
//!
//! let values = Float32Array::from(vec![3.0, 4.0, 12.0]);
//! let field = Arc::new(Field::new_list_field(DataType::Float32, false));
//! let v = FixedSizeListArray::new(field, 3, Arc::new(values), None);
//! let t = truncate(&v, &MatryoshkaOptions::new(2))?;
//! assert_eq!(t.values().as_primitive::<Float32Type>().values().to_vec(), vec![0.6, 0.8]);
//! # Ok::<(), embquant::Error>(())
//! ```

use arrow_array::types::Float32Type;
use arrow_array::{Array, FixedSizeListArray};

use super::{encode_rows, fixed_list};
use crate::error::{Error, Result};
use crate::vectors::Vectors;

/// How to truncate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MatryoshkaOptions {
    /// Dimensions kept (the first `dims`), `1 <= dims <= D`.
    pub dims: usize,
    /// Re-normalize each truncated vector to unit L2 length (all-zero prefixes stay zero).
    pub normalize: bool,
}

impl MatryoshkaOptions {
    /// The first `dims` dimensions, re-normalized (what `--dims` asks for).
    pub fn new(dims: usize) -> Self {
        MatryoshkaOptions {
            dims,
            normalize: true,
        }
    }

    /// The first `dims` dimensions as they are.
    pub fn unnormalized(dims: usize) -> Self {
        MatryoshkaOptions {
            dims,
            normalize: false,
        }
    }
}

/// Truncates a vector column to its first `options.dims` dimensions.
pub fn truncate(array: &dyn Array, options: &MatryoshkaOptions) -> Result<FixedSizeListArray> {
    let v = Vectors::try_new(array)?;
    let (dim, keep) = (v.dim(), options.dims);
    if keep == 0 || keep > dim {
        return Err(Error::bad_argument(
            "dims",
            format!("Matryoshka prefix of {keep} dimensions of {dim}-dimensional vectors"),
        ));
    }
    let (values, _) = encode_rows(&v, keep, |src, out: &mut [f32]| {
        truncate_slice(src, dim, out, keep, options.normalize)
    })?;
    Ok(fixed_list::<Float32Type>(
        values.into(),
        keep,
        v.nulls().cloned(),
    ))
}

/// Slice kernel: copies the first `keep` of every `dim` values, re-normalizing when asked.
/// Returns `Err(row)` for the first row whose kept values hold a NaN or infinity.
pub fn truncate_slice(
    src: &[f32],
    dim: usize,
    out: &mut [f32],
    keep: usize,
    normalize: bool,
) -> std::result::Result<u64, usize> {
    for (r, (x, o)) in src
        .chunks_exact(dim)
        .zip(out.chunks_exact_mut(keep))
        .enumerate()
    {
        let x = &x[..keep];
        if x.iter().any(|v| !v.is_finite()) {
            return Err(r);
        }
        if normalize {
            let norm = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            let inv = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
            o.iter_mut().zip(x).for_each(|(o, &v)| *o = v * inv);
        } else {
            o.copy_from_slice(x);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;

    use super::*;
    use crate::codec::tests::{calibrate, check_round_trip};
    use crate::testutil::vectors_array;
    use crate::{
        BinaryCodec, Calibration, HalfCodec, HalfKind, Int4Codec, Int8Codec, RangeMethod, Stats,
        StatsOptions,
    };

    #[test]
    fn prefix_is_unit_length_and_nulls_kept() {
        let a = vectors_array(50, 384, 1, 0.2).slice(3, 40);
        let t = truncate(
            &a,
            &MatryoshkaOptions {
                dims: 64,
                normalize: true,
            },
        )
        .unwrap();
        assert_eq!(t.value_length(), 64);
        assert_eq!(t.null_count(), a.null_count());
        let v = Vectors::try_new(&t).unwrap();
        for r in (0..v.len()).filter(|&r| v.is_valid(r)) {
            let n: f32 = v.row(r).iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
        let raw = truncate(
            &a,
            &MatryoshkaOptions {
                dims: 64,
                normalize: false,
            },
        )
        .unwrap();
        let full = Vectors::try_new(&a).unwrap();
        let v = Vectors::try_new(&raw).unwrap();
        for r in (0..v.len()).filter(|&r| v.is_valid(r)) {
            assert_eq!(v.row(r), &full.row(r)[..64]);
        }
        assert_err!(
            truncate(
                &a,
                &MatryoshkaOptions {
                    dims: 385,
                    normalize: false
                }
            ),
            crate::Error::BadArgument { .. }
        );
    }

    #[test]
    fn composes_with_every_codec() {
        let a = vectors_array(300, 96, 2, 0.1);
        let t = truncate(
            &a,
            &MatryoshkaOptions {
                dims: 33,
                normalize: true,
            },
        )
        .unwrap();
        let cal = calibrate(&t);
        let i8c = Int8Codec::new(&cal);
        check_round_trip(
            &t,
            &i8c.decode(i8c.encode(&t).unwrap().array.as_ref()).unwrap(),
            &cal,
            i8c.step(),
        );
        let i4c = Int4Codec::new(&cal);
        check_round_trip(
            &t,
            &i4c.decode(i4c.encode(&t).unwrap().array.as_ref()).unwrap(),
            &cal,
            i4c.step(),
        );
        assert_eq!(
            BinaryCodec::new(33).encode(&t).unwrap().array.len(),
            t.len()
        );
        let h = HalfCodec::new(33, HalfKind::F16).encode(&t).unwrap();
        assert_eq!(h.array.as_fixed_size_list().value_length(), 33);
        // Without re-normalization, the prefix of the full calibration is the calibration
        // of the prefix.
        let raw = truncate(
            &a,
            &MatryoshkaOptions {
                dims: 33,
                normalize: false,
            },
        )
        .unwrap();
        let full = Calibration::from_stats(
            &Stats::compute(&a, &StatsOptions::moments_only()).unwrap(),
            RangeMethod::MinMax,
        )
        .unwrap();
        let direct = Calibration::from_stats(
            &Stats::compute(&raw, &StatsOptions::moments_only()).unwrap(),
            RangeMethod::MinMax,
        )
        .unwrap();
        assert_eq!(full.prefix(33).unwrap().fingerprint(), direct.fingerprint());
    }
}
