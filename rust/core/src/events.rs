//! Events a pump emits, ordered by time and then by the fixed kind order below.

use serde::{Deserialize, Serialize};

/// Event kinds, declared in their fixed order for events at the same millisecond — the
/// order of DESIGN.md's event list: the strokes of a millisecond come first, then what
/// they caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    StrokeBatch,
    ProgramChanged,
    BolusStarted,
    BolusCompleted,
    BolusCancelled,
    LowReservoir,
    ReservoirEmpty,
    Refilled,
    ConcentrationChanged,
}

/// Alarm severity (only alarms carry one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    NonCritical,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::NonCritical => "non_critical",
            Severity::Critical => "critical",
        }
    }
}

impl EventKind {
    /// Every kind, in order.
    pub const ALL: [EventKind; 9] = [
        EventKind::StrokeBatch,
        EventKind::ProgramChanged,
        EventKind::BolusStarted,
        EventKind::BolusCompleted,
        EventKind::BolusCancelled,
        EventKind::LowReservoir,
        EventKind::ReservoirEmpty,
        EventKind::Refilled,
        EventKind::ConcentrationChanged,
    ];

    /// The snake_case name seen by users.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::StrokeBatch => "stroke_batch",
            EventKind::ProgramChanged => "program_changed",
            EventKind::ConcentrationChanged => "concentration_changed",
            EventKind::Refilled => "refilled",
            EventKind::BolusCancelled => "bolus_cancelled",
            EventKind::BolusCompleted => "bolus_completed",
            EventKind::BolusStarted => "bolus_started",
            EventKind::LowReservoir => "low_reservoir",
            EventKind::ReservoirEmpty => "reservoir_empty",
        }
    }

    /// Severity of alarm kinds; `None` for informational events.
    pub fn severity(self) -> Option<Severity> {
        match self {
            EventKind::LowReservoir => Some(Severity::NonCritical),
            EventKind::ReservoirEmpty => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// One event: when, what, and integer data fields (units in the field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub time_ms: i64,
    pub kind: EventKind,
    pub data: Vec<(String, i64)>,
}

impl Event {
    pub fn new(time_ms: i64, kind: EventKind, data: &[(&str, i64)]) -> Self {
        Event { time_ms, kind, data: data.iter().map(|(k, v)| (k.to_string(), *v)).collect() }
    }
    pub fn severity(&self) -> Option<Severity> {
        self.kind.severity()
    }
    /// Value of a data field.
    pub fn get(&self, key: &str) -> Option<i64> {
        self.data.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// Sort events by time, then kind order, keeping emission order among equals.
pub fn sort_events(events: &mut [Event]) {
    events.sort_by_key(|e| (e.time_ms, e.kind));
}
