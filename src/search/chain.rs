//! Tier chains: the tiers, `binary:8,int8:2,float` parsed into [`TierSpec`]s, and the
//! [`Hit`]s a chain returns.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A scoring tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Hamming distance of binary codes.
    Binary,
    /// Asymmetric float x int8.
    Int8,
    /// Asymmetric float x int4.
    Int4,
    /// Float x f16.
    F16,
    /// Exact float.
    Float,
    /// RaBitQ estimator over 1-bit codes.
    Rabitq,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Binary => "binary",
            Tier::Int8 => "int8",
            Tier::Int4 => "int4",
            Tier::F16 => "f16",
            Tier::Float => "float",
            Tier::Rabitq => "rabitq",
        })
    }
}

impl FromStr for Tier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "binary" => Tier::Binary,
            "int8" => Tier::Int8,
            "int4" => Tier::Int4,
            "f16" => Tier::F16,
            "float" => Tier::Float,
            "rabitq" => Tier::Rabitq,
            _ => {
                return Err(Error::InvalidOption(format!(
                    "tier {s:?}: expected binary, rabitq, int8, int4, f16 or float"
                )))
            }
        })
    }
}

/// One tier of a chain: every tier but the last keeps `k x factor` candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSpec {
    /// The tier.
    pub tier: Tier,
    /// Oversampling factor (ignored for the last tier).
    pub factor: usize,
}

impl TierSpec {
    /// Parses `binary:8,int8:2,float` (the last tier takes no factor).
    pub fn parse_chain(s: &str) -> Result<Vec<TierSpec>> {
        let parts: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(Error::InvalidOption("empty tier chain".into()));
        }
        let n = parts.len();
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (name, factor) = p.split_once(':').map_or((*p, None), |(a, b)| (a, Some(b)));
                let tier: Tier = name.parse()?;
                let factor = match (factor, i + 1 == n) {
                    (Some(f), false) => {
                        f.parse::<usize>().ok().filter(|&f| f >= 1).ok_or_else(|| {
                            Error::InvalidOption(format!(
                                "tier {p:?}: the factor must be a whole number >= 1"
                            ))
                        })?
                    }
                    (None, false) => {
                        return Err(Error::InvalidOption(format!(
                            "tier {p:?}: every tier but the last needs a factor, e.g. {name}:4"
                        )))
                    }
                    (Some(_), true) => {
                        return Err(Error::InvalidOption(format!(
                            "the last tier {p:?} takes no factor"
                        )))
                    }
                    (None, true) => 1,
                };
                Ok(TierSpec { tier, factor })
            })
            .collect()
    }
}

/// One result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row in the corpus (0-based over all corpus files).
    pub row: u32,
    /// Similarity in the scoring tier's units (see the module docs).
    pub score: f32,
    /// The tier that gave the score.
    pub tier: Tier,
}
