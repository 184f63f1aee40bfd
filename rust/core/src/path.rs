//! The fluid path (pump tubing + catheter) as an exact FIFO of parcels, in femtoliters
//! (fL; 1 nL = 1_000_000 fL) so off-nominal strokes stay exact. Each stroke pushes its
//! physical volume in at the reservoir's concentration and the same volume of the oldest
//! fluid leaves the catheter tip: that is the patient's dose. Mass is in attograms
//! (ag = fL × µg/mL; 1 pg = 1_000_000 ag).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Femtoliters per nanoliter.
pub const FL_PER_NL: i64 = 1_000_000;

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
        self.parcels.iter().map(|p| i128::from(p.fl) * i128::from(p.conc)).sum()
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

    /// Push `fl` at `conc` into the path; the same volume leaves the tip.
    /// With an empty path (zero dead volume) the fluid goes straight through.
    pub fn push(&mut self, fl: i64, conc: u32) -> Outflow {
        if fl <= 0 {
            return Outflow::default();
        }
        if self.parcels.is_empty() {
            return Outflow { fl, ag: i128::from(fl) * i128::from(conc), last_conc: Some(conc) };
        }
        match self.parcels.back_mut() {
            Some(back) if back.conc == conc => back.fl += fl,
            _ => self.parcels.push_back(Parcel { fl, conc }),
        }
        let mut out = Outflow::default();
        let mut left = fl;
        while left > 0 {
            let Some(front) = self.parcels.front_mut() else { break };
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
