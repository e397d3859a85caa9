//! The report's results (`report.json`): recall per configuration and k, per-tier loss,
//! the recommendation, gates and the calibration check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of `report.json`.
pub const REPORT_VERSION: u32 = 1;

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
