"""Pump models, concentrations and programs (valid and invalid)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Any

from hypothesis import strategies as st

from ... import _limits
from ... import models as _models
from ...models import BatteryModel, PumpModel
from ...program import Continuous, Flex, Program
from ._common import (
    _HOUR_MS,
    _MAX_CONC,
    _MAX_DOSE_NG,
    _MAX_STEPS_PER_DAY,
    _MIN_MS,
    DAY_MS,
    InvalidArgument,
    _bound_ng,
    _check_common,
    _check_int,
    _check_number,
    _check_order,
    _names,
)
from ._exact import _conc, _doses, _model, _ng_bounds, _ug

# ----- models and concentrations --------------------------------------------------------------


def concentrations(min_value: int = 1, max_value: int = _MAX_CONC) -> st.SearchStrategy[int]:
    """Whole µg/mL in ``min_value..=max_value`` (clinical strengths first; shrinks to 2000)."""
    _check_int(min_value, "min_value", 1, _MAX_CONC)
    _check_int(max_value, "max_value", 1, _MAX_CONC)
    _check_order(min_value, max_value, "min_value", "max_value")
    common = [c for c in (2000, 500, 1000, 50, 3000, 4000) if min_value <= c <= max_value]
    return (
        st.one_of(st.sampled_from(common), st.integers(min_value, max_value))
        if common
        else st.integers(min_value, max_value)
    )


def _batteries() -> st.SearchStrategy[BatteryModel]:
    @st.composite
    def build(draw: Any) -> BatteryModel:
        capacity = draw(st.integers(50, 1000))
        eos = draw(st.integers(0, capacity // 10))
        eri = draw(st.integers(eos, capacity // 4))
        return BatteryModel(
            capacity_mah=float(capacity),
            quiescent_ua=float(draw(st.integers(0, 20))),
            stroke_uc=float(draw(st.integers(0, 500))),
            tone_uc=float(draw(st.integers(0, 10_000))),
            telemetry_uc=float(draw(st.integers(0, 50_000))),
            eri_mah=float(eri),
            eos_mah=float(eos),
        )

    return st.one_of(st.just(_models.NOMINAL_BATTERY), build())


def pump_models(
    presets_only: bool = False, battery: bool | None = True
) -> st.SearchStrategy[PumpModel]:
    """Presets of :mod:`itb.models` (shrinks to SYNCHROMED_II_40) and, unless ``presets_only``,
    custom :class:`itb.PumpModel`s that validate. ``battery``: True = always one, False = none,
    None = either."""
    from dataclasses import replace

    presets = [
        _models.SYNCHROMED_II_40,
        _models.SYNCHROMED_II_20,
        _models.PROMETRA_II_40,
        _models.PROMETRA_II_20,
    ]
    if battery is False:
        presets = [replace(p, battery=None) for p in presets]
    preset_st = st.sampled_from(presets)
    if battery is None:
        preset_st = st.one_of(preset_st, preset_st.map(lambda p: replace(p, battery=None)))
    if presets_only:
        return preset_st

    @st.composite
    def custom(draw: Any) -> PumpModel:
        reservoir_ml = draw(st.one_of(st.sampled_from([40, 20]), st.integers(1, 100)))
        stroke_nl = draw(st.one_of(st.sampled_from([2000, 1000, 500]), st.integers(1, 10_000)))
        cap_ul = min(stroke_nl * DAY_MS, _limits.MAX_RATE_NL_PER_DAY) // 1000  # µL/day
        max_ul = draw(
            st.one_of(st.just(24_000), st.integers(1, cap_ul)).filter(lambda v: v <= cap_ul)
        )
        min_ul = draw(st.one_of(st.just(48), st.integers(1, max_ul)).filter(lambda v: v <= max_ul))
        low_ml = draw(st.integers(0, reservoir_ml))
        path_ul = draw(st.one_of(st.just(100), st.integers(0, 1000)))
        if battery is None:
            bat = draw(st.one_of(st.none(), _batteries()))
        else:
            bat = draw(_batteries()) if battery else None
        return PumpModel(
            name=f"custom {reservoir_ml} mL",
            reservoir_ml=float(reservoir_ml),
            stroke_nl=stroke_nl,
            min_rate_ml_per_day=min_ul / 1000,
            max_rate_ml_per_day=max_ul / 1000,
            low_reservoir_ml=float(low_ml),
            pump_path_ul=float(path_ul),
            battery=bat,
        )

    return st.one_of(preset_st, custom())


# ----- programs -------------------------------------------------------------------------------


def _step_ms_in_day(first: bool) -> st.SearchStrategy[int]:
    """An offset within a day (ms): whole hours first, then minutes, then any ms."""
    low = 1 if first else 0
    return st.one_of(
        st.integers(low, 23).map(lambda h: h * _HOUR_MS),
        st.integers(low, 1439).map(lambda m: m * _MIN_MS),
        st.integers(low, DAY_MS - 1),
    )


def _clock(ms: int) -> time:
    secs, milli = divmod(ms, 1000)
    return time(secs // 3600, secs // 60 % 60, secs % 60, milli * 1000)


def programs(
    model: PumpModel | None = None,
    concentration: int | None = None,
    kind: Sequence[str] = ("continuous", "flex_day", "flex_week"),
    max_steps_per_day: int = _MAX_STEPS_PER_DAY,
    max_ug_per_day: float | None = None,
    allow_zero: bool = True,
    min_ug_per_day: float | None = None,
) -> st.SearchStrategy[Program]:
    """Programs valid on ``model`` at ``concentration`` (see the module docstring). Zero (a
    stopped step or program) is drawn by default (``allow_zero=True``) even with
    ``min_ug_per_day``: it is the only dose when ``max_ug_per_day`` is below the model's rates.
    ``InvalidArgument`` when ``min_ug_per_day`` and ``max_ug_per_day`` cross on the 1 ng grid
    (``100.0005`` and ``100.0005``: 100.001 .. 100.0) or, with ``allow_zero=False``, no dose
    lies within them and the model's rates."""
    _check_common(model, concentration)
    m, conc = _model(model), _conc(concentration)
    _check_int(max_steps_per_day, "max_steps_per_day", 1, _MAX_STEPS_PER_DAY)
    kind = _names(kind, ("continuous", "flex_day", "flex_week"), "kind")
    _check_number(max_ug_per_day, "max_ug_per_day", upper=True)
    _check_number(min_ug_per_day, "min_ug_per_day")
    _check_order(min_ug_per_day, max_ug_per_day, "min_ug_per_day", "max_ug_per_day")
    ex = m.exact()
    lo, hi = _ng_bounds(ex["min_rate_nl_per_day"], ex["max_rate_nl_per_day"], conc)
    if (cap := _bound_ng(max_ug_per_day, upper=True)) is not None:
        hi = min(hi, cap)
    if (floor := _bound_ng(min_ug_per_day, upper=False)) is not None:
        lo = max(lo, floor)
    if (floor is not None and cap is not None and floor > cap) or (lo > hi and not allow_zero):
        model_lo, model_hi = _ng_bounds(ex["min_rate_nl_per_day"], ex["max_rate_nl_per_day"], conc)
        raise InvalidArgument(
            f"no dose between min_ug_per_day={min_ug_per_day!r} and max_ug_per_day="
            f"{max_ug_per_day!r} on the 1 ng grid"
            + (
                f" ({_ug(floor)} .. {_ug(cap)} µg/day)"
                if floor is not None and cap is not None
                else ""
            )
            + f" within what {m.name} runs at {conc} µg/mL ({_ug(model_lo)} .. {_ug(model_hi)} "
            f"µg/day)" + ("" if allow_zero else " and allow_zero=False: nothing to draw")
        )
    dose = _doses(lo, hi)
    if allow_zero:
        # a fixed number of choices either way (see _tiered): zero only when the flag says so
        dose = (
            st.tuples(st.booleans(), dose).map(lambda z_d: 0.0 if z_d[0] else z_d[1])
            if lo <= hi
            else st.just(0.0)
        )

    def day_steps(n_max: int, first_day: bool) -> st.SearchStrategy[list[int]]:
        return st.lists(_step_ms_in_day(first_day), unique=True, max_size=n_max).map(sorted)

    @st.composite
    def flex_day(draw: Any) -> Flex:
        offs = [0] + draw(day_steps(max_steps_per_day - 1, True))
        return Flex(period="day", steps=[(_clock(o), draw(dose)) for o in offs])

    @st.composite
    def flex_week(draw: Any) -> Flex:
        steps = []
        for day in range(7):
            offs = (
                ([0] + draw(day_steps(max_steps_per_day - 1, True)))
                if day == 0
                else draw(day_steps(max_steps_per_day, False))
            )
            steps += [((day, _clock(o)), draw(dose)) for o in offs]
        return Flex(period="week", steps=steps)

    builders: dict[str, st.SearchStrategy[Program]] = {
        "continuous": dose.map(lambda d: Continuous(ug_per_day=d)),
        "flex_day": flex_day(),
        "flex_week": flex_week(),
    }
    return st.sampled_from(list(kind)).flatmap(lambda k: builders[k])


def invalid_programs(
    model: PumpModel | None = None, concentration: int | None = None
) -> st.SearchStrategy[Program]:
    """Programs that construct but that ``Pump(...)``/``set_program`` refuse on ``model`` at
    ``concentration``: one step (or the continuous rate) below the minimum / rounding to 0 nL/day,
    or above the maximum (``ProgrammingError`` or ``ValidationError``)."""
    _check_common(model, concentration)
    m, conc = _model(model), _conc(concentration)
    ex = m.exact()
    lo, hi = _ng_bounds(ex["min_rate_nl_per_day"], ex["max_rate_nl_per_day"], conc)
    bad = [st.integers(hi + 1, min(_MAX_DOSE_NG, max(hi + 1, 2 * hi + 1000))).map(_ug)]
    if lo > 1:
        bad.insert(0, st.integers(1, lo - 1).map(_ug))
    bad_dose = st.one_of(bad)

    @st.composite
    def flex_with_bad_step(draw: Any) -> Flex:
        good = draw(programs(m, conc, kind=("flex_day",), max_steps_per_day=4))
        steps = list(good.steps)
        i = draw(st.integers(0, len(steps) - 1))
        steps[i] = (steps[i][0], draw(bad_dose))
        return Flex(period="day", steps=steps)

    return st.one_of(bad_dose.map(lambda d: Continuous(ug_per_day=d)), flex_with_bad_step())
