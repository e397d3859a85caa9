//! `rabitq_inner_product(query, codes [, extra] [, calibration])`: the RaBitQ estimate of
//! `<q, x>`, from the 1-bit codes alone or with the extra bits of multi-bit RaBitQ.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float32Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion_macros::user_doc;
use embquant::codec::rabitq_ex::RabitqExCodec;
use embquant::metadata::ColumnRecipe;
use embquant::{RabitqCodec, Rotation};

use crate::args::{
    batch_calibration, batch_rows, check_vector_type, ext, output, plan_calibration, read,
    vector_arg,
};

const NAME: &str = "rabitq_inner_product";

/// The rotation recorded in a code field's recipe; the default rotation (what
/// `rabitq_quantize` uses) for codes without a recipe. A recipe that does not parse, or a
/// RaBitQ recipe without a rotation, is an error (the one rule of
/// [`ColumnRecipe::rabitq_rotation`]).
fn field_rotation(field: &Field) -> Result<Rotation> {
    match ColumnRecipe::from_field_metadata(field.metadata()).map_err(|e| ext(NAME, e))? {
        Some((r, _)) if r.scheme == embquant::Scheme::Rabitq => {
            r.rabitq_rotation().map_err(|e| ext(NAME, e))
        }
        _ => Ok(Rotation::default()),
    }
}

/// Where the calibration argument goes: after the extra codes when the third argument is
/// binary (3), else third (2).
fn cal_index<'a>(mut types: impl Iterator<Item = &'a DataType>) -> usize {
    match types.nth(2) {
        Some(DataType::FixedSizeBinary(_)) => 3,
        _ => 2,
    }
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "RaBitQ's unbiased estimate of the inner product of a float query with the \
vector a RaBitQ code stands for: <q, mean> + |r| / (ip sqrt(B)) * sum_i (P q)_i (2 b_i - 1), the \
score of the `rabitq` tier of tiered search. Codes are `FixedSizeBinary(B / 8 + 8)` from \
`rabitq_quantize` or `embquant quantize --scheme rabitq` (their recipe's rotation is used; the \
default rotation without one). Given the extra bits of multi-bit RaBitQ as \
well (`embquant quantize --rabitq-bits 2..8`, `rabitq_quantize(v, cal, bits)`), the estimate \
of those codes (the `rabitq<bits>` tier's score; the width of the extra column gives the bits). \
The calibration is the last argument, else the codes' `embquant.calibration` field metadata. \
Returns `Float32`, NULL when any side is NULL.",
    syntax_example = "rabitq_inner_product(query, codes [, extra] [, calibration])",
    sql_example = r#"```sql
> SELECT id FROM corpus
  ORDER BY rabitq_inner_product([0.1, ...], embedding_rq, embedding_rq4) DESC LIMIT 10;
```"#,
    argument(
        name = "query",
        description = "Float query vector (literal or column)."
    ),
    argument(name = "codes", description = "RaBitQ codes (the 1-bit column)."),
    argument(
        name = "extra",
        description = "Optional: the extra bits of multi-bit RaBitQ for the same rows."
    ),
    argument(
        name = "calibration",
        description = "Calibration JSON; defaults to the codes' field metadata."
    )
)]
/// The `rabitq_inner_product` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RabitqInnerProductFunc {
    signature: Signature,
}

impl Default for RabitqInnerProductFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl RabitqInnerProductFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Any(2),
                    TypeSignature::Any(3),
                    TypeSignature::Any(4),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for RabitqInnerProductFunc {
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
        check_vector_type(NAME, "1 (query)", args.arg_fields[0].data_type())?;
        match args.arg_fields[1].data_type() {
            DataType::FixedSizeBinary(_) | DataType::Null => {}
            other => {
                return plan_err!(
                    "{NAME}: argument 2 (codes) must be RaBitQ codes (FixedSizeBinary), got {other}"
                )
            }
        }
        let cal_at = cal_index(args.arg_fields.iter().map(|f| f.data_type()));
        if cal_at == 3 {
            // Extra bits carry a recipe of their own scheme: another code column is a mix-up.
            if let Some((r, _)) = ColumnRecipe::from_field_metadata(args.arg_fields[2].metadata())
                .map_err(|e| ext(NAME, e))?
            {
                if r.scheme != embquant::Scheme::RabitqEx {
                    return plan_err!(
                        "{NAME}: argument 3 (extra) holds {} codes ({:?}), not the extra bits of multi-bit RaBitQ",
                        r.scheme,
                        r.name
                    );
                }
            }
        }
        plan_calibration(NAME, args.arg_fields, args.scalar_arguments, cal_at, 1)?;
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
        let cal_at = cal_index(args.arg_fields.iter().map(|f| f.data_type()));
        let cal = batch_calibration(NAME, &args.args, &args.arg_fields, cal_at, 1)?;
        let codec = RabitqCodec::new(&cal, field_rotation(&args.arg_fields[1])?);
        let dim = cal.dim();
        let vq = read(NAME, "1 (query)", &q)?;
        // A NaN or infinite query scores NaN for every row: refused, as by every function.
        for r in (0..vq.len()).filter(|&r| vq.is_valid(r)) {
            if let Some((d, x)) = vq.row(r).iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return exec_err!(
                    "{NAME}: argument 1 (query): non-finite value {x} at row {r}, dimension {d}"
                );
            }
        }
        if vq.dim() != dim {
            return exec_err!(
                "{NAME}: dimension mismatch: the query has {} dimensions, the calibration {dim}",
                vq.dim()
            );
        }
        let Some(codes) = codes.as_fixed_size_binary_opt() else {
            return exec_err!("{NAME}: argument 2 (codes) must be FixedSizeBinary");
        };
        if codes.value_length() as usize != codec.width() {
            return exec_err!(
                "{NAME}: codes of {} bytes, but {dim}-dimensional RaBitQ codes take {} (B = {} bits + 8 bytes of factors)",
                codes.value_length(),
                codec.width(),
                codec.bits()
            );
        }
        if cal_at == 3 {
            let extra = match &args.args[2] {
                ColumnarValue::Scalar(s) if s.is_null() => {
                    return Ok(ColumnarValue::Scalar(ScalarValue::Float32(None)))
                }
                ColumnarValue::Scalar(s) => (s.to_array()?, true),
                ColumnarValue::Array(a) => (Arc::clone(a), false),
            };
            let Some(ex) = extra.0.as_fixed_size_binary_opt() else {
                return exec_err!("{NAME}: argument 3 (extra) must be FixedSizeBinary");
            };
            let plane = codec.bit_bytes();
            let w = ex.value_length() as usize;
            let bits = (w.saturating_sub(8) / plane + 1) as u8;
            if w < 8 + plane || !(w - 8).is_multiple_of(plane) || bits > 8 {
                return exec_err!(
                    "{NAME}: extra codes of {w} bytes: {dim}-dimensional multi-bit RaBitQ extra codes take (bits - 1) x {plane} + 8 bytes, bits 2 to 8"
                );
            }
            let codec = RabitqExCodec::new(codec, bits).map_err(|e| ext(NAME, e))?;
            let shared = q.scalar.then(|| codec.prepare_query(vq.row(0)));
            let mut out = Vec::with_capacity(n);
            let mut valid = Vec::with_capacity(n);
            for i in 0..n {
                let rq = q.row(i);
                let rc = if codes_scalar { 0 } else { i };
                let re = if extra.1 { 0 } else { i };
                if !(vq.is_valid(rq) && codes.is_valid(rc) && ex.is_valid(re)) {
                    out.push(0.0);
                    valid.push(false);
                    continue;
                }
                let (s, e) = (codes.value(rc), ex.value(re));
                out.push(match &shared {
                    Some(p) => p.score(&codec, s, e),
                    None => codec.prepare_query(vq.row(rq)).score(&codec, s, e),
                });
                valid.push(true);
            }
            let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
            return output(Arc::new(Float32Array::new(out.into(), nulls)), all_scalar);
        }
        let shared = q.scalar.then(|| codec.prepare_query(vq.row(0)));
        let mut out = Vec::with_capacity(n);
        let mut valid = Vec::with_capacity(n);
        for i in 0..n {
            let (rq, rc) = (q.row(i), if codes_scalar { 0 } else { i });
            if !(vq.is_valid(rq) && codes.is_valid(rc)) {
                out.push(0.0);
                valid.push(false);
                continue;
            }
            let code = codes.value(rc);
            let s = match &shared {
                Some(p) => p.score(&codec, code),
                None => codec.prepare_query(vq.row(rq)).score(&codec, code),
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
