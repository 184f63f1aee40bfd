//! `project()` and `advance_to` against the number of scheduled boluses (docs: guide/performance.md), in the
//! core alone. A bench rig pump (flex day program, SynchroMed II battery) with N daily 50 µg boluses at 12:00
//! scheduled up front, N = 1 … 10 000; prints µs per call and the ratio to N = 1, all measured in
//! this one process (compare ratios, not absolute times). `project` runs with a 30-year horizon
//! (every bolus inside it) and a 1-day horizon; `advance 1 day` is one `advance_to` a day ahead
//! (on a copy, outside the timed region); `bolus()` schedules one more bolus after the others
//! (on a copy that already took one, so its vectors have room).
//!
//! Run: `cargo run --release -p itb-core --example projection_scaling`

use std::hint::black_box;
use std::time::Instant;

use itb_core::{Basal, BatteryModel, Period, Pump, PumpConfig, PumpModel, Step};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn pump(n: i64) -> Pump {
    // The SynchroMed II battery (`itb.models.SYNCHROMED_II_40`): ERI and EOS fall within the
    // 30-year horizon, so project() also runs both searches over the drain curve.
    let battery = BatteryModel {
        capacity_pc: 1_800_000_000_000_000,
        quiescent_pc_per_ms: 8_000,
        stroke_pc: 200_000_000,
        tone_pc: 5_000_000_000,
        telemetry_pc: 20_000_000_000,
        eri_pc: 115_200_000_000_000,
        eos_pc: 36_000_000_000_000,
        non_critical_tone_ms: HOUR,
        critical_tone_ms: 600_000,
    };
    let model = PumpModel {
        name: "bench rig".into(),
        reservoir_nl: 500_000_000,
        stroke_nl: 2000,
        min_rate_nl_per_day: 48_000,
        max_rate_nl_per_day: 24_000_000,
        low_reservoir_nl: 2_000_000,
        pump_path_nl: 100_000,
        battery: Some(battery),
    };
    let steps = vec![
        Step {
            offset_ms: 0,
            ng_per_day: 300_000,
        },
        Step {
            offset_ms: 8 * HOUR,
            ng_per_day: 500_000,
        },
        Step {
            offset_ms: 22 * HOUR,
            ng_per_day: 300_000,
        },
    ];
    let start = 20_458 * DAY; // 2026-01-05
    let basal = Basal::Flex {
        period: Period::Day,
        steps,
    };
    let mut p = Pump::new(PumpConfig::new(model, start, 500_000_000, 500, basal))
        .expect("valid bench pump");
    let items: Vec<(i64, i64, i64)> = (0..n)
        .map(|d| (50_000, 30 * 60_000, start + d * DAY + 12 * HOUR))
        .collect();
    p.bolus_many(&items).expect("valid boluses");
    p
}

/// Best time per call (µs) over `rounds` rounds of `calls` calls.
fn per_call_us(rounds: usize, calls: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..calls {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / calls as f64);
    }
    best * 1e6
}

fn main() {
    let sizes = [1i64, 10, 100, 365, 1_000, 3_000, 10_000];
    println!(
        "{:>8} {:>14} {:>8} {:>14} {:>8} {:>14} {:>8} {:>12}",
        "boluses",
        "project 30y µs",
        "× N=1",
        "project 1d µs",
        "× N=1",
        "advance 1d µs",
        "× N=1",
        "bolus() µs"
    );
    let mut base = None;
    for &n in &sizes {
        let p = pump(n);
        assert_eq!(p.boluses().len() as i64, n);
        let calls = (200_000 / (n as usize + 10)).clamp(5, 20_000);
        let proj = per_call_us(5, calls, || {
            black_box(p.project(black_box(30 * 365 * DAY)).expect("project"));
        });
        let proj_day = per_call_us(5, calls, || {
            black_box(p.project(black_box(DAY)).expect("project"));
        });
        let copies: Vec<Pump> = (0..20).map(|_| p.clone()).collect();
        let mut best_adv = f64::INFINITY;
        for mut c in copies {
            let until = c.now_ms() + DAY;
            let t = Instant::now();
            black_box(c.advance_to(until).expect("advance"));
            best_adv = best_adv.min(t.elapsed().as_secs_f64() * 1e6);
        }
        let mut copies: Vec<Pump> = (0..20).map(|_| p.clone()).collect();
        let mut best_bolus = f64::INFINITY;
        for c in &mut copies {
            // One bolus first, untimed: a fresh copy's vectors are full, its first insertion
            // reallocates them (a cost of the copy, not of the call).
            c.bolus(50_000, 30 * 60_000, Some(c.now_ms() + (n + 1) * DAY))
                .expect("bolus");
            let at = c.now_ms() + (n + 2) * DAY;
            let t = Instant::now();
            black_box(c.bolus(50_000, 30 * 60_000, Some(at)).expect("bolus"));
            best_bolus = best_bolus.min(t.elapsed().as_secs_f64() * 1e6);
        }
        let (b0, b1, b2) = *base.get_or_insert((proj, proj_day, best_adv));
        println!(
            "{n:>8} {proj:>14.3} {:>8.1} {proj_day:>14.3} {:>8.1} {best_adv:>14.2} {:>8.1} {best_bolus:>12.2}",
            proj / b0,
            proj_day / b1,
            best_adv / b2
        );
    }
}
