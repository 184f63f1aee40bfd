//! `_core.simulate_many`: clone the pumps under the GIL, run them in Rust (rayon) with the
//! GIL released, return numpy columns.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rayon::prelude::*;

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
    let r = py
        .detach(|| itb_core::simulate_many(&cores, until_ms, threads))
        .py()?;
    batch_to_py(py, r)
}

/// The projection of each of `pumps` (not changed), GIL released: the columns of
/// `FleetColumns.forecast`. `mode`: `"as_programmed"`, `"refills_on_time"` or
/// `"max_patient_boluses"` (see `itb_core::ProjectionMode`).
#[pyfunction]
#[pyo3(signature = (pumps, horizon_ms, mode, threads=None))]
pub fn project_many<'py>(
    py: Python<'py>,
    pumps: &Bound<'py, PyList>,
    horizon_ms: i64,
    mode: &str,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let mode = match mode {
        "as_programmed" => itb_core::ProjectionMode::AsProgrammed,
        "refills_on_time" => itb_core::ProjectionMode::RefillsOnTime,
        "max_patient_boluses" => itb_core::ProjectionMode::MaxPatientBoluses,
        _ => {
            return Err(crate::errors::to_py(itb_core::ItbError::validation(
                "mode",
                format!("{mode:?}; allowed: as_programmed, refills_on_time, max_patient_boluses"),
            )))
        }
    };
    let mut cores = Vec::with_capacity(pumps.len());
    for item in pumps.iter() {
        let pump = item.cast::<PyPump>()?;
        cores.push(pump.borrow().core().clone());
    }
    let f = py
        .detach(|| itb_core::project_many(&cores, horizon_ms, mode, threads))
        .py()?;
    forecast_to_py(py, f)
}

/// Forecast columns as a dict of int64 numpy columns (`i64::MIN`: none).
fn forecast_to_py(py: Python<'_>, f: itb_core::ForecastColumns) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for (name, v) in [
        ("next_stroke_ms", f.next_stroke_ms),
        ("low_reservoir_ms", f.low_reservoir_ms),
        ("reservoir_empty_ms", f.reservoir_empty_ms),
        ("eri_ms", f.eri_ms),
        ("eos_ms", f.eos_ms),
        ("physically_dry_ms", f.physically_dry_ms),
    ] {
        out.set_item(name, v.into_pyarray(py))?;
    }
    for (alarm, v) in itb_core::Alarm::ALL.iter().zip(f.since_ms) {
        out.set_item(format!("{}_ms", alarm.since_column()), v.into_pyarray(py))?;
    }
    Ok(out)
}

/// A batch result as a dict of numpy columns.
fn batch_to_py(py: Python<'_>, r: itb_core::BatchResult) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    let put = |name: &str, v: Vec<i64>| -> PyResult<()> {
        let arr: Bound<'_, PyArray1<i64>> = v.into_pyarray(py);
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

/// Exact integers of a float column (`value × 10**power`, half-even from the shortest decimal
/// form, as everywhere at the boundary); errors name `column[row]`.
fn scaled_column(
    column: &str,
    values: &[f64],
    power: u32,
    max: i64,
    unit: &str,
) -> itb_core::Result<Vec<i64>> {
    values
        .par_iter()
        .enumerate()
        .map(|(i, &x)| {
            itb_core::units::scaled_from_f64(column, x, power, max, unit)
                .map_err(|e| e.in_field(format!("{column}[{i}]")))
        })
        .collect()
}

/// `_core.FleetColumns`: a fleet given as columns (see `itb.fleet.Fleet`), converted once to
/// exact integers; no pump object exists until a worker builds one.
#[pyclass(name = "FleetColumns", module = "itb._core", frozen)]
pub struct PyFleetColumns {
    models: Vec<itb_core::PumpModel>,
    model: Vec<i64>,
    now_ms: Vec<i64>,
    reservoir_nl: Vec<i64>,
    concentration: Vec<i64>,
    ng_per_day: Vec<i64>,
    programs: Vec<itb_core::Basal>,
    program: Vec<i64>,
    battery_remaining_pc: Vec<i64>,
    implanted_ms: Vec<i64>,
    since_ms: [Vec<i64>; 6],
}

impl PyFleetColumns {
    fn view(&self) -> itb_core::FleetColumns<'_> {
        itb_core::FleetColumns {
            models: &self.models,
            model: &self.model,
            now_ms: &self.now_ms,
            reservoir_nl: &self.reservoir_nl,
            concentration: &self.concentration,
            ng_per_day: &self.ng_per_day,
            programs: &self.programs,
            program: &self.program,
            reading: itb_core::batch::ReadingColumns {
                battery_remaining_pc: &self.battery_remaining_pc,
                implanted_ms: &self.implanted_ms,
                since_ms: [
                    &self.since_ms[0],
                    &self.since_ms[1],
                    &self.since_ms[2],
                    &self.since_ms[3],
                    &self.since_ms[4],
                    &self.since_ms[5],
                ],
            },
        }
    }
}

#[pymethods]
impl PyFleetColumns {
    /// Row i: `models[model[i]]` at `now_ms[i]` with `reservoir_ml[i]` at `concentration[i]`
    /// µg/mL on `programs[program[i]]` (exact program tuples) when `program[i] >= 0`, else a
    /// continuous `ug_per_day[i]`. Floats become exact integers here (half-even from the
    /// shortest decimal form); errors name `column[row]`. Reading columns (each optional):
    /// `battery_mah` (float, NaN = not read), `implanted_ms` and `since_ms` (one int64 column
    /// per alarm of `Alarm::ALL`, `i64::MIN` = none).
    #[new]
    #[pyo3(signature = (models, model, now_ms, reservoir_ml, concentration, ug_per_day, programs, program, battery_mah=None, implanted_ms=None, since_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        models: &Bound<'_, PyList>,
        model: PyReadonlyArray1<'_, i64>,
        now_ms: PyReadonlyArray1<'_, i64>,
        reservoir_ml: PyReadonlyArray1<'_, f64>,
        concentration: PyReadonlyArray1<'_, i64>,
        ug_per_day: PyReadonlyArray1<'_, f64>,
        programs: &Bound<'_, PyList>,
        program: PyReadonlyArray1<'_, i64>,
        battery_mah: Option<PyReadonlyArray1<'_, f64>>,
        implanted_ms: Option<PyReadonlyArray1<'_, i64>>,
        since_ms: Option<[Option<PyReadonlyArray1<'_, i64>>; 6]>,
    ) -> PyResult<Self> {
        let battery_remaining_pc = match &battery_mah {
            None => Vec::new(),
            Some(a) => {
                let values = a.as_slice()?;
                let mut out = Vec::with_capacity(values.len());
                for (i, &x) in values.iter().enumerate() {
                    if x.is_nan() {
                        out.push(itb_core::batch::NO_CHARGE);
                        continue;
                    }
                    let v = itb_core::units::scaled_from_f64(
                        "battery_mah",
                        x,
                        11,
                        i64::MAX / 36,
                        "mAh",
                    )
                    .map_err(|e| e.in_field(format!("battery_mah[{i}]")))
                    .py()?;
                    out.push(v * 36);
                }
                out
            }
        };
        let implanted_ms = match &implanted_ms {
            None => Vec::new(),
            Some(a) => a.as_slice()?.to_vec(),
        };
        let mut since: [Vec<i64>; 6] = Default::default();
        if let Some(cols) = &since_ms {
            for (slot, col) in since.iter_mut().zip(cols.iter()) {
                if let Some(c) = col {
                    *slot = c.as_slice()?.to_vec();
                }
            }
        }
        let programs = programs
            .iter()
            .map(|p| crate::convert::basal_from_py(&p))
            .collect::<PyResult<Vec<_>>>()?;
        let program = program.as_slice()?.to_vec();
        let models = models
            .iter()
            .map(|m| crate::convert::model_from_py(m.cast::<PyDict>()?))
            .collect::<PyResult<Vec<_>>>()?;
        let (model, now_ms, concentration) = (
            model.as_slice()?.to_vec(),
            now_ms.as_slice()?.to_vec(),
            concentration.as_slice()?.to_vec(),
        );
        let (reservoir_ml, ug_per_day) = (reservoir_ml.as_slice()?, ug_per_day.as_slice()?);
        let (reservoir_nl, ng_per_day) = py
            .detach(|| -> itb_core::Result<_> {
                Ok((
                    scaled_column("reservoir_ml", reservoir_ml, 6, i64::MAX, "mL")?,
                    scaled_column(
                        "ug_per_day",
                        ug_per_day,
                        3,
                        itb_core::units::MAX_DOSE_NG_PER_DAY,
                        "µg/day",
                    )?,
                ))
            })
            .py()?;
        Ok(PyFleetColumns {
            models,
            model,
            now_ms,
            reservoir_nl,
            concentration,
            ng_per_day,
            programs,
            program,
            battery_remaining_pc,
            implanted_ms,
            since_ms: since,
        })
    }

    fn __len__(&self) -> usize {
        self.now_ms.len()
    }

    /// Service-date forecast of every row, GIL released: int64 ms columns `next_stroke_ms`,
    /// `low_reservoir_ms`, `reservoir_empty_ms`, `eri_ms`, `eos_ms` (`i64::MIN` = not within
    /// the horizon).
    #[pyo3(signature = (horizon_ms, assume_refills=false, threads=None))]
    fn forecast<'py>(
        &self,
        py: Python<'py>,
        horizon_ms: i64,
        assume_refills: bool,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let f = py
            .detach(|| {
                itb_core::forecast_columns(&self.view(), horizon_ms, assume_refills, threads)
            })
            .py()?;
        forecast_to_py(py, f)
    }

    /// `simulate_many` of every row's pump to `until_ms` (the same columns), GIL released.
    #[pyo3(signature = (until_ms, threads=None))]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        until_ms: i64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let r = py
            .detach(|| itb_core::simulate_columns(&self.view(), until_ms, threads))
            .py()?;
        batch_to_py(py, r)
    }
}
