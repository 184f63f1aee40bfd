"""Plots of a scenario run (matplotlib, Agg backend, no pyplot state): reservoir volume, commanded
volume rate, programmed dose vs the dose leaving the catheter tip, battery charge, and the
alarms and therapy events on one shared time axis.

Every number comes from the Rust-backed pump: the curves are :meth:`ScenarioResult.timeseries`,
the markers are the run's events. Needs matplotlib: ``pip install 'itb-pump[plot]'``.
Simulation only — not a medical device.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._extras import require
from ._time import duration_ms
from .errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import ScenarioResult

__all__ = ["figure", "plot_result", "default_every"]

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


def default_every(span: timedelta, samples: int = 2000) -> timedelta:
    """A sampling interval giving about ``samples`` samples over ``span``: at least one minute,
    rounded down to whole minutes."""
    minutes = max(1, duration_ms(span, "span") // 60_000 // samples)
    return timedelta(minutes=minutes)


def figure(
    result: ScenarioResult,
    every: timedelta | None = None,
    *,
    dose_window: timedelta = timedelta(hours=4),
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """A ``matplotlib.figure.Figure`` of the run (five panels sharing the time axis).
    ``every``: sampling interval (default :func:`default_every` of the run's span).
    The dose at the tip is the mean over back-to-back windows of at least ``dose_window`` and
    1/300 of the run (a pump delivers in strokes: windows of many strokes keep the curve readable).
    Raises :class:`itb._extras.MissingExtraError` without matplotlib or pandas."""
    require("matplotlib", "plot", "itb's plots")
    if every is not None:
        every = timedelta(milliseconds=duration_ms(every, "every", allow_zero=False))
    dose_window = timedelta(milliseconds=duration_ms(dose_window, "dose_window", allow_zero=False))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    span = max(result.until - result.start, timedelta(minutes=1))
    every = default_every(span) if every is None else every
    ts = result.timeseries(every=every, progress=progress)
    pump = result.pump
    t = ts.index.to_pydatetime()

    fig = Figure(figsize=(11, 10), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(5, 1, sharex=True, height_ratios=[2, 2, 2.5, 1.6, 2])
    res, rate, dose, batt, line = axes
    fig.suptitle(
        f"{result.scenario.source} — {pump.model.name}\nsimulation only, not a medical device",
        fontsize=11,
    )

    res.plot(
        t, ts["reservoir_ml"], drawstyle="steps-post", color="tab:blue", label="usable reservoir"
    )
    res.axhline(
        pump.model.low_reservoir_ml, color="tab:orange", ls="--", lw=1, label="low-reservoir alarm"
    )
    res.set_ylabel("reservoir (mL)")
    res.set_ylim(bottom=0)

    rate.plot(
        t,
        ts["commanded_ml_per_day"],
        drawstyle="steps-post",
        color="tab:purple",
        label="commanded (basal + boluses)",
    )
    rate.set_ylabel("volume rate (mL/day)")
    rate.set_ylim(bottom=0)

    steps = max(
        1, -(-dose_window // every), -(-span // (300 * every))
    )  # ceil; at most ~300 windows
    window = steps * every
    tip = (ts["delivered_ug"].diff(steps) / (window / timedelta(days=1))).iloc[
        ::steps
    ]  # back-to-back windows
    dose.plot(
        tip.index.to_pydatetime(),
        tip,
        drawstyle="steps-pre",
        color="tab:green",
        lw=1.2,
        label=f"at catheter tip (mean over each {_human(window)})",
    )
    if "tissue_ug" in ts and ts["tissue_ug"].iloc[-1] > 0:
        # under faults (docs: guide/faults.md): the drug that went elsewhere, same windows
        elsewhere = (ts["tissue_ug"].diff(steps) / (window / timedelta(days=1))).iloc[::steps]
        dose.plot(
            elsewhere.index.to_pydatetime(),
            elsewhere,
            drawstyle="steps-pre",
            color="tab:red",
            lw=1.2,
            label=f"elsewhere: tissue (mean over each {_human(window)})",
        )
    dose.plot(
        t,
        ts["prescribed_ug_per_day"],
        drawstyle="steps-post",
        color="black",
        ls="--",
        lw=1,
        label="prescribed basal",
    )
    dose.set_ylabel("dose rate (µg/day)")
    dose.set_ylim(bottom=0)

    if ts["battery_mah"].notna().any():
        batt.plot(t, ts["battery_mah"], color="tab:gray", label="remaining charge")
        battery = pump.model.battery
        if battery is not None:
            batt.axhline(
                battery.eri_mah,
                color="tab:orange",
                ls="--",
                lw=1,
                label=f"ERI ({battery.eri_mah:g} mAh)",
            )
            batt.axhline(
                battery.eos_mah,
                color="tab:red",
                ls="--",
                lw=1,
                label=f"EOS ({battery.eos_mah:g} mAh)",
            )
        batt.set_ylim(bottom=0)
    else:
        batt.text(
            0.5,
            0.5,
            "no battery model",
            transform=batt.transAxes,
            ha="center",
            va="center",
            color="gray",
        )
    batt.set_ylabel("battery (mAh)")

    kinds = [k for k in TIMELINE if any(e.kind == k for e in result.events)]
    for row, kind in enumerate(kinds):
        hits = [e for e in result.events if e.kind == kind]
        line.scatter(
            [e.time for e in hits],
            [row] * len(hits),
            marker="|" if kind.startswith(("bolus", "patient")) else "o",
            s=60,
            color=_SEVERITY_COLOURS.get(hits[0].severity, "tab:blue"),
            zorder=3,
        )
    line.set_yticks(range(len(kinds)), [k.replace("_", " ") for k in kinds], fontsize=8)
    line.set_ylim(len(kinds) - 0.5 if kinds else 0.5, -0.5)
    line.set_ylabel("events")
    from matplotlib.lines import Line2D

    line.legend(
        handles=[
            Line2D([], [], marker="o", ls="", color=c, label=n)
            for n, c in (
                ("critical alarm", "tab:red"),
                ("non-critical alarm", "tab:orange"),
                ("therapy event", "tab:blue"),
            )
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
    )

    for ax in (res, rate, dose, batt):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    line.grid(True, axis="x", alpha=0.3)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    line.xaxis.set_major_locator(locator)
    line.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    line.set_xlim(result.start, result.until)
    line.set_xlabel("pump clock")
    return fig


def plot_result(
    result: ScenarioResult,
    path: str | Path,
    every: timedelta | None = None,
    *,
    dose_window: timedelta = timedelta(hours=4),
    progress: Callable[[int, int], None] | None = None,
    dpi: int = 100,
) -> Path:
    """Draw :func:`figure` and save it to ``path`` (format from the suffix: .png, .svg, .pdf);
    returns the path."""
    path = Path(path)
    image_format(path)
    fig = figure(result, every, dose_window=dose_window, progress=progress)
    fig.savefig(path, dpi=dpi)
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


def _human(step: timedelta) -> str:
    minutes = int(step / timedelta(minutes=1))
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes / 60:.1f} h" if minutes >= 120 else f"{minutes} min"


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
    ax.bar(days, plan.visits_per_day[lo:hi], width=0.8, color="#4477aa", label="visits booked")  # type: ignore[arg-type]
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
    ax.set_ylabel("visits per day")
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    n_fit = sum(1 for v in plan.visits if v.fitted)
    ax.set_title(
        f"Refill calendar: {n_fit} of {len(plan.visits)} patients booked in their window, "
        f"{len(plan.unfitted)} not fitted, {len(risky)} at risk"
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
