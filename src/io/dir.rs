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
//! - A part counts as embquant's own only when the manifest records its size and SHA-256
//!   (written when the part was committed) and the file there still matches them, and it is
//!   named like a part (`part-*.parquet`). A forged or foreign manifest therefore cannot
//!   make embquant delete a file it lists (`thesis.tex`), a part changed since is kept, and
//!   the parts of an older manifest that records names only are never deleted.
//! - A manifest that names anything but a plain file name inside its directory
//!   (`../x.parquet`, `/etc/passwd`) is not used at all: not read, nothing replaced.
//! - A target holding anything else (an input, notes, another tool's files, parts of an
//!   older embquant without a manifest, parts that do not match their manifest) is
//!   refused, naming the entry. With `overwrite`, those entries are kept: each is
//!   hard-linked into the new set before the exchange, so only embquant's own previous
//!   parts are replaced. An entry named like a new part (or like the manifest) is refused
//!   even then.
//! - Where the exchange is not available (other systems, some file systems), an
//!   embquant-only target is replaced by two renames through `.NAME.embquant-tmp-PID-N`;
//!   a crash between them leaves the old set there, and the next run puts it back.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::atomic::{
    create_temp_dir, parent_of, register, stale_temps, temp_path, try_lock, unregister, TempLock,
};
use crate::error::{Error, Result};

/// The manifest file of a directory output.
pub const MANIFEST_NAME: &str = "_embquant_manifest.json";

/// What a directory output holds: written last into the staging directory, read to tell
/// embquant's own files from everything else.
///
/// Readers get it through [`DirManifest::load`] or [`DirManifest::parts_checked`], which
/// refuse a manifest naming anything but plain file names inside its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirManifest {
    /// Always `"embquant-parts"`.
    pub kind: String,
    /// The embquant version that wrote it.
    pub embquant_version: String,
    /// The part files (plain names inside the directory), in row order.
    pub parts: Vec<String>,
    /// Rows over all parts.
    pub rows: u64,
    /// Size and checksum of each part, recorded when the set was committed. Empty in
    /// manifests of older versions (and of outputs written to object stores): their parts
    /// cannot be verified, so they are never deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<PartChecksum>,
}

/// The size and SHA-256 of one part, as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartChecksum {
    /// The part's file name (one of [`DirManifest::parts`]).
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

impl DirManifest {
    /// A manifest of `parts`, without checksums (the parts cannot be verified later; see
    /// [`DirManifest::of_parts`]).
    pub fn new(parts: Vec<String>, rows: u64) -> Self {
        DirManifest {
            kind: "embquant-parts".into(),
            embquant_version: env!("CARGO_PKG_VERSION").into(),
            parts,
            rows,
            checksums: Vec::new(),
        }
    }

    /// A manifest of `parts` (plain file names inside `dir`), recording the size and SHA-256
    /// of each as it is now.
    pub fn of_parts(dir: &Path, parts: Vec<String>, rows: u64) -> Result<Self> {
        let mut checksums = Vec::with_capacity(parts.len());
        for name in &parts {
            if let Some(problem) = name_problem(name) {
                return Err(Error::output_conflict(
                    dir.display(),
                    format!("the part name {name:?} {problem}"),
                ));
            }
            let path = dir.join(name);
            let (bytes, sha256) =
                checksum(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            checksums.push(PartChecksum {
                name: name.clone(),
                bytes,
                sha256,
            });
        }
        Ok(DirManifest {
            checksums,
            ..DirManifest::new(parts, rows)
        })
    }

    /// The manifest of directory `dir`: `None` when there is none (or it is another tool's
    /// file of that name, of another `kind`), an error when it cannot be read or parsed, or
    /// lists an entry that is not a plain file name inside `dir` ([`Error::BadManifest`]).
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(MANIFEST_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let m: DirManifest = serde_json::from_str(&text).map_err(|e| {
            Error::io(
                format!("reading {}", path.display()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        if m.kind != "embquant-parts" {
            return Ok(None);
        }
        m.validate(&path)?;
        Ok(Some(m))
    }

    /// The parts the manifest of `dir` lists, as paths inside `dir`, in row order: `None`
    /// when `dir` has no manifest; errors as [`DirManifest::load`]. The way to read a
    /// directory output's parts.
    pub fn parts_checked(dir: &Path) -> Result<Option<Vec<PathBuf>>> {
        Ok(Self::load(dir)?.map(|m| m.parts.iter().map(|p| dir.join(p)).collect()))
    }

    /// The manifest of directory `dir`, if it has a readable and valid one: as
    /// [`DirManifest::load`] with every problem as `None` (logged). Readers that need to
    /// tell "no manifest" from "a bad one" use [`DirManifest::load`].
    pub fn read(dir: &Path) -> Option<Self> {
        match Self::load(dir) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "ignored a directory output's manifest");
                None
            }
        }
    }

    /// Refuses entries that are not plain file names (parts, checksums), duplicates, the
    /// manifest's own name, and checksums of files that are not parts; `manifest` names the
    /// file in the error.
    pub fn validate(&self, manifest: &Path) -> Result<()> {
        let bad = |entry: &str, problem: &str| Error::BadManifest {
            manifest: manifest.display().to_string(),
            entry: entry.to_string(),
            problem: problem.to_string(),
        };
        let mut seen = std::collections::HashSet::new();
        for name in &self.parts {
            if let Some(problem) = name_problem(name) {
                return Err(bad(name, problem));
            }
            if !seen.insert(name.as_str()) {
                return Err(bad(name, "is listed twice"));
            }
        }
        let mut summed = std::collections::HashSet::new();
        for c in &self.checksums {
            if let Some(problem) = name_problem(&c.name) {
                return Err(bad(&c.name, problem));
            }
            if !seen.contains(c.name.as_str()) {
                return Err(bad(&c.name, "has a checksum but is not listed as a part"));
            }
            if !summed.insert(c.name.as_str()) {
                return Err(bad(&c.name, "has two checksums"));
            }
        }
        Ok(())
    }

    /// The recorded size and checksum of part `name`, if the manifest has them.
    fn checksum_of(&self, name: &str) -> Option<&PartChecksum> {
        self.checksums.iter().find(|c| c.name == name)
    }
}

/// What makes `name` something other than a plain file name inside a directory, if
/// anything.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name == "." || name == ".." {
        return Some("is `.` or `..`, not a file name");
    }
    if name.contains(['/', '\\']) {
        return Some("holds a path separator (a path, not a file name)");
    }
    if name.contains('\0') {
        return Some("holds a NUL byte");
    }
    if name == MANIFEST_NAME {
        return Some("is the manifest itself");
    }
    // Whatever else the platform reads as more than one plain name (a drive prefix).
    let mut comps = Path::new(name).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(c)), None) if c == name => None,
        _ => Some("is not a plain file name"),
    }
}

/// Whether `name` is named like a part embquant writes: only such files are ever deleted
/// as its own.
fn part_like(name: &str) -> bool {
    name.starts_with("part-") && name.ends_with(".parquet")
}

/// The size and SHA-256 (lowercase hex) of the file at `path`.
fn checksum(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, format!("{:x}", h.finalize())))
}

/// What identifies one file as it was seen: a file replaced or rewritten since differs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    dev_ino: (u64, u64),
}

impl Stamp {
    /// The stamp of the regular file at `path` (not followed if a symlink).
    fn of(path: &Path) -> Option<Self> {
        let m = path.symlink_metadata().ok()?;
        if !m.is_file() {
            return None;
        }
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            dev_ino: (m.dev(), m.ino()),
        })
    }
}

/// How far [`survey`] checks that a listed part is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// Name and size (cheap: an early refusal before a job runs).
    Size,
    /// Name, size and SHA-256 (before anything is deleted).
    Checksum,
}

/// What an existing target holds.
struct Existing {
    /// embquant's own entries present (a valid manifest, and the parts it lists that
    /// match their recorded size and checksum), as they were seen.
    own: Vec<(String, Stamp)>,
    /// Everything else.
    foreign: Vec<String>,
    /// Why the target's `_embquant_manifest.json` is among the foreign entries, if it is.
    bad_manifest: Option<String>,
}

impl Existing {
    /// Refuses a target whose manifest embquant cannot use (the new set needs that name,
    /// so `overwrite` cannot keep it), or, without `overwrite`, one holding foreign entries.
    fn check(&self, target: &Path, overwrite: bool) -> Result<()> {
        if let Some(problem) = &self.bad_manifest {
            return Err(Error::output_conflict(
                target.display(),
                format!("its {MANIFEST_NAME} is not a manifest embquant can use ({problem}); move it away or choose another directory"),
            ));
        }
        match (overwrite, self.foreign.first()) {
            (false, Some(f)) => Err(refuse(target, f)),
            _ => Ok(()),
        }
    }
}

fn survey(target: &Path, verify: Verify) -> Result<Option<Existing>> {
    let meta = match target.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(target.display().to_string(), e)),
    };
    if !meta.is_dir() {
        return Err(Error::output_conflict(
            target.display(),
            "exists and is not a directory; a directory output (--target-file-rows) cannot replace it",
        ));
    }
    // A manifest that cannot be used: every entry, the manifest too, counts as foreign.
    let (manifest, mut bad_manifest) = match DirManifest::load(target) {
        Ok(m) => (m, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (mut own, mut foreign) = (Vec::new(), Vec::new());
    let entries = std::fs::read_dir(target)
        .map_err(|e| Error::io(format!("listing {}", target.display()), e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(format!("listing {}", target.display()), e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let stamp = e
            .file_type()
            .is_ok_and(|t| t.is_file())
            .then(|| Stamp::of(&path))
            .flatten();
        let mine = match (&manifest, &stamp) {
            (Some(_), Some(_)) if name == MANIFEST_NAME => true,
            (Some(m), Some(st)) => m.parts.contains(&name) && verified(m, &name, &path, st, verify),
            _ => false,
        };
        match (mine, stamp) {
            (true, Some(st)) => own.push((name, st)),
            (_, stamp) => {
                if name == MANIFEST_NAME && bad_manifest.is_none() {
                    bad_manifest = Some(match stamp {
                        None => "not a regular file".to_string(),
                        Some(_) => "not of kind embquant-parts".to_string(),
                    });
                }
                foreign.push(name)
            }
        }
    }
    own.sort_by(|a, b| a.0.cmp(&b.0));
    foreign.sort();
    Ok(Some(Existing {
        own,
        foreign,
        bad_manifest,
    }))
}

/// Whether part `name` at `path` (a regular file, `stamp`) is the one `m` recorded: named
/// like a part, and of the recorded size and (with [`Verify::Checksum`]) SHA-256.
fn verified(m: &DirManifest, name: &str, path: &Path, stamp: &Stamp, verify: Verify) -> bool {
    let Some(sum) = m.checksum_of(name) else {
        tracing::debug!(
            part = name,
            "listed without a checksum (an older manifest): kept"
        );
        return false;
    };
    if !part_like(name) || sum.bytes != stamp.len {
        return false;
    }
    if verify == Verify::Size {
        return true;
    }
    match checksum(path) {
        Ok((bytes, sha)) if bytes == sum.bytes && sha == sum.sha256 => true,
        Ok(_) => {
            tracing::warn!(path = %path.display(), "changed since embquant wrote it: kept");
            false
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot verify: kept");
            false
        }
    }
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
    /// The lock of the staging directory (Unix), held while it is built, so other jobs,
    /// whatever their PID namespace, never take it for a dead job's leftover.
    _lock: Option<TempLock>,
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
        if let Some(ex) = survey(target, Verify::Size)? {
            ex.check(target, overwrite)?;
        }
        let (staging, lock) = create_temp_dir(target)?;
        register(&staging);
        Ok(AtomicDir {
            staging,
            target: target.to_path_buf(),
            overwrite,
            committed: false,
            _lock: lock,
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

    /// Writes the manifest of `parts` (plain names inside the staging directory, named
    /// `part-*.parquet`) with their sizes and checksums, flushes them, and puts the new set
    /// in place of the target in one step.
    pub fn commit(mut self, parts: Vec<String>, rows: u64) -> Result<()> {
        for p in &parts {
            if !part_like(p) {
                return Err(Error::output_conflict(
                    self.target.display(),
                    format!("a part of a directory output is named part-*.parquet, not {p:?}"),
                ));
            }
            let path = self.staging.join(p);
            let f = std::fs::File::open(&path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            let _ = f.sync_all();
        }
        let manifest = DirManifest::of_parts(&self.staging, parts, rows)?;
        let mpath = self.staging.join(MANIFEST_NAME);
        std::fs::write(&mpath, serde_json::to_string_pretty(&manifest)?)
            .map_err(|e| Error::io(format!("writing {}", mpath.display()), e))?;
        // A concurrent job may create or replace the target meanwhile: look again after a
        // failed step (bounded, each attempt does one atomic operation).
        for _ in 0..8 {
            let existing = survey(&self.target, Verify::Checksum)?;
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
            ex.check(&self.target, self.overwrite)?;
            if let Some(clash) = ex.foreign.iter().find(|f| manifest.parts.contains(f)) {
                return Err(Error::output_conflict(
                    self.target.display(),
                    format!("{clash} exists and is not a part embquant can verify as its own (not listed in embquant's manifest there, listed without a checksum by an older version, or changed since); move it away or choose another directory"),
                ));
            }
            // Keep the foreign entries: link them into the new set.
            for f in &ex.foreign {
                link_tree(&self.target.join(f), &self.staging.join(f))?;
            }
            // The old set is at the staging name after the exchange: locked, so no other
            // job takes it for a dead job's leftover while it is removed.
            let _old_lock = try_lock(&self.target);
            match exchange(&self.staging, &self.target) {
                Ok(()) => {
                    self.committed = true;
                    // The old set is now at the staging path.
                    unregister(&self.staging);
                    remove_old(&self.staging, &self.target);
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
                    return self.two_renames();
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
        Err(Error::output_conflict(
            self.target.display(),
            "another job keeps replacing this directory; try again",
        ))
    }

    fn two_renames(mut self) -> Result<()> {
        let old = temp_path(&self.target)?;
        let err = |e| Error::io(format!("renaming into {}", self.target.display()), e);
        // Locked while at the temporary name, as in `commit`.
        let _old_lock = try_lock(&self.target);
        std::fs::rename(&self.target, &old).map_err(err)?;
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            let _ = std::fs::rename(&old, &self.target);
            return Err(err(e));
        }
        self.committed = true;
        unregister(&self.staging);
        remove_old(&old, &self.target);
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

/// Deletes the replaced set, now at the private path `old`: the parts its own manifest
/// verifies (name, size and SHA-256, checked again here: a concurrent job may have put
/// another set in place between the survey and the swap), its manifest, and entries that
/// are the same files as the new set at `target` holds (the foreign entries linked into
/// it), then the directory if that emptied it. Anything else is kept and reported.
fn remove_old(old: &Path, target: &Path) {
    match survey(old, Verify::Checksum) {
        Ok(Some(ex)) => {
            // Parts first, the manifest last: an interrupted clean-up leaves a set its
            // manifest still describes.
            let (manifest, parts): (Vec<_>, Vec<_>) =
                ex.own.iter().partition(|(n, _)| n == MANIFEST_NAME);
            for (name, _) in parts.into_iter().chain(manifest) {
                let _ = std::fs::remove_file(old.join(name));
            }
            for name in &ex.foreign {
                let p = old.join(name);
                if same_file(&p, &target.join(name)) {
                    let _ = if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        }
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(path = %old.display(), error = %e, "could not survey the replaced output directory")
        }
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
    // Each held locked until it is restored or removed.
    for stale in stale_temps(target) {
        let p = &stale.path;
        if !p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        if !target.exists() && DirManifest::read(p).is_some() {
            // The old set of a replace that crashed between its two renames.
            if std::fs::rename(p, target).is_ok() {
                tracing::warn!(path = %target.display(), "restored the output directory a killed job had moved away");
                continue;
            }
        }
        remove_staging(p, target);
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
        assert_err!(
            build(&t, false, &[("part-00000.parquet", "a")]),
            crate::Error::ForeignOutput { .. }
        );
        assert_err!(
            build(&t, true, &[("part-00000.parquet", "a")]),
            crate::Error::OutputConflict { .. }
        );
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
        assert_err!(
            AtomicDir::create(&t, true),
            crate::Error::OutputConflict { .. }
        );
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

    #[cfg(unix)]
    #[test]
    fn a_locked_staging_directory_of_a_pid_not_running_here_is_kept() {
        use std::os::fd::AsRawFd;
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        // A live job of another PID namespace building its set: its PID is not running
        // here, but it holds the lock of its staging directory.
        let live = d.path().join(".out.embquant-tmp-2147483646-1");
        std::fs::create_dir(&live).unwrap();
        std::fs::write(live.join("part-00000.parquet"), "theirs").unwrap();
        let held = std::fs::File::open(&live).unwrap();
        // SAFETY: flock on a descriptor `held` owns and keeps open during the call.
        assert_eq!(
            unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        // A dead job's staging directory: nobody holds its lock.
        let dead = d.path().join(".out.embquant-tmp-2147483646-2");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("part-00000.parquet"), "partial").unwrap();
        let next = AtomicDir::create(&t, false).unwrap();
        assert!(!dead.exists());
        assert_eq!(
            std::fs::read(live.join("part-00000.parquet")).unwrap(),
            b"theirs"
        );
        // This job's own staging directory is locked too while it is built.
        assert!(try_lock(next.path()).is_none());
        std::fs::write(next.path().join("part-00000.parquet"), "ours").unwrap();
        next.commit(vec!["part-00000.parquet".into()], 1).unwrap();
        assert!(try_lock(&t).is_some(), "released after the commit");
        assert!(live.exists());
        // The job ended: its staging directory is a leftover now.
        drop(held);
        build(&t, false, &[("part-00000.parquet", "again")]).unwrap();
        assert_eq!(listing(d.path()), ["out"]);
    }

    #[test]
    fn a_directory_output_with_a_long_name() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("d".repeat(250));
        build(&t, false, &[("part-00000.parquet", "a")]).unwrap();
        build(&t, false, &[("part-00000.parquet", "b")]).unwrap();
        assert_eq!(std::fs::read(t.join("part-00000.parquet")).unwrap(), b"b");
        assert_eq!(listing(d.path()), ["d".repeat(250)]);
        // A dead job's staging directory of it is found and removed.
        let prefix = super::super::atomic::temp_prefix(&t).unwrap();
        let dead = d.path().join(format!("{prefix}2147483646-0"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("part-00000.parquet"), "partial").unwrap();
        #[cfg(unix)]
        {
            build(&t, false, &[("part-00000.parquet", "c")]).unwrap();
            assert_eq!(listing(d.path()), ["d".repeat(250)]);
        }
    }

    fn write_manifest(dir: &Path, m: &DirManifest) {
        std::fs::write(dir.join(MANIFEST_NAME), serde_json::to_string(m).unwrap()).unwrap();
    }

    #[test]
    fn the_manifest_records_sizes_and_checksums() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        build(&t, false, &[("part-00000.parquet", "abc")]).unwrap();
        let m = DirManifest::load(&t).unwrap().unwrap();
        assert_eq!(m.parts, ["part-00000.parquet"]);
        assert_eq!(
            m.checksums,
            [PartChecksum {
                name: "part-00000.parquet".into(),
                bytes: 3,
                // sha256("abc")
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            }]
        );
        assert_eq!(
            DirManifest::parts_checked(&t).unwrap().unwrap(),
            [t.join("part-00000.parquet")]
        );
        assert_eq!(DirManifest::parts_checked(d.path()).unwrap(), None);
        // An older manifest (names only) still reads.
        let old = r#"{"kind":"embquant-parts","embquant_version":"0.1.0","parts":["part-00000.parquet"],"rows":1}"#;
        std::fs::write(t.join(MANIFEST_NAME), old).unwrap();
        let m = DirManifest::load(&t).unwrap().unwrap();
        assert!(m.checksums.is_empty());
        assert_eq!(m, DirManifest::read(&t).unwrap());
    }

    #[test]
    fn manifests_naming_paths_are_rejected() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(d.path().join("x.parquet"), "outside").unwrap();
        for bad in [
            "../x.parquet",
            "/etc/passwd",
            "sub/part.parquet",
            "a\\b.parquet",
            "..",
            ".",
            "",
            "nul\0.parquet",
            MANIFEST_NAME,
        ] {
            write_manifest(
                &t,
                &DirManifest::new(vec!["part-00000.parquet".into(), bad.into()], 2),
            );
            let e = DirManifest::load(&t).unwrap_err();
            match &e {
                Error::BadManifest {
                    manifest, entry, ..
                } => {
                    assert_eq!(manifest, &t.join(MANIFEST_NAME).display().to_string());
                    assert_eq!(entry, bad);
                }
                e => panic!("{bad:?}: {e}"),
            }
            assert!(e.to_string().contains(MANIFEST_NAME), "{e}");
            assert_err!(
                DirManifest::parts_checked(&t),
                crate::Error::BadManifest { .. }
            );
            assert_eq!(DirManifest::read(&t), None);
        }
        // A checksum of a file that is not a part, duplicates.
        let mut m = DirManifest::new(vec!["part-00000.parquet".into()], 1);
        m.checksums.push(PartChecksum {
            name: "../x.parquet".into(),
            bytes: 7,
            sha256: String::new(),
        });
        write_manifest(&t, &m);
        assert_err!(DirManifest::load(&t), crate::Error::BadManifest { .. });
        let twice = vec!["part-00000.parquet".to_string(); 2];
        write_manifest(&t, &DirManifest::new(twice, 1));
        assert_err!(DirManifest::load(&t), crate::Error::BadManifest { .. });
        // Such a directory is not replaced, even with overwrite; nothing outside is touched.
        write_manifest(&t, &DirManifest::new(vec!["../x.parquet".into()], 1));
        for overwrite in [false, true] {
            let e = build(&t, overwrite, &[("part-00000.parquet", "a")]).unwrap_err();
            assert!(e.to_string().contains("../x.parquet"), "{e}");
        }
        assert_eq!(
            std::fs::read(d.path().join("x.parquet")).unwrap(),
            b"outside"
        );
        assert_eq!(listing(&t), [MANIFEST_NAME]);
        assert_eq!(listing(d.path()), ["out", "x.parquet"]);
    }

    #[test]
    fn a_forged_manifest_deletes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("docs");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("thesis.tex"), "years of work").unwrap();
        // Names only (as older manifests), then with the file's true size and checksum.
        let names_only = DirManifest::new(vec!["thesis.tex".into()], 1);
        let with_sum = DirManifest::of_parts(&t, vec!["thesis.tex".into()], 1).unwrap();
        assert_eq!(with_sum.checksums.len(), 1);
        for forged in [names_only, with_sum] {
            write_manifest(&t, &forged);
            let e = build(&t, false, &[("part-00000.parquet", "a")]).unwrap_err();
            assert!(
                matches!(&e, Error::ForeignOutput { entry, .. } if entry == "thesis.tex"),
                "{e}"
            );
            build(&t, true, &[("part-00000.parquet", "a")]).unwrap();
            assert_eq!(
                std::fs::read(t.join("thesis.tex")).unwrap(),
                b"years of work"
            );
            assert_eq!(
                listing(&t),
                [MANIFEST_NAME, "part-00000.parquet", "thesis.tex"]
            );
            std::fs::remove_file(t.join("part-00000.parquet")).unwrap();
        }
        assert_eq!(listing(d.path()), ["docs"]);
    }

    #[test]
    fn a_changed_part_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        build(
            &t,
            false,
            &[
                ("part-00000.parquet", "aaaa"),
                ("part-00001.parquet", "bbbb"),
            ],
        )
        .unwrap();
        // Same name, same size, other bytes.
        std::fs::write(t.join("part-00001.parquet"), "edit").unwrap();
        let e = build(&t, false, &[("part-00000.parquet", "cccc")]).unwrap_err();
        assert!(
            matches!(&e, Error::ForeignOutput { entry, .. } if entry == "part-00001.parquet"),
            "{e}"
        );
        assert_eq!(
            std::fs::read(t.join("part-00000.parquet")).unwrap(),
            b"aaaa"
        );
        // A new part of the same name: refused even with overwrite.
        let e = build(
            &t,
            true,
            &[("part-00000.parquet", "c"), ("part-00001.parquet", "d")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("part-00001.parquet exists"), "{e}");
        // Otherwise kept, while the verified part is replaced.
        build(&t, true, &[("part-00000.parquet", "cccc")]).unwrap();
        assert_eq!(
            std::fs::read(t.join("part-00000.parquet")).unwrap(),
            b"cccc"
        );
        assert_eq!(
            std::fs::read(t.join("part-00001.parquet")).unwrap(),
            b"edit"
        );
        assert_eq!(listing(d.path()), ["out"]);
    }

    #[test]
    fn parts_of_a_names_only_manifest_are_never_deleted() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        build(
            &t,
            false,
            &[("part-00000.parquet", "a"), ("part-00001.parquet", "b")],
        )
        .unwrap();
        // As an older embquant wrote it.
        let names = vec!["part-00000.parquet".into(), "part-00001.parquet".into()];
        write_manifest(&t, &DirManifest::new(names, 2));
        let e = build(&t, false, &[("part-00000.parquet", "c")]).unwrap_err();
        assert!(matches!(e, Error::ForeignOutput { .. }), "{e}");
        let e = build(&t, true, &[("part-00000.parquet", "c")]).unwrap_err();
        assert!(e.to_string().contains("older version"), "{e}");
        build(&t, true, &[("part-00002.parquet", "c")]).unwrap();
        assert_eq!(
            listing(&t),
            [
                MANIFEST_NAME,
                "part-00000.parquet",
                "part-00001.parquet",
                "part-00002.parquet"
            ]
        );
        assert_eq!(std::fs::read(t.join("part-00000.parquet")).unwrap(), b"a");
    }

    #[test]
    fn an_unreadable_manifest_is_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join(MANIFEST_NAME), "{").unwrap();
        assert_err!(DirManifest::load(&t), crate::Error::Io { .. });
        let e = build(&t, true, &[("part-00000.parquet", "a")]).unwrap_err();
        assert!(
            e.to_string().contains("not a manifest embquant can use"),
            "{e}"
        );
        assert_eq!(std::fs::read(t.join(MANIFEST_NAME)).unwrap(), b"{");
    }
}
