//! `quantize` and `dequantize` of vectors in memory, every scheme, through the same
//! [`Quantizer`] the Parquet job runs: the codes carry the job's field metadata (recipe and
//! calibration), so they decode anywhere.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema};
use embquant::job::QuantizeSpec;
use embquant::metadata::ColumnRecipe;
use embquant::quantizer::{QuantizeOptions, Quantizer};
use embquant::{Calibration, Stats, StatsOptions};
use embquant::{Int8Layout, Scheme};
use pyo3::prelude::*;
use pyo3_arrow::PyArray;

use crate::arrays::{self, Column};
use crate::calibration::PyCalibration;
use crate::errors::{parse, to_py, value_error, IntoPy};

/// What `quantize` was asked for: the quantize options of the one spec every front door
/// builds (the column is set per call).
pub(crate) struct Recipe {
    options: QuantizeOptions,
}

impl Recipe {
    /// The options of `schemes` (comma-separated, `rabitqN` included) and the other
    /// keyword arguments, parsed by the spec's parser.
    pub(crate) fn parse(
        schemes: &str,
        rabitq_bits: Option<u8>,
        binary_threshold: &str,
        dims: Option<usize>,
        int8_layout: &str,
        rabitq_rotation: &str,
    ) -> PyResult<Self> {
        let mut spec = QuantizeSpec::new("embedding");
        spec.schemes = schemes.split(',').map(str::to_string).collect();
        spec.rabitq_bits = rabitq_bits;
        spec.binary_threshold = binary_threshold.into();
        spec.dims = dims;
        spec.int8_layout = int8_layout.into();
        spec.rabitq_rotation = rabitq_rotation.into();
        Ok(Self {
            options: spec.job_options().py()?.quantize,
        })
    }

    /// The schemes asked for.
    pub(crate) fn schemes(&self) -> &[Scheme] {
        &self.options.schemes
    }

    /// Bits per dimension of the RaBitQ codes.
    pub(crate) fn rabitq_bits(&self) -> u8 {
        self.options.rabitq_bits
    }

    /// The code columns they make (multi-bit RaBitQ makes two).
    pub(crate) fn columns(&self) -> usize {
        self.options.column_schemes().map_or(0, |c| c.len())
    }

    /// The options of the core's [`Quantizer`] for `column`.
    pub(crate) fn options(&self, column: &str, drop_source: bool) -> QuantizeOptions {
        let mut o = self.options.clone();
        o.column = column.into();
        o.drop_source = drop_source;
        o
    }
}

/// Rows of the sample a calibration is computed on when the codes do not use it.
const RECORD_ONLY_SAMPLE: u64 = 4096;

/// The min/max calibration of `vectors` themselves (after the Matryoshka prefix), with
/// sketches only when a median threshold needs them. When no scheme encodes with it (sign
/// bits against zero, f16, bf16) it only describes the data in the codes' metadata, and is
/// computed on a seeded sample of [`RECORD_ONLY_SAMPLE`] rows (its `rows` says so).
pub(crate) fn self_calibration(
    vectors: &dyn Array,
    recipe: &Recipe,
) -> embquant::Result<Calibration> {
    let o = &recipe.options;
    let opts = if o.needs_median() {
        StatsOptions::default()
    } else {
        StatsOptions::moments_only()
    };
    // (Whether a scheme uses the calibration does not depend on the dimension.)
    let params = o.code_params(0);
    let uses_calibration = o.schemes.iter().any(|s| s.uses_calibration(&params));
    let sampled;
    let vectors = if !uses_calibration && vectors.len() as u64 > RECORD_ONLY_SAMPLE {
        let rows = embquant::job::sample_rows(vectors.len() as u64, RECORD_ONLY_SAMPLE, 42);
        let idx = arrow_array::UInt64Array::from(rows);
        sampled = arrow_select::take::take(vectors, &idx, None)?;
        sampled.as_ref()
    } else {
        vectors
    };
    let stats = match o.matryoshka {
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

/// Quantizes `vectors` by one `scheme` (`int8`, `int4`, `binary`, `f16`, `bf16`, `rabitq`,
/// `rabitq1` to `rabitq8`): the code columns as Arrow arrays whose fields carry the recipe
/// and calibration, one, or two for multi-bit RaBitQ (the sign bits, then the extra bits).
#[pyfunction]
#[pyo3(signature = (vectors, scheme, calibration=None, column=None, binary_threshold="zero", dims=None, int8_layout="binary", rabitq_rotation="hadamard", rabitq_bits=None))]
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
    rabitq_bits: Option<u8>,
) -> PyResult<Vec<PyArray>> {
    let recipe = Recipe::parse(
        scheme,
        rabitq_bits,
        binary_threshold,
        dims,
        int8_layout,
        rabitq_rotation,
    )?;
    if recipe.schemes().len() != 1 {
        return Err(value_error(format!(
            "quantize() takes one scheme, got {scheme:?} (quantize once per scheme)"
        )));
    }
    let col = arrays::vectors(vectors, column)?;
    let cal = calibration.map(|c| Arc::clone(&c.cal));
    let (arrays, fields) = py.detach(|| encode(&col, cal, &recipe)).py()?;
    arrays
        .into_iter()
        .zip(fields)
        .map(|(a, f)| PyArray::try_new(a, f).map_err(|e| to_py(e.into())))
        .collect()
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
    // The recipe the quantizer writes for this scheme at the calibration's dimension, in
    // the layout the codes have.
    let mut params = QuantizeOptions::new("embedding").code_params(cal.dim());
    params.shape = cal.shape();
    params.int8_layout = match dt {
        DataType::FixedSizeList(..) => Int8Layout::List,
        _ => Int8Layout::Binary,
    };
    let recipe = ColumnRecipe::new(scheme, "embedding", cal.dim(), None, &params, Some(cal));
    Ok((recipe, Some(cal.clone())))
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
            Ok(Arc::new(recipe.codec(cal.as_ref())?.decode(a)?))
        })
        .py()?;
    let field = Field::new(
        recipe.source_column.clone(),
        decoded.data_type().clone(),
        true,
    );
    PyArray::try_new(decoded, Arc::new(field)).map_err(|e| to_py(e.into()))
}

/// Rows per parallel block of [`quantize_into`] (as the core's codecs use).
const BLOCK_ROWS: usize = 1024;

/// Encodes `vectors` (float32, no null rows) straight into `out`, a writable C-contiguous
/// buffer of `rows x width` bytes (a numpy array the caller allocated, e.g. reused between
/// calls): `int8` and `uint8` (levels XOR 0x80 or not) with `calibration`, `ubinary` / `binary`
/// (sign bits, `numpy.packbits` order). The slice kernels run in parallel blocks on the
/// buffer itself, with no Arrow array in between. Returns the count of clipped values.
#[pyfunction]
#[pyo3(signature = (vectors, precision, calibration, out))]
pub(crate) fn quantize_into(
    py: Python<'_>,
    vectors: &Bound<'_, PyAny>,
    precision: &str,
    calibration: Option<PyRef<'_, PyCalibration>>,
    out: &Bound<'_, PyAny>,
) -> PyResult<u64> {
    use embquant::codec::binary::BinaryCodec;
    use embquant::Int8Codec;
    use pyo3::buffer::PyBuffer;
    use rayon::prelude::*;

    let col = arrays::vectors(vectors, None)?;
    let buf = PyBuffer::<u8>::get(out)?;
    if buf.readonly() || !buf.is_c_contiguous() {
        return Err(value_error(
            "out must be a writable C-contiguous uint8 buffer",
        ));
    }
    let cal = calibration.map(|c| Arc::clone(&c.cal));
    py.detach(|| -> embquant::Result<u64> {
        let v = embquant::Vectors::try_new(col.array.as_ref())?;
        if v.null_count() > 0 {
            return Err(embquant::Error::bad_argument(
                "vectors",
                format!(
                    "{} null rows: quantize() keeps them as nulls; out= takes complete rows",
                    v.null_count()
                ),
            ));
        }
        let (dim, n) = (v.dim(), v.len());
        enum K {
            Int8(Int8Codec, u8),
            Bits(BinaryCodec),
        }
        let kernel = match precision {
            "int8" | "uint8" => {
                let cal = cal.as_deref().ok_or_else(|| {
                    embquant::Error::bad_argument(
                        "calibration",
                        format!("{precision} needs a calibration"),
                    )
                })?;
                if cal.dim() != dim {
                    return Err(embquant::Error::DimensionMismatch {
                        context: "vectors".into(),
                        expected: cal.dim(),
                        found: dim,
                    });
                }
                K::Int8(
                    Int8Codec::new(cal),
                    if precision == "int8" { 0x80 } else { 0 },
                )
            }
            "binary" | "ubinary" => K::Bits(BinaryCodec::new(dim)),
            other => {
                return Err(embquant::Error::bad_argument(
                    "precision",
                    format!("precision {other:?}: expected int8, uint8, binary or ubinary"),
                ))
            }
        };
        let width = match &kernel {
            K::Int8(..) => dim,
            K::Bits(c) => c.width(),
        };
        if buf.item_count() != n * width {
            return Err(embquant::Error::bad_argument(
                "out",
                format!(
                    "out holds {} bytes, the codes of {n} rows need {n} x {width}",
                    buf.item_count()
                ),
            ));
        }
        // SAFETY: the buffer is writable, C-contiguous and `n * width` bytes long (checked
        // above), and held (`buf`) until this closure returns; nothing else writes it.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf.buf_ptr().cast::<u8>(), n * width) };
        let src = v.values();
        let blocks: Vec<std::result::Result<u64, usize>> = dst
            .par_chunks_mut(BLOCK_ROWS * width)
            .enumerate()
            .map(|(b, o)| {
                let rows = o.len() / width;
                let s = &src[b * BLOCK_ROWS * dim..(b * BLOCK_ROWS + rows) * dim];
                match &kernel {
                    K::Int8(c, xor) => c.encode_slice(s, o, *xor),
                    K::Bits(c) => c.encode_slice(s, o),
                }
                .map_err(|r| b * BLOCK_ROWS + r)
            })
            .collect();
        let mut clipped = 0;
        for r in blocks {
            match r {
                Ok(c) => clipped += c,
                Err(row) => {
                    let vals = v.row(row);
                    let d = vals.iter().position(|x| !x.is_finite()).unwrap_or(0);
                    return Err(embquant::Error::NonFinite {
                        row,
                        dim: d,
                        value: f64::from(vals[d]),
                    });
                }
            }
        }
        Ok(clipped)
    })
    .py()
}
