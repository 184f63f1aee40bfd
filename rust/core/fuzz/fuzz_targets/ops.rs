//! Arbitrary operation sequences on an `itb_core::Pump`.
//!
//! After every operation: no panic; a refused call (Err) leaves `snapshot()` bytes unchanged;
//! `check_invariants()` is Ok; the projection's gain table equals a brute-force sum over the
//! boluses (up to 64 of them); strokes, clock and battery charge used never decrease; volume and
//! drug mass are conserved (filled = reservoir + path + intrathecal + tissue + withdrawn, in fL
//! and ag; commanded = pumped + held back + dry), faults (occlusion, leak/disconnection, tip
//! migration, battery fault, pocket fill, path replacement) injected and cleared at any time;
//! snapshot → restore gives back equal bytes; returned events carry strictly increasing `seq`
//! and non-decreasing times over the pump's life; projections lie within (now, now + horizon]
//! and agree with what a following advance observes.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use itb_core::{
    Basal, BatteryModel, EventKind, PatientBolusLimits, Period, Pump, PumpConfig, PumpModel, RefillTolerance, Step,
};

const DAY: i64 = 86_400_000;
const MIN_TIME_MS: i64 = -62_135_596_800_000;
const MAX_TIME_MS: i64 = 253_402_300_799_999;
const PC_PER_MAH: i64 = 3_600_000_000_000;

/// `x` folded into `lo..=hi` (`lo <= hi`).
fn fold(x: i64, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        return lo;
    }
    let span = (hi as i128) - (lo as i128) + 1;
    (lo as i128 + (x as i128).rem_euclid(span)) as i64
}

/// A value either used as is (`raw`) or folded into the plausible range.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct V {
    raw: bool,
    x: i64,
}

impl V {
    fn get(self, lo: i64, hi: i64) -> i64 {
        if self.raw {
            self.x
        } else {
            fold(self.x, lo, hi)
        }
    }
}

#[derive(Arbitrary, Debug)]
struct FBattery {
    capacity: V,
    quiescent: V,
    stroke: V,
    tone: V,
    telemetry: V,
    eos: V,
    eri: V,
    non_critical: V,
    critical: V,
}

#[derive(Arbitrary, Debug)]
struct FConfig {
    reservoir_cap: V,
    stroke: V,
    max_rate: V,
    min_rate: V,
    low: V,
    pump_path: V,
    battery: Option<FBattery>,
    now: V,
    reservoir: V,
    conc: V,
    basal: FBasal,
    catheter: V,
    error_ppm: V,
    primed: bool,
}

/// A dose rate: raw ng/day, or a volume rate folded into the model's range and converted.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FRate {
    Off,
    Raw(i64),
    Volume(u32),
}

#[derive(Arbitrary, Debug)]
enum FBasal {
    Continuous(FRate),
    Flex { week: bool, steps: Vec<(u32, FRate)> },
    RawFlex { week: bool, steps: Vec<(i64, i64)> },
}

#[derive(Arbitrary, Debug)]
enum Op {
    SetProgram(FBasal),
    Bolus { volume: V, duration: V, start: Option<V> },
    CancelBolus { index: u8, raw: Option<u64> },
    Refill { added: V, conc: V, aspirated: Option<V>, tol_abs: V, tol_ppm: V },
    Suspend,
    Resume,
    InjectMotorStall,
    ClearFault,
    ReviseCatheter(V),
    StartBridgeBolus,
    StartPrimingBolus,
    SetPatientBolusLimits(Option<(V, V, V, V)>),
    PatientBolus(Option<V>),
    TelemetrySession,
    AdvanceBy { ms: u32, days: u16 },
    AdvanceTo(i64),
    AdvanceRecording { ms: u16 },
    Project { horizon: V, assume_refills: bool },
    ProjectThenAdvance { horizon: u32, days: u8 },
    Plans,
    Snapshot,
    RestoreSaved,
    InjectOcclusion(V),
    ClearOcclusion,
    InjectLeak { position: V, disconnection: bool },
    ClearLeak,
    InjectTipMigration,
    ClearTipMigration,
    InjectBatteryFault,
    ClearBatteryFault,
    RefillPocket { added: V, conc: V, pocket: V },
    ReplaceFluidPath(V),
}

fn model_of(c: &FConfig) -> PumpModel {
    let reservoir_nl = c.reservoir_cap.get(1, 1_000_000_000);
    let stroke_nl = c.stroke.get(1, 1_000_000);
    let max_rate = c.max_rate.get(1, 1_000_000_000.min(stroke_nl.saturating_mul(DAY)));
    let min_rate = c.min_rate.get(1, max_rate);
    let battery = c.battery.as_ref().map(|b| {
        let max = 1_000 * PC_PER_MAH;
        let capacity_pc = b.capacity.get(1, max);
        let eos_pc = b.eos.get(0, capacity_pc.saturating_sub(1));
        BatteryModel {
            capacity_pc,
            quiescent_pc_per_ms: b.quiescent.get(0, 1_000_000_000),
            stroke_pc: b.stroke.get(0, max),
            tone_pc: b.tone.get(0, max),
            telemetry_pc: b.telemetry.get(0, max),
            eos_pc,
            eri_pc: b.eri.get(eos_pc, capacity_pc.saturating_sub(1)),
            non_critical_tone_ms: b.non_critical.get(1_000, 7 * DAY),
            critical_tone_ms: b.critical.get(1_000, 7 * DAY),
        }
    });
    PumpModel {
        name: "fuzz".into(),
        reservoir_nl,
        stroke_nl,
        min_rate_nl_per_day: min_rate,
        max_rate_nl_per_day: max_rate,
        low_reservoir_nl: c.low.get(0, reservoir_nl),
        pump_path_nl: c.pump_path.get(0, 100_000_000),
        battery,
    }
}

fn ng_of(r: FRate, model: &PumpModel, conc: i64) -> i64 {
    match r {
        FRate::Off => 0,
        FRate::Raw(x) => x,
        FRate::Volume(v) => {
            let rate = fold(i64::from(v), model.min_rate_nl_per_day.max(1), model.max_rate_nl_per_day.max(1));
            (i128::from(rate) * i128::from(conc) / 1000) as i64
        }
    }
}

fn basal_of(b: &FBasal, model: &PumpModel, conc: i64) -> Basal {
    match b {
        FBasal::Continuous(r) => Basal::Continuous { ng_per_day: ng_of(*r, model, conc) },
        FBasal::Flex { week, steps } => {
            let period = if *week { Period::Week } else { Period::Day };
            let n = steps.len().max(1) as i64;
            let room = period.ms() / n;
            let mut offset = 0i64;
            let mut out = Vec::new();
            for (i, (delta, r)) in steps.iter().enumerate() {
                if i > 0 {
                    offset += 1 + i64::from(*delta) % room.max(1);
                }
                out.push(Step { offset_ms: offset, ng_per_day: ng_of(*r, model, conc) });
            }
            Basal::Flex { period, steps: out }
        }
        FBasal::RawFlex { week, steps } => Basal::Flex {
            period: if *week { Period::Week } else { Period::Day },
            steps: steps.iter().map(|&(offset_ms, ng_per_day)| Step { offset_ms, ng_per_day }).collect(),
        },
    }
}

fn build(c: &FConfig) -> Pump {
    let model = model_of(c);
    let conc = c.conc.get(1, 100_000);
    let cfg = PumpConfig {
        now_ms: c.now.get(MIN_TIME_MS, MAX_TIME_MS),
        reservoir_nl: c.reservoir.get(0, model.reservoir_nl),
        concentration: conc,
        basal: basal_of(&c.basal, &model, conc),
        catheter_nl: c.catheter.get(0, 10_000_000),
        stroke_error_ppm: c.error_ppm.get(-500_000, 500_000),
        path_primed: c.primed,
        model,
    };
    match Pump::new(cfg) {
        Ok(p) => p,
        Err(_) => {
            let model = PumpModel {
                name: "fallback".into(),
                reservoir_nl: 40_000_000,
                stroke_nl: 250,
                min_rate_nl_per_day: 1,
                max_rate_nl_per_day: 24_000_000,
                low_reservoir_nl: 2_000_000,
                pump_path_nl: 200,
                battery: None,
            };
            Pump::new(PumpConfig::new(model, 0, 20_000_000, 2000, Basal::Continuous { ng_per_day: 400_000 }))
                .expect("fallback pump")
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: FConfig,
    ops: Vec<Op>,
}

/// What must never decrease, and the event numbering seen so far.
struct Watch {
    strokes: i64,
    now: i64,
    used: i64,
    last_seq: u64,
    last_time: i64,
}

impl Watch {
    fn of(p: &Pump) -> Self {
        Watch {
            strokes: p.strokes(),
            now: p.now_ms(),
            used: p.battery_used_pc(),
            last_seq: p.next_event_seq() - 1,
            last_time: i64::MIN,
        }
    }
}

fn check_state(p: &Pump, w: &mut Watch, op: &Op) {
    if let Err(e) = p.check_invariants() {
        panic!("invariants broken after {op:?}: {e}");
    }
    if p.boluses().len() <= 64 {
        if let Err(e) = p.check_gain_table() {
            panic!("gain table differs from brute force after {op:?}: {e}");
        }
    }
    assert!(p.strokes() >= w.strokes, "strokes decreased after {op:?}");
    assert!(p.now_ms() >= w.now, "clock went back after {op:?}");
    assert!(p.battery_used_pc() >= w.used, "battery charge used decreased after {op:?}");
    w.strokes = p.strokes();
    w.now = p.now_ms();
    w.used = p.battery_used_pc();
    let f = p.faults();
    let fl = i128::from(p.true_reservoir_fl())
        + i128::from(p.path_fl())
        + i128::from(p.delivered_fl())
        + i128::from(f.tissue_fl)
        + i128::from(p.withdrawn_fl());
    assert_eq!(i128::from(p.filled_fl()), fl, "volume not conserved after {op:?}");
    let ag = i128::from(p.true_reservoir_fl()) * i128::from(p.concentration())
        + p.path_ag()
        + p.delivered_ag()
        + f.tissue_ag
        + p.withdrawn_ag();
    assert_eq!(p.filled_ag(), ag, "drug mass not conserved after {op:?}");
    assert_eq!(f.commanded_fl, f.pumped_fl + f.held_back_fl + f.dry_fl, "commanded flow not accounted for after {op:?}");
    let snap = p.snapshot().expect("snapshot");
    let back = Pump::restore(&snap).unwrap_or_else(|e| panic!("restore of own snapshot failed after {op:?}: {e}"));
    assert_eq!(back.snapshot().expect("snapshot"), snap, "snapshot round trip after {op:?}");
    assert!(back == *p, "restored state differs after {op:?}");
}

fn check_events(events: &[itb_core::Event], p: &Pump, w: &mut Watch) {
    for e in events {
        assert!(e.seq > w.last_seq, "event seq not increasing: {} after {}", e.seq, w.last_seq);
        assert!(e.time_ms >= w.last_time, "event time went back: {e:?} after {}", w.last_time);
        assert!(e.time_ms <= p.now_ms(), "event after now: {e:?}");
        w.last_seq = e.seq;
        w.last_time = e.time_ms;
    }
    assert_eq!(p.next_event_seq(), w.last_seq + 1, "next_event_seq out of step");
}

fn check_projection(p: &Pump, horizon: i64, proj: &itb_core::Projection) {
    let limit = p.now_ms().saturating_add(horizon).min(MAX_TIME_MS);
    for t in [proj.next_stroke_ms, proj.low_reservoir_ms, proj.reservoir_empty_ms, proj.drug_at_tip_ms, proj.eri_ms, proj.eos_ms, proj.physically_dry_ms]
        .into_iter()
        .flatten()
    {
        assert!(t > p.now_ms() && t <= limit, "projected time {t} outside ({}, {limit}]: {proj:?}", p.now_ms());
    }
}

fn run(input: Input) {
    let mut p = build(&input.config);
    let mut w = Watch::of(&p);
    let mut saved: Option<Vec<u8>> = None;
    for op in &input.ops {
        let before = p.snapshot().expect("snapshot");
        let conc = i64::from(p.concentration());
        let model = p.model().clone();
        let now = p.now_ms();
        let ok = match op {
            Op::SetProgram(b) => p.set_program(basal_of(b, &model, conc)).is_ok(),
            Op::Bolus { volume, duration, start } => {
                let vol = volume.get(1, model.reservoir_nl.min(10_000_000));
                let dose = if volume.raw { vol } else { (i128::from(vol) * i128::from(conc) / 1000).max(1) as i64 };
                let start = start.map(|s| if s.raw { s.x } else { now.saturating_add(fold(s.x, 0, 30 * DAY)) });
                p.bolus(dose, duration.get(1, 30 * DAY), start).is_ok()
            }
            Op::CancelBolus { index, raw } => {
                let id = match raw {
                    Some(id) => *id,
                    None => p.boluses().get(usize::from(*index) % p.boluses().len().max(1)).map(|b| b.id).unwrap_or(0),
                };
                p.cancel_bolus(id).is_ok()
            }
            Op::Refill { added, conc: c, aspirated, tol_abs, tol_ppm } => p
                .refill(
                    added.get(0, model.reservoir_nl),
                    c.get(1, 100_000),
                    aspirated.map(|a| a.get(0, model.reservoir_nl)),
                    RefillTolerance { abs_nl: tol_abs.get(0, 1_000_000_000), ppm: tol_ppm.get(0, 1_000_000) },
                )
                .is_ok(),
            Op::Suspend => p.suspend().is_ok(),
            Op::Resume => p.resume().is_ok(),
            Op::InjectMotorStall => p.inject_motor_stall().is_ok(),
            Op::ClearFault => p.clear_fault().is_ok(),
            Op::ReviseCatheter(v) => p.revise_catheter(v.get(0, 10_000_000)).is_ok(),
            Op::StartBridgeBolus => p.start_bridge_bolus().is_ok(),
            Op::StartPrimingBolus => p.start_priming_bolus().is_ok(),
            Op::SetPatientBolusLimits(l) => {
                let limits = l.map(|(dose, dur, lock, max)| PatientBolusLimits {
                    dose_ng: if dose.raw { dose.x } else { (i128::from(fold(dose.x, 1, 1_000_000)) * i128::from(conc) / 1000).max(1) as i64 },
                    duration_ms: dur.get(1, DAY),
                    lockout_ms: lock.get(0, DAY),
                    max_per_24h: max.get(1, 24),
                });
                p.set_patient_bolus_limits(limits).is_ok()
            }
            Op::PatientBolus(at) => {
                let at = at.map(|a| if a.raw { a.x } else { now.saturating_add(fold(a.x, 0, 2 * DAY)) });
                p.patient_bolus(at).is_ok()
            }
            Op::TelemetrySession => p.telemetry_session().is_ok(),
            Op::AdvanceBy { ms, days } => {
                let until = now.saturating_add(i64::from(*ms)).saturating_add(i64::from(*days % 1000) * DAY);
                match p.advance_to(until) {
                    Ok(ev) => {
                        check_events(&ev, &p, &mut w);
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::AdvanceTo(t) => {
                // Bounded: at most 3 years ahead (raw times beyond are refused or clamped here).
                let until = if *t > now.saturating_add(3 * 365 * DAY) { now.saturating_add(fold(*t, 0, 3 * 365 * DAY)) } else { *t };
                match p.advance_to(until) {
                    Ok(ev) => {
                        check_events(&ev, &p, &mut w);
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::AdvanceRecording { ms } => {
                let s0 = p.strokes();
                let mut times = Vec::new();
                match p.advance_to_recording(now.saturating_add(i64::from(*ms)), &mut times) {
                    Ok(ev) => {
                        check_events(&ev, &p, &mut w);
                        assert_eq!(times.len() as i64, p.strokes() - s0, "recorded strokes");
                        assert!(times.windows(2).all(|t| t[0] < t[1]), "stroke times not increasing");
                        assert!(times.iter().all(|&t| t > now && t <= p.now_ms()), "stroke time outside the span");
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Project { horizon, assume_refills } => {
                let h = horizon.get(0, 10 * 365 * DAY);
                match p.project_with(h, *assume_refills) {
                    Ok(proj) => {
                        check_projection(&p, h, &proj);
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::ProjectThenAdvance { horizon, days } => {
                let h = i64::from(*horizon) + i64::from(*days) * DAY;
                match p.project(h) {
                    Ok(proj) => {
                        check_projection(&p, h, &proj);
                        let before = p.clone();
                        if let Ok(ev) = p.advance_to(now.saturating_add(h)) {
                            check_events(&ev, &p, &mut w);
                            let first = |k: EventKind| ev.iter().find(|e| e.kind == k && e.time_ms > now).map(|e| e.time_ms);
                            // Events pending from calls (a patient activation at a later time advances first)
                            // may include strokes up to `now`: only what happens after now counts.
                            let stroke = ev
                                .iter()
                                .find(|e| e.kind == EventKind::StrokeBatch && e.time_ms > now)
                                .and_then(|e| e.get("first_ms"));
                            assert_eq!(proj.next_stroke_ms, stroke, "projected next stroke: {proj:?}");
                            assert_eq!(proj.low_reservoir_ms, first(EventKind::LowReservoir), "projected low: {proj:?}");
                            assert_eq!(proj.reservoir_empty_ms, first(EventKind::ReservoirEmpty), "projected empty: {proj:?}");
                            assert_eq!(proj.drug_at_tip_ms, first(EventKind::DrugAtTip), "projected tip: {proj:?}");
                            assert_eq!(proj.eri_ms, first(EventKind::Eri), "projected ERI: {proj:?}");
                            assert_eq!(proj.eos_ms, first(EventKind::Eos), "projected EOS: {proj:?}");
                            // No event marks the physically dry stroke: the dry ledger first grows there.
                            let dry0 = before.faults().dry_fl;
                            match proj.physically_dry_ms {
                                None => assert_eq!(p.faults().dry_fl, dry0, "dry but not projected: {proj:?}"),
                                Some(d) => {
                                    let mut q = before.clone();
                                    if q.advance_to(d - 1).is_ok() {
                                        assert_eq!(q.faults().dry_fl, dry0, "dry before the projected stroke: {proj:?}");
                                        if q.advance_to(d).is_ok() {
                                            assert!(q.faults().dry_fl > dry0, "not dry at the projected stroke: {proj:?}");
                                        }
                                    }
                                }
                            }
                        }
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Plans => {
                let _ = p.bridge_bolus_plan();
                let _ = p.priming_bolus_plan();
                let _ = p.active_alarms();
                let _ = p.battery_remaining_pc();
                assert_eq!(p.snapshot().expect("snapshot"), before, "a read changed the state");
                true
            }
            Op::Snapshot => {
                saved = Some(before.clone());
                true
            }
            Op::InjectOcclusion(v) => p.inject_occlusion(v.get(0, 999_999)).is_ok(),
            Op::ClearOcclusion => p.clear_occlusion().is_ok(),
            Op::InjectLeak { position, disconnection } => {
                p.inject_leak(position.get(0, p.catheter_nl()), *disconnection).is_ok()
            }
            Op::ClearLeak => p.clear_leak().is_ok(),
            Op::InjectTipMigration => p.inject_tip_migration().is_ok(),
            Op::ClearTipMigration => p.clear_tip_migration().is_ok(),
            Op::InjectBatteryFault => p.inject_battery_fault().is_ok(),
            Op::ClearBatteryFault => p.clear_battery_fault().is_ok(),
            Op::RefillPocket { added, conc: c, pocket } => {
                let added = added.get(0, model.reservoir_nl);
                p.refill_with_pocket_fill(added, c.get(1, 100_000), None, RefillTolerance::default(), pocket.get(0, added))
                    .is_ok()
            }
            Op::ReplaceFluidPath(v) => p.replace_fluid_path(v.get(0, 10_000_000)).is_ok(),
            Op::RestoreSaved => {
                if let Some(s) = &saved {
                    p = Pump::restore(s).expect("restore of a saved snapshot");
                    assert_eq!(&p.snapshot().expect("snapshot"), s, "restored snapshot differs");
                    w = Watch::of(&p);
                }
                true
            }
        };
        if !ok {
            assert_eq!(p.snapshot().expect("snapshot"), before, "refused {op:?} changed the state");
        }
        check_state(&p, &mut w, op);
    }
}

fuzz_target!(|input: Input| run(input));
