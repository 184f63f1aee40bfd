//! Delivery: the basal program and its volume-rate schedule, the accumulator remainder and
//! stroke count, and the boluses scheduled or running — and the one span walker over the
//! accumulator's constant-increment spans that `advance_to`, projection and the bolus plans
//! share.
//!
//! Delivery model (see DESIGN.md): the accumulator `A` gains, each millisecond `[t, t+1)`,
//! the basal volume rate in force at `t` plus each running bolus's increment (nL·ms/day).
//! Stroke k fires at the first integer ms with `A ≥ k·q·86_400_000`. The pump stores only the
//! remainder `acc = A − strokes·q·86_400_000`, which no program change resets.
//!
//! Owns the invariants: `0 <= acc < q·86_400_000`, the schedule is the program's at the
//! reservoir concentration, boluses sorted by start with unique ids below `next_bolus_id`, each
//! as [`Bolus::new`] builds it.

use crate::bolus::Bolus;
use crate::error::{ItbError, Result};
use crate::events::{Event, EventKind};
use crate::model::PumpModel;
use crate::program::{Basal, Schedule};
use crate::units::{div_ceil, MAX_BOLUS_NG, MAX_TIME_MS, MIN_TIME_MS};

/// The delivery part of a pump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub(crate) basal: Basal,
    pub(crate) schedule: Schedule,
    /// Accumulator remainder (nL·ms/day).
    pub(crate) acc: i128,
    pub(crate) strokes: i64,
    /// Boluses scheduled or running, sorted by start.
    boluses: Vec<Bolus>,
    pub(crate) next_bolus_id: u64,
}

impl Delivery {
    /// A program with no stroke yet, no remainder and no bolus.
    pub(crate) fn new(basal: Basal, schedule: Schedule) -> Self {
        Delivery { basal, schedule, acc: 0, strokes: 0, boluses: Vec::new(), next_bolus_id: 1 }
    }

    pub fn basal(&self) -> &Basal {
        &self.basal
    }
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
    pub fn strokes(&self) -> i64 {
        self.strokes
    }
    /// Accumulator remainder (nL·ms/day).
    pub fn accumulator(&self) -> i128 {
        self.acc
    }
    /// Boluses scheduled or running.
    pub fn boluses(&self) -> &[Bolus] {
        &self.boluses
    }

    /// Replace the program and its schedule (the remainder carries over).
    pub(crate) fn set_program(&mut self, basal: Basal, schedule: Schedule) {
        self.basal = basal;
        self.schedule = schedule;
    }

    /// Insert keeping the list sorted by start.
    pub(crate) fn insert_bolus(&mut self, bolus: Bolus) {
        let at = self.boluses.partition_point(|b| b.start_ms <= bolus.start_ms);
        self.boluses.insert(at, bolus);
    }

    /// Take a decoded bolus list as it is (a restore checks it afterwards).
    pub(crate) fn restore_boluses(&mut self, boluses: Vec<Bolus>) {
        self.boluses = boluses;
    }

    /// Remove the bolus with id `id`, if scheduled or running.
    pub(crate) fn remove_bolus(&mut self, id: u64) -> Option<Bolus> {
        let pos = self.boluses.iter().position(|b| b.id == id)?;
        Some(self.boluses.remove(pos))
    }

    /// After a concentration change: the program's new schedule and the boluses re-derived
    /// (in their order by start).
    pub(crate) fn rederived(&mut self, schedule: Schedule, boluses: Vec<Bolus>) {
        self.schedule = schedule;
        self.boluses = boluses;
    }

    /// Increment in force for the millisecond `[t, t+1)` and the next time it may change.
    pub(crate) fn slope_at(&self, t: i64) -> (i128, i64) {
        let (basal, mut next) = self.schedule.rate_at(t);
        let mut slope = i128::from(basal);
        // Boluses are sorted by start: stop at the first one still to come.
        for b in &self.boluses {
            if b.start_ms > t {
                next = next.min(b.start_ms);
                break;
            }
            slope += i128::from(b.increment_at(t));
            next = next.min(b.next_change_after(t));
        }
        (slope, next)
    }

    /// A walker over the accumulator's constant-increment spans from `t0` on (times must not
    /// go back): O(boluses) to start, then O(running boluses) per span, whatever the number of
    /// boluses scheduled or already over.
    pub(crate) fn span_walker(&self, t0: i64) -> SpanWalker<'_> {
        let next = self.boluses.partition_point(|b| b.start_ms <= t0);
        let active = (0..next).filter(|&i| self.boluses[i].end_ms > t0).collect();
        SpanWalker { schedule: &self.schedule, boluses: &self.boluses, next, active }
    }

    /// Whether a bolus starts or ends at or before `t` without its event yet.
    pub(crate) fn boundary_due(&self, t: i64) -> bool {
        self.boluses.iter().take_while(|b| b.start_ms <= t).any(|b| !b.started || b.end_ms <= t)
    }

    /// Emit bolus start/completion events due at `t` (idempotent).
    pub(crate) fn process_boundaries(&mut self, sink: &mut Vec<Event>, t: i64) {
        let mut i = 0;
        while i < self.boluses.len() && self.boluses[i].start_ms <= t {
            let b = &mut self.boluses[i];
            if !b.started && b.start_ms <= t {
                b.started = true;
                sink.push(
                    Event::new(
                        b.start_ms,
                        EventKind::BolusStarted,
                        &[("bolus_id", b.id as i64), ("volume_nl", b.volume_nl), ("dose_pg", b.dose_pg), ("end_ms", b.end_ms)],
                    )
                    .with_text("bolus_kind", b.kind.name()),
                );
            }
            if b.end_ms <= t {
                sink.push(
                    Event::new(
                        b.end_ms,
                        EventKind::BolusCompleted,
                        &[("bolus_id", b.id as i64), ("volume_nl", b.volume_nl), ("dose_pg", b.dose_pg)],
                    )
                    .with_text("bolus_kind", b.kind.name()),
                );
                self.boluses.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Times of several stroke counts from now in one walk over the bolus spans; then each
    /// remaining count skips whole basal periods arithmetically.
    pub(crate) fn stroke_times(&self, now: i64, gain: i128, ks: &[Option<i64>], limit: i64) -> Vec<Option<i64>> {
        let mut out = vec![None; ks.len()];
        // Outstanding targets: (need in nL·ms/day from now, index), nearest first.
        let mut todo: Vec<(i128, usize)> = ks
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.filter(|&k| k >= 1).map(|k| (i128::from(k) * gain - self.acc, i)))
            .collect();
        todo.sort_unstable();
        // 1. Spans while boluses run, then up to the next period start.
        let bolus_end = self.boluses.iter().map(|b| b.end_ms).max().unwrap_or(now).max(now);
        let free_from = self.schedule.next_period_start(bolus_end);
        let mut t = now;
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

    /// The invariants of a decoded state (see the module docs); the schedule is checked
    /// against the program by the caller, who knows the concentration.
    pub(crate) fn check_invariants(&self, model: &PumpModel) -> std::result::Result<(), &'static str> {
        if self.acc < 0 || self.acc >= i128::from(model.stroke_nl) * i128::from(crate::units::MS_PER_DAY) {
            return Err("accumulator out of range");
        }
        if self.strokes < 0 {
            return Err("reservoir out of range");
        }
        Ok(())
    }

    /// The invariants of the bolus list (see the module docs).
    pub(crate) fn check_boluses(&self, model: &PumpModel) -> std::result::Result<(), &'static str> {
        let sorted = self.boluses.windows(2).all(|w| w[0].start_ms <= w[1].start_ms);
        let unique = self.boluses.iter().enumerate().all(|(i, b)| self.boluses[..i].iter().all(|c| c.id != b.id));
        // Each bolus is what `Bolus::new` builds from its volume, duration and start.
        let sane = self.boluses.iter().all(|b| {
            b.id < self.next_bolus_id
                && (1..=model.reservoir_nl).contains(&b.volume_nl)
                && b.duration_ms >= 1
                && (0..=MAX_BOLUS_NG).contains(&b.requested_ng)
                && b.dose_pg >= 0
                && (MIN_TIME_MS..=MAX_TIME_MS).contains(&b.start_ms)
                && {
                    let nb = Bolus::new(b.id, b.start_ms, b.volume_nl, b.requested_ng, 1, b.duration_ms, b.kind);
                    nb.end_ms == b.end_ms && nb.rate_nl_per_day == b.rate_nl_per_day
                }
                && b.end_ms <= MAX_TIME_MS
        });
        if !sorted || !unique || !sane {
            return Err("bolus list is inconsistent");
        }
        Ok(())
    }
}

/// `bolus_cancelled` for `b` at `now`, saying why and what it had delivered.
pub(crate) fn cancelled_event(b: &Bolus, now: i64, reason: &str) -> Event {
    Event::new(
        now,
        EventKind::BolusCancelled,
        &[("bolus_id", b.id as i64), ("volume_nl", b.volume_nl), ("delivered_nl", b.delivered_nl_by(now))],
    )
    .with_text("bolus_kind", b.kind.name())
    .with_text("reason", reason)
}

enum Walk {
    Found(i64),
    Beyond,
    Reached,
}

/// The accumulator gain from now as a function of time, for repeated evaluation:
/// a table of bolus-era spans (binary search), then whole basal periods and a prefix
/// table within one period. Each evaluation is O(log spans + log steps).
pub(crate) struct GainCurve {
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
    pub(crate) fn new(pump: &Delivery, now: i64) -> Self {
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
    pub(crate) fn gain_to(&self, t: i64) -> i128 {
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


/// See [`Delivery::span_walker`]: the boluses running (`active`) and the next to start (`next`).
pub(crate) struct SpanWalker<'a> {
    schedule: &'a Schedule,
    boluses: &'a [Bolus],
    next: usize,
    active: Vec<usize>,
}

impl SpanWalker<'_> {
    /// As [`Delivery::slope_at`], for a `t` not before the previous call's.
    pub(crate) fn slope_at(&mut self, t: i64) -> (i128, i64) {
        while self.next < self.boluses.len() && self.boluses[self.next].start_ms <= t {
            self.active.push(self.next);
            self.next += 1;
        }
        let boluses = self.boluses;
        self.active.retain(|&i| boluses[i].end_ms > t);
        let (basal, mut change) = self.schedule.rate_at(t);
        let mut slope = i128::from(basal);
        for &i in &self.active {
            slope += i128::from(boluses[i].increment_at(t));
            change = change.min(boluses[i].next_change_after(t));
        }
        if let Some(b) = boluses.get(self.next) {
            change = change.min(b.start_ms);
        }
        (slope, change)
    }
}

/// Append the times of strokes 1..=n of a span starting at `t0` with remainder `a`.
/// Incremental: each step adds the whole-ms quotient and carries the remainder.
pub(crate) fn record_stroke_times(out: &mut Vec<i64>, t0: i64, a: i128, slope: i128, gain: i128, n: i64) {
    out.reserve((n as usize).min(1 << 20)); // grow as needed beyond 1 M strokes per span
    // Stroke j fires at t0 + ceil((j·gain − a) / slope).
    let first_need = gain - a;
    let t = t0 + div_ceil(first_need, slope) as i64;
    // Slack: how far A(t) overshoots the threshold at the stroke time (0 <= slack < slope).
    let slack = div_ceil(first_need, slope) * slope - first_need;
    // Every quantity of the loop is below `slope` or `gain`: when both fit in i64 (always for
    // models within the core's limits), the loop runs in i64, several times faster than i128.
    match (i64::try_from(slope), i64::try_from(gain), i64::try_from(slack)) {
        (Ok(slope), Ok(gain), Ok(slack)) => step_times(out, t, slack, slope, gain, n),
        _ => step_times(out, t, slack, slope, gain, n),
    }
}

/// The loop of [`record_stroke_times`]: each step adds the whole-ms quotient and carries the
/// remainder, in the integer type `I`.
fn step_times<I>(out: &mut Vec<i64>, mut t: i64, mut slack: I, slope: I, gain: I, n: i64)
where
    I: Copy + PartialOrd + std::ops::Add<Output = I> + std::ops::Sub<Output = I> + std::ops::Div<Output = I>
        + std::ops::Rem<Output = I> + std::ops::Neg<Output = I> + From<u8> + TryInto<i64>,
{
    let (zero, one) = (I::from(0u8), I::from(1u8));
    let step_q = gain / slope;
    let step_r = gain % slope;
    for _ in 0..n {
        out.push(t);
        // Next threshold is `gain` further; the overshoot already covers `slack`.
        let mut dt = step_q;
        let mut rem = step_r - slack;
        if rem > zero {
            dt = dt + one;
            rem = rem - slope;
        }
        slack = -rem;
        t += dt.try_into().unwrap_or(i64::MAX);
    }
}

/// Check that basal plus boluses never exceed the model's max rate from `from_ms` on.
pub(crate) fn check_total_rate(
    model: &PumpModel,
    schedule: &Schedule,
    boluses: &[Bolus],
    from_ms: i64,
    field: &str,
) -> Result<()> {
    let last_end = boluses.iter().map(|b| b.end_ms).max().unwrap_or(from_ms);
    let (peak, at, basal, bolus_sum) = peak_rate(schedule, boluses, from_ms, last_end);
    if peak > model.max_rate_nl_per_day && bolus_sum > 0 {
        return Err(ItbError::programming(
            field,
            format!(
                "basal {basal} nL/day + boluses {bolus_sum} nL/day = {peak} nL/day at {at} ms exceeds the \
                 maximum rate {} nL/day of model {}",
                model.max_rate_nl_per_day, model.name
            ),
        ));
    }
    Ok(())
}

/// Highest commanded rate (basal + the rates of the boluses running) anywhere in `[a, b)`,
/// as `(peak, at_ms, basal, boluses)` — a sweep over bolus starts and ends
/// (O(B log B + B · steps)); `(0, a, 0, 0)` for an empty interval.
pub(crate) fn peak_rate(schedule: &Schedule, boluses: &[Bolus], a: i64, b: i64) -> (i64, i64, i64, i64) {
    let mut best = (0, a, 0, 0);
    if b <= a {
        return best;
    }
    let mut edges: Vec<(i64, i64)> = Vec::with_capacity(boluses.len() * 2 + 2);
    edges.push((a, 0));
    for bolus in boluses.iter().filter(|x| x.end_ms > a && x.start_ms < b) {
        edges.push((bolus.start_ms.max(a), bolus.rate_nl_per_day));
        edges.push((bolus.end_ms.min(b), -bolus.rate_nl_per_day));
    }
    edges.push((b, 0));
    edges.sort_unstable();
    let mut bolus_sum = 0i64;
    let mut i = 0;
    while i < edges.len() {
        let t = edges[i].0;
        while i < edges.len() && edges[i].0 == t {
            bolus_sum += edges[i].1;
            i += 1;
        }
        let Some(&(next, _)) = edges.get(i) else { break };
        let basal = schedule.max_rate_over(t, next);
        if basal + bolus_sum > best.0 {
            best = (basal + bolus_sum, t, basal, bolus_sum);
        }
    }
    best
}
