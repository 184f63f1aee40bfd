//! # itb-core
//!
//! Exact, integer delivery model of an intrathecal baclofen (ITB) pump: programs, boluses,
//! strokes, reservoir, fluid path, events, closed-form projection and snapshots.
//! A simulation and test oracle for engineers — **not a medical device**.
//!
//! Everything returns [`Result`]; nothing panics on any input.

pub mod batch;
pub mod battery;
pub mod bolus;
pub mod delivery;
pub mod error;
pub mod events;
pub mod model;
pub mod path;
pub mod patient;
pub mod program;
pub mod projection;
pub mod pump;
pub mod reading;
pub mod refill;
pub mod reservoir;
pub mod snapshot;
mod snapshot_v1;
mod snapshot_wire;
mod spans;
mod stroke_times;
pub mod therapy;
pub mod units;

pub use batch::{
    forecast_columns, simulate_columns, simulate_many, BatchResult, FleetColumns, ForecastColumns,
};
pub use battery::{ActiveAlarm, Alarm, BatteryModel};
pub use bolus::{Bolus, BolusKind};
pub use error::{ItbError, Result};
pub use events::{Event, EventKind, Severity, Value};
pub use model::PumpModel;
pub use program::{Basal, Period, Schedule, Step};
pub use projection::Projection;
pub use pump::{Pump, PumpConfig};
pub use reading::{alarm_from_name, Reading};
pub use refill::{RefillOutcome, RefillTolerance};
pub use therapy::{BolusPlan, PatientBolusLimits, PatientBolusOutcome};
