//! Snapshots written by the version-1 format (the build before event sequence numbers and
//! bolus doses) restore and are migrated. The fixtures were written by that build (commit
//! 4c96c05, `examples/dump_v1.rs` there): a SynchroMed II 40 mL at 2000 µg/mL, flex 300/500
//! µg/day, 100 µL catheter, a 50 µg bolus scheduled at +2 h; then advanced 3 days, a 20 µg bolus
//! started, 10 min later refilled with 20 mL at 500 µg/mL (events still pending).

use itb_core::{BolusKind, EventKind, Pump};

const SCHEDULED: &[u8] = include_bytes!("fixtures/v1_scheduled_bolus.bin");
const REFILLED: &[u8] = include_bytes!("fixtures/v1_running_bolus_refilled.bin");
const T0: i64 = 1_767_600_000_000; // 2026-01-05T08:00

#[test]
fn a_version_1_snapshot_with_a_scheduled_bolus_is_migrated() {
    assert_eq!(u16::from_le_bytes([SCHEDULED[8], SCHEDULED[9]]), 1);
    let mut p = Pump::restore(SCHEDULED).unwrap();
    assert_eq!(p.now_ms(), T0);
    let b = &p.boluses()[0];
    // 50 µg at 2000 µg/mL = 25 000 nL over 30 min from +2 h
    assert_eq!(
        (b.id, b.start_ms, b.volume_nl, b.requested_ng, b.dose_pg),
        (1, T0 + 7_200_000, 25_000, 50_000, 50_000_000)
    );
    assert_eq!((b.duration_ms, b.kind), (1_800_000, BolusKind::Timed));
    assert_eq!(p.next_event_seq(), 1);
    let again = p.snapshot().unwrap();
    assert_eq!(u16::from_le_bytes([again[8], again[9]]), 3); // written back in today's format
    assert_eq!(Pump::restore(&again).unwrap(), p);
    let events = p.advance_to(T0 + 3 * 3_600_000).unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::BolusCompleted));
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=events.len() as u64).collect::<Vec<_>>()
    );
}

#[test]
fn a_version_1_snapshot_after_a_refill_keeps_its_state_and_pending_events() {
    let mut p = Pump::restore(REFILLED).unwrap();
    // what the version-1 build printed: strokes=339 reservoir_nl=20000000 now_ms=1767859800000
    assert_eq!(
        (p.strokes(), p.reservoir_nl(), p.now_ms()),
        (339, 20_000_000, 1_767_859_800_000)
    );
    assert_eq!(p.concentration(), 500);
    let b = &p.boluses()[0]; // still running: version 1 did not cancel it; 10 000 nL now at 500 µg/mL
    assert_eq!(
        (b.volume_nl, b.requested_ng, b.dose_pg),
        (10_000, 20_000, 5_000_000)
    );
    p.check_invariants().unwrap();
    let events = p.advance_to(p.now_ms()).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert!(
        kinds.contains(&EventKind::Refilled) && kinds.contains(&EventKind::ConcentrationChanged)
    );
    assert_eq!(events[0].seq, 1);
}
