//! The pump's state as snapshots encode it. Format version 2: one flat record, field for
//! field in the order of the pump before it was split into parts, so that `postcard` writes
//! the same bytes. Format version 3 = the version-2 record followed by the faults and truth
//! ledgers ([`Faults`]); a version-2 payload migrates by appending no faults and zero
//! ledgers. `Pump`'s `Serialize`/`Deserialize` go through here; the
//! parts are free to change shape in memory as long as these records stay as they are.
//! Decoding checks the state's invariants before the pump exists (see [`PumpV2::into_checked_pump`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::battery::{ActiveAlarm, Battery};
use crate::delivery::bolus::Bolus;
use crate::delivery::faults::Faults;
use crate::delivery::path::{FluidLine, FluidPath};
use crate::delivery::program::{Basal, Schedule};
use crate::delivery::reservoir::Reservoir;
use crate::delivery::Delivery;
use crate::error::{ItbError, Result};
use crate::events::Event;
use crate::model::PumpModel;
use crate::pump::patient::{PatientBolusLimits, PatientBoluses};
use crate::pump::Pump;

/// Version 2's pump, borrowed for writing (field order is the format).
#[derive(Serialize)]
struct PumpV2Ref<'a> {
    model: &'a PumpModel,
    now_ms: i64,
    conc: u32,
    basal: &'a Basal,
    schedule: &'a Schedule,
    acc: i128,
    strokes: i64,
    reservoir_nl: i64,
    catheter_nl: i64,
    stroke_error_ppm: i64,
    true_reservoir_fl: i64,
    path: &'a FluidPath,
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
    patient_limits: &'a Option<PatientBolusLimits>,
    patient_grants: &'a [i64],
    used_pc: i64,
    eri: bool,
    eos: bool,
    alarms: &'a [ActiveAlarm],
    boluses: &'a [Bolus],
    next_bolus_id: u64,
    pending: &'a [Event],
    next_seq: u64,
}

/// Version 2's pump, owned for reading (same fields, same order as [`PumpV2Ref`]).
#[derive(Deserialize)]
pub(crate) struct PumpV2 {
    pub(crate) model: PumpModel,
    pub(crate) now_ms: i64,
    pub(crate) conc: u32,
    pub(crate) basal: Basal,
    pub(crate) schedule: Schedule,
    pub(crate) acc: i128,
    pub(crate) strokes: i64,
    pub(crate) reservoir_nl: i64,
    pub(crate) catheter_nl: i64,
    pub(crate) stroke_error_ppm: i64,
    pub(crate) true_reservoir_fl: i64,
    pub(crate) path: FluidPath,
    pub(crate) tip_conc: u32,
    pub(crate) filled_fl: i64,
    pub(crate) filled_ag: i128,
    pub(crate) withdrawn_fl: i64,
    pub(crate) withdrawn_ag: i128,
    pub(crate) delivered_fl: i64,
    pub(crate) delivered_ag: i128,
    pub(crate) low_armed: bool,
    pub(crate) empty: bool,
    pub(crate) suspended: bool,
    pub(crate) stalled: bool,
    pub(crate) patient_limits: Option<PatientBolusLimits>,
    pub(crate) patient_grants: Vec<i64>,
    pub(crate) used_pc: i64,
    pub(crate) eri: bool,
    pub(crate) eos: bool,
    pub(crate) alarms: Vec<ActiveAlarm>,
    pub(crate) boluses: Vec<Bolus>,
    pub(crate) next_bolus_id: u64,
    pub(crate) pending: Vec<Event>,
    pub(crate) next_seq: u64,
}

impl PumpV2 {
    /// The pump this record describes, once its invariants are checked; the derived tables
    /// are built only then (so they never see a state out of range).
    pub(crate) fn into_checked_pump(self, faults: Faults) -> Result<Pump> {
        let mut pump = self.into_pump();
        pump.faults = faults;
        pump.check_invariants()
            .map_err(|e| ItbError::snapshot(format!("inconsistent state: {e}")))?;
        pump.delivery.rebuild_tables();
        Ok(pump)
    }

    /// The pump this record describes, unchecked and without its derived tables.
    fn into_pump(self) -> Pump {
        let mut delivery = Delivery::new(self.basal, self.schedule);
        delivery.acc = self.acc;
        delivery.strokes = self.strokes;
        delivery.next_bolus_id = self.next_bolus_id;
        delivery.restore_boluses(self.boluses);
        Pump {
            model: self.model,
            now_ms: self.now_ms,
            delivery,
            reservoir: Reservoir {
                conc: self.conc,
                count_nl: self.reservoir_nl,
                stroke_error_ppm: self.stroke_error_ppm,
                true_fl: self.true_reservoir_fl,
                filled_fl: self.filled_fl,
                filled_ag: self.filled_ag,
                withdrawn_fl: self.withdrawn_fl,
                withdrawn_ag: self.withdrawn_ag,
                delivered_fl: self.delivered_fl,
                delivered_ag: self.delivered_ag,
                low_armed: self.low_armed,
                empty: self.empty,
            },
            line: FluidLine {
                catheter_nl: self.catheter_nl,
                fluid: self.path,
                tip_conc: self.tip_conc,
            },
            battery: Battery {
                used_pc: self.used_pc,
                eri: self.eri,
                eos: self.eos,
                alarms: self.alarms,
            },
            patient: PatientBoluses {
                limits: self.patient_limits,
                grants: self.patient_grants,
            },
            suspended: self.suspended,
            stalled: self.stalled,
            faults: Faults::default(),
            pending: self.pending,
            next_seq: self.next_seq,
        }
    }
}

impl Serialize for Pump {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let (d, r, l, b, p) = (
            &self.delivery,
            &self.reservoir,
            &self.line,
            &self.battery,
            &self.patient,
        );
        let v2 = PumpV2Ref {
            model: &self.model,
            now_ms: self.now_ms,
            conc: r.conc,
            basal: &d.basal,
            schedule: d.schedule(),
            acc: d.acc,
            strokes: d.strokes,
            reservoir_nl: r.count_nl,
            catheter_nl: l.catheter_nl,
            stroke_error_ppm: r.stroke_error_ppm,
            true_reservoir_fl: r.true_fl,
            path: &l.fluid,
            tip_conc: l.tip_conc,
            filled_fl: r.filled_fl,
            filled_ag: r.filled_ag,
            withdrawn_fl: r.withdrawn_fl,
            withdrawn_ag: r.withdrawn_ag,
            delivered_fl: r.delivered_fl,
            delivered_ag: r.delivered_ag,
            low_armed: r.low_armed,
            empty: r.empty,
            suspended: self.suspended,
            stalled: self.stalled,
            patient_limits: &p.limits,
            patient_grants: &p.grants,
            used_pc: b.used_pc,
            eri: b.eri,
            eos: b.eos,
            alarms: &b.alarms,
            boluses: d.boluses(),
            next_bolus_id: d.next_bolus_id,
            pending: &self.pending,
            next_seq: self.next_seq,
        };
        (v2, &self.faults).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Pump {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (v2, faults) = <(PumpV2, Faults)>::deserialize(deserializer)?;
        v2.into_checked_pump(faults)
            .map_err(serde::de::Error::custom)
    }
}
