//! The recall job's exact ground truth against the MiniLM set's own (float64, ties by id).
//! Skips, with a message, without ../shared.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use common::{column, shared};
use embquant::recall::exact_topk;
use embquant::Vectors;

#[test]
fn ground_truth_equals_the_data_sets_own() {
    let (Some(c), Some(q), Some(gt)) = (
        shared("corpus.parquet"),
        shared("queries.parquet"),
        shared("ground_truth.parquet"),
    ) else {
        return;
    };
    let emb = column(&c, "embedding");
    let v = Vectors::try_new(emb.as_ref()).unwrap();
    let qv = column(&q, "embedding");
    let qv = Vectors::try_new(qv.as_ref()).unwrap();
    let ids = column(&c, "id");
    let ids = ids.as_primitive::<Int64Type>();
    let ours = exact_topk(v.values(), qv.values(), v.dim(), 100, None, None);
    let neighbors = column(&gt, "neighbors");
    let scores = column(&gt, "scores");
    assert_eq!(qv.len(), 1000);
    for qi in 0..qv.len() {
        let want = neighbors.as_fixed_size_list().value(qi);
        let want = want.as_primitive::<Int64Type>().values();
        let got: Vec<i64> = ours.rows(qi, 100).map(|r| ids.value(r as usize)).collect();
        let want_scores = scores.as_fixed_size_list().value(qi);
        let want_scores = want_scores.as_primitive::<Float32Type>().values();
        // Whole lists: `zip` below would stop at the shorter one.
        assert_eq!(got.len(), 100, "query {qi}");
        assert_eq!((want.len(), want_scores.len()), (100, 100), "query {qi}");
        for (j, (&g, &w)) in got.iter().zip(want.iter()).enumerate() {
            assert_eq!(g, w, "query {qi} rank {j}");
            let s = ours.neighbors[qi][j].1 as f32;
            assert!(
                (s - want_scores[j]).abs() <= 1e-6,
                "query {qi} rank {j}: {s} vs {}",
                want_scores[j]
            );
        }
    }
}
