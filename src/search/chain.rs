//! Tier chains: the tiers, `binary:8,int8:2,float` or `rabitq1:bound,rabitq4:bound,int8`
//! parsed into [`TierSpec`]s, and the [`Hit`]s a chain returns.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A scoring tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// RaBitQ estimator over codes of 1 to 8 bits per dimension (`rabitq` = `rabitq1`,
    /// `rabitq4`, ...).
    Rabitq(RabitqBits),
}

/// Bits per dimension of RaBitQ codes: 1 to 8, checked when made.
///
/// ```
/// use embquant::search::{RabitqBits, Tier};
///
/// assert_eq!("rabitq4".parse::<Tier>()?, Tier::Rabitq(RabitqBits::new(4)?));
/// assert!(RabitqBits::new(0).is_err() && RabitqBits::new(9).is_err());
/// # Ok::<(), embquant::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RabitqBits(u8);

impl RabitqBits {
    /// One bit: the sign codes alone.
    pub const ONE: RabitqBits = RabitqBits(1);

    /// `bits` (1 to 8), or an error naming the bound.
    pub fn new(bits: u8) -> Result<Self> {
        if (1..=crate::codec::rabitq_ex::MAX_BITS).contains(&bits) {
            Ok(RabitqBits(bits))
        } else {
            Err(Error::bad_argument(
                "rabitq_bits",
                format!("{bits}: expected 1 to 8"),
            ))
        }
    }

    /// The bits.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Binary => "binary",
            Tier::Int8 => "int8",
            Tier::Int4 => "int4",
            Tier::F16 => "f16",
            Tier::Float => "float",
            Tier::Rabitq(RabitqBits::ONE) => "rabitq",
            Tier::Rabitq(b) => return write!(f, "rabitq{}", b.get()),
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
            "rabitq" => Tier::Rabitq(RabitqBits::ONE),
            _ => match s.strip_prefix("rabitq").map(str::parse::<u8>) {
                Some(Ok(b @ 1..=8)) => Tier::Rabitq(RabitqBits(b)),
                _ => {
                    return Err(Error::bad_argument("tier", format!(
                        "tier {s:?}: expected binary, rabitq (or rabitq1 to rabitq8), int8, int4, f16 or float"
                    )))
                }
            },
        })
    }
}

/// One tier of a chain: every tier but the last keeps `k x factor` candidates, or, with a
/// bound, the candidates its error bound cannot rule out (`crate::search::bound`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierSpec {
    /// The tier.
    pub tier: Tier,
    /// Oversampling factor (ignored for the last tier and for a bound).
    pub factor: usize,
    /// Prune by the error bound at this confidence parameter (`eps0`) instead of a factor.
    pub bound: Option<f32>,
}

impl TierSpec {
    /// A tier keeping `k x factor` candidates.
    pub fn fixed(tier: Tier, factor: usize) -> Self {
        TierSpec {
            tier,
            factor,
            bound: None,
        }
    }
}

impl fmt::Display for TierSpec {
    /// `rabitq:4`, `rabitq4:bound`, `rabitq4:bound=2.5`, or the tier alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bound {
            Some(e) if e == crate::codec::rabitq_ex::DEFAULT_EPS0 => {
                write!(f, "{}:bound", self.tier)
            }
            Some(e) => write!(f, "{}:bound={e}", self.tier),
            None => write!(f, "{}:{}", self.tier, self.factor),
        }
    }
}

impl TierSpec {
    /// Parses `binary:8,int8:2,float` (the last tier takes no factor). A tier may prune by
    /// its error bound instead (`rabitq1:bound`, `rabitq4:bound=2.5`: the RaBitQ tiers); its
    /// `eps0` is at least [`crate::codec::rabitq_ex::MIN_EPS0`] (the default, 1.9).
    pub fn parse_chain(s: &str) -> Result<Vec<TierSpec>> {
        let parts: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(Error::bad_argument("tier", "empty tier chain"));
        }
        let n = parts.len();
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (name, factor) = p.split_once(':').map_or((*p, None), |(a, b)| (a, Some(b)));
                let tier: Tier = name.parse()?;
                if let (Some(b), false) = (factor.and_then(|f| f.strip_prefix("bound")), i + 1 == n) {
                    if !matches!(tier, Tier::Rabitq(_)) {
                        return Err(Error::bad_argument("tier", format!(
                            "tier {p:?}: only the RaBitQ tiers have an error bound to prune by"
                        )));
                    }
                    use crate::codec::rabitq_ex::{DEFAULT_EPS0, MIN_EPS0};
                    let eps = match b.strip_prefix('=') {
                        None if b.is_empty() => DEFAULT_EPS0,
                        Some(e) => e.trim().parse::<f32>().ok().filter(|e| e.is_finite() && *e >= MIN_EPS0).ok_or_else(|| {
                            Error::bad_argument("tier", format!(
                                "tier {p:?}: the bound's confidence eps0 must be a finite number >= {MIN_EPS0} (the default; \
                                 a narrower bound would mark wrong answers as certified), e.g. bound=2.5"
                            ))
                        })?,
                        None => {
                            return Err(Error::bad_argument("tier", format!(
                                "tier {p:?}: expected bound or bound=EPS0"
                            )))
                        }
                    };
                    return Ok(TierSpec { tier, factor: 1, bound: Some(eps) });
                }
                let factor = match (factor, i + 1 == n) {
                    (Some(f), false) => {
                        f.parse::<usize>().ok().filter(|&f| f >= 1).ok_or_else(|| {
                            Error::bad_argument("tier", format!(
                                "tier {p:?}: the factor must be a whole number >= 1 (or bound)"
                            ))
                        })?
                    }
                    (None, false) => {
                        return Err(Error::bad_argument("tier", format!(
                            "tier {p:?}: every tier but the last needs a factor, e.g. {name}:4"
                        )))
                    }
                    (Some(_), true) => {
                        return Err(Error::bad_argument("tier", format!(
                            "the last tier {p:?} takes no factor"
                        )))
                    }
                    (None, true) => 1,
                };
                Ok(TierSpec::fixed(tier, factor))
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
