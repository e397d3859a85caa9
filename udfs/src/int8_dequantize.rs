//! `int8_dequantize(codes [, calibration])`: int8 codes back to float vectors.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;
use embquant::Int8Codec;

use crate::args::{
    batch_calibration, ext, f32_list_type, output, plan_calibration, PlanCalibration,
};

const NAME: &str = "int8_dequantize";

/// The dimension of int8 codes of type `dt`, or a plan error.
pub(crate) fn int8_code_dim(function: &str, arg: &str, dt: &DataType) -> Result<Option<usize>> {
    match dt {
        DataType::FixedSizeList(f, d) if matches!(f.data_type(), DataType::Int8 | DataType::UInt8) => {
            Ok(Some(*d as usize))
        }
        DataType::FixedSizeBinary(d) => Ok(Some(*d as usize)),
        DataType::List(f) | DataType::LargeList(f)
            if matches!(f.data_type(), DataType::Int8 | DataType::UInt8) =>
        {
            Ok(None)
        }
        DataType::Null => Ok(None),
        other => plan_err!(
            "{function}: argument {arg} must be int8 codes (FixedSizeList<Int8, D> from int8_quantize, or FixedSizeBinary(D) written by embquant quantize), got {other}"
        ),
    }
}

/// Int8 codes in a layout the codec reads: `List` codes become `FixedSizeList<_, dim>`.
pub(crate) fn fixed_codes(function: &str, codes: ArrayRef, dim: usize) -> Result<ArrayRef> {
    match codes.data_type() {
        DataType::List(f) | DataType::LargeList(f) => {
            let to = DataType::FixedSizeList(
                Arc::new(Field::new_list_field(
                    f.data_type().clone(),
                    f.is_nullable(),
                )),
                dim as i32,
            );
            cast(&codes, &to).map_err(|e| {
                datafusion::common::DataFusionError::Execution(format!(
                    "{function}: int8 codes are not all {dim} long: {e}"
                ))
            })
        }
        _ => Ok(codes),
    }
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Decodes int8 codes to `FixedSizeList<Float32, D>`: level = code + 128, value = \
lo + level * step per dimension. Accepts `FixedSizeList<Int8, D>` (from `int8_quantize`), \
`FixedSizeList<UInt8, D>` and `FixedSizeBinary(D)` (the `embquant quantize` default layout). The \
calibration is the second argument, else the codes' `embquant.calibration` field metadata. NULL \
codes give NULL.",
    syntax_example = "int8_dequantize(codes [, calibration])",
    sql_example = r#"```sql
> SELECT int8_dequantize(embedding_int8) FROM 'corpus.parquet' LIMIT 1;
```"#,
    argument(name = "codes", description = "int8 codes (column or literal)."),
    argument(
        name = "calibration",
        description = "Calibration JSON; defaults to the codes' field metadata."
    )
)]
/// The `int8_dequantize` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Int8DequantizeFunc {
    signature: Signature,
}

impl Default for Int8DequantizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl Int8DequantizeFunc {
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

impl ScalarUDFImpl for Int8DequantizeFunc {
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
        let type_dim = int8_code_dim(NAME, "1 (codes)", args.arg_fields[0].data_type())?;
        let cal = plan_calibration(NAME, args.arg_fields, args.scalar_arguments, 1, 0)?;
        let dim = match (&cal, type_dim) {
            (PlanCalibration::Known(c), Some(d)) if c.dim() != d => {
                return plan_err!(
                    "{NAME}: the codes have {d} dimensions, the calibration {}",
                    c.dim()
                )
            }
            (PlanCalibration::Known(c), _) => c.dim(),
            (PlanCalibration::PerBatch, Some(d)) => d,
            (PlanCalibration::PerBatch, None) => {
                return plan_err!("{NAME}: cannot tell the dimension of NULL codes")
            }
        };
        Ok(Arc::new(Field::new(NAME, f32_list_type(dim), true)))
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
        let codes = fixed_codes(NAME, codes, cal.dim())?;
        if let Some(d) = int8_code_dim(NAME, "1 (codes)", codes.data_type())? {
            if d != cal.dim() {
                return exec_err!(
                    "{NAME}: the codes have {d} dimensions, the calibration {}",
                    cal.dim()
                );
            }
        }
        let out = Int8Codec::new(&cal)
            .decode(codes.as_ref())
            .map_err(|e| ext(NAME, e))?;
        output(Arc::new(out), scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
