//! Therapy calls on top of delivery: suspend/resume, faults, bridge and priming boluses,
//! and patient-activated (PTM) boluses within clinician limits.

use crate::battery::Alarm;
use crate::delivery::bolus::BolusKind;
use crate::delivery::path::{FL_PER_NL, MAX_CATHETER_NL};
use crate::delivery::peak_rate;
use crate::error::{ItbError, Result};
use crate::events::{Event, EventKind};
use crate::pump::Pump;
use crate::units::{div_ceil, volume_nl_of_dose, MS_PER_DAY};

pub use crate::pump::patient::{PatientBolusLimits, MAX_PATIENT_BOLUSES_PER_DAY};

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

impl BolusPlan {
    /// `volume_nl >= 1` over `duration_ms >= 1` at `ceil(V·D/T)` nL/day.
    fn new(volume_nl: i64, duration_ms: i64) -> Self {
        let rate = div_ceil(
            i128::from(volume_nl) * i128::from(MS_PER_DAY),
            i128::from(duration_ms),
        ) as i64;
        BolusPlan {
            volume_nl,
            duration_ms,
            rate_nl_per_day: rate,
        }
    }
}

/// Most constant-rate spans a plan walks before giving up (≈ 200 years of a 13-step day).
const MAX_PLAN_SPANS: usize = 1_000_000;

/// Smallest `T >= 1` (ms after `from`) at which `Σ slope over [from, from + T) + extra·T`
/// reaches `target`; `slope_at(t)` gives the increment per ms in force at `t` and the next
/// time it may change. None if the pump clock's range or [`MAX_PLAN_SPANS`] runs out first.
fn time_to_reach(
    from: i64,
    target: i128,
    extra: i128,
    mut slope_at: impl FnMut(i64) -> (i128, i64),
) -> Option<i64> {
    if target <= 0 {
        return Some(1);
    }
    let mut t = from;
    let mut reached = 0i128;
    for _ in 0..MAX_PLAN_SPANS {
        let (slope, next) = slope_at(t);
        let end = next.min(crate::units::MAX_TIME_MS);
        let rate = slope + extra;
        if rate > 0 && reached + rate * i128::from(end - t) >= target {
            let dt = div_ceil(target - reached, rate) as i64;
            return Some((t + dt - from).max(1));
        }
        reached += rate * i128::from(end - t);
        t = end;
        if t >= crate::units::MAX_TIME_MS {
            return None;
        }
    }
    None
}

impl Pump {
    /// Stop delivery (clinician). The accumulator remainder is kept; nothing is made up.
    pub fn suspend(&mut self) -> Result<()> {
        if self.suspended {
            return Err(ItbError::validation(
                "suspend",
                "the pump is already suspended",
            ));
        }
        self.suspended = true;
        self.pending
            .push(Event::new(self.now_ms, EventKind::Suspended, &[]));
        Ok(())
    }

    /// Resume delivery after `suspend`.
    pub fn resume(&mut self) -> Result<()> {
        if !self.suspended {
            return Err(ItbError::validation("resume", "the pump is not suspended"));
        }
        self.check_not_eos("resume")?;
        self.suspended = false;
        self.pending
            .push(Event::new(self.now_ms, EventKind::Resumed, &[]));
        Ok(())
    }

    /// Inject a motor-stall fault: delivery stops until [`Pump::clear_fault`].
    pub fn inject_motor_stall(&mut self) -> Result<()> {
        if self.stalled {
            return Err(ItbError::validation(
                "inject_motor_stall",
                "a motor stall is already active",
            ));
        }
        self.stalled = true;
        self.pending
            .push(Event::new(self.now_ms, EventKind::Fault, &[]).with_text("fault", "motor_stall"));
        self.raise(Alarm::MotorStall);
        Ok(())
    }

    /// Clear an injected motor stall; delivery resumes from now.
    pub fn clear_fault(&mut self) -> Result<()> {
        if !self.stalled {
            return Err(ItbError::validation("clear_fault", "no fault is active"));
        }
        self.stalled = false;
        self.clear_alarms(|a| a == Alarm::MotorStall);
        self.pending.push(
            Event::new(self.now_ms, EventKind::FaultCleared, &[]).with_text("fault", "motor_stall"),
        );
        Ok(())
    }

    /// A catheter revision: replace **only the catheter** by one of `catheter_nl` dead
    /// volume. The old catheter's contents (the `catheter_nl()` nearest the tip) are removed
    /// from the patient system (counted withdrawn); the pump's own tubing keeps its fluid
    /// (drug, on a pump that has run); the new catheter holds saline, which
    /// [`Pump::priming_bolus_plan`] then pushes out. Stamps `path_replaced` with
    /// `part = "catheter"`. A new catheter clears the catheter faults (occlusion, leak or
    /// disconnection, tip migration; each stamps `fault_cleared`). See
    /// [`Pump::replace_fluid_path`] for a whole new path.
    pub fn revise_catheter(&mut self, catheter_nl: i64) -> Result<()> {
        self.check_path_change("volume_ul", catheter_nl)?;
        let old_fl = self.line.catheter_nl * FL_PER_NL;
        let new_fl = catheter_nl * FL_PER_NL;
        // The removed catheter's contents (with a stagnant segment beyond a leak), before
        // changing anything (no partial update).
        let mut probe = self.line.fluid.clone();
        if let Some(leak) = &self.faults.leak {
            probe.join_front(leak.downstream.clone());
        }
        let (removed_fl, removed_ag) = probe.replace_front(old_fl, new_fl);
        self.exchange_ledgers("volume_ul", removed_fl, removed_ag, new_fl)?;
        self.clear_catheter_faults();
        self.line.replace_catheter(catheter_nl, self.reservoir.conc);
        self.stamp_path_replaced("catheter", removed_fl, removed_ag, new_fl);
        Ok(())
    }

    /// A new implant (or a pump replacement with a new catheter): replace **the whole fluid
    /// path**, the pump tubing and a catheter of `catheter_nl`, which then hold only saline.
    /// The old path's contents are removed (counted withdrawn). Stamps `path_replaced` with
    /// `part = "tubing_and_catheter"`.
    pub fn replace_fluid_path(&mut self, catheter_nl: i64) -> Result<()> {
        self.check_path_change("catheter_volume_ul", catheter_nl)?;
        let fl = (self.model.pump_path_nl + catheter_nl) * FL_PER_NL;
        let (removed_fl, removed_ag) = (self.path_fl(), self.path_ag());
        self.exchange_ledgers("catheter_volume_ul", removed_fl, removed_ag, fl)?;
        self.clear_catheter_faults();
        self.line.replace_all(catheter_nl, fl, self.reservoir.conc);
        self.stamp_path_replaced("tubing_and_catheter", removed_fl, removed_ag, fl);
        Ok(())
    }

    fn check_path_change(&self, field: &str, catheter_nl: i64) -> Result<()> {
        if !(0..=MAX_CATHETER_NL).contains(&catheter_nl) {
            return Err(ItbError::validation(
                field,
                format!(
                    "{} µL is outside the allowed range 0 to {} µL",
                    fmt_ul(catheter_nl),
                    fmt_ul(MAX_CATHETER_NL)
                ),
            ));
        }
        Ok(())
    }

    /// Count the removed path fluid withdrawn and the new saline filled; refuses rather than
    /// overflow the lifetime ledgers (fL, i64; about 9.2e6 L).
    fn exchange_ledgers(
        &mut self,
        field: &str,
        removed_fl: i64,
        removed_ag: i128,
        new_fl: i64,
    ) -> Result<()> {
        self.reservoir
            .exchange_path(removed_fl, removed_ag, new_fl)
            .ok_or_else(|| {
                ItbError::validation(
                    field,
                    "the pump's lifetime fill ledger would pass its range (about 9.2e6 L in total)",
                )
            })
    }

    fn stamp_path_replaced(
        &mut self,
        part: &'static str,
        removed_fl: i64,
        removed_ag: i128,
        new_fl: i64,
    ) {
        let removed_pg = i64::try_from(removed_ag / 1_000_000).unwrap_or(i64::MAX);
        let ev = Event::new(
            self.now_ms,
            EventKind::PathReplaced,
            &[
                ("removed_nl", removed_fl / FL_PER_NL),
                ("removed_pg", removed_pg),
                ("saline_nl", new_fl / FL_PER_NL),
                ("catheter_nl", self.line.catheter_nl),
            ],
        )
        .with_text("part", part);
        self.pending.push(ev);
    }

    /// Volume (nL, rounded up) of path fluid ahead of the current drug at the tip side.
    fn old_fluid_ahead_nl(&self) -> Option<i64> {
        let fl = self.line.fl_before_tip_change(self.reservoir.conc)?;
        Some(div_ceil(i128::from(fl), i128::from(FL_PER_NL)) as i64)
    }

    /// Plan the bridge bolus after a concentration increase: push the old drug still in the
    /// path out at the volume rate that keeps the prescribed dose rate (µg/day, following the
    /// program's steps) at the old concentration. The bolus is what the running flow does not
    /// already push: the basal program at the new concentration, every bolus already
    /// scheduled in that time and the accumulator's partial stroke are all counted
    /// (field report 1). Errors name `field` (the calling method).
    fn plan_bridge(&self, field: &str) -> Result<BolusPlan> {
        let old = self.line.tip_conc;
        if old == self.reservoir.conc || old == 0 {
            return Err(ItbError::validation(
                field,
                "no bridge needed: the path holds no drug of another concentration (use a priming bolus for saline)",
            ));
        }
        if old > self.reservoir.conc {
            return Err(ItbError::validation(
                field,
                format!(
                    "the path holds stronger drug ({old} µg/mL) than the reservoir ({} µg/mL): a bolus cannot slow it; \
                     lower the program until the new drug reaches the tip",
                    self.reservoir.conc
                ),
            ));
        }
        let ahead_nl = self.old_fluid_ahead_nl().unwrap_or(0);
        let dose = self.delivery.basal.dose_schedule();
        if ahead_nl == 0 || dose.max_rate() == 0 {
            return Err(ItbError::validation(
                field,
                "no bridge needed: no old drug ahead or a zero dose rate",
            ));
        }
        // The old fluid leaves at dose(t)·1000/old nL/day: solve ∫ dose·1000 dt = ahead·D·old.
        let target = i128::from(ahead_nl) * i128::from(MS_PER_DAY) * i128::from(old);
        let duration = time_to_reach(self.now_ms, target, 0, |t| {
            let (rate, next) = dose.rate_at(t);
            (i128::from(rate) * 1000, next)
        })
        .ok_or_else(|| {
            ItbError::validation(field, "the bridge would run past the pump clock's range")
        })?;
        let volume = self.volume_not_yet_flowing(ahead_nl, duration);
        if volume < 1 {
            return Err(ItbError::validation(
                field,
                "no bridge needed: the running flow clears the path in time",
            ));
        }
        Ok(BolusPlan::new(volume, duration))
    }

    /// Plan the bridge bolus (see the module docs and [`Pump::start_bridge_bolus`]).
    pub fn bridge_bolus_plan(&self) -> Result<BolusPlan> {
        self.plan_bridge("bridge_bolus_plan")
    }

    /// Start the planned bridge bolus now; returns its id.
    pub fn start_bridge_bolus(&mut self) -> Result<u64> {
        const CALL: &str = "start_bridge_bolus";
        let plan = self.plan_bridge(CALL)?;
        let requested_ng =
            i64::try_from(i128::from(plan.volume_nl) * i128::from(self.reservoir.conc) / 1000)
                .unwrap_or(i64::MAX);
        self.add_bolus(
            plan.volume_nl,
            requested_ng,
            plan.duration_ms,
            None,
            BolusKind::Bridge,
        )
        .map_err(|e| e.in_field(CALL))
    }

    /// Plan the priming bolus: the bolus that, together with all the flow already running
    /// (basal program with its steps, boluses already scheduled, the accumulator's partial
    /// stroke), pushes exactly the saline ahead of the drug out of the path — never more, so
    /// no drug leaves the tip before the plan ends — at the fastest total rate the model
    /// allows. The bolus runs at a constant rate: the model's maximum less the highest rate
    /// the running flow reaches during the plan (field report 1).
    fn plan_priming(&self, field: &str) -> Result<BolusPlan> {
        if self.line.tip_conc != 0 {
            return Err(ItbError::validation(
                field,
                "the path is already primed with drug",
            ));
        }
        let ahead_nl = self.old_fluid_ahead_nl().unwrap_or(0);
        if ahead_nl == 0 {
            return Err(ItbError::validation(
                field,
                "the path holds no saline ahead of the drug",
            ));
        }
        let target = i128::from(ahead_nl) * i128::from(MS_PER_DAY) - self.delivery.acc;
        let max = self.model.max_rate_nl_per_day;
        let headroom = |to: i64| {
            max - peak_rate(
                self.delivery.schedule(),
                self.delivery.boluses(),
                self.now_ms,
                to,
            )
            .0
        };
        let mut rate = headroom(self.now_ms + 1);
        let mut duration;
        loop {
            if rate < 1 {
                return Err(ItbError::programming(
                    field,
                    "the basal program and scheduled boluses leave no rate headroom for priming",
                ));
            }
            let mut spans = self.span_walker(self.now_ms);
            duration = time_to_reach(self.now_ms, target, i128::from(rate), |t| spans.slope_at(t))
                .ok_or_else(|| {
                    ItbError::validation(field, "priming would run past the pump clock's range")
                })?;
            // Over a longer plan the running flow may peak higher (a flex step, a bolus):
            // lower the bolus rate until it fits everywhere (the headroom only shrinks).
            let fits = headroom(self.now_ms + duration);
            if fits >= rate {
                break;
            }
            rate = fits;
        }
        let volume = self.volume_not_yet_flowing(ahead_nl, duration);
        if volume < 1 {
            return Err(ItbError::validation(
                field,
                "no priming bolus needed: the running flow clears the saline in time",
            ));
        }
        Ok(BolusPlan::new(volume, duration))
    }

    /// Plan the priming bolus (see [`Pump::start_priming_bolus`]).
    pub fn priming_bolus_plan(&self) -> Result<BolusPlan> {
        self.plan_priming("priming_bolus_plan")
    }

    /// Start the priming bolus now; `drug_at_tip` fires when drug reaches the patient.
    pub fn start_priming_bolus(&mut self) -> Result<u64> {
        const CALL: &str = "start_priming_bolus";
        let plan = self.plan_priming(CALL)?;
        self.add_bolus(
            plan.volume_nl,
            0,
            plan.duration_ms,
            None,
            BolusKind::Priming,
        )
        .map_err(|e| e.in_field(CALL))
    }

    /// Whole nL (floor) of `volume_nl` that the flow already running over the next
    /// `duration_ms` (basal, scheduled boluses, the accumulator's partial stroke) leaves to a
    /// new bolus.
    fn volume_not_yet_flowing(&self, volume_nl: i64, duration_ms: i64) -> i64 {
        let flowing = self.delivery.acc
            + self
                .delivery
                .gain_between(self.now_ms, self.now_ms + duration_ms);
        let left = i128::from(volume_nl) * i128::from(MS_PER_DAY) - flowing;
        left.div_euclid(i128::from(MS_PER_DAY))
            .clamp(0, i128::from(i64::MAX)) as i64
    }

    /// Set (or with `None`, disable) the clinician limits of patient boluses.
    pub fn set_patient_bolus_limits(&mut self, limits: Option<PatientBolusLimits>) -> Result<()> {
        if let Some(l) = limits {
            l.validate(self.reservoir.conc, self.model.reservoir_nl)?;
        }
        self.patient.limits = limits;
        Ok(())
    }

    pub fn patient_bolus_limits(&self) -> Option<PatientBolusLimits> {
        self.patient.limits
    }

    /// Patient activation at `at_ms` (None = now; a later time first advances the pump,
    /// keeping the events for the next advance). Granted only within clinician limits.
    pub fn patient_bolus(&mut self, at_ms: Option<i64>) -> Result<PatientBolusOutcome> {
        if let Some(at) = at_ms {
            // Numbered when the next advance returns them, after the calls before this one.
            let events = self.advance_inner(at, None).map_err(|e| e.in_field("at"))?;
            self.pending = events;
        }
        let now = self.now_ms;
        self.patient.forget_before(now);
        // The decision comes before what it causes (the bolus starting now).
        let decision_at = self.pending.len();
        let outcome = match self.patient_check(now) {
            Err(reason) => PatientBolusOutcome {
                granted: false,
                reason,
                bolus_id: None,
            },
            Ok(limits) => {
                let volume = volume_nl_of_dose(limits.dose_ng, self.reservoir.conc);
                match self.add_bolus(
                    volume,
                    limits.dose_ng,
                    limits.duration_ms,
                    None,
                    BolusKind::Patient,
                ) {
                    Ok(id) => {
                        self.patient.grant(now);
                        PatientBolusOutcome {
                            granted: true,
                            reason: "granted",
                            bolus_id: Some(id),
                        }
                    }
                    Err(ItbError::Programming { .. }) => PatientBolusOutcome {
                        granted: false,
                        reason: "would_exceed_max_rate",
                        bolus_id: None,
                    },
                    Err(ItbError::Reservoir { .. }) => PatientBolusOutcome {
                        granted: false,
                        reason: "reservoir_empty",
                        bolus_id: None,
                    },
                    Err(_) => PatientBolusOutcome {
                        granted: false,
                        reason: "invalid_dose",
                        bolus_id: None,
                    },
                }
            }
        };
        let kind = if outcome.granted {
            EventKind::PatientBolusGranted
        } else {
            EventKind::PatientBolusDenied
        };
        let id = outcome.bolus_id.map(|i| i as i64).unwrap_or(0);
        self.pending.insert(
            decision_at,
            Event::new(now, kind, &[("bolus_id", id)]).with_text("reason", outcome.reason),
        );
        Ok(outcome)
    }

    /// The limits if an activation at `now` may be granted, else the denial reason.
    fn patient_check(&self, now: i64) -> std::result::Result<PatientBolusLimits, &'static str> {
        let Some(limits) = self.patient.limits else {
            return Err("not_enabled");
        };
        if self.battery.eos {
            return Err("end_of_service");
        }
        if self.suspended {
            return Err("suspended");
        }
        if self.stalled {
            return Err("fault");
        }
        if self.reservoir.empty {
            return Err("reservoir_empty");
        }
        self.patient.check_limits(&limits, now)?;
        Ok(limits)
    }
}

/// nL as µL with up to three decimals, trailing zeros trimmed (`150000` → `150`, `1` → `0.001`).
fn fmt_ul(nl: i64) -> String {
    let sign = if nl < 0 { "-" } else { "" };
    let n = nl.unsigned_abs();
    let (whole, frac) = (n / 1000, n % 1000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let f = format!("{frac:03}");
        format!("{sign}{whole}.{}", f.trim_end_matches('0'))
    }
}
