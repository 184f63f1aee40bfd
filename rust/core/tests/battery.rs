//! Battery, alarms and EOS: hand-computed cases and projection-vs-simulation properties.

mod common;
use common::*;
use itb_core::{
    project_many, Basal, BatteryModel, EventKind, ItbError, ProjectionMode, Pump, PumpConfig,
    PumpModel,
};
use proptest::prelude::*;

fn battery(
    capacity: i64,
    quiescent: i64,
    stroke: i64,
    tone: i64,
    eri: i64,
    eos: i64,
) -> BatteryModel {
    BatteryModel {
        capacity_pc: capacity,
        quiescent_pc_per_ms: quiescent,
        stroke_pc: stroke,
        tone_pc: tone,
        telemetry_pc: 1_000,
        eri_pc: eri,
        eos_pc: eos,
        non_critical_tone_ms: 3_600_000,
        critical_tone_ms: 600_000,
    }
}

fn with_battery(b: BatteryModel, q: i64, reservoir: i64, low: i64) -> PumpModel {
    PumpModel {
        battery: Some(b),
        ..model(q, 40_000_000, low)
    }
    .clone()
    .with_reservoir(reservoir)
}

trait WithReservoir {
    fn with_reservoir(self, r: i64) -> Self;
}
impl WithReservoir for PumpModel {
    fn with_reservoir(mut self, r: i64) -> Self {
        self.reservoir_nl = self.reservoir_nl.max(r);
        self
    }
}

#[test]
fn quiescent_only_eri_and_eos_by_hand() {
    // No delivery (rate 0): used(t) = 10 pC/ms · t. Capacity 1_000_000, ERI at remaining ≤ 400_000
    // → used ≥ 600_000 at t = 60_000 ms; EOS at remaining ≤ 100_000 → used ≥ 900_000. The ERI alarm
    // tones hourly (first at 60_000 + 3_600_000), far later, so EOS = 90_000 ms.
    let m = with_battery(
        battery(1_000_000, 10, 0, 50, 400_000, 100_000),
        2000,
        1_000_000,
        0,
    );
    let mut p = pump(m, 0, 1_000_000, 1000, continuous(0));
    let proj = p.project(DAY).unwrap();
    assert_eq!((proj.eri_ms, proj.eos_ms), (Some(60_000), Some(90_000)));
    let ev = p.advance_to(DAY).unwrap();
    let at = |k| ev.iter().find(|e| e.kind == k).map(|e| e.time_ms);
    assert_eq!(at(EventKind::Eri), Some(60_000));
    assert_eq!(at(EventKind::Eos), Some(90_000));
    assert!(p.is_eos());
    assert_eq!(p.battery_remaining_pc(), Some(0)); // drained to 0 by the end of the day, never below
    assert!(matches!(
        p.bolus(1000, 1000, None),
        Err(ItbError::EndOfService { .. })
    ));
    assert!(matches!(
        p.set_program(continuous(0)),
        Err(ItbError::EndOfService { .. })
    ));
}

#[test]
fn strokes_and_tones_cost_charge_by_hand() {
    // 1_000_000 nL/day, q = 1000 → a stroke every 86_400 ms, each 1_000 pC; no quiescent drain.
    // Reservoir 3000 nL, low at 1000: low after stroke 2 (t = 172_800); empty after stroke 3
    // (t = 259_200). Low tones hourly from 172_800 + 3_600_000; empty tones every 600_000 from
    // 259_200 + 600_000. After one day: 3 strokes = 3000 pC; empty tones at 859_200 + k·600_000 ≤
    // 86_400_000 → k = 0..=142 → 143 tones; low tones at 3_772_800 + k·3_600_000 ≤ 86_400_000 →
    // k = 0..=22 → 23 tones. Tones cost 10 pC: (143 + 23) · 10 = 1660. Total 4660.
    let m = with_battery(
        battery(1_000_000_000, 0, 1000, 10, 1000, 0),
        1000,
        3000,
        1000,
    );
    let mut p = pump(m, 0, 3000, 1000, continuous(1_000_000));
    p.advance_to(DAY).unwrap();
    assert_eq!(p.strokes(), 3);
    assert_eq!(p.battery_used_pc(), 4660);
}

#[derive(Debug, Clone)]
struct Case {
    q: i64,
    rate: i64,
    steps: Vec<(i64, i64)>,
    reservoir: i64,
    low: i64,
    capacity: i64,
    quiescent: i64,
    stroke_pc: i64,
    tone_pc: i64,
    eri_frac: i64,
    eos_frac: i64,
    boluses: Vec<(i64, i64, i64)>,
    stall_at: Option<i64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            100i64..3000,
            0i64..3_000_000,
            prop::collection::vec((0i64..DAY, 0i64..3_000_000), 0..4),
        ),
        (1i64..2_000_000, 0i64..500_000),
        (
            1_000_000i64..1_000_000_000_000,
            0i64..2000,
            0i64..5_000_000,
            0i64..50_000_000,
        ),
        (1i64..60, 0i64..30),
        prop::collection::vec((0i64..20 * DAY, 1i64..100_000, 1i64..DAY), 0..3),
        prop::option::of(0i64..30 * DAY),
    )
        .prop_map(
            |(
                (q, rate, steps),
                (reservoir, low),
                (capacity, quiescent, stroke_pc, tone_pc),
                (eri, eos),
                boluses,
                stall_at,
            )| Case {
                q,
                rate,
                steps,
                reservoir,
                low: low.min(reservoir),
                capacity,
                quiescent,
                stroke_pc,
                tone_pc,
                eri_frac: eri.max(eos),
                eos_frac: eos.min(eri),
                boluses,
                stall_at,
            },
        )
}

fn build(c: &Case) -> Option<Pump> {
    let b = battery(
        c.capacity,
        c.quiescent,
        c.stroke_pc,
        c.tone_pc,
        c.capacity * c.eri_frac / 100,
        c.capacity * c.eos_frac / 100,
    );
    let m = PumpModel {
        min_rate_nl_per_day: 1,
        battery: Some(b),
        ..model(c.q, 2_000_000, c.low)
    };
    let mut steps = c.steps.clone();
    steps.push((0, c.rate));
    steps.sort_unstable();
    steps.dedup_by_key(|s| s.0);
    let basal = if steps.len() == 1 {
        Basal::Continuous { ng_per_day: c.rate }
    } else {
        flex_day(&steps)
    };
    let mut p = Pump::new(PumpConfig::new(m, 0, c.reservoir, 1000, basal)).ok()?;
    for &(s, v, d) in &c.boluses {
        let _ = p.bolus(v, d, Some(s));
    }
    Some(p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// ERI and EOS projections equal what the simulation observes; battery only decreases.
    #[test]
    fn battery_projection_equals_simulation(c in case(), horizon in 1i64..60 * DAY) {
        let Some(mut p) = build(&c) else { return Ok(()) };
        if let Some(t) = c.stall_at.filter(|&t| t < horizon) {
            // Advance, inject a stall, and project from there.
            p.advance_to(t).unwrap();
            p.inject_motor_stall().unwrap();
        }
        let start = p.now_ms();
        let proj = p.project(horizon).unwrap();
        let mut last_used = p.battery_used_pc();
        let mut events = Vec::new();
        // Advance in a few pieces, checking monotone drain.
        for f in [1i64, 3, 7, 10] {
            events.extend(p.advance_to(start + horizon * f / 10).unwrap());
            prop_assert!(p.battery_used_pc() >= last_used);
            last_used = p.battery_used_pc();
            prop_assert!(p.check_invariants().is_ok());
        }
        let first = |k: EventKind| events.iter().find(|e| e.kind == k && e.time_ms > start).map(|e| e.time_ms);
        prop_assert_eq!(proj.eri_ms, first(EventKind::Eri));
        prop_assert_eq!(proj.eos_ms, first(EventKind::Eos));
        prop_assert_eq!(proj.low_reservoir_ms, first(EventKind::LowReservoir));
        prop_assert_eq!(proj.reservoir_empty_ms, first(EventKind::ReservoirEmpty));
        if let Some(eos) = proj.eos_ms {
            let after: Vec<_> = events.iter().filter(|e| e.kind == EventKind::StrokeBatch && e.time_ms > eos).collect();
            prop_assert!(after.is_empty(), "strokes after EOS: {:?}", after);
        }
    }

    /// With `assume_refills`, ERI/EOS equal a simulation that refills at each low alarm.
    #[test]
    fn assume_refills_equals_refilling_simulation(c in case(), horizon in 1i64..60 * DAY) {
        let mut c = c;
        c.stall_at = None;
        c.low = c.low.max(c.q); // a refill at the low alarm always comes before empty
        c.reservoir = 2_000_000; // full model capacity: few refill cycles per run
        let Some(mut p) = build(&c) else { return Ok(()) };
        let proj = p.project_with(horizon, true).unwrap();
        let end = horizon;
        let mut eri = None;
        let mut eos = None;
        let mut guard = 0;
        while p.now_ms() < end && guard < 1_000_000 {
            guard += 1;
            let next_low = p.project(end - p.now_ms()).unwrap().low_reservoir_ms;
            let until = next_low.unwrap_or(end).min(end);
            for e in p.advance_to(until).unwrap() {
                match e.kind {
                    EventKind::Eri if eri.is_none() && e.time_ms > 0 => eri = Some(e.time_ms),
                    EventKind::Eos if eos.is_none() && e.time_ms > 0 => eos = Some(e.time_ms),
                    _ => {}
                }
            }
            if next_low == Some(until) && !p.is_eos() {
                p.refill(c.reservoir, 1000, None, Default::default()).unwrap();
            }
        }
        prop_assert_eq!(proj.eri_ms, eri);
        prop_assert_eq!(proj.eos_ms, eos);
    }

    /// `project_many` row `i` is exactly pump `i`'s own projection under each mode (as
    /// programmed, refills on time, every patient bolus taken), on any number of threads, and
    /// the pumps are unchanged.
    #[test]
    fn project_many_equals_each_pumps_projection(
        cases in prop::collection::vec(case(), 1..8),
        lockout in 0i64..DAY,
        horizon in 1i64..120 * DAY,
    ) {
        let mut pumps: Vec<Pump> = cases.iter().filter_map(build).collect();
        for (k, p) in pumps.iter_mut().enumerate() {
            if k % 2 == 0 {
                let limits = itb_core::PatientBolusLimits {
                    dose_ng: 50_000,
                    duration_ms: 600_000,
                    lockout_ms: lockout,
                    max_per_24h: 4,
                };
                let _ = p.set_patient_bolus_limits(Some(limits));
            }
        }
        let before: Vec<i64> = pumps.iter().map(|p| p.reservoir_nl()).collect();
        for mode in [
            ProjectionMode::AsProgrammed,
            ProjectionMode::RefillsOnTime,
            ProjectionMode::MaxPatientBoluses,
        ] {
            for threads in [Some(1), Some(3)] {
                let cols = project_many(&pumps, horizon, mode, threads).unwrap();
                for (i, p) in pumps.iter().enumerate() {
                    let own = match mode {
                        ProjectionMode::AsProgrammed => p.project_with(horizon, false),
                        ProjectionMode::RefillsOnTime => p.project_with(horizon, true),
                        ProjectionMode::MaxPatientBoluses => p.project_max_patient_boluses(horizon),
                    }
                    .unwrap();
                    let t = |x: Option<i64>| x.unwrap_or(i64::MIN);
                    prop_assert_eq!(cols.next_stroke_ms[i], t(own.next_stroke_ms));
                    prop_assert_eq!(cols.low_reservoir_ms[i], t(own.low_reservoir_ms));
                    prop_assert_eq!(cols.reservoir_empty_ms[i], t(own.reservoir_empty_ms));
                    prop_assert_eq!(cols.eri_ms[i], t(own.eri_ms));
                    prop_assert_eq!(cols.eos_ms[i], t(own.eos_ms));
                    prop_assert_eq!(cols.physically_dry_ms[i], t(own.physically_dry_ms));
                }
            }
        }
        let after: Vec<i64> = pumps.iter().map(|p| p.reservoir_nl()).collect();
        prop_assert_eq!(before, after);
        prop_assert!(project_many(&pumps, -1, ProjectionMode::AsProgrammed, None).is_err());
    }
}
