"""Real-time and asynchronous devices: an accelerated wall clock and waiting with a timeout.

A device that runs on its own clock (firmware on a board, an emulator in another process) cannot
be told "advance to T": time passes, possibly faster than real time. :class:`ScaledClock` is that
clock shared by the suite and the device — pump time = ``start + factor × elapsed monotonic
time`` — and :func:`wait_until` polls a device until it reports it finished, with a timeout given
as a ``timedelta``. :class:`~itb.testing.PumpStateMachine` uses both (``clock``,
``settle_timeout``; docs: guide/testing-kit.md#asynchronous-and-real-time-devices).

Only the standard library and the pump clock's conversions are imported here (no hypothesis, no
pump): a rig script may use the clock on its own.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from fractions import Fraction

from .._limits import MS_PER_DAY
from .._time import duration_ms, from_ms, to_ms
from ..errors import ValidationError

__all__ = ["ScaledClock", "wait_until"]

#: the largest acceleration accepted: one pump year per wall millisecond
MAX_FACTOR = 365 * MS_PER_DAY


class ScaledClock:
    """An accelerated wall clock: ``now() = start + factor × (monotonic() − monotonic at
    creation)``, floored to the pump clock's millisecond.

    ``start`` is a naive pump-clock datetime (a tz-aware one, a bool or a number is a
    ``ValidationError`` naming ``start``); ``factor`` a real number > 0 and <= one pump year per
    wall millisecond (``3600``: an hour a second; ``1``: real time), else a ``ValidationError``
    naming ``factor`` with that range. ``monotonic`` (seconds, default :func:`time.monotonic`) and
    ``sleep`` (seconds, default :func:`time.sleep`) can be replaced for tests."""

    __slots__ = ("start", "factor", "_k", "_start_ms", "_m0", "_monotonic", "_sleep")

    def __init__(
        self,
        start: datetime,
        factor: float = 1,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(start, datetime):
            raise ValidationError(
                f"start: expected a naive pump-clock datetime, got {type(start).__name__}", "start"
            )
        self._start_ms: int = to_ms(start, "start")
        if (
            isinstance(factor, bool)
            or not isinstance(factor, numbers.Real)
            or not math.isfinite(float(factor))
            or not 0 < float(factor) <= MAX_FACTOR
        ):
            raise ValidationError(
                f"factor={factor!r}: the clock's acceleration must be a number > 0 and <= "
                f"{MAX_FACTOR} (pump time per wall time; 1 = real time, 3600 = an hour a second)",
                "factor",
            )
        self.start: datetime = start
        self.factor: float = float(factor)
        self._k: Fraction = Fraction(self.factor) * 1000  # pump ms per wall second
        self._monotonic: Callable[[], float] = monotonic
        self._sleep: Callable[[float], None] = sleep
        self._m0: float = monotonic()

    def now_ms(self) -> int:
        """The pump clock now, in ms (floored; the product is taken exactly, in fractions of the
        float readings, so a time on a ms boundary is not rounded across it)."""
        elapsed = Fraction(self._monotonic()) - Fraction(self._m0)
        return self._start_ms + math.floor(elapsed * self._k)

    def now(self) -> datetime:
        """The pump clock now (naive datetime, floored to the ms)."""
        return from_ms(self.now_ms())

    def wall(self, pump: timedelta) -> timedelta:
        """The wall time ``pump`` (a ``timedelta`` of pump time, >= 0) takes on this clock."""
        ms = duration_ms(pump, "pump")
        return timedelta(milliseconds=ms / self.factor)

    def sleep_until(self, t: datetime) -> timedelta:
        """Sleep until the pump clock reaches ``t`` (a naive datetime); the pump time by which it
        was already past ``t`` when called (``timedelta(0)`` when it slept)."""
        target = to_ms(t, "t")
        behind = self.now_ms() - target
        if behind >= 0:
            return timedelta(milliseconds=behind)
        while True:
            left = target - self.now_ms()
            if left <= 0:
                return timedelta(0)
            self._sleep(left / 1000 / self.factor)

    def __repr__(self) -> str:
        return f"ScaledClock(start={self.start.isoformat()}, factor={self.factor:g}, now={self.now().isoformat()})"


def wait_until(
    ready: Callable[[], bool],
    timeout: timedelta,
    *,
    poll: timedelta = timedelta(milliseconds=2),
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> timedelta | None:
    """Call ``ready()`` every ``poll`` (wall time) until it returns True; the wall time waited, or
    None when it was still False after ``timeout``. ``ready`` is called at least once, and once
    more at the timeout. ``timeout`` (>= 0) and ``poll`` (>= 1 ms) are ``timedelta``s — a bare
    number is a ``ValidationError`` naming the argument."""
    limit = duration_ms(timeout, "timeout")
    step = duration_ms(poll, "poll", allow_zero=False) / 1000
    t0 = monotonic()
    deadline = t0 + limit / 1000
    while True:
        if ready():
            return timedelta(seconds=monotonic() - t0)
        left = deadline - monotonic()
        if left <= 1e-6:  # at the timeout (within a µs: float time)
            return None
        sleep(min(step, left))
