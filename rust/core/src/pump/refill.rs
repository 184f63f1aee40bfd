//! Refills: aspirate what is left, compare it with what the pump's accounting expected,
//! flag a discrepancy beyond tolerance, fill, and set the concentration.

use crate::battery::Alarm;
use crate::delivery::bolus::{Bolus, BolusKind};
use crate::delivery::path::FL_PER_NL;
use crate::delivery::{cancelled_event, check_total_rate};
use crate::error::{check_range, ItbError, Result};
use crate::events::{Event, EventKind};
use crate::pump::Pump;
use crate::units::{check_concentration, volume_nl_of_dose, MAX_TIME_MS};

/// When a refill discrepancy is flagged: |aspirated − expected| > max(abs, ppm × expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillTolerance {
    pub abs_nl: i64,
    pub ppm: i64,
}

impl Default for RefillTolerance {
    /// max(1.0 mL, 20 %).
    fn default() -> Self {
        RefillTolerance {
            abs_nl: 1_000_000,
            ppm: 200_000,
        }
    }
}

impl RefillTolerance {
    fn validate(&self) -> Result<()> {
        check_range("tolerance_ml", self.abs_nl, 0, 1_000_000_000, "nL")?;
        check_range("tolerance_pct", self.ppm, 0, 1_000_000, "ppm")?;
        Ok(())
    }
}

/// Result of a refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillOutcome {
    /// What the pump's accounting expected in the reservoir (nL).
    pub expected_nl: i64,
    /// What was aspirated (nL).
    pub aspirated_nl: i64,
    /// Beyond tolerance?
    pub flagged: bool,
    /// Why it is flagged (None if not).
    pub reason: Option<&'static str>,
}

impl RefillOutcome {
    fn assess(expected: i64, aspirated: i64, tol: RefillTolerance) -> Self {
        let diff = i128::from(aspirated) - i128::from(expected);
        let limit =
            i128::from(tol.abs_nl).max(i128::from(expected) * i128::from(tol.ppm) / 1_000_000);
        let flagged = diff.abs() > limit;
        let reason = flagged.then_some(if diff < 0 {
            "aspirated less than expected: possible over-delivery or leak"
        } else {
            "aspirated more than expected: possible under-delivery or occlusion"
        });
        RefillOutcome {
            expected_nl: expected,
            aspirated_nl: aspirated,
            flagged,
            reason,
        }
    }
}

impl Pump {
    /// Refill: aspirate `aspirated_nl` (None = everything physically there), fill
    /// `added_nl` at `concentration`. Rejected calls change nothing.
    pub fn refill(
        &mut self,
        added_nl: i64,
        concentration: i64,
        aspirated_nl: Option<i64>,
        tolerance: RefillTolerance,
    ) -> Result<RefillOutcome> {
        self.refill_with_pocket_fill(added_nl, concentration, aspirated_nl, tolerance, 0)
    }

    /// A refill of which `pocket_nl` (0 ..= `added_nl`) is injected into the subcutaneous
    /// pocket instead of the reservoir (a pocket fill): the firmware is told `added_nl` was
    /// filled, the reservoir physically gets `added_nl − pocket_nl`, and the pocket's drug is
    /// an immediate tissue dose (the overdose case). Stamps a `fault` event
    /// (`fault = "pocket_fill"`, `pocket_nl`, `pocket_pg`) after `refilled`.
    pub fn refill_with_pocket_fill(
        &mut self,
        added_nl: i64,
        concentration: i64,
        aspirated_nl: Option<i64>,
        tolerance: RefillTolerance,
        pocket_nl: i64,
    ) -> Result<RefillOutcome> {
        tolerance.validate()?;
        if pocket_nl < 0 || pocket_nl > added_nl.max(0) {
            return Err(ItbError::validation(
                "pocket_ml",
                format!(
                    "{} mL is outside the allowed range 0 mL to the added {} mL",
                    pocket_nl as f64 / 1e6,
                    added_nl.max(0) as f64 / 1e6
                ),
            ));
        }
        let conc = check_concentration("concentration_ug_per_ml", concentration)?;
        if added_nl < 0 {
            return Err(ItbError::validation("added_ml", "must be >= 0"));
        }
        if added_nl > self.model.reservoir_nl {
            return Err(super::overfill(
                "added_ml",
                &crate::units::ml(added_nl),
                self.model.reservoir_nl,
            ));
        }
        let expected = self.reservoir.count_nl;
        let physical_nl = self.reservoir.true_fl / FL_PER_NL;
        let aspirated = aspirated_nl.unwrap_or(physical_nl);
        if aspirated < 0 || (aspirated_nl.is_some() && aspirated > self.model.reservoir_nl) {
            // More than the reservoir holds cannot come out of it (docs: decisions/delivery.md).
            return Err(ItbError::validation(
                "aspirated_ml",
                format!(
                    "{} is outside the allowed range 0 to {} (the reservoir's capacity)",
                    crate::units::ml(aspirated),
                    crate::units::ml(self.model.reservoir_nl),
                ),
            ));
        }
        // Errors name this call's argument that makes the program impossible (the message
        // says which step).
        let schedule = self
            .delivery
            .basal
            .schedule(conc, &self.model)
            .map_err(|e| e.in_field("concentration_ug_per_ml"))?;
        let (boluses, bolus_events) = if conc == self.reservoir.conc {
            (self.delivery.boluses().to_vec(), Vec::new())
        } else {
            self.rederive_boluses(conc)
        };
        check_total_rate(
            &self.model,
            &schedule,
            &boluses,
            self.now_ms,
            "concentration_ug_per_ml",
        )?;
        // The lifetime ledgers (fL, i64) hold ~9.2e6 L: refuse the fill that would pass them
        // (found by fuzzing: ~9 223 refills of a 1 L reservoir) rather than overflow.
        let old_conc = self.reservoir.conc;
        if self.reservoir.refill(added_nl, conc).is_none() {
            return Err(ItbError::reservoir(
                "added_ml",
                "the pump's lifetime fill ledger would pass its range (about 9.2e6 L in total)",
            ));
        }
        self.delivery.rederived(schedule, boluses);
        self.clear_alarms(Alarm::cleared_by_refill);
        self.pending.push(Event::new(
            self.now_ms,
            EventKind::Refilled,
            &[
                ("added_nl", added_nl),
                ("aspirated_nl", aspirated),
                ("expected_nl", expected),
            ],
        ));
        if pocket_nl > 0 {
            // The pocket's share never reached the reservoir: it is in tissue at once.
            let fl = pocket_nl * FL_PER_NL;
            let ag = i128::from(fl) * i128::from(conc);
            self.reservoir.true_fl -= fl;
            self.faults.tissue_fl += fl;
            self.faults.tissue_ag += ag;
            self.pending.push(
                Event::new(
                    self.now_ms,
                    EventKind::Fault,
                    &[
                        ("pocket_nl", pocket_nl),
                        (
                            "pocket_pg",
                            i64::try_from(ag / 1_000_000).unwrap_or(i64::MAX),
                        ),
                    ],
                )
                .with_text("fault", "pocket_fill"),
            );
        }
        // Causal order: the refill, what its aspirate showed, the new concentration and what
        // it did to scheduled boluses, then the alarms of the new fill.
        let outcome = RefillOutcome::assess(expected, aspirated, tolerance);
        if let Some(reason) = outcome.reason {
            self.pending.push(
                Event::new(
                    self.now_ms,
                    EventKind::RefillDiscrepancy,
                    &[
                        ("expected_nl", expected),
                        ("aspirated_nl", aspirated),
                        ("discrepancy_nl", aspirated - expected),
                    ],
                )
                .with_text("reason", reason),
            );
        }
        if old_conc != conc {
            self.pending.push(Event::new(
                self.now_ms,
                EventKind::ConcentrationChanged,
                &[
                    ("from_ug_per_ml", i64::from(old_conc)),
                    ("to_ug_per_ml", i64::from(conc)),
                ],
            ));
            self.pending.extend(bolus_events);
        }
        self.check_fill_alarms();
        Ok(outcome)
    }

    /// The boluses after a change to `conc` µg/mL, and the events that tell the user.
    ///
    /// Doses are prescribed in µg, so no bolus may deliver a different µg amount without an
    /// event saying so (docs: decisions/field-reports.md#doses-are-prescribed-in-micrograms): a timed or patient bolus that has not started yet is
    /// re-derived from its requested dose at the new concentration (same start and programmed
    /// duration; `bolus_adjusted`); one that cannot be (it would round to 0 nL or exceed the
    /// reservoir), every bolus already running, and every bridge or priming bolus (planned
    /// from the path's contents at the old concentration) is cancelled (`bolus_cancelled`,
    /// reason `concentration_changed`).
    fn rederive_boluses(&self, conc: u32) -> (Vec<Bolus>, Vec<Event>) {
        let now = self.now_ms;
        let mut kept = Vec::with_capacity(self.delivery.boluses().len());
        let mut events = Vec::new();
        for b in self.delivery.boluses() {
            let rederivable =
                b.start_ms >= now && matches!(b.kind, BolusKind::Timed | BolusKind::Patient);
            let volume = volume_nl_of_dose(b.requested_ng, conc);
            let rebuilt = (rederivable && (1..=self.model.reservoir_nl).contains(&volume))
                .then(|| {
                    Bolus::new(
                        b.id,
                        b.start_ms,
                        volume,
                        b.requested_ng,
                        conc,
                        b.duration_ms,
                        b.kind,
                    )
                })
                .filter(|nb| nb.end_ms <= MAX_TIME_MS);
            match rebuilt {
                Some(mut nb) => {
                    nb.started = b.started;
                    events.push(
                        Event::new(
                            now,
                            EventKind::BolusAdjusted,
                            &[
                                ("bolus_id", b.id as i64),
                                ("from_volume_nl", b.volume_nl),
                                ("volume_nl", nb.volume_nl),
                                ("dose_pg", nb.dose_pg),
                                ("end_ms", nb.end_ms),
                            ],
                        )
                        .with_text("bolus_kind", b.kind.name())
                        .with_text("reason", "concentration_changed"),
                    );
                    kept.push(nb);
                }
                None => events.push(cancelled_event(b, now, "concentration_changed")),
            }
        }
        (kept, events)
    }
}
