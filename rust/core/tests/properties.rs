//! proptest properties of the delivery model (docs: design.md#delivery-model).

mod common;
use common::*;
use itb_core::{Basal, EventKind, Period, Pump, PumpConfig, PumpModel, Step};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Scenario {
    q: i64,
    reservoir: i64,
    low: i64,
    conc: i64,
    steps: Vec<(i64, i64)>,
    week: bool,
    boluses: Vec<(i64, i64, i64)>, // (start offset ms, dose ng, duration ms)
    start: i64,
    catheter_nl: i64,
    error_ppm: i64,
    primed: bool,
    refill_conc: Option<i64>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        1i64..5000,
        prop::collection::vec((0i64..DAY, 0i64..2_000_000), 1..8),
        any::<bool>(),
        prop::collection::vec((0i64..3 * DAY, 1i64..200_000, 1i64..DAY), 0..4),
        -10 * DAY..10 * DAY,
        1i64..2_000_000,
        0i64..500_000,
        prop::sample::select(vec![500i64, 1000, 2000, 3000]),
        (
            0i64..300_000,
            -100_000i64..100_000,
            any::<bool>(),
            prop::option::of(prop::sample::select(vec![50i64, 500, 2000])),
        ),
    )
        .prop_map(
            |(
                q,
                mut steps,
                week,
                boluses,
                start,
                reservoir,
                low,
                conc,
                (catheter_nl, error_ppm, primed, refill_conc),
            )| {
                steps.sort_unstable();
                steps.dedup_by_key(|s| s.0);
                steps[0].0 = 0;
                if week {
                    for (i, s) in steps.iter_mut().enumerate() {
                        s.0 += (i as i64 % 7) * DAY;
                    }
                    steps.sort_unstable();
                }
                Scenario {
                    q,
                    reservoir,
                    low: low.min(reservoir),
                    conc,
                    steps,
                    week,
                    boluses,
                    start,
                    catheter_nl,
                    error_ppm,
                    primed,
                    refill_conc,
                }
            },
        )
}

fn build(s: &Scenario) -> Option<Pump> {
    let model = PumpModel {
        min_rate_nl_per_day: 1,
        ..model(s.q, 2_000_000, s.low)
    };
    let basal = Basal::Flex {
        period: if s.week { Period::Week } else { Period::Day },
        steps: s
            .steps
            .iter()
            .map(|&(offset_ms, ng_per_day)| Step {
                offset_ms,
                ng_per_day,
            })
            .collect(),
    };
    let mut p = Pump::new(PumpConfig {
        model,
        now_ms: s.start,
        reservoir_nl: s.reservoir,
        concentration: s.conc,
        basal,
        catheter_nl: s.catheter_nl,
        stroke_error_ppm: s.error_ppm,
        path_primed: s.primed,
    })
    .ok()?;
    if let Some(c) = s.refill_conc {
        p.refill(s.reservoir, c, None, Default::default()).ok()?;
    }
    for &(off, dose, dur) in &s.boluses {
        let _ = p.bolus(dose, dur, Some(s.start + off));
    }
    Some(p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// project() equals what advance_to then observes.
    #[test]
    fn projection_equals_simulation(s in scenario(), horizon in 1i64..200 * DAY) {
        let Some(mut p) = build(&s) else { return Ok(()) };
        p.advance_to(s.start).unwrap();
        let proj = p.project(horizon).unwrap();
        let before = p.strokes();
        let mut times = Vec::new();
        let ev = p.advance_to_recording(s.start + horizon, &mut times).unwrap();
        prop_assert_eq!(proj.next_stroke_ms, times.first().copied());
        let low = ev.iter().find(|e| e.kind == EventKind::LowReservoir && e.time_ms > s.start).map(|e| e.time_ms);
        let empty = ev.iter().find(|e| e.kind == EventKind::ReservoirEmpty && e.time_ms > s.start).map(|e| e.time_ms);
        prop_assert_eq!(proj.low_reservoir_ms, low);
        prop_assert_eq!(proj.reservoir_empty_ms, empty);
        let tip = ev.iter().find(|e| e.kind == EventKind::DrugAtTip && e.time_ms > s.start).map(|e| e.time_ms);
        prop_assert_eq!(proj.drug_at_tip_ms, tip);
        prop_assert_eq!(p.strokes() - before, times.len() as i64);
    }

    /// project() equals what advance_to then observes with hundreds of scheduled boluses
    /// (the span walker keeps only running boluses: no cost per bolus already over).
    #[test]
    fn projection_equals_simulation_with_many_boluses(
        s in scenario(),
        many in prop::collection::vec((0i64..30 * DAY, 1i64..20_000, 1i64..3_600_000), 50..300),
        horizon in 1i64..60 * DAY,
    ) {
        let Some(mut p) = build(&s) else { return Ok(()) };
        for &(off, dose, dur) in &many {
            let _ = p.bolus(dose, dur, Some(s.start + off));
        }
        let proj = p.project(horizon).unwrap();
        let now = p.now_ms();
        let mut times = Vec::new();
        let ev = p.advance_to_recording(now + horizon, &mut times).unwrap();
        prop_assert_eq!(proj.next_stroke_ms, times.first().copied());
        let first = |k: EventKind| ev.iter().find(|e| e.kind == k && e.time_ms > now).map(|e| e.time_ms);
        prop_assert_eq!(proj.low_reservoir_ms, first(EventKind::LowReservoir));
        prop_assert_eq!(proj.reservoir_empty_ms, first(EventKind::ReservoirEmpty));
        prop_assert_eq!(proj.drug_at_tip_ms, first(EventKind::DrugAtTip));
    }

    /// Advancing in pieces gives the same strokes as advancing at once, events in order,
    /// and ledgers balance exactly.
    #[test]
    fn pieces_equal_whole_and_ledgers_balance(s in scenario(), cuts in prop::collection::vec(0i64..20 * DAY, 0..6)) {
        let Some(mut whole) = build(&s) else { return Ok(()) };
        let mut pieces = whole.clone();
        let end = s.start + 20 * DAY;
        let mut t1 = Vec::new();
        whole.advance_to_recording(end, &mut t1).unwrap();
        let mut t2 = Vec::new();
        let mut cuts: Vec<i64> = cuts.into_iter().map(|c| s.start + c).collect();
        cuts.sort_unstable();
        cuts.push(end);
        let mut last_time = i64::MIN;
        let mut last_seq = 0;
        for c in cuts {
            for e in pieces.advance_to_recording(c, &mut t2).unwrap() {
                prop_assert!(e.time_ms >= last_time);
                prop_assert!(e.seq > last_seq, "sequence numbers strictly increase over the pump's life");
                last_time = e.time_ms;
                last_seq = e.seq;
            }
        }
        prop_assert_eq!(&t1, &t2);
        prop_assert!(t1.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(whole.eq_ignoring_event_numbers(&pieces));
        for p in [&whole, &pieces] {
            prop_assert_eq!(p.filled_fl(), p.true_reservoir_fl() + p.path_fl() + p.delivered_fl() + p.withdrawn_fl());
            prop_assert_eq!(p.filled_ag(), i128::from(p.true_reservoir_fl()) * i128::from(p.concentration()) + p.path_ag() + p.delivered_ag() + p.withdrawn_ag());
            prop_assert!(p.check_invariants().is_ok());
        }
    }

    /// Closed form equals the millisecond brute force on short spans (day program, tiny q).
    #[test]
    fn closed_form_equals_brute_force(
        q in 1i64..40,
        steps in prop::collection::vec((0i64..DAY, 0i64..3_000_000), 1..5),
        boluses in prop::collection::vec((0i64..200_000, 1i64..400, 1i64..100_000), 0..3),
        reservoir in 0i64..3000,
        until in 1i64..400_000,
    ) {
        let mut steps = steps;
        steps.sort_unstable();
        steps.dedup_by_key(|s| s.0);
        steps[0].0 = 0;
        // conc 1000 µg/mL: 1 ng ↔ 1 nL, so ng/day = nL/day.
        let m = PumpModel { min_rate_nl_per_day: 1, ..model(q, 1_000_000, 0) };
        let Ok(mut p) = Pump::new(PumpConfig { model: m, now_ms: 0, reservoir_nl: reservoir, concentration: 1000, basal: flex_day(&steps), catheter_nl: 0, stroke_error_ppm: 0, path_primed: true }) else { return Ok(()) };
        let mut accepted = Vec::new();
        for &(s, v, d) in &boluses {
            if p.bolus(v, d, Some(s)).is_ok() {
                accepted.push((s, v, d));
            }
        }
        let mut brute = Brute { now: 0, a: 0, strokes: 0, reservoir, q, rates: steps.clone(), boluses: accepted, times: vec![] };
        let mut times = Vec::new();
        p.advance_to_recording(until, &mut times).unwrap();
        brute.run_to(until);
        prop_assert_eq!(times, brute.times);
    }

    /// Delivered volume stays within one stroke of ideal for a continuous program.
    #[test]
    fn within_one_stroke_of_ideal(q in 1i64..5000, ng in 1i64..20_000_000, t in 0i64..400 * DAY) {
        let m = PumpModel { min_rate_nl_per_day: 1, ..model(q, 1_000_000_000, 0) };
        let Ok(mut p) = Pump::new(PumpConfig { model: m, now_ms: 0, reservoir_nl: 1_000_000_000, concentration: 1000, basal: continuous(ng), catheter_nl: 0, stroke_error_ppm: 0, path_primed: true }) else { return Ok(()) };
        p.advance_to(t).unwrap();
        if p.is_empty() { return Ok(()) }
        let ideal = i128::from(ng) * i128::from(t); // nL·ms/day (conc 1000: ng = nL)
        let pumped = i128::from(p.pumped_nl()) * i128::from(DAY);
        prop_assert!(pumped <= ideal && ideal < pumped + i128::from(q) * i128::from(DAY));
    }

    /// No input makes the core panic; a rejected call changes nothing.
    #[test]
    fn arbitrary_inputs_never_panic(
        fields in prop::collection::vec(any::<i64>(), 12),
        ops in prop::collection::vec((0u8..15, any::<i64>(), any::<i64>(), any::<i64>()), 0..16),
    ) {
        let m = PumpModel {
            name: "fuzz".into(),
            reservoir_nl: fields[0],
            stroke_nl: fields[1],
            min_rate_nl_per_day: fields[2],
            max_rate_nl_per_day: fields[3],
            low_reservoir_nl: fields[4],
            pump_path_nl: fields[5],
            battery: None,
        };
        let basal = Basal::Flex { period: Period::Day, steps: vec![Step { offset_ms: 0, ng_per_day: fields[6] }, Step { offset_ms: fields[7], ng_per_day: fields[8] }] };
        let fallback = PumpConfig { model: model(2000, 40_000_000, 0), now_ms: 0, reservoir_nl: 1_000_000, concentration: 2000, basal: continuous(400_000), catheter_nl: 0, stroke_error_ppm: 0, path_primed: true };
        let mut p = Pump::new(PumpConfig { model: m, now_ms: fields[9], reservoir_nl: fields[10], concentration: fields[11], basal, catheter_nl: fields[0], stroke_error_ppm: fields[1], path_primed: fields[2] % 2 == 0 })
            .unwrap_or_else(|_| Pump::new(fallback).unwrap());
        for (op, a, b, c) in ops {
            let before = p.snapshot().unwrap();
            let ok = match op {
                0 => p.advance_to(a).is_ok(),
                1 => p.bolus(a, b, Some(c)).is_ok(),
                2 => p.set_program(Basal::Continuous { ng_per_day: a }).is_ok(),
                3 => p.refill(a, b, Some(c), itb_core::RefillTolerance { abs_nl: c % 2_000_000_000, ppm: a % 2_000_000 }).is_ok(),
                4 => p.cancel_bolus(a as u64).is_ok(),
                5 => p.project(a).is_ok(),
                6 => p.suspend().is_ok(),
                7 => p.resume().is_ok(),
                8 => p.inject_motor_stall().is_ok(),
                9 => p.clear_fault().is_ok(),
                10 => p.start_bridge_bolus().is_ok(),
                11 => p.start_priming_bolus().is_ok(),
                12 => p.set_patient_bolus_limits(Some(itb_core::PatientBolusLimits { dose_ng: a, duration_ms: b, lockout_ms: c, max_per_24h: a % 30 })).is_ok(),
                13 => p.patient_bolus(Some(a)).is_ok(),
                _ => p.revise_catheter(a).is_ok(),
            };
            if !ok {
                prop_assert_eq!(p.snapshot().unwrap(), before);
            }
            prop_assert!(p.check_invariants().is_ok());
        }
    }

    /// Random bytes never panic restore; a flipped byte in a real snapshot is rejected.
    #[test]
    fn restore_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), flip in any::<prop::sample::Index>()) {
        let _ = Pump::restore(&bytes);
        let p = pump(model(2000, 40_000_000, 0), 0, 40_000_000, 2000, continuous(400_000));
        let mut snap = p.snapshot().unwrap();
        let i = flip.index(snap.len());
        snap[i] ^= 0x5a;
        prop_assert!(Pump::restore(&snap).is_err());
    }
}
