//! `int4_dequantize(codes [, calibration])`: packed int4 codes back to float vectors.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;
use embquant::Int4Codec;

use crate::args::{
    batch_calibration, ext, f32_list_type, output, plan_calibration, PlanCalibration,
};

const NAME: &str = "int4_dequantize";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Decodes packed int4 codes (`FixedSizeBinary(ceil(D / 2))` or `Binary`, high nibble first) \
to `FixedSizeList<Float32, D>`: value = lo + level * step per dimension. The calibration (which \
fixes D) is the second argument, else the codes' `embquant.calibration` field metadata; it must be \
known at planning time (a literal or metadata). NULL codes give NULL.",
    syntax_example = "int4_dequantize(codes [, calibration])",
    sql_example = r#"```sql
> SELECT int4_dequantize(embedding_int4) FROM 'corpus.parquet' LIMIT 1;
```"#,
    argument(name = "codes", description = "Packed int4 codes (column or literal)."),
    argument(
        name = "calibration",
        description = "Calibration JSON literal; defaults to the codes' field metadata."
    )
)]
/// The `int4_dequantize` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Int4DequantizeFunc {
    signature: Signature,
}

impl Default for Int4DequantizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl Int4DequantizeFunc {
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

impl ScalarUDFImpl for Int4DequantizeFunc {
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
        let width = match args.arg_fields[0].data_type() {
            DataType::FixedSizeBinary(w) => Some(*w as usize),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null => None,
            other => {
                return plan_err!(
                    "{NAME}: argument 1 (codes) must be int4 codes (FixedSizeBinary from int4_quantize), got {other}"
                )
            }
        };
        let cal = plan_calibration(NAME, args.arg_fields, args.scalar_arguments, 1, 0)?;
        let PlanCalibration::Known(cal) = cal else {
            return plan_err!(
                "{NAME}: the calibration must be known at planning time (a literal or the codes' field metadata): it fixes the output dimension"
            );
        };
        if let Some(w) = width {
            if w != cal.dim().div_ceil(2) {
                return plan_err!(
                    "{NAME}: codes of {w} bytes do not fit the calibration's {} dimensions (expected {} bytes)",
                    cal.dim(),
                    cal.dim().div_ceil(2)
                );
            }
        }
        Ok(Arc::new(Field::new(NAME, f32_list_type(cal.dim()), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (codes, scalar) = match &args.args[0] {
            ColumnarValue::Scalar(s) if s.is_null() => {
                return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                    args.return_field.data_type(),
                )?))
            }
            ColumnarValue::Scalar(s) => (s.to_array()?, true),
            ColumnarValue::Array(a) => (Arc::clone(a), false),
        };
        let cal = batch_calibration(NAME, &args.args, &args.arg_fields, 1, 0)?;
        let width = cal.dim().div_ceil(2);
        let codes = match codes.data_type() {
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                let b = cast(&codes, &DataType::Binary)?;
                let b = b.as_binary::<i32>();
                if let Some((row, v)) = b
                    .iter()
                    .enumerate()
                    .find_map(|(i, v)| v.filter(|v| v.len() != width).map(|v| (i, v)))
                {
                    return exec_err!(
                        "{NAME}: codes of {} bytes at row {row} do not fit the calibration's {} dimensions (expected {width} bytes)",
                        v.len(),
                        cal.dim()
                    );
                }
                cast(&codes, &DataType::FixedSizeBinary(width as i32))?
            }
            _ => codes,
        };
        if let DataType::FixedSizeBinary(w) = codes.data_type() {
            if *w as usize != cal.dim().div_ceil(2) {
                return exec_err!(
                    "{NAME}: codes of {w} bytes do not fit the calibration's {} dimensions",
                    cal.dim()
                );
            }
        }
        let out = Int4Codec::new(&cal)
            .decode(codes.as_ref())
            .map_err(|e| ext(NAME, e))?;
        output(Arc::new(out), scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
