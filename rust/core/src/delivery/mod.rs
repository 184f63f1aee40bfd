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

pub mod bolus;
pub mod faults;
pub mod path;
pub mod program;
pub mod reservoir;
pub(crate) mod spans;
pub(crate) mod stroke_times;

use crate::delivery::bolus::Bolus;
use crate::delivery::program::{Basal, Schedule};
use crate::delivery::spans::{BasalPrefix, BolusGain};
use crate::error::{ItbError, Result};
use crate::events::{Event, EventKind};
use crate::model::PumpModel;
use crate::units::{div_ceil, MAX_BOLUS_NG, MAX_TIME_MS, MIN_TIME_MS, MS_PER_DAY};

/// Fewer boluses than this added at once are inserted one by one; more, in one rebuild.
const BATCH_REBUILD: usize = 16;

/// The delivery part of a pump.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub(crate) basal: Basal,
    schedule: Schedule,
    /// Accumulator remainder (nL·ms/day).
    pub(crate) acc: i128,
    pub(crate) strokes: i64,
    /// Boluses scheduled or running, sorted by start, from `head` on (before it: boluses over,
    /// dropped in bulk so that finishing one costs O(running), not O(scheduled)).
    boluses: Vec<Bolus>,
    head: usize,
    pub(crate) next_bolus_id: u64,
    /// Derived from `schedule`: the basal gain in O(log steps).
    basal_gain: BasalPrefix,
    /// Derived from the boluses: their gain in O(log boluses) (see `spans`).
    bolus_gain: BolusGain,
}

/// Two deliveries are equal when their state is; the derived tables (and boluses already
/// over, not yet dropped) do not count.
impl PartialEq for Delivery {
    fn eq(&self, other: &Self) -> bool {
        self.basal == other.basal
            && self.schedule == other.schedule
            && self.acc == other.acc
            && self.strokes == other.strokes
            && self.boluses() == other.boluses()
            && self.next_bolus_id == other.next_bolus_id
    }
}

impl Eq for Delivery {}

impl Delivery {
    /// A program with no stroke yet, no remainder and no bolus.
    pub(crate) fn new(basal: Basal, schedule: Schedule) -> Self {
        Delivery {
            basal,
            basal_gain: BasalPrefix::new(&schedule),
            schedule,
            acc: 0,
            strokes: 0,
            boluses: Vec::new(),
            head: 0,
            next_bolus_id: 1,
            bolus_gain: BolusGain::default(),
        }
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
    /// Boluses scheduled or running, sorted by start.
    pub fn boluses(&self) -> &[Bolus] {
        self.boluses.get(self.head..).unwrap_or_default()
    }

    /// Replace the program and its schedule (the remainder carries over).
    pub(crate) fn set_program(&mut self, basal: Basal, schedule: Schedule) {
        self.basal = basal;
        self.set_schedule(schedule);
    }

    fn set_schedule(&mut self, schedule: Schedule) {
        self.basal_gain = BasalPrefix::new(&schedule);
        self.schedule = schedule;
    }

    /// Insert keeping the list sorted by start (after those starting at the same time).
    pub(crate) fn insert_bolus(&mut self, bolus: Bolus) {
        let at = self.head
            + self
                .boluses()
                .partition_point(|b| b.start_ms <= bolus.start_ms);
        self.bolus_gain.insert(&bolus);
        self.boluses.insert(at, bolus);
    }

    /// Insert many (as [`Delivery::insert_bolus`] one after the other would), rebuilding the
    /// gain table once for a large batch.
    pub(crate) fn insert_boluses(&mut self, boluses: Vec<Bolus>) {
        if boluses.len() < BATCH_REBUILD {
            for b in boluses {
                self.insert_bolus(b);
            }
            return;
        }
        self.drop_over();
        self.boluses.extend(boluses);
        // Stable: the same order as inserting each after those with the same start.
        self.boluses.sort_by_key(|b| b.start_ms);
        self.rebuild_gain();
    }

    /// Take a decoded bolus list as it is (a restore checks it afterwards).
    pub(crate) fn restore_boluses(&mut self, boluses: Vec<Bolus>) {
        self.boluses = boluses;
        self.head = 0;
        self.bolus_gain = BolusGain::default();
    }

    /// Build the derived tables of a decoded state, once [`Delivery::check_boluses`] and the
    /// schedule check have passed (so all arithmetic stays in range).
    pub(crate) fn rebuild_tables(&mut self) {
        self.basal_gain = BasalPrefix::new(&self.schedule);
        self.rebuild_gain();
    }

    /// Remove the bolus with id `id`, if scheduled or running.
    pub(crate) fn remove_bolus(&mut self, id: u64) -> Option<Bolus> {
        let pos = self.head + self.boluses().iter().position(|b| b.id == id)?;
        let b = self.boluses.remove(pos);
        self.bolus_gain.remove(&b);
        Some(b)
    }

    /// After a concentration change: the program's new schedule and the boluses re-derived
    /// (in their order by start).
    pub(crate) fn rederived(&mut self, schedule: Schedule, boluses: Vec<Bolus>) {
        self.set_schedule(schedule);
        self.boluses = boluses;
        self.head = 0;
        self.rebuild_gain();
    }

    fn rebuild_gain(&mut self) {
        self.bolus_gain = BolusGain::build(self.boluses.get(self.head..).unwrap_or_default());
    }

    /// Drop the boluses over from the front of the list.
    fn drop_over(&mut self) {
        self.boluses.drain(..self.head.min(self.boluses.len()));
        self.head = 0;
    }

    /// Increment in force for the millisecond `[t, t+1)` and the next time it may change
    /// (O(log boluses + log steps)), for `t` at or after now (the knots of boluses already
    /// over are all at or before now).
    pub(crate) fn slope_at(&self, t: i64) -> (i128, i64) {
        let (basal, next) = self.schedule.rate_at(t);
        let (bolus, bolus_next) = self.bolus_gain.slope_at(t);
        (i128::from(basal) + bolus, next.min(bolus_next))
    }

    /// Accumulator gain over `[a, b)` (`a <= b`, both at or after now): O(log boluses + log
    /// steps).
    pub(crate) fn gain_between(&self, a: i64, b: i64) -> i128 {
        self.basal_gain.gain(&self.schedule, a, b) + self.bolus_gain.gain_to(b)
            - self.bolus_gain.gain_to(a)
    }

    /// The accumulator gain from `now` on, for repeated evaluation (the values at `now`
    /// computed once).
    pub(crate) fn gain_from(&self, now: i64) -> GainFrom<'_> {
        GainFrom {
            delivery: self,
            basal_now: self.basal_gain.gain_to(&self.schedule, now),
            bolus_now: self.bolus_gain.gain_to(now),
        }
    }

    /// A walker over the accumulator's constant-increment spans from `t0` on (times must not
    /// go back): O(log boluses) to start, then O(1) amortized per span plus the schedule's
    /// O(log steps), whatever the number of boluses.
    pub(crate) fn span_walker(&self, t0: i64) -> SpanWalker<'_> {
        SpanWalker {
            delivery: self,
            next: self.bolus_gain.first_after(t0),
        }
    }

    /// Whether a bolus starts or ends at or before `t` without its event yet.
    pub(crate) fn boundary_due(&self, t: i64) -> bool {
        self.boluses()
            .iter()
            .take_while(|b| b.start_ms <= t)
            .any(|b| !b.started || b.end_ms <= t)
    }

    /// Emit bolus start/completion events due at `t` (idempotent). Cost: O(boluses started),
    /// not O(scheduled): boluses over are moved before `head` and dropped in bulk.
    pub(crate) fn process_boundaries(&mut self, sink: &mut Vec<Event>, t: i64) {
        let mut over = 0usize;
        let mut i = self.head;
        while i < self.boluses.len() && self.boluses[i].start_ms <= t {
            let b = &mut self.boluses[i];
            if !b.started && b.start_ms <= t {
                b.started = true;
                sink.push(
                    Event::new(
                        b.start_ms,
                        EventKind::BolusStarted,
                        &[
                            ("bolus_id", b.id as i64),
                            ("volume_nl", b.volume_nl),
                            ("dose_pg", b.dose_pg),
                            ("end_ms", b.end_ms),
                        ],
                    )
                    .with_text("bolus_kind", b.kind.name()),
                );
            }
            if b.end_ms <= t {
                sink.push(
                    Event::new(
                        b.end_ms,
                        EventKind::BolusCompleted,
                        &[
                            ("bolus_id", b.id as i64),
                            ("volume_nl", b.volume_nl),
                            ("dose_pg", b.dose_pg),
                        ],
                    )
                    .with_text("bolus_kind", b.kind.name()),
                );
                over += 1;
            }
            i += 1;
        }
        if over == 0 {
            return;
        }
        // Move the boluses over to the front of [head, i), keeping the others in order, and
        // step `head` past them.
        let mut write = i;
        for read in (self.head..i).rev() {
            if self.boluses[read].end_ms > t {
                write -= 1;
                self.boluses.swap(read, write);
            }
        }
        self.head = write;
        self.bolus_gain.bury(over);
        if self.head > 32 && self.head * 2 > self.boluses.len() {
            self.drop_over();
        }
        // A bolus over adds nothing from now on: its knots stay until they outnumber the rest.
        if self.bolus_gain.dead() > 32 && self.bolus_gain.dead() * 2 > self.boluses().len() {
            self.rebuild_gain();
        }
    }

    /// Times of several stroke counts from now (`ks[i]`-th stroke, None if not by `limit`):
    /// the bolus knot where each count is reached by binary search, then within it whole basal
    /// periods skipped arithmetically. O(log boluses · log steps + steps) per count.
    /// Counts are reached by `limit` capped at `i64::MAX / 4`.
    pub(crate) fn stroke_times(
        &self,
        now: i64,
        gain: i128,
        ks: &[Option<i64>],
        limit: i64,
    ) -> Vec<Option<i64>> {
        let limit = limit.min(i64::MAX / 4);
        let c_now = self.bolus_gain.gain_to(now);
        let b_now = self.basal_gain.gain_to(&self.schedule, now);
        // Gain over [now, x(j)) at knot j.
        let at_knot = |j: usize| {
            self.basal_gain
                .gain_to(&self.schedule, self.bolus_gain.x(j))
                - b_now
                + self.bolus_gain.value(j)
                - c_now
        };
        let j0 = self.bolus_gain.first_after(now);
        let len = self.bolus_gain.len();
        ks.iter()
            .map(|k| {
                let need = i128::from(k.filter(|&k| k >= 1)?) * gain - self.acc;
                // First knot after now where the gain reaches `need` (len if none).
                let (mut lo, mut hi) = (j0, len);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if at_knot(mid) >= need {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                let (from, done) = if lo == j0 {
                    (now, 0)
                } else {
                    (self.bolus_gain.x(lo - 1), at_knot(lo - 1))
                };
                if from >= limit {
                    return None;
                }
                // The boluses' slope on [from, x(lo)) (at now itself when lo == j0).
                self.basal_crossing(
                    from,
                    self.bolus_gain.x(lo),
                    self.bolus_gain.slope_before(lo),
                    need - done,
                    limit,
                )
            })
            .collect()
    }

    /// Smallest `t` in `(from, end]`, `t <= limit`, at which the basal gain plus `sigma` per ms
    /// over `[from, t)` reaches `need` (> 0): spans up to a period start, whole periods in one
    /// step, then at most a period's spans.
    fn basal_crossing(
        &self,
        from: i64,
        end: i64,
        sigma: i128,
        need: i128,
        limit: i64,
    ) -> Option<i64> {
        let stop = end.min(limit);
        let (mut t, mut left) = (from, need);
        let walk = |t: &mut i64, left: &mut i128, until: i64| -> Option<i64> {
            while *t < until {
                let (rate, next) = self.schedule.rate_at(*t);
                let rate = i128::from(rate) + sigma;
                let seg = next.min(until);
                let gain = rate * i128::from(seg - *t);
                if rate > 0 && gain >= *left {
                    return Some(*t + div_ceil(*left, rate) as i64);
                }
                *left -= gain;
                *t = seg;
            }
            None
        };
        let period_start = self.schedule.next_period_start(t).min(stop);
        if let Some(found) = walk(&mut t, &mut left, period_start) {
            return Some(found);
        }
        if t >= stop {
            return None;
        }
        let period = self.basal_gain.period_ms();
        let per_period = self.basal_gain.period_gain() + sigma * i128::from(period);
        if per_period <= 0 {
            return None;
        }
        let periods = ((left - 1) / per_period).min(i128::from(stop - t) / i128::from(period));
        t += (periods * i128::from(period)) as i64;
        left -= periods * per_period;
        let until = t.saturating_add(period).min(stop);
        walk(&mut t, &mut left, until)
    }

    /// Check the incremental gain table against the boluses by brute force: at now, at every
    /// knot after now and next to it, the gain from now, the slope and the next change equal
    /// the sums over the boluses' own increments; and it equals a table built from scratch.
    pub(crate) fn check_gain_table(&self, now: i64) -> std::result::Result<(), String> {
        let live = self.boluses();
        let brute_gain = |t: i64| -> i128 {
            let day = i128::from(MS_PER_DAY);
            let c = |b: &Bolus, t: i64| {
                (i128::from(b.rate_nl_per_day) * i128::from((t - b.start_ms).max(0)))
                    .min(i128::from(b.volume_nl) * day)
            };
            live.iter().map(|b| c(b, t) - c(b, now)).sum()
        };
        let brute_slope = |t: i64| -> (i128, i64) {
            let slope = live.iter().map(|b| i128::from(b.increment_at(t))).sum();
            (
                slope,
                live.iter()
                    .map(|b| b.next_change_after(t))
                    .min()
                    .unwrap_or(i64::MAX),
            )
        };
        let table = &self.bolus_gain;
        let mut times = vec![now];
        for j in table.first_after(now)..table.len() {
            let x = table.x(j);
            times.extend([x - 1, x, x + 1].into_iter().filter(|&t| t >= now));
        }
        for t in times {
            let (slope, next) = table.slope_at(t);
            let got = (table.gain_to(t) - table.gain_to(now), slope, next);
            let want = (brute_gain(t), brute_slope(t).0, brute_slope(t).1);
            if got != want {
                return Err(format!(
                    "bolus gain table at {t}: (gain, slope, next) = {got:?}, brute force {want:?}"
                ));
            }
        }
        if !table.same_from(&BolusGain::build(live), now) {
            return Err("bolus gain table differs from one built from scratch".into());
        }
        Ok(())
    }

    /// The invariants of a decoded state (see the module docs); the schedule is checked
    /// against the program by the caller, who knows the concentration.
    pub(crate) fn check_invariants(
        &self,
        model: &PumpModel,
    ) -> std::result::Result<(), &'static str> {
        if self.acc < 0
            || self.acc >= i128::from(model.stroke_nl) * i128::from(crate::units::MS_PER_DAY)
        {
            return Err("accumulator out of range");
        }
        if self.strokes < 0 {
            return Err("reservoir out of range");
        }
        Ok(())
    }

    /// The invariants of the bolus list (see the module docs).
    pub(crate) fn check_boluses(&self, model: &PumpModel) -> std::result::Result<(), &'static str> {
        let sorted = self
            .boluses()
            .windows(2)
            .all(|w| w[0].start_ms <= w[1].start_ms);
        let unique = self
            .boluses()
            .iter()
            .enumerate()
            .all(|(i, b)| self.boluses()[..i].iter().all(|c| c.id != b.id));
        // Each bolus is what `Bolus::new` builds from its volume, duration and start.
        let sane = self.boluses().iter().all(|b| {
            b.id < self.next_bolus_id
                && (1..=model.reservoir_nl).contains(&b.volume_nl)
                && b.duration_ms >= 1
                && (0..=MAX_BOLUS_NG).contains(&b.requested_ng)
                && b.dose_pg >= 0
                && (MIN_TIME_MS..=MAX_TIME_MS).contains(&b.start_ms)
                && {
                    let nb = Bolus::new(
                        b.id,
                        b.start_ms,
                        b.volume_nl,
                        b.requested_ng,
                        1,
                        b.duration_ms,
                        b.kind,
                    );
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
pub(crate) fn cancelled_event(b: &Bolus, now: i64, reason: &'static str) -> Event {
    Event::new(
        now,
        EventKind::BolusCancelled,
        &[
            ("bolus_id", b.id as i64),
            ("volume_nl", b.volume_nl),
            ("delivered_nl", b.delivered_nl_by(now)),
        ],
    )
    .with_text("bolus_kind", b.kind.name())
    .with_text("reason", reason)
}

/// See [`Delivery::gain_from`].
pub(crate) struct GainFrom<'a> {
    delivery: &'a Delivery,
    basal_now: i128,
    bolus_now: i128,
}

impl GainFrom<'_> {
    /// Accumulator gain over `[now, t)`, `t >= now`: O(log boluses + log steps).
    pub(crate) fn to(&self, t: i64) -> i128 {
        let d = self.delivery;
        d.basal_gain.gain_to(&d.schedule, t) - self.basal_now + d.bolus_gain.gain_to(t)
            - self.bolus_now
    }
}

/// See [`Delivery::span_walker`]: the index of the next bolus knot.
pub(crate) struct SpanWalker<'a> {
    delivery: &'a Delivery,
    next: usize,
}

impl SpanWalker<'_> {
    /// As [`Delivery::slope_at`], for a `t` not before the previous call's.
    pub(crate) fn slope_at(&mut self, t: i64) -> (i128, i64) {
        let gain = &self.delivery.bolus_gain;
        while self.next < gain.len() && gain.x(self.next) <= t {
            self.next += 1;
        }
        let (basal, change) = self.delivery.schedule.rate_at(t);
        (
            i128::from(basal) + gain.slope_before(self.next),
            change.min(gain.x(self.next)),
        )
    }
}

/// Append the times of strokes 1..=n of a span starting at `t0` with remainder `a`.
/// Incremental: each step adds the whole-ms quotient and carries the remainder.
pub(crate) fn record_stroke_times(
    out: &mut Vec<i64>,
    t0: i64,
    a: i128,
    slope: i128,
    gain: i128,
    n: i64,
) {
    if crate::delivery::stroke_times::append_lane_times(out, t0, a, slope, gain, n) {
        return; // the same times, several chains at once
    }
    out.reserve((n as usize).min(1 << 20)); // grow as needed beyond 1 M strokes per span
                                            // Stroke j fires at t0 + ceil((j·gain − a) / slope).
    let first_need = gain - a;
    let t = t0 + div_ceil(first_need, slope) as i64;
    // Slack: how far A(t) overshoots the threshold at the stroke time (0 <= slack < slope).
    let slack = div_ceil(first_need, slope) * slope - first_need;
    // Every quantity of the loop is below `slope` or `gain`: when both fit in i64 (always for
    // models within the core's limits), the loop runs in i64, several times faster than i128.
    match (
        i64::try_from(slope),
        i64::try_from(gain),
        i64::try_from(slack),
    ) {
        (Ok(slope), Ok(gain), Ok(slack)) => step_times(out, t, slack, slope, gain, n),
        _ => step_times(out, t, slack, slope, gain, n),
    }
}

/// The loop of [`record_stroke_times`]: each step adds the whole-ms quotient and carries the
/// remainder, in the integer type `I`.
fn step_times<I>(out: &mut Vec<i64>, mut t: i64, mut slack: I, slope: I, gain: I, n: i64)
where
    I: Copy
        + PartialOrd
        + std::ops::Add<Output = I>
        + std::ops::Sub<Output = I>
        + std::ops::Div<Output = I>
        + std::ops::Rem<Output = I>
        + std::ops::Neg<Output = I>
        + From<u8>
        + TryInto<i64>,
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
                "basal {basal} nL/day + boluses {bolus_sum} nL/day = {peak} nL/day at {} exceeds the \
                 maximum rate {} nL/day of model {}",
                crate::units::fmt_time(at),
                model.max_rate_nl_per_day,
                model.name
            ),
        ));
    }
    Ok(())
}

/// Highest commanded rate (basal + the rates of the boluses running) anywhere in `[a, b)`,
/// as `(peak, at_ms, basal, boluses)` — a sweep over bolus starts and ends
/// (O(B log B + B · steps)); `(0, a, 0, 0)` for an empty interval.
pub(crate) fn peak_rate(
    schedule: &Schedule,
    boluses: &[Bolus],
    a: i64,
    b: i64,
) -> (i64, i64, i64, i64) {
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
        let Some(&(next, _)) = edges.get(i) else {
            break;
        };
        let basal = schedule.max_rate_over(t, next);
        if basal + bolus_sum > best.0 {
            best = (basal + bolus_sum, t, basal, bolus_sum);
        }
    }
    best
}
