//! Snapshot format version 1 (before field report 5 and 3/4): events had no sequence number,
//! boluses kept only the dose asked for, and the event kinds had no `bolus_adjusted`.
//! [`migrate`] turns a version-1 payload into today's state:
//! - every event still pending gets `seq = 0` (numbered when returned) and the pump's counter
//!   starts at 1;
//! - a bolus's `requested_ng` is its old `dose_ng`; its `dose_pg` is its volume × the reservoir
//!   concentration at migration — what it will really deliver, since version 1 never re-derived a
//!   volume; its programmed `duration_ms` (not stored in version 1) is taken as `end − start`,
//!   the time it runs.

use serde::Deserialize;

use crate::battery::ActiveAlarm;
use crate::delivery::bolus::{Bolus, BolusKind};
use crate::delivery::path::FluidPath;
use crate::delivery::program::{Basal, Schedule};
use crate::error::{ItbError, Result};
use crate::events::{Event, EventKind, Value};
use crate::model::PumpModel;
use crate::pump::patient::PatientBolusLimits;
use crate::snapshot::wire::PumpV2;

/// Version 1's event kinds, in their encoded order.
#[derive(Deserialize, Clone, Copy)]
enum KindV1 {
    StrokeBatch,
    ProgramChanged,
    BolusStarted,
    BolusCompleted,
    BolusCancelled,
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
}

impl From<KindV1> for EventKind {
    fn from(k: KindV1) -> Self {
        match k {
            KindV1::StrokeBatch => EventKind::StrokeBatch,
            KindV1::ProgramChanged => EventKind::ProgramChanged,
            KindV1::BolusStarted => EventKind::BolusStarted,
            KindV1::BolusCompleted => EventKind::BolusCompleted,
            KindV1::BolusCancelled => EventKind::BolusCancelled,
            KindV1::PatientBolusGranted => EventKind::PatientBolusGranted,
            KindV1::PatientBolusDenied => EventKind::PatientBolusDenied,
            KindV1::LowReservoir => EventKind::LowReservoir,
            KindV1::ReservoirEmpty => EventKind::ReservoirEmpty,
            KindV1::Refilled => EventKind::Refilled,
            KindV1::RefillDiscrepancy => EventKind::RefillDiscrepancy,
            KindV1::ConcentrationChanged => EventKind::ConcentrationChanged,
            KindV1::DrugAtTip => EventKind::DrugAtTip,
            KindV1::Eri => EventKind::Eri,
            KindV1::Eos => EventKind::Eos,
            KindV1::Suspended => EventKind::Suspended,
            KindV1::Resumed => EventKind::Resumed,
            KindV1::Fault => EventKind::Fault,
            KindV1::FaultCleared => EventKind::FaultCleared,
            KindV1::TelemetrySession => EventKind::TelemetrySession,
        }
    }
}

#[derive(Deserialize)]
struct EventV1 {
    time_ms: i64,
    kind: KindV1,
    data: Vec<(String, Value)>,
}

#[derive(Deserialize)]
struct BolusV1 {
    id: u64,
    start_ms: i64,
    end_ms: i64,
    volume_nl: i64,
    dose_ng: i64,
    rate_nl_per_day: i64,
    started: bool,
    kind: BolusKind,
}

/// Version 1's pump, field for field in its encoded order.
#[derive(Deserialize)]
struct PumpV1 {
    model: PumpModel,
    now_ms: i64,
    conc: u32,
    basal: Basal,
    schedule: Schedule,
    acc: i128,
    strokes: i64,
    reservoir_nl: i64,
    catheter_nl: i64,
    stroke_error_ppm: i64,
    true_reservoir_fl: i64,
    path: FluidPath,
    tip_conc: u32,
    filled_fl: i64,
    filled_ag: i128,
    withdrawn_fl: i64,
    withdrawn_ag: i128,
    delivered_fl: i64,
    delivered_ag: i128,
    low_armed: bool,
    empty: bool,
    suspended: bool,
    stalled: bool,
    patient_limits: Option<PatientBolusLimits>,
    patient_grants: Vec<i64>,
    used_pc: i64,
    eri: bool,
    eos: bool,
    alarms: Vec<ActiveAlarm>,
    boluses: Vec<BolusV1>,
    next_bolus_id: u64,
    pending: Vec<EventV1>,
}

/// Decode a version-1 payload and bring it to today's state (see the module docs).
pub(crate) fn migrate(payload: &[u8]) -> Result<PumpV2> {
    let (old, rest): (PumpV1, &[u8]) = postcard::take_from_bytes(payload)
        .map_err(|e| ItbError::snapshot(format!("cannot decode version 1: {e}")))?;
    if !rest.is_empty() {
        return Err(ItbError::snapshot(
            "trailing bytes after the version-1 pump state",
        ));
    }
    let conc = old.conc;
    let boluses = old
        .boluses
        .into_iter()
        .map(|b| Bolus {
            id: b.id,
            start_ms: b.start_ms,
            end_ms: b.end_ms,
            volume_nl: b.volume_nl,
            requested_ng: b.dose_ng,
            dose_pg: b.volume_nl.saturating_mul(i64::from(conc)),
            rate_nl_per_day: b.rate_nl_per_day,
            duration_ms: b.end_ms - b.start_ms,
            started: b.started,
            kind: b.kind,
        })
        .collect();
    let pending = old
        .pending
        .into_iter()
        .map(|e| Event {
            time_ms: e.time_ms,
            kind: e.kind.into(),
            data: e.data.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            seq: 0,
        })
        .collect();
    Ok(PumpV2 {
        model: old.model,
        now_ms: old.now_ms,
        conc,
        basal: old.basal,
        schedule: old.schedule,
        acc: old.acc,
        strokes: old.strokes,
        reservoir_nl: old.reservoir_nl,
        catheter_nl: old.catheter_nl,
        stroke_error_ppm: old.stroke_error_ppm,
        true_reservoir_fl: old.true_reservoir_fl,
        path: old.path,
        tip_conc: old.tip_conc,
        filled_fl: old.filled_fl,
        filled_ag: old.filled_ag,
        withdrawn_fl: old.withdrawn_fl,
        withdrawn_ag: old.withdrawn_ag,
        delivered_fl: old.delivered_fl,
        delivered_ag: old.delivered_ag,
        low_armed: old.low_armed,
        empty: old.empty,
        suspended: old.suspended,
        stalled: old.stalled,
        patient_limits: old.patient_limits,
        patient_grants: old.patient_grants,
        used_pc: old.used_pc,
        eri: old.eri,
        eos: old.eos,
        alarms: old.alarms,
        boluses,
        next_bolus_id: old.next_bolus_id,
        pending,
        next_seq: 1,
    })
}
