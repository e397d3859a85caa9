//! Quantization codecs, one module per scheme.
//!
//! Each codec has a slice kernel that knows nothing of Arrow (row-major `&[f32]` in,
//! codes out, returning the count of clipped values or the first row holding a NaN or
//! infinity), a plain scalar twin the fast kernel is tested against, and an Arrow-level
//! `encode` / `decode` pair. The Arrow layer reads its input through [`Vectors`], runs the
//! kernel over blocks of rows on rayon, skips null rows (their codes are zero and the
//! output row is null), and names the row of any non-finite value.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeBinaryArray, FixedSizeListArray, PrimitiveArray};
use arrow_buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::vectors::Vectors;

pub(crate) mod affine;
pub mod binary;
pub mod half;
pub mod int4;
pub mod int8;
pub mod matryoshka;
pub mod rabitq;
pub mod rabitq_ex;
pub mod scheme;

/// The output of an encoder.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The code column, one row per input row, nulls where the input row was null.
    pub array: ArrayRef,
    /// How many values (over non-null rows) fell outside the calibrated range (int8, int4)
    /// or the format's finite range (f16 beyond ±65504, bf16 beyond about ±3.39e38: they
    /// would overflow to infinity) and were clipped to its ends.
    pub clipped: u64,
}

/// Rows per unit of parallel work.
const PAR_ROWS: usize = 2048;

/// Runs a slice kernel over the valid rows of `v`, `width` output elements per row.
///
/// `kernel(src, out)` encodes the rows in `src` into `out` and returns the clipped count,
/// or `Err(i)` for the first row `i` (relative to `src`) holding a non-finite value.
pub(crate) fn encode_rows<T, K>(v: &Vectors<'_>, width: usize, kernel: K) -> Result<(Vec<T>, u64)>
where
    T: Copy + Default + Send,
    K: Fn(&[f32], &mut [T]) -> std::result::Result<u64, usize> + Sync,
{
    let (dim, n) = (v.dim(), v.len());
    let mut out = vec![T::default(); n * width];
    if n == 0 || width == 0 {
        return Ok((out, 0));
    }
    let results: Vec<Result<u64>> = out
        .par_chunks_mut(PAR_ROWS * width)
        .enumerate()
        .map(|(c, o)| {
            let start = c * PAR_ROWS;
            let rows = o.len() / width;
            let mut clipped = 0;
            let mut run = |s: usize, e: usize| -> Result<()> {
                let src = &v.values()[(start + s) * dim..(start + e) * dim];
                match kernel(src, &mut o[s * width..e * width]) {
                    Ok(c) => {
                        clipped += c;
                        Ok(())
                    }
                    Err(bad) => {
                        let row = start + s + bad;
                        v.find_non_finite(row..row + 1)?;
                        Err(Error::Internal(format!("kernel rejected finite row {row}")))
                    }
                }
            };
            match v.nulls() {
                None => run(0, rows)?,
                Some(nb) => {
                    for (s, e) in nb.slice(start, rows).valid_slices() {
                        run(s, e)?;
                    }
                }
            }
            Ok(clipped)
        })
        .collect();
    let mut clipped = 0;
    for r in results {
        clipped += r?;
    }
    Ok((out, clipped))
}

/// Runs an infallible decode kernel over all rows, `width` code elements and `dim`
/// outputs per row, in parallel.
pub(crate) fn decode_rows<C, T, K>(codes: &[C], width: usize, dim: usize, kernel: K) -> Vec<T>
where
    C: Sync,
    T: Copy + Default + Send,
    K: Fn(&[C], &mut [T]) + Sync,
{
    let n = codes.len().checked_div(width).unwrap_or(0);
    let mut out = vec![T::default(); n * dim];
    if n > 0 {
        out.par_chunks_mut(PAR_ROWS * dim)
            .zip(codes.par_chunks(PAR_ROWS * width))
            .for_each(|(o, c)| kernel(c, o));
    }
    out
}

/// `FixedSizeList<item, dim>` over `values`.
pub(crate) fn fixed_list<T: arrow_array::ArrowPrimitiveType>(
    values: ScalarBuffer<T::Native>,
    dim: usize,
    nulls: Option<NullBuffer>,
) -> FixedSizeListArray {
    let values = PrimitiveArray::<T>::new(values, None);
    FixedSizeListArray::new(
        Arc::new(Field::new_list_field(T::DATA_TYPE, false)),
        dim as i32,
        Arc::new(values),
        nulls,
    )
}

/// `FixedSizeBinary(width)` over `bytes`.
pub(crate) fn fixed_binary(
    bytes: Vec<u8>,
    width: usize,
    nulls: Option<NullBuffer>,
) -> FixedSizeBinaryArray {
    FixedSizeBinaryArray::new(width as i32, Buffer::from_vec(bytes), nulls)
}

/// The bytes of a `FixedSizeBinary(width)` code column (sliced arrays included).
pub(crate) fn binary_codes<'a>(codes: &'a dyn Array, width: usize, what: &str) -> Result<&'a [u8]> {
    match codes.data_type() {
        DataType::FixedSizeBinary(w) if *w as usize == width => {
            let a = codes
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .expect("checked type");
            // arrow-rs slices the value buffer together with the array.
            Ok(&a.value_data()[..a.len() * width])
        }
        other => Err(Error::UnsupportedCodeType {
            expected: format!("{what} codes as FixedSizeBinary({width})"),
            found: other.clone(),
        }),
    }
}

/// The primitive values of a `FixedSizeList<T, dim>` code column (sliced arrays included).
pub(crate) fn list_codes<'a, T: arrow_array::ArrowPrimitiveType>(
    codes: &'a dyn Array,
    dim: usize,
    what: &str,
) -> Result<&'a [T::Native]> {
    let bad = || Error::UnsupportedCodeType {
        expected: format!("{what} codes as FixedSizeList<{}, {dim}>", T::DATA_TYPE),
        found: codes.data_type().clone(),
    };
    let a = codes
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .ok_or_else(bad)?;
    if a.value_length() as usize != dim || a.value_type() != T::DATA_TYPE {
        return Err(bad());
    }
    let v = a
        .values()
        .as_any()
        .downcast_ref::<PrimitiveArray<T>>()
        .ok_or_else(bad)?;
    Ok(&v.values()[..a.len() * dim])
}

/// Row validity of a code column, keeping only real nulls.
pub(crate) fn row_nulls(codes: &dyn Array) -> Option<NullBuffer> {
    codes.logical_nulls().filter(|n| n.null_count() > 0)
}

/// Float32 `FixedSizeList` of decoded vectors.
pub(crate) fn decoded(
    values: Vec<f32>,
    dim: usize,
    nulls: Option<NullBuffer>,
) -> FixedSizeListArray {
    fixed_list::<arrow_array::types::Float32Type>(values.into(), dim, nulls)
}

/// Checks that the input has the codec's dimension and reads it.
pub(crate) fn read_vectors(array: &dyn Array, dim: usize) -> Result<Vectors<'_>> {
    Vectors::try_new_with_dim(array, dim)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use arrow_array::{Array, FixedSizeListArray, Float32Array};
    use arrow_schema::{DataType, Field};

    use crate::calibration::{Calibration, RangeMethod};
    use crate::stats::{Stats, StatsOptions};
    use crate::vectors::Vectors;

    /// The dimension grid: odd sizes find remainder bugs.
    pub const DIMS: [usize; 7] = [1, 7, 8, 9, 383, 384, 1536];

    pub fn calibrate(a: &dyn Array) -> Calibration {
        let s = Stats::compute(a, &StatsOptions::default()).unwrap();
        Calibration::from_stats(&s, RangeMethod::MinMax).unwrap()
    }

    /// `a` with its values replaced (same nulls).
    pub fn with_values(a: &FixedSizeListArray, values: Vec<f32>) -> FixedSizeListArray {
        FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            a.value_length(),
            Arc::new(Float32Array::from(values)),
            a.logical_nulls(),
        )
    }

    /// Checks nulls are kept and, for valid rows and values inside `[lo, hi]`,
    /// `|decoded - x| <= step / 2` up to `f32` rounding (degenerate dimensions: within
    /// half the range of the midpoint).
    pub fn check_round_trip(
        input: &dyn Array,
        decoded: &FixedSizeListArray,
        cal: &Calibration,
        step: &[f32],
    ) {
        let (lo, hi, degenerate) = (cal.lo(), cal.hi(), cal.degenerate_mask());
        let v = Vectors::try_new(input).unwrap();
        assert_eq!(decoded.len(), v.len());
        let dec = decoded.values().as_primitive::<Float32Type>().values();
        let dim = v.dim();
        for r in 0..v.len() {
            assert_eq!(decoded.is_valid(r), v.is_valid(r), "row {r} validity");
            if !v.is_valid(r) {
                continue;
            }
            for d in 0..dim {
                let x = v.row(r)[d];
                if x < lo[d] || x > hi[d] {
                    continue;
                }
                let y = dec[r * dim + d];
                let mag = lo[d].abs().max(hi[d].abs());
                let half = if degenerate[d] {
                    (hi[d] - lo[d]) * 0.5
                } else {
                    step[d] * 0.5
                };
                let tol = half * (1.0 + 1e-4) + 4.0 * f32::EPSILON * mag;
                assert!(
                    (y - x).abs() <= tol,
                    "row {r} dim {d}: x={x} decoded={y} half-step={half}"
                );
            }
        }
    }
}
