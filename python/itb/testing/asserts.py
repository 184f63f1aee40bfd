"""Assertions comparing what a device did with what the :class:`~itb.testing.Oracle` says it
must have done. Each raises ``AssertionError`` saying where the device first diverged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from .._time import from_ms, to_ms
from .oracle import Oracle

__all__ = [
    "assert_delivery_matches",
    "assert_strokes_match",
    "assert_alarms_match",
    "ALARM_SEVERITIES",
]

#: itb's alarm kinds and their severity (what ``device_alarms``/``observed`` may name).
ALARM_SEVERITIES: dict[str, str] = {
    "low_reservoir": "non_critical",
    "refill_discrepancy": "non_critical",
    "eri": "non_critical",
    "reservoir_empty": "critical",
    "fault": "critical",
    "eos": "critical",
}


def _check_tol_strokes(tol_strokes: Any) -> int:
    if isinstance(tol_strokes, bool) or not isinstance(tol_strokes, (int, np.integer)):
        raise TypeError(
            f"tol_strokes={tol_strokes!r}: expected a whole number of strokes (int >= 0)"
        )
    if tol_strokes < 0:
        raise ValueError(
            f"tol_strokes={tol_strokes!r}: must be >= 0 (0 for a device observed synchronously)"
        )
    return int(tol_strokes)


def _check_observed_alarms(observed: Sequence[tuple[Any, ...]]) -> None:
    for i, a in enumerate(observed):
        if not isinstance(a, (tuple, list)) or len(a) not in (2, 3):
            raise TypeError(f"observed[{i}]={a!r}: expected (time, kind) or (time, kind, severity)")
        if a[1] not in ALARM_SEVERITIES:
            raise ValueError(
                f"observed[{i}]={a!r}: unknown alarm kind {a[1]!r}; itb's alarm kinds: "
                f"{', '.join(ALARM_SEVERITIES)}"
            )
        if len(a) == 3 and a[2] is not None and a[2] not in ("critical", "non_critical"):
            raise ValueError(
                f"observed[{i}]={a!r}: unknown severity {a[2]!r}; severities: critical, non_critical"
            )


def _ms_array(times: Iterable[Any], field: str) -> np.ndarray:
    """Pump-clock ms of naive datetimes or int ms (numpy int64 arrays as well)."""
    if isinstance(times, np.ndarray) and times.dtype.kind in "iu":
        return times.astype(np.int64)
    return np.asarray(
        [to_ms(int(t) if isinstance(t, np.integer) else t, field) for t in times], dtype=np.int64
    )


def _fmt(ms: int) -> str:
    return from_ms(int(ms)).isoformat(sep=" ", timespec="milliseconds")


def assert_delivery_matches(
    observed_times: Sequence[Any],
    observed_volumes_nl: Sequence[int],
    oracle: Oracle,
    tol_strokes: int = 1,
) -> None:
    """The device's cumulative pumped volume ``observed_volumes_nl[i]`` (nL out of the reservoir
    since the oracle's start) read at ``observed_times[i]`` (naive datetimes or pump-clock ms) is
    within ``tol_strokes`` strokes of the oracle's at every reading.

    On the first reading off by more, raises ``AssertionError`` naming the time, the expected and
    observed cumulative volumes and by how many strokes they differ.

    ``tol_strokes=1`` (the default) allows for a reading taken while a stroke is in flight (a
    device observed asynchronously); use ``tol_strokes=0`` when the device is observed
    synchronously (a simulator, firmware in the loop): otherwise a one-stroke bug passes."""
    tol_strokes = _check_tol_strokes(tol_strokes)
    times = _ms_array(observed_times, "observed_times")
    volumes = [int(v) for v in observed_volumes_nl]
    if len(times) != len(volumes):
        raise AssertionError(f"{len(times)} observation times but {len(volumes)} volumes")
    if len(times) == 0:
        return
    order = np.argsort(times, kind="stable")
    q = oracle.stroke_nl
    strokes = oracle.stroke_times(int(times.max()))
    counts = np.searchsorted(strokes, times, side="right")
    for i in order:
        expected = int(counts[i]) * q
        observed = volumes[i]
        off = observed - expected
        if abs(off) > tol_strokes * q:
            n = off / q
            raise AssertionError(
                f"device diverged at {_fmt(times[i])} (reading #{i}): expected {expected} nL pumped "
                f"({int(counts[i])} strokes), observed {observed} nL: "
                f"{'over' if off > 0 else 'under'} by {abs(off)} nL = {abs(n):g} stroke(s) (tolerance {tol_strokes})"
            )


def assert_strokes_match(
    observed_stroke_times: Sequence[Any],
    oracle: Oracle,
    until: Any | None = None,
    tol_strokes: int = 1,
) -> None:
    """The device's own stroke times (each stroke it fired) agree with the oracle's up to
    ``until`` (default: the oracle's now, or the last observed stroke if later): at every
    instant the cumulative stroke counts differ by at most ``tol_strokes`` (use 0 when the device's
    stroke log is exact: the default 1 lets a single missing or extra stroke pass)."""
    tol_strokes = _check_tol_strokes(tol_strokes)
    obs = np.sort(_ms_array(observed_stroke_times, "observed_stroke_times"))
    until_ms = oracle.now_ms if until is None else to_ms(until, "until")
    if len(obs):
        until_ms = max(until_ms, int(obs[-1]))
    exp = oracle.stroke_times(until_ms)
    instants = np.union1d(obs, exp)
    if not len(instants):
        return
    n_obs = np.searchsorted(obs, instants, side="right")
    n_exp = np.searchsorted(exp, instants, side="right")
    bad = np.nonzero(np.abs(n_obs - n_exp) > tol_strokes)[0]
    if len(bad):
        i = int(bad[0])
        t, o, e = int(instants[i]), int(n_obs[i]), int(n_exp[i])
        q = oracle.stroke_nl
        raise AssertionError(
            f"device diverged at {_fmt(t)}: expected {e} strokes = {e * q} nL pumped, observed {o} strokes = "
            f"{o * q} nL: {'over' if o > e else 'under'} by {abs(o - e)} strokes (tolerance {tol_strokes})"
        )


def assert_alarms_match(
    observed: Sequence[tuple[Any, ...]],
    oracle: Oracle,
    tol: timedelta = timedelta(0),
    until: Any | None = None,
) -> None:
    """The alarms the device raised, ``[(time, kind[, severity]), ...]``, are the oracle's up to
    ``until`` (default: the oracle's now, or the last observed alarm if later): the same kinds
    (and severities when given), each within ``tol`` of the expected time, none missing, none
    extra. An expected alarm less than ``tol`` before ``until`` may still be missing (the device
    can raise it late). The first divergence in time is reported. Kinds are itb's
    (:data:`ALARM_SEVERITIES`: ``low_reservoir``, ``refill_discrepancy``, ``eri`` — ``non_critical``;
    ``reservoir_empty``, ``fault``, ``eos`` — ``critical``); an unknown kind or severity raises
    ``ValueError``, a ``tol`` that is not a non-negative ``timedelta`` ``TypeError``/``ValueError``."""
    if not isinstance(tol, timedelta):
        raise TypeError(
            f"tol={tol!r}: expected a datetime.timedelta (e.g. timedelta(minutes=1)), "
            f"not {type(tol).__name__}"
        )
    if tol < timedelta(0):
        raise ValueError(f"tol={tol!r}: must be >= 0")
    observed = list(observed)
    _check_observed_alarms(observed)
    tol_ms = tol // timedelta(milliseconds=1)
    obs = sorted(
        ((to_ms(a[0], "observed"), a[1], a[2] if len(a) > 2 else None) for a in observed),
        key=lambda a: a[0],
    )
    until_ms = oracle.now_ms if until is None else to_ms(until, "until")
    if obs:
        until_ms = max(until_ms, obs[-1][0])
    expected = [(to_ms(t, "t"), k, s) for t, k, s in oracle.alarms(until_ms + tol_ms)]
    used = [False] * len(obs)
    problems: list[tuple[int, str]] = []
    for t, kind, sev in expected:
        match = next(
            (
                j
                for j, (ot, ok, os_) in enumerate(obs)
                if not used[j] and ok == kind and abs(ot - t) <= tol_ms and os_ in (None, sev)
            ),
            None,
        )
        if match is None:
            other = next(
                (
                    j
                    for j, (ot, ok, os_) in enumerate(obs)
                    if not used[j] and ok == kind and abs(ot - t) <= tol_ms
                ),
                None,
            )
            if other is not None:  # the right alarm at the right time, with the wrong severity
                used[other] = True
                problems.append(
                    (
                        t,
                        f"alarm {kind!r} at {_fmt(t)}: the severities differ: expected {sev}, the device "
                        f"raised it as {obs[other][2]} at {_fmt(obs[other][0])}",
                    )
                )
                continue
            if (
                t + tol_ms > until_ms
            ):  # the device, at `until`, may still raise it within the tolerance
                continue
            near = [f"{_fmt(ot)}" for ot, ok, _ in obs if ok == kind]
            seen = (
                f"; the device raised {kind} at {', '.join(near)}"
                if near
                else f"; the device never raised {kind}"
            )
            problems.append(
                (t, f"expected {sev} alarm {kind!r} at {_fmt(t)} (±{tol}) is missing{seen}")
            )
        else:
            used[match] = True
    for j, (ot, ok, os_) in enumerate(obs):
        if not used[j]:
            problems.append(
                (ot, f"unexpected alarm {ok!r} at {_fmt(ot)}" + (f" ({os_})" if os_ else ""))
            )
    if problems:
        problems.sort(key=lambda p: p[0])
        more = (
            ""
            if len(problems) == 1
            else f" (and {len(problems) - 1} more: " + "; ".join(m for _, m in problems[1:4]) + ")"
        )
        raise AssertionError(
            f"device alarms diverged first at {_fmt(problems[0][0])}: {problems[0][1]}{more}"
        )
