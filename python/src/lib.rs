//! `embquant._embquant`: the native half of the `embquant` Python package.
//!
//! Every function releases the GIL around its work ([`Python::detach`]) and reads its
//! inputs without copying them where Arrow allows: numpy arrays through the buffer protocol,
//! anything else through the Arrow PyCapsule interface (`arrays`). Long jobs run on one
//! tokio runtime while the calling thread waits in short slices, reporting progress and
//! checking for Ctrl-C between them (`runner`); an interrupted job is dropped the way the
//! CLI drops it, so its output is never written. Errors become `ValueError` (bad input,
//! options or data: the message is the CLI's) or `OSError` (files) (`errors`).
//!
//! The Python API (names, defaults, docs) lives in `python/embquant/__init__.py`; the
//! contract of this module is `python/embquant/_embquant.pyi`.

mod arrays;
mod calibration;
mod codes;
mod datafusion_ffi;
mod errors;
mod jobs;
mod recall;
mod runner;
mod search;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _embquant(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("simd_level", embquant::simd::Level::detected().name())?;
    m.add("datafusion_major", datafusion_ffi::datafusion_major())?;
    m.add_class::<calibration::PyCalibration>()?;
    m.add_function(wrap_pyfunction!(calibration::calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(codes::quantize, m)?)?;
    m.add_function(wrap_pyfunction!(codes::dequantize, m)?)?;
    m.add_function(wrap_pyfunction!(codes::quantize_into, m)?)?;
    m.add_class::<search::PyCorpus>()?;
    m.add_function(wrap_pyfunction!(jobs::calibrate_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::quantize_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(recall::recall, m)?)?;
    datafusion_ffi::register(m)?;
    Ok(())
}
