//! Which columns of the corpus and query tables the search reads, decided from their
//! schemas (code columns by their recipes, the float column, ids).

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{plan_err, Result};
use embquant::metadata::{ColumnRecipe, Scheme, Truncation};
use embquant::search::{Tier, TierSpec};
use embquant::Calibration;

use crate::args::ext;

use super::NAME;

pub(super) fn is_float_vector(dt: &DataType) -> bool {
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

pub(super) fn is_integer(dt: &DataType) -> bool {
    dt.is_integer()
}

pub(super) fn scheme_of(tier: Tier) -> Option<Scheme> {
    match tier {
        Tier::Binary => Some(Scheme::Binary),
        Tier::Int8 => Some(Scheme::Int8),
        Tier::Int4 => Some(Scheme::Int4),
        Tier::F16 => Some(Scheme::F16),
        Tier::Rabitq => Some(Scheme::Rabitq),
        Tier::Float => None,
    }
}

/// Which columns of the two tables the search reads, decided from their schemas.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// Code columns (index in the corpus schema, recipe), one per coded tier, chain order.
    pub(super) codes: Vec<(usize, ColumnRecipe)>,
    pub(super) calibration: Option<Calibration>,
    pub(super) truncation: Option<Truncation>,
    /// The float column of the corpus (float tier).
    pub(super) float: Option<usize>,
    /// The corpus id column.
    pub(super) id: Option<usize>,
    /// The query vector column and id column.
    pub(super) query: usize,
    pub(super) query_id: Option<usize>,
}

pub(super) fn layout(corpus: &Schema, queries: &Schema, chain: &[TierSpec]) -> Result<Layout> {
    let mut found: Vec<(usize, ColumnRecipe, Option<Calibration>)> = Vec::new();
    for (i, f) in corpus.fields().iter().enumerate() {
        if let Some((r, c)) = ColumnRecipe::from_field(f).map_err(|e| ext(NAME, e))? {
            found.push((i, r, c));
        }
    }
    let schemes: Vec<Scheme> = chain.iter().filter_map(|s| scheme_of(s.tier)).collect();
    let wants_float = chain.iter().any(|s| s.tier == Tier::Float);
    let mut sources: Vec<String> = found
        .iter()
        .map(|(_, r, _)| r.source_column.clone())
        .collect();
    sources.dedup();
    let source = sources
        .iter()
        .find(|src| {
            schemes.iter().all(|s| {
                found
                    .iter()
                    .any(|(_, r, _)| &r.source_column == *src && r.scheme == *s)
            })
        })
        .cloned();
    let source = match (source, schemes.is_empty()) {
        (Some(s), _) => Some(s),
        (None, true) => None,
        (None, false) => {
            return plan_err!(
                "{NAME}: the corpus has no code columns for the tiers {:?} (columns with embquant metadata: {}); \
                 quantize with embquant quantize or the quantize functions, and keep Parquet metadata (datafusion.execution.parquet.skip_metadata = false)",
                schemes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                if found.is_empty() { "none".to_string() } else {
                    found.iter().map(|(i, r, _)| format!("{} ({})", corpus.field(*i).name(), r.scheme)).collect::<Vec<_>>().join(", ")
                }
            )
        }
    };
    let mut codes = Vec::new();
    let mut calibration: Option<Calibration> = None;
    for s in &schemes {
        let (i, r, c) = found
            .iter()
            .find(|(_, r, _)| Some(&r.source_column) == source.as_ref() && r.scheme == *s)
            .cloned()
            .expect("checked above");
        if let Some(c) = c {
            if let Some(prev) = &calibration {
                if prev.fingerprint() != c.fingerprint() {
                    return plan_err!(
                        "{NAME}: the code columns carry different calibrations: codes are only comparable under one calibration"
                    );
                }
            }
            calibration = Some(c);
        }
        codes.push((i, r));
    }
    let truncation = codes.first().and_then(|(_, r)| r.truncation);
    let vector_named = |schema: &Schema, name: Option<&String>| -> Option<usize> {
        name.and_then(|n| schema.index_of(n).ok())
            .filter(|&i| is_float_vector(schema.field(i).data_type()))
            .or_else(|| {
                let v: Vec<usize> = (0..schema.fields().len())
                    .filter(|&i| {
                        is_float_vector(schema.field(i).data_type())
                            && schema
                                .field(i)
                                .metadata()
                                .get(embquant::METADATA_KEY)
                                .is_none()
                    })
                    .collect();
                (v.len() == 1).then(|| v[0])
            })
    };
    let float = if wants_float {
        match vector_named(corpus, source.as_ref()) {
            Some(i) => Some(i),
            None => {
                return plan_err!(
                    "{NAME}: the float tier needs the corpus' float vector column{}",
                    source
                        .as_ref()
                        .map(|s| format!(" {s:?}"))
                        .unwrap_or_default()
                )
            }
        }
    } else {
        None
    };
    let qname = source
        .clone()
        .or_else(|| float.map(|i| corpus.field(i).name().clone()));
    let Some(query) = vector_named(queries, qname.as_ref()) else {
        return plan_err!(
            "{NAME}: the queries table needs a float vector column{} (or exactly one vector column)",
            qname.map(|s| format!(" named {s:?}")).unwrap_or_default()
        );
    };
    let int_col = |schema: &Schema, names: &[&str]| {
        names.iter().find_map(|n| {
            schema
                .index_of(n)
                .ok()
                .filter(|&i| is_integer(schema.field(i).data_type()))
        })
    };
    Ok(Layout {
        codes,
        calibration,
        truncation,
        float,
        id: int_col(corpus, &["id"]),
        query,
        query_id: int_col(queries, &["query_id", "id"]),
    })
}
