//! Timed boluses: a volume V (nL) over a duration T (ms) on top of the basal rate.
//!
//! The bolus runs at `r_b = ceil(V·86_400_000 / T)` nL/day and adds
//! `min(r_b·(t − start), V·86_400_000)` to the accumulator: `r_b` in each millisecond from
//! `start`, and in its last millisecond only what is left, so its volume is exact and it
//! ends at `end = start + ceil(V·86_400_000 / r_b) <= start + T`.

use serde::{Deserialize, Serialize};

use crate::units::{div_ceil, MS_PER_DAY};

/// Why a bolus was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BolusKind {
    /// Clinician-programmed timed bolus.
    Timed,
    /// Pushes old drug out of the path at the old dose rate after a concentration change.
    Bridge,
    /// Fills a saline path with drug at a fast rate.
    Priming,
    /// Patient-activated (PTM) bolus within clinician limits.
    Patient,
}

impl BolusKind {
    pub fn name(self) -> &'static str {
        match self {
            BolusKind::Timed => "timed",
            BolusKind::Bridge => "bridge",
            BolusKind::Priming => "priming",
            BolusKind::Patient => "patient",
        }
    }
}

/// A scheduled or running bolus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bolus {
    pub id: u64,
    pub start_ms: i64,
    /// First millisecond after the bolus (its last increment is in `[end − 1, end)`).
    pub end_ms: i64,
    pub volume_nl: i64,
    /// The dose asked for (ng): what a clinician or the PTM limits prescribed (0 for priming).
    pub requested_ng: i64,
    /// The drug mass the bolus really moves out of the reservoir (pg): its whole-nL volume
    /// × the reservoir concentration it was derived at. May differ from `requested_ng` by
    /// the nL rounding (e.g. 0.25 µg at 100 000 µg/mL is 2 nL = 0.2 µg).
    pub dose_pg: i64,
    /// Commanded rate `r_b` (nL/day).
    pub rate_nl_per_day: i64,
    /// The duration it was programmed with (ms); it ends at or before `start_ms + duration_ms`.
    pub duration_ms: i64,
    /// Whether `bolus_started` has been emitted.
    pub started: bool,
    pub kind: BolusKind,
}

impl Bolus {
    /// Build a bolus of `volume_nl` at `conc` µg/mL; `volume_nl >= 1`, `duration_ms >= 1` are
    /// checked by the caller.
    pub fn new(
        id: u64,
        start_ms: i64,
        volume_nl: i64,
        requested_ng: i64,
        conc: u32,
        duration_ms: i64,
        kind: BolusKind,
    ) -> Self {
        let total = i128::from(volume_nl) * i128::from(MS_PER_DAY);
        let rate = div_ceil(total, i128::from(duration_ms));
        let len = div_ceil(total, rate);
        Bolus {
            id,
            start_ms,
            end_ms: start_ms + len as i64,
            volume_nl,
            requested_ng,
            dose_pg: volume_nl.saturating_mul(i64::from(conc)),
            rate_nl_per_day: rate as i64,
            duration_ms,
            started: false,
            kind,
        }
    }

    /// Volume (nL, floor) it has added to the accumulator by `t`.
    pub fn delivered_nl_by(&self, t: i64) -> i64 {
        if t <= self.start_ms {
            return 0;
        }
        let gain = (i128::from(self.rate_nl_per_day) * i128::from(t - self.start_ms))
            .min(i128::from(self.volume_nl) * i128::from(MS_PER_DAY));
        (gain / i128::from(MS_PER_DAY)) as i64
    }

    /// Accumulator increment of the millisecond `[t, t + 1)` (nL·ms/day).
    pub fn increment_at(&self, t: i64) -> i64 {
        if t < self.start_ms || t >= self.end_ms {
            0
        } else if t < self.end_ms - 1 {
            self.rate_nl_per_day
        } else {
            self.volume_nl * MS_PER_DAY - self.rate_nl_per_day * (self.end_ms - 1 - self.start_ms)
        }
    }

    /// Next time after `t` at which the increment may change (`i64::MAX` if never).
    pub fn next_change_after(&self, t: i64) -> i64 {
        if t < self.start_ms {
            self.start_ms
        } else if t < self.end_ms - 1 {
            self.end_ms - 1
        } else if t < self.end_ms {
            self.end_ms
        } else {
            i64::MAX
        }
    }
}
