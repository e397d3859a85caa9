//! One identity for every location, and the one guard that no output replaces, deletes or
//! writes inside what a command reads.
//!
//! A location is spelled many ways: `cal.json`, `./x/../cal.json`, a symlink to it,
//! `file:///abs/cal.json`, `file://localhost/abs/%63al.json`, `FILE:/abs/cal.json`; on an
//! object store `s3://b/emb/x.parquet`, `s3a://b/emb/x.parquet`, `S3://b/emb//x.parquet`.
//! [`Location::parse`] reads every spelling the same way (RFC 8089 for `file:` URLs,
//! percent-escapes decoded, scheme aliases and `//` folded, dot segments and query strings
//! refused in object keys), and [`Location::identity`] gives the key two spellings of one
//! location share: a local path absolute with its symlinks and `..` resolved, an object its
//! canonical store (`s3`, `gs`, `az`, `memory` and the bucket) and normalized key.
//!
//! [`Inputs`] collects what a command reads (files found by expanding globs, directories and
//! prefixes, and the directories and prefixes themselves) and [`Inputs::check`] refuses an
//! output that is one of those files, holds one (a directory output), or lies inside an
//! input directory or prefix (a later read of it would take the output as input).

use std::fmt;
use std::path::{Path, PathBuf};

use super::paths::resolve;
use crate::error::{Error, Result};

/// A location as the user named it, decoded: a local path, or an object URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path (from a plain path or a `file:` URL), as given otherwise.
    Local(PathBuf),
    /// An object in a store.
    Object(ObjectUrl),
}

/// An object-store URL, split and normalized: the scheme as written (lowercased), the
/// bucket or container, and the key (percent-decoded, no empty or dot segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// `s3`, `s3a`, `gs`, `az`, `abfss`, `memory`, ... lowercased.
    pub scheme: String,
    /// The bucket (or, for Azure, `container` or `container@account.host`).
    pub bucket: String,
    /// The key within the bucket (segments joined by `/`, possibly empty).
    pub key: String,
}

impl ObjectUrl {
    /// The store URL `scheme://bucket`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.bucket)
    }

    /// The normalized URL.
    pub fn url(&self) -> String {
        if self.key.is_empty() {
            self.base()
        } else {
            format!("{}://{}/{}", self.scheme, self.bucket, self.key)
        }
    }

    /// The scheme every alias of this one folds to (`s3a` and `s3n` are `s3`, `gcs` is
    /// `gs`, the Azure schemes are `az`).
    pub fn canonical_scheme(&self) -> &'static str {
        canonical_scheme(&self.scheme).unwrap_or("?")
    }
}

/// Where two spellings of one location agree: equal identities name the same file, object,
/// directory or prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// An absolute local path, symlinks and `.`/`..` resolved for the part that exists.
    Local(PathBuf),
    /// `canonical-scheme://bucket` (bucket lowercased; for Azure, the container) and key.
    Object {
        /// `s3://bucket`, `gs://bucket`, `az://container`, `memory://name`.
        store: String,
        /// The normalized key.
        key: String,
    },
}

impl Identity {
    /// Whether `other` is this location or lies below it (a file in a directory, an object
    /// under a prefix).
    pub fn contains(&self, other: &Identity) -> bool {
        match (self, other) {
            (Identity::Local(a), Identity::Local(b)) => b.starts_with(a),
            (Identity::Object { store: s, key: a }, Identity::Object { store: t, key: b }) => {
                s == t
                    && (a.is_empty()
                        || b == a
                        || (b.len() > a.len()
                            && b.starts_with(a.as_str())
                            && b[a.len()..].starts_with('/')))
            }
            _ => false,
        }
    }

    /// The identity of a path as a [`Store`](super::source::Store) lists it: a URL for an
    /// object, a local path otherwise.
    pub fn of_listed(path: &Path) -> Identity {
        let s = path.to_string_lossy();
        if super::is_url(&s) {
            if let Ok(l) = Location::parse(&s) {
                return l.identity();
            }
        }
        Identity::Local(resolve(path))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Local(p) => write!(f, "{}", p.display()),
            Identity::Object { store, key } => write!(f, "{store}/{key}"),
        }
    }
}

/// The scheme `scheme` folds to, if it names an object store embquant reads.
fn canonical_scheme(scheme: &str) -> Option<&'static str> {
    Some(match scheme {
        "s3" | "s3a" | "s3n" => "s3",
        "gs" | "gcs" => "gs",
        "az" | "azure" | "abfs" | "abfss" | "adl" => "az",
        "memory" => "memory",
        _ => return None,
    })
}

impl Location {
    /// Reads one spelling of a location: a plain path (kept as written), a `file:` URL
    /// (`file:///abs`, `file://localhost/abs`, `file:/abs`, any case, percent-escapes
    /// decoded; another host is refused), or an object-store URL (`s3://`, `s3a://`, `gs://`,
    /// `az://`, `abfss://`, `memory://`, ...: scheme lowercased, key percent-decoded and
    /// `//` folded; `.`/`..` segments, query strings and fragments refused). Glob
    /// characters are kept.
    pub fn parse(s: &str) -> Result<Location> {
        let bad = |why: &str| Error::bad_argument("path", format!("{s}: {why}"));
        if s.len() >= 5 && s[..5].eq_ignore_ascii_case("file:") {
            return parse_file_url(s).map(Location::Local);
        }
        if !super::is_url(s) {
            if s.is_empty() {
                return Err(bad("an empty path"));
            }
            return Ok(Location::Local(PathBuf::from(s)));
        }
        let (scheme, rest) = s.split_once("://").expect("is_url checked");
        let scheme = scheme.to_ascii_lowercase();
        if canonical_scheme(&scheme).is_none() {
            return Err(bad(&format!(
                "unsupported URL scheme {scheme:?} (s3, s3a, gs, az, azure, abfs, abfss, adl, \
                 memory, file, or a plain path)"
            )));
        }
        if rest.contains(['?', '#']) {
            return Err(bad(
                "a query string or fragment in an object URL (globs in object URLs use * and [...])",
            ));
        }
        let (bucket, raw_key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket or container after the scheme"));
        }
        let decoded = percent_decode(raw_key.as_bytes());
        let decoded = String::from_utf8(decoded).map_err(|_| bad("the key is not UTF-8"))?;
        let mut segments = Vec::new();
        for seg in decoded.split('/') {
            match seg {
                "" => {}
                "." | ".." => {
                    return Err(bad(
                        "a `.` or `..` segment in an object key (keys are names, not paths)",
                    ))
                }
                seg if seg.chars().any(|c| c.is_control()) => {
                    return Err(bad("a control character in the key"))
                }
                seg => segments.push(seg),
            }
        }
        Ok(Location::Object(ObjectUrl {
            scheme,
            bucket: bucket.to_string(),
            key: segments.join("/"),
        }))
    }

    /// [`Location::parse`] of a path argument (a path that is not UTF-8 is a local path as
    /// given).
    pub fn of_path(p: &Path) -> Result<Location> {
        match p.to_str() {
            Some(s) => Location::parse(s),
            None => Ok(Location::Local(p.to_path_buf())),
        }
    }

    /// The key two spellings of this location share (see the module docs).
    pub fn identity(&self) -> Identity {
        match self {
            Location::Local(p) => Identity::Local(resolve(p)),
            Location::Object(o) => {
                // Azure: `container@account.host` and `az://container` name one container
                // (the account is compared no further: refusing too much is safe).
                let bucket = o.bucket.split('@').next().unwrap_or(&o.bucket);
                Identity::Object {
                    store: format!("{}://{}", o.canonical_scheme(), bucket.to_ascii_lowercase()),
                    key: o.key.clone(),
                }
            }
        }
    }

    /// The local path, if this is one.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Object(_) => None,
        }
    }

    /// The path or normalized URL to read or write it with.
    pub fn spelling(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Object(o) => o.url(),
        }
    }
}

/// The path a `file:` URL names (RFC 8089): `file:///p`, `file://localhost/p` or `file:/p`,
/// percent-decoded.
fn parse_file_url(s: &str) -> Result<PathBuf> {
    let bad = |why: &str| Error::bad_argument("path", format!("{s}: {why}"));
    let rest = &s[5..];
    let path = if let Some(after) = rest.strip_prefix("//") {
        let (host, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
            return Err(bad(&format!(
                "a file URL on host {host:?}: only local files (file:///path or file://localhost/path)"
            )));
        }
        path
    } else {
        rest
    };
    if !path.starts_with('/') {
        return Err(bad("a file URL names an absolute path (file:///path)"));
    }
    if path.contains(['?', '#']) {
        return Err(bad("a query string or fragment in a file URL"));
    }
    let bytes = percent_decode(path.as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }
    #[cfg(not(unix))]
    {
        String::from_utf8(bytes)
            .map(PathBuf::from)
            .map_err(|_| bad("the path is not UTF-8"))
    }
}

/// `%XX` escapes decoded; a malformed escape is kept as written (as URL parsers do).
pub(crate) fn percent_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// What a command reads, by identity: no output may be one of these files, hold one, or lie
/// inside one of these directories or prefixes.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// Files (or objects) read, and how the user named them.
    files: Vec<(Identity, String)>,
    /// Directories and prefixes read (every file below them is an input, now or next run).
    containers: Vec<(Identity, String)>,
}

impl Inputs {
    /// No inputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file the command reads, as a store lists it (a local path or an object URL).
    pub fn add_listed(&mut self, path: &Path) {
        self.files
            .push((Identity::of_listed(path), path.display().to_string()));
    }

    /// Adds the files of `files` (as [`super::discover`] found them).
    #[cfg(feature = "job")]
    pub fn add_files(&mut self, files: &[super::InputFile]) {
        for f in files {
            self.add_listed(&f.path);
        }
    }

    /// Adds an input as the user spelled it: the file, directory or prefix it names (the
    /// files a glob matches are added by [`Inputs::add_files`] after discovery). A local
    /// directory, and an object key that is not a glob (a prefix or an object: both are
    /// guarded), are containers.
    pub fn add_spelling(&mut self, spelling: &str) -> Result<()> {
        let loc = Location::parse(spelling)?;
        let id = loc.identity();
        let glob = spelling.contains(['*', '?', '[']);
        match &loc {
            Location::Local(p) => {
                if p.is_dir() {
                    self.containers.push((id, spelling.to_string()));
                } else if !glob {
                    self.files.push((id, spelling.to_string()));
                }
            }
            Location::Object(_) => {
                if !glob {
                    self.files.push((id.clone(), spelling.to_string()));
                    self.containers.push((id, spelling.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Merges `other` into these inputs.
    pub fn extend(&mut self, other: Inputs) {
        self.files.extend(other.files);
        self.containers.extend(other.containers);
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.containers.is_empty()
    }

    /// Refuses an output at `output` (`dir`: a directory or prefix output, which replaces
    /// what is below it) that is an input file, holds one, or lies inside an input directory
    /// or prefix; `output` is named as the user spelled it in the error.
    pub fn check(&self, output: &Location, dir: bool, spelled: &str) -> Result<()> {
        let out = output.identity();
        let refuse = |input: &str, reason: &'static str| {
            Err(Error::OutputIsInput {
                output: spelled.to_string(),
                input: input.to_string(),
                reason,
            })
        };
        for (id, name) in &self.files {
            if *id == out {
                return refuse(name, "the same location");
            }
            if dir && out.contains(id) {
                return refuse(name, "the output directory holds it");
            }
        }
        for (id, name) in &self.containers {
            if id.contains(&out) {
                return refuse(name, "the output is inside an input directory or prefix, so a later read would take it as input");
            }
            if out.contains(id) {
                return refuse(name, "the output holds it");
            }
        }
        Ok(())
    }

    /// [`Inputs::check`] of a spelling.
    pub fn check_spelling(&self, output: &str, dir: bool) -> Result<Location> {
        let loc = Location::parse(output)?;
        self.check(&loc, dir, output)?;
        Ok(loc)
    }
}

/// Refuses an output that would replace or delete one of `inputs` (input files as a
/// [`Store`](super::source::Store) lists them, a calibration, queries, a reference): the
/// output is an input in another spelling, or, for a directory output, an input lies inside
/// it. [`Inputs`] with the files as listed.
pub fn check_not_input<P: AsRef<Path>>(output: &Path, is_dir: bool, inputs: &[P]) -> Result<()> {
    let mut guard = Inputs::new();
    for input in inputs {
        guard.add_listed(input.as_ref());
    }
    let spelled = output.display().to_string();
    let loc = if super::is_url(&spelled) || spelled.to_ascii_lowercase().starts_with("file:") {
        Location::parse(&spelled)?
    } else {
        Location::Local(output.to_path_buf())
    };
    guard.check(&loc, is_dir, &spelled)
}

#[cfg(test)]
mod tests;
