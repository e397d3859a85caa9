//! `l2_normalize(v)`: every vector scaled to unit length.

use std::sync::Arc;

use datafusion::arrow::array::{Float32Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{check_vector_type, f32_list, f32_list_type, output, read, vector_arg};

const NAME: &str = "l2_normalize";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Scales each vector to unit L2 length (as pgvector's l2_normalize); all-zero \
vectors stay zero. Returns `FixedSizeList<Float32, D>` for `FixedSizeList` input, `List<Float32>` for `List` \
input (and `[...]` literals); NULL vectors give NULL.",
    syntax_example = "l2_normalize(v)",
    sql_example = r#"```sql
> SELECT l2_normalize([3.0, 4.0]) AS n;
+------------+
| n          |
+------------+
| [0.6, 0.8] |
+------------+
```"#,
    argument(name = "v", description = "Vector (column or literal).")
)]
/// The `l2_normalize` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct L2NormalizeFunc {
    signature: Signature,
}

impl Default for L2NormalizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl L2NormalizeFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for L2NormalizeFunc {
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
        let dt = args.arg_fields[0].data_type();
        check_vector_type(NAME, "1 (v)", dt)?;
        // The type, never a literal's value, decides: constant folding must not change it.
        let out = match dt {
            DataType::FixedSizeList(_, d) => f32_list_type(*d as usize),
            _ => DataType::List(Arc::new(Field::new_list_field(DataType::Float32, false))),
        };
        Ok(Arc::new(Field::new(NAME, out, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(v) = vector_arg(NAME, "1 (v)", &args.args[0])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                args.return_field.data_type(),
            )?));
        };
        let vv = read(NAME, "1 (v)", &v)?;
        let dim = vv.dim();
        let mut values = Vec::with_capacity(vv.len() * dim);
        for r in 0..vv.len() {
            let x = vv.row(r);
            let norm = x.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt();
            let inv = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
            values.extend(x.iter().map(|&a| a * inv));
        }
        let nulls = vv.nulls().cloned();
        let out: datafusion::arrow::array::ArrayRef = match args.return_field.data_type() {
            DataType::List(f) => Arc::new(ListArray::try_new(
                Arc::clone(f),
                OffsetBuffer::from_lengths(std::iter::repeat_n(dim, vv.len())),
                Arc::new(Float32Array::from(values)),
                nulls,
            )?),
            _ => Arc::new(f32_list(values, dim, nulls)),
        };
        output(out, v.scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
