//! `inner_product(a, b)`.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use crate::builtin_pair::{builtin_pair, float64_field, InnerProduct};
use crate::pairwise::float_pair_field;

const NAME: &str = "inner_product";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Inner product (dot product) of two vectors, `sum(a[i] * b[i])` computed in Float64: exactly DataFusion's built-in `inner_product` (which this replaces under the same names, `inner_product` and `dot_product`), without copying `FixedSizeList<Float32>` columns to `List<Float64>` first. Higher is more similar. Either argument may be a column or a literal; `FixedSizeList`, `List` and `LargeList` of numbers are accepted. Returns `Float64`; NULL when either vector is NULL or holds a NULL item; 0 for two empty vectors; different dimensions are an error.",
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
    /// DataFusion's function of the same name, for the inputs the fast path does not read.
    builtin: std::sync::Arc<datafusion::logical_expr::ScalarUDF>,
    aliases: Vec<String>,
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
            builtin: datafusion::functions_nested::inner_product::inner_product_udf(),
            aliases: vec!["dot_product".to_string()],
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

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{NAME}: return_field_from_args is used instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // The vector checks of the other distance functions, the built-in's result type.
        float_pair_field(NAME, &args)?;
        Ok(float64_field(NAME))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        builtin_pair::<InnerProduct>(NAME, &args, &self.builtin)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
