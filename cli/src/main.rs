//! `embquant`: calibrate, quantize and inspect embedding columns in Parquet.

mod args;
mod calibrate;
mod cluster;
mod commands;
mod common;
mod demo;
mod drift;
mod inspect;
mod output;
mod progress;
mod quantize;
mod recall;
mod search;
mod signals;
mod sql;
mod synthetic;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Piped into `head`, a closed stdout ends the process quietly like any Unix tool,
    // instead of a panic on the next print.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A dependency's panic on malformed input that the library turns into an error prints
    // nothing: the user sees that error, once.
    embquant::panic_guard::install_quiet_hook();
    let args = match args::utf8_args(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(code) = cluster::delegate(&args) {
        return code;
    }
    let cli = commands::Cli::parse_from(&args);
    if !cli.quiet {
        // An object store that does not answer: a line every few seconds, not silence until
        // the timeout.
        embquant::io::object::on_slow_request(|r| eprintln!("{r}"));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = commands::run(cli) => r,
            // Dropping the command's future drops its output guards: temporary files and
            // staging directories are removed, the target is untouched.
            s = signals::terminated() => Err(anyhow::Error::new(embquant::Error::Cancelled)
                .context(format!("{s} received"))),
        }
    });
    // Blocking work that sees its job cancelled cleans up and ends; don't wait for
    // compute that cannot be interrupted.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    embquant::io::remove_own_temporaries();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let cancelled = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<embquant::Error>(),
                    Some(embquant::Error::Cancelled)
                )
            });
            if cancelled {
                eprintln!("interrupted ({e}): nothing was written at the output path");
                ExitCode::from(130)
            } else {
                eprintln!("error: {}", folded(&e));
                ExitCode::FAILURE
            }
        }
    }
}

/// The error chain as one line, each cause said once: a cause whose message an outer
/// message already holds (DataFusion's `External error: ...` wrapping a library error that
/// already names its cause) is not repeated.
fn folded(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        let s = s.trim_start_matches("External error: ");
        if s.is_empty() || out.contains(s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(s);
    }
    out
}
