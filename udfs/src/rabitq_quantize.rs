//! `rabitq_quantize(v [, calibration])`: RaBitQ 1-bit codes with their correction factors.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;
use embquant::metadata::Scheme;
use embquant::{RabitqCodec, Rotation};

use crate::args::{
    batch_codes_calibration, check_vector_type, code_recipe, ext, output, plan_calibration,
    plan_codes_dim, plan_dim, recipe_metadata, vector_arg,
};

const NAME: &str = "rabitq_quantize";

/// Bytes of a default (Hadamard-rotated) RaBitQ code of `dim` dimensions.
pub(crate) fn rabitq_width(dim: usize) -> usize {
    dim.next_power_of_two().max(8) / 8 + 8
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "RaBitQ quantization: the vector minus the calibration's per-dimension mean, \
rotated by the default randomized Hadamard transform (zero-padded to B = the next power of two, \
3 rounds, the same seed as `embquant quantize --scheme rabitq`), as B sign bits followed by two \
little-endian f32 correction factors (the residual norm and <sign vector, residual>). Returns \
`FixedSizeBinary(B / 8 + 8)` with embquant field metadata; score it with `rabitq_inner_product`. \
The calibration is the second argument, else `v`'s `embquant.calibration` field metadata. NULL \
vectors give NULL.",
    syntax_example = "rabitq_quantize(v [, calibration])",
    sql_example = r#"```sql
> SELECT id, rabitq_quantize(embedding, '{"version":1,...}') AS embedding_rq FROM corpus;
```"#,
    argument(
        name = "v",
        description = "Vector: a FixedSizeList or equal-length List of numbers."
    ),
    argument(
        name = "calibration",
        description = "Calibration JSON; defaults to `v`'s field metadata."
    )
)]
/// The `rabitq_quantize` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RabitqQuantizeFunc {
    signature: Signature,
}

impl Default for RabitqQuantizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl RabitqQuantizeFunc {
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

impl ScalarUDFImpl for RabitqQuantizeFunc {
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
            return plan_err!(
                "{NAME}: the dimension is unknown at planning (a List column with a calibration column): cast the vectors to a FixedSizeList"
            );
        };
        let width = rabitq_width(dim);
        let dt = DataType::FixedSizeBinary(width as i32);
        // The recipe records the rotation, so search and rabitq_inner_product can rebuild it.
        let mut recipe = code_recipe(f, Scheme::Rabitq, dim, &dt, width, known, None);
        recipe.rotation = Some(Rotation::default());
        recipe.code_bits = Some(dim.next_power_of_two().max(8));
        let meta = recipe_metadata(&recipe, known);
        Ok(Arc::new(Field::new(NAME, dt, true).with_metadata(meta)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(v) = vector_arg(NAME, "1 (v)", &args.args[0])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                args.return_field.data_type(),
            )?));
        };
        let cal = batch_codes_calibration(NAME, &args.args, &args.arg_fields, &v)?;
        let enc = RabitqCodec::new(&cal, Rotation::default())
            .encode(v.array.as_ref())
            .map_err(|e| ext(NAME, e))?;
        output(enc.array, v.scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
