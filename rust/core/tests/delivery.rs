//! Hand-computed delivery cases and brute-force cross-checks.

mod common;
use common::*;
use itb_core::{EventKind, ItbError};

#[test]
fn continuous_400_ug_per_day_at_2000_ug_per_ml() {
    // 400 µg/day at 2000 µg/mL = 0.2 mL/day = 200_000 nL/day; q = 2000 nL.
    let mut p = pump(
        model(2000, 40_000_000, 2_000_000),
        0,
        40_000_000,
        2000,
        continuous(400_000),
    );
    // First stroke when 200_000 · t ≥ 2000 · 86_400_000 → t = 864_000 ms.
    assert_eq!(p.project(DAY).unwrap().next_stroke_ms, Some(864_000));
    p.advance_to(863_999).unwrap();
    assert_eq!(p.strokes(), 0);
    p.advance_to(864_000).unwrap();
    assert_eq!(p.strokes(), 1);
    p.advance_to(30 * DAY).unwrap();
    assert_eq!(p.strokes(), 200_000 * 30 / 2000);
}

#[test]
fn low_and_empty_alarm_times_by_hand() {
    // 1_000_000 nL/day, q = 1000 → one stroke every 86_400 ms.
    // Reservoir 10_000 nL, low at 3_000: after stroke 7 (10_000 − 7000 = 3000 ≤ 3000).
    // Empty after stroke 10 (reservoir 0 < q).
    let mut p = pump(
        model(1000, 20_000, 3000),
        0,
        10_000,
        1000,
        continuous(1_000_000),
    );
    let proj = p.project(DAY).unwrap();
    assert_eq!(proj.low_reservoir_ms, Some(7 * 86_400));
    assert_eq!(proj.reservoir_empty_ms, Some(10 * 86_400));
    let ev = p.advance_to(DAY).unwrap();
    let kinds: Vec<_> = ev.iter().map(|e| (e.time_ms, e.kind)).collect();
    assert!(kinds.contains(&(7 * 86_400, EventKind::LowReservoir)));
    assert!(kinds.contains(&(10 * 86_400, EventKind::ReservoirEmpty)));
    assert_eq!(p.strokes(), 10);
    assert!(p.is_empty());
    // No delivery after empty, and the remainder is kept.
    let acc = p.accumulator();
    p.advance_to(2 * DAY).unwrap();
    assert_eq!((p.strokes(), p.accumulator()), (10, acc));
}

#[test]
fn bolus_alone_exact_volume_and_end() {
    // V = 10_000 nL over 1 h: r_b = ceil(10_000 · 86_400_000 / 3_600_000) = 240_000 nL/day.
    // Ends at ceil(10_000·86_400_000 / 240_000) = 3_600_000 ms. q = 2000 → 5 strokes,
    // stroke k at ceil(k · 2000 · 86_400_000 / 240_000) = k · 720_000 ms.
    let mut p = pump(model(2000, 1_000_000, 0), 0, 1_000_000, 1000, continuous(0));
    let id = p.bolus(10_000, 3_600_000, None).unwrap();
    let mut times = Vec::new();
    let ev = p.advance_to_recording(DAY, &mut times).unwrap();
    assert_eq!(
        times,
        vec![720_000, 1_440_000, 2_160_000, 2_880_000, 3_600_000]
    );
    assert!(ev.iter().any(|e| e.kind == EventKind::BolusCompleted
        && e.time_ms == 3_600_000
        && e.get("bolus_id") == Some(id as i64)));
}

#[test]
fn bolus_with_uneven_rate_delivers_exact_volume() {
    // V = 7 nL over 10 ms: r_b = ceil(7·D/10) = 60_480_000 nL/day (≤ q·D = 86_400_000);
    // ends at 10 + ceil(7·D / r_b) = 20 ms; total = 7 nL exactly.
    let mut p = pump(model(1, 1_000_000, 0), 0, 1_000_000, 1000, continuous(0));
    p.bolus(7, 10, Some(10)).unwrap();
    assert_eq!(p.boluses()[0].end_ms, 20);
    p.advance_to(100).unwrap();
    assert_eq!(p.strokes(), 7);
    assert_eq!(p.accumulator(), 0);
}

#[test]
fn flex_matches_brute_force() {
    let steps = [
        (0, 300_000),
        (8 * 3_600_000, 500_000),
        (22 * 3_600_000, 300_000),
    ];
    let mut p = pump(
        model(50, 1_000_000_000, 0),
        0,
        1_000_000_000,
        2000,
        flex_day(&steps),
    );
    let mut brute = Brute {
        now: 0,
        a: 0,
        strokes: 0,
        reservoir: 1_000_000_000,
        q: 50,
        rates: steps.iter().map(|&(o, ng)| (o, ng * 1000 / 2000)).collect(),
        boluses: vec![],
        times: vec![],
    };
    let mut times = Vec::new();
    p.advance_to_recording(DAY + 3_600_000, &mut times).unwrap();
    brute.run_to(DAY + 3_600_000);
    assert_eq!(times, brute.times);
}

#[test]
fn boluses_over_flex_match_brute_force_and_empty_stops() {
    let steps = [(0, 100_000), (3_600_000, 0), (7_200_000, 200_000)];
    let mut p = pump(model(20, 1_000_000, 0), 0, 20_000, 1000, flex_day(&steps));
    p.bolus(5_000, 1_000_001, Some(1_000_000)).unwrap();
    p.bolus(3_001, 2_345_677, Some(1_500_000)).unwrap();
    let mut brute = Brute {
        now: 0,
        a: 0,
        strokes: 0,
        reservoir: 20_000,
        q: 20,
        rates: steps.iter().map(|&(o, ng)| (o, ng)).collect(),
        boluses: vec![(1_000_000, 5_000, 1_000_001), (1_500_000, 3_001, 2_345_677)],
        times: vec![],
    };
    let mut times = Vec::new();
    for until in [999_999, 1_000_000, 1_700_000, 5_000_000, 12_000_000] {
        p.advance_to_recording(until, &mut times).unwrap();
    }
    brute.run_to(12_000_000);
    assert_eq!(times, brute.times);
    assert_eq!(p.strokes(), 1000); // 20_000 / 20: the reservoir empties within the span
    assert!(p.is_empty());
}

#[test]
fn program_change_keeps_remainder() {
    let mut p = pump(
        model(2000, 40_000_000, 0),
        0,
        40_000_000,
        1000,
        continuous(100_000),
    );
    p.advance_to(1_000_000).unwrap();
    let acc = p.accumulator();
    assert_eq!(acc, 100_000i128 * 1_000_000);
    p.set_program(continuous(200_000)).unwrap();
    assert_eq!(p.accumulator(), acc);
    // Remaining need: 2000·D − acc at 200_000 nL/day.
    let need = 2000i128 * 86_400_000 - acc;
    let expect = 1_000_000 + ((need + 200_000 - 1) / 200_000) as i64;
    assert_eq!(p.project(DAY).unwrap().next_stroke_ms, Some(expect));
}

#[test]
fn rate_limits_are_programming_errors_and_leave_state() {
    let m = itb_core::PumpModel {
        min_rate_nl_per_day: 48_000,
        max_rate_nl_per_day: 24_000_000,
        ..model(2000, 40_000_000, 2_000_000)
    };
    let mut p = pump(m, 0, 40_000_000, 2000, continuous(400_000));
    let before = p.snapshot().unwrap();
    // 1 µg/day at 2000 µg/mL = 500 nL/day < 48_000 min.
    assert!(matches!(
        p.set_program(continuous(1_000)),
        Err(ItbError::Programming { .. })
    ));
    // 50 mg/day at 2000 = 25 mL/day > 24 max.
    assert!(matches!(
        p.set_program(continuous(50_000_000)),
        Err(ItbError::Programming { .. })
    ));
    // A bolus of 2000 µg (1 mL) over 1 h runs at 24 mL/day; + basal 0.2 mL/day > 24.
    assert!(matches!(
        p.bolus(2_000_000, 3_600_000, None),
        Err(ItbError::Programming { .. })
    ));
    assert!(matches!(
        p.bolus(1_000, 1_000, Some(-5)),
        Err(ItbError::Validation { .. })
    ));
    assert!(matches!(
        p.cancel_bolus(99),
        Err(ItbError::Validation { .. })
    ));
    assert!(matches!(
        p.refill(50_000_000, 2000, None, Default::default()),
        Err(ItbError::Reservoir { .. })
    ));
    assert!(matches!(p.advance_to(-1), Err(ItbError::Validation { .. })));
    assert_eq!(p.snapshot().unwrap(), before);
}

#[test]
fn low_alarm_fires_once_per_fill_and_rearms() {
    let mut p = pump(
        model(1000, 20_000, 5000),
        0,
        4000,
        1000,
        continuous(1_000_000),
    );
    let ev = p.advance_to(1).unwrap();
    assert_eq!(
        ev.iter()
            .filter(|e| e.kind == EventKind::LowReservoir)
            .count(),
        1
    );
    assert_eq!(ev[0].time_ms, 0);
    let ev = p.advance_to(DAY).unwrap();
    assert_eq!(
        ev.iter()
            .filter(|e| e.kind == EventKind::LowReservoir)
            .count(),
        0
    );
    p.refill(10_000, 1000, None, Default::default()).unwrap();
    let ev = p.advance_to(2 * DAY).unwrap();
    // Refilled to 10_000: low after stroke 5 (10_000 − 5000 ≤ 5000) at DAY + 5·86_400.
    let low: Vec<_> = ev
        .iter()
        .filter(|e| e.kind == EventKind::LowReservoir)
        .map(|e| e.time_ms)
        .collect();
    assert_eq!(low.len(), 1);
    assert!(low[0] > DAY);
}

#[test]
fn snapshot_rejects_garbage() {
    let p = pump(
        model(2000, 40_000_000, 0),
        0,
        40_000_000,
        1000,
        continuous(100_000),
    );
    let good = p.snapshot().unwrap();
    assert_eq!(itb_core::Pump::restore(&good).unwrap(), p);
    assert!(itb_core::Pump::restore(b"").is_err());
    assert!(itb_core::Pump::restore(b"PK\x03\x04 definitely a zip").is_err());
    assert!(itb_core::Pump::restore(&good[..good.len() - 1]).is_err());
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(itb_core::Pump::restore(&flipped).is_err());
}
