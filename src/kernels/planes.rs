//! Masked sums over bit planes: for a float query `q` and `P` planes of packed bits (each
//! `B / 8` bytes, MSB-first like the sign bits: dimension `8j + t` is bit `7 - t` of byte `j`),
//! `S_p = sum { q_i : bit i of plane p is set }`. The multi-bit RaBitQ estimator is a weighted
//! sum of these (the sign plane and each extra-bit plane, [`crate::codec::rabitq_ex`]), so a
//! code is scored in float, exactly, with no quantization of the query.
//!
//! Paths: AVX-512 (one masked add per 16 dimensions per plane, the plane's two bytes as the
//! mask), AVX2 (each byte widened to an 8-lane mask with a compare, then an and + add) and the
//! scalar twin (one branch per bit). The vector paths read the query in lane order (each byte's
//! 8 dimensions reversed, so mask bit `t` is dimension `8j + 7 - t`), built once per query by
//! [`PlaneQuery::new`]. Sums differ between paths only by float rounding order (tested).

/// The most planes one call scores (the sign plane and up to 7 extra-bit planes).
pub const MAX_PLANES: usize = 8;

/// A query prepared for [`PlaneQuery::sums`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneQuery {
    /// The query in dimension order, zero-padded to a multiple of 16.
    natural: Vec<f32>,
    /// The query in lane order (each group of 8 reversed), zero-padded to a multiple of 16.
    lanes: Vec<f32>,
    /// Bytes per plane.
    bytes: usize,
}

impl PlaneQuery {
    /// Prepares `q` (one value per bit of a plane; planes hold `q.len().div_ceil(8)` bytes).
    pub fn new(q: &[f32]) -> Self {
        let bytes = q.len().div_ceil(8);
        let padded = bytes.next_multiple_of(2) * 8;
        let mut natural = vec![0f32; padded];
        natural[..q.len()].copy_from_slice(q);
        let mut lanes = vec![0f32; padded];
        for (l, n) in lanes.chunks_exact_mut(8).zip(natural.chunks_exact(8)) {
            for t in 0..8 {
                l[t] = n[7 - t];
            }
        }
        PlaneQuery {
            natural,
            lanes,
            bytes,
        }
    }

    /// `out[p] = S_p` for the planes `planes[p]` (each [`PlaneQuery::bytes`] long, at most
    /// [`MAX_PLANES`]).
    pub fn sums(&self, planes: &[&[u8]], out: &mut [f32]) {
        assert!(planes.len() <= MAX_PLANES && out.len() == planes.len());
        for p in planes {
            assert_eq!(p.len(), self.bytes, "plane of the wrong width");
        }
        #[cfg(target_arch = "x86_64")]
        {
            if crate::simd::has_avx512() {
                // SAFETY: the dispatch layer detected AVX-512 F/BW/VL; every plane holds
                // `bytes` bytes and the query `bytes.next_multiple_of(2) * 8` values.
                unsafe { self.sums_avx512(planes, out) };
                return;
            }
            if crate::simd::has_avx2() {
                // SAFETY: the dispatch layer detected AVX2; widths checked above.
                unsafe { self.sums_avx2(planes, out) };
                return;
            }
        }
        self.sums_scalar(planes, out)
    }

    /// The scalar twin: one branch per bit.
    pub fn sums_scalar(&self, planes: &[&[u8]], out: &mut [f32]) {
        for (o, plane) in out.iter_mut().zip(planes) {
            let mut s = 0f32;
            for (j, &byte) in plane.iter().enumerate() {
                for t in 0..8 {
                    if byte >> (7 - t) & 1 == 1 {
                        s += self.natural[8 * j + t];
                    }
                }
            }
            *o = s;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    #[allow(clippy::needless_range_loop)]
    unsafe fn sums_avx512(&self, planes: &[&[u8]], out: &mut [f32]) {
        use std::arch::x86_64::*;
        let np = planes.len();
        let mut acc = [_mm512_setzero_ps(); MAX_PLANES];
        let pairs = self.bytes / 2;
        for c in 0..pairs {
            // SAFETY: `lanes` holds at least 16 * pairs values.
            let v = unsafe { _mm512_loadu_ps(self.lanes.as_ptr().add(16 * c)) };
            for p in 0..np {
                let m = u16::from_le_bytes([planes[p][2 * c], planes[p][2 * c + 1]]);
                acc[p] = _mm512_mask_add_ps(acc[p], m, acc[p], v);
            }
        }
        if self.bytes % 2 == 1 {
            let c = pairs;
            // SAFETY: the query is padded to an even number of bytes' values.
            let v = unsafe { _mm512_loadu_ps(self.lanes.as_ptr().add(16 * c)) };
            for p in 0..np {
                let m = planes[p][2 * c] as u16;
                acc[p] = _mm512_mask_add_ps(acc[p], m, acc[p], v);
            }
        }
        for p in 0..np {
            out[p] = _mm512_reduce_add_ps(acc[p]);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)]
    unsafe fn sums_avx2(&self, planes: &[&[u8]], out: &mut [f32]) {
        use std::arch::x86_64::*;
        let np = planes.len();
        let mut acc = [_mm256_setzero_ps(); MAX_PLANES];
        let select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        for j in 0..self.bytes {
            // SAFETY: `lanes` holds at least 8 * bytes values.
            let v = unsafe { _mm256_loadu_ps(self.lanes.as_ptr().add(8 * j)) };
            for p in 0..np {
                let b = _mm256_set1_epi32(planes[p][j] as i32);
                let m = _mm256_cmpeq_epi32(_mm256_and_si256(b, select), select);
                acc[p] = _mm256_add_ps(acc[p], _mm256_and_ps(v, _mm256_castsi256_ps(m)));
            }
        }
        for p in 0..np {
            let a = acc[p];
            let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            out[p] = _mm_cvtss_f32(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_path_matches_the_scalar_twin(bits in 1usize..600, np in 1usize..=MAX_PLANES, seed in any::<u64>()) {
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); s >> 33 };
            let q: Vec<f32> = (0..bits).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            let bytes = bits.div_ceil(8);
            let planes: Vec<Vec<u8>> = (0..np).map(|_| (0..bytes).map(|j| {
                let b = next() as u8;
                // Padding bits past the last dimension are zero, as the codecs write them.
                if j + 1 == bytes && bits % 8 != 0 { b & (0xffu8 << (8 - bits % 8)) } else { b }
            }).collect()).collect();
            let refs: Vec<&[u8]> = planes.iter().map(|p| p.as_slice()).collect();
            let pq = PlaneQuery::new(&q);
            let mut want = vec![0f32; np];
            pq.sums_scalar(&refs, &mut want);
            // The definition, in f64.
            for (p, plane) in planes.iter().enumerate() {
                let exact: f64 = (0..bits).filter(|&i| plane[i / 8] >> (7 - i % 8) & 1 == 1).map(|i| q[i] as f64).sum();
                prop_assert!((want[p] as f64 - exact).abs() <= 1e-4 * (1.0 + exact.abs()), "{} vs {}", want[p], exact);
            }
            let mut got = vec![0f32; np];
            pq.sums(&refs, &mut got);
            for (a, b) in got.iter().zip(&want) {
                prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
            #[cfg(target_arch = "x86_64")]
            {
                if crate::simd::has_avx2() {
                    // SAFETY: AVX2 detected.
                    unsafe { pq.sums_avx2(&refs, &mut got) };
                    for (a, b) in got.iter().zip(&want) {
                        prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "avx2 {a} vs {b}");
                    }
                }
                if crate::simd::has_avx512() {
                    // SAFETY: AVX-512 detected.
                    unsafe { pq.sums_avx512(&refs, &mut got) };
                    for (a, b) in got.iter().zip(&want) {
                        prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "avx512 {a} vs {b}");
                    }
                }
            }
        }
    }
}
