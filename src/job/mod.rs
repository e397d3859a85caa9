//! The streaming Parquet job: find inputs, calibrate (all rows or a seeded uniform sample),
//! and quantize into Parquet files that carry their recipe and calibration.
//!
//! Inputs are read in segments: row groups, and halves of row groups of at least
//! `SPLIT_ROWS` rows (the second half's reader skips the first half's records, which costs
//! well under decoding them), so even pyarrow's default single 1M-row row group decodes on
//! both cores. Pages are decoded lazily: memory does not grow with the file. Calibration
//! summarizes segments in parallel and merges their statistics in order; quantization
//! decodes and encodes each segment in its own thread (a later segment may run ahead of the
//! one being written by a bounded budget of encoded batches) and one writer thread writes
//! them in order. Output goes to a
//! temporary path beside the target and is renamed into place only when complete; on error
//! or cancellation (the future dropped) nothing is left at the target.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::calibration::{Calibration, CalibrationMethod};
use crate::codec::matryoshka::{truncate, MatryoshkaOptions};
use crate::error::{Error, Result};
use crate::metadata::ColumnSummary;
use crate::quantizer::{QuantizeOptions, Quantizer};
use crate::stats::{Stats, StatsOptions};

mod describe;
mod inputs;
mod output;
pub(crate) mod segments;
mod spec;

pub use describe::describe;
pub use inputs::{discover, sample_rows, InputFile, NoProgress, Progress};
use output::{PartInfo, PartWriter, TempOutput, ToWriter};
pub use segments::sample_indices;
pub use spec::{parse_schemes, QuantizeSpec};
/// The defaults of [`QuantizeSpec`], each stated once.
pub mod defaults {
    pub use super::spec::{
        DEFAULT_BATCH_ROWS, DEFAULT_BINARY_THRESHOLD, DEFAULT_COLUMN, DEFAULT_CONCURRENCY,
        DEFAULT_INT8_LAYOUT, DEFAULT_METHOD, DEFAULT_RABITQ_ROTATION, DEFAULT_ROW_GROUP_ROWS,
        DEFAULT_SCHEMES, DEFAULT_SEED, DEFAULT_ZSTD_LEVEL, ZSTD_LEVELS,
    };
}
use segments::{segment_reader, segments, Segment, READ_AHEAD_BYTES};

pub use crate::tasks::spawn_rayon;

/// How inputs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Rows per batch.
    pub batch_size: usize,
    /// Segments (row groups, or halves of large ones) read at once, one thread each.
    pub concurrency: usize,
    /// Row groups of at least this many rows are read as two segments by two threads
    /// (default 262,144: one huge row group, pyarrow's default, still decodes on both cores).
    pub split_rows: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            batch_size: spec::DEFAULT_BATCH_ROWS,
            concurrency: spec::DEFAULT_CONCURRENCY,
            split_rows: segments::SPLIT_ROWS,
        }
    }
}

/// How to calibrate.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateOptions {
    /// The vector column.
    pub column: String,
    /// Range method.
    pub method: CalibrationMethod,
    /// Calibrate on a uniform sample of this many rows (all rows when `None`).
    pub sample_rows: Option<u64>,
    /// Seed of the sample.
    pub seed: u64,
    /// Keep quantile sketches (medians); forced on for the quantile method.
    pub sketch: bool,
    /// Matryoshka truncation applied before the statistics.
    pub matryoshka: Option<MatryoshkaOptions>,
    /// Reading.
    pub read: ReadOptions,
}

impl CalibrateOptions {
    /// Defaults: min/max over all rows, with sketches, seed 42.
    pub fn new(column: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            method: CalibrationMethod::default(),
            sample_rows: None,
            seed: spec::DEFAULT_SEED,
            sketch: true,
            matryoshka: None,
            read: ReadOptions::default(),
        }
    }
}

/// Calibrates over `files` (pass 1 of the job). Segments (row groups, or halves of large
/// ones) are read and summarized in parallel, `read.concurrency` at a time, each into its
/// own statistics; these are merged in file and row order, so the result does not depend
/// on timing.
pub async fn calibrate(
    files: &[InputFile],
    opts: &CalibrateOptions,
    progress: Arc<dyn Progress>,
) -> Result<Calibration> {
    if files.is_empty() {
        return Err(Error::empty_input("read", "no input files"));
    }
    let total: u64 = files.iter().map(|f| f.rows).sum();
    // A uniform sample of global row indices; each batch keeps the rows that fall in it.
    let sample = opts
        .sample_rows
        .filter(|&n| n < total)
        .map(|n| Arc::new(sample_indices(total, n, opts.seed)));
    let mut file_starts = Vec::with_capacity(files.len());
    let mut acc = 0;
    for f in files {
        file_starts.push(acc);
        acc += f.rows;
    }
    let sketch = opts.sketch || opts.method.needs_sketch();
    let stats_opts = if sketch {
        StatsOptions::default()
    } else {
        StatsOptions::moments_only()
    };
    let file_starts = Arc::new(file_starts);
    progress.begin("calibrate", total);
    let (column, matryoshka, batch_size) =
        (opts.column.clone(), opts.matryoshka, opts.read.batch_size);
    let p = progress.clone();
    let mut stats: Option<Stats> = None;
    segments::fold_segments(
        files,
        &opts.column,
        &opts.read,
        move |file, seg| {
            segment_stats(
                file,
                seg,
                &column,
                batch_size,
                matryoshka,
                stats_opts,
                file_starts[seg.file],
                sample.as_deref(),
                &*p,
            )
        },
        &mut |part| {
            match (part, &mut stats) {
                (None, _) => {}
                (Some(p), None) => stats = Some(p),
                (Some(p), Some(s)) => s.merge(&p)?,
            }
            Ok(())
        },
    )
    .await?;
    progress.end();
    let stats = stats.ok_or(Error::EmptyCalibration)?;
    let cal = Calibration::from_stats(&stats, opts.method)?;
    tracing::info!(
        rows = cal.rows(),
        dim = cal.dim(),
        fingerprint = cal.fingerprint(),
        "calibrated"
    );
    Ok(cal)
}

/// Statistics of one segment (None when it holds no sampled or valid rows).
#[allow(clippy::too_many_arguments)]
fn segment_stats(
    file: &InputFile,
    seg: Segment,
    column: &str,
    batch_size: usize,
    matryoshka: Option<MatryoshkaOptions>,
    stats_opts: StatsOptions,
    file_start: u64,
    sample: Option<&Vec<u64>>,
    progress: &dyn Progress,
) -> Result<Option<Stats>> {
    let mut stats: Option<Stats> = None;
    for batch in segment_reader(file, seg, column, true, None, batch_size)? {
        let (start, batch) = batch?;
        let n = batch.num_rows() as u64;
        progress.advance(n);
        let mut col = batch.column(0).clone();
        // Rows of the batch kept by the sample, to name rows in errors.
        let mut kept: Option<Vec<u64>> = None;
        if let Some(sample) = sample {
            let lo = file_start + start;
            let (a, b) = (
                sample.partition_point(|&r| r < lo),
                sample.partition_point(|&r| r < lo + n),
            );
            let rows: Vec<u64> = sample[a..b].iter().map(|r| r - lo).collect();
            col = arrow_select::take::take(
                col.as_ref(),
                &arrow_array::UInt64Array::from(rows.clone()),
                None,
            )?;
            kept = Some(rows);
        }
        if col.is_empty() {
            continue;
        }
        let truncated;
        let v: &dyn arrow_array::Array = match matryoshka {
            Some(m) => {
                truncated = truncate(col.as_ref(), &m)?;
                &truncated
            }
            None => col.as_ref(),
        };
        let r = match &mut stats {
            None => Stats::compute(v, &stats_opts).map(|s| stats = Some(s)),
            Some(s) => s.update(v),
        };
        r.map_err(|e| {
            let e = match &kept {
                Some(rows) => e.map_rows(|r| rows.get(r).map_or(r, |&k| k as usize)),
                None => e,
            };
            e.offset_rows(start)
        })?;
    }
    Ok(stats)
}

#[non_exhaustive]
/// How to write.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    /// What to encode.
    pub quantize: QuantizeOptions,
    /// Rows per output row group.
    pub row_group_rows: usize,
    /// Split the output into files of this many rows (the output is then a directory).
    pub target_file_rows: Option<u64>,
    /// Reading (and encoding: each segment thread encodes its own batches).
    pub read: ReadOptions,
    /// zstd level of the output.
    pub zstd_level: i32,
    /// A directory output that holds files embquant did not write is refused; with this,
    /// those files are kept and only embquant's own previous parts are replaced.
    pub overwrite: bool,
}

impl JobOptions {
    /// Defaults for `column`.
    pub fn new(column: impl Into<String>) -> Self {
        Self {
            quantize: QuantizeOptions::new(column),
            row_group_rows: spec::DEFAULT_ROW_GROUP_ROWS,
            target_file_rows: None,
            read: ReadOptions::default(),
            zstd_level: spec::DEFAULT_ZSTD_LEVEL,
            overwrite: false,
        }
    }
}

/// What a job did.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    /// Rows written.
    pub rows: u64,
    /// Files written (final paths).
    pub files: Vec<PathBuf>,
    /// Bytes of input files.
    pub bytes_in: u64,
    /// Bytes of output files.
    pub bytes_out: u64,
    /// The code columns with their clip counts over all rows.
    pub columns: Vec<ColumnSummary>,
    /// Wall time.
    pub seconds: f64,
}

/// Quantizes `files` into `output` with `calibration` (pass 2 of the job). With
/// `target_file_rows` the output is a directory of `part-NNNNN.parquet` files.
pub async fn quantize(
    files: &[InputFile],
    output: &Path,
    calibration: Calibration,
    opts: &JobOptions,
    progress: &dyn Progress,
) -> Result<JobSummary> {
    let started = Instant::now();
    if files.is_empty() {
        return Err(Error::empty_input("read", "no input files"));
    }
    if opts.row_group_rows == 0 || opts.target_file_rows == Some(0) || opts.read.batch_size == 0 {
        return Err(Error::bad_argument(
            "row_group_rows / target_file_rows / batch_size",
            "row_group_rows, target_file_rows and batch_size must be at least 1",
        ));
    }
    if !(1..=22).contains(&opts.zstd_level) {
        return Err(Error::bad_argument(
            "zstd_level",
            format!("zstd level {}: expected 1 to 22", opts.zstd_level),
        ));
    }
    let dir = opts.target_file_rows.is_some();
    crate::io::check_not_input(
        output,
        dir,
        &files.iter().map(|f| &f.path).collect::<Vec<_>>(),
    )?;
    let column = opts.quantize.column.clone();
    let first = &files[0];
    let schema = first
        .schema()
        .map_err(|e| e.in_file(first.path.display(), &column))?;
    let quantizer = Arc::new(
        Quantizer::try_new(schema.clone(), calibration, opts.quantize.clone())
            .map_err(|e| e.in_file(first.path.display(), &column))?,
    );
    let temp = TempOutput::new(output, dir, opts.overwrite)?;
    let total_rows: u64 = files.iter().map(|f| f.rows).sum();
    let files = Arc::new(files.to_vec());

    // Writer thread: on a closed channel without `Finish` it stops and writes nothing more.
    let (tx, mut rx) = mpsc::channel::<ToWriter>(2);
    let writer = {
        let (temp_path, q, opts, inputs) = (
            temp.path().to_path_buf(),
            quantizer.clone(),
            opts.clone(),
            files.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<Vec<PartInfo>> {
            let mut w = PartWriter::new(temp_path, dir, q, &opts, &inputs);
            loop {
                match rx.blocking_recv() {
                    Some(ToWriter::Batch(b)) => w.write(b)?,
                    Some(ToWriter::Finish) => return w.finish(),
                    None => return Err(Error::Cancelled),
                }
            }
        })
    };

    progress.begin("quantize", total_rows);
    // Each segment thread decodes and encodes its rows; the writer takes segments in order.
    // A later segment may run ahead of the one being written by up to READ_AHEAD_BYTES of
    // encoded batches (small: codes, plus the kept columns), so a single huge row group
    // still decodes on two cores while memory stays bounded.
    let row_bytes = quantizer
        .recipes()
        .iter()
        .map(|r| r.bytes_per_vector as u64)
        .sum::<u64>()
        + if opts.quantize.drop_source {
            0
        } else {
            // Kept columns: their decoded size is a small multiple of their stored size;
            // 4x errs on the side of less read-ahead.
            files
                .iter()
                .map(|f| 4 * f.bytes / f.rows.max(1))
                .max()
                .unwrap_or(0)
        };
    let batch_bytes = (row_bytes * opts.read.batch_size as u64).max(1);
    let capacity = (READ_AHEAD_BYTES / batch_bytes).clamp(2, 4096) as usize;
    let segs = segments(&files, opts.read.split_rows);
    let (files2, col2, q, schema2) = (
        files.clone(),
        column.clone(),
        quantizer.clone(),
        schema.clone(),
    );
    let batch_size = opts.read.batch_size;
    let mut encoded = Box::pin(
        futures::stream::iter(segs)
            .map(move |seg| {
                let (files, column, q, schema) =
                    (files2.clone(), col2.clone(), q.clone(), schema2.clone());
                let (tx, rx) = mpsc::channel::<Result<crate::quantizer::QuantizedBatch>>(capacity);
                tokio::task::spawn_blocking(move || {
                    let file = &files[seg.file];
                    let run = || -> Result<()> {
                        for batch in
                            segment_reader(file, seg, &column, false, Some(schema), batch_size)?
                        {
                            let (start, batch) = batch?;
                            let out = q.quantize(&batch).map_err(|e| e.offset_rows(start))?;
                            if tx.blocking_send(Ok(out)).is_err() {
                                return Ok(()); // the consumer is gone
                            }
                        }
                        Ok(())
                    };
                    if let Err(e) = run() {
                        let _ = tx.blocking_send(Err(e.in_file(file.path.display(), &column)));
                    }
                });
                futures::future::ready(futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|x| (x, rx))
                }))
            })
            .buffered(opts.read.concurrency.max(1))
            .flatten(),
    );
    let mut failure = None;
    while let Some(b) = encoded.next().await {
        match b {
            Ok(b) => {
                let n = b.batch.num_rows() as u64;
                if tx.send(ToWriter::Batch(b)).await.is_err() {
                    break; // the writer failed: its error is reported below
                }
                progress.advance(n);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(encoded);
    if failure.is_none() {
        let _ = tx.send(ToWriter::Finish).await;
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| Error::Internal(format!("writer thread: {e}")));
    progress.end();
    if let Some(e) = failure {
        return Err(e);
    }
    let parts = written??;
    temp.commit(&parts)?;

    // Summary.
    let final_path = |p: &PathBuf| {
        if dir {
            output.join(p.file_name().expect("part name"))
        } else {
            output.to_path_buf()
        }
    };
    let mut clipped = vec![0u64; quantizer.recipes().len()];
    let mut vectors = 0;
    for p in &parts {
        clipped
            .iter_mut()
            .zip(&p.clipped)
            .for_each(|(a, b)| *a += b);
        vectors += p.vectors;
    }
    let files_out: Vec<PathBuf> = parts.iter().map(|p| final_path(&p.path)).collect();
    let bytes_out = files_out
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(JobSummary {
        rows: parts.iter().map(|p| p.rows).sum(),
        columns: summaries(&quantizer, &clipped, vectors),
        files: files_out,
        bytes_in: files.iter().map(|f| f.bytes).sum(),
        bytes_out,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn summaries(q: &Quantizer, clipped: &[u64], vectors: u64) -> Vec<ColumnSummary> {
    q.recipes()
        .iter()
        .zip(clipped)
        .map(|(r, &c)| {
            let values = vectors * r.dims as u64;
            ColumnSummary {
                recipe: r.clone(),
                clipped: c,
                clip_rate: if r.scheme.clips() && values > 0 {
                    c as f64 / values as f64
                } else {
                    0.0
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, RecordBatch};
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::codec::scheme::Scheme;
    use crate::codec::tests::{calibrate, with_values};
    use crate::quantizer::{QuantizeOptions, Quantizer};
    use crate::testutil::vectors_array;

    #[test]
    fn f16_and_bf16_overflow_is_reported_in_the_clip_rate() {
        // 4 rows of 2 values: 1e5 overflows f16 (max 65504), f32::MAX overflows bf16.
        let v = with_values(
            &vectors_array(4, 2, 1, 0.0),
            vec![1e5, 0.5, f32::MAX, 0.25, -0.5, 0.1, 0.2, 0.3],
        );
        let schema = Arc::new(Schema::new(vec![Field::new(
            "emb",
            v.data_type().clone(),
            true,
        )]));
        let mut o = QuantizeOptions::new("emb");
        o.schemes = vec![Scheme::F16, Scheme::Bf16];
        let q = Quantizer::try_new(schema.clone(), calibrate(&v), o).unwrap();
        let b = RecordBatch::try_new(schema, vec![Arc::new(v)]).unwrap();
        let out = q.quantize(&b).unwrap();
        let s = summaries(&q, &out.clipped, out.vectors);
        let rates: Vec<(Scheme, u64, f64)> = s
            .iter()
            .map(|c| (c.recipe.scheme, c.clipped, c.clip_rate))
            .collect();
        assert_eq!(
            rates,
            vec![(Scheme::F16, 2, 2.0 / 8.0), (Scheme::Bf16, 1, 1.0 / 8.0)]
        );
    }
}
