"""Tables out of a run: event records (JSON-ready dicts), a pandas frame of events, and a time
series of the pump's state sampled from a scenario run.

Every number is read from the Rust-backed :class:`itb.Pump` (no delivery math here): the time
series re-runs the scenario on a fresh pump, stopping at each sample time to read it. pandas is
optional (``pip install 'itb-pump[pandas]'``; also in ``itb-pump[dask]`` and ``itb-pump[test]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from ._extras import require
from ._time import duration_ms
from ._units import ng_to_ug, nl_to_ml, pg_to_ug
from .errors import ValidationError
from .pump import Event, Pump

__all__ = [
    "run_totals",
    "event_record",
    "events_frame",
    "timeseries",
    "sample",
    "TIMESERIES_COLUMNS",
    "Runnable",
]


class Runnable(Protocol):
    """What :func:`timeseries` needs of a scenario (an :class:`itb.scenario.Scenario`): its start,
    its end, and the run loop with sample stops. Declared here so that this room does not import
    the scenario room above it."""

    @property
    def start(self) -> datetime: ...

    @property
    def until(self) -> datetime: ...

    def execute(
        self,
        until: datetime,
        *,
        samples: Sequence[datetime] = (),
        on_sample: Callable[[Pump], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        record: list[Any] | None = None,
    ) -> tuple[Pump, list[Event], list[Any]]: ...


def run_totals(pump: Pump, start: datetime, events: Iterable[Event]) -> dict[str, Any]:
    """End-of-run figures of ``pump`` (run from ``start``, raising ``events``) in exact and
    clinical units, all read from the pump: the one totals dict of ``ScenarioResult.totals``,
    ``itb run --json`` and ``itb demo --json``."""
    p = pump
    return {
        "start": start.isoformat(timespec="milliseconds"),
        "end": p.now.isoformat(timespec="milliseconds"),
        "days_simulated": (p.now - start) / timedelta(days=1),
        "strokes": p.strokes,
        "pumped_nl": p.pumped_nl,
        "pumped_ml": nl_to_ml(p.pumped_nl),
        "delivered_nl": p.delivered_nl,
        "delivered_ml": nl_to_ml(p.delivered_nl),
        "delivered_pg": p.delivered_pg,
        "delivered_ug": pg_to_ug(p.delivered_pg),
        "reservoir_nl": p.reservoir_nl,
        "reservoir_ml": nl_to_ml(p.reservoir_nl),
        "concentration_ug_per_ml": p.concentration_ug_per_ml,
        "tip_concentration_ug_per_ml": p.tip_concentration_ug_per_ml,
        "reservoir_empty": p.is_empty,
        "battery_remaining_mah": p.battery_remaining_mah,
        "eri": p.is_eri,
        "eos": p.is_eos,
        "alarms": sum(1 for e in events if e.severity is not None),
    }


def event_record(event: Event) -> dict[str, Any]:
    """An event as a JSON-ready dict: ``time`` (ISO, ms), ``time_ms``, ``kind``, ``severity``
    (``None`` unless an alarm), ``data`` (a copy of the event's data), and ``seq`` when the event
    has a sequence number."""
    record = {
        "time": event.time.isoformat(timespec="milliseconds"),
        "time_ms": event.time_ms,
        "kind": event.kind,
        "severity": event.severity,
        "data": dict(event.data),
    }
    seq = getattr(event, "seq", None)  # events of newer cores carry a sequence number
    if seq is not None:
        record["seq"] = seq
    return record


def events_frame(events: Iterable[Event]) -> Any:
    """A ``pandas.DataFrame`` with one row per event, the one events schema (the same as
    :meth:`itb.EventLog.to_pandas`): ``time`` (datetime64[ms]), ``kind`` and ``severity``
    (categorical; missing when not an alarm), ``time_ms`` (int64), ``seq`` (uint64, when every
    event has one), then one column per data key (integers nullable ``Int64``, text as objects;
    missing where an event lacks the key). Raises :class:`itb._extras.MissingExtraError` (an
    ``ImportError``) without pandas."""
    import numpy as np

    pd = require("pandas", "pandas", "itb's events frame")
    events = list(events)
    seqs = [getattr(e, "seq", None) for e in events]
    frame: dict[str, Any] = {
        "time": np.array([e.time_ms for e in events], dtype=np.int64).astype("datetime64[ms]"),
        "kind": pd.Categorical([e.kind for e in events]),
        "severity": pd.Categorical([e.severity for e in events]),
        "time_ms": np.array([e.time_ms for e in events], dtype=np.int64),
    }
    if all(s is not None for s in seqs):
        frame["seq"] = np.array(seqs, dtype=np.uint64)
    keys: dict[str, None] = {}
    for e in events:
        keys.update(dict.fromkeys(e.data))
    for key in keys:
        values = [e.data.get(key) for e in events]
        present = [v for v in values if v is not None]
        name = key if key not in frame else f"data_{key}"
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            frame[name] = pd.array(values, dtype="Int64")
        else:
            frame[name] = np.array(values, dtype=object)
    return pd.DataFrame(frame)


#: Columns of :func:`timeseries`, with units in the names.
TIMESERIES_COLUMNS = (
    "reservoir_ml",  # usable reservoir volume the firmware counts
    "concentration_ug_per_ml",  # reservoir concentration
    "tip_concentration_ug_per_ml",  # concentration of the fluid leaving the catheter tip (0 = saline)
    "commanded_ml_per_day",  # basal + running boluses at the instant (0 while stopped)
    "prescribed_ug_per_day",  # the basal program's dose rate in force (boluses not included)
    "pumped_ml",  # cumulative volume that left the reservoir
    "delivered_ug",  # cumulative drug mass that left the catheter tip
    "tip_dose_ug_per_day",  # drug leaving the tip over the interval ending at this sample
    "battery_mah",  # remaining charge (NaN without a battery model)
    "delivering",  # False while suspended, stalled, empty or at EOS
    # the truth under faults (docs: guide/faults.md): programmed vs intrathecal vs elsewhere
    "tissue_ug",  # cumulative drug that went elsewhere (leak, disconnection, migrated tip, pocket)
    "tissue_dose_ug_per_day",  # drug going elsewhere over the interval ending at this sample
    "held_back_ml",  # cumulative volume an occlusion kept in the reservoir
    "physical_reservoir_ml",  # what is physically in the reservoir (the firmware counts reservoir_ml)
)


def sample(pump: Pump) -> dict[str, Any]:
    """The state of ``pump`` now, read from its properties (columns of :data:`TIMESERIES_COLUMNS`
    except the interval column ``tip_dose_ug_per_day``)."""
    core = pump.core
    stopped = not core.delivering
    commanded_nl = core.commanded_rate_nl_per_day  # basal step in force + running boluses
    prescribed_ng = core.prescribed_ng_per_day
    battery = pump.battery_remaining_mah
    return {
        "time": pump.now,
        "reservoir_ml": nl_to_ml(pump.reservoir_nl),
        "concentration_ug_per_ml": pump.concentration_ug_per_ml,
        "tip_concentration_ug_per_ml": pump.tip_concentration_ug_per_ml,
        "commanded_ml_per_day": nl_to_ml(commanded_nl),
        "prescribed_ug_per_day": ng_to_ug(prescribed_ng),
        "pumped_ml": nl_to_ml(pump.pumped_nl),
        "delivered_pg": pump.delivered_pg,
        "battery_mah": float("nan") if battery is None else battery,
        "delivering": not stopped,
        "tissue_pg": pump.tissue_pg,
        "held_back_ml": nl_to_ml(pump.held_back_nl),
        "physical_reservoir_ml": nl_to_ml(pump.true_reservoir_nl),
    }


def timeseries(
    scenario: Runnable,
    every: timedelta,
    until: datetime | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Run ``scenario`` again on a fresh pump, sampling its state every ``every`` from the start
    to ``until`` (default: the scenario's ``until``; the last sample is at ``until``). A sample at
    time t is taken before the actions scheduled at t. Returns a ``pandas.DataFrame`` indexed by
    ``time`` with :data:`TIMESERIES_COLUMNS`; ``tip_dose_ug_per_day`` is the drug that reached
    the intrathecal space since the previous sample, per day, and ``tissue_dose_ug_per_day`` the
    drug that went elsewhere (both NaN on the first row). ``progress(done_ms,
    total_ms)`` is called after each step.

    Raises ``ValidationError`` for ``every`` <= 0 or more than 1 000 000 samples,
    :class:`itb._extras.MissingExtraError` without pandas."""
    pd = require("pandas", "pandas", "itb's time series")
    every = timedelta(milliseconds=duration_ms(every, "every", allow_zero=False))
    stop = scenario.until if until is None else until
    count = (stop - scenario.start) // every
    if count > 1_000_000:
        raise ValidationError(
            f"every: {every} gives {count} samples (allowed: <= 1000000); sample less often",
            "every",
        )
    times = [scenario.start + i * every for i in range(count + 1)]
    if times[-1] < stop:
        times.append(stop)
    rows: list[dict[str, Any]] = []
    pump, _, _ = scenario.execute(
        stop, samples=times, on_sample=lambda p: rows.append(sample(p)), progress=progress
    )
    if not rows or rows[-1]["time"] != pump.now:
        rows.append(sample(pump))
    frame = pd.DataFrame(rows).set_index("time")
    days = frame.index.to_series().diff() / pd.Timedelta(days=1)
    frame["tip_dose_ug_per_day"] = pg_to_ug(frame["delivered_pg"].diff()) / days
    frame["delivered_ug"] = pg_to_ug(frame.pop("delivered_pg"))
    frame["tissue_dose_ug_per_day"] = pg_to_ug(frame["tissue_pg"].diff()) / days
    frame["tissue_ug"] = pg_to_ug(frame.pop("tissue_pg"))
    return frame[list(TIMESERIES_COLUMNS)]
