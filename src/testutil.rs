//! Test data: deterministic random vector arrays.

use std::sync::Arc;

use arrow_array::{Array, FixedSizeListArray, Float32Array};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field};

use crate::vectors::Vectors;

/// A small xorshift generator (tests only).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal (sum of four uniforms, centered and scaled).
    pub fn normal(&mut self) -> f32 {
        ((0..4).map(|_| self.uniform()).sum::<f32>() - 2.0) * 1.732
    }
}

/// `rows x dim` vectors with per-dimension offsets and spreads (so per-dimension ranges
/// differ), a fraction `null_frac` of null rows (their values are NaN, as garbage). Row 0 is
/// always valid, so every array can be calibrated.
pub fn vectors_array(rows: usize, dim: usize, seed: u64, null_frac: f32) -> FixedSizeListArray {
    let mut rng = Rng::new(seed);
    let offs: Vec<f32> = (0..dim).map(|_| rng.normal() * 0.05).collect();
    let spreads: Vec<f32> = (0..dim).map(|_| 0.02 + rng.uniform() * 0.08).collect();
    let mut values = Vec::with_capacity(rows * dim);
    let mut valid = Vec::with_capacity(rows);
    for r in 0..rows {
        let ok = r == 0 || rng.uniform() >= null_frac;
        valid.push(ok);
        for d in 0..dim {
            values.push(if ok {
                offs[d] + spreads[d] * rng.normal()
            } else {
                f32::NAN
            });
        }
    }
    let nulls = (null_frac > 0.0).then(|| NullBuffer::from(valid));
    FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dim as i32,
        Arc::new(Float32Array::from(values)),
        nulls,
    )
}

/// Multiplies every value by `s`.
pub fn scale_array(a: &FixedSizeListArray, s: f32) -> FixedSizeListArray {
    let v = Vectors::try_new(a).unwrap();
    let values: Vec<f32> = v.values().iter().map(|x| x * s).collect();
    FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        v.dim() as i32,
        Arc::new(Float32Array::from(values)),
        a.logical_nulls(),
    )
}
