//! The pump: state, calls (program, bolus, refill) and `advance_to`.
//!
//! Delivery model (docs: design.md#delivery-model): the accumulator `A` gains, each millisecond `[t, t+1)`,
//! the basal volume rate in force at `t` plus each running bolus's increment (nL·ms/day).
//! Stroke k fires at the first integer ms with `A ≥ k·q·86_400_000`. The pump stores only the
//! remainder `acc = A − strokes·q·86_400_000`, which no program change resets.
//! `advance_to` works segment by segment (a segment is a span with one constant increment),
//! firing all strokes of a segment in closed form, never stroke by stroke.

pub mod faults;
pub mod patient;
pub mod projection;
pub mod rates;
pub mod reading;
pub mod refill;
pub mod therapy;

use crate::battery::{ActiveAlarm, Alarm, Battery};
use crate::delivery::bolus::{Bolus, BolusKind};
use crate::delivery::faults::Faults;
use crate::delivery::path::{fl_to_nl, millionths_to_units, FluidLine, FluidPath, FL_PER_NL};
use crate::delivery::program::{Basal, Schedule};
use crate::delivery::reservoir::Reservoir;
use crate::delivery::{
    cancelled_event, check_total_rate, record_stroke_times, Delivery, SpanWalker,
};
use crate::error::{ItbError, Result};
use crate::events::{sort_simulation_events, Event, EventKind};
use crate::model::PumpModel;
use crate::pump::patient::PatientBoluses;
use crate::units::{
    check_concentration, check_time, div_ceil, div_trunc, first_at_least, volume_nl_of_dose,
    MAX_BOLUS_NG, MAX_TIME_MS, MS_PER_DAY,
};

pub use crate::delivery::path::MAX_CATHETER_NL;

/// The refusal of a fill that does not fit the reservoir (`shown`: the value as the caller
/// wrote it, with its unit): the one place this message is made — the pump's fill, a refill,
/// and a value too large even to convert (the Python glue) all use it.
pub fn overfill(field: &str, shown: &str, reservoir_nl: i64) -> ItbError {
    ItbError::reservoir(
        field,
        format!(
            "{shown} overfills the {} reservoir (allowed 0 to {} mL)",
            crate::units::ml(reservoir_nl),
            reservoir_nl as f64 / 1e6
        ),
    )
}
pub use crate::delivery::reservoir::MAX_STROKE_ERROR_PPM;

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
    pub fn new(
        model: PumpModel,
        now_ms: i64,
        reservoir_nl: i64,
        concentration: i64,
        basal: Basal,
    ) -> Self {
        PumpConfig {
            model,
            now_ms,
            reservoir_nl,
            concentration,
            basal,
            catheter_nl: 0,
            stroke_error_ppm: 0,
            path_primed: true,
        }
    }
}

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

/// An ITB pump: model and clock, orchestrating its parts — delivery (program, accumulator,
/// boluses), reservoir (count and physical ledgers), fluid path, battery and alarms,
/// patient-bolus limits — plus the events stamped by calls. Serialized (snapshots) in the
/// version-2 field order by `snapshot::wire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pump {
    pub(crate) model: PumpModel,
    pub(crate) now_ms: i64,
    pub(crate) delivery: Delivery,
    pub(crate) reservoir: Reservoir,
    pub(crate) line: FluidLine,
    pub(crate) battery: Battery,
    pub(crate) patient: PatientBoluses,
    pub(crate) suspended: bool,
    pub(crate) stalled: bool,
    /// Injected faults and the truth ledgers (docs: guide/faults.md).
    pub(crate) faults: Faults,
    /// Events stamped by calls since the last advance, in causal (call) order.
    pub(crate) pending: Vec<Event>,
    /// Sequence number of the next event returned.
    pub(crate) next_seq: u64,
}

impl Pump {
    /// Build a pump; the path starts full of drug at the reservoir's concentration.
    pub fn new(config: PumpConfig) -> Result<Pump> {
        let PumpConfig {
            model,
            now_ms,
            reservoir_nl,
            concentration,
            basal,
            catheter_nl,
            stroke_error_ppm,
            path_primed,
        } = config;
        model.validate()?;
        check_time("now", now_ms)?;
        let conc = check_concentration("concentration_ug_per_ml", concentration)?;
        if reservoir_nl < 0 {
            return Err(ItbError::validation("reservoir_ml", "must be >= 0"));
        }
        if reservoir_nl > model.reservoir_nl {
            return Err(overfill(
                "reservoir_ml",
                &crate::units::ml(reservoir_nl),
                model.reservoir_nl,
            ));
        }
        if !(0..=MAX_CATHETER_NL).contains(&catheter_nl) {
            return Err(ItbError::validation(
                "catheter_volume_ul",
                format!(
                    "{} µL is outside the allowed range 0 to {} µL",
                    catheter_nl as f64 / 1000.0,
                    MAX_CATHETER_NL / 1000
                ),
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
        let line = FluidLine::new(catheter_nl, path_fl, path_conc, conc);
        let reservoir = Reservoir::new(
            conc,
            reservoir_nl,
            stroke_error_ppm,
            path_fl,
            line.fluid.mass_ag(),
        );
        let mut pump = Pump {
            now_ms,
            delivery: Delivery::new(basal, schedule),
            reservoir,
            line,
            battery: Battery::default(),
            patient: PatientBoluses::default(),
            suspended: false,
            stalled: false,
            faults: Faults::default(),
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
        self.reservoir.conc
    }
    pub fn basal(&self) -> &Basal {
        &self.delivery.basal
    }
    pub fn schedule(&self) -> &Schedule {
        self.delivery.schedule()
    }
    pub fn strokes(&self) -> i64 {
        self.delivery.strokes
    }
    /// Usable reservoir volume (nL).
    pub fn reservoir_nl(&self) -> i64 {
        self.reservoir.count_nl
    }
    /// Volume the firmware counts as pumped out of the reservoir (nL): strokes × q.
    pub fn pumped_nl(&self) -> i64 {
        self.delivery.strokes * self.model.stroke_nl
    }
    /// Physical volume in the reservoir (fL).
    pub fn true_reservoir_fl(&self) -> i64 {
        self.reservoir.true_fl
    }
    /// Physical fluid in pump tubing + catheter (fL) and its drug mass (ag), including a
    /// stagnant catheter segment beyond a leak.
    pub fn path_fl(&self) -> i64 {
        self.line.fluid.volume_fl() + self.detached().map_or(0, FluidPath::volume_fl)
    }
    pub fn path_ag(&self) -> i128 {
        self.line.fluid.mass_ag() + self.detached().map_or(0, FluidPath::mass_ag)
    }
    /// The catheter segment beyond an active leak (stagnant), if any.
    pub(crate) fn detached(&self) -> Option<&FluidPath> {
        self.faults.leak.as_ref().map(|l| &l.downstream)
    }
    /// Injected faults and the truth ledgers.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
    /// Drug that went elsewhere (tissue: leak, disconnection, migrated tip, pocket fill).
    pub fn tissue_nl(&self) -> i64 {
        fl_to_nl(self.faults.tissue_fl)
    }
    pub fn tissue_pg(&self) -> i128 {
        millionths_to_units(self.faults.tissue_ag)
    }
    /// Volume held back by an occlusion (stayed in the reservoir; nL, floor).
    pub fn held_back_nl(&self) -> i128 {
        millionths_to_units(self.faults.held_back_fl)
    }
    /// Volume commanded while the physical reservoir was dry (nL, floor).
    pub fn dry_nl(&self) -> i128 {
        millionths_to_units(self.faults.dry_fl)
    }
    /// What physically left the reservoir (nL and pg, floor).
    pub fn physically_pumped_nl(&self) -> i128 {
        millionths_to_units(self.faults.pumped_fl)
    }
    pub fn physically_pumped_pg(&self) -> i128 {
        millionths_to_units(self.faults.pumped_ag)
    }
    /// The path's parcels, oldest (tip) first: `(fL, µg/mL)`.
    pub fn path_parcels(&self) -> Vec<(i64, u32)> {
        self.line.fluid.parcels().map(|p| (p.fl, p.conc)).collect()
    }
    pub fn catheter_nl(&self) -> i64 {
        self.line.catheter_nl
    }
    pub fn stroke_error_ppm(&self) -> i64 {
        self.reservoir.stroke_error_ppm
    }
    /// Physical volume that left the catheter tip (fL): the patient's dose.
    pub fn delivered_fl(&self) -> i64 {
        self.reservoir.delivered_fl
    }
    /// Drug mass that left the catheter tip (ag; 1 pg = 1_000_000 ag).
    pub fn delivered_ag(&self) -> i128 {
        self.reservoir.delivered_ag
    }
    /// Everything ever put in: initial reservoir, primed path, refills (fL / ag).
    pub fn filled_fl(&self) -> i64 {
        self.reservoir.filled_fl
    }
    pub fn filled_ag(&self) -> i128 {
        self.reservoir.filled_ag
    }
    /// Everything aspirated by refills (fL / ag).
    pub fn withdrawn_fl(&self) -> i64 {
        self.reservoir.withdrawn_fl
    }
    pub fn withdrawn_ag(&self) -> i128 {
        self.reservoir.withdrawn_ag
    }
    /// Concentration of the fluid last at the catheter tip (µg/mL; 0 = saline).
    pub fn tip_concentration(&self) -> u32 {
        self.line.tip_conc
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
        fl_to_nl(self.reservoir.true_fl)
    }
    pub fn path_nl(&self) -> i64 {
        fl_to_nl(self.path_fl())
    }
    pub fn path_pg(&self) -> i128 {
        millionths_to_units(self.path_ag())
    }
    /// Volume that reached the intrathecal space (nL): the patient's dose (what left the tip,
    /// unless the tip has migrated).
    pub fn delivered_nl(&self) -> i64 {
        fl_to_nl(self.reservoir.delivered_fl)
    }
    /// Drug mass that left the catheter tip (pg).
    pub fn delivered_pg(&self) -> i128 {
        millionths_to_units(self.reservoir.delivered_ag)
    }
    pub fn filled_nl(&self) -> i64 {
        fl_to_nl(self.reservoir.filled_fl)
    }
    pub fn filled_pg(&self) -> i128 {
        millionths_to_units(self.reservoir.filled_ag)
    }
    pub fn withdrawn_nl(&self) -> i64 {
        fl_to_nl(self.reservoir.withdrawn_fl)
    }
    pub fn withdrawn_pg(&self) -> i128 {
        millionths_to_units(self.reservoir.withdrawn_ag)
    }

    /// Physical volume of one stroke (fL).
    pub fn true_stroke_fl(&self) -> i64 {
        self.reservoir.true_stroke_fl(self.model.stroke_nl)
    }
    /// Accumulator remainder (nL·ms/day).
    pub fn accumulator(&self) -> i128 {
        self.delivery.acc
    }
    pub fn is_empty(&self) -> bool {
        self.reservoir.empty
    }
    pub fn low_alarm_armed(&self) -> bool {
        self.reservoir.low_armed
    }
    /// Boluses scheduled or running.
    pub fn boluses(&self) -> &[Bolus] {
        self.delivery.boluses()
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
        !self.reservoir.empty && !self.suspended && !self.stalled && !self.battery.eos
    }

    /// Strokes from now after which the low-reservoir alarm fires, if armed.
    pub(crate) fn low_alarm_stroke(&self) -> Option<i64> {
        self.reservoir.low_alarm_stroke(&self.model)
    }

    /// Strokes until fluid of a new concentration reaches the tip (from the path state).
    /// None if the physical reservoir runs dry before that (strokes then move only what is left).
    pub(crate) fn strokes_until_tip_change(&self) -> Option<i64> {
        if self.faults.leak.is_some() {
            return None; // the catheter beyond the leak is stagnant: nothing new reaches the tip
        }
        let ahead = self.line.fl_before_tip_change(self.reservoir.conc)?;
        if self.reservoir.true_fl <= ahead {
            return None;
        }
        self.faults.strokes_to_pass(ahead, self.true_stroke_fl())
    }

    /// Strokes from now until the first one that finds the physical reservoir short of the
    /// flow passing any occlusion (None if nothing passes: a complete occlusion).
    pub(crate) fn strokes_until_dry(&self) -> Option<i64> {
        self.faults
            .strokes_to_pass(self.reservoir.true_fl, self.true_stroke_fl())
    }

    /// Increment in force for the millisecond `[t, t+1)` and the next time it may change.
    pub(crate) fn slope_at(&self, t: i64) -> (i128, i64) {
        self.delivery.slope_at(t)
    }

    /// The span walker of [`Delivery::span_walker`] from `t0` on.
    pub(crate) fn span_walker(&self, t0: i64) -> SpanWalker<'_> {
        self.delivery.span_walker(t0)
    }

    // ----- battery and alarms ----------------------------------------------------------

    /// Battery charge used (pC); 0 without a battery model.
    pub fn battery_used_pc(&self) -> i64 {
        self.battery.used_pc()
    }
    /// Remaining battery charge (pC), if the model has a battery.
    pub fn battery_remaining_pc(&self) -> Option<i64> {
        self.battery.remaining_pc(self.model.battery.as_ref())
    }
    pub fn is_eri(&self) -> bool {
        self.battery.is_eri()
    }
    pub fn is_eos(&self) -> bool {
        self.battery.is_eos()
    }
    /// Alarms sounding now, highest priority first.
    pub fn active_alarms(&self) -> Vec<ActiveAlarm> {
        self.battery.active_alarms()
    }

    /// Start an alarm's tones from now.
    pub(crate) fn raise(&mut self, alarm: Alarm) {
        self.battery.raise(alarm, self.now_ms);
    }

    pub(crate) fn clear_alarms(&mut self, clear: impl Fn(Alarm) -> bool) {
        self.battery.clear_alarms(clear);
    }

    /// Tones of the active alarms in `(from, to]`.
    pub(crate) fn tones_between(&self, from: i64, to: i64) -> i64 {
        self.battery
            .tones_between(self.model.battery.as_ref(), from, to)
    }

    /// Next battery threshold (used pC at which it fires) and its alarm.
    pub(crate) fn battery_threshold(&self) -> Option<(i128, Alarm)> {
        self.battery.threshold(self.model.battery.as_ref())
    }

    /// Raise ERI and then EOS if the charge used now reaches their thresholds.
    pub(crate) fn check_battery(&mut self, out: &mut Vec<Event>) {
        self.battery
            .check(self.model.battery.as_ref(), self.now_ms, out);
    }

    /// A telemetry session with a programmer now: costs its battery charge.
    pub fn telemetry_session(&mut self) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        self.battery
            .telemetry_session(self.model.battery.as_ref(), self.now_ms, &mut pending);
        self.pending = pending;
        Ok(())
    }

    /// Refuse calls that would deliver after end of service.
    pub(crate) fn check_not_eos(&self, field: &str) -> Result<()> {
        self.battery.check_not_eos(field)
    }

    // ----- calls -----------------------------------------------------------------------

    /// Replace the basal program from now on. The accumulator remainder carries over.
    pub fn set_program(&mut self, basal: Basal) -> Result<()> {
        self.check_not_eos("program")?;
        let schedule = basal.schedule(self.reservoir.conc, &self.model)?;
        check_total_rate(
            &self.model,
            &schedule,
            self.delivery.boluses(),
            self.now_ms,
            "program",
        )?;
        self.delivery.set_program(basal, schedule);
        let max = self.delivery.schedule().max_rate();
        self.pending.push(Event::new(
            self.now_ms,
            EventKind::ProgramChanged,
            &[("max_rate_nl_per_day", max)],
        ));
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
                format!(
                    "{} µg is outside the allowed range 0.001 to {} µg",
                    dose_ng as f64 / 1000.0,
                    MAX_BOLUS_NG / 1000
                ),
            ));
        }
        let volume = volume_nl_of_dose(dose_ng, self.reservoir.conc);
        if volume < 1 {
            // volume_nl_of_dose rounds half-even: ng·1000/conc must exceed 1/2 nL.
            let smallest_ng = i64::from(self.reservoir.conc) / 2000 + 1;
            return Err(ItbError::validation(
                field,
                format!(
                    "{} µg at {} µg/mL rounds to 0 nL; the smallest accepted dose is {} µg (1 nL)",
                    dose_ng as f64 / 1000.0,
                    self.reservoir.conc,
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
        self.delivery.insert_bolus(bolus);
        self.delivery.next_bolus_id += 1;
        let mut pending = std::mem::take(&mut self.pending);
        self.delivery.process_boundaries(&mut pending, self.now_ms);
        self.pending = pending;
        Ok(id)
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
        let bolus = self.build_bolus(
            self.delivery.next_bolus_id,
            volume_nl,
            requested_ng,
            duration_ms,
            start_ms,
            kind,
        )?;
        let mut all: Vec<Bolus> = self
            .delivery
            .boluses()
            .iter()
            .filter(|b| b.start_ms < bolus.end_ms && b.end_ms > bolus.start_ms)
            .cloned()
            .collect();
        all.push(bolus.clone());
        check_total_rate(
            &self.model,
            self.delivery.schedule(),
            &all,
            bolus.start_ms,
            "dose_ug",
        )?;
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
            let id = self.delivery.next_bolus_id + i as u64;
            planned.push(
                self.build_bolus(
                    id,
                    volume,
                    dose_ng,
                    duration_ms,
                    Some(start_ms),
                    BolusKind::Timed,
                )
                .map_err(entry)?,
            );
        }
        let Some(first) = planned.iter().map(|b| b.start_ms).min() else {
            return Ok(Vec::new());
        };
        let mut all: Vec<Bolus> = self
            .delivery
            .boluses()
            .iter()
            .filter(|b| b.end_ms > first)
            .cloned()
            .collect();
        all.extend(planned.iter().cloned());
        check_total_rate(
            &self.model,
            self.delivery.schedule(),
            &all,
            first,
            "doses_ug",
        )?;
        let ids = planned.iter().map(|b| b.id).collect();
        self.delivery.next_bolus_id += planned.len() as u64;
        self.delivery.insert_boluses(planned);
        let mut pending = std::mem::take(&mut self.pending);
        self.delivery.process_boundaries(&mut pending, self.now_ms);
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
            return Err(ItbError::validation(
                "duration",
                format!("{duration_ms} ms must be at least 1 ms"),
            ));
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
                    self.reservoir.conc,
                    crate::units::ml(volume_nl),
                    crate::units::ml(self.model.reservoir_nl),
                    self.model.reservoir_nl as f64 * f64::from(self.reservoir.conc) / 1e6
                ),
            ));
        }
        if self.reservoir.empty {
            return Err(ItbError::reservoir(
                "bolus",
                "the reservoir is empty; refill before a bolus",
            ));
        }
        let bolus = Bolus::new(
            id,
            start,
            volume_nl,
            requested_ng,
            self.reservoir.conc,
            duration_ms,
            kind,
        );
        if bolus.end_ms > MAX_TIME_MS {
            return Err(ItbError::validation(
                "duration",
                "the bolus would end after the pump clock's range",
            ));
        }
        Ok(bolus)
    }

    /// Cancel a scheduled or running bolus; what it already added stays delivered.
    pub fn cancel_bolus(&mut self, id: u64) -> Result<()> {
        let Some(b) = self.delivery.remove_bolus(id) else {
            return Err(ItbError::validation(
                "bolus_id",
                format!("no scheduled or running bolus has id {id}"),
            ));
        };
        let event = cancelled_event(&b, self.now_ms, "cancelled");
        self.pending.push(event);
        Ok(())
    }

    /// Alarms that fire at once when the reservoir is filled at or below a threshold.
    pub(crate) fn check_fill_alarms(&mut self) {
        if self.reservoir.low_armed && self.reservoir.count_nl <= self.model.low_reservoir_nl {
            self.reservoir.disarm_low();
            self.pending.push(Event::new(
                self.now_ms,
                EventKind::LowReservoir,
                &[
                    ("reservoir_nl", self.reservoir.count_nl),
                    ("threshold_nl", self.model.low_reservoir_nl),
                ],
            ));
            self.raise(Alarm::LowReservoir);
        }
        if self.reservoir.count_nl < self.model.stroke_nl {
            self.reservoir.mark_empty();
            self.pending.push(Event::new(
                self.now_ms,
                EventKind::ReservoirEmpty,
                &[("reservoir_nl", self.reservoir.count_nl)],
            ));
            self.raise(Alarm::ReservoirEmpty);
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
    pub fn advance_to_recording(
        &mut self,
        until_ms: i64,
        strokes_out: &mut Vec<i64>,
    ) -> Result<Vec<Event>> {
        strokes_out.reserve(self.strokes_bound(until_ms)); // one allocation, no copy as it grows
        let mut events = self.advance_inner(until_ms, Some(strokes_out))?;
        self.number(&mut events);
        Ok(events)
    }

    /// At most how many strokes an advance to `until_ms` fires (0 if not delivering): the
    /// accumulator gain of program and boluses, capped by what the reservoir holds.
    fn strokes_bound(&self, until_ms: i64) -> usize {
        if !self.delivering() || until_ms <= self.now_ms {
            return 0;
        }
        let gain = self.delivery.gain_between(self.now_ms, until_ms);
        let by_gain = (self.delivery.acc + gain) / self.stroke_gain();
        let by_reservoir = i128::from(self.reservoir_nl() / self.model.stroke_nl);
        usize::try_from(by_gain.min(by_reservoir)).unwrap_or(0)
    }

    /// Give returned events their sequence numbers.
    fn number(&mut self, events: &mut [Event]) {
        for e in events {
            e.seq = self.next_seq;
            self.next_seq += 1;
        }
    }

    /// Check the delivery's incremental gain table (bolus knots, kept as boluses are added,
    /// cancelled, re-derived and finished) against a brute-force sum over the boluses and a
    /// table built from scratch (tests and fuzzing; O(boluses²)).
    #[doc(hidden)]
    pub fn check_gain_table(&self) -> Result<()> {
        self.delivery
            .check_gain_table(self.now_ms)
            .map_err(ItbError::snapshot)
    }

    /// Zero the truth ledgers that count since creation or migration (commanded, pumped,
    /// held back, dry), keeping the rest: compares a migrated state with a rebuilt one.
    #[doc(hidden)]
    pub fn zero_truth_ledgers_for_tests(&mut self) {
        let f = &mut self.faults;
        f.commanded_fl = 0;
        f.pumped_fl = 0;
        f.pumped_ag = 0;
        f.held_back_fl = 0;
        f.dry_fl = 0;
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
    pub(crate) fn advance_inner(
        &mut self,
        until_ms: i64,
        mut record: Option<&mut Vec<i64>>,
    ) -> Result<Vec<Event>> {
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
            let span = Span {
                t0: self.now_ms,
                t1: next.min(until_ms),
                slope,
            };
            self.step(span, &mut batch, &mut out, record.as_deref_mut());
            if self.delivery.boundary_due(self.now_ms) {
                flush(&mut batch, &mut out, self.model.stroke_nl);
                self.delivery.process_boundaries(&mut out, self.now_ms);
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
    fn step(
        &mut self,
        span: Span,
        batch: &mut Batch,
        out: &mut Vec<Event>,
        record: Option<&mut Vec<i64>>,
    ) {
        let q = self.model.stroke_nl;
        let g = self.stroke_gain();
        let a = self.delivery.acc;
        let t0 = span.t0;
        let delivering = self.delivering() && span.slope > 0;
        let (low_j, tip_j, allowed) = if delivering {
            (
                self.low_alarm_stroke(),
                self.strokes_until_tip_change(),
                self.reservoir.count_nl / q,
            )
        } else {
            (None, None, 0)
        };
        let strokes_by = |t: i64, cap: i64| -> i64 {
            if !delivering {
                return 0;
            }
            (div_trunc(a + span.slope * i128::from(t - t0), g) as i64).min(cap)
        };
        let time_of = |j: i64| t0 + div_ceil(i128::from(j) * g - a, span.slope) as i64;
        // End at the first event stroke within the span, if any.
        let mut cap = strokes_by(span.t1, allowed);
        let mut t_end = span.t1;
        let event_stroke = [low_j, tip_j, Some(allowed)]
            .into_iter()
            .flatten()
            .filter(|&j| j >= 1)
            .min();
        if let Some(j) = event_stroke.filter(|&j| delivering && j <= cap) {
            cap = j;
            t_end = time_of(j);
        }
        // End earlier where the battery crosses its next threshold.
        let mut crossed = false;
        if let (Some(bat), Some((threshold, _))) = (self.model.battery, self.battery_threshold()) {
            let used_at = |t: i64| -> i128 {
                i128::from(self.battery.used_pc)
                    + i128::from(bat.quiescent_pc_per_ms) * i128::from(t - t0)
                    + i128::from(bat.stroke_pc) * i128::from(strokes_by(t, cap))
                    + i128::from(bat.tone_pc) * i128::from(self.tones_between(t0, t))
            };
            if used_at(t_end) >= threshold {
                let hi = first_at_least(used_at, threshold, t0, t_end);
                t_end = hi;
                crossed = true;
            }
        }
        // Without a battery crossing, `cap` is already the count at `t_end` (the span's end, or
        // the event stroke's time, where the count is exactly that stroke).
        let k = if crossed { strokes_by(t_end, cap) } else { cap };
        let from_tip = self.line.tip_conc;
        if k > 0 {
            if let Some(times) = record {
                record_stroke_times(times, t0, a, span.slope, g, k);
            }
            self.take_strokes(k, time_of(1), time_of(k), batch);
        }
        if delivering {
            self.delivery.acc = a + span.slope * i128::from(t_end - t0) - i128::from(k) * g;
        }
        if let Some(bat) = self.model.battery {
            let drain = i128::from(bat.quiescent_pc_per_ms) * i128::from(t_end - t0)
                + i128::from(bat.stroke_pc) * i128::from(k)
                + i128::from(bat.tone_pc) * i128::from(self.tones_between(t0, t_end));
            self.battery.drain(&bat, drain);
        }
        self.now_ms = t_end;
        if k >= 1 && low_j == Some(k) {
            flush(batch, out, q);
            self.reservoir.disarm_low();
            out.push(Event::new(
                t_end,
                EventKind::LowReservoir,
                &[
                    ("reservoir_nl", self.reservoir.count_nl),
                    ("threshold_nl", self.model.low_reservoir_nl),
                ],
            ));
            self.raise(Alarm::LowReservoir);
        }
        if k >= 1 && tip_j == Some(k) && self.line.tip_conc != from_tip {
            flush(batch, out, q);
            out.push(Event::new(
                t_end,
                EventKind::DrugAtTip,
                &[
                    ("from_ug_per_ml", i64::from(from_tip)),
                    ("to_ug_per_ml", i64::from(self.line.tip_conc)),
                ],
            ));
        }
        if k >= 1 && k == allowed {
            flush(batch, out, q);
            self.reservoir.mark_empty();
            out.push(Event::new(
                t_end,
                EventKind::ReservoirEmpty,
                &[("reservoir_nl", self.reservoir.count_nl)],
            ));
            self.raise(Alarm::ReservoirEmpty);
        }
        if crossed {
            flush(batch, out, q);
            self.check_battery(out);
        }
    }

    /// Apply `n` strokes (first at `first_ms`, last at `last_ms`) to the ledgers.
    fn take_strokes(&mut self, n: i64, first_ms: i64, last_ms: i64, batch: &mut Batch) {
        self.delivery.strokes += n;
        // Physically each stroke is commanded to move q·(1 + e); an occlusion lets a fraction
        // pass (the rest stays in the reservoir); a dry reservoir moves what is left.
        let commanded = n * self.true_stroke_fl();
        let passing = self.faults.passing(commanded);
        let fl = self.reservoir.draw_fl(n * self.model.stroke_nl, passing);
        let f = &mut self.faults;
        f.commanded_fl += i128::from(commanded);
        f.held_back_fl += i128::from(commanded - passing);
        f.dry_fl += i128::from(passing - fl);
        f.pumped_fl += i128::from(fl);
        f.pumped_ag += i128::from(fl) * i128::from(self.reservoir.conc);
        if self.faults.leak.is_some() {
            // Everything crossing the leak site goes into tissue; the tip side is stagnant.
            let out = self.line.fluid.push(fl, self.reservoir.conc);
            self.faults.tissue_fl += out.fl;
            self.faults.tissue_ag += out.ag;
        } else {
            let out = self.line.push(fl, self.reservoir.conc);
            if self.faults.tip_migrated {
                self.faults.tissue_fl += out.fl;
                self.faults.tissue_ag += out.ag;
            } else {
                self.reservoir.record_delivered(&out);
            }
        }
        if batch.count == 0 {
            batch.first_ms = first_ms;
        }
        batch.count += n;
        batch.last_ms = last_ms;
    }
}

/// Emit the pending stroke batch, if any.
fn flush(batch: &mut Batch, out: &mut Vec<Event>, stroke_nl: i64) {
    if batch.count > 0 {
        out.push(Event::new(
            batch.last_ms,
            EventKind::StrokeBatch,
            &[
                ("count", batch.count),
                ("first_ms", batch.first_ms),
                ("volume_nl", batch.count * stroke_nl),
            ],
        ));
        *batch = Batch::default();
    }
}
