//! Hamming distance of packed bit codes (`FixedSizeBinary` rows of the binary codec).

use super::multiversion;

multiversion! {
    /// Number of differing bits between `a` and `b` (equal lengths).
    pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
        assert_eq!(a.len(), b.len(), "codes of different widths");
        let mut total = 0u32;
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
            let y = u64::from_le_bytes(y.try_into().expect("8 bytes"));
            total += (x ^ y).count_ones();
        }
        for (x, y) in ra.iter().zip(rb) {
            total += (x ^ y).count_ones();
        }
        total
    }
}

multiversion! {
    /// Hamming distances of one query code against every `width`-byte code of `corpus`.
    pub fn hamming_scan(query: &[u8], corpus: &[u8], out: &mut [u32]) -> () {
        let width = query.len();
        assert_eq!(corpus.len(), out.len() * width, "corpus is not out.len() codes");
        if width.is_multiple_of(8) {
            let q: Vec<u64> = query.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8"))).collect();
            for (o, code) in out.iter_mut().zip(corpus.chunks_exact(width)) {
                let mut t = 0;
                for (w, c) in q.iter().zip(code.chunks_exact(8)) {
                    t += (w ^ u64::from_le_bytes(c.try_into().expect("8"))).count_ones();
                }
                *o = t;
            }
        } else {
            for (o, code) in out.iter_mut().zip(corpus.chunks_exact(width)) {
                *o = query.iter().zip(code).map(|(a, b)| (a ^ b).count_ones()).sum();
            }
        }
    }
}

/// Scalar twin of [`hamming`]: bit by bit.
#[cfg(test)]
pub fn hamming_scalar(a: &[u8], b: &[u8]) -> u32 {
    let mut t = 0;
    for (x, y) in a.iter().zip(b) {
        for bit in 0..8 {
            t += (((x >> bit) & 1) != ((y >> bit) & 1)) as u32;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn fast_equals_twin(a in prop::collection::vec(any::<u8>(), 0..200), seed in any::<u8>()) {
            let b: Vec<u8> = a.iter().map(|x| x.wrapping_mul(31).wrapping_add(seed)).collect();
            prop_assert_eq!(hamming(&a, &b), hamming_scalar(&a, &b));
            prop_assert_eq!(hamming(&a, &a), 0);
        }

        #[test]
        fn scan_equals_pairwise(width in 1usize..70, n in 0usize..20, seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut byte = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s as u8 };
            let q: Vec<u8> = (0..width).map(|_| byte()).collect();
            let corpus: Vec<u8> = (0..width * n).map(|_| byte()).collect();
            let mut out = vec![0; n];
            hamming_scan(&q, &corpus, &mut out);
            for i in 0..n {
                prop_assert_eq!(out[i], hamming_scalar(&q, &corpus[i * width..(i + 1) * width]));
            }
        }
    }
}

/// Binary codes transposed to 64-bit words, for scanning many codes at once: word `j` of
/// code `i` is at `words[j * rows + i]`. Requires `width % 8 == 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransposedCodes {
    /// The words, word-major.
    pub words: Vec<u64>,
    /// Codes.
    pub rows: usize,
    /// 64-bit words per code.
    pub words_per_code: usize,
}

impl TransposedCodes {
    /// Transposes `rows` codes of `width` bytes (`width % 8 == 0`).
    pub fn new(codes: &[u8], width: usize) -> Option<Self> {
        if width == 0 || !width.is_multiple_of(8) {
            return None;
        }
        let rows = codes.len() / width;
        let wpc = width / 8;
        let mut words = vec![0u64; rows * wpc];
        for (i, code) in codes.chunks_exact(width).enumerate() {
            for (j, w) in code.chunks_exact(8).enumerate() {
                words[j * rows + i] = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            }
        }
        Some(Self {
            words,
            rows,
            words_per_code: wpc,
        })
    }

    /// The fused scan-and-filter of the first search tier: for each query `q` (its code as
    /// words), appends `(row, distance)` to `hits[q]` for every code `row` in
    /// `start..start + n` within distance `cuts[q]`. Distances are computed in registers and
    /// compared there, so rows beyond the cut-off cost no stores (AVX-512 VPOPCNTDQ: 8 codes
    /// per instruction; elsewhere one `popcnt` per word).
    pub fn scan_within(
        &self,
        queries: &[Vec<u64>],
        cuts: &[u32],
        start: usize,
        n: usize,
        hits: &mut [Vec<(u32, u32)>],
    ) {
        assert!(start + n <= self.rows, "rows out of range");
        assert!(queries.len() == cuts.len() && queries.len() == hits.len());
        for q in queries {
            assert_eq!(q.len(), self.words_per_code, "query width");
        }
        #[cfg(target_arch = "x86_64")]
        if has_vpopcnt() {
            // SAFETY: AVX-512F and VPOPCNTDQ were detected at run time; every word read
            // (`j * rows + i` for `i < start + n <= rows`) is in bounds (asserted above).
            unsafe {
                match self.words_per_code {
                    4 => self.within_vpopcnt::<4>(queries, cuts, start, n, hits),
                    6 => self.within_vpopcnt::<6>(queries, cuts, start, n, hits),
                    8 => self.within_vpopcnt::<8>(queries, cuts, start, n, hits),
                    12 => self.within_vpopcnt::<12>(queries, cuts, start, n, hits),
                    16 => self.within_vpopcnt::<16>(queries, cuts, start, n, hits),
                    _ => self.within_vpopcnt::<0>(queries, cuts, start, n, hits),
                }
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2() {
            // SAFETY: the dispatch layer detected AVX2 and POPCNT; every word read is in
            // bounds (asserted above).
            unsafe {
                match self.words_per_code {
                    4 => self.within_avx2::<4>(queries, cuts, start, n, hits),
                    6 => self.within_avx2::<6>(queries, cuts, start, n, hits),
                    8 => self.within_avx2::<8>(queries, cuts, start, n, hits),
                    12 => self.within_avx2::<12>(queries, cuts, start, n, hits),
                    16 => self.within_avx2::<16>(queries, cuts, start, n, hits),
                    _ => self.within_avx2::<0>(queries, cuts, start, n, hits),
                }
            }
            return;
        }
        self.within_scalar(queries, cuts, start, start + n, hits)
    }

    /// [`TransposedCodes::within_scalar`] compiled with the `popcnt` instruction (baseline
    /// x86-64 has none: `count_ones` would be a software popcount).
    ///
    /// # Safety
    /// POPCNT must be available.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn within_popcnt(
        &self,
        queries: &[Vec<u64>],
        cuts: &[u32],
        from: usize,
        to: usize,
        hits: &mut [Vec<(u32, u32)>],
    ) {
        self.within_scalar(queries, cuts, from, to, hits)
    }

    /// AVX2: 4 codes per register; popcount by nibble table lookups (`vpshufb`), byte
    /// counts summed per code by `vpsadbw`, compared with the cut-off in registers.
    ///
    /// # Safety
    /// AVX2 and POPCNT must be available and `start + n <= rows`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn within_avx2<const W: usize>(
        &self,
        queries: &[Vec<u64>],
        cuts: &[u32],
        start: usize,
        n: usize,
        hits: &mut [Vec<(u32, u32)>],
    ) {
        use std::arch::x86_64::*;
        let wpc = if W > 0 { W } else { self.words_per_code };
        let rows = self.rows;
        let base = self.words.as_ptr();
        let qb: Vec<__m256i> = queries
            .iter()
            .flat_map(|q| q.iter().map(|&w| _mm256_set1_epi64x(w as i64)))
            .collect();
        // Distances are at most 64 x words, far below i64::MAX: a signed compare is exact.
        let cutv: Vec<__m256i> = cuts.iter().map(|&c| _mm256_set1_epi64x(c as i64)).collect();
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let count = |x: __m256i| {
            let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
            let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
            _mm256_add_epi8(lo, hi)
        };
        let end = start + n;
        let mut i = start;
        while i + 4 <= end {
            // The 4 codes' words, loaded once for every query of the group.
            let mut words = [zero; 16];
            for (j, w) in words.iter_mut().enumerate().take(W) {
                // SAFETY: `j * rows + i + 4 <= j * rows + rows`, inside `words`.
                *w = unsafe { _mm256_loadu_si256(base.add(j * rows + i).cast()) };
            }
            for (qi, h) in hits.iter_mut().enumerate() {
                let qw = &qb[qi * wpc..(qi + 1) * wpc];
                let acc = if W > 0 {
                    // Byte counts (at most 8 per word, W <= 16 words) summed in bytes, then
                    // per code.
                    let mut bytes = zero;
                    for (j, &q) in qw.iter().enumerate() {
                        bytes = _mm256_add_epi8(bytes, count(_mm256_xor_si256(words[j], q)));
                    }
                    _mm256_sad_epu8(bytes, zero)
                } else {
                    let mut acc = zero;
                    for (j, &q) in qw.iter().enumerate() {
                        // SAFETY: as above.
                        let w = unsafe { _mm256_loadu_si256(base.add(j * rows + i).cast()) };
                        acc = _mm256_add_epi64(
                            acc,
                            _mm256_sad_epu8(count(_mm256_xor_si256(w, q)), zero),
                        );
                    }
                    acc
                };
                let over = _mm256_cmpgt_epi64(acc, cutv[qi]);
                let mut m = !(_mm256_movemask_pd(_mm256_castsi256_pd(over)) as u32) & 0xf;
                if m != 0 {
                    let mut d = [0u64; 4];
                    // SAFETY: `d` holds 4 u64.
                    unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), acc) };
                    while m != 0 {
                        let l = m.trailing_zeros() as usize;
                        h.push(((i + l) as u32, d[l] as u32));
                        m &= m - 1;
                    }
                }
            }
            i += 4;
        }
        // SAFETY: POPCNT is enabled here.
        unsafe { self.within_popcnt(queries, cuts, i, end, hits) }
    }

    /// Rows `from..to` one at a time (the portable path and the vector path's tail).
    #[inline(always)]
    fn within_scalar(
        &self,
        queries: &[Vec<u64>],
        cuts: &[u32],
        from: usize,
        to: usize,
        hits: &mut [Vec<(u32, u32)>],
    ) {
        for i in from..to {
            for ((q, &cut), h) in queries.iter().zip(cuts).zip(hits.iter_mut()) {
                let d: u32 = q
                    .iter()
                    .enumerate()
                    .map(|(j, &w)| (self.words[j * self.rows + i] ^ w).count_ones())
                    .sum();
                if d <= cut {
                    h.push((i as u32, d));
                }
            }
        }
    }

    /// `W` words per code (0: read `words_per_code` at run time).
    ///
    /// # Safety
    /// AVX-512F and VPOPCNTDQ must be available and `start + n <= rows`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
    unsafe fn within_vpopcnt<const W: usize>(
        &self,
        queries: &[Vec<u64>],
        cuts: &[u32],
        start: usize,
        n: usize,
        hits: &mut [Vec<(u32, u32)>],
    ) {
        use std::arch::x86_64::*;
        let wpc = if W > 0 { W } else { self.words_per_code };
        let rows = self.rows;
        let base = self.words.as_ptr();
        let qb: Vec<__m512i> = queries
            .iter()
            .flat_map(|q| q.iter().map(|&w| _mm512_set1_epi64(w as i64)))
            .collect();
        let cutv: Vec<__m512i> = cuts.iter().map(|&c| _mm512_set1_epi64(c as i64)).collect();
        let end = start + n;
        let mut i = start;
        while i + 8 <= end {
            // The 8 codes' words, loaded once for every query of the group.
            let mut words = [_mm512_setzero_si512(); 16];
            for (j, w) in words.iter_mut().enumerate().take(if W > 0 { W } else { 0 }) {
                // SAFETY: `j * rows + i + 8 <= j * rows + rows`, inside `words`.
                *w = unsafe { _mm512_loadu_si512(base.add(j * rows + i).cast()) };
            }
            for (qi, h) in hits.iter_mut().enumerate() {
                let qw = &qb[qi * wpc..(qi + 1) * wpc];
                let mut acc = _mm512_setzero_si512();
                for (j, &q) in qw.iter().enumerate() {
                    let w = if W > 0 {
                        words[j]
                    } else {
                        // SAFETY: as above.
                        unsafe { _mm512_loadu_si512(base.add(j * rows + i).cast()) }
                    };
                    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(w, q)));
                }
                let mut m = _mm512_cmple_epu64_mask(acc, cutv[qi]);
                if m != 0 {
                    let mut d = [0u64; 8];
                    // SAFETY: `d` holds 8 u64.
                    unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), acc) };
                    while m != 0 {
                        let l = m.trailing_zeros() as usize;
                        h.push(((i + l) as u32, d[l] as u32));
                        m &= m - 1;
                    }
                }
            }
            i += 8;
        }
        self.within_scalar(queries, cuts, i, end, hits)
    }
}

/// Whether the AVX-512 VPOPCNTDQ path may run (the dispatch layer's answer).
#[cfg(target_arch = "x86_64")]
fn has_vpopcnt() -> bool {
    crate::simd::has_vpopcntdq()
}

#[cfg(test)]
mod transposed_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn transposed_scan_equals_pairwise(words in 1usize..8, n in 1usize..40, seed in any::<u64>(), from in 0usize..10) {
            let width = 8 * words;
            let mut s = seed | 1;
            let mut byte = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s as u8 };
            let codes: Vec<u8> = (0..width * n).map(|_| byte()).collect();
            let q: Vec<u8> = (0..width).map(|_| byte()).collect();
            let t = TransposedCodes::new(&codes, width).unwrap();
            let qw: Vec<u64> = q.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
            let from = from.min(n - 1);
            // No cut-off: every row comes back, with its distance.
            let mut hits = vec![Vec::new()];
            t.scan_within(&[qw], &[u32::MAX], from, n - from, &mut hits);
            prop_assert_eq!(hits[0].len(), n - from);
            for (k, &(row, d)) in hits[0].iter().enumerate() {
                prop_assert_eq!(row as usize, from + k);
                prop_assert_eq!(d, hamming_scalar(&q, &codes[(from + k) * width..(from + k + 1) * width]));
            }
        }

        #[test]
        fn scan_within_keeps_exactly_the_rows_within_the_cut(words in prop::sample::select(vec![1usize, 4, 6, 7, 8, 12, 16]), n in 1usize..60, nq in 1usize..5, seed in any::<u64>(), from in 0usize..10) {
            let width = 8 * words;
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let codes: Vec<u8> = (0..width * n).map(|_| next() as u8).collect();
            let t = TransposedCodes::new(&codes, width).unwrap();
            let qs: Vec<Vec<u8>> = (0..nq).map(|_| (0..width).map(|_| next() as u8).collect()).collect();
            let qw: Vec<Vec<u64>> = qs.iter().map(|q| q.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()).collect();
            let cuts: Vec<u32> = (0..nq).map(|_| (next() % (width as u64 * 8 + 1)) as u32).collect();
            let from = from.min(n - 1);
            let mut hits = vec![Vec::new(); nq];
            t.scan_within(&qw, &cuts, from, n - from, &mut hits);
            for q in 0..nq {
                let want: Vec<(u32, u32)> = (from..n)
                    .map(|r| (r as u32, hamming_scalar(&qs[q], &codes[r * width..(r + 1) * width])))
                    .filter(|&(_, d)| d <= cuts[q])
                    .collect();
                prop_assert_eq!(&hits[q], &want);
            }
        }
    }
}
