//! `embquant recall`: the recall report of quantization configurations against exact search.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use embquant::job;
use embquant::recall::{self, Config, Gate, Queries, RecallOptions, Target};
use embquant::recall::{ParquetSource, ScanRows, VectorSource};
use embquant::search::QueryReader;
use embquant::CalibrationMethod;

use crate::output::ReportDir;

/// Arguments of `embquant recall`.
#[derive(Debug, Args)]
pub struct RecallArgs {
    /// Corpus Parquet files with the float vectors (files, directories or globs).
    #[arg(long, required = true, num_args = 1..)]
    pub corpus: Vec<String>,
    /// Parquet file with the float query vectors.
    #[arg(long, conflicts_with = "sample_queries")]
    pub queries: Option<String>,
    /// Instead of --queries: N corpus rows as queries, each excluded from its own results.
    #[arg(long)]
    pub sample_queries: Option<usize>,
    /// The embedding column (corpus and queries).
    #[arg(long, default_value = "embedding")]
    pub column: String,
    /// The ks of recall@k.
    #[arg(long, default_value = "1,10,100", value_delimiter = ',')]
    pub k: Vec<usize>,
    /// Configurations to measure, separated by ';' (default: a sweep of every scheme and
    /// chain); `chain@D` measures it on a D-dimension Matryoshka prefix.
    #[arg(long)]
    pub configs: Option<String>,
    /// Matryoshka prefixes measured with every configuration.
    #[arg(long, value_delimiter = ',')]
    pub dims: Vec<usize>,
    /// Recommend the cheapest configuration reaching this recall, e.g. 0.95@10.
    #[arg(long)]
    pub target_recall: Option<String>,
    /// Exit non-zero when a configuration falls below a recall, e.g.
    /// `binary:4,int8=0.95@10` (repeatable).
    #[arg(long)]
    pub min_recall: Vec<String>,
    /// Also calibrate on a sample of N rows and report the recall drop and clip rate.
    #[arg(long)]
    pub calibration_rows: Option<usize>,
    /// Calibration range method: minmax, quantile:P or meanstd:K, optionally followed by
    /// +symmetric and/or +per-tensor (as `calibrate --method`).
    #[arg(long, default_value = "minmax")]
    pub method: String,
    /// Seed of the query and calibration samples.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Threshold of the binary codes measured: zero, mean or median (as `quantize`).
    #[arg(long, default_value = job::defaults::DEFAULT_BINARY_THRESHOLD)]
    pub binary_threshold: String,
    /// Rotation of the RaBitQ codes measured: hadamard, hadamard:SEED or none (as
    /// `quantize`).
    #[arg(long, default_value = job::defaults::DEFAULT_RABITQ_ROTATION)]
    pub rabitq_rotation: String,
    /// Memory for codes, in MiB: codes of schemes beyond it are dropped and encoded again
    /// when a configuration needs them (the numbers do not change, only the time).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub code_budget_mb: u64,
    /// Directory of the report (report.json, report.md, recall.svg, ground_truth.parquet): a
    /// path or a URL prefix (`s3://bucket/reports/run1`).
    #[arg(long)]
    pub report: PathBuf,
}

/// The files `recall` writes into its report directory.
const REPORT_FILES: [&str; 4] = [
    "report.json",
    "report.md",
    "recall.svg",
    "ground_truth.parquet",
];

/// Runs the report; prints the main table, the recommendation and the gates. Fails (exit
/// status 1) when a gate fails, after writing the report.
pub async fn recall(a: RecallArgs, quiet: bool) -> Result<()> {
    let t = Instant::now();
    let files = job::discover(&a.corpus)?;
    // The report's files never replace an input (the directory itself may hold inputs:
    // nothing in it is deleted).
    let mut inputs = crate::common::read_set(&a.corpus, &files)?;
    if let Some(q) = &a.queries {
        let qf = job::discover(std::slice::from_ref(q))?;
        inputs.extend(crate::common::read_set(std::slice::from_ref(q), &qf)?);
    }
    // A report at a URL is written to a staging directory and uploaded file by file; the
    // ground truth already there is fetched first, so its cache works the same way.
    let out = ReportDir::new(&a.report, &REPORT_FILES, &inputs, &["ground_truth.parquet"])?;
    let mut options = RecallOptions::default();
    options.ks = a.k.clone();
    options.configs = a
        .configs
        .as_deref()
        .map(|s| -> Result<Vec<Config>> {
            let configs = s
                .split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(Config::parse)
                .collect::<Result<Vec<_>, _>>()?;
            if configs.is_empty() {
                bail!(
                    "--configs {s:?} names no configuration: give tier chains separated by ';' (e.g. \"binary:4,int8;int8\")"
                );
            }
            Ok(configs)
        })
        .transpose()?;
    options.dims = a.dims.clone();
    options.target = a
        .target_recall
        .as_deref()
        .map(str::parse::<Target>)
        .transpose()?;
    options.gates = a
        .min_recall
        .iter()
        .map(|g| g.parse::<Gate>())
        .collect::<Result<_, _>>()?;
    options.calibration_rows = a.calibration_rows;
    options.range = a.method.parse::<CalibrationMethod>()?;
    options.seed = a.seed;
    options.code_budget =
        usize::try_from(a.code_budget_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    options.codes = {
        let mut spec = job::QuantizeSpec::new(&a.column);
        spec.binary_threshold = a.binary_threshold.clone();
        spec.rabitq_rotation = a.rabitq_rotation.clone();
        spec.code_params()?
    };
    let column = a.column.clone();
    let queries_file = a.queries.clone();
    let sample = a.sample_queries;
    let seed = a.seed;
    let dir = out.path().to_path_buf();
    if !quiet {
        eprintln!(
            "reading {} corpus file(s); measuring recall (ground truth cached in {})",
            files.len(),
            out.display()
        );
    }
    let report = embquant::job::spawn_rayon(move || -> embquant::Result<_> {
        // The corpus is streamed from its files on every pass, never held in memory.
        let corpus = ParquetSource::open(files, &column)?;
        let dim = corpus.dim();
        let queries = match (queries_file, sample) {
            (Some(q), _) => {
                // The library's one rule for queries (NULL rows are an error).
                let qf = job::discover(&[q])?;
                let qs = QueryReader::new(&column, None, None, dim).read_files(&qf)?;
                Queries {
                    values: qs.values,
                    exclude: None,
                }
            }
            (None, Some(n)) => {
                let rows = corpus.rows();
                let picks: Vec<u32> =
                    embquant::job::sample_rows(rows as u64, n.min(rows) as u64, seed)
                        .into_iter()
                        .map(|r| r as u32)
                        .filter(|&r| corpus.valid().is_none_or(|v| v[r as usize]))
                        .collect();
                Queries {
                    values: corpus.floats(None).fetch(&picks)?,
                    exclude: Some(picks),
                }
            }
            (None, None) => {
                return Err(embquant::Error::bad_argument(
                    "queries",
                    "give --queries FILE or --sample-queries N",
                ))
            }
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| embquant::Error::io(format!("creating {}", dir.display()), e))?;
        let report = recall::run_source(Arc::new(corpus), &queries, &options, Some(&dir))?;
        recall::write_outputs(&report, &dir)?;
        Ok(report)
    })
    .await??;
    let shown = out.display();
    out.finish(&REPORT_FILES).await?;
    print_summary(&report);
    println!(
        "wrote {shown} (report.json, report.md, recall.svg) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let failed: Vec<&recall::GateResult> = report.gates.iter().filter(|g| !g.passed).collect();
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|g| format!("{} (measured {:.4})", g.gate, g.recall))
            .collect();
        bail!("recall gate failed: {}", list.join("; "));
    }
    Ok(())
}

/// The main table, the recommendation and the gates, on stdout.
pub fn print_summary(r: &recall::RecallReport) {
    let kmain = if r.ks.contains(&10) {
        10
    } else {
        *r.ks.last().unwrap_or(&10)
    };
    println!(
        "recall against exact search: {} rows x {} dims, {} queries; ground truth {} in {:.2} s",
        r.corpus_rows,
        r.dim,
        r.queries,
        if r.ground_truth.cached {
            "from the cache"
        } else {
            "computed"
        },
        r.ground_truth.seconds
    );
    print!("{}", recall::table(r, kmain));
    if let Some(rec) = &r.recommendation {
        println!(
            "recommendation for recall {}: {} (recall {:.4}, {} bytes read per query)\n  {}",
            rec.target,
            rec.config,
            rec.recall,
            rec.bytes_read_per_query,
            rec.commands.join("\n  ")
        );
    }
    if let Some(u) = &r.target_unmet {
        println!("target not met: {u}");
    }
    for g in &r.gates {
        println!(
            "gate {}: recall {:.4} {}",
            g.gate,
            g.recall,
            if g.passed { "passed" } else { "FAILED" }
        );
    }
}
