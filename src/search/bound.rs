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
//! RaBitQ) as the last tier never certify. It holds with the bound's confidence: at
//! `eps0 = 1.9` about 6% of single estimates fall outside their bound, but a true top-k row is
//! dropped only when its estimate errs by more than its own half-width plus its margin over
//! the k-th best lower bound (roughly twice the bound), which is rare; raise `eps0`
//! (`rabitq1:bound=3`) for a wider margin. A narrower bound is refused
//! ([`crate::codec::rabitq_ex::MIN_EPS0`], the default): its certificate would not hold.
//! A `k` beyond the corpus' rows is refused too ([`crate::Error::KOutOfRange`]), never cut
//! and then reported as a certified top-k of the size asked for.

use super::topk::{TopK, Valid};

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
    use crate::codec::int8::Int8Codec;
    use crate::codec::rabitq::{RabitqCodec, Rotation};
    use crate::codec::rabitq_ex::RabitqExCodec;
    use crate::codec::tests::calibrate;
    use crate::search::tiered::{Codes, Corpus, InMemoryFloats, Tier, TierSpec};
    use crate::search::RabitqBits;
    use crate::testutil::vectors_array;
    use crate::vectors::Vectors;

    /// 2,000 rows of 64-d vectors with int8, 1- and 4-bit RaBitQ codes and the floats.
    fn corpus() -> (Corpus, Vec<f32>, RabitqExCodec, Vec<u8>, Vec<u8>) {
        let (rows, dim) = (2000, 64);
        let a = vectors_array(rows, dim, 21, 0.0);
        let cal = calibrate(&a);
        let values = Vectors::try_new(&a).unwrap().values().to_vec();
        let i8c = Int8Codec::new(&cal);
        let mut i8 = vec![0u8; values.len()];
        i8c.encode_slice(&values, &mut i8, 0x80).unwrap();
        let ex = RabitqExCodec::new(RabitqCodec::new(&cal, Rotation::default()), 4).unwrap();
        let mut s = vec![0u8; rows * ex.base().width()];
        let mut e = vec![0u8; rows * ex.width()];
        ex.encode_slice(&values, &mut s, &mut e).unwrap();
        let mut c = Corpus::new(rows, dim);
        c.insert(Codes::Int8(i8.into_iter().map(|x| x as i8).collect(), i8c))
            .unwrap();
        c.insert(Codes::Rabitq(s.clone().into(), ex.base().clone()))
            .unwrap();
        c.insert(Codes::RabitqEx {
            signs: s.clone().into(),
            extra: e.clone(),
            codec: ex.clone(),
        })
        .unwrap();
        c.set_floats(Box::new(InMemoryFloats {
            values: values.clone(),
            dim,
        }));
        (c, values, ex, s, e)
    }

    #[test]
    fn chains_with_bounds_parse_and_print() {
        let c = TierSpec::parse_chain("rabitq1:bound,rabitq4:bound=2.5,int8").unwrap();
        assert_eq!(c[0].tier, Tier::Rabitq(RabitqBits::ONE));
        assert_eq!(c[0].bound, Some(crate::codec::rabitq_ex::DEFAULT_EPS0));
        assert_eq!(
            (c[1].tier, c[1].bound),
            (Tier::Rabitq(RabitqBits::new(4).unwrap()), Some(2.5))
        );
        assert_eq!(c[2].bound, None);
        let shown: Vec<String> = c[..2].iter().map(|s| s.to_string()).collect();
        assert_eq!(shown, ["rabitq:bound", "rabitq4:bound=2.5"]);
        assert_eq!(
            "rabitq8".parse::<Tier>().unwrap(),
            Tier::Rabitq(RabitqBits::new(8).unwrap())
        );
        for bad in [
            "int8:bound,float",
            "rabitq9,int8",
            "rabitq0",
            "rabitq4:bound=x,int8",
            "rabitq4:bound=-1,int8",
            "rabitq4:boundless,int8",
        ] {
            assert_err!(
                TierSpec::parse_chain(bad),
                crate::Error::BadArgument { .. },
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bound_narrower_than_the_default_is_refused() {
        use crate::codec::rabitq_ex::MIN_EPS0;
        // The floor, and anything wider, parse; narrower bounds (which would certify wrong
        // answers) are refused with the floor in the message.
        for ok in ["1.9", "2", "2.5", " 4 ", "1e3"] {
            let c = TierSpec::parse_chain(&format!("rabitq1:bound={ok},int8")).unwrap();
            assert!(c[0].bound.unwrap() >= MIN_EPS0, "{ok}");
        }
        for bad in ["1.89", "1", "0.5", "1e-45", "0", "inf", "NaN"] {
            let e = TierSpec::parse_chain(&format!("rabitq1:bound={bad},int8")).unwrap_err();
            assert!(
                e.to_string().contains(&format!(">= {MIN_EPS0}")),
                "{bad}: {e}"
            );
        }
        // A chain built by hand is held to the same floor by the search.
        let (c, _, _, _, _) = corpus();
        let q = vec![0.1f32; 64];
        let mut chain = TierSpec::parse_chain("rabitq1:bound,int8").unwrap();
        chain[0].bound = Some(1e-45);
        let e = c.search_reported(&q, 10, &chain).unwrap_err();
        assert!(e.to_string().contains(&format!(">= {MIN_EPS0}")), "{e}");
        chain[0].bound = Some(MIN_EPS0);
        c.search_reported(&q, 10, &chain).unwrap();
    }

    #[test]
    fn four_bit_tier_ranks_by_its_estimator_and_certified_answers_are_exact() {
        let (c, values, ex, s, e) = corpus();
        let dim = 64;
        let queries = Vectors::try_new(&vectors_array(24, dim, 5, 0.0))
            .unwrap()
            .values()
            .to_vec();
        let k = 10;
        let alone = c
            .search(&queries, k, &TierSpec::parse_chain("rabitq4").unwrap())
            .unwrap();
        let (w1, w2) = (ex.base().width(), ex.width());
        for (q, hits) in alone.iter().enumerate() {
            let p = ex.prepare_query(&queries[q * dim..(q + 1) * dim]);
            let mut all: Vec<(u32, f32)> = (0..2000)
                .map(|r| {
                    let sc = p.score(&ex, &s[r * w1..(r + 1) * w1], &e[r * w2..(r + 1) * w2]);
                    (r as u32, sc)
                })
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let got: Vec<u32> = hits.iter().map(|h| h.row).collect();
            let want: Vec<u32> = all[..k].iter().map(|x| x.0).collect();
            assert_eq!(got, want);
            assert!(hits
                .iter()
                .all(|h| h.tier == Tier::Rabitq(RabitqBits::new(4).unwrap())));
        }
        let chain = TierSpec::parse_chain("rabitq1:bound,rabitq4:bound,float").unwrap();
        let (hits, reports) = c.search_reported(&queries, k, &chain).unwrap();
        let mut certified = 0;
        for (q, (h, rep)) in hits.iter().zip(&reports).enumerate() {
            assert_eq!(rep.kept.len(), 3);
            assert!(rep.kept[0] >= k && rep.kept[0] < 2000, "{rep:?}");
            assert!(rep.kept[1] >= k && rep.kept[1] <= rep.kept[0], "{rep:?}");
            assert_eq!(rep.kept[2], k);
            let query = &queries[q * dim..(q + 1) * dim];
            let mut exact: Vec<(u32, f32)> = values
                .chunks_exact(dim)
                .enumerate()
                .map(|(r, v)| (r as u32, crate::kernels::float::dot(query, v)))
                .collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let got: Vec<u32> = h.iter().map(|h| h.row).collect();
            let want: Vec<u32> = exact[..k].iter().map(|x| x.0).collect();
            if rep.certified {
                certified += 1;
                assert_eq!(got, want, "query {q} certified");
            }
        }
        assert!(certified >= 12, "{certified} of 24 certified");
        // A fixed factor that drops rows does not certify; int8 as the last tier can.
        let (_, reps) = c
            .search_reported(
                &queries,
                k,
                &TierSpec::parse_chain("rabitq:4,float").unwrap(),
            )
            .unwrap();
        assert!(reps.iter().all(|r| !r.certified && r.kept == vec![40, 10]));
        let (_, reps) = c
            .search_reported(
                &queries,
                k,
                &TierSpec::parse_chain("rabitq1:bound,rabitq4:bound,int8").unwrap(),
            )
            .unwrap();
        assert!(reps.iter().any(|r| r.certified));
        // Exact search is certified.
        let (_, reps) = c
            .search_reported(&queries, k, &TierSpec::parse_chain("float").unwrap())
            .unwrap();
        assert!(reps.iter().all(|r| r.certified));
    }

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
