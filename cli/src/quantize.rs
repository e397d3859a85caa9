//! `embquant quantize`: code columns appended to Parquet files, through the quantize spec.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use embquant::job::{self, defaults, JobSummary};
use embquant::Calibration;

use crate::common::{bytes_per_row, calibration_spec, read_set, CalibrationArgs, InputArgs};
use crate::output::Output;
use crate::progress::Bars;

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
