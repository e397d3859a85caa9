//! `inner_product(a, b)`.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;
use embquant::kernels::float::dot;

use crate::pairwise::{float_pair, float_pair_field};

const NAME: &str = "inner_product";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Inner product (dot product) of two float vectors, as pgvector's inner_product. Higher is more similar. Either argument may be a column or a literal; `FixedSizeList` and equal-length `List` of numbers are accepted. Returns `Float32`; NULL when either vector is NULL; different dimensions are an error.",
    syntax_example = "inner_product(a, b)",
    sql_example = r#"```sql
> SELECT inner_product([1.0, 2.0], [3.0, 4.0]) AS d;
+-----------+
| d         |
+-----------+
| 11.0 |
+-----------+
```"#,
    argument(name = "a", description = "First vector."),
    argument(name = "b", description = "Second vector, of the same dimension.")
)]
/// The `inner_product` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InnerProductFunc {
    signature: Signature,
}

impl Default for InnerProductFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl InnerProductFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for InnerProductFunc {
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
        float_pair_field(NAME, &args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        float_pair(NAME, &args, dot)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
