//! [`SearchSpec`]: what a `tiered_search` call searches, resolved at planning time.

use datafusion::arrow::datatypes::SchemaRef;
use embquant::search::{CodeLayout, TierSpec};

/// What to search, resolved at planning time.
#[derive(Debug, Clone)]
pub struct SearchSpec {
    pub(super) corpus_table: String,
    pub(super) queries_table: String,
    pub(super) k: usize,
    pub(super) chain: Vec<TierSpec>,
    /// The corpus' code and float columns (indices into `corpus_schema`).
    pub(super) layout: CodeLayout,
    pub(super) corpus_schema: SchemaRef,
    /// Column names: the corpus ids, the query vectors and their ids.
    pub(super) id: Option<String>,
    pub(super) query: String,
    pub(super) query_id: Option<String>,
}

impl SearchSpec {
    pub(super) fn chain_string(&self) -> String {
        self.chain
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i + 1 == self.chain.len() {
                    s.tier.to_string()
                } else if s.bound.is_some() {
                    format!("{s} (keeps what its error bound cannot rule out)")
                } else {
                    format!(
                        "{}:{} (keeps {})",
                        s.tier,
                        s.factor,
                        self.k.saturating_mul(s.factor)
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" -> ")
    }
}
