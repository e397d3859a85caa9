//! `int8_inner_product(query, codes [, calibration])`: asymmetric float x int8 score.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int8Type, UInt8Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;
use embquant::Int8Codec;

use crate::args::{
    batch_calibration, batch_rows, check_vector_type, output, plan_calibration, plan_dim, read,
    vector_arg,
};
use crate::int8_dequantize::int8_code_dim;

const NAME: &str = "int8_inner_product";

/// Copies row `i` of int8 codes into `out` as int8 values.
fn code_row(codes: &ArrayRef, i: usize, out: &mut [i8]) -> Result<()> {
    let d = out.len();
    match codes.data_type() {
        DataType::FixedSizeBinary(_) => {
            let v = codes.as_fixed_size_binary().value(i);
            out.iter_mut().zip(v).for_each(|(o, &b)| *o = b as i8);
        }
        DataType::FixedSizeList(f, _) => {
            let l = codes.as_fixed_size_list();
            let start = l.value_offset(i) as usize;
            match f.data_type() {
                DataType::Int8 => out.copy_from_slice(
                    &l.values().as_primitive::<Int8Type>().values()[start..start + d],
                ),
                DataType::UInt8 => out
                    .iter_mut()
                    .zip(&l.values().as_primitive::<UInt8Type>().values()[start..start + d])
                    .for_each(|(o, &u)| *o = (u ^ 0x80) as i8),
                other => return exec_err!("{NAME}: unsupported code type {other}"),
            }
        }
        other => return exec_err!("{NAME}: unsupported code type {other}"),
    }
    Ok(())
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Asymmetric inner product of a float query with int8 codes: the dot product of \
the query with the dequantized codes, computed on the codes directly (the score of the int8 tier \
of tiered search). Codes are `FixedSizeList<Int8, D>` (from `int8_quantize`), \
`FixedSizeList<UInt8, D>` or `FixedSizeBinary(D)` (the `embquant quantize` default); the \
calibration is the third argument, else the codes' `embquant.calibration` field metadata. Returns \
`Float32`, NULL when either side is NULL.",
    syntax_example = "int8_inner_product(query, codes [, calibration])",
    sql_example = r#"```sql
> SELECT id FROM corpus
  ORDER BY int8_inner_product([0.1, ...], embedding_int8) DESC LIMIT 10;
```"#,
    argument(
        name = "query",
        description = "Float query vector (literal or column)."
    ),
    argument(name = "codes", description = "int8 codes."),
    argument(
        name = "calibration",
        description = "Calibration JSON; defaults to the codes' field metadata."
    )
)]
/// The `int8_inner_product` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Int8InnerProductFunc {
    signature: Signature,
}

impl Default for Int8InnerProductFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl Int8InnerProductFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for Int8InnerProductFunc {
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
        let q = check_vector_type(NAME, "1 (query)", args.arg_fields[0].data_type())?.or(plan_dim(
            args.arg_fields[0].data_type(),
            args.scalar_arguments[0],
        ));
        let c = int8_code_dim(NAME, "2 (codes)", args.arg_fields[1].data_type())?;
        let cal = plan_calibration(NAME, args.arg_fields, args.scalar_arguments, 2, 1)?;
        let cal_dim = cal.known().map(|c| c.dim());
        let dims = [("query", q), ("codes", c), ("calibration", cal_dim)];
        for (n1, d1) in &dims {
            for (n2, d2) in &dims {
                if let (Some(a), Some(b)) = (d1, d2) {
                    if a != b {
                        return plan_err!(
                            "{NAME}: dimension mismatch: the {n1} has {a} dimensions, the {n2} {b}"
                        );
                    }
                }
            }
        }
        Ok(Arc::new(Field::new(NAME, DataType::Float32, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (n, all_scalar) = batch_rows(&args.args);
        let Some(q) = vector_arg(NAME, "1 (query)", &args.args[0])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Float32(None)));
        };
        let (codes, codes_scalar) = match &args.args[1] {
            ColumnarValue::Scalar(s) if s.is_null() => {
                return Ok(ColumnarValue::Scalar(ScalarValue::Float32(None)))
            }
            ColumnarValue::Scalar(s) => (s.to_array()?, true),
            ColumnarValue::Array(a) => (Arc::clone(a), false),
        };
        let cal = batch_calibration(NAME, &args.args, &args.arg_fields, 2, 1)?;
        let dim = cal.dim();
        let codes = crate::int8_dequantize::fixed_codes(NAME, codes, dim)?;
        let vq = read(NAME, "1 (query)", &q)?;
        if vq.dim() != dim {
            return exec_err!(
                "{NAME}: dimension mismatch: the query has {} dimensions, the calibration {dim}",
                vq.dim()
            );
        }
        if let Some(d) = int8_code_dim(NAME, "2 (codes)", codes.data_type())? {
            if d != dim {
                return exec_err!(
                    "{NAME}: dimension mismatch: the codes have {d} dimensions, the calibration {dim}"
                );
            }
        }
        let codec = Int8Codec::new(&cal);
        let shared = q.scalar.then(|| codec.prepare_query(vq.row(0)));
        let mut code = vec![0i8; dim];
        let mut out = Vec::with_capacity(n);
        let mut valid = Vec::with_capacity(n);
        for i in 0..n {
            let (rq, rc) = (q.row(i), if codes_scalar { 0 } else { i });
            if !(vq.is_valid(rq) && codes.is_valid(rc)) {
                out.push(0.0);
                valid.push(false);
                continue;
            }
            code_row(&codes, rc, &mut code)?;
            let s = match &shared {
                Some(p) => p.score_int8(&code),
                None => codec.prepare_query(vq.row(rq)).score_int8(&code),
            };
            out.push(s);
            valid.push(true);
        }
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        output(Arc::new(Float32Array::new(out.into(), nulls)), all_scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
