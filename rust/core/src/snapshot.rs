//! Versioned, checksummed snapshots: `MAGIC | version u16 LE | crc32 u32 LE | postcard(Pump)`.
//! The same state always gives the same bytes; corrupt or foreign bytes give a clear error,
//! and a decoded state is re-validated before it is accepted. Version 1 bytes (before event
//! sequence numbers and bolus doses) are migrated on restore (`snapshot_v1`) and written back
//! as version 2.

use crate::error::{ItbError, Result};
use crate::bolus::Bolus;
use crate::path::FL_PER_NL;
use crate::pump::Pump;
use crate::units::{MAX_BOLUS_NG, MAX_CONCENTRATION, MAX_TIME_MS, MIN_TIME_MS, MS_PER_DAY};

const MAGIC: &[u8; 8] = b"ITBPUMP\0";
/// Current snapshot format version.
pub const SNAPSHOT_VERSION: u16 = 2;
const HEADER: usize = MAGIC.len() + 2 + 4;

impl Pump {
    /// Serialize the whole state.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let payload = postcard::to_allocvec(self).map_err(|e| ItbError::snapshot(format!("cannot encode: {e}")))?;
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Rebuild a pump from [`Pump::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Pump> {
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ItbError::snapshot("not an itb pump snapshot (bad magic)"));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != SNAPSHOT_VERSION && version != 1 {
            return Err(ItbError::snapshot(format!(
                "snapshot format version {version} is not supported (this build reads 1 and {SNAPSHOT_VERSION})"
            )));
        }
        let crc = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
        let payload = &bytes[HEADER..];
        if crc32fast::hash(payload) != crc {
            return Err(ItbError::snapshot("checksum mismatch: the snapshot is corrupt"));
        }
        let pump = if version == 1 {
            crate::snapshot_v1::migrate(payload)?
        } else {
            let (pump, rest): (Pump, &[u8]) =
                postcard::take_from_bytes(payload).map_err(|e| ItbError::snapshot(format!("cannot decode: {e}")))?;
            if !rest.is_empty() {
                return Err(ItbError::snapshot("trailing bytes after the pump state"));
            }
            pump
        };
        pump.check_invariants().map_err(|e| ItbError::snapshot(format!("inconsistent state: {e}")))?;
        Ok(pump)
    }

    /// Check the internal invariants of a state (used on restore and in tests).
    pub fn check_invariants(&self) -> Result<()> {
        let bad = |what: &str| Err(ItbError::snapshot(what.to_string()));
        self.model.validate()?;
        crate::units::check_time("now", self.now_ms)?;
        crate::units::check_concentration("concentration", i64::from(self.conc))?;
        if self.basal.schedule(self.conc, &self.model)? != self.schedule {
            return bad("schedule does not match the program");
        }
        if self.acc < 0 || self.acc >= self.stroke_gain() {
            return bad("accumulator out of range");
        }
        if self.reservoir_nl < 0 || self.reservoir_nl > self.model.reservoir_nl || self.strokes < 0 {
            return bad("reservoir out of range");
        }
        if self.empty != (self.reservoir_nl < self.model.stroke_nl) {
            return bad("empty flag does not match the reservoir");
        }
        if !(0..=crate::pump::MAX_CATHETER_NL).contains(&self.catheter_nl)
            || !(-crate::pump::MAX_STROKE_ERROR_PPM..=crate::pump::MAX_STROKE_ERROR_PPM).contains(&self.stroke_error_ppm)
        {
            return bad("catheter volume or stroke error out of range");
        }
        // Parcels are summed in i128: a decoded path may hold any i64 volumes.
        let path_fl: i128 = self.path.parcels().map(|p| i128::from(p.fl)).sum();
        if path_fl != i128::from((self.model.pump_path_nl + self.catheter_nl) * FL_PER_NL)
            || self.path.parcels().any(|p| p.fl <= 0 || p.conc > MAX_CONCENTRATION)
            || self.tip_conc > MAX_CONCENTRATION
        {
            return bad("fluid path volume does not match the model");
        }
        if self.true_reservoir_fl < 0 || self.delivered_fl < 0 || self.withdrawn_fl < 0 || self.filled_fl < 0 {
            return bad("negative physical volume");
        }
        // Drug mass lies within 0..=volume × the largest concentration (so the sums below,
        // and every later addition, stay far inside i128).
        let mass_ok = |ag: i128, fl: i64| (0..=i128::from(fl) * i128::from(MAX_CONCENTRATION)).contains(&ag);
        if !mass_ok(self.filled_ag, self.filled_fl)
            || !mass_ok(self.delivered_ag, self.delivered_fl)
            || !mass_ok(self.withdrawn_ag, self.withdrawn_fl)
        {
            return bad("drug mass out of range");
        }
        let fl_ok = i128::from(self.filled_fl)
            == i128::from(self.true_reservoir_fl)
                + path_fl
                + i128::from(self.delivered_fl)
                + i128::from(self.withdrawn_fl);
        let ag_ok = self.filled_ag
            == i128::from(self.true_reservoir_fl) * i128::from(self.conc)
                + self.path.mass_ag()
                + self.delivered_ag
                + self.withdrawn_ag;
        if !fl_ok || !ag_ok {
            return bad("physical ledgers do not balance");
        }
        // Every stroke counted, and what the firmware believes is left, came out of what was
        // filled (advancing keeps strokes × q + reservoir constant; so counts cannot overflow).
        let counted = i128::from(self.strokes) * i128::from(self.model.stroke_nl) + i128::from(self.reservoir_nl);
        if counted * i128::from(FL_PER_NL) > i128::from(self.filled_fl) {
            return bad("more strokes than was ever filled");
        }
        let capacity = self.model.battery.map(|b| b.capacity_pc).unwrap_or(0);
        if self.used_pc < 0 || self.used_pc > capacity || (self.eos && !self.eri) {
            return bad("battery state out of range");
        }
        // Counters far from their limits (2^63 events or boluses are never reached).
        let counter_ok = |n: u64| (1..=i64::MAX as u64).contains(&n);
        if !counter_ok(self.next_seq) || !counter_ok(self.next_bolus_id) {
            return bad("event or bolus counter out of range");
        }
        let in_past = |t: i64| (MIN_TIME_MS..=self.now_ms).contains(&t);
        if self.pending.iter().any(|e| e.seq != 0 || !in_past(e.time_ms)) {
            return bad("pending events out of range");
        }
        let alarms_ok = self.alarms.iter().enumerate().all(|(i, a)| {
            in_past(a.raised_ms) && self.alarms[..i].iter().all(|b| b.alarm != a.alarm)
        });
        if !alarms_ok {
            return bad("alarm list is inconsistent");
        }
        let grants_ok = self.patient_grants.len() <= crate::therapy::MAX_PATIENT_BOLUSES_PER_DAY as usize
            && self.patient_grants.iter().all(|&t| in_past(t))
            && self.patient_grants.windows(2).all(|w| w[0] <= w[1]);
        let limits_ok = match self.patient_limits {
            None => true,
            Some(l) => {
                (1..=MAX_BOLUS_NG).contains(&l.dose_ng)
                    && (1..=MS_PER_DAY).contains(&l.duration_ms)
                    && (0..=MS_PER_DAY).contains(&l.lockout_ms)
                    && (1..=crate::therapy::MAX_PATIENT_BOLUSES_PER_DAY).contains(&l.max_per_24h)
            }
        };
        if !grants_ok || !limits_ok {
            return bad("patient bolus state out of range");
        }
        let sorted = self.boluses.windows(2).all(|w| w[0].start_ms <= w[1].start_ms);
        let unique = self.boluses.iter().enumerate().all(|(i, b)| self.boluses[..i].iter().all(|c| c.id != b.id));
        // Each bolus is what `Bolus::new` builds from its volume, duration and start.
        let sane = self.boluses.iter().all(|b| {
            b.id < self.next_bolus_id
                && (1..=self.model.reservoir_nl).contains(&b.volume_nl)
                && b.duration_ms >= 1
                && (0..=MAX_BOLUS_NG).contains(&b.requested_ng)
                && b.dose_pg >= 0
                && (MIN_TIME_MS..=MAX_TIME_MS).contains(&b.start_ms)
                && {
                    let nb = Bolus::new(b.id, b.start_ms, b.volume_nl, b.requested_ng, 1, b.duration_ms, b.kind);
                    nb.end_ms == b.end_ms && nb.rate_nl_per_day == b.rate_nl_per_day
                }
                && b.end_ms <= MAX_TIME_MS
        });
        if !sorted || !unique || !sane {
            return bad("bolus list is inconsistent");
        }
        Ok(())
    }
}
