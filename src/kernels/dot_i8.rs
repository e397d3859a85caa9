//! int8 x int8 dot product with i32 accumulation (symmetric int8 scoring).

use super::multiversion;

multiversion! {
    /// `sum(a[i] * b[i])` in i32 (exact: |sum| <= 2^14 * len, no overflow below 2^17 dims).
    pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        assert_eq!(a.len(), b.len(), "vectors of different lengths");
        // i16 products summed in i32 lanes: LLVM lowers this to pmaddwd.
        let mut acc = [0i32; 16];
        let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..16 {
                acc[l] += x[l] as i16 as i32 * y[l] as i16 as i32;
            }
        }
        let mut t: i32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rb) {
            t += *x as i32 * *y as i32;
        }
        t
    }
}

/// Scalar twin of [`dot_i8`].
#[cfg(test)]
pub fn dot_i8_scalar(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn fast_equals_twin(a in prop::collection::vec(any::<i8>(), 0..1600)) {
            let b: Vec<i8> = a.iter().rev().map(|x| x.wrapping_mul(7)).collect();
            prop_assert_eq!(dot_i8(&a, &b), dot_i8_scalar(&a, &b));
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        let a = vec![-128i8; 1536];
        assert_eq!(dot_i8(&a, &a), 128 * 128 * 1536);
    }
}
