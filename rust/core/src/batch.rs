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
        forecast: [
            forecast.eri_ms.unwrap_or(NO_TIME),
            forecast.eos_ms.unwrap_or(NO_TIME),
        ],
    })
}

/// Advance clones of `pumps` to `until_ms` (a pump already past it stays where it is) on
/// `threads` threads (None: rayon's default). The first failing pump's error is returned.
pub fn simulate_many(pumps: &[Pump], until_ms: i64, threads: Option<usize>) -> Result<BatchResult> {
    crate::units::check_time("until", until_ms)?;
    let rows = in_pool(threads, || {
        pumps
            .par_iter()
            .map(|p| run_one(p.clone(), until_ms))
            .collect::<Vec<Result<Row>>>()
    })?;
    gather(rows)
}

/// Rows in order into columns; the first failing row's error.
fn gather(rows: Vec<Result<Row>>) -> Result<BatchResult> {
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

/// A fleet held as columns, one row per pump, none built until it is needed: row `i` is a pump
/// of model `models[model[i]]` at `now_ms[i]` holding `reservoir_nl[i]` at `concentration[i]`
/// µg/mL on `programs[program[i]]` when `program[i] >= 0`, else on `Continuous(ng_per_day[i])`;
/// path primed, no catheter. Errors name the column and the row (`reservoir_ml[12]`).
#[derive(Debug, Clone, Copy)]
pub struct FleetColumns<'a> {
    pub models: &'a [crate::model::PumpModel],
    pub model: &'a [i64],
    pub now_ms: &'a [i64],
    pub reservoir_nl: &'a [i64],
    pub concentration: &'a [i64],
    pub ng_per_day: &'a [i64],
    /// Programs shared by rows (a flex table, say), and each row's index into them (-1: none).
    pub programs: &'a [crate::delivery::program::Basal],
    pub program: &'a [i64],
    /// What an interrogation shows, per row (empty columns: not given).
    pub reading: ReadingColumns<'a>,
}

/// Reading columns of a fleet (see [`crate::reading`]); an empty slice means the column is
/// absent, `NO_TIME` / `NO_CHARGE` in a row means "not read" / "not sounding".
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadingColumns<'a> {
    /// Battery charge remaining (pC).
    pub battery_remaining_pc: &'a [i64],
    /// Implant date (ms).
    pub implanted_ms: &'a [i64],
    /// Since when each alarm of [`crate::battery::Alarm::ALL`] (in that order) sounds (ms).
    pub since_ms: [&'a [i64]; 6],
}

/// A battery charge that was not read.
pub const NO_CHARGE: i64 = i64::MIN;

impl ReadingColumns<'_> {
    fn is_empty(&self) -> bool {
        self.battery_remaining_pc.is_empty()
            && self.implanted_ms.is_empty()
            && self.since_ms.iter().all(|c| c.is_empty())
    }

    fn row(&self, i: usize) -> crate::pump::reading::Reading {
        let at = |c: &[i64]| c.get(i).copied().filter(|&v| v != NO_TIME);
        crate::pump::reading::Reading {
            battery_remaining_pc: self
                .battery_remaining_pc
                .get(i)
                .copied()
                .filter(|&v| v != NO_CHARGE),
            implanted_ms: at(self.implanted_ms),
            alarms: crate::battery::Alarm::ALL
                .iter()
                .zip(self.since_ms.iter())
                .filter_map(|(&a, c)| at(c).map(|t| (a, t)))
                .collect(),
        }
    }
}

/// Per-row forecast columns (`NO_TIME` where not within the horizon).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForecastColumns {
    pub next_stroke_ms: Vec<i64>,
    pub low_reservoir_ms: Vec<i64>,
    pub reservoir_empty_ms: Vec<i64>,
    pub eri_ms: Vec<i64>,
    pub eos_ms: Vec<i64>,
    /// The first stroke that finds the reservoir physically short (the physical ledger;
    /// `NO_TIME`: none within the horizon). See `Projection::physically_dry_ms`.
    pub physically_dry_ms: Vec<i64>,
    /// Since when each alarm of [`crate::battery::Alarm::ALL`] (in that order) has been
    /// sounding at the start (`NO_TIME`: not sounding).
    pub since_ms: [Vec<i64>; 6],
}

impl FleetColumns<'_> {
    pub fn len(&self) -> usize {
        self.now_ms.len()
    }
    pub fn is_empty(&self) -> bool {
        self.now_ms.is_empty()
    }

    fn check(&self) -> Result<()> {
        let n = self.len();
        for (name, len) in [
            ("model", self.model.len()),
            ("reservoir_ml", self.reservoir_nl.len()),
            ("concentration_ug_per_ml", self.concentration.len()),
            ("ug_per_day", self.ng_per_day.len()),
            ("program", self.program.len()),
        ]
        .into_iter()
        .chain(
            [
                ("battery_mah", self.reading.battery_remaining_pc.len()),
                ("implanted", self.reading.implanted_ms.len()),
            ]
            .into_iter()
            .chain(
                crate::battery::Alarm::ALL
                    .iter()
                    .zip(self.reading.since_ms.iter())
                    .map(|(a, c)| (a.since_column(), c.len())),
            )
            .filter(|&(_, len)| len != 0),
        ) {
            if len != n {
                return Err(ItbError::validation(
                    name,
                    format!("has {len} rows; `now` has {n}"),
                ));
            }
        }
        for (i, p) in self.programs.iter().enumerate() {
            p.validate_shape().map_err(|e| {
                let field = format!("programs[{i}].{}", e.field());
                e.in_field(field)
            })?;
        }
        for (i, m) in self.models.iter().enumerate() {
            m.validate().map_err(|e| {
                let field = format!("models[{i}].{}", e.field());
                e.in_field(field)
            })?;
        }
        Ok(())
    }

    /// The pump of row `i`.
    pub fn pump(&self, i: usize) -> Result<Pump> {
        let idx = self.model[i];
        let model = usize::try_from(idx)
            .ok()
            .and_then(|j| self.models.get(j))
            .ok_or_else(|| {
                ItbError::validation(
                    format!("model[{i}]"),
                    format!(
                        "{idx} is not a model index (allowed: 0 to {})",
                        self.models.len() as i64 - 1
                    ),
                )
            })?;
        let p = self.program[i];
        let basal = if p < 0 {
            crate::delivery::program::Basal::Continuous {
                ng_per_day: self.ng_per_day[i],
            }
        } else {
            usize::try_from(p)
                .ok()
                .and_then(|j| self.programs.get(j))
                .cloned()
                .ok_or_else(|| {
                    ItbError::validation(
                        format!("program[{i}]"),
                        format!(
                            "{p} is not a program index (allowed: 0 to {}, or -1 for ug_per_day)",
                            self.programs.len() as i64 - 1
                        ),
                    )
                })?
        };
        let config = crate::pump::PumpConfig::new(
            model.clone(),
            self.now_ms[i],
            self.reservoir_nl[i],
            self.concentration[i],
            basal,
        );
        let built = if self.reading.is_empty() {
            Pump::new(config)
        } else {
            let reading = self.reading.row(i);
            Pump::from_reading(config, &reading).map_err(|e| {
                let field = reading_column(e.field(), e.to_string().as_str(), &reading);
                match field {
                    Some(f) => e.in_field(f),
                    None => e,
                }
            })
        };
        built.map_err(|e| {
            // a step of a shared program out of range at this row's concentration
            let field = if p >= 0 && (e.field().starts_with("steps") || e.field() == "ug_per_day") {
                format!("program[{i}].{}", e.field())
            } else {
                format!("{}[{i}]", e.field())
            };
            e.in_field(field)
        })
    }
}

/// The fleet column a reading error is about: `active_alarms[k]` is the k-th listed alarm's
/// `<name>_since` column; a contradiction (`active_alarms`) names the alarm its message starts
/// with.
fn reading_column(
    field: &str,
    message: &str,
    reading: &crate::pump::reading::Reading,
) -> Option<&'static str> {
    if let Some(k) = field
        .strip_prefix("active_alarms[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|k| k.parse::<usize>().ok())
    {
        return reading.alarms.get(k).map(|(a, _)| a.since_column());
    }
    if field == "active_alarms" {
        return crate::battery::Alarm::ALL
            .into_iter()
            .filter(|a| reading.alarms.iter().any(|(b, _)| b == a))
            .find(|a| message.contains(&format!("{} ", a.name())))
            .map(|a| a.since_column());
    }
    None
}

fn in_pool<T: Send>(threads: Option<usize>, work: impl FnOnce() -> T + Send) -> Result<T> {
    match threads {
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n.clamp(1, 1024))
                .build()
                .map_err(|e| {
                    ItbError::validation("threads", format!("cannot start {n} threads: {e}"))
                })?;
            Ok(pool.install(work))
        }
        None => Ok(work()),
    }
}

/// Service-date forecast of every row (`Pump::project_with`, closed form, no stroke walking),
/// built and projected row by row on `threads` threads: memory is the output columns plus one
/// pump per thread. Results do not depend on the thread count; the first bad row's error is
/// returned.
pub fn forecast_columns(
    fleet: &FleetColumns<'_>,
    horizon_ms: i64,
    assume_refills: bool,
    threads: Option<usize>,
) -> Result<ForecastColumns> {
    fleet.check()?;
    let mode = if assume_refills {
        ProjectionMode::RefillsOnTime
    } else {
        ProjectionMode::AsProgrammed
    };
    let rows = in_pool(threads, || {
        (0..fleet.len())
            .into_par_iter()
            .map(|i| forecast_row(&fleet.pump(i)?, horizon_ms, mode))
            .collect::<Vec<Result<ForecastRow>>>()
    })?;
    gather_forecast(rows)
}

/// What a batched projection assumes: the program as it runs (`Pump::project_with(_, false)`),
/// refills on time (`Pump::project_with(_, true)`), or every allotted patient bolus taken
/// (`Pump::project_max_patient_boluses`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectionMode {
    AsProgrammed,
    RefillsOnTime,
    MaxPatientBoluses,
}

/// The projection of each of `pumps` (the pumps are not changed) on `threads` threads: the
/// columns of [`forecast_columns`], row `i` exactly the projection of `pumps[i]` under `mode`.
/// Results do not depend on the thread count; the first failing pump's error is returned.
pub fn project_many(
    pumps: &[Pump],
    horizon_ms: i64,
    mode: ProjectionMode,
    threads: Option<usize>,
) -> Result<ForecastColumns> {
    let rows = in_pool(threads, || {
        pumps
            .par_iter()
            .map(|p| forecast_row(p, horizon_ms, mode))
            .collect::<Vec<Result<ForecastRow>>>()
    })?;
    gather_forecast(rows)
}

type ForecastRow = ([i64; 6], [i64; 6]);

fn forecast_row(pump: &Pump, horizon_ms: i64, mode: ProjectionMode) -> Result<ForecastRow> {
    let p = match mode {
        ProjectionMode::AsProgrammed => pump.project_with(horizon_ms, false)?,
        ProjectionMode::RefillsOnTime => pump.project_with(horizon_ms, true)?,
        ProjectionMode::MaxPatientBoluses => pump.project_max_patient_boluses(horizon_ms)?,
    };
    let t = |x: Option<i64>| x.unwrap_or(NO_TIME);
    let mut since = [NO_TIME; 6];
    for a in pump.active_alarms() {
        if let Some(k) = crate::battery::Alarm::ALL
            .iter()
            .position(|&b| b == a.alarm)
        {
            since[k] = a.raised_ms;
        }
    }
    Ok((
        [
            t(p.next_stroke_ms),
            t(p.low_reservoir_ms),
            t(p.reservoir_empty_ms),
            t(p.eri_ms),
            t(p.eos_ms),
            t(p.physically_dry_ms),
        ],
        since,
    ))
}

/// Rows in order into forecast columns; the first failing row's error.
fn gather_forecast(rows: Vec<Result<ForecastRow>>) -> Result<ForecastColumns> {
    let mut out = ForecastColumns::default();
    for row in rows {
        let (r, since) = row?;
        out.next_stroke_ms.push(r[0]);
        out.low_reservoir_ms.push(r[1]);
        out.reservoir_empty_ms.push(r[2]);
        out.eri_ms.push(r[3]);
        out.eos_ms.push(r[4]);
        out.physically_dry_ms.push(r[5]);
        for (col, v) in out.since_ms.iter_mut().zip(since) {
            col.push(v);
        }
    }
    Ok(out)
}

/// [`simulate_many`] for a fleet held as columns: each row's pump is built and run in its
/// worker (memory: the result columns plus one pump per thread).
pub fn simulate_columns(
    fleet: &FleetColumns<'_>,
    until_ms: i64,
    threads: Option<usize>,
) -> Result<BatchResult> {
    fleet.check()?;
    crate::units::check_time("until", until_ms)?;
    let rows = in_pool(threads, || {
        (0..fleet.len())
            .into_par_iter()
            .map(|i| run_one(fleet.pump(i)?, until_ms))
            .collect::<Vec<Result<Row>>>()
    })?;
    gather(rows)
}
