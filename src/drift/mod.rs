//! Drift: does a stored calibration still fit new float vectors?
//!
//! A [`DriftAccumulator`] streams new vectors against a reference [`Calibration`] and keeps,
//! per dimension, the values below `lo` and above `hi`, the sum and sum of squares of the
//! values' distance to the calibrated mean (in `f64`, so sums merge exactly up to rounding),
//! and the new minimum and maximum. Accumulators of disjoint rows [`merge`](DriftAccumulator::merge).
//! [`DriftReport::new`] turns one into the report: the clip rate (values outside `[lo, hi]`,
//! counted like the codecs count them: degenerate dimensions never clip), and per dimension
//! the clip rate, the mean shift and the spread change in units of the calibrated range
//! `hi - lo`, the dimensions that moved most, and whether re-calibration is advised (with
//! the reasons). [`drift`] does all of it over Parquet files, streaming row groups in
//! parallel with bounded memory; [`read_reference`] finds the calibration stored in an
//! embquant file (field metadata first, then the footer).
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{FixedSizeListArray, Float32Array};
//! use arrow_schema::{DataType, Field};
//! use embquant::drift::{DriftAccumulator, DriftOptions, DriftReport};
//! use embquant::{Calibration, RangeMethod, Stats, StatsOptions};
//!
//! let field = Arc::new(Field::new_list_field(DataType::Float32, false));
//! let old = FixedSizeListArray::new(field.clone(), 2, Arc::new(Float32Array::from(vec![0.0, 0.0, 1.0, 1.0])), None);
//! let cal = Calibration::from_stats(&Stats::compute(&old, &StatsOptions::default())?, RangeMethod::MinMax)?;
//! // Dimension 1 moved up by half its range: half of its values now fall above `hi`.
//! let new = FixedSizeListArray::new(field, 2, Arc::new(Float32Array::from(vec![0.0, 0.5, 1.0, 1.5])), None);
//! let mut acc = DriftAccumulator::new(&cal);
//! acc.update(&new)?;
//! let report = DriftReport::new(&cal, &acc, &DriftOptions::default());
//! assert_eq!(report.clip_rate, 0.25);
//! assert_eq!(report.dims[1].mean_shift, Some(0.5));
//! assert_eq!(report.top[0].dim, 1);
//! assert!(report.recalibrate);
//! # Ok::<(), embquant::Error>(())
//! ```
//!
//! Files: `accumulator` (the streamed sums), `report` (the report and the advice),
//! `reference` (where the calibration comes from); this one runs it over Parquet files.

pub(crate) mod accumulator;
pub(crate) mod reference;
pub(crate) mod report;

pub use accumulator::DriftAccumulator;
pub use reference::{read_reference, Reference};
pub use report::{expected_clip_rate, ClipCheck, DimDrift, DriftOptions, DriftReport};

use std::sync::Arc;

use arrow_array::Array;

use crate::calibration::Calibration;
use crate::codec::matryoshka::truncate;
use crate::error::{Error, Result};
use crate::job::segments::{fold_segments, segment_reader};
use crate::job::{InputFile, Progress};

/// Compares the vectors in `files` with `reference`: segments (row groups, or halves of
/// large ones) are read `opts.read.concurrency` at a time, each accumulated on its own
/// thread (and in parallel blocks within a batch), and merged in file and row order.
/// Errors name the file, the column and the row.
pub async fn drift(
    files: &[InputFile],
    reference: &Calibration,
    opts: &DriftOptions,
    progress: Arc<dyn Progress>,
) -> Result<DriftReport> {
    opts.validate()?;
    if files.is_empty() {
        return Err(Error::empty_input("read", "no input files"));
    }
    let total: u64 = files.iter().map(|f| f.rows).sum();
    let empty = DriftAccumulator::new(reference);
    progress.begin("drift", total);
    let (column, matryoshka, batch_size) =
        (opts.column.clone(), opts.matryoshka, opts.read.batch_size);
    let (p, init) = (progress.clone(), empty.clone());
    let mut acc = empty;
    fold_segments(
        files,
        &opts.column,
        &opts.read,
        move |file, seg| {
            let mut acc = init.clone();
            for batch in segment_reader(file, seg, &column, true, None, batch_size)? {
                let (start, batch) = batch?;
                p.advance(batch.num_rows() as u64);
                let col = batch.column(0);
                let truncated;
                let v: &dyn Array = match &matryoshka {
                    Some(m) => {
                        truncated = truncate(col.as_ref(), m).map_err(|e| e.offset_rows(start))?;
                        &truncated
                    }
                    None => col.as_ref(),
                };
                acc.update(v).map_err(|e| match e {
                    Error::DimensionMismatch {
                        expected, found, ..
                    } => Error::DimensionMismatch {
                        context: format!(
                            "the vectors from row {start} (against the reference calibration)"
                        ),
                        expected,
                        found,
                    },
                    e => e.offset_rows(start),
                })?;
            }
            Ok(acc)
        },
        &mut |part| acc.merge(&part),
    )
    .await?;
    progress.end();
    if acc.rows == 0 {
        return Err(Error::empty_input(
            "compare",
            format!(
                "no non-null vectors in column {:?} of the inputs: nothing to compare",
                opts.column
            ),
        ));
    }
    Ok(DriftReport::new(reference, &acc, opts))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{FixedSizeListArray, Float32Array};
    use arrow_buffer::NullBuffer;
    use arrow_schema::{DataType, Field};

    use std::fs::File;
    use std::path::Path;

    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use crate::calibration::RangeMethod;
    use crate::job::ReadOptions;
    use crate::metadata::METADATA_KEY;
    use crate::stats::{Stats, StatsOptions};
    use crate::testutil::{scale_array, vectors_array};
    use crate::vectors::Vectors;

    fn fsl(values: Vec<f32>, dim: usize, nulls: Option<NullBuffer>) -> FixedSizeListArray {
        FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            dim as i32,
            Arc::new(Float32Array::from(values)),
            nulls,
        )
    }

    fn calibrate(a: &dyn Array, method: RangeMethod) -> Calibration {
        Calibration::from_stats(
            &Stats::compute(a, &StatsOptions::default()).unwrap(),
            method,
        )
        .unwrap()
    }

    fn report(cal: &Calibration, a: &dyn Array, opts: &DriftOptions) -> DriftReport {
        let mut acc = DriftAccumulator::new(cal);
        acc.update(a).unwrap();
        DriftReport::new(cal, &acc, opts)
    }

    /// `a` with `add` added to the dimensions in `dims`.
    fn shifted(
        a: &FixedSizeListArray,
        dims: std::ops::Range<usize>,
        add: f32,
    ) -> FixedSizeListArray {
        let v = Vectors::try_new(a).unwrap();
        let dim = v.dim();
        let values = v
            .values()
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if dims.contains(&(i % dim)) {
                    x + add
                } else {
                    x
                }
            })
            .collect();
        fsl(values, dim, a.logical_nulls())
    }

    #[test]
    fn the_calibration_data_itself_does_not_drift() {
        let a = vectors_array(5000, 16, 3, 0.1);
        let cal = calibrate(&a, RangeMethod::MinMax);
        let r = report(&cal, &a, &DriftOptions::default());
        assert_eq!(r.rows, cal.rows());
        assert!(r.null_rows > 0);
        assert_eq!(r.clipped, 0);
        assert_eq!(r.clip_rate, 0.0);
        assert!(!r.recalibrate, "{:?}", r.reasons);
        for d in &r.dims {
            assert!(d.mean_shift.unwrap().abs() < 1e-5, "{d:?}");
            assert!((d.std_ratio.unwrap() - 1.0).abs() < 1e-4, "{d:?}");
            assert_eq!((d.min, d.max), (cal.min()[d.dim], cal.max()[d.dim]));
        }
    }

    #[test]
    fn a_known_shift_is_measured_in_range_units() {
        // Dimension 0 uniform-ish over [0, 1] (range 1); dimension 1 over [-2, 2] (range 4).
        let rows = 1000;
        let values: Vec<f32> = (0..rows)
            .flat_map(|r| {
                let u = r as f32 / (rows - 1) as f32;
                [u, 4.0 * u - 2.0]
            })
            .collect();
        let a = fsl(values, 2, None);
        let cal = calibrate(&a, RangeMethod::MinMax);
        // Move dimension 1 up by 1.0 = a quarter of its range: the top quarter clips.
        let b = shifted(&a, 1..2, 1.0);
        let r = report(&cal, &b, &DriftOptions::default());
        assert!(r.dims[0].mean_shift.unwrap().abs() < 1e-6);
        assert!(
            (r.dims[1].mean_shift.unwrap() - 0.25).abs() < 1e-5,
            "{:?}",
            r.dims[1]
        );
        assert!(r.dims[1].std_shift.unwrap().abs() < 1e-5);
        assert!((r.dims[1].std_ratio.unwrap() - 1.0).abs() < 1e-5);
        // Values u = r / 999 with 4u - 1 > 2, i.e. u > 0.75: rows 750..1000.
        assert_eq!(r.dims[1].above, 250);
        assert_eq!(r.dims[1].below, 0);
        assert_eq!(r.dims[1].clip_rate, 0.25);
        assert_eq!(r.clip_rate, 250.0 / 2000.0);
        assert_eq!(r.top[0].dim, 1);
        assert!(r.recalibrate);
        assert!(
            r.reasons.iter().any(|s| s.contains("moved their mean")),
            "{:?}",
            r.reasons
        );

        // Scaling by 1.5 around the mean: the std grows by half the calibrated std.
        let c = scale_array(&a, 1.5);
        let r = report(&cal, &c, &DriftOptions::default());
        for d in &r.dims {
            assert!((d.std_ratio.unwrap() - 1.5).abs() < 1e-4, "{d:?}");
            let width = (cal.hi()[d.dim] - cal.lo()[d.dim]) as f64;
            let want = 0.5 * cal.std()[d.dim] as f64 / width;
            assert!((d.std_shift.unwrap() - want).abs() < 1e-4, "{d:?}");
        }
        assert!(
            r.reasons
                .iter()
                .any(|s| s.contains("spread by more than 1.25x")),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn top_dimensions_are_the_moved_ones_and_the_check_fails_above_the_limit() {
        let a = vectors_array(4000, 40, 9, 0.0);
        let cal = calibrate(&a, RangeMethod::Quantile { p: 0.999 });
        let b = shifted(&a, 30..35, 0.1);
        let opts = DriftOptions {
            top: 5,
            max_clip_rate: Some(0.01),
            ..DriftOptions::default()
        };
        let same = report(&cal, &a, &opts);
        assert!(!same.recalibrate, "{:?}", same.reasons);
        assert!(same.check.as_ref().unwrap().passed);
        // quantile:0.999 clips about 0.2% of its own data by design.
        assert!((same.expected_clip_rate - 0.002).abs() < 1e-12);
        assert!(
            same.clip_rate > 0.0 && same.clip_rate < 0.004,
            "{}",
            same.clip_rate
        );

        let r = report(&cal, &b, &opts);
        let mut top: Vec<usize> = r.top.iter().map(|d| d.dim).collect();
        top.sort();
        assert_eq!(top, vec![30, 31, 32, 33, 34]);
        assert!(r.recalibrate);
        assert!(r.clip_rate > 0.01, "{}", r.clip_rate);
        assert!(!r.check.as_ref().unwrap().passed);
        for d in 30..35 {
            let width = (cal.hi()[d] - cal.lo()[d]) as f64;
            assert!((r.dims[d].mean_shift.unwrap() - 0.1 / width).abs() < 1e-4);
        }
    }

    #[test]
    fn degenerate_dimensions_never_clip_and_have_no_shift() {
        // Dimension 1 is dead (~1e-33) at calibration.
        let rows = 500;
        let values: Vec<f32> = (0..rows)
            .flat_map(|r| [r as f32 / rows as f32, 1e-33 * (r % 3) as f32])
            .collect();
        let a = fsl(values, 2, None);
        let cal = calibrate(&a, RangeMethod::MinMax);
        assert_eq!(cal.degenerate_dims(), vec![1]);
        // New data: dimension 1 still tiny but outside its 1e-33-wide range.
        let b = shifted(&a, 1..2, 1e-30);
        let r = report(&cal, &b, &DriftOptions::default());
        assert_eq!(r.dims[1].above, rows as u64);
        assert_eq!(r.dims[1].clip_rate, 0.0);
        assert_eq!(r.clipped, 0);
        assert_eq!(r.dims[1].mean_shift, None);
        assert_eq!(r.dims[1].shift, 0.0);
        assert!(r.top.iter().all(|d| d.dim != 1));
        assert_eq!(r.degenerate_dims, vec![1]);
        assert!(!r.recalibrate, "{:?}", r.reasons);
        // A dead dimension that comes alive is advised about.
        let values: Vec<f32> = (0..rows)
            .flat_map(|r| [r as f32 / rows as f32, if r % 2 == 0 { 0.3 } else { -0.3 }])
            .collect();
        let r = report(&cal, &fsl(values, 2, None), &DriftOptions::default());
        assert_eq!(r.clipped, 0);
        assert!(
            r.reasons.iter().any(|s| s.contains("degenerate")),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn batches_and_merges_equal_one_pass() {
        let a = vectors_array(5000, 9, 5, 0.05);
        let cal = calibrate(&a.slice(0, 1000), RangeMethod::MinMax);
        let mut one = DriftAccumulator::new(&cal);
        one.update(&a).unwrap();
        let mut streamed = DriftAccumulator::new(&cal);
        let mut merged = DriftAccumulator::new(&cal);
        for (s, n) in [(0, 1), (1, 2047), (2048, 2049), (4097, 903)] {
            streamed.update(&a.slice(s, n)).unwrap();
            let mut part = DriftAccumulator::new(&cal);
            part.update(&a.slice(s, n)).unwrap();
            merged.merge(&part).unwrap();
        }
        let opts = DriftOptions::default();
        let (r1, r2, r3) = (
            DriftReport::new(&cal, &one, &opts),
            DriftReport::new(&cal, &streamed, &opts),
            DriftReport::new(&cal, &merged, &opts),
        );
        for r in [&r2, &r3] {
            assert_eq!(
                (r.rows, r.null_rows, r.clipped),
                (r1.rows, r1.null_rows, r1.clipped)
            );
            assert!(r1.clipped > 0);
            for (x, y) in r.dims.iter().zip(&r1.dims) {
                assert_eq!(
                    (x.below, x.above, x.min, x.max),
                    (y.below, y.above, y.min, y.max)
                );
                assert!((x.mean - y.mean).abs() < 1e-9 && (x.std - y.std).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn bad_values_and_dimensions_are_errors_naming_the_row() {
        let a = vectors_array(10, 4, 1, 0.0);
        let cal = calibrate(&a, RangeMethod::MinMax);
        let mut values = Vectors::try_new(&a).unwrap().values().to_vec();
        values[7 * 4 + 2] = f32::NAN;
        let mut acc = DriftAccumulator::new(&cal);
        match acc.update(&fsl(values, 4, None)) {
            Err(Error::NonFinite { row: 7, dim: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        let b = vectors_array(10, 5, 1, 0.0);
        assert!(matches!(
            DriftAccumulator::new(&cal).update(&b),
            Err(Error::DimensionMismatch {
                expected: 4,
                found: 5,
                ..
            })
        ));
    }

    /// Writes `a` as the column `embedding` of a Parquet file, in row groups of 700 rows;
    /// `footer` goes to the key-value metadata.
    fn write_parquet(path: &Path, a: &FixedSizeListArray, footer: Option<(&str, String)>) {
        use parquet::file::metadata::KeyValue;
        use parquet::file::properties::WriterProperties;
        let batch =
            arrow_array::RecordBatch::try_from_iter([("embedding", Arc::new(a.clone()) as _)])
                .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(700))
            .set_key_value_metadata(footer.map(|(k, v)| vec![KeyValue::new(k.to_string(), v)]))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            File::create(path).unwrap(),
            batch.schema(),
            Some(props),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn streams_parquet_files_against_the_calibration_of_a_quantized_file_or_its_footer() {
        use crate::job::{self, CalibrateOptions, JobOptions, NoProgress};
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            dir.path().join("old.parquet"),
            dir.path().join("new.parquet"),
        );
        let a = vectors_array(3000, 12, 4, 0.02);
        let b = shifted(&vectors_array(2500, 12, 4, 0.02), 2..4, 0.05);
        write_parquet(&old, &a, None);
        write_parquet(&new, &b, None);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let quantized = dir.path().join("q.parquet");
        let files = job::discover(&[old.display().to_string()]).unwrap();
        let cal = rt
            .block_on(job::calibrate(
                &files,
                &CalibrateOptions::new("embedding"),
                Arc::new(NoProgress),
            ))
            .unwrap();
        let mut jo = JobOptions::new("embedding");
        jo.quantize.schemes = vec![crate::Scheme::Int8];
        rt.block_on(job::quantize(
            &files,
            &quantized,
            cal.clone(),
            &jo,
            &NoProgress,
        ))
        .unwrap();

        // From the field metadata.
        let r = read_reference(&quantized, Some("embedding")).unwrap();
        assert_eq!(r.calibration, cal);
        assert_eq!(r.origin, "field metadata of \"embedding_int8\"");
        assert_eq!(r.source_column.as_deref(), Some("embedding"));
        // From the footer alone (a file whose schema lost the field metadata).
        let footer = {
            let f = File::open(&quantized).unwrap();
            let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
            let kv = b.metadata().file_metadata().key_value_metadata().unwrap();
            kv.iter()
                .find(|k| k.key == METADATA_KEY)
                .unwrap()
                .value
                .clone()
                .unwrap()
        };
        let footer_only = dir.path().join("footer.parquet");
        write_parquet(&footer_only, &a, Some((METADATA_KEY, footer)));
        let r = read_reference(&footer_only, Some("embedding")).unwrap();
        assert_eq!(
            (r.calibration, r.origin.as_str()),
            (cal.clone(), "file footer")
        );
        // A calibration JSON.
        let json = dir.path().join("cal.json");
        std::fs::write(&json, cal.to_json().unwrap()).unwrap();
        let r = read_reference(&json, Some("embedding")).unwrap();
        assert_eq!(
            (r.calibration, r.origin.as_str()),
            (cal.clone(), "calibration JSON")
        );
        // Neither: an error naming the file and what is missing.
        let e = read_reference(&old, Some("embedding"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("old.parquet") && e.contains("embquant.calibration"),
            "{e}"
        );
        let e = read_reference(&quantized, Some("other"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("made from column(s) [\"embedding\"]"), "{e}");

        // Streaming two files, several row groups, two at a time, in small batches, gives
        // the report of one in-memory pass over all their rows.
        let inputs =
            job::discover(&[old.display().to_string(), new.display().to_string()]).unwrap();
        let opts = DriftOptions {
            top: 3,
            read: ReadOptions {
                batch_size: 256,
                concurrency: 2,
                ..ReadOptions::default()
            },
            ..DriftOptions::new("embedding")
        };
        let streamed = rt
            .block_on(drift(&inputs, &cal, &opts, Arc::new(NoProgress)))
            .unwrap();
        let mut acc = DriftAccumulator::new(&cal);
        acc.update(&a).unwrap();
        acc.update(&b).unwrap();
        let once = DriftReport::new(&cal, &acc, &opts);
        assert_eq!(streamed.rows, once.rows);
        assert_eq!(streamed.clipped, once.clipped);
        assert_eq!(streamed.reasons, once.reasons);
        let top = |r: &DriftReport| r.top.iter().map(|d| d.dim).collect::<Vec<_>>();
        assert_eq!(top(&streamed), top(&once));
        assert!(top(&streamed)[..2].iter().all(|d| (2..4).contains(d)));
        for (x, y) in streamed.dims.iter().zip(&once.dims) {
            assert!((x.mean - y.mean).abs() < 1e-9 && (x.std - y.std).abs() < 1e-9);
        }

        // A NaN in row 1234 of the new file: the error names the file, column, row, dim.
        let mut values = Vectors::try_new(&b).unwrap().values().to_vec();
        values[1234 * 12 + 5] = f32::INFINITY;
        write_parquet(&new, &fsl(values, 12, b.logical_nulls()), None);
        let inputs = job::discover(&[new.display().to_string()]).unwrap();
        let e = rt
            .block_on(drift(&inputs, &cal, &opts, Arc::new(NoProgress)))
            .unwrap_err()
            .to_string();
        for needle in [
            "new.parquet",
            "column \"embedding\"",
            "row 1234",
            "dimension 5",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in {e}");
        }
    }

    #[test]
    fn expected_clip_rates_by_method() {
        assert_eq!(expected_clip_rate(RangeMethod::MinMax), 0.0);
        assert!((expected_clip_rate(RangeMethod::Quantile { p: 0.99 }) - 0.02).abs() < 1e-12);
        // Two normal tails beyond 3 sigma: 0.27%.
        let m = expected_clip_rate(RangeMethod::MeanStd { k: 3.0 });
        assert!((m - 0.0026998).abs() < 1e-6, "{m}");
    }
}
