//! `embedding_calibration(v [, method])`: the calibration aggregate.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, Documentation, Signature, TypeSignature,
    Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use datafusion_macros::user_doc;
use embquant::{Calibration, CalibrationMethod, Stats, StatsOptions};

use crate::args::{check_vector_type, ext, vector_arg};

const NAME: &str = "embedding_calibration";

#[user_doc(
    doc_section(label = "embquant Functions"),
    description = "Aggregate: the per-dimension calibration of a vector column, as the JSON that \
`embquant calibrate` writes and the quantize functions take. The range method is `minmax` \
(default), `quantile:P` (0.5 <= P <= 1) or `meanstd:K`, each optionally followed by `+symmetric` \
(ranges ±max|x| on a grid with a level at zero: int8 codes round(x / step)) and/or `+per-tensor` \
(one range for every dimension). Statistics are mergeable (moments, min, \
max and a quantile sketch per dimension), so the result does not depend on how DataFusion splits \
the input into partitions and files (up to floating-point rounding of the moments). NULL vectors \
are skipped; zero non-null rows give NULL; NaN or infinite values are an error.",
    syntax_example = "embedding_calibration(v [, method])",
    sql_example = r#"```sql
> SELECT embedding_calibration(embedding, 'quantile:0.999') FROM corpus;
```"#,
    argument(name = "v", description = "Vector column."),
    argument(
        name = "method",
        description = "Range method literal: 'minmax', 'quantile:P' or 'meanstd:K', optionally with '+symmetric' and/or '+per-tensor'."
    )
)]
/// The `embedding_calibration` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EmbeddingCalibrationFunc {
    signature: Signature,
}

impl Default for EmbeddingCalibrationFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddingCalibrationFunc {
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

fn method_of(args: &AccumulatorArgs) -> Result<CalibrationMethod> {
    let Some(e) = args.exprs.get(1) else {
        return Ok(CalibrationMethod::default());
    };
    let Some(lit) = e.downcast_ref::<Literal>() else {
        return plan_err!("{NAME}: the method must be a string literal");
    };
    match lit.value() {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.parse().map_err(|e| ext(NAME, e)),
        other => plan_err!("{NAME}: the method must be a string literal, got {other}"),
    }
}

impl AggregateUDFImpl for EmbeddingCalibrationFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_vector_type(NAME, "1 (v)", &arg_types[0])?;
        if let Some(t) = arg_types.get(1) {
            if !matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                return plan_err!("{NAME}: argument 2 (method) must be a string, got {t}");
            }
        }
        Ok(DataType::Utf8)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let method = method_of(&args)?;
        Ok(Box::new(CalibrationAccumulator {
            method,
            stats: None,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[stats]", args.name),
            DataType::Binary,
            true,
        ))])
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Partial statistics; its state is the `Stats` as JSON (NULL before the first row).
#[derive(Debug)]
struct CalibrationAccumulator {
    method: CalibrationMethod,
    stats: Option<Stats>,
}

impl CalibrationAccumulator {
    fn options(&self) -> StatsOptions {
        // Sketches give medians (centered binary) and the quantile method.
        StatsOptions::default()
    }

    fn add(&mut self, other: Stats) -> Result<()> {
        match &mut self.stats {
            Some(s) => s.merge(&other).map_err(|e| ext(NAME, e)),
            None => {
                self.stats = Some(other);
                Ok(())
            }
        }
    }
}

impl Accumulator for CalibrationAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let col = ColumnarValue::Array(Arc::clone(&values[0]));
        let Some(v) = vector_arg(NAME, "1 (v)", &col)? else {
            return Ok(());
        };
        if v.array.len() == v.array.null_count() {
            return Ok(());
        }
        match &mut self.stats {
            Some(s) => s.update(v.array.as_ref()).map_err(|e| ext(NAME, e)),
            None => {
                let opts = self.options();
                self.stats =
                    Some(Stats::compute(v.array.as_ref(), &opts).map_err(|e| ext(NAME, e))?);
                Ok(())
            }
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.stats {
            Some(s) if s.count() > 0 => {
                let cal = Calibration::from_stats(s, self.method).map_err(|e| ext(NAME, e))?;
                // Compact JSON (one line, as in the field metadata); the same document as the
                // pretty `Calibration::to_json`.
                let json = serde_json::to_string(&cal)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                Ok(ScalarValue::Utf8(Some(json)))
            }
            _ => Ok(ScalarValue::Utf8(None)),
        }
    }

    fn size(&self) -> usize {
        let per_dim = self.stats.as_ref().map_or(0, |s| {
            // Moments (4 numbers) plus a sketch of a few hundred buckets per dimension.
            s.dim() * (32 + s.sketches().map_or(0, |_| 2048))
        });
        std::mem::size_of_val(self) + per_dim
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let bytes = match &self.stats {
            Some(s) if s.count() > 0 => {
                Some(serde_json::to_vec(s).map_err(|e| DataFusionError::External(Box::new(e)))?)
            }
            _ => None,
        };
        Ok(vec![ScalarValue::Binary(bytes)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(s) = states[0].as_binary_opt::<i32>() else {
            return exec_err!("{NAME}: unexpected state type {}", states[0].data_type());
        };
        for bytes in s.iter().flatten() {
            let other: Stats = serde_json::from_slice(bytes)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            self.add(other)?;
        }
        Ok(())
    }
}
