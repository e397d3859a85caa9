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
        if width % 8 == 0 {
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
        if width == 0 || width % 8 != 0 {
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

    /// Hamming distances of `query` (as words) to codes `start..start + out.len()`.
    pub fn scan(&self, query: &[u64], start: usize, out: &mut [u32]) {
        assert_eq!(query.len(), self.words_per_code, "query width");
        assert!(start + out.len() <= self.rows, "rows out of range");
        #[cfg(target_arch = "x86_64")]
        if has_vpopcnt() {
            // SAFETY: AVX-512F and VPOPCNTDQ were detected at run time.
            return unsafe { self.scan_vpopcnt(query, start, out) };
        }
        self.scan_generic(query, start, out)
    }

    #[inline(always)]
    fn scan_generic(&self, query: &[u64], start: usize, out: &mut [u32]) {
        out.fill(0);
        let n = out.len();
        for (j, &q) in query.iter().enumerate() {
            let words = &self.words[j * self.rows + start..j * self.rows + start + n];
            for (o, &w) in out.iter_mut().zip(words) {
                *o += (w ^ q).count_ones();
            }
        }
    }

    /// The same loop, compiled where LLVM turns `count_ones` into 8-lane `vpopcntq`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
    fn scan_vpopcnt(&self, query: &[u64], start: usize, out: &mut [u32]) {
        self.scan_generic(query, start, out)
    }
}

/// Whether AVX-512F with VPOPCNTDQ is available (checked once).
#[cfg(target_arch = "x86_64")]
fn has_vpopcnt() -> bool {
    use std::sync::LazyLock;
    static V: LazyLock<bool> = LazyLock::new(|| {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq")
    });
    *V
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
            let mut out = vec![0u32; n - from];
            t.scan(&qw, from, &mut out);
            for (k, &d) in out.iter().enumerate() {
                prop_assert_eq!(d, hamming_scalar(&q, &codes[(from + k) * width..(from + k + 1) * width]));
            }
        }
    }
}
