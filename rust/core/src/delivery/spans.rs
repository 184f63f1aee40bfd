//! The accumulator's gain as a function of time, evaluated in O(log) whatever the number of
//! scheduled boluses (issue 8 part 3).
//!
//! The gain over `[a, b)` is `B(b) − B(a) + C(b) − C(a)`:
//! - `B` is the basal schedule's cumulative gain: whole periods times the period's gain plus a
//!   prefix table within the period ([`BasalPrefix`], O(log steps));
//! - `C` is the boluses' cumulative gain, a piecewise-linear function. A bolus of volume `V`
//!   at rate `r` from `s` to `e` adds slope `r` on `[s, e − 1)` and its last increment
//!   `V·D − r·(e − 1 − s)` on `[e − 1, e)` (DESIGN.md): three slope changes ("knots"). The
//!   knots of all boluses are kept sorted by time with the slope after each and the value of
//!   `C` at each ([`BolusGain`]): `C(t)` is one binary search. Inserting or removing a bolus
//!   updates the knots after its own (O(1) for the usual bolus scheduled after the others); a
//!   batch (many boluses at once, a concentration change) rebuilds in O(n log n).
//!
//! A bolus that is over adds nothing from then on, so its knots may stay (gains from now on
//! are differences of `C`, unchanged by constants); they are dropped at the next rebuild,
//! which happens once those knots outnumber the live ones (amortized O(1) per bolus).

use crate::delivery::bolus::Bolus;
use crate::delivery::program::Schedule;
use crate::units::MS_PER_DAY;

/// Cumulative basal gain `B(t)` (nL·ms/day, from the schedule's anchor) in O(log steps): the
/// gain from the period start to each step, kept next to the [`Schedule`] it was built from
/// (every call takes that schedule).
#[derive(Debug, Clone, Default)]
pub(crate) struct BasalPrefix {
    period_ms: i64,
    /// Gain from the period start to each step's offset.
    cum: Vec<i128>,
    period_gain: i128,
}

impl BasalPrefix {
    /// The table of a schedule. Arithmetic saturates, so a decoded schedule not yet validated
    /// cannot panic here (a valid one never comes near the limits).
    pub(crate) fn new(s: &Schedule) -> Self {
        let period_ms = s.period_ms.max(1);
        let mut cum = Vec::with_capacity(s.rates.len());
        let mut total = 0i128;
        for (i, &rate) in s.rates.iter().enumerate() {
            cum.push(total);
            let from = s.offsets.get(i).copied().unwrap_or(0);
            let to = s.offsets.get(i + 1).copied().unwrap_or(period_ms);
            let len = i128::from(to).saturating_sub(i128::from(from));
            total = total.saturating_add(i128::from(rate).saturating_mul(len));
        }
        BasalPrefix {
            period_ms,
            cum,
            period_gain: total,
        }
    }

    pub(crate) fn period_ms(&self) -> i64 {
        self.period_ms
    }

    /// Gain of one whole period.
    pub(crate) fn period_gain(&self) -> i128 {
        self.period_gain
    }

    /// `B(t)` of schedule `s` (the one this table was built from): gain from its anchor to `t`
    /// (negative before it).
    pub(crate) fn gain_to(&self, s: &Schedule, t: i64) -> i128 {
        // In i64 (much faster than i128 division) whenever `t − anchor` fits, i.e. always
        // within the pump clock's range.
        let (periods, phase) = match t.checked_sub(s.anchor_ms) {
            Some(rel) => (
                i128::from(rel.div_euclid(self.period_ms)),
                rel.rem_euclid(self.period_ms),
            ),
            None => {
                let rel = i128::from(t) - i128::from(s.anchor_ms);
                let period = i128::from(self.period_ms);
                (rel.div_euclid(period), rel.rem_euclid(period) as i64)
            }
        };
        let i = s.offsets.partition_point(|&o| o <= phase).saturating_sub(1);
        let (Some(&o), Some(&rate), Some(&cum)) =
            (s.offsets.get(i), s.rates.get(i), self.cum.get(i))
        else {
            return 0;
        };
        periods * self.period_gain + cum + i128::from(rate) * i128::from(phase - o)
    }

    /// Basal gain of schedule `s` over `[a, b)`.
    pub(crate) fn gain(&self, s: &Schedule, a: i64, b: i64) -> i128 {
        self.gain_to(s, b) - self.gain_to(s, a)
    }
}

/// One slope change of the bolus gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Knot {
    x: i64,
    /// How many bolus knots fall here: the knot stays while > 0, even when their slope
    /// changes cancel, so that spans still end at every bolus start and end.
    refs: u32,
    /// Slope of `C` from `x` to the next knot.
    slope: i128,
    /// `C(x)`.
    value: i128,
}

/// The boluses' cumulative gain `C(t)`, see the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct BolusGain {
    knots: Vec<Knot>,
    /// Boluses over since the last rebuild whose knots are still here.
    dead: usize,
}

/// The three slope changes of a bolus: `(time, change)`.
pub(crate) fn bolus_knots(b: &Bolus) -> [(i64, i128); 3] {
    let r = i128::from(b.rate_nl_per_day);
    let last = i128::from(b.volume_nl) * i128::from(MS_PER_DAY)
        - r * i128::from(b.end_ms - 1 - b.start_ms);
    [(b.start_ms, r), (b.end_ms - 1, last - r), (b.end_ms, -last)]
}

impl BolusGain {
    /// Built from scratch for `boluses` (O(n log n)).
    pub(crate) fn build<'a>(boluses: impl IntoIterator<Item = &'a Bolus>) -> Self {
        let mut changes: Vec<(i64, i128)> = boluses.into_iter().flat_map(bolus_knots).collect();
        changes.sort_unstable_by_key(|c| c.0);
        let mut knots: Vec<Knot> = Vec::with_capacity(changes.len());
        let (mut slope, mut value) = (0i128, 0i128);
        for (x, change) in changes {
            match knots.last_mut() {
                Some(k) if k.x == x => {
                    k.refs += 1;
                    k.slope += change;
                    slope = k.slope;
                }
                last => {
                    if let Some(k) = last {
                        value += k.slope * i128::from(x - k.x);
                    }
                    slope += change;
                    knots.push(Knot {
                        x,
                        refs: 1,
                        slope,
                        value,
                    });
                }
            }
        }
        BolusGain { knots, dead: 0 }
    }

    /// Number of knots (live and dead).
    pub(crate) fn len(&self) -> usize {
        self.knots.len()
    }

    /// Boluses over whose knots are still kept.
    pub(crate) fn dead(&self) -> usize {
        self.dead
    }

    /// Note that a bolus is over (its knots stay until the next rebuild).
    pub(crate) fn bury(&mut self, n: usize) {
        self.dead += n;
    }

    /// Index of the first knot after `t`.
    pub(crate) fn first_after(&self, t: i64) -> usize {
        self.knots.partition_point(|k| k.x <= t)
    }

    /// Time of knot `i` (`i64::MAX` past the last).
    pub(crate) fn x(&self, i: usize) -> i64 {
        self.knots.get(i).map_or(i64::MAX, |k| k.x)
    }

    /// Value of `C` at knot `i`.
    pub(crate) fn value(&self, i: usize) -> i128 {
        self.knots.get(i).map_or(0, |k| k.value)
    }

    /// Slope from knot `i − 1` (0 before the first knot): the slope in force just before knot
    /// `i`, i.e. on `[x(i − 1), x(i))`.
    pub(crate) fn slope_before(&self, i: usize) -> i128 {
        i.checked_sub(1)
            .and_then(|j| self.knots.get(j))
            .map_or(0, |k| k.slope)
    }

    /// `C(t)`.
    pub(crate) fn gain_to(&self, t: i64) -> i128 {
        let i = self.first_after(t);
        match i.checked_sub(1).and_then(|j| self.knots.get(j)) {
            Some(k) => k.value + k.slope * i128::from(t - k.x),
            None => 0,
        }
    }

    /// Slope of `C` in force at `t` and the next knot after `t` (`i64::MAX` if none).
    pub(crate) fn slope_at(&self, t: i64) -> (i128, i64) {
        let i = self.first_after(t);
        (self.slope_before(i), self.x(i))
    }

    /// Add a bolus's knots (O(knots after its start)).
    pub(crate) fn insert(&mut self, b: &Bolus) {
        for (x, change) in bolus_knots(b) {
            self.apply(x, change, 1);
        }
    }

    /// Remove a live bolus's knots (O(knots after its start)).
    pub(crate) fn remove(&mut self, b: &Bolus) {
        for (x, change) in bolus_knots(b) {
            self.apply(x, -change, -1);
        }
    }

    /// Change the slope by `change` from `x` on; `refs` knots more (or fewer) at `x`.
    fn apply(&mut self, x: i64, change: i128, refs: i32) {
        let i = self.knots.partition_point(|k| k.x < x);
        if self.knots.get(i).is_none_or(|k| k.x != x) {
            if refs <= 0 {
                return; // not here: nothing to remove (never for a live bolus)
            }
            let (slope, value) = match i.checked_sub(1).and_then(|j| self.knots.get(j)) {
                Some(k) => (k.slope, k.value + k.slope * i128::from(x - k.x)),
                None => (0, 0),
            };
            self.knots.insert(
                i,
                Knot {
                    x,
                    refs: 0,
                    slope,
                    value,
                },
            );
        }
        // C changes by change·(t − x) from x on.
        for k in &mut self.knots[i..] {
            k.slope += change;
            k.value += change * i128::from(k.x - x);
        }
        let k = &mut self.knots[i];
        k.refs = k.refs.saturating_add_signed(refs);
        if k.refs == 0 {
            self.knots.remove(i);
        }
    }

    /// Whether two structures give the same gains, slopes and knot times from `now` on
    /// (their values may differ by a constant and by knots at or before `now`).
    pub(crate) fn same_from(&self, other: &BolusGain, now: i64) -> bool {
        let (i, j) = (self.first_after(now), other.first_after(now));
        let (a, b) = (&self.knots[i..], &other.knots[j..]);
        let base = (self.gain_to(now), other.gain_to(now));
        self.slope_at(now).0 == other.slope_at(now).0
            && a.len() == b.len()
            && a.iter().zip(b).all(|(p, q)| {
                p.x == q.x && p.slope == q.slope && p.value - base.0 == q.value - base.1
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::bolus::BolusKind;

    fn bolus(id: u64, start: i64, volume: i64, duration: i64) -> Bolus {
        Bolus::new(id, start, volume, 0, 1, duration, BolusKind::Timed)
    }

    /// The gain by brute force: each millisecond's increments summed.
    fn brute(boluses: &[Bolus], a: i64, b: i64) -> i128 {
        (a..b)
            .map(|t| {
                boluses
                    .iter()
                    .map(|x| i128::from(x.increment_at(t)))
                    .sum::<i128>()
            })
            .sum()
    }

    #[test]
    fn gains_slopes_and_knots_equal_brute_force() {
        let boluses = vec![
            bolus(1, 10, 7, 1_000),
            bolus(2, 500, 1, 1),
            bolus(3, 505, 3, 2_000_000),
            bolus(4, 10, 2, 5),
        ];
        let g = BolusGain::build(&boluses);
        for t in 0..1_200 {
            assert_eq!(g.gain_to(t) - g.gain_to(0), brute(&boluses, 0, t), "t={t}");
            let slope: i128 = boluses.iter().map(|b| i128::from(b.increment_at(t))).sum();
            let next = boluses
                .iter()
                .map(|b| b.next_change_after(t))
                .min()
                .unwrap();
            assert_eq!(g.slope_at(t), (slope, next), "t={t}");
        }
        // Incremental equals batch, in any order, and removal undoes insertion.
        let mut inc = BolusGain::default();
        for b in boluses.iter().rev() {
            inc.insert(b);
        }
        assert!(inc.same_from(&g, 0) && inc.knots == g.knots);
        inc.remove(&boluses[2]);
        let rest = [boluses[0].clone(), boluses[1].clone(), boluses[3].clone()];
        assert!(inc.same_from(&BolusGain::build(&rest), 0));
    }

    #[test]
    fn basal_prefix_equals_walking_the_schedule() {
        let s = Schedule {
            period_ms: 1_000,
            anchor_ms: 300,
            offsets: vec![0, 100, 700],
            rates: vec![5, 0, 11],
        };
        let p = BasalPrefix::new(&s);
        let walk = |a: i64, b: i64| (a..b).map(|t| i128::from(s.rate_at(t).0)).sum::<i128>();
        for (a, b) in [
            (0, 0),
            (0, 1),
            (-2_500, 4_321),
            (299, 1_301),
            (1_000, 3_000),
            (-7, -3),
        ] {
            assert_eq!(p.gain(&s, a, b), walk(a, b), "[{a}, {b})");
        }
        assert_eq!(p.period_gain(), s.period_gain());
    }
}
