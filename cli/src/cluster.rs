//! Cluster mode lives in the `embquant-cluster` binary (crate `embquant-ballista`), kept out
//! of this binary's build: Ballista adds its RPC stack (tonic, Arrow Flight) and DataFusion's
//! default features, about 30 CPU-minutes to a cold build. `embquant cluster ARGS` runs
//! `embquant-cluster ARGS`, and `embquant {sql,calibrate,quantize} --cluster df://...` runs
//! `embquant-cluster {sql,calibrate,quantize} ...`, found beside this executable, then on
//! the `PATH` (or at `$EMBQUANT_CLUSTER_BIN`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The commands that take `--cluster`.
const CLUSTER_COMMANDS: [&str; 3] = ["sql", "calibrate", "quantize"];

/// The arguments for `embquant-cluster` when `args` (without the program name) ask for
/// cluster mode.
pub(crate) fn cluster_args(args: &[OsString]) -> Option<Vec<OsString>> {
    let sub = args.first()?.to_str()?;
    if sub == "cluster" {
        return Some(args[1..].to_vec());
    }
    let flagged = args[1..].iter().any(|a| {
        let a = a.to_string_lossy();
        a == "--cluster" || a.starts_with("--cluster=")
    });
    (CLUSTER_COMMANDS.contains(&sub) && flagged).then(|| args.to_vec())
}

fn cluster_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EMBQUANT_CLUSTER_BIN") {
        return Some(PathBuf::from(p));
    }
    let name = format!("embquant-cluster{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(&name)));
    if let Some(b) = beside.filter(|b| b.is_file()) {
        return Some(b);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// Runs `embquant-cluster` when the command line asks for cluster mode (replacing this
/// process on Unix, so signals and the exit status are its own).
/// `args` is the command line, the program name first.
pub(crate) fn delegate(args: &[String]) -> Option<ExitCode> {
    let args: Vec<OsString> = args.iter().skip(1).map(OsString::from).collect();
    let forwarded = cluster_args(&args)?;
    let Some(bin) = cluster_binary() else {
        eprintln!(
            "error: cluster mode runs the embquant-cluster binary, which is not installed beside {} nor on the PATH: \
             install it with `cargo install --path cluster` (crate embquant-ballista), or set EMBQUANT_CLUSTER_BIN",
            std::env::current_exe().map(|e| e.display().to_string()).unwrap_or_else(|_| "embquant".into())
        );
        return Some(ExitCode::FAILURE);
    };
    let mut cmd = Command::new(&bin);
    cmd.args(&forwarded);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = cmd.exec();
        eprintln!("error: running {}: {e}", bin.display());
        Some(ExitCode::FAILURE)
    }
    #[cfg(not(unix))]
    match cmd.status() {
        Ok(s) => Some(ExitCode::from(s.code().unwrap_or(1) as u8)),
        Err(e) => {
            eprintln!("error: running {}: {e}", bin.display());
            Some(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn only_cluster_commands_are_delegated() {
        assert_eq!(
            cluster_args(&args("cluster scheduler --bind 127.0.0.1:1")),
            Some(args("scheduler --bind 127.0.0.1:1"))
        );
        assert_eq!(
            cluster_args(&args("quantize --cluster df://h:1 in -o out")),
            Some(args("quantize --cluster df://h:1 in -o out"))
        );
        assert_eq!(
            cluster_args(&args("sql --cluster=df://h:1 SELECT")),
            Some(args("sql --cluster=df://h:1 SELECT"))
        );
        assert_eq!(cluster_args(&args("quantize in -o out")), None);
        // `--cluster` as a value of another command, or a file named so, is not cluster mode.
        assert_eq!(cluster_args(&args("inspect --cluster")), None);
        assert_eq!(cluster_args(&args("--cluster")), None);
        assert_eq!(cluster_args(&[]), None);
    }
}
