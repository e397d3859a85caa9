//! `quantize` and `dequantize` of vectors in memory, every scheme, through the same
//! [`Quantizer`] the Parquet job runs: the codes carry the job's field metadata (recipe and
//! calibration), so they decode anywhere.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema};
use embquant::codec::binary::BinaryThreshold;
use embquant::metadata::{ColumnRecipe, Int8Layout, RecipeCodec, Scheme};
use embquant::quantizer::{QuantizeOptions, Quantizer};
use embquant::{Calibration, MatryoshkaOptions, Rotation, Stats, StatsOptions};
use pyo3::prelude::*;
use pyo3_arrow::PyArray;

use crate::arrays::{self, Column};
use crate::calibration::PyCalibration;
use crate::errors::{parse, to_py, value_error, IntoPy};

/// What `quantize` was asked for, parsed.
pub(crate) struct Recipe {
    pub(crate) schemes: Vec<Scheme>,
    pub(crate) binary_threshold: BinaryThreshold,
    pub(crate) dims: Option<usize>,
    pub(crate) int8_layout: Int8Layout,
    pub(crate) rotation: Rotation,
}

impl Recipe {
    pub(crate) fn parse(
        schemes: &str,
        binary_threshold: &str,
        dims: Option<usize>,
        int8_layout: &str,
        rabitq_rotation: &str,
    ) -> PyResult<Self> {
        let schemes = schemes
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse::<Scheme>)
            .collect::<PyResult<Vec<_>>>()?;
        if schemes.is_empty() {
            return Err(value_error("no scheme given"));
        }
        Ok(Self {
            schemes,
            binary_threshold: parse(binary_threshold)?,
            dims,
            int8_layout: parse(int8_layout)?,
            rotation: parse(rabitq_rotation)?,
        })
    }

    pub(crate) fn matryoshka(&self) -> Option<MatryoshkaOptions> {
        self.dims.map(|d| MatryoshkaOptions {
            dims: d,
            normalize: true,
        })
    }

    /// The options of the core's [`Quantizer`] for `column`.
    pub(crate) fn options(&self, column: &str, drop_source: bool) -> QuantizeOptions {
        let mut o = QuantizeOptions::new(column);
        o.schemes = self.schemes.clone();
        o.binary_threshold = self.binary_threshold;
        o.matryoshka = self.matryoshka();
        o.drop_source = drop_source;
        o.int8_layout = self.int8_layout;
        o.rabitq_rotation = self.rotation;
        o
    }
}

/// The min/max calibration of `vectors` themselves (after the Matryoshka prefix), with
/// sketches only when a median threshold needs them.
pub(crate) fn self_calibration(
    vectors: &dyn Array,
    recipe: &Recipe,
) -> embquant::Result<Calibration> {
    let opts = if recipe.binary_threshold == BinaryThreshold::Median {
        StatsOptions::default()
    } else {
        StatsOptions::moments_only()
    };
    let stats = match recipe.matryoshka() {
        Some(m) => Stats::compute(&embquant::truncate(vectors, &m)?, &opts)?,
        None => Stats::compute(vectors, &opts)?,
    };
    Calibration::from_stats(&stats, embquant::RangeMethod::MinMax)
}

/// A one-column batch holding `col` (named after its field, `embedding` when unnamed).
pub(crate) fn batch_of(col: &Column) -> embquant::Result<(RecordBatch, String)> {
    let name = match col.field.name().as_str() {
        "" => "embedding".to_string(),
        n => n.to_string(),
    };
    let field = Field::new(&name, col.array.data_type().clone(), true);
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![field])),
        vec![Arc::clone(&col.array)],
    )?;
    Ok((batch, name))
}

/// Encodes `col` by `recipe` with `cal` (calibrated on the vectors themselves when None):
/// the code columns and their fields, in scheme order.
pub(crate) fn encode(
    col: &Column,
    cal: Option<Arc<Calibration>>,
    recipe: &Recipe,
) -> embquant::Result<(Vec<ArrayRef>, Vec<FieldRef>)> {
    let (batch, name) = batch_of(col)?;
    let cal = match cal {
        Some(c) => (*c).clone(),
        None => self_calibration(col.array.as_ref(), recipe)?,
    };
    let q = Quantizer::try_new(batch.schema(), cal, recipe.options(&name, true))?;
    let out = q.quantize(&batch)?.batch;
    Ok((
        out.columns().to_vec(),
        out.schema().fields().iter().cloned().collect(),
    ))
}

/// Quantizes `vectors` by one `scheme` (`int8`, `uint8`, `int4`, `binary`, `f16`, `bf16`,
/// `rabitq`): the codes as an Arrow array whose field carries the recipe and calibration.
#[pyfunction]
#[pyo3(signature = (vectors, scheme, calibration=None, column=None, binary_threshold="zero", dims=None, int8_layout="binary", rabitq_rotation="hadamard"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantize(
    py: Python<'_>,
    vectors: &Bound<'_, PyAny>,
    scheme: &str,
    calibration: Option<PyRef<'_, PyCalibration>>,
    column: Option<&str>,
    binary_threshold: &str,
    dims: Option<usize>,
    int8_layout: &str,
    rabitq_rotation: &str,
) -> PyResult<PyArray> {
    let recipe = Recipe::parse(scheme, binary_threshold, dims, int8_layout, rabitq_rotation)?;
    if recipe.schemes.len() != 1 {
        return Err(value_error(format!(
            "quantize() takes one scheme, got {scheme:?} (quantize once per scheme)"
        )));
    }
    let col = arrays::vectors(vectors, column)?;
    let cal = calibration.map(|c| Arc::clone(&c.cal));
    let (arrays, fields) = py.detach(|| encode(&col, cal, &recipe)).py()?;
    let (array, field) = arrays.into_iter().zip(fields).next().expect("one scheme");
    PyArray::try_new(array, field).map_err(|e| to_py(e.into()))
}

/// The recipe (and calibration) of a code column: from its field's embquant metadata, or
/// from `scheme` and `calibration` for bare codes.
fn recipe_of(
    field: &Field,
    dt: &DataType,
    calibration: Option<&Calibration>,
    scheme: Option<&str>,
) -> PyResult<(ColumnRecipe, Option<Calibration>)> {
    if let Some((r, stored)) = ColumnRecipe::from_field(field).py()? {
        if scheme.is_none() || scheme == Some(r.scheme.to_string().as_str()) {
            return Ok((r, calibration.cloned().or(stored)));
        }
    }
    let Some(scheme) = scheme else {
        return Err(value_error(format!(
            "the codes ({dt}) carry no embquant metadata: pass scheme= and calibration="
        )));
    };
    let scheme: Scheme = parse(scheme)?;
    let cal = calibration.ok_or_else(|| {
        value_error(format!(
            "decoding bare {scheme} codes needs the calibration they were made with"
        ))
    })?;
    // The recipe the quantizer writes for this scheme at the calibration's dimension.
    let item = Arc::new(Field::new_list_field(DataType::Float32, true));
    let vt = DataType::FixedSizeList(item, cal.dim() as i32);
    let schema = Arc::new(Schema::new(vec![Field::new("embedding", vt, true)]));
    let mut opts = QuantizeOptions::new("embedding");
    opts.schemes = vec![scheme];
    opts.int8_layout = match dt {
        DataType::FixedSizeList(..) => Int8Layout::List,
        _ => Int8Layout::Binary,
    };
    let q = Quantizer::try_new(schema, cal.clone(), opts).py()?;
    Ok((q.recipes()[0].clone(), Some(cal.clone())))
}

/// Decodes codes back to float vectors (`FixedSizeList<float32, D>`).
#[pyfunction]
#[pyo3(signature = (codes, calibration=None, scheme=None, column=None))]
pub(crate) fn dequantize(
    py: Python<'_>,
    codes: &Bound<'_, PyAny>,
    calibration: Option<PyRef<'_, PyCalibration>>,
    scheme: Option<&str>,
    column: Option<&str>,
) -> PyResult<PyArray> {
    let col = arrays::codes(codes, column)?;
    let cal = calibration.map(|c| (*c.cal).clone());
    let (recipe, cal) = recipe_of(&col.field, col.array.data_type(), cal.as_ref(), scheme)?;
    let decoded = py
        .detach(|| -> embquant::Result<ArrayRef> {
            recipe.check_type(col.array.data_type())?;
            let a = col.array.as_ref();
            Ok(match recipe.codec(cal.as_ref())? {
                RecipeCodec::Binary(c) => Arc::new(c.decode(a)?),
                RecipeCodec::Int8(c) => Arc::new(c.decode(a)?),
                RecipeCodec::Int4(c) => Arc::new(c.decode(a)?),
                RecipeCodec::Half(c) => Arc::new(c.decode(a)?),
                RecipeCodec::Rabitq(c) => Arc::new(c.decode(a)?),
            })
        })
        .py()?;
    let field = Field::new(
        recipe.source_column.clone(),
        decoded.data_type().clone(),
        true,
    );
    PyArray::try_new(decoded, Arc::new(field)).map_err(|e| to_py(e.into()))
}
