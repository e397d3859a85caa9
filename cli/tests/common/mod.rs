//! Helpers shared by the `embquant` binary's tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The binary under test (the S3 harness runs it too).
pub const BIN: &str = env!("CARGO_BIN_EXE_embquant");

/// Runs the binary with `args` in `cwd`.
pub fn embquant(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run embquant")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
