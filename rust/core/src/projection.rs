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
        let within = |j: Option<i64>| j.filter(|&j| j <= allowed).and_then(|j| self.stroke_time(j, limit));
        Ok(Projection {
            next_stroke_ms: self.stroke_time(1, limit),
            low_reservoir_ms: within(self.low_alarm_stroke()),
            reservoir_empty_ms: self.stroke_time(allowed, limit),
            drug_at_tip_ms: within(self.strokes_until_tip_change()),
        })
    }

    /// Time of the `k`-th stroke from now (k >= 1) if it fires by `limit`, ignoring the
    /// reservoir (callers bound `k` by what the reservoir allows).
    pub fn stroke_time(&self, k: i64, limit: i64) -> Option<i64> {
        if k < 1 {
            return None;
        }
        let mut need = i128::from(k) * self.stroke_gain() - self.acc;
        let mut t = self.now_ms;
        // 1. Spans while boluses run, then up to the next period start.
        let bolus_end = self.boluses.iter().map(|b| b.end_ms).max().unwrap_or(t).max(t);
        let free_from = self.schedule.next_period_start(bolus_end);
        match self.walk(&mut t, &mut need, free_from, limit) {
            Walk::Found(at) => return Some(at),
            Walk::Beyond => return None,
            Walk::Reached => {}
        }
        // 2. Skip whole periods of the basal program.
        let gain = self.schedule.period_gain();
        if gain <= 0 {
            return None;
        }
        let periods = (need - 1) / gain;
        let skip_to = i128::from(t) + periods * i128::from(self.schedule.period_ms);
        if skip_to > i128::from(limit) {
            return None;
        }
        t = skip_to as i64;
        need -= periods * gain;
        // 3. At most one more period of spans.
        let end = t.saturating_add(self.schedule.period_ms);
        match self.walk(&mut t, &mut need, end, limit) {
            Walk::Found(at) => Some(at),
            _ => None,
        }
    }

    /// Walk spans from `t` towards `until` consuming `need` (nL·ms/day).
    fn walk(&self, t: &mut i64, need: &mut i128, until: i64, limit: i64) -> Walk {
        while *t < until {
            if *t >= limit {
                return Walk::Beyond;
            }
            let (slope, next) = self.slope_at(*t);
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
