//! Fault injection on a pump: occlusion, leak / disconnection, tip migration, battery fault
//! (and pocket fill at a refill, in `pump::refill`); each with its clearing. The physics and
//! the ledgers are in `delivery::faults` and docs: guide/faults.md. Every call stamps a
//! `fault` / `fault_cleared` event naming the fault; a rejected call changes nothing.

use crate::battery::Alarm;
use crate::delivery::cancelled_event;
use crate::delivery::faults::{Leak, LeakKind, PPM};
use crate::delivery::path::FL_PER_NL;
use crate::delivery::program::Basal;
use crate::error::{ItbError, Result};
use crate::events::{Event, EventKind};
use crate::pump::Pump;

impl Pump {
    fn fault_event(&mut self, kind: EventKind, fault: &'static str, data: &[(&'static str, i64)]) {
        self.pending
            .push(Event::new(self.now_ms, kind, data).with_text("fault", fault));
    }

    /// A catheter occlusion letting `pass_ppm` of the flow through (0 = complete, up to
    /// 999 999). Strokes are still counted (the pump does not sense it); what does not pass
    /// stays in the reservoir (held back), so a refill aspirates more than expected.
    pub fn inject_occlusion(&mut self, pass_ppm: i64) -> Result<()> {
        if !(0..PPM).contains(&pass_ppm) {
            return Err(ItbError::validation(
                "pass_pct",
                format!(
                    "{} % is outside the allowed range 0 % (complete) to 99.9999 %",
                    pass_ppm as f64 / 1e4
                ),
            ));
        }
        if self.faults.occlusion_pass_ppm.is_some() {
            return Err(ItbError::validation(
                "inject_occlusion",
                "an occlusion is already active (clear it first)",
            ));
        }
        self.faults.occlusion_pass_ppm = Some(pass_ppm);
        self.faults.occlusion_rem = 0;
        self.fault_event(EventKind::Fault, "occlusion", &[("pass_ppm", pass_ppm)]);
        Ok(())
    }

    /// Clear the occlusion (e.g. the catheter cleared or revised): flow passes fully from now.
    pub fn clear_occlusion(&mut self) -> Result<()> {
        if self.faults.occlusion_pass_ppm.take().is_none() {
            return Err(ItbError::validation(
                "clear_occlusion",
                "no occlusion is active",
            ));
        }
        self.faults.occlusion_rem = 0;
        self.fault_event(EventKind::FaultCleared, "occlusion", &[]);
        Ok(())
    }

    /// A leak (`disconnection = false`) or disconnection at `position_nl` of catheter volume
    /// from the pump connector (0 ..= the catheter's volume): from now on everything that
    /// reaches the site goes into tissue, and the catheter beyond it is stagnant.
    pub fn inject_leak(&mut self, position_nl: i64, disconnection: bool) -> Result<()> {
        if !(0..=self.line.catheter_nl).contains(&position_nl) {
            return Err(ItbError::validation(
                "position_ul",
                format!(
                    "{} µL is outside the catheter (0 to {} µL from the pump connector)",
                    position_nl as f64 / 1000.0,
                    self.line.catheter_nl as f64 / 1000.0
                ),
            ));
        }
        if self.faults.leak.is_some() {
            return Err(ItbError::validation(
                "inject_leak",
                "a leak or disconnection is already active (clear it first)",
            ));
        }
        let kind = if disconnection {
            LeakKind::Disconnection
        } else {
            LeakKind::Leak
        };
        let downstream = self
            .line
            .fluid
            .split_front((self.line.catheter_nl - position_nl) * FL_PER_NL);
        self.faults.leak = Some(Leak {
            kind,
            position_nl,
            downstream,
        });
        self.fault_event(
            EventKind::Fault,
            kind.name(),
            &[("position_nl", position_nl)],
        );
        Ok(())
    }

    /// Repair the leak or disconnection: the stagnant segment rejoins the path (its contents
    /// are pushed on by the next strokes).
    pub fn clear_leak(&mut self) -> Result<()> {
        let Some(leak) = self.faults.leak.take() else {
            return Err(ItbError::validation(
                "clear_leak",
                "no leak or disconnection is active",
            ));
        };
        self.line.fluid.join_front(leak.downstream);
        self.fault_event(
            EventKind::FaultCleared,
            leak.kind.name(),
            &[("position_nl", leak.position_nl)],
        );
        Ok(())
    }

    /// The catheter tip migrates out of the intrathecal space: what leaves the tip goes into
    /// tissue from now on.
    pub fn inject_tip_migration(&mut self) -> Result<()> {
        if self.faults.tip_migrated {
            return Err(ItbError::validation(
                "inject_tip_migration",
                "the tip has already migrated",
            ));
        }
        self.faults.tip_migrated = true;
        self.fault_event(EventKind::Fault, "tip_migration", &[]);
        Ok(())
    }

    /// The tip is repositioned in the intrathecal space.
    pub fn clear_tip_migration(&mut self) -> Result<()> {
        if !self.faults.tip_migrated {
            return Err(ItbError::validation(
                "clear_tip_migration",
                "the tip has not migrated",
            ));
        }
        self.faults.tip_migrated = false;
        self.fault_event(EventKind::FaultCleared, "tip_migration", &[]);
        Ok(())
    }

    /// A battery fault: the pump resets its program to the model's minimum rate (a
    /// continuous dose whose volume rate is the smallest at or above the minimum at the
    /// current concentration), scheduled and running boluses are lost, and a critical
    /// `battery_fault` alarm sounds until [`Pump::clear_battery_fault`]. The program stays at
    /// the minimum until it is reprogrammed.
    pub fn inject_battery_fault(&mut self) -> Result<()> {
        self.check_not_eos("inject_battery_fault")?;
        if self.faults.battery_fault {
            return Err(ItbError::validation(
                "inject_battery_fault",
                "a battery fault is already active",
            ));
        }
        let conc = i128::from(self.reservoir.conc);
        // Smallest ng/day whose rate (half-even of ng·1000/conc) is >= the minimum rate.
        let min_nl = i128::from(self.model.min_rate_nl_per_day);
        let ng = i64::try_from((min_nl * conc + 999) / 1000).map_err(|_| {
            ItbError::validation("inject_battery_fault", "the minimum rate is out of range")
        })?;
        let basal = Basal::Continuous { ng_per_day: ng };
        let schedule = basal.schedule(self.reservoir.conc, &self.model)?;
        let lost: Vec<Event> = self
            .delivery
            .boluses()
            .iter()
            .map(|b| cancelled_event(b, self.now_ms, "battery_fault"))
            .collect();
        self.faults.battery_fault = true;
        self.delivery.basal = basal;
        self.delivery.rederived(schedule, Vec::new());
        let rate = self.delivery.schedule().max_rate();
        self.fault_event(
            EventKind::Fault,
            "battery_fault",
            &[("rate_nl_per_day", rate), ("dose_ng_per_day", ng)],
        );
        self.pending.push(Event::new(
            self.now_ms,
            EventKind::ProgramChanged,
            &[("max_rate_nl_per_day", rate)],
        ));
        self.pending.extend(lost);
        self.raise(Alarm::BatteryFault);
        Ok(())
    }

    /// Acknowledge the battery fault (the alarm stops); the program stays at the minimum rate
    /// until reprogrammed.
    pub fn clear_battery_fault(&mut self) -> Result<()> {
        if !self.faults.battery_fault {
            return Err(ItbError::validation(
                "clear_battery_fault",
                "no battery fault is active",
            ));
        }
        self.faults.battery_fault = false;
        self.clear_alarms(|a| a == Alarm::BatteryFault);
        self.fault_event(EventKind::FaultCleared, "battery_fault", &[]);
        Ok(())
    }

    /// A new catheter clears the catheter faults (occlusion, leak, migration): stamps their
    /// `fault_cleared` and returns the whole path (the stagnant segment rejoined).
    pub(crate) fn clear_catheter_faults(&mut self) {
        if self.faults.leak.is_some() {
            let _ = self.clear_leak();
        }
        if self.faults.occlusion_pass_ppm.is_some() {
            let _ = self.clear_occlusion();
        }
        if self.faults.tip_migrated {
            let _ = self.clear_tip_migration();
        }
    }
}
