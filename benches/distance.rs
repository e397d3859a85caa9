//! First-tier scan kernels, one thread, in comparisons (query x code) per second.
//!
//! 65,536 codes of D = 384 scanned by a group of 16 queries, every code's score compared
//! with a cut-off that nothing passes (so the numbers are the scan itself, not the top-k):
//!
//! - `hamming`: 384-bit sign codes, transposed to 64-bit words (AVX-512 VPOPCNTDQ where
//!   present), beside the portable per-code loop;
//! - `rabitq`: 512-bit RaBitQ codes (384 dims rotated and padded), 86 six-bit groups looked up
//!   in the query's tables (AVX-512 VBMI `vpermb` where present, else the four-`vpshufb`
//!   AVX2 path), beside its scalar twin;
//! - `rabitq4`: the same codes as 128 four-bit groups (`kernels::fastscan`, what runs
//!   without VBMI: `vpshufb` on AVX2), beside its portable byte-table path;
//! - `int8`: the asymmetric float x int8 scan of the same 384-d codes.
//!
//! `cargo bench --bench distance` (add `-- rabitq` etc. to filter; `EMBQUANT_SIMD=scalar`
//! or `avx2` forces a level). The ratio `hamming / rabitq4` (or `rabitq` on VBMI) is the
//! issue's "RaBitQ scan within 2.5x of Hamming per vector".

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use embquant::bench::{
    group_patterns, hamming_scan, weighted_i8_scan_group, LutQuery, NibbleBlocks, NibbleQuery,
    RabitqBlocks, TransposedCodes,
};

const ROWS: usize = 65_536;
const QUERIES: usize = 16;
const DIM: usize = 384;

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn scans(c: &mut Criterion) {
    let mut next = rng(7);
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Elements((ROWS * QUERIES) as u64));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(20);

    // Hamming over 384-bit codes.
    let width = DIM / 8;
    let codes: Vec<u8> = (0..ROWS * width).map(|_| next() as u8).collect();
    let t = TransposedCodes::new(&codes, width).expect("width is a multiple of 8");
    let qs: Vec<Vec<u64>> = (0..QUERIES)
        .map(|_| (0..width / 8).map(|_| next()).collect())
        .collect();
    let qbytes: Vec<Vec<u8>> = qs
        .iter()
        .map(|q| q.iter().flat_map(|w| w.to_le_bytes()).collect())
        .collect();
    let cuts = vec![0u32; QUERIES];
    g.bench_function("hamming/transposed", |b| {
        let mut hits = vec![Vec::new(); QUERIES];
        b.iter(|| {
            for start in (0..ROWS).step_by(4096) {
                t.scan_within(black_box(&qs), &cuts, start, 4096, &mut hits);
            }
            black_box(&hits);
        })
    });
    g.bench_function("hamming/portable", |b| {
        let mut out = vec![0u32; ROWS];
        b.iter(|| {
            for q in &qbytes {
                hamming_scan(black_box(q), &codes, &mut out);
            }
            black_box(&out);
        })
    });

    // RaBitQ over 512-bit codes.
    let bits = 512;
    let groups = bits / 6 + 1;
    let rcodes: Vec<u8> = (0..ROWS * bits / 8).map(|_| next() as u8).collect();
    let mut patterns = vec![0u8; ROWS * groups];
    for (p, code) in patterns
        .chunks_exact_mut(groups)
        .zip(rcodes.chunks_exact(bits / 8))
    {
        group_patterns(code, bits, p);
    }
    let factors: Vec<f32> = (0..ROWS)
        .map(|_| 0.01 + (next() % 100) as f32 * 1e-4)
        .collect();
    let offsets: Vec<f32> = (0..ROWS).map(|_| (next() % 100) as f32 * 1e-3).collect();
    let blocks = RabitqBlocks::new(&patterns, groups, &factors, &offsets);
    let rotated: Vec<Vec<f32>> = (0..QUERIES)
        .map(|_| {
            (0..bits)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        })
        .collect();
    let luts: Vec<LutQuery> = rotated.iter().map(|q| LutQuery::new(q, 0.1)).collect();
    let refs: Vec<&LutQuery> = luts.iter().collect();
    let never = vec![f32::INFINITY; QUERIES];
    g.bench_function("rabitq/vector", |b| {
        let mut hits = vec![Vec::new(); QUERIES];
        b.iter(|| {
            for b0 in (0..blocks.blocks()).step_by(16) {
                blocks.scan_within(black_box(&refs), &never, b0..b0 + 16, &mut hits);
            }
            black_box(&hits);
        })
    });
    g.bench_function("rabitq/scalar", |b| {
        let mut hits = vec![Vec::new(); QUERIES];
        b.iter(|| {
            blocks.scan_scalar(black_box(&refs), &never, 0..blocks.blocks(), &mut hits);
            black_box(&hits);
        })
    });

    // The same codes in 4-bit groups.
    let nibbles = NibbleBlocks::new(&rcodes, bits / 8, bits / 8, &factors, &offsets);
    let nluts: Vec<NibbleQuery> = rotated.iter().map(|q| NibbleQuery::new(q, 0.1)).collect();
    let nrefs: Vec<&NibbleQuery> = nluts.iter().collect();
    g.bench_function("rabitq4/vector", |b| {
        let mut hits = vec![Vec::new(); QUERIES];
        b.iter(|| {
            for b0 in (0..nibbles.blocks()).step_by(32) {
                nibbles.scan_within(black_box(&nrefs), &never, b0..b0 + 32, &mut hits);
            }
            black_box(&hits);
        })
    });
    g.bench_function("rabitq4/portable", |b| {
        let mut hits = vec![Vec::new(); QUERIES];
        b.iter(|| {
            nibbles.scan_portable(black_box(&nrefs), &never, 0..nibbles.blocks(), &mut hits);
            black_box(&hits);
        })
    });

    // Asymmetric int8 over 384-d codes.
    let i8codes: Vec<i8> = (0..ROWS * DIM).map(|_| next() as i8).collect();
    let ws: Vec<f32> = (0..QUERIES * DIM)
        .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    g.bench_function("int8/group", |b| {
        let mut scratch = vec![0f32; DIM];
        let mut out = vec![0f32; 4096 * QUERIES];
        b.iter(|| {
            for block in i8codes.chunks_exact(4096 * DIM) {
                weighted_i8_scan_group(black_box(&ws), block, &mut scratch, &mut out);
            }
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, scans);
criterion_main!(benches);
