//! Codec and calibration throughput, one thread, in GB/s of float32 input.
//!
//! D = 384 and 1024, 100,000 rows (153 MB / 410 MB of floats: larger than the L3 cache,
//! so these are streaming numbers). Each fast kernel runs beside its scalar twin; the
//! Arrow-level encoders (validation, output allocation, null handling) run in a one-thread
//! rayon pool.
//!
//! `cargo bench --bench codecs` (add `-- int8` etc. to filter).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{FixedSizeListArray, Float32Array};
use arrow_schema::{DataType, Field};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use embquant::{
    BinaryCodec, Calibration, HalfCodec, HalfKind, Int4Codec, Int8Codec, RangeMethod, Stats,
    StatsOptions,
};

const ROWS: usize = 100_000;

/// Unit-norm vectors with per-dimension offsets and spreads (like the peers' generator).
fn data(dim: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let offs: Vec<f32> = (0..dim).map(|_| (next() - 0.5) * 0.6).collect();
    let spread: Vec<f32> = (0..dim).map(|_| 0.5 + next()).collect();
    let mut v = Vec::with_capacity(ROWS * dim);
    for _ in 0..ROWS {
        let row: Vec<f32> = (0..dim)
            .map(|d| offs[d] + spread[d] * (next() + next() + next() - 1.5))
            .collect();
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.extend(row.iter().map(|x| x / n));
    }
    v
}

fn array(values: &[f32], dim: usize) -> FixedSizeListArray {
    FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dim as i32,
        Arc::new(Float32Array::from(values.to_vec())),
        None,
    )
}

fn codecs(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("rayon pool");
    for dim in [384usize, 1024] {
        let x = data(dim);
        let arr = array(&x, dim);
        let stats = pool
            .install(|| Stats::compute(&arr, &StatsOptions::default()))
            .expect("stats");
        let cal = Calibration::from_stats(&stats, RangeMethod::MinMax).expect("calibration");
        let bytes = (ROWS * dim * 4) as u64;

        let mut g = c.benchmark_group(format!("calibrate/d{dim}"));
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function("moments (min, max, mean, var)", |b| {
            b.iter(|| {
                pool.install(|| Stats::compute(black_box(&arr), &StatsOptions::moments_only()))
            })
        });
        g.bench_function("moments + quantile sketch", |b| {
            b.iter(|| pool.install(|| Stats::compute(black_box(&arr), &StatsOptions::default())))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("int8/d{dim}"));
        g.throughput(Throughput::Bytes(bytes));
        let i8c = Int8Codec::new(&cal);
        let mut out = vec![0u8; ROWS * dim];
        g.bench_function(BenchmarkId::new("kernel", "fast"), |b| {
            b.iter(|| i8c.encode_slice(black_box(&x), &mut out, 0x80))
        });
        g.bench_function(BenchmarkId::new("kernel", "scalar twin"), |b| {
            b.iter(|| i8c.encode_slice_scalar(black_box(&x), &mut out, 0x80))
        });
        g.bench_function(BenchmarkId::new("arrow", "encode"), |b| {
            b.iter(|| pool.install(|| i8c.encode(black_box(&arr))))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("int4/d{dim}"));
        g.throughput(Throughput::Bytes(bytes));
        let i4c = Int4Codec::new(&cal);
        let mut out = vec![0u8; ROWS * i4c.width()];
        g.bench_function(BenchmarkId::new("kernel", "fast"), |b| {
            b.iter(|| i4c.encode_slice(black_box(&x), &mut out))
        });
        g.bench_function(BenchmarkId::new("kernel", "scalar twin"), |b| {
            b.iter(|| i4c.encode_slice_scalar(black_box(&x), &mut out))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("binary/d{dim}"));
        g.throughput(Throughput::Bytes(bytes));
        let bc = BinaryCodec::new(dim);
        let mut out = vec![0u8; ROWS * bc.width()];
        g.bench_function(BenchmarkId::new("kernel", "fast"), |b| {
            b.iter(|| bc.encode_slice(black_box(&x), &mut out))
        });
        g.bench_function(BenchmarkId::new("kernel", "scalar twin"), |b| {
            b.iter(|| bc.encode_slice_scalar(black_box(&x), &mut out))
        });
        g.bench_function(BenchmarkId::new("arrow", "encode"), |b| {
            b.iter(|| pool.install(|| bc.encode(black_box(&arr))))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("f16/d{dim}"));
        g.throughput(Throughput::Bytes(bytes));
        let hc = HalfCodec::new(dim, HalfKind::F16);
        let mut out = vec![0u16; ROWS * dim];
        g.bench_function(BenchmarkId::new("kernel", "fast"), |b| {
            b.iter(|| hc.encode_slice(black_box(&x), &mut out))
        });
        g.bench_function(BenchmarkId::new("kernel", "scalar twin"), |b| {
            b.iter(|| hc.encode_slice_scalar(black_box(&x), &mut out))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = codecs
}
criterion_main!(benches);
