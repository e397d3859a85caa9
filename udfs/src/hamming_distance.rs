//! `hamming_distance(a, b)`: differing bits of two binary codes.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;
use embquant::distance::hamming;

use crate::args::{batch_rows, output};

const NAME: &str = "hamming_distance";

fn check_type(arg: &str, dt: &DataType) -> Result<Option<usize>> {
    match dt {
        DataType::FixedSizeBinary(w) => Ok(Some(*w as usize)),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null => Ok(None),
        other => plan_err!(
            "{NAME}: argument {arg} must be binary codes (FixedSizeBinary from binary_quantize, or Binary), got {other}"
        ),
    }
}

/// One side of the comparison: the codes as an array (one row for a literal).
fn codes(value: &ColumnarValue) -> Result<Option<(ArrayRef, bool)>> {
    let (a, scalar) = match value {
        ColumnarValue::Scalar(s) if s.is_null() => return Ok(None),
        ColumnarValue::Scalar(s) => (s.to_array()?, true),
        ColumnarValue::Array(a) => (Arc::clone(a), false),
    };
    let a = match a.data_type() {
        DataType::FixedSizeBinary(_) | DataType::Binary => a,
        DataType::LargeBinary | DataType::BinaryView => cast(&a, &DataType::Binary)?,
        DataType::Null => return Ok(None),
        other => return exec_err!("{NAME}: expected binary codes, got {other}"),
    };
    Ok(Some((a, scalar)))
}

fn value(a: &ArrayRef, i: usize) -> &[u8] {
    match a.data_type() {
        DataType::FixedSizeBinary(_) => a.as_fixed_size_binary().value(i),
        _ => a.as_binary::<i32>().value(i),
    }
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Hamming distance (number of differing bits) of two binary codes, as pgvector's \
hamming_distance. Accepts `FixedSizeBinary` (from `binary_quantize` or `embquant quantize`) and \
`Binary`; either argument may be a literal. Returns `Int32`; NULL when either code is NULL; codes \
of different lengths are an error.",
    syntax_example = "hamming_distance(a, b)",
    sql_example = r#"```sql
> SELECT hamming_distance(binary_quantize([1.0, -1.0, 1.0]), binary_quantize([1.0, 1.0, -1.0])) AS d;
+---+
| d |
+---+
| 2 |
+---+
```"#,
    argument(name = "a", description = "Binary codes."),
    argument(name = "b", description = "Binary codes of the same length.")
)]
/// The `hamming_distance` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HammingDistanceFunc {
    signature: Signature,
}

impl Default for HammingDistanceFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl HammingDistanceFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HammingDistanceFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{NAME}: return_field_from_args is used instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let a = check_type("1", args.arg_fields[0].data_type())?;
        let b = check_type("2", args.arg_fields[1].data_type())?;
        if let (Some(a), Some(b)) = (a, b) {
            if a != b {
                return plan_err!("{NAME}: codes of different lengths: {a} and {b} bytes");
            }
        }
        Ok(Arc::new(Field::new(NAME, DataType::Int32, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (n, all_scalar) = batch_rows(&args.args);
        let (Some((a, sa)), Some((b, sb))) = (codes(&args.args[0])?, codes(&args.args[1])?) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Int32(None)));
        };
        let mut out = Vec::with_capacity(n);
        let mut valid = Vec::with_capacity(n);
        for i in 0..n {
            let (ra, rb) = (if sa { 0 } else { i }, if sb { 0 } else { i });
            if a.is_valid(ra) && b.is_valid(rb) {
                let (x, y) = (value(&a, ra), value(&b, rb));
                if x.len() != y.len() {
                    return exec_err!(
                        "{NAME}: codes of different lengths at row {i}: {} and {} bytes",
                        x.len(),
                        y.len()
                    );
                }
                out.push(hamming(x, y) as i32);
                valid.push(true);
            } else {
                out.push(0);
                valid.push(false);
            }
        }
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        output(Arc::new(Int32Array::new(out.into(), nulls)), all_scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
