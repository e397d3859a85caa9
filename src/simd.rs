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
