//! Byte sources: the random-access bytes every Parquet read goes through.
//!
//! [`ByteSource`] is one stored object (a local file here; a ranged-GET object-store
//! backend implements the same trait), [`Store`] lists and opens objects by path, and
//! [`SourceBytes`] adapts a source to the Parquet reader (`ChunkReader`), so a new backend
//! changes no caller.

use std::fmt;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::reader::{ChunkReader, Length};

use crate::error::{Error, Result};

/// Random-access bytes of one stored object.
pub trait ByteSource: Send + Sync + fmt::Debug {
    /// Size in bytes.
    fn len(&self) -> u64;

    /// Whether the object is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset..offset + buf.len()` (an error past the end).
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;

    /// The bytes of `offset..offset + len` (a backend may serve them without a copy).
    fn get(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let mut v = vec![0u8; len];
        self.read_exact_at(offset, &mut v)?;
        Ok(v.into())
    }
}

/// Where objects live: lists the objects a pattern names and opens them.
pub trait Store: Send + Sync + fmt::Debug {
    /// The objects `pattern` names, sorted: one file, every `*.parquet` below a directory
    /// (or prefix), or the matches of a glob. An error when there are none.
    fn expand(&self, pattern: &str) -> Result<Vec<PathBuf>>;

    /// Opens the object at `path`.
    fn open(&self, path: &Path) -> Result<Arc<dyn ByteSource>>;

    /// A key that is equal for two paths naming the same object (duplicates are read once).
    fn identity(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
}

/// A local file.
#[derive(Debug)]
pub struct LocalFile {
    file: std::fs::File,
    len: u64,
}

/// Why embquant refuses an input that is not a regular file.
const READ_RULE: &str =
    "embquant reads only regular files (a FIFO or a device could block or never end)";

fn not_regular(path: &Path, ft: &std::fs::FileType) -> Error {
    Error::NotRegularFile {
        path: path.display().to_string(),
        kind: super::atomic::kind_of(ft),
        rule: READ_RULE,
    }
}

/// What `path` is (symlinks followed): its metadata if it is a regular file or a
/// directory, [`Error::NotRegularFile`] for a FIFO, a socket or a device.
fn regular_or_dir(path: &Path) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if super::atomic::is_link_loop(&e) {
            Error::NotRegularFile {
                path: path.display().to_string(),
                kind: "a symlink loop (or a chain of more than 40 links)",
                rule: READ_RULE,
            }
        } else {
            Error::io(format!("opening {}", path.display()), e)
        }
    })?;
    if meta.is_file() || meta.is_dir() {
        Ok(meta)
    } else {
        Err(not_regular(path, &meta.file_type()))
    }
}

/// Opens `path` for reading only if it is a regular file (symlinks followed): a FIFO, a
/// socket, a device or a directory is refused with [`Error::NotRegularFile`], without
/// blocking (a FIFO is opened with `O_NONBLOCK` should it appear between the check and the
/// open, and checked again on the open descriptor).
pub(crate) fn open_regular(path: &Path) -> Result<std::fs::File> {
    let meta = regular_or_dir(path)?;
    if meta.is_dir() {
        return Err(not_regular(path, &meta.file_type()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor `file` owns and keeps open; F_GETFL/F_SETFL only
        // read and set its status flags.
        let cleared = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
        };
        if !cleared {
            return Err(Error::io(
                format!("opening {}", path.display()),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(file)
}

impl LocalFile {
    /// Opens `path`, a regular file (symlinks followed): a FIFO, a socket, a device or a
    /// directory is refused ([`Error::NotRegularFile`]), not waited on.
    pub fn open(path: &Path) -> Result<Self> {
        let file = open_regular(path)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path.display().to_string(), e))?
            .len();
        Ok(LocalFile { file, len })
    }
}

impl ByteSource for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(not(unix))]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        // No positional read: a clone of the handle, seeked (as parquet's own File reader).
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

/// The local file system: files, directories (every `*.parquet` below, symlinks followed,
/// each real directory once, hidden entries skipped) and globs (regular files only; hidden
/// entries only where the pattern spells the dot; `**` follows symlinks but enters each
/// real directory once; at most `MAX_GLOB_ENTRIES` entries visited).
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalStore;

impl Store for LocalStore {
    fn expand(&self, pattern: &str) -> Result<Vec<PathBuf>> {
        let path = Path::new(pattern);
        // A FIFO, socket or device is refused (a path, not a glob: it exists).
        let meta = match regular_or_dir(path) {
            Ok(m) => Some(m),
            Err(e @ Error::NotRegularFile { .. }) => return Err(e),
            Err(_) => None,
        };
        if meta.as_ref().is_some_and(|m| m.is_file()) {
            return Ok(vec![path.to_path_buf()]);
        }
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            let mut found = Vec::new();
            walk(path, &mut found, &mut std::collections::HashSet::new())?;
            found.sort();
            if found.is_empty() {
                return Err(Error::io(
                    pattern,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no .parquet files in this directory",
                    ),
                ));
            }
            return Ok(found);
        }
        if pattern.contains(['*', '?', '[']) {
            let found = expand_glob(pattern, MAX_GLOB_ENTRIES)?;
            if found.is_empty() {
                return Err(Error::io(
                    pattern,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "the glob matches no file"),
                ));
            }
            return Ok(found);
        }
        Err(Error::io(
            pattern,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn ByteSource>> {
        Ok(Arc::new(LocalFile::open(path)?))
    }

    fn identity(&self, path: &Path) -> PathBuf {
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The most entries one glob may visit (directory entries a `**` walk lists, or paths the
/// glob crate yields): beyond it the glob is refused ([`Error::BadArgument`]) instead of
/// growing without bound (a `**` over a huge tree).
pub const MAX_GLOB_ENTRIES: usize = 1_000_000;

/// How globs match: `*`, `?` and `[...]` never match a `/`, and a name starting with `.`
/// (a hidden entry, a temporary output `.NAME.embquant-tmp-...`) only where the pattern
/// spells the dot, as a directory input skips hidden entries.
const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// The regular files (symlinks followed) `pattern` matches, sorted; at most `bound` entries
/// are visited (more: [`Error::BadArgument`] naming the pattern and the bound). A
/// pattern with `**` is expanded by [`walk_glob`], which enters each real directory once;
/// others (whose depth the pattern bounds) by the glob crate. FIFOs, sockets and devices
/// are never opened, only `stat`ed, and not returned.
fn expand_glob(pattern: &str, bound: usize) -> Result<Vec<PathBuf>> {
    let mut found = if pattern.contains("**") {
        walk_glob(pattern, bound)?
    } else {
        let paths = glob::glob_with(pattern, GLOB_OPTIONS)
            .map_err(|e| Error::bad_argument("glob", format!("{pattern}: bad glob: {e}")))?;
        let mut found = Vec::new();
        for (i, r) in paths.enumerate() {
            if i >= bound {
                return Err(too_many(pattern, bound));
            }
            match r {
                Ok(p) if p.is_file() => found.push(p),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "glob: skipped an unreadable directory"),
            }
        }
        found
    };
    found.sort();
    Ok(found)
}

fn too_many(pattern: &str, bound: usize) -> Error {
    Error::bad_argument(
        "glob",
        format!("{pattern}: the glob reaches more than {bound} entries; name a narrower pattern"),
    )
}

/// Expands a glob with `**` by walking the directory before its first wildcard component
/// (the literal prefix; the current directory if there is none) and matching the path of
/// each regular file below it, relative to that directory, against the rest of the
/// pattern. Symlinks are followed, but each real directory is entered once (the first
/// spelling in sorted order wins), so a link back to an ancestor ends the walk instead of
/// looping: every real directory's entries are listed once, and a file appears once per
/// directory entry naming it (a symlinked file is listed under its own name too, as in a
/// directory input; readers open one object once, see [`Store::identity`]). Hidden entries
/// are skipped unless the pattern spells a component starting with `.`. At most `bound`
/// directory entries are visited.
fn walk_glob(pattern: &str, bound: usize) -> Result<Vec<PathBuf>> {
    let first = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let (base, rest) = match pattern[..first].rfind(std::path::is_separator) {
        Some(0) => (&pattern[..1], &pattern[1..]),
        Some(i) => (&pattern[..i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    let matcher = glob::Pattern::new(rest)
        .map_err(|e| Error::bad_argument("glob", format!("{pattern}: bad glob: {e}")))?;
    let dots = rest
        .split(std::path::is_separator)
        .any(|c| c.starts_with('.'));
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    let mut visited = 0usize;
    // (the directory as spelled from the pattern, its path relative to `base`)
    let mut todo = vec![(PathBuf::from(base), String::new())];
    while let Some((dir, rel)) = todo.pop() {
        let listed = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        let real = match listed.canonicalize() {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(dir = %listed.display(), error = %e, "glob: skipped a directory that cannot be resolved");
                continue;
            }
        };
        if !seen.insert(real) {
            tracing::warn!(dir = %listed.display(), "skipped: a symlink to a directory already listed");
            continue;
        }
        let entries = match std::fs::read_dir(listed) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(dir = %listed.display(), error = %e, "glob: skipped an unreadable directory");
                continue;
            }
        };
        let mut names = Vec::new();
        for e in entries {
            visited += 1;
            if visited > bound {
                return Err(too_many(pattern, bound));
            }
            let Ok(e) = e else { continue };
            // A name that is not UTF-8 cannot match a (UTF-8) pattern.
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if dots || !name.starts_with('.') {
                names.push(name);
            }
        }
        // Reversed: the stack then enters directories in sorted order.
        names.sort_unstable_by(|a, b| b.cmp(a));
        for name in names {
            let path = dir.join(&name);
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            // `stat` only: a FIFO or a device is never opened.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => todo.push((path, rel)),
                Ok(m) if m.is_file() && matcher.matches_with(&rel, GLOB_OPTIONS) => {
                    found.push(path)
                }
                _ => {}
            }
        }
    }
    Ok(found)
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

/// A [`ByteSource`] as the Parquet reader's `ChunkReader`.
#[derive(Debug, Clone)]
pub struct SourceBytes(pub Arc<dyn ByteSource>);

impl Length for SourceBytes {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

/// Reads a [`ByteSource`] sequentially from an offset (page headers).
pub struct SourceRead {
    source: Arc<dyn ByteSource>,
    pos: u64,
}

impl Read for SourceRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.source.len().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.source.read_exact_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ChunkReader for SourceBytes {
    type T = BufReader<SourceRead>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(BufReader::new(SourceRead {
            source: Arc::clone(&self.0),
            pos: start,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        Ok(self.0.get(start, length)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes in memory, counting the reads: a stand-in for a remote backend.
    #[derive(Debug)]
    struct Counted(Vec<u8>, std::sync::atomic::AtomicUsize);

    impl ByteSource for Counted {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let o = offset as usize;
            let src = self
                .0
                .get(o..o + buf.len())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    #[test]
    fn parquet_reads_through_any_byte_source() {
        use arrow_array::{Int64Array, RecordBatch};
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::arrow::ArrowWriter;
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from_iter_values(0..10_000)) as _,
        )])
        .unwrap();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let src = Arc::new(Counted(buf, Default::default()));
        let reader = ParquetRecordBatchReaderBuilder::try_new(SourceBytes(src.clone()))
            .unwrap()
            .build()
            .unwrap();
        let got: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>().unwrap();
        assert_eq!(
            arrow_select::concat::concat_batches(&batch.schema(), &got).unwrap(),
            batch
        );
        assert!(src.1.load(std::sync::atomic::Ordering::Relaxed) > 0);
        // Reads past the end are errors, not short reads.
        let mut b = [0u8; 4];
        assert_eq!(
            src.read_exact_at(src.len() - 2, &mut b)
                .map_err(|e| e.kind()),
            Err(std::io::ErrorKind::UnexpectedEof)
        );
    }

    #[cfg(unix)]
    fn mkfifo(p: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// Runs `f` on a thread and returns its result, failing the test if it takes more than
    /// a few seconds (an open of a FIFO without a writer blocks forever); `fifo` is then
    /// opened for writing, which releases the blocked reader.
    #[cfg(unix)]
    fn within_seconds<T: Send + 'static>(fifo: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(std::time::Duration::from_secs(3)) {
            Ok(v) => v,
            Err(_) => {
                use std::os::unix::fs::OpenOptionsExt;
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(fifo);
                panic!("reading {} blocked", fifo.display());
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn fifo_inputs_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("in.parquet");
        mkfifo(&fifo);
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink("in.parquet", &link).unwrap();
        let is_fifo_error =
            |e: &Error| matches!(e.kind(), Error::NotRegularFile { kind: "a FIFO", .. });
        let p = fifo.clone();
        let e = within_seconds(&fifo, move || LocalFile::open(&p).map(|_| ())).unwrap_err();
        assert!(is_fifo_error(&e), "{e}");
        assert!(
            e.to_string()
                .contains("in.parquet is a FIFO, not a regular file"),
            "{e}"
        );
        let p = link.clone();
        let e = within_seconds(&fifo, move || open_regular(&p).map(|_| ())).unwrap_err();
        assert!(is_fifo_error(&e), "{e}");
        let p = fifo.display().to_string();
        let e = within_seconds(&fifo, move || LocalStore.expand(&p)).unwrap_err();
        assert!(is_fifo_error(&e), "{e}");
        // The way a calibration JSON is read.
        let p = link.display().to_string();
        let e = within_seconds(&fifo, move || crate::io::read_object(&p).map(|_| ())).unwrap_err();
        assert!(is_fifo_error(&e), "{e}");
        // A FIFO in a directory input is listed by name and refused when opened.
        let e = within_seconds(&fifo, {
            let dir = d.path().display().to_string();
            move || {
                let files = LocalStore.expand(&dir)?;
                files
                    .iter()
                    .try_for_each(|f| LocalStore.open(f).map(|_| ()))
            }
        })
        .unwrap_err();
        assert!(is_fifo_error(&e), "{e}");
    }

    /// Runs `f` on a thread, failing the test if it does not end within `secs` seconds.
    fn ends_within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .expect("did not end in time")
    }

    /// The paths `pattern` expands to, relative to `root`.
    fn expanded(root: &Path, pattern: &str) -> Vec<String> {
        let p = format!("{}/{pattern}", root.display());
        ends_within(20, move || LocalStore.expand(&p))
            .unwrap()
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[cfg(unix)]
    #[test]
    fn a_double_star_glob_over_a_symlink_loop_ends_with_each_real_file_once() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("d1");
        std::fs::create_dir_all(root.join("sub/deep")).unwrap();
        std::fs::write(root.join("a.parquet"), "a").unwrap();
        std::fs::write(root.join("sub/b.parquet"), "b").unwrap();
        std::fs::write(root.join("sub/deep/c.parquet"), "c").unwrap();
        // Links back to the top and to a parent, and one to itself: loops for a naive walk.
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink("..", root.join("sub/deep/up")).unwrap();
        std::os::unix::fs::symlink(".", root.join("self")).unwrap();
        // A link chain that loops on itself (not a directory): skipped.
        std::os::unix::fs::symlink("x.parquet", root.join("x.parquet")).unwrap();
        // Each real directory entered once: each real file once, under its real spelling.
        assert_eq!(
            expanded(d.path(), "d1/**/*.parquet"),
            ["d1/a.parquet", "d1/sub/b.parquet", "d1/sub/deep/c.parquet"]
        );
        assert_eq!(
            expanded(d.path(), "d1/**"),
            ["d1/a.parquet", "d1/sub/b.parquet", "d1/sub/deep/c.parquet"]
        );
        assert_eq!(
            expanded(d.path(), "**/deep/*.parquet"),
            ["d1/sub/deep/c.parquet"]
        );
        // A walk that starts through a link keeps the link's spelling.
        assert_eq!(
            expanded(d.path(), "d1/sub/loop/**/c.parquet"),
            ["d1/sub/loop/sub/deep/c.parquet"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_double_star_glob_matches_files_at_every_depth() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for dir in ["x/a/b/c", "x/.hidden", "x/a/.staging"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for f in [
            "x/top.parquet",
            "x/a/one.parquet",
            "x/a/b/two.parquet",
            "x/a/b/c/three.parquet",
            "x/a/b/notes.txt",
            "x/a/.h.parquet",
            "x/.hidden/h.parquet",
            "x/a/.staging/part-00000.parquet",
        ] {
            std::fs::write(root.join(f), "p").unwrap();
        }
        // A FIFO that matches: stat-ed, never opened, not returned.
        mkfifo(&root.join("x/a/pipe.parquet"));
        assert_eq!(
            expanded(root, "x/**/*.parquet"),
            [
                "x/a/b/c/three.parquet",
                "x/a/b/two.parquet",
                "x/a/one.parquet",
                "x/top.parquet"
            ]
        );
        assert_eq!(
            expanded(root, "x/a/**/*.parquet"),
            [
                "x/a/b/c/three.parquet",
                "x/a/b/two.parquet",
                "x/a/one.parquet"
            ]
        );
        assert_eq!(
            expanded(root, "x/**/b/*"),
            ["x/a/b/notes.txt", "x/a/b/two.parquet"]
        );
        assert_eq!(expanded(root, "x/*/**/t?o.parquet"), ["x/a/b/two.parquet"]);
        // Hidden entries only where the pattern spells the dot.
        assert_eq!(
            expanded(root, "x/**/.staging/*.parquet"),
            ["x/a/.staging/part-00000.parquet"]
        );
        assert_eq!(expanded(root, "x/**/.h*"), ["x/a/.h.parquet"]);
        // Without `**`: the same rules.
        assert_eq!(expanded(root, "x/*.parquet"), ["x/top.parquet"]);
        assert_eq!(expanded(root, "x/*/*.parquet"), ["x/a/one.parquet"]);
        // Nothing matched: an error, as before.
        let p = format!("{}/x/**/*.csv", root.display());
        let e = LocalStore.expand(&p).unwrap_err();
        assert!(e.to_string().contains("the glob matches no file"), "{e}");
        let p = format!("{}/nowhere/**/*.parquet", root.display());
        assert_err!(LocalStore.expand(&p), crate::Error::Io { .. });
        let p = format!("{}/x/a**/*.parquet", root.display());
        let e = LocalStore.expand(&p).unwrap_err();
        assert!(e.to_string().contains("bad glob"), "{e}");
    }

    #[test]
    fn globs_stop_at_the_bound_on_visited_entries() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("s")).unwrap();
        for i in 0..4 {
            std::fs::write(d.path().join(format!("s/{i}.parquet")), "p").unwrap();
        }
        for pattern in ["s/**/*.parquet", "s/*.parquet", "*/*.parquet"] {
            let p = format!("{}/{pattern}", d.path().display());
            let e = expand_glob(&p, 3).unwrap_err();
            assert!(matches!(e, Error::BadArgument { .. }), "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("{p}: the glob reaches more than 3 entries")),
                "{e}"
            );
            assert_eq!(expand_glob(&p, 4).unwrap().len(), 4, "{pattern}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_directories_are_not_opened_as_files() {
        let e = open_regular(Path::new("/dev/null")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotRegularFile {
                    kind: "a character device",
                    ..
                }
            ),
            "{e}"
        );
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            LocalFile::open(d.path()).unwrap_err(),
            Error::NotRegularFile {
                kind: "a directory",
                ..
            }
        ));
        let f = d.path().join("x.bin");
        std::fs::write(&f, b"12345").unwrap();
        let src = LocalFile::open(&f).unwrap();
        assert_eq!(src.len(), 5);
        let mut b = [0u8; 2];
        src.read_exact_at(3, &mut b).unwrap();
        assert_eq!(&b, b"45");
    }
}
