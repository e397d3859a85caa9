//! The multi-bit RaBitQ tier (`rabitq2` to `rabitq8`): each row's 1-bit code (sign bits and
//! factors, the `_rq` column) and extra bits (`_rq<b>`), scored exactly by the float estimator
//! over bit planes ([`crate::kernels::planes`]: AVX-512 masked adds, AVX2, scalar twin). As a
//! first tier it scores every row; as a later tier, the candidates. Its estimates carry the
//! RaBitQ error bound, so it prunes with `:bound` ([`crate::search::bound`]).

use super::{TierCodes, Valid};
use crate::codec::rabitq_ex::{half_width, RabitqExCodec};
use crate::search::bound::{self, Bounded};
use crate::search::chain::Tier;
use crate::search::topk::TopK;
use crate::search::RabitqBits;

pub(super) struct RabitqExTier {
    signs: std::sync::Arc<[u8]>,
    extra: Vec<u8>,
    codec: RabitqExCodec,
    dim: usize,
    /// Per row, the bound's half-width per unit of `eps0 |q|`.
    widths: Vec<f32>,
}

impl RabitqExTier {
    pub(super) fn new(
        signs: std::sync::Arc<[u8]>,
        extra: Vec<u8>,
        codec: RabitqExCodec,
        dim: usize,
    ) -> Self {
        let (w1, w2) = (codec.base().width(), codec.width());
        let widths = signs
            .chunks_exact(w1)
            .zip(extra.chunks_exact(w2))
            .map(|(s, e)| {
                let (norm, _) = codec.base().code_factors(s);
                half_width(norm, codec.factors(e).1, codec.base().bits())
            })
            .collect();
        RabitqExTier {
            signs,
            extra,
            codec,
            dim,
            widths,
        }
    }

    fn rows(&self) -> usize {
        self.widths.len()
    }

    fn codes(&self, row: u32) -> (&[u8], &[u8]) {
        let (w1, w2, r) = (self.codec.base().width(), self.codec.width(), row as usize);
        (
            &self.signs[r * w1..(r + 1) * w1],
            &self.extra[r * w2..(r + 1) * w2],
        )
    }
}

impl TierCodes for RabitqExTier {
    fn tier(&self) -> Tier {
        Tier::Rabitq(RabitqBits::new(self.codec.bits()).expect("the codec's bits are 2 to 8"))
    }

    fn query_group(&self) -> usize {
        1
    }

    fn scan(&self, group: &[f32], keep: usize, valid: Valid<'_>) -> Vec<Vec<(u32, f32)>> {
        group
            .chunks_exact(self.dim)
            .map(|q| {
                let score = self.scorer(q);
                let mut top = TopK::new(keep);
                for row in 0..self.rows() {
                    if valid.get(row) {
                        top.push(score(row as u32), row as u32);
                    }
                }
                top.into_sorted()
            })
            .collect()
    }

    fn scorer<'a>(&'a self, query: &[f32]) -> Box<dyn Fn(u32) -> f32 + 'a> {
        let p = self.codec.prepare_query(query);
        Box::new(move |r| {
            let (s, e) = self.codes(r);
            p.score(&self.codec, s, e)
        })
    }

    fn bounded_scorer<'a>(&'a self, query: &[f32], eps0: f32) -> Option<super::BoundedScorer<'a>> {
        let p = self.codec.prepare_query(query);
        let unit = eps0 * p.norm;
        Some(Box::new(move |r| {
            let (s, e) = self.codes(r);
            (p.score(&self.codec, s, e), unit * self.widths[r as usize])
        }))
    }

    fn scan_bounded(
        &self,
        group: &[f32],
        k: usize,
        eps0: f32,
        valid: Valid<'_>,
    ) -> Option<Vec<Bounded>> {
        Some(
            group
                .chunks_exact(self.dim)
                .map(|q| {
                    let score = self.bounded_scorer(q, eps0).expect("bounded");
                    bound::scan_all(self.rows(), k, valid, score)
                })
                .collect(),
        )
    }
}
