//! Core throughput without Python: one year of a flex program with a daily bolus.
//! Prints strokes/s of the closed-form `advance_to` and of `advance_to_recording` (every stroke
//! time written out — the per-stroke baseline), and their ratio, measured in the same run.
//!
//! Run: `cargo run --release -p itb-core --example throughput`

use std::time::Instant;

use itb_core::{Basal, Period, Pump, PumpConfig, PumpModel, Step};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn pump() -> Pump {
    let model = PumpModel {
        name: "bench rig".into(),
        reservoir_nl: 500_000_000,
        stroke_nl: 2000,
        min_rate_nl_per_day: 48_000,
        max_rate_nl_per_day: 24_000_000,
        low_reservoir_nl: 2_000_000,
        pump_path_nl: 100_000,
        battery: None,
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
    for d in 0..365 {
        p.bolus(50_000, 30 * 60_000, Some(start + d * DAY + 12 * HOUR))
            .expect("valid bolus");
    }
    p
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("runs >= 1"))
}

fn main() {
    let template = pump();
    let until = template.now_ms() + 365 * DAY;
    let (t_closed, strokes) = best(50, || {
        let mut p = template.clone();
        p.advance_to(until).expect("advance");
        p.strokes()
    });
    let (t_record, times) = best(50, || {
        let mut p = template.clone();
        let mut times = Vec::new();
        p.advance_to_recording(until, &mut times).expect("advance");
        times
    });
    assert_eq!(times.len() as i64, strokes);
    let rate = |t: f64| strokes as f64 / t / 1e6;
    println!(
        "one year, flex 300/500/300 µg/day at 500 µg/mL + daily 50 µg bolus: {strokes} strokes"
    );
    println!(
        "closed-form advance_to        {:9.3} ms  {:8.1} M strokes/s",
        t_closed * 1e3,
        rate(t_closed)
    );
    println!(
        "advance_to_recording (every)  {:9.3} ms  {:8.1} M strokes/s",
        t_record * 1e3,
        rate(t_record)
    );
    println!(
        "ratio closed-form / per-stroke recording: {:.2}×",
        t_record / t_closed
    );
}
