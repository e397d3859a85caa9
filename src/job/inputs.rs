//! Inputs: discovery of Parquet files (files, directories, globs; symlink loops skipped),
//! their footers parsed once, and the progress callbacks of a job.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use crate::error::{Error, Result};

/// An input Parquet file, with its size and row count from the footer.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Path.
    pub path: PathBuf,
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

/// Reports progress (the CLI draws bars; the library logs nothing per batch).
pub trait Progress: Send + Sync {
    /// A phase starts (`calibrate`, `quantize`) over `rows` rows.
    fn begin(&self, _phase: &str, _rows: u64) {}
    /// `rows` more rows are done.
    fn advance(&self, _rows: u64) {}
    /// The phase is over.
    fn end(&self) {}
}

/// A seeded uniform sample of `n` of `total` row numbers, sorted (the calibration sample's
/// draw, also used for query samples).
pub fn sample_rows(total: u64, n: u64, seed: u64) -> Vec<u64> {
    super::segments::sample_indices(total, n, seed)
}

/// Progress that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Finds the input files: each pattern is a file, a directory (every `*.parquet` below it,
/// sorted) or a glob (sorted). Reads each footer for the row count; a file that is not
/// Parquet is an error naming it.
pub fn discover(patterns: &[String]) -> Result<Vec<InputFile>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for p in patterns {
        let path = Path::new(p);
        if path.is_file() {
            paths.push(path.to_path_buf());
        } else if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found, &mut std::collections::HashSet::new())?;
            found.sort();
            if found.is_empty() {
                return Err(Error::InvalidOption(format!(
                    "{p}: no .parquet files in this directory"
                )));
            }
            paths.extend(found);
        } else if p.contains(['*', '?', '[']) {
            let mut found: Vec<PathBuf> = glob::glob(p)
                .map_err(|e| Error::InvalidOption(format!("{p}: bad glob: {e}")))?
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::InvalidOption(format!(
                    "{p}: the glob matches no file"
                )));
            }
            paths.extend(found);
        } else {
            return Err(Error::io(
                p.clone(),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    paths
        .into_iter()
        .map(|path| {
            let file = File::open(&path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            let bytes = file
                .metadata()
                .map_err(|e| Error::io(path.display().to_string(), e))?
                .len();
            // arrow-ipc panics on some corrupt Arrow schemas in the footer: an error here.
            let not_parquet = |e: String| {
                Error::io(
                    format!("{}: not a readable Parquet file", path.display()),
                    std::io::Error::other(e),
                )
            };
            let footer = crate::panic_guard::guard(|| {
                ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
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
                bytes,
                rows,
                row_groups,
                footer: Some(Arc::new(footer)),
            })
        })
        .collect()
}

/// Collects the `.parquet` files below `dir`, following symlinks but entering each real
/// directory once (`seen`): a link back to an ancestor is skipped, not walked forever.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> Result<()> {
    let real = dir
        .canonicalize()
        .map_err(|e| Error::io(format!("resolving {}", dir.display()), e))?;
    if !seen.insert(real) {
        tracing::warn!(dir = %dir.display(), "skipped: a symlink to a directory already listed");
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for e in entries {
        let p = e
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?
            .path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out, seen)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}
