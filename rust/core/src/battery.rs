//! Battery and alarms: charge accounting in picocoulombs (pC), the alarm table (one place),
//! and closed-form tone counting.
//!
//! Drain = quiescent current × time + charge per stroke + charge per alarm tone + charge per
//! telemetry session. An active alarm repeats a tone every interval after it is raised
//! (hourly for non-critical, every 10 min for critical by default), first one interval after
//! the alarm event. ERI fires at the first ms with remaining ≤ `eri_pc`; EOS at the first ms
//! with remaining ≤ `eos_pc`, and delivery then stops for good.

use serde::{Deserialize, Serialize};

use crate::error::{check_range, ItbError, Result};
use crate::events::{Event, EventKind, Severity};

/// Picocoulombs per milliampere-hour.
pub const PC_PER_MAH: i64 = 3_600_000_000_000;

/// Battery figures of a pump model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatteryModel {
    /// Usable charge when new (pC).
    pub capacity_pc: i64,
    /// Quiescent drain (pC per ms = nA).
    pub quiescent_pc_per_ms: i64,
    /// Charge of one pump stroke (pC).
    pub stroke_pc: i64,
    /// Charge of one alarm tone (pC).
    pub tone_pc: i64,
    /// Charge of one telemetry session (pC).
    pub telemetry_pc: i64,
    /// Elective replacement indicator when remaining ≤ this (pC).
    pub eri_pc: i64,
    /// End of service when remaining ≤ this (pC).
    pub eos_pc: i64,
    /// Tone interval of non-critical alarms (ms).
    pub non_critical_tone_ms: i64,
    /// Tone interval of critical alarms (ms).
    pub critical_tone_ms: i64,
}

impl BatteryModel {
    pub fn validate(&self) -> Result<()> {
        let max = 1_000 * PC_PER_MAH; // 1 Ah·1000 — far beyond any implant
        check_range("battery.capacity_pc", self.capacity_pc, 1, max, "pC")?;
        check_range(
            "battery.quiescent_pc_per_ms",
            self.quiescent_pc_per_ms,
            0,
            1_000_000_000,
            "pC/ms",
        )?;
        check_range("battery.stroke_pc", self.stroke_pc, 0, max, "pC")?;
        check_range("battery.tone_pc", self.tone_pc, 0, max, "pC")?;
        check_range("battery.telemetry_pc", self.telemetry_pc, 0, max, "pC")?;
        check_range("battery.eos_pc", self.eos_pc, 0, self.capacity_pc - 1, "pC")?;
        check_range(
            "battery.eri_pc",
            self.eri_pc,
            self.eos_pc,
            self.capacity_pc - 1,
            "pC",
        )?;
        check_range(
            "battery.non_critical_tone_ms",
            self.non_critical_tone_ms,
            1_000,
            7 * 86_400_000,
            "ms",
        )?;
        check_range(
            "battery.critical_tone_ms",
            self.critical_tone_ms,
            1_000,
            7 * 86_400_000,
            "ms",
        )?;
        Ok(())
    }

    pub fn tone_interval_ms(&self, severity: Severity) -> i64 {
        match severity {
            Severity::Critical => self.critical_tone_ms,
            Severity::NonCritical => self.non_critical_tone_ms,
        }
    }
}

/// Alarms that sound tones until cleared, in priority order (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Alarm {
    Eos,
    ReservoirEmpty,
    MotorStall,
    Eri,
    LowReservoir,
    /// A battery fault reset the program to the minimum rate (appended: snapshot order).
    BatteryFault,
}

impl Alarm {
    /// Every alarm, highest priority first.
    pub const ALL: [Alarm; 6] = [
        Alarm::Eos,
        Alarm::ReservoirEmpty,
        Alarm::MotorStall,
        Alarm::BatteryFault,
        Alarm::Eri,
        Alarm::LowReservoir,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Alarm::Eos => "eos",
            Alarm::ReservoirEmpty => "reservoir_empty",
            Alarm::MotorStall => "motor_stall",
            Alarm::BatteryFault => "battery_fault",
            Alarm::Eri => "eri",
            Alarm::LowReservoir => "low_reservoir",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Alarm::Eos | Alarm::ReservoirEmpty | Alarm::MotorStall | Alarm::BatteryFault => {
                Severity::Critical
            }
            Alarm::Eri | Alarm::LowReservoir => Severity::NonCritical,
        }
    }

    /// The fleet column giving since when it sounds (`eri_since`, …).
    pub fn since_column(self) -> &'static str {
        match self {
            Alarm::Eos => "eos_since",
            Alarm::ReservoirEmpty => "reservoir_empty_since",
            Alarm::MotorStall => "motor_stall_since",
            Alarm::BatteryFault => "battery_fault_since",
            Alarm::Eri => "eri_since",
            Alarm::LowReservoir => "low_reservoir_since",
        }
    }

    /// The event that raises it.
    pub fn event(self) -> EventKind {
        match self {
            Alarm::Eos => EventKind::Eos,
            Alarm::ReservoirEmpty => EventKind::ReservoirEmpty,
            Alarm::MotorStall | Alarm::BatteryFault => EventKind::Fault,
            Alarm::Eri => EventKind::Eri,
            Alarm::LowReservoir => EventKind::LowReservoir,
        }
    }

    /// Cleared by a refill?
    pub fn cleared_by_refill(self) -> bool {
        matches!(self, Alarm::ReservoirEmpty | Alarm::LowReservoir)
    }
}

/// An alarm sounding since `raised_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveAlarm {
    pub alarm: Alarm,
    pub raised_ms: i64,
}

/// Tones of an alarm raised at `raised` with `interval` that sound in `(from, to]`
/// (tones at `raised + k·interval`, k ≥ 1).
pub fn tones_between(raised: i64, interval: i64, from: i64, to: i64) -> i64 {
    if to <= from || to < raised + interval {
        return 0;
    }
    let upto = (to - raised).div_euclid(interval);
    let before = if from < raised {
        0
    } else {
        (from - raised).div_euclid(interval)
    };
    upto - before
}

/// Battery and alarms of one pump: charge used, ERI/EOS reached, and the alarms sounding.
/// Owns the invariants: `0 <= used <= capacity`, EOS only after ERI, one entry per alarm,
/// raised at or before now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Battery {
    /// Battery charge used so far (pC).
    pub(crate) used_pc: i64,
    pub(crate) eri: bool,
    pub(crate) eos: bool,
    /// Alarms sounding tones, by raise time.
    pub(crate) alarms: Vec<ActiveAlarm>,
}

impl Battery {
    /// Battery charge used (pC); 0 without a battery model.
    pub fn used_pc(&self) -> i64 {
        self.used_pc
    }
    /// Remaining charge (pC), if the model has a battery.
    pub fn remaining_pc(&self, model: Option<&BatteryModel>) -> Option<i64> {
        model.map(|b| b.capacity_pc - self.used_pc)
    }
    pub fn is_eri(&self) -> bool {
        self.eri
    }
    pub fn is_eos(&self) -> bool {
        self.eos
    }
    /// Alarms sounding now, highest priority first.
    pub fn active_alarms(&self) -> Vec<ActiveAlarm> {
        let mut v = self.alarms.clone();
        v.sort_by_key(|a| (a.alarm, a.raised_ms));
        v
    }

    /// Start an alarm's tones from `now`.
    pub(crate) fn raise(&mut self, alarm: Alarm, now: i64) {
        if !self.alarms.iter().any(|a| a.alarm == alarm) {
            self.alarms.push(ActiveAlarm {
                alarm,
                raised_ms: now,
            });
        }
    }

    pub(crate) fn clear_alarms(&mut self, clear: impl Fn(Alarm) -> bool) {
        self.alarms.retain(|a| !clear(a.alarm));
    }

    /// Tones of the active alarms in `(from, to]`.
    pub(crate) fn tones_between(&self, model: Option<&BatteryModel>, from: i64, to: i64) -> i64 {
        let Some(bat) = model else { return 0 };
        self.alarms
            .iter()
            .map(|a| {
                tones_between(
                    a.raised_ms,
                    bat.tone_interval_ms(a.alarm.severity()),
                    from,
                    to,
                )
            })
            .sum()
    }

    /// Next battery threshold (used pC at which it fires) and its alarm.
    pub(crate) fn threshold(&self, model: Option<&BatteryModel>) -> Option<(i128, Alarm)> {
        let bat = model?;
        if self.eos {
            None
        } else if !self.eri {
            Some((i128::from(bat.capacity_pc - bat.eri_pc), Alarm::Eri))
        } else {
            Some((i128::from(bat.capacity_pc - bat.eos_pc), Alarm::Eos))
        }
    }

    /// Add `drain` pC to the charge used, never past the capacity.
    pub(crate) fn drain(&mut self, bat: &BatteryModel, drain: i128) {
        self.used_pc = (i128::from(self.used_pc) + drain).min(i128::from(bat.capacity_pc)) as i64;
    }

    /// Raise ERI and then EOS (at `now`) if the charge used reaches their thresholds.
    pub(crate) fn check(&mut self, model: Option<&BatteryModel>, now: i64, out: &mut Vec<Event>) {
        while let Some((threshold, alarm)) = self.threshold(model) {
            if i128::from(self.used_pc) < threshold {
                break;
            }
            let remaining = self.remaining_pc(model).unwrap_or(0);
            if alarm == Alarm::Eri {
                self.eri = true;
                out.push(Event::new(
                    now,
                    EventKind::Eri,
                    &[("remaining_pc", remaining)],
                ));
            } else {
                self.eos = true;
                out.push(Event::new(
                    now,
                    EventKind::Eos,
                    &[("remaining_pc", remaining)],
                ));
            }
            self.raise(alarm, now);
        }
    }

    /// A telemetry session at `now`: its event, its charge, and ERI/EOS if that crosses them.
    pub(crate) fn telemetry_session(
        &mut self,
        model: Option<&BatteryModel>,
        now: i64,
        out: &mut Vec<Event>,
    ) {
        let Some(bat) = model else {
            out.push(Event::new(
                now,
                EventKind::TelemetrySession,
                &[("charge_pc", 0)],
            ));
            return;
        };
        self.used_pc = (self.used_pc + bat.telemetry_pc).min(bat.capacity_pc);
        out.push(Event::new(
            now,
            EventKind::TelemetrySession,
            &[("charge_pc", bat.telemetry_pc)],
        ));
        self.check(model, now, out);
    }

    /// Refuse calls that would deliver after end of service.
    pub(crate) fn check_not_eos(&self, field: &str) -> Result<()> {
        if self.eos {
            return Err(ItbError::end_of_service(field));
        }
        Ok(())
    }

    /// The invariants of a decoded state (see the type docs); `now` bounds the raise times.
    pub(crate) fn check_invariants(
        &self,
        model: Option<&BatteryModel>,
        min_time: i64,
        now: i64,
    ) -> std::result::Result<(), &'static str> {
        let capacity = model.map(|b| b.capacity_pc).unwrap_or(0);
        if self.used_pc < 0 || self.used_pc > capacity || (self.eos && !self.eri) {
            return Err("battery state out of range");
        }
        let in_past = |t: i64| (min_time..=now).contains(&t);
        let alarms_ok = self.alarms.iter().enumerate().all(|(i, a)| {
            in_past(a.raised_ms) && self.alarms[..i].iter().all(|b| b.alarm != a.alarm)
        });
        if !alarms_ok {
            return Err("alarm list is inconsistent");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_counting_by_hand() {
        // Raised at 100, every 10: tones at 110, 120, 130, …
        assert_eq!(tones_between(100, 10, 0, 109), 0);
        assert_eq!(tones_between(100, 10, 0, 110), 1);
        assert_eq!(tones_between(100, 10, 110, 130), 2);
        assert_eq!(tones_between(100, 10, 105, 125), 2);
        assert_eq!(tones_between(100, 10, 130, 130), 0);
    }
}
