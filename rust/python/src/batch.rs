//! `_core.simulate_many`: clone the pumps under the GIL, run them in Rust (rayon) with the
//! GIL released, return numpy columns.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::IntoPyResult;
use crate::pump::PyPump;

/// Run clones of `pumps` to `until_ms`; returns a dict of numpy arrays, one row per pump
/// (time columns are int64 ms with `i64::MIN` for "did not happen" — numpy's NaT).
#[pyfunction]
#[pyo3(signature = (pumps, until_ms, threads=None))]
pub fn simulate_many<'py>(
    py: Python<'py>,
    pumps: &Bound<'py, PyList>,
    until_ms: i64,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut cores = Vec::with_capacity(pumps.len());
    for item in pumps.iter() {
        let pump = item.cast::<PyPump>()?;
        cores.push(pump.borrow().core().clone());
    }
    let r = py.detach(|| itb_core::simulate_many(&cores, until_ms, threads)).py()?;
    let out = PyDict::new(py);
    let put = |name: &str, v: Vec<i64>| -> PyResult<()> {
        let arr: Bound<'py, PyArray1<i64>> = v.into_pyarray(py);
        out.set_item(name, arr)
    };
    let delivered_ug: Vec<f64> = r.delivered_pg.iter().map(|&pg| pg as f64 / 1e6).collect();
    out.set_item("delivered_ug", delivered_ug.into_pyarray(py))?;
    put("strokes", r.strokes)?;
    put("delivered_nl", r.delivered_nl)?;
    put("reservoir_nl", r.reservoir_nl)?;
    put("battery_remaining_pc", r.battery_remaining_pc)?;
    put("events", r.events)?;
    put("first_low_reservoir_ms", r.first_low_reservoir_ms)?;
    put("first_reservoir_empty_ms", r.first_reservoir_empty_ms)?;
    put("eri_ms", r.eri_ms)?;
    put("eos_ms", r.eos_ms)?;
    put("eri_forecast_ms", r.eri_forecast_ms)?;
    put("eos_forecast_ms", r.eos_forecast_ms)?;
    Ok(out)
}
