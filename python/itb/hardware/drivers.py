"""What a controller needs from a pump rig (:class:`PumpDriver`) and an in-process rig
(:class:`SimulatedDriver`) with injectable faults: dropped acknowledgement, delay, motor stall
and reset."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import ProtocolError, RigError
from .rig import Rig

__all__ = ["PumpDriver", "RigStatus", "DeliveryAck", "SimulatedDriver"]


@dataclass(frozen=True)
class RigStatus:
    """What the rig reports: the last stroke id it executed (0: none), whether it is stopped or
    stalled, its reservoir (nL) and stroke volume (nL), and ``extra`` fields (refusal counts…)."""

    last_stroke_id: int
    stopped: bool = False
    stalled: bool = False
    reservoir_nl: int = 0
    stroke_nl: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RigStatus:
        try:
            known = {k: d[k] for k in ("stopped", "stalled", "reservoir_nl", "stroke_nl") if k in d}
            return cls(
                int(d["last_stroke_id"]),
                **known,
                extra={k: v for k, v in d.items() if k not in known and k != "last_stroke_id"},
            )
        except (KeyError, TypeError, ValueError):
            raise ProtocolError(
                "payload: status without a valid last_stroke_id", "payload"
            ) from None

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_stroke_id": self.last_stroke_id,
            "stopped": self.stopped,
            "stalled": self.stalled,
            "reservoir_nl": self.reservoir_nl,
            "stroke_nl": self.stroke_nl,
            **self.extra,
        }


@dataclass(frozen=True)
class DeliveryAck:
    """The rig's answer to ``deliver``: its last executed stroke id afterwards, how many strokes
    this command executed, and how many it had executed already (a re-sent batch)."""

    last_stroke_id: int
    executed: int
    duplicate: int = 0


@runtime_checkable
class PumpDriver(Protocol):
    """A pump rig as a controller sees it.

    ``deliver(stroke_id, count, times_ms)`` asks for strokes ``stroke_id … stroke_id+count-1``
    (ids start at 1; ``times_ms`` are their scheduled pump-clock times, recorded by the rig). It
    must be idempotent: ids the rig already executed are acknowledged, not repeated. Errors:
    ``ProtocolError`` (no or bad answer: the outcome is unknown, ask ``status()``), ``RigError``
    (refused: nothing executed).
    """

    def deliver(
        self, stroke_id: int, count: int, times_ms: Sequence[int] | None = None
    ) -> DeliveryAck: ...

    def status(self) -> RigStatus: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class SimulatedDriver:
    """A :class:`PumpDriver` over an in-process :class:`~itb.hardware.rig.Rig` (no bytes).

    Faults, for controller tests: :meth:`drop_acks` (the rig executes, the answer is lost: a
    ``ProtocolError('timeout')``), ``delay_s`` (seconds each call takes, via ``sleep``),
    :meth:`stall` / :meth:`clear_stall` (motor stall: deliveries refused), :meth:`reset` (the rig
    reboots: the next call fails with ``ProtocolError('session')``; its state survives).
    """

    def __init__(
        self,
        rig: Rig | None = None,
        *,
        delay_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rig = rig if rig is not None else Rig()
        self.delay_s = delay_s
        self.sleep = sleep
        self._drop = 0
        self._reset = False
        self.calls: list[tuple[str, Any]] = []

    def drop_acks(self, n: int = 1) -> None:
        """Lose the answers of the next ``n`` deliveries (the strokes still happen)."""
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
        if self.delay_s:
            self.sleep(self.delay_s)
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
