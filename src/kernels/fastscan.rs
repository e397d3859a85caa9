//! Scanning RaBitQ codes with 4-bit groups and 16-entry lookup tables (the FastScan layout
//! of faiss and lance): the RaBitQ table scan for CPUs without AVX-512 VBMI.
//!
//! The estimate is the one of [`crate::kernels::rabitq`]: `qc + G + F * (a * S + b)`, with
//! `S` an integer sum of quantized table entries. Here a group is 4 code bits, so a code byte
//! holds two groups as stored (MSB-first): its high nibble is group `2p` and its low nibble
//! group `2p + 1`, and a table is indexed by the nibble as it is
//! ([`BitOrder::Msb`](crate::kernels::rabitq)). A 16-entry table fits one 128-bit register,
//! so `vpshufb` looks up 32 codes' nibbles at once on AVX2: the codes are laid out in blocks
//! of [`BLOCK`] = 32, byte `p` of the block's 32 codes together, which is the code bytes
//! transposed and nothing more. Per code byte and query the AVX2 scan spends one load shared
//! by up to four queries, two lookups, and four adds and two shifts into u16 lanes (the
//! even/odd split of faiss's `pq4_fast_scan`): about half the instructions of the 6-bit
//! scan's four lookups and three blends per group.
//!
//! The portable path sums a 256-entry u16 table per code byte (the two nibble tables
//! added), one lookup per byte: the same integers as the vector path, so every level ranks
//! codes identically. A NEON path would be a `vqtbl1q_u8` twin of the AVX2 one next to it.

#[cfg(target_arch = "x86_64")]
use std::array;

use super::rabitq::{BitOrder, QuantizedTables};

/// Codes per block (one byte per code in a 256-bit register).
pub const BLOCK: usize = 32;
/// Queries the AVX2 scan looks up against one load of codes.
const QUERY_CHUNK: usize = 4;

/// A query's 4-bit tables: `estimate = qc + G + F * (a * S + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct NibbleQuery {
    /// Per code byte `p`: the 16-entry table of its high nibble (group `2p`), then the one
    /// of its low nibble (group `2p + 1`).
    luts: Vec<u8>,
    /// Code bytes the tables cover.
    bytes: usize,
    /// `2 * delta`.
    pub a: f32,
    /// `2 * sum_g low_g - sum_i q'_i`.
    pub b: f32,
    /// The part of the estimate that does not depend on the code (`<q, centroid>`).
    pub qc: f32,
}

impl NibbleQuery {
    /// Tables for a rotated query `q` (`q.len()` = bits), with constant `qc`.
    pub fn new(q: &[f32], qc: f32) -> Self {
        let t = QuantizedTables::new(q, 4, BitOrder::Msb);
        let bytes = q.len().div_ceil(8);
        let mut luts = t.bytes;
        // An odd number of groups: the last byte's low nibble has an all-zero table.
        luts.resize(bytes * 32, 0);
        NibbleQuery {
            luts,
            bytes,
            a: t.a,
            b: t.b,
            qc,
        }
    }

    /// Code bytes per code.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Groups (two per code byte).
    pub fn groups(&self) -> usize {
        2 * self.bytes
    }

    /// Table entry of group `g` for nibble `n`.
    fn entry(&self, g: usize, n: u8) -> u8 {
        self.luts[g * 16 + n as usize]
    }

    /// The integer table sum `S` of a packed code (scalar twin).
    pub fn table_sum(&self, code: &[u8]) -> u32 {
        code[..self.bytes]
            .iter()
            .enumerate()
            .map(|(p, &c)| self.entry(2 * p, c >> 4) as u32 + self.entry(2 * p + 1, c & 15) as u32)
            .sum()
    }

    /// The estimate for a packed code with scale `f` and offset `g`.
    pub fn estimate(&self, code: &[u8], f: f32, g: f32) -> f32 {
        self.qc + g + f * (self.a * self.table_sum(code) as f32 + self.b)
    }

    /// The byte tables of the portable scan: entry `256 p + c` is the sum of both nibbles'
    /// entries for byte value `c` at code byte `p`.
    fn byte_tables(&self) -> Vec<u16> {
        let mut t = vec![0u16; self.bytes * 256];
        for (p, t) in t.chunks_exact_mut(256).enumerate() {
            for (c, t) in t.iter_mut().enumerate() {
                *t = self.entry(2 * p, (c >> 4) as u8) as u16
                    + self.entry(2 * p + 1, (c & 15) as u8) as u16;
            }
        }
        t
    }
}

/// Codes re-laid for the 4-bit scan: blocks of `BLOCK` codes, byte `p` of the block's codes
/// together; the per-code scales `F` and offsets `G` even codes of the block first, then odd
/// ones (the order the vector kernel produces sums in).
#[derive(Debug, Clone)]
pub struct NibbleBlocks {
    /// Code bytes per code.
    pub bytes: usize,
    /// Codes.
    pub rows: usize,
    codes: Vec<u8>,
    factors: Vec<f32>,
    offsets: Vec<f32>,
}

/// Position of code `i` of a block in the factor order (even codes, then odd ones).
fn factor_slot(i: usize) -> usize {
    (i % 2) * (BLOCK / 2) + i / 2
}

/// Code of a block at position `p` of the factor order.
fn slot_code(p: usize) -> usize {
    if p < BLOCK / 2 {
        2 * p
    } else {
        2 * (p - BLOCK / 2) + 1
    }
}

impl NibbleBlocks {
    /// From `rows` codes of `width` bytes each, of which the first `bytes` are the sign bits,
    /// with their scales and offsets.
    pub fn new(codes: &[u8], width: usize, bytes: usize, factors: &[f32], offsets: &[f32]) -> Self {
        let rows = factors.len();
        assert!(bytes <= width, "sign bytes beyond the code width");
        assert_eq!(offsets.len(), rows, "one offset per row");
        assert_eq!(codes.len(), rows * width, "codes are not rows x width");
        let blocks = rows.div_ceil(BLOCK);
        let mut c = vec![0u8; blocks * bytes * BLOCK];
        let mut f = vec![0f32; blocks * BLOCK];
        let mut o = vec![0f32; blocks * BLOCK];
        for r in 0..rows {
            let (blk, i) = (r / BLOCK, r % BLOCK);
            for (p, &b) in codes[r * width..r * width + bytes].iter().enumerate() {
                c[(blk * bytes + p) * BLOCK + i] = b;
            }
            f[blk * BLOCK + factor_slot(i)] = factors[r];
            o[blk * BLOCK + factor_slot(i)] = offsets[r];
        }
        NibbleBlocks {
            bytes,
            rows,
            codes: c,
            factors: f,
            offsets: o,
        }
    }

    /// Blocks.
    pub fn blocks(&self) -> usize {
        self.rows.div_ceil(BLOCK)
    }

    /// Scale `F` of code `row`.
    pub fn factor(&self, row: usize) -> f32 {
        self.factors[row / BLOCK * BLOCK + factor_slot(row % BLOCK)]
    }

    /// Offset `G` of code `row`.
    pub fn offset(&self, row: usize) -> f32 {
        self.offsets[row / BLOCK * BLOCK + factor_slot(row % BLOCK)]
    }

    /// The sign bytes of code `row`.
    pub fn code(&self, row: usize) -> Vec<u8> {
        let (blk, i) = (row / BLOCK, row % BLOCK);
        (0..self.bytes)
            .map(|p| self.codes[(blk * self.bytes + p) * BLOCK + i])
            .collect()
    }

    /// For each query, appends `(row, estimate)` to `hits[q]` for every code in blocks
    /// `blocks` whose estimate is at least `cuts[q]`.
    pub fn scan_within(
        &self,
        queries: &[&NibbleQuery],
        cuts: &[f32],
        blocks: std::ops::Range<usize>,
        hits: &mut [Vec<(u32, f32)>],
    ) {
        assert!(blocks.end <= self.blocks(), "blocks out of range");
        assert!(queries.len() == cuts.len() && queries.len() == hits.len());
        for q in queries {
            assert_eq!(q.bytes, self.bytes, "query and codes of different widths");
        }
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2() {
            let mut start = 0;
            while start < queries.len() {
                let end = (start + QUERY_CHUNK).min(queries.len());
                let (q, c, h) = (
                    &queries[start..end],
                    &cuts[start..end],
                    &mut hits[start..end],
                );
                let b = blocks.clone();
                // SAFETY: the dispatch layer detected AVX2 and FMA; the block range and the
                // tables' widths were checked above; each call gets exactly its N queries.
                unsafe {
                    match q.len() {
                        4 => self.scan_avx2::<4>(q, c, b, h),
                        3 => self.scan_avx2::<3>(q, c, b, h),
                        2 => self.scan_avx2::<2>(q, c, b, h),
                        _ => self.scan_avx2::<1>(q, c, b, h),
                    }
                }
                start = end;
            }
            return;
        }
        self.scan_portable(queries, cuts, blocks, hits)
    }

    /// The portable path: one 256-entry table lookup per code byte, 32 codes' sums at once.
    pub fn scan_portable(
        &self,
        queries: &[&NibbleQuery],
        cuts: &[f32],
        blocks: std::ops::Range<usize>,
        hits: &mut [Vec<(u32, f32)>],
    ) {
        for ((q, &cut), h) in queries.iter().zip(cuts).zip(hits.iter_mut()) {
            let tables = q.byte_tables();
            for blk in blocks.clone() {
                let mut sums = [0u32; BLOCK];
                let base = &self.codes[blk * self.bytes * BLOCK..(blk + 1) * self.bytes * BLOCK];
                for (t, codes) in tables.chunks_exact(256).zip(base.chunks_exact(BLOCK)) {
                    for (s, &c) in sums.iter_mut().zip(codes) {
                        *s += t[c as usize] as u32;
                    }
                }
                for (i, &s) in sums.iter().enumerate() {
                    let row = blk * BLOCK + i;
                    if row >= self.rows {
                        break;
                    }
                    let (f, g) = (self.factor(row), self.offset(row));
                    let e = q.qc + g + f * (q.a * s as f32 + q.b);
                    if e >= cut {
                        h.push((row as u32, e));
                    }
                }
            }
        }
    }

    /// The scalar twin: every code's estimate through [`NibbleQuery::estimate`].
    pub fn scan_scalar(
        &self,
        queries: &[&NibbleQuery],
        cuts: &[f32],
        blocks: std::ops::Range<usize>,
        hits: &mut [Vec<(u32, f32)>],
    ) {
        for blk in blocks {
            for i in 0..BLOCK {
                let row = blk * BLOCK + i;
                if row >= self.rows {
                    break;
                }
                let code = self.code(row);
                let (f, g) = (self.factor(row), self.offset(row));
                for ((q, &cut), h) in queries.iter().zip(cuts).zip(hits.iter_mut()) {
                    let e = q.estimate(&code, f, g);
                    if e >= cut {
                        h.push((row as u32, e));
                    }
                }
            }
        }
    }

    /// AVX2: for each code byte, one load of 32 codes, their two nibbles split once, then per
    /// query two `vpshufb` lookups of 16-entry tables summed into u16 lanes of even and odd
    /// codes (`lo` holds even + 256 * odd modulo 2^16, `hi` the odd sums).
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `queries`, `cuts` and `hits` hold `N` entries,
    /// `blocks.end <= self.blocks()` and every query's tables cover `self.bytes` bytes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scan_avx2<const N: usize>(
        &self,
        queries: &[&NibbleQuery],
        cuts: &[f32],
        blocks: std::ops::Range<usize>,
        hits: &mut [Vec<(u32, f32)>],
    ) {
        use std::arch::x86_64::*;
        // A u16 lane of `hi` gains at most 2 * 255 per code byte: flush every FLUSH bytes.
        const FLUSH: usize = 128;
        let bytes = self.bytes;
        let luts: [*const u8; N] = array::from_fn(|q| queries[q].luts.as_ptr());
        let mask = _mm256_set1_epi8(0x0f);
        for blk in blocks {
            let base = self.codes.as_ptr().wrapping_add(blk * bytes * BLOCK);
            // Per query: u32 sums of even codes 0..14, 16..30, odd codes 1..15, 17..31.
            let mut total = [[_mm256_setzero_si256(); 4]; N];
            let mut lo = [_mm256_setzero_si256(); N];
            let mut hi = [_mm256_setzero_si256(); N];
            for p in 0..bytes {
                // SAFETY: byte p < bytes of block blk < blocks: 32 bytes inside `codes`.
                let v = unsafe { _mm256_loadu_si256(base.add(p * BLOCK).cast()) };
                let high = _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask);
                let low = _mm256_and_si256(v, mask);
                for q in 0..N {
                    // SAFETY: each query has 32 table bytes per code byte, `bytes` of them.
                    let (th, tl) = unsafe {
                        let t = luts[q].add(p * 32);
                        (
                            _mm256_broadcastsi128_si256(_mm_loadu_si128(t.cast())),
                            _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(16).cast())),
                        )
                    };
                    let r0 = _mm256_shuffle_epi8(th, high);
                    let r1 = _mm256_shuffle_epi8(tl, low);
                    lo[q] = _mm256_add_epi16(lo[q], _mm256_add_epi16(r0, r1));
                    hi[q] = _mm256_add_epi16(
                        hi[q],
                        _mm256_add_epi16(_mm256_srli_epi16::<8>(r0), _mm256_srli_epi16::<8>(r1)),
                    );
                }
                if (p + 1) % FLUSH == 0 || p + 1 == bytes {
                    for q in 0..N {
                        // lo = even + 256 * odd (mod 2^16), so even = lo - (hi << 8).
                        let even = _mm256_sub_epi16(lo[q], _mm256_slli_epi16::<8>(hi[q]));
                        let parts = [
                            _mm256_castsi256_si128(even),
                            _mm256_extracti128_si256::<1>(even),
                            _mm256_castsi256_si128(hi[q]),
                            _mm256_extracti128_si256::<1>(hi[q]),
                        ];
                        for (t, part) in total[q].iter_mut().zip(parts) {
                            *t = _mm256_add_epi32(*t, _mm256_cvtepu16_epi32(part));
                        }
                        lo[q] = _mm256_setzero_si256();
                        hi[q] = _mm256_setzero_si256();
                    }
                }
            }
            let fp = self.factors.as_ptr().wrapping_add(blk * BLOCK);
            let op = self.offsets.as_ptr().wrapping_add(blk * BLOCK);
            for q in 0..N {
                let nq = queries[q];
                let (a, bq, qc) = (
                    _mm256_set1_ps(nq.a),
                    _mm256_set1_ps(nq.b),
                    _mm256_set1_ps(nq.qc),
                );
                let cut = _mm256_set1_ps(cuts[q]);
                for (k, t) in total[q].iter().enumerate() {
                    // SAFETY: 8 scales and offsets at 8k of the block's 32.
                    let (f, g) = unsafe {
                        (
                            _mm256_loadu_ps(fp.add(8 * k)),
                            _mm256_loadu_ps(op.add(8 * k)),
                        )
                    };
                    let s = _mm256_fmadd_ps(a, _mm256_cvtepi32_ps(*t), bq);
                    let e = _mm256_fmadd_ps(f, s, _mm256_add_ps(qc, g));
                    let mut m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(e, cut)) as u32;
                    if m != 0 {
                        let mut es = [0f32; 8];
                        // SAFETY: es holds 8 f32.
                        unsafe { _mm256_storeu_ps(es.as_mut_ptr(), e) };
                        while m != 0 {
                            let l = m.trailing_zeros() as usize;
                            m &= m - 1;
                            let row = blk * BLOCK + slot_code(8 * k + l);
                            if row < self.rows {
                                hits[q].push((row as u32, es[l]));
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::kernels::rabitq::{group_patterns, LutQuery, GROUP_BITS};

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// Hits sorted by row.
    fn sorted(mut h: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        h.sort_by_key(|h| h.0);
        h
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn every_path_equals_the_scalar_twin(nbits in prop::sample::select(vec![4usize, 7, 8, 12, 64, 384, 512, 2056, 4096]), rows in 1usize..150, nq in 1usize..7, seed in any::<u64>()) {
            let mut next = rng(seed);
            let bytes = nbits.div_ceil(8);
            // Codes carry 8 more bytes (the RaBitQ factors) the layout must skip.
            let width = bytes + 8;
            let codes: Vec<u8> = (0..rows * width).map(|_| next() as u8).collect();
            let factors: Vec<f32> = (0..rows).map(|_| (next() % 1000) as f32 / 500.0).collect();
            let offsets: Vec<f32> = (0..rows).map(|_| (next() % 1000) as f32 / 1000.0 - 0.5).collect();
            let blocks = NibbleBlocks::new(&codes, width, bytes, &factors, &offsets);
            for r in 0..rows {
                prop_assert_eq!(blocks.code(r), codes[r * width..r * width + bytes].to_vec());
                prop_assert_eq!(blocks.factor(r), factors[r]);
                prop_assert_eq!(blocks.offset(r), offsets[r]);
            }
            let qs: Vec<NibbleQuery> = (0..nq)
                .map(|_| {
                    let q: Vec<f32> = (0..nbits).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
                    NibbleQuery::new(&q, 0.25)
                })
                .collect();
            let refs: Vec<&NibbleQuery> = qs.iter().collect();
            // A cut at row 0's score keeps some codes and drops others.
            let cuts: Vec<f32> = qs.iter().map(|q| q.estimate(&blocks.code(0), blocks.factor(0), blocks.offset(0))).collect();
            let all = 0..blocks.blocks();
            let (mut fast, mut portable, mut twin) = (vec![Vec::new(); nq], vec![Vec::new(); nq], vec![Vec::new(); nq]);
            blocks.scan_within(&refs, &cuts, all.clone(), &mut fast);
            blocks.scan_portable(&refs, &cuts, all.clone(), &mut portable);
            blocks.scan_scalar(&refs, &cuts, all, &mut twin);
            for q in 0..nq {
                let twin = sorted(twin[q].clone());
                prop_assert!(twin.iter().any(|h| h.0 == 0), "row 0 is at the cut");
                // The portable path computes the twin's expression: the same hits, bit for bit.
                prop_assert_eq!(&sorted(portable[q].clone()), &twin);
                // The vector path fuses multiply-adds over the same integer sums: its estimate
                // differs by f32 rounding of the terms `qc`, `G` and `F (a S + b)`, which
                // cancel (a long code's `a S` and `b` are large and opposite), so the tolerance
                // scales with the terms, not with the estimate. Rows within it of the cut may
                // fall on either side; every other row agrees.
                let tol = |row: u32| {
                    let (r, nqr) = (row as usize, refs[q]);
                    let s = nqr.table_sum(&blocks.code(r)) as f32;
                    let terms = nqr.qc.abs() + blocks.offset(r).abs()
                        + blocks.factor(r).abs() * ((nqr.a * s).abs() + nqr.b.abs());
                    1e-5 + 8.0 * f32::EPSILON * terms
                };
                let f = sorted(fast[q].clone());
                let near = |row: u32, e: f32| (e - cuts[q]).abs() <= tol(row) + tol(0);
                let (mut i, mut j) = (0, 0);
                while i < f.len() || j < twin.len() {
                    match (f.get(i), twin.get(j)) {
                        (Some(x), Some(y)) if x.0 == y.0 => {
                            prop_assert!((x.1 - y.1).abs() <= tol(x.0), "{} vs {}", x.1, y.1);
                            i += 1;
                            j += 1;
                        }
                        (Some(x), y) if y.is_none_or(|y| x.0 < y.0) => {
                            prop_assert!(near(x.0, x.1), "row {} only in the vector scan", x.0);
                            i += 1;
                        }
                        (_, Some(y)) => {
                            prop_assert!(near(y.0, y.1), "row {} only in the scalar scan", y.0);
                            j += 1;
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }

        #[test]
        fn table_sum_is_within_half_a_step_per_group(nbits in 1usize..600, seed in any::<u64>()) {
            let mut next = rng(seed);
            let q: Vec<f32> = (0..nbits).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            let code: Vec<u8> = (0..nbits.div_ceil(8)).map(|_| next() as u8).collect();
            let nq = NibbleQuery::new(&q, 0.0);
            let exact: f64 = (0..nbits).filter(|&i| (code[i / 8] >> (7 - i % 8)) & 1 == 1).map(|i| q[i] as f64).sum();
            let sum: f64 = q.iter().map(|&x| x as f64).sum();
            // a * S + b approximates 2 * exact - sum, within half a step per (real) group.
            let got = nq.a as f64 * nq.table_sum(&code) as f64 + nq.b as f64;
            let bound = nbits.div_ceil(4) as f64 * nq.a as f64 / 2.0 + 1e-4 * (1.0 + sum.abs());
            prop_assert!((got - (2.0 * exact - sum)).abs() <= bound, "{got} vs {}", 2.0 * exact - sum);
        }
    }

    #[test]
    fn four_bit_tables_are_finer_per_group_than_six_bit_ones() {
        // The same query through both layouts: each table spans the sum of |q_i| over its
        // group, so the 4-bit step is at most the 6-bit one (both divide the widest span by
        // 255), and both estimate the same quantity.
        let mut next = rng(9);
        let q: Vec<f32> = (0..384)
            .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let code: Vec<u8> = (0..48).map(|_| next() as u8).collect();
        let (four, six) = (NibbleQuery::new(&q, 0.0), LutQuery::new(&q, 0.0));
        assert!(
            four.a <= six.a,
            "4-bit step {} vs 6-bit step {}",
            four.a,
            six.a
        );
        let mut pats = vec![0u8; 384usize.div_ceil(GROUP_BITS)];
        group_patterns(&code, 384, &mut pats);
        let (e4, e6) = (
            four.estimate(&code, 1.0, 0.0),
            six.estimate(&pats, 1.0, 0.0),
        );
        let bound = 96.0 * four.a / 2.0 + 64.0 * six.a / 2.0;
        assert!((e4 - e6).abs() <= bound, "{e4} vs {e6} (bound {bound})");
    }
}
