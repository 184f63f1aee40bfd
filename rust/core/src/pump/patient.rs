//! Patient-activated (PTM) boluses: the clinician's limits and the activations granted in the
//! last 24 h. Owns the invariants: limits within their ranges, at most
//! [`MAX_PATIENT_BOLUSES_PER_DAY`] grants kept, in time order, none in the future.

use serde::{Deserialize, Serialize};

use crate::error::{check_range, ItbError, Result};
use crate::units::{volume_nl_of_dose, MAX_BOLUS_NG, MS_PER_DAY};

/// Most patient boluses a clinician may allow per rolling 24 h.
pub const MAX_PATIENT_BOLUSES_PER_DAY: i64 = 24;

/// Clinician limits of the patient-activated bolus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientBolusLimits {
    pub dose_ng: i64,
    pub duration_ms: i64,
    /// Minimum time from one granted activation to the next (ms).
    pub lockout_ms: i64,
    /// Most granted activations in any rolling 24 h.
    pub max_per_24h: i64,
}

impl PatientBolusLimits {
    /// Check every limit; the dose must be 1 nL..=`reservoir_cap_nl` at `conc` µg/mL.
    pub fn validate(&self, conc: u32, reservoir_cap_nl: i64) -> Result<()> {
        check_range("dose_ug", self.dose_ng, 1, MAX_BOLUS_NG, "ng")?;
        check_range("duration", self.duration_ms, 1, MS_PER_DAY, "ms")?;
        check_range("lockout", self.lockout_ms, 0, MS_PER_DAY, "ms")?;
        check_range(
            "max_per_24h",
            self.max_per_24h,
            1,
            MAX_PATIENT_BOLUSES_PER_DAY,
            "boluses",
        )?;
        let volume = volume_nl_of_dose(self.dose_ng, conc);
        if volume < 1 || volume > reservoir_cap_nl {
            return Err(ItbError::validation(
                "dose_ug",
                format!(
                    "{} µg at {conc} µg/mL is {} mL; allowed: 0.001 mL (1 nL) to {} mL (the reservoir capacity)",
                    self.dose_ng as f64 / 1000.0,
                    volume as f64 / 1e6,
                    reservoir_cap_nl as f64 / 1e6
                ),
            ));
        }
        Ok(())
    }

    /// Whether every limit is within its range (the dose's volume is not checked).
    fn in_range(&self) -> bool {
        (1..=MAX_BOLUS_NG).contains(&self.dose_ng)
            && (1..=MS_PER_DAY).contains(&self.duration_ms)
            && (0..=MS_PER_DAY).contains(&self.lockout_ms)
            && (1..=MAX_PATIENT_BOLUSES_PER_DAY).contains(&self.max_per_24h)
    }
}

/// The patient-bolus part of a pump: limits (None = disabled) and recent grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientBoluses {
    pub(crate) limits: Option<PatientBolusLimits>,
    /// Times of granted patient boluses within the last 24 h.
    pub(crate) grants: Vec<i64>,
}

impl PatientBoluses {
    pub fn limits(&self) -> Option<PatientBolusLimits> {
        self.limits
    }

    /// Forget grants older than 24 h before `now`.
    pub(crate) fn forget_before(&mut self, now: i64) {
        self.grants.retain(|&t| t > now - MS_PER_DAY);
    }

    /// Whether the lockout and the daily maximum allow an activation at `now`.
    pub(crate) fn check_limits(
        &self,
        limits: &PatientBolusLimits,
        now: i64,
    ) -> std::result::Result<(), &'static str> {
        if let Some(&last) = self.grants.last() {
            if now - last < limits.lockout_ms {
                return Err("lockout");
            }
        }
        if self.grants.len() as i64 >= limits.max_per_24h {
            return Err("daily_maximum");
        }
        Ok(())
    }

    pub(crate) fn grant(&mut self, now: i64) {
        self.grants.push(now);
    }

    /// The invariants of a decoded state (see the module docs).
    pub(crate) fn check_invariants(
        &self,
        min_time: i64,
        now: i64,
    ) -> std::result::Result<(), &'static str> {
        let in_past = |t: i64| (min_time..=now).contains(&t);
        let grants_ok = self.grants.len() <= MAX_PATIENT_BOLUSES_PER_DAY as usize
            && self.grants.iter().all(|&t| in_past(t))
            && self.grants.windows(2).all(|w| w[0] <= w[1]);
        let limits_ok = self.limits.is_none_or(|l| l.in_range());
        if !grants_ok || !limits_ok {
            return Err("patient bolus state out of range");
        }
        Ok(())
    }
}
