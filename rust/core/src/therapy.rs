//! Therapy calls on top of delivery: suspend/resume, faults, bridge and priming boluses,
//! and patient-activated (PTM) boluses within clinician limits.

use serde::{Deserialize, Serialize};

use crate::battery::Alarm;
use crate::bolus::BolusKind;
use crate::error::{ItbError, Result};
use crate::events::{Event, EventKind};
use crate::path::FL_PER_NL;
use crate::pump::Pump;
use crate::units::{div_ceil, volume_nl_of_dose, MAX_BOLUS_NG, MS_PER_DAY};

/// Most patient boluses a clinician may allow per rolling 24 h.
pub const MAX_PATIENT_BOLUSES_PER_DAY: i64 = 24;

/// Clinician limits of the patient-activated bolus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientBolusLimits {
    pub dose_ng: i64,
    pub duration_ms: i64,
    /// Minimum time from one granted activation to the next (ms).
    pub lockout_ms: i64,
    /// Most granted activations in any rolling 24 h.
    pub max_per_24h: i64,
}

/// Outcome of a patient activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientBolusOutcome {
    pub granted: bool,
    /// `granted`, or why not: `not_enabled`, `suspended`, `fault`, `reservoir_empty`,
    /// `lockout`, `daily_maximum`, `would_exceed_max_rate`, `end_of_service`, `invalid_dose`
    /// (the dose no longer fits the reservoir after a concentration change).
    pub reason: &'static str,
    pub bolus_id: Option<u64>,
}

/// A planned bridge or priming bolus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BolusPlan {
    pub volume_nl: i64,
    pub duration_ms: i64,
    pub rate_nl_per_day: i64,
}

impl Pump {
    /// Stop delivery (clinician). The accumulator remainder is kept; nothing is made up.
    pub fn suspend(&mut self) -> Result<()> {
        if self.suspended {
            return Err(ItbError::validation("suspend", "the pump is already suspended"));
        }
        self.suspended = true;
        self.pending.push(Event::new(self.now_ms, EventKind::Suspended, &[]));
        Ok(())
    }

    /// Resume delivery after `suspend`.
    pub fn resume(&mut self) -> Result<()> {
        if !self.suspended {
            return Err(ItbError::validation("resume", "the pump is not suspended"));
        }
        self.check_not_eos("resume")?;
        self.suspended = false;
        self.pending.push(Event::new(self.now_ms, EventKind::Resumed, &[]));
        Ok(())
    }

    /// Inject a motor-stall fault: delivery stops until [`Pump::clear_fault`].
    pub fn inject_motor_stall(&mut self) -> Result<()> {
        if self.stalled {
            return Err(ItbError::validation("fault", "a motor stall is already active"));
        }
        self.stalled = true;
        self.pending.push(Event::new(self.now_ms, EventKind::Fault, &[]).with_text("fault", "motor_stall"));
        self.raise(Alarm::MotorStall);
        Ok(())
    }

    /// Clear an injected motor stall; delivery resumes from now.
    pub fn clear_fault(&mut self) -> Result<()> {
        if !self.stalled {
            return Err(ItbError::validation("fault", "no fault is active"));
        }
        self.stalled = false;
        self.clear_alarms(|a| a == Alarm::MotorStall);
        self.pending.push(Event::new(self.now_ms, EventKind::FaultCleared, &[]).with_text("fault", "motor_stall"));
        Ok(())
    }

    /// Replace the catheter dead volume; the whole path is refilled with saline.
    pub fn revise_catheter(&mut self, catheter_nl: i64) -> Result<()> {
        if !(0..=crate::pump::MAX_CATHETER_NL).contains(&catheter_nl) {
            return Err(ItbError::validation(
                "volume_ul",
                format!("{catheter_nl} nL is outside the allowed range 0..={} nL", crate::pump::MAX_CATHETER_NL),
            ));
        }
        // The old path contents are removed from the patient system: count them withdrawn.
        self.withdrawn_fl += self.path.volume_fl();
        self.withdrawn_ag += self.path.mass_ag();
        let fl = (self.model.pump_path_nl + catheter_nl) * FL_PER_NL;
        self.path = crate::path::FluidPath::filled(fl, 0);
        self.filled_fl += fl;
        self.catheter_nl = catheter_nl;
        self.tip_conc = if fl > 0 { 0 } else { self.conc };
        Ok(())
    }

    /// Volume (nL, rounded up) of path fluid ahead of the current drug at the tip side.
    fn old_fluid_ahead_nl(&self) -> Option<i64> {
        let fl = self.path.fl_before_change(self.tip_conc, self.conc)?;
        Some(div_ceil(i128::from(fl), i128::from(FL_PER_NL)) as i64)
    }

    /// Plan the bridge bolus after a concentration increase: deliver the old drug still
    /// in the path at the rate that keeps the dose rate in force now (µg/day at the old
    /// concentration), on top of the basal rate at the new concentration.
    pub fn bridge_bolus_plan(&self) -> Result<BolusPlan> {
        let old = self.tip_conc;
        if old == self.conc || old == 0 {
            return Err(ItbError::validation(
                "bridge",
                "no bridge needed: the path holds no drug of another concentration (use a priming bolus for saline)",
            ));
        }
        if old > self.conc {
            return Err(ItbError::validation(
                "bridge",
                format!(
                    "the path holds stronger drug ({old} µg/mL) than the reservoir ({} µg/mL): a bolus cannot slow it; \
                     lower the program until the new drug reaches the tip",
                    self.conc
                ),
            ));
        }
        let ahead_nl = self.old_fluid_ahead_nl().unwrap_or(0);
        let dose_ng_per_day = self.dose_rate_now();
        if ahead_nl == 0 || dose_ng_per_day == 0 {
            return Err(ItbError::validation("bridge", "no bridge needed: no old drug ahead or a zero dose rate"));
        }
        // Old drug at the old concentration for the prescribed dose rate.
        let old_rate = crate::units::volume_rate_nl_per_day(dose_ng_per_day, old).max(1);
        let duration = div_ceil(i128::from(ahead_nl) * i128::from(MS_PER_DAY), i128::from(old_rate)) as i64;
        let basal = self.basal_volume_nl(self.now_ms, self.now_ms + duration);
        let volume = ahead_nl - basal;
        if volume < 1 {
            return Err(ItbError::validation("bridge", "no bridge needed: the basal rate clears the path in time"));
        }
        let rate = div_ceil(i128::from(volume) * i128::from(MS_PER_DAY), i128::from(duration)) as i64;
        Ok(BolusPlan { volume_nl: volume, duration_ms: duration, rate_nl_per_day: rate })
    }

    /// Start the planned bridge bolus now; returns its id.
    pub fn start_bridge_bolus(&mut self) -> Result<u64> {
        let plan = self.bridge_bolus_plan()?;
        let dose = i64::try_from(i128::from(plan.volume_nl) * i128::from(self.conc) / 1000).unwrap_or(i64::MAX);
        self.add_bolus(plan.volume_nl, dose, plan.duration_ms, None, BolusKind::Bridge)
    }

    /// Plan the priming bolus: push the saline ahead of the drug out of the path at the
    /// fastest rate the model allows on top of the basal program.
    pub fn priming_bolus_plan(&self) -> Result<BolusPlan> {
        if self.tip_conc != 0 {
            return Err(ItbError::validation("priming", "the path is already primed with drug"));
        }
        let ahead_nl = self.old_fluid_ahead_nl().unwrap_or(0);
        if ahead_nl == 0 {
            return Err(ItbError::validation("priming", "the path holds no saline ahead of the drug"));
        }
        let headroom = self.model.max_rate_nl_per_day - self.schedule.max_rate();
        if headroom < 1 {
            return Err(ItbError::programming("priming", "the basal program leaves no rate headroom for priming"));
        }
        let duration = div_ceil(i128::from(ahead_nl) * i128::from(MS_PER_DAY), i128::from(headroom)) as i64;
        let rate = div_ceil(i128::from(ahead_nl) * i128::from(MS_PER_DAY), i128::from(duration)) as i64;
        Ok(BolusPlan { volume_nl: ahead_nl, duration_ms: duration, rate_nl_per_day: rate })
    }

    /// Start the priming bolus now; `drug_at_tip` fires when drug reaches the patient.
    pub fn start_priming_bolus(&mut self) -> Result<u64> {
        let plan = self.priming_bolus_plan()?;
        self.add_bolus(plan.volume_nl, 0, plan.duration_ms, None, BolusKind::Priming)
    }

    /// Dose rate (ng/day) of the basal step in force now.
    fn dose_rate_now(&self) -> i64 {
        match &self.basal {
            crate::program::Basal::Continuous { ng_per_day } => *ng_per_day,
            crate::program::Basal::Flex { period, steps } => {
                let phase = (self.now_ms - period.anchor_ms()).rem_euclid(period.ms());
                steps.iter().rev().find(|s| s.offset_ms <= phase).map(|s| s.ng_per_day).unwrap_or(0)
            }
        }
    }

    /// Basal volume (nL, floor) commanded over `[a, b)`.
    fn basal_volume_nl(&self, a: i64, b: i64) -> i64 {
        let mut t = a;
        let mut total = 0i128;
        while t < b {
            let (rate, next) = self.schedule.rate_at(t);
            let end = next.min(b);
            total += i128::from(rate) * i128::from(end - t);
            t = end;
        }
        (total / i128::from(MS_PER_DAY)) as i64
    }

    /// Set (or with `None`, disable) the clinician limits of patient boluses.
    pub fn set_patient_bolus_limits(&mut self, limits: Option<PatientBolusLimits>) -> Result<()> {
        if let Some(l) = limits {
            let check = |field: &str, v: i64, lo: i64, hi: i64, unit: &str| crate::error::check_range(field, v, lo, hi, unit);
            check("dose_ug", l.dose_ng, 1, MAX_BOLUS_NG, "ng")?;
            check("duration", l.duration_ms, 1, MS_PER_DAY, "ms")?;
            check("lockout", l.lockout_ms, 0, MS_PER_DAY, "ms")?;
            check("max_per_24h", l.max_per_24h, 1, MAX_PATIENT_BOLUSES_PER_DAY, "boluses")?;
            let volume = volume_nl_of_dose(l.dose_ng, self.conc);
            if volume < 1 || volume > self.model.reservoir_nl {
                return Err(ItbError::validation(
                    "dose_ug",
                    format!(
                        "{volume} nL at {} µg/mL is outside 1..={} nL (the reservoir capacity)",
                        self.conc, self.model.reservoir_nl
                    ),
                ));
            }
        }
        self.patient_limits = limits;
        Ok(())
    }

    pub fn patient_bolus_limits(&self) -> Option<PatientBolusLimits> {
        self.patient_limits
    }

    /// Patient activation at `at_ms` (None = now; a later time first advances the pump,
    /// keeping the events for the next advance). Granted only within clinician limits.
    pub fn patient_bolus(&mut self, at_ms: Option<i64>) -> Result<PatientBolusOutcome> {
        if let Some(at) = at_ms {
            let events = self.advance_to(at)?;
            self.pending.splice(0..0, events);
        }
        let now = self.now_ms;
        self.patient_grants.retain(|&t| t > now - MS_PER_DAY);
        let outcome = match self.patient_check(now) {
            Err(reason) => PatientBolusOutcome { granted: false, reason, bolus_id: None },
            Ok(limits) => {
                let volume = volume_nl_of_dose(limits.dose_ng, self.conc);
                match self.add_bolus(volume, limits.dose_ng, limits.duration_ms, None, BolusKind::Patient) {
                    Ok(id) => {
                        self.patient_grants.push(now);
                        PatientBolusOutcome { granted: true, reason: "granted", bolus_id: Some(id) }
                    }
                    Err(ItbError::Programming { .. }) => {
                        PatientBolusOutcome { granted: false, reason: "would_exceed_max_rate", bolus_id: None }
                    }
                    Err(ItbError::Reservoir { .. }) => {
                        PatientBolusOutcome { granted: false, reason: "reservoir_empty", bolus_id: None }
                    }
                    Err(_) => PatientBolusOutcome { granted: false, reason: "invalid_dose", bolus_id: None },
                }
            }
        };
        let kind = if outcome.granted { EventKind::PatientBolusGranted } else { EventKind::PatientBolusDenied };
        let id = outcome.bolus_id.map(|i| i as i64).unwrap_or(0);
        self.pending.push(Event::new(now, kind, &[("bolus_id", id)]).with_text("reason", outcome.reason));
        Ok(outcome)
    }

    /// The limits if an activation at `now` may be granted, else the denial reason.
    fn patient_check(&self, now: i64) -> std::result::Result<PatientBolusLimits, &'static str> {
        let Some(limits) = self.patient_limits else { return Err("not_enabled") };
        if self.eos {
            return Err("end_of_service");
        }
        if self.suspended {
            return Err("suspended");
        }
        if self.stalled {
            return Err("fault");
        }
        if self.empty {
            return Err("reservoir_empty");
        }
        if let Some(&last) = self.patient_grants.last() {
            if now - last < limits.lockout_ms {
                return Err("lockout");
            }
        }
        if self.patient_grants.len() as i64 >= limits.max_per_24h {
            return Err("daily_maximum");
        }
        Ok(limits)
    }
}
