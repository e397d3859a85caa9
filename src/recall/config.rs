//! What a recall report measures: tier chains on prefixes ([`Config`]), targets, gates, the
//! options and the queries.

use crate::codec::scheme::CodeParams;
use std::fmt;

use crate::calibration::{CalibrationMethod, RangeShape};
use crate::error::{Error, Result};
use crate::search::TierSpec;

/// Oversampling factors of the default sweep.
pub const SWEEP_FACTORS: [usize; 5] = [1, 2, 4, 8, 16];

/// A tier chain, optionally on a Matryoshka prefix of the vectors and on ranges of another
/// shape than the report's calibration (per tensor, symmetric).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The chain.
    pub tiers: Vec<TierSpec>,
    /// Prefix length (None: every dimension).
    pub dims: Option<usize>,
    /// The ranges reshaped (None: the report's calibration as it is).
    pub shape: Option<RangeShape>,
}

/// `binary:4,int8:2,float`.
pub fn chain_string(tiers: &[TierSpec]) -> String {
    tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i + 1 == tiers.len() {
                t.tier.to_string()
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Config {
    /// `binary:4,int8` or, on a 128-dimension prefix, `binary:4,int8@128`; with ranges of
    /// another shape, `int8+symmetric`, `int8+per-tensor@128` (as a calibration method
    /// names them).
    pub fn parse(s: &str) -> Result<Self> {
        let (chain, dims) = match s.trim().split_once('@') {
            Some((c, d)) => (
                c,
                Some(
                    d.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&d| d > 0)
                        .ok_or_else(|| {
                            Error::bad_argument(
                                "configs",
                                format!("configuration {s:?}: @{d} is not a dimension"),
                            )
                        })?,
                ),
            ),
            None => (s, None),
        };
        let (chain, shape) = match chain.split_once('+') {
            Some((c, shape)) => {
                let m = format!("minmax+{shape}").parse::<CalibrationMethod>()?;
                (c, Some(m.shape))
            }
            None => (chain, None),
        };
        Ok(Config {
            tiers: TierSpec::parse_chain(chain)?,
            dims,
            shape,
        })
    }

    pub(crate) fn factor_of(&self, i: usize) -> usize {
        self.tiers[i].factor
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain_string(&self.tiers))?;
        if let Some(shape) = self.shape {
            let m = CalibrationMethod {
                shape,
                ..CalibrationMethod::default()
            };
            // `minmax+symmetric` -> `+symmetric`.
            let m = m.to_string();
            f.write_str(&m["minmax".len()..])?;
        }
        if let Some(d) = self.dims {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `0.95@10`: a recall at a k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Recall in [0, 1].
    pub recall: f64,
    /// k.
    pub k: usize,
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::bad_argument(
                "target_recall",
                format!("{s:?}: expected RECALL@K, e.g. 0.95@10"),
            )
        };
        let (r, k) = s.trim().split_once('@').ok_or_else(bad)?;
        let recall: f64 = r.trim().parse().map_err(|_| bad())?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&recall) || k == 0 {
            return Err(bad());
        }
        Ok(Target { recall, k })
    }
}

/// `binary:4,int8=0.95@10`: fail when the configuration's recall@k is below the bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The configuration.
    pub config: Config,
    /// The bound.
    pub min: Target,
}

impl std::str::FromStr for Gate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (c, t) = s.rsplit_once('=').ok_or_else(|| {
            Error::bad_argument(
                "min_recall",
                format!("gate {s:?}: expected CHAIN=RECALL@K, e.g. binary:4,int8=0.95@10"),
            )
        })?;
        Ok(Gate {
            config: Config::parse(c)?,
            min: t.parse()?,
        })
    }
}

/// What the report measures.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecallOptions {
    /// The ks of recall@k (the largest is the ground truth's depth).
    pub ks: Vec<usize>,
    /// Configurations (None: [`default_sweep`]).
    pub configs: Option<Vec<Config>>,
    /// Matryoshka prefixes swept with every configuration.
    pub dims: Vec<usize>,
    /// The recall to meet with the cheapest configuration.
    pub target: Option<Target>,
    /// Gates.
    pub gates: Vec<Gate>,
    /// Also calibrate on a sample of this many rows and report the difference.
    pub calibration_rows: Option<usize>,
    /// Calibration range method.
    pub range: CalibrationMethod,
    /// Seed of the calibration sample.
    pub seed: u64,
    /// Bytes of codes held in memory at most (codes of other schemes are dropped and encoded
    /// again when needed; one chain's own codes are always held). The report's numbers do
    /// not depend on it.
    pub code_budget: usize,
    /// What the codes are made under: binary threshold, RaBitQ rotation (as a quantize spec
    /// says them, [`crate::QuantizeOptions::code_params`]; the dimensions are each
    /// variant's own).
    pub codes: CodeParams,
}

/// The default [`RecallOptions::code_budget`]: 1 GiB.
pub const DEFAULT_CODE_BUDGET: usize = 1 << 30;

impl Default for RecallOptions {
    fn default() -> Self {
        RecallOptions {
            ks: vec![1, 10, 100],
            configs: None,
            dims: Vec::new(),
            target: None,
            gates: Vec::new(),
            calibration_rows: None,
            range: CalibrationMethod::default(),
            seed: 42,
            code_budget: DEFAULT_CODE_BUDGET,
            codes: CodeParams::new(0),
        }
    }
}

/// The default sweep: each scheme alone (RaBitQ at 1, 2, 4 and 8 bits); binary -> int8,
/// binary -> float and rabitq -> int8 at oversampling 1, 2, 4, 8, 16; 2- and 4-bit RaBitQ ->
/// int8 at 1, 2, 4; the three-tier chains, and the bound-pruned `rabitq1:bound,rabitq4:bound,int8`.
pub fn default_sweep() -> Vec<Config> {
    let mut s: Vec<String> = [
        "binary", "rabitq", "rabitq2", "rabitq4", "rabitq8", "int4", "int8", "f16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for first in ["binary:{f},int8", "binary:{f},float", "rabitq:{f},int8"] {
        for f in SWEEP_FACTORS {
            s.push(first.replace("{f}", &f.to_string()));
        }
    }
    for first in ["rabitq2:{f},int8", "rabitq4:{f},int8"] {
        for f in [1, 2, 4] {
            s.push(first.replace("{f}", &f.to_string()));
        }
    }
    s.push("binary:4,int8:2,float".into());
    s.push("rabitq:4,int8:2,float".into());
    s.push("rabitq1:bound,rabitq4:bound,int8".into());
    // What per-dimension asymmetric ranges buy: int8 on one range for every dimension, and
    // on ranges symmetric about zero.
    s.push("int8+per-tensor".into());
    s.push("int8+symmetric".into());
    s.iter()
        .map(|c| Config::parse(c).expect("valid built-in chain"))
        .collect()
}

/// Queries: values (row-major) and, when sampled from the corpus, each one's own row.
#[derive(Debug, Clone)]
pub struct Queries {
    /// Row-major values.
    pub values: Vec<f32>,
    /// The corpus row each query must not return.
    pub exclude: Option<Vec<u32>>,
}
