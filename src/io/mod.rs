//! Where bytes leave the process: every output embquant writes goes through this module.
//!
//! - [`paths`]: resolving paths the way the OS will (symlinks, `..`, relative paths), and
//!   the guard that no output is one of the command's inputs.
//! - [`atomic`]: a single-file output written beside its target under a recognisable
//!   temporary name (`.NAME.embquant-tmp-PID-N`) and renamed into place when complete.
//! - [`dir`]: a directory output (`part-NNNNN.parquet` plus `_embquant_manifest.json`),
//!   built under a staging name and swapped into place with one atomic rename; it never
//!   deletes anything embquant did not write.
//!
//! Leftovers of a job killed with `kill -9` carry the job's process id; the next job that
//! writes the same target removes those whose process is gone, never a live job's.

pub mod atomic;
pub mod dir;
pub mod paths;

pub use atomic::{remove_own_temporaries, AtomicFile};
pub use dir::{AtomicDir, DirManifest, MANIFEST_NAME};
pub use paths::{check_not_input, resolve};
