//! Snapshots in format version 2, written by the build before the pump's state was split into
//! parts (delivery, reservoir, fluid path, battery and alarms, patient limits), restore to the
//! same state and migrate to format version 3 (the same record followed by the faults and truth
//! ledgers: none and zero for a migrated state).
//!
//! The fixtures `fixtures/v2_*.bin` were written by that build (commit bddd3ff) with
//! `ITB_WRITE_V2_FIXTURES=1 cargo test -p itb-core --test snapshot_v2`; the scenarios below are
//! the ones that wrote them. Never regenerate them from a later build: they are the evidence
//! that a later build reads and writes the old bytes.

mod common;

use common::{flex_day, DAY};
use itb_core::{
    Basal, BatteryModel, PatientBolusLimits, Period, Pump, PumpConfig, PumpModel, RefillTolerance,
    Step,
};

const T0: i64 = 1_767_600_000_000; // 2026-01-05T08:00 (a Monday)
const H: i64 = 3_600_000;

fn battery() -> BatteryModel {
    BatteryModel {
        capacity_pc: 4_000_000_000,
        quiescent_pc_per_ms: 20,
        stroke_pc: 2_000,
        tone_pc: 5_000,
        telemetry_pc: 1_000_000,
        eri_pc: 2_000_000_000,
        eos_pc: 1_000_000_000,
        non_critical_tone_ms: H,
        critical_tone_ms: 600_000,
    }
}

fn model(battery: Option<BatteryModel>) -> PumpModel {
    PumpModel {
        name: "fixture 20 mL".into(),
        reservoir_nl: 20_000_000,
        stroke_nl: 250,
        min_rate_nl_per_day: 1_000,
        max_rate_nl_per_day: 24_000_000,
        low_reservoir_nl: 2_000_000,
        pump_path_nl: 200,
        battery,
    }
}

fn config(battery: Option<BatteryModel>, reservoir_nl: i64, conc: i64, basal: Basal) -> PumpConfig {
    PumpConfig {
        model: model(battery),
        now_ms: T0,
        reservoir_nl,
        concentration: conc,
        basal,
        catheter_nl: 0,
        stroke_error_ppm: 0,
        path_primed: true,
    }
}

/// A flex day program, a catheter, an off-nominal stroke, a bolus running and two scheduled,
/// pending call events.
fn running_bolus_flex_catheter() -> Pump {
    let mut c = config(
        None,
        18_000_000,
        2_000,
        flex_day(&[(0, 300_000), (8 * H, 500_000), (20 * H, 200_000)]),
    );
    c.catheter_nl = 120_000;
    c.stroke_error_ppm = -12_345;
    let mut p = Pump::new(c).unwrap();
    p.advance_to(T0 + 30 * H + 17).unwrap();
    p.bolus(50_000, 2 * H, None).unwrap();
    p.bolus(20_000, H, Some(T0 + 40 * H)).unwrap();
    p.bolus(35_000, 30 * 60_000, Some(T0 + 40 * H + 123))
        .unwrap();
    p.advance_to(T0 + 31 * H + 999).unwrap();
    p.set_program(flex_day(&[(0, 310_000), (9 * H, 450_000)]))
        .unwrap();
    p
}

/// Patient limits with grants and a denial, a battery with tones sounding (motor stall and
/// low reservoir), suspended.
fn patient_limits_alarms_suspended() -> Pump {
    let mut p = Pump::new(config(
        Some(battery()),
        2_100_000,
        1_000,
        Basal::Continuous {
            ng_per_day: 400_000,
        },
    ))
    .unwrap();
    p.set_patient_bolus_limits(Some(PatientBolusLimits {
        dose_ng: 25_000,
        duration_ms: 600_000,
        lockout_ms: 2 * H,
        max_per_24h: 4,
    }))
    .unwrap();
    p.patient_bolus(Some(T0 + H)).unwrap();
    p.patient_bolus(Some(T0 + 2 * H)).unwrap(); // lockout
    p.patient_bolus(Some(T0 + 4 * H)).unwrap();
    p.advance_to(T0 + 6 * H).unwrap();
    p.inject_motor_stall().unwrap();
    p.advance_to(T0 + 7 * H + 5).unwrap();
    p.telemetry_session().unwrap();
    p.suspend().unwrap();
    p
}

/// Refills with discrepancies and a concentration change that re-derives a scheduled bolus
/// and cancels a running one; a saline path being primed; ERI reached.
fn refills_priming_eri() -> Pump {
    let mut b = battery();
    b.capacity_pc = 1_000_000_000;
    b.eri_pc = 990_000_000;
    b.eos_pc = 10_000_000;
    b.quiescent_pc_per_ms = 1;
    let mut c = config(
        Some(b),
        6_000_000,
        500,
        Basal::Continuous {
            ng_per_day: 200_000,
        },
    );
    c.catheter_nl = 300_000;
    c.path_primed = false;
    let mut p = Pump::new(c).unwrap();
    p.start_priming_bolus().unwrap();
    p.advance_to(T0 + 3 * DAY).unwrap();
    p.bolus(10_000, H, None).unwrap();
    p.bolus(15_000, H, Some(T0 + 5 * DAY)).unwrap();
    p.advance_to(T0 + 3 * DAY + 600_000).unwrap();
    p.refill(
        15_000_000,
        1_000,
        Some(4_000_000),
        RefillTolerance::default(),
    )
    .unwrap();
    p.advance_to(T0 + 4 * DAY).unwrap();
    p.refill(
        12_000_000,
        1_000,
        None,
        RefillTolerance { abs_nl: 1, ppm: 0 },
    )
    .unwrap();
    p
}

/// A weekly flex program, run until the reservoir is empty (alarms, no boluses).
fn week_flex_empty() -> Pump {
    let steps = vec![
        Step {
            offset_ms: 0,
            ng_per_day: 1_000_000,
        },
        Step {
            offset_ms: DAY + 7 * H,
            ng_per_day: 0,
        },
        Step {
            offset_ms: 3 * DAY,
            ng_per_day: 2_500_000,
        },
    ];
    let mut p = Pump::new(config(
        None,
        3_000_000,
        2_000,
        Basal::Flex {
            period: Period::Week,
            steps,
        },
    ))
    .unwrap();
    p.advance_to(T0 + 20 * DAY).unwrap();
    p
}

/// A fresh pump and the same pump after a long plain run (counters, ledgers).
fn fresh() -> Pump {
    Pump::new(config(
        None,
        20_000_000,
        500,
        Basal::Continuous {
            ng_per_day: 100_000,
        },
    ))
    .unwrap()
}

fn long_run() -> Pump {
    let mut p = fresh();
    for day in 1..=30 {
        p.advance_to(T0 + day * DAY).unwrap();
    }
    p
}

type Scenario = (&'static str, fn() -> Pump);

const SCENARIOS: &[Scenario] = &[
    (
        "v2_running_bolus_flex_catheter",
        running_bolus_flex_catheter,
    ),
    (
        "v2_patient_limits_alarms_suspended",
        patient_limits_alarms_suspended,
    ),
    ("v2_refills_priming_eri", refills_priming_eri),
    ("v2_week_flex_empty", week_flex_empty),
    ("v2_fresh", fresh),
    ("v2_long_run", long_run),
];

fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.bin"))
}

/// Writes the fixtures when `ITB_WRITE_V2_FIXTURES=1` (only ever from the version-2 build
/// before the split; see the module docs).
#[test]
fn write_v2_fixtures_when_asked() {
    if std::env::var("ITB_WRITE_V2_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    for (name, build) in SCENARIOS {
        std::fs::write(fixture_path(name), build().snapshot().unwrap()).unwrap();
    }
}

/// Snapshot header: magic (8), version u16, crc32 u32.
const HEADER: usize = 14;

#[test]
fn version_2_fixtures_migrate_to_version_3_with_the_same_state() {
    for (name, build) in SCENARIOS {
        let bytes = std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2, "{name}");
        let restored = Pump::restore(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Migration: no faults, zero truth ledgers.
        let f = restored.faults();
        assert!(
            f.occlusion_pass_ppm.is_none() && f.leak.is_none() && !f.tip_migrated,
            "{name}"
        );
        assert!(
            !f.battery_fault && f.tissue_fl == 0 && f.commanded_fl == 0,
            "{name}"
        );
        // Written back as version 3: the version-2 record, then the (empty) fault record.
        let again = restored.snapshot().unwrap();
        assert_eq!(u16::from_le_bytes([again[8], again[9]]), 3, "{name}");
        assert!(
            again[HEADER..].starts_with(&bytes[HEADER..]),
            "{name}: the version-3 payload does not begin with the version-2 record"
        );
        assert_eq!(Pump::restore(&again).unwrap(), restored, "{name}");
        assert_eq!(
            Pump::restore(&again).unwrap().snapshot().unwrap(),
            again,
            "{name}"
        );
        // Today's code, run through the same scenario, reaches the same state but for the
        // truth ledgers it counts from creation (a migrated state counts from the migration).
        let mut built = build();
        assert_eq!(
            built.faults().commanded_fl,
            i128::from(built.strokes()) * i128::from(built.true_stroke_fl()),
            "{name}"
        );
        let mut restored = restored;
        restored.zero_truth_ledgers_for_tests();
        built.zero_truth_ledgers_for_tests();
        assert_eq!(restored, built, "{name}");
    }
}

#[test]
fn a_corrupt_or_future_version_is_refused() {
    let bytes = std::fs::read(fixture_path("v2_fresh")).unwrap();
    let mut future = bytes.clone();
    future[8] = 4;
    let err = Pump::restore(&future).unwrap_err().to_string();
    assert!(err.contains("version 4") && err.contains("1 to 3"), "{err}");
    // A version-2 payload labelled version 3 lacks the fault record.
    let mut relabelled = bytes.clone();
    relabelled[8] = 3;
    assert!(Pump::restore(&relabelled).is_err());
}

#[test]
fn restored_fixtures_go_on_exactly_like_the_scenarios() {
    for (name, build) in SCENARIOS {
        let bytes = std::fs::read(fixture_path(name)).unwrap();
        let mut restored = Pump::restore(&bytes).unwrap();
        let mut built = build();
        built.zero_truth_ledgers_for_tests();
        let until = built.now_ms() + 40 * DAY;
        assert_eq!(
            restored.project(40 * DAY).unwrap(),
            built.project(40 * DAY).unwrap(),
            "{name}"
        );
        assert_eq!(
            restored.advance_to(until).unwrap(),
            built.advance_to(until).unwrap(),
            "{name}"
        );
        restored.zero_truth_ledgers_for_tests();
        built.zero_truth_ledgers_for_tests();
        assert_eq!(restored, built, "{name}");
        restored.check_invariants().unwrap();
    }
}

#[test]
fn the_scenarios_hold_what_they_say() {
    let p = running_bolus_flex_catheter();
    assert_eq!(p.boluses().len(), 3);
    assert!(p.boluses()[0].started && !p.boluses()[1].started);
    assert!(p.catheter_nl() > 0 && p.stroke_error_ppm() != 0 && !p.pending_events().is_empty());
    let p = patient_limits_alarms_suspended();
    assert!(p.patient_bolus_limits().is_some() && p.is_suspended() && p.is_stalled());
    assert!(p.active_alarms().len() >= 2 && p.battery_used_pc() > 0);
    let p = refills_priming_eri();
    assert!(p.is_eri() && !p.is_eos() && !p.boluses().is_empty() && p.withdrawn_fl() > 0);
    assert_eq!(p.concentration(), 1_000);
    let p = week_flex_empty();
    assert!(p.is_empty() && !p.active_alarms().is_empty());
    assert!(long_run().strokes() > 0);
}
