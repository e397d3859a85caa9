//! Distance kernels on slices: each a plain scalar twin and a fast path (auto-vectorized
//! with lane accumulators and compiled a second time with AVX2 enabled, picked at run time),
//! tested against each other.
//!
//! - [`hamming`]: Hamming distance of packed bit codes.
//! - [`dot_i8`]: int8 x int8 dot product with i32 accumulation.
//! - [`asym`]: float query x int8 / int4 code scored through the calibration.
//! - [`float`]: float dot product, cosine and squared L2.
//! - [`matmul`]: blocked float products (ground truth, f16 and int4 first tiers).
//! - [`rabitq`]: the RaBitQ table scan over 6-bit groups (AVX-512 VBMI).
//! - [`fastscan`]: the RaBitQ table scan over 4-bit groups (AVX2 and portable).
//! - [`planes`]: masked float sums over bit planes (multi-bit RaBitQ; AVX-512, AVX2, scalar).

pub mod asym;
pub mod dot_i8;
pub mod fastscan;
pub mod float;
pub mod hamming;
pub mod matmul;
pub mod planes;
pub mod rabitq;

/// Runs `$body` (an expression using only its arguments) with AVX2 enabled when the CPU has
/// it: defines the function twice, once plain and once under `#[target_feature]`.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn generic($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,popcnt")]
            fn avx2($($arg: $ty),*) -> $ret { generic($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::has_avx2() {
                // SAFETY: the dispatch layer selects the AVX2 level only after detecting
                // AVX2, FMA and POPCNT, every feature this function enables.
                return unsafe { avx2($($arg),*) };
            }
            generic($($arg),*)
        }
    };
}
pub(crate) use multiversion;
