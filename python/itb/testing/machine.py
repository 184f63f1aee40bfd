"""A hypothesis state machine that drives a device under test and the oracle in lock step.

Subclass :class:`PumpStateMachine`, implement the adapter methods your device supports (the
rules of the others are never drawn; an adapter may also return ``NotImplemented`` to skip one call), and run it as a test::

    class MyDeviceMachine(PumpStateMachine):
        def device_start(self, pump):              # a copy of the oracle's starting pump
            self.dev = MyDevice(...)
        def device_advance(self, until):           # naive datetime on the pump clock
            self.dev.run_until(until)
        def device_set_program(self, program):     # itb.Continuous
            self.dev.program(program.ug_per_day)
        def device_observed(self):                 # cumulative nL the device says it pumped
            return self.dev.pumped_nl

    TestMyDevice = MyDeviceMachine.TestCase

Each rule draws an operation, checks it on a copy of the oracle's pump (an operation the pump
refuses is skipped: the device is not asked), calls the adapter, then records it on the oracle.
After every step the invariant compares ``device_observed()`` with the oracle's pumped volume
(within ``tol_strokes`` strokes) and checks the invariants of :mod:`itb.testing.invariants` on
the oracle's pump. A divergence raises ``AssertionError`` listing the operations so far.

Tip: hypothesis's ``explain`` phase re-runs a failing example many times to annotate it; leave it
out (``phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]``) when a step is slow.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

from .._extras import require as _require  # a clear error naming itb[testing] without hypothesis

_require("hypothesis", "testing", "itb's testing kit")
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ..errors import ItbError
from ..program import Continuous
from . import invariants
from .oracle import Oracle

__all__ = ["PumpStateMachine"]


class PumpStateMachine(RuleBasedStateMachine):
    """Base class: one adapter method per action (``device_*``), rules driving the oracle and the
    adapter, an invariant comparing them. Class attributes tune the generated operations."""

    #: allowed difference between the device and the oracle, in whole strokes
    tol_strokes: int = 1
    #: longest single advance
    max_advance: timedelta = timedelta(days=2)
    #: continuous programs drawn between these daily doses (µg/day)
    daily_dose_ug: tuple[int, int] = (50, 1000)
    #: bolus doses (µg) and durations
    bolus_dose_ug: tuple[int, int] = (1, 100)
    bolus_duration: tuple[timedelta, timedelta] = (timedelta(minutes=1), timedelta(hours=4))
    #: refills: added volume (mL) and concentrations (µg/mL)
    refill_ml: tuple[float, float] = (1.0, 40.0)
    concentrations: tuple[int, ...] = (500, 1000, 2000)

    # ----- adapter: override what your device supports -------------------------------------------
    def make_pump(self) -> Any:
        """The starting pump (the oracle copies it). Default: :func:`itb.testing.demo_pump`."""
        from . import demo_pump

        return demo_pump()

    def device_start(self, pump: Any) -> Any:
        """Build or reset the device to the state of ``pump`` (a copy)."""
        return NotImplemented

    def device_advance(self, until: datetime) -> Any:
        """Let the device run to ``until`` (pump clock)."""
        return NotImplemented

    def device_set_program(self, program: Any) -> Any:
        return NotImplemented

    def device_bolus(self, dose_ug: float, duration: timedelta) -> Any:
        return NotImplemented

    def device_refill(self, added_ml: float, concentration_ug_per_ml: int) -> Any:
        return NotImplemented

    def device_suspend(self) -> Any:
        return NotImplemented

    def device_resume(self) -> Any:
        return NotImplemented

    def device_observed(self) -> Optional[int]:
        """Cumulative volume the device says it pumped since the start (nL), or None to skip
        the comparison."""
        return None

    # ----- machinery -------------------------------------------------------------------------------
    def __init__(self) -> None:
        super().__init__()
        self.oracle: Optional[Oracle] = None
        self.trace: list[str] = []

    @initialize()
    def _start(self) -> None:
        pump = self.make_pump()
        self.oracle = Oracle(pump)
        self._before = self.oracle.pump
        self.device_start(pump.copy())
        invariants.check_state(self._before)

    def _do(self, method: str, adapter: str, text: str, **kwargs: Any) -> bool:
        """Probe the call on a copy, call the device, record it on the oracle."""
        assert self.oracle is not None
        probe = self.oracle.pump
        try:
            getattr(probe, method)(**kwargs)
        except ItbError as exc:
            note(f"skipped {text}: the pump refuses it ({type(exc).__name__}: {exc})")
            return False
        if getattr(self, adapter)(*kwargs.values()) is NotImplemented:
            return False
        self.oracle.call(method, **kwargs)
        self.trace.append(text)
        note(text)
        return True

    @rule(dt=st.floats(0.0, 1.0))
    def advance(self, dt: float) -> None:
        assert self.oracle is not None
        step = timedelta(milliseconds=int(dt * (self.max_advance // timedelta(milliseconds=1))))
        until = self.oracle.now + step
        if self.device_advance(until) is NotImplemented:
            return
        before = self.oracle.pump
        self.oracle.advance_to(until)
        self.trace.append(f"advance({step})")
        note(f"advance({step}) -> {until}")
        invariants.check_step(before, self.oracle._live, advance_only=True)

    def _supports(self, adapter: str) -> bool:
        """The subclass overrides this adapter method (rules of the others are never drawn)."""
        return getattr(type(self), adapter) is not getattr(PumpStateMachine, adapter)

    @precondition(lambda self: self._supports("device_set_program"))
    @rule(data=st.data())
    def set_program(self, data: Any) -> None:
        lo, hi = self.daily_dose_ug
        program = Continuous(ug_per_day=data.draw(st.integers(lo, hi), label="ug_per_day"))
        self._do("set_program", "device_set_program", f"set_program({program!r})", program=program)

    @precondition(lambda self: self._supports("device_bolus"))
    @rule(data=st.data())
    def bolus(self, data: Any) -> None:
        lo, hi = self.bolus_dose_ug
        dose = float(data.draw(st.integers(lo, hi), label="dose_ug"))
        d0, d1 = (d // timedelta(minutes=1) for d in self.bolus_duration)
        duration = timedelta(minutes=data.draw(st.integers(d0, d1), label="minutes"))
        self._do("bolus", "device_bolus", f"bolus({dose} µg, {duration})", dose_ug=dose, duration=duration)

    @precondition(lambda self: self._supports("device_refill"))
    @rule(data=st.data())
    def refill(self, data: Any) -> None:
        lo, hi = self.refill_ml
        added = data.draw(st.floats(lo, hi).map(lambda x: round(x, 1)), label="added_ml")
        conc = data.draw(st.sampled_from(self.concentrations), label="concentration")
        self._do("refill", "device_refill", f"refill({added} mL, {conc} µg/mL)", added_ml=added,
                 concentration_ug_per_ml=conc)

    @precondition(lambda self: self._supports("device_suspend") and self.oracle is not None
                  and not self.oracle._live.is_suspended)
    @rule()
    def suspend(self) -> None:
        self._do("suspend", "device_suspend", "suspend()")

    @precondition(lambda self: self._supports("device_resume") and self.oracle is not None
                  and self.oracle._live.is_suspended)
    @rule()
    def resume(self) -> None:
        self._do("resume", "device_resume", "resume()")

    @invariant()
    def device_matches_oracle(self) -> None:
        if self.oracle is None:
            return
        live = self.oracle._live  # read only
        invariants.check_state(live)
        invariants.monotone(self._before, live)
        self._before = live.copy()
        observed = self.device_observed()
        if observed is None or observed is NotImplemented:
            return
        expected = self.oracle.expected()
        q = self.oracle.stroke_nl
        off = int(observed) - expected.pumped_nl
        if abs(off) > self.tol_strokes * q:
            steps = "\n  ".join(self.trace) or "(none)"
            raise AssertionError(
                f"device diverged at {expected.at.isoformat(sep=' ')}: expected {expected.pumped_nl} nL pumped "
                f"({expected.strokes} strokes), observed {observed} nL: {'over' if off > 0 else 'under'} by "
                f"{abs(off)} nL = {abs(off) / q:g} stroke(s) (tolerance {self.tol_strokes}) after "
                f"{len(self.trace)} operations:\n  {steps}")
