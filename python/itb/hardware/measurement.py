"""Rig measurements: scale samples → delivered vs expected volume and the trumpet curve, and
the ``time_s,cumulative_ml`` CSV that ``itb rig measure --csv`` writes and ``itb trumpet``
reads. (A balance driver gives samples of the same shape: ``t_s``, ``mass_mg``,
``density_g_per_ml``, ``noise_mg``, ``expected_nl``.)"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from .._time import Duration, duration_ms
from ..errors import ValidationError

__all__ = ["summarise_samples", "read_series", "write_series"]


def summarise_samples(
    samples: Sequence[dict[str, Any]],
    *,
    tolerance_pct: float = 5.0,
    windows: Sequence[Duration] | None = None,
    sample_interval: Duration = timedelta(milliseconds=500),
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(report, sample times in s, delivered mL) of scale samples.

    ``windows`` (default :data:`itb.analysis.DEFAULT_WINDOWS`) and ``sample_interval`` are
    durations (``timedelta``/``numpy.timedelta64``; a bare number is a ``ValidationError`` naming
    the parameter), as in :func:`itb.analysis.trumpet`.

    Delivered = (mass − first mass) ÷ density; expected = the strokes the rig executed in the
    same span. Within tolerance when |delivered − expected| ≤ max(``tolerance_pct`` % of
    expected, 3·√2·σ of the scale noise). With at least three distinct sample times the report
    holds the trumpet curve (``itb.analysis.trumpet``, rate = the expected rate over the second
    half) under ``"trumpet"``. Raises ``ValidationError`` for no samples."""
    from ..analysis import DEFAULT_WINDOWS, trumpet

    interval = timedelta(
        milliseconds=duration_ms(sample_interval, "sample_interval", allow_zero=False)
    )
    if windows is not None:
        windows = [
            timedelta(milliseconds=duration_ms(w, f"windows[{i}]", allow_zero=False))
            for i, w in enumerate(windows)
        ]
    if not samples:
        raise ValidationError("samples: no scale samples", "samples")
    t = np.array([float(s["t_s"]) for s in samples])
    density = float(samples[0]["density_g_per_ml"])
    mass = np.array([float(s["mass_mg"]) for s in samples])
    delivered = (mass - mass[0]) / density / 1000.0  # mL
    expected = (
        np.array([int(s["expected_nl"]) for s in samples]) - samples[0]["expected_nl"]
    ) / 1e6
    noise_ml = 3 * np.sqrt(2) * float(samples[0].get("noise_mg", 0.0)) / density / 1000.0
    tol = max(tolerance_pct / 100.0 * expected[-1], noise_ml)
    ok = abs(delivered[-1] - expected[-1]) <= tol
    out: dict[str, Any] = {
        "samples": len(samples),
        "duration_s": float(t[-1] - t[0]),
        "delivered_ml": float(delivered[-1]),
        "expected_ml": float(expected[-1]),
        "tolerance_ml": float(tol),
        "within_tolerance": bool(ok),
    }
    t_unique, idx = np.unique(t, return_index=True)
    if t_unique.size >= 3 and expected[-1] > 0:
        start, end = (t_unique[0] + t_unique[-1]) / 2, t_unique[-1]
        rate = (
            np.interp(end, t_unique, expected[idx]) - np.interp(start, t_unique, expected[idx])
        ) / ((end - start) / 3600)
        if rate > 0:
            res = trumpet(
                t_unique,
                delivered[idx],
                DEFAULT_WINDOWS if windows is None else windows,
                sample_interval=interval,
                rate_ml_per_h=rate,
            )
            out["trumpet"] = res.as_dict()
    return out, t_unique, delivered[idx]


def write_series(path: os.PathLike[str] | str, t_s: Any, cumulative_ml: Any) -> None:
    """Write ``time_s,cumulative_ml`` rows (with a header) to ``path``."""
    with open(path, "w", encoding="ascii") as f:
        f.write("time_s,cumulative_ml\n")
        for a, b in zip(t_s, cumulative_ml, strict=True):
            f.write(f"{a:.3f},{b:.9f}\n")


def read_series(path: os.PathLike[str] | str) -> tuple[np.ndarray, np.ndarray]:
    """(time_s, cumulative_ml) of a CSV (a header line and ``#`` comments allowed);
    ``ValidationError`` naming the file and line."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split(",")
                try:
                    rows.append((float(parts[0]), float(parts[1])))
                except (ValueError, IndexError):
                    if rows or n > 1:
                        raise ValidationError(
                            f"data: {path} line {n}: expected time_s,cumulative_ml", "data"
                        ) from None
    except OSError as err:
        raise ValidationError(f"data: cannot read {path}: {err.strerror}", "data") from None
    if len(rows) < 2:
        raise ValidationError(f"data: {path} has fewer than two samples", "data")
    a = np.array(rows)
    return a[:, 0], a[:, 1]
