//! `Calibration` and `calibrate`: per-dimension statistics of vectors in memory.

use std::path::Path;
use std::sync::Arc;

use embquant::{Calibration, CalibrationMethod, MatryoshkaOptions, Stats, StatsOptions};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::arrays;
use crate::errors::{parse, value_error, IntoPy};

/// A per-dimension calibration: ranges by a method, versioned JSON, a content fingerprint.
/// One computed by `calibrate` keeps its statistics, so two of them merge exactly (as the
/// Parquet job merges its segments').
#[pyclass(name = "Calibration", module = "embquant._embquant", frozen)]
pub(crate) struct PyCalibration {
    pub(crate) cal: Arc<Calibration>,
    /// The statistics it came from (None when read from JSON or a file).
    stats: Option<Arc<Stats>>,
}

impl PyCalibration {
    pub(crate) fn new(cal: Calibration) -> Self {
        Self {
            cal: Arc::new(cal),
            stats: None,
        }
    }
}

#[pymethods]
impl PyCalibration {
    /// Reads the JSON written by `to_json` or `embquant calibrate`.
    #[staticmethod]
    fn from_json(json: &str) -> PyResult<Self> {
        Ok(Self::new(Calibration::from_json(json).py()?))
    }

    /// The calibration stored in a file written by `embquant quantize` (or
    /// `quantize_parquet`), from its footer or the field metadata of `column`'s codes.
    #[staticmethod]
    #[pyo3(signature = (path, column=None))]
    fn from_parquet(py: Python<'_>, path: &str, column: Option<&str>) -> PyResult<Self> {
        let r = py.detach(|| embquant::drift::read_reference(Path::new(path), column));
        Ok(Self::new(r.py()?.calibration))
    }

    /// Versioned JSON (what `embquant calibrate` writes).
    fn to_json(&self) -> PyResult<String> {
        self.cal.to_json().py()
    }

    #[getter]
    fn fingerprint(&self) -> &str {
        self.cal.fingerprint()
    }

    #[getter]
    fn dim(&self) -> usize {
        self.cal.dim()
    }

    #[getter]
    fn rows(&self) -> u64 {
        self.cal.rows()
    }

    #[getter]
    fn method(&self) -> String {
        self.cal.method().to_string()
    }

    #[getter]
    fn lo(&self) -> Vec<f32> {
        self.cal.lo().to_vec()
    }

    #[getter]
    fn hi(&self) -> Vec<f32> {
        self.cal.hi().to_vec()
    }

    #[getter]
    fn min(&self) -> Vec<f32> {
        self.cal.min().to_vec()
    }

    #[getter]
    fn max(&self) -> Vec<f32> {
        self.cal.max().to_vec()
    }

    #[getter]
    fn mean(&self) -> Vec<f32> {
        self.cal.mean().to_vec()
    }

    #[getter]
    fn std(&self) -> Vec<f32> {
        self.cal.std().to_vec()
    }

    #[getter]
    fn degenerate_dims(&self) -> Vec<usize> {
        self.cal.degenerate_dims()
    }

    /// Whether it holds the statistics `merge` needs.
    #[getter]
    fn mergeable(&self) -> bool {
        self.stats.is_some()
    }

    /// The calibration of both inputs' rows together, by the same method: exact, as if
    /// computed over the concatenation (the quantile sketches merge within their accuracy).
    fn merge(&self, py: Python<'_>, other: &PyCalibration) -> PyResult<Self> {
        let (Some(a), Some(b)) = (&self.stats, &other.stats) else {
            return Err(value_error(
                "only calibrations computed by calibrate() in this process can be merged (one read from JSON or a file holds ranges, not the statistics they came from)",
            ));
        };
        if self.cal.method() != other.cal.method() {
            return Err(value_error(format!(
                "cannot merge calibrations by different methods: {} and {}",
                self.cal.method(),
                other.cal.method()
            )));
        }
        let method = self.cal.method();
        let (a, b) = (Arc::clone(a), Arc::clone(b));
        let (stats, cal) = py
            .detach(move || -> embquant::Result<_> {
                let mut s = (*a).clone();
                s.merge(&b)?;
                let cal = Calibration::from_stats(&s, method)?;
                Ok((s, cal))
            })
            .py()?;
        Ok(Self {
            cal: Arc::new(cal),
            stats: Some(Arc::new(stats)),
        })
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<PyCalibration>() {
            Ok(o) => {
                let o = o.get();
                self.cal.to_json().ok() == o.cal.to_json().ok()
            }
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.cal.fingerprint().hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        format!(
            "Calibration(method={:?}, dim={}, rows={}, fingerprint={:?}, degenerate_dims={:?})",
            self.cal.method().to_string(),
            self.cal.dim(),
            self.cal.rows(),
            self.cal.fingerprint(),
            self.cal.degenerate_dims()
        )
    }

    /// Pickles as its JSON (e.g. a Spark broadcast variable).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let from_json = py.get_type::<PyCalibration>().getattr("from_json")?;
        let json = slf.get().to_json()?;
        PyTuple::new(py, [from_json, PyTuple::new(py, [json])?.into_any()])
    }
}

/// Calibrates `vectors` (all rows) by `method`: `minmax`, `quantile:P` or `meanstd:K`;
/// with `dims`, on the re-normalized Matryoshka prefix. Without `sketch` (several times
/// faster) it holds no medians and cannot use `quantile:P`.
#[pyfunction]
#[pyo3(signature = (vectors, method="minmax", column=None, dims=None, sketch=true))]
pub(crate) fn calibrate(
    py: Python<'_>,
    vectors: &Bound<'_, PyAny>,
    method: &str,
    column: Option<&str>,
    dims: Option<usize>,
    sketch: bool,
) -> PyResult<PyCalibration> {
    let method: CalibrationMethod = parse(method)?;
    let opts = if sketch || method.needs_sketch() {
        StatsOptions::default()
    } else {
        StatsOptions::moments_only()
    };
    let col = arrays::vectors(vectors, column)?;
    let (stats, cal) = py
        .detach(move || -> embquant::Result<_> {
            let stats = match dims {
                Some(d) => {
                    let t = embquant::truncate(col.array.as_ref(), &MatryoshkaOptions::new(d))?;
                    Stats::compute(&t, &opts)?
                }
                None => Stats::compute(col.array.as_ref(), &opts)?,
            };
            let cal = Calibration::from_stats(&stats, method)?;
            Ok((stats, cal))
        })
        .py()?;
    Ok(PyCalibration {
        cal: Arc::new(cal),
        stats: Some(Arc::new(stats)),
    })
}
