//! The search over the corpus built from the scanned batches, with the queries read by the
//! library's one query rule ([`QueryReader`]).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ColumnarValue;
use embquant::search::results::results_batch;
use embquant::search::{CorpusBuilder, QueryReader, QuerySet};

use crate::args::ext;

use super::spec::SearchSpec;
use super::NAME;

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    match b.column_by_name(name) {
        Some(c) => Ok(c),
        None => exec_err!("{NAME}: column {name:?} missing from the scan"),
    }
}

/// Finishes the corpus and searches it with `queries`.
pub(super) fn search(
    spec: &SearchSpec,
    corpus: CorpusBuilder,
    queries: &[RecordBatch],
) -> Result<RecordBatch> {
    let loaded = corpus.finish().map_err(|e| ext(NAME, e))?;
    let c = &loaded.corpus;
    let mut reader = QueryReader::new(
        &spec.query,
        spec.query_id.as_deref(),
        loaded.truncation,
        c.dim(),
    );
    for b in queries.iter().filter(|b| b.num_rows() > 0) {
        // SQL vectors of any numeric type (and List columns) as Float32 vectors.
        let v = ColumnarValue::Array(Arc::clone(column(b, &spec.query)?));
        let Some(v) = crate::args::vector_arg(NAME, "queries", &v)? else {
            // A NULL-typed column: every query is NULL (the library's rule: an error naming
            // the first one).
            return Err(ext(
                NAME,
                embquant::Error::NullRow {
                    what: "query",
                    row: reader.len() as u64,
                },
            ));
        };
        let ids = match &spec.query_id {
            Some(n) => Some(column(b, n)?.as_ref()),
            None => None,
        };
        reader
            .push(v.array.as_ref(), ids)
            .map_err(|e| ext(NAME, e))?;
    }
    let QuerySet { values, ids: qids } = reader.finish();
    let results = if values.is_empty() || c.rows() == 0 {
        vec![Vec::new(); qids.len()]
    } else {
        c.search(&values, spec.k, &spec.chain)
            .map_err(|e| ext(NAME, e))?
    };
    tracing::debug!(queries = qids.len(), rows = c.rows(), "tiered search done");
    results_batch(&results, &qids, &loaded.ids).map_err(|e| ext(NAME, e))
}
