//! Writing the output: a temporary file or directory renamed into place when complete, and
//! the Parquet writer that rolls parts and writes the footer metadata.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::{summaries, InputFile, JobOptions};
use crate::error::{Error, Result};
use crate::io::{AtomicDir, AtomicFile};
use crate::metadata::{FileMetadata, InputLineage, Lineage, FILE_FORMAT_VERSION, METADATA_KEY};
use crate::quantizer::{QuantizedBatch, Quantizer};

/// The job's output while it is written: one file, or a directory of parts (see
/// [`crate::io`]): nothing appears at the target until [`TempOutput::commit`].
pub(super) enum TempOutput {
    File(AtomicFile),
    Dir(AtomicDir),
}

impl TempOutput {
    pub(super) fn new(target: &Path, dir: bool, overwrite: bool) -> Result<Self> {
        Ok(if dir {
            TempOutput::Dir(AtomicDir::create(target, overwrite)?)
        } else {
            TempOutput::File(AtomicFile::create(target)?.0)
        })
    }

    /// Where the writer writes: the temporary file, or the staging directory.
    pub(super) fn path(&self) -> &Path {
        match self {
            TempOutput::File(f) => f.path(),
            TempOutput::Dir(d) => d.path(),
        }
    }

    pub(super) fn commit(self, parts: &[PartInfo]) -> Result<()> {
        match self {
            TempOutput::File(f) => f.commit(),
            TempOutput::Dir(d) => d.commit(
                parts
                    .iter()
                    .filter_map(|p| p.path.file_name()?.to_str().map(str::to_string))
                    .collect(),
                parts.iter().map(|p| p.rows).sum(),
            ),
        }
    }
}

pub(super) enum ToWriter {
    Batch(QuantizedBatch),
    Finish,
}

pub(super) struct PartInfo {
    pub(super) path: PathBuf,
    pub(super) rows: u64,
    first_row: u64,
    pub(super) clipped: Vec<u64>,
    pub(super) vectors: u64,
}

/// Writes batches into one file, or rolls parts of `target_file_rows` rows.
pub(super) struct PartWriter {
    base: PathBuf,
    dir: bool,
    quantizer: Arc<Quantizer>,
    props: WriterProperties,
    target: Option<u64>,
    lineage: Lineage,
    current: Option<(ArrowWriter<File>, PartInfo)>,
    done: Vec<PartInfo>,
    rows: u64,
    row_group_rows: usize,
}

impl PartWriter {
    pub(super) fn new(
        base: PathBuf,
        dir: bool,
        quantizer: Arc<Quantizer>,
        opts: &JobOptions,
        inputs: &[InputFile],
    ) -> Self {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(opts.zstd_level).unwrap_or_default(),
            ))
            .set_dictionary_enabled(false)
            .set_max_row_group_row_count(Some(opts.row_group_rows.max(1)))
            // Small pages, so reading a few rows back (the float tier of search, with the page
            // index) decompresses ~64 KiB per row instead of a 1 MiB page.
            .set_data_page_size_limit(64 << 10)
            .set_created_by(format!("embquant {}", env!("CARGO_PKG_VERSION")))
            .build();
        PartWriter {
            base,
            dir,
            quantizer,
            props,
            target: opts.target_file_rows,
            lineage: Lineage {
                source_column: opts.quantize.column.clone(),
                inputs: inputs
                    .iter()
                    .map(|f| InputLineage {
                        path: f.path.display().to_string(),
                        bytes: f.bytes,
                        rows: f.rows,
                    })
                    .collect(),
                input_rows: inputs.iter().map(|f| f.rows).sum(),
                first_row: 0,
                part: None,
            },
            current: None,
            done: Vec::new(),
            rows: 0,
            row_group_rows: opts.row_group_rows.max(1),
        }
    }

    fn open(&mut self) -> Result<()> {
        let path = if self.dir {
            self.base
                .join(format!("part-{:05}.parquet", self.done.len()))
        } else {
            self.base.clone()
        };
        let f = File::create(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let w = ArrowWriter::try_new(f, self.quantizer.schema(), Some(self.props.clone()))?;
        let n = self.quantizer.recipes().len();
        let info = PartInfo {
            path,
            rows: 0,
            first_row: self.rows,
            clipped: vec![0; n],
            vectors: 0,
        };
        self.current = Some((w, info));
        Ok(())
    }

    pub(super) fn write(&mut self, b: QuantizedBatch) -> Result<()> {
        let mut batch = b.batch;
        // Clip counts are attributed to the part holding the batch's first row.
        let mut clipped = Some((b.clipped, b.vectors));
        while batch.num_rows() > 0 {
            if self.current.is_none() {
                self.open()?;
            }
            let (w, info) = self.current.as_mut().expect("open");
            let room = self.target.map_or(u64::MAX, |t| t - info.rows);
            let take = (batch.num_rows() as u64).min(room) as usize;
            // At most one row group per call: arrow's writer splits larger batches by
            // recursing once per row group, which tiny row groups turn into a stack overflow.
            for start in (0..take).step_by(self.row_group_rows) {
                let n = self.row_group_rows.min(take - start);
                w.write(&batch.slice(start, n))?;
            }
            info.rows += take as u64;
            self.rows += take as u64;
            if let Some((c, v)) = clipped.take() {
                info.clipped.iter_mut().zip(&c).for_each(|(a, b)| *a += b);
                info.vectors += v;
            }
            batch = batch.slice(take, batch.num_rows() - take);
            if self.target.is_some_and(|t| info.rows >= t) {
                self.close_current()?;
            }
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        let Some((mut w, info)) = self.current.take() else {
            return Ok(());
        };
        let meta = FileMetadata {
            format_version: FILE_FORMAT_VERSION,
            embquant_version: env!("CARGO_PKG_VERSION").to_string(),
            rows: info.rows,
            columns: summaries(&self.quantizer, &info.clipped, info.vectors),
            calibration: self.quantizer.calibration().clone(),
            lineage: Lineage {
                first_row: info.first_row,
                part: self.dir.then_some(self.done.len() as u32),
                ..self.lineage.clone()
            },
        };
        w.append_key_value_metadata(KeyValue::new(METADATA_KEY.to_string(), meta.to_json()?));
        w.close()?;
        self.done.push(info);
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Vec<PartInfo>> {
        if self.current.is_none() && self.done.is_empty() {
            self.open()?; // no rows: still write a (valid, empty) file with the schema
        }
        self.close_current()?;
        Ok(self.done)
    }
}
