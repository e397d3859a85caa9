//! Bounded top-k: keeps the `k` best `(score, row)` pairs, higher score first, ties broken by
//! the lower row so results are deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Which corpus rows may be returned (`None`: all; rows whose vector is null are not).
#[derive(Clone, Copy)]
pub(crate) struct Valid<'a>(pub(crate) Option<&'a [bool]>);

impl Valid<'_> {
    #[inline]
    pub(crate) fn get(&self, row: usize) -> bool {
        self.0.is_none_or(|v| v[row])
    }
}

/// A scored row. Ordered so that the *worst* entry is the heap's maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    score: f32,
    row: u32,
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Worse = lower score, or equal score and higher row.
        other
            .score
            .total_cmp(&self.score)
            .then(self.row.cmp(&other.row))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` best rows seen so far.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

impl TopK {
    /// An empty selection of at most `k` rows.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Offers a row; true when it entered the selection.
    #[inline]
    pub fn push(&mut self, score: f32, row: u32) -> bool {
        let e = Entry { score, row };
        if self.heap.len() < self.k {
            self.heap.push(e);
            return true;
        }
        match self.heap.peek() {
            Some(worst) if e < *worst => {
                self.heap.pop();
                self.heap.push(e);
                true
            }
            _ => false,
        }
    }

    /// The rows held, in no particular order.
    #[cfg_attr(not(feature = "recall"), allow(dead_code))]
    pub fn rows(&self) -> impl Iterator<Item = u32> + '_ {
        self.heap.iter().map(|e| e.row)
    }

    /// The score a row must beat to enter (None until `k` rows are held).
    #[inline]
    pub fn threshold(&self) -> Option<f32> {
        (self.heap.len() == self.k)
            .then(|| self.heap.peek().map(|e| e.score))
            .flatten()
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<(u32, f32)> {
        let mut v: Vec<Entry> = self.heap.into_vec();
        v.sort();
        v.into_iter().map(|e| (e.row, e.score)).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn equals_a_full_sort(scores in prop::collection::vec(prop_oneof![Just(0.5f32), -1.0f32..1.0], 0..300), k in 0usize..40) {
            let mut t = TopK::new(k);
            let mut entered = Vec::new();
            for (i, &s) in scores.iter().enumerate() {
                if t.push(s, i as u32) {
                    entered.push(i as u32);
                }
            }
            // Every row held entered when offered, and a row that did not enter beat nothing.
            let mut held: Vec<u32> = t.rows().collect();
            held.sort_unstable();
            prop_assert!(held.iter().all(|r| entered.contains(r)));
            prop_assert!(entered.len() >= held.len());
            let mut all: Vec<(u32, f32)> = scores.iter().enumerate().map(|(i, &s)| (i as u32, s)).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            prop_assert_eq!(t.into_sorted(), all);
        }
    }
}
