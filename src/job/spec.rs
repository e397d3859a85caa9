//! [`QuantizeSpec`]: every option of a quantize job as its front doors spell it (the CLI's
//! flags, the cluster's shard function, Python's keyword arguments), with each default
//! stated once here, and the one parser from those spellings to [`JobOptions`] and
//! [`CalibrateOptions`]. A front door builds a spec and nothing else; the cluster ships it
//! to its executors as JSON.
//!
//! ```
//! use embquant::job::QuantizeSpec;
//!
//! let mut spec = QuantizeSpec::new("embedding");
//! spec.schemes = vec!["int8".into(), "rabitq4".into()];
//! let opts = spec.job_options()?;
//! assert_eq!(opts.quantize.rabitq_bits, 4);
//! // Round-trips as JSON (how the cluster sends it), unknown keys refused.
//! let json = serde_json::to_string(&spec)?;
//! assert_eq!(serde_json::from_str::<QuantizeSpec>(&json)?, spec);
//! assert!(serde_json::from_str::<QuantizeSpec>(r#"{"schemez": []}"#).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};

use super::{CalibrateOptions, JobOptions, ReadOptions};
use crate::codec::scheme::Scheme;
use crate::error::{Error, Result};
use crate::{BinaryThreshold, CalibrationMethod, Int8Layout, MatryoshkaOptions, Rotation};

/// Default of [`QuantizeSpec::column`].
pub const DEFAULT_COLUMN: &str = "embedding";
/// Default of [`QuantizeSpec::schemes`], comma-separated.
pub const DEFAULT_SCHEMES: &str = "int8,binary";
/// Default of [`QuantizeSpec::binary_threshold`].
pub const DEFAULT_BINARY_THRESHOLD: &str = "zero";
/// Default of [`QuantizeSpec::int8_layout`].
pub const DEFAULT_INT8_LAYOUT: &str = "binary";
/// Default of [`QuantizeSpec::rabitq_rotation`].
pub const DEFAULT_RABITQ_ROTATION: &str = "hadamard";
/// Default of [`QuantizeSpec::method`].
pub const DEFAULT_METHOD: &str = "minmax";
/// Default of [`QuantizeSpec::seed`].
pub const DEFAULT_SEED: u64 = 42;
/// Default of [`QuantizeSpec::row_group_rows`].
pub const DEFAULT_ROW_GROUP_ROWS: usize = 65_536;
/// Default of [`QuantizeSpec::zstd_level`].
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;
/// The zstd levels accepted.
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=22;
/// Default of [`QuantizeSpec::batch_rows`] (small batches stay in cache: 1024 measured
/// fastest).
pub const DEFAULT_BATCH_ROWS: usize = 1024;
/// Default of [`QuantizeSpec::concurrency`].
pub const DEFAULT_CONCURRENCY: usize = 2;

/// Every option of a quantize job, spelled as the CLI flags spell them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct QuantizeSpec {
    /// The float vector column.
    pub column: String,
    /// Schemes in output order: `int8`, `int4`, `binary`, `f16`, `bf16`, `rabitq`, and
    /// `rabitq1` to `rabitq8` (`rabitq` with that many bits, as [`Self::rabitq_bits`]).
    pub schemes: Vec<String>,
    /// Bits per dimension of rabitq codes, 1 to 8 (2 to 8 add the extra-bits column).
    pub rabitq_bits: Option<u8>,
    /// Threshold of binary codes: `zero`, `mean` or `median`.
    pub binary_threshold: String,
    /// Rotation of rabitq codes: `hadamard`, `hadamard:SEED` or `none`.
    pub rabitq_rotation: String,
    /// int8 layout: `binary` (FixedSizeBinary) or `list` (`FixedSizeList<Int8>`).
    pub int8_layout: String,
    /// Matryoshka truncation (re-normalized) before calibrating and encoding.
    pub dims: Option<usize>,
    /// Drop the float column from the output.
    pub drop_source: bool,
    /// Range method of the calibration: `minmax`, `quantile:P` or `meanstd:K`, each
    /// optionally followed by `+symmetric` and/or `+per-tensor` ([`CalibrationMethod`]).
    pub method: String,
    /// Calibrate on a seeded uniform sample of this many rows (all rows when `None`).
    pub sample_rows: Option<u64>,
    /// Seed of the sample.
    pub seed: u64,
    /// Rows per output row group.
    pub row_group_rows: usize,
    /// Split the output into files of this many rows (the output is then a directory).
    pub target_file_rows: Option<u64>,
    /// zstd level of the output, 1 to 22.
    pub zstd_level: i32,
    /// Rows per read batch.
    pub batch_rows: usize,
    /// Row groups read at once.
    pub concurrency: usize,
    /// Write into a directory that holds other files, keeping them.
    pub overwrite: bool,
}

impl Default for QuantizeSpec {
    fn default() -> Self {
        QuantizeSpec {
            column: DEFAULT_COLUMN.into(),
            schemes: DEFAULT_SCHEMES.split(',').map(String::from).collect(),
            rabitq_bits: None,
            binary_threshold: DEFAULT_BINARY_THRESHOLD.into(),
            rabitq_rotation: DEFAULT_RABITQ_ROTATION.into(),
            int8_layout: DEFAULT_INT8_LAYOUT.into(),
            dims: None,
            drop_source: false,
            method: DEFAULT_METHOD.into(),
            sample_rows: None,
            seed: DEFAULT_SEED,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            target_file_rows: None,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            batch_rows: DEFAULT_BATCH_ROWS,
            concurrency: DEFAULT_CONCURRENCY,
            overwrite: false,
        }
    }
}

fn bad(option: &str, why: String) -> Error {
    Error::bad_argument(option, why)
}

impl QuantizeSpec {
    /// The defaults, for `column`.
    pub fn new(column: impl Into<String>) -> Self {
        QuantizeSpec {
            column: column.into(),
            ..Default::default()
        }
    }

    /// The job options this spec means, every value checked (the one parser of these
    /// spellings).
    pub fn job_options(&self) -> Result<JobOptions> {
        let mut o = JobOptions::new(&self.column);
        let (schemes, bits) = parse_schemes(&self.schemes, self.rabitq_bits)?;
        o.quantize.schemes = schemes;
        o.quantize.rabitq_bits = bits;
        o.quantize.binary_threshold = self.binary_threshold.parse::<BinaryThreshold>()?;
        o.quantize.matryoshka = self.matryoshka()?;
        o.quantize.drop_source = self.drop_source;
        o.quantize.int8_layout = self.int8_layout.parse::<Int8Layout>()?;
        o.quantize.rabitq_rotation = self.rabitq_rotation.parse::<Rotation>()?;
        if self.row_group_rows == 0 {
            return Err(bad("row_group_rows", "must be at least 1".into()));
        }
        if self.target_file_rows == Some(0) {
            return Err(bad("target_file_rows", "must be at least 1".into()));
        }
        if !ZSTD_LEVELS.contains(&self.zstd_level) {
            return Err(bad(
                "zstd_level",
                format!("{} is outside 1 to 22", self.zstd_level),
            ));
        }
        o.row_group_rows = self.row_group_rows;
        o.target_file_rows = self.target_file_rows;
        o.zstd_level = self.zstd_level;
        o.read = self.read()?;
        o.overwrite = self.overwrite;
        Ok(o)
    }

    /// The parameters of the codes this spec makes (threshold, rotation, bits, int8
    /// layout), for a measurement that encodes as the job would (the recall report); the
    /// dimensions are the user's to set.
    pub fn code_params(&self) -> Result<crate::CodeParams> {
        Ok(self.job_options()?.quantize.code_params(0))
    }

    /// The calibration the job runs when none is given (sketches when a median threshold
    /// needs them or the method is a quantile).
    pub fn calibrate_options(&self) -> Result<CalibrateOptions> {
        let needs_median = self.job_options()?.quantize.needs_median();
        if self.sample_rows == Some(0) {
            return Err(bad("sample_rows", "must be at least 1".into()));
        }
        Ok(CalibrateOptions {
            column: self.column.clone(),
            method: self.method.parse::<CalibrationMethod>()?,
            sample_rows: self.sample_rows,
            seed: self.seed,
            sketch: needs_median,
            matryoshka: self.matryoshka()?,
            read: self.read()?,
        })
    }

    fn matryoshka(&self) -> Result<Option<MatryoshkaOptions>> {
        match self.dims {
            Some(0) => Err(bad("dims", "must be at least 1".into())),
            d => Ok(d.map(|dims| MatryoshkaOptions {
                dims,
                normalize: true,
            })),
        }
    }

    fn read(&self) -> Result<ReadOptions> {
        if self.batch_rows == 0 || self.concurrency == 0 {
            return Err(bad("batch_rows / concurrency", "must be at least 1".into()));
        }
        Ok(ReadOptions {
            batch_size: self.batch_rows,
            concurrency: self.concurrency,
            ..ReadOptions::default()
        })
    }
}

/// Scheme names and a rabitq width: `rabitqN` is `rabitq` with N bits (one multi-bit width
/// per output; a 1-bit width adds nothing, its column serves `rabitq1`).
pub fn parse_schemes<S: AsRef<str>>(names: &[S], bits: Option<u8>) -> Result<(Vec<Scheme>, u8)> {
    let mut schemes = Vec::new();
    let mut widths: Vec<u8> = Vec::new();
    for n in names {
        let n = n.as_ref().trim();
        if n.is_empty() {
            continue;
        }
        let (scheme, b) = match n.strip_prefix("rabitq").filter(|r| !r.is_empty()) {
            // Exactly one digit: `rabitq04` and `rabitq+4` are typos, not widths.
            Some(r) => match r.as_bytes() {
                [b @ b'1'..=b'8'] => (Scheme::Rabitq, Some(b - b'0')),
                _ => return Err(bad("scheme", format!("{n:?}: expected rabitq1 to rabitq8"))),
            },
            None => (n.parse::<Scheme>()?, None),
        };
        if !schemes.contains(&scheme) {
            schemes.push(scheme);
        }
        widths.extend(b.filter(|&b| b > 1));
    }
    if schemes.is_empty() {
        return Err(bad("scheme", "no scheme given".into()));
    }
    if let Some(b) = bits {
        if !(1..=8).contains(&b) {
            return Err(bad("rabitq_bits", format!("{b} is outside 1 to 8")));
        }
    }
    widths.extend(bits.filter(|&b| b > 1));
    widths.sort_unstable();
    widths.dedup();
    if widths.len() > 1 {
        return Err(bad(
            "scheme",
            format!(
                "rabitq widths {widths:?} asked for: one output holds one multi-bit width (its 1-bit column serves rabitq1 too)"
            ),
        ));
    }
    let bits = widths.first().copied().unwrap_or(1);
    if bits > 1 && !schemes.contains(&Scheme::Rabitq) {
        schemes.push(Scheme::Rabitq);
    }
    Ok((schemes, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_job_defaults_and_widths_parse_once() {
        let spec = QuantizeSpec::new("v");
        let o = spec.job_options().unwrap();
        assert_eq!(o.quantize.schemes, vec![Scheme::Int8, Scheme::Binary]);
        assert_eq!(o.row_group_rows, DEFAULT_ROW_GROUP_ROWS);
        assert_eq!(o.read.batch_size, DEFAULT_BATCH_ROWS);
        let c = spec.calibrate_options().unwrap();
        assert!(!c.sketch);
        assert_eq!(c.seed, DEFAULT_SEED);
        for (names, bits, want) in [
            (vec!["rabitq4"], None, Ok((vec![Scheme::Rabitq], 4))),
            (
                vec!["int8", "rabitq"],
                Some(3),
                Ok((vec![Scheme::Int8, Scheme::Rabitq], 3)),
            ),
            (
                vec!["int8"],
                Some(2),
                Ok((vec![Scheme::Int8, Scheme::Rabitq], 2)),
            ),
            (
                vec!["rabitq1", "rabitq"],
                None,
                Ok((vec![Scheme::Rabitq], 1)),
            ),
            (vec!["rabitq04"], None, Err("expected rabitq1 to rabitq8")),
            (vec!["rabitq+4"], None, Err("expected rabitq1 to rabitq8")),
            (vec!["rabitq2", "rabitq4"], None, Err("one multi-bit width")),
            (vec!["rabitq"], Some(9), Err("outside 1 to 8")),
            (vec![" ", ""], None, Err("no scheme given")),
        ] {
            match (parse_schemes(&names, bits), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{names:?}"),
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{names:?}: {e}"),
                (got, want) => panic!("{names:?}: {got:?} but expected {want:?}"),
            }
        }
        let mut s = QuantizeSpec::new("v");
        s.zstd_level = 99;
        assert!(s
            .job_options()
            .unwrap_err()
            .to_string()
            .contains("zstd_level"));
        let mut s = QuantizeSpec::new("v");
        s.binary_threshold = "median".into();
        assert!(s.calibrate_options().unwrap().sketch);
    }
}
