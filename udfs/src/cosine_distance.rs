//! `cosine_distance(a, b)`.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use crate::builtin_pair::{builtin_pair, float64_field, CosineDistance};
use crate::pairwise::float_pair_field;

const NAME: &str = "cosine_distance";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Cosine distance `1 - dot(a, b) / (|a| |b|)` computed in Float64: exactly DataFusion's built-in `cosine_distance` (which this replaces under the same name), without copying `FixedSizeList<Float32>` columns to `List<Float64>` first. 0 for identical directions, 2 for opposite. Either argument may be a column or a literal; `FixedSizeList`, `List` and `LargeList` of numbers are accepted. Returns `Float64`; NULL when either vector is NULL, holds a NULL item or is all zeros; different dimensions are an error.",
    syntax_example = "cosine_distance(a, b)",
    sql_example = r#"```sql
> SELECT cosine_distance([1.0, 2.0], [3.0, 4.0]) AS d;
+---------------------+
| d                   |
+---------------------+
| 0.01613008990009257 |
+---------------------+
```"#,
    argument(name = "a", description = "First vector."),
    argument(name = "b", description = "Second vector, of the same dimension.")
)]
/// The `cosine_distance` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CosineDistanceFunc {
    signature: Signature,
    /// DataFusion's function of the same name, for the inputs the fast path does not read.
    builtin: std::sync::Arc<datafusion::logical_expr::ScalarUDF>,
}

impl Default for CosineDistanceFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl CosineDistanceFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
            builtin: datafusion::functions_nested::cosine_distance::cosine_distance_udf(),
        }
    }
}

impl ScalarUDFImpl for CosineDistanceFunc {
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
        // The vector checks of the other distance functions, the built-in's result type.
        float_pair_field(NAME, &args)?;
        Ok(float64_field(NAME))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        builtin_pair::<CosineDistance>(NAME, &args, &self.builtin)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
