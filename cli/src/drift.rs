//! `embquant drift`: does the calibration stored in an embquant file still fit new data?

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use embquant::drift::{self, DimDrift, DriftOptions, DriftReport};
use embquant::job;

use crate::progress::Bars;

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// A file or directory output written by `embquant quantize` (or a calibration JSON):
    /// its calibration is the reference.
    #[arg(long, value_name = "QUANTIZED.parquet")]
    reference: PathBuf,
    /// New float data: Parquet files, directories or globs.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// The float vector column of the new data (and the source column of the reference codes).
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Fail (exit non-zero) when more than this fraction of the values falls outside the
    /// calibrated ranges, e.g. 0.01.
    #[arg(long, value_name = "R")]
    max_clip_rate: Option<f64>,
    /// Dimensions listed, those that moved most first.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print the report as JSON (every dimension included).
    #[arg(long)]
    json: bool,
    /// Rows per batch.
    #[arg(long, default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_rows: usize,
    /// Row groups (or halves of large ones) read at once, one thread each.
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
}

/// Runs `embquant drift`.
pub async fn run(a: DriftArgs, quiet: bool) -> Result<()> {
    let t = Instant::now();
    if let Some(m) = a.max_clip_rate {
        if !(0.0..=1.0).contains(&m) {
            bail!("--max-clip-rate must be between 0 and 1, got {m}");
        }
    }
    // The error names the reference file.
    let reference = drift::read_reference(&a.reference, Some(&a.column))?;
    let files = job::discover(&a.inputs)?;
    let mut opts = DriftOptions::default();
    opts.column = a.column.clone();
    opts.matryoshka = reference.matryoshka;
    opts.top = a.top;
    opts.max_clip_rate = a.max_clip_rate;
    opts.read.batch_size = a.batch_rows.max(1);
    opts.read.concurrency = a.concurrency.max(1);
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let bytes_per_row = files.iter().map(|f| f.bytes).sum::<u64>() / rows.max(1);
    let bars = Arc::new(Bars::new(quiet, bytes_per_row));
    let report = drift::drift(&files, &reference.calibration, &opts, bars).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(
            &report,
            &reference,
            &a,
            files.len(),
            t.elapsed().as_secs_f64(),
        );
    }
    if let Some(c) = report.check.as_ref().filter(|c| !c.passed) {
        bail!(
            "check --max-clip-rate failed: clip rate {:.4}% exceeds {:.4}%",
            100.0 * report.clip_rate,
            100.0 * c.max_clip_rate
        );
    }
    Ok(())
}

fn print_report(
    r: &DriftReport,
    reference: &drift::Reference,
    a: &DriftArgs,
    files: usize,
    seconds: f64,
) {
    println!(
        "drift of {} rows ({} null) of {:?} from {} file(s) against calibration {} ({} over {} rows, {} dims) from {} ({}), {:.2} s",
        r.rows,
        r.null_rows,
        a.column,
        files,
        r.reference_fingerprint,
        r.reference_method,
        r.reference_rows,
        r.dim,
        a.reference.display(),
        reference.origin,
        seconds
    );
    println!(
        "clip rate {:.4}%: {} of {} values outside the calibrated [lo, hi] ({} clips {:.4}% by design; {} degenerate dim(s) not counted)",
        100.0 * r.clip_rate,
        r.clipped,
        r.rows * r.dim as u64,
        r.reference_method,
        100.0 * r.expected_clip_rate,
        r.degenerate_dims.len()
    );
    println!(
        "mean shift in units of the calibrated range (hi - lo): max {:.4}, average {:.4}",
        r.max_mean_shift, r.mean_abs_mean_shift
    );
    if !r.top.is_empty() {
        println!("top {} moved dimension(s):", r.top.len());
        println!(
            "  {:>5}  {:>9}  {:>10}  {:>9}  {:>9}  {:>7}",
            "dim", "clip %", "mean shift", "std ratio", "std shift", "shift"
        );
        for d in &r.top {
            println!("  {}", row(d));
        }
    }
    if r.recalibrate {
        println!("advice: recalibrate");
        for reason in &r.reasons {
            println!("  - {reason}");
        }
    } else {
        println!("advice: the calibration still fits (no advice threshold exceeded)");
    }
    if let Some(c) = &r.check {
        println!(
            "check --max-clip-rate {}: {}",
            c.max_clip_rate,
            if c.passed { "passed" } else { "FAILED" }
        );
    }
}

fn row(d: &DimDrift) -> String {
    let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or("-".to_string(), f);
    format!(
        "{:>5}  {:>9.4}  {:>10}  {:>9}  {:>9}  {:>7.4}",
        d.dim,
        100.0 * d.clip_rate,
        opt(d.mean_shift, &|x| format!("{x:+.4}")),
        opt(d.std_ratio, &|x| format!("{x:.3}")),
        opt(d.std_shift, &|x| format!("{x:+.4}")),
        d.shift
    )
}
