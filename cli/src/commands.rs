//! The subcommands: thin layers over `embquant::job`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use embquant::codec::binary::BinaryThreshold;
use embquant::job::{self, CalibrateOptions, InputFile, JobOptions, JobSummary, ReadOptions};
use embquant::metadata::{ColumnRecipe, FileMetadata, Int8Layout, Scheme, METADATA_KEY};
use embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use embquant::parquet::file::reader::{FileReader, SerializedFileReader};
use embquant::search::{load_corpus, TierSpec};
use embquant::{Calibration, MatryoshkaOptions, RangeMethod};

use crate::progress::Bars;

/// Embedding quantization for Parquet: calibrate, quantize, inspect.
#[derive(Debug, Parser)]
#[command(name = "embquant", version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Compute a per-dimension calibration and write it as JSON.
    Calibrate(CalibrateArgs),
    /// Append quantized columns (with their recipe and calibration) to Parquet files.
    Quantize(QuantizeArgs),
    /// Show a Parquet file's schema, row groups and embquant recipe.
    Inspect(InspectArgs),
    /// Run calibrate -> quantize -> inspect -> search -> recall on a bundled sample of real
    /// embeddings.
    Demo(DemoArgs),
    /// Write synthetic unit-norm embeddings (for benchmarks and memory tests).
    GenSynthetic(GenArgs),
    /// Top-k search over quantized Parquet files with a tier chain (binary -> int8 -> float).
    Search(SearchArgs),
    /// Recall of quantization configurations against exact search: report, plot, tuning, gates.
    Recall(crate::recall::RecallArgs),
    /// Compare new float data with the calibration stored in an embquant file.
    Drift(crate::drift::DriftArgs),
    /// Run SQL (DataFusion, with the embquant functions) over Parquet files, or open a prompt.
    Sql(crate::sql::SqlArgs),
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// Corpus files written by `embquant quantize` (files, directories or globs).
    #[arg(long, required = true, num_args = 1..)]
    corpus: Vec<String>,
    /// Parquet file with the float query vectors.
    #[arg(long)]
    queries: String,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Tier chain: each tier but the last is scheme:factor and keeps k x factor candidates.
    #[arg(long, default_value = "binary:8,int8:2,float")]
    tiers: String,
    /// The embedding column (source of the corpus codes, and the query column).
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Corpus id column reported in the results (row numbers when absent).
    #[arg(long)]
    id_column: Option<String>,
    /// Query id column (row numbers when absent).
    #[arg(long)]
    query_id_column: Option<String>,
    /// Results: Parquet with (query_id, rank, id, score, tier).
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct InputArgs {
    /// Input Parquet files, directories or globs.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// The float vector column.
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Rows per batch (small batches stay in cache: 1024 measured fastest here).
    #[arg(long, default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_rows: usize,
    /// Row groups (or halves of large ones) read at once, one thread each.
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
}

impl InputArgs {
    fn read(&self) -> ReadOptions {
        ReadOptions {
            batch_size: self.batch_rows.max(1),
            concurrency: self.concurrency.max(1),
        }
    }
}

#[derive(Debug, Args)]
struct CalibrationArgs {
    /// Range method: minmax, quantile:P (e.g. quantile:0.999) or meanstd:K.
    #[arg(long, default_value = "minmax")]
    method: String,
    /// Calibrate on a uniform sample of N rows (fixed seed) instead of all rows.
    #[arg(long)]
    sample_rows: Option<u64>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    calibration: CalibrationArgs,
    /// Keep the first D dimensions (Matryoshka), re-normalized, before calibrating.
    #[arg(long)]
    dims: Option<usize>,
    /// Skip the quantile sketch (faster; no medians; not with quantile:P).
    #[arg(long)]
    no_sketch: bool,
    /// Where to write the calibration JSON.
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct QuantizeArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    calibration: CalibrationArgs,
    /// Output file, or directory with --target-file-rows.
    #[arg(long, short)]
    output: PathBuf,
    /// Schemes, comma-separated: int8, int4, binary, f16, bf16, rabitq.
    #[arg(long, default_value = "int8,binary", value_delimiter = ',')]
    scheme: Vec<String>,
    /// Threshold of binary codes: zero (sign bits), mean or median (centered).
    #[arg(long, default_value = "zero")]
    binary_threshold: String,
    /// Keep the first D dimensions (Matryoshka), re-normalized, before encoding.
    #[arg(long)]
    dims: Option<usize>,
    /// Use this calibration JSON instead of calibrating (one pass instead of two).
    #[arg(long = "calibration", alias = "calibration-file", value_name = "JSON")]
    calibration_file: Option<PathBuf>,
    /// Drop the float column from the output.
    #[arg(long)]
    drop_source: bool,
    /// Rows per output row group.
    #[arg(long, default_value_t = 65_536, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    row_group_rows: usize,
    /// Split (compact) the output into files of N rows in the directory OUTPUT.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    target_file_rows: Option<u64>,
    /// int8 layout: binary (FixedSizeBinary(D), default) or list (FixedSizeList<Int8, D>).
    #[arg(long, default_value = "binary")]
    int8_layout: String,
    /// zstd level of the output (1 = fastest).
    #[arg(long, default_value_t = 1)]
    zstd_level: i32,
    /// Rotation of rabitq codes: hadamard (3 rounds, default seed), hadamard:SEED or none.
    #[arg(long, default_value = "hadamard")]
    rabitq_rotation: String,
    /// With --target-file-rows: write into an existing directory that holds other files,
    /// keeping them and replacing only embquant's own previous parts (without it, such a
    /// directory is refused).
    #[arg(long)]
    overwrite: bool,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// A Parquet file.
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Directory for the demo's files.
    #[arg(long, default_value = "embquant-demo")]
    dir: PathBuf,
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

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.cmd {
        Cmd::Calibrate(a) => calibrate(a, quiet).await,
        Cmd::Quantize(a) => quantize(a, quiet).await.map(|_| ()),
        Cmd::Inspect(a) => inspect(&a.file, a.json),
        Cmd::Demo(a) => demo(&a.dir, quiet).await,
        Cmd::Search(a) => search(a).await,
        Cmd::Recall(a) => crate::recall::recall(a, quiet).await,
        Cmd::Drift(a) => crate::drift::run(a, quiet).await,
        Cmd::Sql(a) => crate::sql::run(a).await,
        Cmd::GenSynthetic(a) => {
            let t = Instant::now();
            if a.dims == 0 || a.row_group_rows == 0 {
                bail!("--dims and --row-group-rows must be at least 1");
            }
            let guard = crate::signals::CancelOnDrop::default();
            let (cancel, out) = (guard.0.clone(), a.output.clone());
            let (rows, dims, seed, rg) = (a.rows, a.dims, a.seed, a.row_group_rows);
            tokio::task::spawn_blocking(move || {
                crate::synthetic::generate(&out, rows, dims, seed, rg, &cancel)
            })
            .await??;
            drop(guard);
            println!(
                "wrote {} rows x {} dims to {} in {:.1} s",
                a.rows,
                a.dims,
                a.output.display(),
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

fn calibrate_options(
    input: &InputArgs,
    c: &CalibrationArgs,
    dims: Option<usize>,
) -> Result<CalibrateOptions> {
    Ok(CalibrateOptions {
        column: input.column.clone(),
        method: c.method.parse::<RangeMethod>()?,
        sample_rows: c.sample_rows,
        seed: c.seed,
        sketch: true,
        matryoshka: dims.map(|d| MatryoshkaOptions {
            dims: d,
            normalize: true,
        }),
        read: input.read(),
    })
}

async fn calibrate(a: CalibrateArgs, quiet: bool) -> Result<()> {
    let t = Instant::now();
    let files = job::discover(&a.input.inputs)?;
    check_output(&a.output, false, &input_paths(&files))?;
    let mut opts = calibrate_options(&a.input, &a.calibration, a.dims)?;
    opts.sketch = !a.no_sketch;
    let bars = std::sync::Arc::new(Bars::new(quiet, bytes_per_row(&files)));
    let cal = job::calibrate(&files, &opts, bars.clone()).await?;
    write_atomic(&a.output, cal.to_json()?.as_bytes())?;
    println!(
        "calibrated {} rows x {} dims from {} file(s) with {}: fingerprint {}, {} degenerate dim(s); wrote {} in {:.2} s",
        cal.rows(),
        cal.dim(),
        files.len(),
        cal.method(),
        cal.fingerprint(),
        cal.degenerate_dims().len(),
        a.output.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(embquant::io::AtomicFile::write(path, bytes)?)
}

/// Refuses an output that is one of `inputs` (or, for a directory, holds one).
pub(crate) fn check_output<P: AsRef<Path>>(output: &Path, dir: bool, inputs: &[P]) -> Result<()> {
    Ok(embquant::io::check_not_input(output, dir, inputs)?)
}

fn input_paths(files: &[InputFile]) -> Vec<&Path> {
    files.iter().map(|f| f.path.as_path()).collect()
}

async fn quantize(a: QuantizeArgs, quiet: bool) -> Result<JobSummary> {
    let t = Instant::now();
    let files = job::discover(&a.input.inputs)?;
    let mut opts = JobOptions::new(&a.input.column);
    opts.quantize.schemes = a
        .scheme
        .iter()
        .map(|s| s.parse::<Scheme>())
        .collect::<Result<_, _>>()?;
    opts.quantize.binary_threshold = a.binary_threshold.parse::<BinaryThreshold>()?;
    opts.quantize.matryoshka = a.dims.map(|d| MatryoshkaOptions {
        dims: d,
        normalize: true,
    });
    opts.quantize.drop_source = a.drop_source;
    opts.quantize.int8_layout = a.int8_layout.parse::<Int8Layout>()?;
    opts.quantize.rabitq_rotation = a.rabitq_rotation.parse::<embquant::Rotation>()?;
    opts.row_group_rows = a.row_group_rows;
    opts.zstd_level = a.zstd_level;
    opts.target_file_rows = a.target_file_rows;
    opts.read = a.input.read();
    opts.overwrite = a.overwrite;
    if a.target_file_rows == Some(0) {
        bail!("--target-file-rows must be at least 1");
    }
    if a.row_group_rows == 0 {
        bail!("--row-group-rows must be at least 1");
    }
    if let Some(cal) = &a.calibration_file {
        check_output(&a.output, a.target_file_rows.is_some(), &[cal])?;
    }
    let bars = std::sync::Arc::new(Bars::new(quiet, bytes_per_row(&files)));
    let cal = match &a.calibration_file {
        Some(p) => {
            let json =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Calibration::from_json(&json).with_context(|| format!("calibration {}", p.display()))?
        }
        None => {
            let mut c = calibrate_options(&a.input, &a.calibration, a.dims)?;
            c.sketch = opts.quantize.needs_median();
            job::calibrate(&files, &c, bars.clone()).await?
        }
    };
    let summary = job::quantize(&files, &a.output, cal, &opts, &*bars).await?;
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
        a.output.display(),
        summary.bytes_in as f64 / 1e6,
        summary.bytes_out as f64 / 1e6,
        summary.bytes_in as f64 / summary.bytes_out.max(1) as f64,
        if clip.is_empty() { "-".to_string() } else { clip.join(", ") },
        t.elapsed().as_secs_f64()
    );
    Ok(summary)
}

fn inspect(path: &Path, json: bool) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = SerializedFileReader::new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    let meta = reader.metadata();
    let fm = meta.file_metadata();
    let kv = fm
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
        .and_then(|k| k.value.clone());
    let recipe = kv
        .as_deref()
        .map(FileMetadata::from_json)
        .transpose()
        .with_context(|| format!("{}: embquant metadata", path.display()))?;
    let builder = embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        File::open(path).with_context(|| format!("opening {}", path.display()))?,
    )?;
    let schema = builder.schema().clone();
    if json {
        let fields: Vec<serde_json::Value> = schema
            .fields()
            .iter()
            .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable(), "embquant": f.metadata().contains_key(METADATA_KEY)}))
            .collect();
        let out = serde_json::json!({
            "file": path.display().to_string(),
            "rows": fm.num_rows(),
            "row_groups": meta.num_row_groups(),
            "fields": fields,
            "embquant": recipe,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}: {} rows, {} row group(s), {} bytes",
        path.display(),
        fm.num_rows(),
        meta.num_row_groups(),
        std::fs::metadata(path)?.len()
    );
    println!("schema:");
    for f in schema.fields() {
        let tag = match ColumnRecipe::from_field_metadata(f.metadata())? {
            Some((r, cal)) => format!(
                "  <- {} of {:?}, {} B/vector{}{}",
                r.scheme,
                r.source_column,
                r.bytes_per_vector,
                match (r.rotation, r.code_bits) {
                    (Some(embquant::Rotation::Hadamard { rounds, seed }), Some(b)) => format!(
                        ", {b} bits after a randomized Hadamard rotation ({rounds} rounds, seed {seed})"
                    ),
                    (Some(embquant::Rotation::None), Some(b)) => format!(", {b} bits, not rotated"),
                    _ => String::new(),
                },
                cal.map_or(String::new(), |c| format!(
                    ", calibration {}",
                    c.fingerprint()
                ))
            ),
            None => String::new(),
        };
        println!("  {}: {}{}", f.name(), f.data_type(), tag);
    }
    match recipe {
        None => println!("no embquant metadata"),
        Some(m) => {
            let c = &m.calibration;
            println!(
                "embquant {} (format {}): source column {:?}, {} input file(s), {} input rows",
                m.embquant_version,
                m.format_version,
                m.lineage.source_column,
                m.lineage.inputs.len(),
                m.lineage.input_rows
            );
            println!(
                "calibration: {} over {} rows, dim {}, fingerprint {}, degenerate dims {:?}",
                c.method(),
                c.rows(),
                c.dim(),
                c.fingerprint(),
                c.degenerate_dims()
            );
            let w: Vec<f32> = c.lo().iter().zip(c.hi()).map(|(l, h)| h - l).collect();
            let (wmin, wmax) = w
                .iter()
                .fold((f32::INFINITY, 0f32), |(a, b), &x| (a.min(x), b.max(x)));
            println!("  range widths {wmin:.3e} .. {wmax:.3e}");
            for col in &m.columns {
                println!(
                    "  {}: {} ({}), {} B/vector, clipped {} ({:.4}%)",
                    col.recipe.name,
                    col.recipe.scheme,
                    col.recipe.arrow_type,
                    col.recipe.bytes_per_vector,
                    col.clipped,
                    100.0 * col.clip_rate
                );
            }
        }
    }
    Ok(())
}

async fn search(a: SearchArgs) -> Result<()> {
    let chain = TierSpec::parse_chain(&a.tiers)?;
    if a.k == 0 {
        bail!("--k must be at least 1");
    }
    let t = Instant::now();
    let files = job::discover(&a.corpus)?;
    let mut inputs = input_paths(&files);
    inputs.push(Path::new(&a.queries));
    check_output(&a.output, false, &inputs)?;
    let (column, id_column) = (a.column.clone(), a.id_column.clone());
    let chain2 = chain.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        load_corpus(&files, &column, id_column.as_deref(), &chain2)
    })
    .await??;
    let load_s = t.elapsed().as_secs_f64();
    // Queries: the float column, truncated like the corpus codes.
    let qfile = File::open(&a.queries).with_context(|| format!("opening {}", a.queries))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(qfile)
        .with_context(|| format!("{}: not a readable Parquet file", a.queries))?
        .build()?;
    let mut qvals: Vec<f32> = Vec::new();
    let mut qids: Vec<i64> = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = batch
            .column_by_name(&a.column)
            .with_context(|| format!("{}: no column {:?}", a.queries, a.column))?
            .clone();
        let col: embquant::arrow_array::ArrayRef = match loaded.truncation {
            Some(tr) => std::sync::Arc::new(embquant::truncate(
                col.as_ref(),
                &MatryoshkaOptions {
                    dims: tr.dims,
                    normalize: tr.normalized,
                },
            )?),
            None => col,
        };
        let v = embquant::Vectors::try_new(col.as_ref())
            .with_context(|| format!("{}: column {:?}", a.queries, a.column))?;
        if v.dim() != loaded.corpus.dim {
            bail!(
                "{}: queries have {} dimensions, the corpus codes {}",
                a.queries,
                v.dim(),
                loaded.corpus.dim
            );
        }
        if v.null_count() > 0 {
            bail!("{}: null query vectors are not supported", a.queries);
        }
        qvals.extend_from_slice(v.values());
        match &a.query_id_column {
            Some(name) => {
                let c = batch
                    .column_by_name(name)
                    .with_context(|| format!("{}: no column {name:?}", a.queries))?;
                let c = embquant::arrow_array::cast::AsArray::as_primitive_opt::<
                    embquant::arrow_array::types::Int64Type,
                >(c.as_ref())
                .with_context(|| format!("{}: {name:?} must be Int64", a.queries))?;
                qids.extend(c.values().iter());
            }
            None => {
                let s = qids.len() as i64;
                qids.extend(s..s + v.len() as i64);
            }
        }
    }
    let nq = qids.len();
    let dim = loaded.corpus.dim;
    let loaded = std::sync::Arc::new(loaded);
    // Throughput: blocks of queries at once (parallel, blocked scans), each block's results
    // written before the next is searched, so memory holds one block's hits, not all.
    // Latency: queries one by one.
    let (l2, q2, c2, k) = (loaded.clone(), qvals, chain.clone(), a.k);
    let (out, file) = embquant::io::AtomicFile::create(&a.output)?;
    let (writer, batch_s, lat) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut writer: Option<embquant::parquet::arrow::ArrowWriter<File>> = None;
        let mut file = Some(file);
        let block = results_block(k.min(l2.corpus.rows).max(1));
        let mut batch_s = 0.0;
        for (b, qs) in q2.chunks(block * dim).enumerate() {
            let t = Instant::now();
            let results = l2.corpus.search(qs, k, &c2)?;
            batch_s += t.elapsed().as_secs_f64();
            let batch = results_batch(&results, &qids[b * block..], &l2.ids)?;
            if writer.is_none() {
                let f = file.take().expect("one writer");
                writer = Some(embquant::parquet::arrow::ArrowWriter::try_new(
                    f,
                    batch.schema(),
                    Some(results_props()),
                )?);
            }
            writer.as_mut().expect("created").write(&batch)?;
        }
        if writer.is_none() {
            // No queries: an empty file with the schema.
            let batch = results_batch(&[], &[], &l2.ids)?;
            let f = file.take().expect("one writer");
            writer = Some(embquant::parquet::arrow::ArrowWriter::try_new(
                f,
                batch.schema(),
                None,
            )?);
        }
        let mut lat: Vec<f64> = Vec::new();
        for q in q2.chunks_exact(dim).take(200) {
            let t = Instant::now();
            l2.corpus.search(q, k, &c2)?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(f64::total_cmp);
        Ok((writer, batch_s, lat))
    })
    .await??;
    if let Some(w) = writer {
        w.close()?;
    }
    out.commit()?;
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "searched {nq} queries over {} rows ({} dims) with {}: {:.0} queries/s; latency one query at a time p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms; corpus loaded in {load_s:.2} s; wrote {}",
        loaded.corpus.rows,
        dim,
        a.tiers,
        nq as f64 / batch_s.max(1e-9),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        a.output.display()
    );
    Ok(())
}

/// Row groups of 128Ki results, so the writer buffers little whatever the output's size.
fn results_props() -> embquant::parquet::file::properties::WriterProperties {
    embquant::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(1 << 17))
        .build()
}

/// Queries per block of `embquant search`: their hits (k per query, ~64 bytes each with
/// the batch built from them) stay within ~64 MiB, and a block is never smaller than the
/// scans' query groups.
fn results_block(k: usize) -> usize {
    ((64usize << 20) / (k * 64)).clamp(32, 65_536)
}

/// The results of `results.len()` queries (ids `qids[..]`) as one batch of
/// (query_id, rank, id, score, tier).
fn results_batch(
    results: &[Vec<embquant::search::Hit>],
    qids: &[i64],
    ids: &[i64],
) -> Result<embquant::arrow_array::RecordBatch> {
    use embquant::arrow_array::{Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array};
    let n: usize = results.iter().map(|r| r.len()).sum();
    let (mut q, mut rank, mut id, mut score, mut tier) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (qi, hits) in results.iter().enumerate() {
        for (r, h) in hits.iter().enumerate() {
            q.push(qids[qi]);
            rank.push(r as u32 + 1);
            id.push(ids[h.row as usize]);
            score.push(h.score);
            tier.push(h.tier.to_string());
        }
    }
    Ok(RecordBatch::try_from_iter([
        (
            "query_id",
            std::sync::Arc::new(Int64Array::from(q)) as embquant::arrow_array::ArrayRef,
        ),
        ("rank", std::sync::Arc::new(UInt32Array::from(rank)) as _),
        ("id", std::sync::Arc::new(Int64Array::from(id)) as _),
        ("score", std::sync::Arc::new(Float32Array::from(score)) as _),
        ("tier", std::sync::Arc::new(StringArray::from(tier)) as _),
    ])?)
}

/// The bundled sample: all-MiniLM-L6-v2 embeddings of WordNet glosses (see tests/data/README.md).
static SAMPLE: &[u8] = include_bytes!("../../tests/data/minilm-wordnet-5k.parquet");
/// 50 queries from the same set (disjoint from the corpus).
static QUERIES: &[u8] = include_bytes!("../../tests/data/minilm-wordnet-queries-50.parquet");

async fn demo(dir: &Path, quiet: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let input = dir.join("minilm-wordnet.parquet");
    write_atomic(&input, SAMPLE)?;
    println!(
        "1. wrote the bundled sample: {} (all-MiniLM-L6-v2 embeddings of WordNet 3.0 glosses)",
        input.display()
    );
    let inputs = vec![input.display().to_string()];
    let cal_path = dir.join("calibration.json");
    println!(
        "\n2. embquant calibrate {} --method quantile:0.999 --output {}",
        input.display(),
        cal_path.display()
    );
    calibrate(
        CalibrateArgs {
            input: InputArgs {
                inputs: inputs.clone(),
                column: "embedding".into(),
                batch_rows: 1024,
                concurrency: 1,
            },
            calibration: CalibrationArgs {
                method: "quantile:0.999".into(),
                sample_rows: None,
                seed: 42,
            },
            dims: None,
            no_sketch: false,
            output: cal_path.clone(),
        },
        quiet,
    )
    .await?;
    let out = dir.join("minilm-wordnet.quantized.parquet");
    println!(
        "\n3. embquant quantize {} --scheme int8,int4,binary,f16,rabitq --calibration {} --output {}",
        input.display(),
        cal_path.display(),
        out.display()
    );
    quantize(
        QuantizeArgs {
            input: InputArgs {
                inputs,
                column: "embedding".into(),
                batch_rows: 1024,
                concurrency: 1,
            },
            calibration: CalibrationArgs {
                method: "minmax".into(),
                sample_rows: None,
                seed: 42,
            },
            output: out.clone(),
            scheme: vec![
                "int8".into(),
                "int4".into(),
                "binary".into(),
                "f16".into(),
                "rabitq".into(),
            ],
            binary_threshold: "zero".into(),
            dims: None,
            calibration_file: Some(cal_path),
            drop_source: false,
            row_group_rows: 65_536,
            target_file_rows: None,
            int8_layout: "binary".into(),
            zstd_level: 1,
            rabitq_rotation: "hadamard".into(),
            overwrite: false,
        },
        quiet,
    )
    .await?;
    println!("\n4. embquant inspect {}", out.display());
    inspect(&out, false)?;
    let queries = dir.join("queries.parquet");
    write_atomic(&queries, QUERIES)?;
    let results = dir.join("results.parquet");
    println!(
        "\n5. embquant search --corpus {} --queries {} --k 10 --tiers rabitq:4,int8:2,float --id-column id --query-id-column id --output {}",
        out.display(),
        queries.display(),
        results.display()
    );
    search(SearchArgs {
        corpus: vec![out.display().to_string()],
        queries: queries.display().to_string(),
        k: 10,
        tiers: "rabitq:4,int8:2,float".into(),
        column: "embedding".into(),
        id_column: Some("id".into()),
        query_id_column: Some("id".into()),
        output: results,
    })
    .await?;
    let report = dir.join("recall");
    println!(
        "\n6. embquant recall --corpus {} --queries {} --target-recall 0.95@10 --report {}",
        input.display(),
        queries.display(),
        report.display()
    );
    crate::recall::recall(
        crate::recall::RecallArgs {
            corpus: vec![input.display().to_string()],
            queries: Some(queries.display().to_string()),
            sample_queries: None,
            column: "embedding".into(),
            k: vec![1, 10, 100],
            configs: None,
            dims: Vec::new(),
            target_recall: Some("0.95@10".into()),
            min_recall: Vec::new(),
            calibration_rows: None,
            method: "minmax".into(),
            seed: 42,
            code_budget_mb: 1024,
            report,
        },
        quiet,
    )
    .await
}
