//! How a calibration chooses its ranges: the [`RangeMethod`] over the statistics, the
//! [`RangeShape`] applied after it, and [`CalibrationMethod`], the two as every front door
//! spells them (`minmax+symmetric+per-tensor`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the per-dimension range `[lo, hi]` is chosen from the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum RangeMethod {
    /// The observed minimum and maximum: nothing seen in calibration clips.
    #[default]
    MinMax,
    /// The `1 - p` and `p` quantiles of each dimension's values (`0.5 <= p <= 1`): clips
    /// a fraction `1 - p` of each dimension's values at each end, counted over values.
    Quantile {
        /// Upper quantile, e.g. 0.999.
        p: f64,
    },
    /// `mean ± k * std` per dimension, intersected with `[min, max]`.
    MeanStd {
        /// Number of standard deviations, e.g. 3.
        k: f64,
    },
}

impl fmt::Display for RangeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeMethod::MinMax => write!(f, "minmax"),
            RangeMethod::Quantile { p } => write!(f, "quantile:{p}"),
            RangeMethod::MeanStd { k } => write!(f, "meanstd:{k}"),
        }
    }
}

impl FromStr for RangeMethod {
    type Err = Error;

    /// Parses `minmax`, `quantile:P` or `meanstd:K`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::bad_argument("method", format!(
                "range method {s:?}: expected minmax, quantile:P (0.5 <= P <= 1) or meanstd:K (K > 0)"
            ))
        };
        let (name, arg) = s.split_once(':').map_or((s, None), |(n, a)| (n, Some(a)));
        let num = |a: Option<&str>| a.and_then(|a| a.trim().parse::<f64>().ok()).ok_or_else(bad);
        let m = match name.trim() {
            "minmax" if arg.is_none() => RangeMethod::MinMax,
            "quantile" => RangeMethod::Quantile { p: num(arg)? },
            "meanstd" => RangeMethod::MeanStd { k: num(arg)? },
            _ => return Err(bad()),
        };
        m.validate().map_err(|_| bad())?;
        Ok(m)
    }
}

/// How the ranges a [`RangeMethod`] chose are shaped: per dimension or one for the whole
/// tensor, asymmetric or symmetric about zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RangeShape {
    /// One range for every dimension (the union of the per-dimension ranges), as Qdrant,
    /// Lance and faiss' `QT_8bit_uniform` calibrate; per dimension when false.
    #[serde(default)]
    pub per_tensor: bool,
    /// Ranges symmetric about zero (`±max|x|`) on a grid with a level at zero: int8 codes are
    /// `round(x / step)` with `step = max|x| / 127` (zero-point 0, so int8 x int8 products
    /// need no zero-point terms), int4 levels `8 + round(x / step)` with `step = max|x| / 7`.
    #[serde(default)]
    pub symmetric: bool,
}

impl RangeShape {
    pub(crate) fn is_default(&self) -> bool {
        *self == RangeShape::default()
    }
}

/// A calibration request: the [`RangeMethod`] and the [`RangeShape`], spelled `minmax`,
/// `quantile:0.999`, `meanstd:3`, each optionally followed by `+symmetric` and/or
/// `+per-tensor` (the one grammar of every front door's `method`).
///
/// ```
/// use embquant::calibration::{CalibrationMethod, RangeMethod};
///
/// let m: CalibrationMethod = "quantile:0.999+symmetric+per-tensor".parse()?;
/// assert_eq!(m.range, RangeMethod::Quantile { p: 0.999 });
/// assert!(m.shape.symmetric && m.shape.per_tensor);
/// assert_eq!(m.to_string(), "quantile:0.999+symmetric+per-tensor");
/// # Ok::<(), embquant::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct CalibrationMethod {
    /// How each range is chosen from the statistics.
    pub range: RangeMethod,
    /// How the ranges are then shaped.
    pub shape: RangeShape,
}

impl From<RangeMethod> for CalibrationMethod {
    fn from(range: RangeMethod) -> Self {
        CalibrationMethod {
            range,
            shape: RangeShape::default(),
        }
    }
}

impl CalibrationMethod {
    /// Whether the statistics need quantile sketches.
    pub fn needs_sketch(&self) -> bool {
        matches!(self.range, RangeMethod::Quantile { .. })
    }
}

impl fmt::Display for CalibrationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.range)?;
        if self.shape.symmetric {
            f.write_str("+symmetric")?;
        }
        if self.shape.per_tensor {
            f.write_str("+per-tensor")?;
        }
        Ok(())
    }
}

impl FromStr for CalibrationMethod {
    type Err = Error;

    /// Parses `METHOD[+symmetric][+per-tensor]` (the suffixes in any order).
    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.split('+').map(str::trim);
        let mut m = CalibrationMethod::from(parts.next().unwrap_or("").parse::<RangeMethod>()?);
        for p in parts {
            match p {
                "symmetric" if !m.shape.symmetric => m.shape.symmetric = true,
                "per-tensor" if !m.shape.per_tensor => m.shape.per_tensor = true,
                _ => {
                    return Err(Error::bad_argument(
                        "method",
                        format!("{s:?}: {p:?} is not a range shape (expected +symmetric and/or +per-tensor, once each)"),
                    ))
                }
            }
        }
        Ok(m)
    }
}

impl RangeMethod {
    pub(crate) fn validate(&self) -> Result<()> {
        match *self {
            RangeMethod::Quantile { p } if !(0.5..=1.0).contains(&p) => Err(Error::bad_argument(
                "method",
                format!("quantile p = {p} is outside [0.5, 1]"),
            )),
            RangeMethod::MeanStd { k } if !(k > 0.0 && k.is_finite()) => Err(Error::bad_argument(
                "method",
                format!("meanstd k = {k} must be positive"),
            )),
            _ => Ok(()),
        }
    }
}

/// The ranges `lo`, `hi` shaped by `shape`: symmetric ranges are `±max(|lo|, |hi|)`,
/// per-tensor ranges the union over the dimensions (both: `±` the largest `|x|` bound).
pub(super) fn shaped(
    mut lo: Vec<f32>,
    mut hi: Vec<f32>,
    shape: RangeShape,
) -> (Vec<f32>, Vec<f32>) {
    if shape.per_tensor {
        let l = lo.iter().copied().fold(f32::INFINITY, f32::min);
        let h = hi.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        lo.fill(l);
        hi.fill(h);
    }
    if shape.symmetric {
        for (l, h) in lo.iter_mut().zip(hi.iter_mut()) {
            let m = l.abs().max(h.abs());
            (*l, *h) = (-m, m);
        }
    }
    (lo, hi)
}
