//! Argument handling shared by the functions: vector arguments (columns or literals,
//! `FixedSizeList` or equal-length `List` of any numeric type), the calibration argument
//! (a JSON string, or the `embquant.calibration` field metadata), and error bridging.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs};
use embquant::metadata::{ColumnRecipe, Truncation, CALIBRATION_KEY};
use embquant::{Calibration, Vectors};

/// An `embquant::Error` raised inside a SQL function, with the function's name: the
/// library's typed error travels inside `DataFusionError::External` (as delta-rs bridges
/// its errors), so a caller can downcast it and match its kind, and the message is the one
/// the CLI prints, prefixed by the function.
#[derive(Debug)]
pub struct FunctionError {
    /// The SQL function.
    pub function: String,
    /// The argument the error is about, when it is about one.
    pub argument: Option<String>,
    /// What went wrong.
    pub source: embquant::Error,
}

impl FunctionError {
    /// The library error inside a DataFusion error, if it is one.
    pub fn find(e: &DataFusionError) -> Option<&FunctionError> {
        match e {
            DataFusionError::External(b) => b.downcast_ref::<FunctionError>(),
            DataFusionError::Context(_, inner) => Self::find(inner),
            DataFusionError::Shared(inner) => Self::find(inner),
            _ => None,
        }
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.argument {
            Some(a) => write!(f, "{}: argument {a}: {}", self.function, self.source),
            None => write!(f, "{}: {}", self.function, self.source),
        }
    }
}

// No `source()`: the message already holds the library error's, and reporters that print
// the chain would say it twice.
impl std::error::Error for FunctionError {}

/// The value of an integer literal (any integer type; values beyond `i64` saturate), `None`
/// for anything else: `2.5`, `'10'` and NULL are not integers, and are never cast to one.
pub fn integer_literal(v: &ScalarValue) -> Option<i64> {
    Some(match v {
        ScalarValue::Int8(Some(v)) => *v as i64,
        ScalarValue::Int16(Some(v)) => *v as i64,
        ScalarValue::Int32(Some(v)) => *v as i64,
        ScalarValue::Int64(Some(v)) => *v,
        ScalarValue::UInt8(Some(v)) => *v as i64,
        ScalarValue::UInt16(Some(v)) => *v as i64,
        ScalarValue::UInt32(Some(v)) => *v as i64,
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).unwrap_or(i64::MAX),
        _ => return None,
    })
}

/// Bridges a library error to `DataFusionError::External`, naming the function.
pub fn ext(function: &str, e: embquant::Error) -> DataFusionError {
    DataFusionError::External(Box::new(FunctionError {
        function: function.to_string(),
        argument: None,
        source: e,
    }))
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric() || dt == &DataType::Null
}

/// Plan-time check of a vector argument: `FixedSizeList`, `List` or `LargeList` of numbers
/// (or a `NULL` literal). Returns the dimension when the type fixes it.
pub fn check_vector_type(function: &str, arg: &str, dt: &DataType) -> Result<Option<usize>> {
    match dt {
        DataType::FixedSizeList(f, d) if is_numeric(f.data_type()) => Ok(Some(*d as usize)),
        DataType::List(f) | DataType::LargeList(f) if is_numeric(f.data_type()) => Ok(None),
        DataType::Null => Ok(None),
        other => plan_err!(
            "{function}: argument {arg} must be a vector (FixedSizeList or List of numbers, e.g. [0.1, 0.2] or a FixedSizeList<Float32> column), got {other}"
        ),
    }
}

/// The dimension of a vector argument at plan time, from its type only: a literal's value
/// must not decide a return type, since constant folding turns `make_array(...)` into a
/// literal after the plan's schema was fixed.
pub fn plan_dim(dt: &DataType, _scalar: Option<&ScalarValue>) -> Option<usize> {
    match dt {
        DataType::FixedSizeList(_, d) => Some(*d as usize),
        _ => None,
    }
}

/// A vector argument evaluated for one batch: `f32`-readable rows, and whether it is one
/// literal row to pair with every row of the other arguments.
pub struct VectorArg {
    /// `FixedSizeList<Float16|32|64>` or `List<Float32>` rows.
    pub array: ArrayRef,
    /// A literal (one row, broadcast).
    pub scalar: bool,
}

impl VectorArg {
    /// Row `i` of the batch maps to row `row(i)` of `array`.
    pub fn row(&self, i: usize) -> usize {
        if self.scalar {
            0
        } else {
            i
        }
    }
}

/// Evaluates a vector argument; `None` for a `NULL` literal.
pub fn vector_arg(function: &str, arg: &str, value: &ColumnarValue) -> Result<Option<VectorArg>> {
    let (array, scalar) = match value {
        ColumnarValue::Scalar(s) if s.is_null() => return Ok(None),
        ColumnarValue::Scalar(s) => (s.to_array()?, true),
        ColumnarValue::Array(a) => (Arc::clone(a), false),
    };
    let array = match array.data_type() {
        DataType::FixedSizeList(f, d) => match f.data_type() {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => array,
            t if t.is_numeric() || t == &DataType::Null => cast(
                &array,
                &DataType::FixedSizeList(
                    Arc::new(Field::new_list_field(DataType::Float32, true)),
                    *d,
                ),
            )?,
            t => return exec_err!("{function}: argument {arg} must hold numbers, got {t}"),
        },
        DataType::List(f) | DataType::LargeList(f) => match f.data_type() {
            DataType::Float32 => array,
            t if t.is_numeric() || t == &DataType::Null => {
                let item = Arc::new(Field::new_list_field(DataType::Float32, true));
                let to = match array.data_type() {
                    DataType::List(_) => DataType::List(item),
                    _ => DataType::LargeList(item),
                };
                cast(&array, &to)?
            }
            t => return exec_err!("{function}: argument {arg} must hold numbers, got {t}"),
        },
        DataType::Null => return Ok(None),
        other => {
            return exec_err!(
                "{function}: argument {arg} must be a vector (FixedSizeList or List of numbers), got {other}"
            )
        }
    };
    Ok(Some(VectorArg { array, scalar }))
}

/// Reads a vector argument's rows (checks item nulls and ragged lists).
pub fn read<'a>(function: &str, arg: &str, v: &'a VectorArg) -> Result<Vectors<'a>> {
    // The library's typed error, with the argument it is about.
    Vectors::try_new(v.array.as_ref()).map_err(|e| {
        DataFusionError::External(Box::new(FunctionError {
            function: function.to_string(),
            argument: Some(arg.to_string()),
            source: e,
        }))
    })
}

/// A `FixedSizeList<Float32, dim>` (or `Null`) output type.
pub fn f32_list_type(dim: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dim as i32,
    )
}

/// Where a function's calibration comes from, decided at plan time.
pub enum PlanCalibration {
    /// Known at plan time (a literal, or field metadata).
    Known(Box<Calibration>),
    /// A non-constant argument: read per batch.
    PerBatch,
}

impl PlanCalibration {
    /// The calibration when known at plan time.
    pub fn known(&self) -> Option<&Calibration> {
        match self {
            PlanCalibration::Known(c) => Some(c.as_ref()),
            PlanCalibration::PerBatch => None,
        }
    }
}

/// Plan-time dimension of a quantize function's output: the vectors' (when their type fixes
/// it) or else the known calibration's; an error when both are known and differ.
pub fn plan_codes_dim(
    function: &str,
    vectors: Option<usize>,
    cal: &PlanCalibration,
) -> Result<Option<usize>> {
    let known = cal.known();
    if let (Some(c), Some(d)) = (known, vectors) {
        if c.dim() != d {
            return plan_err!(
                "{function}: the vectors have {d} dimensions, the calibration {}",
                c.dim()
            );
        }
    }
    Ok(vectors.or(known.map(|c| c.dim())))
}

/// The calibration of a quantize function for one batch (argument 2, else `v`'s field
/// metadata), checked against the vectors' dimension.
pub fn batch_codes_calibration(
    function: &str,
    args: &[ColumnarValue],
    arg_fields: &[FieldRef],
    v: &VectorArg,
) -> Result<Calibration> {
    let cal = batch_calibration(function, args, arg_fields, 1, 0)?;
    let dim = read(function, "1 (v)", v)?.dim();
    if dim != cal.dim() {
        return exec_err!(
            "{function}: dimension mismatch: the vectors have {dim} dimensions, the calibration {}",
            cal.dim()
        );
    }
    Ok(cal)
}

/// Parses a calibration argument, once per distinct JSON text: a calibration passed as a
/// column (one value per row, batch after batch) is parsed and validated once, not per
/// batch.
fn parse_calibration(function: &str, json: &str) -> Result<Calibration> {
    use std::sync::{Mutex, OnceLock};
    /// Recently parsed calibrations (a few: a query rarely uses more than one or two).
    static PARSED: OnceLock<Mutex<Vec<(String, Calibration)>>> = OnceLock::new();
    const KEEP: usize = 8;
    let cache = PARSED.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(c) = cache.lock() {
        if let Some((_, cal)) = c.iter().find(|(j, _)| j == json) {
            return Ok(cal.clone());
        }
    }
    let cal = Calibration::from_json(json).map_err(|e| ext(function, e))?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= KEEP {
            c.remove(0);
        }
        c.push((json.to_string(), cal.clone()));
    }
    Ok(cal)
}

fn string_scalar(s: &ScalarValue) -> Option<Option<&str>> {
    match s {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
            Some(v.as_deref())
        }
        ScalarValue::Null => Some(None),
        _ => None,
    }
}

/// The calibration in a field's metadata, if any.
pub fn field_calibration(function: &str, field: &Field) -> Result<Option<Calibration>> {
    field
        .metadata()
        .get(CALIBRATION_KEY)
        .map(|j| parse_calibration(function, j))
        .transpose()
}

fn missing_calibration<T>(function: &str, field: &Field, position: usize) -> Result<T> {
    plan_err!(
        "{function}: no calibration: pass the calibration JSON as argument {position} (e.g. from embedding_calibration(v)), \
         or use a column written by embquant, whose field metadata carries it (column {:?} has no \"{CALIBRATION_KEY}\" metadata; \
         register Parquet files with datafusion.execution.parquet.skip_metadata = false)",
        field.name()
    )
}

/// Refuses a calibration passed as an argument that contradicts the one `field`'s codes
/// record (their recipe's fingerprint, or the calibration in their metadata): codes decoded
/// or scored under another calibration are garbage without an error.
pub fn check_recorded(function: &str, field: &Field, cal: &Calibration) -> Result<()> {
    let m = field.metadata();
    let recorded = match m.get(embquant::METADATA_KEY) {
        Some(r) => serde_json::from_str::<embquant::metadata::ColumnRecipe>(r)
            .ok()
            .and_then(|r| r.calibration_fingerprint),
        None => None,
    };
    let recorded = match recorded {
        Some(f) => Some(f),
        None => field_calibration(function, field)?.map(|c| c.fingerprint().to_string()),
    };
    match recorded {
        Some(f) if f != cal.fingerprint() => plan_err!(
            "{function}: the calibration argument (fingerprint {}) is not the one column {:?} was quantized with (fingerprint {f}): its codes mean nothing under another calibration",
            cal.fingerprint(),
            field.name()
        ),
        _ => Ok(()),
    }
}

/// Plan-time calibration of a function whose calibration is argument `index` (0-based)
/// when present, else the metadata of `arg_fields[from_field]`.
pub fn plan_calibration(
    function: &str,
    arg_fields: &[FieldRef],
    scalars: &[Option<&ScalarValue>],
    index: usize,
    from_field: usize,
) -> Result<PlanCalibration> {
    if let Some(f) = arg_fields.get(index) {
        match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {}
            other => {
                return plan_err!(
                    "{function}: argument {} (calibration) must be a JSON string, got {other}",
                    index + 1
                )
            }
        }
        return match scalars.get(index).copied().flatten().map(string_scalar) {
            Some(Some(Some(json))) => {
                let cal = parse_calibration(function, json)?;
                check_recorded(function, &arg_fields[from_field], &cal)?;
                Ok(PlanCalibration::Known(Box::new(cal)))
            }
            Some(Some(None)) => plan_err!("{function}: the calibration argument is NULL"),
            _ => Ok(PlanCalibration::PerBatch),
        };
    }
    match field_calibration(function, &arg_fields[from_field])? {
        Some(c) => Ok(PlanCalibration::Known(Box::new(c))),
        None => missing_calibration(function, &arg_fields[from_field], index + 1),
    }
}

/// The calibration for one batch (see [`plan_calibration`]). A calibration column must
/// hold one value for every (non-null) row.
pub fn batch_calibration(
    function: &str,
    args: &[ColumnarValue],
    arg_fields: &[FieldRef],
    index: usize,
    from_field: usize,
) -> Result<Calibration> {
    let given = |json: &str| {
        let cal = parse_calibration(function, json)?;
        check_recorded(function, &arg_fields[from_field], &cal)?;
        Ok(cal)
    };
    match args.get(index) {
        Some(ColumnarValue::Scalar(s)) => match string_scalar(s) {
            Some(Some(json)) => given(json),
            Some(None) => exec_err!("{function}: the calibration argument is NULL"),
            None => exec_err!(
                "{function}: argument {} (calibration) must be a JSON string, got {}",
                index + 1,
                s.data_type()
            ),
        },
        Some(ColumnarValue::Array(a)) => {
            // Strings are read in place; another type (a dictionary of strings, ...) as
            // strings.
            let strings = match a.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Arc::clone(a),
                _ => cast(a, &DataType::Utf8)?,
            };
            match single_string(&strings) {
                Some(Ok(Some(json))) => given(json),
                Some(Ok(None)) => exec_err!("{function}: the calibration argument is NULL"),
                Some(Err(row)) => exec_err!(
                    "{function}: the calibration argument differs between rows (row {row} from the first): codes are only comparable under one calibration"
                ),
                None => exec_err!(
                    "{function}: argument {} (calibration) must be a JSON string, got {}",
                    index + 1,
                    a.data_type()
                ),
            }
        }
        None => match field_calibration(function, &arg_fields[from_field])? {
            Some(c) => Ok(c),
            None => missing_calibration(function, &arg_fields[from_field], index + 1),
        },
    }
}

/// The one non-NULL value of a string column (`Ok(None)` if all are NULL, `Err(row)` at the
/// first row that differs; `None` if `a` holds no strings), read in place: a calibration
/// repeated down a column (a cross join with a one-row table) is never copied, and rows of a
/// view array that point at the same bytes are equal without comparing them.
fn single_string(a: &ArrayRef) -> Option<std::result::Result<Option<&str>, usize>> {
    fn first_of<'a>(
        values: impl Iterator<Item = Option<&'a str>>,
        same: impl Fn(usize, usize) -> bool,
    ) -> std::result::Result<Option<&'a str>, usize> {
        let mut first: Option<(usize, &str)> = None;
        for (row, v) in values.enumerate() {
            let Some(v) = v else { continue };
            match first {
                None => first = Some((row, v)),
                Some((r, f)) if !same(r, row) && f != v => return Err(row),
                _ => {}
            }
        }
        Ok(first.map(|(_, v)| v))
    }
    let never = |_: usize, _: usize| false;
    match a.data_type() {
        DataType::Utf8 => Some(first_of(a.as_string::<i32>().iter(), never)),
        DataType::LargeUtf8 => Some(first_of(a.as_string::<i64>().iter(), never)),
        DataType::Utf8View => {
            let v = a.as_string_view();
            let views = v.views();
            Some(first_of(v.iter(), |r, row| views[r] == views[row]))
        }
        _ => None,
    }
}

/// The recipe of the column a SQL quantize function returns: `scheme` codes (`int8`,
/// `int4`, `binary`, `rabitq`, `rabitq4` ...: the last column of that scheme, the extra bits
/// for `rabitq2` to `rabitq8`) of `dims`-dimensional vectors of the column `source`, with
/// `threshold` for binary codes, on the ranges' shape of `calibration` (which, when known,
/// the recipe records). The options go through the one quantize spec, as every
/// front door's do, with SQL's own choice of int8 layout (`FixedSizeList<Int8>`, an array
/// SQL can index).
pub fn sql_recipe(
    function: &str,
    source: &Field,
    scheme: &str,
    threshold: &str,
    dims: usize,
    calibration: Option<&Calibration>,
) -> Result<ColumnRecipe> {
    let mut spec = embquant::job::QuantizeSpec::new(source.name());
    spec.schemes = vec![scheme.into()];
    spec.int8_layout = "list".into();
    spec.binary_threshold = threshold.into();
    let options = spec.job_options().map_err(|e| ext(function, e))?.quantize;
    let mut params = options.code_params(dims);
    params.shape = calibration.map(|c| c.shape()).unwrap_or_default();
    let columns = options.column_schemes().map_err(|e| ext(function, e))?;
    let last = *columns.last().expect("a spec names at least one scheme");
    Ok(ColumnRecipe::new(
        last,
        source.name(),
        dims,
        None::<Truncation>,
        &params,
        calibration,
    ))
}

/// The output field of a quantize function whose codes need the calibration (int8, int4,
/// rabitq): `scheme` codes of the dimension known at planning, with their recipe (and the
/// calibration, when it is a literal or field metadata). When the dimension is known only
/// from the rows (a List column with a calibration column), a field of type `unknown`
/// (variable-length codes), or an error without one.
pub fn plan_calibrated(
    function: &str,
    scheme: &str,
    args: &ReturnFieldArgs,
    unknown: Option<DataType>,
) -> Result<FieldRef> {
    let f = &args.arg_fields[0];
    check_vector_type(function, "1 (v)", f.data_type())?;
    let cal = plan_calibration(function, args.arg_fields, args.scalar_arguments, 1, 0)?;
    let known = cal.known();
    let dim = plan_dim(f.data_type(), args.scalar_arguments[0]);
    let Some(dim) = plan_codes_dim(function, dim, &cal)? else {
        return match unknown {
            Some(dt) => Ok(Arc::new(Field::new(function, dt, true))),
            None => plan_err!(
                "{function}: the dimension is unknown at planning (a List column with a calibration column): cast the vectors to a FixedSizeList"
            ),
        };
    };
    let recipe = sql_recipe(function, f, scheme, "zero", dim, known)?;
    Ok(sql_code_field(function, &recipe, known))
}

/// The invocation of a quantize function whose codes need the calibration (int8, int4,
/// rabitq): the `scheme` codes of the batch's vectors under the batch's calibration, in the
/// function's return type.
pub fn invoke_calibrated(
    function: &str,
    scheme: &str,
    args: &ScalarFunctionArgs,
) -> Result<ColumnarValue> {
    let Some(v) = vector_arg(function, "1 (v)", &args.args[0])? else {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
            args.return_field.data_type(),
        )?));
    };
    let cal = batch_codes_calibration(function, &args.args, &args.arg_fields, &v)?;
    let dim = cal.dim();
    let recipe = sql_recipe(
        function,
        &args.arg_fields[0],
        scheme,
        "zero",
        dim,
        Some(&cal),
    )?;
    let codes = sql_encode(function, &recipe, Some(&cal), v.array.as_ref())?;
    output(cast(&codes, args.return_field.data_type())?, v.scalar)
}

/// The output field of a SQL quantize function returning `recipe`'s codes.
pub fn sql_code_field(
    function: &str,
    recipe: &ColumnRecipe,
    calibration: Option<&Calibration>,
) -> FieldRef {
    let dt = recipe.scheme.arrow_type(&recipe.params());
    let meta = recipe_metadata(
        recipe,
        calibration.filter(|_| recipe.calibration_fingerprint.is_some()),
    );
    Arc::new(Field::new(function, dt, true).with_metadata(meta))
}

/// Encodes `vectors` into `recipe`'s codes with `calibration` (the extra bits alone for
/// multi-bit RaBitQ), through the codec the recipe names.
pub fn sql_encode(
    function: &str,
    recipe: &ColumnRecipe,
    calibration: Option<&Calibration>,
    vectors: &dyn Array,
) -> Result<ArrayRef> {
    let codec = recipe.codec(calibration).map_err(|e| ext(function, e))?;
    let enc = codec
        .encode(vectors)
        .map_err(|e| ext(function, e))?
        .pop()
        .expect("every codec writes a column");
    if enc.clipped > 0 {
        tracing::debug!(
            clipped = enc.clipped,
            "{function}: values outside the calibrated range"
        );
    }
    Ok(enc.array)
}

/// Field metadata of a recipe and, when known, the calibration (so `COPY ... TO` keeps
/// them).
pub fn recipe_metadata(
    recipe: &ColumnRecipe,
    calibration: Option<&Calibration>,
) -> HashMap<String, String> {
    match recipe.field_metadata(calibration) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("cannot serialize the embquant recipe: {e}");
            HashMap::new()
        }
    }
}

/// Wraps a one-row result as a scalar when every argument was a scalar.
pub fn output(array: ArrayRef, all_scalar: bool) -> Result<ColumnarValue> {
    if all_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// A `FixedSizeList<Float32, dim>` from row-major values.
pub fn f32_list(
    values: Vec<f32>,
    dim: usize,
    nulls: Option<datafusion::arrow::buffer::NullBuffer>,
) -> FixedSizeListArray {
    FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dim as i32,
        Arc::new(datafusion::arrow::array::Float32Array::from(values)),
        nulls,
    )
}

/// The number of rows of the batch (the first array argument, else 1).
pub fn batch_rows(args: &[ColumnarValue]) -> (usize, bool) {
    args.iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            _ => None,
        })
        .map_or((1, true), |n| (n, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{LargeStringArray, StringArray, StringViewArray};

    #[test]
    fn a_repeated_string_column_is_read_in_place() {
        let big = "x".repeat(1 << 20);
        // A view array of 10,000 rows sharing one 1 MiB value: 10 GB if copied.
        let one = StringViewArray::from(vec![big.as_str()]);
        let idx = datafusion::arrow::array::UInt32Array::from(vec![0u32; 10_000]);
        let many: ArrayRef = datafusion::arrow::compute::take(&one, &idx, None).unwrap();
        let got = single_string(&many).unwrap().unwrap().unwrap();
        assert!(std::ptr::eq(got.as_ptr(), one.value(0).as_ptr()));
        for a in [
            Arc::new(StringArray::from(vec![
                None,
                Some("a"),
                Some("a"),
                Some("b"),
            ])) as ArrayRef,
            Arc::new(LargeStringArray::from(vec![
                None,
                Some("a"),
                Some("a"),
                Some("b"),
            ])),
            Arc::new(StringViewArray::from(vec![
                None,
                Some("a"),
                Some("a"),
                Some("b"),
            ])),
        ] {
            assert_eq!(single_string(&a), Some(Err(3)), "{}", a.data_type());
            let head = a.slice(0, 3);
            assert_eq!(single_string(&head), Some(Ok(Some("a"))));
            assert_eq!(single_string(&a.slice(0, 1)), Some(Ok(None)));
        }
        let ints: ArrayRef = Arc::new(datafusion::arrow::array::Int32Array::from(vec![1]));
        assert_eq!(single_string(&ints), None);
    }
}
