//! Shared builders and a brute-force millisecond-by-millisecond oracle for the core tests.
#![allow(dead_code)]

use itb_core::{Basal, Period, Pump, PumpConfig, PumpModel, Step};

pub const DAY: i64 = 86_400_000;

pub fn model(stroke_nl: i64, reservoir_nl: i64, low_nl: i64) -> PumpModel {
    PumpModel {
        name: "test".into(),
        reservoir_nl,
        stroke_nl,
        min_rate_nl_per_day: 1,
        max_rate_nl_per_day: 1_000_000_000.min(stroke_nl * DAY),
        low_reservoir_nl: low_nl,
        pump_path_nl: 0,
        battery: None,
    }
}

pub fn pump(model: PumpModel, now_ms: i64, reservoir_nl: i64, conc: i64, basal: Basal) -> Pump {
    Pump::new(PumpConfig {
        model,
        now_ms,
        reservoir_nl,
        concentration: conc,
        basal,
        catheter_nl: 0,
        stroke_error_ppm: 0,
        path_primed: true,
    })
    .unwrap()
}

pub fn continuous(ng_per_day: i64) -> Basal {
    Basal::Continuous { ng_per_day }
}

pub fn flex_day(steps: &[(i64, i64)]) -> Basal {
    Basal::Flex {
        period: Period::Day,
        steps: steps
            .iter()
            .map(|&(offset_ms, ng_per_day)| Step {
                offset_ms,
                ng_per_day,
            })
            .collect(),
    }
}

/// Brute force: walk every millisecond, add the commanded increment straight from the
/// the delivery model's formulas (docs: design.md#delivery-model), fire a stroke when A reaches k·q·D. Only for short spans.
pub struct Brute {
    pub now: i64,
    pub a: i128,
    pub strokes: i64,
    pub reservoir: i64,
    pub q: i64,
    pub rates: Vec<(i64, i64)>, // flex day steps in nL/day (offset_ms, rate)
    pub boluses: Vec<(i64, i64, i64)>, // (start, volume_nl, duration_ms)
    pub times: Vec<i64>,
}

impl Brute {
    fn basal_at(&self, t: i64) -> i128 {
        let phase = t.rem_euclid(DAY);
        let mut r = 0;
        for &(o, rate) in &self.rates {
            if o <= phase {
                r = rate;
            }
        }
        i128::from(r)
    }
    fn bolus_total(&self, t: i64) -> i128 {
        let d = i128::from(DAY);
        self.boluses
            .iter()
            .map(|&(s, v, dur)| {
                if t < s {
                    return 0;
                }
                let rb = (i128::from(v) * d + i128::from(dur) - 1) / i128::from(dur);
                (rb * i128::from(t - s)).min(i128::from(v) * d)
            })
            .sum()
    }
    pub fn run_to(&mut self, until: i64) {
        let d = i128::from(DAY);
        while self.now < until {
            let t = self.now;
            let inc = self.basal_at(t) + self.bolus_total(t + 1) - self.bolus_total(t);
            if self.reservoir >= self.q {
                self.a += inc;
            }
            self.now += 1;
            while self.reservoir >= self.q
                && self.a >= i128::from(self.strokes + 1) * i128::from(self.q) * d
            {
                self.strokes += 1;
                self.reservoir -= self.q;
                self.times.push(self.now);
            }
        }
    }
}
