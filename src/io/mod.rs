//! Where bytes enter and leave the process: every input embquant reads and every output it
//! writes goes through this module.
//!
//! - `source` (feature `job`): byte sources ([`source::ByteSource`], one stored object;
//!   [`source::Store`], listing and opening objects; the local file system implements
//!   both, an object-store backend implements the same traits) and their adapter to the
//!   Parquet reader.
//! - [`object`] (feature `cloud`): object stores (`s3://`, `gs://`, `az://`, `abfss://`,
//!   `memory://`) behind the same two traits, read with ranged GETs through a bounded
//!   read-ahead window, each store configured from the environment.
//! - `input` (feature `job`): input discovery (files, directories, globs), footers parsed
//!   once, and [`input::InputFile::reader`], the one Parquet reader every module uses.
//! - `dense` (feature `job`): a `FixedSizeList<Float32>` column without nulls decoded by
//!   Parquet's column reader straight into row-major floats (full scans of the float
//!   column, e.g. the recall report's ground truth).
//! - `location`: one identity for every spelling of a location (paths, `file:` URLs,
//!   object-store URLs and their aliases), and [`location::Inputs`], the one guard that no
//!   output replaces, deletes or lands inside what a command reads.
//! - `paths`: resolving paths the way the OS will (symlinks, `..`, relative paths).
//! - `atomic`: a single-file output written beside its target under a recognisable
//!   temporary name (`.NAME.embquant-tmp-PID-N`) and renamed into place when complete.
//! - `dir`: a directory output (`part-NNNNN.parquet` plus `_embquant_manifest.json`),
//!   built under a staging name and swapped into place with one atomic rename; it never
//!   deletes anything embquant did not write.
//!
//! Leftovers of a job killed with `kill -9` carry the job's process id; the next job that
//! writes the same target removes those whose process is gone, never a live job's.

pub(crate) mod atomic;
#[cfg(feature = "job")]
pub(crate) mod dense;
pub(crate) mod dir;
#[cfg(feature = "job")]
pub(crate) mod input;
pub(crate) mod location;
#[cfg(feature = "cloud")]
pub mod object;
pub(crate) mod paths;
#[cfg(feature = "job")]
pub(crate) mod source;

pub use atomic::{remove_own_temporaries, AtomicFile};
#[cfg(feature = "job")]
pub use dense::{read_dense, DenseColumn};
pub use dir::{AtomicDir, DirManifest, MANIFEST_NAME};
#[cfg(feature = "job")]
pub use input::{
    discover, discover_in, open_file, read_object, read_object_to_string, store_of, InputFile,
};
pub use location::{check_not_input, Identity, Inputs, Location, ObjectUrl};
pub use paths::resolve;
#[cfg(feature = "job")]
pub use source::{ByteSource, LocalStore, SourceBytes, Store};

/// Whether `s` is a URL (`scheme://...`) rather than a local path.
pub fn is_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}
