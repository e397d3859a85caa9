//! Many float queries against many float rows: `out[r][q] = <rows[r], queries[q]>`.
//!
//! The queries are held transposed ([`QueryBlock`]: dimension-major, padded to a multiple of
//! 64), so the AVX-512 kernel multiplies one broadcast row value into 64 queries at once
//! (four 16-lane registers) for six rows: 24 independent FMA accumulators per dimension and no
//! horizontal sums. The AVX2 kernel is the same for 16 queries (two 8-lane registers) and six
//! rows. Elsewhere a plain loop over the padded queries, which compilers vectorize.

/// Queries per register tile of the vector kernel.
pub const QUERY_TILE: usize = 64;
/// Rows per register tile of the vector kernel.
const ROW_TILE: usize = 6;

/// Queries transposed for [`QueryBlock::scores`].
#[derive(Debug, Clone)]
pub struct QueryBlock {
    /// `dim x padded` values: `t[d * padded + q]` is dimension `d` of query `q`.
    t: Vec<f32>,
    dim: usize,
    #[cfg_attr(not(feature = "recall"), allow(dead_code))]
    queries: usize,
    padded: usize,
}

impl QueryBlock {
    /// From `queries` row-major (`dim` per query).
    pub fn new(queries: &[f32], dim: usize) -> Self {
        assert!(
            dim > 0 && queries.len().is_multiple_of(dim),
            "queries are not whole rows"
        );
        let n = queries.len() / dim;
        let padded = n.next_multiple_of(QUERY_TILE).max(QUERY_TILE);
        let mut t = vec![0f32; dim * padded];
        for (q, v) in queries.chunks_exact(dim).enumerate() {
            for (d, &x) in v.iter().enumerate() {
                t[d * padded + q] = x;
            }
        }
        QueryBlock {
            t,
            dim,
            queries: n,
            padded,
        }
    }

    /// Queries held.
    #[cfg_attr(not(feature = "recall"), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.queries
    }

    /// Row stride of [`QueryBlock::scores`]'s output (queries padded to 64).
    pub fn stride(&self) -> usize {
        self.padded
    }

    /// `out[r * stride + q] = <rows[r], query q>` for every row of `rows` (row-major, `dim`
    /// per row); `out` holds `rows x stride` values (padding columns get 0).
    pub fn scores(&self, rows: &[f32], out: &mut [f32]) {
        let n = rows.len() / self.dim;
        assert_eq!(rows.len(), n * self.dim, "rows are not whole");
        assert_eq!(out.len(), n * self.padded, "out is not rows x stride");
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx512() {
            // SAFETY: AVX-512F was detected at run time; lengths were checked above.
            unsafe { self.scores_avx512(rows, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2() {
            // SAFETY: the dispatch layer detected AVX2 and FMA; lengths were checked above.
            unsafe { self.scores_avx2(rows, out) };
            return;
        }
        self.scores_portable(rows, out)
    }

    /// The portable path and scalar twin: for each row, a sweep over the dimension-major
    /// queries.
    pub fn scores_portable(&self, rows: &[f32], out: &mut [f32]) {
        for (row, o) in rows
            .chunks_exact(self.dim)
            .zip(out.chunks_exact_mut(self.padded))
        {
            o.fill(0.0);
            for (d, &x) in row.iter().enumerate() {
                let t = &self.t[d * self.padded..(d + 1) * self.padded];
                for (o, &q) in o.iter_mut().zip(t) {
                    *o += x * q;
                }
            }
        }
    }

    /// # Safety
    /// AVX-512F must be available; `out.len() == rows.len() / dim * padded`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn scores_avx512(&self, rows: &[f32], out: &mut [f32]) {
        let n = rows.len() / self.dim;
        let mut r = 0;
        while r < n {
            let k = ROW_TILE.min(n - r);
            // SAFETY: rows r..r + k exist; forwarded contract.
            unsafe {
                match k {
                    6 => self.tile::<6>(rows, r, out),
                    5 => self.tile::<5>(rows, r, out),
                    4 => self.tile::<4>(rows, r, out),
                    3 => self.tile::<3>(rows, r, out),
                    2 => self.tile::<2>(rows, r, out),
                    _ => self.tile::<1>(rows, r, out),
                }
            }
            r += k;
        }
    }

    /// # Safety
    /// AVX2 and FMA must be available; `out.len() == rows.len() / dim * padded`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scores_avx2(&self, rows: &[f32], out: &mut [f32]) {
        let n = rows.len() / self.dim;
        let mut r = 0;
        while r < n {
            let k = ROW_TILE.min(n - r);
            // SAFETY: rows r..r + k exist; forwarded contract.
            unsafe {
                match k {
                    6 => self.tile_avx2::<6>(rows, r, out),
                    5 => self.tile_avx2::<5>(rows, r, out),
                    4 => self.tile_avx2::<4>(rows, r, out),
                    3 => self.tile_avx2::<3>(rows, r, out),
                    2 => self.tile_avx2::<2>(rows, r, out),
                    _ => self.tile_avx2::<1>(rows, r, out),
                }
            }
            r += k;
        }
    }

    /// Rows `r0..r0 + R` against every query, 16 queries at a time: the 6 x 16 register
    /// tile of AVX2 (12 FMA accumulators, two query loads and a broadcast per dimension).
    ///
    /// # Safety
    /// AVX2 and FMA must be available; rows `r0..r0 + R` exist and `out` holds their scores.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_avx2<const R: usize>(&self, rows: &[f32], r0: usize, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let (dim, padded) = (self.dim, self.padded);
        let rp = rows.as_ptr();
        let tp = self.t.as_ptr();
        for c0 in (0..padded).step_by(16) {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for d in 0..dim {
                // SAFETY: d < dim and c0 + 16 <= padded: inside `t`.
                let q = unsafe {
                    let p = tp.add(d * padded + c0);
                    [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]
                };
                for (i, a) in acc.iter_mut().enumerate() {
                    // SAFETY: row r0 + i < n, dimension d < dim.
                    let x = _mm256_set1_ps(unsafe { *rp.add((r0 + i) * dim + d) });
                    a[0] = _mm256_fmadd_ps(x, q[0], a[0]);
                    a[1] = _mm256_fmadd_ps(x, q[1], a[1]);
                }
            }
            for (i, a) in acc.iter().enumerate() {
                let o = &mut out[(r0 + i) * padded + c0..(r0 + i) * padded + c0 + 16];
                // SAFETY: 8 floats at 0 and at 8 inside the 16-float slice `o`.
                unsafe {
                    _mm256_storeu_ps(o.as_mut_ptr(), a[0]);
                    _mm256_storeu_ps(o.as_mut_ptr().add(8), a[1]);
                }
            }
        }
    }

    /// Rows `r0..r0 + R` against every query.
    ///
    /// # Safety
    /// AVX-512F must be available; rows `r0..r0 + R` exist and `out` holds their scores.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize>(&self, rows: &[f32], r0: usize, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let (dim, padded) = (self.dim, self.padded);
        let rp = rows.as_ptr();
        let tp = self.t.as_ptr();
        for c0 in (0..padded).step_by(QUERY_TILE) {
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            for d in 0..dim {
                // SAFETY: d < dim and c0 + 64 <= padded: inside `t`.
                let q = unsafe {
                    let p = tp.add(d * padded + c0);
                    [
                        _mm512_loadu_ps(p),
                        _mm512_loadu_ps(p.add(16)),
                        _mm512_loadu_ps(p.add(32)),
                        _mm512_loadu_ps(p.add(48)),
                    ]
                };
                for (i, a) in acc.iter_mut().enumerate() {
                    // SAFETY: row r0 + i < n, dimension d < dim.
                    let x = _mm512_set1_ps(unsafe { *rp.add((r0 + i) * dim + d) });
                    for (a, q) in a.iter_mut().zip(q) {
                        *a = _mm512_fmadd_ps(x, q, *a);
                    }
                }
            }
            for (i, a) in acc.iter().enumerate() {
                let o = &mut out[(r0 + i) * padded + c0..(r0 + i) * padded + c0 + QUERY_TILE];
                for (j, a) in a.iter().enumerate() {
                    // SAFETY: 16 floats at 16j inside the 64-float slice `o`.
                    unsafe { _mm512_storeu_ps(o.as_mut_ptr().add(16 * j), *a) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn vector_scores_equal_the_twin_and_f64_dots(dim in 1usize..70, n in 0usize..20, nq in 1usize..140, seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % 2001) as f32 / 1000.0 - 1.0 };
            let rows: Vec<f32> = (0..n * dim).map(|_| next()).collect();
            let qs: Vec<f32> = (0..nq * dim).map(|_| next()).collect();
            let b = QueryBlock::new(&qs, dim);
            let mut fast = vec![1f32; n * b.stride()];
            let mut twin = vec![1f32; n * b.stride()];
            b.scores(&rows, &mut fast);
            b.scores_portable(&rows, &mut twin);
            for r in 0..n {
                for q in 0..b.stride() {
                    let want: f64 = if q < nq {
                        (0..dim).map(|d| rows[r * dim + d] as f64 * qs[q * dim + d] as f64).sum()
                    } else {
                        0.0
                    };
                    let got = fast[r * b.stride() + q] as f64;
                    prop_assert!((got - want).abs() <= 1e-5 * dim as f64, "{got} vs {want}");
                    prop_assert!((twin[r * b.stride() + q] as f64 - want).abs() <= 1e-5 * dim as f64);
                }
            }
        }
    }
}
