//! The streaming Parquet job from Python: `calibrate_parquet`, `quantize_parquet` and
//! `inspect`, the same library calls as `embquant calibrate | quantize | inspect`.

use std::path::{Path, PathBuf};

use embquant::job::{self, QuantizeSpec};
use pyo3::prelude::*;

use crate::calibration::PyCalibration;
use crate::errors::{value_error, IntoPy};
use crate::runner;

/// The spec's reading and calibration options from the keyword arguments
/// `calibrate_parquet` and `quantize_parquet` share (the rest at their defaults).
fn calibration_spec(
    column: &str,
    method: &str,
    sample_rows: Option<u64>,
    seed: u64,
    dims: Option<usize>,
    batch_rows: usize,
    concurrency: usize,
) -> QuantizeSpec {
    let mut spec = QuantizeSpec::new(column);
    spec.method = method.into();
    spec.sample_rows = sample_rows;
    spec.seed = seed;
    spec.dims = dims;
    spec.batch_rows = batch_rows;
    spec.concurrency = concurrency;
    spec
}

/// Outputs of the Python job are local paths (or `file:` URLs); object-store outputs are
/// the CLI's (`embquant quantize -o s3://...`), which stages and uploads them. Refused when
/// the output is one of `inputs` in any spelling, holds one, or lies inside an input
/// directory or prefix.
fn local_output(output: &str, inputs: &embquant::io::Inputs, dir: bool) -> PyResult<PathBuf> {
    match inputs.check_spelling(output, dir).py()? {
        embquant::io::Location::Local(p) => Ok(p),
        embquant::io::Location::Object(_) => Err(value_error(format!(
            "{output}: quantize_parquet writes to a local path (inputs may be URLs); to write to an object store, run `embquant quantize -o {output}`"
        ))),
    }
}

/// Calibrates the vector `column` of Parquet `inputs` (files, directories, globs or URLs).
#[pyfunction]
#[pyo3(signature = (inputs, column="embedding", method="minmax", sample_rows=None, seed=42, dims=None, batch_rows=1024, concurrency=2, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn calibrate_parquet(
    py: Python<'_>,
    inputs: Vec<String>,
    column: &str,
    method: &str,
    sample_rows: Option<u64>,
    seed: u64,
    dims: Option<usize>,
    batch_rows: usize,
    concurrency: usize,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyCalibration> {
    // The calibration part of the one quantize spec (the same parser as the CLI's), with
    // sketches kept (medians), as `embquant calibrate` keeps them.
    let spec = calibration_spec(
        column,
        method,
        sample_rows,
        seed,
        dims,
        batch_rows,
        concurrency,
    );
    let mut opts = spec.calibrate_options().py()?;
    opts.sketch = true;
    let files = py.detach(|| job::discover(&inputs)).py()?;
    let cal = runner::run(py, progress, move |shared| async move {
        job::calibrate(&files, &opts, shared).await
    })?;
    Ok(PyCalibration::new(cal))
}

/// Quantizes Parquet `inputs` into `output` (a file, or with `target_file_rows` a directory
/// of parts with a manifest), calibrating first unless `calibration` is given. The summary
/// as JSON.
#[pyfunction]
#[pyo3(signature = (inputs, output, column="embedding", schemes="int8,binary", calibration=None, method="minmax", sample_rows=None, seed=42, binary_threshold="zero", dims=None, drop_source=false, row_group_rows=65536, target_file_rows=None, int8_layout="binary", zstd_level=1, rabitq_rotation="hadamard", overwrite=false, batch_rows=1024, concurrency=2, progress=None, rabitq_bits=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantize_parquet(
    py: Python<'_>,
    inputs: Vec<String>,
    output: &str,
    column: &str,
    schemes: &str,
    calibration: Option<PyRef<'_, PyCalibration>>,
    method: &str,
    sample_rows: Option<u64>,
    seed: u64,
    binary_threshold: &str,
    dims: Option<usize>,
    drop_source: bool,
    row_group_rows: usize,
    target_file_rows: Option<u64>,
    int8_layout: &str,
    zstd_level: i32,
    rabitq_rotation: &str,
    overwrite: bool,
    batch_rows: usize,
    concurrency: usize,
    progress: Option<&Bound<'_, PyAny>>,
    rabitq_bits: Option<u8>,
) -> PyResult<String> {
    // The one spec every front door builds (the CLI's flags, the cluster's shards).
    let mut spec = calibration_spec(
        column,
        method,
        sample_rows,
        seed,
        dims,
        batch_rows,
        concurrency,
    );
    spec.schemes = schemes.split(',').map(String::from).collect();
    spec.rabitq_bits = rabitq_bits;
    spec.binary_threshold = binary_threshold.into();
    spec.rabitq_rotation = rabitq_rotation.into();
    spec.int8_layout = int8_layout.into();
    spec.drop_source = drop_source;
    spec.row_group_rows = row_group_rows;
    spec.target_file_rows = target_file_rows;
    spec.zstd_level = zstd_level;
    spec.overwrite = overwrite;
    let opts = spec.job_options().py()?;
    let cal_opts = spec.calibrate_options().py()?;
    let given = calibration.map(|c| (*c.cal).clone());
    let files = py.detach(|| job::discover(&inputs)).py()?;
    let mut read = embquant::io::Inputs::new();
    for i in &inputs {
        read.add_spelling(i).py()?;
    }
    read.add_files(&files);
    let output = local_output(output, &read, target_file_rows.is_some())?;
    let summary = runner::run(py, progress, move |shared| async move {
        let cal = match given {
            Some(c) => c,
            None => job::calibrate(&files, &cal_opts, shared.clone()).await?,
        };
        job::quantize(&files, &output, cal, &opts, &*shared).await
    })?;
    let columns: Vec<serde_json::Value> = summary
        .columns
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.recipe.name,
                "scheme": c.recipe.scheme.to_string(),
                "bytes_per_vector": c.recipe.bytes_per_vector,
                "clipped": c.clipped,
                "clip_rate": c.clip_rate,
            })
        })
        .collect();
    let json = serde_json::json!({
        "rows": summary.rows,
        "files": summary.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "bytes_in": summary.bytes_in,
        "bytes_out": summary.bytes_out,
        "columns": columns,
        "seconds": summary.seconds,
    });
    Ok(json.to_string())
}

/// The `embquant inspect --json` document of a Parquet file.
#[pyfunction]
pub(crate) fn inspect(py: Python<'_>, path: &str) -> PyResult<String> {
    let v = py.detach(|| job::describe(Path::new(path))).py()?;
    Ok(v.to_string())
}
