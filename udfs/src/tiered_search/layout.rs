//! Which columns of the corpus and query tables the search reads, decided from their
//! schemas: the code and float columns by the library's [`CodeLayout`], and the table
//! function's id conventions (the corpus' `id`, the queries' `query_id` or `id`).

use datafusion::arrow::datatypes::Schema;
use datafusion::common::{plan_err, Result};
use embquant::search::float_column;
use embquant::search::{CodeLayout, TierSpec};

use crate::args::ext;

use super::NAME;

/// Which columns of the two tables the search reads, decided from their schemas.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// Code columns, calibration, truncation and float column of the corpus.
    pub(super) codes: CodeLayout,
    /// The corpus id column.
    pub(super) id: Option<usize>,
    /// The query vector column and id column.
    pub(super) query: usize,
    pub(super) query_id: Option<usize>,
}

pub(super) fn layout(corpus: &Schema, queries: &Schema, chain: &[TierSpec]) -> Result<Layout> {
    let codes = CodeLayout::from_schema(corpus, None, chain).map_err(|e| ext(NAME, e))?;
    let Some(query) = float_column(queries, codes.source.as_deref()) else {
        return plan_err!(
            "{NAME}: the queries table needs a float vector column{} (or exactly one vector column)",
            codes
                .source
                .as_ref()
                .map(|s| format!(" named {s:?}"))
                .unwrap_or_default()
        );
    };
    let int_col = |schema: &Schema, names: &[&str]| {
        names.iter().find_map(|n| {
            schema
                .index_of(n)
                .ok()
                .filter(|&i| schema.field(i).data_type().is_integer())
        })
    };
    Ok(Layout {
        id: int_col(corpus, &["id"]),
        query_id: int_col(queries, &["query_id", "id"]),
        codes,
        query,
    })
}
