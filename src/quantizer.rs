//! The record-batch operator: appends quantized columns to batches, and runs over a stream
//! of batches with the CPU work on rayon, order preserved and a bounded number of batches
//! in flight.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
//! # use arrow_schema::{DataType, Field};
//! use embquant::{Calibration, Quantizer, QuantizeOptions, RangeMethod, Scheme, Stats, StatsOptions};
//!
//! # let field = Arc::new(Field::new_list_field(DataType::Float32, false));
//! # let emb = FixedSizeListArray::new(field, 2, Arc::new(Float32Array::from(vec![0.1, -0.3, 0.5, 0.2])), None);
//! # let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
//! let batch = RecordBatch::try_from_iter([("id", ids), ("embedding", Arc::new(emb) as ArrayRef)])?;
//! let stats = Stats::compute(batch.column(1).as_ref(), &StatsOptions::default())?;
//! let cal = Calibration::from_stats(&stats, RangeMethod::MinMax)?;
//! let mut options = QuantizeOptions::new("embedding");
//! options.schemes = vec![Scheme::Int8, Scheme::Binary];
//! let q = Quantizer::try_new(batch.schema(), cal, options)?;
//! let out = q.quantize(&batch)?;
//! assert_eq!(out.batch.schema().field(2).name(), "embedding_int8");
//! assert_eq!(out.batch.schema().field(3).name(), "embedding_bin");
//! # Ok::<(), embquant::Error>(())
//! ```

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
#[cfg(feature = "job")]
use futures::{Stream, StreamExt};

use crate::calibration::Calibration;
use crate::codec::binary::BinaryThreshold;
use crate::codec::int8::Int8Layout;
use crate::codec::matryoshka::{truncate, MatryoshkaOptions};
use crate::codec::rabitq::Rotation;
use crate::codec::scheme::{CodeParams, Scheme, SchemeCodec};
use crate::error::{Error, Result};
use crate::metadata::{ColumnRecipe, Truncation};
#[cfg(feature = "job")]
use crate::tasks::spawn_rayon;
use crate::vectors::{fixed_dims, vector_column};

/// What to quantize and how.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QuantizeOptions {
    /// The float vector column.
    pub column: String,
    /// Schemes to add, in output order.
    pub schemes: Vec<Scheme>,
    /// Threshold of the binary scheme.
    pub binary_threshold: BinaryThreshold,
    /// Matryoshka truncation before every codec.
    pub matryoshka: Option<MatryoshkaOptions>,
    /// Drop the float column from the output.
    pub drop_source: bool,
    /// Layout of int8 codes.
    pub int8_layout: Int8Layout,
    /// Rotation of the rabitq scheme.
    pub rabitq_rotation: Rotation,
    /// Bits per dimension of the rabitq scheme: 1 writes `<column>_rq` alone; 2 to 8 also
    /// write the extra bits as `<column>_rq<bits>` ([`crate::codec::rabitq_ex`]).
    pub rabitq_bits: u8,
}

impl QuantizeOptions {
    /// Defaults for `column`: int8 and binary (sign bits), keep the source, int8 as
    /// `FixedSizeBinary`.
    pub fn new(column: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            schemes: vec![Scheme::Int8, Scheme::Binary],
            binary_threshold: BinaryThreshold::Zero,
            matryoshka: None,
            drop_source: false,
            int8_layout: Int8Layout::Binary,
            rabitq_rotation: Rotation::default(),
            rabitq_bits: 1,
        }
    }

    /// The code columns' schemes in output order: each scheme asked for, and the extra bits
    /// right after `rabitq` when `rabitq_bits` >= 2.
    pub fn column_schemes(&self) -> Result<Vec<Scheme>> {
        if self.schemes.contains(&Scheme::RabitqEx) {
            return Err(Error::BadArgument {
                name: "scheme".into(),
                problem:
                    "rabitq_ex is not a scheme of its own: ask for rabitq with rabitq_bits 2 to 8"
                        .into(),
            });
        }
        if !(1..=crate::codec::rabitq_ex::MAX_BITS).contains(&self.rabitq_bits) {
            return Err(Error::BadArgument {
                name: "rabitq_bits".into(),
                problem: format!("{}: expected 1 to 8", self.rabitq_bits),
            });
        }
        if self.rabitq_bits > 1 && !self.schemes.contains(&Scheme::Rabitq) {
            return Err(Error::BadArgument {
                name: "rabitq_bits".into(),
                problem: format!("{} asked for without the rabitq scheme", self.rabitq_bits),
            });
        }
        let mut out = Vec::new();
        for &s in &self.schemes {
            out.push(s);
            if s == Scheme::Rabitq && self.rabitq_bits > 1 {
                out.push(Scheme::RabitqEx);
            }
        }
        Ok(out)
    }

    /// The parameters of the codes of `dims` encoded dimensions these options make.
    pub fn code_params(&self, dims: usize) -> CodeParams {
        let mut p = CodeParams::new(dims);
        p.int8_layout = self.int8_layout;
        p.threshold = self.binary_threshold;
        p.rotation = self.rabitq_rotation;
        p.rabitq_bits = self.rabitq_bits;
        p
    }

    /// Whether the calibration must carry medians (median binary threshold).
    pub fn needs_median(&self) -> bool {
        self.schemes.contains(&Scheme::Binary) && self.binary_threshold == BinaryThreshold::Median
    }
}

/// A quantized batch and what encoding it observed.
#[derive(Debug, Clone)]
pub struct QuantizedBatch {
    /// The input columns (minus the source when dropped) followed by the code columns.
    pub batch: RecordBatch,
    /// Clipped values per code column (in `Quantizer::recipes` order).
    pub clipped: Vec<u64>,
    /// Non-null vectors encoded.
    pub vectors: u64,
}

/// Appends quantized columns to record batches.
#[derive(Debug, Clone)]
pub struct Quantizer {
    options: QuantizeOptions,
    calibration: Arc<Calibration>,
    source_index: usize,
    source_dims: usize,
    /// One per code column, the extra bits of multi-bit RaBitQ encoding their sign column too.
    codecs: Vec<SchemeCodec>,
    recipes: Vec<ColumnRecipe>,
    schema: SchemaRef,
}

impl Quantizer {
    /// A quantizer for batches of `schema`, encoding `options.column` with `calibration`
    /// (whose dimension must equal the encoded dimension: the truncated one with Matryoshka).
    pub fn try_new(
        schema: SchemaRef,
        calibration: Calibration,
        options: QuantizeOptions,
    ) -> Result<Self> {
        let source_index = vector_column(&schema, &options.column)?;
        let field_type = schema.field(source_index).data_type().clone();
        let dims = calibration.dim();
        let source_dims = match (fixed_dims(&field_type), options.matryoshka) {
            (Some(n), Some(m)) if m.dims > n => {
                return Err(Error::BadArgument {
                    name: "dims".into(),
                    problem: format!("{} exceeds the column's {n} dimensions", m.dims),
                })
            }
            (Some(n), _) => n,
            (None, Some(_)) => 0,
            (None, None) => dims,
        };
        let encoded = options.matryoshka.map_or(source_dims, |m| m.dims);
        if source_dims != 0 && encoded != dims {
            return Err(Error::DimensionMismatch {
                context: format!("column {:?} (encoded dimensions)", options.column),
                expected: dims,
                found: encoded,
            });
        }
        if options.schemes.is_empty() {
            return Err(Error::EmptyInput {
                action: "quantize",
                what: "no scheme given".into(),
            });
        }
        let mut codecs = Vec::new();
        let mut recipes = Vec::new();
        let mut fields: Vec<Arc<Field>> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(i, _)| !(options.drop_source && *i == source_index))
            .map(|(_, f)| f.clone())
            .collect();
        let mut params = options.code_params(dims);
        params.shape = calibration.shape();
        let truncation = options.matryoshka.map(|m| Truncation {
            dims: m.dims,
            normalized: m.normalize,
        });
        let recorded_dims = if source_dims == 0 { dims } else { source_dims };
        for scheme in options.column_schemes()? {
            let recipe = ColumnRecipe::new(
                scheme,
                &options.column,
                recorded_dims,
                truncation,
                &params,
                Some(&calibration),
            );
            let name = &recipe.name;
            if schema.index_of(name).is_ok() && !(options.drop_source && *name == options.column) {
                return Err(Error::OutputConflict {
                    output: format!("column {name:?}"),
                    problem: "the input already has a column of that name".into(),
                });
            }
            // One recipe -> codec path for writers and readers (`ColumnRecipe::codec`).
            let codec = recipe.codec(Some(&calibration))?;
            if matches!(codec, SchemeCodec::RabitqEx(_)) {
                // The sign column just before is written by the same pass.
                codecs.pop();
            }
            let uses_cal = recipe.calibration_fingerprint.is_some();
            let meta = recipe.field_metadata(uses_cal.then_some(&calibration))?;
            fields.push(Arc::new(
                Field::new(name, scheme.arrow_type(&params), true).with_metadata(meta),
            ));
            codecs.push(codec);
            recipes.push(recipe);
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        Ok(Quantizer {
            options,
            calibration: Arc::new(calibration),
            source_index,
            source_dims,
            codecs,
            recipes,
            schema,
        })
    }

    /// Output schema (input fields, then one field per scheme with its recipe metadata).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The recipes of the code columns, in output order.
    pub fn recipes(&self) -> &[ColumnRecipe] {
        &self.recipes
    }

    /// The calibration.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The options.
    pub fn options(&self) -> &QuantizeOptions {
        &self.options
    }

    /// Encodes one batch (rows in errors count from the batch start).
    pub fn quantize(&self, batch: &RecordBatch) -> Result<QuantizedBatch> {
        let source = batch.column(self.source_index);
        let truncated;
        let vectors: &dyn Array = match self.options.matryoshka {
            Some(m) => {
                truncated = truncate(source.as_ref(), &m)?;
                &truncated
            }
            None => source.as_ref(),
        };
        let mut columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .enumerate()
            .filter(|(i, _)| !(self.options.drop_source && *i == self.source_index))
            .map(|(_, c)| c.clone())
            .collect();
        let mut clipped = Vec::with_capacity(self.recipes.len());
        for codec in &self.codecs {
            // The output fields are nullable; the codec's arrays match the field types.
            for enc in codec.encode(vectors)? {
                clipped.push(enc.clipped);
                columns.push(enc.array);
            }
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        let vectors = (vectors.len() - vectors.logical_null_count()) as u64;
        Ok(QuantizedBatch {
            batch,
            clipped,
            vectors,
        })
    }

    /// Source dimension (0 for `List` columns, known only from data).
    pub fn source_dims(&self) -> usize {
        self.source_dims
    }
}

/// Quantizes a stream of batches: each batch is encoded on rayon, at most `in_flight`
/// batches are encoded at once (backpressure: the input is not polled further ahead), and
/// the output keeps the input order. Rows in errors count from the start of the stream.
#[cfg(feature = "job")]
pub fn quantize_stream<S>(
    input: S,
    quantizer: Arc<Quantizer>,
    in_flight: usize,
) -> impl Stream<Item = Result<QuantizedBatch>> + Send
where
    S: Stream<Item = Result<RecordBatch>> + Send + 'static,
{
    let mut offset = 0u64;
    input
        .map(move |batch| {
            let q = quantizer.clone();
            let start = offset;
            if let Ok(b) = &batch {
                offset += b.num_rows() as u64;
            }
            async move {
                let batch = batch?;
                spawn_rayon(move || q.quantize(&batch).map_err(|e| e.offset_rows(start))).await?
            }
        })
        .buffered(in_flight.max(1))
}
