//! The command line and its dispatch to the subcommands, one file each (shared flags and
//! helpers in `common`).

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::calibrate::{calibrate, CalibrateArgs};
use crate::quantize::{quantize, QuantizeArgs};

/// Embedding quantization for Parquet: calibrate, quantize, inspect.
#[derive(Debug, Parser)]
#[command(name = "embquant", version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// No progress bars, and no line while an object store is slow to answer.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Compute a per-dimension calibration and write it as JSON.
    Calibrate(CalibrateArgs),
    /// Append quantized columns (with their recipe and calibration) to Parquet files.
    Quantize(QuantizeArgs),
    /// Show a Parquet file's schema, row groups and embquant recipe.
    Inspect(crate::inspect::InspectArgs),
    /// Run calibrate -> quantize -> inspect -> search -> recall on a bundled sample of real
    /// embeddings.
    Demo(crate::demo::DemoArgs),
    /// Write synthetic unit-norm embeddings (for benchmarks and memory tests).
    GenSynthetic(crate::synthetic::GenArgs),
    /// Top-k search over quantized Parquet files with a tier chain (binary -> int8 -> float).
    Search(crate::search::SearchArgs),
    /// Recall of quantization configurations against exact search: report, plot, tuning, gates.
    Recall(crate::recall::RecallArgs),
    /// Compare new float data with the calibration stored in an embquant file.
    Drift(crate::drift::DriftArgs),
    /// Run SQL (DataFusion, with the embquant functions) over Parquet files, or open a prompt.
    Sql(crate::sql::SqlArgs),
    /// Run a Ballista scheduler or executor that knows the embquant functions (`embquant
    /// cluster scheduler --help`); `sql`, `calibrate` and `quantize` take `--cluster
    /// df://HOST:PORT`. Runs the embquant-cluster binary (crate embquant-ballista).
    #[command(disable_help_flag = true)]
    Cluster {
        /// `scheduler`, `executor`, `sql`, `calibrate` or `quantize`, and their arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.cmd {
        Cmd::Calibrate(a) => calibrate(a, quiet).await,
        Cmd::Quantize(a) => quantize(a, quiet).await.map(|_| ()),
        Cmd::Inspect(a) => crate::inspect::inspect(&a.file, a.json),
        Cmd::Demo(a) => crate::demo::demo(&a.dir, quiet).await,
        Cmd::Search(a) => crate::search::search(a).await,
        Cmd::Recall(a) => crate::recall::recall(a, quiet).await,
        Cmd::Drift(a) => crate::drift::run(a, quiet).await,
        Cmd::Sql(a) => crate::sql::run(a).await,
        // `embquant cluster ...` is handed to embquant-cluster before parsing; here it came
        // after a global flag.
        Cmd::Cluster { .. } => {
            bail!("write `embquant cluster ...` with `cluster` first (it runs the embquant-cluster binary)")
        }
        Cmd::GenSynthetic(a) => crate::synthetic::run(a).await,
    }
}
