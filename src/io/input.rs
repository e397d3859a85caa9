//! Inputs: Parquet files found through a [`Store`], their footers parsed once, and the one
//! way every reader of the workspace opens them ([`InputFile::reader`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use super::location::Location;
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

/// Finds the input files: each pattern is a local file, directory (every `*.parquet` below
/// it, sorted) or glob (sorted), or the same in an object store named by a URL (`s3://`,
/// `gs://`, `az://`, `abfss://`, `memory://`; `file://` is a local path). Reads each footer
/// for the row count; a file that is not Parquet is an error naming it.
pub fn discover(patterns: &[String]) -> Result<Vec<InputFile>> {
    expand_all(patterns, store_of)
}

/// One Parquet file (no directory or glob expansion), local or at a URL, its footer read.
pub fn open_file(path: &Path) -> Result<InputFile> {
    let (store, p) = store_of(&path.to_string_lossy())?;
    footer(store, PathBuf::from(p))
}

/// The whole of a small object (a calibration JSON, say), local or at a URL. Objects over
/// 256 MiB are refused: this is not a way to read data files.
pub fn read_object(path: &str) -> Result<Vec<u8>> {
    const MAX: u64 = 256 << 20;
    let (store, p) = store_of(path)?;
    let src = store.open(Path::new(&p))?;
    if src.len() > MAX {
        return Err(Error::bad_argument(
            "file",
            format!(
                "{path}: {} bytes; expected a small file (at most {MAX})",
                src.len()
            ),
        ));
    }
    let mut buf = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut buf)
        .map_err(|e| Error::io(format!("reading {path}"), e))?;
    Ok(buf)
}

/// [`read_object`] as UTF-8 text.
pub fn read_object_to_string(path: &str) -> Result<String> {
    String::from_utf8(read_object(path)?).map_err(|e| {
        Error::io(
            format!("reading {path}"),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// [`discover`] in `store`.
pub fn discover_in(store: Arc<dyn Store>, patterns: &[String]) -> Result<Vec<InputFile>> {
    expand_all(patterns, |p| Ok((Arc::clone(&store), p.to_string())))
}

/// Expands each pattern in the store `route` gives it, drops paths naming an object
/// already listed, then reads every footer.
fn expand_all(
    patterns: &[String],
    route: impl Fn(&str) -> Result<(Arc<dyn Store>, String)>,
) -> Result<Vec<InputFile>> {
    let mut found: Vec<(Arc<dyn Store>, PathBuf)> = Vec::new();
    for p in patterns {
        let (store, pattern) = route(p)?;
        let paths = store.expand(&pattern)?;
        found.extend(paths.into_iter().map(|f| (Arc::clone(&store), f)));
    }
    let mut seen = std::collections::HashSet::new();
    found
        .into_iter()
        .filter(|(store, p)| seen.insert(store.identity(p)))
        .map(|(store, path)| footer(store, path))
        .collect()
}

/// The store a path or URL names, and the pattern to expand in it: a plain path as written,
/// the path a `file:` URL names, or an object URL normalized ([`Location::parse`]).
pub fn store_of(pattern: &str) -> Result<(Arc<dyn Store>, String)> {
    match Location::parse(pattern)? {
        Location::Local(p) => {
            let p = p.into_os_string().into_string().map_err(|p| {
                Error::bad_argument("input", format!("{pattern}: the path {p:?} is not UTF-8"))
            })?;
            Ok((Arc::new(LocalStore), p))
        }
        #[cfg(feature = "cloud")]
        Location::Object(o) => {
            let url = o.url();
            Ok((super::object::store_for(&url)? as Arc<dyn Store>, url))
        }
        #[cfg(not(feature = "cloud"))]
        Location::Object(_) => Err(Error::store_config(
            pattern,
            "object-store URLs need embquant built with the `cloud` feature",
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_local_paths_and_paths_stay_as_written() {
        let local = |p: &str| store_of(p).unwrap().1;
        assert_eq!(
            local("file:///data/my%20embeddings/a.parquet"),
            "/data/my embeddings/a.parquet"
        );
        assert_eq!(local("file://localhost/data/a.parquet"), "/data/a.parquet");
        assert_eq!(local("data/a%20b.parquet"), "data/a%20b.parquet");
        assert_eq!(
            local("file:///x/%zz.parquet"),
            "/x/%zz.parquet",
            "a malformed escape is kept"
        );
        // A file:// URL is discovered like the path it names.
        let dir = tempfile::tempdir().unwrap();
        let e = discover(&[format!("file://{}/missing.parquet", dir.path().display())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.parquet"), "{e}");
    }
}
