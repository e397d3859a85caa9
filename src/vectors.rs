//! A validated, row-major `f32` view of an Arrow vector column.
//!
//! Every codec and the calibration read their input through [`Vectors`]: it accepts
//! `FixedSizeList<Float32 | Float16 | Float64, D>` and `List`/`LargeList<Float32>` whose
//! valid rows all have the same length, checks item nulls and ragged rows once, and hands
//! out one contiguous `&[f32]` of `len * dim` values (row `i` at `i * dim..(i + 1) * dim`).
//! `FixedSizeList<Float32>` and uniformly spaced `List<Float32>` are borrowed without a copy;
//! other layouts are converted once. Null rows keep their position (their values are
//! whatever the array holds there, zeros when converted) and are reported by
//! [`Vectors::is_valid`].
//!
//! Finiteness is *not* checked here: the kernels check it while they read the values,
//! so a valid input costs one pass, not two.

use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Float64Type};
use arrow_array::{Array, FixedSizeListArray, GenericListArray, OffsetSizeTrait};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Schema};

use crate::error::{Error, Result};

/// Row-major `f32` values of a vector column plus its row validity.
#[derive(Debug, Clone)]
pub struct Vectors<'a> {
    values: Cow<'a, [f32]>,
    dim: usize,
    len: usize,
    nulls: Option<NullBuffer>,
}

impl<'a> Vectors<'a> {
    /// Reads `array`, inferring the dimension.
    pub fn try_new(array: &'a dyn Array) -> Result<Self> {
        Self::read(array, None)
    }

    /// Reads `array` and requires dimension `dim`.
    pub fn try_new_with_dim(array: &'a dyn Array, dim: usize) -> Result<Self> {
        let v = Self::read(array, Some(dim))?;
        if v.dim != dim {
            return Err(Error::DimensionMismatch {
                context: "vector column".into(),
                expected: dim,
                found: v.dim,
            });
        }
        Ok(v)
    }

    /// Builds a view from row-major values, `values.len() == len * dim`.
    pub fn from_slice(values: &'a [f32], dim: usize, nulls: Option<NullBuffer>) -> Result<Self> {
        if dim == 0 {
            return Err(Error::bad_argument(
                "dim",
                "vector dimension must be at least 1",
            ));
        }
        if !values.len().is_multiple_of(dim) {
            return Err(Error::bad_argument(
                "values",
                format!(
                    "{} values is not a whole number of {dim}-dimensional rows",
                    values.len()
                ),
            ));
        }
        let len = values.len() / dim;
        if let Some(n) = &nulls {
            if n.len() != len {
                return Err(Error::bad_argument(
                    "nulls",
                    format!("null buffer of {} rows for {len} rows", n.len()),
                ));
            }
        }
        Ok(Self {
            values: Cow::Borrowed(values),
            dim,
            len,
            nulls,
        })
    }

    fn read(array: &'a dyn Array, expect_dim: Option<usize>) -> Result<Self> {
        let v = match array.data_type() {
            DataType::FixedSizeList(_, _) => read_fixed(array.as_fixed_size_list())?,
            DataType::List(f) if f.data_type() == &DataType::Float32 => {
                read_list(array.as_list::<i32>(), expect_dim)?
            }
            DataType::LargeList(f) if f.data_type() == &DataType::Float32 => {
                read_list(array.as_list::<i64>(), expect_dim)?
            }
            other => {
                return Err(Error::UnsupportedType {
                    found: other.clone(),
                })
            }
        };
        if v.dim == 0 {
            return Err(Error::bad_argument(
                "dim",
                "vector dimension must be at least 1",
            ));
        }
        Ok(v)
    }

    /// The vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of rows (null rows included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The values of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Row validity (`None` when no row is null).
    pub fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls.as_ref()
    }

    /// Whether row `i` is non-null.
    pub fn is_valid(&self, i: usize) -> bool {
        self.nulls.as_ref().is_none_or(|n| n.is_valid(i))
    }

    /// The number of null rows.
    pub fn null_count(&self) -> usize {
        self.nulls.as_ref().map_or(0, |n| n.null_count())
    }

    /// The first non-finite value in the valid rows `rows`, as an error.
    pub(crate) fn find_non_finite(&self, rows: std::ops::Range<usize>) -> Result<()> {
        for r in rows {
            if !self.is_valid(r) {
                continue;
            }
            if let Some((d, &x)) = self.row(r).iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(Error::NonFinite {
                    row: r,
                    dim: d,
                    value: x as f64,
                });
            }
        }
        Ok(())
    }
}

fn read_fixed(a: &FixedSizeListArray) -> Result<Vectors<'_>> {
    let dim = a.value_length() as usize;
    let len = a.len();
    let nulls = a.logical_nulls().filter(|n| n.null_count() > 0);
    // arrow-rs slices the child together with the list, so `values()` starts at row 0.
    let child = a.values();
    let n = len * dim;
    check_item_nulls(child.as_ref(), nulls.as_ref(), dim, len, |r| r * dim)?;
    let values: Cow<'_, [f32]> = match child.data_type() {
        DataType::Float32 => Cow::Borrowed(&child.as_primitive::<Float32Type>().values()[..n]),
        DataType::Float16 => {
            let src = &child.as_primitive::<Float16Type>().values()[..n];
            let mut out = vec![0f32; n];
            half::slice::HalfFloatSliceExt::convert_to_f32_slice(src, &mut out);
            Cow::Owned(out)
        }
        DataType::Float64 => {
            let src = &child.as_primitive::<Float64Type>().values()[..n];
            Cow::Owned(src.iter().map(|&x| x as f32).collect())
        }
        _ => {
            return Err(Error::UnsupportedType {
                found: a.data_type().clone(),
            })
        }
    };
    Ok(Vectors {
        values,
        dim,
        len,
        nulls,
    })
}

fn read_list<O: OffsetSizeTrait>(
    a: &GenericListArray<O>,
    expect_dim: Option<usize>,
) -> Result<Vectors<'_>> {
    let len = a.len();
    let nulls = a.logical_nulls().filter(|n| n.null_count() > 0);
    let offsets = a.value_offsets();
    let valid = |r: usize| nulls.as_ref().is_none_or(|n| n.is_valid(r));
    let row_len = |r: usize| (offsets[r + 1] - offsets[r]).as_usize();
    let dim = match expect_dim {
        Some(d) => d,
        None => (0..len).find(|&r| valid(r)).map_or(0, row_len),
    };
    if let Some(r) = (0..len).find(|&r| valid(r) && row_len(r) != dim) {
        return Err(Error::RaggedList {
            row: r,
            found: row_len(r),
            expected: dim,
        });
    }
    let child = a.values().as_primitive::<Float32Type>();
    let start = offsets[0].as_usize();
    check_item_nulls(child, nulls.as_ref(), dim, len, |r| offsets[r].as_usize())?;
    let uniform = (0..len).all(|r| row_len(r) == dim);
    let values: Cow<'_, [f32]> = if uniform {
        Cow::Borrowed(&child.values()[start..start + len * dim])
    } else {
        // Null rows of a different length (usually empty): copy, zero-filling them.
        let mut out = vec![0f32; len * dim];
        for r in (0..len).filter(|&r| valid(r)) {
            let o = offsets[r].as_usize();
            out[r * dim..(r + 1) * dim].copy_from_slice(&child.values()[o..o + dim]);
        }
        Cow::Owned(out)
    };
    Ok(Vectors {
        values,
        dim,
        len,
        nulls,
    })
}

/// Errors on the first null item inside a valid row.
fn check_item_nulls(
    child: &dyn Array,
    row_nulls: Option<&NullBuffer>,
    dim: usize,
    len: usize,
    row_start: impl Fn(usize) -> usize,
) -> Result<()> {
    let Some(items) = child.logical_nulls().filter(|n| n.null_count() > 0) else {
        return Ok(());
    };
    for r in 0..len {
        if row_nulls.is_some_and(|n| n.is_null(r)) {
            continue;
        }
        let s = row_start(r);
        if let Some(d) = (0..dim).find(|&d| items.is_null(s + d)) {
            return Err(Error::NullItem { row: r, dim: d });
        }
    }
    Ok(())
}

/// The vector dimension of a vector column's type (None for `List`, whose length is only
/// known from the data).
pub fn fixed_dims(dt: &DataType) -> Option<usize> {
    match dt {
        DataType::FixedSizeList(f, n)
            if matches!(
                f.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            ) =>
        {
            Some(*n as usize)
        }
        _ => None,
    }
}

/// The index of `column` in `schema`, or an error listing the columns there are. A name
/// that two columns share is an error too: which of them was meant cannot be told, and
/// reading the first would silently ignore the other.
pub fn column_index(schema: &Schema, column: &str) -> Result<usize> {
    let at: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name() == column)
        .map(|(i, _)| i)
        .collect();
    if at.len() > 1 {
        return Err(Error::Schema(format!(
            "column {column:?} appears {} times (at positions {at:?}); rename all but one of them",
            at.len()
        )));
    }
    schema.index_of(column).map_err(|_| Error::MissingColumn {
        column: column.to_string(),
        available: schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Checks that `column` is a vector column of `schema`; returns its index.
pub fn vector_column(schema: &Schema, column: &str) -> Result<usize> {
    let idx = column_index(schema, column)?;
    let dt = schema.field(idx).data_type();
    let ok = fixed_dims(dt).is_some()
        || matches!(dt, DataType::List(f) | DataType::LargeList(f) if f.data_type() == &DataType::Float32);
    if !ok {
        return Err(Error::UnsupportedType { found: dt.clone() });
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, ListBuilder};
    use arrow_array::{Float16Array, Float64Array};
    use arrow_schema::Field;

    use super::*;

    fn fsl(rows: &[Option<Vec<f32>>], dim: usize) -> FixedSizeListArray {
        let mut b = FixedSizeListBuilder::new(Float32Builder::new(), dim as i32);
        for r in rows {
            match r {
                Some(v) => {
                    b.values().append_slice(v);
                    b.append(true);
                }
                None => {
                    b.values().append_slice(&vec![f32::NAN; dim]);
                    b.append(false);
                }
            }
        }
        b.finish()
    }

    #[test]
    fn fixed_size_list_sliced_is_zero_copy_and_offset() {
        let a = fsl(
            &[
                Some(vec![1., 2.]),
                Some(vec![3., 4.]),
                None,
                Some(vec![7., 8.]),
            ],
            2,
        );
        let s = a.slice(1, 3);
        let v = Vectors::try_new(&s).unwrap();
        assert_eq!(v.dim(), 2);
        assert_eq!(v.len(), 3);
        assert_eq!(v.row(0), &[3., 4.]);
        assert!(!v.is_valid(1));
        assert_eq!(v.row(2), &[7., 8.]);
        assert!(matches!(v.values, Cow::Borrowed(_)));
    }

    #[test]
    fn float16_and_float64_items_are_converted() {
        let f16s = Float16Array::from(vec![half::f16::from_f32(0.5), half::f16::from_f32(-2.0)]);
        let a = FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float16, false)),
            2,
            Arc::new(f16s),
            None,
        );
        assert_eq!(Vectors::try_new(&a).unwrap().values(), &[0.5, -2.0]);
        let f64s = Float64Array::from(vec![0.25, 1e300]);
        let a = FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, false)),
            1,
            Arc::new(f64s),
            None,
        );
        let v = Vectors::try_new(&a).unwrap();
        assert_eq!(v.row(0), &[0.25]);
        // 1e300 does not fit in f32: the kernels will report it as non-finite.
        assert_err!(v.find_non_finite(0..2), crate::Error::NonFinite { .. });
    }

    #[test]
    fn list_with_empty_null_rows_is_copied() {
        let mut b = ListBuilder::new(Float32Builder::new());
        b.append_value([Some(1.0), Some(2.0)]);
        b.append_null();
        b.append_value([Some(3.0), Some(4.0)]);
        let a = b.finish();
        let v = Vectors::try_new(&a).unwrap();
        assert_eq!(v.values(), &[1., 2., 0., 0., 3., 4.]);
        assert!(!v.is_valid(1));
    }

    #[test]
    fn ragged_list_names_the_first_bad_row() {
        let mut b = ListBuilder::new(Float32Builder::new());
        b.append_value([Some(1.0), Some(2.0)]);
        b.append_value([Some(1.0), Some(2.0)]);
        b.append_value([Some(3.0)]);
        let a = b.finish();
        match Vectors::try_new(&a) {
            Err(Error::RaggedList {
                row: 2,
                found: 1,
                expected: 2,
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn null_item_in_valid_row_is_an_error() {
        let mut b = FixedSizeListBuilder::new(Float32Builder::new(), 3);
        b.values().append_slice(&[1., 2., 3.]);
        b.append(true);
        b.values().append_value(1.0);
        b.values().append_null();
        b.values().append_value(1.0);
        b.append(true);
        let a = b.finish();
        let e = Vectors::try_new(&a).unwrap_err();
        assert!(matches!(e, Error::NullItem { row: 1, dim: 1 }), "{e}");
        assert!(e.to_string().contains("row 1"));
    }

    #[test]
    fn wrong_types_are_rejected() {
        let a = Float32Builder::new().finish();
        assert!(matches!(
            Vectors::try_new(&a),
            Err(Error::UnsupportedType { .. })
        ));
        let a = FixedSizeListArray::new_null(
            Arc::new(Field::new_list_field(DataType::Int32, true)),
            4,
            2,
        );
        assert!(matches!(
            Vectors::try_new(&a),
            Err(Error::UnsupportedType { .. })
        ));
    }

    #[test]
    fn dimension_is_checked() {
        let a = fsl(&[Some(vec![1., 2.])], 2);
        assert!(matches!(
            Vectors::try_new_with_dim(&a, 3),
            Err(Error::DimensionMismatch {
                expected: 3,
                found: 2,
                ..
            })
        ));
    }
}
