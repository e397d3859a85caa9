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

/// Why embquant refuses an output path that is not a regular file.
const WRITE_RULE: &str = "embquant writes only regular files (outputs are replaced atomically)";

/// The most symlinks followed in one chain (Linux's own limit).
const MAX_LINKS: usize = 40;

/// What a file type is, in words (`a FIFO`), for errors about paths that are not regular
/// files.
pub(crate) fn kind_of(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symlink"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Whether `e` says a chain of symlinks loops (or is longer than the OS follows).
pub(crate) fn is_link_loop(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// `target` as errors name it: with the file its symlink chain ends at, when that differs.
fn spelled(target: &Path, dest: &Path) -> String {
    if target == dest {
        target.display().to_string()
    } else {
        format!("{} (a symlink to {})", target.display(), dest.display())
    }
}

fn link_loop(target: &Path) -> Error {
    Error::NotRegularFile {
        path: target.display().to_string(),
        kind: "a symlink loop (or a chain of more than 40 links)",
        rule: WRITE_RULE,
    }
}

/// The file an output at `target` replaces: `target` itself or, for a symlink, the file its
/// chain of links ends at (existing or not), so the rename replaces that file and the link
/// is kept. Refuses a directory, anything else that is not a regular file (a device, a
/// FIFO, a socket), a symlink loop, and a dangling link into a directory that does not
/// exist.
fn destination(target: &Path) -> Result<PathBuf> {
    let meta = match target.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(target.to_path_buf()),
        Err(e) => return Err(Error::io(target.display().to_string(), e)),
    };
    let dest = if meta.file_type().is_symlink() {
        follow_links(target)?
    } else {
        target.to_path_buf()
    };
    replaceable(target, &dest)?;
    Ok(dest)
}

/// The end of the symlink chain starting at `target` (a symlink): the canonical path of an
/// existing file, or, for a dangling chain, the path its last link names.
fn follow_links(target: &Path) -> Result<PathBuf> {
    let resolving = |e| Error::io(format!("resolving the symlink {}", target.display()), e);
    match std::fs::canonicalize(target) {
        Ok(p) => return Ok(p),
        Err(e) if is_link_loop(&e) => return Err(link_loop(target)),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(resolving(e)),
        Err(_) => {}
    }
    // Dangling: follow the chain by hand to the name it ends at.
    let mut cur = target.to_path_buf();
    for _ in 0..MAX_LINKS {
        let link = std::fs::read_link(&cur).map_err(resolving)?;
        let next = if link.is_absolute() {
            link
        } else {
            parent_of(&cur).join(link)
        };
        match next.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => cur = next,
            // Created meanwhile: the caller checks what it is.
            Ok(_) => return Ok(next),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = parent_of(&next);
                if !dir.is_dir() {
                    return Err(Error::io(
                        format!(
                            "{}: a symlink to {}, in a directory that does not exist",
                            target.display(),
                            next.display()
                        ),
                        e,
                    ));
                }
                return Ok(next);
            }
            Err(e) if is_link_loop(&e) => return Err(link_loop(target)),
            Err(e) => return Err(resolving(e)),
        }
    }
    Err(link_loop(target))
}

/// What `dest` (the file `target` names) is now: `None` when it does not exist, its
/// metadata when it is a regular file, an error for anything embquant does not replace.
fn replaceable(target: &Path, dest: &Path) -> Result<Option<std::fs::Metadata>> {
    match dest.metadata() {
        Ok(m) if m.is_file() => Ok(Some(m)),
        Ok(m) if m.is_dir() => Err(Error::InvalidOption(format!(
            "{}: is a directory; a file output cannot replace it",
            spelled(target, dest)
        ))),
        Ok(m) => Err(Error::NotRegularFile {
            path: spelled(target, dest),
            kind: kind_of(&m.file_type()),
            rule: WRITE_RULE,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if is_link_loop(&e) => Err(link_loop(target)),
        Err(e) => Err(Error::io(spelled(target, dest), e)),
    }
}

/// Gives the temporary file `file` the owner, group (when the process may: a file of
/// another user needs root, so `EPERM` is ignored) and permission bits of `of`, the file it
/// will replace. `exact`: the permission bits as they are; otherwise with the owner's
/// read and write added, so this process can still write it (at commit the exact bits are
/// set). Setuid, setgid and sticky bits are not carried over. Unix only.
fn keep_attributes(file: &File, temp: &Path, of: &std::fs::Metadata, exact: bool) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let now = file
            .metadata()
            .map_err(|e| Error::io(temp.display().to_string(), e))?;
        if (now.uid(), now.gid()) != (of.uid(), of.gid()) {
            if let Err(e) = std::os::unix::fs::fchown(file, Some(of.uid()), Some(of.gid())) {
                // Not allowed to give the file away: keep at least the group if we may.
                let group = std::os::unix::fs::fchown(file, None, Some(of.gid()));
                if e.raw_os_error() == Some(libc::EPERM) {
                    tracing::debug!(path = %temp.display(), group_kept = group.is_ok(), "not allowed to give the output the replaced file's owner");
                } else {
                    tracing::warn!(path = %temp.display(), error = %e, "cannot give the output the replaced file's owner");
                }
            }
        }
        let mode = if exact {
            of.mode() & 0o777
        } else {
            (of.mode() & 0o777) | 0o600
        };
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("setting the permissions of {}", temp.display()), e))
    }
    #[cfg(not(unix))]
    {
        // Permissions are inherited from the directory (ACLs); nothing to carry over.
        let _ = (file, temp, of, exact);
        Ok(())
    }
}

/// A file output: write to the [`File`] [`AtomicFile::create`] returns (or to
/// [`AtomicFile::path`]), then [`commit`](AtomicFile::commit) renames it onto the target in
/// one step. Dropped without a commit (an error, a cancelled future), the temporary file is
/// removed and the target is untouched.
///
/// Only regular files are replaced: a target that is a device, a FIFO, a socket or a
/// directory (or a symlink to one) is refused. A target that is a symlink is written
/// through: the temporary file goes beside the file the link (chain) names, the rename
/// replaces that file, and the link stays. A replaced file keeps its permission bits, and
/// its owner and group when the process may set them.
#[derive(Debug)]
pub struct AtomicFile {
    temp: PathBuf,
    target: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Prepares an output at `target`: refuses what it may not replace (see
    /// [`AtomicFile`]), creates its parent directory, removes stale temporaries of earlier
    /// killed runs, and creates the (empty) temporary file.
    pub fn create(target: &Path) -> Result<(Self, File)> {
        let dest = destination(target)?;
        let parent = parent_of(&dest);
        std::fs::create_dir_all(&parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        clean_stale_files(&dest);
        let temp = temp_path(&dest)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::io(format!("creating {}", temp.display()), e))?;
        register(&temp);
        let out = AtomicFile {
            temp,
            target: target.to_path_buf(),
            dest,
            committed: false,
        };
        // Not readable by more users than the file it replaces, even while written.
        if let Some(meta) = replaceable(&out.target, &out.dest)? {
            keep_attributes(&file, &out.temp, &meta, false)?;
        }
        Ok((out, file))
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

    /// The final path, as given.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The file the commit replaces: the target, or the file its symlink chain names.
    pub fn destination(&self) -> &Path {
        &self.dest
    }

    /// Checks the target again (it may have become something embquant does not replace
    /// meanwhile), gives the temporary file the replaced file's owner and permission bits,
    /// flushes it to disk and renames it onto the target.
    pub fn commit(mut self) -> Result<()> {
        let existing = replaceable(&self.target, &self.dest)?;
        let f = File::open(&self.temp)
            .map_err(|e| Error::io(format!("opening {}", self.temp.display()), e))?;
        if let Some(meta) = existing {
            keep_attributes(&f, &self.temp, &meta, true)?;
        }
        let _ = f.sync_all();
        drop(f);
        std::fs::rename(&self.temp, &self.dest).map_err(|e| {
            Error::io(
                format!(
                    "renaming {} into {}",
                    self.temp.display(),
                    spelled(&self.target, &self.dest)
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

    /// The entries of `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[cfg(unix)]
    fn mkfifo(p: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[cfg(unix)]
    fn is_fifo(p: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt;
        p.symlink_metadata().unwrap().file_type().is_fifo()
    }

    #[cfg(unix)]
    #[test]
    fn fifos_sockets_and_links_to_them_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("out.parquet");
        mkfifo(&fifo);
        let e = AtomicFile::create(&fifo).unwrap_err();
        assert!(
            matches!(e, Error::NotRegularFile { kind: "a FIFO", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("out.parquet is a FIFO"), "{e}");
        assert!(AtomicFile::write(&fifo, b"x").is_err());
        let link = d.path().join("link.parquet");
        std::os::unix::fs::symlink("out.parquet", &link).unwrap();
        let e = AtomicFile::create(&link).unwrap_err();
        assert!(
            matches!(e, Error::NotRegularFile { kind: "a FIFO", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("link.parquet (a symlink to"), "{e}");
        let sock = d.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = AtomicFile::write(&sock, b"x").unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotRegularFile {
                    kind: "a socket",
                    ..
                }
            ),
            "{e}"
        );
        // Nothing replaced, no temporary left.
        assert!(is_fifo(&fifo));
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(listing(d.path()), ["link.parquet", "out.parquet", "sock"]);
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_is_refused_and_nothing_is_created_in_dev() {
        let temps = || {
            listing(Path::new("/dev"))
                .into_iter()
                .filter(|n| n.starts_with(".null.embquant-tmp-"))
                .count()
        };
        let before = temps();
        // create only: a bug here must not be able to replace /dev/null.
        let r = AtomicFile::create(Path::new("/dev/null"));
        let made = temps();
        let e = r.map(|_| ()).unwrap_err();
        assert_eq!(made, before, "a temporary was created in /dev");
        assert!(
            e.to_string()
                .starts_with("/dev/null is a character device, not a regular file; embquant writes only regular files"),
            "{e}"
        );
        // A symlink to it: refused the same way, the link kept.
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("out.json");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let r = AtomicFile::create(&link);
        assert_eq!(temps(), before);
        assert!(matches!(
            r.map(|_| ()).unwrap_err(),
            Error::NotRegularFile {
                kind: "a character device",
                ..
            }
        ));
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/dev/null"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_outputs_are_written_through_and_the_link_kept() {
        let d = tempfile::tempdir().unwrap();
        let real_dir = d.path().join("data");
        let link_dir = d.path().join("links");
        std::fs::create_dir_all(&real_dir).unwrap();
        std::fs::create_dir_all(&link_dir).unwrap();
        let real = real_dir.join("cal.json");
        std::fs::write(&real, b"old").unwrap();
        // A chain: links/out.json -> links/mid.json -> ../data/cal.json (relative links).
        std::os::unix::fs::symlink("mid.json", link_dir.join("out.json")).unwrap();
        std::os::unix::fs::symlink("../data/cal.json", link_dir.join("mid.json")).unwrap();
        let target = link_dir.join("out.json");
        let (out, f) = AtomicFile::create(&target).unwrap();
        assert_eq!(out.target(), target);
        assert_eq!(out.destination(), real.canonicalize().unwrap());
        assert_eq!(
            out.path().parent().unwrap(),
            real_dir.canonicalize().unwrap(),
            "the temporary goes beside the file it replaces"
        );
        drop(f);
        std::fs::write(out.path(), b"new").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        assert_eq!(
            std::fs::read_link(&target).unwrap(),
            Path::new("mid.json"),
            "the link itself is kept"
        );
        assert_eq!(
            std::fs::read_link(link_dir.join("mid.json")).unwrap(),
            Path::new("../data/cal.json")
        );
        assert_eq!(listing(&real_dir), ["cal.json"]);
        assert_eq!(listing(&link_dir), ["mid.json", "out.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn dangling_links_create_their_target_loops_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let real_dir = d.path().join("data");
        std::fs::create_dir_all(&real_dir).unwrap();
        let link = d.path().join("out.json");
        std::os::unix::fs::symlink("data/new.json", &link).unwrap();
        AtomicFile::write(&link, b"made").unwrap();
        assert_eq!(std::fs::read(real_dir.join("new.json")).unwrap(), b"made");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("data/new.json")
        );
        assert_eq!(listing(&real_dir), ["new.json"]);
        // Into a directory that does not exist: refused, nothing created.
        let nowhere = d.path().join("nowhere.json");
        std::os::unix::fs::symlink("missing/x.json", &nowhere).unwrap();
        let e = AtomicFile::write(&nowhere, b"x").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(!d.path().join("missing").exists());
        // A loop.
        let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
        std::os::unix::fs::symlink("b.json", &a).unwrap();
        std::os::unix::fs::symlink("a.json", &b).unwrap();
        let e = AtomicFile::write(&a, b"x").unwrap_err();
        assert!(
            matches!(&e, Error::NotRegularFile { kind, .. } if kind.starts_with("a symlink loop")),
            "{e}"
        );
        assert!(a.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(
            listing(d.path()),
            ["a.json", "b.json", "data", "nowhere.json", "out.json"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode_and_owner() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("secret.json");
        std::fs::write(&t, b"old").unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (out, f) = AtomicFile::create(&t).unwrap();
        assert_eq!(
            f.metadata().unwrap().mode() & 0o077,
            0,
            "the temporary is not readable by others while written"
        );
        drop(f);
        std::fs::write(out.path(), b"new").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        assert_eq!(t.metadata().unwrap().mode() & 0o7777, 0o600);
        // A write-only file stays write-only (the temporary is writable meanwhile).
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o200)).unwrap();
        AtomicFile::write(&t, b"newer").unwrap();
        assert_eq!(t.metadata().unwrap().mode() & 0o7777, 0o200);
        // As root: the owner and group are kept too.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&t, Some(54321), Some(54322)).unwrap();
            AtomicFile::write(&t, b"owned").unwrap();
            let m = t.metadata().unwrap();
            assert_eq!((m.uid(), m.gid()), (54321, 54322));
        }
        assert_eq!(listing(d.path()), ["secret.json"]);
    }

    #[test]
    fn a_directory_target_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = AtomicFile::write(d.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
