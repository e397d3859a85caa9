//! Loading a corpus of embquant Parquet files for search: the code columns (found by their
//! embquant field metadata) into memory, the float column left on disk and read row by row
//! for the float tier.

use std::fs::File;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Int8Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;

use super::tiered::{Corpus, FloatRows, Tier, TierSpec};
use crate::calibration::Calibration;
use crate::codec::binary::{BinaryCodec, BinaryThreshold};
use crate::codec::int4::Int4Codec;
use crate::codec::int8::Int8Codec;
use crate::codec::matryoshka::{truncate, MatryoshkaOptions};
use crate::codec::rabitq::RabitqCodec;
use crate::error::{Error, Result};
use crate::job::InputFile;
use crate::metadata::{ColumnRecipe, Scheme, Truncation};
use crate::vectors::Vectors;

/// A corpus ready to search, with what a caller needs to report and encode queries.
pub struct LoadedCorpus {
    /// The corpus.
    pub corpus: Corpus,
    /// Values of the id column per row (row numbers when there is none).
    pub ids: Vec<i64>,
    /// The calibration the codes were made with (None for sign bits / f16 only).
    pub calibration: Option<Calibration>,
    /// Matryoshka truncation the codes were made with: apply it to queries.
    pub truncation: Option<Truncation>,
}

fn recipes(
    schema: &Schema,
    column: &str,
) -> Result<Vec<(usize, ColumnRecipe, Option<Calibration>)>> {
    let mut out = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if let Some((r, cal)) = ColumnRecipe::from_field(f)? {
            if r.source_column == column {
                out.push((i, r, cal));
            }
        }
    }
    Ok(out)
}

fn scheme_of(tier: Tier) -> Option<Scheme> {
    match tier {
        Tier::Binary => Some(Scheme::Binary),
        Tier::Int8 => Some(Scheme::Int8),
        Tier::Int4 => Some(Scheme::Int4),
        Tier::F16 => Some(Scheme::F16),
        Tier::Rabitq => Some(Scheme::Rabitq),
        Tier::Float => None,
    }
}

/// Loads the code columns the `chain` needs from `files` (outputs of `embquant quantize`
/// of `column`). Every file must carry the same recipe and calibration fingerprint.
pub fn load_corpus(
    files: &[InputFile],
    column: &str,
    id_column: Option<&str>,
    chain: &[TierSpec],
) -> Result<LoadedCorpus> {
    // A chain may name a scheme twice (`int8:2,int8`): its codes are loaded once.
    let mut schemes: Vec<Scheme> = Vec::new();
    for s in chain.iter().filter_map(|s| scheme_of(s.tier)) {
        if !schemes.contains(&s) {
            schemes.push(s);
        }
    }
    let wants_float = chain.iter().any(|s| s.tier == Tier::Float);
    let mut loaded: Option<(Vec<ColumnRecipe>, Option<Calibration>)> = None;
    let (mut bin, mut i8c, mut i4c, mut h16) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rq = Vec::new();
    let mut valid: Vec<bool> = Vec::new();
    let mut ids: Vec<i64> = Vec::new();
    let mut float_files = Vec::new();
    for file in files {
        let ctx = |e: Error| e.in_file(file.path.display(), column);
        let f = File::open(&file.path).map_err(|e| ctx(Error::io("opening", e)))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| ctx(e.into()))?;
        let schema = builder.schema().clone();
        let found = recipes(&schema, column).map_err(ctx)?;
        let mut indices = Vec::new();
        let mut recs = Vec::new();
        let mut cal: Option<Calibration> = None;
        for scheme in &schemes {
            let (i, r, c) = found
                .iter()
                .find(|(_, r, _)| r.scheme == *scheme)
                .cloned()
                .ok_or_else(|| {
                    ctx(Error::InvalidOption(format!(
                    "no {scheme} codes of {column:?} (quantize with --scheme {scheme}); found: {}",
                    found.iter().map(|(_, r, _)| r.name.as_str()).collect::<Vec<_>>().join(", ")
                )))
                })?;
            if let Some(c) = c {
                if let Some(prev) = &cal {
                    if prev.fingerprint() != c.fingerprint() {
                        return Err(ctx(Error::InvalidCalibration(
                            "code columns carry different calibrations".into(),
                        )));
                    }
                }
                cal = Some(c);
            }
            indices.push(i);
            recs.push(r);
        }
        match &loaded {
            None => loaded = Some((recs.clone(), cal.clone())),
            Some((prev, pcal)) => {
                let fp = |c: &Option<Calibration>| c.as_ref().map(|c| c.fingerprint().to_string());
                if fp(pcal) != fp(&cal)
                    || prev.iter().zip(&recs).any(|(a, b)| {
                        a.dims != b.dims || a.threshold != b.threshold || a.rotation != b.rotation
                    })
                {
                    return Err(ctx(Error::InvalidCalibration(format!(
                        "quantized with another calibration or recipe than {} (fingerprint {:?} vs {:?}): codes are only comparable under one calibration",
                        files[0].path.display(),
                        fp(&cal),
                        fp(pcal)
                    ))));
                }
            }
        }
        let id_idx = match id_column {
            Some(name) => Some(crate::quantizer::column_index(&schema, name).map_err(ctx)?),
            None => None,
        };
        if wants_float {
            crate::quantizer::vector_column(&schema, column).map_err(|e| {
                ctx(Error::InvalidOption(format!(
                    "the float tier needs the float column (quantized with --drop-source?): {e}"
                )))
            })?;
            float_files.push(file.clone());
        }
        let mut proj = indices.clone();
        proj.extend(id_idx);
        let mask = ProjectionMask::roots(builder.parquet_schema(), proj.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(|e| ctx(e.into()))?;
        let mut file_row = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| ctx(e.into()))?;
            for (scheme, rec) in schemes.iter().zip(&recs) {
                let col = batch.column_by_name(&rec.name).ok_or_else(|| {
                    ctx(Error::InvalidOption(format!(
                        "column {:?} is missing from the decoded rows: the footer's schemas disagree (a corrupt file?)",
                        rec.name
                    )))
                })?;
                if scheme == &schemes[0] {
                    valid.extend((0..col.len()).map(|r| col.is_valid(r)));
                }
                match scheme {
                    Scheme::Binary => bin.extend_from_slice(fixed_bytes(col)?),
                    Scheme::Int4 => i4c.extend_from_slice(fixed_bytes(col)?),
                    Scheme::Rabitq => rq.extend_from_slice(fixed_bytes(col)?),
                    Scheme::Int8 => match col.data_type() {
                        DataType::FixedSizeBinary(_) => {
                            i8c.extend(fixed_bytes(col)?.iter().map(|&b| b as i8))
                        }
                        _ => i8c.extend_from_slice(
                            &col.as_fixed_size_list()
                                .values()
                                .as_primitive::<Int8Type>()
                                .values()[..col.len() * rec.dims],
                        ),
                    },
                    Scheme::F16 | Scheme::Bf16 => h16.extend_from_slice(
                        &col.as_fixed_size_list()
                            .values()
                            .as_primitive::<Float16Type>()
                            .values()[..col.len() * rec.dims],
                    ),
                }
            }
            let id_col = match (id_idx, id_column) {
                (Some(_), Some(name)) => Some(batch.column_by_name(name).ok_or_else(|| {
                    ctx(Error::InvalidOption(format!(
                        "id column {name:?} is missing from the decoded rows (a corrupt file?)"
                    )))
                })?),
                _ => None,
            };
            match id_col {
                Some(c) => {
                    let c = crate::ids::id_values(c.as_ref(), file_row)
                        .map_err(|e| ctx(Error::InvalidOption(format!("id column: {e}"))))?;
                    ids.extend(c);
                }
                None => {
                    let s = ids.len() as i64;
                    ids.extend(s..s + batch.num_rows() as i64);
                }
            }
            file_row += batch.num_rows() as u64;
        }
    }
    let (recs, calibration) =
        loaded.ok_or_else(|| Error::InvalidOption("no corpus files".into()))?;
    let first = recs.first().cloned();
    let dims = first.as_ref().map_or(0, |r| r.dims);
    let truncation = first.as_ref().and_then(|r| r.truncation);
    let rows = ids.len();
    let need_cal = || {
        Error::MissingCalibrationData(
            "the corpus calibration (field metadata embquant.calibration)",
        )
    };
    let mut corpus = Corpus::new(rows, dims);
    for r in &recs {
        match r.scheme {
            Scheme::Binary => {
                let codec = match (r.threshold.as_deref(), &calibration) {
                    (Some("mean"), Some(c)) => {
                        BinaryCodec::with_calibration(c, BinaryThreshold::Mean)?
                    }
                    (Some("median"), Some(c)) => {
                        BinaryCodec::with_calibration(c, BinaryThreshold::Median)?
                    }
                    (Some("zero") | None, _) => BinaryCodec::new(dims),
                    _ => return Err(need_cal()),
                };
                corpus.binary = Some((std::mem::take(&mut bin), codec));
            }
            Scheme::Int8 => {
                corpus.int8 = Some((
                    std::mem::take(&mut i8c),
                    Int8Codec::new(calibration.as_ref().ok_or_else(need_cal)?),
                ))
            }
            Scheme::Int4 => {
                corpus.int4 = Some((
                    std::mem::take(&mut i4c),
                    Int4Codec::new(calibration.as_ref().ok_or_else(need_cal)?),
                ))
            }
            Scheme::F16 | Scheme::Bf16 => corpus.f16 = Some(std::mem::take(&mut h16)),
            Scheme::Rabitq => {
                let codec = RabitqCodec::new(
                    calibration.as_ref().ok_or_else(need_cal)?,
                    r.rabitq_rotation()?,
                );
                if Some(codec.bits()) != r.code_bits && r.code_bits.is_some() {
                    return Err(Error::InvalidOption(format!(
                        "column {:?}: {} code bits stored, {} from its rotation",
                        r.name,
                        r.code_bits.unwrap_or(0),
                        codec.bits()
                    )));
                }
                corpus.rabitq = Some((std::mem::take(&mut rq), codec));
            }
        }
    }
    if wants_float {
        if corpus.dim == 0 {
            corpus.dim = float_dims(&float_files[0], column)?;
        }
        corpus.floats = Some(Box::new(ParquetFloats {
            files: float_files,
            column: column.to_string(),
            truncation,
        }));
    }
    if valid.iter().any(|v| !v) {
        corpus.valid = Some(valid);
    }
    corpus.prepare();
    Ok(LoadedCorpus {
        corpus,
        ids,
        calibration,
        truncation,
    })
}

fn float_dims(file: &InputFile, column: &str) -> Result<usize> {
    let b = ParquetRecordBatchReaderBuilder::try_new(
        File::open(&file.path)
            .map_err(|e| Error::io(format!("opening {}", file.path.display()), e))?,
    )?;
    let idx = crate::quantizer::vector_column(b.schema(), column)?;
    crate::quantizer::fixed_dims(b.schema().field(idx).data_type()).ok_or_else(|| {
        Error::InvalidOption("the float tier needs a FixedSizeList float column".into())
    })
}

fn fixed_bytes(col: &ArrayRef) -> Result<&[u8]> {
    match col.data_type() {
        DataType::FixedSizeBinary(w) => {
            Ok(&col.as_fixed_size_binary().value_data()[..col.len() * *w as usize])
        }
        other => Err(Error::UnsupportedCodeType {
            expected: "FixedSizeBinary codes".into(),
            found: other.clone(),
        }),
    }
}

/// Float vectors read from the corpus Parquet files, only the rows asked for: a row
/// selection per file, with the page index so pages holding no candidate are skipped, one
/// batch of rows in memory at a time.
pub struct ParquetFloats {
    files: Vec<InputFile>,
    column: String,
    truncation: Option<Truncation>,
}

impl ParquetFloats {
    /// The float column `column` of `files` (row numbers run on across the files in order),
    /// cut to a Matryoshka prefix when `truncation` is given.
    pub fn new(files: Vec<InputFile>, column: &str, truncation: Option<Truncation>) -> Self {
        ParquetFloats {
            files,
            column: column.to_string(),
            truncation,
        }
    }
}

impl FloatRows for ParquetFloats {
    fn visit(&self, rows: &[u32], f: &mut dyn FnMut(usize, &[f32]) -> Result<()>) -> Result<()> {
        let mut start = 0u64;
        let mut k = 0usize;
        for file in &self.files {
            let end = start + file.rows;
            let first = k;
            let mut sel = Vec::new();
            let mut at = 0u64;
            while k < rows.len() && (rows[k] as u64) < end {
                let r = rows[k] as u64 - start;
                if r > at {
                    sel.push(RowSelector::skip((r - at) as usize));
                }
                sel.push(RowSelector::select(1));
                at = r + 1;
                k += 1;
            }
            if k > first {
                let ctx = |e: Error| e.in_file(file.path.display(), &self.column);
                let f_in = File::open(&file.path).map_err(|e| ctx(Error::io("opening", e)))?;
                let opts =
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
                let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(f_in, opts)
                    .map_err(|e| ctx(e.into()))?;
                let idx =
                    crate::quantizer::vector_column(builder.schema(), &self.column).map_err(ctx)?;
                let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
                let reader = builder
                    .with_projection(mask)
                    .with_batch_size(4096)
                    .with_row_selection(RowSelection::from(sel))
                    .build()
                    .map_err(|e| ctx(e.into()))?;
                let mut i = first;
                for batch in reader {
                    let batch = batch.map_err(|e| ctx(e.into()))?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    let col: Arc<dyn Array> = match self.truncation {
                        Some(t) => Arc::new(
                            truncate(
                                batch.column(0).as_ref(),
                                &MatryoshkaOptions {
                                    dims: t.dims,
                                    normalize: t.normalized,
                                },
                            )
                            .map_err(ctx)?,
                        ),
                        None => batch.column(0).clone(),
                    };
                    f(i, Vectors::try_new(col.as_ref()).map_err(ctx)?.values())?;
                    i += batch.num_rows();
                }
            }
            start = end;
        }
        Ok(())
    }
}
