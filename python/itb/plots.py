"""Plots of a scenario run, of a :class:`~itb.Pump`'s course and of a fleet forecast
(matplotlib, Agg backend, no pyplot state): reservoir volume, volume rate, programmed dose vs the
dose leaving the catheter tip, battery charge, and the alarms and therapy events on one shared
time axis.

The panels choose their resolution from the run's length (docs: guide/plots.md): the exact
steps up to :data:`SHORT_RUN`, means over windows that divide a day (aligned to midnight) up to
:data:`LONG_RUN`, and beyond it per-calendar-day figures plus a typical-day profile (mean by
hour of day). Every number comes from the Rust-backed pump: the curves are sampled pump
states, the markers are the run's events. Needs matplotlib: ``pip install 'itb-pump[plot]'``.
Simulation only — not a medical device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._extras import require
from ._time import duration_ms, to_ms
from ._units import pg_to_ug
from .errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .pump import Pump
    from .scenario import ScenarioResult

__all__ = [
    "LONG_RUN",
    "SHORT_RUN",
    "default_every",
    "figure",
    "fleet_forecast_figure",
    "plot_fleet_forecast",
    "plot_pump_history",
    "plot_result",
    "pump_history_figure",
    "resolution",
]

#: Runs up to this long are drawn in their exact steps (dose at the tip: hourly means).
SHORT_RUN = timedelta(days=3)
#: Runs longer than this are drawn per calendar day, with a typical-day profile below.
LONG_RUN = timedelta(days=21)
#: Averaging windows the medium resolution chooses from: each divides a day, so windows align
#: to midnight and a day program's shape cannot beat against them.
WINDOWS = tuple(timedelta(minutes=m) for m in (15, 30, 60, 120, 180, 240, 360, 480, 720, 1440))
_SAMPLE_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)  # divisors of an hour

#: Event kinds shown on the timeline panel, top to bottom (alarms have a severity as well).
TIMELINE = (
    "eos",
    "reservoir_empty",
    "fault",
    "eri",
    "low_reservoir",
    "refill_discrepancy",
    "refilled",
    "concentration_changed",
    "drug_at_tip",
    "bolus_started",
    "patient_bolus_granted",
    "patient_bolus_denied",
    "program_changed",
    "suspended",
    "resumed",
    "fault_cleared",
    "telemetry_session",
    "path_replaced",
)
_SEVERITY_COLOURS = {"critical": "tab:red", "non_critical": "tab:orange", None: "tab:blue"}
_MARKER_LABELS = {
    ("o", "tab:red"): "critical alarm",
    ("o", "tab:orange"): "non-critical alarm",
    ("o", "tab:blue"): "therapy event",
    ("|", "tab:red"): "bolus event (critical)",
    ("|", "tab:orange"): "bolus event (non-critical)",
    ("|", "tab:blue"): "bolus event",
}
_ALARM_ROWS = {"motor_stall": "fault", "battery_fault": "fault"}  # active alarm → timeline row


def default_every(span: timedelta, samples: int = 2000) -> timedelta:
    """A sampling interval giving about ``samples`` samples over ``span``: at least one minute,
    rounded down to whole minutes."""
    minutes = max(1, duration_ms(span, "span") // 60_000 // samples)
    return timedelta(minutes=minutes)


def resolution(span: timedelta) -> str:
    """How a run of length ``span`` is drawn: ``"steps"`` (up to :data:`SHORT_RUN`),
    ``"windows"`` (up to :data:`LONG_RUN`) or ``"daily"`` (longer)."""
    span = timedelta(milliseconds=duration_ms(span, "span"))
    return "steps" if span <= SHORT_RUN else "windows" if span <= LONG_RUN else "daily"


def _sampling(span: timedelta) -> timedelta:
    """The default sampling interval: about 2000 samples, rounded down to a divisor of an hour
    (samples then fall on window edges), at most one hour (the typical-day profile's bins)."""
    minutes = default_every(span) // timedelta(minutes=1)
    return timedelta(minutes=max(m for m in _SAMPLE_MINUTES if m <= minutes))


def _window(span: timedelta, every: timedelta, dose_window: timedelta | None) -> timedelta:
    mode = resolution(span)
    if mode == "daily":
        return timedelta(days=1)
    want = max(dose_window or (timedelta(hours=1) if mode == "steps" else span / 40), every)
    return next((w for w in WINDOWS if w >= want), WINDOWS[-1])


def _label(window: timedelta) -> str:
    if window == timedelta(days=1):
        return "per calendar day"
    minutes = window // timedelta(minutes=1)
    return (
        "hourly mean"
        if minutes == 60
        else (f"{minutes // 60}-hour mean" if minutes % 60 == 0 else f"{minutes}-minute mean")
    )


def _edges(start: datetime, until: datetime, window: timedelta) -> list[datetime]:
    midnight = datetime.combine(start.date(), datetime.min.time())
    k = -(-(start - midnight) // window)  # first edge at or after start
    edges = [start]
    t = midnight + k * window
    while t < until:
        if t > start:
            edges.append(t)
        t += window
    edges.append(until)
    # a partial window at either end shorter than half a window joins its neighbour (a stroke
    # more or less in a short piece would read as a spike)
    if len(edges) > 2 and edges[1] - edges[0] < window / 2:
        del edges[1]
    if len(edges) > 2 and edges[-1] - edges[-2] < window / 2:
        del edges[-2]
    return edges


def _window_rates(cum: Any, edges: list[datetime]) -> list[float]:
    """Per window between ``edges``: the increase of the cumulative series ``cum`` per day."""
    values = [float(cum.asof(e)) for e in edges]
    return [
        (b - a) / ((t1 - t0) / timedelta(days=1))
        for a, b, t0, t1 in zip(values, values[1:], edges, edges[1:])
    ]


def _window_means(series: Any, edges: list[datetime]) -> list[float]:
    """Per window: the mean of the step function sampled in ``series`` (time-weighted)."""
    import numpy as np

    idx = series.index
    out = []
    for t0, t1 in zip(edges, edges[1:]):
        part = series[(idx >= t0) & (idx < t1)]
        if len(part) == 0:
            out.append(float(series.asof(t0)))
            continue
        times = list(part.index.to_pydatetime()) + [t1]
        weights = np.array([(b - a) / timedelta(milliseconds=1) for a, b in zip(times, times[1:])])
        out.append(float(np.dot(part.to_numpy(dtype=float), weights) / weights.sum()))
    return out


def _title_name(source: str) -> str:
    """A scenario's name for a title: the file name without folder or suffix."""
    return Path(source).stem.strip("<>") or "scenario"


def figure(
    result: ScenarioResult,
    every: timedelta | None = None,
    *,
    dose_window: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
    title: str | None = None,
) -> Any:
    """A ``matplotlib.figure.Figure`` of the run: five panels sharing the time axis, and for
    runs longer than :data:`LONG_RUN` a sixth, the typical day (see :func:`resolution`).
    ``every``: sampling interval (default: about 2000 samples, a divisor of an hour, at most
    1 h). ``dose_window``: the averaging window of the dose at the tip for runs up to
    :data:`LONG_RUN` (default 1 h for short runs, about 1/40 of medium ones), rounded up to
    one of :data:`WINDOWS`. ``title``: default the scenario file's name.
    Raises :class:`itb._extras.MissingExtraError` without matplotlib or pandas."""
    require("matplotlib", "plot", "itb's plots")
    if every is not None:
        every = timedelta(milliseconds=duration_ms(every, "every", allow_zero=False))
    if dose_window is not None:
        dose_window = timedelta(
            milliseconds=duration_ms(dose_window, "dose_window", allow_zero=False)
        )
    span = max(result.until - result.start, timedelta(minutes=1))
    every = _sampling(span) if every is None else every
    ts = result.timeseries(every=every, progress=progress)
    name = title if title is not None else _title_name(result.scenario.source)
    return _draw(
        ts,
        list(result.events),
        result.start,
        result.until,
        result.pump.model,
        name,
        every,
        dose_window,
        active=(),
    )


def pump_history_figure(
    pump: Pump,
    until: datetime | int,
    every: timedelta | None = None,
    *,
    dose_window: timedelta | None = None,
    title: str | None = None,
) -> Any:
    """A ``matplotlib.figure.Figure`` of ``pump``'s course from its clock's now to ``until``
    with no intervention (run on a copy: ``pump`` is untouched), drawn like :func:`figure`;
    alarms already sounding at the start (:attr:`itb.Pump.active_alarms`) are drawn as bars on
    their row from the start. ``title``: default the model's name."""
    require("matplotlib", "plot", "itb's plots")
    pd = require("pandas", "pandas", "itb's plots")
    from datetime import datetime as _dt

    from .export import sample

    if dose_window is not None:
        dose_window = timedelta(
            milliseconds=duration_ms(dose_window, "dose_window", allow_zero=False)
        )
    end_ms = to_ms(until, "until")
    start = pump.now
    if end_ms <= pump.now_ms:
        raise ValidationError(
            f"until: {_dt(1970, 1, 1) + timedelta(milliseconds=end_ms)} is not after the pump's "
            f"now ({start}); allowed: a later time",
            "until",
        )
    stop = _dt(1970, 1, 1) + timedelta(milliseconds=end_ms)
    span = stop - start
    every = (
        _sampling(span)
        if every is None
        else timedelta(milliseconds=duration_ms(every, "every", allow_zero=False))
    )
    if span // every > 1_000_000:
        raise ValidationError(
            f"every: {every} gives {span // every} samples (allowed: <= 1000000)", "every"
        )
    copy = pump.copy()
    active = [(a.name, a.raised) for a in pump.active_alarms]
    rows = [sample(copy)]
    events: list[Any] = []
    t = start
    while t < stop:
        t = min(t + every, stop)
        events.extend(copy.advance_to(t))
        rows.append(sample(copy))
    frame = pd.DataFrame(rows).set_index("time")
    frame["delivered_ug"] = pg_to_ug(frame.pop("delivered_pg"))
    frame["tissue_ug"] = pg_to_ug(frame.pop("tissue_pg"))
    name = title if title is not None else "pump history"
    return _draw(frame, events, start, stop, pump.model, name, every, dose_window, active=active)


def _draw(
    ts: Any,
    events: Sequence[Any],
    start: datetime,
    until: datetime,
    model: Any,
    name: str,
    every: timedelta,
    dose_window: timedelta | None,
    *,
    active: Sequence[tuple[str, datetime]],
) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    span = max(until - start, timedelta(minutes=1))
    mode = resolution(span)
    window = _window(span, every, dose_window)
    t = ts.index.to_pydatetime()
    edges = _edges(start, until, window)

    panels = 6 if mode == "daily" else 5
    fig = Figure(figsize=(11, 12.5 if panels == 6 else 10), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"{name} — {model.name}\nsimulation only, not a medical device", fontsize=11)
    if panels == 6:
        grid = fig.add_gridspec(6, 1, height_ratios=[2, 2, 2.5, 1.6, 2, 2.2])
        res = fig.add_subplot(grid[0])
        rate, dose, batt, line = (fig.add_subplot(grid[i], sharex=res) for i in range(1, 5))
        typical = fig.add_subplot(grid[5])
    else:
        axes = fig.subplots(5, 1, sharex=True, height_ratios=[2, 2, 2.5, 1.6, 2])
        res, rate, dose, batt, line = axes
        typical = None

    res.plot(
        t, ts["reservoir_ml"], drawstyle="steps-post", color="tab:blue", label="usable reservoir"
    )
    top = float(ts["reservoir_ml"].max())
    if model.low_reservoir_ml <= max(top, 1e-9) * 1.5:
        res.axhline(
            model.low_reservoir_ml, color="tab:orange", ls="--", lw=1, label="low-reservoir alarm"
        )
    res.set_ylabel("reservoir (mL)")
    res.set_ylim(0, max(top, model.low_reservoir_ml) * 1.08 or 1)

    step_edges = date2num(edges)  # type: ignore[no-untyped-call]
    if mode == "daily":
        pumped = _window_rates(ts["pumped_ml"], edges)
        rate.stairs(
            pumped,
            step_edges,
            baseline=None,
            color="tab:purple",
            label="pumped (mL per calendar day)",
        )
        rate_max = max(pumped, default=0)
    else:
        rate.plot(
            t,
            ts["commanded_ml_per_day"],
            drawstyle="steps-post",
            color="tab:purple",
            label="commanded (basal + boluses)",
        )
        rate_max = float(ts["commanded_ml_per_day"].max())
    rate.set_ylabel("volume rate (mL/day)")
    rate.set_ylim(0, rate_max * 1.1 or 1)

    tip = _window_rates(ts["delivered_ug"], edges)
    dose.stairs(
        tip,
        step_edges,
        baseline=None,
        color="tab:green",
        lw=1.2,
        label=f"at catheter tip ({_label(window)})",
    )
    highs = [max(tip, default=0)]
    if "tissue_ug" in ts and ts["tissue_ug"].iloc[-1] > 0:
        # under faults (docs: guide/faults.md): the drug that went elsewhere, same windows
        elsewhere = _window_rates(ts["tissue_ug"], edges)
        dose.stairs(
            elsewhere,
            step_edges,
            baseline=None,
            color="tab:red",
            lw=1.2,
            label=f"elsewhere: tissue ({_label(window)})",
        )
        highs.append(max(elsewhere, default=0))
    if mode == "daily":
        prescribed = _window_means(ts["prescribed_ug_per_day"], edges)
        dose.stairs(
            prescribed,
            step_edges,
            baseline=None,
            color="black",
            ls="--",
            lw=1,
            label="prescribed basal (per calendar day)",
        )
        highs.append(max(prescribed, default=0))
    else:
        dose.plot(
            t,
            ts["prescribed_ug_per_day"],
            drawstyle="steps-post",
            color="black",
            ls="--",
            lw=1,
            label="prescribed basal",
        )
        highs.append(float(ts["prescribed_ug_per_day"].max()))
    dose.set_ylabel("dose rate (µg/day)")
    dose.set_ylim(0, max(highs) * 1.1 or 1)

    _battery(batt, t, ts, model)
    _timeline(line, events, start, until, active)

    for ax in (res, rate, dose, batt):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    for ax in (res, rate, dose, batt):
        ax.tick_params(labelbottom=False)
    line.grid(True, axis="x", alpha=0.3)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    line.xaxis.set_major_locator(locator)
    line.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    pad = span / 100  # a marker at the first or last instant clears the frame
    line.set_xlim(start - pad, until + pad)  # type: ignore[arg-type]
    line.set_xlabel("pump clock")
    if typical is not None:
        if every <= timedelta(hours=1):
            _typical_day(typical, ts)
        else:
            typical.text(
                0.5,
                0.5,
                f"typical day: needs samples at most 1 h apart (every = {every})",
                transform=typical.transAxes,
                ha="center",
                va="center",
                color="gray",
            )
            typical.set_yticks([])
            typical.set_xticks([])
    return fig


def _battery(batt: Any, t: Any, ts: Any, model: Any) -> None:
    """The battery panel: the y axis fits the charge drawn; ERI/EOS lines only where in view."""
    charge = ts["battery_mah"]
    if not charge.notna().any():
        batt.text(
            0.5,
            0.5,
            "no battery model",
            transform=batt.transAxes,
            ha="center",
            va="center",
            color="gray",
        )
        batt.set_yticks([])
        batt.set_ylabel("battery (mAh)")
        return
    batt.plot(t, charge, color="tab:gray", label="remaining charge")
    lo, hi = float(charge.min()), float(charge.max())
    pad = max((hi - lo) * 0.1, 0.05)
    lo, hi = max(lo - pad, 0.0), hi + pad
    battery = model.battery
    if battery is not None:
        for level, colour, label in (
            (battery.eri_mah, "tab:orange", "ERI"),
            (battery.eos_mah, "tab:red", "EOS"),
        ):
            if lo <= level <= hi:
                batt.axhline(level, color=colour, ls="--", lw=1, label=f"{label} ({level:g} mAh)")
    batt.set_ylim(lo, hi)
    batt.set_ylabel("battery (mAh)")


def _timeline(
    line: Any,
    events: Sequence[Any],
    start: datetime,
    until: datetime,
    active: Sequence[tuple[str, datetime]],
) -> None:
    from matplotlib.lines import Line2D

    rows_of_active = {_ALARM_ROWS.get(a, a) for a, _ in active}
    kinds = [k for k in TIMELINE if k in rows_of_active or any(e.kind == k for e in events)]
    drawn: dict[tuple[str, str], None] = {}
    for row, kind in enumerate(kinds):
        hits = [e for e in events if e.kind == kind]
        if not hits:
            continue
        marker = "|" if kind.startswith(("bolus", "patient")) else "o"
        colour = _SEVERITY_COLOURS.get(hits[0].severity, "tab:blue")
        line.scatter(
            [e.time for e in hits],
            [row] * len(hits),
            marker=marker,
            s=140 if marker == "|" else 60,
            linewidths=1.5 if marker == "|" else None,
            color=colour,
            zorder=3,
            clip_on=False,  # a marker at the first or last instant is drawn whole
            gid=f"{kind}:{marker}",
        )
        drawn[(marker, colour)] = None
    handles = [
        Line2D([], [], marker=m, ls="", color=c, label=_MARKER_LABELS[(m, c)]) for m, c in drawn
    ]
    if active:
        for alarm, since in active:
            row = kinds.index(_ALARM_ROWS.get(alarm, alarm))
            line.plot(
                [max(since, start), until],
                [row, row],
                color="tab:red",
                lw=4,
                alpha=0.35,
                solid_capstyle="butt",
            )
        handles.append(
            Line2D([], [], color="tab:red", lw=4, alpha=0.35, label="sounding at the start")
        )
    line.set_yticks(range(len(kinds)), [k.replace("_", " ") for k in kinds], fontsize=8)
    line.set_ylim(len(kinds) - 0.5 if kinds else 0.5, -0.5)
    line.set_ylabel("events")
    if handles:
        line.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
        )
    else:
        line.text(
            0.5, 0.5, "no events", transform=line.transAxes, ha="center", va="center", color="gray"
        )


def _typical_day(ax: Any, ts: Any) -> None:
    """Mean dose rate by hour of day over the run: prescribed basal, and at the catheter tip."""
    import numpy as np

    idx = ts.index
    hours = np.asarray(idx.hour)
    dt_days = np.diff(idx.values) / np.timedelta64(1, "D")
    delivered = np.diff(ts["delivered_ug"].to_numpy(dtype=float))
    start_hours = hours[:-1]
    tip = np.full(8, np.nan)  # 3-hour bins: many strokes each, so stroke timing does not show
    prescribed = np.full(24, np.nan)
    presc = ts["prescribed_ug_per_day"].to_numpy(dtype=float)[:-1]
    for h in range(24):
        sel = start_hours == h
        if dt_days[sel].sum() > 0:
            prescribed[h] = np.dot(presc[sel], dt_days[sel]) / dt_days[sel].sum()
    for b in range(8):
        sel = start_hours // 3 == b
        if dt_days[sel].sum() > 0:
            tip[b] = delivered[sel].sum() / dt_days[sel].sum()
    days = (idx[-1] - idx[0]).total_seconds() / 86_400
    x = np.arange(25)
    ax.stairs(
        tip,
        np.arange(0, 25, 3),
        baseline=None,
        color="tab:green",
        lw=1.2,
        label="at catheter tip (mean per 3 h of day)",
    )
    ax.stairs(
        prescribed,
        x,
        baseline=None,
        color="black",
        ls="--",
        lw=1,
        label="prescribed basal (mean by hour)",
    )
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    top = np.nanmax(np.concatenate([tip, prescribed, [0.0]]))
    ax.set_ylim(0, top * 1.1 or 1)
    ax.set_ylabel("dose rate (µg/day)")
    ax.set_xlabel(f"time of day (typical day: mean over {days:.0f} days)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def plot_result(
    result: ScenarioResult,
    path: str | Path,
    every: timedelta | None = None,
    *,
    dose_window: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
    dpi: int = 100,
    title: str | None = None,
) -> Path:
    """Draw :func:`figure` and save it to ``path`` (format from the suffix: .png, .svg, .pdf);
    returns the path."""
    path = Path(path)
    image_format(path)
    fig = figure(result, every, dose_window=dose_window, progress=progress, title=title)
    fig.savefig(path, dpi=dpi)
    return path


def plot_pump_history(
    pump: Pump,
    until: datetime | int,
    path: str | Path,
    every: timedelta | None = None,
    *,
    dose_window: timedelta | None = None,
    dpi: int = 100,
    title: str | None = None,
) -> Path:
    """Draw :func:`pump_history_figure` and save it to ``path`` (.png, .svg, .pdf)."""
    path = Path(path)
    image_format(path)
    fig = pump_history_figure(pump, until, every, dose_window=dose_window, title=title)
    fig.savefig(path, dpi=dpi)
    return path


#: Forecast columns drawn by :func:`fleet_forecast_figure`, with their colours.
_FORECAST_KINDS = (
    ("low_reservoir", "tab:orange"),
    ("reservoir_empty", "tab:red"),
    ("eri", "tab:purple"),
    ("eos", "black"),
)
#: Line style and width per kind: wide solid lines under thin dashed ones, so that kinds
#: counting the same pumps (ERI and EOS of a fleet past both) stay visible where they coincide.
_FORECAST_LINES = {
    "low_reservoir": ("-", 2.6),
    "reservoir_empty": ((0, (5, 2)), 1.6),
    "eri": ("-", 3.2),
    "eos": ((0, (2, 2)), 1.4),
}


def fleet_forecast_figure(
    forecast: Mapping[str, Any], *, now: datetime | None = None, title: str | None = None
) -> Any:
    """A ``matplotlib.figure.Figure`` of :meth:`itb.Fleet.forecast`'s columns: per alarm
    (low reservoir, empty reservoir, ERI, EOS) the number of pumps sounding it over time — the
    pumps already sounding at ``now`` (``<alarm>_since`` set) plus those whose forecast date
    has come — as a step line, and the pumps per week reaching ERI or an empty reservoir as
    bars. ``now``: the fleet's clock (default: the earliest date in the forecast). A kind no
    pump reaches is not drawn (nor listed in the legend)."""
    require("matplotlib", "plot", "itb's plots")
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    def column(name: str) -> Any:
        values = forecast.get(name)
        if values is None:
            return np.array([], dtype="datetime64[ms]")
        arr = np.asarray(values)
        if arr.dtype.kind != "M":
            raise ValidationError(f"{name}: expected a datetime64 column, got {arr.dtype}", name)
        return arr.astype("datetime64[ms]")

    cols = {k: column(k) for k, _ in _FORECAST_KINDS}
    since = {k: column(f"{k}_since") for k, _ in _FORECAST_KINDS}
    n = max((len(v) for v in forecast.values()), default=0)
    every_time = np.concatenate(
        [v[~np.isnat(v)] for v in (*cols.values(), *since.values())]
        or [np.array([], "datetime64[ms]")]
    )
    if now is None:
        start = every_time.min().astype(datetime) if every_time.size else datetime(1970, 1, 1)
    else:
        start = now
    end = every_time.max().astype(datetime) if every_time.size else start + timedelta(days=1)
    end = max(end, start + timedelta(days=30))
    end += (end - start) * 0.03  # the last step is not drawn on the right edge
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax, bars = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    fig.suptitle(
        (title or f"fleet forecast — {n} pumps") + "\nsimulation only, not a medical device",
        fontsize=11,
    )
    for kind, colour in _FORECAST_KINDS:
        times = np.sort(cols[kind][~np.isnat(cols[kind])]).astype(datetime)
        already = int((~np.isnat(since[kind])).sum()) if since[kind].size else 0
        if not len(times) and not already:
            continue
        xs = [start, *times, end]
        ys = [already, *range(already + 1, already + len(times) + 1), already + len(times)]
        ax.step(
            xs,
            ys,
            where="post",
            color=colour,
            linestyle=_FORECAST_LINES[kind][0],
            linewidth=_FORECAST_LINES[kind][1],
            label=f"{kind.replace('_', ' ')}: {already} sounding now, {len(times)} to come",
        )
    ax.set_ylim(0, max(n, 1) * 1.05)
    ax.set_xlim(start, end)
    ax.set_ylabel("pumps sounding")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    else:
        ax.text(
            0.5,
            0.5,
            "no alarm within the horizon",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="gray",
        )
    span = end - start
    bin_width = (
        timedelta(days=1)
        if span <= timedelta(days=60)
        else timedelta(weeks=1)
        if span <= timedelta(days=730)
        else timedelta(days=30)
    )
    label = {1: "day", 7: "week", 30: "30 days"}[bin_width.days]
    nbins = max(1, -(-span // bin_width))
    edges = [start + i * bin_width for i in range(nbins + 1)]
    drawn_bars = 0
    bottom = np.zeros(nbins)
    for kind, colour in (("reservoir_empty", "tab:red"), ("eri", "tab:purple")):
        times = cols[kind][~np.isnat(cols[kind])].astype(datetime)
        if not len(times):
            continue
        counts = np.zeros(nbins)
        for x in times:
            counts[min(int((x - start) // bin_width), nbins - 1)] += 1
        bars.bar(
            edges[:-1],
            counts,
            width=bin_width,
            bottom=bottom,
            align="edge",
            color=colour,
            alpha=0.7,
            label=f"{kind.replace('_', ' ')} per {label}",
        )
        bottom += counts
        drawn_bars += 1
    from matplotlib.ticker import MaxNLocator

    bars.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole pumps
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bars.set_ylabel(f"pumps per {label}")
    bars.set_ylim(0, max(bottom.max(initial=0), 1) * 1.15)
    bars.grid(True, axis="y", alpha=0.3)
    if drawn_bars:
        bars.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    bars.xaxis.set_major_locator(locator)
    bars.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    bars.set_xlabel("fleet clock")
    return fig


def plot_fleet_forecast(
    forecast: Mapping[str, Any],
    path: str | Path,
    *,
    now: datetime | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Draw :func:`fleet_forecast_figure` and save it to ``path`` (.png, .svg, .pdf)."""
    path = Path(path)
    image_format(path)
    fleet_forecast_figure(forecast, now=now, title=title).savefig(path, dpi=dpi)
    return path


def image_format(path: str | Path, field: str = "path") -> str:
    """The image format of ``path``'s suffix (``png``, ``svg``, ``pdf`` …), or a
    ``ValidationError`` naming ``field`` and the suffixes matplotlib writes."""
    require("matplotlib", "plot", "itb's plots")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise ValidationError(
            f"{field}: {str(path)!r} has no image format matplotlib writes "
            f"(allowed suffixes: {', '.join('.' + f for f in sorted(formats))})",
            field,
        )
    return suffix


def clinic_calendar_figure(plan: Any) -> Any:
    """A ``matplotlib.figure.Figure`` of a clinic plan (:func:`itb.clinical.plan_clinic`):
    booked visits per day as bars against the day's capacity (a step line; closed days 0),
    and every patient at risk (visit after delivery stops) as a red marker at the day of its
    visit or earliest feasible date, labelled with the hours without drug. The x axis spans
    the days that hold visits (plus a week either side), so a year of 10 visits stays readable."""
    require("matplotlib", "plot", "itb's plots")
    from datetime import datetime as _dt

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    first = plan.first_day
    used = [i for i, n in enumerate(plan.visits_per_day) if n]
    lo = max(min(used, default=0) - 7, 0)
    hi = min(max(used, default=0) + 8, len(plan.capacity))
    days = [_dt.combine(first, _dt.min.time()) + timedelta(days=i) for i in range(lo, hi)]
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    booked, late, later = [0] * len(days), [0] * len(days), [0] * len(days)
    # booked in the window; overdue (booked past the deadline); else the earliest free slot
    for v in plan.visits:
        when, counts = (v.date, booked) if v.fitted else (v.earliest_feasible, later)
        if v.overdue:
            when, counts = v.date, late
        if when is not None and lo <= (when.date() - first).days < hi:
            counts[(when.date() - first).days - lo] += 1
    ax.bar(days, booked, width=0.8, color="#4477aa", label="visits booked in their window")  # type: ignore[arg-type]
    if any(late):
        ax.bar(
            days,  # type: ignore[arg-type]
            late,
            bottom=booked,
            width=0.8,
            color="#cc3311",
            label="overdue (empty window): booked at the earliest free slot",
        )
    if any(later):
        ax.bar(
            days,  # type: ignore[arg-type]
            later,
            bottom=[b + x for b, x in zip(booked, late)],
            width=0.8,
            color="#ee9944",
            label="not fitted: earliest date with a free slot",
        )
    ax.step(
        days,  # type: ignore[arg-type]
        plan.capacity[lo:hi],
        where="mid",
        color="#555555",
        linewidth=1.2,
        label="capacity (slots)",
    )
    risky = plan.at_risk
    if risky:
        xs = [v.date or v.earliest_feasible for v in risky]
        pts = [(x, v) for x, v in zip(xs, risky) if x is not None]
        ax.scatter(
            [_dt.combine(x.date(), _dt.min.time()) for x, _ in pts],  # type: ignore[arg-type]
            [max(plan.capacity[lo:hi] or [1]) + 0.5] * len(pts),
            marker="v",
            color="#cc3311",
            s=60,
            label="patient at risk (visit after delivery stops)",
            zorder=3,
        )
        for x, v in pts:
            h = "∞" if v.hours_without_drug == float("inf") else f"{v.hours_without_drug:.0f} h"
            ax.annotate(
                f"{v.patient}: {h}",
                (_dt.combine(x.date(), _dt.min.time()), max(plan.capacity[lo:hi] or [1]) + 0.5),
                xytext=(4, 6),
                textcoords="offset points",
                fontsize=8,
                color="#cc3311",
                rotation=30,
            )
    ax.set_ylim(0, max(plan.capacity[lo:hi] or [1]) + 1.8)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole visits
    ax.set_ylabel("visits per day")
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    n_fit = sum(1 for v in plan.visits if v.fitted)
    ax.set_title(
        f"Refill calendar: {n_fit} of {len(plan.visits)} patients booked in their window, "
        f"{len(plan.overdue)} overdue, {len(plan.unfitted)} not fitted, {len(risky)} at risk"
    )
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_clinic_calendar(plan: Any, path: str | Path, *, dpi: int = 100) -> Path:
    """Draw :func:`clinic_calendar_figure` and save it to ``path`` (.png, .svg, .pdf)."""
    path = Path(path)
    fig = clinic_calendar_figure(plan)
    fig.savefig(path, dpi=dpi)
    return path
