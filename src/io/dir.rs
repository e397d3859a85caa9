//! Directory outputs (`--target-file-rows`): the parts and a manifest naming them, built
//! under a staging name beside the target and swapped into place in one step.
//!
//! Rules, so that a directory output never destroys what the user did not name:
//! - A target that does not exist, or is empty, is created by one rename of the staging
//!   directory.
//! - A target whose every entry embquant wrote (its `_embquant_manifest.json` and the
//!   parts that manifest lists) is replaced: the staging directory and the target are
//!   exchanged atomically (Linux `renameat2(RENAME_EXCHANGE)`), then the old parts are
//!   deleted by name. A crash leaves the old set or the new one, never a mix or nothing.
//! - A target holding anything else (an input, notes, another tool's files, parts of an
//!   older embquant without a manifest) is refused, naming the entry. With `overwrite`,
//!   those entries are kept: each is hard-linked into the new set before the exchange, so
//!   only embquant's own previous parts are replaced. An entry named like a new part is
//!   refused even then.
//! - Where the exchange is not available (other systems, some file systems), an
//!   embquant-only target is replaced by two renames through `.NAME.embquant-tmp-PID-N`;
//!   a crash between them leaves the old set there, and the next run puts it back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{parent_of, register, stale_temps, temp_path, unregister};
use crate::error::{Error, Result};

/// The manifest file of a directory output.
pub const MANIFEST_NAME: &str = "_embquant_manifest.json";

/// What a directory output holds: written last into the staging directory, read to tell
/// embquant's own files from everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirManifest {
    /// Always `"embquant-parts"`.
    pub kind: String,
    /// The embquant version that wrote it.
    pub embquant_version: String,
    /// The part files (names inside the directory), in row order.
    pub parts: Vec<String>,
    /// Rows over all parts.
    pub rows: u64,
}

impl DirManifest {
    /// A manifest of `parts`.
    pub fn new(parts: Vec<String>, rows: u64) -> Self {
        DirManifest {
            kind: "embquant-parts".into(),
            embquant_version: env!("CARGO_PKG_VERSION").into(),
            parts,
            rows,
        }
    }

    /// The manifest of directory `dir`, if it has a readable one.
    pub fn read(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join(MANIFEST_NAME)).ok()?;
        let m: DirManifest = serde_json::from_str(&text).ok()?;
        (m.kind == "embquant-parts").then_some(m)
    }
}

/// What an existing target holds.
struct Existing {
    /// embquant's own entries (manifest and listed parts) present.
    own: Vec<String>,
    /// Everything else.
    foreign: Vec<String>,
}

fn survey(target: &Path) -> Result<Option<Existing>> {
    let meta = match target.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(target.display().to_string(), e)),
    };
    if !meta.is_dir() {
        return Err(Error::InvalidOption(format!(
            "{}: exists and is not a directory; a directory output (--target-file-rows) cannot replace it",
            target.display()
        )));
    }
    let listed: Vec<String> = DirManifest::read(target).map_or(Vec::new(), |m| {
        let mut v = m.parts;
        v.push(MANIFEST_NAME.to_string());
        v
    });
    let (mut own, mut foreign) = (Vec::new(), Vec::new());
    let entries = std::fs::read_dir(target)
        .map_err(|e| Error::io(format!("listing {}", target.display()), e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(format!("listing {}", target.display()), e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file && listed.contains(&name) {
            own.push(name);
        } else {
            foreign.push(name);
        }
    }
    own.sort();
    foreign.sort();
    Ok(Some(Existing { own, foreign }))
}

fn refuse(target: &Path, entry: &str) -> Error {
    Error::ForeignOutput {
        dir: target.display().to_string(),
        entry: entry.to_string(),
    }
}

/// A directory output being built: write the parts into [`AtomicDir::path`], then
/// [`commit`](AtomicDir::commit) with their names. Dropped uncommitted, the staging
/// directory is removed and the target is untouched.
#[derive(Debug)]
pub struct AtomicDir {
    staging: PathBuf,
    target: PathBuf,
    overwrite: bool,
    committed: bool,
}

impl AtomicDir {
    /// Checks the target (refused if it holds entries embquant did not write, unless
    /// `overwrite`), recovers or removes what killed earlier runs left, and creates the
    /// staging directory.
    pub fn create(target: &Path, overwrite: bool) -> Result<Self> {
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        recover_stale(target);
        if let Some(ex) = survey(target)? {
            if let (false, Some(f)) = (overwrite, ex.foreign.first()) {
                return Err(refuse(target, f));
            }
        }
        let staging = temp_path(target)?;
        std::fs::create_dir(&staging)
            .map_err(|e| Error::io(format!("creating {}", staging.display()), e))?;
        register(&staging);
        Ok(AtomicDir {
            staging,
            target: target.to_path_buf(),
            overwrite,
            committed: false,
        })
    }

    /// The staging directory the parts go into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The final directory.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes the manifest of `parts` (names inside the staging directory), flushes them,
    /// and puts the new set in place of the target in one step.
    pub fn commit(mut self, parts: Vec<String>, rows: u64) -> Result<()> {
        for p in &parts {
            let path = self.staging.join(p);
            let f = std::fs::File::open(&path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            let _ = f.sync_all();
        }
        let manifest = DirManifest::new(parts, rows);
        let mpath = self.staging.join(MANIFEST_NAME);
        std::fs::write(&mpath, serde_json::to_string_pretty(&manifest)?)
            .map_err(|e| Error::io(format!("writing {}", mpath.display()), e))?;
        // A concurrent job may create or replace the target meanwhile: look again after a
        // failed step (bounded, each attempt does one atomic operation).
        for _ in 0..8 {
            let existing = survey(&self.target)?;
            let Some(ex) = existing else {
                match std::fs::rename(&self.staging, &self.target) {
                    Ok(()) => {
                        self.committed = true;
                        unregister(&self.staging);
                        return Ok(());
                    }
                    Err(e) if self.target.exists() => {
                        tracing::debug!(error = %e, "the target appeared meanwhile; retrying");
                        continue;
                    }
                    Err(e) => {
                        return Err(Error::io(
                            format!("renaming into {}", self.target.display()),
                            e,
                        ))
                    }
                }
            };
            if !ex.foreign.is_empty() && !self.overwrite {
                return Err(refuse(&self.target, &ex.foreign[0]));
            }
            if let Some(clash) = ex.foreign.iter().find(|f| manifest.parts.contains(f)) {
                return Err(Error::InvalidOption(format!(
                    "{}: {clash} exists and is not listed in embquant's manifest there; move it away or choose another directory",
                    self.target.display()
                )));
            }
            // Keep the foreign entries: link them into the new set.
            for f in &ex.foreign {
                link_tree(&self.target.join(f), &self.staging.join(f))?;
            }
            match exchange(&self.staging, &self.target) {
                Ok(()) => {
                    self.committed = true;
                    // The old set is now at the staging path.
                    unregister(&self.staging);
                    remove_old(&self.staging, &ex.own, &ex.foreign);
                    return Ok(());
                }
                Err(e) if exchange_unsupported(&e) => {
                    if !ex.foreign.is_empty() {
                        return Err(Error::io(
                            format!(
                                "{}: replacing a directory that holds other files needs an atomic exchange, which this file system lacks",
                                self.target.display()
                            ),
                            e,
                        ));
                    }
                    return self.two_renames(&ex.own);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("exchanging into {}", self.target.display()),
                        e,
                    ))
                }
            }
        }
        Err(Error::InvalidOption(format!(
            "{}: another job keeps replacing this directory; try again",
            self.target.display()
        )))
    }

    fn two_renames(mut self, own: &[String]) -> Result<()> {
        let old = temp_path(&self.target)?;
        let err = |e| Error::io(format!("renaming into {}", self.target.display()), e);
        std::fs::rename(&self.target, &old).map_err(err)?;
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            let _ = std::fs::rename(&old, &self.target);
            return Err(err(e));
        }
        self.committed = true;
        unregister(&self.staging);
        remove_old(&old, own, &[]);
        Ok(())
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            // Only what this job put there: parts, the manifest, links of foreign entries.
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Hard-links `from` (a file, or a directory tree) to `to`; symlinks are copied as links.
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = from
        .symlink_metadata()
        .map_err(|e| Error::io(from.display().to_string(), e))?;
    let err = |e| Error::io(format!("linking {} to {}", from.display(), to.display()), e);
    if meta.file_type().is_symlink() {
        let dest = std::fs::read_link(from).map_err(err)?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(dest, to).map_err(err)?;
        #[cfg(not(unix))]
        return Err(err(std::io::Error::other(format!(
            "cannot keep the symlink (to {})",
            dest.display()
        ))));
    } else if meta.is_dir() {
        std::fs::create_dir(to).map_err(err)?;
        for e in std::fs::read_dir(from).map_err(err)? {
            let e = e.map_err(err)?;
            link_tree(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        std::fs::hard_link(from, to).map_err(err)?;
    }
    Ok(())
}

/// Deletes the replaced set at `old`: embquant's entries by name, the links made of the
/// foreign ones (their data lives on in the new set), then the directory if that emptied
/// it. Anything else (a file someone created there meanwhile) is kept and reported.
fn remove_old(old: &Path, own: &[String], foreign: &[String]) {
    for name in own {
        let _ = std::fs::remove_file(old.join(name));
    }
    for name in foreign {
        let p = old.join(name);
        let _ = if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
    if let Err(e) = std::fs::remove_dir(old) {
        tracing::warn!(path = %old.display(), error = %e, "kept the replaced output directory: it holds files embquant did not expect");
    }
}

/// Stale staging or replaced directories of `target` from jobs that are gone: a replaced
/// set is put back if the target is missing (a crash between two renames), a staging
/// directory is removed when it holds only embquant's files and links.
fn recover_stale(target: &Path) {
    super::atomic::clean_stale_files(target);
    for p in stale_temps(target) {
        if !p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        if !target.exists() && DirManifest::read(&p).is_some() {
            // The old set of a replace that crashed between its two renames.
            if std::fs::rename(&p, target).is_ok() {
                tracing::warn!(path = %target.display(), "restored the output directory a killed job had moved away");
                continue;
            }
        }
        remove_staging(&p, target);
    }
}

/// Removes a dead job's staging directory: its parts and manifest, and entries that are
/// links of the target's own entries. Anything else stays, with a warning.
fn remove_staging(staging: &Path, target: &Path) {
    let Ok(entries) = std::fs::read_dir(staging) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        let ours = (name.starts_with("part-") && name.ends_with(".parquet"))
            || name == MANIFEST_NAME
            || same_file(&p, &target.join(&name));
        if ours {
            let _ = if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
    match std::fs::remove_dir(staging) {
        Ok(()) => tracing::info!(path = %staging.display(), "removed a stale staging directory"),
        Err(e) => {
            tracing::warn!(path = %staging.display(), error = %e, "kept a stale staging directory: it holds files embquant did not write")
        }
    }
}

/// Whether `a` and `b` are the same file (hard links of one inode) or both symlinks to
/// the same place.
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (a.symlink_metadata(), b.symlink_metadata()) else {
        return false;
    };
    if ma.file_type().is_symlink() && mb.file_type().is_symlink() {
        return std::fs::read_link(a).ok() == std::fs::read_link(b).ok();
    }
    if ma.is_dir() && mb.is_dir() {
        // A linked tree: every entry the same file.
        let Ok(entries) = std::fs::read_dir(a) else {
            return false;
        };
        return entries
            .filter_map(|e| e.ok())
            .all(|e| same_file(&e.path(), &b.join(e.file_name())));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Atomically exchanges two paths (both must exist).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: both are valid NUL-terminated strings that outlive the call; renameat2 with
    // AT_FDCWD resolves them like rename(2) and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

fn exchange_unsupported(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::Unsupported {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(target: &Path, overwrite: bool, parts: &[(&str, &str)]) -> Result<()> {
        let d = AtomicDir::create(target, overwrite)?;
        for (name, text) in parts {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d.commit(parts.iter().map(|p| p.0.to_string()).collect(), 1)
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn new_then_replaced_without_a_trace() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        build(
            &t,
            false,
            &[("part-00000.parquet", "a"), ("part-00001.parquet", "b")],
        )
        .unwrap();
        assert_eq!(
            listing(&t),
            [MANIFEST_NAME, "part-00000.parquet", "part-00001.parquet"]
        );
        // embquant's own output is replaced (fewer parts this time: none left over).
        build(&t, false, &[("part-00000.parquet", "c")]).unwrap();
        assert_eq!(listing(&t), [MANIFEST_NAME, "part-00000.parquet"]);
        assert_eq!(std::fs::read(t.join("part-00000.parquet")).unwrap(), b"c");
        assert_eq!(listing(d.path()), ["out"], "no staging or old set left");
    }

    #[test]
    fn foreign_entries_refuse_or_survive_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("docs");
        std::fs::create_dir_all(t.join("sub")).unwrap();
        std::fs::write(t.join("report.docx"), "mine").unwrap();
        std::fs::write(t.join("sub/thesis.tex"), "also mine").unwrap();
        let e = build(&t, false, &[("part-00000.parquet", "a")]).unwrap_err();
        assert!(matches!(e, Error::ForeignOutput { .. }), "{e}");
        assert!(e.to_string().contains("report.docx"), "{e}");
        assert_eq!(listing(&t), ["report.docx", "sub"]);
        assert_eq!(listing(d.path()), ["docs"]);
        // --overwrite: parts added, foreign entries kept (twice: the old parts go).
        build(
            &t,
            true,
            &[("part-00000.parquet", "a"), ("part-00001.parquet", "b")],
        )
        .unwrap();
        build(&t, true, &[("part-00000.parquet", "c")]).unwrap();
        assert_eq!(
            listing(&t),
            [MANIFEST_NAME, "part-00000.parquet", "report.docx", "sub"]
        );
        assert_eq!(std::fs::read(t.join("report.docx")).unwrap(), b"mine");
        assert_eq!(
            std::fs::read(t.join("sub/thesis.tex")).unwrap(),
            b"also mine"
        );
        assert_eq!(listing(d.path()), ["docs"]);
    }

    #[test]
    fn unlisted_part_names_are_not_replaced_even_with_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("old");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("part-00000.parquet"), "older tool").unwrap();
        assert!(build(&t, false, &[("part-00000.parquet", "a")]).is_err());
        assert!(build(&t, true, &[("part-00000.parquet", "a")]).is_err());
        assert_eq!(
            std::fs::read(t.join("part-00000.parquet")).unwrap(),
            b"older tool"
        );
    }

    #[test]
    fn a_file_target_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("x.parquet");
        std::fs::write(&t, "file").unwrap();
        assert!(AtomicDir::create(&t, true).is_err());
        assert_eq!(std::fs::read(&t).unwrap(), b"file");
    }

    #[cfg(unix)]
    #[test]
    fn stale_leftovers_are_recovered_or_removed() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        // A replace killed between its two renames: the target is gone, the old set
        // waits under a dead job's name.
        build(&t, false, &[("part-00000.parquet", "old")]).unwrap();
        let moved = d.path().join(".out.embquant-tmp-2147483646-1");
        std::fs::rename(&t, &moved).unwrap();
        // And a dead job's half-built staging directory.
        let staging = d.path().join(".out.embquant-tmp-2147483646-2");
        std::fs::create_dir(&staging).unwrap();
        std::fs::write(staging.join("part-00000.parquet"), "partial").unwrap();
        let next = AtomicDir::create(&t, false).unwrap();
        assert_eq!(
            std::fs::read(t.join("part-00000.parquet")).unwrap(),
            b"old",
            "the old set is back"
        );
        assert!(!moved.exists() && !staging.exists());
        drop(next);
        assert_eq!(listing(d.path()), ["out"]);
    }
}
