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
            Error::bad_argument(
                "output",
                format!("{}: an output needs a file name (UTF-8)", target.display()),
            )
        })
}

/// The most bytes of a target's file name its temporary names keep as they are: with the
/// rest of the name (`.`, [`TEMP_MARKER`], a PID of up to 10 digits, `-`, a counter of up
/// to 20 digits) and room for the `#N` suffix a writer may stage under beside it
/// (object_store's local files), a temporary name stays within the 255 bytes file systems
/// allow for one name (`NAME_MAX`), so a valid target never fails for its temporary.
const MAX_NAME_IN_TEMP: usize = 255 - 1 - TEMP_MARKER.len() - 10 - 1 - 20 - 21;

/// Hex digits of the SHA-256 of a long name kept in its shortened form.
const NAME_HASH_HEX: usize = 16;

/// The start of every temporary name of `target`: `.NAME.embquant-tmp-`, where `NAME` is
/// the target's file name or, when that is longer than [`MAX_NAME_IN_TEMP`] bytes, its
/// start (cut at a character boundary) followed by `~` and the first 16 hex digits of the
/// SHA-256 of the whole name (stable across processes and versions, so every job finds
/// the temporaries of a target, and two long names sharing a start do not share them).
/// [`temp_path`] and [`stale_temps`] both use it.
pub(crate) fn temp_prefix(target: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let name = file_name(target)?;
    if name.len() <= MAX_NAME_IN_TEMP {
        return Ok(format!(".{name}{TEMP_MARKER}"));
    }
    let mut cut = MAX_NAME_IN_TEMP - 1 - NAME_HASH_HEX;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest
        .iter()
        .take(NAME_HASH_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!(".{}~{hash}{TEMP_MARKER}", &name[..cut]))
}

/// A new temporary path beside `target`: `.NAME.embquant-tmp-PID-N` (see [`temp_prefix`]
/// for `NAME`; `N` unique within the process, so two writers of one target in one process
/// never share a name).
pub(crate) fn temp_path(target: &Path) -> Result<PathBuf> {
    let prefix = temp_prefix(target)?;
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    Ok(parent_of(target).join(format!("{prefix}{}-{n}", std::process::id())))
}

/// How often a new temporary is tried under another name: when the name exists (a job in
/// another PID namespace with the same PID) or another job took the new temporary for a
/// dead job's leftover before this one could lock it.
const TEMP_ATTEMPTS: usize = 16;

/// An exclusive advisory lock (`flock`) on a temporary file or directory, held by the job
/// writing it for as long as it writes, and by a job removing a dead job's temporary while
/// it removes it. Unlike a PID it means the same in every PID namespace (container) that
/// shares the file system, and the kernel releases it when its holder exits or dies.
/// Unix only (elsewhere none is ever taken).
#[derive(Debug)]
pub(crate) struct TempLock {
    #[cfg_attr(not(unix), allow(dead_code))]
    file: File,
}

/// Takes an exclusive `flock` on `file` without waiting: `false` when another open file
/// description holds a lock on it.
#[cfg(unix)]
fn flock_exclusive(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor `file` owns and keeps open during the call; it
        // touches no memory of ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// Whether `path` (not followed if a symlink) is the file `file` has open.
#[cfg(unix)]
fn same_inode(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), path.symlink_metadata()) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Opens the temporary file or directory at `path` to lock it: read-only (write-only for a
/// file without read permission), without following a symlink and without blocking (a
/// FIFO named like a temporary is refused, not waited on). Only regular files and
/// directories are opened.
#[cfg(unix)]
fn open_for_lock(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let not_ours = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file or a directory",
        )
    };
    let meta = path.symlink_metadata()?;
    if !(meta.is_file() || meta.is_dir()) {
        return Err(not_ours());
    }
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && meta.is_file() => {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(flags)
                .open(path)?
        }
        r => r?,
    };
    let ft = file.metadata()?.file_type();
    if ft.is_file() || ft.is_dir() {
        Ok(file)
    } else {
        Err(not_ours())
    }
}

/// The lock of a temporary this job just created at `path` (`fd`: a descriptor of it):
/// `None` when it is not this job's any more, because another job, taking it for a dead
/// job's leftover, holds its lock or removed it meanwhile.
#[cfg(unix)]
fn lock_new(fd: File, path: &Path) -> std::io::Result<Option<TempLock>> {
    if !flock_exclusive(&fd)? || !same_inode(&fd, path) {
        return Ok(None);
    }
    Ok(Some(TempLock { file: fd }))
}

/// The lock of the existing file or directory at `path`, if it can be taken now (best
/// effort: `None` when it cannot be opened or locked, or another job holds it).
pub(crate) fn try_lock(path: &Path) -> Option<TempLock> {
    #[cfg(unix)]
    {
        let file = open_for_lock(path).ok()?;
        flock_exclusive(&file).ok()?.then_some(TempLock { file })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Creates a new temporary beside `dest` with `make` and takes its lock on the descriptor
/// `lock_fd` gives (unlocked when the file system refuses `flock`: logged, and written
/// anyway). Another name is tried when one exists, or when another job took the new
/// temporary for a stale one before it was locked.
fn create_temp<T>(
    dest: &Path,
    make: impl Fn(&Path) -> std::io::Result<T>,
    lock_fd: impl Fn(&T, &Path) -> std::io::Result<File>,
) -> Result<(PathBuf, T, Option<TempLock>)> {
    let mut taken = None;
    for _ in 0..TEMP_ATTEMPTS {
        let temp = temp_path(dest)?;
        let made = match make(&temp) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                tracing::debug!(path = %temp.display(), "a temporary of that name exists (a job in another PID namespace?); trying another name");
                taken = Some((temp, e));
                continue;
            }
            Err(e) => return Err(Error::io(format!("creating {}", temp.display()), e)),
        };
        #[cfg(unix)]
        match lock_fd(&made, &temp).and_then(|fd| lock_new(fd, &temp)) {
            Ok(Some(lock)) => return Ok((temp, made, Some(lock))),
            Ok(None) => {
                tracing::debug!(path = %temp.display(), "another job took the new temporary for a stale one; trying another name");
                taken = Some((temp, std::io::Error::from(std::io::ErrorKind::WouldBlock)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                taken = Some((temp, e));
            }
            Err(e) => {
                tracing::debug!(path = %temp.display(), error = %e, "cannot lock the temporary; written unlocked");
                return Ok((temp, made, None));
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &lock_fd;
            return Ok((temp, made, None));
        }
    }
    let (temp, e) = taken.unwrap_or_else(|| {
        (
            dest.to_path_buf(),
            std::io::Error::other("no temporary name"),
        )
    });
    Err(Error::io(
        format!(
            "creating {} (the last of {TEMP_ATTEMPTS} temporary names tried)",
            temp.display()
        ),
        e,
    ))
}

/// A new locked temporary file for `dest`, opened for writing.
fn create_temp_file(dest: &Path) -> Result<(PathBuf, File, Option<TempLock>)> {
    create_temp(
        dest,
        |p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
        },
        |f, _| f.try_clone(),
    )
}

/// A new locked temporary (staging) directory for `target`.
pub(crate) fn create_temp_dir(target: &Path) -> Result<(PathBuf, Option<TempLock>)> {
    let (path, (), lock) = create_temp(
        target,
        |p| std::fs::create_dir(p),
        |_, p| {
            #[cfg(unix)]
            {
                open_for_lock(p)
            }
            #[cfg(not(unix))]
            {
                let _ = p;
                Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
            }
        },
    )?;
    Ok((path, lock))
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

/// A stale temporary (see [`stale_temps`]) and the lock this job holds on it (Unix), so
/// no other job can claim it while it is removed or restored.
#[derive(Debug)]
pub(crate) struct Stale {
    /// The temporary.
    pub(crate) path: PathBuf,
    _lock: Option<std::sync::Arc<TempLock>>,
}

/// `name` split after `prefix` as a temporary name `PREFIX PID-N` (or `PREFIX PID-N#...`, a
/// writer's staging file beside it): the PID and the length of the `PREFIX PID-N` part.
fn parse_temp(name: &str, prefix: &str) -> Option<(u32, usize)> {
    let rest = name.strip_prefix(prefix)?;
    let base = rest.split_once('#').map_or(rest, |(b, _)| b);
    let (pid, n) = base.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    Some((pid.parse().ok()?, prefix.len() + base.len()))
}

/// The stale temporaries of `target` left by jobs that are gone (killed, crashed): entries
/// of its directory named `.NAME.embquant-tmp-PID-N` (and `...#...` beside them, see
/// [`temp_prefix`]) whose process `PID` no longer runs and, on Unix, whose lock this job
/// takes: a live job holds the lock of its temporary (on the file, or on `PID-N` for a
/// `#` staging file beside it) for as long as it writes, so its temporaries are kept even
/// where its PID means nothing (another PID namespace, a container sharing the
/// directory). A temporary whose lock cannot be taken or tested is kept. The locks are
/// held until the returned values are dropped.
pub(crate) fn stale_temps(target: &Path) -> Vec<Stale> {
    let Ok(prefix) = temp_prefix(target) else {
        return Vec::new();
    };
    let dir = parent_of(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, usize)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let (pid, base) = parse_temp(&n, &prefix)?;
            (!process_alive(pid)).then_some((n, base))
        })
        .collect();
    found.sort();
    // One lock per locked path: a `PID-N` temporary and the `#` files beside it share it.
    let mut locks: std::collections::HashMap<String, Option<std::sync::Arc<TempLock>>> =
        std::collections::HashMap::new();
    let mut stale = Vec::new();
    for (name, base) in found {
        let base = &name[..base];
        let locked = if dir.join(base).symlink_metadata().is_ok() {
            base
        } else {
            name.as_str()
        };
        let lock = locks
            .entry(locked.to_string())
            .or_insert_with(|| lock_stale(&dir.join(locked)))
            .clone();
        #[cfg(unix)]
        if lock.is_none() {
            continue;
        }
        stale.push(Stale {
            path: dir.join(&name),
            _lock: lock,
        });
    }
    stale
}

/// The lock of a dead job's temporary at `path`, taken to claim it: `None` when a live job
/// holds it, or it cannot be tested (then the temporary is kept). Off Unix always `None`,
/// and the PID alone decides.
fn lock_stale(path: &Path) -> Option<std::sync::Arc<TempLock>> {
    #[cfg(unix)]
    {
        let file = match open_for_lock(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "kept a temporary of a dead PID: cannot open it to test its lock");
                return None;
            }
        };
        match flock_exclusive(&file) {
            Ok(true) => Some(std::sync::Arc::new(TempLock { file })),
            Ok(false) => {
                tracing::debug!(path = %path.display(), "kept a temporary of a PID not running here: a live job (another PID namespace?) holds its lock");
                None
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "kept a temporary of a dead PID: cannot test its lock");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Removes the stale temporary files of `target` (see [`stale_temps`]); directories are
/// left to [`crate::io::dir`], which knows what it may delete inside them.
pub(crate) fn clean_stale_files(target: &Path) {
    for stale in stale_temps(target) {
        let p = &stale.path;
        if p.symlink_metadata().is_ok_and(|m| m.is_file()) {
            match std::fs::remove_file(p) {
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
        Ok(m) if m.is_dir() => Err(Error::output_conflict(
            spelled(target, dest),
            "is a directory; a file output cannot replace it",
        )),
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
    /// The lock of the temporary file, held until it is committed or removed (dropped
    /// after [`Drop::drop`] ran), so other jobs, whatever their PID namespace, never take
    /// it for a dead job's leftover.
    lock: Option<TempLock>,
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
        let (temp, file, lock) = create_temp_file(&dest)?;
        register(&temp);
        let out = AtomicFile {
            temp,
            target: target.to_path_buf(),
            dest,
            committed: false,
            lock,
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
        self.relock(&f);
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

    /// Locks `f`, the temporary file as [`commit`](AtomicFile::commit) opened it, when a
    /// writer replaced the file this output created and locked (a writer that stages
    /// under `TEMP#N` and renames that onto the temporary path, as object_store's local
    /// files do): the lock then covers what is renamed into place. Best effort.
    fn relock(&mut self, f: &File) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let Some(held) = &self.lock else {
                return;
            };
            let (Ok(a), Ok(b)) = (held.file.metadata(), f.metadata()) else {
                return;
            };
            if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                return;
            }
            match f.try_clone().and_then(|c| lock_new(c, &self.temp)) {
                Ok(Some(lock)) => self.lock = Some(lock),
                Ok(None) => {
                    tracing::debug!(path = %self.temp.display(), "cannot lock the temporary a writer put in place")
                }
                Err(e) => {
                    tracing::debug!(path = %self.temp.display(), error = %e, "cannot lock the temporary a writer put in place")
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = f;
        }
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

    /// A PID that does not run: beyond the kernel's maximum.
    const DEAD: u32 = 2147483646;

    /// Holds an exclusive `flock` on `path` through a descriptor of its own, as a live job
    /// in another PID namespace would.
    #[cfg(unix)]
    fn hold_lock(path: &Path) -> File {
        use std::os::fd::AsRawFd;
        let f = File::open(path).unwrap();
        // SAFETY: flock on a descriptor `f` owns and keeps open during the call.
        assert_eq!(
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        f
    }

    /// Whether another open file description could lock `path` now.
    #[cfg(unix)]
    fn lockable(path: &Path) -> bool {
        try_lock(path).is_some()
    }

    fn stale_names(target: &Path) -> Vec<String> {
        let mut v: Vec<String> = stale_temps(target)
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[cfg(unix)]
    #[test]
    fn a_locked_temp_of_a_pid_not_running_here_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out.parquet");
        // A live job of another PID namespace: its PID is not running here, but it holds
        // the lock of its temporary, and a writer stages `#1` beside it.
        let live = d.path().join(format!(".out.parquet.embquant-tmp-{DEAD}-0"));
        let live_staged = d
            .path()
            .join(format!(".out.parquet.embquant-tmp-{DEAD}-0#1"));
        // A dead job's leftovers: nobody holds their locks.
        let dead = d.path().join(format!(".out.parquet.embquant-tmp-{DEAD}-1"));
        let dead_staged = d
            .path()
            .join(format!(".out.parquet.embquant-tmp-{DEAD}-2#1"));
        for p in [&live, &live_staged, &dead, &dead_staged] {
            std::fs::write(p, b"x").unwrap();
        }
        let held = hold_lock(&live);
        assert_eq!(
            stale_names(&t),
            [
                format!(".out.parquet.embquant-tmp-{DEAD}-1"),
                format!(".out.parquet.embquant-tmp-{DEAD}-2#1")
            ]
        );
        // While claimed (the values alive), their locks are held.
        let claimed = stale_temps(&t);
        assert!(!lockable(&dead));
        drop(claimed);
        assert!(lockable(&dead));
        AtomicFile::write(&t, b"new").unwrap();
        assert!(
            live.exists() && live_staged.exists(),
            "a live job's temporaries are kept"
        );
        assert!(!dead.exists() && !dead_staged.exists());
        // The job ended (the kernel released its lock): now its leftovers go.
        drop(held);
        clean_stale_files(&t);
        assert_eq!(listing(d.path()), ["out.parquet"]);
    }

    #[cfg(unix)]
    #[test]
    fn an_output_holds_the_lock_of_its_temporary_until_committed() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out.json");
        let (out, f) = AtomicFile::create(&t).unwrap();
        drop(f);
        assert!(
            !lockable(out.path()),
            "locked even after the caller's file is closed"
        );
        // A writer that replaces the temporary (stages beside it, renames it onto it).
        let staged = PathBuf::from(format!("{}#1", out.path().display()));
        std::fs::write(&staged, b"written").unwrap();
        std::fs::rename(&staged, out.path()).unwrap();
        assert!(lockable(out.path()), "the writer's file is not locked yet");
        let mut out = out;
        let f = File::open(out.path()).unwrap();
        out.relock(&f);
        drop(f);
        assert!(
            !lockable(out.path()),
            "the replaced temporary is locked at commit"
        );
        out.commit().unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"written");
        assert!(lockable(&t), "released after the commit");
        assert_eq!(listing(d.path()), ["out.json"]);
    }

    #[test]
    fn temporaries_of_long_names_fit_in_a_file_name() {
        let d = tempfile::tempdir().unwrap();
        for name in [
            "a".repeat(250),
            format!("{}.parquet", "é".repeat(120)),
            "b".repeat(MAX_NAME_IN_TEMP),
            "c".repeat(MAX_NAME_IN_TEMP + 1),
        ] {
            let t = d.path().join(&name);
            let temp = temp_path(&t).unwrap();
            let temp_name = temp.file_name().unwrap().to_str().unwrap().to_string();
            // With the largest PID and counter, and a writer's `#N` beside it.
            let prefix = temp_prefix(&t).unwrap();
            let longest = format!("{prefix}{}-{}#{}", u32::MAX, u64::MAX, i64::MAX);
            assert!(longest.len() <= 255, "{} bytes: {longest}", longest.len());
            assert!(temp_name.starts_with(&prefix));
            if name.len() <= MAX_NAME_IN_TEMP {
                assert_eq!(prefix, format!(".{name}{TEMP_MARKER}"));
            } else {
                assert!(prefix.contains('~'), "{prefix}");
            }
            AtomicFile::write(&t, b"long").unwrap();
            assert_eq!(std::fs::read(&t).unwrap(), b"long");
            let (out, f) = AtomicFile::create(&t).unwrap();
            drop(f);
            std::fs::write(out.path(), b"longer").unwrap();
            out.commit().unwrap();
            assert_eq!(std::fs::read(&t).unwrap(), b"longer");
            assert_eq!(listing(d.path()), std::slice::from_ref(&name));
            // A dead job's temporary of it is found (and removed).
            let dead = d.path().join(format!("{prefix}{DEAD}-0"));
            std::fs::write(&dead, b"x").unwrap();
            #[cfg(unix)]
            {
                assert_eq!(stale_names(&t), [format!("{prefix}{DEAD}-0")]);
                AtomicFile::write(&t, b"again").unwrap();
                assert!(!dead.exists());
            }
            std::fs::remove_file(&t).unwrap();
            let _ = std::fs::remove_file(&dead);
        }
        // Two long names sharing their start do not share temporaries.
        let long = "x".repeat(240);
        let (a, b) = (format!("{long}-a.parquet"), format!("{long}-b.parquet"));
        let (pa, pb) = (
            temp_prefix(&d.path().join(&a)).unwrap(),
            temp_prefix(&d.path().join(&b)).unwrap(),
        );
        assert_ne!(pa, pb);
        assert!(!pa.starts_with(&pb) && !pb.starts_with(&pa));
    }

    #[test]
    fn a_temporary_name_that_exists_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out.json");
        // The first name tried exists: made meanwhile by a job of another PID namespace
        // with this PID.
        let first = std::sync::Mutex::new(None);
        let (temp, file, _lock) = create_temp(
            &t,
            |p| {
                let mut first = first.lock().unwrap();
                if first.is_none() {
                    std::fs::write(p, b"theirs")?;
                    *first = Some(p.to_path_buf());
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(p)
            },
            |f, _| f.try_clone(),
        )
        .unwrap();
        drop(file);
        let first = first.lock().unwrap().clone().unwrap();
        assert_ne!(temp, first);
        assert_eq!(std::fs::read(&first).unwrap(), b"theirs");
        assert_eq!(std::fs::read(&temp).unwrap(), b"");
    }

    #[test]
    fn only_names_of_the_temporary_form_count() {
        let prefix = ".out.embquant-tmp-";
        assert_eq!(parse_temp(".out.embquant-tmp-12-3", prefix), Some((12, 22)));
        assert_eq!(
            parse_temp(".out.embquant-tmp-12-3#4", prefix),
            Some((12, 22))
        );
        for other in [
            ".out.embquant-tmp-12",
            ".out.embquant-tmp-12-",
            ".out.embquant-tmp--3",
            ".out.embquant-tmp-1.embquant-tmp-12-3",
            ".out.embquant-tmp-x-3",
            ".other.embquant-tmp-12-3",
        ] {
            assert_eq!(parse_temp(other, prefix), None, "{other}");
        }
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
        assert_err!(
            AtomicFile::write(&fifo, b"x"),
            crate::Error::NotRegularFile { .. }
        );
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
