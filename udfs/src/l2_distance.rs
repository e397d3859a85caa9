//! `l2_distance(a, b)`.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;
use embquant::distance::l2_squared;

use crate::pairwise::{float_pair, float_pair_field};

const NAME: &str = "l2_distance";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Euclidean distance of two float vectors, as pgvector's l2_distance. Either argument may be a column or a literal; `FixedSizeList` and equal-length `List` of numbers are accepted. Returns `Float32`; NULL when either vector is NULL; different dimensions are an error.",
    syntax_example = "l2_distance(a, b)",
    sql_example = r#"```sql
> SELECT l2_distance([1.0, 2.0], [3.0, 4.0]) AS d;
+-----------+
| d         |
+-----------+
| 2.828427 |
+-----------+
```"#,
    argument(name = "a", description = "First vector."),
    argument(name = "b", description = "Second vector, of the same dimension.")
)]
/// The `l2_distance` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct L2DistanceFunc {
    signature: Signature,
}

impl Default for L2DistanceFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl L2DistanceFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for L2DistanceFunc {
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
        float_pair(NAME, &args, |a, b| l2_squared(a, b).sqrt())
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
