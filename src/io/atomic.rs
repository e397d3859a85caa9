//! Single-file outputs: written under a temporary name beside the target, renamed into
//! place only when complete, removed if dropped uncommitted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The marker in every temporary name embquant creates.
pub const TEMP_MARKER: &str = ".embquant-tmp-";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Temporary paths of this process not committed yet, for [`remove_own_temporaries`].
static OPEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes what this process's uncommitted outputs left: their temporary files and any
/// `TEMP#N` staging files a writer (object_store's local files) created beside them after
/// the output was dropped. A command-line program calls it last, after its runtime shut
/// down, so a cancelled job leaves nothing even when a background writer outlived it.
pub fn remove_own_temporaries() {
    let Ok(open) = OPEN.lock() else {
        return;
    };
    for temp in open.iter() {
        if temp.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            // A staging directory: only this job's parts and links of kept entries.
            let _ = std::fs::remove_dir_all(temp);
        } else {
            remove_with_staging(temp);
        }
    }
}

/// Records a temporary path of this process until it is committed.
pub(crate) fn register(temp: &Path) {
    if let Ok(mut open) = OPEN.lock() {
        open.push(temp.to_path_buf());
    }
}

/// The temporary path was committed (renamed into place): nothing to remove any more.
pub(crate) fn unregister(temp: &Path) {
    if let Ok(mut open) = OPEN.lock() {
        open.retain(|p| p != temp);
    }
}

fn remove_with_staging(temp: &Path) {
    let _ = std::fs::remove_file(temp);
    let Some(staged) = temp
        .file_name()
        .map(|n| format!("{}#", n.to_string_lossy()))
    else {
        return;
    };
    if let Ok(entries) = std::fs::read_dir(parent_of(temp)) {
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().starts_with(&staged) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The parent directory of `target` (`.` for a bare file name).
pub(crate) fn parent_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(target: &Path) -> Result<String> {
    target
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::InvalidOption(format!(
                "{}: an output needs a file name (UTF-8)",
                target.display()
            ))
        })
}

/// A new temporary path beside `target`: `.NAME.embquant-tmp-PID-N` (`N` unique within the
/// process, so two writers of one target in one process never share a name).
pub(crate) fn temp_path(target: &Path) -> Result<PathBuf> {
    let name = file_name(target)?;
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    Ok(parent_of(target).join(format!(".{name}{TEMP_MARKER}{}-{n}", std::process::id())))
}

/// Whether process `pid` is running (on non-Unix systems: assumed running, so nothing of
/// a possibly live job is removed).
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// The stale temporaries of `target` left by jobs that are gone (killed, crashed): entries
/// of its directory named `.NAME.embquant-tmp-PID-...` whose process `PID` no longer runs.
pub(crate) fn stale_temps(target: &Path) -> Vec<PathBuf> {
    let Ok(name) = file_name(target) else {
        return Vec::new();
    };
    let prefix = format!(".{name}{TEMP_MARKER}");
    let Ok(entries) = std::fs::read_dir(parent_of(target)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let rest = n.strip_prefix(&prefix)?;
            let pid: u32 = rest.split(['-', '.', '#']).next()?.parse().ok()?;
            (!process_alive(pid)).then(|| e.path())
        })
        .collect()
}

/// Removes the stale temporary files of `target` (see [`stale_temps`]); directories are
/// left to [`crate::io::dir`], which knows what it may delete inside them.
pub(crate) fn clean_stale_files(target: &Path) {
    for p in stale_temps(target) {
        if p.symlink_metadata().is_ok_and(|m| m.is_file()) {
            match std::fs::remove_file(&p) {
                Ok(()) => tracing::info!(path = %p.display(), "removed a stale temporary file"),
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "cannot remove a stale temporary file")
                }
            }
        }
    }
}

/// A file output: write to [`AtomicFile::file`] (or to [`AtomicFile::path`]), then
/// [`commit`](AtomicFile::commit) renames it onto the target in one step. Dropped without a
/// commit (an error, a cancelled future), the temporary file is removed and the target is
/// untouched.
#[derive(Debug)]
pub struct AtomicFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Prepares an output at `target`: creates its parent directory, removes stale
    /// temporaries of earlier killed runs, and creates the (empty) temporary file.
    pub fn create(target: &Path) -> Result<(Self, File)> {
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        if target.is_dir() {
            return Err(Error::InvalidOption(format!(
                "{}: is a directory; a file output cannot replace it",
                target.display()
            )));
        }
        clean_stale_files(target);
        let temp = temp_path(target)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::io(format!("creating {}", temp.display()), e))?;
        register(&temp);
        Ok((
            AtomicFile {
                temp,
                target: target.to_path_buf(),
                committed: false,
            },
            file,
        ))
    }

    /// Writes `bytes` to `target` atomically.
    pub fn write(target: &Path, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let (out, mut f) = Self::create(target)?;
        f.write_all(bytes)
            .map_err(|e| Error::io(format!("writing {}", out.temp.display()), e))?;
        drop(f);
        out.commit()
    }

    /// The temporary path being written.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the temporary file to disk and renames it onto the target.
    pub fn commit(mut self) -> Result<()> {
        if let Ok(f) = File::open(&self.temp) {
            let _ = f.sync_all();
        }
        std::fs::rename(&self.temp, &self.target).map_err(|e| {
            Error::io(
                format!(
                    "renaming {} into {}",
                    self.temp.display(),
                    self.target.display()
                ),
                e,
            )
        })?;
        self.committed = true;
        unregister(&self.temp);
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            remove_with_staging(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_leaves_the_target() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out.json");
        std::fs::write(&t, b"old").unwrap();
        {
            let (out, f) = AtomicFile::create(&t).unwrap();
            std::fs::write(out.path(), b"partial").unwrap();
            drop(f);
            // dropped uncommitted
        }
        assert_eq!(std::fs::read(&t).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        AtomicFile::write(&t, b"new").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn stale_temps_of_dead_jobs_are_removed_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out.parquet");
        // A pid that does not run: beyond the kernel's maximum.
        let dead = d.path().join(".out.parquet.embquant-tmp-2147483646-0");
        let live = d.path().join(format!(
            ".out.parquet.embquant-tmp-{}-99",
            std::process::id()
        ));
        let other = d.path().join(".other.parquet.embquant-tmp-2147483646-0");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        AtomicFile::write(&t, b"new").unwrap();
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(
            other.exists(),
            "another target's temporaries are not ours to clean"
        );
    }
}
