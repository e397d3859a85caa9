//! `embquant search`: top-k over quantized Parquet files with a tier chain, results written
//! block by block.

use crate::output::Output;
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use embquant::job::{self};
use embquant::search::{load_corpus, QueryReader, QuerySet, TierSpec};

use crate::common::read_set;

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Corpus files written by `embquant quantize` (files, directories or globs).
    #[arg(long, required = true, num_args = 1..)]
    pub(crate) corpus: Vec<String>,
    /// Parquet file with the float query vectors.
    #[arg(long)]
    pub(crate) queries: String,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub(crate) k: usize,
    /// Tier chain: each tier but the last is scheme:factor and keeps k x factor candidates.
    #[arg(long, default_value = "binary:8,int8:2,float")]
    pub(crate) tiers: String,
    /// The embedding column (source of the corpus codes, and the query column).
    #[arg(long, default_value = "embedding")]
    pub(crate) column: String,
    /// Corpus id column reported in the results (row numbers when absent).
    #[arg(long)]
    pub(crate) id_column: Option<String>,
    /// Query id column (row numbers when absent).
    #[arg(long)]
    pub(crate) query_id_column: Option<String>,
    /// Results: Parquet with (query_id, rank, id, score, tier).
    #[arg(long, short)]
    pub(crate) output: PathBuf,
}

pub(crate) async fn search(a: SearchArgs) -> Result<()> {
    let chain = TierSpec::parse_chain(&a.tiers)?;
    if a.k == 0 {
        bail!("--k must be at least 1");
    }
    let t = Instant::now();
    let files = job::discover(&a.corpus)?;
    let query_files = job::discover(std::slice::from_ref(&a.queries))?;
    let mut inputs = read_set(&a.corpus, &files)?;
    inputs.extend(read_set(std::slice::from_ref(&a.queries), &query_files)?);
    let output = Output::new(&a.output, &inputs, false)?;
    let (column, id_column) = (a.column.clone(), a.id_column.clone());
    let chain2 = chain.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        load_corpus(&files, &column, id_column.as_deref(), &chain2)
    })
    .await??;
    let load_s = t.elapsed().as_secs_f64();
    // Queries: the float column, by the library's one rule (NULLs, ids, truncation).
    let QuerySet {
        values: qvals,
        ids: qids,
    } = QueryReader::new(
        &a.column,
        a.query_id_column.as_deref(),
        loaded.truncation,
        loaded.corpus.dim(),
    )
    .read_files(&query_files)?;
    let nq = qids.len();
    let dim = loaded.corpus.dim();
    // Refused before anything is written: a top-k wider than the corpus is never cut to
    // the corpus and then called certified.
    let rows = loaded.corpus.rows();
    if a.k == 0 || a.k > rows {
        return Err(embquant::Error::KOutOfRange { k: a.k, max: rows }.into());
    }
    let loaded = std::sync::Arc::new(loaded);
    // Throughput: blocks of queries at once (parallel, blocked scans), each block's results
    // written before the next is searched, so memory holds one block's hits, not all.
    // Latency: queries one by one.
    let (l2, q2, c2, k) = (loaded.clone(), qvals, chain.clone(), a.k);
    let (out, file) = embquant::io::AtomicFile::create(output.path())?;
    // A chain that prunes by a bound also reports, per query, the rows each tier kept and
    // whether its top-k is certified (two more result columns, and a summary).
    let reported = chain.iter().any(|s| s.bound.is_some());
    let (writer, batch_s, lat, summary) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut summary = (vec![0f64; c2.len()], 0usize, 0usize);
        let mut writer: Option<embquant::parquet::arrow::ArrowWriter<File>> = None;
        let mut file = Some(file);
        let block = results_block(k.min(l2.corpus.rows()).max(1));
        let mut batch_s = 0.0;
        for (b, qs) in q2.chunks(block * dim).enumerate() {
            let t = Instant::now();
            let (results, reports) = l2.corpus.search_reported(qs, k, &c2)?;
            batch_s += t.elapsed().as_secs_f64();
            let qids = &qids[b * block..];
            let batch = if reported {
                embquant::search::results::results_batch_reported(
                    &results, &reports, qids, &l2.ids,
                )?
            } else {
                embquant::search::results::results_batch(&results, qids, &l2.ids)?
            };
            for r in &reports {
                for (s, &n) in summary.0.iter_mut().zip(&r.kept) {
                    *s += n as f64;
                }
                summary.1 += r.certified as usize;
                summary.2 += 1;
            }
            if writer.is_none() {
                let f = file.take().expect("one writer");
                writer = Some(embquant::parquet::arrow::ArrowWriter::try_new(
                    f,
                    batch.schema(),
                    Some(results_props()),
                )?);
            }
            writer.as_mut().expect("created").write(&batch)?;
        }
        if writer.is_none() {
            // No queries: an empty file with the schema.
            let batch = embquant::search::results::results_batch(&[], &[], &l2.ids)?;
            let f = file.take().expect("one writer");
            writer = Some(embquant::parquet::arrow::ArrowWriter::try_new(
                f,
                batch.schema(),
                None,
            )?);
        }
        let mut lat: Vec<f64> = Vec::new();
        for q in q2.chunks_exact(dim).take(200) {
            let t = Instant::now();
            l2.corpus.search(q, k, &c2)?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(f64::total_cmp);
        Ok((writer, batch_s, lat, summary))
    })
    .await??;
    if let Some(w) = writer {
        w.close()?;
    }
    out.commit()?;
    let shown = output.display();
    output.finish().await?;
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "searched {nq} queries over {} rows ({} dims) with {}: {:.0} queries/s; latency one query at a time p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms; corpus loaded in {load_s:.2} s; wrote {}",
        loaded.corpus.rows(),
        dim,
        a.tiers,
        nq as f64 / batch_s.max(1e-9),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        shown
    );
    if reported && summary.2 > 0 {
        let n = summary.2 as f64;
        let kept: Vec<String> = chain
            .iter()
            .zip(&summary.0)
            .map(|(s, &t)| format!("{} {:.1}", s.tier, t / n))
            .collect();
        println!(
            "rows kept per query, mean: {}; top-{} certified for {} of {} queries ({:.1}%; columns kept and certified in the results)",
            kept.join(", "),
            a.k,
            summary.1,
            summary.2,
            100.0 * summary.1 as f64 / n
        );
    }
    Ok(())
}

/// Row groups of 128Ki results, so the writer buffers little whatever the output's size.
fn results_props() -> embquant::parquet::file::properties::WriterProperties {
    embquant::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(1 << 17))
        .build()
}

/// Queries per block of `embquant search`: their hits (k per query, ~64 bytes each with
/// the batch built from them) stay within ~64 MiB, and a block is never smaller than the
/// scans' query groups.
fn results_block(k: usize) -> usize {
    ((64usize << 20) / (k * 64)).clamp(32, 65_536)
}
