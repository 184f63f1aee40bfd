//! Versioned, checksummed snapshots: `MAGIC | version u16 LE | crc32 u32 LE | postcard(Pump)`.
//! The same state always gives the same bytes; corrupt or foreign bytes give a clear error,
//! and a decoded state is re-validated before it is accepted. Version 1 bytes (before event
//! sequence numbers and bolus doses) are migrated on restore (`snapshot_v1`) and written back
//! as version 2.

use crate::error::{ItbError, Result};
use crate::path::FL_PER_NL;
use crate::pump::Pump;

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
        if self.acc < 0 || (self.delivering() && self.acc >= self.stroke_gain()) {
            return bad("accumulator out of range");
        }
        if self.reservoir_nl < 0 || self.reservoir_nl > self.model.reservoir_nl || self.strokes < 0 {
            return bad("reservoir out of range");
        }
        if self.empty != (self.reservoir_nl < self.model.stroke_nl) {
            return bad("empty flag does not match the reservoir");
        }
        if self.path.volume_fl() != (self.model.pump_path_nl + self.catheter_nl) * FL_PER_NL
            || self.path.parcels().any(|p| p.fl <= 0)
        {
            return bad("fluid path volume does not match the model");
        }
        if self.true_reservoir_fl < 0 || self.delivered_fl < 0 || self.withdrawn_fl < 0 {
            return bad("negative physical volume");
        }
        let fl_ok = i128::from(self.filled_fl)
            == i128::from(self.true_reservoir_fl)
                + i128::from(self.path.volume_fl())
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
        let capacity = self.model.battery.map(|b| b.capacity_pc).unwrap_or(0);
        if self.used_pc < 0 || self.used_pc > capacity || (self.eos && !self.eri) {
            return bad("battery state out of range");
        }
        let sorted = self.boluses.windows(2).all(|w| w[0].start_ms <= w[1].start_ms && w[0].id != w[1].id);
        let sane = self.boluses.iter().all(|b| {
            b.id < self.next_bolus_id && b.end_ms > b.start_ms && b.volume_nl >= 1 && b.rate_nl_per_day >= 1
        });
        if !sorted || !sane {
            return bad("bolus list is inconsistent");
        }
        Ok(())
    }
}
