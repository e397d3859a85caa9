//! `binary_quantize(v [, calibration])`: one bit per dimension.

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;
use embquant::Vectors;

use crate::args::{
    batch_codes_calibration, check_vector_type, ext, output, plan_calibration, plan_dim,
    sql_code_field, sql_encode, sql_recipe, vector_arg, PlanCalibration,
};

const NAME: &str = "binary_quantize";

/// The threshold of the codes of a call with `args` arguments: sign bits alone, the
/// calibration's means with a calibration.
fn threshold(args: usize) -> &'static str {
    if args > 1 {
        "mean"
    } else {
        "zero"
    }
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Binary quantization: one bit per dimension, packed MSB-first like numpy.packbits \
(dimension 8j+i is bit 7-i of byte j). Without a calibration the bit is `value > 0` (sign bits, \
the bytes of sentence-transformers' `ubinary`); with one it is `value > mean` of the dimension \
(centered binary). Returns `FixedSizeBinary(ceil(D / 8))` carrying embquant field metadata when the \
dimension is known at planning time (a `FixedSizeList` column, or a calibration), else `Binary` \
(e.g. for a `[...]` literal); NULL vectors give NULL.",
    syntax_example = "binary_quantize(v [, calibration])",
    sql_example = r#"```sql
> SELECT encode(binary_quantize([0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -3.0, 0.1, 4.0]), 'hex') AS bits;
+------+
| bits |
+------+
| ad80 |
+------+
```"#,
    argument(
        name = "v",
        description = "Vector: a FixedSizeList or equal-length List of numbers (column or literal)."
    ),
    argument(
        name = "calibration",
        description = "Optional calibration JSON (from `embedding_calibration` or `embquant calibrate`): thresholds at the per-dimension means."
    )
)]
/// The `binary_quantize` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BinaryQuantizeFunc {
    signature: Signature,
}

impl Default for BinaryQuantizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl BinaryQuantizeFunc {
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

impl ScalarUDFImpl for BinaryQuantizeFunc {
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
        let type_dim = check_vector_type(NAME, "1 (v)", f.data_type())?;
        let cal = if args.arg_fields.len() > 1 {
            plan_calibration(NAME, args.arg_fields, args.scalar_arguments, 1, 0)?
        } else {
            PlanCalibration::PerBatch
        };
        let known = cal.known();
        let dim = plan_dim(f.data_type(), args.scalar_arguments[0]);
        if let (Some(c), Some(d)) = (known, dim.or(type_dim)) {
            if c.dim() != d {
                return plan_err!(
                    "{NAME}: the vectors have {d} dimensions, the calibration {}",
                    c.dim()
                );
            }
        }
        let Some(dim) = dim.or(known.map(|c| c.dim())) else {
            // A List column (or an expression such as make_array): the width is only known
            // when the rows are; return variable-length bytes.
            return Ok(Arc::new(Field::new(NAME, DataType::Binary, true)));
        };
        let recipe = sql_recipe(
            NAME,
            f,
            "binary",
            threshold(args.arg_fields.len()),
            dim,
            known,
        )?;
        Ok(sql_code_field(NAME, &recipe, known))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let out_type = args.return_field.data_type().clone();
        let Some(v) = vector_arg(NAME, "1 (v)", &args.args[0])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&out_type)?));
        };
        let cal = if args.args.len() > 1 {
            Some(batch_codes_calibration(
                NAME,
                &args.args,
                &args.arg_fields,
                &v,
            )?)
        } else {
            None
        };
        let dim = match &cal {
            Some(c) => c.dim(),
            None => Vectors::try_new(v.array.as_ref())
                .map_err(|e| ext(NAME, e))?
                .dim(),
        };
        let recipe = sql_recipe(
            NAME,
            &args.arg_fields[0],
            "binary",
            threshold(args.args.len()),
            dim,
            None,
        )?;
        if let DataType::FixedSizeBinary(width) = out_type {
            if recipe.bytes_per_vector != width as usize {
                return exec_err!(
                    "{NAME}: dimension mismatch: {dim}-dimensional vectors, expected {width} bytes of codes"
                );
            }
        }
        let codes = sql_encode(NAME, &recipe, cal.as_ref(), v.array.as_ref())?;
        output(cast(&codes, &out_type)?, v.scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
