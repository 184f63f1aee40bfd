"""Hypothesis strategies for test suites that drive :mod:`itb` (``pip install 'itb[testing]'``).

Plain functions returning strategies, in the style of hypothesis' own ``extra`` modules. Every
valid strategy yields only values the real API accepts; the ``invalid_*`` strategies yield values
it must refuse with a typed :class:`itb.ItbError`. Values are built from integers and short lists
of round numbers so that a failing example shrinks to something readable: 100.0 µg/day, a step at
01:00, a 30-minute bolus of 50 µg — not 1.3e-7.

This module imports hypothesis; ``import itb`` does not import it (use ``from itb import
strategies``).

Units are those of the public API: doses in µg (floats, whole ng), dose rates in µg/day,
volumes in mL (µL for catheters), concentrations in whole µg/mL, times as naive ``datetime``,
durations as ``timedelta`` (whole ms).

Valid strategies
----------------
``concentrations(min_value=1, max_value=100_000)``
    whole µg/mL (ints); shrinks to 2000.
``pump_models(presets_only=False, battery=True)``
    :class:`itb.PumpModel`: the presets of :mod:`itb.models` (first) and custom models that
    validate. ``battery``: ``True`` every model has one (presets keep ``NOMINAL_BATTERY``, custom
    ones get a generated :class:`~itb.models.BatteryModel`), ``False`` none, ``None`` either.
``programs(model=None, concentration=None, kind=("continuous", "flex_day", "flex_week"),
max_steps_per_day=13, max_ug_per_day=None, allow_zero=True, min_ug_per_day=None)``
    :class:`itb.Continuous` / :class:`itb.Flex` valid on ``model`` at ``concentration`` (defaults:
    SYNCHROMED_II_40 at 2000 µg/mL): every non-zero step's volume rate
    ``round_half_even(ng/day × 1000 / conc)`` lies within the model's min..max nL/day; exactly 0 is
    allowed (``allow_zero``). Day steps are ``datetime.time``s, week steps ``(weekday, time)``;
    at most ``max_steps_per_day`` (≤ 13) start on any day. ``max_ug_per_day`` caps every step,
    ``min_ug_per_day`` bounds every non-zero one from below.
``durations(min_value=0, max_value=1 day)``
    ``timedelta``s, whole ms: 30 min, 1 h, 15 min, 4 h, 1 min, 1 day first, then whole minutes.
``catheter_volumes(max_ul=10_000)``
    catheter dead volumes, whole µL as floats (100 and 0 first).
``boluses(model=None, concentration=None, program=None, max_duration=1 day, max_start=0,
max_dose_ug=None, min_dose_ug=None, min_duration=1 ms)``
    :class:`BolusRequest` ``(dose_ug, duration, start)``, ``start`` an offset from the pump's now.
    Its volume is 1 nL .. the reservoir capacity and its rate fits on top of ``program``'s highest
    basal rate (none = 0) under the model's maximum. ``request.apply(pump)`` calls ``pump.bolus``.
``refills(model=None, concentration=None, program=None, change_concentration=False, min_added_ml=0.0,
max_added_ml=None, strengths=None)``
    :class:`RefillRequest`; the added volume (``min_added_ml`` .. the capacity or ``max_added_ml``)
    fits the reservoir. With ``change_concentration`` the new strength (from ``strengths``, default
    any) keeps ``program`` valid (pending boluses may still make the pump refuse it).
``patient_limits(model=None, concentration=None, program=None, max_duration=timedelta(hours=4))``
    :class:`PatientLimits` accepted by ``pump.set_patient_bolus_limits``; the bolus rate fits
    over the program's basal and the lockout is at least the duration (no overlapping grants).
``activations(max_size=10, max_gap=timedelta(hours=6))``
    sorted lists of ``timedelta`` offsets from the pump's now, for ``pump.patient_bolus(at=now+off)``.
``pumps(model=None, concentration=None, program=None, stroke_error=False, min_reservoir_ml=0.0)``
    whole :class:`itb.Pump` objects (model, naive ``now`` to the ms, reservoir, concentration,
    program, catheter, ``path_primed``). The reservoir may be empty unless ``min_reservoir_ml``
    says otherwise (a bolus on an empty reservoir raises ``ReservoirError``).
``scenarios(max_actions=8, horizon=timedelta(days=2), presets_only=False, actions=None)``
    plain dicts in the TOML scenario format (what ``tomllib`` returns) accepted by
    :func:`itb.scenario.from_dict` and that run without a refused call: actions in time order
    (``set_program``, ``bolus`` with an optional ``cancel_bolus``, ``refill`` at the same, a
    stronger or a weaker concentration, a ``start_bridge_bolus`` right after a stronger refill,
    ``start_priming_bolus`` for a saline path (``path_primed = false`` or right after
    ``revise_catheter``), patient-bolus limits and activations, ``suspend``/``resume``,
    ``inject_motor_stall``/``clear_fault``, ``telemetry_session``) and ``[run] until``.
    ``actions`` restricts the ``do`` names drawn (:data:`SCENARIO_ACTIONS`; e.g. ``("refill",
    "start_bridge_bolus", "set_program")`` for concentration changes). Every call is valid by
    construction: the basal stays under half the run's rate budget at every concentration the
    scenario reaches, boluses (and the patient bolus) under the other half and never overlap,
    the reservoir cannot empty within the horizon (a priming bolus, which runs as fast as the
    model allows, is added only when the reservoir holds it on top of that); bridge and priming
    boluses are added only where the pump plans one. A pump run alongside checks each call as
    it is drawn (a refusal there is a bug in itb and fails loudly).

Arguments are checked when a strategy is built: a wrong type or a value out of range (a model
that is not an :class:`itb.PumpModel`, a fractional or out-of-range concentration, a minimum
above its maximum, a duration that is not a ``timedelta``) raises
``hypothesis.errors.InvalidArgument`` (:class:`InvalidArgument`, also a ``ValueError``) naming
the parameter.

Invalid strategies (negative tests)
-----------------------------------
``invalid_programs(model=None, concentration=None)``
    programs that construct but that ``Pump(...)``/``set_program`` refuse (a non-zero step below
    the model's minimum rate or rounding to 0 nL/day, or above the maximum):
    :class:`itb.ProgrammingError` or :class:`itb.ValidationError`.
``invalid_boluses(model=None, concentration=None, program=None)``
    :class:`BolusRequest` that ``pump.bolus`` refuses (dose below half a nL, negative or too large,
    zero duration, start in the past, rate above the maximum).
``invalid_refills(model=None, concentration=None, program=None)``
    :class:`RefillRequest` that ``pump.refill`` refuses (overfill, negative volume, concentration
    out of 1..100000 or fractional, negative tolerance, tolerance above 100 %, and with a
    ``program`` a strength that makes it impossible).
``invalid_patient_limits(model=None, concentration=None, program=None)``
    :class:`PatientLimits` with exactly one argument out of range (``dose_ug`` negative, under
    1 ng, rounding to 0 nL or above the capacity; ``duration`` 0, negative or above 1 day;
    ``lockout`` negative or above 1 day; ``max_per_24h`` outside 1..24): ``ValidationError``
    whose ``field`` names it, and the pump unchanged.
``invalid_activations(max_size=10, max_gap=6 h)``
    offsets like :func:`activations` whose last one goes back in time: the calls before it
    succeed, ``pump.patient_bolus(at=start + offsets[-1])`` raises ``ValidationError``
    (``field == "at"``) and changes nothing.
``invalid_scenarios(max_actions=4, horizon=1 day, presets_only=False)``
    :class:`InvalidScenario` ``(data, stage, entry, field, what)``: a :func:`scenarios` dict with
    one mistake that :mod:`itb.scenario` refuses with a ``ScenarioError`` naming ``entry`` and
    ``field`` — at load (``stage == "load"``: overfilled or negative reservoir, concentration out
    of range, program out of the model's rates, catheter above 10 mL, ``until`` before the start,
    an action out of order or after ``until``, an unknown key or action, ``cancel_bolus`` of an
    unknown name, a bolus of 0 µg or less) or when the action runs (``"run"``: a refill that
    overfills, a program out of range at the concentration of the time, a catheter revision
    above 10 mL, more than 24 patient boluses a day).

Example (a downstream suite)::

    from datetime import timedelta
    from hypothesis import given
    import itb
    from itb import strategies as its

    M, BASAL = itb.models.SYNCHROMED_II_40, itb.Continuous(ug_per_day=400.0)

    @given(its.pumps(model=M, concentration=2000, program=BASAL),
           its.patient_limits(M, 2000, BASAL), its.activations())
    def test_patient_boluses_keep_the_daily_maximum(pump, limits, offsets):
        limits.apply(pump)
        start = pump.now
        granted = [off for off in offsets if pump.patient_bolus(at=start + off).granted]
        assert len([off for off in granted if off < timedelta(days=1)]) <= limits.max_per_24h

Not a medical device: these generate engineering test data, not therapy.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from ..._extras import require as _require  # a clear error naming itb[testing] without hypothesis

_require("hypothesis", "testing", "itb's testing kit")
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as _HypothesisInvalidArgument

from ... import models as _models
from ..._time import to_ms
from ...models import BatteryModel, PumpModel
from ...program import Continuous, Flex, Program
from ...pump import Pump

__all__ = [
    "BolusRequest",
    "RefillRequest",
    "PatientLimits",
    "concentrations",
    "pump_models",
    "programs",
    "durations",
    "catheter_volumes",
    "boluses",
    "refills",
    "patient_limits",
    "activations",
    "pumps",
    "scenarios",
    "invalid_programs",
    "invalid_boluses",
    "invalid_refills",
    "invalid_patient_limits",
    "invalid_activations",
    "invalid_scenarios",
    "InvalidScenario",
    "SCENARIO_ACTIONS",
    "program_dict",
    "InvalidArgument",
]

DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_MIN_MS = 60_000
_MAX_STEPS_PER_DAY = 13
_MAX_DOSE_NG = 10_000_000_000_000
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Round values in preference order (shrinking goes to the first one that is valid).
_ROUND = sorted(x * 10**k for k in range(-3, 9) for x in (1, 2, 5))
_BOLUS_UG = [50.0, 25.0, 75.0, 100.0, 10.0, 5.0, 1.0, 200.0, 500.0, 1000.0]
_START = datetime(2026, 1, 5, 8, 0)


# ----- argument checks (eager: a wrong argument fails where the strategy is built) ----------------


class InvalidArgument(_HypothesisInvalidArgument, ValueError):
    """A strategy argument of the wrong type or out of range: ``hypothesis.errors.InvalidArgument``
    (and a ``ValueError``), raised when the strategy is built, naming the parameter."""


def _check_model(model: Any, name: str = "model") -> None:
    if model is not None and not isinstance(model, PumpModel):
        raise InvalidArgument(
            f"{name}={model!r}: expected an itb.PumpModel (e.g. itb.models.SYNCHROMED_II_40) "
            f"or None, not {type(model).__name__}"
        )


def _whole_conc(value: Any, name: str) -> int:
    """A concentration as an int: whole µg/mL within 1 to 100000 (an integral float is accepted)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Integral, float))
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise InvalidArgument(
            f"{name}={value!r}: expected a whole number of µg/mL (an int) within 1 to 100000"
        )
    if not 1 <= value <= 100_000:
        raise InvalidArgument(f"{name}={value!r}: a concentration must be within 1 to 100000 µg/mL")
    return int(value)


def _check_program(program: Any, name: str = "program") -> None:
    if program is not None and not isinstance(program, (Continuous, Flex)):
        raise InvalidArgument(
            f"{name}={program!r}: expected an itb.Continuous or itb.Flex program or None, "
            f"not {type(program).__name__}"
        )


def _check_number(value: Any, name: str, minimum: float = 0.0, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise InvalidArgument(
            f"{name}={value!r}: expected a number" + (" or None" if optional else "")
        )
    if value < minimum:
        raise InvalidArgument(f"{name}={value!r}: must be >= {minimum:g}")


def _check_int(value: Any, name: str, lo: int, hi: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < lo
        or (hi is not None and value > hi)
    ):
        raise InvalidArgument(
            f"{name}={value!r}: expected an int within {lo} to "
            + ("any" if hi is None else f"{hi}")
        )


def _check_duration(value: Any, name: str, minimum: timedelta = timedelta(0)) -> None:
    if not isinstance(value, timedelta):
        raise InvalidArgument(
            f"{name}={value!r}: expected a datetime.timedelta (e.g. timedelta(minutes=30)), "
            f"not {type(value).__name__}"
        )
    if value < minimum:
        raise InvalidArgument(f"{name}={value!r}: must be >= {minimum}")


def _check_order(lo: Any, hi: Any, lo_name: str, hi_name: str) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise InvalidArgument(f"{lo_name}={lo!r} is above {hi_name}={hi!r}: nothing to draw")


def _check_common(model: Any, concentration: Any, program: Any = None) -> None:
    _check_model(model)
    if concentration is not None:
        _whole_conc(concentration, "concentration")
    _check_program(program)


# ----- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BolusRequest:
    """Arguments of ``pump.bolus``: ``dose_ug`` µg over ``duration`` from ``start`` after now."""

    dose_ug: float
    duration: timedelta
    start: timedelta = timedelta(0)

    def apply(self, pump: Pump) -> int:
        """``pump.bolus(dose_ug, duration, start=pump.now + start)``; returns the bolus id."""
        return pump.bolus(self.dose_ug, self.duration, start=pump.now + self.start)


@dataclass(frozen=True)
class RefillRequest:
    """Arguments of ``pump.refill``."""

    added_ml: float
    concentration_ug_per_ml: Any
    aspirated_ml: float | None = None
    tolerance_ml: float = 1.0
    tolerance_pct: float = 20.0

    def apply(self, pump: Pump) -> Any:
        """``pump.refill(...)``; returns the :class:`itb.RefillReport`."""
        return pump.refill(
            self.added_ml,
            self.concentration_ug_per_ml,
            self.aspirated_ml,
            tolerance_ml=self.tolerance_ml,
            tolerance_pct=self.tolerance_pct,
        )


@dataclass(frozen=True)
class PatientLimits:
    """Arguments of ``pump.set_patient_bolus_limits``."""

    dose_ug: float
    duration: timedelta
    lockout: timedelta
    max_per_24h: int

    def apply(self, pump: Pump) -> None:
        pump.set_patient_bolus_limits(self.dose_ug, self.duration, self.lockout, self.max_per_24h)


# ----- exact helpers --------------------------------------------------------------------------


def _round_half_even(num: int, den: int) -> int:
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def _rate_nl(ng: int, conc: int) -> int:
    """Volume (nL, or nL/day) of ``ng`` (ng, or ng/day) at ``conc`` µg/mL."""
    return _round_half_even(ng * 1000, conc)


def _ng_bounds(lo_nl: int, hi_nl: int, conc: int) -> tuple[int, int]:
    """The ng range whose volume at ``conc`` lies in lo_nl..=hi_nl (empty if lo > hi)."""
    if hi_nl < lo_nl:
        return 1, 0
    lo = max(1, (2 * lo_nl - 1) * conc // 2000 - 1)
    while _rate_nl(lo, conc) < lo_nl:
        lo += 1
    hi = (2 * hi_nl + 1) * conc // 2000 + 1
    while _rate_nl(hi, conc) > hi_nl:
        hi -= 1
    return lo, min(hi, _MAX_DOSE_NG)


def _ug(ng: int) -> float:
    return ng / 1000


def _tiered(*options: st.SearchStrategy[Any] | None) -> st.SearchStrategy[Any]:
    """Like ``one_of`` with a fixed number of choices whatever the bounds: an unavailable
    option (None) falls through to the next available one. Every draw makes the same number of
    choices, so hypothesis' shortlex shrinking prefers the first option (round values) instead of
    a branch that happens to need fewer choices."""
    present = [o for o in options if o is not None]
    if not present:
        return st.nothing()
    resolved = []
    for i in range(len(options)):
        resolved.append(next((o for o in options[i:] if o is not None), present[-1]))
    return st.integers(0, len(options) - 1).flatmap(lambda i: resolved[i])


def _doses(lo_ng: int, hi_ng: int, preferred: Sequence[float] = ()) -> st.SearchStrategy[float]:
    """µg floats with whole-ng values in lo..=hi: round values first, then whole µg, then any ng."""
    if lo_ng > hi_ng:
        return st.nothing()
    nice = [float(u) for u in [*preferred, *_ROUND] if lo_ng <= round(u * 1000) <= hi_ng]
    nice = list(dict.fromkeys(nice))
    ug_lo, ug_hi = -(-lo_ng // 1000), hi_ng // 1000
    return _tiered(
        st.sampled_from(nice) if nice else None,
        st.integers(ug_lo, ug_hi).map(float) if ug_lo <= ug_hi else None,
        st.integers(lo_ng, hi_ng).map(_ug),
    )


def _model(model: PumpModel | None) -> PumpModel:
    return _models.SYNCHROMED_II_40 if model is None else model


def _conc(concentration: int | None) -> int:
    return 2000 if concentration is None else int(concentration)


def _peak_nl(program: Program | None, conc: int) -> int:
    """The highest basal volume rate of ``program`` at ``conc`` (nL/day)."""
    if program is None:
        return 0
    raw = program.exact()
    doses = [raw[1]] if raw[0] == "continuous" else [ng for _, ng in raw[2]]
    return max(_rate_nl(ng, conc) for ng in doses)


def _program_valid(program: Program, model: PumpModel, conc: int) -> bool:
    raw = program.exact()
    doses = [raw[1]] if raw[0] == "continuous" else [ng for _, ng in raw[2]]
    ex = model.exact()
    return all(
        ng == 0 or ex["min_rate_nl_per_day"] <= _rate_nl(ng, conc) <= ex["max_rate_nl_per_day"]
        for ng in doses
    )


# ----- models and concentrations --------------------------------------------------------------


def concentrations(min_value: int = 1, max_value: int = 100_000) -> st.SearchStrategy[int]:
    """Whole µg/mL in ``min_value..=max_value`` (clinical strengths first; shrinks to 2000)."""
    _check_int(min_value, "min_value", 1, 100_000)
    _check_int(max_value, "max_value", 1, 100_000)
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
        cap_ul = min(stroke_nl * DAY_MS, 1_000_000_000) // 1000  # µL/day
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
    """Programs valid on ``model`` at ``concentration`` (see the module docstring)."""
    _check_common(model, concentration)
    m, conc = _model(model), _conc(concentration)
    _check_int(max_steps_per_day, "max_steps_per_day", 1, _MAX_STEPS_PER_DAY)
    if isinstance(kind, str):
        kind = (kind,)
    unknown = set(kind) - {"continuous", "flex_day", "flex_week"}
    if unknown or not kind:
        raise InvalidArgument(
            f"kind: unknown {sorted(unknown)}; allowed: continuous, flex_day, flex_week"
        )
    _check_number(max_ug_per_day, "max_ug_per_day")
    _check_number(min_ug_per_day, "min_ug_per_day")
    _check_order(min_ug_per_day, max_ug_per_day, "min_ug_per_day", "max_ug_per_day")
    ex = m.exact()
    lo, hi = _ng_bounds(ex["min_rate_nl_per_day"], ex["max_rate_nl_per_day"], conc)
    if max_ug_per_day is not None:
        hi = min(hi, round(max_ug_per_day * 1000))
    if min_ug_per_day is not None:
        lo = max(lo, round(min_ug_per_day * 1000))
    dose = _doses(lo, hi)
    if allow_zero:
        # a fixed number of choices either way (see _tiered): zero only when the flag says so
        dose = (
            st.tuples(st.booleans(), dose).map(lambda z_d: 0.0 if z_d[0] else z_d[1])
            if lo <= hi
            else st.just(0.0)
        )
    elif lo > hi:
        return st.nothing()

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


def catheter_volumes(max_ul: int = 10_000) -> st.SearchStrategy[float]:
    """Catheter dead volumes (µL, whole µL as floats) in ``0..=max_ul`` (the core's limit is
    10 000 µL): 100 and 0 first."""
    _check_int(max_ul, "max_ul", 0, 10_000)
    return st.one_of(
        st.sampled_from([v for v in (100, 0) if v <= max_ul]), st.integers(0, max_ul)
    ).map(float)


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
    cap_nl = m.exact()["reservoir_nl"]

    lo, hi = _ng_bounds(1, min(cap_nl, budget_nl * max_ms // DAY_MS), conc)
    if max_dose_ug is not None:
        hi = min(hi, round(max_dose_ug * 1000))
    if min_dose_ug is not None:
        lo = max(lo, round(min_dose_ug * 1000))

    @st.composite
    def build(draw: Any) -> tuple[float, timedelta]:
        dose = draw(_doses(lo, hi, _BOLUS_UG))
        v = _rate_nl(round(dose * 1000), conc)
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
    ``max_dose_ug``, duration within ``min_duration`` .. ``max_duration``; empty if none fits)."""
    _check_common(model, concentration, program)
    _check_duration(max_duration, "max_duration", timedelta(milliseconds=1))
    _check_duration(min_duration, "min_duration")
    _check_order(min_duration, max_duration, "min_duration", "max_duration")
    _check_duration(max_start, "max_start")
    _check_number(max_dose_ug, "max_dose_ug")
    _check_number(min_dose_ug, "min_dose_ug")
    _check_order(min_dose_ug, max_dose_ug, "min_dose_ug", "max_dose_ug")
    m, conc = _model(model), _conc(concentration)
    budget = m.exact()["max_rate_nl_per_day"] - _peak_nl(program, conc)
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
    _check_number(max_added_ml, "max_added_ml")
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
    if max_added_ml is not None:
        cap_ul = min(cap_ul, int(max_added_ml * 1000))
    lo_ul = -(-round(min_added_ml * 1_000_000) // 1000)
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
        st.one_of(st.just(0), st.integers(-1000, -1), st.integers(100_001, 10**7)).map(
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
    budget = m.exact()["max_rate_nl_per_day"] - _peak_nl(program, conc)
    parts = _bolus_parts(
        m, conc, budget, min(max_duration // timedelta(milliseconds=1), DAY_MS), None
    )
    lockout = st.one_of(
        st.sampled_from([timedelta(hours=1), timedelta(0), timedelta(hours=4)]),
        st.integers(0, 24 * 60).map(lambda n: timedelta(minutes=n)),
    )
    per_day = st.one_of(st.sampled_from([4, 1, 24]), st.integers(1, 24))
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
        "max_per_24h": st.one_of(st.integers(-24, 0), st.integers(25, 1000)),
    }
    return st.tuples(patient_limits(m, conc, program), st.sampled_from(sorted(bad))).flatmap(
        lambda base_field: bad[base_field[1]].map(
            lambda v: replace(base_field[0], **{base_field[1]: v})
        )
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


# ----- pumps ------------------------------------------------------------------------------------


def _times() -> st.SearchStrategy[datetime]:
    return st.one_of(
        st.just(_START),
        st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
        ),
    )


def pumps(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
    stroke_error: bool = False,
    min_reservoir_ml: float = 0.0,
) -> st.SearchStrategy[Pump]:
    """Whole :class:`itb.Pump` objects; given arguments are used as they are, the rest drawn. The
    reservoir holds ``min_reservoir_ml`` .. the capacity (whole µL; by default it may be empty, so
    ``boluses(...).apply(pump)`` can raise ``ReservoirError``: pass e.g. ``min_reservoir_ml=1.0``
    or refill first). Models whose capacity is below ``min_reservoir_ml`` are not drawn."""
    _check_common(model, concentration, program)
    _check_number(min_reservoir_ml, "min_reservoir_ml", optional=False)
    min_ul = -(-round(min_reservoir_ml * 1_000_000) // 1000)
    if model is not None and model.exact()["reservoir_nl"] // 1000 < min_ul:
        raise InvalidArgument(
            f"min_reservoir_ml={min_reservoir_ml!r} is above the capacity of {model.name} "
            f"({model.reservoir_ml} mL)"
        )

    @st.composite
    def build(draw: Any) -> Pump:
        if model is None:
            m = draw(pump_models().filter(lambda mm: mm.exact()["reservoir_nl"] // 1000 >= min_ul))
        else:
            m = model
        conc = draw(concentrations()) if concentration is None else int(concentration)
        prog = draw(programs(m, conc)) if program is None else program
        cap_ul = m.exact()["reservoir_nl"] // 1000
        reservoir = draw(st.one_of(st.just(cap_ul), st.integers(min_ul, cap_ul))) / 1000
        catheter = draw(catheter_volumes())
        return Pump(
            m,
            now=draw(_times()),
            reservoir_ml=reservoir,
            concentration_ug_per_ml=conc,
            program=prog,
            catheter_volume_ul=catheter,
            path_primed=not draw(st.booleans()),
            stroke_error_ppm=draw(st.integers(-100_000, 100_000)) if stroke_error else 0,
        )

    return build()


# ----- scenarios --------------------------------------------------------------------------------


def _offset_text(ms: int, period: str) -> str:
    day, ms = divmod(ms, DAY_MS)
    secs, milli = divmod(ms, 1000)
    text = f"{secs // 3600:02d}:{secs // 60 % 60:02d}"
    if secs % 60 or milli:
        text += f":{secs % 60:02d}" + (f".{milli:03d}" if milli else "")
    return f"{_WEEKDAYS[day]} {text}" if period == "week" else text


def program_dict(program: Program) -> dict[str, Any]:
    """A program as a scenario's ``program`` table."""
    if isinstance(program, Continuous):
        return {"kind": "continuous", "ug_per_day": float(program.ug_per_day)}
    raw = program.exact()
    return {
        "kind": "flex",
        "period": program.period,
        "steps": [
            [_offset_text(off, program.period), float(d)]
            for (off, _), (_, d) in zip(raw[2], program.steps)
        ],
    }


def _model_dict(m: PumpModel) -> Any:
    for name, preset in _models.PRESETS.items():
        if preset == m:
            return name
    out: dict[str, Any] = {
        k: getattr(m, k)
        for k in (
            "name",
            "reservoir_ml",
            "stroke_nl",
            "min_rate_ml_per_day",
            "max_rate_ml_per_day",
            "low_reservoir_ml",
            "pump_path_ul",
        )
    }
    if m.battery is None:
        out["battery"] = "none"
    elif m.battery == _models.NOMINAL_BATTERY:
        out["battery"] = "NOMINAL"
    else:
        out["battery"] = {
            k: getattr(m.battery, k)
            for k in (
                "capacity_mah",
                "quiescent_ua",
                "stroke_uc",
                "tone_uc",
                "telemetry_uc",
                "eri_mah",
                "eos_mah",
            )
        }
    return out


def _iso(d: timedelta) -> str:
    from ...scenario.spec import format_duration

    return format_duration(d)


def _without_draining_battery(
    m: PumpModel, budget_nl: int, horizon_ms: int, max_actions: int, extra_nl: int = 0
) -> PumpModel:
    """``m``, or ``m`` without its battery if the worst case of a run (the rate budget for the
    horizon plus ``extra_nl`` of priming) could reach EOS."""
    if m.battery is None:
        return m
    from dataclasses import replace

    b = m.battery.exact()
    strokes = (budget_nl * horizon_ms // DAY_MS + extra_nl) // m.stroke_nl + 2
    tones = 5 * (horizon_ms // min(b["critical_tone_ms"], b["non_critical_tone_ms"]) + 1)
    drain = (
        b["quiescent_pc_per_ms"] * horizon_ms
        + b["stroke_pc"] * strokes
        + b["tone_pc"] * tones
        + b["telemetry_pc"] * (max_actions + 1)
    )
    if drain < b["capacity_pc"] - b["eri_pc"]:
        return m
    return replace(m, battery=None)


def _bisect(pred: Any, lo: int, hi: int, first_true: bool) -> int | None:
    """For ``pred`` monotone on lo..=hi: the smallest c with pred(c) (pred false…true) when
    ``first_true``, else the largest (pred true…false); None if there is none."""
    if first_true:
        if not pred(hi):
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if pred(mid) else (mid + 1, hi)
        return lo
    if not pred(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if pred(mid) else (lo, mid - 1)
    return lo


#: Most priming boluses a drawn scenario holds (their volume is reserved in the battery check).
_MAX_PRIMINGS = 2
_MAX_CATHETER_UL = 1000


class _GeneratorBug(AssertionError):
    """A call a drawn scenario makes is refused by the pump: a bug in :func:`scenarios`."""


#: The ``do`` names :func:`scenarios` draws.
SCENARIO_ACTIONS: tuple[str, ...] = (
    "set_program",
    "bolus",
    "cancel_bolus",
    "refill",
    "start_bridge_bolus",
    "start_priming_bolus",
    "set_patient_bolus_limits",
    "patient_bolus",
    "suspend",
    "resume",
    "inject_motor_stall",
    "clear_fault",
    "revise_catheter",
    "telemetry_session",
)


def scenarios(
    max_actions: int = 8,
    horizon: timedelta = timedelta(days=2),
    presets_only: bool = False,
    actions: Sequence[str] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Scenario dicts :func:`itb.scenario.from_dict` accepts and that run to ``[run] until``
    without a refused call (see the module docstring for how that is kept true). ``actions``:
    the ``do`` names to draw from (default: all of :data:`SCENARIO_ACTIONS`)."""
    _check_int(max_actions, "max_actions", 0)
    _check_duration(horizon, "horizon", timedelta(minutes=1))
    if isinstance(actions, str):
        actions = (actions,)
    allowed = frozenset(SCENARIO_ACTIONS if actions is None else actions)
    unknown = allowed - set(SCENARIO_ACTIONS)
    if unknown or not allowed:
        raise InvalidArgument(
            f"actions: unknown {sorted(unknown)}; allowed: {', '.join(SCENARIO_ACTIONS)}"
        )

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        from ...errors import ItbError

        m = draw(pump_models(presets_only=presets_only))
        ex = m.exact()
        conc = draw(concentrations())
        cap, stroke, max_nl = ex["reservoir_nl"], ex["stroke_nl"], ex["max_rate_nl_per_day"]
        horizon_ms = draw(
            st.one_of(
                st.just(DAY_MS),
                st.integers(1, max(1, horizon // timedelta(minutes=1))).map(lambda n: n * _MIN_MS),
            )
        )
        horizon_ms = min(horizon_ms, horizon // timedelta(milliseconds=1))
        # fill needed so the reservoir cannot empty: the whole rate budget for the horizon + a stroke
        usable = cap - 2 * stroke - 1
        budget = min(max_nl, max(0, usable) * DAY_MS // max(1, horizon_ms))
        need_nl = budget * horizon_ms // DAY_MS + 2 * stroke + 1
        bolus_budget = budget // 2

        def program_strategy(c: int) -> st.SearchStrategy[Program]:
            basal_cap_ug = (budget // 2) * c / 1_000_000  # µg/day of half the budget, floored below
            return programs(
                m, c, max_steps_per_day=4, max_ug_per_day=max(0.0, basal_cap_ug - c / 1_000_000)
            )

        prog_st = program_strategy(conc)
        program = draw(prog_st)
        m = _without_draining_battery(
            m,
            budget,
            horizon_ms,
            max_actions,
            _MAX_PRIMINGS * (ex["pump_path_nl"] + _MAX_CATHETER_UL * 1000),
        )
        start = draw(_times().filter(lambda d: d.year < 2099))
        fill_ul = (
            draw(st.integers(min(-(-need_nl // 1000), cap // 1000), cap // 1000))
            if need_nl <= cap
            else cap // 1000
        )
        pump: dict[str, Any] = {
            "model": _model_dict(m),
            "start": start,
            "reservoir_ml": fill_ul / 1000,
            "concentration_ug_per_ml": conc,
            "program": program_dict(program),
        }
        catheter = draw(st.one_of(st.none(), st.integers(0, _MAX_CATHETER_UL)))
        if catheter is not None:
            pump["catheter_volume_ul"] = float(catheter)
        primed = draw(st.integers(0, 3)) < 3  # a saline path one time in four
        if not primed:
            pump["path_primed"] = False
        # a pump run alongside: bridge and priming boluses are added only where it plans one, and
        # every call is checked on it (a refusal is a bug here, reported loudly)
        sync = Pump(
            m,
            now=start,
            reservoir_ml=fill_ul / 1000,
            concentration_ug_per_ml=conc,
            program=program,
            catheter_volume_ul=float(catheter or 0),
            path_primed=primed,
        )
        can_pump = need_nl <= fill_ul * 1000  # the reservoir holds the whole horizon's budget
        end = start + timedelta(milliseconds=horizon_ms)
        kinds = [
            "telemetry_session",
            "set_program",
            "suspend",
            "inject_motor_stall",
            "revise_catheter",
        ]
        if can_pump:
            kinds[1:1] = [
                "bolus",
                "refill",
                "set_patient_bolus_limits",
                "patient_bolus",
                "start_priming_bolus",
            ]
        kinds = [k for k in kinds if k in allowed] or ["telemetry_session"]
        actions: list[dict[str, Any]] = []
        t = start
        suspended = stalled = False
        limits: tuple[int, int] | None = None  # (ng, ms) of the patient bolus, when enabled
        n_named = primings = 0

        def call(act: dict[str, Any], method: str, **kwargs: Any) -> Any:
            if sync.now_ms != to_ms(act["at"], "at"):
                sync.advance_to(act["at"])
            try:
                out = getattr(sync, method)(**kwargs)
            except ItbError as exc:
                raise _GeneratorBug(
                    f"itb.strategies.scenarios drew a call the pump refuses (a bug in itb): "
                    f"{act} -> {type(exc).__name__}: {exc}"
                ) from exc
            actions.append(act)
            return out

        def planned(kind: str, act_at: datetime) -> Any | None:
            """The plan of a bridge/priming bolus at ``act_at`` if the pump makes one and it fits."""
            if suspended or stalled or not can_pump:
                return None
            if sync.now_ms != to_ms(act_at, "at"):
                sync.advance_to(act_at)
            try:
                plan = getattr(sync, f"{kind}_bolus_plan")()
            except ItbError:
                return None
            if kind == "priming":
                # beyond the rate budget: the reservoir must hold it on top of the rest of the horizon
                rest = (
                    budget * ((end - act_at) // timedelta(milliseconds=1)) // DAY_MS
                    + 2 * stroke
                    + 1
                )
                if primings >= _MAX_PRIMINGS or sync.reservoir_nl < plan.volume_nl + rest:
                    return None
            return plan

        def new_strength(program_now: Program, change: str) -> st.SearchStrategy[int] | None:
            """Strengths above (``change="up"``) or below ``conc`` keeping the program valid, its
            basal under half the budget and the patient bolus under the other half (each an
            interval of concentrations)."""
            raw = program_now.exact()
            doses = [raw[1]] if raw[0] == "continuous" else [ng for _, ng in raw[2]]
            doses = [ng for ng in doses if ng > 0]

            def high_enough(c: int) -> bool:  # volumes fall as the strength rises
                ok = all(
                    _rate_nl(ng, c) <= min(ex["max_rate_nl_per_day"], budget // 2) for ng in doses
                )
                return ok and (
                    limits is None or _rate_nl(limits[0], c) * DAY_MS <= bolus_budget * limits[1]
                )

            def low_enough(c: int) -> bool:
                return all(_rate_nl(ng, c) >= ex["min_rate_nl_per_day"] for ng in doses)

            lo, hi = _bisect(high_enough, 1, 100_000, True), _bisect(low_enough, 1, 100_000, False)
            if lo is None or hi is None:
                return None
            lo, hi = (max(lo, conc + 1), hi) if change == "up" else (lo, min(hi, conc - 1))
            return concentrations(lo, hi) if lo <= hi else None

        for kind in draw(st.lists(st.sampled_from(kinds), max_size=max_actions)):
            t = t + timedelta(
                minutes=draw(st.integers(0, max(0, horizon_ms // _MIN_MS // max(1, max_actions))))
            )
            if t > end:
                break
            act: dict[str, Any] = {"at": t, "do": kind}
            after = timedelta(0)
            if kind == "suspend":
                act["do"] = "resume" if suspended else "suspend"
                if act["do"] not in allowed:
                    continue
                call(act, act["do"])
                suspended = not suspended
            elif kind == "inject_motor_stall":
                act["do"] = "clear_fault" if stalled else "inject_motor_stall"
                if act["do"] not in allowed:
                    continue
                call(act, act["do"])
                stalled = not stalled
            elif kind == "set_program":
                program = draw(prog_st)
                act["program"] = program_dict(program)
                call(act, "set_program", program=program)
            elif kind == "revise_catheter":
                act["volume_ul"] = float(draw(st.integers(0, _MAX_CATHETER_UL)))
                call(act, "revise_catheter", volume_ul=act["volume_ul"])
                if "start_priming_bolus" in allowed and draw(
                    st.booleans()
                ):  # prime the new catheter at once
                    plan = planned("priming", t)
                    if plan is not None:
                        call({"at": t, "do": "start_priming_bolus"}, "start_priming_bolus")
                        primings += 1
                        after = plan.duration
            elif (
                kind == "start_priming_bolus"
            ):  # a saline path (path_primed = false, a new catheter)
                plan = planned("priming", t)
                if plan is None:
                    continue
                call(act, "start_priming_bolus")
                primings += 1
                after = plan.duration
            elif kind == "refill":
                change = draw(st.sampled_from(["same", "up", "down"]))
                strengths = None if change == "same" else new_strength(program, change)
                new_conc = conc if strengths is None else draw(strengths)
                r = draw(refills(m, conc, min_added_ml=need_nl / 1_000_000))
                act.update(added_ml=r.added_ml, concentration_ug_per_ml=new_conc)
                if r.aspirated_ml is not None:
                    act["aspirated_ml"] = r.aspirated_ml
                call(
                    act,
                    "refill",
                    added_ml=r.added_ml,
                    concentration_ug_per_ml=new_conc,
                    aspirated_ml=r.aspirated_ml,
                )
                old, conc = conc, new_conc
                if conc != old:
                    prog_st = program_strategy(conc)
                if (
                    conc > old and "start_bridge_bolus" in allowed and draw(st.integers(0, 3)) > 0
                ):  # mostly a bridge at once
                    plan = planned("bridge", t)
                    if plan is not None:
                        call({"at": t, "do": "start_bridge_bolus"}, "start_bridge_bolus")
                        after = plan.duration
            elif kind in ("bolus", "set_patient_bolus_limits", "patient_bolus"):
                left = int((end - t) / timedelta(milliseconds=1))
                if kind == "patient_bolus" and limits is None:
                    kind = act["do"] = "set_patient_bolus_limits"
                    if kind not in allowed:
                        continue
                if kind == "patient_bolus":
                    assert limits is not None
                    after = timedelta(milliseconds=limits[1])
                    if t + after > end:
                        break
                    call(act, "patient_bolus")
                else:
                    parts = (
                        draw(
                            _bolus_parts(m, conc, bolus_budget, min(left, DAY_MS), None) | st.none()
                        )
                        if left > 0
                        else None
                    )
                    if parts is None:
                        continue
                    dose, duration = parts
                    act.update(dose_ug=dose, duration=_iso(duration))
                    if kind == "bolus":
                        after = duration
                        if "cancel_bolus" in allowed and draw(st.booleans()):
                            n_named += 1
                            act["name"] = f"b{n_named}"
                            bolus_id = call(act, "bolus", dose_ug=dose, duration=duration)
                            act = {"at": t, "do": "cancel_bolus", "name": act["name"]}
                            call(act, "cancel_bolus", bolus_id=bolus_id)
                        else:
                            call(act, "bolus", dose_ug=dose, duration=duration)
                    else:
                        lockout = draw(st.one_of(st.just(60), st.integers(0, 24 * 60)))
                        act.update(
                            lockout=_iso(timedelta(minutes=lockout)),
                            max_per_24h=draw(st.integers(1, 24)),
                        )
                        call(
                            act,
                            "set_patient_bolus_limits",
                            dose_ug=dose,
                            duration=duration,
                            lockout=timedelta(minutes=lockout),
                            max_per_24h=act["max_per_24h"],
                        )
                        limits = (round(dose * 1000), duration // timedelta(milliseconds=1))
            else:  # telemetry_session
                call(act, "telemetry_session")
            t = t + after
        until = max(end, t)
        return {"pump": pump, "actions": actions, "run": {"until": until}}

    return build()


# ----- invalid scenarios ------------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidScenario:
    """A scenario dict (``data``, the format of :func:`scenarios`) with one deliberate mistake, and
    where :mod:`itb.scenario` must report it: ``stage`` ``"load"`` (``from_dict`` raises
    :class:`itb.scenario.ScenarioError`) or ``"run"`` (it loads; ``run()`` raises it, at the
    mistaken action's time), with the error's ``entry`` (``"pump"``, ``"run"``, ``"actions[3]"``)
    and ``field`` (``"reservoir_ml"``, ``"program.ug_per_day"``, ``"at"``…); ``what`` says what
    was broken."""

    data: dict
    stage: str
    entry: str
    field: str
    what: str


_INVALID_SCENARIO_KINDS = (
    "overfilled_pump",
    "negative_fill",
    "concentration_out_of_range",
    "program_out_of_range",
    "catheter_too_large",
    "until_before_start",
    "action_out_of_order",
    "action_after_until",
    "unknown_key",
    "unknown_action",
    "cancel_of_unknown_bolus",
    "bolus_without_dose",
    "refill_overfills",
    "program_out_of_range_at_run",
    "catheter_too_large_at_run",
    "too_many_patient_boluses",
)


def invalid_scenarios(
    max_actions: int = 4,
    horizon: timedelta = timedelta(days=1),
    presets_only: bool = False,
) -> st.SearchStrategy[InvalidScenario]:
    """:class:`InvalidScenario`: a :func:`scenarios` draw with exactly one mistake — at load time
    (overfilled or negative reservoir, concentration outside 1..100000, a program outside the
    model's rates, a catheter above 10 mL, ``[run] until`` before the start, an action out of time
    order or after ``until``, an unknown key or action, ``cancel_bolus`` of an unknown name, a
    bolus of 0 or less µg) or at run time (a refill that overfills, a program outside the rates at
    the concentration of the time, a catheter revision above 10 mL, more than 24 patient boluses a
    day) — with the entry and field the :class:`itb.scenario.ScenarioError` must name."""
    import copy

    @st.composite
    def build(draw: Any) -> InvalidScenario:
        from ...scenario import from_dict

        data = copy.deepcopy(draw(scenarios(max_actions, horizon, presets_only)))
        m = from_dict(data).model
        ex = m.exact()
        pump, actions, until = data["pump"], data["actions"], data["run"]["until"]
        conc = pump["concentration_ug_per_ml"]
        for a in actions:  # the concentration in the reservoir at `until`
            if a["do"] == "refill":
                conc = a["concentration_ug_per_ml"]
        cap_ul = ex["reservoir_nl"] // 1000
        kind = draw(st.sampled_from(_INVALID_SCENARIO_KINDS))
        k = len(actions)  # index of an appended action
        n = draw(st.integers(1, 1000), label="amount")
        minutes = timedelta(minutes=n)

        def bad_rate_ug(c: int) -> float:
            lo, hi = _ng_bounds(ex["min_rate_nl_per_day"], ex["max_rate_nl_per_day"], c)
            options = [st.integers(hi + 1, min(_MAX_DOSE_NG, 2 * hi + 1000))]
            if lo > 1:
                options.insert(0, st.integers(1, lo - 1))
            return _ug(draw(st.one_of(options), label="ng_per_day"))

        def append(action: dict[str, Any]) -> None:
            actions.append({"at": until, **action})

        if kind == "overfilled_pump":
            pump["reservoir_ml"] = (cap_ul + n) / 1000
            where = ("load", "pump", "reservoir_ml")
        elif kind == "negative_fill":
            pump["reservoir_ml"] = -n / 1000
            where = ("load", "pump", "reservoir_ml")
        elif kind == "concentration_out_of_range":
            pump["concentration_ug_per_ml"] = draw(st.sampled_from([0, -n, 100_000 + n]))
            where = ("load", "pump", "concentration_ug_per_ml")
        elif kind == "program_out_of_range":
            pump["program"] = {
                "kind": "continuous",
                "ug_per_day": bad_rate_ug(pump["concentration_ug_per_ml"]),
            }
            where = ("load", "pump", "program.ug_per_day")
        elif kind == "catheter_too_large":
            pump["catheter_volume_ul"] = float(10_000 + n)
            where = ("load", "pump", "catheter_volume_ul")
        elif kind == "until_before_start":
            data["run"]["until"] = pump["start"] - minutes
            where = ("load", "run", "until")
        elif kind == "action_out_of_order":
            if actions:
                i = draw(st.integers(0, len(actions) - 1), label="index")
                previous = actions[i - 1]["at"] if i else pump["start"]
                actions[i]["at"] = previous - minutes
            else:
                i = 0
                actions.append({"at": pump["start"] - minutes, "do": "telemetry_session"})
            where = ("load", f"actions[{i}]", "at")
        elif kind == "action_after_until":
            actions.append({"at": until + minutes, "do": "telemetry_session"})
            where = ("load", f"actions[{k}]", "at")
        elif kind == "unknown_key":
            append({"do": "telemetry_session", "colour": "blue"})
            where = ("load", f"actions[{k}]", "colour")
        elif kind == "unknown_action":
            append({"do": "frobnicate"})
            where = ("load", f"actions[{k}]", "do")
        elif kind == "cancel_of_unknown_bolus":
            append({"do": "cancel_bolus", "name": "never_named"})
            where = ("load", f"actions[{k}]", "name")
        elif kind == "bolus_without_dose":
            append(
                {
                    "do": "bolus",
                    "dose_ug": -n / 10 if draw(st.booleans()) else 0.0,
                    "duration": "PT30M",
                }
            )
            where = ("load", f"actions[{k}]", "dose_ug")
        elif kind == "refill_overfills":
            append(
                {"do": "refill", "added_ml": (cap_ul + n) / 1000, "concentration_ug_per_ml": conc}
            )
            where = ("run", f"actions[{k}]", "added_ml")
        elif kind == "program_out_of_range_at_run":
            append(
                {
                    "do": "set_program",
                    "program": {"kind": "continuous", "ug_per_day": bad_rate_ug(conc)},
                }
            )
            where = ("run", f"actions[{k}]", "program.ug_per_day")
        elif kind == "catheter_too_large_at_run":
            append({"do": "revise_catheter", "volume_ul": float(10_000 + n)})
            where = ("run", f"actions[{k}]", "volume_ul")
        else:  # too_many_patient_boluses
            append(
                {
                    "do": "set_patient_bolus_limits",
                    "dose_ug": 1.0,
                    "duration": "PT10M",
                    "max_per_24h": 24 + n,
                }
            )
            where = ("run", f"actions[{k}]", "max_per_24h")
        return InvalidScenario(data, *where, kind)

    return build()
