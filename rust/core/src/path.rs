//! The fluid path (pump tubing + catheter) as an exact FIFO of parcels.
//! Each stroke pushes its volume in at the reservoir's concentration and the same
//! volume of the oldest fluid leaves the catheter tip: that is the patient's dose.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A parcel of fluid in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub nl: i64,
    /// µg/mL (0 = saline).
    pub conc: u32,
}

/// FIFO of parcels, oldest (nearest the tip) first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FluidPath {
    parcels: VecDeque<Parcel>,
}

impl FluidPath {
    /// A path of `nl` filled at `conc` (0 = saline).
    pub fn filled(nl: i64, conc: u32) -> Self {
        let mut path = FluidPath::default();
        if nl > 0 {
            path.parcels.push_back(Parcel { nl, conc });
        }
        path
    }

    pub fn volume_nl(&self) -> i64 {
        self.parcels.iter().map(|p| p.nl).sum()
    }

    pub fn mass_pg(&self) -> i128 {
        self.parcels.iter().map(|p| i128::from(p.nl) * i128::from(p.conc)).sum()
    }

    pub fn parcels(&self) -> impl Iterator<Item = &Parcel> {
        self.parcels.iter()
    }

    /// Push `nl` at `conc` into the path and return `(nl, pg)` that left the tip.
    /// With an empty path (zero dead volume) the fluid goes straight through.
    pub fn push(&mut self, nl: i64, conc: u32) -> (i64, i128) {
        if nl <= 0 {
            return (0, 0);
        }
        if self.parcels.is_empty() {
            return (nl, i128::from(nl) * i128::from(conc));
        }
        match self.parcels.back_mut() {
            Some(back) if back.conc == conc => back.nl += nl,
            _ => self.parcels.push_back(Parcel { nl, conc }),
        }
        let mut left = nl;
        let mut pg = 0i128;
        while left > 0 {
            let Some(front) = self.parcels.front_mut() else { break };
            let take = left.min(front.nl);
            pg += i128::from(take) * i128::from(front.conc);
            front.nl -= take;
            left -= take;
            if front.nl == 0 {
                self.parcels.pop_front();
            }
        }
        (nl - left, pg)
    }
}
