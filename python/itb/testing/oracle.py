"""The oracle: what a device under test must have done, from the operations it received.

Every number comes from :class:`itb.Pump` (the Rust core), replayed on a copy: the oracle keeps the
starting pump, the calls in time order, and a live pump advanced to the latest call (with the stroke
times and events seen so far). There is no second copy of delivery math here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Union

import numpy as np

from .._time import from_ms, to_ms
from ..errors import ValidationError
from ..pump import Event, Pump

__all__ = ["Oracle", "Expectation"]

Time = Union[datetime, int]


@dataclass(frozen=True)
class Expectation:
    """What the device must have delivered by ``at``: strokes, volume out of the reservoir
    (``pumped_nl`` = strokes × stroke volume), and the patient's dose at the catheter tip."""

    at: datetime
    strokes: int
    pumped_nl: int
    delivered_nl: int
    delivered_pg: int


class Oracle:
    """Expected strokes, volumes and alarms of a device that received the same operations.

    Build it from an :class:`itb.Pump` (copied; its state is the start), a factory returning one,
    the keyword arguments of ``itb.Pump(...)``, or a :class:`itb.scenario.Scenario` (whose actions
    are recorded at their times)::

        oracle = Oracle(pump)                       # or Oracle(model=..., now=..., ...)
        oracle.call("bolus", at=t, dose_ug=50.0, duration=timedelta(minutes=30))
        oracle.expected(t2).pumped_nl               # exact nL the device must have pumped by t2
        oracle.stroke_times(t2)                     # int64 ms of every stroke up to t2
        oracle.alarms(t2)                           # [(time, kind, severity), ...]

    Calls must come in time order (``at`` >= the latest call; ``at=None`` is "now"; times are naive
    datetimes or pump-clock int ms); ``duration``/``lockout`` must be ``timedelta``s. A call the
    pump refuses raises its :class:`itb.ItbError` and is not recorded (time still passes to ``at``).
    As on the pump, the events a call raises (a refill's alarms…) are stamped with its time; the
    oracle's :meth:`events`/:meth:`alarms` include them at once, while a device built on
    :class:`itb.Pump` returns them with its next ``advance``/``advance_to`` (flush them with
    ``pump.advance_recording(pump.now)``).
    """

    def __init__(self, source: Any = None, /, **pump_kwargs: Any) -> None:
        from ..scenario import Scenario

        scenario = None
        if isinstance(source, Scenario):
            scenario, start = source, source.pump()
        elif isinstance(source, Pump):
            start = source.copy()
        elif callable(source):
            start = source()
            if not isinstance(start, Pump):
                raise ValidationError(
                    f"Oracle: the factory returned {type(start).__name__}, not itb.Pump", "source"
                )
        elif source is None and pump_kwargs:
            start = Pump(**pump_kwargs)
        else:
            raise ValidationError(
                "Oracle: give an itb.Pump, a factory, a Scenario or Pump(...) keyword arguments",
                "source",
            )
        if pump_kwargs and source is not None:
            raise ValidationError(
                "Oracle: give a source or Pump keyword arguments, not both", "source"
            )
        self._start = start.copy()
        self._live = start.copy()
        self._calls: list[tuple[int, str, dict[str, Any]]] = []
        self._results: list[Any] = []
        self._times: list[np.ndarray] = []
        self._events: list[Event] = []
        if scenario is not None:
            self._load_scenario(scenario)

    # ----- recording ----------------------------------------------------------------------------
    @property
    def pump(self) -> Pump:
        """A copy of the live pump (state after the latest call)."""
        return self._live.copy()

    @property
    def start(self) -> Pump:
        """A copy of the pump as it started."""
        return self._start.copy()

    @property
    def now(self) -> datetime:
        """Time of the latest call or advance."""
        return self._live.now

    @property
    def now_ms(self) -> int:
        return self._live.now_ms

    @property
    def stroke_nl(self) -> int:
        return self._live.model.stroke_nl

    @property
    def calls(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        """The recorded calls: ``(time, method, kwargs)``."""
        return [(from_ms(t), name, dict(kw)) for t, name, kw in self._calls]

    @property
    def results(self) -> list[tuple[datetime, str, Any]]:
        """What each recorded call returned, in order: ``(time, method, result)`` — a bolus id,
        a :class:`itb.pump.PatientBolusResult` (granted? why not?), a refill report, None…
        (for ``Oracle(scenario)`` too: compare a device's answers on a replay)."""
        return [
            (from_ms(t), name, r)
            for (t, name, _kw), r in zip(self._calls, self._results, strict=True)
        ]

    def advance_to(self, at: Time) -> None:
        """Let time pass to ``at`` (no call). Optional: queries run ahead on a copy anyway."""
        self._advance_live(to_ms(at, "at"))

    def call(self, method: str, at: Time | None = None, **kwargs: Any) -> Any:
        """Record ``pump.<method>(**kwargs)`` made at ``at`` (None: now); returns what the pump
        returned. A refused call raises the pump's ``ItbError`` and is not recorded."""
        if (
            method.startswith("_")
            or method in _NOT_CALLS
            or not callable(getattr(Pump, method, None))
        ):
            raise ValidationError(f"Oracle.call: {method!r} is not a pump operation", "method")
        for name in ("duration", "lockout"):
            value = kwargs.get(name)
            if value is not None and not isinstance(value, timedelta):
                raise ValidationError(
                    f"Oracle.call: {name}={value!r}: give a datetime.timedelta (e.g. "
                    f"timedelta(minutes=30)); a bare number would be read as milliseconds",
                    name,
                )
        at_ms = self._live.now_ms if at is None else to_ms(at, "at")
        if at_ms < self._live.now_ms:
            raise ValidationError(
                f"Oracle.call: {from_ms(at_ms)} is before the latest call ({self.now})", "at"
            )
        self._advance_live(at_ms)
        result = getattr(self._live, method)(**kwargs)
        self._calls.append((at_ms, method, dict(kwargs)))
        self._results.append(result)
        return result

    def _advance_live(self, at_ms: int) -> None:
        if at_ms < self._live.now_ms:
            raise ValidationError(
                f"Oracle: {from_ms(at_ms)} is before the latest call ({self.now})", "at"
            )
        events, times = self._live.advance_recording(at_ms)
        self._events += events
        if len(times):
            self._times.append(times)

    def _load_scenario(self, scenario: Any) -> None:
        from ..scenario.spec import CancelBolus

        ids: dict[str, Any] = {}
        for action in scenario.actions:
            kwargs = action.kwargs()
            if isinstance(action, CancelBolus):
                kwargs = {"bolus_id": ids[action.name]}
            result = self.call(action.do, at=action.at, **kwargs)
            name = getattr(action, "name", None)
            if name is not None and not isinstance(action, CancelBolus):
                ids[name] = getattr(result, "bolus_id", result)
        until = scenario.until
        if until > self.now:
            self.advance_to(until)

    # ----- queries ---------------------------------------------------------------------------
    def _ahead(self, until_ms: int) -> tuple[Pump, list[Event], np.ndarray]:
        """A copy of the live pump run to ``until_ms`` (>= now) with its events and stroke times."""
        p = self._live.copy()
        events, times = p.advance_recording(until_ms)
        return p, events, times

    def _state_at(self, at_ms: int, copy: bool = True) -> Pump:
        """The pump at ``at_ms`` after the calls of that instant (replayed from the start when
        ``at_ms`` is before the latest call)."""
        if at_ms == self._live.now_ms and not copy:
            return self._live
        if at_ms >= self._live.now_ms:
            p = self._live.copy()
            p.advance_to(at_ms)
            return p
        p = self._start.copy()
        for t, name, kwargs in self._calls:
            if t > at_ms:
                break
            p.advance_to(t)
            getattr(p, name)(**kwargs)
        p.advance_to(at_ms)
        return p

    def stroke_times(self, until: Time | None = None) -> np.ndarray:
        """Every stroke time (int64 pump-clock ms) up to ``until`` inclusive (default: now)."""
        until_ms = self._live.now_ms if until is None else to_ms(until, "until")
        done = np.concatenate(self._times) if self._times else np.zeros(0, dtype=np.int64)
        if until_ms <= self._live.now_ms:
            return done[: int(np.searchsorted(done, until_ms, side="right"))]
        _, _, times = self._ahead(until_ms)
        return np.concatenate([done, times])

    def expected(self, at: Time | None = None) -> Expectation:
        """Strokes, pumped volume and dose at the tip the device must have delivered by ``at``
        (default: now), after the calls made at that instant."""
        at_ms = self._live.now_ms if at is None else to_ms(at, "at")
        if at_ms < self._start.now_ms:
            raise ValidationError(
                f"Oracle.expected: at={from_ms(at_ms)} is before the oracle's start "
                f"({self._start.now})",
                "at",
            )
        p = self._state_at(at_ms, copy=False)  # read only
        return Expectation(from_ms(at_ms), p.strokes, p.pumped_nl, p.delivered_nl, p.delivered_pg)

    def events(self, until: Time | None = None) -> list[Event]:
        """Every event up to ``until`` (default: now), in order."""
        until_ms = self._live.now_ms if until is None else to_ms(until, "until")
        _, ahead, _ = self._ahead(
            max(until_ms, self._live.now_ms)
        )  # also flushes the latest call's events
        return [e for e in self._events + ahead if e.time_ms <= until_ms]

    def alarms(self, until: Time | None = None) -> list[tuple[datetime, str, str]]:
        """The alarms the device must have raised up to ``until``: ``(time, kind, severity)``."""
        return [(e.time, e.kind, e.severity) for e in self.events(until) if e.severity is not None]

    def __repr__(self) -> str:
        return f"<itb.testing.Oracle now={self.now.isoformat()} calls={len(self._calls)} strokes={self._live.strokes}>"


# Pump attributes that are callables but not operations a device receives.
_NOT_CALLS: frozenset[str] = frozenset(
    {
        "advance_to",
        "advance",
        "advance_recording",
        "project",
        "snapshot",
        "restore",
        "copy",
        "bridge_bolus_plan",
        "priming_bolus_plan",
    }
)

_Factory = Callable[[], Pump]
