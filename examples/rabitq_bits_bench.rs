//! Queries per second of multi-bit RaBitQ chains on the peers' 1M x 384 data (`.npy` files
//! of `../shared/peers/common.py`), the corpus encoded in memory: int8 and RaBitQ codes of 1,
//! 2, 4 and 8 bits. Prints one line per chain with the SIMD level the kernels ran at.
//!
//! Run: `RAYON_NUM_THREADS=1 cargo run --release --example rabitq_bits_bench -- X.npy Q.npy
//! NQ CHAIN...` (`EMBQUANT_SIMD=scalar|avx2|avx512` forces a level). `benches/rabitq_bits.sh`
//! runs it beside faiss.

use std::time::Instant;

use embquant::codec::rabitq_ex::RabitqExCodec;
use embquant::search::{Codes, Corpus, TierSpec};
use embquant::simd::Level;
use embquant::{Calibration, Int8Codec, RabitqCodec, RangeMethod, Rotation, Stats, StatsOptions};

/// The float32 matrix of a 2-d `.npy` file (C order, little-endian `<f4`).
fn npy(path: &str) -> Result<(Vec<f32>, usize), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len])?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(format!("{path}: expected a C-order <f4 array, header {header}").into());
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data = &bytes[10 + header_len..];
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((values, dims[1]))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: rabitq_bits_bench X.npy Q.npy NQ CHAIN...".into());
    }
    let (x, dim) = npy(&args[0])?;
    let (q, _) = npy(&args[1])?;
    let nq: usize = args[2].parse()?;
    let queries = &q[..nq.min(q.len() / dim) * dim];
    let chains: Vec<Vec<TierSpec>> = args[3..]
        .iter()
        .map(|c| TierSpec::parse_chain(c))
        .collect::<Result<_, _>>()?;
    let rows = x.len() / dim;
    let t = Instant::now();
    let arr = embquant::arrow_array::FixedSizeListArray::new(
        std::sync::Arc::new(embquant::arrow_schema::Field::new_list_field(
            embquant::arrow_schema::DataType::Float32,
            false,
        )),
        dim as i32,
        std::sync::Arc::new(embquant::arrow_array::Float32Array::from(x.clone())),
        None,
    );
    let cal = Calibration::from_stats(
        &Stats::compute(&arr, &StatsOptions::moments_only())?,
        RangeMethod::MinMax,
    )?;
    drop(arr);
    let i8c = Int8Codec::new(&cal);
    let mut i8 = vec![0u8; rows * dim];
    i8c.encode_slice(&x, &mut i8, 0x80)
        .map_err(|r| format!("row {r}"))?;
    let mut corpus = Corpus::new(rows, dim);
    corpus.insert(Codes::Int8(i8.into_iter().map(|c| c as i8).collect(), i8c))?;
    let base = RabitqCodec::new(&cal, Rotation::default());
    let mut wanted: Vec<u8> = chains
        .iter()
        .flatten()
        .filter_map(|s| match s.tier {
            embquant::search::Tier::Rabitq(b) if b.get() > 1 => Some(b.get()),
            _ => None,
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut signs = vec![0u8; rows * base.width()];
    base.encode_slice(&x, &mut signs)
        .map_err(|r| format!("row {r}"))?;
    for &bits in &wanted {
        let c = RabitqExCodec::new(base.clone(), bits)?;
        let mut s = vec![0u8; rows * base.width()];
        let mut e = vec![0u8; rows * c.width()];
        c.encode_slice(&x, &mut s, &mut e)
            .map_err(|r| format!("row {r}"))?;
        corpus.insert(Codes::RabitqEx {
            signs: s.into(),
            extra: e,
            codec: c,
        })?;
    }
    corpus.insert(Codes::Rabitq(signs.into(), base))?;
    drop(x);
    eprintln!(
        "encoded {rows} x {dim} (int8, rabitq 1 + {wanted:?} bits) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for (chain, text) in chains.iter().zip(&args[3..]) {
        let t = Instant::now();
        let (_, reports) = corpus.search_reported(queries, 10, chain)?;
        let s = t.elapsed().as_secs_f64();
        let kept: Vec<String> = (0..reports[0].kept.len())
            .map(|i| {
                format!(
                    "{:.0}",
                    reports.iter().map(|r| r.kept[i] as f64).sum::<f64>() / reports.len() as f64
                )
            })
            .collect();
        println!(
            "{text}: {:.1} queries/s ({} queries, {} thread(s), SIMD {}; rows kept per tier {})",
            queries.len() as f64 / dim as f64 / s,
            queries.len() / dim,
            rayon::current_num_threads(),
            Level::active(),
            kept.join(" / ")
        );
    }
    Ok(())
}
