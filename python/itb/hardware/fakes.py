"""Test doubles for the rig layer (a ``fakes`` module in the PyMeasure manner):
:class:`SimulatedDriver`, a :class:`~itb.hardware.client.PumpDriver` over an in-process
:class:`~itb.hardware.rig.Rig` with injectable faults: dropped acknowledgement, delay, motor stall
and reset."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from .._time import Duration, duration_ms
from ..errors import ProtocolError, RigError, ValidationError
from .client import DeliveryAck, RigStatus
from .rig import Rig

__all__ = ["SimulatedDriver"]


class SimulatedDriver:
    """A :class:`PumpDriver` over an in-process :class:`~itb.hardware.rig.Rig` (no bytes).

    Faults, for controller tests: :meth:`drop_acks` (the rig executes, the answer is lost: a
    ``ProtocolError('timeout')``; ``n`` a whole number >= 0), ``delay`` (a duration each call
    takes, via ``sleep``, which is called with seconds like ``time.sleep``; checked when set, at
    construction or later: a bare number or a negative duration is a ``ValidationError``),
    :meth:`stall` / :meth:`clear_stall` (motor stall: deliveries refused), :meth:`reset` (the rig
    reboots: the next call fails with ``ProtocolError('session')``; its state survives).
    """

    def __init__(
        self,
        rig: Rig | None = None,
        *,
        delay: Duration = timedelta(0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rig = rig if rig is not None else Rig()
        self.delay = delay  # checked and normalised by the setter
        self.sleep = sleep
        self._drop = 0
        self._reset = False
        self.calls: list[tuple[str, Any]] = []

    @property
    def delay(self) -> timedelta:
        """The time each call takes (a ``timedelta``); set it to any duration with a unit."""
        return self._delay

    @delay.setter
    def delay(self, value: Duration) -> None:
        self._delay = timedelta(milliseconds=duration_ms(value, "delay"))
        self._delay_s = self._delay.total_seconds()

    def drop_acks(self, n: int = 1) -> None:
        """Lose the answers of the next ``n`` deliveries (the strokes still happen); ``n`` a
        whole number >= 0, else ``ValidationError`` (``n``), nothing changed."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValidationError(f"n: {n!r} is not a whole number of deliveries >= 0", "n")
        self._drop += n

    def stall(self) -> None:
        self.rig.stalled = True

    def clear_stall(self) -> None:
        self.rig.stalled = False

    def reset(self) -> None:
        """The rig reboots: its session is gone; its state (stopped, ids, …) is kept."""
        self._reset = True

    def _call(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if self._delay_s:
            self.sleep(self._delay_s)
        if self._reset:
            self._reset = False
            raise ProtocolError("session: the rig reset; reconnect", "session")

    def deliver(
        self, stroke_id: int, count: int, times_ms: Sequence[int] | None = None
    ) -> DeliveryAck:
        self._call("deliver", (stroke_id, count))
        times = list(times_ms) if times_ms is not None else [0] * count
        if len(times) != count:
            raise RigError(f"count: {count} strokes but {len(times)} times", "count")
        out = self.rig.deliver(stroke_id, times)
        if self._drop:
            self._drop -= 1
            raise ProtocolError("timeout: the acknowledgement was lost", "timeout")
        return DeliveryAck(out["last_stroke_id"], out["executed"], out["duplicate"])

    def status(self) -> RigStatus:
        self._call("status")
        return RigStatus.from_dict(self.rig.status())

    def stop(self) -> None:
        self._call("stop")
        self.rig.stop()

    def resume(self) -> None:
        self._call("resume")
        self.rig.resume()

    def patient_bolus(self) -> dict[str, Any]:
        self._call("patient_bolus")
        return self.rig.patient_bolus()

    def scheduled_patient_bolus(self, step: int, at_ms: int) -> dict[str, Any]:
        self._call("scheduled_patient_bolus", (step, at_ms))
        return self.rig.patient_bolus((step, at_ms))

    def set_patient_limits(
        self, dose_ng: int, duration_ms: int, lockout_ms: int, max_per_24h: int
    ) -> dict[str, Any]:
        self._call("set_patient_limits")
        return self.rig.set_patient_limits(dose_ng, duration_ms, lockout_ms, max_per_24h)

    def set_therapy(
        self, concentration_ug_per_ml: int, clock_ms: int, speed_milli: int
    ) -> dict[str, Any]:
        self._call("set_therapy", (concentration_ug_per_ml, clock_ms, speed_milli))
        return self.rig.set_therapy(concentration_ug_per_ml, clock_ms, speed_milli)

    def refill(self, added_nl: int, concentration_ug_per_ml: int) -> dict[str, Any]:
        self._call("refill", (added_nl, concentration_ug_per_ml))
        return self.rig.refill(added_nl, concentration_ug_per_ml)

    def fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Inject or clear a fault at run time (see :meth:`itb.hardware.rig.Rig.fault`)."""
        self._call("fault", dict(spec))
        return self.rig.fault(dict(spec))

    def close(self) -> None:
        pass
