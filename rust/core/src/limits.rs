//! The core's limits and unit factors in one table, so that the bindings expose them once
//! (`itb._core.LIMITS`) and no other layer re-declares them.
//!
//! Each entry is `(name, value)`; the name ends in the value's unit (`_MS`, `_NL`, `_NG`,
//! `_PPM`, …) or names a count. Nothing here is computed: every value is the constant the core
//! checks against, where it is defined.

use crate::batch::FORECAST_MS;
use crate::battery::PC_PER_MAH;
use crate::delivery::path::{FL_PER_NL, MAX_CATHETER_NL};
use crate::delivery::program::MAX_STEPS_PER_DAY;
use crate::delivery::reservoir::MAX_STROKE_ERROR_PPM;
use crate::model::{MAX_PATH_NL, MAX_RATE_NL_PER_DAY, MAX_RESERVOIR_NL, MAX_STROKE_NL};
use crate::pump::patient::MAX_PATIENT_BOLUSES_PER_DAY;
use crate::units::{
    MAX_BOLUS_NG, MAX_CONCENTRATION, MAX_DOSE_NG_PER_DAY, MAX_TIME_MS, MIN_TIME_MS, MS_PER_DAY,
    MS_PER_WEEK, NL_PER_ML,
};

/// Every limit and unit factor the core checks against, by name.
pub const LIMITS: [(&str, i64); 20] = [
    ("MS_PER_DAY", MS_PER_DAY),
    ("MS_PER_WEEK", MS_PER_WEEK),
    ("NL_PER_ML", NL_PER_ML),
    ("FL_PER_NL", FL_PER_NL),
    ("PC_PER_MAH", PC_PER_MAH),
    ("MIN_TIME_MS", MIN_TIME_MS),
    ("MAX_TIME_MS", MAX_TIME_MS),
    ("MAX_CONCENTRATION_UG_PER_ML", MAX_CONCENTRATION as i64),
    ("MAX_DOSE_NG_PER_DAY", MAX_DOSE_NG_PER_DAY),
    ("MAX_BOLUS_NG", MAX_BOLUS_NG),
    ("MAX_STEPS_PER_DAY", MAX_STEPS_PER_DAY as i64),
    ("MAX_PATIENT_BOLUSES_PER_DAY", MAX_PATIENT_BOLUSES_PER_DAY),
    ("MAX_CATHETER_NL", MAX_CATHETER_NL),
    ("MAX_STROKE_ERROR_PPM", MAX_STROKE_ERROR_PPM),
    ("MAX_RESERVOIR_NL", MAX_RESERVOIR_NL),
    ("MAX_STROKE_NL", MAX_STROKE_NL),
    ("MAX_RATE_NL_PER_DAY", MAX_RATE_NL_PER_DAY),
    ("MAX_PATH_NL", MAX_PATH_NL),
    ("FORECAST_MS", FORECAST_MS),
    ("SNAPSHOT_VERSION", crate::snapshot::SNAPSHOT_VERSION as i64),
];

/// The value of the limit `name`, if the table has it.
pub fn limit(name: &str) -> Option<i64> {
    LIMITS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_values_are_the_documented_ones() {
        let mut names: Vec<&str> = LIMITS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LIMITS.len());
        // Hand-written values (labelling and the units page), not read from the constants.
        assert_eq!(limit("MS_PER_DAY"), Some(24 * 60 * 60 * 1000));
        assert_eq!(limit("MAX_CONCENTRATION_UG_PER_ML"), Some(100_000));
        assert_eq!(limit("MAX_STEPS_PER_DAY"), Some(13));
        assert_eq!(limit("MAX_PATIENT_BOLUSES_PER_DAY"), Some(24));
        assert_eq!(limit("MAX_CATHETER_NL"), Some(10 * 1_000_000));
        assert_eq!(limit("NO_SUCH_LIMIT"), None);
    }
}
