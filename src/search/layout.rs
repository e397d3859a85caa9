//! Which columns of a corpus schema a tier chain reads ([`CodeLayout`]): the code column of
//! each coded tier (by its embquant recipe), the calibration they share, the Matryoshka
//! truncation and the float column, found from the schema alone.

use arrow_schema::{DataType, Schema};

use super::chain::{Tier, TierSpec};
use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::metadata::{ColumnRecipe, Scheme, Truncation};

/// The scheme whose codes serve `tier` (None for the float tier; for multi-bit RaBitQ, the
/// sign column's: see [`columns_of`]).
pub fn scheme_of(tier: Tier) -> Option<Scheme> {
    match tier {
        Tier::Binary => Some(Scheme::Binary),
        Tier::Int8 => Some(Scheme::Int8),
        Tier::Int4 => Some(Scheme::Int4),
        Tier::F16 => Some(Scheme::F16),
        Tier::Rabitq(_) => Some(Scheme::Rabitq),
        Tier::Float => None,
    }
}

/// The code columns `tier` reads, as (scheme, RaBitQ bits of the extra-bits column or 0):
/// `rabitq4` reads the sign column and the 4-bit extra bits.
pub fn columns_of(tier: Tier) -> Vec<(Scheme, u8)> {
    match tier {
        Tier::Rabitq(b) if b > 1 => vec![(Scheme::Rabitq, 0), (Scheme::RabitqEx, b)],
        t => scheme_of(t).map(|s| (s, 0)).into_iter().collect(),
    }
}

/// Whether `r` is the recipe of the column `key` names.
fn is_column(r: &ColumnRecipe, key: (Scheme, u8)) -> bool {
    r.scheme == key.0 && (key.0 != Scheme::RabitqEx || r.rabitq_bits == Some(key.1))
}

/// `rabitq`, or `rabitq_ex (4 bits)`.
fn column_label(key: (Scheme, u8)) -> String {
    match key {
        (Scheme::RabitqEx, b) => format!("rabitq{b} extra bits"),
        (s, _) => s.to_string(),
    }
}

/// Whether `dt` is a vector of floats (`FixedSizeList`, `List` or `LargeList`).
pub fn is_float_vector(dt: &DataType) -> bool {
    match dt {
        DataType::FixedSizeList(f, _) | DataType::List(f) | DataType::LargeList(f) => {
            matches!(
                f.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            )
        }
        _ => false,
    }
}

/// The float vector column `name` of `schema`; without a name (or when it is absent), the
/// one float vector column that is not an embquant code column.
pub fn float_column(schema: &Schema, name: Option<&str>) -> Option<usize> {
    name.and_then(|n| schema.index_of(n).ok())
        .filter(|&i| is_float_vector(schema.field(i).data_type()))
        .or_else(|| {
            let v: Vec<usize> = (0..schema.fields().len())
                .filter(|&i| {
                    let f = schema.field(i);
                    is_float_vector(f.data_type())
                        && !f.metadata().contains_key(crate::metadata::METADATA_KEY)
                })
                .collect();
            (v.len() == 1).then(|| v[0])
        })
}

/// Which columns of a corpus schema a chain reads.
#[derive(Debug, Clone)]
pub struct CodeLayout {
    /// The float column the codes were made from (None for a float-only chain whose float
    /// column was found by type).
    pub source: Option<String>,
    /// (index in the schema, recipe) of the code column of each coded tier, in chain order,
    /// each scheme once.
    pub codes: Vec<(usize, ColumnRecipe)>,
    /// The calibration the codes carry (None when no code column needs one).
    pub calibration: Option<Calibration>,
    /// The Matryoshka truncation the codes were made with: queries get the same.
    pub truncation: Option<Truncation>,
    /// The float vector column, when the chain has a float tier.
    pub float: Option<usize>,
}

impl CodeLayout {
    /// Finds the columns `chain` reads in `schema`. With `source`, the codes of that float
    /// column; without, of the one source column that has codes for every coded tier.
    pub fn from_schema(schema: &Schema, source: Option<&str>, chain: &[TierSpec]) -> Result<Self> {
        let mut found: Vec<(usize, ColumnRecipe, Option<Calibration>)> = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if let Some((r, c)) = ColumnRecipe::from_field(f)? {
                found.push((i, r, c));
            }
        }
        let mut schemes: Vec<(Scheme, u8)> = Vec::new();
        for s in chain.iter().flat_map(|s| columns_of(s.tier)) {
            if !schemes.contains(&s) {
                schemes.push(s);
            }
        }
        let has_all = |src: &str| {
            schemes.iter().all(|s| {
                found
                    .iter()
                    .any(|(_, r, _)| r.source_column == src && is_column(r, *s))
            })
        };
        let source = match source {
            Some(s) => Some(s.to_string()),
            None => found
                .iter()
                .map(|(_, r, _)| r.source_column.clone())
                .find(|s| has_all(s)),
        };
        if !schemes.is_empty() && !source.as_deref().is_some_and(has_all) {
            let listed = if found.is_empty() {
                "none".to_string()
            } else {
                found
                    .iter()
                    .map(|(i, r, _)| {
                        format!(
                            "{} ({} of {:?})",
                            schema.field(*i).name(),
                            r.scheme,
                            r.source_column
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let missing: Vec<String> = schemes
                .iter()
                .filter(|s| {
                    !found.iter().any(|(_, r, _)| {
                        Some(&r.source_column) == source.as_ref() && is_column(r, **s)
                    })
                })
                .map(|s| column_label(*s))
                .collect();
            return Err(Error::Schema(format!(
                "the corpus has no code columns for the tiers {:?}{}: no {} codes (columns with embquant metadata: {listed}); \
                 quantize with `embquant quantize --scheme {}` or the quantize functions, and keep the Parquet metadata",
                chain
                    .iter()
                    .filter(|s| s.tier != Tier::Float)
                    .map(|s| s.tier.to_string())
                    .collect::<Vec<_>>(),
                source.as_deref().map(|s| format!(" of {s:?}")).unwrap_or_default(),
                missing.join(", "),
                chain
                    .iter()
                    .filter(|s| s.tier != Tier::Float)
                    .map(|s| s.tier.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )));
        }
        let mut codes = Vec::new();
        let mut calibration: Option<Calibration> = None;
        for s in &schemes {
            let (i, r, c) = found
                .iter()
                .find(|(_, r, _)| Some(&r.source_column) == source.as_ref() && is_column(r, *s))
                .cloned()
                .expect("checked above");
            if let Some(c) = c {
                if calibration
                    .as_ref()
                    .is_some_and(|p| p.fingerprint() != c.fingerprint())
                {
                    return Err(Error::CalibrationMismatch(
                        "the code columns carry different calibrations: codes are only comparable under one calibration".into(),
                    ));
                }
                calibration = Some(c);
            }
            codes.push((i, r));
        }
        let truncation = codes.first().and_then(|(_, r)| r.truncation);
        let float = if chain.iter().any(|s| s.tier == Tier::Float) {
            let named = match &source {
                Some(s) => schema
                    .index_of(s)
                    .ok()
                    .filter(|&i| is_float_vector(schema.field(i).data_type())),
                None => float_column(schema, None),
            };
            Some(named.ok_or_else(|| {
                Error::Schema(format!(
                    "the float tier needs the corpus' float column{}, a vector column (quantized with --drop-source?)",
                    source.as_deref().map(|s| format!(" {s:?}")).unwrap_or_default()
                ))
            })?)
        } else {
            None
        };
        let source = source.or_else(|| float.map(|i| schema.field(i).name().clone()));
        Ok(CodeLayout {
            source,
            codes,
            calibration,
            truncation,
            float,
        })
    }

    /// Dimension of the codes (None for a float-only chain).
    pub fn dims(&self) -> Option<usize> {
        self.codes.first().map(|(_, r)| r.dims)
    }

    /// An error unless `other` (another file's layout) holds codes of the same recipes under
    /// the same calibration: codes are only comparable under one calibration.
    pub fn check_same(&self, other: &CodeLayout) -> Result<()> {
        let fp = |c: &Option<Calibration>| c.as_ref().map(|c| c.fingerprint().to_string());
        let same_recipes = self.codes.len() == other.codes.len()
            && self.codes.iter().zip(&other.codes).all(|((_, a), (_, b))| {
                a.scheme == b.scheme
                    && a.rabitq_bits == b.rabitq_bits
                    && a.dims == b.dims
                    && a.threshold == b.threshold
                    && a.rotation == b.rotation
                    && a.truncation == b.truncation
            });
        if fp(&self.calibration) != fp(&other.calibration) || !same_recipes {
            return Err(Error::CalibrationMismatch(format!(
                "quantized with another calibration or recipe (fingerprint {:?} vs {:?}): codes are only comparable under one calibration",
                fp(&other.calibration),
                fp(&self.calibration)
            )));
        }
        Ok(())
    }
}
