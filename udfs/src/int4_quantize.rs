//! `int4_quantize(v [, calibration])`: per-dimension affine quantization to 4 bits.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{invoke_calibrated, plan_calibrated};

const NAME: &str = "int4_quantize";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "int4 quantization: per dimension, 16 levels over the calibrated range [lo, hi] \
(round half up, clipped), two codes per byte, dimension 2j in the high nibble of byte j. Returns \
`FixedSizeBinary(ceil(D / 2))` carrying embquant \
field metadata (recipe and calibration, when the calibration is a literal or comes from metadata). \
The calibration is the second argument, else the `embquant.calibration` metadata of `v`'s field; \
neither is an error. NULL vectors give NULL; NaN or infinite values are an error naming the row.",
    syntax_example = "int4_quantize(v [, calibration])",
    sql_example = r#"```sql
> SELECT encode(int4_quantize([0.0, 1.0, 0.5], '{"version":1,...}'), 'hex') AS codes;
+-------+
| codes |
+-------+
| 0f80  |
+-------+
```"#,
    argument(
        name = "v",
        description = "Vector: a FixedSizeList or equal-length List of numbers (column or literal)."
    ),
    argument(
        name = "calibration",
        description = "Calibration JSON (from `embedding_calibration` or `embquant calibrate`), a literal or a column holding one value."
    )
)]
/// The `int4_quantize` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Int4QuantizeFunc {
    signature: Signature,
}

impl Default for Int4QuantizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl Int4QuantizeFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for Int4QuantizeFunc {
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
        // Rows of unknown dimension: variable-length codes.
        plan_calibrated(NAME, "int4", &args, Some(DataType::Binary))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_calibrated(NAME, "int4", &args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
