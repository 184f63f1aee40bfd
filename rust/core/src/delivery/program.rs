//! Basal programs (what the clinician prescribes, in ng/day) and the volume-rate
//! schedule (nL/day) they become at a concentration.

use serde::{Deserialize, Serialize};

use crate::error::{ItbError, Result};
use crate::model::PumpModel;
use crate::units::{volume_rate_nl_per_day, MAX_DOSE_NG_PER_DAY, MS_PER_DAY, MS_PER_WEEK};

/// Most step start times within one calendar day (SynchroMed II flex: 13 a day).
pub const MAX_STEPS_PER_DAY: usize = 13;

/// Repeat period of a flex program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    /// Repeats every day from 00:00 pump time.
    Day,
    /// Repeats every week from Monday 00:00 pump time.
    Week,
}

impl Period {
    /// Length of the period (ms).
    pub fn ms(self) -> i64 {
        match self {
            Period::Day => MS_PER_DAY,
            Period::Week => MS_PER_WEEK,
        }
    }
    /// A pump-clock time at which a period starts (1970-01-05 was a Monday).
    pub fn anchor_ms(self) -> i64 {
        match self {
            Period::Day => 0,
            Period::Week => 4 * MS_PER_DAY,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
        }
    }
}

/// One flex step: from `offset_ms` into the period until the next step's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub offset_ms: i64,
    pub ng_per_day: i64,
}

/// A basal program in dose units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Basal {
    Continuous { ng_per_day: i64 },
    Flex { period: Period, steps: Vec<Step> },
}

impl Basal {
    /// The program as a period plus steps (a continuous program is a one-step day).
    fn steps(&self) -> (Period, Vec<Step>) {
        match self {
            Basal::Continuous { ng_per_day } => (
                Period::Day,
                vec![Step {
                    offset_ms: 0,
                    ng_per_day: *ng_per_day,
                }],
            ),
            Basal::Flex { period, steps } => (*period, steps.clone()),
        }
    }

    /// Check the program's shape: steps start at 0, strictly increase, stay within the
    /// period, at most 13 start in any calendar day, doses within 0..=10 g/day.
    pub fn validate_shape(&self) -> Result<()> {
        let (period, steps) = self.steps();
        if steps.is_empty() {
            return Err(ItbError::validation(
                "steps",
                "a flex program needs at least one step",
            ));
        }
        if steps[0].offset_ms != 0 {
            return Err(ItbError::validation(
                "steps[0].offset",
                "the first step must start at offset 0 (00:00)",
            ));
        }
        for (i, s) in steps.iter().enumerate() {
            if s.ng_per_day < 0 || s.ng_per_day > MAX_DOSE_NG_PER_DAY {
                return Err(ItbError::validation(
                    format!("steps[{i}].ug_per_day"),
                    format!("must be within 0 to {} µg/day", MAX_DOSE_NG_PER_DAY / 1000),
                ));
            }
            if s.offset_ms < 0 || s.offset_ms >= period.ms() {
                return Err(ItbError::validation(
                    format!("steps[{i}].offset"),
                    format!(
                        "must lie within the {1} period (at least 0 ms and below {0} ms)",
                        period.ms(),
                        period.name()
                    ),
                ));
            }
            if i > 0 && s.offset_ms <= steps[i - 1].offset_ms {
                return Err(ItbError::validation(
                    format!("steps[{i}].offset"),
                    "steps must be in strictly increasing order of offset",
                ));
            }
        }
        let days = (period.ms() / MS_PER_DAY) as usize;
        for day in 0..days {
            let starts = steps
                .iter()
                .filter(|s| s.offset_ms / MS_PER_DAY == day as i64)
                .count();
            if starts > MAX_STEPS_PER_DAY {
                return Err(ItbError::validation(
                    "steps",
                    format!("{starts} steps start on day {day} of the period; at most {MAX_STEPS_PER_DAY} a day"),
                ));
            }
        }
        Ok(())
    }

    /// The volume-rate schedule at `conc` µg/mL; each step's rate must be 0 or within
    /// the model's min..=max, else a programming error naming the step. A step prescribed as
    /// exactly 0 is off; a non-zero dose whose rate rounds to 0 nL/day (or below the model's
    /// minimum) is an error, never silently off.
    pub fn schedule(&self, conc: u32, model: &PumpModel) -> Result<Schedule> {
        self.validate_shape()?;
        let (period, steps) = self.steps();
        let mut offsets = Vec::with_capacity(steps.len());
        let mut rates = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            let rate = volume_rate_nl_per_day(s.ng_per_day, conc);
            if s.ng_per_day != 0
                && (rate < model.min_rate_nl_per_day.max(1) || rate > model.max_rate_nl_per_day)
            {
                let (field, what) = match self {
                    Basal::Continuous { .. } => (
                        "ug_per_day".to_string(),
                        "the continuous program".to_string(),
                    ),
                    Basal::Flex { .. } => {
                        (format!("steps[{i}].ug_per_day"), format!("flex step {i}"))
                    }
                };
                let lo = model.min_rate_nl_per_day as f64 * conc as f64 / 1e6;
                let hi = model.max_rate_nl_per_day as f64 * conc as f64 / 1e6;
                return Err(ItbError::programming(
                    field,
                    format!(
                        "{what}: {} µg/day at {conc} µg/mL is {} mL/day; allowed 0 or {lo} to {hi} µg/day \
                         ({} to {} mL/day for model {})",
                        s.ng_per_day as f64 / 1000.0,
                        rate as f64 / 1e6,
                        model.min_rate_nl_per_day as f64 / 1e6,
                        model.max_rate_nl_per_day as f64 / 1e6,
                        model.name
                    ),
                ));
            }
            offsets.push(s.offset_ms);
            rates.push(rate);
        }
        Ok(Schedule {
            period_ms: period.ms(),
            anchor_ms: period.anchor_ms(),
            offsets,
            rates,
        })
    }
}

impl Basal {
    /// The prescribed dose rate (ng/day) as a periodic schedule (rates in ng/day, unchecked):
    /// what a bridge bolus keeps while old drug leaves the path.
    pub fn dose_schedule(&self) -> Schedule {
        let (period, steps) = self.steps();
        Schedule {
            period_ms: period.ms(),
            anchor_ms: period.anchor_ms(),
            offsets: steps.iter().map(|s| s.offset_ms).collect(),
            rates: steps.iter().map(|s| s.ng_per_day).collect(),
        }
    }
}

/// A periodic, piecewise-constant volume-rate schedule (nL/day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub period_ms: i64,
    pub anchor_ms: i64,
    pub offsets: Vec<i64>,
    pub rates: Vec<i64>,
}

impl Schedule {
    /// Rate in force at `t` and the next time it may change (> t).
    pub fn rate_at(&self, t: i64) -> (i64, i64) {
        if self.rates.len() == 1 {
            return (self.rates[0], i64::MAX);
        }
        let phase = (t - self.anchor_ms).rem_euclid(self.period_ms);
        let idx = self
            .offsets
            .partition_point(|&o| o <= phase)
            .saturating_sub(1);
        let next_offset = self.offsets.get(idx + 1).copied().unwrap_or(self.period_ms);
        (
            self.rates.get(idx).copied().unwrap_or(0),
            t - phase + next_offset,
        )
    }

    /// First period start at or after `t`.
    pub fn next_period_start(&self, t: i64) -> i64 {
        let phase = (t - self.anchor_ms).rem_euclid(self.period_ms);
        if phase == 0 {
            t
        } else {
            t - phase + self.period_ms
        }
    }

    /// Accumulator gain of one whole period (nL·ms/day).
    pub fn period_gain(&self) -> i128 {
        let mut total = 0i128;
        for (i, &rate) in self.rates.iter().enumerate() {
            let end = self.offsets.get(i + 1).copied().unwrap_or(self.period_ms);
            total += i128::from(rate) * i128::from(end - self.offsets[i]);
        }
        total
    }

    /// Largest rate in force anywhere in `[a, b)` (0 for an empty interval).
    pub fn max_rate_over(&self, a: i64, b: i64) -> i64 {
        if b <= a {
            return 0;
        }
        if b - a >= self.period_ms {
            return self.rates.iter().copied().max().unwrap_or(0);
        }
        let mut t = a;
        let mut best = 0;
        while t < b {
            let (rate, next) = self.rate_at(t);
            best = best.max(rate);
            t = next;
        }
        best
    }

    /// Largest rate of the whole schedule.
    pub fn max_rate(&self) -> i64 {
        self.rates.iter().copied().max().unwrap_or(0)
    }
}
