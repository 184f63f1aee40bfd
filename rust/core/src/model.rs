//! Pump models: the fixed hardware figures a pump is built from.

use serde::{Deserialize, Serialize};

use crate::battery::BatteryModel;
use crate::error::{check_range, ItbError, Result};
use crate::units::MS_PER_DAY;

/// Largest reservoir accepted (nL): 1 L.
pub const MAX_RESERVOIR_NL: i64 = 1_000_000_000;
/// Largest stroke accepted (nL): 1 mL.
pub const MAX_STROKE_NL: i64 = 1_000_000;
/// Largest rate accepted (nL/day): 1 L/day.
pub const MAX_RATE_NL_PER_DAY: i64 = 1_000_000_000;
/// Largest pump-internal path accepted (nL): 100 mL.
pub const MAX_PATH_NL: i64 = 100_000_000;

/// The hardware figures of a pump model, in exact integer units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PumpModel {
    pub name: String,
    /// Reservoir capacity (nL).
    pub reservoir_nl: i64,
    /// Volume moved by one stroke (nL).
    pub stroke_nl: i64,
    /// Smallest non-zero programmable rate (nL/day).
    pub min_rate_nl_per_day: i64,
    /// Largest total rate, basal plus boluses (nL/day).
    pub max_rate_nl_per_day: i64,
    /// Low-reservoir alarm threshold (nL).
    pub low_reservoir_nl: i64,
    /// Dead volume of the pump's internal tubing (nL).
    pub pump_path_nl: i64,
    /// Battery (None: no battery accounting, never ERI/EOS).
    pub battery: Option<BatteryModel>,
}

impl PumpModel {
    /// Validate every field; an error names the field and its allowed range.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.len() > 200 {
            return Err(ItbError::validation("name", "must be 1 to 200 characters"));
        }
        check_range("reservoir_nl", self.reservoir_nl, 1, MAX_RESERVOIR_NL, "nL")?;
        check_range("stroke_nl", self.stroke_nl, 1, MAX_STROKE_NL, "nL")?;
        // At most one stroke per millisecond: max rate <= stroke * ms per day.
        let max_allowed = MAX_RATE_NL_PER_DAY.min(self.stroke_nl.saturating_mul(MS_PER_DAY));
        check_range(
            "max_rate_nl_per_day",
            self.max_rate_nl_per_day,
            1,
            max_allowed,
            "nL/day",
        )?;
        check_range(
            "min_rate_nl_per_day",
            self.min_rate_nl_per_day,
            1,
            self.max_rate_nl_per_day,
            "nL/day",
        )?;
        check_range(
            "low_reservoir_nl",
            self.low_reservoir_nl,
            0,
            self.reservoir_nl,
            "nL",
        )?;
        check_range("pump_path_nl", self.pump_path_nl, 0, MAX_PATH_NL, "nL")?;
        if let Some(b) = &self.battery {
            b.validate()?;
        }
        Ok(())
    }
}
