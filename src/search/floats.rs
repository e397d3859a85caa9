//! The float tier: float vectors read a run of candidate rows at a time ([`FloatRows`]),
//! from memory or (in [`super::load`]) from Parquet, and the exact rescoring of candidates.

use rayon::prelude::*;

use super::topk::TopK;
use super::topk::Valid;
use crate::error::{Error, Result};
use crate::kernels::float::dot;

/// Reads float vectors of corpus rows for the float tier, a run of rows at a time, so
/// neither the float column nor every candidate's vector need be in memory at once (the CLI
/// and the recall report read just the candidate rows from Parquet).
pub trait FloatRows: Send + Sync {
    /// Calls `f(i, values)` with the row-major vectors of `rows[i..i + n]` (`values.len()`
    /// is `n x dim`, `n > 0`) for consecutive runs covering `rows` (sorted, unique) in order.
    fn visit(&self, rows: &[u32], f: &mut dyn FnMut(usize, &[f32]) -> Result<()>) -> Result<()>;

    /// The vectors of `rows` (sorted, unique), row-major, in that order.
    fn fetch(&self, rows: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.visit(rows, &mut |_, v| {
            out.extend_from_slice(v);
            Ok(())
        })?;
        Ok(out)
    }
}

/// Rows per run of [`visit_rows`].
const VISIT_ROWS: usize = 4096;

/// [`FloatRows::visit`] over row-major `values` (`dim` per row) in memory, each run's
/// vectors passed through `map` (e.g. a Matryoshka prefix) before `f` sees them.
pub(crate) fn visit_rows(
    values: &[f32],
    dim: usize,
    rows: &[u32],
    map: &dyn Fn(Vec<f32>) -> Result<Vec<f32>>,
    f: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
) -> Result<()> {
    for (c, run) in rows.chunks(VISIT_ROWS).enumerate() {
        f(c * VISIT_ROWS, &map(rows_of(values, dim, run))?)?;
    }
    Ok(())
}

/// Float vectors held in memory.
#[derive(Debug, Clone)]
pub struct InMemoryFloats {
    /// Row-major values.
    pub values: Vec<f32>,
    /// Dimension.
    pub dim: usize,
}

impl FloatRows for InMemoryFloats {
    fn visit(&self, rows: &[u32], f: &mut dyn FnMut(usize, &[f32]) -> Result<()>) -> Result<()> {
        visit_rows(&self.values, self.dim, rows, &Ok, f)
    }
}

/// The vectors of `rows` from row-major `values` (`dim` per row), in that order.
pub(crate) fn rows_of(values: &[f32], dim: usize, rows: &[u32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * dim);
    for &r in rows {
        let r = r as usize;
        out.extend_from_slice(&values[r * dim..(r + 1) * dim]);
    }
    out
}

/// The float tier: the exact scores of `dim`-dimensional float rows.
pub(super) struct FloatTier<'a> {
    pub(super) floats: &'a dyn FloatRows,
    pub(super) dim: usize,
}

impl FloatTier<'_> {
    /// The float tier first: every valid row of the `rows` rows rescored exactly for a
    /// group of queries.
    pub(super) fn scan(
        &self,
        rows: usize,
        valid: Valid<'_>,
        group: &[f32],
        keep: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        let all: Vec<(u32, f32)> = (0..rows)
            .filter(|&r| valid.get(r))
            .map(|r| (r as u32, 0.0))
            .collect();
        let nq = group.len() / self.dim;
        self.rescore(group, &vec![all; nq], keep)
    }

    /// Rescores candidates with the float vectors, reading each candidate row once, a run of
    /// rows at a time (the vectors of every candidate are never held together).
    pub(super) fn rescore(
        &self,
        queries: &[f32],
        cands: &[Vec<(u32, f32)>],
        keep: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        let floats = self.floats;
        let mut rows: Vec<u32> = cands.iter().flatten().map(|c| c.0).collect();
        rows.sort_unstable();
        rows.dedup();
        // Every (row, query, position) pair, in row order, scored as its row's run arrives.
        let mut pairs: Vec<(u32, u32, u32)> = cands
            .iter()
            .enumerate()
            .flat_map(|(q, cs)| {
                cs.iter()
                    .enumerate()
                    .map(move |(j, &(row, _))| (row, q as u32, j as u32))
            })
            .collect();
        pairs.sort_unstable();
        let mut scores: Vec<Vec<f32>> = cands.iter().map(|c| vec![0f32; c.len()]).collect();
        let d = self.dim;
        let mut at = 0usize;
        floats.visit(&rows, &mut |first, values| {
            let run = &rows[first..first + values.len() / d];
            let Some(&last) = run.last() else {
                return Ok(());
            };
            let end = at + pairs[at..].partition_point(|p| p.0 <= last);
            let part = &pairs[at..end];
            let s: Vec<f32> = part
                .par_iter()
                .map(|&(row, q, _)| {
                    let i = run.binary_search(&row).expect("visited");
                    let q = q as usize;
                    dot(&queries[q * d..(q + 1) * d], &values[i * d..(i + 1) * d])
                })
                .collect();
            for (&(_, q, j), s) in part.iter().zip(s) {
                scores[q as usize][j as usize] = s;
            }
            at = end;
            Ok(())
        })?;
        if at != pairs.len() {
            let missing = rows.len() - rows.partition_point(|&r| r <= pairs[at].0) + 1;
            return Err(Error::Schema(format!(
                "the float column returned {} of the {} candidate rows",
                rows.len() - missing,
                rows.len()
            )));
        }
        Ok(cands
            .par_iter()
            .zip(scores.par_iter())
            .map(|(cs, sc)| {
                let mut top = TopK::new(keep);
                for (&(row, _), &s) in cs.iter().zip(sc) {
                    top.push(s, row);
                }
                top.into_sorted()
            })
            .collect())
    }
}
