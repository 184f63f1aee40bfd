"""A hypothesis state machine that drives a device under test and the oracle in lock step.

Subclass :class:`PumpStateMachine`, implement the adapter methods your device supports (the
rules of the others are never drawn), and run it as a test::

    class MyDeviceMachine(PumpStateMachine):
        def device_start(self, pump):              # a copy of the oracle's starting pump
            self.dev = MyDevice(...)
        def device_advance(self, until):           # naive datetime on the pump clock
            self.dev.run_until(until)
        def device_set_program(self, program):     # itb.Continuous (see program_kinds)
            self.dev.program(program.ug_per_day)
        def device_observed(self):                 # cumulative nL the device says it pumped
            return self.dev.pumped_nl
        def device_alarms(self):                   # [(time, kind), ...] the device raised
            return self.dev.alarm_log

    TestMyDevice = MyDeviceMachine.TestCase

Each rule draws an operation from :mod:`itb.strategies` (valid for the oracle's pump as it is
then: its model, concentration and program), checks it on a copy of the oracle's pump (an
operation the pump refuses is skipped: the device is not asked), calls the adapter, then records
it on the oracle. After every step the invariant compares ``device_observed()`` with the oracle's
pumped volume (within ``tol_strokes`` strokes: 0 by default, as the device is read only after its
adapter returned; use 1 only for a device observed asynchronously) and ``device_alarms()`` with
the oracle's alarms (kind and time, within ``alarm_tol``), and checks the invariants of
:mod:`itb.testing.invariants` on the oracle's pump. A divergence raises ``AssertionError``
listing the operations so far. Only cumulative volumes are observed, so a volume divergence is
reported as a window: ``device diverged between T_prev (last agreeing check, after n
operation(s)) and T (detected): ...; the oracle's strokes in between: #a at … #b at …; the first
stroke the device lacks: #k at …`` (or, for a device ahead, when the oracle makes its extra stroke).

Mistakes in a subclass fail at once instead of passing silently: a ``device_*`` method that is not
one of :data:`ADAPTERS` (a misspelling such as ``device_refil``) raises ``TypeError`` when the class
is defined; ``unsupported`` must be a set or frozenset of names of :data:`ACTIONS` or
:data:`KIT_FAULTS` (``TypeError`` / ``ValueError``), ``tol_strokes`` an int >= 0; a machine that overrides no ``device_advance``, or
neither ``device_observed`` nor ``device_alarms``, raises ``TypeError`` when it runs (it would
compare nothing).

Refills change the strength about half the time (``concentration_changes = "often"``; among the
other ``concentrations`` that keep the program valid), and a stronger refill is mostly followed at
once by the bridge bolus when ``device_start_bridge_bolus`` is implemented. To test concentration
changes hard, set ``concentration_changes = "always"`` and leave only ``refill``,
``start_bridge_bolus`` and ``set_program`` supported (``unsupported = frozenset(ACTIONS) - {...}``).

Adapters (override those your device supports; all times are naive pump-clock datetimes)
-------------------------------------------------------------------------------------------
``device_start(pump)``
    build or reset the device to the state of ``pump`` (a copy of :meth:`make_pump`).
``device_advance(until)``
    let the device run to ``until``.
``device_set_program(program)``
    an :class:`itb.Continuous` (or :class:`itb.Flex` if ``program_kinds`` allows it), valid at
    the pump's current concentration.
``device_bolus(dose_ug, duration)`` (``start=`` a datetime too when ``max_bolus_start`` > 0)
    a timed bolus of ``dose_ug`` µg (float, whole ng) over ``duration`` (timedelta, whole ms).
    Return a handle for a later cancel (None: the oracle's bolus id is the handle).
``device_cancel_bolus(handle)``
    cancel a scheduled or running bolus: ``handle`` is what ``device_bolus``,
    ``device_start_bridge_bolus``, ``device_start_priming_bolus`` or ``device_patient_bolus``
    returned for it (or the oracle's bolus id when they returned None).
``device_refill(added_ml, concentration_ug_per_ml)``
    aspirate what is there, fill ``added_ml`` mL (float, whole µL) at a whole µg/mL strength
    (a change re-derives the program's volume rates; a running bolus is cancelled).
``device_start_bridge_bolus(plan)`` / ``device_start_priming_bolus(plan)``
    start the pump's bridge bolus (after a concentration increase) or priming bolus (saline
    path); ``plan`` is the oracle's :class:`itb.pump.BolusPlan` (``volume_nl``, ``duration``,
    ``rate_nl_per_day``). Return a handle as for ``device_bolus``.
``device_set_patient_bolus_limits(dose_ug, duration, lockout, max_per_24h)``
    clinician limits of the patient bolus (µg, timedelta, timedelta, int 1..24); ``dose_ug=None``
    (with 0, 0, 0) disables it.
``device_patient_bolus()``
    a patient activation now. Return ``None`` (not compared), a bool (granted?), a reason string
    (``"granted"``, ``"lockout"``, ``"daily_maximum"``… as :class:`itb.pump.PatientBolusResult`),
    or an object with ``granted`` (and optionally ``reason`` and ``bolus_id``, the handle); a
    difference from the oracle's outcome fails at once.
``device_suspend()`` / ``device_resume()`` / ``device_inject_motor_stall()`` / ``device_clear_fault()``
    stop and restart delivery (the stall raises the critical ``fault`` alarm).
``device_revise_catheter(volume_ul)``
    a new catheter of ``volume_ul`` µL (float): the whole path refills with saline.
``device_telemetry_session()``
    a telemetry session (battery charge only).
``device_inject_<fault>(…)`` / ``device_clear_<fault>()`` / ``device_pocket_fill(added_ml,
concentration_ug_per_ml, pocket_ml)``
    the faults of :data:`KIT_FAULTS` (an occlusion, a leak or disconnection at ``position_ul``,
    a tip migration, a pocket fill, a battery fault), drawn by the ``fault`` rule; compare
    ``device_measured()`` (nL at the tip) with the oracle's physical ledger.
``device_observed()``
    cumulative nL the device says it pumped since the start, or None to skip the comparison.
``device_stroke_times()`` / ``device_events()`` (optional)
    every stroke's time; the device's event log ``[(time, kind), ...]`` (its events of
    ``event_kinds`` are compared with the oracle's at every check).
``device_alarms()``
    every alarm the device raised since the start: ``[(time, kind), ...]`` or ``(time, kind,
    severity)``; kinds as itb's (``low_reservoir``, ``reservoir_empty``, ``fault``, ``eri``,
    ``eos``, ``refill_discrepancy``); None to skip the comparison.

``device_settled()`` (with ``settle_timeout``)
    True once an asynchronous device finished every call it returned from; polled until then.
``device_state()`` (with ``resettable = False``)
    the device's state read back at the start of each example after the first: an
    :class:`itb.Pump` or :meth:`itb.Pump.from_reading`'s arguments (the oracle is resynced to it).

Asynchronous and real-time devices set ``settle_timeout``, ``time_tol`` and :meth:`make_clock`
(an :class:`itb.testing.realtime.ScaledClock`); readings are then compared within ``time_tol``
and a device beyond it is reported late (or early) by how much (docs:
guide/testing-kit.md#asynchronous-and-real-time-devices, guide/testing-kit.md#no-reset-mode).

Events a call raises on an :class:`itb.Pump` (a refill's alarms…) come back with its next
``advance``/``advance_to``: a device built on one should flush them after each call
(``pump.advance_recording(pump.now)``) so that ``device_alarms()`` lists them.

An adapter may return ``NotImplemented`` to skip one call. ``unsupported`` (a set of action
names such as ``{"refill", "cancel_bolus"}``) turns off actions whose adapters a base class
implements; the name of an action is its adapter's without ``device_``.

Tip: hypothesis's ``explain`` phase re-runs a failing example many times to annotate it; leave it
out (``phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]``) when a step is slow.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from functools import lru_cache
from types import FunctionType
from typing import TYPE_CHECKING, Any

import numpy as np

from .._extras import (
    require as _require,  # a clear error naming itb-pump[testing] without hypothesis
)

_require("hypothesis", "testing", "itb's testing kit")
from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from .. import _limits
from .._time import from_ms, to_ms
from ..errors import ItbError
from ..scenario.spec import ACTIONS as _SCENARIO_ACTIONS
from ..scenario.spec import FAULT_ACTIONS as _FAULT_ACTIONS
from . import invariants
from . import strategies as its
from ._profile import register_profile, shrink_budget
from .asserts import assert_alarms_match, whole_nl
from .oracle import Oracle
from .strategies._exact import _program_valid

if TYPE_CHECKING:  # the class hypothesis types ``_to_test_case`` with (typing only)
    from hypothesis.stateful import _StateMachineTestCase

__all__ = ["PumpStateMachine", "ACTIONS", "ADAPTERS", "KIT_FAULTS", "run"]

register_profile()  # a suite using the machine can load "itb-ci" without the plugin

#: Every action a device can receive (adapter ``device_<name>``), in the order of the rules.
ACTIONS: tuple[str, ...] = tuple(
    a for a in _SCENARIO_ACTIONS if a not in _FAULT_ACTIONS
)  # the scenario format's table, in its order
#: The catheter, refill and battery faults the machine drives (its ``fault`` rule, adapters
#: ``device_<name>``): the injections and clearings of the scenario format's ``FAULT_ACTIONS``
#: and ``pocket_fill`` (a refill partly or wholly into the pocket; docs: guide/faults.md).
KIT_FAULTS: tuple[str, ...] = (
    *(a for a in _FAULT_ACTIONS if a.startswith(("inject_", "clear_"))),
    "pocket_fill",
)
#: Every adapter a subclass may override (any other ``device_*`` method is an error).
ADAPTERS: tuple[str, ...] = (
    "device_start",
    "device_advance",
    *(f"device_{a}" for a in ACTIONS),
    *(f"device_{a}" for a in KIT_FAULTS),
    "device_observed",
    "device_measured",
    "device_stroke_times",
    "device_events",
    "device_alarms",
    "device_settled",
    "device_state",
)
_BASE_DEVICE_NAMES = frozenset(ADAPTERS) | {"device_matches_oracle"}
DAY_MS = _limits.MS_PER_DAY


def _final_run() -> bool:
    """True in the run hypothesis reports (or outside hypothesis): the place for slow diagnostics."""
    from hypothesis.control import current_build_context

    try:
        return bool(current_build_context().is_final)
    except Exception:  # no build context: called directly
        return True


def _in_test() -> bool:
    from hypothesis.control import _current_build_context

    return _current_build_context.value is not None


def _note(text: str) -> None:
    """hypothesis ``note`` inside a test; nothing when a machine is driven by hand."""
    if _in_test():
        note(text)


def _fmt(t: datetime) -> str:
    return t.isoformat(sep=" ", timespec="milliseconds" if t.microsecond else "seconds")


def _observable(pump: Any) -> tuple[Any, ...]:
    """What a device could show of ``pump``'s state (not its ledgers or event log): reservoir,
    strength, program, boluses, fluid path, alarms, run state."""
    return (
        pump.reservoir_nl,
        pump.concentration_ug_per_ml,
        pump.program,
        tuple(pump.boluses),
        pump.path_nl,
        pump.path_pg,
        tuple(pump.active_alarms),
        pump.is_suspended,
        pump.is_stalled,
        pump.has_patient_bolus_limits,
    )


def _step_offset(start: Any) -> timedelta:
    """A flex step's start from its period's start: a ``time`` (day), ``(weekday, time)`` (week,
    Monday 0) or a ``timedelta``."""
    if isinstance(start, timedelta):
        return start
    weekday, at = start if isinstance(start, tuple) else (0, start)
    return timedelta(
        days=weekday,
        hours=at.hour,
        minutes=at.minute,
        seconds=at.second,
        microseconds=at.microsecond,
    )


def _check_settings(cls: type[Any]) -> None:
    """``unsupported`` and ``concentration_changes`` of a subclass name known things."""
    unsupported = cls.unsupported
    if not isinstance(unsupported, (set, frozenset)) or not all(
        isinstance(a, str) for a in unsupported
    ):
        raise TypeError(
            f"{cls.__name__}.unsupported must be a set or frozenset of action names, e.g. "
            f"frozenset({{'refill'}}), not {unsupported!r}"
        )
    unknown = sorted(set(unsupported) - set(ACTIONS) - set(KIT_FAULTS))
    if unknown:
        raise ValueError(
            f"{cls.__name__}.unsupported: unknown action(s) {unknown}; actions: "
            f"{', '.join(ACTIONS + KIT_FAULTS)}"
        )
    if cls.concentration_changes not in ("often", "always", "never"):
        raise ValueError(
            f"{cls.__name__}.concentration_changes must be 'often', 'always' or 'never', not "
            f"{cls.concentration_changes!r}"
        )
    from ..events import EVENT_DATA

    kinds = cls.event_kinds
    if not isinstance(kinds, (set, frozenset)) or not all(isinstance(k, str) for k in kinds):
        raise TypeError(
            f"{cls.__name__}.event_kinds must be a set or frozenset of event kinds, not {kinds!r}"
        )
    unknown_kinds = sorted(set(kinds) - set(EVENT_DATA))
    if unknown_kinds:
        raise ValueError(
            f"{cls.__name__}.event_kinds: unknown kind(s) {unknown_kinds}; kinds: "
            f"{', '.join(EVENT_DATA)}"
        )
    for flag in ("noop_steps", "delivery_boundaries"):
        if not isinstance(getattr(cls, flag), bool):
            raise TypeError(
                f"{cls.__name__}.{flag} must be True or False, not {getattr(cls, flag)!r}"
            )
    if (
        isinstance(cls.tol_strokes, bool)
        or not isinstance(cls.tol_strokes, int)
        or cls.tol_strokes < 0
    ):
        raise ValueError(
            f"{cls.__name__}.tol_strokes must be a whole number of strokes >= 0, not "
            f"{cls.tol_strokes!r}"
        )
    _check_async_settings(cls)


def _check_async_settings(cls: type[Any]) -> None:
    """``time_tol``, ``settle_timeout``, ``poll_interval`` and ``resettable`` of a subclass."""
    for name, allow_none, least in (
        ("time_tol", False, timedelta(0)),
        ("settle_timeout", True, timedelta(0)),
        ("poll_interval", False, timedelta(milliseconds=1)),
    ):
        value = getattr(cls, name)
        if value is None and allow_none:
            continue
        if not isinstance(value, timedelta):
            raise TypeError(
                f"{cls.__name__}.{name} must be a datetime.timedelta (e.g. timedelta(seconds=1))"
                f"{' or None' if allow_none else ''}, not {value!r}"
            )
        if value < least:
            raise ValueError(f"{cls.__name__}.{name}={value!r}: must be >= {least!r}")
    if not isinstance(cls.resettable, bool):
        raise TypeError(f"{cls.__name__}.resettable must be True or False, not {cls.resettable!r}")


@lru_cache(maxsize=512)
def _its(name: str, *args: Any, **kwargs: Any) -> Any:
    """``itb.strategies.<name>(*args, **kwargs)``, built once per distinct arguments (building
    strategies anew at every step makes hypothesis describe their lambdas again: slow)."""
    return getattr(its, name)(*args, **kwargs)


def _supports(name: str) -> Any:
    """Precondition: the subclass overrides ``device_<name>`` and does not list it unsupported."""
    adapter = f"device_{name}"

    def check(self: PumpStateMachine) -> bool:
        return (
            self.oracle is not None
            and name not in self.unsupported
            and getattr(type(self), adapter) is not getattr(PumpStateMachine, adapter)
        )

    return check


class PumpStateMachine(RuleBasedStateMachine):
    """Base class: one adapter method per action (``device_*``), rules driving the oracle and the
    adapter, an invariant comparing them. Class attributes tune the generated operations."""

    #: allowed difference between the device and the oracle, in whole strokes. 0 by default: the
    #: machine reads the device only after its adapter returned (synchronous observation), so an
    #: exact device matches exactly and a one-stroke bug shows. Raise it to 1 only for a device
    #: observed asynchronously (a stroke may be in flight when it is read).
    tol_strokes: int = 0
    #: allowed difference between an alarm's time on the device and on the oracle
    alarm_tol: timedelta = timedelta(0)
    #: actions not to draw even if an adapter is there (names as in :data:`ACTIONS`)
    unsupported: frozenset[str] = frozenset()
    #: longest single advance
    max_advance: timedelta = timedelta(days=2)
    #: how far ``advance_to_next_alarm`` looks ahead for the oracle's next alarm
    alarm_horizon: timedelta = timedelta(days=400)
    #: programs drawn: kinds (``"continuous"``, ``"flex_day"``, ``"flex_week"``), every step's
    #: dose within these µg/day, at most this many steps a day
    program_kinds: tuple[str, ...] = ("continuous",)
    daily_dose_ug: tuple[float, float] = (50, 1000)
    max_steps_per_day: int = 4
    #: bolus doses (µg) and durations; boluses start now unless max_bolus_start > 0
    bolus_dose_ug: tuple[float, float] = (1, 100)
    bolus_duration: tuple[timedelta, timedelta] = (timedelta(minutes=1), timedelta(hours=4))
    max_bolus_start: timedelta = timedelta(0)
    #: refills: added volume (mL) and the strengths drawn (µg/mL; empty: never change it)
    refill_ml: tuple[float, float] = (1.0, 40.0)
    concentrations: tuple[int, ...] = (500, 1000, 2000)
    #: how often a refill changes the strength: ``"often"`` (about half of the refills, when
    #: another strength of ``concentrations`` keeps the program valid; a stronger one is mostly
    #: followed at once by the bridge bolus when the device supports it), ``"always"`` (every refill
    #: that can) or ``"never"`` (same as ``concentrations = ()``)
    concentration_changes: str = "often"
    #: largest catheter of a revision (µL)
    max_catheter_ul: int = 1000
    #: patient bolus: the share of ``set_patient_bolus_limits`` draws that enable it (the rest
    #: disable it), whether the machine sets limits as its first operation (when the device
    #: supports both ``set_patient_bolus_limits`` and ``patient_bolus``), the longest patient
    #: bolus drawn and the daily maxima drawn (small ones most often: the maximum is reached)
    patient_limits_enabled: float = 0.9
    patient_limits_at_start: bool = True
    patient_bolus_duration: timedelta = timedelta(hours=1)
    patient_max_per_24h: tuple[int, ...] = (1, 2, 3)
    #: cases reached over every run of this class (patient-bolus outcomes, alarms, refills with a
    #: concentration change and a pending or running bolus, …): a ``collections.Counter`` of
    #: the names also given to hypothesis's ``event()``
    coverage: Counter[Any] = Counter()
    #: on a volume divergence, replay the device's calls from a fresh ``device_start`` with every
    #: advance split at the oracle's strokes to name the first wrong stroke (in the run hypothesis
    #: reports, not while it shrinks); False for a device that cannot be replayed. At most
    #: ``localise_max_steps`` pieces of advance.
    localise: bool = True
    localise_max_steps: int = 200_000
    #: a fixed hypothesis seed for :func:`run` and ``TestCase`` (None: hypothesis's own choice;
    #: derandomized runs seed from the test's identity, so renaming the class or the test
    #: changes the examples — a seed does not)
    seed: int | None = None
    #: cases (names of :attr:`coverage`, e.g. ``"patient_bolus: daily_maximum"``) a run must
    #: reach: :func:`run` (and ``TestCase``) fails a run that never reached one of them
    must_reach: frozenset[str] = frozenset()
    #: where a failing run writes its counter-example as a scenario TOML file (``<class>.toml``;
    #: also the environment variable ``ITB_KIT_EXPORT``); None: not written
    export_dir: str | None = None
    #: print the coverage counts at the end of :func:`run` (pytest shows them with ``-s`` or
    #: ``-rP``)
    report_coverage: bool = True
    #: send steps that change nothing on a correct device: further patient activations while
    #: patient boluses are disabled (``not_enabled`` again), and a refill repeated at once (right
    #: after a refill, the same strength and the volume the reservoir then holds). Off (default):
    #: after the first ``not_enabled`` in a disabled period the activation rule is not drawn (its
    #: precondition), and a repeated refill is drawn but not sent (noted, counted as ``refill:
    #: duplicate skipped``), so a shrunk counter-example holds at most one such activation and no
    #: repeated refill; the first of each is still sent, so a device that grants it is caught.
    noop_steps: bool = False
    #: stop shrinking a failure this long after it was first found (None: the ``itb-ci``
    #: profile's budget when that profile is loaded — ``itb_shrink_seconds``, 60 s — else
    #: hypothesis' own limits). Enforced by :func:`run` (and ``TestCase``): the first example
    #: hypothesis starts once the budget is spent stops it, and the smallest failure seen so far
    #: is reported (localised and exported as a reported failure is) with a note saying so
    shrink_budget: timedelta | None = None
    #: draw advances to where delivery changes (the rule ``advance_to_delivery_boundary``):
    #: the next stroke, the stroke before the next alarm, a bolus's start and end, the next flex
    #: step, midnight and Monday 00:00 — each exactly or 1 ms either side. Off by default (it
    #: changes the mix of steps every machine draws); turn it on for a device whose delivery
    #: timing is the thing to test
    delivery_boundaries: bool = False
    #: the event kinds ``device_events()`` logs (itb's kinds, :data:`itb.events.EVENT_DATA`):
    #: the oracle's events of these kinds are compared with the device's log, in time order
    event_kinds: frozenset[str] = frozenset(
        {
            "bolus_started",
            "bolus_completed",
            "bolus_cancelled",
            "program_changed",
            "refilled",
            "concentration_changed",
            "suspended",
            "resumed",
        }
    )
    _shrink_clock: _ShrinkClock | None = None  # set by run() while the machine runs
    #: asynchronous devices (docs: guide/testing-kit.md#asynchronous-and-real-time-devices): None
    #: (default) when every adapter returns once the device finished; a ``timedelta`` when
    #: adapters may return earlier — the machine then polls ``device_settled()`` every
    #: ``poll_interval`` (wall time) after each call and fails a device still busy after
    #: ``settle_timeout``
    settle_timeout: timedelta | None = None
    poll_interval: timedelta = timedelta(milliseconds=2)
    #: time tolerance of asynchronous observation (pump time): a reading at t must lie between
    #: the oracle's at ``t - time_tol`` and at ``t + time_tol`` (strokes from
    #: ``device_stroke_times()`` within ``time_tol`` each; alarms within ``max(alarm_tol,
    #: time_tol)``); beyond it the device is reported "late (or early) by" how much. 0 by
    #: default: a device read after it finished matches exactly
    time_tol: timedelta = timedelta(0)
    #: False for a device that cannot be reset between examples (long-lived hardware):
    #: ``device_start`` is called once per class, and each later example starts from
    #: ``device_state()`` (the oracle is resynced to it; docs: guide/testing-kit.md#no-reset-mode)
    resettable: bool = True
    #: the real-time clock the device runs on (:class:`itb.testing.realtime.ScaledClock`), from
    #: :meth:`make_clock`; None: the device's time moves only when ``device_advance`` is called
    clock: Any = None
    _long_lived: bool = False  # no-reset mode: device_start was called (set per class)
    _last_failure: str | None = None  # the latest divergence message (real-time runs)
    #: after the ``fault`` rule injects a fault, advance at once past the oracle's next stroke
    #: (plus up to ``max_advance``, drawn), so the fault's physics show in ``device_measured()``
    #: before other operations bury it (a device that logs a fault but ignores it in its delivery
    #: is caught). False: the injection alone is a step.
    advance_after_fault: bool = True

    @classmethod
    @lru_cache  # as hypothesis' own: one ``TestCase`` class per machine class
    def _to_test_case(
        cls,
    ) -> type[_StateMachineTestCase]:  # hypothesis builds ``TestCase`` with this
        base = super()._to_test_case()

        class KitTestCase(base):  # type: ignore[misc, valid-type]
            def runTest(self) -> None:
                run(cls, settings=self.settings)

            runTest.is_hypothesis_test = True  # type: ignore[attr-defined]
            runTest._hypothesis_state_machine_class = cls  # type: ignore[attr-defined]

        KitTestCase.__name__, KitTestCase.__qualname__ = base.__name__, base.__qualname__
        return KitTestCase

    # ----- adapter: override what your device supports -------------------------------------------
    def make_pump(self) -> Any:
        """The starting pump (the oracle copies it). Default: :func:`itb.testing.demo_pump`."""
        from .demo import demo_pump

        return demo_pump()

    def device_start(self, pump: Any) -> Any:
        """Build or reset the device to the state of ``pump`` (a copy)."""
        return NotImplemented

    def device_advance(self, until: datetime) -> Any:
        """Let the device run to ``until`` (pump clock)."""
        return NotImplemented

    def device_set_program(self, program: Any) -> Any:
        """Replace the basal program (an ``itb.Continuous`` or ``itb.Flex``)."""
        return NotImplemented

    def device_bolus(
        self, dose_ug: float, duration: timedelta, start: datetime | None = None
    ) -> Any:
        """A timed bolus; returns a handle for :meth:`device_cancel_bolus` (or None)."""
        return NotImplemented

    def device_cancel_bolus(self, handle: Any) -> Any:
        """Cancel the bolus ``handle`` names (what the call that started it returned)."""
        return NotImplemented

    def device_refill(self, added_ml: float, concentration_ug_per_ml: int) -> Any:
        """Aspirate, then fill ``added_ml`` mL of ``concentration_ug_per_ml`` µg/mL."""
        return NotImplemented

    def device_start_bridge_bolus(self, plan: Any) -> Any:
        """Start the bridge bolus ``plan`` (an ``itb.pump.BolusPlan``); returns a handle or None."""
        return NotImplemented

    def device_start_priming_bolus(self, plan: Any) -> Any:
        """Start the priming bolus ``plan`` (an ``itb.pump.BolusPlan``); returns a handle or None."""
        return NotImplemented

    def device_set_patient_bolus_limits(
        self, dose_ug: float | None, duration: timedelta, lockout: timedelta, max_per_24h: int
    ) -> Any:
        """Set the patient-bolus limits (``dose_ug=None``: disable the patient bolus)."""
        return NotImplemented

    def device_patient_bolus(self) -> Any:
        """A patient activation now; returns None, a bool, a reason or an object with ``granted``."""
        return NotImplemented

    def device_suspend(self) -> Any:
        return NotImplemented

    def device_resume(self) -> Any:
        return NotImplemented

    def device_inject_motor_stall(self) -> Any:
        return NotImplemented

    def device_clear_fault(self) -> Any:
        return NotImplemented

    def device_revise_catheter(self, volume_ul: float) -> Any:
        """A new catheter of ``volume_ul`` µL; the path refills with saline."""
        return NotImplemented

    def device_telemetry_session(self) -> Any:
        return NotImplemented

    def device_observed(self) -> int | None:
        """Cumulative volume the device says it pumped since the start (nL), or None to skip
        the comparison."""
        return None

    # faults (docs: guide/faults.md): the device's own way to cause them; NotImplemented: skipped
    def device_inject_occlusion(self, pass_pct: float) -> Any:
        return NotImplemented

    def device_clear_occlusion(self) -> Any:
        return NotImplemented

    def device_inject_leak(self, position_ul: float) -> Any:
        return NotImplemented

    def device_inject_disconnection(self, position_ul: float) -> Any:
        """The catheter comes apart ``position_ul`` µL from the pump connector: everything
        downstream goes to tissue (cleared by ``device_clear_leak``)."""
        return NotImplemented

    def device_pocket_fill(
        self, added_ml: float, concentration_ug_per_ml: int, pocket_ml: float
    ) -> Any:
        """A refill of ``added_ml`` mL at the pump's strength of which ``pocket_ml`` mL (0 <
        ``pocket_ml`` <= ``added_ml``, whole µL) goes into the subcutaneous pocket instead of the
        reservoir (:meth:`itb.Pump.refill` with ``pocket_ml``)."""
        return NotImplemented

    def device_clear_leak(self) -> Any:
        return NotImplemented

    def device_inject_tip_migration(self) -> Any:
        return NotImplemented

    def device_clear_tip_migration(self) -> Any:
        return NotImplemented

    def device_inject_battery_fault(self) -> Any:
        return NotImplemented

    def device_clear_battery_fault(self) -> Any:
        return NotImplemented

    def device_measured(self) -> int | None:
        """Cumulative volume measured at the catheter tip since the start (nL: a scale, a
        flow sensor), compared with the oracle's physical ledger (``delivered_nl``, what reached
        the tip) rather than its firmware count; None to skip the comparison."""
        return None

    def device_stroke_times(self) -> Any:
        """Optional: the time of every stroke the device made since the start (naive datetimes
        or pump-clock int ms), or None. With it a volume divergence names the first wrong
        stroke at once (no replay)."""
        return None

    def device_events(self) -> list[tuple[Any, str]] | None:
        """Optional: the device's event log since the start, ``[(time, kind), ...]`` (naive
        datetimes or pump-clock int ms; itb's kinds). Its events of :attr:`event_kinds` are
        compared with the oracle's at every check: a bolus that ends at the wrong millisecond, a
        program change logged late, a missing or extra event is reported at once, at its time and
        after the operation that preceded it. None to skip the comparison."""
        return None

    def device_alarms(self) -> list[tuple[Any, ...]] | None:
        """Every alarm the device raised since the start, ``[(time, kind[, severity]), ...]``, or
        None to skip the comparison."""
        return None

    def device_settled(self) -> bool:
        """Asynchronous devices (with ``settle_timeout``): True once the device finished every
        call it returned from (for ``device_advance(until)``: its clock reached ``until`` and the
        strokes due by then are made)."""
        return True

    def device_state(self) -> Any:
        """No-reset mode (``resettable = False``): the device's state now, read back — an
        :class:`itb.Pump`, or a mapping of :meth:`itb.Pump.from_reading`'s arguments (``now``,
        ``reservoir_ml``, ``concentration_ug_per_ml``, ``program``, ``active_alarms``,
        ``battery_mah``…; the model is :meth:`make_pump`'s) plus optionally ``patient_grants``
        (the times of the patient boluses granted in the last 24 h)."""
        return NotImplemented

    def make_clock(self) -> Any:
        """The clock of a real-time device (a :class:`itb.testing.realtime.ScaledClock` starting
        at :meth:`make_pump`'s time), or None (default). With a clock, advances wait for the clock
        and operations are sent (and recorded on the oracle) at the clock's time."""
        return None

    # ----- machinery -------------------------------------------------------------------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if (
                name.startswith("device_")
                and name not in _BASE_DEVICE_NAMES
                and isinstance(value, (FunctionType, staticmethod, classmethod))
            ):
                raise TypeError(
                    f"{cls.__name__}.{name} is not an adapter of PumpStateMachine (misspelled? it would never be "
                    f"called); adapters: {', '.join(ADAPTERS)}. Name helper methods without the 'device_' prefix."
                )
        _check_settings(cls)
        cls.coverage = Counter()
        cls._long_lived = False  # no-reset mode: device_start was called (once per class)

    def __init__(self) -> None:
        _check_settings(type(self))  # also catches attributes assigned after the class was made
        missing = [
            a for a in ("device_advance",) if getattr(type(self), a) is getattr(PumpStateMachine, a)
        ]
        if all(
            getattr(type(self), a) is getattr(PumpStateMachine, a)
            for a in ("device_observed", "device_alarms")
        ):
            missing.append("device_observed or device_alarms")
        if missing:
            raise TypeError(
                f"{type(self).__name__} overrides no {' and no '.join(missing)}: the machine would "
                f"compare nothing with the oracle and pass whatever the device does"
            )
        for needed, adapter, why in (
            (self.settle_timeout is not None, "device_settled", "settle_timeout is set"),
            (not self.resettable, "device_state", "resettable is False"),
        ):
            if needed and getattr(type(self), adapter) is getattr(PumpStateMachine, adapter):
                raise TypeError(
                    f"{type(self).__name__}: {why} but {adapter} is not overridden (the machine "
                    f"would wait for nothing / could not resync its oracle)"
                )
        super().__init__()
        own_teardown = self.teardown

        def teardown() -> None:  # hypothesis calls it in a ``finally``: a failure is in flight
            clock = type(self)._shrink_clock
            exc = sys.exc_info()[1]
            if (
                clock is not None
                and isinstance(exc, Exception)
                and not type(exc).__module__.startswith("hypothesis")
            ):
                clock.failed(self, exc)
            own_teardown()

        setattr(self, "teardown", teardown)  # noqa: B010 (an instance attribute over the method)
        self.oracle: Oracle | None = None
        self.trace: list[str] = []
        self._failure: tuple[str, bool] | None = None  # the divergence _fail raised
        self._handles: dict[int, Any] = {}
        self._grants: list[datetime] = []  # times of the oracle's granted patient boluses
        self._limits: Any = None  # the patient-bolus limits in force (None: disabled)
        self._tried_disabled = False  # an activation was made while disabled (not_enabled)
        self._device_log: list[tuple[str, tuple[Any, ...], dict[str, Any], Any, str]] = []
        self._agreed: tuple[datetime, int] | None = (
            None  # (time, operations) of the last agreeing check
        )
        # no-reset mode: the device's readings at the resync (observed nL beyond the oracle's
        # start, measured nL likewise, alarms raised before), its time, and from when patient
        # answers can be compared (earlier grants are not known to the oracle)
        self._base: tuple[int, int, int] = (0, 0, 0)
        self._base_ms: int | None = None
        self._patient_from: datetime | None = None
        self._limits_synced = self.resettable

    @initialize(data=st.data())
    def _start(self, data: Any = None) -> None:
        clock = type(self)._shrink_clock
        if clock is not None and clock.spent() and _in_test() and not _final_run():
            raise _ShrinkBudgetSpent  # stops hypothesis; run() reports the smallest failure seen
        pump = self.make_pump()
        self._draw_pump = pump
        if self.clock is None:
            self.clock = self.make_clock()
        cls = type(self)
        if not self.resettable and cls._long_lived:
            self.oracle = Oracle(self._resync(pump))
            self._before = self.oracle.pump
        else:
            self.oracle = Oracle(pump)
            self._before = self.oracle.pump
            self._call("device_start", (pump.copy(),))
            cls._long_lived = not self.resettable
        invariants.check_state(self._before)
        if (
            data is not None
            and self.patient_limits_at_start
            and _supports("set_patient_bolus_limits")(self)
            and _supports("patient_bolus")(self)
        ):
            limits = self._draw_limits(data)
            if limits is not None:
                self._set_limits(limits)

    def _call(
        self,
        adapter: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        text: str = "",
        settle: bool = True,
    ) -> Any:
        """Call an adapter and log it (the log replays the run for localisation and recording);
        for an asynchronous device (``settle_timeout``), wait until it finished."""
        answer = getattr(self, adapter)(*args, **(kwargs or {}))
        if answer is not NotImplemented:
            self._device_log.append((adapter, args, dict(kwargs or {}), answer, text))
            if settle:
                self._settle(text or adapter)
        return answer

    # ----- asynchronous and real-time devices, no-reset mode ------------------------------------
    def _settle(self, what: str) -> None:
        """Poll ``device_settled()`` until True; fail after ``settle_timeout``."""
        if self.settle_timeout is None:
            return
        from .realtime import wait_until

        if wait_until(self.device_settled, self.settle_timeout, poll=self.poll_interval) is None:
            self._fail(
                f"device did not finish {what} within {self.settle_timeout} (settle_timeout; "
                f"device_settled() still False)"
            )

    def _catch_up(self) -> None:
        """Real-time device: the oracle's time moves to the clock's (the device ran meanwhile)."""
        if self.clock is None or self.oracle is None:
            return
        t = self.clock.now()
        if t > self.oracle.now:
            now = self.oracle.now
            self.oracle.advance_to(t)
            for _t, kind, _sev in self.oracle.alarms(t)[len(self.oracle.alarms(now)) :]:
                self._cover(f"alarm: {kind}")

    def _asynchronous(self) -> bool:
        return self.clock is not None or self.time_tol > timedelta(0)

    def _resync(self, template: Any) -> Any:
        """No-reset mode: the oracle's start from ``device_state()``, and the baselines of the
        device's cumulative readings."""
        from collections.abc import Mapping

        from ..pump import Pump

        state = self.device_state()
        grants: Any = None
        if isinstance(state, Pump):
            start = state.copy()
        elif isinstance(state, Mapping):
            kwargs = dict(state)
            grants = kwargs.pop("patient_grants", None)
            try:
                start = Pump.from_reading(template.model, **kwargs)
            except (ItbError, TypeError) as exc:
                raise TypeError(
                    f"{type(self).__name__}.device_state() returned a state itb cannot take "
                    f"({type(exc).__name__}: {exc})"
                ) from None
        else:
            raise TypeError(
                f"{type(self).__name__}.device_state() returned {state!r}: give an itb.Pump or a "
                f"mapping of itb.Pump.from_reading's arguments"
            )
        observed, measured = self._reading("device_observed"), self._reading("device_measured")
        alarms = self.device_alarms()
        self._base = (
            int(observed or 0) - int(start.pumped_nl),
            int(measured or 0) - int(start.delivered_nl),
            0 if alarms is None or alarms is NotImplemented else len(list(alarms)),
        )
        self._base_ms = start.now_ms
        day = timedelta(days=1)
        if isinstance(state, Pump):
            self._patient_from, self._limits_synced = None, True  # limits and grants are in it
        elif grants is None:  # grants unknown: any of the last 24 h may still count
            self._patient_from = start.now + day
        else:
            recent = [g for g in grants if g > start.now - day]
            self._patient_from = max(recent) + day if recent else None
        self.trace.append(f"resync to the device's state at {_fmt(start.now)} (no reset)")
        _note(self.trace[-1])
        return start

    def _patient_ready(self) -> bool:
        """No-reset mode: patient answers are comparable (limits set since the resync, no grant
        the oracle does not know of still counting)."""
        return self._limits_synced and (
            self._patient_from is None or self._live.now >= self._patient_from
        )

    def teardown(self) -> None:
        """No-reset mode: leave the device quiet for the next example (cancel boluses, resume,
        clear a stall; a bolus that cannot be cancelled is run to its end)."""
        if self.resettable or self.oracle is None:
            return
        for b in self._live.boluses:
            if _supports("cancel_bolus")(self):
                handle = self._handles.get(b.id, b.id)
                self._do("cancel_bolus", f"cancel_bolus(#{b.id})", {"bolus_id": b.id}, (handle,))
        if self._live.is_suspended and _supports("resume")(self):
            self._do("resume", "resume()", {})
        if self._live.is_stalled and _supports("clear_fault")(self):
            self._do("clear_fault", "clear_fault()", {})
        ends = [b.end for b in self._live.boluses]
        if ends and max(ends) > self.oracle.now:
            self._advance_both(max(ends), "the last bolus's end, before the next example")

    def _window(self, t0: datetime, t1: datetime) -> tuple[datetime, datetime]:
        """The oracle's times a reading taken between ``t0`` and ``t1`` may show."""
        assert self.oracle is not None
        start = self.oracle.start.now
        return max(t0 - self.time_tol, start), t1 + self.time_tol

    def _late_volume(self, observed: Any, t0: datetime, t1: datetime) -> str | None:
        """Asynchronous observation: ``observed`` nL (read between ``t0`` and ``t1``) against the
        oracle's volume within ``time_tol``: None, or how late (early) the device is."""
        assert self.oracle is not None
        lo, hi = self._window(t0, t1)
        q, k, tol = self.oracle.stroke_nl, self.tol_strokes, self.time_tol
        least, most = self.oracle.expected(lo), self.oracle.expected(hi)
        if observed < least.pumped_nl - k * q:
            i = int(observed // q) + k + 1  # the first stroke the device lacks
            s0 = self.oracle.start.strokes  # a resynced pump counts its history too
            due = from_ms(int(self.oracle.stroke_times(lo)[i - 1 - s0]))
            return (
                f"device late: stroke #{i} was due at {_fmt(due)}, not made when read at "
                f"{_fmt(t0)}: late by at least {t0 - due} (time tolerance {tol}); observed "
                f"{observed} nL, expected at least {least.pumped_nl} nL ({self._preceding(to_ms(due, 'due'))})"
            )
        if observed > most.pumped_nl + k * q:
            i = most.strokes + k + 1  # the device made stroke #i, not due by `hi`
            s0 = self.oracle.start.strokes
            ahead = self.oracle.stroke_times(hi + timedelta(days=30))
            when = (
                f"due only at {_fmt(from_ms(int(ahead[i - 1 - s0])))}: early by at least "
                f"{from_ms(int(ahead[i - 1 - s0])) - t1}"
                if 0 < i - s0 <= len(ahead)
                else "not due within 30 days"
            )
            return (
                f"device early: it made stroke #{i} by {_fmt(t1)}, {when} (time tolerance {tol}); "
                f"observed {observed} nL, expected at most {most.pumped_nl} nL"
            )
        return None

    def _late_strokes(self, device: Any, t0: datetime, t1: datetime) -> str | None:
        """Asynchronous observation with ``device_stroke_times()``: each stroke within
        ``time_tol`` of the oracle's; None, or the first stroke late (early) by how much."""
        assert self.oracle is not None
        from .asserts import _ms_array

        got = np.sort(_ms_array(device, "device_stroke_times()"))
        if self._base_ms is not None:
            got = got[got > self._base_ms]
        lo, hi = self._window(t0, t1)
        want = self.oracle.stroke_times(hi)
        tol_ms = to_ms(hi, "hi") - to_ms(t1, "t1")
        got = got[got <= to_ms(t1, "t1")]
        for i in range(min(len(got), len(want))):
            off = int(got[i]) - int(want[i])
            if abs(off) > tol_ms:
                return (
                    f"stroke #{i + 1} {'late' if off > 0 else 'early'} by "
                    f"{timedelta(milliseconds=abs(off))}: due at {_fmt(from_ms(int(want[i])))}, "
                    f"made at {_fmt(from_ms(int(got[i])))} (time tolerance {self.time_tol}; "
                    f"{self._preceding(int(want[i]))})"
                )
        due = want[want <= to_ms(lo, "lo")]
        if len(got) < len(due):
            t = from_ms(int(due[len(got)]))
            return (
                f"stroke #{len(got) + 1} late: due at {_fmt(t)}, not made when read at {_fmt(t0)}: "
                f"late by at least {t0 - t} (time tolerance {self.time_tol}; "
                f"{self._preceding(int(due[len(got)]))})"
            )
        if len(got) > len(want):
            return (
                f"stroke #{len(want) + 1} early: made at {_fmt(from_ms(int(got[len(want)])))}, "
                f"not due by {_fmt(hi)} (time tolerance {self.time_tol})"
            )
        return None

    def _cover(self, name: str) -> None:
        """Count a case reached (hypothesis ``event`` and the class's :attr:`coverage`)."""
        if _in_test():
            event(name)
        type(self).coverage[name] += 1

    @property
    def _live(self) -> Any:
        assert self.oracle is not None
        return self.oracle._live  # read only

    def _fail(self, message: str, localise: bool = False) -> None:
        """Raise the divergence ``message`` with the operations so far (and, in the reported run,
        the exported scenario and — for a volume divergence, ``localise`` — the first wrong
        stroke)."""
        self._failure = (message, localise)
        text = self._report(message, localise) if _final_run() else self._steps(message)
        type(self)._last_failure = text  # a real-time run's replay may take another course
        raise AssertionError(text)

    def _steps(self, message: str) -> str:
        steps = "\n  ".join(self.trace) or "(none)"
        return f"{message} after {len(self.trace)} operations:\n  {steps}"

    def _report(self, message: str, localise: bool, note: str = "") -> str:
        """The message of a reported failure: localised (slow diagnostics), exported."""
        exact = self._localise() if localise else None
        text = self._steps(message if exact is None else f"{exact}\n  ({message})")
        saved = self._export()
        return text + (f"\n(the counter-example as a scenario: {saved})" if saved else "") + note

    def _export(self) -> str | None:
        """Write the counter-example as a scenario TOML file into ``export_dir`` (or the
        directory ``ITB_KIT_EXPORT`` names); its path, or None when neither is set."""
        import os
        from pathlib import Path

        where = self.export_dir or os.environ.get("ITB_KIT_EXPORT")
        if not where or self.oracle is None:
            return None
        from .. import scenario as sc
        from .record import scenario_table

        try:
            table = self.scenario_pump() or self.oracle.start
            data = scenario_table(table, self.oracle.calls, until=self.oracle.now)
            path = Path(where) / f"{type(self).__name__}.toml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(sc.dumps(sc.from_dict(data, str(path))), encoding="utf-8")
        except (ItbError, OSError) as exc:
            return f"not written ({type(exc).__name__}: {exc})"
        return str(path)

    def scenario_pump(self) -> dict[str, Any] | None:
        """The scenario ``[pump]`` table of :meth:`make_pump`'s pump, for exported
        counter-examples (None: derived from the pump, which works for a fresh pump built from
        a table's fields)."""
        return None

    def _do(
        self,
        method: str,
        text: str,
        kwargs: dict[str, Any],
        args: tuple[Any, ...] = (),
        adapter_kwargs: Any = None,
        adapter: str | None = None,
    ) -> tuple[bool, Any, Any]:
        """Probe ``pump.<method>(**kwargs)`` on a copy, call the adapter (``device_<method>`` with
        ``args``), record the call on the oracle. Returns (done, the device's answer, the pump's)."""
        assert self.oracle is not None
        self._catch_up()
        try:
            getattr(self.oracle.pump, method)(**kwargs)
        except ItbError as exc:
            _note(f"skipped {text}: the pump refuses it ({type(exc).__name__}: {exc})")
            return False, None, None
        answer = self._call(adapter or f"device_{method}", args, adapter_kwargs, text)
        if answer is NotImplemented:
            return False, None, None
        result = self.oracle.call(method, **kwargs)
        self.trace.append(text)
        _note(text)
        return True, answer, result

    # ----- for a suite's own rules ---------------------------------------------------------------
    def send(
        self, method: str, text: str | None = None, /, *args: Any, **kwargs: Any
    ) -> tuple[bool, Any, Any]:
        """Send an operation from a suite's own rule, keeping the oracle in step: probe
        ``pump.<method>(**kwargs)`` on a copy of the oracle's pump (refused: skipped, nothing
        sent), call the adapter ``device_<method>(*args)`` (``args`` in the adapter's terms), then
        record the call on the oracle and in the trace (``text``, default ``method(kwargs)``).
        Returns ``(sent, the device's answer, the pump's result)``; a bolus it starts can be
        cancelled by the machine's ``cancel_bolus`` rule. After the rule, the invariant compares
        the device with the oracle as after any other step."""
        if method == "patient_bolus":
            raise TypeError("send: use the machine's patient_bolus rule (it compares the answer)")
        label = text or f"{method}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        done, answer, result = self._do(method, label, kwargs, args)
        if done and method in ("bolus", "start_bridge_bolus", "start_priming_bolus"):
            self._started(answer, result)
        if done and method == "set_patient_bolus_limits":
            self._limits_synced = True
            self._limits = (
                None
                if kwargs.get("dose_ug") is None
                else its.PatientLimits(
                    kwargs["dose_ug"], kwargs["duration"], kwargs["lockout"], kwargs["max_per_24h"]
                )
            )
        return done, answer, result

    def advance_to(self, until: datetime, why: str = "") -> bool:
        """Advance the device and the oracle to ``until`` from a suite's own rule (False if the
        device's ``device_advance`` returned ``NotImplemented``)."""
        if self.oracle is None or until < self.oracle.now:
            raise ValueError(f"advance_to({until}): before the oracle's now")
        return self._advance_both(until, why)

    def _started(self, answer: Any, bolus_id: Any) -> None:
        if isinstance(bolus_id, int):
            self._handles[bolus_id] = bolus_id if answer is None else answer

    def _advance_both(self, until: datetime, why: str = "") -> bool:
        """Advance the device and the oracle to ``until``; False if the device cannot."""
        assert self.oracle is not None
        now = self.oracle.now
        if (
            self._call("device_advance", (until,), None, f"advance({until - now})", settle=False)
            is NotImplemented
        ):
            return False
        if self.clock is not None:  # a real-time device: its clock must get there
            self.clock.sleep_until(until)
        self._settle(f"advance({until - now})")
        before = self.oracle.pump
        self.oracle.advance_to(until)
        for _t, kind, _sev in self.oracle.alarms(until)[len(self.oracle.alarms(now)) :]:
            self._cover(f"alarm: {kind}")
        self.trace.append(f"advance({until - now})")
        _note(f"advance({until - now}) -> {_fmt(until)}" + (f" ({why})" if why else ""))
        invariants.check_step(before, self._live, advance_only=True)
        return True

    @rule(data=st.data())
    def advance(self, data: Any) -> None:
        if self.oracle is None:
            return
        step = data.draw(_its("durations", timedelta(0), self.max_advance), label="advance")
        self._advance_both(self.oracle.now + step)

    @precondition(lambda self: type(self).device_alarms is not PumpStateMachine.device_alarms)
    @rule(data=st.data())
    def advance_to_next_alarm(self, data: Any) -> None:
        """Advance to the oracle's next alarm (within ``alarm_horizon``), or a little past it
        (drawn only when the device reports its alarms; not to an empty reservoir when the
        device cannot be refilled)."""
        if self.oracle is None:
            return
        now = self.oracle.now
        upcoming = [
            (t, kind) for t, kind, _sev in self.oracle.alarms(now + self.alarm_horizon) if t > now
        ]
        if not _supports("refill")(self):
            # without refills an empty reservoir ends what the example can explore: this rule
            # does not jump there (plain advances still get there)
            upcoming = [(t, k) for t, k in upcoming if k != "reservoir_empty"]
        times = [t for t, _k in upcoming]
        if not times:
            return
        until = times[0] + data.draw(
            _its("durations", timedelta(0), timedelta(minutes=1)), label="past"
        )
        self._advance_both(until, f"next alarm at {_fmt(times[0])}")

    def _delivery_targets(self) -> list[tuple[str, datetime]]:
        """Instants after now (within ``max_advance``) where delivery changes: the next stroke,
        the stroke before the next alarm, boluses' starts and ends, the next flex step, midnight,
        Monday 00:00."""
        assert self.oracle is not None
        p, now = self._live, self.oracle.now
        horizon = now + self.max_advance
        out: list[tuple[str, datetime]] = []
        nxt = p.project(self.max_advance).next_stroke
        if nxt is not None:
            out.append(("the next stroke", nxt))
        upcoming = [t for t, _k, _s in self.oracle.alarms(horizon) if t > now]
        if upcoming:
            times = self.oracle.stroke_times(upcoming[0])
            if len(times) >= 2 and from_ms(int(times[-2])) > now:
                out.append(("the stroke before the next alarm", from_ms(int(times[-2]))))
        for b in p.boluses:
            if b.start > now:
                out.append(("a bolus's start", b.start))
            out.append(("a bolus's end", b.end))
        day = datetime.combine(now.date(), datetime.min.time())
        out.append(("midnight", day + timedelta(days=1)))
        out.append(("Monday 00:00", day + timedelta(days=7 - now.weekday())))
        steps = getattr(p.program, "steps", None)
        period = getattr(p.program, "period", None)
        if steps and period in ("day", "week"):
            origin = day if period == "day" else day - timedelta(days=now.weekday())
            span = timedelta(days=1 if period == "day" else 7)
            offsets = [_step_offset(off) for off, _dose in steps]
            starts = [origin + k * span + off for k in (0, 1) for off in offsets]
            later = [t for t in starts if t > now]
            if later:
                out.append(("the next flex step", min(later)))
        return [(n, t) for n, t in out if now < t <= horizon]

    @precondition(lambda self: self.delivery_boundaries and self.oracle is not None)
    @rule(data=st.data())
    def advance_to_delivery_boundary(self, data: Any) -> None:
        """Advance to an instant where delivery changes (``delivery_boundaries``), exactly or
        1 ms before or after: a device ahead or behind by a moment shows only there."""
        targets = self._delivery_targets()
        if not targets:
            return
        name, t = data.draw(st.sampled_from(targets), label="delivery boundary")
        t += data.draw(
            st.sampled_from([timedelta(0), timedelta(milliseconds=-1), timedelta(milliseconds=1)]),
            label="by",
        )
        if t > self.oracle.now and self._advance_both(t, f"to {name}"):  # type: ignore[union-attr]
            self._cover(f"advance to: {name}")

    @precondition(_supports("set_program"))
    @rule(data=st.data())
    def set_program(self, data: Any) -> None:
        p = self._live
        lo, hi = self.daily_dose_ug
        program = data.draw(
            _its(
                "programs",
                p.model,
                p.concentration_ug_per_ml,
                kind=tuple(self.program_kinds),
                max_steps_per_day=self.max_steps_per_day,
                min_ug_per_day=lo,
                max_ug_per_day=hi,
                allow_zero=False,
            ),
            label="program",
        )
        self._do("set_program", f"set_program({program!r})", {"program": program}, (program,))

    @precondition(_supports("bolus"))
    @rule(data=st.data())
    def bolus(self, data: Any) -> None:
        p = self._live
        request = data.draw(
            _its(
                "boluses",
                p.model,
                p.concentration_ug_per_ml,
                p.program,
                min_duration=self.bolus_duration[0],
                max_duration=self.bolus_duration[1],
                min_dose_ug=self.bolus_dose_ug[0],
                max_dose_ug=self.bolus_dose_ug[1],
                max_start=self.max_bolus_start,
            ),
            label="bolus",
        )
        kwargs: dict[str, Any] = {"dose_ug": request.dose_ug, "duration": request.duration}
        text = f"bolus({request.dose_ug} µg, {request.duration})"
        extra = None
        if self.max_bolus_start > timedelta(0):
            kwargs["start"] = p.now + request.start
            extra = {"start": kwargs["start"]}
            text = text[:-1] + f", start={kwargs['start']})"
        done, answer, bolus_id = self._do(
            "bolus", text, kwargs, (request.dose_ug, request.duration), extra
        )
        if done:
            self._started(answer, bolus_id)

    @precondition(lambda self: _supports("cancel_bolus")(self) and bool(self._live.boluses))
    @rule(data=st.data())
    def cancel_bolus(self, data: Any) -> None:
        bolus_id = data.draw(
            st.sampled_from(sorted(b.id for b in self._live.boluses)), label="bolus_id"
        )
        handle = self._handles.get(bolus_id, bolus_id)
        self._do("cancel_bolus", f"cancel_bolus(#{bolus_id})", {"bolus_id": bolus_id}, (handle,))

    def _other_strengths(self) -> tuple[int, ...]:
        p = self._live
        if self.concentration_changes == "never":
            return ()
        return tuple(
            c
            for c in self.concentrations
            if c != p.concentration_ug_per_ml and _program_valid(p.program, p.model, c)
        )

    @precondition(_supports("refill"))
    @rule(data=st.data())
    def refill(self, data: Any) -> None:
        p = self._live
        lo, hi = self.refill_ml
        conc = old = p.concentration_ug_per_ml
        others = self._other_strengths()
        change = bool(others) and (
            self.concentration_changes == "always"
            or (
                self.concentration_changes == "often"
                and data.draw(st.booleans(), label="change strength")
            )
        )
        request = data.draw(
            _its(
                "refills",
                p.model,
                conc,
                p.program,
                change_concentration=change,
                min_added_ml=lo,
                max_added_ml=hi,
                strengths=others if change else None,
            ),
            label="refill",
        )
        added, conc = request.added_ml, request.concentration_ug_per_ml
        if not self.noop_steps and self._duplicate_refill(added, conc):
            _note(
                f"skipped refill({added} mL, {conc} µg/mL): the same refill again at once changes nothing"
            )
            self._cover("refill: duplicate skipped")
            return
        running = any(b.start <= p.now for b in p.boluses)
        pending = any(b.start > p.now for b in p.boluses)
        done, _, _ = self._do(
            "refill",
            f"refill({added} mL, {conc} µg/mL)",
            {"added_ml": added, "concentration_ug_per_ml": conc},
            (added, conc),
        )
        if done and conc != old:
            self._cover(
                f"concentration {'up' if conc > old else 'down'}"
                + (" with a running bolus" if running else "")
                + (" with a pending bolus" if pending else "")
            )
        # a stronger drug: mostly start the bridge bolus at once (as a clinician would)
        if (
            done
            and conc > old
            and _supports("start_bridge_bolus")(self)
            and self._has_plan("bridge_bolus_plan")
            and data.draw(st.integers(0, 3), label="bridge now") > 0
        ):
            self._start_planned("start_bridge_bolus", "bridge_bolus_plan")

    def _duplicate_refill(self, added_ml: float, conc: int) -> bool:
        """Whether this refill comes right after another (the last operation, at the same instant)
        and would leave the pump as it is: the same strength and the volume the reservoir now
        holds (only the aspirate-and-fill ledgers would move)."""
        assert self.oracle is not None
        calls = self.oracle.calls
        if not calls or calls[-1][1] != "refill" or calls[-1][0] != self.oracle.now:
            return False
        before = self.oracle.pump
        after = before.copy()
        try:
            after.refill(added_ml, conc)
            after.advance_to(after.now)  # flush the refill's events (alarms it clears or raises)
        except ItbError:
            return False
        return _observable(after) == _observable(before)

    def _start_planned(self, method: str, plan_method: str) -> None:
        try:
            plan = getattr(self._live, plan_method)()
        except ItbError as exc:
            _note(f"skipped {method}: no plan ({type(exc).__name__}: {exc})")
            return
        done, answer, bolus_id = self._do(
            method, f"{method}({plan.volume_nl} nL over {plan.duration})", {}, (plan,)
        )
        if done:
            self._started(answer, bolus_id)

    def _has_plan(self, plan_method: str) -> bool:
        try:
            getattr(self._live, plan_method)()
        except ItbError:
            return False
        return True

    @precondition(
        lambda self: _supports("start_bridge_bolus")(self) and self._has_plan("bridge_bolus_plan")
    )
    @rule()
    def start_bridge_bolus(self) -> None:
        self._start_planned("start_bridge_bolus", "bridge_bolus_plan")

    @precondition(
        lambda self: _supports("start_priming_bolus")(self) and self._has_plan("priming_bolus_plan")
    )
    @rule()
    def start_priming_bolus(self) -> None:
        self._start_planned("start_priming_bolus", "priming_bolus_plan")

    # ----- patient bolus ------------------------------------------------------------------------
    def _draw_limits(self, data: Any) -> Any:
        """Limits steered to where the bugs live: enabled ``patient_limits_enabled`` of the time,
        a small daily maximum most often, lockouts from the bolus duration up (so that granted
        boluses never overlap) — short ones most often, so the maximum is reached."""
        # no-reset mode: drawn for the pump make_pump() gives, not the state read back (which
        # differs between examples, and hypothesis refuses draws whose bounds change under a
        # replayed prefix); limits that do not fit the pump now are refused by both sides
        p = self._live if self.resettable else self._draw_pump
        enable = data.draw(st.integers(0, 99), label="enable") < round(
            100 * self.patient_limits_enabled
        )
        if not enable:
            return None
        base = data.draw(
            _its(
                "patient_limits",
                p.model,
                p.concentration_ug_per_ml,
                p.program,
                max_duration=min(self.patient_bolus_duration, self.bolus_duration[1]),
            ),
            label="limits",
        )
        lockout = data.draw(
            st.one_of(
                st.sampled_from([timedelta(0), timedelta(minutes=30), timedelta(hours=1)]),
                st.integers(0, 24 * 60).map(lambda n: timedelta(minutes=n)),
                st.integers(0, DAY_MS).map(lambda n: timedelta(milliseconds=n)),
            ),
            label="lockout",
        )
        small = tuple(n for n in self.patient_max_per_24h if 1 <= n <= 24) or (1,)
        per_day = data.draw(
            st.one_of(st.sampled_from(small), st.integers(1, 24)), label="max_per_24h"
        )
        dose = min(base.dose_ug, self.bolus_dose_ug[1])  # a smaller dose at the same duration fits
        return its.PatientLimits(dose, base.duration, max(lockout, base.duration), per_day)

    def _set_limits(self, limits: Any) -> None:
        if limits is None:
            done, _, _ = self._do(
                "set_patient_bolus_limits",
                "set_patient_bolus_limits(disabled)",
                {"dose_ug": None},
                (None, timedelta(0), timedelta(0), 0),
            )
            if done:
                self._limits = None
                self._tried_disabled = False
                self._limits_synced = True
            return
        args = (limits.dose_ug, limits.duration, limits.lockout, limits.max_per_24h)
        done, _, _ = self._do(
            "set_patient_bolus_limits",
            f"set_patient_bolus_limits({limits.dose_ug} µg, {limits.duration}, "
            f"lockout {limits.lockout}, {limits.max_per_24h}/24 h)",
            dict(zip(("dose_ug", "duration", "lockout", "max_per_24h"), args)),
            args,
        )
        if done:
            self._limits = limits
            self._tried_disabled = False
            self._limits_synced = True

    @precondition(_supports("set_patient_bolus_limits"))
    @rule(data=st.data())
    def set_patient_bolus_limits(self, data: Any) -> None:
        self._set_limits(self._draw_limits(data))

    def _patient_targets(self) -> list[tuple[str, datetime]]:
        """The instants where the patient-bolus rules change their answer, from the grants the
        oracle made (the rules: docs/guide/testing-kit.md#patient-bolus-rules)."""
        limits, now = self._limits, self._live.now
        if limits is None:
            return []
        day = timedelta(days=1)
        grants = [g for g in self._grants if g > now - day]
        if not grants:
            return []
        last, oldest = grants[-1], grants[0]
        out = [
            ("lockout end", last + limits.lockout),
            ("24 h after the oldest grant", oldest + day),
        ]
        if len(grants) >= limits.max_per_24h:  # the window is full: when it opens again
            out.append(("daily maximum frees", grants[-limits.max_per_24h] + day))
        if limits.lockout >= timedelta(milliseconds=2):
            out.append(("inside the lockout", last + limits.lockout // 2))
        midnight = datetime.combine(now.date(), datetime.min.time()) + day
        out.append(("midnight", midnight))
        seen: set[datetime] = set()
        return [(n, t) for n, t in out if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]

    def _activate(self) -> None:
        if self._asynchronous():  # an answer within the time tolerance of a rule's edge is moot
            self._catch_up()
            now, tol = self._live.now, self.time_tol
            near = [n for n, t in self._patient_targets() if abs(t - now) <= tol]
            if near:
                _note(f"patient_bolus() not sent: within {tol} of the {near[0]}")
                return
        done, answer, result = self._do("patient_bolus", "patient_bolus()", {})
        if not done:
            return
        self.trace[-1] = f"patient_bolus() -> {result.reason}"
        self._cover(f"patient_bolus: {result.reason}")
        if result.reason == "not_enabled":
            self._tried_disabled = True
        if result.granted:
            self._grants.append(self._live.now)
            self._started(getattr(answer, "bolus_id", None), result.bolus_id)
        if answer is None:
            return
        got: object
        want: object
        if isinstance(answer, bool):
            got, want = answer, result.granted
        elif isinstance(answer, str):
            got, want = answer, result.reason
        else:
            got, want = bool(answer.granted), result.granted
            reason = getattr(answer, "reason", None)
            if got == want and reason is not None:
                got, want = reason, result.reason
        if got != want:
            self._fail(
                f"device diverged at {_fmt(self._live.now)}: patient activation: expected "
                f"{want!r} ({result.reason}), the device answered {got!r}"
            )

    @precondition(
        lambda self: (
            _supports("patient_bolus")(self)
            and (self._limits is not None or self.noop_steps or not self._tried_disabled)
            and self._patient_ready()
        )
    )
    @rule(data=st.data())
    def patient_bolus(self, data: Any) -> None:
        """Patient activations: one now, or a burst of up to 4 (as a patient in pain presses
        again), each mostly — once a bolus was granted under the limits in force — at or 1 ms
        either side of an instant where the rules change their answer: the lockout's end, 24 h
        after the oldest grant counted, when the daily maximum frees, inside the lockout, at
        midnight (an advance to it first)."""
        for _ in range(data.draw(st.integers(1, 4), label="presses")):
            if self._limits is None and self._tried_disabled and not self.noop_steps:
                return  # one activation while disabled says all (the rest change nothing)
            now = self._live.now
            targets = [(name, t) for name, t in self._patient_targets() if t >= now]
            if targets and data.draw(st.integers(0, 3), label="at a boundary") > 0:
                name, t = data.draw(st.sampled_from(targets), label="boundary")
                edge = timedelta(milliseconds=1)
                if self._asynchronous():  # just outside the time tolerance: the answer is sure
                    edge += self.time_tol
                t += data.draw(
                    st.one_of(
                        st.just(timedelta(0)),
                        st.sampled_from([-edge, edge]),
                    ),
                    label="by",
                )
                if t > now and not self._advance_both(t, f"to {name}"):
                    return
                self._cover(f"patient_bolus at: {name}")
            self._activate()

    @precondition(lambda self: _supports("suspend")(self) and not self._live.is_suspended)
    @rule()
    def suspend(self) -> None:
        self._do("suspend", "suspend()", {})

    @precondition(lambda self: _supports("resume")(self) and self._live.is_suspended)
    @rule()
    def resume(self) -> None:
        self._do("resume", "resume()", {})

    @precondition(lambda self: _supports("inject_motor_stall")(self) and not self._live.is_stalled)
    @rule()
    def inject_motor_stall(self) -> None:
        self._do("inject_motor_stall", "inject_motor_stall()", {})

    @precondition(lambda self: _supports("clear_fault")(self) and self._live.is_stalled)
    @rule()
    def clear_fault(self) -> None:
        self._do("clear_fault", "clear_fault()", {})

    @precondition(_supports("revise_catheter"))
    @rule(data=st.data())
    def revise_catheter(self, data: Any) -> None:
        volume = data.draw(_its("catheter_volumes", self.max_catheter_ul), label="volume_ul")
        self._do(
            "revise_catheter", f"revise_catheter({volume} µL)", {"volume_ul": volume}, (volume,)
        )

    @precondition(_supports("telemetry_session"))
    @rule()
    def telemetry_session(self) -> None:
        self._do("telemetry_session", "telemetry_session()", {})

    # ----- faults (docs: guide/faults.md) -----------------------------------------------------
    @precondition(lambda self: any(_supports(a)(self) for a in KIT_FAULTS))
    @rule(data=st.data())
    def fault(self, data: Any) -> None:
        """One of :data:`KIT_FAULTS` the device supports and the oracle's pump accepts now, drawn
        by :func:`itb.strategies.fault_actions` (an occlusion passing 0–99 %, a leak or a
        disconnection within the catheter, a migration, a pocket fill, a battery fault, or the
        clearing of one in force); then, after an injection or a pocket fill, with
        :attr:`advance_after_fault`, past the next stroke."""
        kinds = tuple(k for k in KIT_FAULTS if _supports(k)(self))
        options = its.fault_actions(self._live, kinds)
        if not kinds or options.is_empty:
            return
        req = data.draw(options, label="fault")
        name, kw = req.kind, req.kwargs
        if name == "inject_occlusion":
            text = f"{name}({kw['pass_pct']:g} %)"
        elif name in ("inject_leak", "inject_disconnection"):
            text = f"{name}({kw['position_ul']:g} µL)"
        elif name == "pocket_fill":
            text = (
                f"refill({kw['added_ml']:g} mL, {kw['concentration_ug_per_ml']} µg/mL, "
                f"pocket {kw['pocket_ml']:g} mL)"
            )
        else:
            text = f"{name}()"
        done = self._do(req.do, text, kw, tuple(kw.values()), adapter=f"device_{name}")
        if done[0] and name.startswith(("inject_", "pocket_")) and self.advance_after_fault:
            nxt = self._live.project(self.max_advance).next_stroke
            if nxt is not None:
                extra = data.draw(
                    _its("durations", timedelta(0), self.max_advance), label="after fault"
                )
                self._advance_both(nxt + extra, f"{name} in force")

    def _preceding(self, at_ms: int) -> str:
        """The latest operation (not an advance) made at or before ``at_ms``."""
        assert self.oracle is not None
        ops = [(to_ms(t, "t"), name) for t, name, _kw in self.oracle.calls]
        before = [i for i, (t, _name) in enumerate(ops) if t <= at_ms]
        if not before:
            return "no operation since the start"
        t, _ = ops[before[-1]]
        texts = [x for x in self.trace if not x.startswith("advance(")]
        text = texts[before[-1]] if before[-1] < len(texts) else self.oracle.calls[before[-1]][1]
        return f"after {text} at {_fmt(from_ms(t))}"

    def _first_wrong_stroke(self, device_ms: np.ndarray, until_ms: int) -> str | None:
        """Compare the device's stroke times with the oracle's up to ``until_ms``."""
        assert self.oracle is not None
        want = self.oracle.stroke_times(until_ms)
        got = np.sort(device_ms[device_ms <= until_ms])
        n = min(len(want), len(got))
        bad = np.nonzero(want[:n] != got[:n])[0]
        i = int(bad[0]) if len(bad) else n
        if i == len(want) and i == len(got):
            return None
        if i < len(want) and (i >= len(got) or got[i] > want[i]):
            late = f", made at {_fmt(from_ms(int(got[i])))}" if i < len(got) else ", never made"
            return (
                f"first wrong stroke: #{i + 1}, due at {_fmt(from_ms(int(want[i])))}{late} "
                f"({self._preceding(int(want[i]))})"
            )
        due = f"due at {_fmt(from_ms(int(want[i])))}" if i < len(want) else "not due yet"
        return (
            f"first wrong stroke: #{i + 1}, made early at {_fmt(from_ms(int(got[i])))} ({due}; "
            f"{self._preceding(int(got[i]))})"
        )

    def _logged_events(self, logged: Any) -> list[tuple[int, str]]:
        """The device's log as sorted ``(ms, kind)`` of :attr:`event_kinds` (checked)."""
        kinds = self.event_kinds
        got: list[tuple[int, str]] = []
        for i, entry in enumerate(logged):
            if (
                not isinstance(entry, (tuple, list))
                or len(entry) < 2
                or not isinstance(entry[1], str)
            ):
                raise TypeError(
                    f"{type(self).__name__}.device_events()[{i}] = {entry!r}: give (time, kind) "
                    f"with kind an itb event kind"
                )
            if entry[1] in kinds:
                got.append((to_ms(entry[0], f"device_events()[{i}]"), entry[1]))
        return sorted(got)

    def _late_events(self, logged: Any, t0: datetime, t1: datetime) -> str | None:
        """Asynchronous observation of ``device_events()`` (read between ``t0`` and ``t1``):
        the n-th event of each kind within ``time_tol`` of the oracle's n-th; None, or the
        earliest event late (early) by how much, missing, or extra."""
        assert self.oracle is not None
        _lo, hi = self._window(t0, t1)
        tol = self.time_tol
        lo_ms, hi_ms = to_ms(t0 - tol, "t0"), to_ms(hi, "hi")  # due by: not clamped to the start
        tol_ms = tol // timedelta(milliseconds=1)
        got = self._logged_events(logged)
        if self._base_ms is not None:  # no-reset mode: the log since the resync
            got = [(t, k) for t, k in got if t >= self._base_ms]
        want = sorted(
            (e.time_ms, e.kind) for e in self.oracle.events(hi) if e.kind in self.event_kinds
        )
        found: list[tuple[int, str]] = []
        for kind in sorted({k for _t, k in want} | {k for _t, k in got}):
            w = [t for t, k in want if k == kind]
            g = [t for t, k in got if k == kind]
            for i in range(max(len(w), len(g))):
                if i < len(w) and i < len(g):
                    off = g[i] - w[i]
                    if abs(off) > tol_ms:
                        found.append(
                            (
                                min(w[i], g[i]),
                                f"device event {kind!r} #{i + 1} {'late' if off > 0 else 'early'} "
                                f"by {timedelta(milliseconds=abs(off))}: due at "
                                f"{_fmt(from_ms(w[i]))}, logged at {_fmt(from_ms(g[i]))} "
                                f"(time tolerance {tol}; {self._preceding(w[i])})",
                            )
                        )
                        break
                elif i < len(w):
                    if w[i] <= lo_ms:
                        found.append(
                            (
                                w[i],
                                f"device event {kind!r} #{i + 1} late: due at {_fmt(from_ms(w[i]))}, "
                                f"not logged when read at {_fmt(t0)}: late by at least "
                                f"{t0 - from_ms(w[i])} (time tolerance {tol}; "
                                f"{self._preceding(w[i])})",
                            )
                        )
                    break
                else:
                    found.append(
                        (
                            g[i],
                            f"device event {kind!r} #{i + 1} early: logged at "
                            f"{_fmt(from_ms(g[i]))}, the oracle has no such event by "
                            f"{_fmt(from_ms(hi_ms))} (time tolerance {tol})",
                        )
                    )
                    break
        return min(found)[1] if found else None

    def _first_wrong_event(self, logged: Any) -> str | None:
        """The first difference between the device's event log (its events of
        :attr:`event_kinds`) and the oracle's, in time order (events of one millisecond in any
        order); None when they agree."""
        assert self.oracle is not None
        kinds = self.event_kinds
        got = self._logged_events(logged)
        want = sorted((e.time_ms, e.kind) for e in self.oracle.events() if e.kind in kinds)
        for i in range(max(len(want), len(got))):
            w = want[i] if i < len(want) else None
            g = got[i] if i < len(got) else None
            if w == g:
                continue
            if w is not None and (g is None or w <= g):
                seen = [t for t, k in got[i:] if k == w[1]]
                also = (
                    f", the device logged it at {_fmt(from_ms(seen[0]))}"
                    if seen
                    else ", the device did not log it"
                )
                return (
                    f"device event log diverged at {_fmt(from_ms(w[0]))}: expected {w[1]!r} "
                    f"then{also} ({self._preceding(w[0])})"
                )
            assert g is not None
            return (
                f"device event log diverged at {_fmt(from_ms(g[0]))}: the device logged "
                f"{g[1]!r}, which the oracle has not then ({self._preceding(g[0])})"
            )
        return None

    def _localise(self) -> str | None:
        """Place a volume divergence exactly: from ``device_stroke_times()`` when the device gives
        them, else by replaying the device's calls from a fresh start with every advance split at
        the oracle's strokes (1 ms before and at each), reading the device after each piece. None
        when neither works (``localise = False``, a replay that does not reproduce, too long)."""
        assert self.oracle is not None
        now_ms = self.oracle.now_ms
        own = self.device_stroke_times()
        if own is not None and own is not NotImplemented:
            from .asserts import _ms_array

            return self._first_wrong_stroke(_ms_array(own, "device_stroke_times()"), now_ms)
        advances = [a[0] for ad, a, _kw, _ans, _t in self._device_log if ad == "device_advance"]
        if (
            not self.localise
            or not self.resettable
            or self._asynchronous()
            or not advances
            or to_ms(advances[-1], "until") != now_ms
        ):
            return None  # the log does not hold the run (calls made around the machine)
        log, self._device_log = self._device_log, []
        times = self.oracle.stroke_times(now_ms)
        bolus_ms = [
            (e.time_ms, f"{e.kind.replace('_', ' ')} (bolus #{e.data.get('bolus_id', '?')})")
            for e in self.oracle.events(now_ms)
            if e.kind in ("bolus_started", "bolus_completed")
        ]
        self._edges: list[tuple[int, str]] = []  # the boundaries split at, for the message
        q = self.oracle.stroke_nl
        handles: list[tuple[Any, Any]] = []

        def mapped(value: Any) -> Any:
            for old, new in handles:
                if value is old or (type(value) is type(old) and value == old):
                    return new
            return value

        prev = to_ms(self.oracle.start.now, "start")
        budget = self.localise_max_steps
        for adapter, args, kwargs, answer, _text in log:
            if adapter == "device_start":
                getattr(self, adapter)(self.oracle.start)
                continue
            if adapter != "device_advance":
                new = getattr(self, adapter)(*[mapped(a) for a in args], **kwargs)
                handles.append((answer, new))
                for name in ("bolus_id",):
                    if hasattr(answer, name) and hasattr(new, name):
                        handles.append((getattr(answer, name), getattr(new, name)))
                continue
            until = to_ms(args[0], "until")
            lo = int(np.searchsorted(times, prev, side="right"))
            hi = int(np.searchsorted(times, until, side="right"))
            edges = _step_starts(self.oracle._state_at(prev), prev, until) + [
                (t, what) for t, what in bolus_ms if prev < t <= until
            ]
            self._edges += edges
            points = sorted(
                {int(t) - 1 for t in times[lo:hi] if int(t) - 1 > prev}
                | {int(t) for t in times[lo:hi]}
                | {t - 1 for t, _what in edges if t - 1 > prev}
                | {t for t, _what in edges}
                | {until}
            )
            budget -= len(points)
            if budget < 0:
                return None
            for point in points:
                self.device_advance(from_ms(point))
                got = self._reading("device_observed")
                if got is None or got is NotImplemented:
                    continue
                n = int(np.searchsorted(times, point, side="right"))
                if abs(got - n * q) <= self.tol_strokes * q:
                    continue
                if self._agreed is not None and point < to_ms(self._agreed[0], "t"):
                    return (
                        "the replay diverged before the run did (the device's delivery depends on how time is split into advances): "
                        + self._wrong(got, n, times, point)
                    )
                return self._wrong(got, n, times, point)
            prev = until
        return None

    def _edge_before(self, at_ms: int) -> str:
        """The latest program step start or bolus start/end split at (by ``at_ms``), when it
        is after the latest operation: ``"; after <it>"``, else ``""``."""
        assert self.oracle is not None
        ops = [to_ms(t, "t") for t, _name, _kw in self.oracle.calls]
        last_op = max((t for t in ops if t <= at_ms), default=None)
        edges = [(t, what) for t, what in getattr(self, "_edges", []) if t <= at_ms]
        if not edges:
            return ""
        t, what = max(edges)
        if last_op is not None and t <= last_op:
            return ""
        return f"; after {what} at {_fmt(from_ms(t))}"

    def _wrong(self, got: int, n: int, times: np.ndarray, point: int) -> str:
        """The first wrong stroke when the device has ``got`` nL at ``point`` against the
        oracle's ``n`` strokes by then."""
        assert self.oracle is not None
        q, how = (
            self.oracle.stroke_nl,
            "found by replaying the calls with every advance split at the oracle's strokes "
            "and the program's step boundaries",
        )
        if got < n * q:
            k = int(got // q) + self.tol_strokes + 1
            due = int(times[k - 1])
            return (
                f"first wrong stroke: #{k}, due at {_fmt(from_ms(due))}, not made by then "
                f"({self._preceding(due)}{self._edge_before(due)}; {how})"
            )
        k = n + self.tol_strokes + 1
        when = f"due at {_fmt(from_ms(int(times[k - 1])))}" if k <= len(times) else "not due yet"
        return (
            f"first wrong stroke: #{k}, made early, by {_fmt(from_ms(point))} ({when}; "
            f"{self._preceding(point)}{self._edge_before(point)}; {how})"
        )

    def _divergence(self, expected: Any, observed: Any) -> str:
        """Where the device's volume diverged: the check that saw it, the last check where it
        agreed, and the oracle's strokes in between (only cumulative volumes are observed, so the
        first differing stroke lies in that window)."""
        assert self.oracle is not None
        q, tol, t = self.oracle.stroke_nl, self.tol_strokes, expected.at
        off = observed - expected.pumped_nl
        head = (
            f"expected {expected.pumped_nl} nL pumped ({expected.strokes} strokes), observed {observed} nL: "
            f"{'over' if off > 0 else 'under'} by {abs(off)} nL = {abs(off) / q:g} stroke(s) (tolerance {tol})"
        )
        since, ops = self._agreed if self._agreed is not None else (self.oracle.start.now, 0)
        last = (
            f"last agreeing check, after {ops} operation(s)"
            if self._agreed is not None
            else "the start, never checked since"
        )
        times = self.oracle.stroke_times(t)
        done = int(
            np.searchsorted(times, to_ms(since, "since"), side="right")
        )  # oracle strokes by `since`

        def stroke(i: int) -> str:  # the oracle's stroke #i (1-based)
            return f"#{i} at {_fmt(from_ms(int(times[i - 1])))}"

        n = len(times) - done
        window = (
            "the oracle made no stroke in between"
            if n == 0
            else f"the oracle's stroke in between: {stroke(done + 1)}"
            if n == 1
            else f"the oracle's strokes in between: {stroke(done + 1)} … {stroke(len(times))}"
        )
        if off < 0:
            k = (
                int(observed // q) + tol + 1 - self.oracle.start.strokes
            )  # the oracle's stroke the device lacks beyond the tolerance (index since the start)
            where = (
                f"; the first stroke the device lacks: {stroke(k)}" if 0 < k <= len(times) else ""
            )
        else:
            nxt = self._live.project(timedelta(days=3650)).next_stroke
            where = (
                f"; the device made stroke #{expected.strokes + tol + 1}, which the oracle makes only at "
                f"{_fmt(nxt)}"
                if nxt is not None
                else ""
            )
        return f"device diverged between {_fmt(since)} ({last}) and {_fmt(t)} (detected): {head}; {window}{where}"

    def _reading(self, adapter: str) -> Any:
        """What ``device_observed()`` / ``device_measured()`` returned: None or NotImplemented
        (skip the comparison), else a whole number of nL by the rule of the assertions
        (:func:`~itb.testing.asserts.whole_nl`: a float such as ``482000.0`` is a ``TypeError``
        naming the adapter)."""
        value = getattr(self, adapter)()
        if value is None or value is NotImplemented:
            return value
        return whole_nl(value, f"{type(self).__name__}.{adapter}() (cumulative nL; None to skip)")

    @invariant()
    def device_matches_oracle(self) -> None:
        if self.oracle is None:
            return
        live = self._live
        invariants.check_state(live)
        invariants.monotone(self._before, live)
        self._before = live.copy()
        t0 = self.clock.now() if self.clock is not None else self.oracle.now
        measured = self._reading("device_measured")
        observed = self._reading("device_observed")
        alarms = self.device_alarms()
        strokes = self.device_stroke_times() if self._asynchronous() else None
        logged = self.device_events() if self._asynchronous() else None
        t1 = self.clock.now() if self.clock is not None else self.oracle.now
        if self._asynchronous():
            self._compare_async(t0, t1, measured, observed, alarms, strokes)
            if logged is not None and logged is not NotImplemented:
                late = self._late_events(logged, t0, t1)
                if late is not None:
                    self._fail(late)
            return
        if measured is not None and measured is not NotImplemented:
            tip = int(live.delivered_nl)
            if abs(measured - tip) > self.tol_strokes * self.oracle.stroke_nl:
                self._fail(
                    f"measured delivery {measured} nL at the tip, the oracle's physical ledger "
                    f"says {tip} nL reached it (firmware count {int(live.pumped_nl)} nL)"
                )
        if observed is not None and observed is not NotImplemented:
            observed -= self._base[0]
            expected = self.oracle.expected()
            q = self.oracle.stroke_nl
            off = observed - expected.pumped_nl
            if abs(off) > self.tol_strokes * q:
                self._fail(self._divergence(expected, observed), localise=True)
            self._agreed = (expected.at, len(self.trace))
        logged = self.device_events()
        if logged is not None and logged is not NotImplemented:
            wrong = self._first_wrong_event(logged)
            if wrong is not None:
                self._fail(wrong)
        if alarms is not None and alarms is not NotImplemented:
            try:
                assert_alarms_match(
                    list(alarms)[self._base[2] :],
                    self.oracle,
                    tol=self.alarm_tol,
                    until=self.oracle.now,
                )
            except AssertionError as exc:
                self._fail(str(exc))

    def _compare_async(
        self, t0: datetime, t1: datetime, measured: Any, observed: Any, alarms: Any, strokes: Any
    ) -> None:
        """The comparison for asynchronous observation: readings taken between ``t0`` and ``t1``
        (the clock's times around them), each within ``time_tol`` of the oracle."""
        assert self.oracle is not None
        if t1 > self.oracle.now:  # the oracle covers what the device may show
            self._catch_up()
        lo, hi = self._window(t0, t1)
        q, k = self.oracle.stroke_nl, self.tol_strokes
        if measured is not None and measured is not NotImplemented:
            measured -= self._base[1]
            least, most = (
                self.oracle.expected(lo).delivered_nl,
                self.oracle.expected(hi).delivered_nl,
            )
            if not least - k * q <= measured <= most + k * q:
                self._fail(
                    f"measured delivery {measured} nL at the tip, read between {_fmt(t0)} and "
                    f"{_fmt(t1)}: the oracle's physical ledger says {least}..{most} nL within the "
                    f"time tolerance {self.time_tol}"
                )
        if strokes is not None and strokes is not NotImplemented:
            late = self._late_strokes(strokes, t0, t1)
            if late is not None:
                self._fail(late)
        if observed is not None and observed is not NotImplemented:
            late = self._late_volume(observed - self._base[0], t0, t1)
            if late is not None:
                self._fail(late)
            self._agreed = (lo, len(self.trace))
        if alarms is not None and alarms is not NotImplemented:
            try:
                assert_alarms_match(
                    list(alarms)[self._base[2] :],
                    self.oracle,
                    tol=max(self.alarm_tol, self.time_tol),
                    until=lo,
                )
            except AssertionError as exc:
                self._fail(str(exc))


def _step_starts(pump: Any, after_ms: int, until_ms: int) -> list[tuple[int, str]]:
    """The basal program's step starts in ``(after_ms, until_ms]`` (pump-clock ms) with what
    starts there: for a flex program each step's start (its first step at midnight or Monday
    00:00), for a continuous one midnight. From the pump's exact schedule (period, anchor,
    offsets); the steps of the program in force at ``after_ms``."""
    period, anchor, steps = invariants._core(pump).schedule
    if period <= 0 or not steps:
        return []
    flex = len(steps) > 1 or getattr(pump.program, "steps", None) is not None
    out: list[tuple[int, str]] = []
    k = (after_ms - anchor) // period
    while anchor + k * period <= until_ms:
        base = anchor + k * period
        for i, (offset, _rate) in enumerate(steps):
            t = base + offset
            if after_ms < t <= until_ms:
                what = f"the program's step {i + 1}" if flex else "midnight"
                out.append((t, what))
        k += 1
    return out


class _ShrinkBudgetSpent(KeyboardInterrupt):
    """Raised through hypothesis to stop it once the shrink budget is spent; :func:`run` catches
    it. A ``KeyboardInterrupt``: the one exception hypothesis passes on at once as an
    interruption (not a failure to shrink, not an example to record)."""


class _ShrinkClock:
    """The shrink budget of one :func:`run`: when the first failure was seen (the budget counts
    from it) and the smallest failing example so far (fewest operations; the later of equals, as
    hypothesis tries smaller examples later)."""

    def __init__(self, budget: timedelta) -> None:
        self.budget_s = budget.total_seconds()
        self.failed_at: float | None = None
        self.best: tuple[int, PumpStateMachine, Exception] | None = None
        self.failures = 0

    def failed(self, machine: PumpStateMachine, exc: Exception) -> None:
        self.failures += 1
        if self.failed_at is None:
            self.failed_at = time.perf_counter()
        if self.best is None or len(machine.trace) <= self.best[0]:
            self.best = (len(machine.trace), machine, exc)

    def spent(self) -> bool:
        return self.failed_at is not None and time.perf_counter() - self.failed_at > self.budget_s

    def report(self) -> BaseException:
        """The smallest failure seen, as the reported run would raise it (localised, exported),
        noting that the budget stopped shrinking."""
        assert self.best is not None  # spent() needs a failure
        _ops, machine, exc = self.best
        note = (
            f"\n(shrinking stopped by the {self.budget_s:g} s shrink budget after "
            f"{self.failures} failing example(s); this is the smallest seen)"
        )
        if machine._failure is not None and isinstance(exc, AssertionError):
            message, localise = machine._failure
            return AssertionError(machine._report(message, localise, note))
        exc.add_note(note.strip())
        return exc


def run(
    machine: type[PumpStateMachine], settings: Any = None, *, seed: int | None = None
) -> Counter[Any]:
    """Run ``machine`` as a hypothesis test (as ``machine.TestCase`` does) and return the cases it
    reached (its :attr:`~PumpStateMachine.coverage` for this run).

    ``seed`` (default: ``machine.seed``) fixes hypothesis's random stream (and turns
    ``derandomize`` off), so the examples depend on the seed and the machine's rules only, not on
    the test's name. A failure is shrunk for at most ``machine.shrink_budget`` (or the
    ``itb-ci`` profile's budget) from when it was first found. A run that never reached one of
    ``machine.must_reach`` fails with
    ``AssertionError`` naming it and what was reached; with ``report_coverage`` the counts are
    printed at the end."""
    from hypothesis import seed as with_seed
    from hypothesis import settings as Settings
    from hypothesis.errors import Flaky
    from hypothesis.stateful import get_state_machine_test

    budget = machine.shrink_budget if machine.shrink_budget is not None else shrink_budget()
    if budget is not None and (not isinstance(budget, timedelta) or budget <= timedelta(0)):
        raise ValueError(
            f"{machine.__name__}.shrink_budget must be a timedelta > 0 (or None), not {budget!r}"
        )
    chosen = machine.seed if seed is None else seed
    if chosen is not None:
        base = settings if settings is not None else getattr(machine.TestCase, "settings", None)
        settings = (
            Settings(base, derandomize=False) if base is not None else Settings(derandomize=False)
        )
    machine.coverage.clear()
    machine._last_failure = None
    test = get_state_machine_test(machine, settings=settings)
    if chosen is not None:
        test = with_seed(chosen)(test)
    clock = machine._shrink_clock = _ShrinkClock(budget) if budget is not None else None
    try:
        test()
    except _ShrinkBudgetSpent:
        assert clock is not None
        raise clock.report() from None
    except Flaky as exc:
        # a real-time device (the timing differs) or one never reset (its state differs): the
        # replay of a failing example can take another course, which hypothesis reports as
        # flaky; report the divergence itself
        real_time = (
            machine.clock is not None or machine.make_clock is not PumpStateMachine.make_clock
        )
        if machine._last_failure is None or (machine.resettable and not real_time):
            raise
        why = "a real-time run" if real_time else "a device never reset between examples"
        raise AssertionError(
            f"{machine._last_failure}\n({why}: hypothesis's replay of the failing example took "
            f"another course, {type(exc).__name__}; the divergence above is the latest one seen)"
        ) from exc
    finally:
        machine._shrink_clock = None
    reached = Counter(machine.coverage)
    if machine.report_coverage:
        print(coverage_report(machine.__name__, reached))
    missing = sorted(c for c in machine.must_reach if not reached.get(c))
    if missing:
        raise AssertionError(
            f"{machine.__name__}: the run never reached {', '.join(missing)} (must_reach); "
            f"reached: {', '.join(sorted(reached)) or 'nothing'}"
        )
    return reached


def coverage_report(name: str, reached: Counter[Any]) -> str:
    """The cases a run reached, one line each, most frequent first."""
    lines = [f"{name}: cases reached ({sum(reached.values())} in all)"]
    lines += [f"  {n:>7}  {case}" for case, n in reached.most_common()]
    return "\n".join(lines)
