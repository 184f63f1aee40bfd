//! Arbitrary bytes to `Pump::restore`: Ok or Err, never a panic; an accepted state passes
//! `check_invariants`, round-trips to the same bytes, and can be advanced and projected.
#![no_main]

use libfuzzer_sys::fuzz_target;

use itb_core::Pump;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Pump::restore(data) {
        p.check_invariants().expect("restored state passes its invariants");
        // Not necessarily `data`: postcard accepts non-minimal varints. The state's own
        // snapshot must round-trip exactly.
        let snap = p.snapshot().expect("snapshot");
        let back = Pump::restore(&snap).expect("restore of own snapshot");
        assert_eq!(back.snapshot().expect("snapshot"), snap, "snapshot round trip");
        assert!(back == p);
        let _ = p.project(86_400_000);
        let mut q = p.clone();
        if q.advance_to(p.now_ms().saturating_add(86_400_000)).is_ok() {
            q.check_invariants().expect("invariants after advancing a restored pump");
        }
    }
});
