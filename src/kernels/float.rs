//! Float kernels: dot product, cosine similarity, squared L2 distance (8 f32 lanes).

use super::multiversion;

multiversion! {
    /// `sum(a[i] * b[i])`.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "vectors of different lengths");
        let mut acc = [0f32; 32];
        let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..32 {
                acc[l] += x[l] * y[l];
            }
        }
        acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
    }
}

multiversion! {
    /// `sum((a[i] - b[i])^2)`.
    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "vectors of different lengths");
        let mut acc = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..8 {
                let d = x[l] - y[l];
                acc[l] += d * d;
            }
        }
        acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| (x - y) * (x - y)).sum::<f32>()
    }
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let n = (dot(a, a) * dot(b, b)).sqrt();
    if n > 0.0 {
        dot(a, b) / n
    } else {
        0.0
    }
}

/// Scalar twin of [`dot`], in f64.
#[cfg(test)]
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Scalar twin of [`l2_squared`], in f64.
#[cfg(test)]
pub fn l2_squared_scalar(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn fast_equals_twins(a in prop::collection::vec(-1.0f32..1.0, 0..1600)) {
            let b: Vec<f32> = a.iter().rev().map(|x| x * 0.5 - 0.1).collect();
            let bound: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum::<f64>() * 1e-5 + 1e-6;
            prop_assert!((dot(&a, &b) as f64 - dot_scalar(&a, &b)).abs() <= bound);
            let l2 = l2_squared_scalar(&a, &b);
            prop_assert!((l2_squared(&a, &b) as f64 - l2).abs() <= l2 * 1e-5 + 1e-6);
            let c = cosine(&a, &b);
            prop_assert!((-1.0001..=1.0001).contains(&c));
        }
    }

    #[test]
    fn cosine_of_zero_is_zero() {
        assert_eq!(cosine(&[0.0; 5], &[1.0; 5]), 0.0);
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
    }
}
