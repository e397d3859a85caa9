//! `int8_quantize(v [, calibration])`: per-dimension affine quantization to int8.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{
    check_vector_type, invoke_calibrated, plan_calibration, plan_codes_dim, plan_dim,
    sql_code_field, sql_recipe,
};

const NAME: &str = "int8_quantize";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "int8 quantization: per dimension, 256 levels over the calibrated range [lo, hi] \
(round half up, clipped), code = level - 128. Returns `FixedSizeList<Int8, D>` carrying embquant \
field metadata (recipe and calibration, when the calibration is a literal or comes from metadata). \
The calibration is the second argument, else the `embquant.calibration` metadata of `v`'s field; \
neither is an error. NULL vectors give NULL; NaN or infinite values are an error naming the row.",
    syntax_example = "int8_quantize(v [, calibration])",
    sql_example = r#"```sql
> SELECT int8_quantize([0.0, 1.0, 0.5], '{"version":1,...}') AS codes;
+----------------+
| codes          |
+----------------+
| [-128, 127, 0] |
+----------------+
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
/// The `int8_quantize` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Int8QuantizeFunc {
    signature: Signature,
}

impl Default for Int8QuantizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl Int8QuantizeFunc {
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

impl ScalarUDFImpl for Int8QuantizeFunc {
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
        let f = &args.arg_fields[0];
        check_vector_type(NAME, "1 (v)", f.data_type())?;
        let cal = plan_calibration(NAME, args.arg_fields, args.scalar_arguments, 1, 0)?;
        let known = cal.known();
        let dim = plan_dim(f.data_type(), args.scalar_arguments[0]);
        let Some(dim) = plan_codes_dim(NAME, dim, &cal)? else {
            // A List column with a per-row calibration argument: the dimension is only known
            // when the rows are; return variable-length codes.
            return Ok(Arc::new(Field::new(
                NAME,
                DataType::List(Arc::new(Field::new_list_field(DataType::Int8, false))),
                true,
            )));
        };
        let recipe = sql_recipe(NAME, f, "int8", "zero", dim, known)?;
        Ok(sql_code_field(NAME, &recipe, known))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_calibrated(NAME, "int8", &args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
