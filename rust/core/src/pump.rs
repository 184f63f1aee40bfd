//! The pump: state, calls (program, bolus, refill) and `advance_to`.
//!
//! Delivery model (see DESIGN.md): the accumulator `A` gains, each millisecond `[t, t+1)`,
//! the basal volume rate in force at `t` plus each running bolus's increment (nL·ms/day).
//! Stroke k fires at the first integer ms with `A ≥ k·q·86_400_000`. The pump stores only the
//! remainder `acc = A − strokes·q·86_400_000`, which no program change resets.
//! `advance_to` works segment by segment (a segment is a span with one constant increment),
//! firing all strokes of a segment in closed form, never stroke by stroke.

use serde::{Deserialize, Serialize};

use crate::battery::{ActiveAlarm, Alarm};
use crate::bolus::{Bolus, BolusKind};
use crate::error::{ItbError, Result};
use crate::events::{sort_simulation_events, Event, EventKind};
use crate::model::PumpModel;
use crate::path::{FluidPath, FL_PER_NL};
use crate::program::{Basal, Schedule};
use crate::units::{
    check_concentration, check_time, div_ceil, volume_nl_of_dose, MAX_BOLUS_NG, MAX_TIME_MS, MS_PER_DAY,
};

/// Largest catheter dead volume accepted (nL): 10 mL.
pub const MAX_CATHETER_NL: i64 = 10_000_000;

/// Everything needed to build a pump.
#[derive(Debug, Clone)]
pub struct PumpConfig {
    pub model: PumpModel,
    pub now_ms: i64,
    pub reservoir_nl: i64,
    pub concentration: i64,
    pub basal: Basal,
    pub catheter_nl: i64,
    /// Physical stroke volume error (ppm): a stroke moves q·(1 + e/1e6) of real fluid.
    pub stroke_error_ppm: i64,
    /// Path starts full of drug at the reservoir's concentration (else saline).
    pub path_primed: bool,
}

impl PumpConfig {
    /// A config with a primed path, no catheter and nominal strokes.
    pub fn new(model: PumpModel, now_ms: i64, reservoir_nl: i64, concentration: i64, basal: Basal) -> Self {
        PumpConfig { model, now_ms, reservoir_nl, concentration, basal, catheter_nl: 0, stroke_error_ppm: 0, path_primed: true }
    }
}

/// Largest stroke error accepted (ppm): ±50 %.
pub const MAX_STROKE_ERROR_PPM: i64 = 500_000;

/// Strokes gathered into one `stroke_batch` event.
#[derive(Debug, Default)]
struct Batch {
    count: i64,
    first_ms: i64,
    last_ms: i64,
}

/// One constant-increment span `[t0, t1)` of the accumulator.
#[derive(Debug, Clone, Copy)]
struct Span {
    t0: i64,
    t1: i64,
    slope: i128,
}

/// An ITB pump: model, clock, reservoir, fluid path, program, boluses, ledgers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pump {
    pub(crate) model: PumpModel,
    pub(crate) now_ms: i64,
    pub(crate) conc: u32,
    pub(crate) basal: Basal,
    pub(crate) schedule: Schedule,
    pub(crate) acc: i128,
    pub(crate) strokes: i64,
    /// What the firmware believes is in the reservoir (nL).
    pub(crate) reservoir_nl: i64,
    pub(crate) catheter_nl: i64,
    pub(crate) stroke_error_ppm: i64,
    /// Physical ledgers (fL, ag = fL × µg/mL).
    pub(crate) true_reservoir_fl: i64,
    pub(crate) path: FluidPath,
    pub(crate) tip_conc: u32,
    pub(crate) filled_fl: i64,
    pub(crate) filled_ag: i128,
    pub(crate) withdrawn_fl: i64,
    pub(crate) withdrawn_ag: i128,
    pub(crate) delivered_fl: i64,
    pub(crate) delivered_ag: i128,
    pub(crate) low_armed: bool,
    pub(crate) empty: bool,
    pub(crate) suspended: bool,
    pub(crate) stalled: bool,
    pub(crate) patient_limits: Option<crate::therapy::PatientBolusLimits>,
    /// Times of granted patient boluses within the last 24 h.
    pub(crate) patient_grants: Vec<i64>,
    /// Battery charge used so far (pC).
    pub(crate) used_pc: i64,
    pub(crate) eri: bool,
    pub(crate) eos: bool,
    /// Alarms sounding tones, by raise time.
    pub(crate) alarms: Vec<ActiveAlarm>,
    pub(crate) boluses: Vec<Bolus>,
    pub(crate) next_bolus_id: u64,
    /// Events stamped by calls since the last advance, in causal (call) order.
    pub(crate) pending: Vec<Event>,
    /// Sequence number of the next event returned.
    pub(crate) next_seq: u64,
}

impl Pump {
    /// Build a pump; the path starts full of drug at the reservoir's concentration.
    pub fn new(config: PumpConfig) -> Result<Pump> {
        let PumpConfig { model, now_ms, reservoir_nl, concentration, basal, catheter_nl, stroke_error_ppm, path_primed } =
            config;
        model.validate()?;
        check_time("now", now_ms)?;
        let conc = check_concentration("concentration_ug_per_ml", concentration)?;
        if reservoir_nl < 0 {
            return Err(ItbError::validation("reservoir_ml", "must be >= 0"));
        }
        if reservoir_nl > model.reservoir_nl {
            return Err(ItbError::reservoir(
                "reservoir_ml",
                format!(
                    "{} overfills the {} reservoir (allowed 0..={} mL)",
                    crate::units::ml(reservoir_nl),
                    crate::units::ml(model.reservoir_nl),
                    model.reservoir_nl as f64 / 1e6
                ),
            ));
        }
        if !(0..=MAX_CATHETER_NL).contains(&catheter_nl) {
            return Err(ItbError::validation(
                "catheter_volume_ul",
                format!("{catheter_nl} nL is outside the allowed range 0..={MAX_CATHETER_NL} nL"),
            ));
        }
        if !(-MAX_STROKE_ERROR_PPM..=MAX_STROKE_ERROR_PPM).contains(&stroke_error_ppm) {
            return Err(ItbError::validation(
                "stroke_error_ppm",
                format!("{stroke_error_ppm} ppm is outside the allowed range ±{MAX_STROKE_ERROR_PPM} ppm"),
            ));
        }
        let schedule = basal.schedule(conc, &model)?;
        let path_fl = (model.pump_path_nl + catheter_nl) * FL_PER_NL;
        let path_conc = if path_primed { conc } else { 0 };
        let path = FluidPath::filled(path_fl, path_conc);
        let reservoir_fl = reservoir_nl * FL_PER_NL;
        let mut pump = Pump {
            now_ms,
            conc,
            basal,
            schedule,
            acc: 0,
            strokes: 0,
            reservoir_nl,
            catheter_nl,
            stroke_error_ppm,
            true_reservoir_fl: reservoir_fl,
            tip_conc: path.tip_conc().unwrap_or(conc),
            filled_fl: reservoir_fl + path_fl,
            filled_ag: i128::from(reservoir_fl) * i128::from(conc) + path.mass_ag(),
            path,
            withdrawn_fl: 0,
            withdrawn_ag: 0,
            delivered_fl: 0,
            delivered_ag: 0,
            low_armed: true,
            empty: false,
            suspended: false,
            stalled: false,
            patient_limits: None,
            patient_grants: Vec::new(),
            used_pc: 0,
            eri: false,
            eos: false,
            alarms: Vec::new(),
            boluses: Vec::new(),
            next_bolus_id: 1,
            pending: Vec::new(),
            next_seq: 1,
            model,
        };
        pump.check_fill_alarms();
        Ok(pump)
    }

    // ----- read access -----------------------------------------------------------------
    pub fn model(&self) -> &PumpModel {
        &self.model
    }
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
    pub fn concentration(&self) -> u32 {
        self.conc
    }
    pub fn basal(&self) -> &Basal {
        &self.basal
    }
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
    pub fn strokes(&self) -> i64 {
        self.strokes
    }
    /// Usable reservoir volume (nL).
    pub fn reservoir_nl(&self) -> i64 {
        self.reservoir_nl
    }
    /// Volume the firmware counts as pumped out of the reservoir (nL): strokes × q.
    pub fn pumped_nl(&self) -> i64 {
        self.strokes * self.model.stroke_nl
    }
    /// Physical volume in the reservoir (fL).
    pub fn true_reservoir_fl(&self) -> i64 {
        self.true_reservoir_fl
    }
    /// Physical fluid in pump tubing + catheter (fL) and its drug mass (ag).
    pub fn path_fl(&self) -> i64 {
        self.path.volume_fl()
    }
    pub fn path_ag(&self) -> i128 {
        self.path.mass_ag()
    }
    /// The path's parcels, oldest (tip) first: `(fL, µg/mL)`.
    pub fn path_parcels(&self) -> Vec<(i64, u32)> {
        self.path.parcels().map(|p| (p.fl, p.conc)).collect()
    }
    pub fn catheter_nl(&self) -> i64 {
        self.catheter_nl
    }
    pub fn stroke_error_ppm(&self) -> i64 {
        self.stroke_error_ppm
    }
    /// Physical volume that left the catheter tip (fL): the patient's dose.
    pub fn delivered_fl(&self) -> i64 {
        self.delivered_fl
    }
    /// Drug mass that left the catheter tip (ag; 1 pg = 1_000_000 ag).
    pub fn delivered_ag(&self) -> i128 {
        self.delivered_ag
    }
    /// Everything ever put in: initial reservoir, primed path, refills (fL / ag).
    pub fn filled_fl(&self) -> i64 {
        self.filled_fl
    }
    pub fn filled_ag(&self) -> i128 {
        self.filled_ag
    }
    /// Everything aspirated by refills (fL / ag).
    pub fn withdrawn_fl(&self) -> i64 {
        self.withdrawn_fl
    }
    pub fn withdrawn_ag(&self) -> i128 {
        self.withdrawn_ag
    }
    /// Concentration of the fluid last at the catheter tip (µg/mL; 0 = saline).
    pub fn tip_concentration(&self) -> u32 {
        self.tip_conc
    }
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }
    /// Nanoliter/picogram views of the physical ledgers (floor; exact when the stroke
    /// error is 0, since every volume is then a whole number of nL).
    pub fn true_reservoir_nl(&self) -> i64 {
        self.true_reservoir_fl.div_euclid(FL_PER_NL)
    }
    pub fn path_nl(&self) -> i64 {
        self.path.volume_fl().div_euclid(FL_PER_NL)
    }
    pub fn path_pg(&self) -> i128 {
        self.path.mass_ag().div_euclid(i128::from(FL_PER_NL))
    }
    /// Volume that left the catheter tip (nL): the patient's dose.
    pub fn delivered_nl(&self) -> i64 {
        self.delivered_fl.div_euclid(FL_PER_NL)
    }
    /// Drug mass that left the catheter tip (pg).
    pub fn delivered_pg(&self) -> i128 {
        self.delivered_ag.div_euclid(i128::from(FL_PER_NL))
    }
    pub fn filled_nl(&self) -> i64 {
        self.filled_fl.div_euclid(FL_PER_NL)
    }
    pub fn filled_pg(&self) -> i128 {
        self.filled_ag.div_euclid(i128::from(FL_PER_NL))
    }
    pub fn withdrawn_nl(&self) -> i64 {
        self.withdrawn_fl.div_euclid(FL_PER_NL)
    }
    pub fn withdrawn_pg(&self) -> i128 {
        self.withdrawn_ag.div_euclid(i128::from(FL_PER_NL))
    }

    /// Physical volume of one stroke (fL).
    pub fn true_stroke_fl(&self) -> i64 {
        self.model.stroke_nl * (FL_PER_NL + self.stroke_error_ppm)
    }
    /// Accumulator remainder (nL·ms/day).
    pub fn accumulator(&self) -> i128 {
        self.acc
    }
    pub fn is_empty(&self) -> bool {
        self.empty
    }
    pub fn low_alarm_armed(&self) -> bool {
        self.low_armed
    }
    /// Boluses scheduled or running.
    pub fn boluses(&self) -> &[Bolus] {
        &self.boluses
    }
    /// Events stamped by calls, to be returned by the next advance.
    pub fn pending_events(&self) -> &[Event] {
        &self.pending
    }
    /// Accumulator threshold of one stroke (nL·ms/day).
    pub(crate) fn stroke_gain(&self) -> i128 {
        i128::from(self.model.stroke_nl) * i128::from(MS_PER_DAY)
    }
    /// Delivery runs unless empty, suspended, stalled or at end of service.
    pub(crate) fn delivering(&self) -> bool {
        !self.empty && !self.suspended && !self.stalled && !self.eos
    }

    /// Strokes from now after which the low-reservoir alarm fires, if armed.
    pub(crate) fn low_alarm_stroke(&self) -> Option<i64> {
        if !self.low_armed || self.reservoir_nl <= self.model.low_reservoir_nl {
            return None;
        }
        let over = self.reservoir_nl - self.model.low_reservoir_nl;
        Some(div_ceil(i128::from(over), i128::from(self.model.stroke_nl)) as i64)
    }

    /// Strokes until fluid of a new concentration reaches the tip (from the path state).
    /// None if the physical reservoir runs dry before that (strokes then move only what is left).
    pub(crate) fn strokes_until_tip_change(&self) -> Option<i64> {
        let ahead = self.path.fl_before_change(self.tip_conc, self.conc)?;
        if self.true_reservoir_fl <= ahead {
            return None;
        }
        Some(ahead / self.true_stroke_fl() + 1)
    }

    // ----- calls -----------------------------------------------------------------------

    /// Replace the basal program from now on. The accumulator remainder carries over.
    pub fn set_program(&mut self, basal: Basal) -> Result<()> {
        self.check_not_eos("program")?;
        let schedule = basal.schedule(self.conc, &self.model)?;
        check_total_rate(&self.model, &schedule, &self.boluses, self.now_ms, "program")?;
        self.basal = basal;
        self.schedule = schedule;
        let max = self.schedule.max_rate();
        self.pending.push(Event::new(self.now_ms, EventKind::ProgramChanged, &[("max_rate_nl_per_day", max)]));
        Ok(())
    }

    /// Schedule a bolus of `dose_ng` over `duration_ms` from `start_ms` (None = now).
    /// Its volume is derived now, at the current concentration (half-even to whole nL), and
    /// re-derived if the concentration changes before it starts. Returns the bolus id; the dose
    /// it will really deliver is [`Bolus::dose_pg`].
    pub fn bolus(&mut self, dose_ng: i64, duration_ms: i64, start_ms: Option<i64>) -> Result<u64> {
        let volume = self.bolus_volume_nl(dose_ng, "dose_ug")?;
        self.add_bolus(volume, dose_ng, duration_ms, start_ms, BolusKind::Timed)
    }

    /// Whole-nL volume of a dose at the current concentration; a dose that rounds to 0 nL is
    /// an error naming `field` and the smallest dose that does not.
    pub(crate) fn bolus_volume_nl(&self, dose_ng: i64, field: &str) -> Result<i64> {
        if !(1..=MAX_BOLUS_NG).contains(&dose_ng) {
            return Err(ItbError::validation(
                field,
                format!("{dose_ng} ng is outside the allowed range 1..={MAX_BOLUS_NG} ng"),
            ));
        }
        let volume = volume_nl_of_dose(dose_ng, self.conc);
        if volume < 1 {
            // volume_nl_of_dose rounds half-even: ng·1000/conc must exceed 1/2 nL.
            let smallest_ng = i64::from(self.conc) / 2000 + 1;
            return Err(ItbError::validation(
                field,
                format!(
                    "{} µg at {} µg/mL rounds to 0 nL; the smallest accepted dose is {} µg (1 nL)",
                    dose_ng as f64 / 1000.0,
                    self.conc,
                    smallest_ng as f64 / 1000.0
                ),
            ));
        }
        Ok(volume)
    }

    /// Validate and schedule a bolus of `volume_nl`; shared by every bolus kind.
    pub(crate) fn add_bolus(
        &mut self,
        volume_nl: i64,
        requested_ng: i64,
        duration_ms: i64,
        start_ms: Option<i64>,
        kind: BolusKind,
    ) -> Result<u64> {
        let bolus = self.plan_bolus(volume_nl, requested_ng, duration_ms, start_ms, kind)?;
        let id = bolus.id;
        self.insert_bolus(bolus);
        self.next_bolus_id += 1;
        let mut pending = std::mem::take(&mut self.pending);
        self.process_boundaries(&mut pending, self.now_ms);
        self.pending = pending;
        Ok(id)
    }

    /// Insert keeping the list sorted by start.
    pub(crate) fn insert_bolus(&mut self, bolus: Bolus) {
        let at = self.boluses.partition_point(|b| b.start_ms <= bolus.start_ms);
        self.boluses.insert(at, bolus);
    }

    /// Build and check a bolus without scheduling it.
    pub(crate) fn plan_bolus(
        &self,
        volume_nl: i64,
        requested_ng: i64,
        duration_ms: i64,
        start_ms: Option<i64>,
        kind: BolusKind,
    ) -> Result<Bolus> {
        let bolus = self.build_bolus(self.next_bolus_id, volume_nl, requested_ng, duration_ms, start_ms, kind)?;
        let mut all: Vec<Bolus> =
            self.boluses.iter().filter(|b| b.start_ms < bolus.end_ms && b.end_ms > bolus.start_ms).cloned().collect();
        all.push(bolus.clone());
        check_total_rate(&self.model, &self.schedule, &all, bolus.start_ms, "dose_ug")?;
        Ok(bolus)
    }

    /// Schedule many timed boluses at once, all or nothing, with one rate check over them all:
    /// `(dose_ng, duration_ms, start_ms)` each. Errors name the entry (`doses_ug[3]`,
    /// `durations[3]`, `starts[3]`); returns the ids, in the given order.
    pub fn bolus_many(&mut self, items: &[(i64, i64, i64)]) -> Result<Vec<u64>> {
        let mut planned = Vec::with_capacity(items.len());
        for (i, &(dose_ng, duration_ms, start_ms)) in items.iter().enumerate() {
            let entry = |e: ItbError| {
                let field = match e.field() {
                    "dose_ug" => format!("doses_ug[{i}]"),
                    "duration" => format!("durations[{i}]"),
                    "start" => format!("starts[{i}]"),
                    other => other.to_string(),
                };
                e.in_field(field)
            };
            let volume = self.bolus_volume_nl(dose_ng, "dose_ug").map_err(entry)?;
            let id = self.next_bolus_id + i as u64;
            planned.push(
                self.build_bolus(id, volume, dose_ng, duration_ms, Some(start_ms), BolusKind::Timed).map_err(entry)?,
            );
        }
        let Some(first) = planned.iter().map(|b| b.start_ms).min() else { return Ok(Vec::new()) };
        let mut all: Vec<Bolus> = self.boluses.iter().filter(|b| b.end_ms > first).cloned().collect();
        all.extend(planned.iter().cloned());
        check_total_rate(&self.model, &self.schedule, &all, first, "doses_ug")?;
        let ids = planned.iter().map(|b| b.id).collect();
        self.next_bolus_id += planned.len() as u64;
        for b in planned {
            self.insert_bolus(b);
        }
        let mut pending = std::mem::take(&mut self.pending);
        self.process_boundaries(&mut pending, self.now_ms);
        self.pending = pending;
        Ok(ids)
    }

    /// Validate a bolus of `volume_nl` with id `id` (everything but the rate check).
    fn build_bolus(
        &self,
        id: u64,
        volume_nl: i64,
        requested_ng: i64,
        duration_ms: i64,
        start_ms: Option<i64>,
        kind: BolusKind,
    ) -> Result<Bolus> {
        self.check_not_eos("bolus")?;
        if duration_ms < 1 {
            return Err(ItbError::validation("duration", format!("{duration_ms} ms must be at least 1 ms")));
        }
        let start = start_ms.unwrap_or(self.now_ms);
        check_time("start", start)?;
        if start < self.now_ms {
            return Err(ItbError::validation(
                "start",
                format!(
                    "{} is in the past (now is {}); must be >= now",
                    crate::units::fmt_time(start),
                    crate::units::fmt_time(self.now_ms)
                ),
            ));
        }
        if volume_nl < 1 || volume_nl > self.model.reservoir_nl {
            return Err(ItbError::validation(
                "dose_ug",
                format!(
                    "{} µg at {} µg/mL is {}, more than the {} reservoir holds (at most {} µg)",
                    requested_ng as f64 / 1000.0,
                    self.conc,
                    crate::units::ml(volume_nl),
                    crate::units::ml(self.model.reservoir_nl),
                    self.model.reservoir_nl as f64 * f64::from(self.conc) / 1e6
                ),
            ));
        }
        if self.empty {
            return Err(ItbError::reservoir("bolus", "the reservoir is empty; refill before a bolus"));
        }
        let bolus = Bolus::new(id, start, volume_nl, requested_ng, self.conc, duration_ms, kind);
        if bolus.end_ms > MAX_TIME_MS {
            return Err(ItbError::validation("duration", "the bolus would end after the pump clock's range"));
        }
        Ok(bolus)
    }

    /// Cancel a scheduled or running bolus; what it already added stays delivered.
    pub fn cancel_bolus(&mut self, id: u64) -> Result<()> {
        let Some(pos) = self.boluses.iter().position(|b| b.id == id) else {
            return Err(ItbError::validation("bolus_id", format!("no scheduled or running bolus has id {id}")));
        };
        let b = self.boluses.remove(pos);
        let event = self.cancelled_event(&b, "cancelled");
        self.pending.push(event);
        Ok(())
    }

    /// `bolus_cancelled` for `b` at now, saying why and what it had delivered.
    pub(crate) fn cancelled_event(&self, b: &Bolus, reason: &str) -> Event {
        Event::new(
            self.now_ms,
            EventKind::BolusCancelled,
            &[("bolus_id", b.id as i64), ("volume_nl", b.volume_nl), ("delivered_nl", b.delivered_nl_by(self.now_ms))],
        )
        .with_text("bolus_kind", b.kind.name())
        .with_text("reason", reason)
    }

    /// Alarms that fire at once when the reservoir is filled at or below a threshold.
    pub(crate) fn check_fill_alarms(&mut self) {
        if self.low_armed && self.reservoir_nl <= self.model.low_reservoir_nl {
            self.low_armed = false;
            self.pending.push(Event::new(
                self.now_ms,
                EventKind::LowReservoir,
                &[("reservoir_nl", self.reservoir_nl), ("threshold_nl", self.model.low_reservoir_nl)],
            ));
            self.raise(Alarm::LowReservoir);
        }
        if self.reservoir_nl < self.model.stroke_nl {
            self.empty = true;
            self.pending.push(Event::new(self.now_ms, EventKind::ReservoirEmpty, &[("reservoir_nl", self.reservoir_nl)]));
            self.raise(Alarm::ReservoirEmpty);
        }
    }

    // ----- time ------------------------------------------------------------------------

    /// Increment in force for the millisecond `[t, t+1)` and the next time it may change.
    pub(crate) fn slope_at(&self, t: i64) -> (i128, i64) {
        let (basal, mut next) = self.schedule.rate_at(t);
        let mut slope = i128::from(basal);
        // Boluses are sorted by start: stop at the first one still to come.
        for b in &self.boluses {
            if b.start_ms > t {
                next = next.min(b.start_ms);
                break;
            }
            slope += i128::from(b.increment_at(t));
            next = next.min(b.next_change_after(t));
        }
        (slope, next)
    }

    /// A walker over the accumulator's constant-increment spans from `t0` on (times must not
    /// go back): O(boluses) to start, then O(running boluses) per span, whatever the number of
    /// boluses scheduled or already over.
    pub(crate) fn span_walker(&self, t0: i64) -> SpanWalker<'_> {
        let next = self.boluses.partition_point(|b| b.start_ms <= t0);
        let active = (0..next).filter(|&i| self.boluses[i].end_ms > t0).collect();
        SpanWalker { schedule: &self.schedule, boluses: &self.boluses, next, active }
    }

    /// Whether a bolus starts or ends at or before `t` without its event yet.
    fn boundary_due(&self, t: i64) -> bool {
        self.boluses.iter().take_while(|b| b.start_ms <= t).any(|b| !b.started || b.end_ms <= t)
    }

    /// Emit bolus start/completion events due at `t` (idempotent).
    fn process_boundaries(&mut self, sink: &mut Vec<Event>, t: i64) {
        let mut i = 0;
        while i < self.boluses.len() && self.boluses[i].start_ms <= t {
            let b = &mut self.boluses[i];
            if !b.started && b.start_ms <= t {
                b.started = true;
                sink.push(
                    Event::new(
                        b.start_ms,
                        EventKind::BolusStarted,
                        &[("bolus_id", b.id as i64), ("volume_nl", b.volume_nl), ("dose_pg", b.dose_pg), ("end_ms", b.end_ms)],
                    )
                    .with_text("bolus_kind", b.kind.name()),
                );
            }
            if b.end_ms <= t {
                sink.push(
                    Event::new(
                        b.end_ms,
                        EventKind::BolusCompleted,
                        &[("bolus_id", b.id as i64), ("volume_nl", b.volume_nl), ("dose_pg", b.dose_pg)],
                    )
                    .with_text("bolus_kind", b.kind.name()),
                );
                self.boluses.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Advance the clock to `until_ms`, delivering on the way; returns the events stamped by
    /// calls since the last advance (in call order) followed by those of `(now, until]`, each
    /// with its sequence number.
    pub fn advance_to(&mut self, until_ms: i64) -> Result<Vec<Event>> {
        let mut events = self.advance_inner(until_ms, None)?;
        self.number(&mut events);
        Ok(events)
    }

    /// As [`Pump::advance_to`], also appending every stroke time to `strokes_out`.
    pub fn advance_to_recording(&mut self, until_ms: i64, strokes_out: &mut Vec<i64>) -> Result<Vec<Event>> {
        let mut events = self.advance_inner(until_ms, Some(strokes_out))?;
        self.number(&mut events);
        Ok(events)
    }

    /// Give returned events their sequence numbers.
    fn number(&mut self, events: &mut [Event]) {
        for e in events {
            e.seq = self.next_seq;
            self.next_seq += 1;
        }
    }

    /// Sequence number the next returned event will carry.
    pub fn next_event_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether two pumps are in the same state apart from how many events they have
    /// returned (advancing in pieces returns more `stroke_batch` summaries than at once).
    pub fn eq_ignoring_event_numbers(&self, other: &Pump) -> bool {
        self.next_seq == other.next_seq && self == other || {
            let mut a = self.clone();
            a.next_seq = other.next_seq;
            a == *other
        }
    }

    /// Advance without numbering: pending call events first (already in causal order), then
    /// what the simulation raised, ordered by time and, within a millisecond, kind order.
    pub(crate) fn advance_inner(&mut self, until_ms: i64, mut record: Option<&mut Vec<i64>>) -> Result<Vec<Event>> {
        check_time("until", until_ms)?;
        if until_ms < self.now_ms {
            return Err(ItbError::validation(
                "until",
                format!(
                    "{} is before now ({}); time only moves forward",
                    crate::units::fmt_time(until_ms),
                    crate::units::fmt_time(self.now_ms)
                ),
            ));
        }
        let mut pending = std::mem::take(&mut self.pending);
        let mut out = Vec::with_capacity(4);
        let mut batch = Batch::default();
        while self.now_ms < until_ms {
            let (slope, next) = self.slope_at(self.now_ms);
            let span = Span { t0: self.now_ms, t1: next.min(until_ms), slope };
            self.step(span, &mut batch, &mut out, record.as_deref_mut());
            if self.boundary_due(self.now_ms) {
                flush(&mut batch, &mut out, self.model.stroke_nl);
                self.process_boundaries(&mut out, self.now_ms);
            }
        }
        flush(&mut batch, &mut out, self.model.stroke_nl);
        sort_simulation_events(&mut out);
        if pending.is_empty() {
            return Ok(out);
        }
        pending.append(&mut out);
        Ok(pending)
    }

    /// Advance through one constant-increment span, stopping early at the first stroke that
    /// raises an event (low reservoir, new drug at tip, empty) or at an ERI/EOS crossing.
    /// Strokes, battery charge and alarm tones are all counted in closed form.
    fn step(&mut self, span: Span, batch: &mut Batch, out: &mut Vec<Event>, record: Option<&mut Vec<i64>>) {
        let q = self.model.stroke_nl;
        let g = self.stroke_gain();
        let a = self.acc;
        let t0 = span.t0;
        let delivering = self.delivering() && span.slope > 0;
        let (low_j, tip_j, allowed) = if delivering {
            (self.low_alarm_stroke(), self.strokes_until_tip_change(), self.reservoir_nl / q)
        } else {
            (None, None, 0)
        };
        let strokes_by = |t: i64, cap: i64| -> i64 {
            if !delivering {
                return 0;
            }
            (((a + span.slope * i128::from(t - t0)) / g) as i64).min(cap)
        };
        let time_of = |j: i64| t0 + div_ceil(i128::from(j) * g - a, span.slope) as i64;
        // End at the first event stroke within the span, if any.
        let mut cap = strokes_by(span.t1, allowed);
        let mut t_end = span.t1;
        let event_stroke = [low_j, tip_j, Some(allowed)].into_iter().flatten().filter(|&j| j >= 1).min();
        if let Some(j) = event_stroke.filter(|&j| delivering && j <= cap) {
            cap = j;
            t_end = time_of(j);
        }
        // End earlier where the battery crosses its next threshold.
        let mut crossed = false;
        if let (Some(bat), Some((threshold, _))) = (self.model.battery, self.battery_threshold()) {
            let used_at = |t: i64| -> i128 {
                i128::from(self.used_pc)
                    + i128::from(bat.quiescent_pc_per_ms) * i128::from(t - t0)
                    + i128::from(bat.stroke_pc) * i128::from(strokes_by(t, cap))
                    + i128::from(bat.tone_pc) * i128::from(self.tones_between(t0, t))
            };
            if used_at(t_end) >= threshold {
                let hi = crate::projection::first_at_least(used_at, threshold, t0, t_end);
                t_end = hi;
                crossed = true;
            }
        }
        let k = strokes_by(t_end, cap);
        let from_tip = self.tip_conc;
        if k > 0 {
            if let Some(times) = record {
                record_stroke_times(times, t0, a, span.slope, g, k);
            }
            self.take_strokes(k, time_of(1), time_of(k), batch);
        }
        if delivering {
            self.acc = a + span.slope * i128::from(t_end - t0) - i128::from(k) * g;
        }
        if let Some(bat) = self.model.battery {
            let drain = i128::from(bat.quiescent_pc_per_ms) * i128::from(t_end - t0)
                + i128::from(bat.stroke_pc) * i128::from(k)
                + i128::from(bat.tone_pc) * i128::from(self.tones_between(t0, t_end));
            self.used_pc = (i128::from(self.used_pc) + drain).min(i128::from(bat.capacity_pc)) as i64;
        }
        self.now_ms = t_end;
        if k >= 1 && low_j == Some(k) {
            flush(batch, out, q);
            self.low_armed = false;
            out.push(Event::new(
                t_end,
                EventKind::LowReservoir,
                &[("reservoir_nl", self.reservoir_nl), ("threshold_nl", self.model.low_reservoir_nl)],
            ));
            self.raise(Alarm::LowReservoir);
        }
        if k >= 1 && tip_j == Some(k) && self.tip_conc != from_tip {
            flush(batch, out, q);
            out.push(Event::new(
                t_end,
                EventKind::DrugAtTip,
                &[("from_ug_per_ml", i64::from(from_tip)), ("to_ug_per_ml", i64::from(self.tip_conc))],
            ));
        }
        if k >= 1 && k == allowed {
            flush(batch, out, q);
            self.empty = true;
            out.push(Event::new(t_end, EventKind::ReservoirEmpty, &[("reservoir_nl", self.reservoir_nl)]));
            self.raise(Alarm::ReservoirEmpty);
        }
        if crossed {
            flush(batch, out, q);
            self.check_battery(out);
        }
    }

    /// Apply `n` strokes (first at `first_ms`, last at `last_ms`) to the ledgers.
    fn take_strokes(&mut self, n: i64, first_ms: i64, last_ms: i64, batch: &mut Batch) {
        self.strokes += n;
        self.reservoir_nl -= n * self.model.stroke_nl;
        // Physically each stroke moves q·(1 + e); a dry reservoir moves what is left.
        let fl = (n * self.true_stroke_fl()).min(self.true_reservoir_fl);
        self.true_reservoir_fl -= fl;
        let out = self.path.push(fl, self.conc);
        self.delivered_fl += out.fl;
        self.delivered_ag += out.ag;
        if let Some(c) = out.last_conc {
            self.tip_conc = c;
        }
        if batch.count == 0 {
            batch.first_ms = first_ms;
        }
        batch.count += n;
        batch.last_ms = last_ms;
    }
}

/// See [`Pump::span_walker`]: the boluses running (`active`) and the next to start (`next`).
pub(crate) struct SpanWalker<'a> {
    schedule: &'a Schedule,
    boluses: &'a [Bolus],
    next: usize,
    active: Vec<usize>,
}

impl SpanWalker<'_> {
    /// As [`Pump::slope_at`], for a `t` not before the previous call's.
    pub(crate) fn slope_at(&mut self, t: i64) -> (i128, i64) {
        while self.next < self.boluses.len() && self.boluses[self.next].start_ms <= t {
            self.active.push(self.next);
            self.next += 1;
        }
        let boluses = self.boluses;
        self.active.retain(|&i| boluses[i].end_ms > t);
        let (basal, mut change) = self.schedule.rate_at(t);
        let mut slope = i128::from(basal);
        for &i in &self.active {
            slope += i128::from(boluses[i].increment_at(t));
            change = change.min(boluses[i].next_change_after(t));
        }
        if let Some(b) = boluses.get(self.next) {
            change = change.min(b.start_ms);
        }
        (slope, change)
    }
}

/// Emit the pending stroke batch, if any.
fn flush(batch: &mut Batch, out: &mut Vec<Event>, stroke_nl: i64) {
    if batch.count > 0 {
        out.push(Event::new(
            batch.last_ms,
            EventKind::StrokeBatch,
            &[("count", batch.count), ("first_ms", batch.first_ms), ("volume_nl", batch.count * stroke_nl)],
        ));
        *batch = Batch::default();
    }
}

/// Append the times of strokes 1..=n of a span starting at `t0` with remainder `a`.
/// Incremental: each step adds the whole-ms quotient and carries the remainder.
fn record_stroke_times(out: &mut Vec<i64>, t0: i64, a: i128, slope: i128, gain: i128, n: i64) {
    out.reserve((n as usize).min(1 << 20)); // grow as needed beyond 1 M strokes per span
    // Stroke j fires at t0 + ceil((j·gain − a) / slope).
    let first_need = gain - a;
    let t = t0 + div_ceil(first_need, slope) as i64;
    // Slack: how far A(t) overshoots the threshold at the stroke time (0 <= slack < slope).
    let slack = div_ceil(first_need, slope) * slope - first_need;
    // Every quantity of the loop is below `slope` or `gain`: when both fit in i64 (always for
    // models within the core's limits), the loop runs in i64, several times faster than i128.
    match (i64::try_from(slope), i64::try_from(gain), i64::try_from(slack)) {
        (Ok(slope), Ok(gain), Ok(slack)) => step_times(out, t, slack, slope, gain, n),
        _ => step_times(out, t, slack, slope, gain, n),
    }
}

/// The loop of [`record_stroke_times`]: each step adds the whole-ms quotient and carries the
/// remainder, in the integer type `I`.
fn step_times<I>(out: &mut Vec<i64>, mut t: i64, mut slack: I, slope: I, gain: I, n: i64)
where
    I: Copy + PartialOrd + std::ops::Add<Output = I> + std::ops::Sub<Output = I> + std::ops::Div<Output = I>
        + std::ops::Rem<Output = I> + std::ops::Neg<Output = I> + From<u8> + TryInto<i64>,
{
    let (zero, one) = (I::from(0u8), I::from(1u8));
    let step_q = gain / slope;
    let step_r = gain % slope;
    for _ in 0..n {
        out.push(t);
        // Next threshold is `gain` further; the overshoot already covers `slack`.
        let mut dt = step_q;
        let mut rem = step_r - slack;
        if rem > zero {
            dt = dt + one;
            rem = rem - slope;
        }
        slack = -rem;
        t += dt.try_into().unwrap_or(i64::MAX);
    }
}

/// Check that basal plus boluses never exceed the model's max rate from `from_ms` on.
pub(crate) fn check_total_rate(
    model: &PumpModel,
    schedule: &Schedule,
    boluses: &[Bolus],
    from_ms: i64,
    field: &str,
) -> Result<()> {
    let last_end = boluses.iter().map(|b| b.end_ms).max().unwrap_or(from_ms);
    let (peak, at, basal, bolus_sum) = peak_rate(schedule, boluses, from_ms, last_end);
    if peak > model.max_rate_nl_per_day && bolus_sum > 0 {
        return Err(ItbError::programming(
            field,
            format!(
                "basal {basal} nL/day + boluses {bolus_sum} nL/day = {peak} nL/day at {at} ms exceeds the \
                 maximum rate {} nL/day of model {}",
                model.max_rate_nl_per_day, model.name
            ),
        ));
    }
    Ok(())
}

/// Highest commanded rate (basal + the rates of the boluses running) anywhere in `[a, b)`,
/// as `(peak, at_ms, basal, boluses)` — a sweep over bolus starts and ends
/// (O(B log B + B · steps)); `(0, a, 0, 0)` for an empty interval.
pub(crate) fn peak_rate(schedule: &Schedule, boluses: &[Bolus], a: i64, b: i64) -> (i64, i64, i64, i64) {
    let mut best = (0, a, 0, 0);
    if b <= a {
        return best;
    }
    let mut edges: Vec<(i64, i64)> = Vec::with_capacity(boluses.len() * 2 + 2);
    edges.push((a, 0));
    for bolus in boluses.iter().filter(|x| x.end_ms > a && x.start_ms < b) {
        edges.push((bolus.start_ms.max(a), bolus.rate_nl_per_day));
        edges.push((bolus.end_ms.min(b), -bolus.rate_nl_per_day));
    }
    edges.push((b, 0));
    edges.sort_unstable();
    let mut bolus_sum = 0i64;
    let mut i = 0;
    while i < edges.len() {
        let t = edges[i].0;
        while i < edges.len() && edges[i].0 == t {
            bolus_sum += edges[i].1;
            i += 1;
        }
        let Some(&(next, _)) = edges.get(i) else { break };
        let basal = schedule.max_rate_over(t, next);
        if basal + bolus_sum > best.0 {
            best = (basal + bolus_sum, t, basal, bolus_sum);
        }
    }
    best
}
