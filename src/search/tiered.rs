//! The tier chain over an in-memory corpus of codes.
//!
//! A chain such as `binary:8,int8:2,float` scans every corpus row with the first tier and
//! keeps `k x 8` candidates per query, rescores those with int8 and keeps `k x 2`, and
//! rescores those with the float vectors for the final top-k. Scores are similarities
//! (higher is better): binary `D - 2 * hamming` (the dot product of the ±1 sign vectors),
//! int8 / int4 the query's dot product with the dequantized vector (asymmetric), f16 and float
//! the exact dot product. Queries run in parallel (rayon); the first tier scans the corpus in
//! blocks shared by a group of queries, so a block of codes is reused from cache.

use crate::search::RabitqBits;
use rayon::prelude::*;

use super::floats::FloatTier;
use super::tier::TierCodes;
use super::topk::TopK;
use super::topk::Valid;

use super::bound::Bounded;
pub use super::bound::QueryReport;
pub use super::chain::{Hit, Tier, TierSpec};
pub use super::floats::{FloatRows, InMemoryFloats};
pub use super::tier::Codes;
use crate::codec::rabitq_ex::MIN_EPS0;
use crate::error::{Error, Result};

/// The memory the candidates of one block of queries may take (256 MiB); more queries are
/// searched in several blocks.
const CANDIDATE_BUDGET_BYTES: usize = 256 << 20;

/// The bound's confidence parameter of the 1-bit prefilter before a multi-bit RaBitQ first
/// tier: wide (4 standard deviations; a row the exhaustive scan would keep is dropped only
/// when its 1-bit estimate errs by more than that plus its margin), so the tier's answer is
/// the exhaustive one in practice, at the cost of the table scan and a few more rescored rows.
pub const PREFILTER_EPS0: f32 = 4.0;

/// Queries sharing a pass over the float vectors when the float tier comes first.
const FLOAT_QUERY_GROUP: usize = 8;

/// The searchable corpus: codes in memory, one [`Codes`] per tier, floats on demand.
///
/// Its fields are private: codes go in through [`Corpus::insert`], which checks their size
/// and builds their scan layout (transposed binary words, the RaBitQ table layout) at once,
/// so no derived copy can go stale. [`super::build::CorpusBuilder`] builds one from record
/// batches.
pub struct Corpus {
    rows: usize,
    dim: usize,
    /// At most one per tier.
    tiers: Vec<Box<dyn TierCodes>>,
    floats: Option<Box<dyn FloatRows>>,
    /// Rows whose vector is null are never returned (`None`: every row is valid).
    valid: Option<Vec<bool>>,
}

impl Corpus {
    /// A corpus of `rows` vectors of `dim` dimensions with no codes yet: add the codes of
    /// the tiers you need with [`Corpus::insert`] (or [`Corpus::with`]).
    pub fn new(rows: usize, dim: usize) -> Self {
        Corpus {
            rows,
            dim,
            tiers: Vec::new(),
            floats: None,
            valid: None,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Dimension of the vectors the codes encode (and queries must have).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Adds (or replaces) the codes of one tier: an error when they do not hold `rows`
    /// rows of `dim` dimensions.
    pub fn insert(&mut self, codes: Codes) -> Result<()> {
        let tier = codes.build(self.rows, self.dim)?;
        self.remove(tier.tier());
        self.tiers.push(tier);
        Ok(())
    }

    /// [`Corpus::insert`], by value.
    pub fn with(mut self, codes: Codes) -> Result<Self> {
        self.insert(codes)?;
        Ok(self)
    }

    /// Drops the codes of `tier` (the float vectors stay).
    pub fn remove(&mut self, tier: Tier) {
        self.tiers.retain(|t| t.tier() != tier);
    }

    /// Whether the corpus can serve `tier`.
    pub fn has(&self, tier: Tier) -> bool {
        match tier {
            Tier::Float => self.floats.is_some(),
            t => self.codes(t).is_some(),
        }
    }

    /// Sets where the float tier reads vectors from.
    pub fn set_floats(&mut self, floats: Box<dyn FloatRows>) {
        self.floats = Some(floats);
    }

    /// Drops the float vectors (the float tier is then unavailable).
    pub fn clear_floats(&mut self) {
        self.floats = None;
    }

    /// Where the float tier reads vectors from.
    pub fn floats(&self) -> Option<&dyn FloatRows> {
        self.floats.as_deref()
    }

    /// Marks the rows that may be returned (`false`: a null vector); `None`: all.
    pub fn set_valid(&mut self, valid: Option<Vec<bool>>) -> Result<()> {
        if let Some(v) = &valid {
            if v.len() != self.rows {
                return Err(Error::bad_argument(
                    "valid",
                    format!(
                        "the validity holds {} rows, the corpus {}",
                        v.len(),
                        self.rows
                    ),
                ));
            }
        }
        self.valid = valid.filter(|v| v.iter().any(|ok| !ok));
        Ok(())
    }

    /// Which rows may be returned (`None`: all).
    pub fn valid(&self) -> Option<&[bool]> {
        self.valid.as_deref()
    }

    /// The float tier over the corpus' float rows (checked present before a chain runs).
    fn float_tier(&self) -> FloatTier<'_> {
        FloatTier {
            floats: self.floats().expect("checked"),
            dim: self.dim,
        }
    }

    pub(super) fn validity(&self) -> Valid<'_> {
        Valid(self.valid.as_deref())
    }

    fn codes(&self, tier: Tier) -> Option<&dyn TierCodes> {
        self.tiers
            .iter()
            .find(|t| t.tier() == tier)
            .map(|t| t.as_ref())
    }

    fn check(&self, chain: &[TierSpec]) -> Result<()> {
        match chain.iter().find(|s| !self.has(s.tier)) {
            Some(s) => Err(Error::Schema(format!(
                "the corpus has no {} codes for the {} tier",
                s.tier, s.tier
            ))),
            None => Ok(()),
        }
    }

    /// The top-`k` rows for each query (`queries` row-major, `dim` per query), best first.
    ///
    /// Errors: `k` outside `1..=rows` ([`Error::KOutOfRange`], with the maximum), a query
    /// holding a NaN or infinity ([`Error::NonFinite`], its row the query's number), a
    /// bound below [`MIN_EPS0`], a tier the corpus has no codes for.
    pub fn search(&self, queries: &[f32], k: usize, chain: &[TierSpec]) -> Result<Vec<Vec<Hit>>> {
        self.search_inner(queries, k, chain, None, &mut Vec::new())
    }

    /// [`Corpus::search`], also reporting per query how many rows each tier kept and whether
    /// the top-k is certified (`super::bound`).
    pub fn search_reported(
        &self,
        queries: &[f32],
        k: usize,
        chain: &[TierSpec],
    ) -> Result<(Vec<Vec<Hit>>, Vec<QueryReport>)> {
        let mut reports = Vec::new();
        let hits = self.search_inner(queries, k, chain, None, &mut reports)?;
        Ok((hits, reports))
    }

    /// [`Corpus::search`], also returning the candidate rows each tier kept: `trace[t][q]`
    /// holds the rows tier `t` passed on for query `q` (for the last tier, its top-k), best
    /// first. The recall report attributes the recall lost to each tier with it.
    #[allow(clippy::type_complexity)]
    pub fn search_traced(
        &self,
        queries: &[f32],
        k: usize,
        chain: &[TierSpec],
    ) -> Result<(Vec<Vec<Hit>>, Vec<Vec<Vec<u32>>>)> {
        let mut trace = Vec::new();
        let hits = self.search_inner(queries, k, chain, Some(&mut trace), &mut Vec::new())?;
        Ok((hits, trace))
    }

    fn search_inner(
        &self,
        queries: &[f32],
        k: usize,
        chain: &[TierSpec],
        mut trace: Option<&mut Vec<Vec<Vec<u32>>>>,
        reports: &mut Vec<QueryReport>,
    ) -> Result<Vec<Vec<Hit>>> {
        if chain.is_empty() {
            return Err(Error::bad_argument("tiers", "empty tier chain"));
        }
        self.check(chain)?;
        if self.dim == 0 || !queries.len().is_multiple_of(self.dim) {
            return Err(Error::DimensionMismatch {
                context: "queries".into(),
                expected: self.dim,
                found: if self.dim == 0 {
                    queries.len()
                } else {
                    queries.len() % self.dim
                },
            });
        }
        // k is a request for k rows: more than the corpus holds cannot be answered (nor its
        // top-k certified), so it is refused rather than cut. No tier keeps more rows than
        // the corpus has, whatever the factors say: sizes the user controls never reach an
        // allocation uncapped.
        if k == 0 || k > self.rows {
            return Err(Error::KOutOfRange { k, max: self.rows });
        }
        // A bound narrower than the certifying floor (see `MIN_EPS0`) is refused, however
        // the chain was built.
        if let Some(s) = chain
            .iter()
            .find(|s| s.bound.is_some_and(|e| !(e.is_finite() && e >= MIN_EPS0)))
        {
            return Err(Error::bad_argument(
                "tier",
                format!(
                    "tier {s}: the bound's confidence eps0 must be a finite number >= {MIN_EPS0}"
                ),
            ));
        }
        // A NaN or infinite query would score every row NaN (ranked first, or certified).
        if let Some(i) = queries.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                row: i / self.dim,
                dim: i % self.dim,
                value: queries[i] as f64,
            });
        }
        // A multi-bit RaBitQ first tier runs behind the 1-bit table scan pruning by its bound
        // (at PREFILTER_EPS0) for as many rows as the tier keeps; the prefilter's own entry
        // is dropped from the trace and the reports.
        if let Some(first) = chain.first() {
            if matches!(first.tier, Tier::Rabitq(b) if b.get() > 1)
                && self.has(Tier::Rabitq(RabitqBits::ONE))
            {
                let mut run = Vec::with_capacity(chain.len() + 1);
                run.push(TierSpec {
                    tier: Tier::Rabitq(RabitqBits::ONE),
                    factor: if chain.len() > 1 { first.factor } else { 1 },
                    bound: Some(PREFILTER_EPS0),
                });
                run.extend_from_slice(chain);
                let mut t = trace.as_ref().map(|_| Vec::new());
                let mut r = Vec::new();
                let hits = self.search_inner(queries, k, &run, t.as_mut(), &mut r)?;
                if let (Some(all), Some(mut t)) = (trace, t) {
                    t.remove(0);
                    *all = t;
                }
                reports.extend(r.into_iter().map(|mut q| {
                    q.kept.remove(0);
                    q
                }));
                return Ok(hits);
            }
        }
        // A bound keeps a number of rows that depends on the codes' error: budget for many.
        let most = chain
            .iter()
            .map(|s| match s.bound {
                Some(_) => k.saturating_mul(64).max(4096).min(self.rows),
                None => k.saturating_mul(s.factor).min(self.rows),
            })
            .max()
            .unwrap_or(k)
            .max(1);
        // Candidates of a block of queries are held at once: blocks of queries keep them
        // within CANDIDATE_BUDGET_BYTES (at least one scan group per block).
        let per_query = most * std::mem::size_of::<(u32, f32)>() * 4;
        let block = (CANDIDATE_BUDGET_BYTES / per_query).max(
            self.tiers
                .iter()
                .map(|t| t.query_group())
                .max()
                .unwrap_or(FLOAT_QUERY_GROUP),
        );
        let nq = queries.len() / self.dim;
        if nq <= block {
            return self.search_block(queries, k, chain, trace, reports);
        }
        let mut hits = Vec::with_capacity(nq);
        for qs in queries.chunks(block * self.dim) {
            let mut t = trace.as_ref().map(|_| Vec::new());
            hits.extend(self.search_block(qs, k, chain, t.as_mut(), reports)?);
            if let (Some(all), Some(t)) = (trace.as_deref_mut(), t) {
                if all.is_empty() {
                    *all = t;
                } else {
                    for (a, b) in all.iter_mut().zip(t) {
                        a.extend(b);
                    }
                }
            }
        }
        Ok(hits)
    }

    /// [`Corpus::search_inner`] over one block of queries (`k` already capped).
    fn search_block(
        &self,
        queries: &[f32],
        k: usize,
        chain: &[TierSpec],
        mut trace: Option<&mut Vec<Vec<Vec<u32>>>>,
        reports: &mut Vec<QueryReport>,
    ) -> Result<Vec<Vec<Hit>>> {
        let nq = queries.len() / self.dim;
        let keep = |i: usize| {
            if i + 1 == chain.len() {
                k
            } else {
                k.saturating_mul(chain[i].factor).min(self.rows)
            }
        };
        let valid_rows = self
            .valid
            .as_ref()
            .map_or(self.rows, |v| v.iter().filter(|&&x| x).count());
        // Per query: the largest upper bound a bound dropped, whether every drop so far was
        // by a bound, and the rows each tier kept.
        let mut pruned = vec![f32::NEG_INFINITY; nq];
        let mut by_bound = vec![true; nq];
        let mut kept: Vec<Vec<usize>> = vec![Vec::with_capacity(chain.len()); nq];
        // Tier 1: scan everything, in groups of queries sharing corpus blocks.
        let first = chain[0].tier;
        let valid = self.validity();
        let bounded = chain[0].bound.filter(|_| chain.len() > 1);
        let mut candidates: Vec<Vec<(u32, f32)>> = match (self.codes(first), bounded) {
            (Some(codes), Some(eps)) => {
                let b: Vec<Bounded> = queries
                    .par_chunks(self.dim * codes.query_group())
                    .map(|group| {
                        let kb = k.saturating_mul(chain[0].factor).min(self.rows);
                        codes.scan_bounded(group, kb, eps, valid).ok_or_else(|| {
                            Error::Internal(format!("the {first} tier has no error bound"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .flatten()
                    .collect();
                b.into_iter()
                    .zip(pruned.iter_mut())
                    .map(|(b, p)| {
                        *p = b.pruned_max;
                        b.kept
                    })
                    .collect()
            }
            (Some(codes), None) => queries
                .par_chunks(self.dim * codes.query_group())
                .flat_map_iter(|group| codes.scan(group, keep(0), valid))
                .collect(),
            (None, _) => queries
                .par_chunks(self.dim * FLOAT_QUERY_GROUP)
                .map(|group| self.float_tier().scan(self.rows, valid, group, keep(0)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect(),
        };
        if bounded.is_none() && chain.len() > 1 {
            for (b, c) in by_bound.iter_mut().zip(&candidates) {
                *b &= c.len() >= valid_rows;
            }
        }
        let mut record = |c: &[Vec<(u32, f32)>], last: bool| {
            for (n, v) in kept.iter_mut().zip(c) {
                n.push(if last { k.min(v.len()) } else { v.len() });
            }
            if let Some(t) = trace.as_deref_mut() {
                t.push(
                    c.iter()
                        .map(|v| {
                            let n = if last { k.min(v.len()) } else { v.len() };
                            v[..n].iter().map(|&(r, _)| r).collect()
                        })
                        .collect(),
                );
            }
        };
        record(&candidates, chain.len() == 1);
        let mut tier = first;
        // Further tiers rescore the candidates.
        for (i, spec) in chain.iter().enumerate().skip(1) {
            tier = spec.tier;
            let want = keep(i);
            let last = i + 1 == chain.len();
            let before: Vec<usize> = candidates.iter().map(Vec::len).collect();
            candidates = match spec.bound.filter(|_| !last) {
                _ if spec.tier == Tier::Float => {
                    self.float_tier().rescore(queries, &candidates, want)?
                }
                Some(eps) => {
                    let codes = self.codes(spec.tier).expect("checked");
                    let b: Vec<Bounded> = candidates
                        .par_iter()
                        .enumerate()
                        .map(|(q, cands)| {
                            let query = &queries[q * self.dim..(q + 1) * self.dim];
                            let score = codes.bounded_scorer(query, eps).ok_or_else(|| {
                                Error::Internal(format!(
                                    "the {} tier has no error bound",
                                    spec.tier
                                ))
                            })?;
                            Ok(Bounded::select(
                                cands.iter().map(|&(r, _)| {
                                    let (e, h) = score(r);
                                    (r, e, h)
                                }),
                                k.saturating_mul(spec.factor),
                            ))
                        })
                        .collect::<Result<_>>()?;
                    b.into_iter()
                        .zip(pruned.iter_mut())
                        .map(|(b, p)| {
                            *p = p.max(b.pruned_max);
                            b.kept
                        })
                        .collect()
                }
                None => candidates
                    .par_iter()
                    .enumerate()
                    .map(|(q, cands)| {
                        let query = &queries[q * self.dim..(q + 1) * self.dim];
                        let mut top = TopK::new(want);
                        let scorer = self.codes(spec.tier).expect("checked").scorer(query);
                        for &(row, _) in cands {
                            top.push(scorer(row), row);
                        }
                        top.into_sorted()
                    })
                    .collect(),
            };
            if !last && spec.bound.is_none() {
                // A fixed factor that dropped rows cannot certify what it dropped.
                for (b, (n, c)) in by_bound.iter_mut().zip(before.iter().zip(&candidates)) {
                    *b &= c.len() >= *n;
                }
            }
            record(&candidates, last);
        }
        debug_assert_eq!(candidates.len(), nq);
        // Certify against the last tier's estimator (see `super::bound`).
        let last_codes = self.codes(tier);
        for (q, c) in candidates.iter().enumerate() {
            let query = &queries[q * self.dim..(q + 1) * self.dim];
            let slack = match last_codes {
                None => Some(0.0),
                Some(codes) => codes.slack(query),
            };
            let certified = by_bound[q]
                && slack.is_some_and(|s| {
                    pruned[q] == f32::NEG_INFINITY
                        || (c.len() >= k && k > 0 && pruned[q] + s < c[k - 1].1)
                });
            reports.push(QueryReport {
                kept: std::mem::take(&mut kept[q]),
                certified,
            });
        }
        Ok(candidates
            .into_iter()
            .map(|c| {
                // The binary tier keeps tied rows beyond its count: the answer is the top k.
                c.into_iter()
                    .take(k)
                    .map(|(row, score)| Hit { row, score, tier })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::binary::BinaryCodec;
    use crate::codec::int8::Int8Codec;
    use crate::codec::tests::calibrate;
    use crate::kernels::float::dot;
    use crate::testutil::vectors_array;
    use crate::vectors::Vectors;

    fn corpus(rows: usize, dim: usize) -> (Corpus, Vec<f32>) {
        let a = vectors_array(rows, dim, 11, 0.0);
        let cal = calibrate(&a);
        let values = Vectors::try_new(&a).unwrap().values().to_vec();
        let i8c = Int8Codec::new(&cal);
        let mut i8codes = vec![0u8; values.len()];
        i8c.encode_slice(&values, &mut i8codes, 0x80).unwrap();
        let bc = BinaryCodec::new(dim);
        let mut bin = vec![0u8; rows * bc.width()];
        bc.encode_slice(&values, &mut bin).unwrap();
        let mut c = Corpus::new(rows, dim)
            .with(Codes::Binary(bin, bc))
            .unwrap()
            .with(Codes::Int8(
                i8codes.into_iter().map(|c| c as i8).collect(),
                i8c,
            ))
            .unwrap();
        c.set_floats(Box::new(InMemoryFloats {
            values: values.clone(),
            dim,
        }));
        (c, values)
    }

    fn exact(values: &[f32], q: &[f32], k: usize) -> Vec<u32> {
        let d = q.len();
        let mut s: Vec<(u32, f32)> = values
            .chunks_exact(d)
            .enumerate()
            .map(|(i, v)| (i as u32, dot(q, v)))
            .collect();
        s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        s.into_iter().take(k).map(|x| x.0).collect()
    }

    #[test]
    fn float_chain_is_exact_and_tiers_are_labelled() {
        let (c, values) = corpus(5000, 33);
        let queries = Vectors::try_new(&vectors_array(20, 33, 99, 0.0))
            .unwrap()
            .values()
            .to_vec();
        let res = c
            .search(&queries, 10, &TierSpec::parse_chain("float").unwrap())
            .unwrap();
        for (q, hits) in res.iter().enumerate() {
            let want = exact(&values, &queries[q * 33..(q + 1) * 33], 10);
            assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), want);
            assert!(hits.iter().all(|h| h.tier == Tier::Float));
        }
        // When the coarse tiers keep every row, the float tier's answer is exact.
        let res2 = c
            .search(
                &queries,
                10,
                &TierSpec::parse_chain("binary:500,int8:500,float").unwrap(),
            )
            .unwrap();
        assert_eq!(res, res2);
        // Scores are sorted best first.
        for hits in &res2 {
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }

    #[test]
    fn int8_alone_ranks_by_the_dequantized_dot_product() {
        let (c, values) = corpus(3000, 16);
        // The same codes as the corpus', decoded.
        let codec = Int8Codec::new(&calibrate(&vectors_array(3000, 16, 11, 0.0)));
        let mut bytes = vec![0u8; values.len()];
        codec.encode_slice(&values, &mut bytes, 0x80).unwrap();
        let mut dec = vec![0f32; bytes.len()];
        codec.decode_slice(&bytes, &mut dec, 0x80);
        let queries = Vectors::try_new(&vectors_array(5, 16, 3, 0.0))
            .unwrap()
            .values()
            .to_vec();
        let res = c
            .search(&queries, 7, &TierSpec::parse_chain("int8").unwrap())
            .unwrap();
        for (q, hits) in res.iter().enumerate() {
            let want = exact(&dec, &queries[q * 16..(q + 1) * 16], 7);
            let got: Vec<u32> = hits.iter().map(|h| h.row).collect();
            // Equal up to float rounding of near-ties.
            let same = got.iter().filter(|r| want.contains(r)).count();
            assert!(same >= 6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn int4_and_f16_alone_rank_by_their_decoded_dot_product() {
        let (mut c, values) = corpus(3000, 16);
        let a = vectors_array(3000, 16, 11, 0.0);
        let i4 = crate::Int4Codec::new(&calibrate(&a));
        let mut codes = vec![0u8; 3000 * i4.width()];
        i4.encode_slice(&values, &mut codes).unwrap();
        let mut dec = vec![0f32; values.len()];
        i4.decode_slice(&codes, &mut dec);
        c.insert(Codes::Int4(codes, i4)).unwrap();
        c.insert(Codes::F16(
            values.iter().map(|&x| half::f16::from_f32(x)).collect(),
        ))
        .unwrap();
        let h: Vec<f32> = values
            .iter()
            .map(|&x| half::f16::from_f32(x).to_f32())
            .collect();
        // 70 queries: more than one 64-query tile of the blocked scan.
        let queries = Vectors::try_new(&vectors_array(70, 16, 3, 0.0))
            .unwrap()
            .values()
            .to_vec();
        for (chain, truth) in [("int4", &dec), ("f16", &h)] {
            let res = c
                .search(&queries, 7, &TierSpec::parse_chain(chain).unwrap())
                .unwrap();
            assert_eq!(res.len(), 70);
            for (q, hits) in res.iter().enumerate() {
                let want = exact(truth, &queries[q * 16..(q + 1) * 16], 7);
                let got: Vec<u32> = hits.iter().map(|h| h.row).collect();
                // Equal up to float rounding of near-ties.
                let same = got.iter().filter(|r| want.contains(r)).count();
                assert!(same >= 6, "{chain}: {got:?} vs {want:?}");
                // Scores are the dot products with the decoded vectors.
                let r = hits[0].row as usize;
                let dot: f32 = queries[q * 16..(q + 1) * 16]
                    .iter()
                    .zip(&truth[r * 16..(r + 1) * 16])
                    .map(|(a, b)| a * b)
                    .sum();
                assert!((hits[0].score - dot).abs() <= 1e-4 * (1.0 + dot.abs()));
            }
        }
    }

    #[test]
    fn null_rows_are_never_returned_by_any_tier() {
        let (mut c, _) = corpus(200, 16);
        c.set_valid(Some((0..200).map(|r| r % 2 == 0).collect()))
            .unwrap();
        let queries = Vectors::try_new(&vectors_array(4, 16, 5, 0.0))
            .unwrap()
            .values()
            .to_vec();
        for chain in ["float", "int8", "binary", "binary:3,int8:2,float"] {
            let res = c
                .search(&queries, 10, &TierSpec::parse_chain(chain).unwrap())
                .unwrap();
            for hits in &res {
                assert_eq!(hits.len(), 10, "{chain}");
                assert!(hits.iter().all(|h| h.row % 2 == 0), "{chain}: {hits:?}");
            }
        }
    }

    #[test]
    fn chains_parse_and_missing_tiers_are_errors() {
        let c = TierSpec::parse_chain("binary:8,int8:2,float").unwrap();
        assert_eq!(
            c.iter().map(|s| (s.tier, s.factor)).collect::<Vec<_>>(),
            vec![(Tier::Binary, 8), (Tier::Int8, 2), (Tier::Float, 1)]
        );
        for bad in ["", "binary,int8", "int8:2", "binary:0,int8", "bits:2,int8"] {
            assert_err!(
                TierSpec::parse_chain(bad),
                crate::Error::BadArgument { .. },
                "{bad}"
            );
        }
        let (mut corpus, _) = corpus(10, 8);
        corpus.clear_floats();
        assert_err!(
            corpus.search(
                &[0.0; 8],
                3,
                &TierSpec::parse_chain("int8:2,float").unwrap()
            ),
            crate::Error::Schema(_)
        );
        assert_err!(
            corpus.search(&[0.0; 8], 3, &TierSpec::parse_chain("int4").unwrap()),
            crate::Error::Schema(_)
        );
    }
}
