//! pyo3 bindings of itb-core: conversion, error mapping and GIL release only.

use pyo3::prelude::*;

mod batch;
mod convert;
mod errors;
mod events;
mod fast;
mod objects;
mod pump;

use errors::IntoPyResult;

/// Scale a float by `10**power` exactly from its shortest decimal form, rounding half to
/// even (e.g. µg → ng with power 3). Errors name `field`.
#[pyfunction]
#[pyo3(signature = (value, power, field, unit=""))]
fn scaled(value: f64, power: i64, field: &str, unit: &str) -> PyResult<i64> {
    let power = itb_core::error::check_range("power", power, 0, 18, "").py()?;
    itb_core::units::scaled_from_f64(field, value, power as u32, i64::MAX, unit).py()
}

/// Validate a model given as a dict of exact integer fields (raises on error).
#[pyfunction]
fn validate_model(model: &Bound<'_, pyo3::types::PyDict>) -> PyResult<()> {
    convert::model_from_py(model)?.validate().py()
}

/// Validate a program's shape (steps start at 0, increase, stay in the period, at most 13 a
/// day, doses in range); raises `ValidationError` naming the step.
#[pyfunction]
fn validate_program(program: &Bound<'_, PyAny>) -> PyResult<()> {
    convert::basal_from_py(program)?.validate_shape().py()
}

/// Volume rate (nL/day) of a dose rate (ng/day) at a concentration (µg/mL), half-even.
#[pyfunction]
fn volume_rate_nl_per_day(ng_per_day: i64, concentration: i64) -> PyResult<i64> {
    let conc = itb_core::units::check_concentration("concentration", concentration).py()?;
    itb_core::error::check_range(
        "ng_per_day",
        ng_per_day,
        0,
        itb_core::units::MAX_DOSE_NG_PER_DAY,
        "ng/day",
    )
    .py()?;
    Ok(itb_core::units::volume_rate_nl_per_day(ng_per_day, conc))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<pump::PyPump>()?;
    m.add_class::<events::PyEventLog>()?;
    m.add_class::<objects::PyModel>()?;
    m.add_class::<objects::PyProgram>()?;
    m.add_class::<batch::PyFleetColumns>()?;
    m.add_function(wrap_pyfunction!(scaled, m)?)?;
    m.add_function(wrap_pyfunction!(fast::times_ms, m)?)?;
    m.add_function(wrap_pyfunction!(fast::durations_ms, m)?)?;
    m.add_function(wrap_pyfunction!(fast::doses_f64, m)?)?;
    m.add_function(wrap_pyfunction!(batch::simulate_many, m)?)?;
    m.add_function(wrap_pyfunction!(batch::project_many, m)?)?;
    m.add_function(wrap_pyfunction!(validate_model, m)?)?;
    m.add_function(wrap_pyfunction!(validate_program, m)?)?;
    m.add_function(wrap_pyfunction!(volume_rate_nl_per_day, m)?)?;
    // The one version of the product: the Cargo workspace version (maturin puts the same one in
    // the wheel's metadata).
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SNAPSHOT_VERSION", itb_core::snapshot::SNAPSHOT_VERSION)?;
    let limits = pyo3::types::PyDict::new(m.py());
    for (name, value) in itb_core::limits::LIMITS {
        limits.set_item(name, value)?;
    }
    m.add("LIMITS", limits)?;
    m.add("MS_PER_DAY", itb_core::units::MS_PER_DAY)?;
    Ok(())
}
