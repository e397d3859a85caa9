//! The per-dimension affine level kernel shared by `int8` and `int4`.
//!
//! For each value: `t = (x - lo) * inv + bias`, `level = floor(clamp(t, 0.5, top + 0.5))`
//! with `bias = 0.5` (round half up; `top` is 255 or 15), and the value is *clipped* when
//! the clamp changed `t`, i.e. when `x` lies outside `[lo, hi]` (to `f32` rounding: `inv`
//! is chosen so that `x = hi` gives exactly `t <= top + 0.5`). A degenerate dimension has
//! `inv = 0` and a fixed `bias` (its constant level) and never clips.
//!
//! NaN and infinity always fail the clamp test (NaN compares unequal, infinity clamps), so
//! the fast path only re-scans a row for them when the row clipped something.
//!
//! The AVX2 path does 32 values per step (four 8-lane blocks packed to bytes) with exactly
//! the scalar operations (`sub`, `mul`, `add`, no fused multiply-add), so both paths give
//! identical levels and counts.

use crate::calibration::Calibration;

/// How levels decode: `value = base + level * step`, per dimension.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoding {
    pub base: Vec<f32>,
    pub step: Vec<f32>,
}

/// Per-dimension affine parameters (all of length `dim`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Affine {
    pub dim: usize,
    pub lo: Vec<f32>,
    pub inv: Vec<f32>,
    pub bias: Vec<f32>,
    /// Highest level (255 or 15).
    pub top: f32,
}

impl Affine {
    /// The level kernel of `cal` with `top + 1` levels per dimension; degenerate dimensions
    /// (see [`Calibration::degenerate_mask`]) get level `constant`. Also returns each
    /// dimension's decoding: value = `base + level * step` (for degenerate dimensions
    /// `step = 0` and `base` is the range's midpoint).
    ///
    /// A symmetric calibration ([`crate::calibration::RangeShape::symmetric`], ranges
    /// `[-m, m]`) gets a grid with a level at zero: `step = m / h`, `h = floor(top / 2)`,
    /// level `top - h` (128 for int8, whose codes are then `round(x / step)`; 8 for int4)
    /// at 0, so `±m` are levels `top - h ± h`; the one level beyond `-m` (int8 code -128)
    /// holds values down to `-m - step`, and only values beyond the grid clip.
    pub fn from_calibration(cal: &Calibration, top: f32, constant: f32) -> (Self, Decoding) {
        let (lo, hi) = (cal.lo(), cal.hi());
        let dim = lo.len();
        let mut a = Affine {
            dim,
            lo: lo.to_vec(),
            inv: vec![0.0; dim],
            bias: vec![0.5; dim],
            top,
        };
        let mut dec = Decoding {
            base: lo.to_vec(),
            step: vec![0.0; dim],
        };
        for (d, degenerate) in cal.degenerate_mask().into_iter().enumerate() {
            if degenerate {
                a.bias[d] = constant + 0.5;
                dec.base[d] = lo[d] + (hi[d] - lo[d]) * 0.5;
                continue;
            }
            let lo_d = if cal.shape().symmetric {
                let half = (top / 2.0).floor();
                let step = hi[d] / half;
                let base = -(top - half) * step;
                (a.lo[d], dec.base[d]) = (base, base);
                base
            } else {
                lo[d]
            };
            let width = hi[d] - lo_d;
            dec.step[d] = width / top;
            let mut inv = top / width;
            // Round `inv` down until the top of the range lands at or below `top`, so that
            // values inside [lo, hi] never count as clipped.
            while (hi[d] - lo_d) * inv > top {
                inv = inv.next_down();
            }
            a.inv[d] = inv;
        }
        (a, dec)
    }

    /// Levels (XOR `xor`) of whole rows of `src` into `out` (`dim` bytes per row). Returns
    /// the clipped count, or `Err(row)` for the first row holding a NaN or infinity.
    pub fn encode_rows(&self, src: &[f32], out: &mut [u8], xor: u8) -> Result<u64, usize> {
        let dim = self.dim;
        assert!(
            src.len() == out.len() && src.len().is_multiple_of(dim),
            "slices are not whole rows"
        );
        let mut clipped = 0u64;
        for (r, (x, o)) in src
            .chunks_exact(dim)
            .zip(out.chunks_exact_mut(dim))
            .enumerate()
        {
            clipped += self.row(x, o, xor).ok_or(r)? as u64;
        }
        Ok(clipped)
    }

    /// One row: the clipped count, or `None` when the row holds a NaN or infinity.
    #[inline]
    pub fn row(&self, x: &[f32], o: &mut [u8], xor: u8) -> Option<u32> {
        #[cfg(target_arch = "x86_64")]
        let clip = if crate::simd::has_avx2() {
            // SAFETY: AVX2 was detected at run time.
            unsafe { self.row_avx2(x, o, xor) }
        } else {
            self.row_scalar(x, o, xor, 0)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let clip = self.row_scalar(x, o, xor, 0);
        if clip > 0 && has_non_finite(&x[..self.dim]) {
            return None;
        }
        Some(clip)
    }

    /// Scalar loop over dimensions `from..dim` (the whole row, or the AVX2 path's tail).
    #[inline]
    fn row_scalar(&self, x: &[f32], o: &mut [u8], xor: u8, from: usize) -> u32 {
        let high = self.top + 0.5;
        let mut clip = 0u32;
        for d in from..self.dim {
            let t = (x[d] - self.lo[d]) * self.inv[d] + self.bias[d];
            let c = t.max(0.5).min(high);
            clip += (c != t) as u32;
            o[d] = (c as u8) ^ xor;
        }
        clip
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn row_avx2(&self, x: &[f32], o: &mut [u8], xor: u8) -> u32 {
        use std::arch::x86_64::*;
        let dim = self.dim;
        assert!(x.len() >= dim && o.len() >= dim && self.lo.len() == dim);
        let blocks = dim / 32;
        let low = _mm256_set1_ps(0.5);
        let high = _mm256_set1_ps(self.top + 0.5);
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let flip = _mm256_set1_epi8(xor as i8);
        let mut clip = _mm256_setzero_si256();
        let (xp, op) = (x.as_ptr(), o.as_mut_ptr());
        let (lo, inv, bias) = (self.lo.as_ptr(), self.inv.as_ptr(), self.bias.as_ptr());
        for b in 0..blocks {
            // Prefetch 2 KiB ahead (prefetches never fault, even past the end).
            // A block of 32 floats spans two cache lines: prefetch both.
            _mm_prefetch::<_MM_HINT_T0>(xp.wrapping_add(32 * b + 512).cast());
            _mm_prefetch::<_MM_HINT_T0>(xp.wrapping_add(32 * b + 528).cast());
            let mut q = [_mm256_setzero_si256(); 4];
            for (k, q) in q.iter_mut().enumerate() {
                let i = 32 * b + 8 * k;
                // SAFETY: i + 8 <= 32 * blocks <= dim, and every slice read holds dim values.
                unsafe {
                    let v = _mm256_loadu_ps(xp.add(i));
                    let t = _mm256_mul_ps(
                        _mm256_sub_ps(v, _mm256_loadu_ps(lo.add(i))),
                        _mm256_loadu_ps(inv.add(i)),
                    );
                    let t = _mm256_add_ps(t, _mm256_loadu_ps(bias.add(i)));
                    // max_ps returns its second operand for NaN, as f32::max does.
                    let c = _mm256_min_ps(_mm256_max_ps(t, low), high);
                    let changed = _mm256_cmp_ps::<_CMP_NEQ_UQ>(c, t);
                    clip = _mm256_sub_epi32(clip, _mm256_castps_si256(changed));
                    *q = _mm256_cvttps_epi32(c);
                }
            }
            let bytes = _mm256_packus_epi16(
                _mm256_packs_epi32(q[0], q[1]),
                _mm256_packs_epi32(q[2], q[3]),
            );
            let bytes = _mm256_xor_si256(_mm256_permutevar8x32_epi32(bytes, order), flip);
            // SAFETY: 32 * b + 32 <= dim <= o.len().
            unsafe { _mm256_storeu_si256(op.add(32 * b).cast(), bytes) };
        }
        let mut lanes = [0u32; 8];
        // SAFETY: lanes holds 8 u32.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), clip) };
        lanes.iter().sum::<u32>() + self.row_scalar(x, o, xor, 32 * blocks)
    }
}

/// Whether `x` holds a NaN or an infinity (branch-free, vectorizes).
#[inline]
pub(crate) fn has_non_finite(x: &[f32]) -> bool {
    x.iter().fold(0u32, |a, v| {
        a | (v.to_bits() & 0x7f80_0000 == 0x7f80_0000) as u32
    }) != 0
}
