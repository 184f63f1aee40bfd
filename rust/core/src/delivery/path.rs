//! The fluid path (pump tubing + catheter) as an exact FIFO of parcels, in femtoliters
//! (fL; 1 nL = 1_000_000 fL) so off-nominal strokes stay exact. Each stroke pushes its
//! physical volume in at the reservoir's concentration and the same volume of the oldest
//! fluid leaves the catheter tip: that is the patient's dose. Mass is in attograms
//! (ag = fL × µg/mL; 1 pg = 1_000_000 ag).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Femtoliters per nanoliter.
pub const FL_PER_NL: i64 = 1_000_000;

/// A volume in fL as whole nL (floor: what a reading shows of a partial nanoliter).
pub fn fl_to_nl(fl: i64) -> i64 {
    fl.div_euclid(FL_PER_NL)
}

/// A wide amount in millionths as whole units (floor): fL → nL or ag → pg (both 10⁶).
pub fn millionths_to_units(x: i128) -> i128 {
    x.div_euclid(i128::from(FL_PER_NL))
}

/// A parcel of fluid in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub fl: i64,
    /// µg/mL (0 = saline).
    pub conc: u32,
}

/// What left the tip during one push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outflow {
    pub fl: i64,
    pub ag: i128,
    /// Concentration of the last fluid that left (unchanged if nothing left).
    pub last_conc: Option<u32>,
}

/// FIFO of parcels, oldest (nearest the tip) first; adjacent parcels differ in concentration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FluidPath {
    parcels: VecDeque<Parcel>,
}

impl FluidPath {
    /// A path of `fl` filled at `conc` (0 = saline).
    pub fn filled(fl: i64, conc: u32) -> Self {
        let mut path = FluidPath::default();
        if fl > 0 {
            path.parcels.push_back(Parcel { fl, conc });
        }
        path
    }

    pub fn volume_fl(&self) -> i64 {
        self.parcels.iter().map(|p| p.fl).sum()
    }

    pub fn mass_ag(&self) -> i128 {
        self.parcels
            .iter()
            .map(|p| i128::from(p.fl) * i128::from(p.conc))
            .sum()
    }

    pub fn parcels(&self) -> impl Iterator<Item = &Parcel> {
        self.parcels.iter()
    }

    /// Concentration at the tip (front parcel), if the path holds fluid.
    pub fn tip_conc(&self) -> Option<u32> {
        self.parcels.front().map(|p| p.conc)
    }

    /// Volume (fL) that leaves before fluid of a concentration other than `tip_conc`
    /// reaches the tip, if such fluid is in the path or is being pushed in at `incoming`.
    pub fn fl_before_change(&self, tip_conc: u32, incoming: u32) -> Option<i64> {
        let mut ahead = 0i64;
        for p in &self.parcels {
            if p.conc != tip_conc {
                return Some(ahead);
            }
            ahead += p.fl;
        }
        (incoming != tip_conc).then_some(ahead)
    }

    /// Remove up to `fl` of the fluid nearest the tip (what a removed catheter holds) and put
    /// `new_fl` of saline in its place, at the tip end. Returns what was removed (fL, ag).
    pub fn replace_front(&mut self, fl: i64, new_fl: i64) -> (i64, i128) {
        let (mut out_fl, mut out_ag) = (0i64, 0i128);
        let mut left = fl.max(0);
        while left > 0 {
            let Some(front) = self.parcels.front_mut() else {
                break;
            };
            let take = left.min(front.fl);
            out_fl += take;
            out_ag += i128::from(take) * i128::from(front.conc);
            front.fl -= take;
            left -= take;
            if front.fl == 0 {
                self.parcels.pop_front();
            }
        }
        if new_fl > 0 {
            match self.parcels.front_mut() {
                Some(front) if front.conc == 0 => front.fl += new_fl,
                _ => self.parcels.push_front(Parcel {
                    fl: new_fl,
                    conc: 0,
                }),
            }
        }
        (out_fl, out_ag)
    }

    /// Split off the `fl` nearest the tip as its own path (fewer if the path holds less).
    pub fn split_front(&mut self, fl: i64) -> FluidPath {
        let mut front = FluidPath::default();
        let mut left = fl.max(0);
        while left > 0 {
            let Some(p) = self.parcels.front_mut() else {
                break;
            };
            let take = left.min(p.fl);
            front.push_back_merged(take, p.conc);
            p.fl -= take;
            left -= take;
            if p.fl == 0 {
                self.parcels.pop_front();
            }
        }
        front
    }

    /// Put `front` back before this path (at the tip end).
    pub fn join_front(&mut self, front: FluidPath) {
        for p in front.parcels.into_iter().rev() {
            match self.parcels.front_mut() {
                Some(f) if f.conc == p.conc => f.fl += p.fl,
                _ => self.parcels.push_front(p),
            }
        }
    }

    fn push_back_merged(&mut self, fl: i64, conc: u32) {
        if fl <= 0 {
            return;
        }
        match self.parcels.back_mut() {
            Some(b) if b.conc == conc => b.fl += fl,
            _ => self.parcels.push_back(Parcel { fl, conc }),
        }
    }

    /// Push `fl` at `conc` into the path; the same volume leaves the tip.
    /// With an empty path (zero dead volume) the fluid goes straight through.
    pub fn push(&mut self, fl: i64, conc: u32) -> Outflow {
        if fl <= 0 {
            return Outflow::default();
        }
        if self.parcels.is_empty() {
            return Outflow {
                fl,
                ag: i128::from(fl) * i128::from(conc),
                last_conc: Some(conc),
            };
        }
        match self.parcels.back_mut() {
            Some(back) if back.conc == conc => back.fl += fl,
            _ => self.parcels.push_back(Parcel { fl, conc }),
        }
        let mut out = Outflow::default();
        let mut left = fl;
        while left > 0 {
            let Some(front) = self.parcels.front_mut() else {
                break;
            };
            let take = left.min(front.fl);
            out.fl += take;
            out.ag += i128::from(take) * i128::from(front.conc);
            out.last_conc = Some(front.conc);
            front.fl -= take;
            left -= take;
            if front.fl == 0 {
                self.parcels.pop_front();
            }
        }
        out
    }
}

/// Largest catheter dead volume accepted (nL): 10 mL.
pub const MAX_CATHETER_NL: i64 = 10_000_000;

/// The fluid path part of a pump: the catheter's dead volume, the path's contents (the pump
/// tubing and the catheter) and the concentration last at the tip. Owns the invariants: the contents fill
/// exactly the tubing + catheter volume, parcels are positive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluidLine {
    pub(crate) catheter_nl: i64,
    pub(crate) fluid: FluidPath,
    /// Concentration of the fluid last at the catheter tip (µg/mL; 0 = saline).
    pub(crate) tip_conc: u32,
}

impl FluidLine {
    /// A path of `fl` (tubing + catheter) filled at `path_conc`; `conc` is the reservoir's
    /// (at the tip when the path holds no fluid).
    pub(crate) fn new(catheter_nl: i64, fl: i64, path_conc: u32, conc: u32) -> Self {
        let fluid = FluidPath::filled(fl, path_conc);
        FluidLine {
            catheter_nl,
            tip_conc: fluid.tip_conc().unwrap_or(conc),
            fluid,
        }
    }

    /// Volume (fL) ahead of the first fluid of another concentration than the tip's, with
    /// `incoming` being pushed in.
    pub(crate) fn fl_before_tip_change(&self, incoming: u32) -> Option<i64> {
        self.fluid.fl_before_change(self.tip_conc, incoming)
    }

    /// Push `fl` at `conc`; returns what left the tip (and notes its concentration).
    pub(crate) fn push(&mut self, fl: i64, conc: u32) -> Outflow {
        let out = self.fluid.push(fl, conc);
        if let Some(c) = out.last_conc {
            self.tip_conc = c;
        }
        out
    }

    /// Replace the catheter only (a catheter revision): the old catheter's contents (the
    /// fluid nearest the tip, `self.catheter_nl`) leave the system, the pump tubing keeps
    /// its fluid, and the new catheter of `catheter_nl` holds saline. `conc` is the
    /// reservoir's (at the tip when the path holds no fluid). Returns what was removed.
    pub(crate) fn replace_catheter(&mut self, catheter_nl: i64, conc: u32) -> (i64, i128) {
        let removed = self.fluid.replace_front(
            self.catheter_nl.saturating_mul(FL_PER_NL),
            catheter_nl.saturating_mul(FL_PER_NL),
        );
        self.catheter_nl = catheter_nl;
        self.tip_conc = self.fluid.tip_conc().unwrap_or(conc);
        removed
    }

    /// Replace the whole path (pump tubing and catheter, as at a new implant): the path of
    /// `fl` now holds only saline. Returns what was removed.
    pub(crate) fn replace_all(&mut self, catheter_nl: i64, fl: i64, conc: u32) -> (i64, i128) {
        let removed = (self.fluid.volume_fl(), self.fluid.mass_ag());
        self.fluid = FluidPath::filled(fl, 0);
        self.catheter_nl = catheter_nl;
        self.tip_conc = if fl > 0 { 0 } else { conc };
        removed
    }

    /// The invariants of a decoded state, for a model whose tubing holds `pump_path_nl`.
    pub(crate) fn check_invariants(
        &self,
        pump_path_nl: i64,
        max_conc: u32,
        detached_fl: i128,
    ) -> std::result::Result<(), &'static str> {
        if !(0..=MAX_CATHETER_NL).contains(&self.catheter_nl) {
            return Err("catheter volume or stroke error out of range");
        }
        // Parcels are summed in i128: a decoded path may hold any i64 volumes.
        let path_fl: i128 = self.fluid.parcels().map(|p| i128::from(p.fl)).sum();
        if path_fl + detached_fl != i128::from((pump_path_nl + self.catheter_nl) * FL_PER_NL)
            || self.fluid.parcels().any(|p| p.fl <= 0 || p.conc > max_conc)
            || self.tip_conc > max_conc
        {
            return Err("fluid path volume does not match the model");
        }
        Ok(())
    }
}
