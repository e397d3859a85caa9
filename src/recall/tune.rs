//! The tuner: the cheapest configuration reaching a target recall, the deploy commands for
//! it, and the Pareto front of bytes against recall.

use super::config::{chain_string, Config, Target};
use super::model::{ConfigResult, RecallStat};
use super::truth::GroundTruth;
use super::variant::Variant;
use crate::error::Result;
use crate::search::RabitqBits;
use crate::search::Tier;

/// Oversampling factors the tuner tries, in order.
pub(crate) const TUNE_FACTORS: [usize; 13] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128];

/// Families the tuner searches: chains whose `{f}` (and `{g}`) oversampling it varies.
/// The RaBitQ widths compete: 1, 2, 4 and 8 bits alone or before int8, and the
/// bound-pruned chains (which need no factor).
pub(crate) const TUNE_FAMILIES: [&str; 17] = [
    "int4",
    "int8",
    "f16",
    "rabitq4",
    "rabitq8",
    "binary:{f},int8",
    "binary:{f},float",
    "rabitq:{f},int8",
    "rabitq2:{f},int8",
    "rabitq4:{f},int8",
    "rabitq:{f},float",
    "binary:{f},int8:{g},float",
    "rabitq:{f},int8:{g},float",
    "rabitq1:bound,rabitq2:bound,int8",
    "rabitq1:bound,rabitq4:bound,int8",
    "rabitq1:bound,rabitq4:bound,float",
    "rabitq1:bound,rabitq8:bound,int8",
];

/// The smallest oversampling of a family meeting the target, with its recall.
pub(crate) fn tune_family(
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
            if t.k * f > v.corpus.rows() && f > 1 {
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

pub(crate) fn deploy_commands(c: &Config, k: usize) -> Vec<String> {
    let mut schemes: Vec<String> = Vec::new();
    for t in &c.tiers {
        let s = match t.tier {
            Tier::Float => continue,
            // The widest RaBitQ tier's columns serve the narrower 1-bit tier too.
            Tier::Rabitq(RabitqBits::ONE)
                if c.tiers
                    .iter()
                    .any(|u| matches!(u.tier, Tier::Rabitq(b) if b.get() > 1)) =>
            {
                continue
            }
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
pub(crate) fn pareto(results: &[ConfigResult], k: usize) -> Vec<String> {
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
