use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::FixedSizeBinaryArray;
use proptest::prelude::*;

use super::*;
use crate::codec::rabitq::Rotation;
use crate::codec::tests::{calibrate, DIMS};
use crate::testutil::vectors_array;
use crate::Vectors;

fn codec(a: &dyn Array, bits: u8, rotation: Rotation) -> RabitqExCodec {
    RabitqExCodec::new(RabitqCodec::new(&calibrate(a), rotation), bits).unwrap()
}

fn binary(a: &arrow_array::ArrayRef) -> FixedSizeBinaryArray {
    a.as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .unwrap()
        .clone()
}

#[test]
fn bits_outside_2_to_8_are_refused() {
    let a = vectors_array(4, 16, 1, 0.0);
    let base = RabitqCodec::new(&calibrate(&a), Rotation::default());
    for bits in [0, 1, 9] {
        let err = RabitqExCodec::new(base.clone(), bits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 to 8"), "{err}");
    }
}

#[test]
fn the_sign_column_is_the_one_bit_code_and_levels_fold_by_sign() {
    let a = vectors_array(20, 384, 3, 0.1);
    let c = codec(&a, 4, Rotation::default());
    let (signs, extra) = c.encode(&a).unwrap();
    let (signs, extra) = (binary(&signs.array), binary(&extra.array));
    assert_eq!(extra.value_length() as usize, 3 * 64 + 8);
    // The `_rq` column is byte for byte what the 1-bit codec writes (existing files stay valid).
    let one = binary(&c.base().encode(&a).unwrap().array);
    assert_eq!(signs, one);
    let v = Vectors::try_new(&a).unwrap();
    let mut centered = vec![0f32; 384];
    let mut r = vec![0f32; 512];
    let mut levels = vec![0u8; 512];
    let mut y = vec![0f32; 512];
    for row in 0..v.len() {
        if signs.is_null(row) {
            continue;
        }
        c.base().residual(v.row(row), &mut centered, &mut r);
        c.levels(&r, &mut levels);
        c.code_vector(signs.value(row), extra.value(row), &mut y);
        for i in 0..512 {
            // y_i = sign(r_i) (k_i + 1/2), from the sign plane and the folded levels.
            let want = if r[i] > 0.0 { 1.0 } else { -1.0 } * (levels[i] as f32 + 0.5);
            assert_eq!(y[i], want, "row {row} dim {i}");
        }
        let (scale, ip) = c.factors(extra.value(row));
        let yr: f64 = y.iter().zip(&r).map(|(a, b)| *a as f64 * *b as f64).sum();
        let yy: f64 = y.iter().map(|a| *a as f64 * *a as f64).sum();
        let rr: f64 = r.iter().map(|a| *a as f64 * *a as f64).sum();
        assert!((scale as f64 - rr / yr).abs() <= 1e-5 * scale as f64);
        assert!((ip as f64 - yr / (yy * rr).sqrt()).abs() <= 1e-5);
    }
}

#[test]
fn the_rescale_search_finds_the_best_grid_point() {
    // Against a fine sweep of the rescale factor over the whole range (small dimension, so
    // the sweep visits every configuration the search window holds).
    let a = vectors_array(30, 16, 9, 0.0);
    for bits in [2u8, 3, 5, 8] {
        let c = codec(&a, bits, Rotation::default());
        let max_code = (1u32 << (bits - 1)) - 1;
        let v = Vectors::try_new(&a).unwrap();
        let (mut centered, mut r, mut levels) = (vec![0f32; 16], vec![0f32; 16], vec![0u8; 16]);
        for row in 0..v.len() {
            c.base().residual(v.row(row), &mut centered, &mut r);
            c.levels(&r, &mut levels);
            let cos = |k: &dyn Fn(usize) -> u32| {
                let (mut num, mut den, mut nn) = (0f64, 0f64, 0f64);
                for (i, &x) in r.iter().enumerate() {
                    let m = k(i) as f64 + 0.5;
                    num += m * x.abs() as f64;
                    den += m * m;
                    nn += x as f64 * x as f64;
                }
                num / (den * nn).sqrt()
            };
            let got = cos(&|i| levels[i] as u32);
            let max_o = r.iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
            let norm = r.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let t_end = (max_code as f64 + 10.0) / (max_o / norm);
            let t_start = t_end * TIGHT_START[bits as usize - 1];
            for s in 0..=4000 {
                let t = t_start + (t_end - t_start) * s as f64 / 4000.0;
                let other = cos(&|i| ((t * r[i].abs() as f64 / norm) as u32).min(max_code));
                assert!(
                    got >= other - 1e-9,
                    "bits {bits} row {row}: {got} < {other} at t {t}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn estimator_equals_dot_with_decoded(dim in prop::sample::select(DIMS.to_vec()), bits in 2u8..=8, rotate in any::<bool>(), seed in any::<u64>()) {
        let a = vectors_array(10, dim, seed, 0.3);
        let rotation = if rotate { Rotation::default() } else { Rotation::None };
        let c = codec(&a, bits, rotation);
        let (signs, extra) = c.encode(&a).unwrap();
        let (signs, extra) = (binary(&signs.array), binary(&extra.array));
        prop_assert_eq!(extra.value_length() as usize, c.width());
        let dec = c.decode(&signs, &extra).unwrap();
        prop_assert_eq!(dec.null_count(), signs.null_count());
        let dec = dec.values().as_primitive::<Float32Type>().values().to_vec();
        let q = Vectors::try_new(&vectors_array(1, dim, seed ^ 5, 0.0)).unwrap().values().to_vec();
        let p = c.prepare_query(&q);
        for r in 0..signs.len() {
            if signs.is_null(r) {
                continue;
            }
            let est = p.score(&c, signs.value(r), extra.value(r)) as f64;
            let row = &dec[r * dim..(r + 1) * dim];
            let dot: f64 = q.iter().zip(row).map(|(a, b)| *a as f64 * *b as f64).sum();
            let scale: f64 = q.iter().zip(row).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum::<f64>() + 1e-3;
            prop_assert!((est - dot).abs() <= 2e-4 * scale, "bits {bits}: estimate {est} vs decoded dot {dot}");
        }
    }
}

#[test]
fn more_bits_shrink_the_error_and_the_bound_holds() {
    let a = vectors_array(400, 384, 11, 0.0);
    let v = Vectors::try_new(&a).unwrap();
    let q = v.row(0).to_vec();
    let mut last = f64::INFINITY;
    for bits in [2u8, 3, 4, 8] {
        let c = codec(&a, bits, Rotation::default());
        let (signs, extra) = c.encode(&a).unwrap();
        let (signs, extra) = (binary(&signs.array), binary(&extra.array));
        let p = c.prepare_query(&q);
        let (mut err, mut inside, mut inside3, mut ip) = (0f64, 0, 0, 0f64);
        for r in 0..v.len() {
            let exact: f64 = q
                .iter()
                .zip(v.row(r))
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let (est, h) = p.score_bounded(&c, signs.value(r), extra.value(r), DEFAULT_EPS0);
            let d = (est as f64 - exact).abs();
            err += d;
            inside += (d <= h as f64) as usize;
            inside3 += (d <= h as f64 * 3.0 / 1.9) as usize;
            ip += c.factors(extra.value(r)).1 as f64;
        }
        let (err, ip) = (err / v.len() as f64, ip / v.len() as f64);
        // Each bit at least ~halves the mean error (the paper: error ~ 2^-b).
        assert!(
            err < last * 0.7,
            "bits {bits}: mean error {err} vs {last} one step narrower"
        );
        last = err;
        assert!(
            ip > [0.0, 0.0, 0.93, 0.96, 0.98, 0.0, 0.0, 0.0, 0.998][bits as usize],
            "bits {bits}: mean ip {ip}"
        );
        // The error is close to normal with the bound at 1.9 standard deviations.
        assert!(
            inside >= 360,
            "bits {bits}: {inside} of 400 within the 1.9 bound"
        );
        assert!(inside3 >= 395, "bits {bits}: {inside3} of 400 within 3");
    }
}

#[test]
fn non_finite_values_name_the_row_and_nulls_stay_null() {
    let a = vectors_array(6, 16, 1, 0.4);
    let c = codec(&a, 3, Rotation::default());
    let mut vals = Vectors::try_new(&a).unwrap().values().to_vec();
    let (signs, extra) = c.encode(&a).unwrap();
    assert_eq!(signs.array.null_count(), a.null_count());
    assert_eq!(extra.array.null_count(), a.null_count());
    let bad_row = (0..6).find(|&r| a.is_valid(r)).unwrap();
    vals[bad_row * 16 + 2] = f32::INFINITY;
    let bad = crate::codec::tests::with_values(&a, vals);
    let err = c.encode(&bad).unwrap_err().to_string();
    assert!(err.contains(&format!("row {bad_row}")), "{err}");
}
