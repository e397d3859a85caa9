//! `tiered_search('corpus', 'queries', k [, 'binary:8,int8:2,float'])`: tiered KNN as a
//! table function, backed by [`TieredSearchExec`] running the library's
//! [`Corpus::search`](embquant::search::Corpus::search).
//!
//! The corpus table holds code columns written by `embquant quantize` (or by the quantize
//! functions with `COPY ... TO`), found by their `embquant` field metadata, and, for the
//! `float` tier, the float column they were made from. The queries table holds a float
//! vector column of the same name (or its only vector column). Ids: the corpus' integer
//! `id` column (row numbers when absent) and the queries' `id` or `query_id` column.
//! Output: `(query_id Int64, rank UInt32, id Int64, score Float32, tier Utf8)`, `rank`
//! from 1, best first, exactly as `embquant search` writes it.

mod build;
mod exec;
mod layout;
mod spec;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result, ScalarValue, TableReference};
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use embquant::search::results::results_schema;
use embquant::search::TierSpec;

use crate::args::ext;

pub use exec::TieredSearchExec;
use layout::layout;
pub use spec::SearchSpec;

/// The SQL name of the table function.
pub const NAME: &str = "tiered_search";

/// The default tier chain.
pub const DEFAULT_TIERS: &str = "binary:8,int8:2,float";

/// The output schema (the library's search results).
pub fn output_schema() -> SchemaRef {
    results_schema()
}

/// The `tiered_search` table function.
#[derive(Debug, Default)]
pub struct TieredSearchFunc;

fn string_arg(e: &Expr, what: &str) -> Result<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Ok(s.clone()),
        other => plan_err!("{NAME}: {what} must be a string literal, got {other}"),
    }
}

impl TableFunctionImpl for TieredSearchFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(3..=4).contains(&exprs.len()) {
            return plan_err!(
                "{NAME}: expected ('corpus_table', 'queries_table', k [, 'tiers']), got {} arguments",
                exprs.len()
            );
        }
        let corpus = string_arg(&exprs[0], "argument 1 (corpus table)")?;
        let queries = string_arg(&exprs[1], "argument 2 (queries table)")?;
        let k = match &exprs[2] {
            Expr::Literal(v, _) => match crate::args::integer_literal(v) {
                Some(k) if k >= 1 => k as usize,
                _ => return plan_err!("{NAME}: argument 3 (k) must be an integer >= 1, got {v}"),
            },
            other => {
                return plan_err!("{NAME}: argument 3 (k) must be an integer literal, got {other}")
            }
        };
        let tiers = match exprs.get(3) {
            Some(e) => string_arg(e, "argument 4 (tiers)")?,
            None => DEFAULT_TIERS.to_string(),
        };
        let chain = TierSpec::parse_chain(&tiers).map_err(|e| ext(NAME, e))?;
        Ok(Arc::new(TieredSearchTable {
            corpus,
            queries,
            k,
            chain,
            schema: output_schema(),
        }))
    }
}

/// The table a `tiered_search(...)` call stands for; resolved against the session's
/// catalog when scanned.
#[derive(Debug)]
pub struct TieredSearchTable {
    corpus: String,
    queries: String,
    k: usize,
    chain: Vec<TierSpec>,
    schema: SchemaRef,
}

async fn resolve(state: &dyn Session, name: &str) -> Result<Arc<dyn TableProvider>> {
    let opts = &state.config_options().catalog;
    let r = TableReference::from(name).resolve(&opts.default_catalog, &opts.default_schema);
    let schema = state
        .catalog_list()
        .catalog(&r.catalog)
        .and_then(|c| c.schema(&r.schema));
    match schema {
        Some(s) => match s.table(&r.table).await? {
            Some(t) => Ok(t),
            None => plan_err!("{NAME}: no table {name:?}"),
        },
        None => plan_err!("{NAME}: no schema for table {name:?}"),
    }
}

#[async_trait]
impl TableProvider for TieredSearchTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let corpus = resolve(state, &self.corpus).await?;
        let queries = resolve(state, &self.queries).await?;
        let (cs, qs) = (corpus.schema(), queries.schema());
        let layout = layout(&cs, &qs, &self.chain)?;
        // Read only the columns the search needs; remember where they land.
        let mut cproj: Vec<usize> = layout.codes.codes.iter().map(|(i, _)| *i).collect();
        cproj.extend(layout.codes.float);
        cproj.extend(layout.id);
        cproj.sort_unstable();
        cproj.dedup();
        let mut qproj = vec![layout.query];
        qproj.extend(layout.query_id);
        qproj.sort_unstable();
        qproj.dedup();
        let corpus_plan = corpus.scan(state, Some(&cproj), &[], None).await?;
        let queries_plan = queries.scan(state, Some(&qproj), &[], None).await?;
        Ok(Arc::new(TieredSearchExec::new(
            SearchSpec {
                corpus_table: self.corpus.clone(),
                queries_table: self.queries.clone(),
                k: self.k,
                chain: self.chain.clone(),
                corpus_schema: cs.clone(),
                id: layout.id.map(|i| cs.field(i).name().clone()),
                query: qs.field(layout.query).name().clone(),
                query_id: layout.query_id.map(|i| qs.field(i).name().clone()),
                layout: layout.codes,
            },
            corpus_plan,
            queries_plan,
            projection.cloned(),
        )?))
    }
}
