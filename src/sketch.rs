//! A mergeable quantile sketch with a relative-error guarantee (DDSketch-style).
//!
//! Values are counted in logarithmically spaced buckets, one set for positive and one for
//! negative values, plus a bucket for values too close to zero to index. Because a bucket is
//! a pure function of the value, **merging two sketches gives exactly the sketch of the
//! union** (counts add), whatever the order or split of the input; this is what lets
//! calibration run over chunks, threads and files and still agree with a single pass.
//!
//! # Error bound
//!
//! With relative accuracy `alpha` (default [`DEFAULT_ALPHA`] = 0.5%), for a quantile `q`
//! the sketch returns a value `v` with
//!
//! `|v - x_r| <= alpha * |x_r|`, where `x_r` is the exact order statistic of rank
//! `r = floor(q * (n - 1))` (0-based) among the `n` values counted,
//!
//! i.e. there is **no rank error**: the returned value is within `alpha` (relative) of the
//! exact value at the requested rank. Two documented exceptions, both tiny in absolute
//! terms: values with `|x| < ZERO_MAGNITUDE` (1e-30) are counted as 0, so the bound there
//! is `|v - x_r| < 1e-30`; and each sign keeps at most [`MAX_BUCKETS`] buckets (a dynamic
//! range of about 2^20 below the largest magnitude seen), values below that range being
//! counted in the lowest kept bucket, so for them `|v - x_r| <= 2^-19 * max|x|`.
//!
//! The bucket index uses a piecewise-linear approximation of `log2` read off the float's
//! exponent and mantissa bits, which is a few integer operations per value; the bucket
//! width is set so that every bucket spans a ratio of at most `gamma = (1 + alpha) / (1 - alpha)`.

use serde::{Deserialize, Serialize};

/// Default relative accuracy of [`QuantileSketch`].
pub const DEFAULT_ALPHA: f64 = 0.005;
/// Magnitudes below this are counted as zero.
pub const ZERO_MAGNITUDE: f32 = 1e-30;
/// The most buckets kept per sign.
pub const MAX_BUCKETS: usize = 2048;

/// Quantile sketch of one dimension's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    /// Buckets per unit of approximate `log2`; `1 / ln(gamma)`.
    multiplier: f64,
    /// Magnitudes of positive (index 0) and negative (index 1) values: indexed by the sign
    /// bit, so inserting does not branch on the sign.
    stores: [Store; 2],
    zero: u64,
}

/// Contiguous bucket counts starting at key `offset`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
}

impl Store {
    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn max_key(&self) -> Option<i32> {
        (!self.counts.is_empty()).then(|| self.offset + self.counts.len() as i32 - 1)
    }

    #[inline]
    fn add(&mut self, key: i32, n: u64) {
        // Hot path: the key falls inside the current window.
        let i = key.wrapping_sub(self.offset) as u32 as usize;
        if let Some(c) = self.counts.get_mut(i) {
            *c += n;
            return;
        }
        self.add_slow(key, n);
    }

    #[cold]
    fn add_slow(&mut self, key: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = key;
            self.counts.push(n);
            return;
        }
        let max = self.max_key().expect("non-empty");
        if key > max {
            // Grow upwards, then collapse anything that fell out of the window.
            self.counts.resize((key - self.offset + 1) as usize, 0);
            self.collapse();
        } else if key < self.offset {
            let floor = max - MAX_BUCKETS as i32 + 1;
            let key = key.max(floor);
            if key < self.offset {
                let grow = (self.offset - key) as usize;
                self.counts.splice(0..0, std::iter::repeat_n(0, grow));
                self.offset = key;
            }
            let i = (key - self.offset) as usize;
            self.counts[i] += n;
            return;
        }
        let i = (key - self.offset) as usize;
        self.counts[i] += n;
    }

    /// Folds the lowest buckets so at most `MAX_BUCKETS` remain.
    fn collapse(&mut self) {
        let len = self.counts.len();
        if len > MAX_BUCKETS {
            let cut = len - MAX_BUCKETS;
            let folded: u64 = self.counts[..=cut].iter().sum();
            self.counts.drain(..cut);
            self.counts[0] = folded;
            self.offset += cut as i32;
        }
    }

    fn merge(&mut self, other: &Store) {
        if other.counts.is_empty() {
            return;
        }
        // Make room for other's highest key first, so collapsing is order independent.
        let other_max = other.max_key().expect("non-empty");
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        if other_max > self.max_key().expect("non-empty") {
            self.add(other_max, 0);
        }
        for (i, &c) in other.counts.iter().enumerate() {
            if c > 0 {
                self.add(other.offset + i as i32, c);
            }
        }
    }
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self::new(DEFAULT_ALPHA)
    }
}

impl QuantileSketch {
    /// An empty sketch with relative accuracy `alpha` (0 < alpha < 1).
    pub fn new(alpha: f64) -> Self {
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        Self {
            multiplier: 1.0 / gamma.ln(),
            stores: [Store::default(), Store::default()],
            zero: 0,
        }
    }

    /// The relative accuracy this sketch guarantees.
    pub fn alpha(&self) -> f64 {
        let gamma = (1.0 / self.multiplier).exp();
        (gamma - 1.0) / (gamma + 1.0)
    }

    /// The number of values counted.
    pub fn count(&self) -> u64 {
        self.zero + self.stores[0].total() + self.stores[1].total()
    }

    /// Bucket of a magnitude (sign bit ignored): approximate `log2` = exponent plus mantissa
    /// fraction, times the multiplier, floored.
    #[inline]
    fn key(&self, bits: u32) -> i32 {
        let e = (((bits >> 23) & 0xff) as i32 - 127) as f64;
        let f = (bits & 0x7f_ffff) as f64 * (1.0 / (1u32 << 23) as f64);
        ((e + f) * self.multiplier).floor() as i32
    }

    /// Inverse of the approximate `log2`: the value whose key boundary is `l`.
    fn unkey(l: f64) -> f64 {
        let e = l.floor();
        (e).exp2() * (1.0 + (l - e))
    }

    /// Representative value of bucket `key`: within `alpha` of everything in it.
    fn bucket_value(&self, key: i32) -> f64 {
        let lo = Self::unkey(key as f64 / self.multiplier);
        let hi = Self::unkey((key + 1) as f64 / self.multiplier);
        2.0 * lo * hi / (lo + hi)
    }

    /// Counts one finite value.
    #[inline]
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN counts as zero, not as a bucket
    pub fn insert(&mut self, x: f32) {
        if !(x.abs() >= ZERO_MAGNITUDE) {
            self.zero += 1;
            return;
        }
        let bits = x.to_bits();
        let k = self.key(bits);
        self.stores[(bits >> 31) as usize].add(k, 1);
    }

    /// Adds `other`'s counts. Panics if the two were built with different accuracies.
    pub fn merge(&mut self, other: &QuantileSketch) {
        assert_eq!(
            self.multiplier, other.multiplier,
            "merging sketches of different accuracy"
        );
        self.zero += other.zero;
        self.stores[0].merge(&other.stores[0]);
        self.stores[1].merge(&other.stores[1]);
    }

    /// The 0-based rank `floor(q (n - 1))` among the `n` values counted that quantile `q`
    /// (clamped to `[0, 1]`) stands for, or `None` when the sketch is empty.
    pub fn rank(&self, q: f64) -> Option<u64> {
        let n = self.count();
        (n > 0).then(|| (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64)
    }

    /// The value at quantile `q` in `[0, 1]` (see the module docs for the bound), or
    /// `None` when the sketch is empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        let rank = self.rank(q)?;
        let mut seen = 0u64;
        // Most negative first: highest negative key down.
        let (positive, negative) = (&self.stores[0], &self.stores[1]);
        for (i, &c) in negative.counts.iter().enumerate().rev() {
            seen += c;
            if seen > rank {
                return Some(-self.bucket_value(negative.offset + i as i32));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (i, &c) in positive.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return Some(self.bucket_value(positive.offset + i as i32));
            }
        }
        unreachable!("rank {rank} < count {n}")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sketch(xs: &[f32]) -> QuantileSketch {
        let mut s = QuantileSketch::default();
        xs.iter().for_each(|&x| s.insert(x));
        s
    }

    fn check_bound(s: &QuantileSketch, xs: &[f32], q: f64) -> Result<(), TestCaseError> {
        let mut sorted = xs.to_vec();
        sorted.sort_by(f32::total_cmp);
        let r = (q * (sorted.len() - 1) as f64).floor() as usize;
        let exact = sorted[r] as f64;
        let v = s.quantile(q).unwrap();
        let tol = s.alpha() * exact.abs() * (1.0 + 1e-9) + ZERO_MAGNITUDE as f64;
        prop_assert!(
            (v - exact).abs() <= tol,
            "q={q} v={v} exact={exact} tol={tol}"
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn merged_halves_equal_whole_and_meet_bound(
            xs in prop::collection::vec(-1.0e3f32..1.0e3, 1..400),
            split in 0usize..400,
            q in 0.0f64..=1.0,
        ) {
            let split = split.min(xs.len());
            let mut a = sketch(&xs[..split]);
            let b = sketch(&xs[split..]);
            a.merge(&b);
            let whole = sketch(&xs);
            prop_assert_eq!(&a, &whole);
            check_bound(&whole, &xs, q)?;
            for q in [0.0, 0.001, 0.01, 0.5, 0.99, 0.999, 1.0] {
                check_bound(&whole, &xs, q)?;
            }
        }

        #[test]
        fn merge_is_order_independent_with_collapsing(
            xs in prop::collection::vec(prop_oneof![-1.0f32..1.0, -1e-9f32..1e-9, -1e9f32..1e9], 1..300),
            split in 0usize..300,
        ) {
            let split = split.min(xs.len());
            let mut a = sketch(&xs[..split]);
            let mut b = sketch(&xs[split..]);
            let whole = sketch(&xs);
            let a0 = a.clone();
            a.merge(&b);
            b.merge(&a0);
            prop_assert_eq!(&a, &whole);
            prop_assert_eq!(&b, &whole);
        }
    }

    #[test]
    fn tails_of_a_large_sample_are_accurate() {
        // 100k values of a smooth distribution: tail quantiles within alpha.
        let xs: Vec<f32> = (0..100_000)
            .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 0.3)
            .collect();
        let s = sketch(&xs);
        for q in [0.0005, 0.001, 0.999, 0.9995] {
            check_bound(&s, &xs, q).unwrap();
        }
    }

    #[test]
    fn tiny_values_go_to_zero() {
        let s = sketch(&[1e-33, -1e-33, 2e-33]);
        assert_eq!(s.quantile(0.5), Some(0.0));
        assert_eq!(QuantileSketch::default().quantile(0.5), None);
    }
}
