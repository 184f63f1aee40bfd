//! Argument conversion at the boundary without a Python frame for the common types.
//!
//! Each function handles the everyday exact types (`float`, `int`, naive `datetime`,
//! `timedelta`) in Rust and hands anything else to the Python converter it mirrors
//! (`itb._time.to_ms`, `itb._time.duration_ms`, `itb._units.scaled`), so the result and every
//! error (type, message, field) are the Python converter's: the fast path only takes inputs on
//! which that converter cannot fail, or fails the same way (the float rounding is the core's
//! `scaled_from_f64` either way).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{IntoPyDict, PyFloat, PyInt};
use pyo3::{intern, Py};

use crate::errors::IntoPyResult;

/// A Python attribute imported once.
fn cached<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    module: &str,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(module)?.getattr(name)?.unbind())
    })
    .map(|f| f.bind(py))
}

static DATETIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TIMEDELTA: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TO_MS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DURATION_MS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SCALED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn is_type(obj: &Bound<'_, PyAny>, ty: &Bound<'_, PyAny>) -> bool {
    obj.get_type().as_any().is(ty)
}

/// Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Pump-clock ms of `value` as `itb._time.to_ms(value, field)`: a naive `datetime`
/// (floored to the ms) or an `int` within 64 bits; anything else goes to `to_ms`.
pub fn time_ms(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    time_ms_with(value, || field.to_string())
}

/// [`time_ms`] with the field name built only if the Python converter is needed.
fn time_ms_with(value: &Bound<'_, PyAny>, field: impl FnOnce() -> String) -> PyResult<i64> {
    let py = value.py();
    if value.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = value.extract::<i64>() {
            return Ok(v);
        }
    } else if is_type(value, cached(py, &DATETIME, "datetime", "datetime")?)
        && value.getattr(intern!(py, "tzinfo"))?.is_none()
    {
        let get = |name: &Bound<'_, pyo3::types::PyString>| value.getattr(name)?.extract::<i64>();
        let days = days_from_civil(
            get(intern!(py, "year"))?,
            get(intern!(py, "month"))?,
            get(intern!(py, "day"))?,
        );
        let secs = (get(intern!(py, "hour"))? * 60 + get(intern!(py, "minute"))?) * 60
            + get(intern!(py, "second"))?;
        return Ok((days * 86_400 + secs) * 1000 + get(intern!(py, "microsecond"))? / 1000);
    }
    cached(py, &TO_MS, "itb._time", "to_ms")?
        .call1((value, field()))?
        .extract()
}

/// The longest duration (ms): the pump clock's whole span, as `itb._time.MAX_DURATION_MS`.
const MAX_DURATION_MS: i64 = itb_core::units::MAX_TIME_MS - itb_core::units::MIN_TIME_MS;

/// Milliseconds of a duration as `itb._time.duration_ms(value, field, allow_zero=...)`: a
/// `timedelta` (floored to the ms) of 1 ms to the clock's span is taken here; anything else,
/// and every error, goes to `duration_ms` (which refuses bare numbers).
pub fn duration_ms(value: &Bound<'_, PyAny>, field: &str, allow_zero: bool) -> PyResult<i64> {
    duration_ms_with(value, || field.to_string(), allow_zero)
}

/// [`duration_ms`] with the field name built only if the Python converter is needed.
fn duration_ms_with(
    value: &Bound<'_, PyAny>,
    field: impl FnOnce() -> String,
    allow_zero: bool,
) -> PyResult<i64> {
    let py = value.py();
    if is_type(value, cached(py, &TIMEDELTA, "datetime", "timedelta")?) {
        let get = |name: &Bound<'_, pyo3::types::PyString>| value.getattr(name)?.extract::<i64>();
        let ms = (get(intern!(py, "days"))? * 86_400 + get(intern!(py, "seconds"))?) * 1000
            + get(intern!(py, "microseconds"))? / 1000;
        if (1..=MAX_DURATION_MS).contains(&ms) {
            return Ok(ms);
        }
    }
    let kwargs = [("allow_zero", allow_zero)].into_py_dict(py)?;
    cached(py, &DURATION_MS, "itb._time", "duration_ms")?
        .call((value, field()), Some(&kwargs))?
        .extract()
}

/// `value × 10**power` as `itb._units.scaled(value, power, field, unit)`: a finite `float`
/// is converted here (the core's rounding, as `scaled` does); anything else goes to `scaled`.
pub fn scaled(value: &Bound<'_, PyAny>, power: u32, field: &str, unit: &str) -> PyResult<i64> {
    if value.is_exact_instance_of::<PyFloat>() {
        let x = value.cast::<PyFloat>()?.value();
        if x.is_finite() {
            return itb_core::units::scaled_from_f64(field, x, power, i64::MAX, unit).py();
        }
    }
    cached(value.py(), &SCALED, "itb._units", "scaled")?
        .call1((value, power, field, unit))?
        .extract()
}

static FLAG: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A yes/no argument as `itb._units.flag(value, field)`: a `bool` is taken here; anything else
/// (and every error: a number is never a bool) goes to `flag`.
pub fn flag(value: &Bound<'_, PyAny>, field: &str) -> PyResult<bool> {
    if let Ok(b) = value.cast::<pyo3::types::PyBool>() {
        return Ok(b.is_true());
    }
    cached(value.py(), &FLAG, "itb._units", "flag")?
        .call1((value, field))?
        .extract()
}

static CONCENTRATION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static INT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A concentration (µg/mL) as `itb._units.concentration(value)`: a whole `int` or `float`
/// within 1..=100 000 is taken here; anything else, and every error, goes to `concentration`.
pub fn concentration(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    let in_range = |n: i64| (1..=i64::from(itb_core::units::MAX_CONCENTRATION)).contains(&n);
    if value.is_exact_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<i64>() {
            if in_range(n) {
                return Ok(n);
            }
        }
    } else if value.is_exact_instance_of::<PyFloat>() {
        let x = value.cast::<PyFloat>()?.value();
        if x.is_finite() && x == x.trunc() && in_range(x as i64) {
            return Ok(x as i64);
        }
    }
    cached(value.py(), &CONCENTRATION, "itb._units", "concentration")?
        .call1((value,))?
        .extract()
}

/// An integer argument as `itb._units.integer(value, field)`: an `int` within 64 bits is taken
/// here; anything else goes to `integer`.
pub fn int(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    if value.is_exact_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<i64>() {
            return Ok(n);
        }
    }
    cached(value.py(), &INT, "itb._units", "integer")?
        .call1((value, field))?
        .extract()
}

static DOSE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `[to_ms(v, f"{prefix}[{i}]") for i, v in enumerate(values)]` as an int64 array.
#[pyfunction]
pub fn times_ms<'py>(
    values: &Bound<'py, PyAny>,
    prefix: &str,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    let mut out = Vec::with_capacity(values.len().unwrap_or(0));
    for (i, v) in values.try_iter()?.enumerate() {
        out.push(time_ms_with(&v?, || format!("{prefix}[{i}]"))?);
    }
    Ok(numpy::IntoPyArray::into_pyarray(out, values.py()))
}

/// `[duration_ms(v, f"{prefix}[{i}]", allow_zero=False) for i, v in enumerate(values)]` as an
/// int64 array.
#[pyfunction]
pub fn durations_ms<'py>(
    values: &Bound<'py, PyAny>,
    prefix: &str,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    let mut out = Vec::with_capacity(values.len().unwrap_or(0));
    for (i, v) in values.try_iter()?.enumerate() {
        out.push(duration_ms_with(&v?, || format!("{prefix}[{i}]"), false)?);
    }
    Ok(numpy::IntoPyArray::into_pyarray(out, values.py()))
}

/// Doses as a float64 array, as `bolus_many` checks them: first every entry must be a number
/// (not a bool; `itb._units.check_dose(value, i)` raises naming `doses_ug[i]`), then each
/// becomes `float(value)`. A `float` entry needs no check.
#[pyfunction]
pub fn doses_f64<'py>(values: &Bound<'py, PyAny>) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let py = values.py();
    let items = values.try_iter()?.collect::<PyResult<Vec<_>>>()?;
    for (i, v) in items.iter().enumerate() {
        if !v.is_exact_instance_of::<PyFloat>() {
            cached(py, &DOSE, "itb._units", "check_dose")?.call1((v, i))?;
        }
    }
    let out = items
        .iter()
        .map(|v| v.extract::<f64>())
        .collect::<PyResult<Vec<f64>>>()?;
    Ok(numpy::IntoPyArray::into_pyarray(out, py))
}
