"""Hypothesis strategies for test suites that drive :mod:`itb` (``pip install 'itb-pump[testing]'``).

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
    ``min_ug_per_day`` bounds every non-zero one from below. Doses are whole ng: a bound off that
    grid is floored (a maximum) or rounded up (a minimum), the same for ``boluses``'
    ``max_dose_ug`` / ``min_dose_ug``; bounds that cross on the grid are an ``InvalidArgument``.
    Zero is drawn by default (``allow_zero=True``) even with ``min_ug_per_day``; a maximum may
    be ``math.inf`` (no bound), a minimum must be finite.
``durations(min_value=0, max_value=1 day)``
    ``timedelta``s, whole ms: 30 min, 1 h, 15 min, 4 h, 1 min, 1 day first, then whole minutes.
``catheter_volumes(max_ul=10_000)``
    catheter dead volumes, whole µL as floats (100 and 0 first).
``boluses(model=None, concentration=None, program=None, max_duration=1 day, max_start=0,
max_dose_ug=None, min_dose_ug=None, min_duration=1 ms)``
    :class:`BolusRequest` ``(dose_ug, duration, start)``, ``start`` an offset from the pump's now.
    Its volume is 1 nL .. the reservoir capacity and its rate fits on top of ``program``'s highest
    basal rate (none = 0) under the model's maximum (a ``program`` at that maximum leaves no room:
    ``InvalidArgument``). ``request.apply(pump)`` calls ``pump.bolus``.
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

``fault_actions(pump=None, kinds=None, max_position_ul=150, min_added_ml=0.0)``
    :class:`FaultRequest` ``(kind, args)`` of :data:`FAULT_KINDS` (docs: guide/faults.md): an
    occlusion (complete or partial), a leak or disconnection at a position, a tip migration, a
    pocket fill at a refill, a battery fault, a motor stall, or the clearing of one; with ``pump``
    only what it accepts now. ``request.apply(pump)`` makes the call, ``request.action(at)`` is
    the scenario action. Shrinks to a complete occlusion, a leak at the connector, a pocket fill
    of all of a whole-mL refill. ``scenarios(faults=True)`` draws them into scenarios.

Arguments are checked when a strategy is built: a wrong type or a value out of range (a model
that is not an :class:`itb.PumpModel`, a fractional or out-of-range concentration, a minimum
above its maximum, a duration that is not a ``timedelta``, an empty selection of names, a
strategy that could draw nothing) raises
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

from ..._extras import (
    require as _require,  # a clear error naming itb-pump[testing] without hypothesis
)

_require("hypothesis", "testing", "itb's testing kit")

from ._common import DAY_MS as DAY_MS  # a module constant of the single-file module, kept
from ._common import InvalidArgument
from .boluses import (
    activations,
    boluses,
    catheter_volumes,
    durations,
    invalid_activations,
    invalid_boluses,
    invalid_patient_limits,
    invalid_refills,
    patient_limits,
    refills,
)
from .devices import pumps
from .faults import FAULT_KINDS, FaultRequest, fault_actions
from .programs import concentrations, invalid_programs, programs, pump_models
from .requests import BolusRequest, PatientLimits, RefillRequest
from .scenarios import (
    SCENARIO_ACTIONS,
    InvalidScenario,
    invalid_scenarios,
    program_dict,
    scenarios,
)

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
    "FaultRequest",
    "fault_actions",
    "FAULT_KINDS",
]
