//! Inputs: Parquet files found through a [`Store`], their footers parsed once, and the one
//! way every reader of the workspace opens them ([`InputFile::reader`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use super::source::{LocalStore, SourceBytes, Store};
use crate::error::{Error, Result};

/// An input Parquet file, with its size and row count from the footer.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Path within its store.
    pub path: PathBuf,
    /// The store holding it.
    pub store: Arc<dyn Store>,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows.
    pub rows: u64,
    /// Rows of each row group.
    pub row_groups: Vec<u64>,
    /// The parsed footer, shared by every reader of the file (None: parsed per reader).
    pub footer: Option<Arc<ArrowReaderMetadata>>,
}

impl PartialEq for InputFile {
    fn eq(&self, other: &Self) -> bool {
        (&self.path, self.bytes, self.rows, &self.row_groups)
            == (&other.path, other.bytes, other.rows, &other.row_groups)
    }
}
impl Eq for InputFile {}

impl InputFile {
    /// The file's bytes.
    pub fn open(&self) -> Result<SourceBytes> {
        Ok(SourceBytes(self.store.open(&self.path)?))
    }

    /// A Parquet reader of the file (page by page, bounded memory), its footer parsed once
    /// by [`discover`] and shared by every reader.
    pub fn reader(&self) -> Result<ParquetRecordBatchReaderBuilder<SourceBytes>> {
        let bytes = self.open()?;
        Ok(match &self.footer {
            Some(meta) => {
                ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, (**meta).clone())
            }
            None => ParquetRecordBatchReaderBuilder::try_new(bytes)?,
        })
    }

    /// [`InputFile::reader`] with reader options (e.g. the page index, which the shared
    /// footer does not load).
    pub fn reader_with(
        &self,
        options: ArrowReaderOptions,
    ) -> Result<ParquetRecordBatchReaderBuilder<SourceBytes>> {
        Ok(ParquetRecordBatchReaderBuilder::try_new_with_options(
            self.open()?,
            options,
        )?)
    }

    /// The file's Arrow schema.
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(match &self.footer {
            Some(meta) => meta.schema().clone(),
            None => self.reader()?.schema().clone(),
        })
    }
}

/// Finds the input files on the local file system: each pattern is a file, a directory
/// (every `*.parquet` below it, sorted) or a glob (sorted). Reads each footer for the row
/// count; a file that is not Parquet is an error naming it.
pub fn discover(patterns: &[String]) -> Result<Vec<InputFile>> {
    discover_in(Arc::new(LocalStore), patterns)
}

/// One local Parquet file (no directory or glob expansion), its footer read.
pub fn open_file(path: &Path) -> Result<InputFile> {
    footer(Arc::new(LocalStore), path.to_path_buf())
}

/// [`discover`] in `store`.
pub fn discover_in(store: Arc<dyn Store>, patterns: &[String]) -> Result<Vec<InputFile>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for p in patterns {
        paths.extend(store.expand(p)?);
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(store.identity(p)));
    paths
        .into_iter()
        .map(|path| footer(Arc::clone(&store), path))
        .collect()
}

/// Reads the footer of `path`, checking its row counts.
fn footer(store: Arc<dyn Store>, path: PathBuf) -> Result<InputFile> {
    let source = store.open(&path)?;
    let bytes = source.len();
    // arrow-ipc panics on some corrupt Arrow schemas in the footer: an error here.
    let not_parquet = |e: String| {
        Error::io(
            format!("{}: not a readable Parquet file", path.display()),
            std::io::Error::other(e),
        )
    };
    let footer = crate::panic_guard::guard(|| {
        ArrowReaderMetadata::load(&SourceBytes(source), ArrowReaderOptions::new())
    })
    .map_err(not_parquet)?
    .map_err(|e| not_parquet(e.to_string()))?;
    let meta = footer.metadata();
    let bad = |what: String| {
        Error::io(
            format!("{}: {what}", path.display()),
            std::io::Error::from(std::io::ErrorKind::InvalidData),
        )
    };
    let rows = u64::try_from(meta.file_metadata().num_rows())
        .map_err(|_| bad("the footer gives a negative row count".into()))?;
    let row_groups: Vec<u64> = meta
        .row_groups()
        .iter()
        .map(|g| u64::try_from(g.num_rows()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("a row group has a negative row count".into()))?;
    let sum = row_groups.iter().try_fold(0u64, |a, &b| a.checked_add(b));
    if sum != Some(rows) {
        return Err(bad(format!(
            "the footer says {rows} rows, its row groups hold {sum:?}"
        )));
    }
    Ok(InputFile {
        path,
        store,
        bytes,
        rows,
        row_groups,
        footer: Some(Arc::new(footer)),
    })
}
