//! A pump as a clinician programmer reads it: an implanted pump is never new when software
//! first meets it. [`Pump::from_reading`] builds the pump of a [`PumpConfig`] and then puts
//! in what an interrogation shows — the battery charge remaining and the alarms already
//! sounding, each with the time it began — so a pump at or past ERI, already low or empty,
//! stalled or past EOS is representable as it is.
//!
//! Rules (docs: decisions/clinic.md#a-pump-as-read):
//! * ERI/EOS follow the charge: ERI when remaining ≤ the model's ERI threshold, EOS when ≤ its
//!   EOS threshold. Without a remaining figure, a listed ERI (EOS) alarm puts the charge at
//!   that threshold, else the battery is new.
//! * A listed alarm must agree with the state (ERI listed but charge above the threshold,
//!   low reservoir listed with more than the threshold left, …): a contradiction is an error
//!   naming `active_alarms`, never silently resolved.
//! * An alarm the state implies but the reading does not list begins now, with its event
//!   (as filling below the threshold does); a listed alarm keeps its start and has no event
//!   (it was raised before software met the pump). Its tones keep their phase.
//! * `motor_stall` listed: the pump is stalled (delivery stops until the fault is cleared);
//!   `battery_fault` listed: the fault is active (the program given is the one shown, already
//!   reset by the fault).

use crate::battery::{ActiveAlarm, Alarm, PC_PER_MAH};
use crate::error::{ItbError, Result};
use crate::events::{Event, EventKind};
use crate::pump::{Pump, PumpConfig};
use crate::units::check_time;

/// What an interrogation shows beyond the pump's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Battery charge remaining (pC); `None`: not read (see the module rules).
    pub battery_remaining_pc: Option<i64>,
    /// Alarms sounding at the reading, with the time each began (ms, at or before now).
    pub alarms: Vec<(Alarm, i64)>,
    /// Implant date (ms, at or before now): with no remaining figure, the charge used is
    /// estimated from the elapsed service (see [`estimated_used_pc`]).
    pub implanted_ms: Option<i64>,
}

/// Battery charge (pC) a pump of `config` uses from `implanted_ms` to `config.now_ms` if it ran
/// the current program all along, refilled on time: quiescent drain × elapsed time + stroke
/// charge × the strokes of that delivery (closed form). Tones and telemetry sessions are not
/// counted (their history is unknown), so this is a lower bound of a real pump's drain under
/// that program. Capped at the capacity; 0 without a battery model.
pub fn estimated_used_pc(config: &PumpConfig, implanted_ms: i64) -> Result<i64> {
    check_time("implanted", implanted_ms)?;
    if implanted_ms > config.now_ms {
        return Err(ItbError::validation(
            "implanted",
            "is after the reading; allowed: at or before now",
        ));
    }
    let Some(bat) = config.model.battery else {
        return Ok(0);
    };
    let mut at_implant = config.clone();
    at_implant.now_ms = implanted_ms;
    let pump = Pump::new(at_implant)?;
    let gain = pump.delivery.gain_from(implanted_ms).to(config.now_ms);
    let strokes = gain / pump.stroke_gain();
    let used = i128::from(bat.quiescent_pc_per_ms) * i128::from(config.now_ms - implanted_ms)
        + i128::from(bat.stroke_pc) * strokes;
    Ok(used.min(i128::from(bat.capacity_pc)) as i64)
}

/// An alarm's name as the events and `active_alarms` spell it.
pub fn alarm_from_name(name: &str) -> Option<Alarm> {
    Alarm::ALL.into_iter().find(|a| a.name() == name)
}

fn mah(pc: i64) -> String {
    let v = pc as f64 / PC_PER_MAH as f64;
    format!("{v} mAh")
}

impl Pump {
    /// Build the pump of `config` as read: battery charge and alarms already sounding
    /// (see the module rules). Errors name `battery_mah` or `active_alarms`.
    pub fn from_reading(config: PumpConfig, reading: &Reading) -> Result<Pump> {
        let estimate = match (reading.battery_remaining_pc, reading.implanted_ms) {
            (None, Some(t)) => Some(estimated_used_pc(&config, t)?),
            _ => None,
        };
        let mut pump = Pump::new(config)?;
        let now = pump.now_ms;
        // Listed alarms: known, once each, at or before now.
        let mut listed: Vec<(Alarm, i64)> = Vec::with_capacity(reading.alarms.len());
        for (i, &(alarm, since)) in reading.alarms.iter().enumerate() {
            let field = format!("active_alarms[{i}]");
            check_time(&field, since)?;
            if since > now {
                return Err(ItbError::validation(
                    field,
                    format!(
                        "{} began after the reading; allowed: at or before now",
                        alarm.name()
                    ),
                ));
            }
            if listed.iter().any(|&(a, _)| a == alarm) {
                return Err(ItbError::validation(
                    field,
                    format!("{} is listed twice; allowed: once each", alarm.name()),
                ));
            }
            listed.push((alarm, since));
        }
        let since_of = |alarm: Alarm| listed.iter().find(|&&(a, _)| a == alarm).map(|&(_, t)| t);
        let contradiction = |alarm: Alarm, why: String| {
            Err(ItbError::validation(
                "active_alarms",
                format!("{} is listed as sounding but {why}", alarm.name()),
            ))
        };

        // Battery.
        match (pump.model.battery, reading.battery_remaining_pc) {
            (None, Some(_)) => {
                return Err(ItbError::validation(
                    "battery_mah",
                    "the pump model has no battery; allowed: none",
                ))
            }
            (None, None) => {
                for alarm in [Alarm::Eri, Alarm::Eos] {
                    if since_of(alarm).is_some() {
                        return contradiction(alarm, "the pump model has no battery".into());
                    }
                }
            }
            (Some(bat), remaining) => {
                let remaining = match remaining {
                    Some(r) => {
                        if !(0..=bat.capacity_pc).contains(&r) {
                            return Err(ItbError::validation(
                                "battery_mah",
                                format!(
                                    "{}; allowed: 0 to the model's capacity of {}",
                                    mah(r),
                                    mah(bat.capacity_pc)
                                ),
                            ));
                        }
                        r
                    }
                    None if since_of(Alarm::Eos).is_some() => bat.eos_pc,
                    None if since_of(Alarm::Eri).is_some() => {
                        bat.eri_pc.min(bat.capacity_pc - estimate.unwrap_or(0))
                    }
                    None => bat.capacity_pc - estimate.unwrap_or(0),
                };
                for (alarm, threshold) in [(Alarm::Eri, bat.eri_pc), (Alarm::Eos, bat.eos_pc)] {
                    if since_of(alarm).is_some() && remaining > threshold {
                        return contradiction(
                            alarm,
                            format!(
                                "the battery's {} is above the model's {} threshold of {}; \
                                 give the charge the programmer shows or edit the model's threshold",
                                mah(remaining),
                                alarm.name().to_uppercase(),
                                mah(threshold)
                            ),
                        );
                    }
                }
                pump.battery.used_pc = bat.capacity_pc - remaining;
                if remaining <= bat.eri_pc {
                    pump.battery.eri = true;
                }
                if remaining <= bat.eos_pc {
                    pump.battery.eos = true;
                }
                // ERI begins no later than EOS.
                if let (Some(eri), Some(eos)) = (since_of(Alarm::Eri), since_of(Alarm::Eos)) {
                    if eri > eos {
                        return Err(ItbError::validation(
                            "active_alarms",
                            "eri began after eos; allowed: eri at or before eos",
                        ));
                    }
                }
                let eos_since = since_of(Alarm::Eos);
                for (alarm, on, kind) in [
                    (Alarm::Eri, pump.battery.eri, EventKind::Eri),
                    (Alarm::Eos, pump.battery.eos, EventKind::Eos),
                ] {
                    if !on {
                        continue;
                    }
                    // An unlisted ERI of a pump listed at EOS began with it.
                    let since =
                        since_of(alarm).or(if alarm == Alarm::Eri { eos_since } else { None });
                    match since {
                        Some(t) => pump.battery.alarms.push(ActiveAlarm {
                            alarm,
                            raised_ms: t,
                        }),
                        None => {
                            pump.pending.push(Event::new(
                                now,
                                kind,
                                &[("remaining_pc", remaining)],
                            ));
                            pump.battery.raise(alarm, now);
                        }
                    }
                }
            }
        }

        // Reservoir alarms: `Pump::new` raised what the volume implies, at now, with events.
        for (alarm, kind) in [
            (Alarm::LowReservoir, EventKind::LowReservoir),
            (Alarm::ReservoirEmpty, EventKind::ReservoirEmpty),
        ] {
            let raised = pump.battery.alarms.iter().any(|a| a.alarm == alarm);
            match (since_of(alarm), raised) {
                (Some(_), false) => {
                    let why = match alarm {
                        Alarm::LowReservoir => format!(
                            "the reservoir holds {} mL, above the {} mL threshold",
                            pump.reservoir.count_nl as f64 / 1e6,
                            pump.model.low_reservoir_nl as f64 / 1e6
                        ),
                        _ => format!(
                            "the reservoir holds {} mL, at least one stroke",
                            pump.reservoir.count_nl as f64 / 1e6
                        ),
                    };
                    return contradiction(alarm, why);
                }
                (Some(since), true) => {
                    for a in pump.battery.alarms.iter_mut().filter(|a| a.alarm == alarm) {
                        a.raised_ms = since;
                    }
                    pump.pending.retain(|e| e.kind != kind);
                }
                _ => {}
            }
        }

        if let Some(since) = since_of(Alarm::BatteryFault) {
            // The program given is the one the programmer shows (already reset by the fault).
            pump.faults.battery_fault = true;
            pump.battery.alarms.push(ActiveAlarm {
                alarm: Alarm::BatteryFault,
                raised_ms: since,
            });
        }
        if let Some(since) = since_of(Alarm::MotorStall) {
            pump.stalled = true;
            pump.battery.alarms.push(ActiveAlarm {
                alarm: Alarm::MotorStall,
                raised_ms: since,
            });
        }
        Ok(pump)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::battery::BatteryModel;
    use crate::model::PumpModel;
    use crate::program::Basal;

    fn model() -> PumpModel {
        PumpModel {
            name: "t".into(),
            reservoir_nl: 40_000_000,
            stroke_nl: 2000,
            min_rate_nl_per_day: 48_000,
            max_rate_nl_per_day: 24_000_000,
            low_reservoir_nl: 2_000_000,
            pump_path_nl: 0,
            battery: Some(BatteryModel {
                capacity_pc: 500 * PC_PER_MAH,
                quiescent_pc_per_ms: 8,
                stroke_pc: 200_000_000,
                tone_pc: 5_000_000_000,
                telemetry_pc: 20_000_000_000,
                eri_pc: 32 * PC_PER_MAH,
                eos_pc: 10 * PC_PER_MAH,
                non_critical_tone_ms: 3_600_000,
                critical_tone_ms: 600_000,
            }),
        }
    }

    fn config(reservoir_nl: i64) -> PumpConfig {
        PumpConfig::new(
            model(),
            1_000_000_000_000,
            reservoir_nl,
            2000,
            Basal::Continuous {
                ng_per_day: 400_000,
            },
        )
    }

    #[test]
    fn at_eri_listed_keeps_its_start_and_no_event() {
        let r = Reading {
            battery_remaining_pc: Some(20 * PC_PER_MAH),
            alarms: vec![(Alarm::Eri, 999_000_000_000)],
            implanted_ms: None,
        };
        let p = Pump::from_reading(config(30_000_000), &r).unwrap();
        assert!(p.is_eri() && !p.is_eos());
        assert_eq!(p.battery_remaining_pc(), Some(20 * PC_PER_MAH));
        assert_eq!(p.active_alarms()[0].raised_ms, 999_000_000_000);
        assert!(p.pending_events().is_empty());
    }

    #[test]
    fn implied_alarm_begins_now_with_its_event() {
        let r = Reading {
            battery_remaining_pc: Some(5 * PC_PER_MAH),
            alarms: vec![],
            implanted_ms: None,
        };
        let p = Pump::from_reading(config(30_000_000), &r).unwrap();
        assert!(p.is_eos());
        let kinds: Vec<_> = p.pending_events().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Eri, EventKind::Eos]);
    }

    #[test]
    fn elapsed_service_estimate_by_hand() {
        // 0.2 mL/day = 100 strokes/day; one year: 36_500 strokes × 200 µC + 8 nA × 1 year.
        let year = 365 * 86_400_000_i64;
        let cfg = config(30_000_000);
        let used = estimated_used_pc(&cfg, cfg.now_ms - year).unwrap();
        assert_eq!(used, 36_500 * 200_000_000 + 8 * year);
        let r = Reading {
            battery_remaining_pc: None,
            alarms: vec![],
            implanted_ms: Some(cfg.now_ms - year),
        };
        let p = Pump::from_reading(cfg, &r).unwrap();
        assert_eq!(p.battery_used_pc(), used);
    }

    #[test]
    fn contradictions_are_refused() {
        let eri_high = Reading {
            battery_remaining_pc: Some(100 * PC_PER_MAH),
            alarms: vec![(Alarm::Eri, 0)],
            implanted_ms: None,
        };
        assert_eq!(
            Pump::from_reading(config(30_000_000), &eri_high)
                .unwrap_err()
                .field(),
            "active_alarms"
        );
        let low_full = Reading {
            battery_remaining_pc: None,
            alarms: vec![(Alarm::LowReservoir, 0)],
            implanted_ms: None,
        };
        assert!(Pump::from_reading(config(30_000_000), &low_full).is_err());
        let future = Reading {
            battery_remaining_pc: None,
            alarms: vec![(Alarm::LowReservoir, 2_000_000_000_000)],
            implanted_ms: None,
        };
        assert_eq!(
            Pump::from_reading(config(1_000_000), &future)
                .unwrap_err()
                .field(),
            "active_alarms[0]"
        );
        let over = Reading {
            battery_remaining_pc: Some(501 * PC_PER_MAH),
            alarms: vec![],
            implanted_ms: None,
        };
        assert_eq!(
            Pump::from_reading(config(1_000_000), &over)
                .unwrap_err()
                .field(),
            "battery_mah"
        );
    }
}
