//! `embquant`: calibrate, quantize and inspect embedding columns in Parquet.

mod commands;
mod drift;
mod progress;
mod recall;
mod sql;
mod synthetic;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
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
            _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(embquant::Error::Cancelled)),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let cancelled = matches!(
                e.downcast_ref::<embquant::Error>(),
                Some(embquant::Error::Cancelled)
            );
            if cancelled {
                eprintln!("interrupted: nothing was written at the output path");
                ExitCode::from(130)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}
