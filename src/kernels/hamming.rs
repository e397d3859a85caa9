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
