//! Rates in force at the pump's `now`: what the pump is commanding (volume) and what the
//! program prescribes (dose), read from the schedules the delivery engine uses.

use crate::pump::Pump;

impl Pump {
    /// The pump is moving fluid: not suspended, stalled, empty or at end of service.
    pub fn is_delivering(&self) -> bool {
        !(self.is_suspended() || self.is_stalled() || self.is_empty() || self.is_eos())
    }

    /// Volume rate (nL/day) commanded at `now`: the basal step in force plus every bolus
    /// running at `now` (`start_ms <= now < end_ms`); 0 while the pump is not delivering.
    /// Saturates at `i64::MAX` (never reached within the model's limits).
    pub fn commanded_rate_nl_per_day(&self) -> i64 {
        if !self.is_delivering() {
            return 0;
        }
        let now = self.now_ms();
        let basal = self.schedule().rate_at(now).0;
        self.boluses()
            .iter()
            .filter(|b| b.start_ms <= now && now < b.end_ms)
            .fold(basal, |sum, b| sum.saturating_add(b.rate_nl_per_day))
    }

    /// Dose rate (ng/day) the basal program prescribes at `now` (boluses not included, and
    /// regardless of whether the pump is delivering).
    pub fn prescribed_ng_per_day(&self) -> i64 {
        self.basal().dose_schedule().rate_at(self.now_ms()).0
    }
}
