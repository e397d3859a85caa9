//! Drift: does a stored calibration still fit new float vectors?
//!
//! A [`DriftAccumulator`] streams new vectors against a reference [`Calibration`] and keeps,
//! per dimension, the values below `lo` and above `hi`, the sum and sum of squares of the
//! values' distance to the calibrated mean (in `f64`, so sums merge exactly up to rounding),
//! and the new minimum and maximum. Accumulators of disjoint rows [`merge`](DriftAccumulator::merge).
//! [`DriftReport::new`] turns one into the report: the clip rate (values outside `[lo, hi]`,
//! counted like the codecs count them: degenerate dimensions never clip), and per dimension
//! the clip rate, the mean shift and the spread change in units of the calibrated range
//! `hi - lo`, the dimensions that moved most, and whether re-calibration is advised (with
//! the reasons). [`drift`] does all of it over Parquet files, streaming row groups in
//! parallel with bounded memory; [`read_reference`] finds the calibration stored in an
//! embquant file (field metadata first, then the footer).
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{FixedSizeListArray, Float32Array};
//! use arrow_schema::{DataType, Field};
//! use embquant::drift::{DriftAccumulator, DriftOptions, DriftReport};
//! use embquant::{Calibration, RangeMethod, Stats, StatsOptions};
//!
//! let field = Arc::new(Field::new_list_field(DataType::Float32, false));
//! let old = FixedSizeListArray::new(field.clone(), 2, Arc::new(Float32Array::from(vec![0.0, 0.0, 1.0, 1.0])), None);
//! let cal = Calibration::from_stats(&Stats::compute(&old, &StatsOptions::default())?, RangeMethod::MinMax)?;
//! // Dimension 1 moved up by half its range: half of its values now fall above `hi`.
//! let new = FixedSizeListArray::new(field, 2, Arc::new(Float32Array::from(vec![0.0, 0.5, 1.0, 1.5])), None);
//! let mut acc = DriftAccumulator::new(&cal);
//! acc.update(&new)?;
//! let report = DriftReport::new(&cal, &acc, &DriftOptions::default());
//! assert_eq!(report.clip_rate, 0.25);
//! assert_eq!(report.dims[1].mean_shift, Some(0.5));
//! assert_eq!(report.top[0].dim, 1);
//! assert!(report.recalibrate);
//! # Ok::<(), embquant::Error>(())
//! ```

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::Array;
use futures::StreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde::Serialize;

use crate::calibration::{Calibration, RangeMethod};
use crate::codec::matryoshka::{truncate, MatryoshkaOptions};
use crate::error::{Error, Result};
use crate::job::segments::{segment_reader, segments};
use crate::job::{InputFile, Progress, ReadOptions};
use crate::metadata::{ColumnRecipe, FileMetadata, METADATA_KEY};
use crate::vectors::Vectors;

/// Rows per parallel block within one batch.
const BLOCK_ROWS: usize = 2048;

/// What to compare and when to advise re-calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftOptions {
    /// The float vector column of the new data.
    pub column: String,
    /// Truncation applied before comparing (the reference's Matryoshka prefix, if any).
    pub matryoshka: Option<MatryoshkaOptions>,
    /// How many dimensions to list in [`DriftReport::top`].
    pub top: usize,
    /// The check: the overall clip rate must not exceed this (reported in
    /// [`DriftReport::check`]; the CLI exits non-zero when it fails).
    pub max_clip_rate: Option<f64>,
    /// Advise re-calibration when the overall clip rate exceeds what the calibration method
    /// clips by design ([`expected_clip_rate`]) by more than this.
    pub advise_clip_rate: f64,
    /// ... or when one dimension's clip rate exceeds the expected rate by more than this.
    pub advise_dim_clip_rate: f64,
    /// ... or when a dimension's mean moved by more than this fraction of its calibrated
    /// range.
    pub advise_mean_shift: f64,
    /// ... or when a dimension's standard deviation grew or shrank by more than this factor.
    pub advise_std_ratio: f64,
    /// ... or when a degenerate (constant) dimension now spreads with a standard deviation
    /// above this fraction of the median calibrated range.
    pub advise_degenerate_std: f64,
    /// Reading.
    pub read: ReadOptions,
}

impl Default for DriftOptions {
    fn default() -> Self {
        Self {
            column: "embedding".into(),
            matryoshka: None,
            top: 10,
            max_clip_rate: None,
            advise_clip_rate: 0.005,
            advise_dim_clip_rate: 0.05,
            advise_mean_shift: 0.05,
            advise_std_ratio: 1.25,
            advise_degenerate_std: 0.01,
            read: ReadOptions::default(),
        }
    }
}

impl DriftOptions {
    /// Defaults for `column`.
    pub fn new(column: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(Error::InvalidOption(format!(
                "{what} = {v} must be a non-negative number"
            )))
        };
        if let Some(m) = self.max_clip_rate {
            if !(m >= 0.0 && m.is_finite()) {
                return bad("max clip rate", m);
            }
        }
        for (what, v) in [
            ("advise_clip_rate", self.advise_clip_rate),
            ("advise_dim_clip_rate", self.advise_dim_clip_rate),
            ("advise_mean_shift", self.advise_mean_shift),
            ("advise_degenerate_std", self.advise_degenerate_std),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(what, v);
            }
        }
        if !(self.advise_std_ratio >= 1.0 && self.advise_std_ratio.is_finite()) {
            return Err(Error::InvalidOption(format!(
                "advise_std_ratio = {} must be at least 1",
                self.advise_std_ratio
            )));
        }
        Ok(())
    }
}

/// The fraction of values a calibration clips by design on the data it was made from:
/// 0 for `minmax`, `2 (1 - p)` for `quantile:p`, and the two normal tails beyond `k`
/// standard deviations for `meanstd:k`.
pub fn expected_clip_rate(method: RangeMethod) -> f64 {
    match method {
        RangeMethod::MinMax => 0.0,
        RangeMethod::Quantile { p } => (2.0 * (1.0 - p)).max(0.0),
        RangeMethod::MeanStd { k } => erfc(k / std::f64::consts::SQRT_2),
    }
}

/// Complementary error function (Abramowitz and Stegun 7.1.26, absolute error < 1.5e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let r = poly * (-z * z).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Streaming per-dimension comparison of new vectors with a calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftAccumulator {
    dim: usize,
    lo: Vec<f32>,
    hi: Vec<f32>,
    /// The calibrated mean: sums are of `x - center`, so they stay small and exact-ish.
    center: Vec<f32>,
    rows: u64,
    null_rows: u64,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    below: Vec<u64>,
    above: Vec<u64>,
    min: Vec<f32>,
    max: Vec<f32>,
}

impl DriftAccumulator {
    /// An empty accumulator against `cal`.
    pub fn new(cal: &Calibration) -> Self {
        let dim = cal.dim();
        Self {
            dim,
            lo: cal.lo().to_vec(),
            hi: cal.hi().to_vec(),
            center: cal.mean().to_vec(),
            rows: 0,
            null_rows: 0,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
            below: vec![0; dim],
            above: vec![0; dim],
            min: vec![f32::INFINITY; dim],
            max: vec![f32::NEG_INFINITY; dim],
        }
    }

    fn empty_like(&self) -> Self {
        let dim = self.dim;
        Self {
            dim,
            lo: self.lo.clone(),
            hi: self.hi.clone(),
            center: self.center.clone(),
            rows: 0,
            null_rows: 0,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
            below: vec![0; dim],
            above: vec![0; dim],
            min: vec![f32::INFINITY; dim],
            max: vec![f32::NEG_INFINITY; dim],
        }
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Non-null rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Null rows seen (skipped).
    pub fn null_rows(&self) -> u64 {
        self.null_rows
    }

    /// Adds the rows of a vector column (one batch). Its dimension must be the
    /// calibration's; a NaN or infinity is an error naming the row and dimension.
    pub fn update(&mut self, array: &dyn Array) -> Result<()> {
        let v = Vectors::try_new_with_dim(array, self.dim)?;
        self.update_vectors(&v)
    }

    /// Adds the rows of an already validated view, in parallel over blocks of rows (merged
    /// in row order, so the result does not depend on scheduling).
    pub fn update_vectors(&mut self, v: &Vectors<'_>) -> Result<()> {
        if v.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                context: "vector column".into(),
                expected: self.dim,
                found: v.dim(),
            });
        }
        let blocks = v.len().div_ceil(BLOCK_ROWS);
        let parts: Vec<DriftAccumulator> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let mut part = self.empty_like();
                let end = ((b + 1) * BLOCK_ROWS).min(v.len());
                part.add_rows(v, b * BLOCK_ROWS..end)?;
                Ok(part)
            })
            .collect::<Result<_>>()?;
        for p in &parts {
            self.merge(p)?;
        }
        Ok(())
    }

    /// Scalar core over rows `range` of `v`.
    fn add_rows(&mut self, v: &Vectors<'_>, range: std::ops::Range<usize>) -> Result<()> {
        for r in range.clone() {
            if !v.is_valid(r) {
                self.null_rows += 1;
                continue;
            }
            self.rows += 1;
            for (d, &x) in v.row(r).iter().enumerate() {
                let y = x as f64 - self.center[d] as f64;
                self.sum[d] += y;
                self.sum_sq[d] += y * y;
                self.below[d] += (x < self.lo[d]) as u64;
                self.above[d] += (x > self.hi[d]) as u64;
                self.min[d] = self.min[d].min(x);
                self.max[d] = self.max[d].max(x);
            }
        }
        // A NaN or infinity makes a sum non-finite (finite f32 inputs cannot overflow f64):
        // only then look for the offending value.
        if self.sum_sq.iter().any(|s| !s.is_finite()) {
            v.find_non_finite(range)?;
        }
        Ok(())
    }

    /// Adds `other` (the same comparison over other rows).
    pub fn merge(&mut self, other: &DriftAccumulator) -> Result<()> {
        if other.dim != self.dim || other.lo != self.lo || other.hi != self.hi {
            return Err(Error::InvalidOption(
                "cannot merge drift accumulators of different calibrations".into(),
            ));
        }
        self.rows += other.rows;
        self.null_rows += other.null_rows;
        for d in 0..self.dim {
            self.sum[d] += other.sum[d];
            self.sum_sq[d] += other.sum_sq[d];
            self.below[d] += other.below[d];
            self.above[d] += other.above[d];
            self.min[d] = self.min[d].min(other.min[d]);
            self.max[d] = self.max[d].max(other.max[d]);
        }
        Ok(())
    }
}

/// How one dimension compares with its calibration. Shifts are in units of the calibrated
/// range `hi - lo`; they are `None` for degenerate dimensions (no usable range) and before
/// any row was seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DimDrift {
    /// Dimension index.
    pub dim: usize,
    /// The calibrated range is degenerate: its values never count as clipped.
    pub degenerate: bool,
    /// Values below the calibrated `lo`.
    pub below: u64,
    /// Values above the calibrated `hi`.
    pub above: u64,
    /// `(below + above) / rows` (0 for degenerate dimensions).
    pub clip_rate: f64,
    /// Mean of the new values.
    pub mean: f64,
    /// Population standard deviation of the new values.
    pub std: f64,
    /// Smallest new value.
    pub min: f32,
    /// Largest new value.
    pub max: f32,
    /// `(new mean - calibrated mean) / (hi - lo)`.
    pub mean_shift: Option<f64>,
    /// `new std / calibrated std` (`None` when the calibrated std is 0).
    pub std_ratio: Option<f64>,
    /// `(new std - calibrated std) / (hi - lo)`.
    pub std_shift: Option<f64>,
    /// How far the dimension moved: `|mean_shift| + |std_shift|` (0 when degenerate).
    pub shift: f64,
}

/// The result of the drift check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    /// Fingerprint of the reference calibration.
    pub reference_fingerprint: String,
    /// Its range method (`minmax`, `quantile:p`, `meanstd:k`).
    pub reference_method: String,
    /// Rows it was computed from.
    pub reference_rows: u64,
    /// Vector dimension.
    pub dim: usize,
    /// Non-null rows compared.
    pub rows: u64,
    /// Null rows skipped.
    pub null_rows: u64,
    /// Values outside the calibrated ranges (degenerate dimensions not counted).
    pub clipped: u64,
    /// `clipped / (rows * dim)`: the fraction of values int8 / int4 codes would clip.
    pub clip_rate: f64,
    /// The clip rate the calibration method has by design ([`expected_clip_rate`]).
    pub expected_clip_rate: f64,
    /// The degenerate dimensions (not counted, no shifts).
    pub degenerate_dims: Vec<usize>,
    /// Largest `|mean_shift|` over the dimensions.
    pub max_mean_shift: f64,
    /// Mean `|mean_shift|` over the non-degenerate dimensions.
    pub mean_abs_mean_shift: f64,
    /// Every dimension, in order.
    pub dims: Vec<DimDrift>,
    /// The dimensions that moved most (largest `shift` first, then highest clip rate).
    pub top: Vec<DimDrift>,
    /// Whether re-calibration is advised.
    pub recalibrate: bool,
    /// Why (empty when the calibration still fits).
    pub reasons: Vec<String>,
    /// The `max_clip_rate` check, when one was asked for.
    pub check: Option<ClipCheck>,
}

/// The outcome of the `max_clip_rate` check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipCheck {
    /// The limit.
    pub max_clip_rate: f64,
    /// `clip_rate <= max_clip_rate`.
    pub passed: bool,
}

impl DriftReport {
    /// The report of `acc` (accumulated against `cal`).
    pub fn new(cal: &Calibration, acc: &DriftAccumulator, opts: &DriftOptions) -> Self {
        let degenerate = cal.degenerate_mask();
        let n = acc.rows as f64;
        let seen = acc.rows > 0;
        let dims: Vec<DimDrift> = (0..acc.dim)
            .map(|d| {
                let (mean_y, var) = if seen {
                    let m = acc.sum[d] / n;
                    (m, (acc.sum_sq[d] / n - m * m).max(0.0))
                } else {
                    (0.0, 0.0)
                };
                let mean = cal.mean()[d] as f64 + mean_y;
                let std = var.sqrt();
                let (cal_mean, cal_std) = (cal.mean()[d] as f64, cal.std()[d] as f64);
                let width = cal.hi()[d] as f64 - cal.lo()[d] as f64;
                let usable = seen && !degenerate[d];
                let mean_shift = usable.then(|| (mean - cal_mean) / width);
                let std_shift = usable.then(|| (std - cal_std) / width);
                let std_ratio = (usable && cal_std > 0.0).then(|| std / cal_std);
                let out = acc.below[d] + acc.above[d];
                DimDrift {
                    dim: d,
                    degenerate: degenerate[d],
                    below: acc.below[d],
                    above: acc.above[d],
                    clip_rate: if degenerate[d] || !seen {
                        0.0
                    } else {
                        out as f64 / n
                    },
                    mean,
                    std,
                    min: acc.min[d],
                    max: acc.max[d],
                    mean_shift,
                    std_ratio,
                    std_shift,
                    shift: mean_shift.map_or(0.0, f64::abs) + std_shift.map_or(0.0, f64::abs),
                }
            })
            .collect();
        let clipped: u64 = dims
            .iter()
            .filter(|d| !d.degenerate)
            .map(|d| d.below + d.above)
            .sum();
        let values = acc.rows * acc.dim as u64;
        let clip_rate = if values > 0 {
            clipped as f64 / values as f64
        } else {
            0.0
        };
        let mut order: Vec<&DimDrift> = dims.iter().filter(|d| !d.degenerate).collect();
        order.sort_by(|a, b| {
            b.shift
                .total_cmp(&a.shift)
                .then(b.clip_rate.total_cmp(&a.clip_rate))
                .then(a.dim.cmp(&b.dim))
        });
        let top: Vec<DimDrift> = order.iter().take(opts.top).map(|d| (*d).clone()).collect();
        let shifts: Vec<f64> = dims
            .iter()
            .filter_map(|d| d.mean_shift.map(f64::abs))
            .collect();
        let max_mean_shift = shifts.iter().copied().fold(0.0, f64::max);
        let mean_abs_mean_shift = if shifts.is_empty() {
            0.0
        } else {
            shifts.iter().sum::<f64>() / shifts.len() as f64
        };
        let expected = expected_clip_rate(cal.method());
        let reasons = if seen {
            advice(cal, &dims, clip_rate, expected, opts)
        } else {
            Vec::new()
        };
        let check = opts.max_clip_rate.map(|m| ClipCheck {
            max_clip_rate: m,
            passed: clip_rate <= m,
        });
        let report = DriftReport {
            reference_fingerprint: cal.fingerprint().to_string(),
            reference_method: cal.method().to_string(),
            reference_rows: cal.rows(),
            dim: acc.dim,
            rows: acc.rows,
            null_rows: acc.null_rows,
            clipped,
            clip_rate,
            expected_clip_rate: expected,
            degenerate_dims: cal.degenerate_dims(),
            max_mean_shift,
            mean_abs_mean_shift,
            dims,
            top,
            recalibrate: !reasons.is_empty(),
            reasons,
            check,
        };
        tracing::info!(
            rows = report.rows,
            clip_rate = report.clip_rate,
            max_mean_shift = report.max_mean_shift,
            recalibrate = report.recalibrate,
            fingerprint = %report.reference_fingerprint,
            "drift"
        );
        report
    }
}

/// The reasons to re-calibrate (empty when none).
fn advice(
    cal: &Calibration,
    dims: &[DimDrift],
    clip_rate: f64,
    expected: f64,
    opts: &DriftOptions,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let pct = |x: f64| format!("{:.3}%", 100.0 * x);
    if clip_rate > expected + opts.advise_clip_rate {
        reasons.push(format!(
            "{} of the values fall outside the calibrated ranges ({} clips {} by design; advice above +{})",
            pct(clip_rate),
            cal.method(),
            pct(expected),
            pct(opts.advise_clip_rate)
        ));
    }
    // Dimensions over a threshold, with the worst one.
    let mut over =
        |what: &str, metric: &dyn Fn(&DimDrift) -> Option<f64>, show: &dyn Fn(f64) -> String| {
            let hits: Vec<(usize, f64)> = dims
                .iter()
                .filter_map(|d| metric(d).map(|m| (d.dim, m)))
                .collect();
            if let Some(&(d, m)) = hits
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            {
                reasons.push(format!(
                    "{} dimension(s) {what} (worst: dimension {d}, {})",
                    hits.len(),
                    show(m)
                ));
            }
        };
    let dim_limit = expected + opts.advise_dim_clip_rate;
    over(
        &format!("clip more than {} of their values", pct(dim_limit)),
        &|d| (!d.degenerate && d.clip_rate > dim_limit).then_some(d.clip_rate),
        &|m| format!("{} clipped", pct(m)),
    );
    over(
        &format!(
            "moved their mean by more than {} of the calibrated range",
            opts.advise_mean_shift
        ),
        &|d| {
            d.mean_shift
                .map(f64::abs)
                .filter(|&m| m > opts.advise_mean_shift)
        },
        &|m| format!("{m:.3} of the range"),
    );
    let r = opts.advise_std_ratio;
    over(
        &format!("changed their spread by more than {r}x"),
        &|d| {
            d.std_ratio
                .map(|s| s.max(1.0 / s.max(f64::MIN_POSITIVE)))
                .filter(|&s| s > r)
        },
        &|m| format!("{m:.2}x"),
    );
    let widths: Vec<f64> = dims
        .iter()
        .filter(|d| !d.degenerate)
        .map(|d| cal.hi()[d.dim] as f64 - cal.lo()[d.dim] as f64)
        .collect();
    if !widths.is_empty() {
        let mut sorted = widths;
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let limit = opts.advise_degenerate_std * median;
        over(
            &format!(
                "were constant (degenerate) at calibration but now spread with std above {limit:.3e}"
            ),
            &|d| (d.degenerate && d.std > limit).then_some(d.std),
            &|m| format!("std {m:.3e}"),
        );
    }
    reasons
}

/// Compares the vectors in `files` with `reference`: segments (row groups, or halves of
/// large ones) are read `opts.read.concurrency` at a time, each accumulated on its own
/// thread (and in parallel blocks within a batch), and merged in file and row order.
/// Errors name the file, the column and the row.
pub async fn drift(
    files: &[InputFile],
    reference: &Calibration,
    opts: &DriftOptions,
    progress: Arc<dyn Progress>,
) -> Result<DriftReport> {
    opts.validate()?;
    if files.is_empty() {
        return Err(Error::InvalidOption("no input files".into()));
    }
    let total: u64 = files.iter().map(|f| f.rows).sum();
    let files = Arc::new(files.to_vec());
    let empty = Arc::new(DriftAccumulator::new(reference));
    progress.begin("drift", total);
    let mut parts = futures::stream::iter(segments(&files))
        .map(|seg| {
            let (files, empty, progress) = (files.clone(), empty.clone(), progress.clone());
            let (column, matryoshka, batch_size) =
                (opts.column.clone(), opts.matryoshka, opts.read.batch_size);
            let work = tokio::task::spawn_blocking(move || {
                let file = &files[seg.file];
                let run = || -> Result<DriftAccumulator> {
                    let mut acc = (*empty).clone();
                    for batch in segment_reader(file, seg, &column, true, None, batch_size)? {
                        let (start, batch) = batch?;
                        progress.advance(batch.num_rows() as u64);
                        let col = batch.column(0);
                        let truncated;
                        let v: &dyn Array = match &matryoshka {
                            Some(m) => {
                                truncated = truncate(col.as_ref(), m)
                                    .map_err(|e| e.offset_rows(start))?;
                                &truncated
                            }
                            None => col.as_ref(),
                        };
                        acc.update(v).map_err(|e| match e {
                            Error::DimensionMismatch {
                                expected, found, ..
                            } => Error::DimensionMismatch {
                                context: format!(
                                    "the vectors from row {start} (against the reference calibration)"
                                ),
                                expected,
                                found,
                            },
                            e => e.offset_rows(start),
                        })?;
                    }
                    Ok(acc)
                };
                run().map_err(|e| e.in_file(file.path.display(), &column))
            });
            async move {
                work.await
                    .map_err(|e| Error::InvalidOption(format!("reader thread: {e}")))?
            }
        })
        .buffered(opts.read.concurrency.max(1));
    let mut acc = (*empty).clone();
    while let Some(part) = parts.next().await {
        acc.merge(&part?)?;
    }
    progress.end();
    if acc.rows == 0 {
        return Err(Error::InvalidOption(format!(
            "no non-null vectors in column {:?} of the inputs: nothing to compare",
            opts.column
        )));
    }
    Ok(DriftReport::new(reference, &acc, opts))
}

/// A reference calibration and where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The calibration.
    pub calibration: Calibration,
    /// The float column the codes were made from (unknown for a calibration JSON).
    pub source_column: Option<String>,
    /// The Matryoshka prefix applied before encoding: apply it to new data before comparing.
    pub matryoshka: Option<MatryoshkaOptions>,
    /// Where it was found: `field metadata of "embedding_int8"`, `file footer` or
    /// `calibration JSON`.
    pub origin: String,
}

/// Reads the calibration stored in an embquant file: from the field metadata of a quantized
/// column made from `source_column` (any source when `None`), else from the footer. A
/// `.json` path is read as a calibration JSON. A file without a calibration, or whose
/// calibrations belong to other source columns, is an error naming it.
pub fn read_reference(path: &Path, source_column: Option<&str>) -> Result<Reference> {
    let shown = path.display();
    let col = source_column.unwrap_or("*");
    if path.extension().is_some_and(|e| e == "json") {
        let json =
            std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {shown}"), e))?;
        let calibration = Calibration::from_json(&json).map_err(|e| e.in_file(&shown, col))?;
        return Ok(Reference {
            calibration,
            source_column: None,
            matryoshka: None,
            origin: "calibration JSON".into(),
        });
    }
    let file = File::open(path).map_err(|e| Error::io(format!("opening {shown}"), e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        Error::io(
            format!("{shown}: not a readable Parquet file"),
            std::io::Error::other(e),
        )
    })?;
    let wanted = |s: &str| source_column.is_none_or(|c| c == s);
    // Field metadata: the calibrated columns (int8, int4, centered binary, rabitq).
    let mut found: Vec<(String, ColumnRecipe, Calibration)> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for f in builder.schema().fields() {
        let parsed = ColumnRecipe::from_field_metadata(f.metadata())
            .map_err(|e| e.in_file(&shown, f.name()))?;
        if let Some((recipe, Some(cal))) = parsed {
            if wanted(&recipe.source_column) {
                found.push((f.name().clone(), recipe, cal));
            } else {
                others.push(recipe.source_column);
            }
        }
    }
    if let Some((name, recipe, cal)) = found.first() {
        if let Some((other, _, c)) = found.iter().find(|(_, _, c)| c != cal) {
            return Err(Error::InvalidCalibration(format!(
                "columns {name:?} and {other:?} carry different calibrations ({} and {})",
                cal.fingerprint(),
                c.fingerprint()
            ))
            .in_file(&shown, col));
        }
        return Ok(Reference {
            calibration: cal.clone(),
            source_column: Some(recipe.source_column.clone()),
            matryoshka: recipe.truncation.map(|t| MatryoshkaOptions {
                dims: t.dims,
                normalize: t.normalized,
            }),
            origin: format!("field metadata of {name:?}"),
        });
    }
    // The footer.
    let footer = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
        .and_then(|k| k.value.clone());
    if let Some(json) = footer {
        let m = FileMetadata::from_json(&json).map_err(|e| e.in_file(&shown, col))?;
        if wanted(&m.lineage.source_column) {
            let truncation = m.columns.iter().find_map(|c| c.recipe.truncation);
            return Ok(Reference {
                calibration: m.calibration,
                source_column: Some(m.lineage.source_column),
                matryoshka: truncation.map(|t| MatryoshkaOptions {
                    dims: t.dims,
                    normalize: t.normalized,
                }),
                origin: "file footer".into(),
            });
        }
        others.push(m.lineage.source_column);
    }
    if !others.is_empty() {
        others.sort();
        others.dedup();
        return Err(Error::InvalidOption(format!(
            "the reference calibrations were made from column(s) {others:?}, not {col:?}"
        ))
        .in_file(&shown, col));
    }
    Err(Error::MissingCalibrationData(
        "from this file: no column carries `embquant.calibration` field metadata and the footer has no `embquant` key (write the reference with `embquant quantize`)",
    )
    .in_file(&shown, col))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{FixedSizeListArray, Float32Array};
    use arrow_buffer::NullBuffer;
    use arrow_schema::{DataType, Field};

    use super::*;
    use crate::stats::{Stats, StatsOptions};
    use crate::testutil::{scale_array, vectors_array};

    fn fsl(values: Vec<f32>, dim: usize, nulls: Option<NullBuffer>) -> FixedSizeListArray {
        FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            dim as i32,
            Arc::new(Float32Array::from(values)),
            nulls,
        )
    }

    fn calibrate(a: &dyn Array, method: RangeMethod) -> Calibration {
        Calibration::from_stats(
            &Stats::compute(a, &StatsOptions::default()).unwrap(),
            method,
        )
        .unwrap()
    }

    fn report(cal: &Calibration, a: &dyn Array, opts: &DriftOptions) -> DriftReport {
        let mut acc = DriftAccumulator::new(cal);
        acc.update(a).unwrap();
        DriftReport::new(cal, &acc, opts)
    }

    /// `a` with `add` added to the dimensions in `dims`.
    fn shifted(
        a: &FixedSizeListArray,
        dims: std::ops::Range<usize>,
        add: f32,
    ) -> FixedSizeListArray {
        let v = Vectors::try_new(a).unwrap();
        let dim = v.dim();
        let values = v
            .values()
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if dims.contains(&(i % dim)) {
                    x + add
                } else {
                    x
                }
            })
            .collect();
        fsl(values, dim, a.logical_nulls())
    }

    #[test]
    fn the_calibration_data_itself_does_not_drift() {
        let a = vectors_array(5000, 16, 3, 0.1);
        let cal = calibrate(&a, RangeMethod::MinMax);
        let r = report(&cal, &a, &DriftOptions::default());
        assert_eq!(r.rows, cal.rows());
        assert!(r.null_rows > 0);
        assert_eq!(r.clipped, 0);
        assert_eq!(r.clip_rate, 0.0);
        assert!(!r.recalibrate, "{:?}", r.reasons);
        for d in &r.dims {
            assert!(d.mean_shift.unwrap().abs() < 1e-5, "{d:?}");
            assert!((d.std_ratio.unwrap() - 1.0).abs() < 1e-4, "{d:?}");
            assert_eq!((d.min, d.max), (cal.min()[d.dim], cal.max()[d.dim]));
        }
    }

    #[test]
    fn a_known_shift_is_measured_in_range_units() {
        // Dimension 0 uniform-ish over [0, 1] (range 1); dimension 1 over [-2, 2] (range 4).
        let rows = 1000;
        let values: Vec<f32> = (0..rows)
            .flat_map(|r| {
                let u = r as f32 / (rows - 1) as f32;
                [u, 4.0 * u - 2.0]
            })
            .collect();
        let a = fsl(values, 2, None);
        let cal = calibrate(&a, RangeMethod::MinMax);
        // Move dimension 1 up by 1.0 = a quarter of its range: the top quarter clips.
        let b = shifted(&a, 1..2, 1.0);
        let r = report(&cal, &b, &DriftOptions::default());
        assert!(r.dims[0].mean_shift.unwrap().abs() < 1e-6);
        assert!(
            (r.dims[1].mean_shift.unwrap() - 0.25).abs() < 1e-5,
            "{:?}",
            r.dims[1]
        );
        assert!(r.dims[1].std_shift.unwrap().abs() < 1e-5);
        assert!((r.dims[1].std_ratio.unwrap() - 1.0).abs() < 1e-5);
        // Values u = r / 999 with 4u - 1 > 2, i.e. u > 0.75: rows 750..1000.
        assert_eq!(r.dims[1].above, 250);
        assert_eq!(r.dims[1].below, 0);
        assert_eq!(r.dims[1].clip_rate, 0.25);
        assert_eq!(r.clip_rate, 250.0 / 2000.0);
        assert_eq!(r.top[0].dim, 1);
        assert!(r.recalibrate);
        assert!(
            r.reasons.iter().any(|s| s.contains("moved their mean")),
            "{:?}",
            r.reasons
        );

        // Scaling by 1.5 around the mean: the std grows by half the calibrated std.
        let c = scale_array(&a, 1.5);
        let r = report(&cal, &c, &DriftOptions::default());
        for d in &r.dims {
            assert!((d.std_ratio.unwrap() - 1.5).abs() < 1e-4, "{d:?}");
            let width = (cal.hi()[d.dim] - cal.lo()[d.dim]) as f64;
            let want = 0.5 * cal.std()[d.dim] as f64 / width;
            assert!((d.std_shift.unwrap() - want).abs() < 1e-4, "{d:?}");
        }
        assert!(
            r.reasons
                .iter()
                .any(|s| s.contains("spread by more than 1.25x")),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn top_dimensions_are_the_moved_ones_and_the_check_fails_above_the_limit() {
        let a = vectors_array(4000, 40, 9, 0.0);
        let cal = calibrate(&a, RangeMethod::Quantile { p: 0.999 });
        let b = shifted(&a, 30..35, 0.1);
        let opts = DriftOptions {
            top: 5,
            max_clip_rate: Some(0.01),
            ..DriftOptions::default()
        };
        let same = report(&cal, &a, &opts);
        assert!(!same.recalibrate, "{:?}", same.reasons);
        assert!(same.check.as_ref().unwrap().passed);
        // quantile:0.999 clips about 0.2% of its own data by design.
        assert!((same.expected_clip_rate - 0.002).abs() < 1e-12);
        assert!(
            same.clip_rate > 0.0 && same.clip_rate < 0.004,
            "{}",
            same.clip_rate
        );

        let r = report(&cal, &b, &opts);
        let mut top: Vec<usize> = r.top.iter().map(|d| d.dim).collect();
        top.sort();
        assert_eq!(top, vec![30, 31, 32, 33, 34]);
        assert!(r.recalibrate);
        assert!(r.clip_rate > 0.01, "{}", r.clip_rate);
        assert!(!r.check.as_ref().unwrap().passed);
        for d in 30..35 {
            let width = (cal.hi()[d] - cal.lo()[d]) as f64;
            assert!((r.dims[d].mean_shift.unwrap() - 0.1 / width).abs() < 1e-4);
        }
    }

    #[test]
    fn degenerate_dimensions_never_clip_and_have_no_shift() {
        // Dimension 1 is dead (~1e-33) at calibration.
        let rows = 500;
        let values: Vec<f32> = (0..rows)
            .flat_map(|r| [r as f32 / rows as f32, 1e-33 * (r % 3) as f32])
            .collect();
        let a = fsl(values, 2, None);
        let cal = calibrate(&a, RangeMethod::MinMax);
        assert_eq!(cal.degenerate_dims(), vec![1]);
        // New data: dimension 1 still tiny but outside its 1e-33-wide range.
        let b = shifted(&a, 1..2, 1e-30);
        let r = report(&cal, &b, &DriftOptions::default());
        assert_eq!(r.dims[1].above, rows as u64);
        assert_eq!(r.dims[1].clip_rate, 0.0);
        assert_eq!(r.clipped, 0);
        assert_eq!(r.dims[1].mean_shift, None);
        assert_eq!(r.dims[1].shift, 0.0);
        assert!(r.top.iter().all(|d| d.dim != 1));
        assert_eq!(r.degenerate_dims, vec![1]);
        assert!(!r.recalibrate, "{:?}", r.reasons);
        // A dead dimension that comes alive is advised about.
        let values: Vec<f32> = (0..rows)
            .flat_map(|r| [r as f32 / rows as f32, if r % 2 == 0 { 0.3 } else { -0.3 }])
            .collect();
        let r = report(&cal, &fsl(values, 2, None), &DriftOptions::default());
        assert_eq!(r.clipped, 0);
        assert!(
            r.reasons.iter().any(|s| s.contains("degenerate")),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn batches_and_merges_equal_one_pass() {
        let a = vectors_array(5000, 9, 5, 0.05);
        let cal = calibrate(&a.slice(0, 1000), RangeMethod::MinMax);
        let mut one = DriftAccumulator::new(&cal);
        one.update(&a).unwrap();
        let mut streamed = DriftAccumulator::new(&cal);
        let mut merged = DriftAccumulator::new(&cal);
        for (s, n) in [(0, 1), (1, 2047), (2048, 2049), (4097, 903)] {
            streamed.update(&a.slice(s, n)).unwrap();
            let mut part = DriftAccumulator::new(&cal);
            part.update(&a.slice(s, n)).unwrap();
            merged.merge(&part).unwrap();
        }
        let opts = DriftOptions::default();
        let (r1, r2, r3) = (
            DriftReport::new(&cal, &one, &opts),
            DriftReport::new(&cal, &streamed, &opts),
            DriftReport::new(&cal, &merged, &opts),
        );
        for r in [&r2, &r3] {
            assert_eq!(
                (r.rows, r.null_rows, r.clipped),
                (r1.rows, r1.null_rows, r1.clipped)
            );
            assert!(r1.clipped > 0);
            for (x, y) in r.dims.iter().zip(&r1.dims) {
                assert_eq!(
                    (x.below, x.above, x.min, x.max),
                    (y.below, y.above, y.min, y.max)
                );
                assert!((x.mean - y.mean).abs() < 1e-9 && (x.std - y.std).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn bad_values_and_dimensions_are_errors_naming_the_row() {
        let a = vectors_array(10, 4, 1, 0.0);
        let cal = calibrate(&a, RangeMethod::MinMax);
        let mut values = Vectors::try_new(&a).unwrap().values().to_vec();
        values[7 * 4 + 2] = f32::NAN;
        let mut acc = DriftAccumulator::new(&cal);
        match acc.update(&fsl(values, 4, None)) {
            Err(Error::NonFinite { row: 7, dim: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        let b = vectors_array(10, 5, 1, 0.0);
        assert!(matches!(
            DriftAccumulator::new(&cal).update(&b),
            Err(Error::DimensionMismatch {
                expected: 4,
                found: 5,
                ..
            })
        ));
    }

    /// Writes `a` as the column `embedding` of a Parquet file, in row groups of 700 rows;
    /// `footer` goes to the key-value metadata.
    fn write_parquet(path: &Path, a: &FixedSizeListArray, footer: Option<(&str, String)>) {
        use parquet::file::metadata::KeyValue;
        use parquet::file::properties::WriterProperties;
        let batch =
            arrow_array::RecordBatch::try_from_iter([("embedding", Arc::new(a.clone()) as _)])
                .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(700))
            .set_key_value_metadata(footer.map(|(k, v)| vec![KeyValue::new(k.to_string(), v)]))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            File::create(path).unwrap(),
            batch.schema(),
            Some(props),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn streams_parquet_files_against_the_calibration_of_a_quantized_file_or_its_footer() {
        use crate::job::{self, CalibrateOptions, JobOptions, NoProgress};
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            dir.path().join("old.parquet"),
            dir.path().join("new.parquet"),
        );
        let a = vectors_array(3000, 12, 4, 0.02);
        let b = shifted(&vectors_array(2500, 12, 4, 0.02), 2..4, 0.05);
        write_parquet(&old, &a, None);
        write_parquet(&new, &b, None);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let quantized = dir.path().join("q.parquet");
        let files = job::discover(&[old.display().to_string()]).unwrap();
        let cal = rt
            .block_on(job::calibrate(
                &files,
                &CalibrateOptions::new("embedding"),
                Arc::new(NoProgress),
            ))
            .unwrap();
        let mut jo = JobOptions::new("embedding");
        jo.quantize.schemes = vec![crate::Scheme::Int8];
        rt.block_on(job::quantize(
            &files,
            &quantized,
            cal.clone(),
            &jo,
            &NoProgress,
        ))
        .unwrap();

        // From the field metadata.
        let r = read_reference(&quantized, Some("embedding")).unwrap();
        assert_eq!(r.calibration, cal);
        assert_eq!(r.origin, "field metadata of \"embedding_int8\"");
        assert_eq!(r.source_column.as_deref(), Some("embedding"));
        // From the footer alone (a file whose schema lost the field metadata).
        let footer = {
            let f = File::open(&quantized).unwrap();
            let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
            let kv = b.metadata().file_metadata().key_value_metadata().unwrap();
            kv.iter()
                .find(|k| k.key == METADATA_KEY)
                .unwrap()
                .value
                .clone()
                .unwrap()
        };
        let footer_only = dir.path().join("footer.parquet");
        write_parquet(&footer_only, &a, Some((METADATA_KEY, footer)));
        let r = read_reference(&footer_only, Some("embedding")).unwrap();
        assert_eq!(
            (r.calibration, r.origin.as_str()),
            (cal.clone(), "file footer")
        );
        // A calibration JSON.
        let json = dir.path().join("cal.json");
        std::fs::write(&json, cal.to_json().unwrap()).unwrap();
        let r = read_reference(&json, Some("embedding")).unwrap();
        assert_eq!(
            (r.calibration, r.origin.as_str()),
            (cal.clone(), "calibration JSON")
        );
        // Neither: an error naming the file and what is missing.
        let e = read_reference(&old, Some("embedding"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("old.parquet") && e.contains("embquant.calibration"),
            "{e}"
        );
        let e = read_reference(&quantized, Some("other"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("made from column(s) [\"embedding\"]"), "{e}");

        // Streaming two files, several row groups, two at a time, in small batches, gives
        // the report of one in-memory pass over all their rows.
        let inputs =
            job::discover(&[old.display().to_string(), new.display().to_string()]).unwrap();
        let opts = DriftOptions {
            top: 3,
            read: ReadOptions {
                batch_size: 256,
                concurrency: 2,
            },
            ..DriftOptions::new("embedding")
        };
        let streamed = rt
            .block_on(drift(&inputs, &cal, &opts, Arc::new(NoProgress)))
            .unwrap();
        let mut acc = DriftAccumulator::new(&cal);
        acc.update(&a).unwrap();
        acc.update(&b).unwrap();
        let once = DriftReport::new(&cal, &acc, &opts);
        assert_eq!(streamed.rows, once.rows);
        assert_eq!(streamed.clipped, once.clipped);
        assert_eq!(streamed.reasons, once.reasons);
        let top = |r: &DriftReport| r.top.iter().map(|d| d.dim).collect::<Vec<_>>();
        assert_eq!(top(&streamed), top(&once));
        assert!(top(&streamed)[..2].iter().all(|d| (2..4).contains(d)));
        for (x, y) in streamed.dims.iter().zip(&once.dims) {
            assert!((x.mean - y.mean).abs() < 1e-9 && (x.std - y.std).abs() < 1e-9);
        }

        // A NaN in row 1234 of the new file: the error names the file, column, row, dim.
        let mut values = Vectors::try_new(&b).unwrap().values().to_vec();
        values[1234 * 12 + 5] = f32::INFINITY;
        write_parquet(&new, &fsl(values, 12, b.logical_nulls()), None);
        let inputs = job::discover(&[new.display().to_string()]).unwrap();
        let e = rt
            .block_on(drift(&inputs, &cal, &opts, Arc::new(NoProgress)))
            .unwrap_err()
            .to_string();
        for needle in [
            "new.parquet",
            "column \"embedding\"",
            "row 1234",
            "dimension 5",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in {e}");
        }
    }

    #[test]
    fn expected_clip_rates_by_method() {
        assert_eq!(expected_clip_rate(RangeMethod::MinMax), 0.0);
        assert!((expected_clip_rate(RangeMethod::Quantile { p: 0.99 }) - 0.02).abs() < 1e-12);
        // Two normal tails beyond 3 sigma: 0.27%.
        let m = expected_clip_rate(RangeMethod::MeanStd { k: 3.0 });
        assert!((m - 0.0026998).abs() < 1e-6, "{m}");
    }
}
