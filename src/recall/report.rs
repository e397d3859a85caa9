//! The recall report: every configuration's recall@k against exact search, the loss of each
//! tier, bytes and speed, the cheapest configuration meeting a target, and gates.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::FixedSizeListArray;
use serde::{Deserialize, Serialize};

use super::source::{MemorySource, ScanRows, SliceRows, VectorSource, SCAN_ROWS};
use super::truth::{exact_topk_scan, read_cache, write_cache, Fingerprinter, GroundTruth};
use super::variant::{calibrate, Variant};
use crate::calibration::RangeMethod;
use crate::codec::int8::Int8Codec;
use crate::error::{Error, Result};
use crate::search::{Tier, TierSpec};

/// Version of `report.json`.
pub const REPORT_VERSION: u32 = 1;
/// Oversampling factors of the default sweep.
pub const SWEEP_FACTORS: [usize; 5] = [1, 2, 4, 8, 16];
/// Oversampling factors the tuner tries, in order.
const TUNE_FACTORS: [usize; 13] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128];

/// A tier chain, optionally on a Matryoshka prefix of the vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The chain.
    pub tiers: Vec<TierSpec>,
    /// Prefix length (None: every dimension).
    pub dims: Option<usize>,
}

/// `binary:4,int8:2,float`.
pub fn chain_string(tiers: &[TierSpec]) -> String {
    tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i + 1 == tiers.len() {
                t.tier.to_string()
            } else {
                format!("{}:{}", t.tier, t.factor)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Config {
    /// `binary:4,int8` or, on a 128-dimension prefix, `binary:4,int8@128`.
    pub fn parse(s: &str) -> Result<Self> {
        let (chain, dims) = match s.trim().split_once('@') {
            Some((c, d)) => (
                c,
                Some(
                    d.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&d| d > 0)
                        .ok_or_else(|| {
                            Error::InvalidOption(format!(
                                "configuration {s:?}: @{d} is not a dimension"
                            ))
                        })?,
                ),
            ),
            None => (s, None),
        };
        Ok(Config {
            tiers: TierSpec::parse_chain(chain)?,
            dims,
        })
    }

    fn factor_of(&self, i: usize) -> usize {
        self.tiers[i].factor
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain_string(&self.tiers))?;
        if let Some(d) = self.dims {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `0.95@10`: a recall at a k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Recall in [0, 1].
    pub recall: f64,
    /// k.
    pub k: usize,
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidOption(format!("{s:?}: expected RECALL@K, e.g. 0.95@10"));
        let (r, k) = s.trim().split_once('@').ok_or_else(bad)?;
        let recall: f64 = r.trim().parse().map_err(|_| bad())?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&recall) || k == 0 {
            return Err(bad());
        }
        Ok(Target { recall, k })
    }
}

/// `binary:4,int8=0.95@10`: fail when the configuration's recall@k is below the bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The configuration.
    pub config: Config,
    /// The bound.
    pub min: Target,
}

impl std::str::FromStr for Gate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (c, t) = s.rsplit_once('=').ok_or_else(|| {
            Error::InvalidOption(format!(
                "gate {s:?}: expected CHAIN=RECALL@K, e.g. binary:4,int8=0.95@10"
            ))
        })?;
        Ok(Gate {
            config: Config::parse(c)?,
            min: t.parse()?,
        })
    }
}

/// What the report measures.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallOptions {
    /// The ks of recall@k (the largest is the ground truth's depth).
    pub ks: Vec<usize>,
    /// Configurations (None: [`default_sweep`]).
    pub configs: Option<Vec<Config>>,
    /// Matryoshka prefixes swept with every configuration.
    pub dims: Vec<usize>,
    /// The recall to meet with the cheapest configuration.
    pub target: Option<Target>,
    /// Gates.
    pub gates: Vec<Gate>,
    /// Also calibrate on a sample of this many rows and report the difference.
    pub calibration_rows: Option<usize>,
    /// Calibration range method.
    pub range: RangeMethod,
    /// Seed of the calibration sample.
    pub seed: u64,
    /// Bytes of codes held in memory at most (codes of other schemes are dropped and encoded
    /// again when needed; one chain's own codes are always held). The report's numbers do
    /// not depend on it.
    pub code_budget: usize,
}

/// The default [`RecallOptions::code_budget`]: 1 GiB.
pub const DEFAULT_CODE_BUDGET: usize = 1 << 30;

impl Default for RecallOptions {
    fn default() -> Self {
        RecallOptions {
            ks: vec![1, 10, 100],
            configs: None,
            dims: Vec::new(),
            target: None,
            gates: Vec::new(),
            calibration_rows: None,
            range: RangeMethod::MinMax,
            seed: 42,
            code_budget: DEFAULT_CODE_BUDGET,
        }
    }
}

/// The default sweep: each scheme alone; binary -> int8, binary -> float and rabitq -> int8
/// at oversampling 1, 2, 4, 8, 16; the three-tier chains.
pub fn default_sweep() -> Vec<Config> {
    let mut s: Vec<String> = ["binary", "rabitq", "int4", "int8", "f16"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for first in ["binary:{f},int8", "binary:{f},float", "rabitq:{f},int8"] {
        for f in SWEEP_FACTORS {
            s.push(first.replace("{f}", &f.to_string()));
        }
    }
    s.push("binary:4,int8:2,float".into());
    s.push("rabitq:4,int8:2,float".into());
    s.iter()
        .map(|c| Config::parse(c).expect("valid built-in chain"))
        .collect()
}

/// Queries: values (row-major) and, when sampled from the corpus, each one's own row.
#[derive(Debug, Clone)]
pub struct Queries {
    /// Row-major values.
    pub values: Vec<f32>,
    /// The corpus row each query must not return.
    pub exclude: Option<Vec<u32>>,
}

/// Recall over queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecallStat {
    /// Mean recall.
    pub mean: f64,
    /// 5th percentile over queries.
    pub p5: f64,
    /// 95% confidence interval of the mean (normal approximation).
    pub ci95: [f64; 2],
}

impl RecallStat {
    pub(crate) fn of(per_query: &[f64]) -> Self {
        let n = per_query.len().max(1) as f64;
        let mean = per_query.iter().sum::<f64>() / n;
        let var = per_query
            .iter()
            .map(|r| (r - mean) * (r - mean))
            .sum::<f64>()
            / (n - 1.0).max(1.0);
        let half = 1.96 * (var / n).sqrt();
        let mut s = per_query.to_vec();
        s.sort_by(f64::total_cmp);
        let p5 = s
            .get(((s.len() as f64 - 1.0) * 0.05).floor() as usize)
            .copied()
            .unwrap_or(0.0);
        RecallStat {
            mean,
            p5,
            ci95: [(mean - half).max(0.0), (mean + half).min(1.0)],
        }
    }
}

/// What one tier of a chain kept and lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierLoss {
    /// The tier.
    pub tier: String,
    /// Rows it passed on per query (k for the last tier).
    pub kept: usize,
    /// Share of the exact top-k among them.
    pub candidate_recall: f64,
    /// Recall lost against the tier above (1.0 above the first tier).
    pub lost: f64,
}

/// One configuration's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResult {
    /// `chain[@dims]`.
    pub config: String,
    /// The chain (the `--tiers` argument of `embquant search`).
    pub tiers: String,
    /// Dimensions encoded.
    pub dims: usize,
    /// Recall@k by k.
    pub recall: BTreeMap<usize, RecallStat>,
    /// Per k, what each tier kept and lost.
    pub loss: BTreeMap<usize, Vec<TierLoss>>,
    /// Bytes per vector of the codes the chain holds in memory (float rows are read from
    /// the source on demand and not counted).
    pub bytes_per_vector: usize,
    /// Float32 bytes of a source vector over `bytes_per_vector`.
    pub compression: f64,
    /// Bytes scanned and rescored per query at the largest k of the report.
    pub bytes_read_per_query: u64,
    /// Queries per second at that k (all threads).
    pub queries_per_s: f64,
}

/// The cheapest configuration meeting the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// `0.95@10`.
    pub target: String,
    /// The configuration.
    pub config: String,
    /// Its recall@k.
    pub recall: f64,
    /// Bytes it reads per query.
    pub bytes_read_per_query: u64,
    /// Candidates it rescores per query.
    pub candidates: usize,
    /// The command lines that deploy it.
    pub commands: Vec<String>,
}

/// A gate's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// `chain=recall@k`.
    pub gate: String,
    /// Measured recall@k.
    pub recall: f64,
    /// Whether it held.
    pub passed: bool,
}

/// Calibration on a sample against calibration on every row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCheck {
    /// Rows in the sample.
    pub rows: usize,
    /// Share of the corpus's values outside the sample's int8 ranges (clipped).
    pub clip_rate: f64,
    /// Per configuration: recall@k with full calibration, with the sample's, and the drop.
    pub configs: Vec<CalibrationDelta>,
    /// The k.
    pub k: usize,
}

/// One configuration under two calibrations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationDelta {
    /// The configuration.
    pub config: String,
    /// Recall@k, calibrated on every row.
    pub full: f64,
    /// Recall@k, calibrated on the sample.
    pub sampled: f64,
    /// `full - sampled`.
    pub drop: f64,
}

/// The whole report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallReport {
    /// Format version.
    pub version: u32,
    /// Corpus rows.
    pub corpus_rows: usize,
    /// Source dimension.
    pub dim: usize,
    /// Queries.
    pub queries: usize,
    /// Whether queries were sampled from the corpus (each excluded from its own results).
    pub sampled_queries: bool,
    /// The ks.
    pub ks: Vec<usize>,
    /// Ground truth: fingerprint, whether it came from the cache, seconds and queries/s.
    pub ground_truth: GroundTruthInfo,
    /// Calibration method and fingerprint (full dimensions).
    pub calibration: String,
    /// Every configuration.
    pub configs: Vec<ConfigResult>,
    /// Pareto-optimal configurations (recall@k of the largest k vs bytes per vector).
    pub pareto: Vec<String>,
    /// The tuner's answer.
    pub recommendation: Option<Recommendation>,
    /// The target had no configuration meeting it.
    pub target_unmet: Option<String>,
    /// Gates.
    pub gates: Vec<GateResult>,
    /// Sample calibration check.
    pub calibration_check: Option<CalibrationCheck>,
}

/// How the ground truth was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthInfo {
    /// Fingerprint of the inputs.
    pub fingerprint: String,
    /// Read from the cache.
    pub cached: bool,
    /// Seconds spent (computing or reading).
    pub seconds: f64,
    /// Queries per second of the exact search (when computed).
    pub queries_per_s: Option<f64>,
}

impl RecallReport {
    /// Whether every gate held.
    pub fn gates_passed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }

    /// The result of a configuration, by name.
    pub fn config(&self, name: &str) -> Option<&ConfigResult> {
        self.configs.iter().find(|c| c.config == name)
    }
}

/// Families the tuner searches: chains whose `{f}` (and `{g}`) oversampling it varies.
const TUNE_FAMILIES: [&str; 9] = [
    "int4",
    "int8",
    "f16",
    "binary:{f},int8",
    "binary:{f},float",
    "rabitq:{f},int8",
    "rabitq:{f},float",
    "binary:{f},int8:{g},float",
    "rabitq:{f},int8:{g},float",
];

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

/// [`ground_truth`] over a corpus read block by block: one pass for the fingerprint, and two
/// more when the cache does not hold it.
pub fn ground_truth_scan(
    corpus: &dyn ScanRows,
    queries: &Queries,
    k: usize,
    cache_dir: Option<&Path>,
) -> Result<(GroundTruth, GroundTruthInfo)> {
    let t = Instant::now();
    let dim = corpus.dim();
    let mut h = Fingerprinter::new(dim, k, corpus.rows() * dim, queries.values.len());
    corpus.scan(SCAN_ROWS, &mut |_, values| {
        h.corpus(values);
        Ok(())
    })?;
    let fp = h.finish(&queries.values, queries.exclude.as_deref());
    let path = cache_dir.map(|d| d.join("ground_truth.parquet"));
    if let Some(p) = &path {
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
    }
    let gt = exact_topk_scan(
        corpus,
        &queries.values,
        k,
        queries.exclude.as_deref(),
        fp.clone(),
    )?;
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
        return Err(Error::InvalidOption(
            "the corpus and the queries must not be empty".into(),
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
        return Err(Error::InvalidOption(
            "the corpus and the queries must not be empty".into(),
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
        return Err(Error::InvalidOption("no k to measure".into()));
    }
    let kmax = *ks.last().expect("non-empty");
    if kmax > rows {
        return Err(Error::InvalidOption(format!(
            "recall@{kmax} needs at least {kmax} corpus rows; the corpus has {rows}"
        )));
    }
    for c in options
        .configs
        .iter()
        .flatten()
        .chain(options.gates.iter().map(|g| &g.config))
    {
        if (0..c.tiers.len()).any(|i| kmax.checked_mul(c.factor_of(i)).is_none()) {
            return Err(Error::InvalidOption(format!(
                "configuration {c}: k x factors overflows"
            )));
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
            return Err(Error::InvalidOption(format!(
                "prefix of {d} dimensions of {dim}-dimensional vectors"
            )));
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
            options.range,
            options.code_budget,
        )?;
        if d.is_none() {
            full_cal = Some(cal);
        }
        let sweep_here = d.is_none() || options.dims.contains(&d.unwrap_or(0));
        for c in configs
            .iter()
            .filter(|c| (c.dims.is_none() && sweep_here) || c.dims.filter(|&x| x < dim) == d)
        {
            let mut c = c.clone();
            c.dims = d;
            tracing::info!(config = %c, "measuring");
            results.push(v.evaluate(&c, &ks, &truth, dim)?);
        }
        // Gates on this variant: measured configurations, or measured now.
        for (i, g) in options.gates.iter().enumerate() {
            if g.config.dims.filter(|&x| x < dim) != d {
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
            Error::InvalidOption(format!(
                "gate {name}: prefix {:?} not measured (add it to --dims)",
                g.config.dims
            ))
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
        return Err(Error::InvalidOption(format!(
            "recall@{k} needs a ground truth of depth {k}: add it to --k (largest now {kmax})"
        )));
    }
    Ok(())
}

/// The smallest oversampling of a family meeting the target, with its recall.
fn tune_family(
    v: &mut Variant,
    family: &str,
    t: Target,
    truth: &GroundTruth,
) -> Result<Option<(Config, f64)>> {
    let recall_of = |v: &mut Variant, chain: &str| -> Result<f64> {
        let c = Config::parse(chain)?;
        Ok(RecallStat::of(&v.recall_of(&c.tiers, t.k, truth)?).mean)
    };
    if !family.contains("{f}") {
        let r = recall_of(v, family)?;
        return Ok((r >= t.recall).then(|| (Config::parse(family).expect("valid"), r)));
    }
    let gs: &[usize] = if family.contains("{g}") {
        &[1, 2, 4]
    } else {
        &[1]
    };
    let mut best: Option<(Config, f64, u64)> = None;
    for &g in gs {
        for &f in TUNE_FACTORS.iter().filter(|&&f| f >= g) {
            if t.k * f > v.corpus.rows && f > 1 {
                break;
            }
            let chain = family
                .replace("{f}", &f.to_string())
                .replace("{g}", &g.to_string());
            let r = recall_of(v, &chain)?;
            if r >= t.recall {
                let c = Config::parse(&chain)?;
                let cost = v.bytes_read(&c.tiers, t.k);
                if best.as_ref().is_none_or(|(_, _, bc)| cost < *bc) {
                    best = Some((c, r, cost));
                }
                break;
            }
        }
    }
    Ok(best.map(|(c, r, _)| (c, r)))
}

fn deploy_commands(c: &Config, k: usize) -> Vec<String> {
    let mut schemes: Vec<String> = Vec::new();
    for t in &c.tiers {
        let s = match t.tier {
            Tier::Float => continue,
            other => other.to_string(),
        };
        if !schemes.contains(&s) {
            schemes.push(s);
        }
    }
    let dims = c.dims.map_or(String::new(), |d| format!(" --dims {d}"));
    vec![
        format!(
            "embquant quantize INPUT --column COLUMN --scheme {}{dims} -o quantized.parquet",
            schemes.join(",")
        ),
        format!(
            "embquant search --corpus quantized.parquet --queries QUERIES --column COLUMN --k {k} --tiers {}",
            chain_string(&c.tiers)
        ),
    ]
}

/// Configurations no other beats on both recall@k (higher) and bytes per vector (lower).
fn pareto(results: &[ConfigResult], k: usize) -> Vec<String> {
    let rec = |r: &ConfigResult| r.recall.get(&k).map_or(0.0, |s| s.mean);
    let mut out: Vec<&ConfigResult> = results
        .iter()
        .filter(|a| {
            !results.iter().any(|b| {
                (b.bytes_per_vector <= a.bytes_per_vector && rec(b) > rec(a))
                    || (b.bytes_per_vector < a.bytes_per_vector && rec(b) >= rec(a))
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.bytes_per_vector
            .cmp(&b.bytes_per_vector)
            .then(rec(a).total_cmp(&rec(b)))
    });
    out.dedup_by(|a, b| a.bytes_per_vector == b.bytes_per_vector && rec(a) == rec(b));
    out.into_iter().map(|r| r.config.clone()).collect()
}

fn calibration_check(
    source: &Arc<dyn VectorSource>,
    queries: &Queries,
    options: &RecallOptions,
    n: usize,
    k: usize,
    truth: &GroundTruth,
    results: &[ConfigResult],
) -> Result<CalibrationCheck> {
    let (rows, dim) = (source.rows(), source.dim());
    let picks = crate::job::segments::sample_indices(rows as u64, n.min(rows) as u64, options.seed);
    let picked: Vec<u32> = picks
        .iter()
        .map(|&r| r as u32)
        .filter(|&r| source.valid().is_none_or(|v| v[r as usize]))
        .collect();
    let sample = MemorySource::new(source.floats(None).fetch(&picked)?, dim, None)?;
    let cal = calibrate(&sample, None, options.range)?;
    // Values of the corpus outside the sample's ranges.
    let codec = Int8Codec::new(&cal);
    let mut clipped = 0u64;
    let mut scratch = Vec::new();
    source.scan(SCAN_ROWS, &mut |first, values| {
        scratch.resize(values.len(), 0u8);
        clipped += codec
            .encode_slice(values, &mut scratch, 0x80)
            .map_err(|r| {
                Error::InvalidOption(format!("row {} holds a NaN or infinity", first + r))
            })?;
        Ok(())
    })?;
    drop(scratch);
    let (mut v, _) = Variant::new(
        source,
        &queries.values,
        queries.exclude.as_deref(),
        None,
        Some(&cal),
        options.range,
        options.code_budget,
    )?;
    let mut configs = Vec::new();
    for name in ["int8", "int4", "binary:4,int8", "rabitq:4,int8"] {
        let c = Config::parse(name)?;
        let (pq, _, _) = v.measure(&c.tiers, k, truth)?;
        let sampled = RecallStat::of(&pq).mean;
        let full = match results
            .iter()
            .find(|r| r.config == name)
            .and_then(|r| r.recall.get(&k))
        {
            Some(s) => s.mean,
            None => continue,
        };
        configs.push(CalibrationDelta {
            config: name.into(),
            full,
            sampled,
            drop: full - sampled,
        });
    }
    Ok(CalibrationCheck {
        rows: picked.len(),
        clip_rate: clipped as f64 / (rows * dim) as f64,
        configs,
        k,
    })
}

/// `report.md`: the tables a person reads.
pub fn markdown(r: &RecallReport) -> String {
    let mut s = String::new();
    let kmax = *r.ks.last().unwrap_or(&10);
    let kmain = if r.ks.contains(&10) { 10 } else { kmax };
    s.push_str("# embquant recall report\n\n");
    s.push_str(&format!(
        "{} corpus rows x {} dims, {} queries{}; calibration {}.\n\n",
        r.corpus_rows,
        r.dim,
        r.queries,
        if r.sampled_queries {
            " sampled from the corpus (each excluded from its own results)"
        } else {
            ""
        },
        r.calibration
    ));
    s.push_str(&format!(
        "Ground truth: exact inner product, top-{kmax} per query, {} in {:.2} s{} (fingerprint {}).\n\n",
        if r.ground_truth.cached { "read from the cache" } else { "computed" },
        r.ground_truth.seconds,
        r.ground_truth.queries_per_s.map_or(String::new(), |q| format!(", {q:.0} queries/s")),
        r.ground_truth.fingerprint
    ));
    if let Some(rec) = &r.recommendation {
        s.push_str(&format!(
            "**Recommendation** for recall {}: `{}` (recall {:.4}, {} bytes read per query, {} candidates rescored):\n\n```sh\n{}\n```\n\n",
            rec.target, rec.config, rec.recall, rec.bytes_read_per_query, rec.candidates, rec.commands.join("\n")
        ));
    }
    if let Some(u) = &r.target_unmet {
        s.push_str(&format!("**Target not met**: {u}.\n\n"));
    }
    for g in &r.gates {
        s.push_str(&format!(
            "Gate `{}`: recall {:.4}, {}\n\n",
            g.gate,
            g.recall,
            if g.passed { "passed" } else { "**FAILED**" }
        ));
    }
    s.push_str("## Recall per configuration\n\n");
    s.push_str(&table(r, kmain));
    s.push_str(&format!(
        "\nPareto front (recall@{kmax} vs bytes per vector): {}.\n\n",
        r.pareto
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.push_str(&format!("## Recall lost per tier (k = {kmain})\n\n"));
    s.push_str(
        "| configuration | tier: kept rows, share of the exact top-k kept, lost |\n| --- | --- |\n",
    );
    for c in r
        .configs
        .iter()
        .filter(|c| c.loss.get(&kmain).is_some_and(|l| l.len() > 1))
    {
        let l = &c.loss[&kmain];
        s.push_str(&format!(
            "| {} | {} |\n",
            c.config,
            l.iter()
                .map(|t| format!(
                    "{}: {} rows, {:.4}, -{:.4}",
                    t.tier, t.kept, t.candidate_recall, t.lost
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if let Some(cc) = &r.calibration_check {
        s.push_str(&format!(
            "\n## Calibration on a sample of {} rows\n\n{:.4}% of the corpus's values fall outside the sample's ranges (clipped by int8).\n\n| configuration | recall@{} full calibration | sample calibration | drop |\n| --- | ---: | ---: | ---: |\n",
            cc.rows,
            100.0 * cc.clip_rate,
            cc.k
        ));
        for d in &cc.configs {
            s.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:+.4} |\n",
                d.config, d.full, d.sampled, d.drop
            ));
        }
    }
    s
}

/// The main table: configuration, bytes, compression, recall@k (mean [95% CI]) per k, p5 at
/// `kmain`, queries/s.
pub fn table(r: &RecallReport, kmain: usize) -> String {
    let mut s = String::from("| configuration | bytes/vector | compression |");
    for k in &r.ks {
        s.push_str(&format!(" recall@{k} [95% CI] |"));
    }
    s.push_str(&format!(" p5@{kmain} | queries/s |\n| --- | ---: | ---: |"));
    for _ in &r.ks {
        s.push_str(" ---: |");
    }
    s.push_str(" ---: | ---: |\n");
    for c in &r.configs {
        s.push_str(&format!(
            "| {} | {} | {:.1}x |",
            c.config, c.bytes_per_vector, c.compression
        ));
        for k in &r.ks {
            let st = c.recall[k];
            s.push_str(&format!(
                " {:.4} [{:.3}, {:.3}] |",
                st.mean, st.ci95[0], st.ci95[1]
            ));
        }
        s.push_str(&format!(
            " {:.2} | {:.0} |\n",
            c.recall.get(&kmain).map_or(0.0, |x| x.p5),
            c.queries_per_s
        ));
    }
    s
}

/// Values of `array` when it is a float32 vector column (for callers holding Arrow data).
pub fn values_of(array: &FixedSizeListArray) -> &[f32] {
    array.values().as_primitive::<Float32Type>().values()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::Calibration;
    use crate::codec::binary::BinaryCodec;
    use crate::codec::int4::Int4Codec;
    use crate::codec::rabitq::{RabitqCodec, Rotation};
    use crate::recall::truth::exact_topk;
    use crate::search::tiered::InMemoryFloats;
    use crate::search::Corpus;
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
        c.binary = Some((bits, bc));
        let i8c = Int8Codec::new(&cal);
        let mut codes = vec![0u8; rows * dim];
        i8c.encode_slice(values, &mut codes, 0x80).unwrap();
        c.int8 = Some((codes.into_iter().map(|x| x as i8).collect(), i8c));
        let i4c = Int4Codec::new(&cal);
        let mut n4 = vec![0u8; rows * i4c.width()];
        i4c.encode_slice(values, &mut n4).unwrap();
        c.int4 = Some((n4, i4c));
        let rq = RabitqCodec::new(&cal, Rotation::default());
        let mut r = vec![0u8; rows * rq.width()];
        rq.encode_slice(values, &mut r).unwrap();
        c.rabitq = Some((r, rq));
        c.floats = Some(Box::new(InMemoryFloats {
            values: values.to_vec(),
            dim,
        }));
        c.prepare();
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
        assert!("0.95".parse::<Target>().is_err());
        assert!("1.5@10".parse::<Target>().is_err());
        assert!("binary:4,int8".parse::<Gate>().is_err());
        assert!(Config::parse("binary:4,int8@x").is_err());
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
