//! The one SIMD dispatch layer: which instruction-set [`Level`] the kernels run at, decided
//! once per process from what the CPU has (every feature a path enables is checked) and the
//! `EMBQUANT_SIMD` override (`scalar`, `avx2`, `avx512`), clamped to what the CPU has.
//!
//! Every fast path is reached only through [`Level::active`] or one of the feature checks
//! below, all of which are at most what was detected: a `#[target_feature]` function can
//! not run on a CPU that lacks its features (the tests of `select` prove the clamping).
//!
//! Where each path lives: auto-vectorized kernels are compiled a second time for AVX2
//! (`kernels::multiversion!`); hand-written `std::arch` paths sit next to their scalar
//! twin in each kernel's module under `cfg(target_arch = "x86_64")`. Where a level needs
//! its own data layout, the layout is chosen when the data are loaded, from the active level:
//! RaBitQ codes are laid out in 6-bit groups for the AVX-512 VBMI scan
//! (`kernels::rabitq`) and in 4-bit groups everywhere else (`kernels::fastscan`). An aarch64 NEON path
//! would be one more [`Level`] (`Neon`, detected with `is_aarch64_feature_detected!`) and
//! one more arm in each kernel's dispatch: a local change.

use std::sync::LazyLock;

/// An instruction-set level the kernels have paths for, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Portable code only (what the compiler makes of it for the build target).
    Scalar,
    /// AVX2 with FMA and POPCNT (Haswell, AMD Zen and later).
    Avx2,
    /// AVX-512 F, BW and VL (with FMA, POPCNT and AVX2): Skylake-X and later Xeons, Zen 4.
    Avx512,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    /// The name `EMBQUANT_SIMD` takes.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a level name.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == s.trim())
    }

    /// The highest level the CPU supports (detected once).
    pub fn detected() -> Level {
        CAPS.level
    }

    /// The level the kernels run at: [`Level::detected`], lowered by `EMBQUANT_SIMD`.
    pub fn active() -> Level {
        *ACTIVE
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the CPU has, as far as the kernels care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Features {
    /// AVX2.
    pub avx2: bool,
    /// FMA.
    pub fma: bool,
    /// POPCNT.
    pub popcnt: bool,
    /// AVX-512 F, BW and VL, all three.
    pub avx512: bool,
    /// AVX-512 VPOPCNTDQ.
    pub vpopcntdq: bool,
    /// AVX-512 VBMI.
    pub vbmi: bool,
}

/// The capabilities a process runs with: a level and the AVX-512 extensions usable at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// The level.
    pub level: Level,
    /// VPOPCNTDQ usable (only at [`Level::Avx512`]).
    pub vpopcntdq: bool,
    /// VBMI usable (only at [`Level::Avx512`]).
    pub vbmi: bool,
}

/// The capabilities for a CPU with `f`, with `requested` (the override) as the ceiling: a
/// level is chosen only when every feature its paths enable is present.
pub(crate) fn select(f: Features, requested: Option<Level>) -> Caps {
    let avx2 = f.avx2 && f.fma && f.popcnt;
    let mut level = if avx2 && f.avx512 {
        Level::Avx512
    } else if avx2 {
        Level::Avx2
    } else {
        Level::Scalar
    };
    if let Some(r) = requested {
        level = level.min(r);
    }
    let top = level == Level::Avx512;
    Caps {
        level,
        vpopcntdq: top && f.vpopcntdq,
        vbmi: top && f.vbmi,
    }
}

#[cfg(target_arch = "x86_64")]
fn features() -> Features {
    Features {
        avx2: is_x86_feature_detected!("avx2"),
        fma: is_x86_feature_detected!("fma"),
        popcnt: is_x86_feature_detected!("popcnt"),
        avx512: is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl"),
        vpopcntdq: is_x86_feature_detected!("avx512vpopcntdq"),
        vbmi: is_x86_feature_detected!("avx512vbmi"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn features() -> Features {
    Features::default()
}

/// What the CPU has (no override).
static CAPS: LazyLock<Caps> = LazyLock::new(|| select(features(), None));

/// The override, read once.
static REQUESTED: LazyLock<Option<Level>> = LazyLock::new(|| {
    let v = std::env::var("EMBQUANT_SIMD").ok()?;
    match Level::parse(&v) {
        Some(l) => {
            if l > CAPS.level {
                tracing::warn!(requested = %l, detected = %CAPS.level, "EMBQUANT_SIMD is above what this CPU has: using the detected level");
            }
            Some(l)
        }
        None => {
            tracing::warn!(value = %v, "EMBQUANT_SIMD: expected scalar, avx2 or avx512; ignored");
            None
        }
    }
});

static ACTIVE_CAPS: LazyLock<Caps> = LazyLock::new(|| select(features(), *REQUESTED));
static ACTIVE: LazyLock<Level> = LazyLock::new(|| ACTIVE_CAPS.level);

/// Whether the AVX2 paths (AVX2, FMA, POPCNT) may run.
#[inline]
pub(crate) fn has_avx2() -> bool {
    Level::active() >= Level::Avx2
}

/// Whether the AVX-512 (F, BW, VL, with FMA) paths may run.
#[inline]
pub(crate) fn has_avx512() -> bool {
    Level::active() >= Level::Avx512
}

/// Whether AVX-512 VPOPCNTDQ paths may run.
#[inline]
pub(crate) fn has_vpopcntdq() -> bool {
    ACTIVE_CAPS.vpopcntdq
}

/// Whether AVX-512 VBMI paths may run.
#[inline]
pub(crate) fn has_vbmi() -> bool {
    ACTIVE_CAPS.vbmi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_level_is_selected_without_every_feature_its_paths_enable() {
        let all = Features {
            avx2: true,
            fma: true,
            popcnt: true,
            avx512: true,
            vpopcntdq: true,
            vbmi: true,
        };
        assert_eq!(select(all, None).level, Level::Avx512);
        // A hypervisor that exposes AVX2 but masks FMA or POPCNT: no AVX2 path (the macro
        // used to enable FMA and POPCNT after checking AVX2 alone).
        for masked in [
            Features { fma: false, ..all },
            Features {
                popcnt: false,
                ..all
            },
            Features { avx2: false, ..all },
        ] {
            let c = select(masked, None);
            assert_eq!(c.level, Level::Scalar, "{masked:?}");
            assert!(!c.vpopcntdq && !c.vbmi);
        }
        // AVX-512 without VBMI or VPOPCNTDQ (Skylake-X): the level, not the extensions.
        let skx = select(
            Features {
                vpopcntdq: false,
                vbmi: false,
                ..all
            },
            None,
        );
        assert_eq!(
            (skx.level, skx.vpopcntdq, skx.vbmi),
            (Level::Avx512, false, false)
        );
        // The override lowers the level (and drops the AVX-512 extensions), never raises it.
        let c = select(all, Some(Level::Avx2));
        assert_eq!((c.level, c.vpopcntdq, c.vbmi), (Level::Avx2, false, false));
        let avx2_only = Features {
            avx512: false,
            vpopcntdq: false,
            vbmi: false,
            ..all
        };
        assert_eq!(select(avx2_only, Some(Level::Avx512)).level, Level::Avx2);
        assert_eq!(select(avx2_only, Some(Level::Scalar)).level, Level::Scalar);
        assert_eq!(
            select(Features::default(), Some(Level::Avx512)).level,
            Level::Scalar
        );
    }

    #[test]
    fn the_active_level_is_at_most_what_the_cpu_has() {
        let f = features();
        assert!(Level::active() <= Level::detected());
        if Level::active() >= Level::Avx2 {
            assert!(f.avx2 && f.fma && f.popcnt);
        }
        if Level::active() >= Level::Avx512 {
            assert!(f.avx512);
        }
        assert!(!has_vpopcntdq() || f.vpopcntdq);
        assert!(!has_vbmi() || f.vbmi);
        for l in Level::ALL {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        // The level this process runs at, for the test log (`.ci/run` runs the kernel tests
        // once per level through EMBQUANT_SIMD).
        eprintln!(
            "SIMD level: active {}, detected {}",
            Level::active(),
            Level::detected()
        );
    }
}
