//! Streaming selection for the binary scan: the rows closest in Hamming distance, ties kept.

/// Streaming selection of the rows closest in Hamming distance, ties kept (see
/// `Corpus::scan_binary`).
pub(super) struct TieSelect {
    keep: usize,
    /// Rows farther than this are not candidates.
    pub(super) cut: u32,
    cands: Vec<(u32, u32)>,
    counts: Vec<u64>,
}

impl TieSelect {
    pub(super) fn new(keep: usize, bits: usize) -> Self {
        Self {
            keep,
            cut: bits as u32,
            cands: Vec::with_capacity(4 * keep + 1),
            counts: vec![0; bits + 1],
        }
    }

    #[inline]
    pub(super) fn push(&mut self, row: u32, dist: u32) {
        self.cands.push((row, dist));
        self.counts[dist as usize] += 1;
        if self.cands.len() > 4 * self.keep.max(1) {
            self.prune();
        }
    }

    /// The smallest distance with at least `keep` rows at or below it.
    pub(super) fn cut_off(&self) -> u32 {
        let mut below = 0;
        for (d, &c) in self.counts.iter().enumerate() {
            below += c;
            if below >= self.keep as u64 {
                return d as u32;
            }
        }
        (self.counts.len() - 1) as u32
    }

    pub(super) fn prune(&mut self) {
        let cut = self.cut_off();
        if cut < self.cut {
            self.cut = cut;
            let counts = &mut self.counts;
            self.cands.retain(|&(_, d)| {
                if d > cut {
                    counts[d as usize] -= 1;
                }
                d <= cut
            });
        }
    }

    /// Rows closer than the cut-off, then tied rows in row order up to `2 x keep` in all;
    /// best first (distance, then row).
    pub(super) fn finish(mut self) -> Vec<(u32, u32)> {
        let cut = self.cut_off();
        let below: u64 = self.counts[..cut as usize].iter().sum();
        let at = self.counts[cut as usize];
        let ties = (self.keep as u64)
            .saturating_sub(below)
            .max(at.min((2 * self.keep as u64).saturating_sub(below)));
        let mut taken = 0;
        self.cands.retain(|&(_, d)| {
            if d == cut {
                taken += 1;
                taken <= ties
            } else {
                d < cut
            }
        });
        self.cands.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        self.cands
    }
}
