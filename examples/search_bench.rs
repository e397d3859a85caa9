//! Search throughput of the library alone (no CLI, no DataFusion): loads a quantized corpus
//! (the output of `embquant quantize`) once, reads the queries, and times each tier chain
//! over all of them, printing queries per second and the SIMD level the kernels ran at.
//!
//! Run: `cargo run --release --example search_bench -- CORPUS.parquet QUERIES.parquet COLUMN
//! CHAIN...`, with `RAYON_NUM_THREADS=1` for one thread and `EMBQUANT_SIMD=scalar|avx2|avx512`
//! to force a level. `benches/search_levels.sh` runs it beside faiss.

use std::time::Instant;

use embquant::search::{load_corpus, QueryReader, TierSpec};
use embquant::simd::Level;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: search_bench CORPUS QUERIES COLUMN CHAIN...".into());
    }
    let (corpus, queries, column) = (&args[0], &args[1], &args[2]);
    let chains: Vec<Vec<TierSpec>> = args[3..]
        .iter()
        .map(|c| TierSpec::parse_chain(c))
        .collect::<Result<_, _>>()?;
    // Every scheme any chain needs, loaded once.
    let all: Vec<TierSpec> = {
        let mut v: Vec<TierSpec> = Vec::new();
        for s in chains.iter().flatten() {
            if !v.iter().any(|t| t.tier == s.tier) {
                v.push(*s);
            }
        }
        v
    };
    let files = embquant::job::discover(std::slice::from_ref(corpus))?;
    let t = Instant::now();
    let loaded = load_corpus(&files, column, None, &all)?;
    let load_s = t.elapsed().as_secs_f64();
    let qs = QueryReader::new(column, None, loaded.truncation, loaded.corpus.dim())
        .read_files(&embquant::job::discover(std::slice::from_ref(queries))?)?;
    let nq = qs.ids.len();
    println!(
        "corpus {} rows x {} dims loaded in {load_s:.2} s; {nq} queries; SIMD level {} (detected {}); {} thread(s)",
        loaded.corpus.rows(),
        loaded.corpus.dim(),
        Level::active(),
        Level::detected(),
        rayon::current_num_threads()
    );
    for (name, chain) in args[3..].iter().zip(&chains) {
        let t = Instant::now();
        let hits = loaded.corpus.search(&qs.values, 10, chain)?;
        let s = t.elapsed().as_secs_f64();
        assert_eq!(hits.len(), nq);
        println!(
            "{{\"chain\": \"{name}\", \"level\": \"{}\", \"queries_per_s\": {:.1}, \"seconds\": {s:.3}}}",
            Level::active(),
            nq as f64 / s
        );
    }
    Ok(())
}
