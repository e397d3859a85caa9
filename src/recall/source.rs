//! The corpus's float vectors as the recall report reads them: in passes, a block of rows at
//! a time, from memory or streamed from Parquet. The report holds codes, never the float
//! column: ground truth, calibration and encoding each stream it, and the float tier reads
//! just its candidate rows.

use std::sync::Arc;

use parquet::arrow::ProjectionMask;

use crate::codec::matryoshka::truncate_slice;
use crate::error::{Error, Result};
use crate::io::dense::{read_dense, DenseColumn};
use crate::job::InputFile;
use crate::metadata::Truncation;
use crate::search::floats::{rows_of, visit_rows};
use crate::search::load::ParquetFloats;
use crate::search::tiered::FloatRows;
use crate::vectors::Vectors;

/// Rows per block of the report's passes over the corpus: a multiple of the ground truth's
/// and the statistics' own blocks, so a streamed pass computes exactly what one call over
/// the whole corpus does.
pub const SCAN_ROWS: usize = 32 * 1024;

/// Row-major float vectors read block by block, in row order, as often as needed.
pub trait ScanRows: Send + Sync {
    /// Rows.
    fn rows(&self) -> usize;
    /// Dimension.
    fn dim(&self) -> usize;
    /// `valid[r]` is false for null rows (None: every row is valid).
    fn valid(&self) -> Option<&[bool]>;
    /// Calls `f(first, values)` for consecutive blocks of `block_rows` rows (the last may be
    /// shorter) starting at row `first`, in row order. Null rows hold zeros.
    fn scan(&self, block_rows: usize, f: &mut dyn FnMut(usize, &[f32]) -> Result<()>)
        -> Result<()>;
}

/// A corpus the report can measure: scanned in blocks, with the float tier's rows on demand.
pub trait VectorSource: ScanRows {
    /// The float tier's rows, cut to their first `keep` dimensions and re-normalized when
    /// `keep` is given (a Matryoshka prefix).
    fn floats(&self, keep: Option<usize>) -> Box<dyn FloatRows>;
}

/// [`ScanRows::scan`] with every block cut to its first `keep` dimensions, re-normalized (the
/// whole vectors when `keep` is None).
pub fn scan_prefix(
    source: &dyn ScanRows,
    keep: Option<usize>,
    block_rows: usize,
    f: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
) -> Result<()> {
    let dim = source.dim();
    match keep {
        Some(d) if d < dim => source.scan(block_rows, &mut |first, values| {
            f(
                first,
                &prefix(values, dim, d).map_err(|e| e.offset_rows(first as u64))?,
            )
        }),
        _ => source.scan(block_rows, f),
    }
}

/// The first `keep` dimensions of every row, re-normalized.
pub(crate) fn prefix(values: &[f32], dim: usize, keep: usize) -> Result<Vec<f32>> {
    let mut out = vec![0f32; values.len() / dim * keep];
    truncate_slice(values, dim, &mut out, keep, true).map_err(|row| {
        let x = &values[row * dim..row * dim + keep];
        let d = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
        Error::NonFinite {
            row,
            dim: d,
            value: x[d] as f64,
        }
    })?;
    Ok(out)
}

/// Borrowed row-major float vectors.
pub(crate) struct SliceRows<'a> {
    pub values: &'a [f32],
    pub dim: usize,
    pub valid: Option<&'a [bool]>,
}

impl ScanRows for SliceRows<'_> {
    fn rows(&self) -> usize {
        self.values.len() / self.dim.max(1)
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn valid(&self) -> Option<&[bool]> {
        self.valid
    }
    fn scan(
        &self,
        block_rows: usize,
        f: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        scan_slice(self.values, self.dim, block_rows, f)
    }
}

fn scan_slice(
    values: &[f32],
    dim: usize,
    block_rows: usize,
    f: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
) -> Result<()> {
    let block_rows = block_rows.max(1);
    for (b, block) in values.chunks(block_rows * dim.max(1)).enumerate() {
        f(b * block_rows, block)?;
    }
    Ok(())
}

/// Float vectors in memory, shared (the float tier reads them without a copy).
#[derive(Debug, Clone)]
pub struct MemorySource {
    values: Arc<Vec<f32>>,
    dim: usize,
    valid: Option<Vec<bool>>,
}

impl MemorySource {
    /// Row-major `values`, `dim` per row; `valid[r]` false for null rows (whose values must be
    /// zeros).
    pub fn new(values: Vec<f32>, dim: usize, valid: Option<Vec<bool>>) -> Result<Self> {
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                context: "corpus".into(),
                expected: dim,
                found: if dim == 0 {
                    values.len()
                } else {
                    values.len() % dim
                },
            });
        }
        if valid
            .as_ref()
            .is_some_and(|v| v.len() * dim != values.len())
        {
            return Err(Error::bad_argument(
                "valid",
                "the validity of the corpus rows has another length than the corpus",
            ));
        }
        Ok(MemorySource {
            values: Arc::new(values),
            dim,
            valid,
        })
    }
}

impl ScanRows for MemorySource {
    fn rows(&self) -> usize {
        self.values.len() / self.dim
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn valid(&self) -> Option<&[bool]> {
        self.valid.as_deref()
    }
    fn scan(
        &self,
        block_rows: usize,
        f: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        scan_slice(&self.values, self.dim, block_rows, f)
    }
}

impl VectorSource for MemorySource {
    fn floats(&self, keep: Option<usize>) -> Box<dyn FloatRows> {
        Box::new(MemoryFloats {
            values: self.values.clone(),
            dim: self.dim,
            keep: keep.filter(|&k| k < self.dim),
        })
    }
}

/// The float tier over a [`MemorySource`]'s rows (a prefix cut per run of rows).
struct MemoryFloats {
    values: Arc<Vec<f32>>,
    dim: usize,
    keep: Option<usize>,
}

impl FloatRows for MemoryFloats {
    fn visit(&self, rows: &[u32], f: &mut dyn FnMut(usize, &[f32]) -> Result<()>) -> Result<()> {
        match self.keep {
            None => visit_rows(&self.values, self.dim, rows, &Ok, f),
            Some(k) => visit_rows(
                &self.values,
                self.dim,
                rows,
                &|v| prefix(&v, self.dim, k),
                f,
            ),
        }
    }

    fn fetch(&self, rows: &[u32]) -> Result<Vec<f32>> {
        match self.keep {
            None => Ok(rows_of(&self.values, self.dim, rows)),
            Some(k) => prefix(&rows_of(&self.values, self.dim, rows), self.dim, k),
        }
    }
}

/// Appends row `r` of `v` to `out`: its values, or zeros for a null row (whatever the
/// column holds under it).
pub(crate) fn push_row(v: &Vectors<'_>, r: usize, out: &mut Vec<f32>) {
    if v.is_valid(r) {
        out.extend_from_slice(v.row(r));
    } else {
        out.resize(out.len() + v.dim(), 0.0);
    }
}

/// Rows per batch read from Parquet.
const BATCH_ROWS: usize = 8192;

/// Calls `f(first_row, vectors)` for every batch of `column` in `files` (in order, rows
/// numbered across the files). Checks that every batch has one dimension and, when
/// `check_finite`, that no valid row holds a NaN or infinity; errors name file, column and
/// row.
pub fn read_batches(
    files: &[InputFile],
    column: &str,
    check_finite: bool,
    f: &mut dyn FnMut(u64, &Vectors<'_>) -> Result<()>,
) -> Result<()> {
    let mut dim = 0usize;
    let mut start = 0u64;
    for file in files {
        let ctx = |e: Error| e.in_file(file.path.display(), column);
        let b = file.reader().map_err(ctx)?;
        let idx = crate::vectors::vector_column(b.schema(), column).map_err(ctx)?;
        let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
        let reader = b
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| ctx(e.into()))?;
        let mut row = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| ctx(e.into()))?;
            let col = batch.column(0);
            let v = Vectors::try_new(col.as_ref()).map_err(|e| ctx(e.offset_rows(row)))?;
            if dim == 0 {
                dim = v.dim();
            } else if !v.is_empty() && v.dim() != dim {
                return Err(ctx(Error::DimensionMismatch {
                    context: format!("rows from {row}"),
                    expected: dim,
                    found: v.dim(),
                }));
            }
            if check_finite {
                if let Some(bad) =
                    (0..v.len()).find(|&r| v.is_valid(r) && v.row(r).iter().any(|x| !x.is_finite()))
                {
                    v.find_non_finite(bad..bad + 1)
                        .map_err(|e| ctx(e.offset_rows(row)))?;
                }
            }
            f(start + row, &v)?;
            row += v.len() as u64;
        }
        start += row;
    }
    Ok(())
}

/// The float column of Parquet files, streamed on every pass (one block in memory).
pub struct ParquetSource {
    files: Vec<InputFile>,
    column: String,
    rows: usize,
    dim: usize,
    valid: Option<Vec<bool>>,
}

impl ParquetSource {
    /// Opens `column` of `files`: one pass checks every row (dimension, NaN or infinity:
    /// errors name file, column and row) and records which rows are null.
    pub fn open(files: Vec<InputFile>, column: &str) -> Result<Self> {
        let mut valid = Vec::new();
        let mut dim = 0usize;
        for file in &files {
            let ctx = |e: Error| e.in_file(file.path.display(), column);
            if let Some(dense) = DenseColumn::of(file, column).map_err(ctx)? {
                if dim != 0 && dense.dim != dim {
                    return Err(ctx(Error::DimensionMismatch {
                        context: "rows from 0".into(),
                        expected: dim,
                        found: dense.dim,
                    }));
                }
                dim = dense.dim;
                let start = valid.len();
                let mut buf = Vec::new();
                let mut check = |b: &mut Vec<f32>| {
                    if let Some(i) = b.iter().position(|x| !x.is_finite()) {
                        let row = valid.len() - start + i / dim;
                        return Err(ctx(Error::NonFinite {
                            row,
                            dim: i % dim,
                            value: b[i] as f64,
                        }));
                    }
                    valid.resize(valid.len() + b.len() / dim, true);
                    b.clear();
                    Ok(())
                };
                read_dense(file, dense, SCAN_ROWS, &mut buf, &mut check).map_err(ctx)?;
                check(&mut buf)?;
                continue;
            }
            read_batches(std::slice::from_ref(file), column, true, &mut |_, v| {
                if !v.is_empty() {
                    if dim == 0 {
                        dim = v.dim();
                    } else if v.dim() != dim {
                        return Err(Error::DimensionMismatch {
                            context: format!("{}: column {column:?}", file.path.display()),
                            expected: dim,
                            found: v.dim(),
                        });
                    }
                }
                valid.extend((0..v.len()).map(|r| v.is_valid(r)));
                Ok(())
            })?;
        }
        if u32::try_from(valid.len()).is_err() {
            return Err(Error::bad_argument(
                "corpus",
                format!(
                    "the corpus has {} rows; the recall report handles up to {}",
                    valid.len(),
                    u32::MAX
                ),
            ));
        }
        Ok(ParquetSource {
            rows: valid.len(),
            files,
            column: column.to_string(),
            dim,
            valid: valid.iter().any(|v| !v).then_some(valid),
        })
    }
}

impl ScanRows for ParquetSource {
    fn rows(&self) -> usize {
        self.rows
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn valid(&self) -> Option<&[bool]> {
        self.valid.as_deref()
    }
    fn scan(
        &self,
        block_rows: usize,
        f: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let (dim, block_rows) = (self.dim, block_rows.max(1));
        // Decoding (one thread) runs a block ahead of `f`, which usually runs on rayon: two
        // blocks in memory at most besides the one `f` holds.
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(usize, Vec<f32>)>>(1);
            s.spawn(move || {
                let mut buf: Vec<f32> = Vec::with_capacity(block_rows * dim);
                let mut first = 0usize;
                let mut send = |buf: &mut Vec<f32>| {
                    let next = Vec::with_capacity(block_rows * dim);
                    let block = std::mem::replace(buf, next);
                    tx.send(Ok((first, block))).map_err(|_| Error::Cancelled)?;
                    first += block_rows;
                    Ok(())
                };
                // Each file densely when it qualifies (no nulls possible), through Arrow
                // otherwise; blocks run across files either way.
                let read = self.files.iter().try_for_each(|file| {
                    let col = &self.column;
                    match DenseColumn::of(file, col)
                        .map_err(|e| e.in_file(file.path.display(), col))?
                    {
                        Some(dense) => read_dense(file, dense, block_rows, &mut buf, &mut send)
                            .map_err(|e| e.in_file(file.path.display(), col)),
                        None => {
                            read_batches(std::slice::from_ref(file), col, false, &mut |_, v| {
                                for r in 0..v.len() {
                                    push_row(v, r, &mut buf);
                                    if buf.len() == block_rows * dim {
                                        send(&mut buf)?;
                                    }
                                }
                                Ok(())
                            })
                        }
                    }
                });
                let last = match read {
                    Ok(()) if buf.is_empty() => return,
                    Ok(()) => Ok((first, buf)),
                    Err(e) => Err(e),
                };
                // The receiver has gone only when `f` failed; its error is the one reported.
                let _ = tx.send(last);
            });
            for block in rx {
                let (first, values) = block?;
                f(first, &values)?;
            }
            Ok(())
        })
    }
}

impl VectorSource for ParquetSource {
    fn floats(&self, keep: Option<usize>) -> Box<dyn FloatRows> {
        Box::new(ParquetFloats::new(
            self.files.clone(),
            &self.column,
            keep.filter(|&k| k < self.dim).map(|dims| Truncation {
                dims,
                normalized: true,
            }),
        ))
    }
}
