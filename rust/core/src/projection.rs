//! Closed-form projection of future strokes and alarms under the current program and
//! scheduled boluses, with no intervention. Cost: O(bolus spans + steps per period) per
//! query — whole periods of the basal program are skipped arithmetically, never walked.

use crate::battery::tones_between;
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
    /// Elective replacement indicator (battery).
    pub eri_ms: Option<i64>,
    /// End of service: delivery stops for good.
    pub eos_ms: Option<i64>,
}

impl Pump {
    /// Project the next stroke, low-reservoir alarm, empty reservoir, new drug at the tip,
    /// ERI and EOS within `horizon_ms` (>= 0), with no intervention. Equal to what
    /// `advance_to` then observes. With `assume_refills`, the reservoir is treated as
    /// refilled on time (never low or empty, same concentration), for service-date forecasts.
    pub fn project(&self, horizon_ms: i64) -> Result<Projection> {
        self.project_with(horizon_ms, false)
    }

    pub fn project_with(&self, horizon_ms: i64, assume_refills: bool) -> Result<Projection> {
        if horizon_ms < 0 {
            return Err(ItbError::validation("horizon", format!("{horizon_ms} ms must be >= 0")));
        }
        let limit = self.now_ms.saturating_add(horizon_ms).min(MAX_TIME_MS);
        let mut p = Projection::default();
        let delivering = self.delivering();
        // Strokes the reservoir allows (unbounded when refills are assumed).
        let allowed = if assume_refills { i64::MAX / 4 } else { self.reservoir_nl / self.model.stroke_nl };
        if delivering {
            let bound = |j: Option<i64>| j.filter(|&j| j <= allowed && !assume_refills);
            let targets = [
                Some(1),
                bound(self.low_alarm_stroke()),
                (!assume_refills).then_some(allowed),
                self.strokes_until_tip_change().filter(|&j| j <= allowed),
            ];
            let times = self.stroke_times(&targets, limit);
            p.next_stroke_ms = times[0];
            p.low_reservoir_ms = times[1];
            p.reservoir_empty_ms = times[2];
            p.drug_at_tip_ms = times[3];
        }
        if let Some(bat) = self.model.battery.filter(|_| !self.eos) {
            let curve = delivering.then(|| GainCurve::new(self));
            let g = self.stroke_gain();
            let strokes_by = |t: i64| -> i64 {
                match &curve {
                    Some(c) => (((self.acc + c.gain_to(t)) / g).min(i128::from(allowed))) as i64,
                    None => 0,
                }
            };
            // Alarms sounding now, plus those the projection raises.
            let mut alarms: Vec<(i64, i64)> = self
                .alarms
                .iter()
                .map(|a| (a.raised_ms, bat.tone_interval_ms(a.alarm.severity())))
                .collect();
            if let Some(t) = p.low_reservoir_ms {
                alarms.push((t, bat.non_critical_tone_ms));
            }
            if let Some(t) = p.reservoir_empty_ms {
                alarms.push((t, bat.critical_tone_ms));
            }
            let used_at = |t: i64, alarms: &[(i64, i64)]| -> i128 {
                let tones: i64 = alarms.iter().map(|&(r, i)| tones_between(r, i, self.now_ms, t)).sum();
                i128::from(self.used_pc)
                    + i128::from(bat.quiescent_pc_per_ms) * i128::from(t - self.now_ms)
                    + i128::from(bat.stroke_pc) * i128::from(strokes_by(t))
                    + i128::from(bat.tone_pc) * i128::from(tones)
            };
            let first_reaching = |threshold: i128, from: i64, alarms: &[(i64, i64)]| -> Option<i64> {
                if limit <= from || used_at(limit, alarms) < threshold {
                    return None;
                }
                Some(first_at_least(|t| used_at(t, alarms), threshold, from, limit))
            };
            let eri_threshold = i128::from(bat.capacity_pc - bat.eri_pc);
            let eos_threshold = i128::from(bat.capacity_pc - bat.eos_pc);
            if !self.eri {
                p.eri_ms = first_reaching(eri_threshold, self.now_ms, &alarms);
                if let Some(t) = p.eri_ms {
                    alarms.push((t, bat.non_critical_tone_ms));
                }
            }
            if self.eri || p.eri_ms.is_some() {
                // EOS may fall on the same ms as ERI: search from just before it.
                p.eos_ms = first_reaching(eos_threshold, p.eri_ms.map_or(self.now_ms, |t| t - 1), &alarms);
            }
            // Nothing is delivered after EOS.
            if let Some(eos) = p.eos_ms {
                for t in [&mut p.next_stroke_ms, &mut p.low_reservoir_ms, &mut p.reservoir_empty_ms, &mut p.drug_at_tip_ms] {
                    if t.is_some_and(|t| t > eos) {
                        *t = None;
                    }
                }
            }
        }
        Ok(p)
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
        let mut spans = self.span_walker(t);
        while t < free_from && t < limit && next < todo.len() {
            let (slope, change) = spans.slope_at(t);
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

/// The accumulator gain from now as a function of time, for repeated evaluation:
/// a table of bolus-era spans (binary search), then whole basal periods and a prefix
/// table within one period. Each evaluation is O(log spans + log steps).
struct GainCurve {
    now: i64,
    /// (span start, slope, gain from now at span start), until `free_from`.
    spans: Vec<(i64, i128, i128)>,
    free_from: i64,
    gain_free: i128,
    period_ms: i64,
    period_gain: i128,
    /// Within a period starting at `free_from`: (offset, slope, gain at offset).
    steps: Vec<(i64, i128, i128)>,
}

impl GainCurve {
    fn new(pump: &Pump) -> Self {
        let now = pump.now_ms;
        let bolus_end = pump.boluses.iter().map(|b| b.end_ms).max().unwrap_or(now).max(now);
        let free_from = pump.schedule.next_period_start(bolus_end);
        let mut spans = Vec::new();
        let (mut t, mut gain) = (now, 0i128);
        let mut walker = pump.span_walker(now);
        while t < free_from {
            let (slope, next) = walker.slope_at(t);
            let end = next.min(free_from);
            spans.push((t, slope, gain));
            gain += slope * i128::from(end - t);
            t = end;
        }
        let mut steps = Vec::new();
        let period_ms = pump.schedule.period_ms;
        let (mut t, mut g) = (free_from, 0i128);
        let end = free_from.saturating_add(period_ms);
        while t < end {
            let (rate, next) = pump.schedule.rate_at(t);
            let stop = next.min(end);
            steps.push((t - free_from, i128::from(rate), g));
            g += i128::from(rate) * i128::from(stop - t);
            t = stop;
        }
        GainCurve { now, spans, free_from, gain_free: gain, period_ms, period_gain: g, steps }
    }

    /// Accumulator gain over `[now, t)`.
    fn gain_to(&self, t: i64) -> i128 {
        if t <= self.now {
            return 0;
        }
        if t <= self.free_from {
            let i = self.spans.partition_point(|s| s.0 < t).saturating_sub(1);
            let (t0, slope, g) = self.spans[i];
            return g + slope * i128::from(t - t0);
        }
        let since = i128::from(t - self.free_from);
        let periods = since / i128::from(self.period_ms);
        let offset = (since % i128::from(self.period_ms)) as i64;
        let i = self.steps.partition_point(|s| s.0 < offset).saturating_sub(1);
        let (o, slope, g) = self.steps[i];
        self.gain_free + periods * self.period_gain + g + slope * i128::from(offset - o)
    }
}

/// Smallest `t` in `(lo, hi]` with `f(t) >= target`, for a non-decreasing `f` with
/// `f(lo) < target <= f(hi)`. Interpolation (Illinois) steps, with a bisection every third
/// step so the bracket at least halves regularly: exact, and a handful of evaluations when `f`
/// is close to linear (a battery drain curve is, between strokes and tones).
pub(crate) fn first_at_least(f: impl Fn(i64) -> i128, target: i128, mut lo: i64, mut hi: i64) -> i64 {
    let (mut f_lo, mut f_hi) = (f(lo), f(hi));
    let mut step = 0u32;
    while hi - lo > 1 {
        step += 1;
        let width = i128::from(hi - lo);
        let guess = if step.is_multiple_of(3) || f_hi <= f_lo {
            lo + (hi - lo) / 2
        } else {
            let offset = div_ceil((target - f_lo) * width, f_hi - f_lo);
            lo + offset.clamp(1, width - 1) as i64
        };
        let f_guess = f(guess);
        if f_guess >= target {
            hi = guess;
            f_hi = f_guess;
        } else {
            lo = guess;
            f_lo = f_guess;
        }
    }
    hi
}
