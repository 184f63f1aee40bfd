//! Closed-form projection of future strokes and alarms under the current program and
//! scheduled boluses, with no intervention. Cost: O(log boluses · log steps + steps per period)
//! per stroke count, whatever the number of scheduled boluses — the delivery's gain table
//! (`spans`) gives the accumulator gain to any time in O(log); whole periods of the basal
//! program are skipped arithmetically, never walked. The ERI/EOS searches evaluate the same
//! gain (O(log) each).

use crate::battery::tones_between;
use crate::error::{ItbError, Result};
use crate::pump::Pump;
use crate::units::{first_at_least_with_jumps, MAX_TIME_MS};

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
    /// The first stroke that finds the reservoir **physically** short of what it is commanded
    /// to move past any occlusion (from it on the `dry` ledger grows and strokes move nothing):
    /// on the physical ledger, before `reservoir_empty` after a pocket fill or with a positive
    /// stroke error. Only strokes the firmware still makes (its count allows them).
    pub physically_dry_ms: Option<i64>,
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
            return Err(ItbError::validation(
                "horizon",
                format!("{horizon_ms} ms must be >= 0"),
            ));
        }
        let limit = self.now_ms.saturating_add(horizon_ms).min(MAX_TIME_MS);
        let mut p = Projection::default();
        let delivering = self.delivering();
        // Strokes the reservoir allows (unbounded when refills are assumed).
        let allowed = if assume_refills {
            i64::MAX / 4
        } else {
            self.reservoir.count_nl / self.model.stroke_nl
        };
        if delivering {
            let bound = |j: Option<i64>| j.filter(|&j| j <= allowed && !assume_refills);
            let targets = [
                Some(1),
                bound(self.low_alarm_stroke()),
                (!assume_refills).then_some(allowed),
                self.strokes_until_tip_change().filter(|&j| j <= allowed),
                (!assume_refills)
                    .then(|| self.strokes_until_dry())
                    .flatten()
                    .filter(|&j| j <= allowed),
            ];
            let times = self.stroke_times(&targets, limit);
            p.next_stroke_ms = times[0];
            p.low_reservoir_ms = times[1];
            p.reservoir_empty_ms = times[2];
            p.drug_at_tip_ms = times[3];
            p.physically_dry_ms = times[4];
        }
        if let Some(bat) = self.model.battery.filter(|_| !self.battery.eos) {
            let now = self.now_ms;
            let gain = self.delivery.gain_from(now);
            let g = self.stroke_gain();
            let strokes_by = |t: i64| -> i64 {
                if !delivering || t <= now {
                    return 0;
                }
                let total = self.delivery.acc + gain.to(t);
                // u64 division when it fits (always but over decades at high rates): i128
                // division dominates the cost of the ERI/EOS searches otherwise.
                let strokes = match (u64::try_from(total), u64::try_from(g)) {
                    (Ok(a), Ok(b)) => i128::from(a / b),
                    _ => total / g,
                };
                strokes.min(i128::from(allowed)) as i64
            };
            // Alarms sounding now, plus those the projection raises.
            let mut alarms: Vec<(i64, i64)> = self
                .battery
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
                let tones: i64 = alarms
                    .iter()
                    .map(|&(r, i)| tones_between(r, i, self.now_ms, t))
                    .sum();
                i128::from(self.battery.used_pc)
                    + i128::from(bat.quiescent_pc_per_ms) * i128::from(t - self.now_ms)
                    + i128::from(bat.stroke_pc) * i128::from(strokes_by(t))
                    + i128::from(bat.tone_pc) * i128::from(tones)
            };
            let first_reaching =
                |threshold: i128, from: i64, alarms: &[(i64, i64)]| -> Option<i64> {
                    if limit <= from || used_at(limit, alarms) < threshold {
                        return None;
                    }
                    // The drain jumps at every alarm tone: tell the search where.
                    let next_tone = |t: i64| {
                        let next = |&(r, i): &(i64, i64)| {
                            if t < r + i {
                                r + i
                            } else {
                                r + ((t - r) / i + 1) * i
                            }
                        };
                        alarms.iter().map(next).min().unwrap_or(i64::MAX)
                    };
                    let spacing = alarms.iter().map(|&(_, i)| i).min().unwrap_or(i64::MAX);
                    Some(first_at_least_with_jumps(
                        |t| used_at(t, alarms),
                        threshold,
                        from,
                        limit,
                        next_tone,
                        spacing,
                    ))
                };
            let eri_threshold = i128::from(bat.capacity_pc - bat.eri_pc);
            let eos_threshold = i128::from(bat.capacity_pc - bat.eos_pc);
            if !self.battery.eri {
                p.eri_ms = first_reaching(eri_threshold, self.now_ms, &alarms);
                if let Some(t) = p.eri_ms {
                    alarms.push((t, bat.non_critical_tone_ms));
                }
            }
            if self.battery.eri || p.eri_ms.is_some() {
                // EOS may fall on the same ms as ERI: search from just before it.
                p.eos_ms = first_reaching(
                    eos_threshold,
                    p.eri_ms.map_or(self.now_ms, |t| t - 1),
                    &alarms,
                );
            }
            // Nothing is delivered after EOS.
            if let Some(eos) = p.eos_ms {
                for t in [
                    &mut p.next_stroke_ms,
                    &mut p.low_reservoir_ms,
                    &mut p.reservoir_empty_ms,
                    &mut p.drug_at_tip_ms,
                    &mut p.physically_dry_ms,
                ] {
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

    /// Times of several stroke counts from now (see [`Pump::stroke_time`]): each found by a
    /// binary search over the bolus knots, then whole basal periods skipped arithmetically.
    pub fn stroke_times(&self, ks: &[Option<i64>], limit: i64) -> Vec<Option<i64>> {
        self.delivery
            .stroke_times(self.now_ms, self.stroke_gain(), ks, limit)
    }
}

impl Pump {
    /// As [`Pump::project`], assuming the patient takes **every allotted patient bolus**: each
    /// activation at the first millisecond the clinician's limits (lockout, most per rolling
    /// 24 h) allow, from now on — the worst case for the reservoir, as patient therapy
    /// controllers report their refill date. Without patient-bolus limits it is
    /// [`Pump::project`]. Equal to advancing a copy of the pump and activating at those times
    /// (it is computed that way: one closed-form advance per activation, so the cost grows with
    /// the activations before the reservoir empties or the horizon ends).
    pub fn project_max_patient_boluses(&self, horizon_ms: i64) -> Result<Projection> {
        if horizon_ms < 0 {
            return Err(ItbError::validation(
                "horizon",
                format!("{horizon_ms} ms must be >= 0"),
            ));
        }
        let Some(limits) = self.patient.limits else {
            return self.project(horizon_ms);
        };
        let start = self.now_ms;
        let limit = start.saturating_add(horizon_ms).min(MAX_TIME_MS);
        let mut sim = self.clone();
        sim.pending.clear();
        let mut p = Projection::default();
        let note = |p: &mut Projection, events: &[crate::events::Event]| {
            use crate::events::EventKind as K;
            for e in events.iter().filter(|e| e.time_ms > start) {
                let slot = match e.kind {
                    K::StrokeBatch => {
                        let first = e.get("first_ms").unwrap_or(e.time_ms);
                        if p.next_stroke_ms.is_none() && first > start {
                            p.next_stroke_ms = Some(first);
                        }
                        continue;
                    }
                    K::LowReservoir => &mut p.low_reservoir_ms,
                    K::ReservoirEmpty => &mut p.reservoir_empty_ms,
                    K::DrugAtTip => &mut p.drug_at_tip_ms,
                    K::Eri => &mut p.eri_ms,
                    K::Eos => &mut p.eos_ms,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = Some(e.time_ms);
                }
            }
        };
        // No event marks the physically dry stroke: each stretch between activations is
        // projected in closed form before it is simulated.
        let dry_by = |p: &mut Projection, sim: &Pump, t: i64| -> Result<()> {
            if p.physically_dry_ms.is_none() && t > sim.now_ms {
                p.physically_dry_ms = sim.project(t - sim.now_ms)?.physically_dry_ms;
            }
            Ok(())
        };
        loop {
            if !sim.delivering() || sim.is_eos() {
                break;
            }
            let g = &sim.patient.grants;
            let mut t = sim.now_ms;
            if let Some(&last) = g.last() {
                t = t.max(last.saturating_add(limits.lockout_ms));
            }
            let max = usize::try_from(limits.max_per_24h).unwrap_or(usize::MAX);
            if g.len() >= max {
                t = t.max(g[g.len() - max].saturating_add(crate::units::MS_PER_DAY));
            }
            if t > limit {
                break;
            }
            dry_by(&mut p, &sim, t)?;
            let events = sim.advance_inner(t, None)?;
            note(&mut p, &events);
            if !sim.delivering() {
                break;
            }
            let outcome = sim.patient_bolus(None)?;
            let events = std::mem::take(&mut sim.pending);
            note(&mut p, &events);
            if !outcome.granted {
                // Refused for another reason (maximum rate, reservoir): the patient tries
                // again when the running boluses have ended, or not at all.
                let next = sim
                    .boluses()
                    .iter()
                    .map(|b| b.end_ms)
                    .filter(|&e| e > sim.now_ms)
                    .min();
                match next {
                    Some(e) if e <= limit => {
                        dry_by(&mut p, &sim, e)?;
                        let events = sim.advance_inner(e, None)?;
                        note(&mut p, &events);
                    }
                    _ => break,
                }
            }
        }
        // The rest of the horizon with no further activation.
        if sim.now_ms < limit {
            let rest = sim.project(limit - sim.now_ms)?;
            for (slot, later) in [
                (&mut p.next_stroke_ms, rest.next_stroke_ms),
                (&mut p.low_reservoir_ms, rest.low_reservoir_ms),
                (&mut p.reservoir_empty_ms, rest.reservoir_empty_ms),
                (&mut p.drug_at_tip_ms, rest.drug_at_tip_ms),
                (&mut p.eri_ms, rest.eri_ms),
                (&mut p.eos_ms, rest.eos_ms),
                (&mut p.physically_dry_ms, rest.physically_dry_ms),
            ] {
                if slot.is_none() {
                    *slot = later;
                }
            }
        }
        Ok(p)
    }
}
