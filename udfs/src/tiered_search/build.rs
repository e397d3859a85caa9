//! The in-memory corpus built from the scanned batches, and the search over it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float16Type, Int8Type};
use datafusion::common::{exec_err, Result};
use embquant::codec::binary::{BinaryCodec, BinaryThreshold};
use embquant::metadata::{Scheme, Truncation};
use embquant::search::results::results_batch;
use embquant::search::tiered::InMemoryFloats;
use embquant::search::Corpus;
use embquant::{Int4Codec, Int8Codec, MatryoshkaOptions, Vectors};

use crate::args::ext;

use super::exec::SearchSpec;
use super::NAME;

pub(super) fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    match b.column_by_name(name) {
        Some(c) => Ok(c),
        None => exec_err!("{NAME}: column {name:?} missing from the scan"),
    }
}

/// The id column's values (row numbers without one), by the library's one rule for ids
/// ([`embquant::ids`]): integers fitting in Int64, no NULLs.
pub(super) fn ids(batches: &[RecordBatch], name: Option<&str>) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for b in batches {
        match name {
            Some(n) => {
                let first = out.len() as u64;
                let v = embquant::ids::id_values(column(b, n)?.as_ref(), first)
                    .map_err(|e| ext(NAME, e))?;
                out.extend(v);
            }
            None => {
                let s = out.len() as i64;
                out.extend(s..s + b.num_rows() as i64);
            }
        }
    }
    Ok(out)
}

pub(super) fn truncated(col: &ArrayRef, t: Option<Truncation>) -> Result<ArrayRef> {
    match t {
        Some(t) => Ok(Arc::new(
            embquant::truncate(
                col.as_ref(),
                &MatryoshkaOptions {
                    dims: t.dims,
                    normalize: t.normalized,
                },
            )
            .map_err(|e| ext(NAME, e))?,
        )),
        None => Ok(Arc::clone(col)),
    }
}

pub(super) fn fixed_bytes(col: &ArrayRef, what: &str, out: &mut Vec<u8>) -> Result<()> {
    match col.data_type() {
        DataType::FixedSizeBinary(_) => {
            let a = col.as_fixed_size_binary();
            for i in 0..a.len() {
                out.extend_from_slice(a.value(i));
            }
            Ok(())
        }
        other => exec_err!("{NAME}: {what} codes must be FixedSizeBinary, got {other}"),
    }
}

/// Builds the in-memory corpus from the scanned batches and runs the search.
pub(super) fn search(
    spec: &SearchSpec,
    corpus: &[RecordBatch],
    queries: &[RecordBatch],
) -> Result<RecordBatch> {
    let cols = &spec.columns;
    let rows: usize = corpus.iter().map(|b| b.num_rows()).sum();
    let mut valid = vec![true; rows];
    let mark = |c: &ArrayRef, start: usize, valid: &mut [bool]| {
        if c.null_count() > 0 {
            (0..c.len()).for_each(|r| valid[start + r] &= c.is_valid(r));
        }
    };
    let need_cal = || {
        ext(
            NAME,
            embquant::Error::MissingCalibrationData(
                "the corpus calibration (field metadata embquant.calibration)",
            ),
        )
    };
    let dims = cols.codes.first().map(|(_, r)| r.dims);
    let mut c = Corpus::new(rows, dims.unwrap_or(0));
    for (name, r) in &cols.codes {
        let mut start = 0;
        match r.scheme {
            Scheme::Binary => {
                let mut bytes = Vec::new();
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    fixed_bytes(col, "binary", &mut bytes)?;
                }
                let codec = match (r.threshold.as_deref(), &spec.calibration) {
                    (Some("mean"), Some(cal)) => {
                        BinaryCodec::with_calibration(cal, BinaryThreshold::Mean)
                    }
                    (Some("median"), Some(cal)) => {
                        BinaryCodec::with_calibration(cal, BinaryThreshold::Median)
                    }
                    (Some("zero") | None, _) => Ok(BinaryCodec::new(r.dims)),
                    _ => return Err(need_cal()),
                }
                .map_err(|e| ext(NAME, e))?;
                c.binary = Some((bytes, codec));
            }
            Scheme::Int8 => {
                let mut codes: Vec<i8> = Vec::with_capacity(rows * r.dims);
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    match col.data_type() {
                        DataType::FixedSizeBinary(_) => {
                            let a = col.as_fixed_size_binary();
                            for i in 0..a.len() {
                                codes.extend(a.value(i).iter().map(|&x| x as i8));
                            }
                        }
                        DataType::FixedSizeList(f, _) if f.data_type() == &DataType::Int8 => {
                            let a = col.as_fixed_size_list();
                            let v = a.values().as_primitive::<Int8Type>().values();
                            for i in 0..a.len() {
                                let s = a.value_offset(i) as usize;
                                codes.extend_from_slice(&v[s..s + r.dims]);
                            }
                        }
                        other => return exec_err!("{NAME}: unsupported int8 code type {other}"),
                    }
                }
                let cal = spec.calibration.as_ref().ok_or_else(need_cal)?;
                c.int8 = Some((codes, Int8Codec::new(cal)));
            }
            Scheme::Int4 => {
                let mut bytes = Vec::new();
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    fixed_bytes(col, "int4", &mut bytes)?;
                }
                let cal = spec.calibration.as_ref().ok_or_else(need_cal)?;
                c.int4 = Some((bytes, Int4Codec::new(cal)));
            }
            Scheme::F16 | Scheme::Bf16 => {
                let mut v = Vec::with_capacity(rows * r.dims);
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    let a = col.as_fixed_size_list();
                    let vals = a.values().as_primitive::<Float16Type>().values();
                    for i in 0..a.len() {
                        let s = a.value_offset(i) as usize;
                        v.extend_from_slice(&vals[s..s + r.dims]);
                    }
                }
                c.f16 = Some(v);
            }
            Scheme::Rabitq => {
                let mut bytes = Vec::new();
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    fixed_bytes(col, "rabitq", &mut bytes)?;
                }
                let cal = spec.calibration.as_ref().ok_or_else(need_cal)?;
                let codec =
                    embquant::RabitqCodec::new(cal, r.rabitq_rotation().map_err(|e| ext(NAME, e))?);
                c.rabitq = Some((bytes, codec));
            }
        }
    }
    if let Some(name) = &cols.float {
        let mut values = Vec::new();
        let mut dim = 0;
        let mut start = 0;
        for b in corpus {
            let col = truncated(column(b, name)?, spec.truncation)?;
            mark(&col, start, &mut valid);
            start += col.len();
            let v = Vectors::try_new(col.as_ref()).map_err(|e| ext(NAME, e))?;
            dim = v.dim();
            values.extend_from_slice(v.values());
        }
        if dims.is_some_and(|d| d != dim) && rows > 0 {
            return exec_err!(
                "{NAME}: the float column has {dim} dimensions, the codes {}",
                c.dim
            );
        }
        if c.dim == 0 {
            c.dim = dim;
        }
        c.floats = Some(Box::new(InMemoryFloats { values, dim }));
    }
    if valid.iter().any(|v| !v) {
        c.valid = Some(valid);
    }
    c.prepare();
    // Queries.
    let mut qvals: Vec<f32> = Vec::new();
    for b in queries {
        let col = crate::args::vector_arg(
            NAME,
            "queries",
            &datafusion::logical_expr::ColumnarValue::Array(Arc::clone(column(b, &cols.query)?)),
        )?;
        let Some(col) = col else { continue };
        let col = truncated(&col.array, spec.truncation)?;
        let v = Vectors::try_new(col.as_ref()).map_err(|e| ext(NAME, e))?;
        if v.null_count() > 0 {
            return exec_err!("{NAME}: NULL query vectors are not supported");
        }
        if v.dim() != c.dim {
            return exec_err!(
                "{NAME}: the queries have {} dimensions, the corpus {}",
                v.dim(),
                c.dim
            );
        }
        qvals.extend_from_slice(v.values());
    }
    let qids = ids(queries, cols.query_id.as_deref())?;
    let cids = ids(corpus, cols.id.as_deref())?;
    let results = if qvals.is_empty() || rows == 0 {
        vec![Vec::new(); qids.len()]
    } else {
        c.search(&qvals, spec.k, &spec.chain)
            .map_err(|e| ext(NAME, e))?
    };
    tracing::debug!(queries = qids.len(), rows, "tiered search done");
    results_batch(&results, &qids, &cids).map_err(|e| ext(NAME, e))
}
