//! `_core.Model` and `_core.Program`: a pump model and a basal program converted and
//! validated once, so building a pump or changing its program does not convert them again.

use itb_core::{Basal, PumpModel};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{basal_from_py, basal_to_py, model_from_py, model_to_py};
use crate::errors::IntoPyResult;

/// A validated pump model (built from the exact dict of `PumpModel.exact()`).
#[pyclass(name = "Model", module = "itb._core", frozen)]
pub struct PyModel {
    pub inner: PumpModel,
}

#[pymethods]
impl PyModel {
    #[new]
    fn new(exact: &Bound<'_, PyDict>) -> PyResult<Self> {
        let inner = model_from_py(exact)?;
        inner.validate().py()?;
        Ok(PyModel { inner })
    }

    /// The exact dict it was built from (a fresh one).
    fn exact<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        model_to_py(py, &self.inner)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyDict>,))> {
        Ok((
            slf.get_type().into_any(),
            (model_to_py(slf.py(), &slf.get().inner)?,),
        ))
    }
}

/// A basal program whose shape is validated (built from a program's exact tuple).
#[pyclass(name = "Program", module = "itb._core", frozen)]
pub struct PyProgram {
    pub inner: Basal,
}

#[pymethods]
impl PyProgram {
    #[new]
    fn new(exact: &Bound<'_, PyAny>) -> PyResult<Self> {
        let inner = basal_from_py(exact)?;
        inner.validate_shape().py()?;
        Ok(PyProgram { inner })
    }

    /// The exact tuple it was built from (a fresh one).
    fn exact<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        basal_to_py(py, &self.inner)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let exact = basal_to_py(slf.py(), &slf.get().inner)?;
        Ok((slf.get_type().into_any(), PyTuple::new(slf.py(), [exact])?))
    }
}

/// A program given as a `_core.Program` or as an exact tuple.
pub fn basal_of(program: &Bound<'_, PyAny>) -> PyResult<Basal> {
    match program.cast::<PyProgram>() {
        Ok(p) => Ok(p.get().inner.clone()),
        Err(_) => basal_from_py(program),
    }
}
