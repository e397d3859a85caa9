//! `embquant calibrate`: a per-dimension calibration as JSON.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use embquant::job;

use crate::common::{
    bytes_per_row, calibration_spec, read_set, write_atomic, CalibrationArgs, InputArgs,
};
use crate::output::Output;
use crate::progress::Bars;

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
