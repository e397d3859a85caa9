//! `embquant-cluster`: embquant on an Apache DataFusion Ballista cluster. `embquant cluster
//! ...` and `embquant {sql,calibrate,quantize} --cluster ...` run this binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;
use embquant::job::{defaults, QuantizeSpec};
use embquant::Calibration;
use embquant_ballista::server::{self, ExecutorOptions, SchedulerOptions};
use embquant_ballista::{pipeline, session};

#[derive(Debug, Parser)]
#[command(
    name = "embquant-cluster",
    version,
    about = "embquant on an Apache DataFusion Ballista cluster: scheduler, executors, and the distributed calibrate -> quantize job"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a scheduler that knows every embquant function.
    Scheduler(SchedulerArgs),
    /// Run an executor that knows every embquant function.
    Executor(ExecutorArgs),
    /// Run one SQL statement on the cluster (every embquant function but tiered_search).
    Sql(SqlArgs),
    /// Calibrate on the cluster (the embedding_calibration aggregate) and write the JSON.
    Calibrate(CalibrateArgs),
    /// Calibrate, then quantize every input file on the cluster into a directory of parts.
    Quantize(QuantizeArgs),
}

#[derive(Debug, Args)]
struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    /// Host name executors and clients use to reach it (default: the bind address).
    #[arg(long)]
    external_host: Option<String>,
    /// An executor without a heartbeat for this long is lost (its tasks run elsewhere).
    #[arg(long, default_value_t = 180)]
    executor_timeout_seconds: u64,
}

#[derive(Debug, Args)]
struct ExecutorArgs {
    /// The scheduler, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:50050")]
    scheduler: String,
    /// Address of this executor's Arrow Flight server (shuffle reads).
    #[arg(long, default_value = "127.0.0.1:50051")]
    bind: SocketAddr,
    /// Host name other processes use to reach it (default: the bind address).
    #[arg(long)]
    external_host: Option<String>,
    /// Tasks at once (default: every core).
    #[arg(long)]
    vcores: Option<usize>,
    /// Directory for shuffle files (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 60)]
    heartbeat_seconds: u64,
}

#[derive(Debug, Args)]
struct ClusterArg {
    /// The scheduler: df://HOST:PORT.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: String,
}

#[derive(Debug, Args)]
struct SqlArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// The SQL statement.
    query: String,
    /// Register a Parquet table: NAME=PATH (file, directory of parts, glob or URL).
    #[arg(long = "table", short = 't', value_name = "NAME=PATH")]
    tables: Vec<String>,
}

#[derive(Debug, Args)]
struct InputArgs {
    /// Input Parquet files, directories, globs or URLs (each file is one shard).
    #[arg(required = true)]
    inputs: Vec<String>,
    /// The float vector column.
    #[arg(long, default_value = defaults::DEFAULT_COLUMN)]
    column: String,
    /// Range method: minmax, quantile:P or meanstd:K, optionally followed by +symmetric
    /// and/or +per-tensor (as `embquant calibrate --method`).
    #[arg(long, default_value = defaults::DEFAULT_METHOD)]
    method: String,
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    #[command(flatten)]
    input: InputArgs,
    /// Where to write the calibration JSON.
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct QuantizeArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    #[command(flatten)]
    input: InputArgs,
    /// Output directory (local on a file system every executor shares, or a URL prefix
    /// that holds nothing yet): one part per input file and a manifest.
    #[arg(long, short)]
    output: String,
    /// Schemes, comma-separated: int8, int4, binary, f16, bf16, rabitq (rabitq2 to rabitq8:
    /// rabitq with that many bits per dimension, as --rabitq-bits).
    #[arg(long, default_value = defaults::DEFAULT_SCHEMES, value_delimiter = ',')]
    scheme: Vec<String>,
    /// Threshold of binary codes: zero, mean or median.
    #[arg(long, default_value = defaults::DEFAULT_BINARY_THRESHOLD)]
    binary_threshold: String,
    /// Use this calibration JSON instead of calibrating on the cluster.
    #[arg(long = "calibration", value_name = "JSON")]
    calibration_file: Option<String>,
    /// Drop the float column from the output.
    #[arg(long)]
    drop_source: bool,
    /// Rows per output row group.
    #[arg(long, default_value_t = defaults::DEFAULT_ROW_GROUP_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    row_group_rows: usize,
    /// int8 layout: binary or list.
    #[arg(long, default_value = defaults::DEFAULT_INT8_LAYOUT)]
    int8_layout: String,
    /// zstd level of the output (1 to 22).
    #[arg(long, default_value_t = defaults::DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Rotation of rabitq codes: hadamard, hadamard:SEED or none.
    #[arg(long, default_value = defaults::DEFAULT_RABITQ_ROTATION)]
    rabitq_rotation: String,
    /// Bits per dimension of rabitq codes, 1 to 8 (as `rabitq2` to `rabitq8` in --scheme).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    rabitq_bits: Option<u8>,
    /// Keep the first D dimensions (Matryoshka), re-normalized, before calibrating and
    /// encoding.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    dims: Option<usize>,
    /// Rows per read batch in each shard.
    #[arg(long, default_value_t = defaults::DEFAULT_BATCH_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_rows: usize,
}

fn main() -> ExitCode {
    embquant::panic_guard::install_quiet_hook();
    let cli = Cli::parse();
    // Servers log what they do (Ballista's `log` records too) at info, commands only
    // warnings; RUST_LOG overrides.
    let server = matches!(cli.cmd, Cmd::Scheduler(_) | Cmd::Executor(_));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if server { "info" } else { "warn" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
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
            r = run(cli) => r,
            // A server stops; a job's future is dropped with its output guard: the staging
            // directory goes, the target is untouched.
            _ = tokio::signal::ctrl_c() => if server {
                println!("stopped");
                Ok(())
            } else {
                Err(anyhow::Error::new(embquant::Error::Cancelled))
            },
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    embquant::io::remove_own_temporaries();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("error: {msg}");
            if let Some(h) = session::hint(&msg) {
                eprintln!("hint: {h}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Scheduler(a) => {
            let mut o = SchedulerOptions::new(a.bind);
            o.external_host = a.external_host;
            o.executor_timeout_seconds = a.executor_timeout_seconds;
            println!("embquant scheduler listening on {}", a.bind);
            server::run_scheduler(&o).await
        }
        Cmd::Executor(a) => {
            let mut o = ExecutorOptions::new(a.scheduler, a.bind);
            o.external_host = a.external_host;
            if let Some(v) = a.vcores {
                o.vcores = v;
            }
            o.work_dir = a.work_dir;
            o.heartbeat_seconds = a.heartbeat_seconds;
            println!(
                "embquant executor on {} ({} task slots), scheduler {}",
                a.bind, o.vcores, o.scheduler
            );
            server::run_executor(&o).await
        }
        Cmd::Sql(a) => sql(a).await,
        Cmd::Calibrate(a) => {
            let t = Instant::now();
            let files = embquant::io::discover(&a.input.inputs)?;
            let ctx = session::connect(&a.cluster.cluster).await?;
            let cal = pipeline::calibrate(&ctx, &files, &a.input.column, &a.input.method).await?;
            let mut read = embquant::io::Inputs::new();
            for s in &a.input.inputs {
                read.add_spelling(s)?;
            }
            read.add_files(&files);
            let target = read.check_spelling(&a.output.to_string_lossy(), false)?;
            write_small(&target, cal.to_json()?.as_bytes())?;
            println!(
                "calibrated {} rows x {} dims from {} file(s) on {} with {}: fingerprint {}; wrote {} in {:.2} s",
                cal.rows(),
                cal.dim(),
                files.len(),
                a.cluster.cluster,
                cal.method(),
                cal.fingerprint(),
                a.output.display(),
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Cmd::Quantize(a) => quantize(a).await,
    }
}

/// Writes a small output (the calibration JSON) atomically: a local file, or an object
/// uploaded whole.
fn write_small(target: &embquant::io::Location, bytes: &[u8]) -> Result<()> {
    match target {
        embquant::io::Location::Local(p) => embquant::io::AtomicFile::write(p, bytes)?,
        embquant::io::Location::Object(o) => {
            let staging = tempfile::tempdir()?;
            let local = staging.path().join("object");
            std::fs::write(&local, bytes)?;
            embquant::io::object::store_for(&o.url())?.upload(&local, &o.url())?;
        }
    }
    Ok(())
}

async fn sql(a: SqlArgs) -> Result<()> {
    let t = Instant::now();
    let ctx = session::connect(&a.cluster.cluster).await?;
    let mut protected = embquant_udfs::write_guard::Protected::default();
    for spec in &a.tables {
        let Some((name, path)) = spec.split_once('=') else {
            bail!("--table {spec:?}: expected NAME=PATH");
        };
        embquant_udfs::register_parquet(&ctx, name.trim(), path.trim())
            .await
            .with_context(|| format!("registering table {name} from {path}"))?;
        protected.add_table(name.trim(), path.trim())?;
    }
    let df = ctx.sql(&a.query).await?;
    embquant_udfs::write_guard::check_writes(&ctx, df.logical_plan(), &protected).await?;
    let batches = df.collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if !batches.is_empty() && batches[0].num_columns() > 0 {
        println!("{}", pretty_format_batches(&batches)?);
    }
    println!(
        "{rows} row{} in {:.3} s on {}",
        if rows == 1 { "" } else { "s" },
        t.elapsed().as_secs_f64(),
        a.cluster.cluster
    );
    Ok(())
}

/// The one spec every front door builds, from the same flags as the local command's.
fn quantize_spec(a: &QuantizeArgs) -> QuantizeSpec {
    let mut spec = QuantizeSpec::new(&a.input.column);
    spec.schemes = a.scheme.clone();
    spec.rabitq_bits = a.rabitq_bits;
    spec.binary_threshold = a.binary_threshold.clone();
    spec.dims = a.dims;
    spec.drop_source = a.drop_source;
    spec.method = a.input.method.clone();
    spec.row_group_rows = a.row_group_rows;
    spec.int8_layout = a.int8_layout.clone();
    spec.zstd_level = a.zstd_level;
    spec.rabitq_rotation = a.rabitq_rotation.clone();
    spec.batch_rows = a.batch_rows;
    spec
}

async fn quantize(a: QuantizeArgs) -> Result<()> {
    let t = Instant::now();
    let files = embquant::io::discover(&a.input.inputs)?;
    let mut read = embquant::io::Inputs::new();
    for s in &a.input.inputs {
        read.add_spelling(s)?;
    }
    read.add_files(&files);
    if let Some(cal) = &a.calibration_file {
        read.add_spelling(cal)?;
    }
    read.check_spelling(&a.output, true)?;
    let spec = quantize_spec(&a);
    spec.job_options()?;
    let ctx = session::connect(&a.cluster.cluster).await?;
    let cal = match &a.calibration_file {
        Some(p) => {
            let json = embquant::io::read_object_to_string(p)?;
            Calibration::from_json(&json).with_context(|| format!("calibration {p}"))?
        }
        None => {
            let cal = pipeline::calibrate_spec(&ctx, &files, &spec).await?;
            println!(
                "calibrated {} rows on the cluster: fingerprint {} ({:.2} s)",
                cal.rows(),
                cal.fingerprint(),
                t.elapsed().as_secs_f64()
            );
            cal
        }
    };
    let s = pipeline::quantize(&ctx, &files, &a.output, &spec, &cal).await?;
    let bytes_in: u64 = s.shards.iter().map(|s| s.bytes_in).sum();
    let bytes_out: u64 = s.shards.iter().map(|s| s.bytes_out).sum();
    println!(
        "quantized {} rows from {} file(s) into {} part(s) at {} on {} worker(s): {:.1} MB in, {:.1} MB out ({:.2}x), {:.2} s",
        s.rows(),
        files.len(),
        s.shards.len(),
        a.output,
        s.workers().len(),
        bytes_in as f64 / 1e6,
        bytes_out as f64 / 1e6,
        bytes_in as f64 / bytes_out.max(1) as f64,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cluster's quantize flags build the local command's spec: `rabitq4`, a prefix and
    /// the batch size reach the shards.
    #[test]
    fn quantize_flags_build_the_shared_spec() {
        let parse = |flags: &[&str]| {
            let fixed = [
                "embquant-cluster",
                "quantize",
                "--cluster",
                "df://127.0.0.1:1",
            ];
            let rest = ["in.parquet", "-o", "out"];
            Cli::try_parse_from(fixed.iter().chain(&rest).chain(flags))
        };
        let cli = parse(&[
            "--scheme",
            "int8,rabitq4",
            "--dims",
            "128",
            "--batch-rows",
            "512",
        ])
        .unwrap();
        let Cmd::Quantize(a) = cli.cmd else {
            panic!("not quantize")
        };
        let spec = quantize_spec(&a);
        let mut want = QuantizeSpec::new("embedding");
        want.schemes = vec!["int8".into(), "rabitq4".into()];
        want.dims = Some(128);
        want.batch_rows = 512;
        assert_eq!(spec, want);
        let o = spec.job_options().unwrap();
        assert_eq!(o.quantize.rabitq_bits, 4);
        assert_eq!(
            parse(&["--rabitq-bits", "9"]).map_err(|e| e.kind()).err(),
            Some(clap::error::ErrorKind::ValueValidation)
        );
    }
}
