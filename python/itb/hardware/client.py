"""The rig client: what a controller needs from a pump rig (:class:`PumpDriver`, answering
:class:`RigStatus` and :class:`DeliveryAck`) and :class:`SerialDriver`, the driver that speaks the
rig protocol (:mod:`~itb.hardware.protocol`) over a byte link (:mod:`~itb.hardware.transport`).
The in-process test double is :class:`~itb.hardware.fakes.SimulatedDriver`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from .._time import Duration, duration_ms, format_duration
from ..errors import AuthenticationError, ProtocolError, RigError, ValidationError
from .protocol import (
    LENGTH,
    MAX_BODY,
    ClientSession,
    Command,
    Role,
    check_length,
    deliver_payload,
    fault_payload,
    limits_payload,
    refill_payload,
    scheduled_bolus_payload,
    therapy_payload,
)
from .transport import LINK_ERRORS, close_stream, open_stream

__all__ = ["PumpDriver", "RigStatus", "DeliveryAck", "SerialDriver", "HELLO_RETRY_S"]

#: seconds a HELLO waits for its CHALLENGE before it is sent again (> the rig's idle drop, 0.5 s)
HELLO_RETRY_S = 0.75

_AUTH_FIELDS = {"role", "tag", "handshake", "session"}
_PROTOCOL_FIELDS = {"seq", "command", "payload", "count", "stroke_id", "length", "version"}


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


class SerialDriver:
    """Drive a rig over a byte stream.

    ``port``: a pyserial URL/path, or an already open stream (``read(n)``/``write(b)``);
    ``keys``: the key file's mapping (the key of ``role`` is used) or one key (bytes);
    ``timeout``: how long to wait for each answer, a duration (``timedelta(seconds=2)``; a bare
    number is refused). Connects (HELLO/CHALLENGE/AUTH) on first use
    and again after any failed exchange; a link that failed (the rig went away) is opened again
    first (``reopened`` counts it). Frames that fail to parse or belong to an earlier
    request are skipped and counted in :attr:`refused`.
    """

    def __init__(
        self,
        port: Any,
        keys: Mapping[Role, bytes] | bytes,
        *,
        role: Role = Role.CLINICIAN,
        timeout: Duration = timedelta(seconds=2),
        max_body: int = MAX_BODY,
    ) -> None:
        if isinstance(keys, (bytes, bytearray)):
            key = bytes(keys)
        else:
            if role not in keys:
                raise ValidationError(f"key_file: no {role.name.lower()} key", "key_file")
            key = keys[role]
        self.role = role
        self.timeout = timedelta(milliseconds=duration_ms(timeout, "timeout", allow_zero=False))
        self._timeout_s = self.timeout.total_seconds()
        self.max_body = max_body
        self._url = port if isinstance(port, str) else None
        self._stream = open_stream(port, self.timeout) if isinstance(port, str) else port
        self._session = ClientSession(role, key, max_body=max_body)
        self._connected = False
        self._broken = False  # the link failed: reopen the port before the next handshake
        self.reopened = 0
        self.refused: dict[str, int] = {}

    # ----- framing ------------------------------------------------------------------------------
    def _io(self, op: Any, arg: Any) -> Any:
        """``op(arg)`` on the stream; a failing link (pyserial's ``SerialException`` is an
        ``OSError``: a pty hung up, a socket reset) is ``ProtocolError`` on ``port``."""
        try:
            return op(arg)
        except LINK_ERRORS as err:
            self._connected = False
            self._broken = True
            raise ProtocolError(f"port: the link to the rig failed: {err}", "port") from None

    def _read_exact(self, n: int, deadline: float) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self._io(self._stream.read, n - len(buf))
            if chunk:
                buf += chunk
            elif time.monotonic() >= deadline:
                raise ProtocolError(
                    f"timeout: no answer from the rig within {format_duration(self.timeout)}",
                    "timeout",
                )
        return buf

    def _read_frame(self, deadline: float) -> bytes:
        head = self._read_exact(LENGTH.size, deadline)
        (length,) = LENGTH.unpack(head)
        check_length(length, self.max_body)
        return head + self._read_exact(length, deadline)

    def _count(self, err: Exception) -> None:
        key = getattr(err, "field", "") or type(err).__name__
        self.refused[key] = self.refused.get(key, 0) + 1

    def _fail(self) -> None:
        """After a failed exchange: forget the session, drop what is buffered."""
        self._connected = False
        try:
            self._stream.reset_input_buffer()
        except Exception:  # pragma: no cover - a stream without buffers
            pass

    def connect(self) -> None:
        """Run the handshake; ``ProtocolError('timeout')`` if no valid CHALLENGE comes within
        ``timeout`` (a rig without our key does not answer).

        A HELLO unanswered for :data:`HELLO_RETRY_S` is sent again: the bytes of a peer killed in
        mid-frame may still sit in the rig's buffer, and the rig drops them after
        ``emulator.IDLE`` (0.5 s) of silence."""
        if self._broken and self._url is not None:  # the rig went away: open the port again
            close_stream(self._stream)
            self._stream = open_stream(self._url, self.timeout)
            self._broken = False
            self.reopened += 1
        deadline = time.monotonic() + self._timeout_s
        while True:
            self._fail()
            self._io(self._stream.write, self._session.hello())
            attempt_end = min(deadline, time.monotonic() + HELLO_RETRY_S)
            auth = self._await_challenge(attempt_end)
            if auth is not None:
                break
            if time.monotonic() >= deadline:
                raise ProtocolError(
                    f"timeout: no CHALLENGE from the rig within {format_duration(self.timeout)}",
                    "timeout",
                )
        self._io(self._stream.write, auth)
        self._connected = True

    def _await_challenge(self, until: float) -> bytes | None:
        """The AUTH answering a CHALLENGE read before ``until``, or None."""
        while True:
            try:
                frame = self._read_frame(until)
            except ProtocolError as err:
                if err.field == "timeout":
                    return None
                if err.field == "port":
                    raise  # the link itself failed: nothing more will come
                self._count(err)
                self._fail()
                continue
            try:
                return self._session.auth(frame)
            except ProtocolError as err:  # a stale answer of an earlier session, or garbage
                self._count(err)

    def _request(self, command: Command, payload: bytes = b"") -> dict[str, Any]:
        if not self._connected:
            self.connect()
        try:
            self._io(self._stream.write, self._session.request(command, payload))
            deadline = time.monotonic() + self._timeout_s
            while True:
                data = self._read_frame(deadline)
                try:
                    ok, result = self._session.response(data)
                    break
                except ProtocolError as err:
                    if err.field != "seq":
                        raise
                    self._count(err)  # the late answer to an earlier request: skip it
        except ProtocolError:
            self._fail()
            raise
        except Exception as err:  # a stream failing otherwise than with OSError (see _io)
            self._fail()
            raise ProtocolError(f"port: link failed: {err}", "port") from None
        if not ok:
            code = str(result.get("error", "refused"))
            message = f"{result.get('message') or code} (rig refused {command.name})"
            if code in _AUTH_FIELDS:
                self._connected = False
                raise AuthenticationError(message, code)
            if code in _PROTOCOL_FIELDS:
                raise ProtocolError(message, code)
            raise RigError(message, code)
        return result

    # ----- PumpDriver ---------------------------------------------------------------------------
    def deliver(
        self, stroke_id: int, count: int, times_ms: Sequence[int] | None = None
    ) -> DeliveryAck:
        times = [0] * count if times_ms is None else [int(t) for t in times_ms]
        if len(times) != count:
            raise ValidationError(f"times_ms: {len(times)} times for {count} strokes", "times_ms")
        r = self._request(Command.DELIVER, deliver_payload(stroke_id, times))
        try:
            return DeliveryAck(
                int(r["last_stroke_id"]), int(r["executed"]), int(r.get("duplicate", 0))
            )
        except (KeyError, TypeError, ValueError):
            raise ProtocolError(
                "payload: DELIVER ack without last_stroke_id/executed", "payload"
            ) from None

    def status(self) -> RigStatus:
        return RigStatus.from_dict(self._request(Command.STATUS))

    def stop(self) -> None:
        self._request(Command.STOP)

    def resume(self) -> None:
        self._request(Command.RESUME)

    def measure(self) -> dict[str, Any]:
        """One scale sample (see :meth:`itb.hardware.rig.Rig.measure`)."""
        return self._request(Command.MEASURE)

    def set_patient_limits(
        self, dose_ng: int, duration_ms: int, lockout_ms: int, max_per_24h: int
    ) -> dict[str, Any]:
        """Clinician only: patient bolus dose (ng; 0 disables), duration and lockout (ms), max per 24 h."""
        return self._request(
            Command.SET_LIMITS, limits_payload(dose_ng, duration_ms, lockout_ms, max_per_24h)
        )

    def patient_bolus(self) -> dict[str, Any]:
        """Patient activation: ``{"granted": bool, "reason": str, …}`` as judged by the rig."""
        return self._request(Command.PATIENT_BOLUS)

    def scheduled_patient_bolus(self, step: int, at_ms: int) -> dict[str, Any]:
        """Clinician only: a scenario's press (step id, pump time), judged and recorded by the
        rig; its volume comes as the schedule's strokes."""
        return self._request(Command.PATIENT_BOLUS, scheduled_bolus_payload(step, at_ms))

    def set_therapy(
        self, concentration_ug_per_ml: int, clock_ms: int, speed_milli: int
    ) -> dict[str, Any]:
        """Clinician only: the therapy's concentration (µg/mL), pump clock (ms) and speed."""
        return self._request(
            Command.THERAPY, therapy_payload(concentration_ug_per_ml, clock_ms, speed_milli)
        )

    def refill(self, added_nl: int, concentration_ug_per_ml: int) -> dict[str, Any]:
        """Clinician only: aspirate the rig's reservoir, fill ``added_nl`` at a concentration."""
        return self._request(Command.REFILL, refill_payload(added_nl, concentration_ug_per_ml))

    def fault(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Clinician only: inject or clear a fault at run time (see ``Rig.fault``); the rig's
        status after it."""
        return self._request(Command.FAULT, fault_payload(spec))

    def close(self) -> None:
        close_stream(self._stream)

    def __enter__(self) -> SerialDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
