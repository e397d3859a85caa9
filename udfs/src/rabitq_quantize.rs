//! `rabitq_quantize(v [, calibration [, bits]])`: RaBitQ 1-bit codes with their correction
//! factors, or with `bits` 2 to 8 the extra bits of multi-bit RaBitQ.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{invoke_calibrated, plan_calibrated};

const NAME: &str = "rabitq_quantize";

/// The scheme name of `bits`-bit codes (`rabitq`, `rabitq2` ... `rabitq8`).
fn scheme(bits: u8) -> String {
    format!("rabitq{bits}")
}

/// The `bits` argument (third, an integer literal 1 to 8; 1 without it).
fn bits_arg(value: Option<&ScalarValue>, given: bool) -> Result<u8> {
    if !given {
        return Ok(1);
    }
    let bits = value.and_then(crate::args::integer_literal);
    match bits {
        Some(b @ 1..=8) => Ok(b as u8),
        Some(b) => plan_err!("{NAME}: bits {b}: expected 1 to 8"),
        None => plan_err!("{NAME}: argument 3 (bits) must be an integer literal, 1 to 8"),
    }
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "RaBitQ quantization: the vector minus the calibration's per-dimension mean, \
rotated by the default randomized Hadamard transform (zero-padded to B = the next power of two, \
3 rounds, the same seed as `embquant quantize --scheme rabitq`), as B sign bits followed by two \
little-endian f32 correction factors (the residual norm and <sign vector, residual>). Returns \
`FixedSizeBinary(B / 8 + 8)` with embquant field metadata; score it with `rabitq_inner_product`. \
With `bits` 2 to 8, returns instead the extra bits of multi-bit (Extended) RaBitQ, the \
`<column>_rq<bits>` column of `embquant quantize --scheme rabitq --rabitq-bits B`: \
`FixedSizeBinary((bits - 1) * B / 8 + 8)`, scored together with the 1-bit codes of the same \
vectors. The calibration is the second argument, else `v`'s `embquant.calibration` field \
metadata (bits need the calibration argument before them). NULL vectors give NULL.",
    syntax_example = "rabitq_quantize(v [, calibration [, bits]])",
    sql_example = r#"```sql
> SELECT id, rabitq_quantize(embedding, '{"version":1,...}') AS embedding_rq,
         rabitq_quantize(embedding, '{"version":1,...}', 4) AS embedding_rq4 FROM corpus;
```"#,
    argument(
        name = "v",
        description = "Vector: a FixedSizeList or equal-length List of numbers."
    ),
    argument(
        name = "calibration",
        description = "Calibration JSON; defaults to `v`'s field metadata."
    ),
    argument(
        name = "bits",
        description = "Bits per dimension, 1 (default: the sign bits and factors) to 8 (the extra bits)."
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
                vec![
                    TypeSignature::Any(1),
                    TypeSignature::Any(2),
                    TypeSignature::Any(3),
                ],
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
        let bits = bits_arg(
            args.scalar_arguments.get(2).copied().flatten(),
            args.arg_fields.len() > 2,
        )?;
        // The recipe records the rotation, so search and rabitq_inner_product can rebuild it.
        plan_calibrated(NAME, &scheme(bits), &args, None)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bits = match args.args.get(2) {
            Some(ColumnarValue::Scalar(s)) => bits_arg(Some(s), true)?,
            Some(ColumnarValue::Array(_)) => {
                return plan_err!("{NAME}: argument 3 (bits) must be an integer literal, 1 to 8")
            }
            None => 1,
        };
        invoke_calibrated(NAME, &scheme(bits), &args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
