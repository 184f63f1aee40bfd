"""The pump's invariants, in one place: plain functions over an :class:`itb.Pump` (or a pair of
states before/after a step) that raise ``AssertionError`` naming the broken rule.

Used by our own property tests (``tests/test_invariants.py``, ``tests/test_stateful.py``), by
:class:`itb.testing.PumpStateMachine`, and by downstream suites on the oracle's pump.

* :func:`conservation` — filled = reservoir + path + delivered + withdrawn, in nL and pg (nominal
  pump) and exactly in fL and ag (any stroke error);
* :func:`stroke_accounting` — pumped = strokes × stroke volume, reservoir within capacity, empty
  exactly when the usable reservoir is below one stroke (nominal pump);
* :func:`within_one_stroke_of_ideal` — across a step of a continuous program with no bolus, the
  accumulator gains exactly rate × time and strokes fire at every whole stroke;
* :func:`monotone` — clock, strokes and ledgers never go back; the battery never recharges;
* :func:`no_delivery_while_stopped` — no stroke across an advance that started suspended,
  stalled, empty or at end of service;
* :func:`patient_limits_respected` — granted patient boluses keep the lockout and the maximum
  per rolling 24 h (from the event log);
* :func:`projection_matches_simulation` — ``project()`` then ``advance_to`` observes the same times;
* :func:`check_state` / :func:`check_step` — all of those that apply to one state / a pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._limits import MAX_TIME_MS as _MAX_MS
from .._limits import MS_PER_DAY as D  # rates are per day, the accumulator in nL·ms/day

__all__ = [
    "conservation",
    "stroke_accounting",
    "within_one_stroke_of_ideal",
    "monotone",
    "no_delivery_while_stopped",
    "patient_limits_respected",
    "projection_matches_simulation",
    "is_stopped",
    "check_state",
    "check_step",
]


def _core(pump: Any) -> Any:
    """The ``itb._core.Pump`` of an ``itb.Pump`` (or the core pump itself)."""
    return getattr(pump, "core", pump)


def conservation(pump: Any, *, nominal: bool | None = None) -> None:
    """filled = reservoir + path + delivered + tissue + withdrawn (docs: guide/faults.md#the-ledgers):
    exactly in nL and pg (the physical reservoir; tissue: leak, disconnection, migrated tip,
    pocket); in fL and ag the tissue share is what remains and must be the tissue ledger's to
    within its nL rounding. The nL/pg law is checked when ``nominal`` (``None``: read from the
    pump — ``stroke_error_ppm`` 0 and every physical volume a whole number of nanolitres, which a
    partial occlusion's fractions of a stroke can break)."""
    c = _core(pump)
    res_fl = c.true_reservoir_fl
    tissue_fl = c.filled_fl - res_fl - c.path_fl - c.delivered_fl - c.withdrawn_fl
    assert 0 <= tissue_fl and abs(tissue_fl - c.tissue_nl * 1_000_000) < 1_000_000, (
        f"volume not conserved (fL): filled {c.filled_fl} != reservoir {res_fl} + path {c.path_fl} + "
        f"delivered {c.delivered_fl} + tissue {c.tissue_nl} nL + withdrawn {c.withdrawn_fl}"
    )
    tissue_ag = c.filled_ag - res_fl * c.concentration - c.path_ag - c.delivered_ag - c.withdrawn_ag
    assert 0 <= tissue_ag and abs(tissue_ag - c.tissue_pg * 1_000_000) < 1_000_000 * max(
        1, c.concentration
    ), (
        f"drug mass not conserved (ag): filled {c.filled_ag} != reservoir {res_fl * c.concentration} + path "
        f"{c.path_ag} + delivered {c.delivered_ag} + tissue {c.tissue_pg} pg + withdrawn {c.withdrawn_ag}"
    )
    if nominal is None:
        whole = (res_fl, c.path_fl, c.delivered_fl, c.withdrawn_fl, tissue_fl)
        nominal = c.stroke_error_ppm == 0 and all(v % 1_000_000 == 0 for v in whole)
    if nominal:
        res = c.true_reservoir_nl
        assert c.filled_nl == res + c.path_nl + c.delivered_nl + c.tissue_nl + c.withdrawn_nl, (
            f"volume not conserved (nL): filled {c.filled_nl} != reservoir {res} + path {c.path_nl} + "
            f"delivered {c.delivered_nl} + tissue {c.tissue_nl} + withdrawn {c.withdrawn_nl}"
        )
        assert c.filled_pg == (
            res * c.concentration + c.path_pg + c.delivered_pg + c.tissue_pg + c.withdrawn_pg
        ), (
            f"drug mass not conserved (pg): filled {c.filled_pg} != reservoir {res * c.concentration} + "
            f"path {c.path_pg} + delivered {c.delivered_pg} + tissue {c.tissue_pg} + withdrawn {c.withdrawn_pg}"
        )


def stroke_accounting(pump: Any) -> None:
    """pumped = strokes × stroke volume; 0 <= reservoir <= capacity; a nominal pump is empty
    exactly when its usable reservoir is below one stroke."""
    c = _core(pump)
    q, capacity = c.model["stroke_nl"], c.model["reservoir_nl"]
    assert c.pumped_nl == c.strokes * q, f"pumped {c.pumped_nl} nL != {c.strokes} strokes × {q} nL"
    assert 0 <= c.reservoir_nl <= capacity, f"reservoir {c.reservoir_nl} nL outside 0..{capacity}"
    if c.stroke_error_ppm == 0:
        assert c.empty == (c.reservoir_nl < q), (
            f"empty={c.empty} with {c.reservoir_nl} nL left (stroke {q} nL)"
        )


def is_stopped(pump: Any) -> bool:
    """Delivery stopped: suspended, motor stall, empty reservoir or end of service."""
    c = _core(pump)
    return bool(c.suspended or c.stalled or c.empty or c.eos)


def _continuous_rate(c: Any) -> int | None:
    """The basal volume rate (nL/day) when the program is continuous, else None."""
    _period, _anchor, steps = c.schedule
    rates = {r for _o, r in steps}
    return rates.pop() if len(rates) == 1 else None


def within_one_stroke_of_ideal(before: Any, after: Any) -> bool:
    """Across an advance (no call in between) of a continuous program with no bolus, delivering
    throughout: the accumulator gains exactly rate × elapsed ms (nL·ms/day), every whole stroke in
    it fires, and less than one stroke stays behind — the delivered volume is within one stroke
    of ideal. Returns False (checks nothing) when the step does not qualify."""
    b, a = _core(before), _core(after)
    rate = _continuous_rate(b)
    if (
        rate is None
        or b.boluses
        or a.boluses
        or is_stopped(b)
        or is_stopped(a)
        or a.schedule != b.schedule
        or a.concentration != b.concentration
    ):
        return False
    qd = b.model["stroke_nl"] * D
    gained = b.accumulator + rate * (a.now_ms - b.now_ms)
    k = a.strokes - b.strokes
    assert k * qd <= gained < (k + 1) * qd, (
        f"{k} strokes in {a.now_ms - b.now_ms} ms at {rate} nL/day: ideal is {gained / qd:.6f} strokes "
        f"(more than one stroke off)"
    )
    assert a.accumulator == gained - k * qd, f"accumulator {a.accumulator} != {gained - k * qd}"
    return True


def monotone(before: Any, after: Any) -> None:
    """From one state to a later one of the same pump: the clock, stroke count, pumped, delivered,
    filled and withdrawn ledgers never go back, and the battery never recharges."""
    b, a = _core(before), _core(after)
    for name in (
        "now_ms",
        "strokes",
        "pumped_nl",
        "delivered_fl",
        "delivered_ag",
        "filled_fl",
        "filled_ag",
        "withdrawn_fl",
        "withdrawn_ag",
        "battery_used_pc",
    ):
        x, y = getattr(b, name), getattr(a, name)
        assert y >= x, f"{name} went back: {x} -> {y}"
    rb, ra = b.battery_remaining_pc, a.battery_remaining_pc
    if rb is not None and ra is not None:
        assert ra <= rb, f"battery recharged: {rb} -> {ra} pC"
    assert not (b.eos and not a.eos), "end of service was cleared"


def no_delivery_while_stopped(before: Any, after: Any) -> None:
    """Across an advance with no call in between: a pump that was stopped (suspended, stalled,
    empty, EOS) fires no stroke and delivers nothing."""
    b, a = _core(before), _core(after)
    if is_stopped(b):
        why = [n for n in ("suspended", "stalled", "empty", "eos") if getattr(b, n)]
        assert a.strokes == b.strokes, (
            f"{a.strokes - b.strokes} strokes while stopped ({', '.join(why)})"
        )
        assert a.delivered_fl == b.delivered_fl, f"delivered while stopped ({', '.join(why)})"


def patient_limits_respected(
    events: Iterable[Any], lockout_ms: int, max_per_24h: int, since_ms: int | None = None
) -> None:
    """Granted patient boluses (``patient_bolus_granted`` events, all of the pump's life) keep the
    clinician limits: each grant at or after ``since_ms`` (when these limits were set) comes at
    least ``lockout_ms`` after the previous grant, and the rolling window (t − 24 h, t] holds at
    most ``max_per_24h`` grants. Events are ``itb.Event`` or raw core tuples."""
    grants = sorted(_time_ms(e) for e in events if _kind(e) == "patient_bolus_granted")
    for i, t in enumerate(grants):
        if since_ms is not None and t < since_ms:
            continue
        if i:
            assert t - grants[i - 1] >= lockout_ms, (
                f"patient bolus granted {t - grants[i - 1]} ms after the previous one (lockout {lockout_ms} ms)"
            )
        in_window = sum(1 for g in grants[: i + 1] if t - D < g)
        assert in_window <= max_per_24h, (
            f"{in_window} patient boluses in the 24 h up to {t} (max {max_per_24h})"
        )


def _time_ms(e: Any) -> int:
    return int(e.time_ms if hasattr(e, "time_ms") else e[0])


def _kind(e: Any) -> str:
    return str(e.kind if hasattr(e, "kind") else e[1])


_PROJECTED = (
    ("next_stroke", None),
    ("low_reservoir", "low_reservoir"),
    ("reservoir_empty", "reservoir_empty"),
    ("drug_at_tip", "drug_at_tip"),
    ("eri", "eri"),
    ("eos", "eos"),
)


def projection_matches_simulation(pump: Any, horizon_ms: int = 30 * D) -> None:
    """``project(horizon)`` then ``advance_to(now + horizon)`` on a copy: the first stroke and the
    first low-reservoir, empty, drug-at-tip, ERI and EOS events strictly after now are at the
    projected times (None: none within the horizon). The pump itself is not changed."""
    c = _core(pump).copy()
    now = c.now_ms
    horizon_ms = max(
        0, min(horizon_ms, _MAX_MS - now)
    )  # the pump clock ends at 9999-12-31 23:59:59.999
    projected = c.project(horizon_ms, False)
    events, times = c.advance_to_recording(now + horizon_ms)
    after = [(t, k) for t, k, *_ in events if t > now]
    for i, (name, kind) in enumerate(_PROJECTED):
        if kind is None:
            later = [int(t) for t in times if t > now]
            seen = later[0] if later else None
        else:
            seen = next((t for t, k in after if k == kind), None)
        assert projected[i] == seen, (
            f"projected {name} at {projected[i]}, simulation saw it at {seen}"
        )


def check_state(pump: Any) -> None:
    """Every invariant of a single state: conservation, stroke accounting and the core's own
    consistency check."""
    conservation(pump)
    stroke_accounting(pump)
    _core(pump).check_invariants()


def check_step(before: Any, after: Any, *, advance_only: bool = False) -> None:
    """Every invariant of a step from ``before`` to ``after`` (copies of the same pump). With
    ``advance_only`` (time passed, no call): also no delivery while stopped and within one stroke
    of ideal."""
    check_state(after)
    monotone(before, after)
    if advance_only:
        no_delivery_while_stopped(before, after)
        within_one_stroke_of_ideal(before, after)
