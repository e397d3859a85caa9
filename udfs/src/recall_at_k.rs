//! `recall_at_k(approx_ids, exact_ids)`: the share of the exact neighbors an approximate
//! search found.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{batch_rows, output};

const NAME: &str = "recall_at_k";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Recall of an approximate top-k: the number of distinct ids of `exact_ids` that \
also appear in `approx_ids`, divided by the number of distinct ids in `exact_ids` (k). Both are \
lists of integer ids (`List` or `FixedSizeList`, e.g. from `array_agg(id ORDER BY score DESC)`). \
Returns `Float64`; NULL when either list is NULL or `exact_ids` is empty. NULL ids are ignored.",
    syntax_example = "recall_at_k(approx_ids, exact_ids)",
    sql_example = r#"```sql
> SELECT recall_at_k([1, 2, 3, 4], [2, 4, 6, 8]);
+--------------------------------------------------------+
| recall_at_k(make_array(1,2,3,4),make_array(2,4,6,8))   |
+--------------------------------------------------------+
| 0.5                                                    |
+--------------------------------------------------------+
```"#,
    argument(
        name = "approx_ids",
        description = "Ids returned by the approximate search."
    ),
    argument(name = "exact_ids", description = "Ids of the exact top-k.")
)]
/// The `recall_at_k` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RecallAtKFunc {
    signature: Signature,
}

impl Default for RecallAtKFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl RecallAtKFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn check(arg: &str, dt: &DataType) -> Result<()> {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
            if f.data_type().is_integer() || f.data_type() == &DataType::Null =>
        {
            Ok(())
        }
        DataType::Null => Ok(()),
        other => plan_err!("{NAME}: argument {arg} must be a list of integer ids, got {other}"),
    }
}

/// The argument as a `List<Int64>` array (and whether it was a literal).
fn ids(arg: &ColumnarValue) -> Result<Option<(ArrayRef, bool)>> {
    let (a, scalar) = match arg {
        ColumnarValue::Scalar(s) if s.is_null() => return Ok(None),
        ColumnarValue::Scalar(s) => (s.to_array()?, true),
        ColumnarValue::Array(a) => (Arc::clone(a), false),
    };
    if a.data_type() == &DataType::Null {
        return Ok(None);
    }
    let to = DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)));
    Ok(Some((cast(&a, &to)?, scalar)))
}

impl ScalarUDFImpl for RecallAtKFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != 2 {
            return plan_err!("{NAME} takes two arguments (approx_ids, exact_ids)");
        }
        check("1 (approx_ids)", &arg_types[0])?;
        check("2 (exact_ids)", &arg_types[1])?;
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (n, all_scalar) = batch_rows(&args.args);
        let (Some((a, sa)), Some((e, se))) = (ids(&args.args[0])?, ids(&args.args[1])?) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Float64(None)));
        };
        let (a, e) = (a.as_list::<i32>(), e.as_list::<i32>());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (ia, ie) = (if sa { 0 } else { i }, if se { 0 } else { i });
            if ia >= a.len() || ie >= e.len() {
                return exec_err!("{NAME}: argument lengths differ");
            }
            if a.is_null(ia) || e.is_null(ie) {
                out.push(None);
                continue;
            }
            let set = |v: ArrayRef| -> HashSet<i64> {
                v.as_primitive::<Int64Type>().iter().flatten().collect()
            };
            let (got, want) = (set(a.value(ia)), set(e.value(ie)));
            out.push((!want.is_empty()).then(|| {
                want.iter().filter(|x| got.contains(x)).count() as f64 / want.len() as f64
            }));
        }
        output(Arc::new(Float64Array::from(out)), all_scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
