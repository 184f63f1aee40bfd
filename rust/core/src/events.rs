//! Events a pump emits, in causal order.
//!
//! Order (DESIGN.md, field report 5): by time; at the same millisecond, calls come in call
//! order, each followed by what it caused; the fixed kind order below only breaks ties among
//! things that happen together inside the simulation (a stroke and the alarm it raises).
//! Every returned event carries a sequence number, strictly increasing over the pump's life.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Event kinds, declared in their fixed order — the order of DESIGN.md's event list — which
/// breaks ties between events of the same millisecond raised together by the simulation:
/// the strokes of a millisecond come first, then what they caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    StrokeBatch,
    ProgramChanged,
    BolusStarted,
    BolusCompleted,
    BolusCancelled,
    BolusAdjusted,
    PatientBolusGranted,
    PatientBolusDenied,
    LowReservoir,
    ReservoirEmpty,
    Refilled,
    RefillDiscrepancy,
    ConcentrationChanged,
    DrugAtTip,
    Eri,
    Eos,
    Suspended,
    Resumed,
    Fault,
    FaultCleared,
    TelemetrySession,
    PathReplaced,
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
    pub const ALL: [EventKind; 22] = [
        EventKind::StrokeBatch,
        EventKind::ProgramChanged,
        EventKind::BolusStarted,
        EventKind::BolusCompleted,
        EventKind::BolusCancelled,
        EventKind::BolusAdjusted,
        EventKind::PatientBolusGranted,
        EventKind::PatientBolusDenied,
        EventKind::LowReservoir,
        EventKind::ReservoirEmpty,
        EventKind::Refilled,
        EventKind::RefillDiscrepancy,
        EventKind::ConcentrationChanged,
        EventKind::DrugAtTip,
        EventKind::Eri,
        EventKind::Eos,
        EventKind::Suspended,
        EventKind::Resumed,
        EventKind::Fault,
        EventKind::FaultCleared,
        EventKind::TelemetrySession,
        EventKind::PathReplaced,
    ];

    /// The snake_case name seen by users.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::StrokeBatch => "stroke_batch",
            EventKind::ProgramChanged => "program_changed",
            EventKind::BolusStarted => "bolus_started",
            EventKind::BolusCompleted => "bolus_completed",
            EventKind::BolusCancelled => "bolus_cancelled",
            EventKind::BolusAdjusted => "bolus_adjusted",
            EventKind::PatientBolusGranted => "patient_bolus_granted",
            EventKind::PatientBolusDenied => "patient_bolus_denied",
            EventKind::LowReservoir => "low_reservoir",
            EventKind::ReservoirEmpty => "reservoir_empty",
            EventKind::Refilled => "refilled",
            EventKind::RefillDiscrepancy => "refill_discrepancy",
            EventKind::ConcentrationChanged => "concentration_changed",
            EventKind::DrugAtTip => "drug_at_tip",
            EventKind::Suspended => "suspended",
            EventKind::Resumed => "resumed",
            EventKind::Fault => "fault",
            EventKind::FaultCleared => "fault_cleared",
            EventKind::Eri => "eri",
            EventKind::Eos => "eos",
            EventKind::TelemetrySession => "telemetry_session",
            EventKind::PathReplaced => "path_replaced",
        }
    }

    /// Severity of alarm kinds; `None` for informational events.
    pub fn severity(self) -> Option<Severity> {
        match self {
            EventKind::LowReservoir | EventKind::RefillDiscrepancy | EventKind::Eri => {
                Some(Severity::NonCritical)
            }
            EventKind::ReservoirEmpty | EventKind::Fault | EventKind::Eos => {
                Some(Severity::Critical)
            }
            _ => None,
        }
    }
}

/// A data field's value: an integer (unit in the field name) or a short text (a reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Int(i64),
    /// Text (a `&'static str` name in every event the core builds: no allocation).
    Text(Cow<'static, str>),
}

/// One event: when, what, its data fields (units in the field names) and its sequence
/// number (`seq`, assigned when the event is returned by an advance: 1, 2, 3, … over the
/// pump's life; 0 while it is still pending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub time_ms: i64,
    pub kind: EventKind,
    /// `(key, value)` fields; the keys the core writes are static names (no allocation).
    pub data: Vec<(Cow<'static, str>, Value)>,
    pub seq: u64,
}

impl Event {
    pub fn new(time_ms: i64, kind: EventKind, data: &[(&'static str, i64)]) -> Self {
        // one allocation: room for the integer fields and the text fields events add
        let mut fields = Vec::with_capacity(data.len() + 2);
        fields.extend(data.iter().map(|&(k, v)| (Cow::Borrowed(k), Value::Int(v))));
        Event {
            time_ms,
            kind,
            data: fields,
            seq: 0,
        }
    }
    /// Add a text field (builder style).
    pub fn with_text(mut self, key: &'static str, text: &'static str) -> Self {
        self.data
            .push((Cow::Borrowed(key), Value::Text(Cow::Borrowed(text))));
        self
    }
    pub fn severity(&self) -> Option<Severity> {
        self.kind.severity()
    }
    /// Value of an integer data field.
    pub fn get(&self, key: &str) -> Option<i64> {
        self.data.iter().find_map(|(k, v)| match v {
            Value::Int(i) if k == key => Some(*i),
            _ => None,
        })
    }
    /// Value of a text data field.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.data.iter().find_map(|(k, v)| match v {
            Value::Text(t) if k == key => Some(t.as_ref()),
            _ => None,
        })
    }
}

/// Sort events raised together inside the simulation by time, then kind order, keeping
/// emission order among equals. Never applied to events stamped by calls (they keep call order).
pub fn sort_simulation_events(events: &mut [Event]) {
    events.sort_by_key(|e| (e.time_ms, e.kind));
}
