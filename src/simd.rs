//! Runtime CPU feature detection, done once.

/// Whether AVX2 is available (checked once per process).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    use std::sync::LazyLock;
    static AVX2: LazyLock<bool> = LazyLock::new(|| is_x86_feature_detected!("avx2"));
    *AVX2
}

/// Whether AVX2 is available (never, off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn has_avx2() -> bool {
    false
}

/// Whether AVX-512F, BW and VL are available (checked once per process).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    use std::sync::LazyLock;
    static V: LazyLock<bool> = LazyLock::new(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("fma")
    });
    *V
}
