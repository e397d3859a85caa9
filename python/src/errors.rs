//! embquant errors as Python exceptions, by kind: `OSError` for files and stores (their
//! reading, their setup, a path that is not a regular file), `FileExistsError` (an
//! `OSError`) for an output that something else already occupies, `RuntimeError` for a bug,
//! `ValueError` for everything about the arguments, the options and the data. The message
//! is the error's `Display`, the text the CLI prints after `Error:`.

use pyo3::exceptions::{PyFileExistsError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// The Python exception for an embquant error.
pub(crate) fn to_py(e: embquant::Error) -> PyErr {
    use embquant::Error as E;
    let msg = e.to_string();
    match e.kind() {
        E::Io { .. } | E::Parquet(_) | E::StoreConfig { .. } | E::NotRegularFile { .. } => {
            PyOSError::new_err(msg)
        }
        E::OutputConflict { .. } | E::ForeignOutput { .. } => PyFileExistsError::new_err(msg),
        E::Internal(_) => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// A `ValueError` with `msg`.
pub(crate) fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// `.map_err(py_err)` for results of the core crate.
pub(crate) trait IntoPy<T> {
    fn py(self) -> Result<T, PyErr>;
}

impl<T> IntoPy<T> for embquant::Result<T> {
    fn py(self) -> Result<T, PyErr> {
        self.map_err(to_py)
    }
}

/// Parses an option string (`"int8"`, `"quantile:0.999"` ...) with the CLI's parser, so the
/// error message is the CLI's.
pub(crate) fn parse<T>(s: &str) -> Result<T, PyErr>
where
    T: std::str::FromStr<Err = embquant::Error>,
{
    s.parse::<T>().map_err(to_py)
}
