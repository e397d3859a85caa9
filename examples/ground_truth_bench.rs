//! Ground-truth throughput of the library alone (no CLI, no DataFusion): the recall report's
//! exact search (`embquant recall`'s ground-truth phase, no cache) of every query over a
//! Parquet float column streamed from disk, printing queries per second and the SIMD level.
//!
//! Run: `cargo run --release --example ground_truth_bench -- CORPUS.parquet QUERIES.parquet
//! COLUMN [K]`, with `RAYON_NUM_THREADS=1` for one compute thread (Parquet decoding runs a
//! block ahead on a thread of its own; `taskset -c 0` confines both to one core) and
//! `EMBQUANT_SIMD=scalar|avx2|avx512` to force a level. `MEMORY=1` reads the corpus into
//! memory first and times the in-memory ground truth (`recall::ground_truth`), the
//! like-for-like comparison with numpy's matmul + argpartition over arrays in memory.

use std::time::Instant;

use embquant::recall::Queries;
use embquant::recall::{ground_truth, ground_truth_scan};
use embquant::recall::{ParquetSource, ScanRows};
use embquant::search::QueryReader;
use embquant::simd::Level;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: ground_truth_bench CORPUS QUERIES COLUMN [K]".into());
    }
    let (corpus, queries, column) = (&args[0], &args[1], &args[2]);
    let k: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let t = Instant::now();
    let source = ParquetSource::open(
        embquant::job::discover(std::slice::from_ref(corpus))?,
        column,
    )?;
    let open_s = t.elapsed().as_secs_f64();
    let qs = QueryReader::new(column, None, None, source.dim())
        .read_files(&embquant::job::discover(std::slice::from_ref(queries))?)?;
    let nq = qs.ids.len();
    let queries = Queries {
        values: qs.values,
        exclude: None,
    };
    let (gt, info) = if std::env::var("MEMORY").is_ok_and(|v| v == "1") {
        let v = embquant::recall::read_vectors(
            &embquant::job::discover(std::slice::from_ref(corpus))?,
            column,
        )?;
        println!("in memory: {} floats", v.values.len());
        ground_truth(&v.values, v.dim, &queries, k, v.valid.as_deref(), None)?
    } else {
        ground_truth_scan(&source, &queries, k, None)?
    };
    println!(
        "simd {:?}, {} rows x {}, checked in {open_s:.2} s; ground truth of {nq} queries, \
         k = {k}: {:.2} s, {:.1} queries/s (fingerprint {})",
        Level::active(),
        source.rows(),
        source.dim(),
        info.seconds,
        nq as f64 / info.seconds,
        gt.fingerprint
    );
    Ok(())
}
