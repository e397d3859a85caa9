//! Calibration: per-dimension ranges and centers derived from [`Stats`] by a range method,
//! stored as versioned JSON with a content fingerprint.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{FixedSizeListArray, Float32Array};
//! use arrow_schema::{DataType, Field};
//! use embquant::{Calibration, RangeMethod, Stats, StatsOptions};
//!
//! let values = Float32Array::from(vec![-1.0, 0.0, 0.5, 2.0, 1.0, 4.0]);
//! let field = Arc::new(Field::new_list_field(DataType::Float32, false));
//! let vectors = FixedSizeListArray::new(field, 2, Arc::new(values), None);
//! let stats = Stats::compute(&vectors, &StatsOptions::default())?;
//! let cal = Calibration::from_stats(&stats, RangeMethod::MinMax)?;
//! assert_eq!(cal.lo(), &[-1.0, 0.0]);
//! assert_eq!(cal.hi(), &[1.0, 4.0]);
//! let json = cal.to_json()?;
//! assert_eq!(Calibration::from_json(&json)?, cal);
//! # Ok::<(), embquant::Error>(())
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::stats::Stats;

/// The largest vector dimension embquant reads from metadata (64Ki; models today stop at
/// a few thousand): a larger value in a recipe is tampering, not a model.
pub const MAX_DIMS: usize = 1 << 16;

/// Version of the calibration JSON written by this crate.
pub const CALIBRATION_FORMAT_VERSION: u32 = 1;

/// Ranges no wider than this are always *degenerate* (see [`Calibration::degenerate_mask`]).
pub const MIN_RANGE_WIDTH: f32 = 1e-30;

/// Ranges no wider than this fraction of the median range (over the dimensions of one
/// calibration) are *degenerate* too.
pub const RELATIVE_MIN_WIDTH: f32 = 1e-6;

mod method;

use method::shaped;
pub use method::{CalibrationMethod, RangeMethod, RangeShape};

/// Per-dimension calibration: the range each codec maps onto its levels, the centers used
/// by centered binary codes, and the statistics it came from.
///
/// Serialized as JSON (see [`Calibration::to_json`]) with an explicit `version`, the range
/// `method`, the `rows` seen, the `dim`, per-dimension arrays and a `fingerprint`: the first
/// 16 bytes (hex) of the SHA-256 of the *encoding parameters* (`dim`, `lo`, `hi`, `mean`,
/// `median`, as little-endian `f32` bits). Two calibrations with the same fingerprint encode
/// every vector identically, so codes carrying equal fingerprints can be compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    version: u32,
    method: RangeMethod,
    rows: u64,
    dim: usize,
    /// Lower end of the encoded range.
    lo: Vec<f32>,
    /// Upper end of the encoded range.
    hi: Vec<f32>,
    /// Observed minimum.
    min: Vec<f32>,
    /// Observed maximum.
    max: Vec<f32>,
    mean: Vec<f32>,
    /// Population standard deviation.
    std: Vec<f32>,
    /// Approximate median (from the quantile sketch), when it was collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    median: Option<Vec<f32>>,
    /// How the ranges were shaped (omitted when per dimension and asymmetric).
    #[serde(default, skip_serializing_if = "RangeShape::is_default")]
    shape: RangeShape,
    fingerprint: String,
}

impl Calibration {
    /// Derives a calibration from statistics, by a [`RangeMethod`] or a
    /// [`CalibrationMethod`] (which also shapes the ranges).
    pub fn from_stats(stats: &Stats, method: impl Into<CalibrationMethod>) -> Result<Self> {
        let CalibrationMethod {
            range: method,
            shape,
        } = method.into();
        method.validate()?;
        if stats.count() == 0 {
            return Err(Error::EmptyCalibration);
        }
        let dim = stats.dim();
        let (min, max) = (stats.min().to_vec(), stats.max().to_vec());
        let mean: Vec<f32> = stats.mean().iter().map(|&m| m as f32).collect();
        let std: Vec<f32> = stats.variance().iter().map(|&v| v.sqrt() as f32).collect();
        let clampd = |v: f64, d: usize| (v as f32).clamp(min[d], max[d]);
        let (lo, hi): (Vec<f32>, Vec<f32>) = match method {
            RangeMethod::MinMax => (min.clone(), max.clone()),
            RangeMethod::Quantile { p } => {
                let missing = Error::MissingCalibrationData(
                    "quantile sketches: collect statistics with a sketch for the quantile method",
                );
                let ql = stats.quantiles(1.0 - p).ok_or(missing)?;
                let qh = stats.quantiles(p).expect("sketches present");
                (0..dim)
                    .map(|d| {
                        let (l, h) = (clampd(ql[d], d), clampd(qh[d], d));
                        (l.min(h), h.max(l))
                    })
                    .unzip()
            }
            RangeMethod::MeanStd { k } => (0..dim)
                .map(|d| {
                    let (m, s) = (stats.mean()[d], std[d] as f64);
                    (clampd(m - k * s, d), clampd(m + k * s, d))
                })
                .unzip(),
        };
        let median = stats
            .quantiles(0.5)
            .map(|q| q.iter().enumerate().map(|(d, &v)| clampd(v, d)).collect());
        let (lo, hi) = shaped(lo, hi, shape);
        let mut cal = Calibration {
            version: CALIBRATION_FORMAT_VERSION,
            method,
            rows: stats.count(),
            dim,
            lo,
            hi,
            min,
            max,
            mean,
            std,
            median,
            shape,
            fingerprint: String::new(),
        };
        cal.fingerprint = cal.compute_fingerprint();
        cal.validate()?;
        Ok(cal)
    }

    /// The calibration of the first `dims` dimensions (for Matryoshka prefixes that are
    /// *not* re-normalized; re-normalized prefixes change every value and need their own
    /// calibration).
    pub fn prefix(&self, dims: usize) -> Result<Self> {
        if dims == 0 || dims > self.dim {
            return Err(Error::bad_argument(
                "dims",
                format!(
                    "prefix of {dims} dimensions of a {}-dimensional calibration",
                    self.dim
                ),
            ));
        }
        let cut = |v: &Vec<f32>| v[..dims].to_vec();
        let mut cal = Calibration {
            version: self.version,
            method: self.method,
            rows: self.rows,
            dim: dims,
            lo: cut(&self.lo),
            hi: cut(&self.hi),
            min: cut(&self.min),
            max: cut(&self.max),
            mean: cut(&self.mean),
            std: cut(&self.std),
            median: self.median.as_ref().map(cut),
            shape: self.shape,
            fingerprint: String::new(),
        };
        cal.fingerprint = cal.compute_fingerprint();
        Ok(cal)
    }

    fn compute_fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"embquant-calibration\0");
        h.update((self.dim as u64).to_le_bytes());
        let mut put = |name: &[u8], v: Option<&[f32]>| {
            h.update(name);
            match v {
                None => h.update([0u8]),
                Some(v) => {
                    h.update([1u8]);
                    v.iter().for_each(|x| h.update(x.to_bits().to_le_bytes()));
                }
            }
        };
        put(b"lo", Some(&self.lo));
        put(b"hi", Some(&self.hi));
        put(b"mean", Some(&self.mean));
        put(b"median", self.median.as_deref());
        // The shape changes the grid (a symmetric one has a level at zero): it is part of
        // the encoding, hashed when it is not the default (older fingerprints unchanged).
        if !self.shape.is_default() {
            h.update(b"shape");
            h.update([
                u8::from(self.shape.per_tensor),
                u8::from(self.shape.symmetric),
            ]);
        }
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// This calibration with its ranges reshaped by `shape` as well (a shape already applied
    /// stays: symmetric ranges are not made asymmetric again).
    pub fn with_shape(&self, shape: RangeShape) -> Self {
        let shape = RangeShape {
            per_tensor: self.shape.per_tensor || shape.per_tensor,
            symmetric: self.shape.symmetric || shape.symmetric,
        };
        let (lo, hi) = shaped(self.lo.clone(), self.hi.clone(), shape);
        let mut cal = Calibration {
            lo,
            hi,
            shape,
            ..self.clone()
        };
        cal.fingerprint = cal.compute_fingerprint();
        cal
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses and validates JSON written by [`Calibration::to_json`]: the version must be
    /// supported, every array must have `dim` finite entries with `lo <= hi`, and the
    /// fingerprint must match the parameters.
    pub fn from_json(json: &str) -> Result<Self> {
        let cal: Calibration = serde_json::from_str(json)?;
        cal.validate()?;
        Ok(cal)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidCalibration(m));
        if self.version == 0 || self.version > CALIBRATION_FORMAT_VERSION {
            return bad(format!(
                "format version {} is not supported (this build reads up to {CALIBRATION_FORMAT_VERSION})",
                self.version
            ));
        }
        self.method.validate()?;
        if self.dim == 0 {
            return bad("dim is 0".into());
        }
        let arrays: [(&str, Option<&Vec<f32>>); 7] = [
            ("lo", Some(&self.lo)),
            ("hi", Some(&self.hi)),
            ("min", Some(&self.min)),
            ("max", Some(&self.max)),
            ("mean", Some(&self.mean)),
            ("std", Some(&self.std)),
            ("median", self.median.as_ref()),
        ];
        for (name, v) in arrays {
            let Some(v) = v else { continue };
            if v.len() != self.dim {
                return bad(format!(
                    "{name} has {} entries, dim is {}",
                    v.len(),
                    self.dim
                ));
            }
            if let Some(d) = v.iter().position(|x| !x.is_finite()) {
                return bad(format!("{name}[{d}] is not finite"));
            }
        }
        if let Some(d) = (0..self.dim).find(|&d| self.lo[d] > self.hi[d]) {
            return bad(format!(
                "lo[{d}] = {} > hi[{d}] = {}",
                self.lo[d], self.hi[d]
            ));
        }
        if let Some(d) = (0..self.dim).find(|&d| !(self.hi[d] - self.lo[d]).is_finite()) {
            return bad(format!(
                "the range of dimension {d}, [{}, {}], overflows f32: values this large (near 3.4e38) cannot be quantized; rescale the vectors",
                self.lo[d], self.hi[d]
            ));
        }
        if self.dim > MAX_DIMS {
            return bad(format!("dim {} is above {MAX_DIMS}", self.dim));
        }
        let (lo, hi) = shaped(self.lo.clone(), self.hi.clone(), self.shape);
        if (lo, hi) != (self.lo.clone(), self.hi.clone()) {
            return bad(format!(
                "the ranges are not of the recorded shape ({:?})",
                self.shape
            ));
        }
        let fp = self.compute_fingerprint();
        if fp != self.fingerprint {
            return bad(format!(
                "fingerprint {} does not match the parameters ({fp}): the calibration was altered",
                self.fingerprint
            ));
        }
        Ok(())
    }

    /// Format version.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The range method.
    pub fn method(&self) -> RangeMethod {
        self.method
    }
    /// How the ranges are shaped (per tensor, symmetric).
    pub fn shape(&self) -> RangeShape {
        self.shape
    }
    /// Non-null rows the statistics saw.
    pub fn rows(&self) -> u64 {
        self.rows
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Lower end of each dimension's encoded range.
    pub fn lo(&self) -> &[f32] {
        &self.lo
    }
    /// Upper end of each dimension's encoded range.
    pub fn hi(&self) -> &[f32] {
        &self.hi
    }
    /// Observed per-dimension minimum.
    pub fn min(&self) -> &[f32] {
        &self.min
    }
    /// Observed per-dimension maximum.
    pub fn max(&self) -> &[f32] {
        &self.max
    }
    /// Per-dimension mean.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }
    /// Per-dimension population standard deviation.
    pub fn std(&self) -> &[f32] {
        &self.std
    }
    /// Per-dimension median, when the statistics kept quantile sketches.
    pub fn median(&self) -> Option<&[f32]> {
        self.median.as_deref()
    }
    /// The same calibration without its medians (fingerprint recomputed): what a job that
    /// needs no median records, whichever engine computed the statistics.
    pub fn without_medians(mut self) -> Self {
        if self.median.take().is_some() {
            self.fingerprint = self.compute_fingerprint();
        }
        self
    }

    /// Content fingerprint of the encoding parameters.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    /// Which dimensions are *degenerate*: their range is no wider than
    /// `max(MIN_RANGE_WIDTH, RELATIVE_MIN_WIDTH * median range)`.
    ///
    /// Codecs treat a degenerate dimension as constant: every value encodes to one code and
    /// decodes to the range's midpoint, so there is no division by zero or by a subnormal
    /// step, and no code space is spent on noise. The three dead dimensions of
    /// all-MiniLM-L6-v2 (values ~1e-33, with rare outliers ~5e-8, against ranges ~0.3 in the
    /// other dimensions) are the motivating case. Clipping is still counted against the
    /// recorded `[lo, hi]`.
    pub fn degenerate_mask(&self) -> Vec<bool> {
        let widths: Vec<f32> = self.lo.iter().zip(&self.hi).map(|(l, h)| h - l).collect();
        let mut sorted = widths.clone();
        sorted.sort_by(f32::total_cmp);
        let floor = MIN_RANGE_WIDTH.max(sorted[sorted.len() / 2] * RELATIVE_MIN_WIDTH);
        widths.iter().map(|&w| w.is_nan() || w <= floor).collect()
    }

    /// Indices of the degenerate dimensions (see [`Calibration::degenerate_mask`]).
    pub fn degenerate_dims(&self) -> Vec<usize> {
        let mask = self.degenerate_mask();
        (0..self.dim).filter(|&d| mask[d]).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stats::StatsOptions;
    use crate::testutil::vectors_array;

    fn stats(rows: usize, dim: usize, seed: u64) -> Stats {
        let a = vectors_array(rows, dim, seed, 0.0);
        Stats::compute(&a, &StatsOptions::default()).unwrap()
    }

    #[test]
    fn range_shapes_reshape_the_ranges_and_are_recorded() {
        let s = stats(500, 9, 3);
        let plain = Calibration::from_stats(&s, RangeMethod::MinMax).unwrap();
        // The default shape changes nothing, fingerprint included.
        let same = Calibration::from_stats(&s, "minmax".parse::<CalibrationMethod>().unwrap());
        assert_eq!(same.unwrap(), plain);
        let lo_min = plain.lo().iter().copied().fold(f32::INFINITY, f32::min);
        let hi_max = plain.hi().iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let m_all = lo_min.abs().max(hi_max.abs());
        for (method, want) in [
            ("minmax+per-tensor", (false, true)),
            ("minmax+symmetric", (true, false)),
            ("minmax+per-tensor+symmetric", (true, true)),
            ("minmax+symmetric+per-tensor", (true, true)),
        ] {
            let m: CalibrationMethod = method.parse().unwrap();
            let c = Calibration::from_stats(&s, m).unwrap();
            assert_eq!(
                (c.shape().symmetric, c.shape().per_tensor),
                want,
                "{method}"
            );
            for d in 0..9 {
                let (lo, hi) = (c.lo()[d], c.hi()[d]);
                match want {
                    (false, true) => assert_eq!((lo, hi), (lo_min, hi_max)),
                    (true, false) => {
                        let m = plain.lo()[d].abs().max(plain.hi()[d].abs());
                        assert_eq!((lo, hi), (-m, m));
                    }
                    _ => assert_eq!((lo, hi), (-m_all, m_all)),
                }
            }
            assert_ne!(c.fingerprint(), plain.fingerprint(), "{method}");
            // Recorded in the JSON, read back, and the reshaping of a plain calibration.
            let back = Calibration::from_json(&c.to_json().unwrap()).unwrap();
            assert_eq!(back, c);
            assert_eq!(plain.with_shape(c.shape()), c, "{method}");
        }
        // Ranges that are not of the recorded shape are refused.
        let c =
            Calibration::from_stats(&s, "minmax+symmetric".parse::<CalibrationMethod>().unwrap())
                .unwrap();
        let json = c.to_json().unwrap();
        let tampered = json.replacen("\"symmetric\": true", "\"symmetric\": false", 1);
        assert_ne!(json, tampered);
        assert!(matches!(
            Calibration::from_json(&tampered),
            Err(Error::InvalidCalibration(_))
        ));
        for bad in [
            "minmax+",
            "minmax+tensor",
            "minmax+symmetric+symmetric",
            "+symmetric",
        ] {
            assert!(
                matches!(
                    bad.parse::<CalibrationMethod>(),
                    Err(Error::BadArgument { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn methods_parse_and_print() {
        for s in ["minmax", "quantile:0.999", "meanstd:3"] {
            assert_eq!(s.parse::<RangeMethod>().unwrap().to_string(), s);
        }
        for s in [
            "quantile",
            "quantile:1.5",
            "quantile:0.2",
            "meanstd:-1",
            "minmax:2",
            "x",
        ] {
            assert_err!(
                s.parse::<RangeMethod>(),
                crate::Error::BadArgument { .. },
                "{s}"
            );
        }
    }

    #[test]
    fn quantile_range_is_inside_minmax_and_clips_about_the_tail() {
        let s = stats(20_000, 4, 7);
        let mm = Calibration::from_stats(&s, RangeMethod::MinMax).unwrap();
        let q = Calibration::from_stats(&s, RangeMethod::Quantile { p: 0.99 }).unwrap();
        let ms = Calibration::from_stats(&s, RangeMethod::MeanStd { k: 2.0 }).unwrap();
        for d in 0..4 {
            assert!(mm.lo()[d] <= q.lo()[d] && q.hi()[d] <= mm.hi()[d]);
            assert!(q.lo()[d] < q.hi()[d]);
            assert!(mm.lo()[d] <= ms.lo()[d] && ms.hi()[d] <= mm.hi()[d]);
        }
        assert_ne!(mm.fingerprint(), q.fingerprint());
        // Count the values outside the quantile range: about 1% per end, per dimension.
        let a = vectors_array(20_000, 4, 7, 0.0);
        let v = crate::Vectors::try_new(&a).unwrap();
        for d in 0..4 {
            let below = (0..v.len()).filter(|&r| v.row(r)[d] < q.lo()[d]).count();
            let above = (0..v.len()).filter(|&r| v.row(r)[d] > q.hi()[d]).count();
            assert!((120..=280).contains(&below), "dim {d}: {below} below");
            assert!((120..=280).contains(&above), "dim {d}: {above} above");
        }
    }

    #[test]
    fn zero_rows_is_an_error() {
        let s = Stats::new(3, &StatsOptions::default());
        assert!(matches!(
            Calibration::from_stats(&s, RangeMethod::MinMax),
            Err(Error::EmptyCalibration)
        ));
    }

    #[test]
    fn quantile_without_sketch_is_an_error() {
        let a = vectors_array(10, 3, 1, 0.0);
        let s = Stats::compute(&a, &StatsOptions::moments_only()).unwrap();
        let e = Calibration::from_stats(&s, RangeMethod::Quantile { p: 0.99 }).unwrap_err();
        assert!(matches!(e, Error::MissingCalibrationData(_)));
        assert!(Calibration::from_stats(&s, RangeMethod::MinMax)
            .unwrap()
            .median()
            .is_none());
    }

    #[test]
    fn tampered_json_is_rejected() {
        let cal = Calibration::from_stats(&stats(100, 3, 2), RangeMethod::MinMax).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&cal.to_json().unwrap()).unwrap();
        v["hi"][1] = serde_json::json!(5.0);
        let e = Calibration::from_json(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("fingerprint"), "{e}");
        let mut v: serde_json::Value = serde_json::from_str(&cal.to_json().unwrap()).unwrap();
        v["version"] = serde_json::json!(99);
        assert!(Calibration::from_json(&v.to_string())
            .unwrap_err()
            .to_string()
            .contains("version"));
        let mut v: serde_json::Value = serde_json::from_str(&cal.to_json().unwrap()).unwrap();
        v["lo"].as_array_mut().unwrap().pop();
        assert!(Calibration::from_json(&v.to_string())
            .unwrap_err()
            .to_string()
            .contains("entries"));
    }

    #[test]
    fn prefix_keeps_the_first_dims() {
        let cal = Calibration::from_stats(&stats(100, 8, 3), RangeMethod::MinMax).unwrap();
        let p = cal.prefix(3).unwrap();
        assert_eq!(p.dim(), 3);
        assert_eq!(p.lo(), &cal.lo()[..3]);
        assert_ne!(p.fingerprint(), cal.fingerprint());
        assert_err!(cal.prefix(9), Error::BadArgument { .. });
        assert_err!(cal.prefix(0), Error::BadArgument { .. });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn json_round_trips_exactly(rows in 1usize..50, dim in 1usize..40, seed in any::<u64>(), scale in -30i32..30) {
            let a = vectors_array(rows, dim, seed, 0.0);
            let s = Stats::compute(&crate::testutil::scale_array(&a, 10f32.powi(scale)), &StatsOptions::default()).unwrap();
            for m in [RangeMethod::MinMax, RangeMethod::Quantile { p: 0.9 }, RangeMethod::MeanStd { k: 3.0 }] {
                let cal = Calibration::from_stats(&s, m).unwrap();
                let back = Calibration::from_json(&cal.to_json().unwrap()).unwrap();
                prop_assert_eq!(&back, &cal);
                prop_assert_eq!(back.fingerprint(), cal.fingerprint());
            }
        }
    }

    #[test]
    fn ranges_that_overflow_f32_are_refused() {
        // Finite values near the top of f32: hi - lo is infinite.
        let v = arrow_array::FixedSizeListArray::new(
            std::sync::Arc::new(arrow_schema::Field::new_list_field(
                arrow_schema::DataType::Float32,
                false,
            )),
            2,
            std::sync::Arc::new(arrow_array::Float32Array::from(vec![
                3.0e38f32, 0.1, -3.0e38, 0.2,
            ])),
            None,
        );
        let stats = Stats::compute(&v, &StatsOptions::moments_only()).unwrap();
        let e = Calibration::from_stats(&stats, RangeMethod::MinMax).unwrap_err();
        assert!(e.to_string().contains("overflows f32"), "{e}");
    }
}
