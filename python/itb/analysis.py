"""Flow-accuracy analysis after IEC 60601-2-24 (the "trumpet curve").

The cumulative delivered volume is sampled every ``sample_interval`` S over the analysis period
(default: the second half of the recording, i.e. the second hour of the standard 2-hour run;
give a longer period for low-flow implantables). With r the set rate, Q_j the mean flow in
sample interval j, and a window of p minutes spanning m = p / S consecutive intervals::

    E_p(j)  = 100 / m · Σ_{i=j}^{j+m-1} (Q_i − r) / r      (%)  — mean percentage flow error
    E_p(max), E_p(min) = max_j E_p(j), min_j E_p(j)          over every window inside the period
    A       = 100 · (Q̄ − r) / r                             (%)  — overall mean error

(The windows and sample interval are those of the standard; the formula is the usual reading of
it, see ``docs: facts.md#flow-accuracy-the-trumpet-curve``.) The measured series are numpy
arrays: times in seconds, cumulative volume in mL (a rig's gravimetric samples converted with
the fluid's density, or simulated strokes via :func:`cumulative_from_strokes`). Rates are mL/h.
The window lengths and the sample interval are durations, never bare numbers (``timedelta`` or
``numpy.timedelta64``, exact to the millisecond; docs: guide/inputs.md#durations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from ._time import Duration, duration_ms, format_duration_ms
from ._units import nl_to_ml
from .errors import ValidationError

__all__ = [
    "TrumpetResult",
    "trumpet",
    "cumulative_from_strokes",
    "DEFAULT_WINDOWS",
    "DEFAULT_WINDOWS_MIN",
    "DEFAULT_SAMPLE_INTERVAL",
    "plot_trumpet",
]

#: The observation windows of IEC 60601-2-24 (2, 5, 11, 19 and 31 min) and the standard's
#: sample interval S (30 s).
DEFAULT_WINDOWS: tuple[timedelta, ...] = tuple(timedelta(minutes=m) for m in (2, 5, 11, 19, 31))
DEFAULT_SAMPLE_INTERVAL = timedelta(seconds=30)
#: The default windows in minutes, as :attr:`TrumpetResult.windows_min` reports them.
DEFAULT_WINDOWS_MIN = tuple(w / timedelta(minutes=1) for w in DEFAULT_WINDOWS)


@dataclass(frozen=True)
class TrumpetResult:
    """A trumpet curve: for each window length (``windows_min``, minutes) the largest and smallest
    mean percentage flow error (``max_error_pct``, ``min_error_pct``; NaN where the window is
    longer than the period), the overall mean error ``mean_error_pct``, the rate compared against
    (``rate_ml_per_h``), the period analysed (``period_s``: start, end in s) and ``sample_interval_s``."""

    windows_min: np.ndarray
    max_error_pct: np.ndarray
    min_error_pct: np.ndarray
    mean_error_pct: float
    rate_ml_per_h: float
    period_s: tuple[float, float]
    sample_interval_s: float

    def rows(self) -> list[tuple[float, float, float]]:
        """(window min, Ep(max) %, Ep(min) %) per window."""
        return [
            (float(w), float(a), float(b))
            for w, a, b in zip(self.windows_min, self.max_error_pct, self.min_error_pct)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows_min": [float(w) for w in self.windows_min],
            "max_error_pct": [None if np.isnan(v) else float(v) for v in self.max_error_pct],
            "min_error_pct": [None if np.isnan(v) else float(v) for v in self.min_error_pct],
            "mean_error_pct": float(self.mean_error_pct),
            "rate_ml_per_h": float(self.rate_ml_per_h),
            "period_s": [float(self.period_s[0]), float(self.period_s[1])],
            "sample_interval_s": float(self.sample_interval_s),
        }


def cumulative_from_strokes(
    times_ms: Any, stroke_nl: int, start_ms: int | None = None, end_ms: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(times in s since ``start_ms``, cumulative mL) of a stroke series, to analyse with
    ``kind="step"`` in :func:`trumpet`. ``times_ms`` are pump-clock ms (e.g. from
    ``Pump.advance_recording``); ``start_ms`` defaults to the first stroke; ``end_ms`` (the end of
    the simulated span) adds a final point so the quiet time after the last stroke is known."""
    t = np.asarray(times_ms, dtype=np.int64)
    if t.ndim != 1:
        raise ValidationError("times_ms: expected a 1-D array", "times_ms")
    origin = int(t[0]) if start_ms is None and t.size else int(start_ms or 0)
    secs = (t - origin) / 1000.0
    cum = np.arange(1, t.size + 1, dtype=np.float64) * nl_to_ml(stroke_nl)
    times, vols = np.concatenate(([0.0], secs)), np.concatenate(([0.0], cum))
    if end_ms is not None:
        if t.size and end_ms < t[-1]:
            raise ValidationError(
                f"end_ms: {end_ms} is before the last stroke {int(t[-1])}", "end_ms"
            )
        times, vols = np.append(times, (end_ms - origin) / 1000.0), np.append(vols, vols[-1])
    return times, vols


def _as_series(times: Any, volume: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(volume, dtype=np.float64)
    if t.ndim != 1 or v.ndim != 1 or t.size != v.size:
        raise ValidationError(
            f"times: times ({t.shape}) and cumulative_volume ({v.shape}) must be 1-D of equal length",
            "times",
        )
    if t.size < 2:
        raise ValidationError("times: need at least two samples", "times")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        raise ValidationError("cumulative_volume: NaN or infinite values", "cumulative_volume")
    if np.any(np.diff(t) < 0):
        raise ValidationError("times: must be non-decreasing", "times")
    return t, v


def _sample(t: np.ndarray, v: np.ndarray, at: np.ndarray, kind: str) -> np.ndarray:
    if kind == "linear":
        return np.asarray(np.interp(at, t, v), dtype=np.float64)
    if kind == "step":  # the last value at or before each time
        idx = np.searchsorted(t, at, side="right") - 1
        return v[np.clip(idx, 0, v.size - 1)]
    raise ValidationError(f"kind: {kind!r} is not 'linear' or 'step'", "kind")


def _window_ms(windows: Any) -> list[int]:
    """The window lengths in ms: a sequence of durations (``windows[i]`` names a bad one)."""
    if isinstance(windows, (timedelta, np.timedelta64, str, bytes)) or not hasattr(
        windows, "__iter__"
    ):
        raise ValidationError(
            f"windows: expected a sequence of durations (e.g. (timedelta(minutes=2), "
            f"timedelta(minutes=5))), got {type(windows).__name__}",
            "windows",
        )
    out = [duration_ms(w, f"windows[{i}]", allow_zero=False) for i, w in enumerate(windows)]
    if not out:
        raise ValidationError("windows: expected at least one window length", "windows")
    return out


def _whole_intervals(index: int, window_ms: int, interval_ms: int) -> int:
    """The number of sample intervals in a window, which must be whole (docs:
    decisions/core.md#trumpet-windows-are-whole-numbers-of-samples); a ``ValidationError``
    naming ``windows[index]`` and the nearest windows that fit otherwise. Exact: both are ms."""
    m, rest = divmod(window_ms, interval_ms)
    if rest == 0:
        return m
    fits = [
        f"{format_duration_ms(k * interval_ms)} = {k * interval_ms / 60_000:.4g} min "
        f"({k} intervals)"
        for k in (m, m + 1)
        if k >= 1
    ]
    field = f"windows[{index}]"
    raise ValidationError(
        f"{field}: {format_duration_ms(window_ms)} is not a whole number of "
        f"{format_duration_ms(interval_ms)} sample intervals ({window_ms / interval_ms:.4g}); "
        f"nearest windows that fit: {' and '.join(fits)}",
        field,
    )


def trumpet(
    times: Any,
    cumulative_volume: Any,
    windows: Sequence[Duration] = DEFAULT_WINDOWS,
    sample_interval: Duration = DEFAULT_SAMPLE_INTERVAL,
    analysis_period: tuple[float, float] | None = None,
    *,
    rate_ml_per_h: float | None = None,
    kind: str = "linear",
) -> TrumpetResult:
    """The trumpet curve of a cumulative-volume series.

    ``times`` (s) and ``cumulative_volume`` (mL): samples, non-decreasing times; ``windows``:
    observation window lengths, durations (default 2, 5, 11, 19, 31 min); ``sample_interval``:
    S, a duration (default ``timedelta(seconds=30)``); a bare number is refused for both, it has
    no unit. ``analysis_period``: (start, end) on the ``times`` axis, in s (default: the second
    half of the recording); ``rate_ml_per_h``: the set
    rate r (default: the mean rate over the period, which makes A = 0 — give the programmed rate
    to measure accuracy); ``kind``: how to read the volume between samples (``"linear"`` for a
    scale, ``"step"`` for strokes). Windows longer than the period give NaN.

    Every window must be a whole number of sample intervals, as in IEC 60601-2-24 (P = 2, 5, 11,
    19, 31 min at S = 30 s): otherwise a ``ValidationError`` names ``windows[i]`` and the
    nearest windows that fit (5 min at S = 40 s: 4.667 or 5.333 min). Nothing is silently rounded.
    """
    t, v = _as_series(times, cumulative_volume)
    interval_ms = duration_ms(sample_interval, "sample_interval", allow_zero=False)
    window_ms = _window_ms(windows)
    intervals = [_whole_intervals(i, w, interval_ms) for i, w in enumerate(window_ms)]
    interval_s = interval_ms / 1000.0
    if analysis_period is None:
        start, end = (t[0] + t[-1]) / 2.0, float(t[-1])
    else:
        start, end = float(analysis_period[0]), float(analysis_period[1])
    if not (t[0] <= start < end <= t[-1]):
        raise ValidationError(
            f"analysis_period: ({start:g}, {end:g}) s is not inside the data ({t[0]:g}, {t[-1]:g}) s",
            "analysis_period",
        )
    n = int(np.floor((end - start) / interval_s + 1e-9))
    if n < 1:
        raise ValidationError(
            f"analysis_period: shorter than one sample interval "
            f"({format_duration_ms(interval_ms)} = {interval_s:g} s)",
            "analysis_period",
        )
    at = start + interval_s * np.arange(n + 1)
    vol = _sample(t, v, at, kind)
    dv = np.diff(vol)  # mL per interval
    hours = interval_s / 3600.0
    mean_rate = float(dv.sum()) / (n * hours)
    r = mean_rate if rate_ml_per_h is None else float(rate_ml_per_h)
    if not (np.isfinite(r) and r > 0):
        raise ValidationError(f"rate_ml_per_h: {r!r} must be > 0", "rate_ml_per_h")
    err = 100.0 * (dv / hours - r) / r  # per-interval percentage error
    csum = np.concatenate(([0.0], np.cumsum(err)))
    w = np.array(window_ms, dtype=np.float64) / 60_000.0  # min, as the result reports them
    emax = np.full(w.size, np.nan)
    emin = np.full(w.size, np.nan)
    for k, m in enumerate(intervals):
        if m > n:
            continue
        means = (csum[m:] - csum[:-m]) / m
        emax[k], emin[k] = means.max(), means.min()
    return TrumpetResult(
        w,
        emax,
        emin,
        100.0 * (mean_rate - r) / r,
        r,
        (start, start + n * interval_s),
        interval_s,
    )


def plot_trumpet(result: TrumpetResult, path: str, title: str = "Trumpet curve") -> None:
    """Save the curve (Ep(max), Ep(min) against window length, and the mean error) as an image.
    Needs matplotlib (``pip install 'itb-pump[plot]'``); a :class:`~itb.errors.MissingExtraError` naming
    the extra if missing."""
    from ._extras import require

    matplotlib = require("matplotlib", "plot", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.windows_min, result.max_error_pct, "o-", label="Ep(max)")
    ax.plot(result.windows_min, result.min_error_pct, "o-", label="Ep(min)")
    ax.axhline(
        result.mean_error_pct,
        color="grey",
        ls="--",
        label=f"mean error {result.mean_error_pct:.2f} %",
    )
    ax.set_xlabel("observation window (min)")
    ax.set_ylabel("flow error (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
