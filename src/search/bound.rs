//! Pruning by error bounds between tiers (`rabitq1:bound,rabitq4:bound,int8`).
//!
//! A tier with an error bound scores each row with an estimate `e` and a half-width `h` such
//! that the true inner product lies in `[e - h, e + h]` with the bound's confidence (the
//! RaBitQ bound, [`crate::codec::rabitq_ex::half_width`], at confidence parameter `eps0`).
//! Given as `tier:bound`, the tier keeps every row whose upper bound `e + h` reaches the k-th
//! best lower bound `e - h` among the rows it scored, and drops the others: a dropped row's
//! true inner product is below the k-th best true inner product, so it cannot be in the true
//! top-k. The number of rows kept follows the codes' error, query by query, instead of a fixed
//! `k x factor`.
//!
//! **Certified**: a query's final top-k is certified against the last tier's estimator when
//! every earlier tier pruned by its bound (a fixed factor that dropped rows leaves it
//! uncertified) and the largest upper bound among the dropped rows, plus the last tier's
//! deterministic error (0 for float; `sum_i |q_i| step_i / 2` for int8 and int4 codes that
//! clipped nothing), is below the k-th score returned: no dropped row could have entered the
//! last tier's top-k over the whole corpus. Tiers without a deterministic error (binary, f16,
//! RaBitQ) as the last tier never certify. It holds with the bound's confidence
//! (`eps0 = 1.9`: about 0.1% of estimates fall outside their bound, see the codec docs).

use super::tier::Valid;
use super::topk::TopK;

/// What a chain did for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryReport {
    /// Rows each tier kept, in chain order (the last tier: the hits returned).
    pub kept: Vec<usize>,
    /// Whether the top-k is certified against the last tier's estimator (module docs).
    pub certified: bool,
}

/// The rows a bounded tier kept for one query and the largest upper bound it dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bounded {
    /// `(row, estimate)`, best first.
    pub kept: Vec<(u32, f32)>,
    /// The largest upper bound among the rows dropped (`-inf` when none was dropped).
    pub pruned_max: f32,
}

impl Bounded {
    /// Keeps the rows of `scored` (`(row, estimate, half-width)`) whose upper bound reaches the
    /// k-th best lower bound among them.
    pub fn select(scored: impl IntoIterator<Item = (u32, f32, f32)>, k: usize) -> Bounded {
        let mut lows = TopK::new(k.max(1));
        let mut all = Vec::new();
        for (row, e, h) in scored {
            lows.push(e - h, row);
            all.push((row, e, e + h));
        }
        Self::finish(all, lows.threshold(), f32::NEG_INFINITY)
    }

    /// The rows of `cands` (`(row, estimate, upper)`) whose upper bound reaches `cut` (the
    /// k-th best lower bound; `None`: fewer than k rows, all kept), best first.
    pub(crate) fn finish(cands: Vec<(u32, f32, f32)>, cut: Option<f32>, pruned: f32) -> Bounded {
        let mut pruned_max = pruned;
        let mut kept: Vec<(u32, f32)> = Vec::with_capacity(cands.len());
        for (row, e, u) in cands {
            match cut {
                Some(c) if u < c => pruned_max = pruned_max.max(u),
                _ => kept.push((row, e)),
            }
        }
        kept.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Bounded { kept, pruned_max }
    }
}

/// The bounded first-tier scan of one query over every valid row, scored by `score` (`(estimate,
/// half-width)`): rows are dropped on the fly once k lower bounds are known, and the survivors
/// are checked again against the final k-th best lower bound.
pub(crate) fn scan_all(
    rows: usize,
    k: usize,
    valid: Valid<'_>,
    score: impl Fn(u32) -> (f32, f32),
) -> Bounded {
    let mut lows = TopK::new(k.max(1));
    let mut cands = Vec::new();
    let mut pruned = f32::NEG_INFINITY;
    for row in 0..rows {
        if !valid.get(row) {
            continue;
        }
        let (e, h) = score(row as u32);
        lows.push(e - h, row as u32);
        match lows.threshold() {
            Some(c) if e + h < c => pruned = pruned.max(e + h),
            _ => cands.push((row as u32, e, e + h)),
        }
    }
    Bounded::finish(cands, lows.threshold(), pruned)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_dropped_row_cannot_beat_the_kth_lower_bound(
            rows in prop::collection::vec((-1.0f32..1.0, 0.0f32..0.3), 0..200),
            k in 1usize..20,
        ) {
            let score = |r: u32| rows[r as usize];
            let b = scan_all(rows.len(), k, Valid(None), score);
            let sel = Bounded::select(rows.iter().enumerate().map(|(i, &(e, h))| (i as u32, e, h)), k);
            // The streaming scan keeps the same rows as the one-shot selection.
            prop_assert_eq!(&b, &sel);
            let mut lows: Vec<f32> = rows.iter().map(|&(e, h)| e - h).collect();
            lows.sort_by(|a, b| b.total_cmp(a));
            let kept: Vec<u32> = b.kept.iter().map(|r| r.0).collect();
            for (i, &(e, h)) in rows.iter().enumerate() {
                let dropped = !kept.contains(&(i as u32));
                if lows.len() >= k && e + h >= lows[k - 1] {
                    // Every row that could still be in the top-k is kept.
                    prop_assert!(!dropped, "row {i} dropped with upper {} >= cut {}", e + h, lows[k - 1]);
                }
                if dropped {
                    prop_assert!(e + h <= b.pruned_max);
                }
            }
            if rows.len() <= k {
                prop_assert_eq!(kept.len(), rows.len());
            }
            prop_assert!(b.kept.windows(2).all(|w| w[0].1 >= w[1].1));
        }
    }
}
