//! [`DriftReport`]: clip rates, shifts and spread changes in range units, the dimensions
//! that moved most, and the advice.

use serde::Serialize;

use crate::calibration::{Calibration, RangeMethod};
use crate::codec::matryoshka::MatryoshkaOptions;
use crate::error::{Error, Result};
use crate::job::ReadOptions;

use super::DriftAccumulator;

/// What to compare and when to advise re-calibration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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

    pub(super) fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(Error::bad_argument(
                what,
                format!("{what} = {v} must be a non-negative number"),
            ))
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
            return Err(Error::bad_argument(
                "advise_std_ratio",
                format!(
                    "advise_std_ratio = {} must be at least 1",
                    self.advise_std_ratio
                ),
            ));
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
