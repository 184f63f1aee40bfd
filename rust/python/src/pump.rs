//! `_core.Pump`: a thin wrapper over `itb_core::Pump` in exact integer units.

use itb_core::{PatientBolusLimits, Pump, PumpConfig, RefillTolerance};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyTuple};

use crate::convert::{basal_to_py, events_to_py, model_from_py, model_to_py};
use crate::errors::IntoPyResult;
use crate::events::PyEventLog;
use crate::fast;
use crate::objects::{basal_of, PyModel, PyProgram};

/// Spans longer than this (ms) are advanced with the GIL released.
const DETACH_SPAN_MS: i64 = 86_400_000;

/// `(occlusion pass ppm, (leak kind, position_nl), tip_migrated, battery_fault, motor_stall)`.
type ActiveFaults = (Option<i64>, Option<(&'static str, i64)>, bool, bool, bool);

#[pyclass(name = "Pump", module = "itb._core")]
#[derive(Clone)]
pub struct PyPump {
    inner: Pump,
}

impl PyPump {
    pub fn core(&self) -> &Pump {
        &self.inner
    }

    /// `bolus_many` of equal-length columns; errors name the entry (`doses_ug[3]`).
    fn bolus_many_slices(
        &mut self,
        doses_ug: &[f64],
        durations_ms: &[i64],
        starts_ms: &[i64],
    ) -> PyResult<Vec<u64>> {
        let n = doses_ug.len();
        if durations_ms.len() != n || starts_ms.len() != n {
            let msg = format!(
                "doses_ug, durations and starts must have the same length (got {n}, {}, {})",
                durations_ms.len(),
                starts_ms.len()
            );
            return Err(crate::errors::to_py(itb_core::ItbError::validation(
                "durations",
                msg,
            )));
        }
        let mut items = Vec::with_capacity(n);
        for (i, ((&dose, &duration), &start)) in
            doses_ug.iter().zip(durations_ms).zip(starts_ms).enumerate()
        {
            let ng = itb_core::units::scaled_from_f64(
                "doses_ug",
                dose,
                3,
                itb_core::units::MAX_BOLUS_NG,
                "µg",
            )
            .map_err(|e| e.in_field(format!("doses_ug[{i}]")))
            .py()?;
            items.push((ng, duration, start));
        }
        self.inner.bolus_many(&items).py()
    }

    /// Advance the core, with the GIL released over long spans.
    fn advance_core(&mut self, py: Python<'_>, until_ms: i64) -> PyResult<Vec<itb_core::Event>> {
        if until_ms.saturating_sub(self.inner.now_ms()) > DETACH_SPAN_MS {
            let inner = &mut self.inner;
            py.detach(|| inner.advance_to(until_ms)).py()
        } else {
            self.inner.advance_to(until_ms).py()
        }
    }

    /// Advance the core recording every stroke time, with the GIL released.
    fn advance_recording_core(
        &mut self,
        py: Python<'_>,
        until_ms: i64,
    ) -> PyResult<(Vec<itb_core::Event>, Vec<i64>)> {
        let inner = &mut self.inner;
        py.detach(|| {
            let mut times = Vec::new();
            inner
                .advance_to_recording(until_ms, &mut times)
                .map(|e| (e, times))
        })
        .py()
    }
}

#[pymethods]
impl PyPump {
    #[new]
    #[pyo3(signature = (*, model, now_ms, reservoir_nl, concentration, program, catheter_nl=0, stroke_error_ppm=0, path_primed=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        model: &Bound<'_, PyDict>,
        now_ms: i64,
        reservoir_nl: i64,
        concentration: i64,
        program: &Bound<'_, PyAny>,
        catheter_nl: i64,
        stroke_error_ppm: i64,
        path_primed: bool,
    ) -> PyResult<Self> {
        let config = PumpConfig {
            model: model_from_py(model)?,
            now_ms,
            reservoir_nl,
            concentration,
            basal: basal_of(program)?,
            catheter_nl,
            stroke_error_ppm,
            path_primed,
        };
        Ok(PyPump {
            inner: Pump::new(config).py()?,
        })
    }

    /// `itb.Pump(...)` in one call: clinical arguments (naive `datetime` or int ms, mL/µL
    /// floats, µg/mL) converted as `itb.Pump` documents (`itb._time`/`itb._units` rules, errors
    /// naming the Python parameter), a validated `_core.Model` and a `_core.Program`.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    fn build(
        model: &Bound<'_, PyModel>,
        now: &Bound<'_, PyAny>,
        reservoir_ml: &Bound<'_, PyAny>,
        concentration_ug_per_ml: &Bound<'_, PyAny>,
        program: &Bound<'_, PyProgram>,
        catheter_volume_ul: &Bound<'_, PyAny>,
        stroke_error_ppm: &Bound<'_, PyAny>,
        path_primed: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let now_ms = fast::time_ms(now, "now")?;
        let reservoir_nl = fill_nl(reservoir_ml, "reservoir_ml", &model.get().inner)?;
        let concentration = fast::concentration(concentration_ug_per_ml)?;
        let catheter_nl = fast::scaled(catheter_volume_ul, 3, "catheter_volume_ul", "µL")?;
        let stroke_error_ppm = fast::int(stroke_error_ppm, "stroke_error_ppm")?;
        let config = PumpConfig {
            model: model.get().inner.clone(),
            now_ms,
            reservoir_nl,
            concentration,
            basal: program.get().inner.clone(),
            catheter_nl,
            stroke_error_ppm,
            path_primed: fast::flag(path_primed, "path_primed")?,
        };
        Ok(PyPump {
            inner: Pump::new(config).py()?,
        })
    }

    /// `itb.Pump.from_reading` in one call: the arguments of `build`, then what the
    /// interrogation shows — battery charge remaining (pC or None), the alarms sounding
    /// `[(name, since_ms), …]` and the implant date (ms or None).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (model, now, reservoir_ml, concentration_ug_per_ml, program, catheter_volume_ul, stroke_error_ppm, path_primed, battery_remaining_pc, alarms, implanted_ms))]
    fn build_read(
        model: &Bound<'_, PyModel>,
        now: &Bound<'_, PyAny>,
        reservoir_ml: &Bound<'_, PyAny>,
        concentration_ug_per_ml: &Bound<'_, PyAny>,
        program: &Bound<'_, PyProgram>,
        catheter_volume_ul: &Bound<'_, PyAny>,
        stroke_error_ppm: &Bound<'_, PyAny>,
        path_primed: &Bound<'_, PyAny>,
        battery_remaining_pc: Option<i64>,
        alarms: Vec<(String, i64)>,
        implanted_ms: Option<i64>,
    ) -> PyResult<Self> {
        let now_ms = fast::time_ms(now, "now")?;
        let config = PumpConfig {
            model: model.get().inner.clone(),
            now_ms,
            reservoir_nl: fill_nl(reservoir_ml, "reservoir_ml", &model.get().inner)?,
            concentration: fast::concentration(concentration_ug_per_ml)?,
            basal: program.get().inner.clone(),
            catheter_nl: fast::scaled(catheter_volume_ul, 3, "catheter_volume_ul", "µL")?,
            stroke_error_ppm: fast::int(stroke_error_ppm, "stroke_error_ppm")?,
            path_primed: path_primed.is_truthy()?,
        };
        let mut listed = Vec::with_capacity(alarms.len());
        for (i, (name, since)) in alarms.into_iter().enumerate() {
            let alarm = itb_core::alarm_from_name(&name).ok_or_else(|| {
                crate::errors::to_py(itb_core::ItbError::validation(
                    format!("active_alarms[{i}]"),
                    format!(
                        "unknown alarm {name:?}; allowed: eos, reservoir_empty, motor_stall, battery_fault, eri, low_reservoir"
                    ),
                ))
            })?;
            listed.push((alarm, since));
        }
        let reading = itb_core::Reading {
            battery_remaining_pc,
            alarms: listed,
            implanted_ms,
        };
        Ok(PyPump {
            inner: Pump::from_reading(config, &reading).py()?,
        })
    }

    /// `(next_stroke_ms, low_reservoir_ms, reservoir_empty_ms, drug_at_tip_ms, eri_ms, eos_ms,
    /// physically_dry_ms)`
    /// assuming every allotted patient bolus is taken (see `itb_core::Pump::project_max_patient_boluses`).
    #[allow(clippy::type_complexity)]
    fn project_max_patient_boluses(
        &self,
        py: Python<'_>,
        horizon_ms: i64,
    ) -> PyResult<(
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    )> {
        let inner = &self.inner;
        let p = py
            .detach(|| inner.project_max_patient_boluses(horizon_ms))
            .py()?;
        Ok((
            p.next_stroke_ms,
            p.low_reservoir_ms,
            p.reservoir_empty_ms,
            p.drug_at_tip_ms,
            p.eri_ms,
            p.eos_ms,
            p.physically_dry_ms,
        ))
    }

    /// A program as a `_core.Program` or an exact tuple.
    fn set_program(&mut self, program: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_program(basal_of(program)?).py()
    }

    #[pyo3(signature = (dose_ng, duration_ms, start_ms=None))]
    fn bolus(&mut self, dose_ng: i64, duration_ms: i64, start_ms: Option<i64>) -> PyResult<u64> {
        self.inner.bolus(dose_ng, duration_ms, start_ms).py()
    }

    /// `itb.Pump.bolus` in one call: `dose_ug` (µg), `duration` (timedelta or int ms), `start`
    /// (None, naive datetime or int ms), converted by the `itb._time`/`itb._units` rules.
    #[pyo3(signature = (dose_ug, duration, start=None))]
    fn bolus_ug(
        &mut self,
        dose_ug: &Bound<'_, PyAny>,
        duration: &Bound<'_, PyAny>,
        start: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let dose_ng = fast::scaled(dose_ug, 3, "dose_ug", "µg")?;
        let duration_ms = fast::duration_ms(duration, "duration", false)?;
        let start_ms = match start {
            Some(s) if !s.is_none() => Some(fast::time_ms(s, "start")?),
            _ => None,
        };
        self.inner.bolus(dose_ng, duration_ms, start_ms).py()
    }

    /// Many timed boluses at once, all or nothing: doses in µg (floats, converted like
    /// `scaled(x, 3)`), durations and starts in ms. Returns the ids.
    fn bolus_many(
        &mut self,
        doses_ug: Vec<f64>,
        durations_ms: Vec<i64>,
        starts_ms: Vec<i64>,
    ) -> PyResult<Vec<u64>> {
        self.bolus_many_slices(&doses_ug, &durations_ms, &starts_ms)
    }

    /// As `bolus_many`, from numpy columns (float64 µg, int64 ms, int64 ms) read in place.
    fn bolus_many_arrays(
        &mut self,
        doses_ug: PyReadonlyArray1<'_, f64>,
        durations_ms: PyReadonlyArray1<'_, i64>,
        starts_ms: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<Vec<u64>> {
        let (d, k, s) = (
            doses_ug.as_array(),
            durations_ms.as_array(),
            starts_ms.as_array(),
        );
        match (d.as_slice(), k.as_slice(), s.as_slice()) {
            (Some(d), Some(k), Some(s)) => self.bolus_many_slices(d, k, s),
            _ => self.bolus_many_slices(&d.to_vec(), &k.to_vec(), &s.to_vec()),
        }
    }

    fn cancel_bolus(&mut self, bolus_id: i64) -> PyResult<()> {
        let id = u64::try_from(bolus_id).map_err(|_| {
            itb_core::ItbError::validation(
                "bolus_id",
                format!("no scheduled or running bolus has id {bolus_id}"),
            )
        });
        id.and_then(|id| self.inner.cancel_bolus(id)).py()
    }

    /// Returns `(expected_nl, aspirated_nl, flagged, reason | None)`; a discrepancy beyond
    /// max(`tolerance_nl`, `tolerance_ppm` × expected) is flagged.
    /// `pocket_nl` of the added volume goes into the pocket (a pocket fill).
    #[pyo3(signature = (added_nl, concentration, aspirated_nl=None, tolerance_nl=1_000_000, tolerance_ppm=200_000, pocket_nl=0))]
    fn refill(
        &mut self,
        added_nl: i64,
        concentration: i64,
        aspirated_nl: Option<i64>,
        tolerance_nl: i64,
        tolerance_ppm: i64,
        pocket_nl: i64,
    ) -> PyResult<(i64, i64, bool, Option<&'static str>)> {
        let tolerance = RefillTolerance {
            abs_nl: tolerance_nl,
            ppm: tolerance_ppm,
        };
        let r = self
            .inner
            .refill_with_pocket_fill(added_nl, concentration, aspirated_nl, tolerance, pocket_nl)
            .py()?;
        Ok((r.expected_nl, r.aspirated_nl, r.flagged, r.reason))
    }

    /// Events as `(time_ms, kind, severity, data, seq)` tuples.
    fn advance_to<'py>(
        &mut self,
        py: Python<'py>,
        until_ms: i64,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let events = self.advance_core(py, until_ms)?;
        events_to_py(py, &events)
    }

    /// Like `advance_to`, returning the events as an `EventLog` (no Python object per event).
    fn advance_to_log(&mut self, py: Python<'_>, until_ms: i64) -> PyResult<PyEventLog> {
        Ok(PyEventLog::new(self.advance_core(py, until_ms)?))
    }

    /// Like `advance_to`, also returning every stroke time (int64 ms numpy array).
    #[allow(clippy::type_complexity)]
    fn advance_to_recording<'py>(
        &mut self,
        py: Python<'py>,
        until_ms: i64,
    ) -> PyResult<(Vec<Bound<'py, PyTuple>>, Bound<'py, PyArray1<i64>>)> {
        let (events, times) = self.advance_recording_core(py, until_ms)?;
        Ok((events_to_py(py, &events)?, times.into_pyarray(py)))
    }

    /// Like `advance_to_recording`, the events as an `EventLog`.
    fn advance_to_recording_log<'py>(
        &mut self,
        py: Python<'py>,
        until_ms: i64,
    ) -> PyResult<(PyEventLog, Bound<'py, PyArray1<i64>>)> {
        let (events, times) = self.advance_recording_core(py, until_ms)?;
        Ok((PyEventLog::new(events), times.into_pyarray(py)))
    }

    /// `(next_stroke_ms, low_reservoir_ms, reservoir_empty_ms, drug_at_tip_ms, eri_ms, eos_ms,
    /// physically_dry_ms)`,
    /// each `None` if not within the horizon.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (horizon_ms, assume_refills=false))]
    fn project(
        &self,
        horizon_ms: i64,
        assume_refills: bool,
    ) -> PyResult<(
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    )> {
        let p = self.inner.project_with(horizon_ms, assume_refills).py()?;
        Ok((
            p.next_stroke_ms,
            p.low_reservoir_ms,
            p.reservoir_empty_ms,
            p.drug_at_tip_ms,
            p.eri_ms,
            p.eos_ms,
            p.physically_dry_ms,
        ))
    }

    fn telemetry_session(&mut self) -> PyResult<()> {
        self.inner.telemetry_session().py()
    }
    #[getter]
    fn battery_used_pc(&self) -> i64 {
        self.inner.battery_used_pc()
    }
    #[getter]
    fn battery_remaining_pc(&self) -> Option<i64> {
        self.inner.battery_remaining_pc()
    }
    #[getter]
    fn eri(&self) -> bool {
        self.inner.is_eri()
    }
    #[getter]
    fn eos(&self) -> bool {
        self.inner.is_eos()
    }
    /// Alarms sounding now, highest priority first: `[(name, severity, raised_ms), …]`.
    #[getter]
    fn active_alarms(&self) -> Vec<(&'static str, &'static str, i64)> {
        self.inner
            .active_alarms()
            .iter()
            .map(|a| (a.alarm.name(), a.alarm.severity().name(), a.raised_ms))
            .collect()
    }

    fn suspend(&mut self) -> PyResult<()> {
        self.inner.suspend().py()
    }
    fn resume(&mut self) -> PyResult<()> {
        self.inner.resume().py()
    }
    fn inject_motor_stall(&mut self) -> PyResult<()> {
        self.inner.inject_motor_stall().py()
    }
    fn clear_fault(&mut self) -> PyResult<()> {
        self.inner.clear_fault().py()
    }
    fn revise_catheter(&mut self, catheter_nl: i64) -> PyResult<()> {
        self.inner.revise_catheter(catheter_nl).py()
    }

    fn replace_fluid_path(&mut self, catheter_nl: i64) -> PyResult<()> {
        self.inner.replace_fluid_path(catheter_nl).py()
    }

    fn inject_occlusion(&mut self, pass_ppm: i64) -> PyResult<()> {
        self.inner.inject_occlusion(pass_ppm).py()
    }
    fn clear_occlusion(&mut self) -> PyResult<()> {
        self.inner.clear_occlusion().py()
    }
    fn inject_leak(&mut self, position_nl: i64, disconnection: bool) -> PyResult<()> {
        self.inner.inject_leak(position_nl, disconnection).py()
    }
    fn clear_leak(&mut self) -> PyResult<()> {
        self.inner.clear_leak().py()
    }
    fn inject_tip_migration(&mut self) -> PyResult<()> {
        self.inner.inject_tip_migration().py()
    }
    fn clear_tip_migration(&mut self) -> PyResult<()> {
        self.inner.clear_tip_migration().py()
    }
    fn inject_battery_fault(&mut self) -> PyResult<()> {
        self.inner.inject_battery_fault().py()
    }
    fn clear_battery_fault(&mut self) -> PyResult<()> {
        self.inner.clear_battery_fault().py()
    }
    /// Active faults: `(occlusion pass ppm | None, (leak kind, position_nl) | None,
    /// tip_migrated, battery_fault, motor_stall)`.
    #[getter]
    fn active_faults(&self) -> ActiveFaults {
        let f = self.inner.faults();
        (
            f.occlusion_pass_ppm,
            f.leak.as_ref().map(|l| (l.kind.name(), l.position_nl)),
            f.tip_migrated,
            f.battery_fault,
            self.inner.is_stalled(),
        )
    }
    #[getter]
    fn tissue_nl(&self) -> i64 {
        self.inner.tissue_nl()
    }
    #[getter]
    fn tissue_pg(&self) -> i128 {
        self.inner.tissue_pg()
    }
    #[getter]
    fn held_back_nl(&self) -> i128 {
        self.inner.held_back_nl()
    }
    #[getter]
    fn dry_nl(&self) -> i128 {
        self.inner.dry_nl()
    }
    #[getter]
    fn physically_pumped_nl(&self) -> i128 {
        self.inner.physically_pumped_nl()
    }
    #[getter]
    fn physically_pumped_pg(&self) -> i128 {
        self.inner.physically_pumped_pg()
    }
    /// `(volume_nl, duration_ms, rate_nl_per_day)`.
    fn bridge_bolus_plan(&self) -> PyResult<(i64, i64, i64)> {
        let p = self.inner.bridge_bolus_plan().py()?;
        Ok((p.volume_nl, p.duration_ms, p.rate_nl_per_day))
    }
    fn start_bridge_bolus(&mut self) -> PyResult<u64> {
        self.inner.start_bridge_bolus().py()
    }
    /// `(volume_nl, duration_ms, rate_nl_per_day)`.
    fn priming_bolus_plan(&self) -> PyResult<(i64, i64, i64)> {
        let p = self.inner.priming_bolus_plan().py()?;
        Ok((p.volume_nl, p.duration_ms, p.rate_nl_per_day))
    }
    fn start_priming_bolus(&mut self) -> PyResult<u64> {
        self.inner.start_priming_bolus().py()
    }
    /// Limits as `(dose_ng, duration_ms, lockout_ms, max_per_24h)`, or None to disable.
    #[pyo3(signature = (limits=None))]
    fn set_patient_bolus_limits(&mut self, limits: Option<(i64, i64, i64, i64)>) -> PyResult<()> {
        let limits =
            limits.map(
                |(dose_ng, duration_ms, lockout_ms, max_per_24h)| PatientBolusLimits {
                    dose_ng,
                    duration_ms,
                    lockout_ms,
                    max_per_24h,
                },
            );
        self.inner.set_patient_bolus_limits(limits).py()
    }
    #[getter]
    fn patient_bolus_limits(&self) -> Option<(i64, i64, i64, i64)> {
        self.inner
            .patient_bolus_limits()
            .map(|l| (l.dose_ng, l.duration_ms, l.lockout_ms, l.max_per_24h))
    }
    /// Returns `(granted, reason, bolus_id | None)`.
    #[pyo3(signature = (at_ms=None))]
    fn patient_bolus(&mut self, at_ms: Option<i64>) -> PyResult<(bool, &'static str, Option<u64>)> {
        let o = self.inner.patient_bolus(at_ms).py()?;
        Ok((o.granted, o.reason, o.bolus_id))
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.inner.snapshot().py()?))
    }

    #[staticmethod]
    fn restore(data: &[u8]) -> PyResult<Self> {
        Ok(PyPump {
            inner: Pump::restore(data).py()?,
        })
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    /// Sequence number the next returned event will carry (1 for a new pump).
    #[getter]
    fn next_event_seq(&self) -> u64 {
        self.inner.next_event_seq()
    }

    fn check_invariants(&self) -> PyResult<()> {
        self.inner.check_invariants().py()
    }

    /// Scheduled or running boluses, by id, as
    /// `(id, start_ms, end_ms, volume_nl, dose_pg, requested_ng, rate_nl_per_day, duration_ms, kind)`.
    #[getter]
    #[allow(clippy::type_complexity)]
    fn boluses(&self) -> Vec<(u64, i64, i64, i64, i64, i64, i64, i64, &'static str)> {
        let mut out: Vec<_> = self
            .inner
            .boluses()
            .iter()
            .map(|b| {
                (
                    b.id,
                    b.start_ms,
                    b.end_ms,
                    b.volume_nl,
                    b.dose_pg,
                    b.requested_ng,
                    b.rate_nl_per_day,
                    b.duration_ms,
                    b.kind.name(),
                )
            })
            .collect();
        out.sort_unstable_by_key(|b| b.0);
        out
    }
    #[getter]
    fn program<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        basal_to_py(py, self.inner.basal())
    }
    #[getter]
    fn model<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        model_to_py(py, self.inner.model())
    }
    /// Volume rate (nL/day) commanded now: basal step in force plus running boluses; 0 while
    /// not delivering.
    #[getter]
    fn commanded_rate_nl_per_day(&self) -> i64 {
        self.inner.commanded_rate_nl_per_day()
    }
    /// Dose rate (ng/day) the basal program prescribes now (boluses not included).
    #[getter]
    fn prescribed_ng_per_day(&self) -> i64 {
        self.inner.prescribed_ng_per_day()
    }
    /// Not suspended, stalled, empty or at end of service.
    #[getter]
    fn delivering(&self) -> bool {
        self.inner.is_delivering()
    }
    /// Current basal volume-rate schedule: `(period_ms, anchor_ms, [(offset_ms, nl_per_day), …])`.
    #[getter]
    fn schedule(&self) -> (i64, i64, Vec<(i64, i64)>) {
        let s = self.inner.schedule();
        (
            s.period_ms,
            s.anchor_ms,
            s.offsets
                .iter()
                .copied()
                .zip(s.rates.iter().copied())
                .collect(),
        )
    }
    #[getter]
    fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
    #[getter]
    fn concentration(&self) -> u32 {
        self.inner.concentration()
    }
    #[getter]
    fn strokes(&self) -> i64 {
        self.inner.strokes()
    }
    #[getter]
    fn reservoir_nl(&self) -> i64 {
        self.inner.reservoir_nl()
    }
    #[getter]
    fn pumped_nl(&self) -> i64 {
        self.inner.pumped_nl()
    }
    #[getter]
    fn stroke_error_ppm(&self) -> i64 {
        self.inner.stroke_error_ppm()
    }
    #[getter]
    fn true_reservoir_fl(&self) -> i64 {
        self.inner.true_reservoir_fl()
    }
    #[getter]
    fn true_reservoir_nl(&self) -> i64 {
        self.inner.true_reservoir_nl()
    }
    #[getter]
    fn path_fl(&self) -> i64 {
        self.inner.path_fl()
    }
    #[getter]
    fn path_ag(&self) -> i128 {
        self.inner.path_ag()
    }
    /// Path parcels, tip first: `[(fL, µg/mL), …]`.
    #[getter]
    fn path_parcels(&self) -> Vec<(i64, u32)> {
        self.inner.path_parcels()
    }
    #[getter]
    fn delivered_fl(&self) -> i64 {
        self.inner.delivered_fl()
    }
    #[getter]
    fn delivered_ag(&self) -> i128 {
        self.inner.delivered_ag()
    }
    #[getter]
    fn filled_fl(&self) -> i64 {
        self.inner.filled_fl()
    }
    #[getter]
    fn filled_ag(&self) -> i128 {
        self.inner.filled_ag()
    }
    #[getter]
    fn withdrawn_fl(&self) -> i64 {
        self.inner.withdrawn_fl()
    }
    #[getter]
    fn withdrawn_ag(&self) -> i128 {
        self.inner.withdrawn_ag()
    }
    #[getter]
    fn tip_concentration(&self) -> u32 {
        self.inner.tip_concentration()
    }
    #[getter]
    fn suspended(&self) -> bool {
        self.inner.is_suspended()
    }
    #[getter]
    fn stalled(&self) -> bool {
        self.inner.is_stalled()
    }
    #[getter]
    fn path_nl(&self) -> i64 {
        self.inner.path_nl()
    }
    #[getter]
    fn path_pg(&self) -> i128 {
        self.inner.path_pg()
    }
    #[getter]
    fn catheter_nl(&self) -> i64 {
        self.inner.catheter_nl()
    }
    #[getter]
    fn delivered_nl(&self) -> i64 {
        self.inner.delivered_nl()
    }
    #[getter]
    fn delivered_pg(&self) -> i128 {
        self.inner.delivered_pg()
    }
    #[getter]
    fn filled_nl(&self) -> i64 {
        self.inner.filled_nl()
    }
    #[getter]
    fn filled_pg(&self) -> i128 {
        self.inner.filled_pg()
    }
    #[getter]
    fn withdrawn_nl(&self) -> i64 {
        self.inner.withdrawn_nl()
    }
    #[getter]
    fn withdrawn_pg(&self) -> i128 {
        self.inner.withdrawn_pg()
    }
    #[getter]
    fn accumulator(&self) -> i128 {
        self.inner.accumulator()
    }
    #[getter]
    fn empty(&self) -> bool {
        self.inner.is_empty()
    }
    #[getter]
    fn low_alarm_armed(&self) -> bool {
        self.inner.low_alarm_armed()
    }
}

/// A fill volume (mL) as exact nL; a number too large even to convert (`1e308`) is refused as
/// overfilling `model`'s reservoir, with the allowed range, like any other overfill.
fn fill_nl(
    value: &Bound<'_, PyAny>,
    field: &str,
    model: &itb_core::model::PumpModel,
) -> PyResult<i64> {
    match fast::scaled(value, 6, field, "mL") {
        Ok(nl) => Ok(nl),
        // only a number the converters read (an int or float), never another type's __float__
        Err(err) if !(value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>()) => {
            Err(err)
        }
        Err(err) => match value.extract::<f64>() {
            Ok(x) if x.is_finite() && x > model.reservoir_nl as f64 / 1e6 => {
                let shown = format!("{} mL", itb_core::units::compact(x));
                Err::<i64, _>(itb_core::pump::overfill(field, &shown, model.reservoir_nl)).py()
            }
            _ => Err(err),
        },
    }
}
