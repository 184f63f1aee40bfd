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
            ];
            let times = self.stroke_times(&targets, limit);
            p.next_stroke_ms = times[0];
            p.low_reservoir_ms = times[1];
            p.reservoir_empty_ms = times[2];
            p.drug_at_tip_ms = times[3];
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
