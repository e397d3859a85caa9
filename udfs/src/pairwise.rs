//! The shared body of the two-vector distance functions: pairs rows of two vector
//! arguments (either may be a literal, paired with every row of the other), NULL when
//! either row is NULL, an error when the dimensions differ.

use std::sync::Arc;

use datafusion::arrow::array::Float32Array;
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs};

use crate::args::{batch_rows, check_vector_type, output, read, vector_arg};

/// Plan-time checks of `f(a, b)` over float vectors: both vectors, equal dimensions when
/// the types tell them. Returns a nullable `Float32` field.
pub fn float_pair_field(function: &str, args: &ReturnFieldArgs) -> Result<FieldRef> {
    let a = check_vector_type(function, "1", args.arg_fields[0].data_type())?;
    let b = check_vector_type(function, "2", args.arg_fields[1].data_type())?;
    let a = a.or(crate::args::plan_dim(
        args.arg_fields[0].data_type(),
        args.scalar_arguments[0],
    ));
    let b = b.or(crate::args::plan_dim(
        args.arg_fields[1].data_type(),
        args.scalar_arguments[1],
    ));
    if let (Some(a), Some(b)) = (a, b) {
        if a != b {
            return plan_err!(
                "{function}: dimension mismatch: the first vector has {a} dimensions, the second {b}"
            );
        }
    }
    Ok(Arc::new(Field::new(function, DataType::Float32, true)))
}

/// Evaluates `kernel(a_row, b_row)` for every row.
pub fn float_pair(
    function: &str,
    args: &ScalarFunctionArgs,
    kernel: impl Fn(&[f32], &[f32]) -> f32,
) -> Result<ColumnarValue> {
    let (n, all_scalar) = batch_rows(&args.args);
    let (Some(a), Some(b)) = (
        vector_arg(function, "1", &args.args[0])?,
        vector_arg(function, "2", &args.args[1])?,
    ) else {
        return Ok(ColumnarValue::Scalar(ScalarValue::Float32(None)));
    };
    let (va, vb) = (read(function, "1", &a)?, read(function, "2", &b)?);
    if va.dim() != vb.dim() {
        return exec_err!(
            "{function}: dimension mismatch: the first vector has {} dimensions, the second {}",
            va.dim(),
            vb.dim()
        );
    }
    let mut out = Vec::with_capacity(n);
    let mut valid = Vec::with_capacity(n);
    for i in 0..n {
        let (ra, rb) = (a.row(i), b.row(i));
        if va.is_valid(ra) && vb.is_valid(rb) {
            out.push(kernel(va.row(ra), vb.row(rb)));
            valid.push(true);
        } else {
            out.push(0.0);
            valid.push(false);
        }
    }
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    output(Arc::new(Float32Array::new(out.into(), nulls)), all_scalar)
}
