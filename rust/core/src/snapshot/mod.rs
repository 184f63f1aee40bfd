//! Versioned, checksummed snapshots: `MAGIC | version u16 LE | crc32 u32 LE | postcard(Pump)`.
//! The same state always gives the same bytes; corrupt or foreign bytes give a clear error,
//! and a decoded state is re-validated before it is accepted. Older versions are migrated on
//! restore and written back as the current one: version 1 (before event sequence numbers and
//! bolus doses, `snapshot::v1`) and version 2 (before faults and the truth ledgers: no faults,
//! zero ledgers; docs: guide/faults.md#snapshots).

pub(crate) mod v1;
pub(crate) mod wire;

use crate::delivery::faults::Faults;
use crate::delivery::path::FL_PER_NL;
use crate::error::{ItbError, Result};
use crate::pump::Pump;
use crate::snapshot::wire::PumpV2;
use crate::units::{MAX_CONCENTRATION, MIN_TIME_MS};

const MAGIC: &[u8; 8] = b"ITBPUMP\0";
/// Current snapshot format version.
pub const SNAPSHOT_VERSION: u16 = 3;
const HEADER: usize = MAGIC.len() + 2 + 4;

impl Pump {
    /// Serialize the whole state.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let payload = postcard::to_allocvec(self)
            .map_err(|e| ItbError::snapshot(format!("cannot encode: {e}")))?;
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
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return Err(ItbError::snapshot(format!(
                "snapshot format version {version} is not supported (this build reads 1 to {SNAPSHOT_VERSION})"
            )));
        }
        let crc = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
        let payload = &bytes[HEADER..];
        if crc32fast::hash(payload) != crc {
            return Err(ItbError::snapshot(
                "checksum mismatch: the snapshot is corrupt",
            ));
        }
        let decode_err = |e: postcard::Error| ItbError::snapshot(format!("cannot decode: {e}"));
        let (state, faults, rest): (PumpV2, Faults, &[u8]) = match version {
            1 => (
                crate::snapshot::v1::migrate(payload)?,
                Faults::default(),
                &[],
            ),
            2 => {
                let (state, rest) = postcard::take_from_bytes(payload).map_err(decode_err)?;
                (state, Faults::default(), rest)
            }
            _ => {
                let ((state, faults), rest) =
                    postcard::take_from_bytes(payload).map_err(decode_err)?;
                (state, faults, rest)
            }
        };
        if !rest.is_empty() {
            return Err(ItbError::snapshot("trailing bytes after the pump state"));
        }
        state.into_checked_pump(faults)
    }

    /// Check the internal invariants of a state (used on restore and in tests): each part's
    /// own, then those that tie parts together.
    pub fn check_invariants(&self) -> Result<()> {
        let bad = |what: &str| Err(ItbError::snapshot(what.to_string()));
        let part = |r: std::result::Result<(), &'static str>| {
            r.map_err(|what| ItbError::snapshot(what.to_string()))
        };
        self.model.validate()?;
        crate::units::check_time("now", self.now_ms)?;
        crate::units::check_concentration("concentration", i64::from(self.reservoir.conc))?;
        if self
            .delivery
            .basal
            .schedule(self.reservoir.conc, &self.model)?
            != *self.delivery.schedule()
        {
            return bad("schedule does not match the program");
        }
        part(self.delivery.check_invariants(&self.model))?;
        part(self.reservoir.check_invariants(&self.model))?;
        part(
            self.line.check_invariants(
                self.model.pump_path_nl,
                MAX_CONCENTRATION,
                self.detached()
                    .map_or(0, |d| d.parcels().map(|p| i128::from(p.fl)).sum()),
            ),
        )?;
        part(self.faults.check_invariants())?;
        if let Some(leak) = &self.faults.leak {
            if leak.position_nl > self.line.catheter_nl
                || leak
                    .downstream
                    .parcels()
                    .any(|p| p.conc > MAX_CONCENTRATION)
            {
                return bad("leak out of range");
            }
        }
        // Physical ledgers: everything filled is in the reservoir, in the path (with a
        // stagnant segment beyond a leak), delivered intrathecally, in tissue or withdrawn
        // (parts checked above, so every term is far inside i128).
        let (r, f) = (&self.reservoir, &self.faults);
        let parts = [Some(&self.line.fluid), self.detached()];
        let path_fl: i128 = parts
            .iter()
            .flatten()
            .flat_map(|p| p.parcels())
            .map(|p| i128::from(p.fl))
            .sum();
        let path_ag: i128 = parts.iter().flatten().map(|p| p.mass_ag()).sum();
        let fl_ok = i128::from(r.filled_fl)
            == i128::from(r.true_fl)
                + path_fl
                + i128::from(r.delivered_fl)
                + i128::from(f.tissue_fl)
                + i128::from(r.withdrawn_fl);
        let ag_ok = r.filled_ag
            == i128::from(r.true_fl) * i128::from(r.conc)
                + path_ag
                + r.delivered_ag
                + f.tissue_ag
                + r.withdrawn_ag;
        if !fl_ok || !ag_ok {
            return bad("physical ledgers do not balance");
        }
        // Every stroke counted, and what the firmware believes is left, came out of what was
        // filled (advancing keeps strokes × q + reservoir constant; so counts cannot overflow).
        let counted = i128::from(self.delivery.strokes) * i128::from(self.model.stroke_nl)
            + i128::from(r.count_nl);
        if counted * i128::from(FL_PER_NL) > i128::from(r.filled_fl) {
            return bad("more strokes than was ever filled");
        }
        part(
            self.battery
                .check_invariants(self.model.battery.as_ref(), MIN_TIME_MS, self.now_ms),
        )?;
        // Counters far from their limits (2^63 events or boluses are never reached).
        let counter_ok = |n: u64| (1..=i64::MAX as u64).contains(&n);
        if !counter_ok(self.next_seq) || !counter_ok(self.delivery.next_bolus_id) {
            return bad("event or bolus counter out of range");
        }
        let in_past = |t: i64| (MIN_TIME_MS..=self.now_ms).contains(&t);
        if self
            .pending
            .iter()
            .any(|e| e.seq != 0 || !in_past(e.time_ms))
        {
            return bad("pending events out of range");
        }
        part(self.patient.check_invariants(MIN_TIME_MS, self.now_ms))?;
        part(self.delivery.check_boluses(&self.model))?;
        Ok(())
    }
}
