//! `subvector(v, start, len)`: a slice of every vector (Matryoshka prefixes).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{check_vector_type, f32_list, f32_list_type, output, read, vector_arg};

const NAME: &str = "subvector";

fn int_literal(s: Option<&ScalarValue>, what: &str) -> Result<i64> {
    match s.and_then(crate::args::integer_literal) {
        Some(v) => Ok(v),
        None => plan_err!("{NAME}: {what} must be an integer literal"),
    }
}

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "The `len` dimensions of each vector starting at dimension `start` (1-based, as \
pgvector's subvector): `subvector(v, 1, 256)` is the 256-dimensional Matryoshka prefix. `start` \
and `len` are integer literals. Returns `FixedSizeList<Float32, len>`; NULL vectors give NULL; a \
range past the end of the vectors is an error.",
    syntax_example = "subvector(v, start, len)",
    sql_example = r#"```sql
> SELECT subvector([1.0, 2.0, 3.0, 4.0], 2, 2) AS s;
+------------+
| s          |
+------------+
| [2.0, 3.0] |
+------------+
```"#,
    argument(name = "v", description = "Vector (column or literal)."),
    argument(name = "start", description = "First dimension kept, 1-based."),
    argument(name = "len", description = "Number of dimensions kept (at least 1).")
)]
/// The `subvector` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SubvectorFunc {
    signature: Signature,
}

impl Default for SubvectorFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl SubvectorFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SubvectorFunc {
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
        let dim = check_vector_type(NAME, "1 (v)", args.arg_fields[0].data_type())?;
        let start = int_literal(args.scalar_arguments[1], "start")?;
        let len = int_literal(args.scalar_arguments[2], "len")?;
        if start < 1 || len < 1 {
            return plan_err!("{NAME}: start ({start}) and len ({len}) must be at least 1");
        }
        let max = embquant::calibration::MAX_DIMS as i64;
        if len > max {
            return plan_err!("{NAME}: len ({len}) is over the {max} dimensions a vector may have");
        }
        // Checked: start and len come from the query (fuzzing found i64::MAX for both).
        let end = (start - 1).saturating_add(len);
        if let Some(d) = dim {
            if end > d as i64 {
                return plan_err!(
                    "{NAME}: dimensions {start}..{end} are past the end of {d}-dimensional vectors"
                );
            }
        }
        Ok(Arc::new(Field::new(
            NAME,
            f32_list_type(len as usize),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(v) = vector_arg(NAME, "1 (v)", &args.args[0])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                args.return_field.data_type(),
            )?));
        };
        let DataType::FixedSizeList(_, len) = args.return_field.data_type() else {
            return exec_err!("{NAME}: unexpected return type");
        };
        let len = *len as usize;
        let start = match &args.args[1] {
            ColumnarValue::Scalar(s) => int_literal(Some(s), "start")? as usize - 1,
            ColumnarValue::Array(_) => {
                return exec_err!("{NAME}: start must be an integer literal")
            }
        };
        let vv = read(NAME, "1 (v)", &v)?;
        if start.checked_add(len).is_none_or(|end| end > vv.dim()) {
            return exec_err!(
                "{NAME}: dimensions {}..{} are past the end of {}-dimensional vectors",
                start.saturating_add(1),
                start.saturating_add(len),
                vv.dim()
            );
        }
        let mut values = Vec::with_capacity(vv.len() * len);
        for r in 0..vv.len() {
            values.extend_from_slice(&vv.row(r)[start..start + len]);
        }
        let out = f32_list(values, len, vv.nulls().cloned());
        output(Arc::new(out), v.scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
