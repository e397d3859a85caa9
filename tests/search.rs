//! Recall of the tier chains on real embeddings (all-MiniLM-L6-v2, 30,000 WordNet glosses,
//! 1,000 queries) against the exact float top-10. Skips, with a message, without ../shared.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use common::{column, shared};
use embquant::search::InMemoryFloats;
use embquant::search::{Codes, Corpus, TierSpec};
use embquant::{
    BinaryCodec, Calibration, Int8Codec, RabitqCodec, RangeMethod, Rotation, Stats, StatsOptions,
    Vectors,
};

/// A corpus with binary (sign), int8 and rabitq codes and the floats in memory.
fn corpus_of(values: &[f32], dim: usize, rotation: Rotation) -> Corpus {
    let rows = values.len() / dim;
    let arr = embquant::arrow_array::FixedSizeListArray::new(
        std::sync::Arc::new(embquant::arrow_schema::Field::new_list_field(
            embquant::arrow_schema::DataType::Float32,
            false,
        )),
        dim as i32,
        std::sync::Arc::new(embquant::arrow_array::Float32Array::from(values.to_vec())),
        None,
    );
    let cal = Calibration::from_stats(
        &Stats::compute(&arr, &StatsOptions::moments_only()).unwrap(),
        RangeMethod::MinMax,
    )
    .unwrap();
    let i8c = Int8Codec::new(&cal);
    let mut codes = vec![0u8; rows * dim];
    i8c.encode_slice(values, &mut codes, 0x80).unwrap();
    let bc = BinaryCodec::new(dim);
    let mut bits = vec![0u8; rows * bc.width()];
    bc.encode_slice(values, &mut bits).unwrap();
    let rq = RabitqCodec::new(&cal, rotation);
    let mut rcodes = vec![0u8; rows * rq.width()];
    rq.encode_slice(values, &mut rcodes).unwrap();
    let mut corpus = Corpus::new(rows, dim);
    corpus.insert(Codes::Binary(bits, bc)).unwrap();
    corpus
        .insert(Codes::Int8(
            codes.into_iter().map(|c| c as i8).collect(),
            i8c,
        ))
        .unwrap();
    corpus.insert(Codes::Rabitq(rcodes.into(), rq)).unwrap();
    corpus.set_floats(Box::new(InMemoryFloats {
        values: values.to_vec(),
        dim,
    }));
    corpus
}

/// Mean recall@10 of `chain` against `truth` (top-10 rows per query).
fn recall(corpus: &Corpus, queries: &[f32], truth: &[Vec<i64>], chain: &str) -> f64 {
    let nq = truth.len();
    let res = corpus
        .search(
            &queries[..nq * corpus.dim()],
            10,
            &TierSpec::parse_chain(chain).unwrap(),
        )
        .unwrap();
    let hits: usize = res
        .iter()
        .zip(truth)
        .map(|(r, t)| r.iter().filter(|h| t.contains(&(h.row as i64))).count())
        .sum();
    let r = hits as f64 / (10 * nq) as f64;
    eprintln!("recall@10 {chain}: {r:.4} ({nq} queries)");
    r
}

#[test]
fn tier_chains_meet_the_numpy_recall_figures() {
    let (Some(c), Some(q), Some(gt)) = (
        shared("corpus.parquet"),
        shared("queries.parquet"),
        shared("ground_truth.parquet"),
    ) else {
        return;
    };
    let emb = column(&c, "embedding");
    let v = Vectors::try_new(emb.as_ref()).unwrap();
    let dim = v.dim();
    let corpus = corpus_of(v.values(), dim, Rotation::default());
    let qv = column(&q, "embedding");
    let queries = Vectors::try_new(qv.as_ref()).unwrap().values().to_vec();
    let neighbors = column(&gt, "neighbors");
    let truth: Vec<Vec<i64>> = (0..1000)
        .map(|i| {
            neighbors
                .as_fixed_size_list()
                .value(i)
                .as_primitive::<Int64Type>()
                .values()[..10]
                .to_vec()
        })
        .collect();
    let r = |chain: &str, nq: usize| recall(&corpus, &queries, &truth[..nq], chain);
    // numpy on this data (issue 4): sign binary -> int8 at 4 / 8 / 16: 0.896 / 0.954 / 0.981;
    // int8 alone 0.995.
    assert!(r("binary:4,int8", 1000) >= 0.896);
    assert!(r("binary:8,int8", 1000) >= 0.954);
    assert!(r("binary:16,int8", 1000) >= 0.981);
    assert!(r("int8", 200) >= 0.995);
    // The float tier reorders the int8 tier's 40 candidates exactly: at least as good.
    assert!(r("binary:16,int8:4,float", 1000) >= 0.983);
    // RaBitQ as the coarse tier (issue 5's bars: >= 0.975 at 4, >= 0.99 at 8).
    let rotated = r("rabitq:4,int8", 1000);
    assert!(rotated >= 0.975);
    assert!(r("rabitq:8,int8", 1000) >= 0.99);
    assert!(r("rabitq:4,int8:2,float", 1000) >= 0.975);
    // The randomized Hadamard rotation is what the 1-bit codes owe their quality to: without
    // it the same chain loses about 1% of recall@10 here (measured 0.976 vs 0.986).
    let unrotated = corpus_of(v.values(), dim, Rotation::None);
    let unrotated = recall(&unrotated, &queries, &truth, "rabitq:4,int8");
    assert!(
        unrotated < rotated - 0.005,
        "rotated {rotated} vs unrotated {unrotated}"
    );
}

/// Held-out data generated without any model: clusters with per-dimension offsets and
/// spreads, so the mean is far from zero and sign bits lose most of their information while
/// centered RaBitQ codes do not. Exact top-10 by brute force.
#[test]
fn rabitq_meets_its_bars_on_synthetic_data_with_offsets() {
    let (rows, dim, nq, clusters) = (20_000, 256, 200, 64);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut uni = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32
    };
    let mut normal = move || {
        let (a, b) = (uni().max(1e-12), uni());
        (-2.0 * a.ln()).sqrt() * (std::f32::consts::TAU * b).cos()
    };
    // Vectors from a 16-d latent space (clustered) mapped linearly to 256-d, plus noise,
    // then shifted and scaled per dimension.
    let latent = 16;
    let offsets: Vec<f32> = (0..dim).map(|_| 0.5 + 0.3 * normal()).collect();
    let spreads: Vec<f32> = (0..dim).map(|_| 0.2 + 0.8 * normal().abs()).collect();
    let map: Vec<f32> = (0..dim * latent)
        .map(|_| normal() / (latent as f32).sqrt())
        .collect();
    let centers: Vec<f32> = (0..clusters * latent).map(|_| normal()).collect();
    let mut make = |n: usize| -> Vec<f32> {
        let mut v = Vec::with_capacity(n * dim);
        let mut z = vec![0f32; latent];
        for i in 0..n {
            let c = (i * 7919) % clusters;
            for (l, z) in z.iter_mut().enumerate() {
                *z = centers[c * latent + l] + 0.5 * normal();
            }
            for d in 0..dim {
                let y: f32 = (0..latent).map(|l| map[d * latent + l] * z[l]).sum();
                v.push(offsets[d] + spreads[d] * (y + 0.05 * normal()));
            }
        }
        v
    };
    let values = make(rows);
    let queries = make(nq);
    let truth: Vec<Vec<i64>> = queries
        .chunks_exact(dim)
        .map(|q| {
            let mut s: Vec<(f32, i64)> = values
                .chunks_exact(dim)
                .enumerate()
                .map(|(r, x)| (q.iter().zip(x).map(|(a, b)| a * b).sum(), r as i64))
                .collect();
            s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            s[..10].iter().map(|x| x.1).collect()
        })
        .collect();
    let corpus = corpus_of(&values, dim, Rotation::default());
    let r4 = recall(&corpus, &queries, &truth, "rabitq:4,int8");
    let r8 = recall(&corpus, &queries, &truth, "rabitq:8,int8");
    let b4 = recall(&corpus, &queries, &truth, "binary:4,int8");
    // No chain ending in int8 beats int8 over every row: that is the ceiling here (0.990,
    // lower than MiniLM's 0.9975 because the offsets dominate every inner product). The
    // issue's bars (0.975 at 4, 0.99 at 8) apply to the share of that ceiling kept.
    let ceiling = recall(&corpus, &queries, &truth, "int8");
    assert!(
        r4 >= 0.975 * ceiling,
        "rabitq:4,int8 {r4} (int8 alone {ceiling})"
    );
    assert!(
        r8 >= 0.99 * ceiling,
        "rabitq:8,int8 {r8} (int8 alone {ceiling})"
    );
    assert!(
        r4 > b4 + 0.2,
        "centered codes beat sign bits on offset data: {r4} vs {b4}"
    );
}
