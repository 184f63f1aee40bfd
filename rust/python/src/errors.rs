//! The one place core errors become Python exceptions. The classes live in
//! `itb.errors` (so they carry `field` attributes and docstrings); each core variant maps
//! to exactly one of them.

use itb_core::ItbError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

fn class_name(err: &ItbError) -> &'static str {
    match err {
        ItbError::Validation { .. } => "ValidationError",
        ItbError::Programming { .. } => "ProgrammingError",
        ItbError::Reservoir { .. } => "ReservoirError",
        ItbError::Snapshot { .. } => "SnapshotError",
        ItbError::EndOfService { .. } => "EndOfServiceError",
    }
}

/// Convert a core error into the matching `itb.errors` exception (message, field).
pub fn to_py(err: ItbError) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let cls = py.import("itb.errors")?.getattr(class_name(&err))?;
            let exc = cls.call1((err.to_string(), err.field().to_string()))?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|e| {
            PyRuntimeError::new_err(format!("{err} (and itb.errors failed: {e})"))
        })
    })
}

/// `?`-friendly conversion for core results.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for itb_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
