//! Asymmetric scoring: a float query against int8 / int4 codes, through the calibration.
//!
//! A code decodes to `x_d = base_d + level_d * step_d` (level = int8 code + 128 for int8, the
//! nibble for int4). The inner product with a float query `q` is then
//!
//! `q . x = sum_d q_d base_d + sum_d (q_d step_d) level_d`,
//!
//! so [`AsymQuery`] folds the scale into per-dimension weights `w_d = q_d step_d` and every
//! offset into one constant per query; scoring a code is one small dot product, equal to the
//! dot product of the query with the dequantized vector up to float rounding (tested).

use super::multiversion;

/// A query prepared for asymmetric scoring: `score(code) = offset + sum_d weights_d * c_d`.
#[derive(Debug, Clone, PartialEq)]
pub struct AsymQuery {
    /// `q_d * step_d`.
    pub weights: Vec<f32>,
    /// Everything that does not depend on the code.
    pub offset: f32,
}

impl AsymQuery {
    /// For int8 codes `c` (level = c + 128) with decoding `base + level * step`.
    pub fn int8(query: &[f32], base: &[f32], step: &[f32]) -> Self {
        let weights: Vec<f32> = query.iter().zip(step).map(|(q, s)| q * s).collect();
        let offset: f64 = query
            .iter()
            .zip(base)
            .map(|(&q, &b)| q as f64 * b as f64)
            .sum::<f64>()
            + 128.0 * weights.iter().map(|&w| w as f64).sum::<f64>();
        AsymQuery {
            weights,
            offset: offset as f32,
        }
    }

    /// For int4 nibble codes (level = nibble) with decoding `base + level * step`.
    pub fn int4(query: &[f32], base: &[f32], step: &[f32]) -> Self {
        let weights = query.iter().zip(step).map(|(q, s)| q * s).collect();
        let offset: f64 = query
            .iter()
            .zip(base)
            .map(|(&q, &b)| q as f64 * b as f64)
            .sum();
        AsymQuery {
            weights,
            offset: offset as f32,
        }
    }

    /// Score of one int8 code.
    pub fn score_int8(&self, code: &[i8]) -> f32 {
        self.offset + weighted_i8(&self.weights, code)
    }

    /// Score of one packed int4 code (high nibble first).
    pub fn score_int4(&self, code: &[u8]) -> f32 {
        self.offset + weighted_u4(&self.weights, code)
    }
}

/// `sum(w[i] * c[i])` in 32 f32 lanes (four independent 8-wide accumulators, so the adds do
/// not wait on each other); inlined into each multiversioned caller.
#[inline(always)]
fn weighted_i8_body(w: &[f32], c: &[i8]) -> f32 {
    let mut acc = [0f32; 32];
    let (cw, cc) = (w.chunks_exact(32), c.chunks_exact(32));
    let (rw, rc) = (cw.remainder(), cc.remainder());
    for (x, y) in cw.zip(cc) {
        for l in 0..32 {
            acc[l] += x[l] * y[l] as f32;
        }
    }
    let mut t: f32 = acc.iter().sum();
    for (x, y) in rw.iter().zip(rc) {
        t += x * *y as f32;
    }
    t
}

multiversion! {
    /// `sum(w[i] * c[i])` over int8 codes.
    pub fn weighted_i8(w: &[f32], c: &[i8]) -> f32 {
        assert_eq!(w.len(), c.len(), "weights and code of different lengths");
        weighted_i8_body(w, c)
    }
}

/// For a group of `g` queries (`ws`: `g` weight vectors of `len`, row-major) and a block of
/// int8 codes: `out[r * g + q] = sum(ws[q][i] * codes[r][i])`.
///
/// With AVX-512 (up to 16 queries per pass), each 16-dimension slice of a code is widened to
/// f32 once, in a register, and multiplied into one accumulator per query; elsewhere each
/// code is widened once into `scratch` (`len` long) and reused by every query of the group.
pub fn weighted_i8_scan_group(ws: &[f32], codes: &[i8], scratch: &mut [f32], out: &mut [f32]) {
    let len = scratch.len();
    assert!(len > 0, "empty vectors");
    let g = ws.len() / len;
    assert_eq!(ws.len(), g * len, "weights are not queries x len");
    assert_eq!(
        codes.len() / len * g,
        out.len(),
        "out is not rows x queries"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512() {
        let rows = codes.len() / len;
        for (qi, qs) in (0..g).collect::<Vec<_>>().chunks(16).enumerate() {
            let w = &ws[qi * 16 * len..(qi * 16 + qs.len()) * len];
            // SAFETY: AVX-512F/BW/VL were detected at run time; the slices have the lengths
            // asserted above.
            unsafe {
                match qs.len() {
                    16 => scan_group_avx512::<16>(w, codes, rows, len, out, g, qi * 16),
                    8 => scan_group_avx512::<8>(w, codes, rows, len, out, g, qi * 16),
                    n => {
                        for (k, wq) in w.chunks_exact(len).enumerate().take(n) {
                            scan_group_avx512::<1>(wq, codes, rows, len, out, g, qi * 16 + k)
                        }
                    }
                }
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2() {
        let rows = codes.len() / len;
        let mut q0 = 0;
        // 4 queries x 3 rows at a time, then the last queries one at a time.
        while q0 < g {
            let n = if g - q0 >= 4 { 4 } else { 1 };
            let w = &ws[q0 * len..(q0 + n) * len];
            // SAFETY: the dispatch layer detected AVX2 and FMA; the slices have the lengths
            // asserted above and `q0 + n <= g`.
            unsafe {
                match n {
                    4 => scan_group_avx2::<4, 3>(w, codes, rows, len, out, g, q0),
                    _ => scan_group_avx2::<1, 4>(w, codes, rows, len, out, g, q0),
                }
            }
            q0 += n;
        }
        return;
    }
    weighted_i8_scan_group_portable(ws, codes, scratch, out)
}

/// `G` queries (`w`: `G x len`) against `rows` codes, writing `out[r * g + q0 + q]`, in
/// tiles of `R` rows: each 8-dimension slice of a code widened to f32 once, in a register,
/// each query's weights loaded once per tile and multiplied into `G x R` accumulators (4 x 3
/// keeps twelve FMAs per seven loads, so the scan is bound by FMA rather than loads).
///
/// # Safety
/// AVX2 and FMA must be available; `w.len() == G * len`, `codes.len() >= rows * len`,
/// `out.len() >= rows * g` and `q0 + G <= g`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_group_avx2<const G: usize, const R: usize>(
    w: &[f32],
    codes: &[i8],
    rows: usize,
    len: usize,
    out: &mut [f32],
    g: usize,
    q0: usize,
) {
    debug_assert!(w.len() == G * len && codes.len() >= rows * len && q0 + G <= g);
    let mut r = 0;
    while r + R <= rows {
        // SAFETY: rows r..r + R are inside `codes` and `out`; the caller's contract.
        unsafe { tile_avx2::<G, R>(w, codes, r, len, out, g, q0) };
        r += R;
    }
    while r < rows {
        // SAFETY: as above, one row.
        unsafe { tile_avx2::<G, 1>(w, codes, r, len, out, g, q0) };
        r += 1;
    }
}

/// Rows `r..r + R` of [`scan_group_avx2`].
///
/// # Safety
/// As [`scan_group_avx2`], with `(r + R) * len <= codes.len()` and `(r + R) * g <= out.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile_avx2<const G: usize, const R: usize>(
    w: &[f32],
    codes: &[i8],
    r: usize,
    len: usize,
    out: &mut [f32],
    g: usize,
    q0: usize,
) {
    use std::arch::x86_64::*;
    let full = len / 8;
    let wp = w.as_ptr();
    let c = codes.as_ptr().wrapping_add(r * len);
    let hsum = |a: __m256| {
        let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    };
    let mut acc = [[_mm256_setzero_ps(); G]; R];
    for k in 0..full {
        // SAFETY: `8 * k + 8 <= len`, inside rows r..r + R of `codes`.
        let x: [__m256; R] = std::array::from_fn(|i| unsafe {
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                c.add(i * len + 8 * k).cast(),
            )))
        });
        for q in 0..G {
            // SAFETY: inside weight row q.
            let wv = unsafe { _mm256_loadu_ps(wp.add(q * len + 8 * k)) };
            for (a, x) in acc.iter_mut().zip(&x) {
                a[q] = _mm256_fmadd_ps(wv, *x, a[q]);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        let o = &mut out[(r + i) * g + q0..(r + i) * g + q0 + G];
        for (q, (a, o)) in acc.iter().zip(o.iter_mut()).enumerate() {
            let mut t = hsum(*a);
            for d in 8 * full..len {
                // SAFETY: d < len, inside row r + i and weight row q.
                t += unsafe { *wp.add(q * len + d) * *c.add(i * len + d) as f32 };
            }
            *o = t;
        }
    }
}

/// `G` queries (`w`: `G x len`) against `rows` codes, writing `out[r * g + q0 + q]`.
///
/// # Safety
/// AVX-512F/BW/VL must be available; `w.len() == G * len`, `codes.len() >= rows * len`,
/// `out.len() >= rows * g` and `q0 + G <= g`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn scan_group_avx512<const G: usize>(
    w: &[f32],
    codes: &[i8],
    rows: usize,
    len: usize,
    out: &mut [f32],
    g: usize,
    q0: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(w.len() == G * len && codes.len() >= rows * len && q0 + G <= g);
    let full = len / 16;
    let tail = len % 16;
    let tail_mask: u16 = ((1u32 << tail) - 1) as u16;
    let wp = w.as_ptr();
    for r in 0..rows {
        let c = codes.as_ptr().wrapping_add(r * len);
        let mut acc = [_mm512_setzero_ps(); G];
        for k in 0..full {
            // SAFETY: `16 * k + 16 <= len`, inside row `r` of `codes` and of each weight row.
            let x = unsafe {
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(c.add(16 * k).cast())))
            };
            for (q, a) in acc.iter_mut().enumerate() {
                let wv = unsafe { _mm512_loadu_ps(wp.add(q * len + 16 * k)) };
                *a = _mm512_fmadd_ps(wv, x, *a);
            }
        }
        if tail > 0 {
            // SAFETY: masked loads touch only the `tail` lanes inside the rows.
            let x = unsafe {
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(
                    tail_mask,
                    c.add(16 * full).cast(),
                )))
            };
            for (q, a) in acc.iter_mut().enumerate() {
                let wv = unsafe { _mm512_maskz_loadu_ps(tail_mask, wp.add(q * len + 16 * full)) };
                *a = _mm512_fmadd_ps(wv, x, *a);
            }
        }
        for (q, a) in acc.iter().enumerate() {
            out[r * g + q0 + q] = _mm512_reduce_add_ps(*a);
        }
    }
}

multiversion! {
    /// The portable group scan (auto-vectorized, AVX2 where available): each code widened
    /// once into `scratch`.
    fn weighted_i8_scan_group_portable(ws: &[f32], codes: &[i8], scratch: &mut [f32], out: &mut [f32]) -> () {
        let len = scratch.len();
        let g = ws.len() / len;
        for (c, o) in codes.chunks_exact(len).zip(out.chunks_exact_mut(g)) {
            for (s, &x) in scratch.iter_mut().zip(c) {
                *s = x as f32;
            }
            for (w, o) in ws.chunks_exact(len).zip(o.iter_mut()) {
                let mut acc = [0f32; 32];
                let (cw, cs) = (w.chunks_exact(32), scratch.chunks_exact(32));
                let (rw, rs) = (cw.remainder(), cs.remainder());
                for (x, y) in cw.zip(cs) {
                    for l in 0..32 {
                        acc[l] += x[l] * y[l];
                    }
                }
                let mut t: f32 = acc.iter().sum();
                for (x, y) in rw.iter().zip(rs) {
                    t += x * y;
                }
                *o = t;
            }
        }
    }
}

multiversion! {
    /// `sum(w[d] * nibble[d])` over a packed int4 code (dimension 2j in the high nibble).
    pub fn weighted_u4(w: &[f32], c: &[u8]) -> f32 {
        assert_eq!(c.len(), w.len().div_ceil(2), "code width does not match the weights");
        let mut acc = [0f32; 8];
        let (cw, cc) = (w.chunks_exact(8), c.chunks_exact(4));
        let rw = cw.remainder();
        for (x, y) in cw.zip(cc) {
            for l in 0..4 {
                acc[2 * l] += x[2 * l] * (y[l] >> 4) as f32;
                acc[2 * l + 1] += x[2 * l + 1] * (y[l] & 15) as f32;
            }
        }
        let mut t: f32 = acc.iter().sum();
        let done = w.len() - rw.len();
        for (i, x) in rw.iter().enumerate() {
            let d = done + i;
            let nib = if d.is_multiple_of(2) { c[d / 2] >> 4 } else { c[d / 2] & 15 };
            t += x * nib as f32;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Int8Type};
    use arrow_array::{Array, FixedSizeBinaryArray};
    use proptest::prelude::*;

    use crate::codec::tests::{calibrate, DIMS};
    use crate::testutil::vectors_array;
    use crate::{Int4Codec, Int8Codec, Vectors};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn group_scan_equals_per_query_kernel(len in 1usize..100, rows in 0usize..20, g in 1usize..40, seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let ws: Vec<f32> = (0..g * len).map(|_| (next() % 2000) as f32 / 1000.0 - 1.0).collect();
            let codes: Vec<i8> = (0..rows * len).map(|_| next() as i8).collect();
            let mut out = vec![0f32; rows * g];
            super::weighted_i8_scan_group(&ws, &codes, &mut vec![0f32; len], &mut out);
            let mut portable = vec![0f32; rows * g];
            super::weighted_i8_scan_group_portable(&ws, &codes, &mut vec![0f32; len], &mut portable);
            for r in 0..rows {
                for q in 0..g {
                    let (w, c) = (&ws[q * len..(q + 1) * len], &codes[r * len..(r + 1) * len]);
                    let want = super::weighted_i8(w, c);
                    // Summed in another order: the textbook float bound is len * eps * sum|w c|,
                    // which matters when the terms cancel and `want` is near zero.
                    let scale: f32 = w.iter().zip(c).map(|(w, &c)| (w * c as f32).abs()).sum();
                    let tol = 1e-4 * (1.0 + want.abs()) + len as f32 * f32::EPSILON * scale;
                    prop_assert!((out[r * g + q] - want).abs() <= tol, "{} vs {want}", out[r * g + q]);
                    prop_assert!((portable[r * g + q] - want).abs() <= tol);
                }
            }
        }

        #[test]
        fn int8_score_equals_dot_with_dequantized(dim in prop::sample::select(DIMS.to_vec()), seed in any::<u64>()) {
            let a = vectors_array(20, dim, seed, 0.0);
            let codec = Int8Codec::new(&calibrate(&a));
            let enc = codec.encode(&a).unwrap();
            let dec = codec.decode(enc.array.as_ref()).unwrap();
            let codes = enc.array.as_fixed_size_list().values().as_primitive::<Int8Type>().values().to_vec();
            let dec = dec.values().as_primitive::<Float32Type>().values().to_vec();
            let q = Vectors::try_new(&vectors_array(1, dim, seed ^ 9, 0.0)).unwrap().values().to_vec();
            let prepared = codec.prepare_query(&q);
            for r in 0..20 {
                let exact: f64 = q.iter().zip(&dec[r * dim..(r + 1) * dim]).map(|(a, b)| *a as f64 * *b as f64).sum();
                let got = prepared.score_int8(&codes[r * dim..(r + 1) * dim]) as f64;
                let scale: f64 = q.iter().zip(&dec[r * dim..(r + 1) * dim]).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum::<f64>() + 1e-6;
                prop_assert!((got - exact).abs() <= 1e-5 * scale + 1e-6, "{got} vs {exact}");
                let twin: f32 = prepared.offset + prepared.weights.iter().zip(&codes[r * dim..(r + 1) * dim]).map(|(w, &c)| w * c as f32).sum::<f32>();
                prop_assert!((got as f32 - twin).abs() <= 1e-5 * scale as f32 + 1e-6);
            }
        }

        #[test]
        fn int4_score_equals_dot_with_dequantized(dim in prop::sample::select(DIMS.to_vec()), seed in any::<u64>()) {
            let a = vectors_array(10, dim, seed, 0.0);
            let codec = Int4Codec::new(&calibrate(&a));
            let enc = codec.encode(&a).unwrap();
            let dec = codec.decode(enc.array.as_ref()).unwrap();
            let codes = enc.array.as_any().downcast_ref::<FixedSizeBinaryArray>().unwrap().clone();
            let dec = dec.values().as_primitive::<Float32Type>().values().to_vec();
            let q = Vectors::try_new(&vectors_array(1, dim, seed ^ 5, 0.0)).unwrap().values().to_vec();
            let prepared = codec.prepare_query(&q);
            for r in 0..codes.len() {
                let exact: f64 = q.iter().zip(&dec[r * dim..(r + 1) * dim]).map(|(a, b)| *a as f64 * *b as f64).sum();
                let scale: f64 = q.iter().zip(&dec[r * dim..(r + 1) * dim]).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum::<f64>() + 1e-6;
                let got = prepared.score_int4(codes.value(r)) as f64;
                prop_assert!((got - exact).abs() <= 1e-5 * scale + 1e-6, "{got} vs {exact}");
            }
        }
    }
}
