//! Per-dimension calibration statistics: count, min, max, mean, variance and a quantile
//! sketch, computed in parallel and mergeable across chunks, threads and files.
//!
//! Moments use the two-pass algorithm within a chunk of rows (exact sums of squared
//! deviations around the chunk mean, in `f64`) and Chan et al.'s pairwise update to merge
//! chunks, so the merge of two halves equals the whole up to `f64` rounding (better than
//! 1e-9 relative). Min, max and count merge exactly; the sketch merges exactly (see
//! [`crate::sketch`]).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::sketch::{QuantileSketch, DEFAULT_ALPHA};
use crate::vectors::Vectors;

/// Rows per two-pass moment chunk and per unit of sketch work (fits in L2).
const CHUNK_ROWS: usize = 256;
/// Dimensions per unit of parallel sketch work.
const SKETCH_DIMS: usize = 32;
/// Rows per unit of parallel moment work; blocks are merged in order.
const BLOCK_ROWS: usize = 16 * CHUNK_ROWS;

/// What [`Stats`] collects.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct StatsOptions {
    /// Keep a quantile sketch per dimension with this relative accuracy (needed for the
    /// `quantile` range method and for median thresholds); `None` skips it, which is several
    /// times faster.
    pub sketch_alpha: Option<f64>,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            sketch_alpha: Some(DEFAULT_ALPHA),
        }
    }
}

impl StatsOptions {
    /// Moments, min and max only.
    pub fn moments_only() -> Self {
        Self { sketch_alpha: None }
    }
}

/// Per-dimension statistics of the non-null rows seen so far.
///
/// Serializable (serde) so partial statistics can travel between processes or query
/// partitions and be [merged](Stats::merge) there; JSON needs at least one row seen
/// (an empty `Stats` holds infinite minima).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    dim: usize,
    moments: Moments,
    sketch_alpha: Option<f64>,
    sketches: Option<Vec<QuantileSketch>>,
}

/// Count, min, max, mean and sum of squared deviations per dimension.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Moments {
    count: u64,
    min: Vec<f32>,
    max: Vec<f32>,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Moments {
    fn new(dim: usize) -> Self {
        Self {
            count: 0,
            min: vec![f32::INFINITY; dim],
            max: vec![f32::NEG_INFINITY; dim],
            mean: vec![0.0; dim],
            m2: vec![0.0; dim],
        }
    }

    /// Two-pass moments of a block of rows, merged into `self`.
    fn add_chunk(&mut self, v: &Vectors<'_>, rows: std::ops::Range<usize>) -> Result<()> {
        let dim = self.min.len();
        let mut sum = vec![0f64; dim];
        let mut n = 0u64;
        let mut bad = 0u32;
        for r in rows.clone() {
            if !v.is_valid(r) {
                continue;
            }
            n += 1;
            let x = v.row(r);
            for d in 0..dim {
                let xv = x[d];
                bad |= (xv.to_bits() & 0x7f80_0000 == 0x7f80_0000) as u32;
                sum[d] += xv as f64;
                self.min[d] = if xv < self.min[d] { xv } else { self.min[d] };
                self.max[d] = if xv > self.max[d] { xv } else { self.max[d] };
            }
        }
        if bad != 0 {
            v.find_non_finite(rows.clone())?;
        }
        if n == 0 {
            return Ok(());
        }
        let inv = 1.0 / n as f64;
        let cmean: Vec<f64> = sum.iter().map(|s| s * inv).collect();
        let mut cm2 = vec![0f64; dim];
        for r in rows.filter(|&r| v.is_valid(r)) {
            let x = v.row(r);
            for d in 0..dim {
                let dev = x[d] as f64 - cmean[d];
                cm2[d] += dev * dev;
            }
        }
        merge_moments(&mut self.mean, &mut self.m2, self.count, &cmean, &cm2, n);
        self.count += n;
        Ok(())
    }

    fn merge(&mut self, other: &Moments) {
        for d in 0..self.min.len() {
            self.min[d] = self.min[d].min(other.min[d]);
            self.max[d] = self.max[d].max(other.max[d]);
        }
        merge_moments(
            &mut self.mean,
            &mut self.m2,
            self.count,
            &other.mean,
            &other.m2,
            other.count,
        );
        self.count += other.count;
    }
}

impl Stats {
    /// Empty statistics for `dim`-dimensional vectors.
    pub fn new(dim: usize, options: &StatsOptions) -> Self {
        Self {
            dim,
            moments: Moments::new(dim),
            sketch_alpha: options.sketch_alpha,
            sketches: options
                .sketch_alpha
                .map(|a| vec![QuantileSketch::new(a); dim]),
        }
    }

    /// Statistics of one vector array (see [`Vectors`] for the accepted types).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow_array::{FixedSizeListArray, Float32Array};
    /// use arrow_schema::{DataType, Field};
    /// use embquant::{Stats, StatsOptions};
    ///
    /// let values = Float32Array::from(vec![0.0, 1.0, 2.0, 3.0]);
    /// let field = Arc::new(Field::new_list_field(DataType::Float32, false));
    /// let vectors = FixedSizeListArray::new(field, 2, Arc::new(values), None);
    /// let stats = Stats::compute(&vectors, &StatsOptions::default())?;
    /// assert_eq!(stats.count(), 2);
    /// assert_eq!(stats.min(), &[0.0, 1.0]);
    /// assert_eq!(stats.mean(), &[1.0, 2.0]);
    /// # Ok::<(), embquant::Error>(())
    /// ```
    pub fn compute(array: &dyn arrow_array::Array, options: &StatsOptions) -> Result<Self> {
        let v = Vectors::try_new(array)?;
        let mut s = Self::new(v.dim(), options);
        s.update_vectors(&v)?;
        Ok(s)
    }

    /// Adds the rows of `array` (streaming use: call once per batch).
    pub fn update(&mut self, array: &dyn arrow_array::Array) -> Result<()> {
        let v = Vectors::try_new_with_dim(array, self.dim)?;
        self.update_vectors(&v)
    }

    /// Adds the rows of an already validated view.
    ///
    /// Moments are computed per fixed block of rows in parallel and merged in row order,
    /// so the result is deterministic for a given sequence of arrays (rayon's scheduling
    /// does not change the rounding). Sketches and min/max merge exactly in any order.
    pub fn update_vectors(&mut self, v: &Vectors<'_>) -> Result<()> {
        if v.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                context: "vector column".into(),
                expected: self.dim,
                found: v.dim(),
            });
        }
        let dim = self.dim;
        let blocks = v.len().div_ceil(BLOCK_ROWS);
        let parts: Vec<Moments> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let mut m = Moments::new(dim);
                let end = ((b + 1) * BLOCK_ROWS).min(v.len());
                for start in (b * BLOCK_ROWS..end).step_by(CHUNK_ROWS) {
                    m.add_chunk(v, start..(start + CHUNK_ROWS).min(end))?;
                }
                Ok(m)
            })
            .collect::<Result<_>>()?;
        for p in &parts {
            self.moments.merge(p);
        }
        if let Some(sk) = &mut self.sketches {
            // Sketches are per dimension: update them in place, in parallel over groups of
            // dimensions (no per-call sketch merges, same result in any order). Rows go in
            // blocks so a block of values stays in cache while its dimensions are counted.
            let valid: Vec<usize> = (0..v.len()).filter(|&r| v.is_valid(r)).collect();
            sk.par_chunks_mut(SKETCH_DIMS)
                .enumerate()
                .for_each(|(g, group)| {
                    let d0 = g * SKETCH_DIMS;
                    for &r in &valid {
                        let row = &v.row(r)[d0..d0 + group.len()];
                        group.iter_mut().zip(row).for_each(|(s, &x)| s.insert(x));
                    }
                });
        }
        Ok(())
    }

    /// Adds `other` (statistics of other rows of the same dimension).
    pub fn merge(&mut self, other: &Stats) -> Result<()> {
        if other.dim != self.dim {
            return Err(Error::DimensionMismatch {
                context: "merged statistics".into(),
                expected: self.dim,
                found: other.dim,
            });
        }
        if self.sketches.is_some() != other.sketches.is_some() {
            return Err(Error::CalibrationMismatch(
                "cannot merge statistics with and without quantile sketches".into(),
            ));
        }
        self.moments.merge(&other.moments);
        if let (Some(a), Some(b)) = (&mut self.sketches, &other.sketches) {
            a.iter_mut().zip(b).for_each(|(a, b)| a.merge(b));
        }
        Ok(())
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Non-null rows seen.
    pub fn count(&self) -> u64 {
        self.moments.count
    }
    /// Per-dimension minimum.
    pub fn min(&self) -> &[f32] {
        &self.moments.min
    }
    /// Per-dimension maximum.
    pub fn max(&self) -> &[f32] {
        &self.moments.max
    }
    /// Per-dimension mean.
    pub fn mean(&self) -> &[f64] {
        &self.moments.mean
    }
    /// Per-dimension population variance (`m2 / count`; 0 before any row).
    pub fn variance(&self) -> Vec<f64> {
        let n = self.moments.count.max(1) as f64;
        self.moments.m2.iter().map(|m| m / n).collect()
    }
    /// Per-dimension quantile sketches, when collected.
    pub fn sketches(&self) -> Option<&[QuantileSketch]> {
        self.sketches.as_deref()
    }
    /// Per-dimension quantile `q` from the sketches (`None` without sketches or rows). The
    /// extreme ranks are exact: a `q` whose rank is the last (`q = 1`) gives the observed
    /// maximum, the first (`q = 0`) the observed minimum, not a bucket's representative
    /// within the sketch's relative accuracy (so `quantile:1` is `minmax` and clips nothing).
    pub fn quantiles(&self, q: f64) -> Option<Vec<f64>> {
        let sk = self.sketches.as_ref()?;
        sk.iter()
            .enumerate()
            .map(|(d, s)| {
                let v = s.quantile(q)?;
                let last = s.count() - 1;
                Some(match s.rank(q)? {
                    r if r == last => self.moments.max[d] as f64,
                    0 => self.moments.min[d] as f64,
                    _ => v,
                })
            })
            .collect()
    }
}

/// Chan et al.: combine (mean_a, m2_a, n_a) with (mean_b, m2_b, n_b) into `a`.
fn merge_moments(
    mean_a: &mut [f64],
    m2_a: &mut [f64],
    n_a: u64,
    mean_b: &[f64],
    m2_b: &[f64],
    n_b: u64,
) {
    if n_b == 0 {
        return;
    }
    if n_a == 0 {
        mean_a.copy_from_slice(mean_b);
        m2_a.copy_from_slice(m2_b);
        return;
    }
    let (na, nb) = (n_a as f64, n_b as f64);
    let n = na + nb;
    for d in 0..mean_a.len() {
        let delta = mean_b[d] - mean_a[d];
        mean_a[d] += delta * nb / n;
        m2_a[d] += m2_b[d] + delta * delta * na * nb / n;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, FixedSizeListArray, Float32Array};
    use arrow_buffer::NullBuffer;
    use arrow_schema::{DataType, Field};
    use proptest::prelude::*;

    use super::*;

    fn array(values: Vec<f32>, dim: usize, nulls: Option<Vec<bool>>) -> FixedSizeListArray {
        FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            dim as i32,
            Arc::new(Float32Array::from(values)),
            nulls.map(NullBuffer::from),
        )
    }

    fn rel_close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn halves_merged_equal_whole(
            dim in prop::sample::select(vec![1usize, 7, 8, 9, 383]),
            rows in 1usize..700,
            split in 0usize..700,
            seed in any::<u64>(),
        ) {
            let split = split.min(rows);
            let mut x = seed | 1;
            let values: Vec<f32> = (0..rows * dim).map(|i| {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                (x % 20_000) as f32 * 1e-4 - 1.0 + (i % dim) as f32 * 0.01
            }).collect();
            let nulls: Vec<bool> = (0..rows).map(|r| r % 11 != 3).collect();
            let a = array(values, dim, Some(nulls));
            let opts = StatsOptions::default();
            let whole = Stats::compute(&a, &opts).unwrap();
            let mut left = Stats::compute(&a.slice(0, split), &opts).unwrap();
            let right = Stats::compute(&a.slice(split, rows - split), &opts).unwrap();
            left.merge(&right).unwrap();
            prop_assert_eq!(left.count(), whole.count());
            prop_assert_eq!(left.min(), whole.min());
            prop_assert_eq!(left.max(), whole.max());
            for d in 0..dim {
                prop_assert!(rel_close(left.mean()[d], whole.mean()[d]));
                prop_assert!(rel_close(left.variance()[d], whole.variance()[d]),
                    "{} vs {}", left.variance()[d], whole.variance()[d]);
            }
            prop_assert_eq!(left.sketches(), whole.sketches());
        }
    }

    #[test]
    fn streaming_updates_equal_one_pass() {
        let a = crate::testutil::vectors_array(10_000, 9, 4, 0.05);
        let opts = StatsOptions::default();
        let whole = Stats::compute(&a, &opts).unwrap();
        let mut s = Stats::new(9, &opts);
        for start in (0..10_000).step_by(1_234) {
            s.update(&a.slice(start, 1_234.min(10_000 - start)))
                .unwrap();
        }
        assert_eq!(s.count(), whole.count());
        assert_eq!(s.min(), whole.min());
        assert_eq!(s.max(), whole.max());
        assert_eq!(s.sketches(), whole.sketches());
        for d in 0..9 {
            assert!(rel_close(s.mean()[d], whole.mean()[d]));
            assert!(rel_close(s.variance()[d], whole.variance()[d]));
        }
        // The same sequence of arrays gives bit-identical results (deterministic merge order).
        assert_eq!(Stats::compute(&a, &opts).unwrap(), whole);
        assert!(matches!(
            s.update(&crate::testutil::vectors_array(3, 8, 1, 0.0)),
            Err(Error::DimensionMismatch { .. })
        ));
    }

    #[test]
    fn moments_match_a_direct_f64_computation() {
        let dim = 3;
        let values: Vec<f32> = (0..3000)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0)
            .collect();
        let s =
            Stats::compute(&array(values.clone(), dim, None), &StatsOptions::default()).unwrap();
        for d in 0..dim {
            let col: Vec<f64> = values
                .iter()
                .skip(d)
                .step_by(dim)
                .map(|&x| x as f64)
                .collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(rel_close(s.mean()[d], mean));
            assert!(rel_close(s.variance()[d], var));
        }
    }

    #[test]
    fn null_rows_are_skipped_even_when_they_hold_nan() {
        let a = array(vec![1.0, f32::NAN, 3.0], 1, Some(vec![true, false, true]));
        let s = Stats::compute(&a, &StatsOptions::default()).unwrap();
        assert_eq!(s.count(), 2);
        assert_eq!(s.mean(), &[2.0]);
    }

    #[test]
    fn non_finite_values_name_row_and_dimension() {
        let mut v = vec![0.5f32; 2 * 600];
        v[2 * 517 + 1] = f32::INFINITY;
        let e = Stats::compute(&array(v, 2, None), &StatsOptions::default()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NonFinite {
                    row: 517,
                    dim: 1,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn merging_different_dims_fails() {
        let mut a = Stats::new(3, &StatsOptions::default());
        let b = Stats::new(4, &StatsOptions::default());
        assert_err!(a.merge(&b), crate::Error::DimensionMismatch { .. });
        let c = Stats::new(3, &StatsOptions::moments_only());
        assert_err!(a.merge(&c), crate::Error::CalibrationMismatch(_));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// `quantile:1` is the observed range: its ends are the exact min and max (not a
        /// sketch bucket's representative), and it clips nothing it was calibrated on.
        #[test]
        fn quantile_one_is_the_exact_range_and_clips_nothing(
            values in prop::collection::vec(
                prop_oneof![-1.0e3f32..1.0e3, -1.0f32..1.0, Just(0.0f32)],
                3..300,
            ),
            split in 0usize..100,
        ) {
            use crate::calibration::{Calibration, RangeMethod};
            let dim = 3;
            let n = values.len() / dim * dim;
            let values = values[..n].to_vec();
            // Merged from two parts like the parallel calibration.
            let cut = (split * dim).min(n);
            let mut st = Stats::compute(&array(values[..cut].to_vec(), dim, None), &StatsOptions::default()).unwrap();
            st.merge(&Stats::compute(&array(values[cut..].to_vec(), dim, None), &StatsOptions::default()).unwrap()).unwrap();
            let hi: Vec<f64> = st.max().iter().map(|&x| x as f64).collect();
            let lo: Vec<f64> = st.min().iter().map(|&x| x as f64).collect();
            prop_assert_eq!(st.quantiles(1.0).unwrap(), hi);
            prop_assert_eq!(st.quantiles(0.0).unwrap(), lo);
            let q = Calibration::from_stats(&st, RangeMethod::Quantile { p: 1.0 }).unwrap();
            prop_assert_eq!(q.lo(), st.min());
            prop_assert_eq!(q.hi(), st.max());
            let codec = crate::codec::int8::Int8Codec::new(&q);
            let mut out = vec![0u8; n];
            prop_assert_eq!(codec.encode_slice(&values, &mut out, 0x80), Ok(0));
        }
    }

    #[test]
    fn empty_input_has_zero_count() {
        let a = array(vec![], 4, None);
        let s = Stats::compute(&a, &StatsOptions::default()).unwrap();
        assert_eq!(s.count(), 0);
        assert!(s.quantiles(0.5).is_none());
        assert!(a.is_empty());
    }
}
