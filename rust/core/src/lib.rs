//! # itb-core
//!
//! Exact, integer delivery model of an intrathecal baclofen (ITB) pump: programs, boluses,
//! strokes, reservoir, fluid path, events, closed-form projection and snapshots.
//! A simulation and test oracle for engineers — **not a medical device**.
//!
//! Modules: `delivery/` (program, boluses, strokes, reservoir, fluid path), `pump/` (the pump
//! and the methods that orchestrate it: therapy, refill, projection, patient limits), `snapshot/`
//! (format versions and migration); vocabulary at the top (units, error, events, model, battery).
//!
//! Everything returns [`Result`]; nothing panics on any input.

pub mod batch;
pub mod battery;
pub mod delivery;
pub mod error;
pub mod events;
pub mod limits;
pub mod model;
pub mod pump;
pub mod snapshot;
pub mod units;

// The parts' former top-level paths (`itb_core::program`, `itb_core::refill`, ...) stay public.
pub use delivery::{bolus, path, program, reservoir};
pub use pump::{patient, projection, refill, therapy};

pub use batch::{
    forecast_columns, project_many, simulate_columns, simulate_many, BatchResult, FleetColumns,
    ForecastColumns, ProjectionMode,
};
pub use battery::{ActiveAlarm, Alarm, BatteryModel};
pub use delivery::bolus::{Bolus, BolusKind};
pub use delivery::program::{Basal, Period, Schedule, Step};
pub use error::{ItbError, Result};
pub use events::{Event, EventKind, Severity, Value};
pub use model::PumpModel;
pub use pump::projection::Projection;
pub use pump::reading::{alarm_from_name, Reading};
pub use pump::refill::{RefillOutcome, RefillTolerance};
pub use pump::therapy::{BolusPlan, PatientBolusLimits, PatientBolusOutcome};
pub use pump::{Pump, PumpConfig};
