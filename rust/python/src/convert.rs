//! Conversions between Python values and core types (no logic beyond shape).

use itb_core::{Basal, BatteryModel, Event, ItbError, Period, PumpModel, Step, Value};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::to_py;

/// Program from `("continuous", ng_per_day)` or `("flex", "day"|"week", [(offset_ms, ng_per_day), …])`.
pub fn basal_from_py(program: &Bound<'_, PyAny>) -> PyResult<Basal> {
    let tuple = program
        .cast::<PyTuple>()
        .map_err(|_| to_py(ItbError::validation("program", "expected a tuple")))?;
    let kind: String = tuple.get_item(0)?.extract()?;
    match kind.as_str() {
        "continuous" => Ok(Basal::Continuous {
            ng_per_day: tuple.get_item(1)?.extract()?,
        }),
        "flex" => {
            let period = match tuple.get_item(1)?.extract::<String>()?.as_str() {
                "day" => Period::Day,
                "week" => Period::Week,
                other => {
                    return Err(to_py(ItbError::validation(
                        "period",
                        format!("unknown period {other:?}; allowed: 'day', 'week'"),
                    )))
                }
            };
            let raw: Vec<(i64, i64)> = tuple.get_item(2)?.extract()?;
            let steps = raw
                .into_iter()
                .map(|(offset_ms, ng_per_day)| Step {
                    offset_ms,
                    ng_per_day,
                })
                .collect();
            Ok(Basal::Flex { period, steps })
        }
        other => Err(to_py(ItbError::validation(
            "program",
            format!("unknown program kind {other:?}; allowed: 'continuous', 'flex'"),
        ))),
    }
}

/// Inverse of [`basal_from_py`].
pub fn basal_to_py<'py>(py: Python<'py>, basal: &Basal) -> PyResult<Bound<'py, PyAny>> {
    Ok(match basal {
        Basal::Continuous { ng_per_day } => {
            ("continuous", *ng_per_day).into_pyobject(py)?.into_any()
        }
        Basal::Flex { period, steps } => {
            let steps: Vec<(i64, i64)> =
                steps.iter().map(|s| (s.offset_ms, s.ng_per_day)).collect();
            ("flex", period.name(), steps).into_pyobject(py)?.into_any()
        }
    })
}

/// Model from a dict of exact integer fields.
pub fn model_from_py(d: &Bound<'_, PyDict>) -> PyResult<PumpModel> {
    let get = |k: &str| int_field(d, "", k);
    let name: String = d
        .get_item("name")?
        .ok_or_else(|| to_py(ItbError::validation("name", "missing")))?
        .extract()?;
    Ok(PumpModel {
        name,
        reservoir_nl: get("reservoir_nl")?,
        stroke_nl: get("stroke_nl")?,
        min_rate_nl_per_day: get("min_rate_nl_per_day")?,
        max_rate_nl_per_day: get("max_rate_nl_per_day")?,
        low_reservoir_nl: get("low_reservoir_nl")?,
        pump_path_nl: get("pump_path_nl")?,
        battery: match d.get_item("battery")? {
            Some(b) if !b.is_none() => Some(battery_from_py(b.cast::<PyDict>()?)?),
            _ => None,
        },
    })
}

/// A required integer entry of a dict; a missing one is a `ValidationError` naming `prefix + key`.
fn int_field(d: &Bound<'_, PyDict>, prefix: &str, key: &str) -> PyResult<i64> {
    d.get_item(key)?
        .ok_or_else(|| to_py(ItbError::validation(format!("{prefix}{key}"), "missing")))?
        .extract()
}

/// Battery from a dict of exact integer fields (names as in `BatteryModel`).
fn battery_from_py(d: &Bound<'_, PyDict>) -> PyResult<BatteryModel> {
    let get = |k: &str| int_field(d, "battery.", k);
    Ok(BatteryModel {
        capacity_pc: get("capacity_pc")?,
        quiescent_pc_per_ms: get("quiescent_pc_per_ms")?,
        stroke_pc: get("stroke_pc")?,
        tone_pc: get("tone_pc")?,
        telemetry_pc: get("telemetry_pc")?,
        eri_pc: get("eri_pc")?,
        eos_pc: get("eos_pc")?,
        non_critical_tone_ms: get("non_critical_tone_ms")?,
        critical_tone_ms: get("critical_tone_ms")?,
    })
}

fn battery_to_py<'py>(py: Python<'py>, b: &BatteryModel) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("capacity_pc", b.capacity_pc)?;
    d.set_item("quiescent_pc_per_ms", b.quiescent_pc_per_ms)?;
    d.set_item("stroke_pc", b.stroke_pc)?;
    d.set_item("tone_pc", b.tone_pc)?;
    d.set_item("telemetry_pc", b.telemetry_pc)?;
    d.set_item("eri_pc", b.eri_pc)?;
    d.set_item("eos_pc", b.eos_pc)?;
    d.set_item("non_critical_tone_ms", b.non_critical_tone_ms)?;
    d.set_item("critical_tone_ms", b.critical_tone_ms)?;
    Ok(d)
}

/// Model as a dict of exact integer fields.
pub fn model_to_py<'py>(py: Python<'py>, m: &PumpModel) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &m.name)?;
    d.set_item("reservoir_nl", m.reservoir_nl)?;
    d.set_item("stroke_nl", m.stroke_nl)?;
    d.set_item("min_rate_nl_per_day", m.min_rate_nl_per_day)?;
    d.set_item("max_rate_nl_per_day", m.max_rate_nl_per_day)?;
    d.set_item("low_reservoir_nl", m.low_reservoir_nl)?;
    d.set_item("pump_path_nl", m.pump_path_nl)?;
    match &m.battery {
        Some(b) => d.set_item("battery", battery_to_py(py, b)?)?,
        None => d.set_item("battery", py.None())?,
    }
    Ok(d)
}

/// Event as `(time_ms, kind, severity | None, data, seq)`.
pub fn event_to_py<'py>(py: Python<'py>, e: &Event) -> PyResult<Bound<'py, PyTuple>> {
    let data = PyDict::new(py);
    for (k, v) in &e.data {
        match v {
            Value::Int(i) => data.set_item(k, i)?,
            Value::Text(t) => data.set_item(k, t)?,
        }
    }
    let severity = e.severity().map(|s| s.name());
    PyTuple::new(
        py,
        [
            e.time_ms.into_pyobject(py)?.into_any(),
            e.kind.name().into_pyobject(py)?.into_any(),
            severity.into_pyobject(py)?.into_any(),
            data.into_any(),
            e.seq.into_pyobject(py)?.into_any(),
        ],
    )
}

pub fn events_to_py<'py>(py: Python<'py>, events: &[Event]) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    events.iter().map(|e| event_to_py(py, e)).collect()
}
