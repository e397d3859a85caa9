//! The shared body of the functions named like a DataFusion built-in (`cosine_distance`,
//! `inner_product` / `dot_product`): they return exactly what the built-in returns, for every
//! input it accepts, only faster on embedding columns.
//!
//! The built-in casts both arguments to `List<Float64>` (a copy of the column) and computes
//! in `f64`, one product at a time, in order. Here vectors of `Float32` or `Float64` items
//! without null items (`FixedSizeList`, `List`, `LargeList`, columns or literals) are read in
//! place and computed the same way, so results are bit-identical; every other input (integer
//! or `Float16` items, null items) goes to the built-in itself.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float32Type, Float64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use crate::args::batch_rows;

/// A vector item read as `f64`.
pub trait Item: Copy {
    /// The value, exactly.
    fn get(self) -> f64;
}

impl Item for f32 {
    #[inline]
    fn get(self) -> f64 {
        self as f64
    }
}

impl Item for f64 {
    #[inline]
    fn get(self) -> f64 {
        self
    }
}

/// What a function computes from two rows of equal length.
pub trait PairKernel {
    /// The result for rows `a` and `b` (None: NULL).
    fn eval<A: Item, B: Item>(a: &[A], b: &[B]) -> Option<f64>;
}

/// Row bounds of a list array.
enum Bounds<'a> {
    Fixed(usize),
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl Bounds<'_> {
    fn of(&self, row: usize) -> (usize, usize) {
        match self {
            Bounds::Fixed(d) => (row * d, (row + 1) * d),
            Bounds::I32(o) => (o[row] as usize, o[row + 1] as usize),
            Bounds::I64(o) => (o[row] as usize, o[row + 1] as usize),
        }
    }
}

/// Item values of a vector argument.
enum Values<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// A vector argument read in place: its rows, items and nulls.
struct Rows<'a> {
    array: &'a ArrayRef,
    bounds: Bounds<'a>,
    values: Values<'a>,
    scalar: bool,
}

impl<'a> Rows<'a> {
    /// None when the fast path does not apply (item type, null items).
    fn new(array: &'a ArrayRef, scalar: bool) -> Option<Self> {
        let (bounds, items) = match array.data_type() {
            DataType::FixedSizeList(_, d) => {
                let a = array.as_fixed_size_list();
                (Bounds::Fixed(*d as usize), a.values())
            }
            DataType::List(_) => {
                let a = array.as_list::<i32>();
                (Bounds::I32(a.value_offsets()), a.values())
            }
            DataType::LargeList(_) => {
                let a = array.as_list::<i64>();
                (Bounds::I64(a.value_offsets()), a.values())
            }
            _ => return None,
        };
        if items.null_count() != 0 {
            return None;
        }
        let values = match items.data_type() {
            DataType::Float32 => Values::F32(items.as_primitive::<Float32Type>().values()),
            DataType::Float64 => Values::F64(items.as_primitive::<Float64Type>().values()),
            _ => return None,
        };
        Some(Rows {
            array,
            bounds,
            values,
            scalar,
        })
    }

    /// Bounds of row `i` of the batch, None when it is NULL.
    fn row(&self, i: usize) -> Option<(usize, usize)> {
        let r = if self.scalar { 0 } else { i };
        self.array.is_valid(r).then(|| self.bounds.of(r))
    }
}

fn eval<K: PairKernel>(
    a: &Values,
    ra: (usize, usize),
    b: &Values,
    rb: (usize, usize),
) -> Option<f64> {
    match (a, b) {
        (Values::F32(x), Values::F32(y)) => K::eval(&x[ra.0..ra.1], &y[rb.0..rb.1]),
        (Values::F32(x), Values::F64(y)) => K::eval(&x[ra.0..ra.1], &y[rb.0..rb.1]),
        (Values::F64(x), Values::F32(y)) => K::eval(&x[ra.0..ra.1], &y[rb.0..rb.1]),
        (Values::F64(x), Values::F64(y)) => K::eval(&x[ra.0..ra.1], &y[rb.0..rb.1]),
    }
}

fn array_of(v: &ColumnarValue) -> Result<Option<(ArrayRef, bool)>> {
    Ok(match v {
        ColumnarValue::Scalar(s) if s.is_null() => None,
        ColumnarValue::Scalar(s) => Some((s.to_array()?, true)),
        ColumnarValue::Array(a) if a.data_type() == &DataType::Null => None,
        ColumnarValue::Array(a) => Some((Arc::clone(a), false)),
    })
}

/// The nullable `Float64` result field of `function`.
pub fn float64_field(function: &str) -> FieldRef {
    Arc::new(Field::new(function, DataType::Float64, true))
}

/// Evaluates `K` over every row of `args`, as `builtin` would.
pub fn builtin_pair<K: PairKernel>(
    function: &str,
    args: &ScalarFunctionArgs,
    builtin: &ScalarUDF,
) -> Result<ColumnarValue> {
    let (n, all_scalar) = batch_rows(&args.args);
    let (Some(a), Some(b)) = (array_of(&args.args[0])?, array_of(&args.args[1])?) else {
        // A NULL vector: every row is NULL.
        return Ok(if all_scalar {
            ColumnarValue::Scalar(ScalarValue::Float64(None))
        } else {
            ColumnarValue::Array(Arc::new(Float64Array::new_null(n)))
        });
    };
    let (Some(ra), Some(rb)) = (Rows::new(&a.0, a.1), Rows::new(&b.0, b.1)) else {
        return delegate(args, builtin);
    };
    let mut out = Vec::with_capacity(n);
    let mut valid = Vec::with_capacity(n);
    for i in 0..n {
        let value = match (ra.row(i), rb.row(i)) {
            (Some(x), Some(y)) => {
                if x.1 - x.0 != y.1 - y.0 {
                    return exec_err!(
                        "{function}: dimension mismatch: the first vector has {} dimensions, the second {}",
                        x.1 - x.0,
                        y.1 - y.0
                    );
                }
                eval::<K>(&ra.values, x, &rb.values, y)
            }
            _ => None,
        };
        out.push(value.unwrap_or(0.0));
        valid.push(value.is_some());
    }
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    let array = Float64Array::new(out.into(), nulls);
    Ok(if all_scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
    } else {
        ColumnarValue::Array(Arc::new(array))
    })
}

/// Runs the built-in on `args`, cast as its planner would.
fn delegate(args: &ScalarFunctionArgs, builtin: &ScalarUDF) -> Result<ColumnarValue> {
    let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
    let coerced = builtin.coerce_types(&types)?;
    let cast = args
        .args
        .iter()
        .zip(&coerced)
        .map(|(a, t)| a.cast_to(t, None))
        .collect::<Result<Vec<_>>>()?;
    let arg_fields = coerced
        .iter()
        .map(|t| Arc::new(Field::new("arg", t.clone(), true)))
        .collect();
    builtin.invoke_with_args(ScalarFunctionArgs {
        args: cast,
        arg_fields,
        number_rows: args.number_rows,
        return_field: args.return_field.clone(),
        config_options: args.config_options.clone(),
    })
}

/// `1 - dot / (|a| |b|)` (NULL when either vector is all zeros).
pub struct CosineDistance;

impl PairKernel for CosineDistance {
    fn eval<A: Item, B: Item>(a: &[A], b: &[B]) -> Option<f64> {
        let (mut dot, mut sq1, mut sq2) = (0.0f64, 0.0f64, 0.0f64);
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (x.get(), y.get());
            dot += x * y;
            sq1 += x * x;
            sq2 += y * y;
        }
        (sq1 != 0.0 && sq2 != 0.0).then(|| 1.0 - dot / (sq1.sqrt() * sq2.sqrt()))
    }
}

/// `sum(a[i] * b[i])` (0 for empty vectors).
pub struct InnerProduct;

impl PairKernel for InnerProduct {
    fn eval<A: Item, B: Item>(a: &[A], b: &[B]) -> Option<f64> {
        let mut dot = 0.0f64;
        for (x, y) in a.iter().zip(b) {
            dot += x.get() * y.get();
        }
        Some(dot)
    }
}
