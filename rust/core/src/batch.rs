//! Many independent pumps at once (rayon). Results are placed by index, so they are identical
//! whatever the number of threads.

use rayon::prelude::*;

use crate::error::{ItbError, Result};
use crate::events::EventKind;
use crate::pump::Pump;

/// Sentinel for "did not happen" in time columns (numpy's NaT for `datetime64[ms]`).
pub const NO_TIME: i64 = i64::MIN;

/// Horizon of the service-date forecast made at the start of each run (ms): 30 years.
pub const FORECAST_MS: i64 = 30 * 365 * 86_400_000;

/// Per-pump results of a batch run, column-wise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResult {
    pub strokes: Vec<i64>,
    pub delivered_nl: Vec<i64>,
    pub delivered_pg: Vec<i128>,
    pub reservoir_nl: Vec<i64>,
    pub battery_remaining_pc: Vec<i64>,
    pub events: Vec<i64>,
    pub first_low_reservoir_ms: Vec<i64>,
    pub first_reservoir_empty_ms: Vec<i64>,
    pub eri_ms: Vec<i64>,
    pub eos_ms: Vec<i64>,
    /// Service dates forecast at the start with `assume_refills` (ERI, EOS).
    pub eri_forecast_ms: Vec<i64>,
    pub eos_forecast_ms: Vec<i64>,
}

struct Row {
    strokes: i64,
    delivered_nl: i64,
    delivered_pg: i128,
    reservoir_nl: i64,
    battery_remaining_pc: i64,
    events: i64,
    first: [i64; 4],
    forecast: [i64; 2],
}

fn run_one(mut pump: Pump, until_ms: i64) -> Result<Row> {
    let forecast = pump.project_with(FORECAST_MS, true)?;
    let events = pump.advance_to(until_ms.max(pump.now_ms()))?;
    let mut first = [NO_TIME; 4];
    for e in &events {
        let slot = match e.kind {
            EventKind::LowReservoir => 0,
            EventKind::ReservoirEmpty => 1,
            EventKind::Eri => 2,
            EventKind::Eos => 3,
            _ => continue,
        };
        if first[slot] == NO_TIME {
            first[slot] = e.time_ms;
        }
    }
    Ok(Row {
        strokes: pump.strokes(),
        delivered_nl: pump.delivered_nl(),
        delivered_pg: pump.delivered_pg(),
        reservoir_nl: pump.reservoir_nl(),
        battery_remaining_pc: pump.battery_remaining_pc().unwrap_or(-1),
        events: events.len() as i64,
        first,
        forecast: [forecast.eri_ms.unwrap_or(NO_TIME), forecast.eos_ms.unwrap_or(NO_TIME)],
    })
}

/// Advance clones of `pumps` to `until_ms` (a pump already past it stays where it is) on
/// `threads` threads (None: rayon's default). The first failing pump's error is returned.
pub fn simulate_many(pumps: &[Pump], until_ms: i64, threads: Option<usize>) -> Result<BatchResult> {
    crate::units::check_time("until", until_ms)?;
    let work = || pumps.par_iter().map(|p| run_one(p.clone(), until_ms)).collect::<Vec<Result<Row>>>();
    let rows = match threads {
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n.clamp(1, 1024))
                .build()
                .map_err(|e| ItbError::validation("threads", format!("cannot start {n} threads: {e}")))?;
            pool.install(work)
        }
        None => work(),
    };
    let mut out = BatchResult::default();
    for row in rows {
        let r = row?;
        out.strokes.push(r.strokes);
        out.delivered_nl.push(r.delivered_nl);
        out.delivered_pg.push(r.delivered_pg);
        out.reservoir_nl.push(r.reservoir_nl);
        out.battery_remaining_pc.push(r.battery_remaining_pc);
        out.events.push(r.events);
        out.first_low_reservoir_ms.push(r.first[0]);
        out.first_reservoir_empty_ms.push(r.first[1]);
        out.eri_ms.push(r.first[2]);
        out.eos_ms.push(r.first[3]);
        out.eri_forecast_ms.push(r.forecast[0]);
        out.eos_forecast_ms.push(r.forecast[1]);
    }
    Ok(out)
}
