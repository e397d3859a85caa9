//! Loading a corpus of embquant Parquet files for search: the code columns (found by their
//! embquant field metadata) into memory, the float column left on disk and read row by row
//! for the float tier.

use std::sync::Arc;

use arrow_array::Array;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection, RowSelector};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;

use super::build::CorpusBuilder;
pub use super::build::LoadedCorpus;
use super::layout::CodeLayout;
use super::tiered::{FloatRows, TierSpec};
use crate::codec::matryoshka::{truncate, MatryoshkaOptions};
use crate::error::{Error, Result};
use crate::job::InputFile;
use crate::metadata::Truncation;
use crate::vectors::Vectors;

/// Loads the code columns the `chain` needs from `files` (outputs of `embquant quantize`
/// of `column`) through [`CorpusBuilder`]; the float tier reads `column` from the files on
/// demand. Every file must carry the same recipes and calibration.
pub fn load_corpus(
    files: &[InputFile],
    column: &str,
    id_column: Option<&str>,
    chain: &[TierSpec],
) -> Result<LoadedCorpus> {
    if !files.is_empty() && files.iter().all(|f| f.rows == 0) {
        return Err(Error::EmptyCorpus {
            files: match files {
                [f] => f.path.display().to_string(),
                _ => format!("{} files from {}", files.len(), files[0].path.display()),
            },
        });
    }
    let mut first: Option<(CodeLayout, CorpusBuilder)> = None;
    for file in files {
        let ctx = |e: Error| e.in_file(file.path.display(), column);
        let reader = file.reader().map_err(ctx)?;
        let schema = reader.schema().clone();
        let layout = CodeLayout::from_schema(&schema, Some(column), chain).map_err(ctx)?;
        let builder = match &mut first {
            Some((l, b)) => {
                l.check_same(&layout).map_err(|e| {
                    ctx(Error::CalibrationMismatch(format!(
                        "{} (the first file: {})",
                        match e {
                            Error::CalibrationMismatch(m) => m,
                            e => e.to_string(),
                        },
                        files[0].path.display()
                    )))
                })?;
                b
            }
            None => {
                let b =
                    CorpusBuilder::new(layout.clone(), &schema, id_column, false).map_err(ctx)?;
                &mut first.insert((layout.clone(), b)).1
            }
        };
        let mut proj: Vec<usize> = layout.codes.iter().map(|(i, _)| *i).collect();
        if let Some(name) = id_column {
            proj.push(crate::vectors::column_index(&schema, name).map_err(ctx)?);
        }
        let mask = ProjectionMask::roots(reader.parquet_schema(), proj);
        let batches = reader
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(|e| ctx(e.into()))?;
        let mut file_row = 0u64;
        for batch in batches {
            let batch = batch.map_err(|e| ctx(e.into()))?;
            builder.push(&batch, file_row).map_err(ctx)?;
            file_row += batch.num_rows() as u64;
        }
    }
    let (layout, builder) = first.ok_or_else(|| Error::empty_input("search", "no corpus files"))?;
    match layout.float {
        Some(_) => {
            let dim = match layout.dims() {
                Some(d) => d,
                None => float_dims(&files[0], column)?,
            };
            let floats = ParquetFloats::new(files.to_vec(), column, layout.truncation);
            builder.finish_with(Some(Box::new(floats)), dim)
        }
        None => builder.finish_with(None, 0),
    }
}

fn float_dims(file: &InputFile, column: &str) -> Result<usize> {
    let schema = file.schema()?;
    let idx = crate::vectors::vector_column(&schema, column)?;
    crate::vectors::fixed_dims(schema.field(idx).data_type())
        .ok_or_else(|| Error::Schema("the float tier needs a FixedSizeList float column".into()))
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
                let opts =
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
                let builder = file.reader_with(opts).map_err(ctx)?;
                let idx =
                    crate::vectors::vector_column(builder.schema(), &self.column).map_err(ctx)?;
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
