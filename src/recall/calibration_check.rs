//! Calibration on a sample of rows against calibration on every row: the clip rate of the
//! corpus under the sample's ranges, and the recall each configuration loses.

use std::sync::Arc;

use super::config::{Config, Queries, RecallOptions};
use super::model::{CalibrationCheck, CalibrationDelta, ConfigResult, RecallStat};
use super::source::{MemorySource, VectorSource, SCAN_ROWS};
use super::truth::GroundTruth;
use super::variant::{calibrate, Variant};
use crate::codec::int8::Int8Codec;
use crate::error::{Error, Result};

/// The calibration check on `n` sampled rows, at recall@`k`.
pub(crate) fn calibration_check(
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
    let cal = calibrate(
        &sample,
        None,
        options.range,
        options.codes.threshold == crate::codec::binary::BinaryThreshold::Median,
    )?;
    // Values of the corpus outside the sample's ranges.
    let codec = Int8Codec::new(&cal);
    let mut clipped = 0u64;
    let mut scratch = Vec::new();
    source.scan(SCAN_ROWS, &mut |first, values| {
        scratch.resize(values.len(), 0u8);
        clipped += codec
            .encode_slice(values, &mut scratch, 0x80)
            .map_err(|r| Error::BadValue {
                row: (first + r) as u64,
                problem: "a NaN or infinity".into(),
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
        options,
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
