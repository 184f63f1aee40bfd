//! Closed-form projection of future strokes and alarms under the current program and
//! scheduled boluses, with no intervention. Cost: O(bolus spans + steps per period) per
//! query — whole periods of the basal program are skipped arithmetically, never walked.

use crate::error::{ItbError, Result};
use crate::pump::Pump;
use crate::units::{div_ceil, MAX_TIME_MS};

/// What the pump will do next; each time is strictly after now and within the horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Projection {
    pub next_stroke_ms: Option<i64>,
    pub low_reservoir_ms: Option<i64>,
    pub reservoir_empty_ms: Option<i64>,
    /// When fluid of a new concentration (or the first drug after saline) reaches the tip.
    pub drug_at_tip_ms: Option<i64>,
}

impl Pump {
    /// Project the next stroke, the low-reservoir alarm and the empty reservoir within
    /// `horizon_ms` (>= 0). Equal to what `advance_to` then observes.
    pub fn project(&self, horizon_ms: i64) -> Result<Projection> {
        if horizon_ms < 0 {
            return Err(ItbError::validation("horizon", format!("{horizon_ms} ms must be >= 0")));
        }
        let limit = self.now_ms.saturating_add(horizon_ms).min(MAX_TIME_MS);
        if !self.delivering() {
            return Ok(Projection::default());
        }
        let allowed = self.reservoir_nl / self.model.stroke_nl;
        let bound = |j: Option<i64>| j.filter(|&j| j <= allowed);
        let targets = [Some(1), bound(self.low_alarm_stroke()), Some(allowed), bound(self.strokes_until_tip_change())];
        let times = self.stroke_times(&targets, limit);
        Ok(Projection {
            next_stroke_ms: times[0],
            low_reservoir_ms: times[1],
            reservoir_empty_ms: times[2],
            drug_at_tip_ms: times[3],
        })
    }

    /// Time of the `k`-th stroke from now (k >= 1) if it fires by `limit`, ignoring the
    /// reservoir (callers bound `k` by what the reservoir allows).
    pub fn stroke_time(&self, k: i64, limit: i64) -> Option<i64> {
        self.stroke_times(&[Some(k)], limit)[0]
    }

    /// Times of several stroke counts from now in one walk over the bolus spans; then each
    /// remaining count skips whole basal periods arithmetically.
    pub fn stroke_times(&self, ks: &[Option<i64>], limit: i64) -> Vec<Option<i64>> {
        let mut out = vec![None; ks.len()];
        let gain = self.stroke_gain();
        // Outstanding targets: (need in nL·ms/day from now, index), nearest first.
        let mut todo: Vec<(i128, usize)> = ks
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.filter(|&k| k >= 1).map(|k| (i128::from(k) * gain - self.acc, i)))
            .collect();
        todo.sort_unstable();
        // 1. Spans while boluses run, then up to the next period start.
        let bolus_end = self.boluses.iter().map(|b| b.end_ms).max().unwrap_or(self.now_ms).max(self.now_ms);
        let free_from = self.schedule.next_period_start(bolus_end);
        let mut t = self.now_ms;
        let mut done = 0i128;
        let mut next = 0usize;
        while t < free_from && t < limit && next < todo.len() {
            let (slope, change) = self.slope_at(t);
            let end = change.min(free_from);
            let span_gain = slope * i128::from(end - t);
            while next < todo.len() && slope > 0 && todo[next].0 - done <= span_gain {
                let at = t + div_ceil(todo[next].0 - done, slope) as i64;
                out[todo[next].1] = (at <= limit).then_some(at);
                next += 1;
            }
            done += span_gain;
            t = end;
        }
        if t < free_from {
            return out; // beyond the limit
        }
        // 2. Pure basal from a period start: skip whole periods, then walk at most one.
        let period_gain = self.schedule.period_gain();
        if period_gain <= 0 {
            return out;
        }
        for &(need, i) in &todo[next..] {
            let left = need - done;
            let periods = (left - 1) / period_gain;
            let skip_to = i128::from(t) + periods * i128::from(self.schedule.period_ms);
            if skip_to > i128::from(limit) {
                continue;
            }
            let mut at = skip_to as i64;
            let mut left = left - periods * period_gain;
            let end = at.saturating_add(self.schedule.period_ms);
            out[i] = match self.walk(&mut at, &mut left, end, limit) {
                Walk::Found(found) => Some(found),
                _ => None,
            };
        }
        out
    }

    /// Walk basal spans from `t` towards `until` consuming `need` (nL·ms/day).
    fn walk(&self, t: &mut i64, need: &mut i128, until: i64, limit: i64) -> Walk {
        while *t < until {
            if *t >= limit {
                return Walk::Beyond;
            }
            let (slope, next) = self.schedule.rate_at(*t);
            let slope = i128::from(slope);
            let end = next.min(until);
            let gain = slope * i128::from(end - *t);
            if slope > 0 && gain >= *need {
                let at = *t + div_ceil(*need, slope) as i64;
                return if at <= limit { Walk::Found(at) } else { Walk::Beyond };
            }
            *need -= gain;
            *t = end;
        }
        Walk::Reached
    }
}

enum Walk {
    Found(i64),
    Beyond,
    Reached,
}
