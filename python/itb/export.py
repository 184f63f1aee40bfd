"""Tables out of a run: event records (JSON-ready dicts), a pandas frame of events, and a time
series of the pump's state sampled from a scenario run.

Every number is read from the Rust-backed :class:`itb.Pump` (no delivery math here): the time
series re-runs the scenario on a fresh pump, stopping at each sample time to read it. pandas is
optional (``pip install 'itb[pandas]'``; also in ``itb[dask]`` and ``itb[test]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from ._extras import require
from ._time import duration_ms
from .errors import ValidationError
from .pump import Event, Pump

__all__ = ["event_record", "events_frame", "timeseries", "sample", "TIMESERIES_COLUMNS", "Runnable"]


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
    """A ``pandas.DataFrame`` with one row per event: ``time`` (datetime64[ms]), ``kind``,
    ``severity``, then one column per data key (missing values are NaN/None).
    Raises :class:`itb._extras.MissingExtraError` (an ``ImportError``) without pandas."""
    pd = require("pandas", "pandas", "itb's events frame")
    rows = []
    for e in events:
        row = {"time": e.time, "kind": e.kind, "severity": e.severity}
        for key, value in e.data.items():
            row[key if key not in row else f"data_{key}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["time", "kind", "severity"])
    frame["time"] = pd.to_datetime(frame["time"])
    ints = {
        k for row in rows for k, v in row.items() if isinstance(v, int) and not isinstance(v, bool)
    }
    ints -= {
        k
        for row in rows
        for k, v in row.items()
        if not (isinstance(v, int) and not isinstance(v, bool))
    }
    for column in ints:  # integer data stays integer (nullable) where other events lack it
        frame[column] = frame[column].astype("Int64")
    return frame


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
    stopped = pump.is_suspended or pump.is_stalled or pump.is_empty or pump.is_eos
    period_ms, anchor_ms, steps = pump.core.schedule
    step = _step_in_force(pump.now_ms, period_ms, anchor_ms, [offset for offset, _ in steps])
    commanded_nl = (
        0
        if stopped
        else steps[step][1]
        + sum(b.rate_nl_per_day for b in pump.boluses if b.start <= pump.now < b.end)
    )
    program = (
        pump.core.program
    )  # ("continuous", ng/day) or ("flex", period, [(offset_ms, ng/day), …])
    prescribed_ng = program[1] if program[0] == "continuous" else program[2][step][1]
    battery = pump.battery_remaining_mah
    return {
        "time": pump.now,
        "reservoir_ml": pump.reservoir_nl / 1e6,
        "concentration_ug_per_ml": pump.concentration_ug_per_ml,
        "tip_concentration_ug_per_ml": pump.tip_concentration_ug_per_ml,
        "commanded_ml_per_day": commanded_nl / 1e6,
        "prescribed_ug_per_day": prescribed_ng / 1e3,
        "pumped_ml": pump.pumped_nl / 1e6,
        "delivered_pg": pump.delivered_pg,
        "battery_mah": float("nan") if battery is None else battery,
        "delivering": not stopped,
        "tissue_pg": pump.tissue_pg,
        "held_back_ml": pump.held_back_nl / 1e6,
        "physical_reservoir_ml": pump.true_reservoir_nl / 1e6,
    }


def _step_in_force(now_ms: int, period_ms: int, anchor_ms: int, offsets: list[int]) -> int:
    """Index of the basal step in force at ``now_ms`` in the core's schedule (a lookup: the last
    step whose offset into the repeating period is <= now's)."""
    into = (now_ms - anchor_ms) % period_ms if period_ms else 0
    index = 0
    for i, offset in enumerate(offsets):
        if offset <= into:
            index = i
    return index


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
    frame["tip_dose_ug_per_day"] = frame["delivered_pg"].diff() / 1e6 / days
    frame["delivered_ug"] = frame.pop("delivered_pg") / 1e6
    frame["tissue_dose_ug_per_day"] = frame["tissue_pg"].diff() / 1e6 / days
    frame["tissue_ug"] = frame.pop("tissue_pg") / 1e6
    return frame[list(TIMESERIES_COLUMNS)]
