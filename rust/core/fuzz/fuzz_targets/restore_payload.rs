//! A valid snapshot with its postcard payload mutated and the CRC fixed, so the decoder and
//! the re-validation of `Pump::restore` see the bytes (`MAGIC 8 | version u16 LE | crc32 u32 LE
//! | postcard payload`). Ok or Err, never a panic; an accepted state passes `check_invariants`,
//! round-trips, and survives a day of advancing, a projection and a snapshot.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use itb_core::{Basal, BatteryModel, Period, Pump, PumpConfig, PumpModel, Step};

const HEADER: usize = 8 + 2 + 4;
const DAY: i64 = 86_400_000;

#[derive(Arbitrary, Debug)]
enum Edit {
    /// Overwrite the byte at `at` (modulo the length).
    Set { at: u16, byte: u8 },
    /// Insert bytes at `at`.
    Insert { at: u16, bytes: Vec<u8> },
    /// Remove up to `len` bytes from `at`.
    Remove { at: u16, len: u8 },
    /// Overwrite a varint-sized run with a large value.
    Big { at: u16, len: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    base: u8,
    advance_ms: u32,
    edits: Vec<Edit>,
}

/// A few valid pumps with different shapes of state (boluses, alarms, battery, flex week).
fn base(which: u8) -> Pump {
    let battery = BatteryModel {
        capacity_pc: 1_000_000_000_000,
        quiescent_pc_per_ms: 10,
        stroke_pc: 1_000,
        tone_pc: 5_000,
        telemetry_pc: 100_000,
        eri_pc: 200_000_000_000,
        eos_pc: 100_000_000_000,
        non_critical_tone_ms: 3_600_000,
        critical_tone_ms: 600_000,
    };
    let model = PumpModel {
        name: "fuzz".into(),
        reservoir_nl: 40_000_000,
        stroke_nl: 250,
        min_rate_nl_per_day: 1,
        max_rate_nl_per_day: 24_000_000,
        low_reservoir_nl: 2_000_000,
        pump_path_nl: 200,
        battery: if which % 2 == 1 { Some(battery) } else { None },
    };
    let basal = if which % 3 == 2 {
        Basal::Flex {
            period: Period::Week,
            steps: vec![
                Step { offset_ms: 0, ng_per_day: 400_000 },
                Step { offset_ms: DAY / 3, ng_per_day: 0 },
                Step { offset_ms: 3 * DAY, ng_per_day: 800_000 },
            ],
        }
    } else {
        Basal::Continuous { ng_per_day: 400_000 }
    };
    let mut cfg = PumpConfig::new(model, 1_000 * DAY, 3_000_000, 2000, basal);
    cfg.catheter_nl = 150;
    cfg.stroke_error_ppm = -20_000;
    cfg.path_primed = which % 4 != 3;
    let mut p = Pump::new(cfg).expect("base pump");
    let _ = p.bolus(50_000, 3_600_000, None);
    let _ = p.bolus(20_000, 600_000, Some(1_000 * DAY + 7_200_000));
    if which % 5 == 4 {
        let _ = p.refill(30_000_000, 500, None, Default::default());
        let _ = p.inject_motor_stall();
    }
    let _ = p.advance_to(1_000 * DAY + 1_800_000);
    p
}

fuzz_target!(|input: Input| {
    let p = base(input.base);
    let snap = p.snapshot().expect("snapshot");
    let mut payload = snap[HEADER..].to_vec();
    for e in &input.edits {
        let n = payload.len().max(1);
        match e {
            Edit::Set { at, byte } => {
                if !payload.is_empty() {
                    payload[usize::from(*at) % n] = *byte;
                }
            }
            Edit::Insert { at, bytes } => {
                let i = usize::from(*at) % (payload.len() + 1);
                payload.splice(i..i, bytes.iter().copied().take(64));
            }
            Edit::Remove { at, len } => {
                let i = usize::from(*at) % n;
                let j = (i + usize::from(*len)).min(payload.len());
                if i < j {
                    payload.drain(i..j);
                }
            }
            Edit::Big { at, len } => {
                let i = usize::from(*at) % n;
                for k in 0..usize::from(*len % 10) {
                    if let Some(b) = payload.get_mut(i + k) {
                        *b = 0xff;
                    }
                }
                if let Some(b) = payload.get_mut(i + usize::from(*len % 10)) {
                    *b = 0x01;
                }
            }
        }
    }
    let mut bytes = snap[..HEADER].to_vec();
    bytes[10..14].copy_from_slice(&crc32fast_hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    // `ITB_FUZZ_DUMP=file cargo fuzz run restore_payload crash-…` writes the snapshot bytes a
    // crash restores (for a regression test that replays them without the fuzzer).
    if let Ok(path) = std::env::var("ITB_FUZZ_DUMP") {
        let _ = std::fs::write(path, &bytes);
    }
    if let Ok(q) = Pump::restore(&bytes) {
        q.check_invariants().expect("restored state passes its invariants");
        // Not necessarily the input bytes: postcard accepts non-minimal varints. The state's
        // own snapshot must round-trip exactly.
        let again = q.snapshot().expect("snapshot");
        let back = Pump::restore(&again).expect("restore of own snapshot");
        assert_eq!(back.snapshot().expect("snapshot"), again, "snapshot round trip");
        assert!(back == q);
        let _ = q.project(DAY);
        let _ = q.project_with(400 * DAY, true);
        let mut r = q.clone();
        if r.advance_to(q.now_ms().saturating_add(i64::from(input.advance_ms))).is_ok() {
            r.check_invariants().expect("invariants after advancing a restored pump");
            let s = r.snapshot().expect("snapshot");
            assert!(Pump::restore(&s).is_ok(), "own snapshot after advancing restores");
        }
    }
});

/// CRC-32 (IEEE), as the snapshot header uses (crc32fast::hash).
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}
