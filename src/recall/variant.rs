//! One measured variant of the corpus (all dimensions, or a Matryoshka prefix): its
//! calibration, its queries, its codes and the recall of every chain measured on it.
//!
//! The float vectors stay where the [`VectorSource`] keeps them (Parquet for the CLI): the
//! calibration and the codes are computed by streaming them, and the float tier reads its
//! candidate rows. Codes are encoded when a chain first needs them and held within a memory
//! budget: when a chain needs a scheme that does not fit, the schemes used least recently
//! (and not needed by that chain) are dropped, and encoded again if a later chain needs
//! them. Every code is a function of its row and the calibration, so a re-encoded scheme is
//! identical and the measured recall does not depend on the budget.

use crate::search::RabitqBits;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{FixedSizeListArray, Float32Array};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::config::{chain_string, Config, RecallOptions};
use super::model::{ConfigResult, RecallStat, TierLoss};
use super::source::{prefix, scan_prefix, VectorSource, SCAN_ROWS};
use super::truth::GroundTruth;
use crate::calibration::{Calibration, CalibrationMethod};
use crate::codec::binary::BinaryThreshold;
use crate::codec::rabitq::RabitqCodec;
use crate::codec::rabitq_ex::RabitqExCodec;
use crate::codec::scheme::{CodeParams, Scheme, SchemeCodec};
use crate::error::{Error, Result};
use crate::search::layout::columns_of;
use crate::search::{Codes, Corpus, Tier, TierSpec};
use crate::stats::{Stats, StatsOptions};

/// Bytes of one vector's code for a tier: its code columns' widths under `params`
/// (multi-bit RaBitQ: the sign bits with their factors and the extra bits with theirs), or
/// the float vector.
pub(crate) fn tier_bytes(tier: Tier, params: &CodeParams) -> usize {
    let mut p = *params;
    if let Tier::Rabitq(b) = tier {
        p.rabitq_bits = b.get();
    }
    match tier {
        Tier::Float => 4 * p.dims,
        t => columns_of(t).into_iter().map(|(s, _)| s.width(&p)).sum(),
    }
}

/// The calibration of `source` (cut to `keep` dimensions) from statistics over every valid
/// row, streamed.
pub(crate) fn calibrate(
    source: &dyn VectorSource,
    keep: Option<usize>,
    range: CalibrationMethod,
    medians: bool,
) -> Result<Calibration> {
    let dims = keep.unwrap_or(source.dim());
    let opts = if range.needs_sketch() || medians {
        StatsOptions::default()
    } else {
        StatsOptions::moments_only()
    };
    let valid = source.valid();
    let mut stats = Stats::new(dims, &opts);
    scan_prefix(source, keep, SCAN_ROWS, &mut |first, values| {
        let n = values.len() / dims;
        let nulls = valid.map(|v| NullBuffer::from(&v[first..first + n]));
        stats.update(&vectors_array(values.to_vec(), dims, nulls))
    })?;
    Calibration::from_stats(&stats, range)
}

/// Row-major `values` (`dim` per row) as a vector column.
pub(crate) fn vectors_array(
    values: Vec<f32>,
    dim: usize,
    nulls: Option<NullBuffer>,
) -> FixedSizeListArray {
    FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dim as i32,
        Arc::new(Float32Array::new(ScalarBuffer::from(values), None)),
        nulls,
    )
}

/// One encoded variant of the data (all dimensions or a prefix).
pub(crate) struct Variant {
    /// Recall per query of (chain, k) already measured.
    memo: HashMap<(String, usize), Vec<f64>>,
    /// Mean rows each tier kept, per (chain, k) measured.
    kept_memo: HashMap<(String, usize), Vec<f64>>,
    /// Encoded dimensions.
    pub dims: usize,
    /// The prefix kept (None: every dimension).
    keep: Option<usize>,
    source: Arc<dyn VectorSource>,
    cal: Calibration,
    /// The corpus, with the codes of the schemes in `held`.
    pub corpus: Corpus,
    /// Bytes of codes held at most (unless one chain alone needs more).
    budget: usize,
    /// Schemes whose codes are held, least recently used first.
    held: Vec<Tier>,
    /// What the codes are made under (the recipe's threshold, rotation ...; `dims` encoded).
    params: CodeParams,
    rabitq_groups: usize,
    queries: Vec<f32>,
    /// Each query's own corpus row, never returned (queries sampled from the corpus).
    exclude: Option<Vec<u32>>,
}

impl Variant {
    /// The variant of `source` on its first `dims` dimensions (all when None), calibrated
    /// with `cal` or, without one, on the variant's own rows with the options' range; codes
    /// are made under the options' code parameters and held within their budget.
    pub(crate) fn new(
        source: &Arc<dyn VectorSource>,
        queries: &[f32],
        exclude: Option<&[u32]>,
        dims: Option<usize>,
        cal: Option<&Calibration>,
        options: &RecallOptions,
    ) -> Result<(Self, Calibration)> {
        let dim = source.dim();
        let keep = match dims {
            Some(d) if d == 0 || d > dim => {
                return Err(Error::BadArgument {
                    name: "dims".into(),
                    problem: format!("a prefix of {d} dimensions of {dim}-dimensional vectors"),
                })
            }
            Some(d) if d < dim => Some(d),
            _ => None,
        };
        let d = keep.unwrap_or(dim);
        let queries = match keep {
            Some(k) => prefix(queries, dim, k)?,
            None => queries.to_vec(),
        };
        let cal = match cal {
            Some(c) => c.clone(),
            None => calibrate(
                source.as_ref(),
                keep,
                options.range,
                options.codes.threshold == BinaryThreshold::Median,
            )?,
        };
        let mut corpus = Corpus::new(source.rows(), d);
        corpus.set_floats(source.floats(keep));
        corpus.set_valid(source.valid().map(<[bool]>::to_vec))?;
        let params = CodeParams {
            dims: d,
            shape: cal.shape(),
            ..options.codes
        };
        let rabitq_groups = RabitqCodec::new(&cal, params.rotation).groups();
        Ok((
            Variant {
                memo: HashMap::new(),
                kept_memo: HashMap::new(),
                dims: d,
                keep,
                source: source.clone(),
                cal: cal.clone(),
                corpus,
                budget: options.code_budget,
                held: Vec::new(),
                params,
                rabitq_groups,
                queries,
                exclude: exclude.map(<[u32]>::to_vec),
            },
            cal,
        ))
    }

    /// Bytes the codes of `tier` take in memory (with their scan layout).
    fn held_bytes(&self, tier: Tier) -> usize {
        let rows = self.corpus.rows();
        rows * match tier {
            // The codes and their transposed copy.
            Tier::Binary => 2 * self.dims.div_ceil(8),
            // The codes, their patterns (one byte per 4 dimensions) and two factors.
            Tier::Rabitq(RabitqBits::ONE) => {
                tier_bytes(tier, &self.params) + self.rabitq_groups + 8
            }
            // Both columns and a bound width per row.
            t @ Tier::Rabitq(_) => tier_bytes(t, &self.params) + 4,
            t => tier_bytes(t, &self.params),
        }
    }

    fn drop_codes(&mut self, tier: Tier) {
        self.corpus.remove(tier);
        self.held.retain(|&t| t != tier);
    }

    /// Makes sure the codes `chain` reads are held: encodes the missing ones in one pass over
    /// the source, after dropping the least recently used others as the budget requires.
    fn ensure(&mut self, chain: &[TierSpec]) -> Result<()> {
        let mut need: Vec<Tier> = Vec::new();
        for s in chain {
            // A multi-bit RaBitQ tier scans behind the 1-bit codes' table scan (the corpus
            // prefilters with them when it has them).
            let with = match s.tier {
                Tier::Rabitq(b) if b.get() > 1 => vec![Tier::Rabitq(RabitqBits::ONE), s.tier],
                Tier::Float => vec![],
                t => vec![t],
            };
            for t in with {
                if !need.contains(&t) {
                    need.push(t);
                }
            }
        }
        // Most recently used last.
        for t in &need {
            if let Some(i) = self.held.iter().position(|h| h == t) {
                let t = self.held.remove(i);
                self.held.push(t);
            }
        }
        let missing: Vec<Tier> = need
            .iter()
            .copied()
            .filter(|t| !self.held.contains(t))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let add: usize = missing.iter().map(|&t| self.held_bytes(t)).sum();
        let mut total: usize = self.held.iter().map(|&t| self.held_bytes(t)).sum();
        while total + add > self.budget {
            let Some(&old) = self.held.iter().find(|t| !need.contains(t)) else {
                break;
            };
            total -= self.held_bytes(old);
            tracing::debug!(tier = %old, "codes dropped to stay within the memory budget");
            self.drop_codes(old);
        }
        self.encode(&missing)?;
        self.held.extend(missing);
        Ok(())
    }

    /// Encodes the codes of `tiers` in one pass over the source.
    fn encode(&mut self, tiers: &[Tier]) -> Result<()> {
        let t0 = Instant::now();
        let (rows, d, cal) = (self.corpus.rows(), self.dims, &self.cal);
        let has = |t: Tier| tiers.contains(&t);
        // Every codec from the scheme table, under the variant's parameters.
        let codec = |s: Scheme, bits: u8| {
            let p = CodeParams {
                rabitq_bits: bits,
                ..self.params
            };
            s.codec(&p, Some(cal))
        };
        let mut bin = None;
        if has(Tier::Binary) {
            let SchemeCodec::Binary(c) = codec(Scheme::Binary, 1)? else {
                unreachable!("the binary codec")
            };
            let w = c.width();
            bin = Some((c, vec![0u8; rows * w], w));
        }
        let mut i8s = None;
        if has(Tier::Int8) {
            let SchemeCodec::Int8(c, _) = codec(Scheme::Int8, 1)? else {
                unreachable!("the int8 codec")
            };
            i8s = Some((c, vec![0u8; rows * d]));
        }
        let mut i4s = None;
        if has(Tier::Int4) {
            let SchemeCodec::Int4(c) = codec(Scheme::Int4, 1)? else {
                unreachable!("the int4 codec")
            };
            let w = c.width();
            i4s = Some((c, vec![0u8; rows * w], w));
        }
        let mut h16 = None;
        if has(Tier::F16) {
            let SchemeCodec::Half(c) = codec(Scheme::F16, 1)? else {
                unreachable!("the f16 codec")
            };
            h16 = Some((c, vec![0u16; rows * d]));
        }
        let mut rqx: Vec<(RabitqExCodec, Vec<u8>, Vec<u8>)> = Vec::new();
        for t in tiers {
            if let Tier::Rabitq(b) = *t {
                if b.get() > 1 {
                    let SchemeCodec::RabitqEx(c) = codec(Scheme::RabitqEx, b.get())? else {
                        unreachable!("the extra-bits codec")
                    };
                    let (w1, w2) = (c.base().width(), c.width());
                    rqx.push((c, vec![0u8; rows * w1], vec![0u8; rows * w2]));
                }
            }
        }
        let mut rq = None;
        if has(Tier::Rabitq(RabitqBits::ONE)) {
            let SchemeCodec::Rabitq(c) = codec(Scheme::Rabitq, 1)? else {
                unreachable!("the rabitq codec")
            };
            let w = c.width();
            rq = Some((c, vec![0u8; rows * w], w));
        }
        scan_prefix(
            self.source.as_ref(),
            self.keep,
            SCAN_ROWS,
            &mut |first, values| {
                let n = values.len() / d;
                let bad = |r: usize| Error::BadValue {
                    row: (first + r) as u64,
                    problem: "a NaN or infinity".into(),
                };
                if let Some((c, out, w)) = &mut bin {
                    c.encode_slice(values, &mut out[first * *w..(first + n) * *w])
                        .map_err(bad)?;
                }
                if let Some((c, out)) = &mut i8s {
                    c.encode_slice(values, &mut out[first * d..(first + n) * d], 0x80)
                        .map_err(bad)?;
                }
                if let Some((c, out, w)) = &mut i4s {
                    c.encode_slice(values, &mut out[first * *w..(first + n) * *w])
                        .map_err(bad)?;
                }
                if let Some((c, out)) = &mut h16 {
                    c.encode_slice(values, &mut out[first * d..(first + n) * d])
                        .map_err(bad)?;
                }
                if let Some((c, out, w)) = &mut rq {
                    c.encode_slice(values, &mut out[first * *w..(first + n) * *w])
                        .map_err(bad)?;
                }
                for (c, s, e) in &mut rqx {
                    let (w1, w2) = (c.base().width(), c.width());
                    c.encode_slice(
                        values,
                        &mut s[first * w1..(first + n) * w1],
                        &mut e[first * w2..(first + n) * w2],
                    )
                    .map_err(bad)?;
                }
                Ok(())
            },
        )?;
        let c = &mut self.corpus;
        if let Some((codec, codes, _)) = bin {
            c.insert(Codes::Binary(codes, codec))?;
        }
        if let Some((codec, codes)) = i8s {
            // In place: u8 and i8 share a layout.
            c.insert(Codes::Int8(
                codes.into_iter().map(|x| x as i8).collect(),
                codec,
            ))?;
        }
        if let Some((codec, codes, _)) = i4s {
            c.insert(Codes::Int4(codes, codec))?;
        }
        if let Some((_, h)) = h16 {
            c.insert(Codes::F16(
                h.into_iter().map(half::f16::from_bits).collect(),
            ))?;
        }
        if let Some((codec, codes, _)) = rq {
            c.insert(Codes::Rabitq(codes.into(), codec))?;
        }
        for (codec, signs, extra) in rqx {
            c.insert(Codes::RabitqEx {
                signs: signs.into(),
                extra,
                codec,
            })?;
        }
        tracing::info!(
            ?tiers,
            dims = d,
            seconds = t0.elapsed().as_secs_f64(),
            "codes encoded"
        );
        Ok(())
    }

    /// Recall@k per query of a chain, measured once.
    pub(crate) fn recall_of(
        &mut self,
        tiers: &[TierSpec],
        k: usize,
        truth: &GroundTruth,
    ) -> Result<Vec<f64>> {
        let key = (chain_string(tiers), k);
        if let Some(v) = self.memo.get(&key) {
            return Ok(v.clone());
        }
        let (pq, _, _) = self.measure(tiers, k, truth)?;
        Ok(pq)
    }

    /// Recall@k per query, and per tier the candidate recall, for one chain at one k.
    pub(crate) fn measure(
        &mut self,
        tiers: &[TierSpec],
        k: usize,
        truth: &GroundTruth,
    ) -> Result<(Vec<f64>, Vec<TierLoss>, f64)> {
        self.ensure(tiers)?;
        let t = Instant::now();
        // A query sampled from the corpus finds its own row: ask for one more and drop it.
        let extra = self.exclude.is_some() as usize;
        // (At most every row: the search refuses a k beyond the corpus.)
        let ask = (k + extra).min(self.corpus.rows());
        let (mut hits, mut trace) = self.corpus.search_traced(&self.queries, ask, tiers)?;
        let secs = t.elapsed().as_secs_f64();
        if let Some(ex) = &self.exclude {
            for (q, h) in hits.iter_mut().enumerate() {
                h.retain(|h| h.row != ex[q]);
                h.truncate(k);
            }
            for tier in trace.iter_mut() {
                for (q, rows) in tier.iter_mut().enumerate() {
                    rows.retain(|&r| r != ex[q]);
                }
            }
            if let Some(last) = trace.last_mut() {
                last.iter_mut().for_each(|r| r.truncate(k));
            }
        }
        let nq = hits.len();
        let sets: Vec<std::collections::HashSet<u32>> =
            (0..nq).map(|q| truth.rows(q, k).collect()).collect();
        let share = |q: usize, rows: &[u32]| -> f64 {
            let want = sets[q].len().max(1);
            rows.iter().filter(|r| sets[q].contains(r)).count() as f64 / want as f64
        };
        let per_query: Vec<f64> = hits
            .iter()
            .enumerate()
            .map(|(q, h)| share(q, &h.iter().map(|h| h.row).collect::<Vec<_>>()))
            .collect();
        self.memo
            .insert((chain_string(tiers), k), per_query.clone());
        // Rows each tier kept, on average (what a bound decided, query by query).
        let mean_kept: Vec<f64> = trace
            .iter()
            .map(|t| t.iter().map(Vec::len).sum::<usize>() as f64 / nq.max(1) as f64)
            .collect();
        self.kept_memo
            .insert((chain_string(tiers), k), mean_kept.clone());
        let mut above = 1.0;
        let loss = trace
            .iter()
            .zip(tiers)
            .enumerate()
            .map(|(i, (rows, spec))| {
                let r = (0..nq).map(|q| share(q, &rows[q])).sum::<f64>() / nq.max(1) as f64;
                let kept = if i + 1 == tiers.len() {
                    k
                } else if spec.bound.is_some() {
                    mean_kept[i].round() as usize
                } else {
                    k * spec.factor
                };
                let l = TierLoss {
                    tier: spec.tier.to_string(),
                    kept,
                    candidate_recall: r,
                    lost: above - r,
                };
                above = r;
                l
            })
            .collect();
        Ok((per_query, loss, nq as f64 / secs.max(1e-9)))
    }

    pub(crate) fn bytes_read(&self, tiers: &[TierSpec], k: usize) -> u64 {
        let b = |t: Tier| tier_bytes(t, &self.params);
        let mut total = (self.corpus.rows() * b(tiers[0].tier)) as u64;
        // A bound keeps what the codes' error leaves: the mean measured for this chain.
        let measured = self.kept_memo.get(&(chain_string(tiers), k));
        for i in 1..tiers.len() {
            let cands = match (tiers[i - 1].bound, measured) {
                (Some(_), Some(m)) => m[i - 1].round() as usize,
                _ => k * tiers[i - 1].factor,
            }
            .min(self.corpus.rows());
            total += (cands * b(tiers[i].tier)) as u64;
        }
        total
    }

    fn stored_bytes(&self, tiers: &[TierSpec]) -> usize {
        let mut seen = Vec::new();
        tiers
            .iter()
            .filter(|t| t.tier != Tier::Float)
            .filter(|t| {
                let new = !seen.contains(&t.tier);
                seen.push(t.tier);
                new
            })
            .map(|t| tier_bytes(t.tier, &self.params))
            .sum()
    }

    pub(crate) fn evaluate(
        &mut self,
        config: &Config,
        ks: &[usize],
        truth: &GroundTruth,
        dim: usize,
    ) -> Result<ConfigResult> {
        let kmax = *ks.iter().max().expect("ks");
        let mut recall = std::collections::BTreeMap::new();
        let mut loss = std::collections::BTreeMap::new();
        let mut qps = 0.0;
        for &k in ks {
            let (per_query, l, q) = self.measure(&config.tiers, k, truth)?;
            recall.insert(k, RecallStat::of(&per_query));
            loss.insert(k, l);
            if k == kmax {
                qps = q;
            }
        }
        let stored = self.stored_bytes(&config.tiers);
        Ok(ConfigResult {
            config: config.to_string(),
            tiers: chain_string(&config.tiers),
            dims: self.dims,
            recall,
            loss,
            bytes_per_vector: stored,
            compression: if stored > 0 {
                (4 * dim) as f64 / stored as f64
            } else {
                1.0
            },
            bytes_read_per_query: self.bytes_read(&config.tiers, kmax),
            queries_per_s: qps,
        })
    }
}
