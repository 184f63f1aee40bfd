//! Regression tests from fuzzing (`rust/core/fuzz`, see its README): each replays, as plain
//! calls, an input that once made the core panic or break an invariant.

mod common;
use common::*;
use itb_core::{Pump, PumpConfig, PumpModel, RefillTolerance};

/// A 1 L reservoir refilled with 1 L again and again: the fill ledger (fL, i64) would pass
/// i64::MAX after ~9 223 refills. The refill that would overflow a ledger is refused (nothing
/// changes), never a panic or a wrapped ledger.
#[test]
fn refill_ledger_overflow_is_refused() {
    let m = PumpModel {
        max_rate_nl_per_day: 1_000_000_000,
        ..model(1_000_000, 1_000_000_000, 0)
    };
    let mut p = Pump::new(PumpConfig::new(m, 0, 1_000_000_000, 1000, continuous(0))).unwrap();
    let mut refused = None;
    for i in 0..10_000 {
        match p.refill(1_000_000_000, 1000, None, RefillTolerance::default()) {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (i, e) = refused.expect("a refill past the ledger range is refused");
    assert!(
        i > 9_000,
        "refused only near the ledger's range, at refill {i}: {e}"
    );
    let before = p.snapshot().unwrap();
    assert!(p
        .refill(1_000_000_000, 1000, None, RefillTolerance::default())
        .is_err());
    assert_eq!(
        p.snapshot().unwrap(),
        before,
        "a refused refill changes nothing"
    );
    p.check_invariants().unwrap();
    // Smaller refills still fit while the ledger has room.
    assert!(p.refill(1, 1000, None, RefillTolerance::default()).is_ok());
    p.check_invariants().unwrap();
}

/// The same ledger limit for path replacements (each refills the whole path with saline; a
/// catheter revision refills only the catheter and reaches the limit the same way, later).
#[test]
fn replace_fluid_path_ledger_overflow_is_refused() {
    let m = PumpModel {
        pump_path_nl: 100_000_000,
        max_rate_nl_per_day: 1_000_000,
        ..model(1_000, 1_000_000, 0)
    };
    let mut p = Pump::new(PumpConfig::new(m, 0, 0, 1000, continuous(0))).unwrap();
    let mut refused = None;
    for i in 0..100_000 {
        if p.replace_fluid_path(10_000_000).is_err() {
            refused = Some(i);
            break;
        }
    }
    let i = refused.expect("a revision past the ledger range is refused");
    assert!(
        i > 80_000,
        "refused only near the ledger's range, at revision {i}"
    );
    let before = p.snapshot().unwrap();
    assert!(p.replace_fluid_path(10_000_000).is_err());
    assert_eq!(p.snapshot().unwrap(), before);
    p.check_invariants().unwrap();
}

/// Restore must refuse a decoded state it cannot run, or give a pump that works: advancing,
/// projecting and snapshotting it keep every invariant and never panic.
fn restore_refused_or_works(bytes: &[u8], advance_ms: i64) -> Option<String> {
    match Pump::restore(bytes) {
        Err(e) => Some(e.to_string()),
        Ok(p) => {
            p.check_invariants().unwrap();
            let _ = p.project(DAY);
            let _ = p.project_with(400 * DAY, true);
            let mut q = p.clone();
            if q.advance_to(p.now_ms().saturating_add(advance_ms)).is_ok() {
                q.check_invariants().unwrap();
                let s = q.snapshot().unwrap();
                assert_eq!(Pump::restore(&s).unwrap().snapshot().unwrap(), s);
            }
            None
        }
    }
}

/// restore_payload: a payload edit gave a bolus whose rate, volume and end were inconsistent
/// (not what `Bolus::new` builds); restore accepted it and the next advance overflowed in
/// `Bolus::increment_at` (volume × 86 400 000). Restore now re-derives each bolus and refuses
/// a mismatch.
#[test]
fn restored_inconsistent_bolus_is_refused() {
    let bytes = include_bytes!("fuzz_inputs/restore-bolus-overflow.snap");
    let err = restore_refused_or_works(bytes, 4_294_912_033).expect("refused");
    assert!(err.contains("bolus") || err.contains("decode"), "{err}");
}

/// restore_payload: a one-byte insertion gave a stroke error outside ±50 % (never accepted by
/// `Pump::new`); the state passed `check_invariants`, but after advancing its physical ledgers
/// no longer balanced. Restore now checks the stroke error and catheter volume ranges too.
#[test]
fn restored_out_of_range_stroke_error_is_refused() {
    let bytes = include_bytes!("fuzz_inputs/restore-ledger-after-advance.snap");
    let err = restore_refused_or_works(bytes, 1_526_776_253).expect("refused");
    assert!(err.contains("stroke error"), "{err}");
}

/// restore_payload: an edit raised the firmware's reservoir count above anything ever filled;
/// after advancing, the strokes counted exceeded the fill ledger. Restore now requires
/// (strokes × stroke volume + reservoir) ≤ filled, which advancing preserves.
#[test]
fn restored_reservoir_beyond_what_was_filled_is_refused() {
    let bytes = include_bytes!("fuzz_inputs/restore-reservoir-beyond-filled.snap");
    let err = restore_refused_or_works(bytes, 4_294_967_295).expect("refused");
    assert!(err.contains("filled"), "{err}");
}
