//! Codecs and calibration on real embeddings: all-MiniLM-L6-v2 vectors of WordNet glosses.
//!
//! The first tests use the 5,000-row slice shipped in `tests/data` (see its README); the
//! last ones use the full 30,000-row set in `../shared/data/minilm-wordnet` and skip, with
//! a message, when it is absent.
mod common;

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, Int8Type};
use arrow_array::{Array, FixedSizeBinaryArray, FixedSizeListArray};
use common::{column, shared};
use embquant::{
    BinaryCodec, BinaryThreshold, Calibration, HalfCodec, HalfKind, Int4Codec, Int8Codec,
    RangeMethod, Stats, StatsOptions, Vectors,
};

/// The dimensions where all-MiniLM-L6-v2's final LayerNorm is ~1e-33.
const DEAD_DIMS: [usize; 3] = [127, 223, 319];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn corpus_5k() -> FixedSizeListArray {
    column(&data("minilm-wordnet-5k.parquet"), "embedding")
        .as_fixed_size_list()
        .clone()
}

fn calibrate(a: &dyn Array, method: RangeMethod) -> Calibration {
    Calibration::from_stats(
        &Stats::compute(a, &StatsOptions::default()).unwrap(),
        method,
    )
    .unwrap()
}

#[test]
fn binary_equals_numpy_packbits_as_sentence_transformers_ubinary() {
    let a = corpus_5k();
    let expected = column(&data("minilm-wordnet-5k-ubinary.parquet"), "ubinary");
    let expected = expected
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .unwrap();
    let got = BinaryCodec::new(384).encode(&a).unwrap().array;
    let got = got.as_any().downcast_ref::<FixedSizeBinaryArray>().unwrap();
    assert_eq!(got.len(), 5000);
    for r in 0..5000 {
        assert_eq!(got.value(r), expected.value(r), "row {r}");
    }
}

#[test]
fn dead_dimensions_are_degenerate_and_decode_finite() {
    let a = corpus_5k();
    let cal = calibrate(&a, RangeMethod::MinMax);
    assert_eq!(cal.degenerate_dims(), DEAD_DIMS.to_vec());
    for codec_out in [
        Int8Codec::new(&cal)
            .decode(Int8Codec::new(&cal).encode(&a).unwrap().array.as_ref())
            .unwrap(),
        Int4Codec::new(&cal)
            .decode(Int4Codec::new(&cal).encode(&a).unwrap().array.as_ref())
            .unwrap(),
        BinaryCodec::with_calibration(&cal, BinaryThreshold::Median)
            .unwrap()
            .decode(
                BinaryCodec::with_calibration(&cal, BinaryThreshold::Median)
                    .unwrap()
                    .encode(&a)
                    .unwrap()
                    .array
                    .as_ref(),
            )
            .unwrap(),
    ] {
        let v = codec_out.values().as_primitive::<Float32Type>().values();
        assert!(v.iter().all(|x| x.is_finite()));
        for r in 0..5000 {
            for d in DEAD_DIMS {
                assert!(
                    v[r * 384 + d].abs() < 1e-7,
                    "row {r} dim {d}: {}",
                    v[r * 384 + d]
                );
            }
        }
    }
    // The int8 code of a dead dimension is the middle code.
    let codes = Int8Codec::new(&cal).encode(&a).unwrap().array;
    let codes = codes
        .as_fixed_size_list()
        .values()
        .as_primitive::<Int8Type>()
        .values()
        .to_vec();
    assert!((0..5000).all(|r| DEAD_DIMS.iter().all(|&d| codes[r * 384 + d] == 0)));
}

#[test]
fn int8_and_int4_round_trip_within_half_a_step_on_real_data() {
    let a = corpus_5k();
    let cal = calibrate(&a, RangeMethod::MinMax);
    let v = Vectors::try_new(&a).unwrap();
    let i8c = Int8Codec::new(&cal);
    let enc = i8c.encode(&a).unwrap();
    assert_eq!(
        enc.clipped, 0,
        "min/max calibration on the same data never clips"
    );
    let dec = i8c.decode(enc.array.as_ref()).unwrap();
    let dec = dec.values().as_primitive::<Float32Type>().values();
    let i4c = Int4Codec::new(&cal);
    let dec4 = i4c.decode(i4c.encode(&a).unwrap().array.as_ref()).unwrap();
    let dec4 = dec4.values().as_primitive::<Float32Type>().values();
    let mask = cal.degenerate_mask();
    for r in 0..v.len() {
        for d in (0..384).filter(|&d| !mask[d]) {
            let x = v.row(r)[d];
            let tol = |step: f32| step * 0.5 * (1.0 + 1e-4) + 4.0 * f32::EPSILON;
            assert!((dec[r * 384 + d] - x).abs() <= tol(i8c.step()[d]));
            assert!((dec4[r * 384 + d] - x).abs() <= tol(i4c.step()[d]));
        }
    }
}

#[test]
fn halves_merged_equal_the_whole_on_real_data() {
    let a = corpus_5k();
    let opts = StatsOptions::default();
    let whole = Stats::compute(&a, &opts).unwrap();
    let mut left = Stats::compute(&a.slice(0, 777), &opts).unwrap();
    left.merge(&Stats::compute(&a.slice(777, 5000 - 777), &opts).unwrap())
        .unwrap();
    assert_eq!(left.min(), whole.min());
    assert_eq!(left.max(), whole.max());
    assert_eq!(left.sketches(), whole.sketches());
    for d in 0..384 {
        let (m, w) = (left.mean()[d], whole.mean()[d]);
        assert!((m - w).abs() <= 1e-9 * w.abs().max(1e-30), "dim {d}");
        let (m, w) = (left.variance()[d], whole.variance()[d]);
        assert!((m - w).abs() <= 1e-9 * w.abs().max(1e-30), "dim {d}");
    }
    for method in [RangeMethod::MinMax, RangeMethod::Quantile { p: 0.999 }] {
        let a = Calibration::from_stats(&left, method).unwrap();
        let b = Calibration::from_stats(&whole, method).unwrap();
        assert_eq!(a.lo(), b.lo());
        assert_eq!(a.hi(), b.hi());
    }
}

#[test]
fn f16_is_within_half_an_ulp_and_bf16_within_its_ulp() {
    let a = corpus_5k();
    let v = Vectors::try_new(&a).unwrap();
    for (kind, rel) in [(HalfKind::F16, 1.0 / 2048.0), (HalfKind::Bf16, 1.0 / 256.0)] {
        let c = HalfCodec::new(384, kind);
        let dec = c.decode(c.encode(&a).unwrap().array.as_ref()).unwrap();
        let dec = dec.values().as_primitive::<Float32Type>().values();
        for (x, y) in v.values().iter().zip(dec) {
            assert!(
                (x - y).abs() <= rel * x.abs() + 6e-8,
                "{kind:?}: {x} -> {y}"
            );
        }
    }
}

/// Recall@10 of exact search over decoded vectors against the float ground truth.
fn recall_at_10(corpus: &[f32], queries: &[f32], truth: &[Vec<i64>]) -> f64 {
    let n = corpus.len() / 384;
    let mut hits = 0usize;
    for (q, t) in queries.chunks_exact(384).zip(truth) {
        let mut scores: Vec<(f32, usize)> = (0..n)
            .map(|i| {
                (
                    corpus[i * 384..(i + 1) * 384]
                        .iter()
                        .zip(q)
                        .map(|(a, b)| a * b)
                        .sum(),
                    i,
                )
            })
            .collect();
        scores.select_nth_unstable_by(10, |a, b| b.0.total_cmp(&a.0));
        hits += scores[..10]
            .iter()
            .filter(|(_, i)| t[..10].contains(&(*i as i64)))
            .count();
    }
    hits as f64 / (10 * truth.len()) as f64
}

#[test]
fn full_set_int8_recall_and_quantile_clip_rate() {
    let (Some(corpus), Some(queries), Some(gt)) = (
        shared("corpus.parquet"),
        shared("queries.parquet"),
        shared("ground_truth.parquet"),
    ) else {
        return;
    };
    let c = column(&corpus, "embedding");
    let cal = calibrate(c.as_ref(), RangeMethod::MinMax);
    assert_eq!(cal.rows(), 30_000);
    assert_eq!(cal.degenerate_dims(), DEAD_DIMS.to_vec());

    // quantile:0.999 clips about 0.1% of each dimension's values at each end.
    let q = calibrate(c.as_ref(), RangeMethod::Quantile { p: 0.999 });
    let clipped = Int8Codec::new(&q).encode(c.as_ref()).unwrap().clipped;
    let rate = clipped as f64 / (30_000.0 * 381.0);
    eprintln!("quantile:0.999 clip rate on the full set: {rate:.5}");
    assert!((0.0015..=0.0030).contains(&rate), "clip rate {rate}");

    // Dequantized int8 keeps recall@10 of exact search high (200 queries).
    let i8c = Int8Codec::new(&cal);
    let dec = i8c
        .decode(i8c.encode(c.as_ref()).unwrap().array.as_ref())
        .unwrap();
    let qv = column(&queries, "embedding");
    let qv = Vectors::try_new(qv.as_ref()).unwrap();
    let neighbors = column(&gt, "neighbors");
    let neighbors = neighbors.as_fixed_size_list();
    let truth: Vec<Vec<i64>> = (0..200)
        .map(|i| {
            neighbors
                .value(i)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    let recall = recall_at_10(
        dec.values().as_primitive::<Float32Type>().values(),
        &qv.values()[..200 * 384],
        &truth,
    );
    eprintln!("int8 (minmax) recall@10 over 200 queries: {recall:.4}");
    assert!(recall >= 0.95, "int8 recall@10 {recall}");
}
