"""Assertions comparing what a device did with what the :class:`~itb.testing.Oracle` says it
must have done. Each raises ``AssertionError`` saying where the device first diverged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from .._time import from_ms, to_ms
from ..errors import ValidationError
from .oracle import Oracle

__all__ = [
    "assert_delivery_matches",
    "assert_strokes_match",
    "assert_alarms_match",
    "ALARM_SEVERITIES",
    "QUANTITIES",
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


#: alarms never paired as late/early (none yet: every kind is raised once per cause)
_NO_PAIR: frozenset[str] = frozenset()


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


def _check_sequence(values: Any, name: str) -> None:
    """``values`` is a sequence of readings or times (a list, a tuple, a 1-d numpy array, any
    iterable but a string): a bare number, a datetime, a string or None is a ``TypeError``
    naming ``name``."""
    if (
        isinstance(values, (str, bytes))
        or (isinstance(values, np.ndarray) and values.ndim != 1)
        or not isinstance(values, Iterable)
    ):
        raise TypeError(
            f"{name}={values!r}: expected a sequence (one item per reading, e.g. a list), "
            f"not {type(values).__name__}"
        )


def _ms_array(times: Iterable[Any], field: str, start_ms: int | None = None) -> np.ndarray:
    """Pump-clock ms of naive datetimes or int ms (numpy int64 arrays as well). With
    ``start_ms`` (the oracle's start), a time before it is a ``ValidationError`` naming
    ``field[i]`` and the range (an int is pump-clock ms since 1970-01-01, not ms since the
    start)."""
    _check_sequence(times, field)
    if isinstance(times, np.ndarray) and times.dtype.kind in "iu":
        out = times.astype(np.int64)
    else:
        times = list(times)
        out = np.asarray(
            [
                to_ms(int(t) if isinstance(t, np.integer) else t, f"{field}[{i}]")
                for i, t in enumerate(times)
            ],
            dtype=np.int64,
        )
    if start_ms is not None and len(out) and int(out.min()) < start_ms:
        i = int(np.argmin(out))
        raise ValidationError(
            f"{field}[{i}]={times[i]!r} is {_fmt(out[i])}, before the oracle's start: times are "
            f"from {_fmt(start_ms)} (pump-clock ms {start_ms}) onwards; an int is pump-clock ms "
            f"since 1970-01-01, not ms since the start",
            f"{field}[{i}]",
        )
    return out


def _fmt(ms: int) -> str:
    return from_ms(int(ms)).isoformat(sep=" ", timespec="milliseconds")


def _whole_readings(values: Any, name: str) -> list[int]:
    """Exact integer readings: ints or numpy integers (a bool, a float, a string, None is a
    ``TypeError`` naming ``name[i]``)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu":
            raise TypeError(
                f"{name}: a numpy array of dtype {values.dtype}; readings must be whole numbers "
                f"(an integer dtype), not rounded by the kit"
            )
        return [int(v) for v in values.tolist()]
    return [whole_nl(v, f"{name}[{i}]") for i, v in enumerate(values)]


def whole_nl(value: Any, name: str) -> int:
    """One exact reading as an int: an ``int`` or a numpy integer; a bool, a float (even
    ``482000.0``), a string or None is a ``TypeError`` naming ``name``. The one rule for every
    reading the kit compares (:func:`assert_delivery_matches` and the state machine's
    ``device_observed()`` / ``device_measured()``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name}={value!r}: a reading must be a whole number (int or numpy integer), "
            f"not {type(value).__name__}; convert the device's reading exactly before comparing"
        )
    return int(value)


#: what ``assert_delivery_matches`` can compare: the volume out of the reservoir, or the dose
#: that left the catheter tip (volume or mass)
QUANTITIES: tuple[str, ...] = ("pumped_nl", "delivered_nl", "delivered_pg")


def assert_delivery_matches(
    observed_times: Sequence[Any],
    observed_volumes_nl: Sequence[int],
    oracle: Oracle,
    tol_strokes: int = 0,
    *,
    quantity: str = "pumped_nl",
) -> None:
    """The device's cumulative readings ``observed_volumes_nl[i]`` read at ``observed_times[i]``
    (naive datetimes or pump-clock ms) are the oracle's at every reading, within ``tol_strokes``
    strokes.

    ``quantity`` says what the readings are (since the oracle's start): ``"pumped_nl"`` (nL out
    of the reservoir, the default), ``"delivered_nl"`` (nL out of the catheter tip: the patient's
    dose by volume) or ``"delivered_pg"`` (pg of drug out of the tip; a stroke there is worth
    ``stroke_nl × the concentration at that time``).

    Readings must be whole numbers (``int`` or numpy integers, or an integer numpy array): a
    float, a string, a bool or None is a ``TypeError`` naming ``observed_volumes_nl[i]``, as the
    kit does not round a device's reading for it; times and readings of different lengths are a
    ``ValueError``. On the first reading off by more than the tolerance, raises
    ``AssertionError`` naming the time, the expected and observed values and by how many strokes
    they differ.

    ``tol_strokes=0`` (the default): the device is read after it finished (a simulator,
    firmware in the loop), so an exact device matches exactly and a one-stroke bug shows. Use 1
    only when a reading may be taken while a stroke is in flight (a device observed
    asynchronously)."""
    tol_strokes = _check_tol_strokes(tol_strokes)
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity={quantity!r}: one of {', '.join(QUANTITIES)}")
    times = _ms_array(observed_times, "observed_times", oracle._start.now_ms)
    _check_sequence(observed_volumes_nl, "observed_volumes_nl")
    volumes = _whole_readings(observed_volumes_nl, "observed_volumes_nl")
    if len(times) != len(volumes):
        raise ValueError(
            f"observed_times has {len(times)} readings but observed_volumes_nl {len(volumes)}: "
            f"give one time per reading"
        )
    if len(times) == 0:
        return
    order = np.argsort(times, kind="stable")
    q = oracle.stroke_nl
    strokes = oracle.stroke_times(int(times.max()))
    counts = np.searchsorted(strokes, times, side="right")
    unit = quantity.rsplit("_", 1)[1]
    for i in order:
        if quantity == "pumped_nl":
            expected, per_stroke = int(counts[i]) * q, q
        else:
            state = oracle._state_at(int(times[i]))
            expected = getattr(state, quantity)
            per_stroke = q if unit == "nl" else q * state.concentration_ug_per_ml
        observed = volumes[i]
        off = observed - expected
        if abs(off) > tol_strokes * per_stroke:
            n = off / per_stroke
            what = {
                "pumped_nl": "pumped",
                "delivered_nl": "delivered at the tip",
                "delivered_pg": "delivered at the tip",
            }[quantity]
            raise AssertionError(
                f"device diverged at {_fmt(times[i])} (reading #{i}): expected {expected} "
                f"{'nL' if unit == 'nl' else 'pg'} {what} ({int(counts[i])} strokes), observed "
                f"{observed} {'nL' if unit == 'nl' else 'pg'}: {'over' if off > 0 else 'under'} by "
                f"{abs(off)} {'nL' if unit == 'nl' else 'pg'} = {abs(n):g} stroke(s) (tolerance {tol_strokes})"
            )


def assert_strokes_match(
    observed_stroke_times: Sequence[Any],
    oracle: Oracle,
    until: Any | None = None,
    tol_strokes: int = 0,
) -> None:
    """The device's own stroke times (each stroke it fired) agree with the oracle's up to
    ``until`` (default: the oracle's now, or the last observed stroke if later): at every
    instant the cumulative stroke counts differ by at most ``tol_strokes`` (0, the default: a
    stroke log is exact; raise it only for a log that may miss the stroke in flight)."""
    tol_strokes = _check_tol_strokes(tol_strokes)
    obs = np.sort(_ms_array(observed_stroke_times, "observed_stroke_times", oracle._start.now_ms))
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
    extra; an alarm of the expected kind raised at another time is reported as late (or early)
    by how much. An expected alarm less than ``tol`` before ``until`` may still be missing (the device
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
            if kind not in _NO_PAIR:
                off = [
                    (abs(ot - t), j)
                    for j, (ot, ok, _os) in enumerate(obs)
                    if not used[j]
                    and ok == kind
                    and not any(abs(ot - et) <= tol_ms and ek == ok for et, ek, _es in expected)
                ]
                if off:  # the same alarm at another time: late (or early) by how much
                    _, j = min(off)
                    used[j] = True
                    ot = obs[j][0]
                    by = timedelta(milliseconds=abs(ot - t))
                    problems.append(
                        (
                            min(t, ot),
                            f"alarm {kind!r} {'late' if ot > t else 'early'} by {by}: expected at "
                            f"{_fmt(t)} (±{tol}), the device raised it at {_fmt(ot)}",
                        )
                    )
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
