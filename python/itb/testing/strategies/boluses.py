"""Boluses, refills, patient-bolus limits and activations (valid and invalid), and durations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from ..._units import ml_to_nl, ug_to_ng
from ...models import PumpModel
from ...program import Program
from ._common import (
    _BOLUS_UG,
    _CORE_MAX_CATHETER_UL,
    _HOUR_MS,
    _MAX_CONC,
    _MAX_DOSE_NG,
    _MAX_PER_24H,
    _MIN_MS,
    DAY_MS,
    InvalidArgument,
    _bound_ng,
    _check_common,
    _check_duration,
    _check_int,
    _check_number,
    _check_order,
    _whole_conc,
)
from ._exact import (
    _conc,
    _doses,
    _model,
    _ng_bounds,
    _peak_nl,
    _program_valid,
    _rate_nl,
    _tiered,
    _ug,
)
from .programs import concentrations
from .requests import BolusRequest, PatientLimits, RefillRequest

# ----- boluses, refills, patient boluses --------------------------------------------------------


def _durations(min_ms: int, max_ms: int) -> st.SearchStrategy[timedelta]:
    """Durations (whole ms) in min..=max: 30 min, 1 h … first, then whole minutes, then any ms."""
    if min_ms > max_ms:
        return st.nothing()
    nice = [
        d
        for d in (30 * _MIN_MS, _HOUR_MS, 15 * _MIN_MS, 4 * _HOUR_MS, _MIN_MS, DAY_MS)
        if min_ms <= d <= max_ms
    ]
    m_lo, m_hi = -(-min_ms // _MIN_MS), max_ms // _MIN_MS
    return _tiered(
        st.sampled_from(nice) if nice else None,
        st.integers(m_lo, m_hi).map(lambda m: m * _MIN_MS) if m_lo <= m_hi else None,
        st.integers(min_ms, max_ms),
    ).map(lambda ms: timedelta(milliseconds=ms))


def durations(
    min_value: timedelta = timedelta(0), max_value: timedelta = timedelta(days=1)
) -> st.SearchStrategy[timedelta]:
    """``timedelta``s (whole ms) in ``min_value..=max_value``: 30 min, 1 h, 15 min, 4 h, 1 min,
    1 day first (those in range), then whole minutes, then any ms; shrinks to 30 min (or the
    first round value in range)."""
    _check_duration(min_value, "min_value")
    _check_duration(max_value, "max_value")
    _check_order(min_value, max_value, "min_value", "max_value")
    return _durations(
        -(-min_value // timedelta(milliseconds=1)), max_value // timedelta(milliseconds=1)
    )


def catheter_volumes(max_ul: int = _CORE_MAX_CATHETER_UL) -> st.SearchStrategy[float]:
    """Catheter dead volumes (µL, whole µL as floats) in ``0..=max_ul`` (the core's limit is
    10 000 µL): 100 and 0 first."""
    _check_int(max_ul, "max_ul", 0, _CORE_MAX_CATHETER_UL)
    return st.one_of(
        st.sampled_from([v for v in (100, 0) if v <= max_ul]), st.integers(0, max_ul)
    ).map(float)


def _bolus_ng(
    m: PumpModel,
    conc: int,
    budget_nl: int,
    max_ms: int,
    max_dose_ug: float | None,
    min_dose_ug: float | None,
) -> tuple[int, int]:
    """The bolus doses (whole ng, ``lo..=hi``; empty if lo > hi) whose volume fits the reservoir
    and, within ``max_ms``, a rate budget of ``budget_nl``/day, within the dose bounds."""
    cap_nl = m.exact()["reservoir_nl"]
    lo, hi = _ng_bounds(1, min(cap_nl, max(0, budget_nl) * max_ms // DAY_MS), conc)
    if (cap := _bound_ng(max_dose_ug, upper=True)) is not None:
        hi = min(hi, cap)
    if (floor := _bound_ng(min_dose_ug, upper=False)) is not None:
        lo = max(lo, floor)
    return lo, hi


def _bolus_parts(
    m: PumpModel,
    conc: int,
    budget_nl: int,
    max_ms: int,
    max_dose_ug: float | None,
    min_dose_ug: float | None = None,
    min_ms: int = 1,
) -> st.SearchStrategy[tuple[float, timedelta]]:
    """(dose_ug, duration) with a volume of 1 nL..=capacity whose rate fits ``budget_nl``/day,
    the duration within ``min_ms``..=``max_ms``."""
    if budget_nl < 1 or min_ms > max_ms:
        return st.nothing()
    lo, hi = _bolus_ng(m, conc, budget_nl, max_ms, max_dose_ug, min_dose_ug)

    @st.composite
    def build(draw: Any) -> tuple[float, timedelta]:
        dose = draw(_doses(lo, hi, _BOLUS_UG))
        v = _rate_nl(ug_to_ng(dose, "dose_ug"), conc)
        return dose, draw(_durations(max(min_ms, -(-v * DAY_MS // budget_nl)), max_ms))

    return build()


def boluses(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
    max_duration: timedelta = timedelta(days=1),
    max_start: timedelta = timedelta(0),
    max_dose_ug: float | None = None,
    min_dose_ug: float | None = None,
    min_duration: timedelta = timedelta(milliseconds=1),
) -> st.SearchStrategy[BolusRequest]:
    """Timed boluses ``pump.bolus`` accepts on a pump of ``model`` at ``concentration`` running
    ``program`` with no other bolus and a non-empty reservoir (dose within ``min_dose_ug`` ..
    ``max_dose_ug``, duration within ``min_duration`` .. ``max_duration``). ``InvalidArgument``
    when the strategy is built if none fits: ``program`` runs at the model's maximum rate (no room
    for a bolus; :func:`patient_limits` too) or no dose within the bounds fits."""
    _check_common(model, concentration, program)
    _check_duration(max_duration, "max_duration", timedelta(milliseconds=1))
    _check_duration(min_duration, "min_duration")
    _check_order(min_duration, max_duration, "min_duration", "max_duration")
    _check_duration(max_start, "max_start")
    _check_number(max_dose_ug, "max_dose_ug", upper=True)
    _check_number(min_dose_ug, "min_dose_ug")
    _check_order(min_dose_ug, max_dose_ug, "min_dose_ug", "max_dose_ug")
    m, conc = _model(model), _conc(concentration)
    max_rate = m.exact()["max_rate_nl_per_day"]
    budget = max_rate - _peak_nl(program, conc)
    if budget < 1:
        raise InvalidArgument(
            f"program={program!r}: its highest basal rate at {conc} µg/mL, "
            f"{_peak_nl(program, conc) / 1e6:g} mL/day, is {m.name}'s maximum "
            f"({max_rate / 1e6:g} mL/day): no room for a bolus"
        )
    max_ms = max_duration // timedelta(milliseconds=1)
    lo, hi = _bolus_ng(m, conc, budget, max_ms, max_dose_ug, min_dose_ug)
    if lo > hi:
        any_lo, any_hi = _bolus_ng(m, conc, budget, max_ms, None, None)
        raise InvalidArgument(
            f"no bolus dose between min_dose_ug={min_dose_ug!r} and max_dose_ug={max_dose_ug!r} "
            f"(on the 1 ng grid) fits {m.name} at {conc} µg/mL"
            + (f" running {program!r}" if program is not None else "")
            + f" within max_duration={max_duration}: "
            + (
                f"doses from {_ug(any_lo)} to {_ug(any_hi)} µg fit"
                if any_lo <= any_hi
                else "none fits"
            )
        )
    parts = _bolus_parts(
        m,
        conc,
        budget,
        max_duration // timedelta(milliseconds=1),
        max_dose_ug,
        min_dose_ug,
        max(1, -(-min_duration // timedelta(milliseconds=1))),
    )
    start = (
        st.just(timedelta(0))
        if max_start <= timedelta(0)
        else st.one_of(
            st.just(timedelta(0)),
            st.integers(0, max_start // timedelta(minutes=1)).map(lambda n: timedelta(minutes=n)),
        )
    )
    return st.builds(lambda p, s: BolusRequest(p[0], p[1], s), parts, start)


def invalid_boluses(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
) -> st.SearchStrategy[BolusRequest]:
    """Bolus requests ``pump.bolus`` refuses (``ValidationError`` or ``ProgrammingError``) on a pump
    of ``model`` at ``concentration`` running ``program``."""
    _check_common(model, concentration, program)
    m, conc = _model(model), _conc(concentration)
    ex = m.exact()
    half_nl_ng = conc // 2000  # ng·1000/conc <= 1/2 rounds to 0 nL
    thirty = timedelta(minutes=30)
    options = [
        st.just(BolusRequest(50.0, timedelta(0))),  # zero duration
        st.integers(1, 10**6).map(lambda n: BolusRequest(-n / 10, thirty)),  # negative dose
        st.integers(1, 60).map(
            lambda n: BolusRequest(50.0, thirty, timedelta(minutes=-n))
        ),  # start in the past
    ]
    if half_nl_ng >= 1:
        options.append(st.integers(1, half_nl_ng).map(lambda ng: BolusRequest(_ug(ng), thirty)))
    # volume above the reservoir capacity (checked before the rate)
    lo_big, _ = _ng_bounds(ex["reservoir_nl"] + 1, 2 * ex["reservoir_nl"] + 10, conc)
    if lo_big <= _MAX_DOSE_NG:
        options.append(st.just(BolusRequest(_ug(lo_big), timedelta(days=1))))
    # rate above the maximum on its own (whatever basal step runs): a volume that fits the
    # reservoir, delivered too fast
    budget = ex["max_rate_nl_per_day"]
    ng_lo, ng_hi = _ng_bounds(max(1, budget // DAY_MS + 1), ex["reservoir_nl"], conc)
    if ng_lo <= ng_hi:

        @st.composite
        def too_fast(draw: Any) -> BolusRequest:
            ng = draw(st.integers(ng_lo, ng_hi))
            v = _rate_nl(ng, conc)
            t_max = min(DAY_MS, (v * DAY_MS - 1) // budget)
            t = draw(st.integers(1, max(1, t_max)))
            return BolusRequest(_ug(ng), timedelta(milliseconds=t))

        options.append(too_fast())
    return st.one_of(options)


def refills(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
    change_concentration: bool = False,
    min_added_ml: float = 0.0,
    max_added_ml: float | None = None,
    strengths: Sequence[int] | None = None,
) -> st.SearchStrategy[RefillRequest]:
    """Refills ``pump.refill`` accepts (``added_ml`` ≥ ``min_added_ml``, up to the capacity or
    ``max_added_ml``). With ``change_concentration`` the new strength is drawn from ``strengths``
    (default: :func:`concentrations`) among those that keep ``program`` valid."""
    _check_common(model, concentration, program)
    _check_number(min_added_ml, "min_added_ml", optional=False)
    _check_number(max_added_ml, "max_added_ml", upper=True)
    _check_order(min_added_ml, max_added_ml, "min_added_ml", "max_added_ml")
    if strengths is not None:
        if (
            isinstance(strengths, (str, bytes))
            or not isinstance(strengths, Sequence)
            and not isinstance(strengths, (set, frozenset))
        ):
            raise InvalidArgument(
                f"strengths={strengths!r}: expected a sequence of whole µg/mL (ints) or None"
            )
        strengths = [_whole_conc(c, f"strengths[{i}]") for i, c in enumerate(strengths)]
    m, conc = _model(model), _conc(concentration)
    full_ul = cap_ul = m.exact()["reservoir_nl"] // 1000
    if max_added_ml is not None and not math.isinf(max_added_ml):
        cap_ul = min(cap_ul, ml_to_nl(max_added_ml, "max_added_ml") // 1000)
    lo_ul = -(-ml_to_nl(min_added_ml, "min_added_ml") // 1000)
    ml_lo, ml_hi = -(-lo_ul // 1000), cap_ul // 1000
    added = _tiered(
        st.just(cap_ul) if lo_ul <= cap_ul else None,  # fill to capacity
        st.integers(ml_lo, ml_hi).map(lambda n: n * 1000) if ml_lo <= ml_hi else None,  # whole mL
        st.integers(lo_ul, cap_ul),  # any µL
    ).map(lambda u: u / 1000)
    if change_concentration:
        if strengths is not None:
            ok = [
                int(c) for c in strengths if program is None or _program_valid(program, m, int(c))
            ]
            strength = st.sampled_from(ok) if ok else st.nothing()
        else:
            strength = concentrations()
            if program is not None:
                strength = strength.filter(lambda c: _program_valid(program, m, c))
    else:
        strength = st.just(conc)
    aspirated = st.one_of(st.none(), st.integers(0, full_ul).map(lambda u: u / 1000))
    tol_ml = st.sampled_from([1.0, 0.0, 0.5, 2.0])
    tol_pct = st.sampled_from([20.0, 0.0, 10.0, 100.0])
    return st.builds(RefillRequest, added, strength, aspirated, tol_ml, tol_pct)


def invalid_refills(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
) -> st.SearchStrategy[RefillRequest]:
    """Refills ``pump.refill`` refuses: ``ReservoirError`` (overfill), ``ValidationError`` (negative
    volume or tolerance, tolerance above 100 %, concentration outside 1..100000 or fractional), and
    with ``program``, ``ProgrammingError`` for a strength that makes it impossible."""
    _check_common(model, concentration, program)
    m, conc = _model(model), _conc(concentration)
    cap_ul = m.exact()["reservoir_nl"] // 1000
    options = [
        st.integers(cap_ul + 1, cap_ul + 100_000).map(lambda u: RefillRequest(u / 1000, conc)),
        st.integers(1, 100_000).map(lambda u: RefillRequest(-u / 1000, conc)),
        st.one_of(st.just(0), st.integers(-1000, -1), st.integers(_MAX_CONC + 1, 10**7)).map(
            lambda c: RefillRequest(1.0, c)
        ),
        st.integers(1, 1000).map(lambda c: RefillRequest(1.0, c + 0.5)),
        st.integers(1, 1000).map(lambda n: RefillRequest(1.0, conc, tolerance_ml=-n / 10)),
        st.integers(1, 1000).map(lambda n: RefillRequest(1.0, conc, tolerance_pct=100.0 + n)),
    ]
    if program is not None and _peak_nl(program, conc) > 0:
        options.append(
            concentrations()
            .filter(lambda c: not _program_valid(program, m, c))
            .map(lambda c: RefillRequest(1.0, c))
        )
    return st.one_of(options)


def patient_limits(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
    max_duration: timedelta = timedelta(hours=4),
) -> st.SearchStrategy[PatientLimits]:
    """Patient-bolus limits ``set_patient_bolus_limits`` accepts; the bolus rate fits over the
    program's basal and the lockout is at least the duration, so granted boluses never overlap and
    an activation is not denied for the rate (unless a timed bolus runs at the same time)."""
    _check_common(model, concentration, program)
    _check_duration(max_duration, "max_duration", timedelta(milliseconds=1))
    m, conc = _model(model), _conc(concentration)
    max_rate = m.exact()["max_rate_nl_per_day"]
    budget = max_rate - _peak_nl(program, conc)
    if budget < 1:
        raise InvalidArgument(
            f"program={program!r}: its highest basal rate at {conc} µg/mL, "
            f"{_peak_nl(program, conc) / 1e6:g} mL/day, is {m.name}'s maximum "
            f"({max_rate / 1e6:g} mL/day): no room for a bolus"
        )
    parts = _bolus_parts(
        m, conc, budget, min(max_duration // timedelta(milliseconds=1), DAY_MS), None
    )
    lockout = st.one_of(
        st.sampled_from([timedelta(hours=1), timedelta(0), timedelta(hours=4)]),
        st.integers(0, 24 * 60).map(lambda n: timedelta(minutes=n)),
    )
    per_day = st.one_of(st.sampled_from([4, 1, _MAX_PER_24H]), st.integers(1, _MAX_PER_24H))
    # the lockout is at least the bolus duration, so granted boluses never overlap
    return st.builds(
        lambda p, lo, n: PatientLimits(p[0], p[1], max(lo, p[1]), n), parts, lockout, per_day
    )


def activations(
    max_size: int = 10, max_gap: timedelta = timedelta(hours=6)
) -> st.SearchStrategy[list[timedelta]]:
    """Sorted offsets from the pump's now (whole minutes, gaps up to ``max_gap``)."""
    _check_int(max_size, "max_size", 0)
    _check_duration(max_gap, "max_gap")
    gap = st.integers(0, max(0, max_gap // timedelta(minutes=1))).map(
        lambda n: timedelta(minutes=n)
    )

    def cumulative(gaps: list[timedelta]) -> list[timedelta]:
        out, t = [], timedelta(0)
        for g in gaps:
            t += g
            out.append(t)
        return out

    return st.lists(gap, max_size=max_size).map(cumulative)


def invalid_patient_limits(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
) -> st.SearchStrategy[PatientLimits]:
    """Patient-bolus limits ``set_patient_bolus_limits`` refuses with ``ValidationError`` whose
    ``field`` names the one bad argument: a valid :func:`patient_limits` draw with exactly one
    field out of range — ``dose_ug`` negative, below 1 ng, rounding to 0 nL at ``concentration``
    or above the reservoir's capacity; ``duration`` zero, negative or above 1 day; ``lockout``
    negative or above 1 day; ``max_per_24h`` below 1 or above 24. A refused call changes nothing."""
    from dataclasses import replace

    _check_common(model, concentration, program)
    m, conc = _model(model), _conc(concentration)
    cap_nl = m.exact()["reservoir_nl"]
    day = timedelta(days=1)
    bad_dose = [
        st.integers(1, 10**6).map(lambda n: -n / 10),
        st.integers(1, 4).map(lambda n: n / 10_000),
    ]
    if conc // 2000 >= 1:  # ng·1000/conc <= 1/2 rounds to 0 nL
        bad_dose.append(st.integers(1, conc // 2000).map(_ug))
    lo_big, _ = _ng_bounds(cap_nl + 1, 2 * cap_nl + 10, conc)
    if lo_big <= _MAX_DOSE_NG:
        bad_dose.append(st.integers(lo_big, min(_MAX_DOSE_NG, 2 * lo_big)).map(_ug))
    bad = {
        "dose_ug": st.one_of(bad_dose),
        "duration": st.one_of(
            st.just(timedelta(0)),
            st.integers(1, 24 * 60).map(lambda n: timedelta(minutes=-n)),
            st.integers(1, 24 * 60).map(lambda n: day + timedelta(minutes=n)),
        ),
        "lockout": st.one_of(
            st.integers(1, 24 * 60).map(lambda n: timedelta(minutes=-n)),
            st.integers(1, 24 * 60).map(lambda n: day + timedelta(minutes=n)),
        ),
        "max_per_24h": st.one_of(
            st.integers(-_MAX_PER_24H, 0), st.integers(_MAX_PER_24H + 1, 1000)
        ),
    }

    def with_bad(base: PatientLimits, field: str) -> st.SearchStrategy[PatientLimits]:
        def put(value: Any) -> PatientLimits:
            changed: dict[str, Any] = {field: value}
            return replace(base, **changed)

        return bad[field].map(put)

    return st.tuples(patient_limits(m, conc, program), st.sampled_from(sorted(bad))).flatmap(
        lambda base_field: with_bad(*base_field)
    )


def invalid_activations(
    max_size: int = 10, max_gap: timedelta = timedelta(hours=6)
) -> st.SearchStrategy[list[timedelta]]:
    """Like :func:`activations`, but the last offset is before the one ahead of it (before the
    pump's now when it is the only one): the calls before it succeed and
    ``pump.patient_bolus(at=start + offsets[-1])`` is refused with ``ValidationError`` (``field``
    ``"at"``), changing nothing."""
    back = st.one_of(
        st.integers(1, 24 * 60).map(lambda n: timedelta(minutes=n)),
        st.integers(1, DAY_MS).map(lambda n: timedelta(milliseconds=n)),
    )
    return st.tuples(activations(max(0, max_size - 1), max_gap), back).map(
        lambda ok_back: ok_back[0] + [(ok_back[0][-1] if ok_back[0] else timedelta(0)) - ok_back[1]]
    )
