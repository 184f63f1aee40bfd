//! Injected faults and the ledgers of where the drug really went (docs: guide/faults.md).
//!
//! The firmware counts every stroke as `q` pumped; physically a stroke is *commanded* to move
//! `q·(1 + e)` (the stroke error) and then:
//! * an **occlusion** lets only `pass_ppm` of it move (0: complete); the rest is *held back*:
//!   it stays in the reservoir (the catheter system is treated as rigid and the fluid as
//!   incompressible, so nothing moves past a blockage and no pressure is stored);
//! * a physically **dry** reservoir moves only what is left (the rest is *dry*);
//! * what moves enters the path; what leaves it reaches the intrathecal space (the patient's
//!   dose) unless a **leak/disconnection** diverts everything crossing its site into tissue
//!   (the catheter beyond the site is then stagnant) or the tip has **migrated** out of the
//!   intrathecal space (what leaves the tip goes to tissue);
//! * a **pocket fill** at a refill puts part of the added volume straight into tissue.
//!
//! Exact: `commanded = pumped + held_back + dry` (fL, since creation or the migration of an
//! older snapshot), and `filled = reservoir + path + intrathecal + tissue + withdrawn` (fL and
//! ag). The occlusion's fraction keeps its remainder (fL·ppm), so advancing in pieces or at
//! once moves the same volume.

use serde::{Deserialize, Serialize};

use crate::delivery::path::FluidPath;

/// One million: ppm scale.
pub const PPM: i64 = 1_000_000;

/// Which fault a leak is (same physics: the flow crossing the site goes into tissue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeakKind {
    /// A hole or crack in the catheter wall.
    Leak,
    /// The catheter came apart (at the pump connector or a splice).
    Disconnection,
}

impl LeakKind {
    pub fn name(self) -> &'static str {
        match self {
            LeakKind::Leak => "leak",
            LeakKind::Disconnection => "disconnection",
        }
    }
}

/// An active leak or disconnection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    pub kind: LeakKind,
    /// Site, as catheter volume from the pump connector (nL, 0..=catheter).
    pub position_nl: i64,
    /// The catheter beyond the site (site to tip): stagnant while the leak is active.
    pub downstream: FluidPath,
}

/// Active faults and the truth ledgers (part of the snapshot from format version 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Fraction of each stroke's flow that passes an occlusion (ppm; 0 = complete).
    pub occlusion_pass_ppm: Option<i64>,
    /// Remainder of the occlusion's fraction (fL·ppm, 0..PPM).
    pub occlusion_rem: i64,
    pub leak: Option<Leak>,
    /// The catheter tip has migrated out of the intrathecal space.
    pub tip_migrated: bool,
    /// A battery fault reset the program to the model's minimum rate (alarm active).
    pub battery_fault: bool,
    /// Drug that went elsewhere: into tissue (leak, disconnection, migrated tip, pocket fill).
    pub tissue_fl: i64,
    pub tissue_ag: i128,
    /// Physical volume the strokes were commanded to move (q·(1 + e) each).
    pub commanded_fl: i128,
    /// What physically left the reservoir.
    pub pumped_fl: i128,
    pub pumped_ag: i128,
    /// Commanded but held back by an occlusion (stayed in the reservoir).
    pub held_back_fl: i128,
    /// Commanded while the physical reservoir was dry (nothing there to move).
    pub dry_fl: i128,
}

impl Faults {
    /// Of `commanded` fL, what an occlusion lets move (updating its remainder).
    pub(crate) fn passing(&mut self, commanded: i64) -> i64 {
        match self.occlusion_pass_ppm {
            None => commanded,
            Some(p) => {
                let total = i128::from(self.occlusion_rem) + i128::from(commanded) * i128::from(p);
                let ppm = i128::from(PPM);
                self.occlusion_rem = (total % ppm) as i64;
                (total / ppm) as i64
            }
        }
    }

    /// Strokes (of `stroke_fl` commanded each) after which more than `ahead_fl` has passed
    /// the occlusion (None if nothing passes).
    pub(crate) fn strokes_to_pass(&self, ahead_fl: i64, stroke_fl: i64) -> Option<i64> {
        let p = self.occlusion_pass_ppm.unwrap_or(PPM);
        if p <= 0 || stroke_fl <= 0 {
            return None;
        }
        let rem = if self.occlusion_pass_ppm.is_some() {
            self.occlusion_rem
        } else {
            0
        };
        let need = (i128::from(ahead_fl) + 1) * i128::from(PPM) - i128::from(rem);
        let per = i128::from(stroke_fl) * i128::from(p);
        i64::try_from((need + per - 1) / per).ok()
    }

    /// The invariants of a decoded state.
    pub(crate) fn check_invariants(&self) -> std::result::Result<(), &'static str> {
        if self
            .occlusion_pass_ppm
            .is_some_and(|p| !(0..PPM).contains(&p))
            || !(0..PPM).contains(&self.occlusion_rem)
        {
            return Err("occlusion out of range");
        }
        if self.tissue_fl < 0
            || self.tissue_ag < 0
            || self.commanded_fl < 0
            || self.pumped_fl < 0
            || self.pumped_ag < 0
            || self.held_back_fl < 0
            || self.dry_fl < 0
            || self.commanded_fl != self.pumped_fl + self.held_back_fl + self.dry_fl
        {
            return Err("fault ledgers do not balance");
        }
        if let Some(leak) = &self.leak {
            if leak.position_nl < 0 || leak.downstream.parcels().any(|p| p.fl <= 0) {
                return Err("leak out of range");
            }
        }
        Ok(())
    }
}
