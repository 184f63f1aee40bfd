//! The reservoir: what the firmware counts (whole nL, strokes × q), what is physically there
//! (fL, with the stroke error), its concentration, the lifetime physical ledgers (filled,
//! withdrawn, delivered at the tip) and the low/empty alarm state of the count.
//!
//! Owns the invariants: counts within the capacity, `empty` exactly when less than a stroke
//! is counted, no negative volume, drug mass within volume × the largest concentration.

use crate::delivery::path::{Outflow, FL_PER_NL};
use crate::model::PumpModel;
use crate::units::{div_ceil, MAX_CONCENTRATION};

/// Largest stroke error accepted (ppm): ±50 %.
pub const MAX_STROKE_ERROR_PPM: i64 = 500_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservoir {
    /// Concentration of the reservoir's drug (µg/mL).
    pub(crate) conc: u32,
    /// What the firmware believes is in the reservoir (nL).
    pub(crate) count_nl: i64,
    /// Physical stroke volume error (ppm): a stroke moves q·(1 + e/1e6) of real fluid.
    pub(crate) stroke_error_ppm: i64,
    /// Physical volume in the reservoir (fL).
    pub(crate) true_fl: i64,
    /// Physical ledgers (fL, ag = fL × µg/mL).
    pub(crate) filled_fl: i64,
    pub(crate) filled_ag: i128,
    pub(crate) withdrawn_fl: i64,
    pub(crate) withdrawn_ag: i128,
    pub(crate) delivered_fl: i64,
    pub(crate) delivered_ag: i128,
    pub(crate) low_armed: bool,
    pub(crate) empty: bool,
}

impl Reservoir {
    /// A reservoir holding `count_nl` at `conc`, plus `path_fl`/`path_ag` filled into the path.
    pub(crate) fn new(
        conc: u32,
        count_nl: i64,
        stroke_error_ppm: i64,
        path_fl: i64,
        path_ag: i128,
    ) -> Self {
        let fl = count_nl * FL_PER_NL;
        Reservoir {
            conc,
            count_nl,
            stroke_error_ppm,
            true_fl: fl,
            filled_fl: fl + path_fl,
            filled_ag: i128::from(fl) * i128::from(conc) + path_ag,
            withdrawn_fl: 0,
            withdrawn_ag: 0,
            delivered_fl: 0,
            delivered_ag: 0,
            low_armed: true,
            empty: false,
        }
    }

    /// Physical volume of one stroke of `stroke_nl` (fL).
    pub fn true_stroke_fl(&self, stroke_nl: i64) -> i64 {
        stroke_nl * (FL_PER_NL + self.stroke_error_ppm)
    }

    /// Whole strokes the firmware count allows.
    pub fn strokes_allowed(&self, stroke_nl: i64) -> i64 {
        self.count_nl / stroke_nl
    }

    /// Strokes from now after which the low-reservoir alarm fires, if armed.
    pub(crate) fn low_alarm_stroke(&self, model: &PumpModel) -> Option<i64> {
        if !self.low_armed || self.count_nl <= model.low_reservoir_nl {
            return None;
        }
        let over = self.count_nl - model.low_reservoir_nl;
        Some(div_ceil(i128::from(over), i128::from(model.stroke_nl)) as i64)
    }

    /// Count `count_nl` out of the firmware's reservoir and take up to `passing_fl` out of
    /// the physical one (what is left, if less). Returns the physical volume moved (fL).
    pub(crate) fn draw_fl(&mut self, count_nl: i64, passing_fl: i64) -> i64 {
        self.count_nl -= count_nl;
        let fl = passing_fl.clamp(0, self.true_fl);
        self.true_fl -= fl;
        fl
    }

    /// The low-reservoir alarm fired: no more until a refill re-arms it.
    pub(crate) fn disarm_low(&mut self) {
        self.low_armed = false;
    }

    /// Less than a stroke is left: delivery stops until a refill.
    pub(crate) fn mark_empty(&mut self) {
        self.empty = true;
    }

    /// Count what left the catheter tip.
    pub(crate) fn record_delivered(&mut self, out: &Outflow) {
        self.delivered_fl += out.fl;
        self.delivered_ag += out.ag;
    }

    /// Aspirate everything physically there and fill `added_nl` at `conc`; re-arms the
    /// low alarm and clears `empty`. None (nothing changed) if a lifetime ledger (fL, i64,
    /// about 9.2e6 L) would pass its range.
    pub(crate) fn refill(&mut self, added_nl: i64, conc: u32) -> Option<()> {
        let filled_fl = self.filled_fl.checked_add(added_nl * FL_PER_NL)?;
        let withdrawn_fl = self.withdrawn_fl.checked_add(self.true_fl)?;
        // The physical reservoir is emptied whatever the measurement says.
        self.withdrawn_fl = withdrawn_fl;
        self.withdrawn_ag += i128::from(self.true_fl) * i128::from(self.conc);
        self.count_nl = added_nl;
        self.true_fl = added_nl * FL_PER_NL;
        self.filled_fl = filled_fl;
        self.filled_ag += i128::from(added_nl) * i128::from(FL_PER_NL) * i128::from(conc);
        self.conc = conc;
        self.low_armed = true;
        self.empty = false;
        Some(())
    }

    /// Withdraw a path's contents (`old_fl`, `old_ag`) and fill `new_fl` of saline in its
    /// place. None (nothing changed) if a lifetime ledger would pass its range.
    pub(crate) fn exchange_path(&mut self, old_fl: i64, old_ag: i128, new_fl: i64) -> Option<()> {
        let filled_fl = self.filled_fl.checked_add(new_fl)?;
        let withdrawn_fl = self.withdrawn_fl.checked_add(old_fl)?;
        self.withdrawn_fl = withdrawn_fl;
        self.withdrawn_ag += old_ag;
        self.filled_fl = filled_fl;
        Some(())
    }

    /// The invariants of a decoded state (see the module docs).
    pub(crate) fn check_invariants(
        &self,
        model: &PumpModel,
    ) -> std::result::Result<(), &'static str> {
        if self.count_nl < 0 || self.count_nl > model.reservoir_nl {
            return Err("reservoir out of range");
        }
        if self.empty != (self.count_nl < model.stroke_nl) {
            return Err("empty flag does not match the reservoir");
        }
        if !(-MAX_STROKE_ERROR_PPM..=MAX_STROKE_ERROR_PPM).contains(&self.stroke_error_ppm) {
            return Err("catheter volume or stroke error out of range");
        }
        if self.true_fl < 0 || self.delivered_fl < 0 || self.withdrawn_fl < 0 || self.filled_fl < 0
        {
            return Err("negative physical volume");
        }
        // Drug mass lies within 0..=volume × the largest concentration (so sums of them, and
        // every later addition, stay far inside i128).
        let mass_ok =
            |ag: i128, fl: i64| (0..=i128::from(fl) * i128::from(MAX_CONCENTRATION)).contains(&ag);
        if !mass_ok(self.filled_ag, self.filled_fl)
            || !mass_ok(self.delivered_ag, self.delivered_fl)
            || !mass_ok(self.withdrawn_ag, self.withdrawn_fl)
        {
            return Err("drug mass out of range");
        }
        Ok(())
    }
}
