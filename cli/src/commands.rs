//! The subcommands: thin layers over `embquant::job`.

use crate::output::Output;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use embquant::io::Inputs;
use embquant::job::{self, defaults, InputFile, JobSummary};
use embquant::Calibration;

use crate::progress::Bars;

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
    GenSynthetic(GenArgs),
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

#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// Input Parquet files, directories or globs.
    #[arg(required = true)]
    pub(crate) inputs: Vec<String>,
    /// The float vector column.
    #[arg(long, default_value = defaults::DEFAULT_COLUMN)]
    pub(crate) column: String,
    /// Rows per batch (small batches stay in cache: 1024 measured fastest here).
    #[arg(long, default_value_t = defaults::DEFAULT_BATCH_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) batch_rows: usize,
    /// Row groups (or halves of large ones) read at once, one thread each.
    #[arg(long, default_value_t = defaults::DEFAULT_CONCURRENCY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) concurrency: usize,
}

#[derive(Debug, Args)]
pub(crate) struct CalibrationArgs {
    /// Range method: minmax, quantile:P (e.g. quantile:0.999) or meanstd:K.
    #[arg(long, default_value = defaults::DEFAULT_METHOD)]
    pub(crate) method: String,
    /// Calibrate on a uniform sample of N rows (fixed seed) instead of all rows.
    #[arg(long)]
    pub(crate) sample_rows: Option<u64>,
    /// Seed of the sample.
    #[arg(long, default_value_t = defaults::DEFAULT_SEED)]
    pub(crate) seed: u64,
}

#[derive(Debug, Args)]
pub(crate) struct CalibrateArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) calibration: CalibrationArgs,
    /// Keep the first D dimensions (Matryoshka), re-normalized, before calibrating.
    #[arg(long)]
    pub(crate) dims: Option<usize>,
    /// Skip the quantile sketch (faster; no medians; not with quantile:P).
    #[arg(long)]
    pub(crate) no_sketch: bool,
    /// Where to write the calibration JSON.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct QuantizeArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) calibration: CalibrationArgs,
    /// Output file, or directory with --target-file-rows.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// Schemes, comma-separated: int8, int4, binary, f16, bf16, rabitq (rabitq2 to rabitq8:
    /// rabitq with that many bits per dimension, as --rabitq-bits).
    #[arg(long, default_value = defaults::DEFAULT_SCHEMES, value_delimiter = ',')]
    pub(crate) scheme: Vec<String>,
    /// Threshold of binary codes: zero (sign bits), mean or median (centered).
    #[arg(long, default_value = defaults::DEFAULT_BINARY_THRESHOLD)]
    pub(crate) binary_threshold: String,
    /// Keep the first D dimensions (Matryoshka), re-normalized, before encoding.
    #[arg(long)]
    pub(crate) dims: Option<usize>,
    /// Use this calibration JSON instead of calibrating (one pass instead of two).
    #[arg(long = "calibration", alias = "calibration-file", value_name = "JSON")]
    pub(crate) calibration_file: Option<PathBuf>,
    /// Drop the float column from the output.
    #[arg(long)]
    pub(crate) drop_source: bool,
    /// Rows per output row group.
    #[arg(long, default_value_t = defaults::DEFAULT_ROW_GROUP_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) row_group_rows: usize,
    /// Split (compact) the output into files of N rows in the directory OUTPUT.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) target_file_rows: Option<u64>,
    /// int8 layout: binary (FixedSizeBinary(D), default) or list (FixedSizeList<Int8, D>).
    #[arg(long, default_value = defaults::DEFAULT_INT8_LAYOUT)]
    pub(crate) int8_layout: String,
    /// zstd level of the output (1 = fastest).
    #[arg(long, default_value_t = defaults::DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub(crate) zstd_level: i32,
    /// Rotation of rabitq codes: hadamard (3 rounds, default seed), hadamard:SEED or none.
    #[arg(long, default_value = defaults::DEFAULT_RABITQ_ROTATION)]
    pub(crate) rabitq_rotation: String,
    /// Bits per dimension of rabitq codes, 1 to 8: 2 to 8 add the extra bits of multi-bit
    /// (Extended) RaBitQ as <column>_rq<bits> beside the 1-bit <column>_rq.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub(crate) rabitq_bits: Option<u8>,
    /// With --target-file-rows: write into an existing directory that holds other files,
    /// keeping them and replacing only embquant's own previous parts (without it, such a
    /// directory is refused).
    #[arg(long)]
    pub(crate) overwrite: bool,
}

impl QuantizeArgs {
    /// The job these flags ask for: the one spec every front door builds.
    pub(crate) fn spec(&self) -> embquant::job::QuantizeSpec {
        let mut s = calibration_spec(&self.input, &self.calibration, self.dims);
        s.schemes = self.scheme.clone();
        s.rabitq_bits = self.rabitq_bits;
        s.binary_threshold = self.binary_threshold.clone();
        s.rabitq_rotation = self.rabitq_rotation.clone();
        s.int8_layout = self.int8_layout.clone();
        s.drop_source = self.drop_source;
        s.row_group_rows = self.row_group_rows;
        s.target_file_rows = self.target_file_rows;
        s.zstd_level = self.zstd_level;
        s.overwrite = self.overwrite;
        s
    }
}

/// The spec's reading and calibration options from the flags `calibrate` and `quantize`
/// share (the rest at their defaults).
fn calibration_spec(
    input: &InputArgs,
    c: &CalibrationArgs,
    dims: Option<usize>,
) -> embquant::job::QuantizeSpec {
    let mut s = embquant::job::QuantizeSpec::new(&input.column);
    s.method = c.method.clone();
    s.sample_rows = c.sample_rows;
    s.seed = c.seed;
    s.dims = dims;
    s.batch_rows = input.batch_rows;
    s.concurrency = input.concurrency;
    s
}

#[derive(Debug, Args)]
struct GenArgs {
    /// Rows.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Dimensions.
    #[arg(long, default_value_t = 384, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    dims: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows per row group.
    #[arg(long, default_value_t = 131_072, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    row_group_rows: usize,
    /// Output Parquet file.
    #[arg(long, short)]
    output: PathBuf,
}

/// The widest synthetic vectors `gen-synthetic` writes (its cluster centres are held in
/// memory: 256 x dims floats).
const MAX_SYNTHETIC_DIMS: usize = 65_536;

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
        Cmd::GenSynthetic(a) => {
            let t = Instant::now();
            if a.dims == 0 || a.row_group_rows == 0 {
                bail!("--dims and --row-group-rows must be at least 1");
            }
            if a.dims > MAX_SYNTHETIC_DIMS {
                bail!("--dims {}: at most {MAX_SYNTHETIC_DIMS}", a.dims);
            }
            let output = Output::new(&a.output, &Inputs::new(), false)?;
            let guard = crate::signals::CancelOnDrop::default();
            let (cancel, out) = (guard.0.clone(), output.path().to_path_buf());
            let (rows, dims, seed, rg) = (a.rows, a.dims, a.seed, a.row_group_rows);
            tokio::task::spawn_blocking(move || {
                crate::synthetic::generate(&out, rows, dims, seed, rg, &cancel)
            })
            .await??;
            drop(guard);
            let shown = output.display();
            output.finish().await?;
            println!(
                "wrote {} rows x {} dims to {} in {:.1} s",
                a.rows,
                a.dims,
                shown,
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn bytes_per_row(files: &[InputFile]) -> u64 {
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    files.iter().map(|f| f.bytes).sum::<u64>() / rows.max(1)
}

pub(crate) async fn calibrate(a: CalibrateArgs, quiet: bool) -> Result<()> {
    let t = Instant::now();
    let files = job::discover(&a.input.inputs)?;
    let output = Output::new(&a.output, &read_set(&a.input.inputs, &files)?, false)?;
    // The calibration part of the one quantize spec (the same parser as `quantize`'s).
    let mut opts = calibration_spec(&a.input, &a.calibration, a.dims).calibrate_options()?;
    opts.sketch = !a.no_sketch;
    let bars = std::sync::Arc::new(Bars::new(quiet, bytes_per_row(&files)));
    let cal = job::calibrate(&files, &opts, bars.clone()).await?;
    write_atomic(output.path(), cal.to_json()?.as_bytes())?;
    let shown = output.display();
    output.finish().await?;
    println!(
        "calibrated {} rows x {} dims from {} file(s) with {}: fingerprint {}, {} degenerate dim(s); wrote {} in {:.2} s",
        cal.rows(),
        cal.dim(),
        files.len(),
        cal.method(),
        cal.fingerprint(),
        cal.degenerate_dims().len(),
        shown,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(embquant::io::AtomicFile::write(path, bytes)?)
}

/// What a command reads, for the output guard: the inputs as spelled (directories and
/// prefixes guard what lies below them) and the files they expanded to.
pub(crate) fn read_set<S: AsRef<str>>(spellings: &[S], files: &[InputFile]) -> Result<Inputs> {
    let mut inputs = Inputs::new();
    for s in spellings {
        inputs.add_spelling(s.as_ref())?;
    }
    inputs.add_files(files);
    Ok(inputs)
}

pub(crate) async fn quantize(a: QuantizeArgs, quiet: bool) -> Result<JobSummary> {
    let t = Instant::now();
    let files = job::discover(&a.input.inputs)?;
    let spec = a.spec();
    let opts = spec.job_options()?;
    let mut inputs = read_set(&a.input.inputs, &files)?;
    if let Some(cal) = &a.calibration_file {
        inputs.add_spelling(&cal.to_string_lossy())?;
    }
    let output = Output::new(&a.output, &inputs, a.target_file_rows.is_some())?;
    let bars = std::sync::Arc::new(Bars::new(quiet, bytes_per_row(&files)));
    let cal = match &a.calibration_file {
        Some(p) => {
            let json = embquant::io::read_object_to_string(&p.to_string_lossy())?;
            Calibration::from_json(&json).with_context(|| format!("calibration {}", p.display()))?
        }
        None => job::calibrate(&files, &spec.calibrate_options()?, bars.clone()).await?,
    };
    let summary = job::quantize(&files, output.path(), cal, &opts, &*bars).await?;
    let shown = output.display();
    output.finish().await?;
    let clip: Vec<String> = summary
        .columns
        .iter()
        .filter(|c| c.recipe.scheme.clips())
        .map(|c| format!("{} {:.4}%", c.recipe.name, 100.0 * c.clip_rate))
        .collect();
    println!(
        "quantized {} rows from {} file(s) into {} file(s) at {}: {:.1} MB in, {:.1} MB out ({:.2}x), clip rate {}, {:.2} s",
        summary.rows,
        files.len(),
        summary.files.len(),
        shown,
        summary.bytes_in as f64 / 1e6,
        summary.bytes_out as f64 / 1e6,
        summary.bytes_in as f64 / summary.bytes_out.max(1) as f64,
        if clip.is_empty() { "-".to_string() } else { clip.join(", ") },
        t.elapsed().as_secs_f64()
    );
    Ok(summary)
}
