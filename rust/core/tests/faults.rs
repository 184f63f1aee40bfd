//! Faults and the truth ledgers (docs: guide/faults.md): the worked example of each fault by
//! hand, conservation over every ledger after any sequence of operations with faults, the
//! projection equal to the simulation with faults active, pieces equal to a whole advance, and
//! what a refill's aspirated-vs-expected check reveals.

mod common;

use common::DAY;
use itb_core::{Basal, EventKind, Pump, PumpConfig, PumpModel, RefillTolerance};
use proptest::prelude::*;

const T0: i64 = 1_767_600_000_000; // 2026-01-05T08:00
const ML: i64 = 1_000_000; // nL

/// A SynchroMed-like 20 mL pump: 2 µL strokes, 0.048–24 mL/day, 100 µL tubing.
fn model() -> PumpModel {
    PumpModel {
        name: "faults 20 mL".into(),
        reservoir_nl: 20 * ML,
        stroke_nl: 2_000,
        min_rate_nl_per_day: 48_000,
        max_rate_nl_per_day: 24 * ML,
        low_reservoir_nl: 2 * ML,
        pump_path_nl: 100_000,
        battery: None,
    }
}

/// 20 mL at 2000 µg/mL, 400 µg/day = 200 000 nL/day (one stroke every 864 000 ms), a primed
/// 150 µL catheter.
fn example() -> Pump {
    Pump::new(PumpConfig {
        model: model(),
        now_ms: T0,
        reservoir_nl: 20 * ML,
        concentration: 2000,
        basal: Basal::Continuous {
            ng_per_day: 400_000,
        },
        catheter_nl: 150_000,
        stroke_error_ppm: 0,
        path_primed: true,
    })
    .unwrap()
}

fn conserved(p: &Pump) {
    let f = p.faults();
    assert_eq!(
        p.filled_fl(),
        p.true_reservoir_fl() + p.path_fl() + p.delivered_fl() + f.tissue_fl + p.withdrawn_fl()
    );
    assert_eq!(
        p.filled_ag(),
        i128::from(p.true_reservoir_fl()) * i128::from(p.concentration())
            + p.path_ag()
            + p.delivered_ag()
            + f.tissue_ag
            + p.withdrawn_ag()
    );
    assert_eq!(f.commanded_fl, f.pumped_fl + f.held_back_fl + f.dry_fl);
    p.check_invariants().unwrap();
}

fn faults_of(events: &[itb_core::Event], kind: EventKind) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .filter_map(|e| e.text("fault").map(str::to_string))
        .collect()
}

#[test]
fn complete_occlusion_holds_the_flow_back_and_shows_at_a_refill_after_17_days() {
    let mut p = example();
    p.inject_occlusion(0).unwrap();
    p.advance_to(T0 + 10 * DAY).unwrap();
    // 10 days × 100 strokes: the firmware counts 2 mL pumped; nothing moved
    assert_eq!(
        (p.strokes(), p.pumped_nl(), p.reservoir_nl()),
        (1000, 2 * ML, 18 * ML)
    );
    assert_eq!(
        (p.true_reservoir_nl(), p.held_back_nl(), p.delivered_nl()),
        (20 * ML, 2 * ML as i128, 0)
    );
    conserved(&p);
    // +2 mL is within the default tolerance max(1 mL, 20 % × 18 mL = 3.6 mL): not yet visible
    let probe = p
        .clone()
        .refill(20 * ML, 2000, None, RefillTolerance::default())
        .unwrap();
    assert!(!probe.flagged && probe.aspirated_nl - probe.expected_nl == 2 * ML);
    // at 20 days: expected 16 mL, aspirated 20 mL, +4 mL > 3.2 mL: flagged
    p.advance_to(T0 + 20 * DAY).unwrap();
    let out = p
        .refill(20 * ML, 2000, None, RefillTolerance::default())
        .unwrap();
    assert_eq!((out.expected_nl, out.aspirated_nl), (16 * ML, 20 * ML));
    assert!(out.flagged && out.reason.unwrap().contains("occlusion"));
    conserved(&p);
}

#[test]
fn partial_occlusion_delivers_the_passing_fraction() {
    let mut p = example();
    p.inject_occlusion(500_000).unwrap(); // half passes
    p.advance_to(T0 + 10 * DAY).unwrap();
    // 2 mL commanded: 1 mL moved (all drug: the path was primed), 1 mL held back
    assert_eq!((p.delivered_nl(), p.held_back_nl()), (ML, ML as i128));
    assert_eq!(p.delivered_pg(), 2_000_000_000); // 2000 µg instead of the programmed 4000 µg
    assert_eq!(p.true_reservoir_nl(), 19 * ML);
    let ev = p.advance_to(p.now_ms()).unwrap();
    assert!(ev.is_empty());
    p.clear_occlusion().unwrap();
    p.advance_to(T0 + 11 * DAY).unwrap();
    assert_eq!(p.delivered_nl(), ML + 200_000);
    conserved(&p);
}

#[test]
fn a_disconnection_at_the_connector_sends_everything_to_tissue() {
    let mut p = example();
    p.inject_leak(0, true).unwrap();
    let ev = p.advance_to(T0 + DAY).unwrap();
    assert_eq!(faults_of(&ev, EventKind::Fault), ["disconnection"]);
    // one day: 200 000 nL crossed the connector into tissue (400 µg); nothing reached the CSF
    assert_eq!(
        (p.tissue_nl(), p.tissue_pg(), p.delivered_nl()),
        (200_000, 400_000_000, 0)
    );
    assert_eq!(p.path_nl(), 250_000); // the stagnant catheter is still full
                                      // the reservoir went down as the firmware thinks: a refill cannot see it
    let out = p
        .refill(20 * ML, 2000, None, RefillTolerance::default())
        .unwrap();
    assert!(!out.flagged && out.aspirated_nl == out.expected_nl);
    conserved(&p);
}

#[test]
fn a_leak_along_the_catheter_leaves_the_tip_side_stagnant_until_repaired() {
    let mut p = example();
    p.inject_leak(50_000, false).unwrap(); // 50 µL from the connector: 100 µL beyond it
    p.advance_to(T0 + DAY).unwrap();
    assert_eq!((p.tissue_nl(), p.delivered_nl()), (200_000, 0));
    p.clear_leak().unwrap();
    p.advance_to(T0 + 2 * DAY).unwrap();
    assert_eq!(p.delivered_nl(), 200_000); // flow reaches the tip again
    conserved(&p);
}

#[test]
fn a_migrated_tip_delivers_into_tissue() {
    let mut p = example();
    p.inject_tip_migration().unwrap();
    p.advance_to(T0 + 5 * DAY).unwrap();
    assert_eq!((p.tissue_nl(), p.delivered_nl()), (5 * 200_000, 0));
    p.clear_tip_migration().unwrap();
    p.advance_to(T0 + 6 * DAY).unwrap();
    assert_eq!(p.delivered_nl(), 200_000);
    conserved(&p);
}

#[test]
fn a_pocket_fill_is_an_immediate_tissue_dose_and_shows_at_the_next_refill() {
    let mut p = example();
    p.advance_to(T0 + 50 * DAY).unwrap(); // 10 mL pumped, 10 mL left
    let out = p
        .refill_with_pocket_fill(10 * ML, 2000, None, RefillTolerance::default(), 5 * ML)
        .unwrap();
    assert!(!out.flagged); // this refill's own aspirate is right
    let ev = p.advance_to(p.now_ms()).unwrap();
    assert_eq!(faults_of(&ev, EventKind::Fault), ["pocket_fill"]);
    // 5 mL × 2000 µg/mL = 10 000 µg into tissue at once; the firmware counts 10 mL, 5 mL are there
    assert_eq!((p.tissue_nl(), p.tissue_pg()), (5 * ML, 10_000_000_000));
    assert_eq!((p.reservoir_nl(), p.true_reservoir_nl()), (10 * ML, 5 * ML));
    // 30 days later: expected 10 − 6 = 4 mL, aspirated 5 − 6 → dry after 25 days: 0 mL
    p.advance_to(T0 + 80 * DAY).unwrap();
    assert_eq!(p.true_reservoir_nl(), 0);
    assert_eq!(p.dry_nl(), ML as i128); // 5 days of strokes moved nothing
    let out = p
        .refill(20 * ML, 2000, None, RefillTolerance::default())
        .unwrap();
    assert_eq!((out.expected_nl, out.aspirated_nl), (4 * ML, 0));
    assert!(out.flagged && out.reason.unwrap().contains("less"));
    conserved(&p);
}

#[test]
fn after_a_pocket_fill_the_physically_dry_date_comes_before_the_firmwares_empty_date() {
    let mut p = example();
    p.advance_to(T0 + 50 * DAY).unwrap(); // 5 000 strokes, the last at exactly day 50
    p.refill_with_pocket_fill(10 * ML, 2000, None, RefillTolerance::default(), 5 * ML)
        .unwrap();
    let proj = p.project(100 * DAY).unwrap();
    // By hand: 5 mL there = 2 500 strokes of 2 µL; stroke 2 501 finds the reservoir dry,
    // 2 501 × 864 000 ms = 25 d 0 h 14.4 min after the refill. The firmware counts 10 mL =
    // 5 000 strokes: empty at day 50 + 50.
    let dry = T0 + 50 * DAY + 2_501 * 864_000;
    assert_eq!(proj.physically_dry_ms, Some(dry));
    assert_eq!(proj.reservoir_empty_ms, Some(T0 + 100 * DAY));
    // the batch projection's column carries it too
    let cols = itb_core::project_many(
        std::slice::from_ref(&p),
        100 * DAY,
        itb_core::ProjectionMode::AsProgrammed,
        Some(1),
    )
    .unwrap();
    assert_eq!(cols.physically_dry_ms, vec![dry]);
    // the low-reservoir alarm (2 mL counted, stroke 4 000) is on the firmware's count: later
    assert_eq!(proj.low_reservoir_ms, Some(T0 + 50 * DAY + 4_000 * 864_000));
    let mut q = p.clone();
    q.advance_to(dry - 1).unwrap();
    assert_eq!((q.dry_nl(), q.true_reservoir_nl()), (0, 0)); // stroke 2 500 took the last 2 µL
    q.advance_to(dry).unwrap();
    assert_eq!(q.dry_nl(), 2_000);
    // with refills assumed, never dry; a complete occlusion moves nothing: never dry either
    assert_eq!(
        p.project_with(100 * DAY, true).unwrap().physically_dry_ms,
        None
    );
    p.inject_occlusion(0).unwrap();
    assert_eq!(p.project(100 * DAY).unwrap().physically_dry_ms, None);
    // half passing: 5 mL pass after 5 000 strokes, more than the firmware's 5 000 allow
    p.clear_occlusion().unwrap();
    p.inject_occlusion(500_000).unwrap();
    assert_eq!(p.project(100 * DAY).unwrap().physically_dry_ms, None);
    // 60 % passing: 1.2 µL a stroke, 5 mL after 4 166.67 strokes: stroke 4 167 is short
    p.clear_occlusion().unwrap();
    p.inject_occlusion(600_000).unwrap();
    assert_eq!(
        p.project(100 * DAY).unwrap().physically_dry_ms,
        Some(T0 + 50 * DAY + 4_167 * 864_000)
    );
}

#[test]
fn a_battery_fault_resets_the_flow_to_the_minimum_rate_with_its_alarm() {
    let mut p = example();
    let id = p.bolus(50_000, 3_600_000, Some(T0 + DAY)).unwrap();
    p.inject_battery_fault().unwrap();
    let ev = p.advance_to(T0 + DAY).unwrap();
    assert_eq!(faults_of(&ev, EventKind::Fault), ["battery_fault"]);
    assert!(ev
        .iter()
        .any(|e| e.kind == EventKind::BolusCancelled && e.get("bolus_id") == Some(id as i64)));
    // 0.048 mL/day at 2000 µg/mL = 96 µg/day: 24 strokes a day
    assert_eq!(p.basal(), &Basal::Continuous { ng_per_day: 96_000 });
    assert_eq!((p.strokes(), p.delivered_nl()), (24, 48_000));
    assert!(p
        .active_alarms()
        .iter()
        .any(|a| a.alarm.name() == "battery_fault"));
    p.clear_battery_fault().unwrap();
    assert!(p.active_alarms().is_empty());
    let out = p
        .refill(20 * ML, 2000, None, RefillTolerance::default())
        .unwrap();
    assert!(!out.flagged); // not a reservoir fault: the alarm tells, not the refill
    conserved(&p);
}

#[test]
fn a_catheter_revision_clears_the_catheter_faults() {
    let mut p = example();
    p.inject_occlusion(0).unwrap();
    p.inject_leak(100_000, false).unwrap();
    p.inject_tip_migration().unwrap();
    p.advance_to(T0 + DAY).unwrap();
    p.revise_catheter(120_000).unwrap();
    let ev = p.advance_to(p.now_ms()).unwrap();
    let mut cleared = faults_of(&ev, EventKind::FaultCleared);
    cleared.sort();
    assert_eq!(cleared, ["leak", "occlusion", "tip_migration"]);
    let f = p.faults();
    assert!(f.occlusion_pass_ppm.is_none() && f.leak.is_none() && !f.tip_migrated);
    conserved(&p);
}

#[test]
fn aspirating_more_than_the_reservoir_holds_is_refused_and_changes_nothing() {
    let mut p = example();
    p.advance_to(T0 + DAY).unwrap();
    let before = p.snapshot().unwrap();
    for aspirated in [20 * ML + 1, 30 * ML] {
        let err = p
            .refill(10 * ML, 2000, Some(aspirated), RefillTolerance::default())
            .unwrap_err();
        assert_eq!(err.field(), "aspirated_ml");
        assert!(
            err.to_string().contains("allowed range 0 to 20 mL"),
            "{err}"
        );
        assert_eq!(p.snapshot().unwrap(), before);
    }
    // the whole 20 mL is a valid (if flagged) aspiration
    let out = p
        .refill(10 * ML, 2000, Some(20 * ML), RefillTolerance::default())
        .unwrap();
    assert_eq!(out.aspirated_nl, 20 * ML);
}

#[test]
fn rejected_fault_calls_change_nothing() {
    let mut p = example();
    let before = p.snapshot().unwrap();
    assert!(p.inject_occlusion(1_000_000).is_err());
    assert!(p.inject_occlusion(-1).is_err());
    assert!(p.inject_leak(150_001, false).is_err());
    assert!(p.clear_leak().is_err() && p.clear_occlusion().is_err());
    assert!(p.clear_tip_migration().is_err() && p.clear_battery_fault().is_err());
    assert!(p
        .refill_with_pocket_fill(ML, 2000, None, RefillTolerance::default(), ML + 1)
        .is_err());
    assert_eq!(p.snapshot().unwrap(), before);
}

#[derive(Debug, Clone)]
enum Op {
    Advance(i64),
    Occlude(i64),
    ClearOcclusion,
    Leak(i64, bool),
    ClearLeak,
    Migrate,
    ClearMigration,
    BatteryFault,
    ClearBatteryFault,
    Refill(i64, i64, i64),
    Revise(i64),
    ReplacePath(i64),
    Bolus(i64, i64),
    Stall,
    ClearStall,
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0i64..20 * DAY).prop_map(Op::Advance),
        1 => prop_oneof![Just(0i64), 0i64..1_000_000].prop_map(Op::Occlude),
        1 => Just(Op::ClearOcclusion),
        1 => (0i64..200_000, any::<bool>()).prop_map(|(a, b)| Op::Leak(a, b)),
        1 => Just(Op::ClearLeak),
        1 => Just(Op::Migrate),
        1 => Just(Op::ClearMigration),
        1 => Just(Op::BatteryFault),
        1 => Just(Op::ClearBatteryFault),
        2 => (0i64..20 * ML, 0i64..20 * ML, prop::sample::select(vec![500i64, 2000])).prop_map(|(a, p, c)| Op::Refill(a, p, c)),
        1 => (0i64..300_000).prop_map(Op::Revise),
        1 => (0i64..300_000).prop_map(Op::ReplacePath),
        1 => (1i64..100_000, 60_000i64..DAY).prop_map(|(d, t)| Op::Bolus(d, t)),
        1 => Just(Op::Stall),
        1 => Just(Op::ClearStall),
        1 => Just(Op::Snapshot),
    ]
}

fn apply(p: &mut Pump, op: &Op) -> bool {
    let tol = RefillTolerance::default();
    match *op {
        Op::Advance(d) => p.advance_to(p.now_ms() + d).is_ok(),
        Op::Occlude(x) => p.inject_occlusion(x).is_ok(),
        Op::ClearOcclusion => p.clear_occlusion().is_ok(),
        Op::Leak(x, d) => p.inject_leak(x, d).is_ok(),
        Op::ClearLeak => p.clear_leak().is_ok(),
        Op::Migrate => p.inject_tip_migration().is_ok(),
        Op::ClearMigration => p.clear_tip_migration().is_ok(),
        Op::BatteryFault => p.inject_battery_fault().is_ok(),
        Op::ClearBatteryFault => p.clear_battery_fault().is_ok(),
        Op::Refill(a, pocket, c) => p.refill_with_pocket_fill(a, c, None, tol, pocket).is_ok(),
        Op::Revise(v) => p.revise_catheter(v).is_ok(),
        Op::ReplacePath(v) => p.replace_fluid_path(v).is_ok(),
        Op::Bolus(d, t) => p.bolus(d, t, None).is_ok(),
        Op::Stall => p.inject_motor_stall().is_ok(),
        Op::ClearStall => p.clear_fault().is_ok(),
        Op::Snapshot => {
            *p = Pump::restore(&p.snapshot().unwrap()).unwrap();
            true
        }
    }
}

fn pump_for(error_ppm: i64, primed: bool, catheter_nl: i64) -> Pump {
    Pump::new(PumpConfig {
        model: model(),
        now_ms: T0,
        reservoir_nl: 20 * ML,
        concentration: 2000,
        basal: Basal::Continuous {
            ng_per_day: 400_000,
        },
        catheter_nl,
        stroke_error_ppm: error_ppm,
        path_primed: primed,
    })
    .unwrap()
}

/// Independent of the projection: the first of `times` (the simulation's stroke times) after
/// which the dry ledger has grown, found by advancing copies of `p` (binary search: the ledger
/// only grows).
fn first_dry_stroke(p: &Pump, times: &[i64], limit: i64) -> Option<i64> {
    let dry0 = p.faults().dry_fl;
    let dry_after = |t: i64| {
        let mut q = p.clone();
        q.advance_to(t).unwrap();
        q.faults().dry_fl > dry0
    };
    let times: Vec<i64> = times.iter().copied().filter(|&t| t <= limit).collect();
    let (mut lo, mut hi) = (0usize, times.len()); // first index whose stroke leaves it grown
    while lo < hi {
        let mid = (lo + hi) / 2;
        if dry_after(times[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    times.get(lo).copied()
}

#[test]
fn the_physically_dry_date_with_every_patient_bolus_equals_a_minute_by_minute_simulation() {
    // A pocket fill leaves 1 mL where the firmware counts 6 mL; the patient presses every
    // minute (an oracle that knows nothing of lockouts), granted as the limits allow.
    let mut p = example();
    p.advance_to(T0 + 70 * DAY).unwrap();
    p.refill_with_pocket_fill(6 * ML, 2000, None, RefillTolerance::default(), 5 * ML)
        .unwrap();
    p.set_patient_bolus_limits(Some(itb_core::PatientBolusLimits {
        dose_ng: 100_000, // 50 µL
        duration_ms: 600_000,
        lockout_ms: 3 * 3_600_000,
        max_per_24h: 4,
    }))
    .unwrap();
    let plain = p.project(30 * DAY).unwrap().physically_dry_ms.unwrap();
    let proj = p.project_max_patient_boluses(30 * DAY).unwrap();
    let dry = proj.physically_dry_ms.unwrap();
    assert!(dry < plain); // the boluses empty the reservoir sooner
    let mut sim = p.clone();
    let dry0 = sim.faults().dry_fl;
    let mut seen = None;
    let mut last = sim.now_ms();
    while seen.is_none() {
        let _ = sim.patient_bolus(None).unwrap();
        let t = last + 60_000;
        let mut times = Vec::new();
        let mut probe = sim.clone();
        probe.advance_to_recording(t, &mut times).unwrap();
        if probe.faults().dry_fl > dry0 {
            seen = first_dry_stroke(&sim, &times, t);
            break;
        }
        sim = probe;
        last = t;
    }
    assert_eq!(Some(dry), seen);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// Every ledger balances exactly after every operation, faults included; a rejected call
    /// changes nothing.
    #[test]
    fn ledgers_balance_with_faults(
        ops in prop::collection::vec(op(), 0..25),
        error_ppm in -50_000i64..50_000,
        primed in any::<bool>(),
        catheter_nl in 0i64..300_000,
    ) {
        let mut p = pump_for(error_ppm, primed, catheter_nl);
        for op in &ops {
            let before = p.snapshot().unwrap();
            if !apply(&mut p, op) {
                prop_assert_eq!(p.snapshot().unwrap(), before, "{:?}", op);
            }
            conserved(&p);
        }
    }

    /// With faults active, the projection equals what the simulation then observes.
    #[test]
    fn projection_equals_simulation_with_faults(
        ops in prop::collection::vec(op(), 0..12),
        horizon in 1i64..120 * DAY,
        error_ppm in -50_000i64..50_000,
        primed in any::<bool>(),
        catheter_nl in 0i64..300_000,
    ) {
        let mut p = pump_for(error_ppm, primed, catheter_nl);
        for op in &ops {
            apply(&mut p, op);
        }
        let now = p.now_ms();
        let proj = p.project(horizon).unwrap();
        let before = p.clone();
        let mut times = Vec::new();
        let ev = p.advance_to_recording(now + horizon, &mut times).unwrap();
        let first = |k: EventKind| ev.iter().find(|e| e.kind == k && e.time_ms > now).map(|e| e.time_ms);
        prop_assert_eq!(proj.next_stroke_ms, times.first().copied());
        prop_assert_eq!(proj.low_reservoir_ms, first(EventKind::LowReservoir));
        prop_assert_eq!(proj.reservoir_empty_ms, first(EventKind::ReservoirEmpty));
        prop_assert_eq!(proj.drug_at_tip_ms, first(EventKind::DrugAtTip));
        // No event marks it: the dry ledger first grows at the projected physically dry stroke.
        prop_assert_eq!(proj.physically_dry_ms, first_dry_stroke(&before, &times, now + horizon));
    }

    /// Advancing in pieces moves exactly what advancing at once does (the occlusion's
    /// fraction keeps its remainder).
    #[test]
    fn pieces_equal_whole_with_faults(
        ops in prop::collection::vec(op(), 0..10),
        cuts in prop::collection::vec(0i64..20 * DAY, 0..6),
        pass in 1i64..1_000_000,
        error_ppm in -50_000i64..50_000,
    ) {
        let mut whole = pump_for(error_ppm, true, 150_000);
        for op in &ops {
            apply(&mut whole, op);
        }
        let _ = whole.inject_occlusion(pass);
        let mut pieces = whole.clone();
        let end = whole.now_ms() + 20 * DAY;
        whole.advance_to(end).unwrap();
        let mut cuts: Vec<i64> = cuts.into_iter().map(|c| pieces.now_ms() + c).collect();
        cuts.sort_unstable();
        for c in cuts.into_iter().chain([end]) {
            pieces.advance_to(c).unwrap();
        }
        prop_assert!(whole.eq_ignoring_event_numbers(&pieces));
    }

    /// Detection: with nominal strokes, a refill's discrepancy is exactly what the faults did
    /// to the reservoir (held back − pocket fill + dry strokes), and it is flagged exactly when
    /// beyond tolerance; leaks, migration and battery faults never show.
    #[test]
    fn a_refill_reveals_exactly_the_reservoir_faults(
        ops in prop::collection::vec(op(), 0..15),
        wait in 0i64..60 * DAY,
    ) {
        let mut p = pump_for(0, true, 150_000);
        for op in &ops {
            if !matches!(op, Op::Refill(..)) {
                apply(&mut p, op);
            }
        }
        let f0 = p.faults().clone();
        p.advance_to(p.now_ms() + wait).unwrap();
        let f = p.faults().clone();
        let moved_off_count = (f.held_back_fl - f0.held_back_fl) + (f.dry_fl - f0.dry_fl);
        let expected_disc = p.true_reservoir_nl() - p.reservoir_nl();
        let out = p.refill(20 * ML, 2000, None, RefillTolerance::default()).unwrap();
        prop_assert_eq!(out.aspirated_nl - out.expected_nl, expected_disc);
        let limit = (ML as i128).max(i128::from(out.expected_nl) * 200_000 / 1_000_000);
        prop_assert_eq!(out.flagged, i128::from(expected_disc).abs() > limit);
        if f.held_back_fl == 0 && f.dry_fl == 0 {
            // no reservoir fault (the ops exclude pocket fills): never flagged
            prop_assert_eq!(expected_disc, 0);
            prop_assert!(!out.flagged);
        }
        prop_assert!(moved_off_count >= 0);
    }

    /// No false flags: a healthy pump over random therapies, refilled with what the firmware
    /// expects to be aspirated, is never flagged.
    #[test]
    fn no_false_flags_on_a_healthy_pump(
        doses in prop::collection::vec((0i64..2_000_000, 1i64..60 * DAY), 1..6),
        primed in any::<bool>(),
    ) {
        let mut p = pump_for(0, primed, 150_000);
        for (ng, dt) in doses {
            let _ = p.set_program(Basal::Continuous { ng_per_day: ng });
            p.advance_to(p.now_ms() + dt).unwrap();
            let out = p.refill(20 * ML, 2000, None, RefillTolerance::default()).unwrap();
            prop_assert!(!out.flagged);
            prop_assert_eq!(out.aspirated_nl, out.expected_nl);
        }
    }
}
