//! The delivery's incremental gain table (docs: guide/performance.md: bolus knots with prefix sums, kept as
//! boluses are added, cancelled, re-derived and finished) equals a brute-force sum over the
//! boluses after any sequence of calls, and projection stays equal to simulation — with a few
//! cases of thousands of boluses.

mod common;
use common::*;
use itb_core::{
    Basal, BatteryModel, EventKind, Period, Pump, PumpConfig, PumpModel, RefillTolerance, Step,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Bolus {
        start: i64,
        dose_ng: i64,
        duration_ms: i64,
    },
    /// `bolus_many` of this many boluses (small ones go one by one, large ones in one rebuild).
    Many {
        n: usize,
        from: i64,
        every: i64,
        dose_ng: i64,
        duration_ms: i64,
    },
    Cancel {
        pick: usize,
    },
    Advance {
        dt: i64,
    },
    Refill {
        conc: i64,
    },
    Program {
        ng_per_day: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0i64..5 * DAY, 1i64..200_000, 1i64..6 * 3_600_000)
            .prop_map(|(start, dose_ng, duration_ms)| Op::Bolus { start, dose_ng, duration_ms }),
        1 => (1usize..40, 0i64..3 * DAY, 1i64..DAY / 2, 1i64..100_000, 1i64..3_600_000)
            .prop_map(|(n, from, every, dose_ng, duration_ms)| Op::Many { n, from, every, dose_ng, duration_ms }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        3 => prop_oneof![0i64..3_600_000, 0i64..3 * DAY].prop_map(|dt| Op::Advance { dt }),
        1 => prop::sample::select(vec![500i64, 1000, 2000]).prop_map(|conc| Op::Refill { conc }),
        1 => (0i64..2_000_000).prop_map(|ng_per_day| Op::Program { ng_per_day }),
    ]
}

fn battery() -> BatteryModel {
    BatteryModel {
        capacity_pc: 3_000_000_000,
        quiescent_pc_per_ms: 1,
        stroke_pc: 5_000,
        tone_pc: 100_000,
        telemetry_pc: 1_000_000,
        eri_pc: 2_000_000_000,
        eos_pc: 1_000_000_000,
        non_critical_tone_ms: 3_600_000,
        critical_tone_ms: 600_000,
    }
}

fn start_pump(q: i64, flex: bool, with_battery: bool) -> Pump {
    let model = PumpModel {
        min_rate_nl_per_day: 1,
        battery: with_battery.then(battery),
        ..model(q, 20_000_000, 1_000_000)
    };
    let basal = if flex {
        Basal::Flex {
            period: Period::Day,
            steps: vec![
                Step {
                    offset_ms: 0,
                    ng_per_day: 300_000,
                },
                Step {
                    offset_ms: 7 * 3_600_000 + 13,
                    ng_per_day: 0,
                },
                Step {
                    offset_ms: 20 * 3_600_000,
                    ng_per_day: 900_000,
                },
            ],
        }
    } else {
        Basal::Continuous {
            ng_per_day: 400_000,
        }
    };
    Pump::new(PumpConfig::new(
        model,
        1_767_600_000_123,
        15_000_000,
        1000,
        basal,
    ))
    .unwrap()
}

fn apply(p: &mut Pump, op: &Op) {
    let now = p.now_ms();
    match *op {
        Op::Bolus {
            start,
            dose_ng,
            duration_ms,
        } => {
            let _ = p.bolus(dose_ng, duration_ms, Some(now + start));
        }
        Op::Many {
            n,
            from,
            every,
            dose_ng,
            duration_ms,
        } => {
            let items: Vec<_> = (0..n as i64)
                .map(|i| (dose_ng, duration_ms, now + from + i * every))
                .collect();
            let _ = p.bolus_many(&items);
        }
        Op::Cancel { pick } => {
            if !p.boluses().is_empty() {
                let id = p.boluses()[pick % p.boluses().len()].id;
                p.cancel_bolus(id).unwrap();
            }
        }
        Op::Advance { dt } => {
            p.advance_to(now + dt).unwrap();
        }
        Op::Refill { conc } => {
            let _ = p.refill(15_000_000, conc, None, RefillTolerance::default());
        }
        Op::Program { ng_per_day } => {
            let _ = p.set_program(Basal::Continuous { ng_per_day });
        }
    }
}

/// Projection equals what the simulation then observes (next stroke, low, empty, tip, ERI, EOS).
fn projection_equals_simulation(p: &Pump, horizon: i64) -> Result<(), TestCaseError> {
    let proj = p.project(horizon).unwrap();
    let mut sim = p.clone();
    let now = sim.now_ms();
    let mut times = Vec::new();
    let ev = sim.advance_to_recording(now + horizon, &mut times).unwrap();
    let first = |k: EventKind| {
        ev.iter()
            .find(|e| e.kind == k && e.time_ms > now)
            .map(|e| e.time_ms)
    };
    prop_assert_eq!(proj.next_stroke_ms, times.first().copied());
    prop_assert_eq!(proj.low_reservoir_ms, first(EventKind::LowReservoir));
    prop_assert_eq!(proj.reservoir_empty_ms, first(EventKind::ReservoirEmpty));
    prop_assert_eq!(proj.drug_at_tip_ms, first(EventKind::DrugAtTip));
    prop_assert_eq!(proj.eri_ms, first(EventKind::Eri));
    prop_assert_eq!(proj.eos_ms, first(EventKind::Eos));
    // Every stroke time, not only the first, is the k-th stroke time of the projection.
    for (k, &t) in times.iter().enumerate().step_by((times.len() / 7).max(1)) {
        prop_assert_eq!(p.stroke_time(k as i64 + 1, now + horizon), Some(t));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// After every call of a random sequence, the incremental table equals the brute-force sum
    /// over the boluses (gain from now, slope and next change at and around every knot) and a
    /// table built from scratch; a snapshot restores to an equal pump; and projection equals
    /// simulation at the end.
    #[test]
    fn incremental_table_equals_brute_force(
        q in prop::sample::select(vec![1i64, 250, 2000]),
        flex in any::<bool>(),
        with_battery in any::<bool>(),
        ops in prop::collection::vec(op(), 1..25),
        horizon in 1i64..40 * DAY,
    ) {
        let mut p = start_pump(q, flex, with_battery);
        for op in &ops {
            apply(&mut p, op);
            if let Err(e) = p.check_gain_table() {
                return Err(TestCaseError::fail(format!("after {op:?}: {e}")));
            }
        }
        let restored = Pump::restore(&p.snapshot().unwrap()).unwrap();
        prop_assert_eq!(&restored, &p);
        restored.check_gain_table().unwrap();
        projection_equals_simulation(&p, horizon)?;
        projection_equals_simulation(&restored, horizon)?;
    }
}

proptest! {
    // A few cases only: thousands of boluses each (the default run stays fast).
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Projection equals simulation with 1 000–3 000 scheduled boluses over years, from now and
    /// after advancing into them (some finished, their knots still kept or already dropped).
    #[test]
    fn projection_equals_simulation_with_thousands_of_boluses(
        n in 1_000usize..3_000,
        every in 3_600_000i64..2 * DAY,
        jitter in prop::collection::vec((0i64..3_600_000, 1i64..60_000, 1i64..3_600_000), 16),
        flex in any::<bool>(),
        first_leg in 0i64..200 * DAY,
        horizon in 1i64..4 * 365 * DAY,
    ) {
        let mut p = start_pump(250, flex, true);
        let now = p.now_ms();
        let items: Vec<(i64, i64, i64)> = (0..n)
            .map(|i| {
                let (off, dose, dur) = jitter[i % jitter.len()];
                (dose, dur, now + i as i64 * every + off)
            })
            .collect();
        p.bolus_many(&items).unwrap();
        prop_assert_eq!(p.boluses().len(), n);
        projection_equals_simulation(&p, horizon)?;
        p.advance_to(now + first_leg).unwrap();
        projection_equals_simulation(&p, horizon)?;
    }
}

/// Boluses finishing while the pump advances leave the table equal to brute force; so do a
/// cancellation in the middle and a concentration change (re-derivation).
#[test]
fn finishing_cancelling_and_rederiving_keep_the_table_exact() {
    let mut p = start_pump(250, true, false);
    let now = p.now_ms();
    let items: Vec<(i64, i64, i64)> = (0..300)
        .map(|i| (20_000, 1_800_000, now + i * 7 * 3_600_000))
        .collect();
    p.bolus_many(&items).unwrap();
    for day in 1..=60 {
        p.advance_to(now + day * DAY).unwrap();
        if day % 4 == 0 {
            p.check_gain_table().unwrap();
        }
        if day == 20 {
            let id = p.boluses()[p.boluses().len() / 2].id;
            p.cancel_bolus(id).unwrap();
            p.check_gain_table().unwrap();
        }
        if day == 40 {
            p.refill(15_000_000, 2000, None, RefillTolerance::default())
                .unwrap();
            p.check_gain_table().unwrap();
        }
    }
    assert!(p.boluses().len() < 300 - 150);
}
