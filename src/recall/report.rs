//! The recall report: every configuration's recall@k against exact search, the loss of each
//! tier, bytes and speed, the cheapest configuration meeting a target, and gates. This file
//! runs it ([`run_source`]); what it measures is in [`super::config`], its results in
//! [`super::model`], the tuner in `super::tune`, the rendering in `super::render`.

use crate::calibration::RangeShape;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::FixedSizeListArray;

use super::calibration_check::calibration_check;
use super::config::{default_sweep, Config, Queries, RecallOptions};
use super::model::{
    GateResult, GroundTruthInfo, RecallReport, RecallStat, Recommendation, REPORT_VERSION,
};
use super::source::{MemorySource, ScanRows, SliceRows, VectorSource, SCAN_ROWS};
use super::truth::{
    exact_topk_scan, exact_topk_scan_fingerprinted, read_cache, write_cache, Fingerprinter,
    GroundTruth,
};
use super::tune::{deploy_commands, pareto, tune_family, TUNE_FACTORS, TUNE_FAMILIES};
use super::variant::Variant;
use crate::error::{Error, Result};

/// Ground truth from the cache in `cache_dir` when it matches, computed (and cached)
/// otherwise.
pub fn ground_truth(
    corpus: &[f32],
    dim: usize,
    queries: &Queries,
    k: usize,
    valid: Option<&[bool]>,
    cache_dir: Option<&Path>,
) -> Result<(GroundTruth, GroundTruthInfo)> {
    let rows = SliceRows {
        values: corpus,
        dim,
        valid,
    };
    ground_truth_scan(&rows, queries, k, cache_dir)
}

/// [`ground_truth`] over a corpus read block by block: one pass (the fingerprint taken as
/// the scan goes), or, when the cache holds a ground truth, a pass for the fingerprint first
/// and the scan only if it does not match.
pub fn ground_truth_scan(
    corpus: &dyn ScanRows,
    queries: &Queries,
    k: usize,
    cache_dir: Option<&Path>,
) -> Result<(GroundTruth, GroundTruthInfo)> {
    let t = Instant::now();
    let dim = corpus.dim();
    let path = cache_dir.map(|d| d.join("ground_truth.parquet"));
    let exclude = queries.exclude.as_deref();
    let gt = match path.as_ref().filter(|p| p.exists()) {
        Some(p) => {
            let mut h = Fingerprinter::new(dim, k, corpus.rows() * dim, queries.values.len());
            corpus.scan(SCAN_ROWS, &mut |_, values| {
                h.corpus(values);
                Ok(())
            })?;
            let fp = h.finish(&queries.values, exclude);
            if let Some(gt) = read_cache(p, &fp)? {
                tracing::info!(path = %p.display(), "ground truth reused from the cache");
                return Ok((
                    gt,
                    GroundTruthInfo {
                        fingerprint: fp,
                        cached: true,
                        seconds: t.elapsed().as_secs_f64(),
                        queries_per_s: None,
                    },
                ));
            }
            exact_topk_scan(corpus, &queries.values, k, exclude, fp)?
        }
        None => exact_topk_scan_fingerprinted(corpus, &queries.values, k, exclude)?,
    };
    let fp = gt.fingerprint.clone();
    let secs = t.elapsed().as_secs_f64();
    if let Some(p) = &path {
        write_cache(&gt, p)?;
    }
    let nq = queries.values.len() / dim;
    Ok((
        gt,
        GroundTruthInfo {
            fingerprint: fp,
            cached: false,
            seconds: secs,
            queries_per_s: Some(nq as f64 / secs.max(1e-9)),
        },
    ))
}

/// Runs the report on `corpus` (row-major, `dim` per row; `valid[r]` false for null rows,
/// whose values must be zeros) against `queries`, caching the ground truth in `cache_dir`.
pub fn run(
    corpus: &[f32],
    dim: usize,
    valid: Option<&[bool]>,
    queries: &Queries,
    options: &RecallOptions,
    cache_dir: Option<&Path>,
) -> Result<RecallReport> {
    run_owned(corpus.to_vec(), dim, valid, queries, options, cache_dir)
}

/// [`run`] on a corpus the caller hands over (not copied).
pub fn run_owned(
    corpus: Vec<f32>,
    dim: usize,
    valid: Option<&[bool]>,
    queries: &Queries,
    options: &RecallOptions,
    cache_dir: Option<&Path>,
) -> Result<RecallReport> {
    if dim == 0 || corpus.is_empty() {
        return Err(Error::empty_input(
            "measure",
            "the corpus and the queries must not be empty",
        ));
    }
    let source = MemorySource::new(corpus, dim, valid.map(<[bool]>::to_vec))?;
    run_source(Arc::new(source), queries, options, cache_dir)
}

/// [`run`] on a corpus read in passes from `source` (e.g. [`super::source::ParquetSource`]):
/// memory holds the codes of the configurations being measured (within
/// [`RecallOptions::code_budget`]) and the queries, never the float vectors.
pub fn run_source(
    source: Arc<dyn VectorSource>,
    queries: &Queries,
    options: &RecallOptions,
    cache_dir: Option<&Path>,
) -> Result<RecallReport> {
    let dim = source.dim();
    let rows = source.rows();
    if dim == 0 || rows == 0 || queries.values.is_empty() {
        return Err(Error::empty_input(
            "measure",
            "the corpus and the queries must not be empty",
        ));
    }
    if !queries.values.len().is_multiple_of(dim) {
        return Err(Error::DimensionMismatch {
            context: "queries".into(),
            expected: dim,
            found: queries.values.len() % dim,
        });
    }
    let mut ks = options.ks.clone();
    ks.sort_unstable();
    ks.dedup();
    ks.retain(|&k| k > 0);
    if ks.is_empty() {
        return Err(Error::empty_input("measure", "no k to measure"));
    }
    let kmax = *ks.last().expect("non-empty");
    if kmax > rows {
        return Err(Error::bad_argument(
            "k",
            format!("recall@{kmax} needs at least {kmax} corpus rows; the corpus has {rows}"),
        ));
    }
    for c in options
        .configs
        .iter()
        .flatten()
        .chain(options.gates.iter().map(|g| &g.config))
    {
        if (0..c.tiers.len()).any(|i| kmax.checked_mul(c.factor_of(i)).is_none()) {
            return Err(Error::bad_argument(
                "configs",
                format!("configuration {c}: k x factors overflows"),
            ));
        }
    }
    let configs = options.configs.clone().unwrap_or_else(default_sweep);
    // Every prefix asked for, by --dims or by a configuration or gate naming one.
    let mut variants: Vec<Option<usize>> = vec![None];
    let named = configs
        .iter()
        .chain(options.gates.iter().map(|g| &g.config))
        .filter_map(|c| c.dims);
    for d in options.dims.iter().copied().chain(named) {
        if d == 0 || d > dim {
            return Err(Error::bad_argument(
                "dims",
                format!("prefix of {d} dimensions of {dim}-dimensional vectors"),
            ));
        }
        if d < dim && !variants.contains(&Some(d)) {
            variants.push(Some(d));
        }
    }
    for g in &options.gates {
        let name = g.config.to_string();
        if g.min.k > kmax && !configs.iter().any(|c| c.to_string() == name) {
            check_k(g.min.k, kmax)?;
        }
    }
    if let Some(t) = options.target {
        check_k(t.k, kmax)?;
    }
    let nq = queries.values.len() / dim;
    let (truth, gt_info) = ground_truth_scan(source.as_ref(), queries, kmax, cache_dir)?;
    // One variant at a time: its configurations, its gates, its tuning; then its codes go.
    let mut results = Vec::new();
    let mut gate_recall: Vec<Option<f64>> = vec![None; options.gates.len()];
    let mut best: Option<(u64, usize, String, f64)> = None;
    let mut full_cal = None;
    for &d in &variants {
        let (mut v, cal) = Variant::new(
            &source,
            &queries.values,
            queries.exclude.as_deref(),
            d,
            None,
            options,
        )?;
        let sweep_here = d.is_none() || options.dims.contains(&d.unwrap_or(0));
        let here: Vec<&Config> = configs
            .iter()
            .filter(|c| (c.dims.is_none() && sweep_here) || c.dims.filter(|&x| x < dim) == d)
            .collect();
        // Configurations on reshaped ranges (per tensor, symmetric) are measured on a
        // variant of their own, calibrated by reshaping this one's ranges, one shape at a
        // time after this variant's own.
        let mut shapes: Vec<Option<RangeShape>> = vec![None];
        let gated = options
            .gates
            .iter()
            .map(|g| &g.config)
            .filter(|c| c.dims.filter(|&x| x < dim) == d);
        for s in here.iter().copied().chain(gated).map(|c| c.shape) {
            if !shapes.contains(&s) {
                shapes.push(s);
            }
        }
        for shape in shapes {
            let mut shaped;
            let v = match shape {
                None => &mut v,
                Some(s) => {
                    (shaped, _) = Variant::new(
                        &source,
                        &queries.values,
                        queries.exclude.as_deref(),
                        d,
                        Some(&cal.with_shape(s)),
                        options,
                    )?;
                    &mut shaped
                }
            };
            for c in here.iter().filter(|c| c.shape == shape) {
                let mut c = (*c).clone();
                c.dims = d;
                tracing::info!(config = %c, "measuring");
                results.push(v.evaluate(&c, &ks, &truth, dim)?);
            }
            // Gates on this variant: measured configurations, or measured now.
            for (i, g) in options.gates.iter().enumerate() {
                if g.config.dims.filter(|&x| x < dim) != d || g.config.shape != shape {
                    continue;
                }
                let name = g.config.to_string();
                gate_recall[i] = Some(
                    match results
                        .iter()
                        .find(|r| r.config == name)
                        .and_then(|r| r.recall.get(&g.min.k))
                    {
                        Some(s) => s.mean,
                        None => {
                            check_k(g.min.k, kmax)?;
                            RecallStat::of(&v.recall_of(&g.config.tiers, g.min.k, &truth)?).mean
                        }
                    },
                );
            }
        }
        if d.is_none() {
            full_cal = Some(cal);
        }
        // Tuning: the cheapest configuration meeting the target, over every variant.
        if let Some(t) = options.target {
            for fam in TUNE_FAMILIES {
                if let Some((cfg, r)) = tune_family(&mut v, fam, t, &truth)? {
                    let mut cfg = cfg;
                    cfg.dims = d;
                    let cost = v.bytes_read(&cfg.tiers, t.k);
                    let cands: usize = (0..cfg.tiers.len().saturating_sub(1))
                        .map(|i| t.k * cfg.factor_of(i))
                        .sum();
                    let better = best
                        .as_ref()
                        .is_none_or(|(bc, bn, _, _)| (cost, cands) < (*bc, *bn));
                    if better {
                        best = Some((cost, cands, cfg.to_string(), r));
                    }
                }
            }
        }
    }
    let mut gates = Vec::new();
    for (g, recall) in options.gates.iter().zip(gate_recall) {
        let name = g.config.to_string();
        let recall = recall.ok_or_else(|| {
            Error::bad_argument(
                "min_recall",
                format!(
                    "gate {name}: prefix {:?} not measured (add it to --dims)",
                    g.config.dims
                ),
            )
        })?;
        gates.push(GateResult {
            gate: format!("{name}={}@{}", g.min.recall, g.min.k),
            recall,
            passed: recall >= g.min.recall,
        });
    }
    let (recommendation, target_unmet) = match (options.target, best) {
        (None, _) => (None, None),
        (Some(t), Some((cost, cands, name, r))) => {
            let cfg = Config::parse(&name)?;
            (
                Some(Recommendation {
                    target: format!("{}@{}", t.recall, t.k),
                    config: name,
                    recall: r,
                    bytes_read_per_query: cost,
                    candidates: cands,
                    commands: deploy_commands(&cfg, t.k),
                }),
                None,
            )
        }
        (Some(t), None) => (
            None,
            Some(format!(
                "no configuration reaches recall@{} >= {} (oversampling up to {}x)",
                t.k,
                t.recall,
                TUNE_FACTORS[TUNE_FACTORS.len() - 1]
            )),
        ),
    };
    // Calibration on a sample.
    let calibration_check = match options.calibration_rows {
        None => None,
        Some(n) => Some(calibration_check(
            &source,
            queries,
            options,
            n,
            kmax.min(10),
            &truth,
            &results,
        )?),
    };
    let pareto = pareto(&results, kmax);
    let cal = full_cal.expect("full variant built");
    Ok(RecallReport {
        version: REPORT_VERSION,
        corpus_rows: rows,
        dim,
        queries: nq,
        sampled_queries: queries.exclude.is_some(),
        ks,
        ground_truth: gt_info,
        calibration: format!("{} (fingerprint {})", cal.method(), cal.fingerprint()),
        configs: results,
        pareto,
        recommendation,
        target_unmet,
        gates,
        calibration_check,
    })
}

fn check_k(k: usize, kmax: usize) -> Result<()> {
    if k > kmax {
        return Err(Error::bad_argument(
            "k",
            format!(
                "recall@{k} needs a ground truth of depth {k}: add it to --k (largest now {kmax})"
            ),
        ));
    }
    Ok(())
}

/// Values of `array` when it is a float32 vector column (for callers holding Arrow data).
pub fn values_of(array: &FixedSizeListArray) -> &[f32] {
    array.values().as_primitive::<Float32Type>().values()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::Calibration;
    use crate::calibration::RangeMethod;
    use crate::codec::binary::BinaryCodec;
    use crate::codec::int4::Int4Codec;
    use crate::codec::int8::Int8Codec;
    use crate::codec::rabitq::{RabitqCodec, Rotation};
    use crate::recall::truth::exact_topk;
    use crate::recall::{markdown, Gate, Target};
    use crate::search::tiered::InMemoryFloats;
    use crate::search::TierSpec;
    use crate::search::{Codes, Corpus};
    use crate::stats::{Stats, StatsOptions};

    /// A corpus with the codes a chain of binary, int8, int4 and RaBitQ tiers and the float
    /// tier read, built directly from the codecs (independently of the report's variants).
    fn own_corpus(values: &[f32], dim: usize) -> Corpus {
        let arr = super::super::variant::vectors_array(values.to_vec(), dim, None);
        let stats = Stats::compute(&arr, &StatsOptions::moments_only()).unwrap();
        let cal = Calibration::from_stats(&stats, RangeMethod::MinMax).unwrap();
        let rows = values.len() / dim;
        let mut c = Corpus::new(rows, dim);
        let bc = BinaryCodec::new(dim);
        let mut bits = vec![0u8; rows * bc.width()];
        bc.encode_slice(values, &mut bits).unwrap();
        c.insert(Codes::Binary(bits, bc)).unwrap();
        let i8c = Int8Codec::new(&cal);
        let mut codes = vec![0u8; rows * dim];
        i8c.encode_slice(values, &mut codes, 0x80).unwrap();
        c.insert(Codes::Int8(
            codes.into_iter().map(|x| x as i8).collect(),
            i8c,
        ))
        .unwrap();
        let i4c = Int4Codec::new(&cal);
        let mut n4 = vec![0u8; rows * i4c.width()];
        i4c.encode_slice(values, &mut n4).unwrap();
        c.insert(Codes::Int4(n4, i4c)).unwrap();
        let rq = RabitqCodec::new(&cal, Rotation::default());
        let mut r = vec![0u8; rows * rq.width()];
        rq.encode_slice(values, &mut r).unwrap();
        c.insert(Codes::Rabitq(r.into(), rq)).unwrap();
        c.set_floats(Box::new(InMemoryFloats {
            values: values.to_vec(),
            dim,
        }));
        c
    }

    fn data(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        let mut v: Vec<f32> = (0..rows * dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        for r in v.chunks_exact_mut(dim) {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            r.iter_mut().for_each(|x| *x /= n);
        }
        v
    }

    #[test]
    fn parses_configs_targets_and_gates() {
        let c = Config::parse("binary:4,int8:2,float@128").unwrap();
        assert_eq!(c.to_string(), "binary:4,int8:2,float@128");
        assert_eq!(c.dims, Some(128));
        let g: Gate = "binary:4,int8=0.95@10".parse().unwrap();
        assert_eq!(
            g.min,
            Target {
                recall: 0.95,
                k: 10
            }
        );
        assert_eq!(g.config.to_string(), "binary:4,int8");
        assert_err!("0.95".parse::<Target>(), crate::Error::BadArgument { .. });
        assert_err!("1.5@10".parse::<Target>(), crate::Error::BadArgument { .. });
        assert_err!(
            "binary:4,int8".parse::<Gate>(),
            crate::Error::BadArgument { .. }
        );
        assert_err!(
            Config::parse("binary:4,int8@x"),
            crate::Error::BadArgument { .. }
        );
    }

    #[test]
    fn queries_from_the_corpus_give_float_recall_one_and_the_report_is_consistent() {
        let (dim, rows) = (32, 2000);
        let corpus = data(rows, dim, 3);
        // Queries identical to corpus rows, not excluded: the exact top-1 is the row itself.
        let picks: Vec<usize> = (0..40).map(|i| i * 47).collect();
        let qs: Vec<f32> = picks
            .iter()
            .flat_map(|&r| corpus[r * dim..(r + 1) * dim].to_vec())
            .collect();
        let opts = RecallOptions {
            ks: vec![1, 10],
            configs: Some(
                [
                    "float",
                    "int8",
                    "binary:4,int8",
                    "binary:2,int8:2,float",
                    "int8@16",
                ]
                .iter()
                .map(|c| Config::parse(c).unwrap())
                .collect(),
            ),
            target: Some(Target { recall: 0.9, k: 10 }),
            gates: vec![
                "int8=0.5@10".parse().unwrap(),
                "binary:1,int8=0.999@10".parse().unwrap(),
            ],
            ..Default::default()
        };
        let q = Queries {
            values: qs,
            exclude: None,
        };
        let r = run(&corpus, dim, None, &q, &opts, None).unwrap();
        let float = r.config("float").unwrap();
        assert_eq!(float.recall[&1].mean, 1.0);
        // A configuration on a prefix is measured on it, and only there.
        assert_eq!(r.config("int8@16").unwrap().dims, 16);
        assert_eq!(r.config("int8@16").unwrap().bytes_per_vector, 16);
        assert_eq!(r.configs.len(), 5);
        assert_eq!(float.recall[&10].mean, 1.0);
        // Loss attribution, checked against an independent run of the same chain: each
        // tier's candidate recall is the share of the exact top-10 among the rows it passed
        // on, its loss the drop from the tier above (the first from 1).
        let c = r.config("binary:2,int8:2,float").unwrap();
        let l = &c.loss[&10];
        assert_eq!(l.len(), 3);
        let own = own_corpus(&corpus, dim);
        let chain = TierSpec::parse_chain("binary:2,int8:2,float").unwrap();
        let (hits, trace) = own.search_traced(&q.values, 10, &chain).unwrap();
        let truth = exact_topk(&corpus, &q.values, dim, 10, None, None);
        let nq = q.values.len() / dim;
        let share = |q: usize, rows: &[u32]| {
            let want: Vec<u32> = truth.rows(q, 10).collect();
            rows.iter().filter(|r| want.contains(r)).count() as f64 / want.len() as f64
        };
        let mut above = 1.0;
        for (t, loss) in l.iter().enumerate() {
            let cand = (0..nq).map(|q| share(q, &trace[t][q])).sum::<f64>() / nq as f64;
            assert!(
                (loss.candidate_recall - cand).abs() < 1e-12,
                "tier {t}: {loss:?} vs {cand}"
            );
            assert!(
                (loss.lost - (above - cand)).abs() < 1e-12,
                "tier {t}: {loss:?}"
            );
            above = cand;
        }
        assert_eq!((l[0].kept, l[1].kept, l[2].kept), (20, 20, 10));
        let final_recall = (0..nq)
            .map(|q| share(q, &hits[q].iter().map(|h| h.row).collect::<Vec<_>>()))
            .sum::<f64>()
            / nq as f64;
        assert!((c.recall[&10].mean - final_recall).abs() < 1e-12);
        assert!(l[0].candidate_recall >= l[1].candidate_recall);
        // Gates: the loose one holds, the impossible one fails.
        assert!(r.gates[0].passed && !r.gates[1].passed && !r.gates_passed());
        // The recommendation meets the target and is the cheapest found.
        let rec = r.recommendation.as_ref().unwrap();
        assert!(rec.recall >= 0.9);
        assert!(rec.commands[1].contains("--tiers"));
        assert_eq!(c.bytes_per_vector, dim / 8 + dim);
        assert!(
            r.pareto.contains(&"float".to_string())
                || r.config("float").unwrap().bytes_per_vector == 0
        );
        assert!(markdown(&r).contains("| int8 |"));
    }

    #[test]
    fn reshaped_ranges_are_measured_on_their_own_calibration() {
        let (dim, rows) = (24, 1500);
        let mut corpus = data(rows, dim, 5);
        // Dimensions of very different spread, so one range for all of them costs recall.
        for r in corpus.chunks_exact_mut(dim) {
            for (d, x) in r.iter_mut().enumerate() {
                *x *= 1.0 + d as f32;
            }
        }
        let qs: Vec<f32> = data(30, dim, 9);
        let q = Queries {
            values: qs.clone(),
            exclude: None,
        };
        let sweep = default_sweep();
        for name in ["int8+per-tensor", "int8+symmetric"] {
            assert!(sweep.iter().any(|c| c.to_string() == name), "{name}");
        }
        let opts = RecallOptions {
            ks: vec![10],
            configs: Some(
                ["int8", "int8+per-tensor", "int4+symmetric+per-tensor"]
                    .iter()
                    .map(|c| Config::parse(c).unwrap())
                    .collect(),
            ),
            gates: vec!["int8+per-tensor=0.0@10".parse().unwrap()],
            ..Default::default()
        };
        let r = run(&corpus, dim, None, &q, &opts, None).unwrap();
        assert_eq!(r.configs.len(), 3);
        assert!(r.gates[0].passed);
        // Each reshaped configuration's recall is the one its own codes give, computed here
        // from a calibration reshaped directly.
        let arr = super::super::variant::vectors_array(corpus.clone(), dim, None);
        let stats = Stats::compute(&arr, &StatsOptions::moments_only()).unwrap();
        let truth = exact_topk(&corpus, &qs, dim, 10, None, None);
        for (name, method, tier) in [
            ("int8+per-tensor", "minmax+per-tensor", "int8"),
            (
                "int4+symmetric+per-tensor",
                "minmax+symmetric+per-tensor",
                "int4",
            ),
        ] {
            let m: crate::CalibrationMethod = method.parse().unwrap();
            let cal = Calibration::from_stats(&stats, m).unwrap();
            let mut c = Corpus::new(rows, dim);
            if tier == "int8" {
                let codec = Int8Codec::new(&cal);
                let mut codes = vec![0u8; rows * dim];
                codec.encode_slice(&corpus, &mut codes, 0x80).unwrap();
                let codes = codes.into_iter().map(|x| x as i8).collect();
                c.insert(Codes::Int8(codes, codec)).unwrap();
            } else {
                let codec = Int4Codec::new(&cal);
                let mut codes = vec![0u8; rows * codec.width()];
                codec.encode_slice(&corpus, &mut codes).unwrap();
                c.insert(Codes::Int4(codes, codec)).unwrap();
            }
            let hits = c
                .search(&qs, 10, &TierSpec::parse_chain(tier).unwrap())
                .unwrap();
            let want = (0..30)
                .map(|qi| {
                    let t: Vec<u32> = truth.rows(qi, 10).collect();
                    hits[qi].iter().filter(|h| t.contains(&h.row)).count() as f64 / 10.0
                })
                .sum::<f64>()
                / 30.0;
            let got = r.config(name).unwrap();
            assert!((got.recall[&10].mean - want).abs() < 1e-12, "{name}");
            assert_eq!(
                got.bytes_per_vector,
                if tier == "int8" { dim } else { dim / 2 }
            );
        }
        // One range for dimensions of 24x different spread loses recall.
        assert!(
            r.config("int8+per-tensor").unwrap().recall[&10].mean
                < r.config("int8").unwrap().recall[&10].mean
        );
    }

    #[test]
    fn sampled_queries_exclude_themselves() {
        let (dim, rows) = (16, 500);
        let corpus = data(rows, dim, 8);
        let picks: Vec<u32> = (0..20).map(|i| i * 13).collect();
        let qs: Vec<f32> = picks
            .iter()
            .flat_map(|&r| corpus[r as usize * dim..(r as usize + 1) * dim].to_vec())
            .collect();
        let opts = RecallOptions {
            ks: vec![5],
            configs: Some(vec![Config::parse("float").unwrap()]),
            ..Default::default()
        };
        let q = Queries {
            values: qs,
            exclude: Some(picks.clone()),
        };
        let r = run(&corpus, dim, None, &q, &opts, None).unwrap();
        // Both the truth and the searched results leave out each query's own row.
        assert_eq!(r.config("float").unwrap().recall[&5].mean, 1.0);
        let (gt, _) = ground_truth(&corpus, dim, &q, 5, None, None).unwrap();
        for (i, &p) in picks.iter().enumerate() {
            assert!(gt.rows(i, 5).all(|r| r != p));
        }
    }
}
