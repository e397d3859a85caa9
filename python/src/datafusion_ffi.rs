//! The SQL functions for datafusion-python, through `datafusion-ffi`: every scalar function,
//! the `embedding_calibration` aggregate and the `tiered_search` table function, each an
//! object exporting the PyCapsule datafusion-python imports (`__datafusion_scalar_udf__`,
//! `__datafusion_aggregate_udf__`, `__datafusion_table_function__(session)`).
//!
//! The FFI structs' layout belongs to one DataFusion major: a datafusion-python of another
//! major would read them wrongly and crash, and it does not check the version for UDFs. The
//! Python side (`embquant.datafusion.register`) compares the installed `datafusion` major
//! with [`datafusion_major`] before it touches a capsule.

use std::ptr::NonNull;
use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::runner::runtime;

/// The DataFusion major the FFI types are built against (the `datafusion` crate in
/// Cargo.lock; the Python package `datafusion` must have the same major).
pub(crate) fn datafusion_major() -> u32 {
    let v = datafusion::DATAFUSION_VERSION;
    v.split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("DATAFUSION_VERSION starts with the major version")
}

/// One embquant scalar function for datafusion-python.
#[pyclass(name = "ScalarUDF", module = "embquant._embquant", frozen)]
pub(crate) struct PyScalarUdf(Arc<ScalarUDF>);

#[pymethods]
impl PyScalarUdf {
    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let ffi = FFI_ScalarUDF::from(Arc::clone(&self.0));
        PyCapsule::new_with_value(py, ffi, c"datafusion_scalar_udf")
    }

    fn __repr__(&self) -> String {
        format!("ScalarUDF({:?})", self.0.name())
    }
}

/// The calibration aggregate for datafusion-python.
#[pyclass(name = "AggregateUDF", module = "embquant._embquant", frozen)]
pub(crate) struct PyAggregateUdf(Arc<AggregateUDF>);

#[pymethods]
impl PyAggregateUdf {
    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }

    fn __datafusion_aggregate_udf__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let ffi = FFI_AggregateUDF::from(Arc::clone(&self.0));
        PyCapsule::new_with_value(py, ffi, c"datafusion_aggregate_udf")
    }

    fn __repr__(&self) -> String {
        format!("AggregateUDF({:?})", self.0.name())
    }
}

/// `tiered_search(corpus_table, queries_table, k [, tiers])` for datafusion-python. Its
/// scans run on this module's tokio runtime (the handle is passed through the FFI).
#[pyclass(name = "TieredSearchFunction", module = "embquant._embquant", frozen)]
pub(crate) struct PyTieredSearch;

/// The session's logical extension codec, as datafusion-python hands it over: the session
/// object exports it as a capsule (datafusion-python's `ffi_logical_codec_from_pycapsule`).
fn logical_codec(session: &Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
    let attr = "__datafusion_logical_extension_codec__";
    let capsule = if session.hasattr(attr)? {
        session.getattr(attr)?.call0()?
    } else {
        session.clone()
    };
    let capsule = capsule.cast::<PyCapsule>()?;
    let data: NonNull<FFI_LogicalExtensionCodec> = capsule
        .pointer_checked(Some(c"datafusion_logical_extension_codec"))?
        .cast();
    // SAFETY: the capsule's name guarantees its content's type; the codec is cloned out of
    // it (an FFI clone: the capsule keeps its own).
    Ok(unsafe { data.as_ref() }.clone())
}

#[pymethods]
impl PyTieredSearch {
    #[getter]
    fn name(&self) -> &str {
        embquant_udfs::tiered_search::NAME
    }

    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let codec = logical_codec(&session)?;
        let ffi = FFI_TableFunction::new_with_ffi_codec(
            Arc::new(embquant_udfs::tiered_search::TieredSearchFunc),
            Some(runtime().handle().clone()),
            codec,
        );
        PyCapsule::new_with_value(py, ffi, c"datafusion_table_function")
    }

    fn __repr__(&self) -> String {
        format!(
            "TieredSearchFunction({:?})",
            embquant_udfs::tiered_search::NAME
        )
    }
}

/// Every scalar function.
#[pyfunction]
fn scalar_udfs() -> Vec<PyScalarUdf> {
    embquant_udfs::functions()
        .into_iter()
        .map(PyScalarUdf)
        .collect()
}

/// The aggregates (`embedding_calibration`).
#[pyfunction]
fn aggregate_udfs() -> Vec<PyAggregateUdf> {
    embquant_udfs::aggregate_functions()
        .into_iter()
        .map(PyAggregateUdf)
        .collect()
}

/// The table functions (`tiered_search`).
#[pyfunction]
fn table_functions() -> Vec<PyTieredSearch> {
    vec![PyTieredSearch]
}

/// Adds the classes and functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScalarUdf>()?;
    m.add_class::<PyAggregateUdf>()?;
    m.add_class::<PyTieredSearch>()?;
    m.add_function(wrap_pyfunction!(scalar_udfs, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate_udfs, m)?)?;
    m.add_function(wrap_pyfunction!(table_functions, m)?)?;
    Ok(())
}
