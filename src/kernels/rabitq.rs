//! Scanning RaBitQ codes with a quantized query: 6-bit groups and 64-entry lookup tables.
//!
//! A RaBitQ code is `B` sign bits `b_i` plus a per-vector factor `F` (see
//! [`crate::codec::rabitq`]); the estimated inner product with a query whose rotated form is
//! `q'` is `qc + F * (2 * sum_{b_i = 1} q'_i - sum_i q'_i)`. The only part that depends on the
//! bits is `sum_{b_i = 1} q'_i`. Split the `B` bits into groups of 6: for each group `g`, a
//! 64-entry table holds, for every pattern `m` of its 6 bits, the sum of the `q'_i` whose bit
//! is set in `m`, quantized to 8 bits on one scale `delta` shared by all tables (after
//! subtracting the group's smallest entry `low_g`):
//!
//! `lut_g[m] = round((sum_{t: m_t = 1} q'_{6g+t} - low_g) / delta)`,
//!
//! so `sum_{b_i = 1} q'_i ~= delta * S + sum_g low_g`, with `S = sum_g lut_g[group_g(code)]`
//! an integer, off by at most `groups * delta / 2`. On AVX-512 VBMI one `vpermb` looks up a
//! group for 64 codes at once (the tables are exactly 64 bytes), so the scan costs about four
//! vector instructions per group per 64 codes. [`RabitqBlocks`] holds the codes re-laid for
//! that: blocks of 64 codes, each group's 64 pattern bytes together.

/// Bits per lookup group.
pub const GROUP_BITS: usize = 6;
/// Codes per block of the scan layout (one byte per code in a 512-bit register).
pub const BLOCK: usize = 64;
/// Groups whose tables the vector scan holds in registers at once; tables and patterns are
/// padded with zeros to a multiple of it.
pub const GROUP_CHUNK: usize = 8;
/// Blocks the vector scan walks with one set of tables (their patterns stay in L1).
const TILE: usize = 4;

/// A query's lookup tables: `estimate = qc + G + F * (a * S + b)`, with `F` and `G` the
/// code's scale and offset.
#[derive(Debug, Clone, PartialEq)]
pub struct LutQuery {
    /// `groups x 64` table bytes, then zero tables up to a multiple of `GROUP_CHUNK` groups.
    pub luts: Vec<u8>,
    groups: usize,
    /// `2 * delta`.
    pub a: f32,
    /// `2 * sum_g low_g - sum_i q'_i`.
    pub b: f32,
    /// The part of the estimate that does not depend on the code (`<q, centroid>`).
    pub qc: f32,
}

impl LutQuery {
    /// Tables for a rotated query `q` (`q.len()` = bits), with constant `qc`.
    pub fn new(q: &[f32], qc: f32) -> Self {
        let t = QuantizedTables::new(q, GROUP_BITS, BitOrder::Lsb);
        let mut luts = t.bytes;
        luts.resize(t.groups.next_multiple_of(GROUP_CHUNK) * 64, 0);
        LutQuery {
            luts,
            groups: t.groups,
            a: t.a,
            b: t.b,
            qc,
        }
    }

    /// Number of groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The integer table sum `S` of one code, given its group patterns (scalar twin).
    pub fn table_sum(&self, patterns: &[u8]) -> u32 {
        patterns
            .iter()
            .enumerate()
            .map(|(g, &p)| self.luts[g * 64 + (p & 63) as usize] as u32)
            .sum()
    }

    /// The estimate for a code with group patterns `patterns`, scale `f` and offset `g`.
    pub fn estimate(&self, patterns: &[u8], f: f32, g: f32) -> f32 {
        self.qc + g + f * (self.a * self.table_sum(patterns) as f32 + self.b)
    }
}

/// Which pattern bit stands for a group's first dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BitOrder {
    /// Bit `t` of a pattern is the group's dimension `t` (the 6-bit patterns).
    Lsb,
    /// Bit `bits - 1 - t` is dimension `t`: a nibble of a code byte read as it is stored
    /// (MSB-first), as the 4-bit scan of [`crate::kernels::fastscan`] reads it.
    Msb,
}

/// A query's tables over groups of `bits` rotated dimensions, quantized to bytes on one
/// step `delta` shared by all tables: `a * S + b` approximates `2 * sum_{b_i = 1} q_i -
/// sum_i q_i` for the integer table sum `S`, off by at most `groups * a / 2`.
pub(crate) struct QuantizedTables {
    /// `groups x 2^bits` table bytes.
    pub bytes: Vec<u8>,
    /// Groups (`q.len() / bits`, rounded up).
    pub groups: usize,
    /// `2 * delta`.
    pub a: f32,
    /// `2 * sum_g low_g - sum_i q_i`.
    pub b: f32,
}

impl QuantizedTables {
    pub(crate) fn new(q: &[f32], bits: usize, order: BitOrder) -> Self {
        let size = 1usize << bits;
        let groups = q.len().div_ceil(bits);
        let mut vals = vec![0f64; groups * size];
        let mut lows = vec![0f64; groups];
        let mut span = 0f64;
        for g in 0..groups {
            let dims = &q[g * bits..((g + 1) * bits).min(q.len())];
            let v = &mut vals[g * size..(g + 1) * size];
            for (m, v) in v.iter_mut().enumerate() {
                *v = dims
                    .iter()
                    .enumerate()
                    .filter(|(t, _)| match order {
                        BitOrder::Lsb => m >> t & 1 == 1,
                        BitOrder::Msb => m >> (bits - 1 - t) & 1 == 1,
                    })
                    .map(|(_, &x)| x as f64)
                    .sum();
            }
            lows[g] = dims.iter().map(|&x| (x as f64).min(0.0)).sum();
            span = span.max(dims.iter().map(|&x| (x as f64).abs()).sum());
        }
        let delta = if span > 0.0 { span / 255.0 } else { 1.0 };
        let bytes = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| ((v - lows[i / size]) / delta).round().clamp(0.0, 255.0) as u8)
            .collect();
        let sum: f64 = q.iter().map(|&x| x as f64).sum();
        let low: f64 = lows.iter().sum();
        QuantizedTables {
            bytes,
            groups,
            a: (2.0 * delta) as f32,
            b: (2.0 * low - sum) as f32,
        }
    }
}

/// The 6-bit group patterns of one packed code (bit `i` of the code is bit `7 - i % 8` of
/// byte `i / 8`, MSB-first like `numpy.packbits`); bit `t` of pattern `g` is code bit
/// `6g + t`.
pub fn group_patterns(bits: &[u8], nbits: usize, out: &mut [u8]) {
    assert_eq!(
        out.len(),
        nbits.div_ceil(GROUP_BITS),
        "one pattern per group"
    );
    assert!(bits.len() >= nbits.div_ceil(8), "too few code bytes");
    // Bit i of the code at bit i % 64 of word i / 64 (bytes bit-reversed), one spare word.
    let mut words = vec![0u64; nbits.div_ceil(64) + 1];
    for (j, &b) in bits[..nbits.div_ceil(8)].iter().enumerate() {
        words[j / 8] |= (b.reverse_bits() as u64) << (8 * (j % 8));
    }
    if !nbits.is_multiple_of(64) {
        words[nbits / 64] &= (1u64 << (nbits % 64)) - 1;
    }
    for (g, o) in out.iter_mut().enumerate() {
        let i = g * GROUP_BITS;
        let (w, sh) = (i / 64, i % 64);
        let mut v = words[w] >> sh;
        if sh > 64 - GROUP_BITS {
            v |= words[w + 1] << (64 - sh);
        }
        *o = (v & 63) as u8;
    }
}

/// Scalar twin of [`group_patterns`]: bit by bit.
#[cfg(test)]
pub fn group_patterns_scalar(bits: &[u8], nbits: usize, out: &mut [u8]) {
    let bit = |i: usize| -> u8 {
        if i < nbits {
            (bits[i / 8] >> (7 - i % 8)) & 1
        } else {
            0
        }
    };
    for (g, o) in out.iter_mut().enumerate() {
        let mut p = 0u8;
        for t in 0..GROUP_BITS {
            p |= bit(g * GROUP_BITS + t) << t;
        }
        *o = p;
    }
}

/// Codes re-laid for the table scan: blocks of `BLOCK` codes; within a block, for each
/// group, the 64 codes' patterns; and the per-code scales `F` and offsets `G`, even codes of
/// the block first, then odd ones (the order the vector kernel produces sums in).
#[derive(Debug, Clone)]
pub struct RabitqBlocks {
    /// Groups per code.
    pub groups: usize,
    /// Codes.
    pub rows: usize,
    patterns: Vec<u8>,
    factors: Vec<f32>,
    offsets: Vec<f32>,
}

impl RabitqBlocks {
    /// From `rows` group-pattern rows (`groups` bytes each), their scales and offsets.
    pub fn new(patterns: &[u8], groups: usize, factors: &[f32], offsets: &[f32]) -> Self {
        let rows = factors.len();
        assert_eq!(offsets.len(), rows, "one offset per row");
        assert_eq!(
            patterns.len(),
            rows * groups,
            "patterns are not rows x groups"
        );
        let blocks = rows.div_ceil(BLOCK);
        let padded = groups.next_multiple_of(GROUP_CHUNK);
        let mut p = vec![0u8; blocks * padded * BLOCK];
        let mut f = vec![0f32; blocks * BLOCK];
        let mut o = vec![0f32; blocks * BLOCK];
        for r in 0..rows {
            let (blk, i) = (r / BLOCK, r % BLOCK);
            for g in 0..groups {
                p[(blk * padded + g) * BLOCK + i] = patterns[r * groups + g];
            }
            f[blk * BLOCK + (i % 2) * (BLOCK / 2) + i / 2] = factors[r];
            o[blk * BLOCK + (i % 2) * (BLOCK / 2) + i / 2] = offsets[r];
        }
        RabitqBlocks {
            groups,
            rows,
            patterns: p,
            factors: f,
            offsets: o,
        }
    }

    /// Groups including the zero padding.
    fn padded(&self) -> usize {
        self.groups.next_multiple_of(GROUP_CHUNK)
    }

    /// Blocks.
    pub fn blocks(&self) -> usize {
        self.rows.div_ceil(BLOCK)
    }

    /// Scale `F` of code `row`.
    pub fn factor(&self, row: usize) -> f32 {
        let (blk, i) = (row / BLOCK, row % BLOCK);
        self.factors[blk * BLOCK + (i % 2) * (BLOCK / 2) + i / 2]
    }

    /// Offset `G` of code `row`.
    pub fn offset(&self, row: usize) -> f32 {
        let (blk, i) = (row / BLOCK, row % BLOCK);
        self.offsets[blk * BLOCK + (i % 2) * (BLOCK / 2) + i / 2]
    }

    /// Group patterns of code `row`.
    pub fn patterns(&self, row: usize) -> Vec<u8> {
        let (blk, i) = (row / BLOCK, row % BLOCK);
        (0..self.groups)
            .map(|g| self.patterns[(blk * self.padded() + g) * BLOCK + i])
            .collect()
    }

    /// For each query, appends `(row, estimate)` to `hits[q]` for every code in blocks
    /// `blocks` whose estimate is at least `cuts[q]`.
    pub fn scan_within(
        &self,
        queries: &[&LutQuery],
        cuts: &[f32],
        blocks: std::ops::Range<usize>,
        hits: &mut [Vec<(u32, f32)>],
    ) {
        assert!(blocks.end <= self.blocks(), "blocks out of range");
        assert!(queries.len() == cuts.len() && queries.len() == hits.len());
        for q in queries {
            assert_eq!(
                q.groups(),
                self.groups,
                "query and codes of different widths"
            );
        }
        #[cfg(target_arch = "x86_64")]
        if has_vbmi() {
            // SAFETY: AVX-512F/BW/VBMI were detected at run time; block ranges and table sizes
            // were checked above.
            unsafe { self.scan_vbmi(queries, cuts, blocks, hits) };
            return;
        }
        // Without VBMI search builds the 4-bit layout (`fastscan::NibbleBlocks`) instead: this layout
        // is scanned by VBMI or by the scalar twin (tests, other architectures).
        self.scan_scalar(queries, cuts, blocks, hits)
    }

    /// The scalar twin: one table lookup per group per code.
    pub fn scan_scalar(
        &self,
        queries: &[&LutQuery],
        cuts: &[f32],
        blocks: std::ops::Range<usize>,
        hits: &mut [Vec<(u32, f32)>],
    ) {
        let mut pats = vec![0u8; self.groups];
        for blk in blocks {
            for i in 0..BLOCK {
                let row = blk * BLOCK + i;
                if row >= self.rows {
                    break;
                }
                for (g, p) in pats.iter_mut().enumerate() {
                    *p = self.patterns[(blk * self.padded() + g) * BLOCK + i];
                }
                let (f, g) = (self.factor(row), self.offset(row));
                for ((q, &cut), h) in queries.iter().zip(cuts).zip(hits.iter_mut()) {
                    let e = q.estimate(&pats, f, g);
                    if e >= cut {
                        h.push((row as u32, e));
                    }
                }
            }
        }
    }

    /// # Safety
    /// AVX-512F, BW and VBMI must be available; `blocks.end <= self.blocks()` and every
    /// query has `self.groups` tables.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,fma")]
    unsafe fn scan_vbmi(
        &self,
        queries: &[&LutQuery],
        cuts: &[f32],
        blocks: std::ops::Range<usize>,
        hits: &mut [Vec<(u32, f32)>],
    ) {
        use std::arch::x86_64::*;
        let padded = self.padded();
        // u16 lanes hold at most 257 table bytes (<= 255 each) without overflowing: flush
        // into u32 totals every FLUSH groups.
        const FLUSH: usize = 32 * GROUP_CHUNK;
        let pat = self.patterns.as_ptr();
        let (first, end) = (blocks.start, blocks.end);
        let mut tile = first;
        while tile < end {
            let nb = TILE.min(end - tile);
            for ((q, &cut), h) in queries.iter().zip(cuts).zip(hits.iter_mut()) {
                let lut = q.luts.as_ptr();
                // Per block: sums of even codes (0, 2, .., 62) and odd ones, 16 per register.
                let mut total = [[_mm512_setzero_si512(); 4]; TILE];
                let mut lo = [_mm512_setzero_si512(); TILE];
                let mut hi = [_mm512_setzero_si512(); TILE];
                let mut g0 = 0;
                while g0 < padded {
                    let mut t = [_mm512_setzero_si512(); GROUP_CHUNK];
                    for (k, t) in t.iter_mut().enumerate() {
                        // SAFETY: the query's tables are padded to `padded` groups.
                        *t = unsafe { _mm512_loadu_si512(lut.add((g0 + k) * 64).cast()) };
                    }
                    for b in 0..nb {
                        let base = pat.wrapping_add(((tile + b) * padded + g0) * BLOCK);
                        for (k, t) in t.iter().enumerate() {
                            // SAFETY: group g0 + k < padded of block tile + b < blocks.
                            let idx = unsafe { _mm512_loadu_si512(base.add(k * BLOCK).cast()) };
                            let v = _mm512_permutexvar_epi8(idx, *t);
                            lo[b] = _mm512_add_epi16(lo[b], v);
                            hi[b] = _mm512_add_epi16(hi[b], _mm512_srli_epi16::<8>(v));
                        }
                    }
                    g0 += GROUP_CHUNK;
                    if g0 % FLUSH == 0 || g0 >= padded {
                        for b in 0..nb {
                            // lo = even + 256 * odd (mod 2^16), so even = lo - (hi << 8).
                            let even = _mm512_sub_epi16(lo[b], _mm512_slli_epi16::<8>(hi[b]));
                            let parts = [
                                _mm512_castsi512_si256(even),
                                _mm512_extracti64x4_epi64::<1>(even),
                                _mm512_castsi512_si256(hi[b]),
                                _mm512_extracti64x4_epi64::<1>(hi[b]),
                            ];
                            for (t, p) in total[b].iter_mut().zip(parts) {
                                *t = _mm512_add_epi32(*t, _mm512_cvtepu16_epi32(p));
                            }
                            lo[b] = _mm512_setzero_si512();
                            hi[b] = _mm512_setzero_si512();
                        }
                    }
                }
                let (a, bq, qc) = (
                    _mm512_set1_ps(q.a),
                    _mm512_set1_ps(q.b),
                    _mm512_set1_ps(q.qc),
                );
                let cutv = _mm512_set1_ps(cut);
                for (b, total) in total.iter().enumerate().take(nb) {
                    let blk = tile + b;
                    let fp = self.factors.as_ptr().wrapping_add(blk * BLOCK);
                    let op = self.offsets.as_ptr().wrapping_add(blk * BLOCK);
                    for (k, t) in total.iter().enumerate() {
                        // SAFETY: 16 scales and offsets at 16k of the block's 64.
                        let (f, g) = unsafe {
                            (
                                _mm512_loadu_ps(fp.add(16 * k)),
                                _mm512_loadu_ps(op.add(16 * k)),
                            )
                        };
                        let s = _mm512_fmadd_ps(a, _mm512_cvtepi32_ps(*t), bq);
                        let e = _mm512_fmadd_ps(f, s, _mm512_add_ps(qc, g));
                        let mut m = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(e, cutv);
                        if m != 0 {
                            let mut es = [0f32; 16];
                            // SAFETY: es holds 16 f32.
                            unsafe { _mm512_storeu_ps(es.as_mut_ptr(), e) };
                            while m != 0 {
                                let l = m.trailing_zeros() as usize;
                                m &= m - 1;
                                // Lane l of register k: code 2 * (16 * (k % 2) + l) + k / 2.
                                let i = 2 * (16 * (k % 2) + l) + k / 2;
                                let row = blk * BLOCK + i;
                                if row < self.rows {
                                    h.push((row as u32, es[l]));
                                }
                            }
                        }
                    }
                }
            }
            tile += nb;
        }
    }
}

/// Whether the AVX-512 VBMI path may run (the dispatch layer's answer).
#[cfg(target_arch = "x86_64")]
fn has_vbmi() -> bool {
    crate::simd::has_vbmi()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn vector_scan_equals_scalar_twin(nbits in prop::sample::select(vec![6usize, 7, 64, 384, 512, 1600]), rows in 1usize..200, nq in 1usize..4, seed in any::<u64>()) {
            let mut next = rng(seed);
            let width = nbits.div_ceil(8);
            let groups = nbits.div_ceil(GROUP_BITS);
            let mut patterns = vec![0u8; rows * groups];
            for r in 0..rows {
                let code: Vec<u8> = (0..width).map(|_| next() as u8).collect();
                group_patterns(&code, nbits, &mut patterns[r * groups..(r + 1) * groups]);
            }
            let factors: Vec<f32> = (0..rows).map(|_| (next() % 1000) as f32 / 500.0).collect();
            let offsets: Vec<f32> = (0..rows).map(|_| (next() % 1000) as f32 / 1000.0 - 0.5).collect();
            let blocks = RabitqBlocks::new(&patterns, groups, &factors, &offsets);
            let qs: Vec<LutQuery> = (0..nq)
                .map(|_| {
                    let q: Vec<f32> = (0..nbits).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
                    LutQuery::new(&q, 0.25)
                })
                .collect();
            let refs: Vec<&LutQuery> = qs.iter().collect();
            // A cut in the middle of the scores keeps some codes and drops others.
            let cuts: Vec<f32> = qs.iter().map(|q| q.estimate(&blocks.patterns(0), blocks.factor(0), blocks.offset(0))).collect();
            let mut fast = vec![Vec::new(); nq];
            let mut twin = vec![Vec::new(); nq];
            blocks.scan_within(&refs, &cuts, 0..blocks.blocks(), &mut fast);
            blocks.scan_scalar(&refs, &cuts, 0..blocks.blocks(), &mut twin);
            for q in 0..nq {
                let mut f = fast[q].clone();
                f.sort_by_key(|h| h.0);
                prop_assert!(f.iter().any(|h| h.0 == 0) || twin[q].iter().any(|h| h.0 == 0), "row 0 is at the cut");
                // The vector path fuses multiply-adds: rows within rounding of the cut may
                // fall on either side; every other row must agree, with the same estimate.
                let near = |e: f32| (e - cuts[q]).abs() <= 1e-4 * (1.0 + cuts[q].abs());
                let (mut i, mut j) = (0, 0);
                while i < f.len() || j < twin[q].len() {
                    match (f.get(i), twin[q].get(j)) {
                        (Some(x), Some(y)) if x.0 == y.0 => {
                            prop_assert!((x.1 - y.1).abs() <= 1e-4 * (1.0 + y.1.abs()), "{} vs {}", x.1, y.1);
                            i += 1;
                            j += 1;
                        }
                        (Some(x), y) if y.is_none_or(|y| x.0 < y.0) => {
                            prop_assert!(near(x.1), "row {} only in the vector scan", x.0);
                            i += 1;
                        }
                        (_, Some(y)) => {
                            prop_assert!(near(y.1), "row {} only in the scalar scan", y.0);
                            j += 1;
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }

        #[test]
        fn patterns_equal_their_twin(nbits in 1usize..700, seed in any::<u64>()) {
            let mut next = rng(seed);
            let code: Vec<u8> = (0..nbits.div_ceil(8)).map(|_| next() as u8).collect();
            let groups = nbits.div_ceil(GROUP_BITS);
            let (mut a, mut b) = (vec![0u8; groups], vec![0u8; groups]);
            group_patterns(&code, nbits, &mut a);
            group_patterns_scalar(&code, nbits, &mut b);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn table_sum_is_within_half_a_step_per_group(nbits in 1usize..600, seed in any::<u64>()) {
            let mut next = rng(seed);
            let q: Vec<f32> = (0..nbits).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            let code: Vec<u8> = (0..nbits.div_ceil(8)).map(|_| next() as u8).collect();
            let lq = LutQuery::new(&q, 0.0);
            let mut pats = vec![0u8; lq.groups()];
            group_patterns(&code, nbits, &mut pats);
            let exact: f64 = (0..nbits).filter(|&i| (code[i / 8] >> (7 - i % 8)) & 1 == 1).map(|i| q[i] as f64).sum();
            let sum: f64 = q.iter().map(|&x| x as f64).sum();
            // a * S + b approximates 2 * exact - sum.
            let got = lq.a as f64 * lq.table_sum(&pats) as f64 + lq.b as f64;
            let bound = lq.groups() as f64 * lq.a as f64 / 2.0 + 1e-4 * (1.0 + sum.abs());
            prop_assert!((got - (2.0 * exact - sum)).abs() <= bound, "{got} vs {}", 2.0 * exact - sum);
        }
    }
}
