//! Search results as Arrow: `(query_id Int64, rank UInt32, id Int64, score Float32, tier
//! Utf8)`, `rank` from 1, built in one place for CLI search and the SQL table function.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, UInt32Builder};
use arrow_array::Array;
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::bound::QueryReport;
use super::chain::Hit;
use crate::error::Result;

/// The schema of search results.
pub fn results_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("query_id", DataType::Int64, false),
        Field::new("rank", DataType::UInt32, false),
        Field::new("id", DataType::Int64, false),
        Field::new("score", DataType::Float32, false),
        Field::new("tier", DataType::Utf8, false),
    ]))
}

/// The hits of `results.len()` queries (query `i` has id `qids[i]`; corpus row `r` has id
/// `ids[r]`) as one batch of [`results_schema`].
pub fn results_batch(results: &[Vec<Hit>], qids: &[i64], ids: &[i64]) -> Result<RecordBatch> {
    let n: usize = results.iter().map(|r| r.len()).sum();
    let (mut q, mut rank, mut id, mut score, mut tier) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (qi, hits) in results.iter().enumerate() {
        for (r, h) in hits.iter().enumerate() {
            q.push(qids[qi]);
            rank.push(r as u32 + 1);
            id.push(ids[h.row as usize]);
            score.push(h.score);
            tier.push(h.tier.to_string());
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(q)),
        Arc::new(UInt32Array::from(rank)),
        Arc::new(Int64Array::from(id)),
        Arc::new(Float32Array::from(score)),
        Arc::new(StringArray::from(tier)),
    ];
    Ok(RecordBatch::try_new(results_schema(), columns)?)
}

/// [`results_batch`] with each query's report repeated on its rows: `kept` (rows each tier
/// kept) and `certified`.
pub fn results_batch_reported(
    results: &[Vec<Hit>],
    reports: &[QueryReport],
    qids: &[i64],
    ids: &[i64],
) -> Result<RecordBatch> {
    let base = results_batch(results, qids, ids)?;
    let mut kept = ListBuilder::new(UInt32Builder::new())
        .with_field(Arc::new(Field::new_list_field(DataType::UInt32, false)));
    let mut certified = Vec::with_capacity(base.num_rows());
    for (hits, rep) in results.iter().zip(reports) {
        for _ in hits {
            kept.values()
                .append_slice(&rep.kept.iter().map(|&n| n as u32).collect::<Vec<_>>());
            kept.append(true);
            certified.push(rep.certified);
        }
    }
    let kept = kept.finish();
    let mut fields: Vec<Field> = base
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("kept", kept.data_type().clone(), false));
    fields.push(Field::new("certified", DataType::Boolean, false));
    let mut columns = base.columns().to_vec();
    columns.push(Arc::new(kept));
    columns.push(Arc::new(BooleanArray::from(certified)));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
