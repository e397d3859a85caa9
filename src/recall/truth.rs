//! Exact ground truth: the top-k corpus rows of every query by inner product.
//!
//! A float32 blocked scan (`crate::kernels::matmul`) keeps the best `k + 32` rows of each
//! query; those are rescored in float64 and ranked by score (descending), then row
//! (ascending). The float64 score of a row is computed when it enters a query's float32
//! selection, while its values are at hand, so the whole computation is one pass over the
//! corpus (the fingerprint is taken in the same pass unless a cached ground truth must be
//! checked first). The answer is the float64 ranking unless more than 32 rows sit within the
//! float32 rounding of a dot product (about `1e-6` for unit vectors at D = 384) of the k-th
//! score: then rows inside that band may differ from a float64 scan over every row. Queries are
//! split into groups of 64 scanned in parallel (rayon), each over the corpus in blocks of
//! rows, so memory beyond the inputs is `rows_per_block x 64` scores per thread.
//!
//! [`GroundTruth`] is cached as Parquet (`query`, `rank`, `row`, `score`), with the
//! fingerprint of everything it depends on in the footer, and reused while it matches.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt32Array};
use arrow_buffer::ToByteSlice;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::source::{ScanRows, SliceRows, SCAN_ROWS};
use crate::error::{Error, Result};
use crate::kernels::matmul::QueryBlock;
use crate::search::topk::TopK;

/// Extra float32 candidates rescored in float64.
const MARGIN: usize = 32;
/// Corpus rows per block of the scan.
const BLOCK_ROWS: usize = 512;
/// Corpus rows every query group scans before the next slice, so the slice stays in cache
/// across the groups (512 rows x 384 floats = 768 KiB; measured at AVX2 on 1M x 384:
/// 512 -> 72 queries/s, 1024 -> 66, 2048 -> 61, the whole 32768-row block -> 62).
const CACHE_ROWS: usize = BLOCK_ROWS;
/// Footer key of the cached ground truth's fingerprint.
const FINGERPRINT_KEY: &str = "embquant.ground_truth";

/// The exact top-k of every query.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// k.
    pub k: usize,
    /// Per query, `(row, score)` best first.
    pub neighbors: Vec<Vec<(u32, f64)>>,
    /// Fingerprint of the inputs (see [`fingerprint`]).
    pub fingerprint: String,
}

impl GroundTruth {
    /// The top rows of query `q` (at most `k`).
    pub fn rows(&self, q: usize, k: usize) -> impl Iterator<Item = u32> + '_ {
        self.neighbors[q].iter().take(k).map(|&(r, _)| r)
    }
}

/// Fingerprint of a ground-truth computation: the corpus and query values, the dimension,
/// k, and which corpus row each query excludes.
pub fn fingerprint(
    corpus: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    exclude: Option<&[u32]>,
) -> String {
    let mut h = Fingerprinter::new(dim, k, corpus.len(), queries.len());
    h.corpus(corpus);
    h.finish(queries, exclude)
}

/// [`fingerprint`] fed the corpus a block at a time, in row order.
pub struct Fingerprinter(Sha256);

impl Fingerprinter {
    /// A fingerprint of `corpus_values` corpus and `query_values` query values (not rows).
    pub fn new(dim: usize, k: usize, corpus_values: usize, query_values: usize) -> Self {
        let mut h = Sha256::new();
        h.update(b"embquant ground truth v1");
        for v in [
            dim as u64,
            k as u64,
            corpus_values as u64,
            query_values as u64,
        ] {
            h.update(v.to_le_bytes());
        }
        Fingerprinter(h)
    }

    /// Adds the next corpus values (their little-endian bytes).
    pub fn corpus(&mut self, values: &[f32]) {
        if cfg!(target_endian = "little") {
            self.0.update(values.to_byte_slice());
        } else {
            for c in values.chunks(1 << 16) {
                let bytes: Vec<u8> = c.iter().flat_map(|x| x.to_le_bytes()).collect();
                self.0.update(&bytes);
            }
        }
    }

    /// The fingerprint, after the corpus: adds the queries and the excluded rows.
    pub fn finish(mut self, queries: &[f32], exclude: Option<&[u32]>) -> String {
        self.corpus(queries);
        if let Some(e) = exclude {
            for r in e {
                self.0.update(r.to_le_bytes());
            }
        }
        self.0.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Computes the exact top-`k` of every query (row-major `queries`, `dim` each) over `corpus`
/// (row-major). `exclude[q]`, when given, is a corpus row query `q` never returns (the query's
/// own row when queries are sampled from the corpus). Rows whose `valid` entry is false are
/// skipped.
pub fn exact_topk(
    corpus: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    exclude: Option<&[u32]>,
    valid: Option<&[bool]>,
) -> GroundTruth {
    let rows = SliceRows {
        values: corpus,
        dim,
        valid,
    };
    exact_topk_scan_fingerprinted(&rows, queries, k, exclude)
        .expect("an in-memory scan does not fail")
}

/// One group of up to 64 queries of the scan, with its state across corpus blocks.
struct Group {
    /// Index of its first query.
    first: usize,
    block: QueryBlock,
    tops: Vec<TopK>,
    thr: Vec<f32>,
    scores: Vec<f32>,
    /// Per query, the float64 score of each row that entered its selection, pruned to the
    /// rows still held whenever it reaches [`PRUNE_AT`] x the selection's size.
    exact: Vec<Vec<(u32, f64)>>,
}

/// When a query's float64 scores number this many times its selection, those of rows that
/// left the selection are dropped (a corpus in ascending score order would otherwise keep
/// one per row).
const PRUNE_AT: usize = 4;

/// The float64 inner product the answer ranks by.
fn exact_dot(q: &[f32], x: &[f32]) -> f64 {
    q.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum()
}

impl Group {
    /// Scans corpus rows `first..` (`values`, row-major) in blocks of [`BLOCK_ROWS`].
    /// `queries` holds every query (row-major), `keep` the selection's size.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &mut self,
        first: usize,
        values: &[f32],
        dim: usize,
        valid: Option<&[bool]>,
        exclude: Option<&[u32]>,
        queries: &[f32],
        keep: usize,
    ) {
        let n = self.block.len();
        let stride = self.block.stride();
        let rows = values.len() / dim;
        for start in (0..rows).step_by(BLOCK_ROWS) {
            let end = (start + BLOCK_ROWS).min(rows);
            let s = &mut self.scores[..(end - start) * stride];
            self.block.scores(&values[start * dim..end * dim], s);
            for (i, row) in s.chunks_exact(stride).enumerate() {
                let r = first + start + i;
                if valid.is_some_and(|v| !v[r]) {
                    continue;
                }
                // 16 comparisons folded into a mask (one vector compare), then only the
                // queries whose threshold the row beats.
                for c in (0..n).step_by(16) {
                    let e = (c + 16).min(n);
                    let mut m = row[c..e]
                        .iter()
                        .zip(&self.thr[c..e])
                        .enumerate()
                        .fold(0u32, |m, (j, (x, t))| m | ((x >= t) as u32) << j);
                    while m != 0 {
                        let q = c + m.trailing_zeros() as usize;
                        m &= m - 1;
                        if exclude.is_some_and(|e| e[self.first + q] as usize == r) {
                            continue;
                        }
                        if !self.tops[q].push(row[q], r as u32) {
                            continue;
                        }
                        if let Some(th) = self.tops[q].threshold() {
                            self.thr[q] = th;
                        }
                        let qi = self.first + q;
                        let x = &values[(start + i) * dim..(start + i + 1) * dim];
                        let e = &mut self.exact[q];
                        e.push((r as u32, exact_dot(&queries[qi * dim..(qi + 1) * dim], x)));
                        if e.len() >= PRUNE_AT * keep {
                            let mut held: Vec<u32> = self.tops[q].rows().collect();
                            held.sort_unstable();
                            e.retain(|(row, _)| held.binary_search(row).is_ok());
                        }
                    }
                }
            }
        }
    }
}

/// [`exact_topk`] over a corpus read block by block, in one pass (the float32 scan, each
/// row's float64 score computed when it enters a query's selection), with the fingerprint
/// `fp` of its inputs. Memory beyond a block is the queries' candidates.
pub fn exact_topk_scan(
    corpus: &dyn ScanRows,
    queries: &[f32],
    k: usize,
    exclude: Option<&[u32]>,
    fp: String,
) -> Result<GroundTruth> {
    Ok(GroundTruth {
        k,
        neighbors: scan_topk(corpus, queries, k, exclude, &mut |_| {})?,
        fingerprint: fp,
    })
}

/// [`exact_topk_scan`] that takes the fingerprint of its inputs in the same pass.
pub fn exact_topk_scan_fingerprinted(
    corpus: &dyn ScanRows,
    queries: &[f32],
    k: usize,
    exclude: Option<&[u32]>,
) -> Result<GroundTruth> {
    let dim = corpus.dim();
    let mut h = Fingerprinter::new(dim, k, corpus.rows() * dim, queries.len());
    let neighbors = scan_topk(corpus, queries, k, exclude, &mut |v| h.corpus(v))?;
    Ok(GroundTruth {
        k,
        neighbors,
        fingerprint: h.finish(queries, exclude),
    })
}

/// The one pass: every block goes to `seen` (in row order), then to the query groups.
fn scan_topk(
    corpus: &dyn ScanRows,
    queries: &[f32],
    k: usize,
    exclude: Option<&[u32]>,
    seen: &mut (dyn FnMut(&[f32]) + Send),
) -> Result<Vec<Vec<(u32, f64)>>> {
    let dim = corpus.dim();
    let valid = corpus.valid();
    let keep = k + MARGIN;
    let mut groups: Vec<Group> = queries
        .chunks(64 * dim)
        .enumerate()
        .map(|(g, qs)| {
            let block = QueryBlock::new(qs, dim);
            let n = block.len();
            let scores = vec![0f32; BLOCK_ROWS * block.stride()];
            Group {
                first: g * 64,
                block,
                tops: (0..n).map(|_| TopK::new(keep)).collect(),
                thr: vec![f32::NEG_INFINITY; n],
                scores,
                exact: vec![Vec::new(); n],
            }
        })
        .collect();
    corpus.scan(SCAN_ROWS, &mut |first, values| {
        // `seen` (the fingerprint's hashing) runs beside the scan, off its critical path.
        // Every group scans a slice of rows while it is in cache, then the next slice: the
        // corpus streams from memory once per block, not once per group.
        std::thread::scope(|s| {
            s.spawn(|| seen(values));
            for (i, slice) in values.chunks(CACHE_ROWS * dim).enumerate() {
                let at = first + i * CACHE_ROWS;
                groups
                    .par_iter_mut()
                    .for_each(|g| g.scan(at, slice, dim, valid, exclude, queries, keep));
            }
        });
        Ok(())
    })?;
    // Each query's finalists (its float32 selection) ranked by their float64 scores.
    Ok(groups
        .into_par_iter()
        .flat_map_iter(|g| g.tops.into_iter().zip(g.exact))
        .map(|(top, mut exact)| {
            exact.sort_unstable_by_key(|e| e.0);
            let mut e: Vec<(u32, f64)> = top
                .into_sorted()
                .into_iter()
                .map(|(r, _)| {
                    let i = exact
                        .binary_search_by_key(&r, |e| e.0)
                        .expect("a held row's float64 score was kept");
                    exact[i]
                })
                .collect();
            e.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            e.truncate(k);
            e
        })
        .collect())
}

/// Writes `gt` to `path` (through a temporary file renamed into place).
pub fn write_cache(gt: &GroundTruth, path: &Path) -> Result<()> {
    let (mut q, mut rank, mut row, mut score) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, n) in gt.neighbors.iter().enumerate() {
        for (j, &(r, s)) in n.iter().enumerate() {
            q.push(i as u32);
            rank.push(j as u32);
            row.push(r);
            score.push(s);
        }
    }
    let mut meta = HashMap::new();
    meta.insert(FINGERPRINT_KEY.to_string(), gt.fingerprint.clone());
    meta.insert("embquant.ground_truth.k".to_string(), gt.k.to_string());
    meta.insert(
        "embquant.ground_truth.queries".to_string(),
        gt.neighbors.len().to_string(),
    );
    let schema = Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("query", DataType::UInt32, false),
            Field::new("rank", DataType::UInt32, false),
            Field::new("row", DataType::UInt32, false),
            Field::new("score", DataType::Float64, false),
        ],
        meta,
    ));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(q)),
        Arc::new(UInt32Array::from(rank)),
        Arc::new(UInt32Array::from(row)),
        Arc::new(Float64Array::from(score)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    let (out, f) = crate::io::AtomicFile::create(path)?;
    let mut w = ArrowWriter::try_new(f, schema, None)?;
    w.write(&batch)?;
    w.close()?;
    out.commit()
}

/// Reads a cached ground truth from `path` when it exists and its fingerprint is `fp`
/// (`Ok(None)` otherwise: missing, or made from other inputs).
pub fn read_cache(path: &Path, fp: &str) -> Result<Option<GroundTruth>> {
    if !path.is_file() {
        return Ok(None);
    }
    let builder = crate::io::open_file(path)?.reader()?;
    let meta = builder.schema().metadata().clone();
    if meta.get(FINGERPRINT_KEY).map(String::as_str) != Some(fp) {
        return Ok(None);
    }
    let k: usize = meta
        .get("embquant.ground_truth.k")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let nq: usize = meta
        .get("embquant.ground_truth.queries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut neighbors = vec![Vec::new(); nq];
    for b in builder.build()? {
        let b = b?;
        let q = b.column(0).as_primitive::<UInt32Type>();
        let r = b.column(2).as_primitive::<UInt32Type>();
        let s = b.column(3).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let qi = q.value(i) as usize;
            if qi >= nq {
                return Err(Error::Schema(format!(
                    "{}: query {qi} beyond the {nq} recorded",
                    path.display()
                )));
            }
            neighbors[qi].push((r.value(i), s.value(i)));
        }
    }
    Ok(Some(GroundTruth {
        k,
        neighbors,
        fingerprint: fp.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..rows * dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn brute(corpus: &[f32], q: &[f32], dim: usize, k: usize, skip: Option<usize>) -> Vec<u32> {
        let mut s: Vec<(f64, u32)> = corpus
            .chunks_exact(dim)
            .enumerate()
            .filter(|(r, _)| Some(*r) != skip)
            .map(|(r, x)| {
                (
                    q.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum(),
                    r as u32,
                )
            })
            .collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        s.into_iter().take(k).map(|x| x.1).collect()
    }

    #[test]
    fn equals_a_float64_brute_force_and_excludes_self() {
        let (dim, rows) = (37, 3000);
        let corpus = data(rows, dim, 3);
        let queries = data(70, dim, 9);
        let gt = exact_topk(&corpus, &queries, dim, 10, None, None);
        for q in 0..70 {
            let want = brute(&corpus, &queries[q * dim..(q + 1) * dim], dim, 10, None);
            assert_eq!(gt.rows(q, 10).collect::<Vec<_>>(), want, "query {q}");
        }
        // Queries sampled from the corpus: without exclusion each finds itself first.
        let picks: Vec<u32> = (0..70).map(|i| (i * 41) as u32).collect();
        let qs: Vec<f32> = picks
            .iter()
            .flat_map(|&r| corpus[r as usize * dim..(r as usize + 1) * dim].to_vec())
            .collect();
        let with = exact_topk(&corpus, &qs, dim, 5, None, None);
        let without = exact_topk(&corpus, &qs, dim, 5, Some(&picks), None);
        for (q, &r) in picks.iter().enumerate() {
            let v = &qs[q * dim..(q + 1) * dim];
            assert_eq!(
                with.rows(q, 5).collect::<Vec<_>>(),
                brute(&corpus, v, dim, 5, None)
            );
            assert_eq!(
                without.rows(q, 5).collect::<Vec<_>>(),
                brute(&corpus, v, dim, 5, Some(r as usize))
            );
        }
    }

    #[test]
    fn a_corpus_in_ascending_score_order_prunes_and_stays_exact() {
        // Every row beats the selection when offered, so each query's float64 scores are
        // pruned many times over (PRUNE_AT x (k + MARGIN) = 152 rows at k = 6).
        let (dim, rows) = (12, 4000);
        let queries = data(3, dim, 4);
        let base = data(rows, dim, 8);
        let q0 = &queries[..dim];
        let mut order: Vec<usize> = (0..rows).collect();
        let dot = |r: usize| exact_dot(q0, &base[r * dim..(r + 1) * dim]);
        order.sort_by(|&a, &b| dot(a).total_cmp(&dot(b)));
        let corpus: Vec<f32> = order
            .iter()
            .flat_map(|&r| base[r * dim..(r + 1) * dim].to_vec())
            .collect();
        let gt = exact_topk(&corpus, &queries, dim, 6, None, None);
        for q in 0..3 {
            let v = &queries[q * dim..(q + 1) * dim];
            assert_eq!(
                gt.rows(q, 6).collect::<Vec<_>>(),
                brute(&corpus, v, dim, 6, None)
            );
            for &(r, s) in &gt.neighbors[q] {
                let r = r as usize;
                assert_eq!(s, exact_dot(v, &corpus[r * dim..(r + 1) * dim]));
            }
        }
        // The fingerprint taken during the scan is the one of a separate pass.
        assert_eq!(gt.fingerprint, fingerprint(&corpus, &queries, dim, 6, None));
    }

    #[test]
    fn duplicated_vectors_tie_in_row_order() {
        let dim = 8;
        let mut corpus = data(200, dim, 5);
        // Rows 150, 20 and 90 hold the same vector, the best match of the query.
        let v: Vec<f32> = (0..dim).map(|d| if d == 0 { 5.0 } else { 0.0 }).collect();
        for r in [150usize, 20, 90] {
            corpus[r * dim..(r + 1) * dim].copy_from_slice(&v);
        }
        let gt = exact_topk(&corpus, &v, dim, 3, None, None);
        assert_eq!(gt.rows(0, 3).collect::<Vec<_>>(), [20, 90, 150]);
    }

    #[test]
    fn cache_round_trips_and_checks_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gt.parquet");
        let (dim, corpus, queries) = (16, data(500, 16, 1), data(20, 16, 2));
        let gt = exact_topk(&corpus, &queries, dim, 7, None, None);
        write_cache(&gt, &path).unwrap();
        assert_eq!(
            read_cache(&path, &gt.fingerprint).unwrap(),
            Some(gt.clone())
        );
        let other = fingerprint(&corpus, &queries[16..], dim, 7, None);
        assert_ne!(other, gt.fingerprint);
        assert_eq!(read_cache(&path, &other).unwrap(), None);
        assert_eq!(
            read_cache(&dir.path().join("none.parquet"), &other).unwrap(),
            None
        );
    }
}
