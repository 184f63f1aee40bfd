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
is defined; ``unsupported`` must be a set or frozenset of names of :data:`ACTIONS` (``TypeError``
/ ``ValueError``), ``tol_strokes`` an int >= 0; a machine that overrides no ``device_advance``, or
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
``device_observed()``
    cumulative nL the device says it pumped since the start, or None to skip the comparison.
``device_alarms()``
    every alarm the device raised since the start: ``[(time, kind), ...]`` or ``(time, kind,
    severity)``; kinds as itb's (``low_reservoir``, ``reservoir_empty``, ``fault``, ``eri``,
    ``eos``, ``refill_discrepancy``); None to skip the comparison.

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

import numbers
from datetime import datetime, timedelta
from functools import lru_cache
from types import FunctionType
from typing import Any

import numpy as np

from .._extras import require as _require  # a clear error naming itb[testing] without hypothesis

_require("hypothesis", "testing", "itb's testing kit")
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from .._time import from_ms, to_ms
from ..errors import ItbError
from . import invariants
from . import strategies as its
from .asserts import assert_alarms_match
from .oracle import Oracle

__all__ = ["PumpStateMachine", "ACTIONS", "ADAPTERS"]

#: Every action a device can receive (adapter ``device_<name>``), in the order of the rules.
ACTIONS: tuple[str, ...] = (
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
#: Every adapter a subclass may override (any other ``device_*`` method is an error).
ADAPTERS: tuple[str, ...] = (
    "device_start",
    "device_advance",
    *(f"device_{a}" for a in ACTIONS),
    "device_observed",
    "device_alarms",
)
_BASE_DEVICE_NAMES = frozenset(ADAPTERS) | {"device_matches_oracle"}


def _fmt(t: datetime) -> str:
    return t.isoformat(sep=" ", timespec="milliseconds" if t.microsecond else "seconds")


def _check_settings(cls: type) -> None:
    """``unsupported`` and ``concentration_changes`` of a subclass name known things."""
    unsupported = cls.unsupported  # type: ignore[attr-defined]
    if not isinstance(unsupported, (set, frozenset)) or not all(
        isinstance(a, str) for a in unsupported
    ):
        raise TypeError(
            f"{cls.__name__}.unsupported must be a set or frozenset of action names, e.g. "
            f"frozenset({{'refill'}}), not {unsupported!r}"
        )
    unknown = sorted(set(unsupported) - set(ACTIONS))
    if unknown:
        raise ValueError(
            f"{cls.__name__}.unsupported: unknown action(s) {unknown}; actions: {', '.join(ACTIONS)}"
        )
    if cls.concentration_changes not in ("often", "always", "never"):  # type: ignore[attr-defined]
        raise ValueError(
            f"{cls.__name__}.concentration_changes must be 'often', 'always' or 'never', not "
            f"{cls.concentration_changes!r}"
        )  # type: ignore[attr-defined]
    if (
        isinstance(cls.tol_strokes, bool)
        or not isinstance(cls.tol_strokes, int)
        or cls.tol_strokes < 0
    ):  # type: ignore[attr-defined]
        raise ValueError(
            f"{cls.__name__}.tol_strokes must be a whole number of strokes >= 0, not "
            f"{cls.tol_strokes!r}"
        )  # type: ignore[attr-defined]


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

    def device_alarms(self) -> list[tuple] | None:
        """Every alarm the device raised since the start, ``[(time, kind[, severity]), ...]``, or
        None to skip the comparison."""
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
        super().__init__()
        self.oracle: Oracle | None = None
        self.trace: list[str] = []
        self._handles: dict[int, Any] = {}
        self._agreed: tuple[datetime, int] | None = (
            None  # (time, operations) of the last agreeing check
        )

    @initialize()
    def _start(self) -> None:
        pump = self.make_pump()
        self.oracle = Oracle(pump)
        self._before = self.oracle.pump
        self.device_start(pump.copy())
        invariants.check_state(self._before)

    @property
    def _live(self) -> Any:
        assert self.oracle is not None
        return self.oracle._live  # read only

    def _fail(self, message: str) -> None:
        steps = "\n  ".join(self.trace) or "(none)"
        raise AssertionError(f"{message} after {len(self.trace)} operations:\n  {steps}")

    def _do(
        self,
        method: str,
        text: str,
        kwargs: dict[str, Any],
        args: tuple = (),
        adapter_kwargs: Any = None,
        adapter: str | None = None,
    ) -> tuple[bool, Any, Any]:
        """Probe ``pump.<method>(**kwargs)`` on a copy, call the adapter (``device_<method>`` with
        ``args``), record the call on the oracle. Returns (done, the device's answer, the pump's)."""
        assert self.oracle is not None
        try:
            getattr(self.oracle.pump, method)(**kwargs)
        except ItbError as exc:
            note(f"skipped {text}: the pump refuses it ({type(exc).__name__}: {exc})")
            return False, None, None
        answer = getattr(self, adapter or f"device_{method}")(*args, **(adapter_kwargs or {}))
        if answer is NotImplemented:
            return False, None, None
        result = self.oracle.call(method, **kwargs)
        self.trace.append(text)
        note(text)
        return True, answer, result

    def _started(self, answer: Any, bolus_id: Any) -> None:
        if isinstance(bolus_id, int):
            self._handles[bolus_id] = bolus_id if answer is None else answer

    @rule(data=st.data())
    def advance(self, data: Any) -> None:
        if self.oracle is None:
            return
        step = data.draw(_its("durations", timedelta(0), self.max_advance), label="advance")
        until = self.oracle.now + step
        if self.device_advance(until) is NotImplemented:
            return
        before = self.oracle.pump
        self.oracle.advance_to(until)
        self.trace.append(f"advance({step})")
        note(f"advance({step}) -> {until}")
        invariants.check_step(before, self._live, advance_only=True)

    @precondition(lambda self: type(self).device_alarms is not PumpStateMachine.device_alarms)
    @rule(data=st.data())
    def advance_to_next_alarm(self, data: Any) -> None:
        """Advance to the oracle's next alarm (within ``alarm_horizon``), or a little past it
        (drawn only when the device reports its alarms)."""
        if self.oracle is None:
            return
        now = self.oracle.now
        upcoming = [t for t, _kind, _sev in self.oracle.alarms(now + self.alarm_horizon) if t > now]
        if not upcoming:
            return
        until = upcoming[0] + data.draw(
            _its("durations", timedelta(0), timedelta(minutes=1)), label="past"
        )
        if self.device_advance(until) is NotImplemented:
            return
        before = self.oracle.pump
        self.oracle.advance_to(until)
        self.trace.append(f"advance({until - now})")
        note(f"advance({until - now}) -> {until} (next alarm at {upcoming[0]})")
        invariants.check_step(before, self._live, advance_only=True)

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

    @precondition(_supports("refill"))
    @rule(data=st.data())
    def refill(self, data: Any) -> None:
        p = self._live
        lo, hi = self.refill_ml
        conc = old = p.concentration_ug_per_ml
        others = tuple(
            c
            for c in self.concentrations
            if c != conc and its._program_valid(p.program, p.model, c)
        )
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
        done, _, _ = self._do(
            "refill",
            f"refill({added} mL, {conc} µg/mL)",
            {"added_ml": added, "concentration_ug_per_ml": conc},
            (added, conc),
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

    def _start_planned(self, method: str, plan_method: str) -> None:
        try:
            plan = getattr(self._live, plan_method)()
        except ItbError as exc:
            note(f"skipped {method}: no plan ({type(exc).__name__}: {exc})")
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

    @precondition(_supports("set_patient_bolus_limits"))
    @rule(data=st.data())
    def set_patient_bolus_limits(self, data: Any) -> None:
        p = self._live
        limits = data.draw(
            st.one_of(
                _its(
                    "patient_limits",
                    p.model,
                    p.concentration_ug_per_ml,
                    p.program,
                    max_duration=self.bolus_duration[1],
                ),
                st.none(),
            ),
            label="limits",
        )
        if limits is None:
            self._do(
                "set_patient_bolus_limits",
                "set_patient_bolus_limits(disabled)",
                {"dose_ug": None},
                (None, timedelta(0), timedelta(0), 0),
            )
            return
        args = (limits.dose_ug, limits.duration, limits.lockout, limits.max_per_24h)
        self._do(
            "set_patient_bolus_limits",
            f"set_patient_bolus_limits({limits.dose_ug} µg, {limits.duration}, "
            f"lockout {limits.lockout}, {limits.max_per_24h}/24 h)",
            dict(zip(("dose_ug", "duration", "lockout", "max_per_24h"), args)),
            args,
        )

    @precondition(_supports("patient_bolus"))
    @rule()
    def patient_bolus(self) -> None:
        done, answer, result = self._do("patient_bolus", "patient_bolus()", {})
        if not done:
            return
        self.trace[-1] = f"patient_bolus() -> {result.reason}"
        if result.granted:
            self._started(getattr(answer, "bolus_id", None), result.bolus_id)
        if answer is None:
            return
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
                f"device diverged at {self.oracle.now.isoformat(sep=' ')}: patient activation: expected "
                f"{want!r} ({result.reason}), the device answered {got!r}"
            )

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
                int(observed // q) + tol + 1
            )  # the oracle's stroke the device lacks beyond the tolerance
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

    @invariant()
    def device_matches_oracle(self) -> None:
        if self.oracle is None:
            return
        live = self._live
        invariants.check_state(live)
        invariants.monotone(self._before, live)
        self._before = live.copy()
        observed = self.device_observed()
        if observed is not None and observed is not NotImplemented:
            if isinstance(observed, bool) or not isinstance(observed, numbers.Real):
                raise TypeError(
                    f"{type(self).__name__}.device_observed() returned {observed!r}: give the cumulative "
                    f"nL pumped as an int (or None to skip the comparison)"
                )
            expected = self.oracle.expected()
            q = self.oracle.stroke_nl
            off = observed - expected.pumped_nl
            if abs(off) > self.tol_strokes * q:
                self._fail(self._divergence(expected, observed))
            self._agreed = (expected.at, len(self.trace))
        alarms = self.device_alarms()
        if alarms is not None and alarms is not NotImplemented:
            try:
                assert_alarms_match(
                    list(alarms), self.oracle, tol=self.alarm_tol, until=self.oracle.now
                )
            except AssertionError as exc:
                self._fail(str(exc))
