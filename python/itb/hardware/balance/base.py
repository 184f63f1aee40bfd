"""What every balance driver shares: the :class:`Reading`, the line transport over any
pyserial-like stream, and opening a port.

A *stream* is anything with ``write(bytes)`` and ``read(size) -> bytes`` that returns what has
arrived (possibly ``b""``) within its own short timeout: a ``serial.Serial``, a pyserial
``serial_for_url`` port (a pty path, ``socket://127.0.0.1:PORT``, ``loop://``), or an in-memory
fake in tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from ..._time import duration_ms
from ...errors import BalanceError, BalanceProtocolError, ValidationError

__all__ = ["Balance", "LineLink", "Reading", "UNIT_GRAMS", "open_port"]

#: grams per unit, for the mass units a laboratory balance reports
UNIT_GRAMS: dict[str, Decimal] = {
    "g": Decimal(1),
    "mg": Decimal("0.001"),
    "ug": Decimal("0.000001"),
    "kg": Decimal(1000),
}

#: longest reply line accepted (MT-SICS replies and SBI's 22-character lines are far shorter)
MAX_LINE = 128


@dataclass(frozen=True)
class Reading:
    """One balance reading.

    ``value`` is the number exactly as the balance printed it (a ``Decimal``, so its readability
    is kept: ``Decimal("0.00010")`` has 5 places), in ``unit``; ``stable`` is the balance's own
    stability flag (MT-SICS ``S S`` vs ``S D``; SBI: unit printed or not). ``host_time`` is the
    host's naive local clock when the reply's last byte arrived and ``host_monotonic`` the
    matching ``time.monotonic()`` (use it for intervals: it never jumps)."""

    value: Decimal
    unit: str
    stable: bool
    host_time: datetime
    host_monotonic: float

    @property
    def grams(self) -> Decimal:
        """The reading in grams (exact decimal scaling); ``BalanceError`` (field ``unit``) if the
        unit is not a mass unit (g, mg, ug, kg)."""
        factor = UNIT_GRAMS.get(self.unit)
        if factor is None:
            raise BalanceError(
                f"unit: the balance reports {self.unit!r}, not a mass unit "
                f"(one of {', '.join(UNIT_GRAMS)}); set it to g on the balance",
                "unit",
            )
        return self.value * factor

    @property
    def milligrams(self) -> Decimal:
        """The reading in mg (see :attr:`grams`)."""
        return self.grams * 1000


class Balance(Protocol):
    """What a balance driver offers, whatever its protocol."""

    def read_stable(self) -> Reading:
        """A stable reading (waits for stability up to the driver's timeout)."""
        ...

    def read_immediate(self) -> Reading:
        """The current reading, stable or not (``Reading.stable`` says which)."""
        ...

    def zero(self) -> None:
        """Zero the balance."""
        ...

    def tare(self) -> Reading | None:
        """Tare the balance; the tare value if the protocol reports it."""
        ...


class LineLink:
    """Request/reply lines over a stream: ``request(b"S")`` writes ``S\\r\\n`` and returns the
    next reply line (without CR LF) with the host times at which it arrived.

    ``timeout`` bounds the wait for a whole reply line (a ``timedelta``); a reply longer than
    128 bytes without CR LF is refused. Errors: ``BalanceProtocolError`` (field ``timeout`` or
    ``reply``); a link failure (``OSError``) becomes ``BalanceError`` (field ``port``)."""

    def __init__(self, stream: Any, timeout: timedelta = timedelta(seconds=2)) -> None:
        self.timeout = timedelta(milliseconds=duration_ms(timeout, "timeout", allow_zero=False))
        self.stream = stream
        self._pending = b""

    def send(self, payload: bytes) -> None:
        """Write ``payload`` (the caller adds any terminator)."""
        try:
            self.stream.write(payload)
            flush = getattr(self.stream, "flush", None)
            if flush is not None:
                flush()
        except (OSError, ValueError) as err:
            raise BalanceError(f"port: writing to the balance failed: {err}", "port") from None

    def discard_input(self) -> None:
        """Drop bytes already received (stale replies) before a new request."""
        self._pending = b""
        reset = getattr(self.stream, "reset_input_buffer", None)
        if reset is not None:
            try:
                reset()
            except (OSError, ValueError):
                pass

    def read_line(self) -> tuple[bytes, datetime, float]:
        """The next line (CR LF, or a bare LF, removed), its arrival's wall and monotonic time."""
        deadline = time.monotonic() + self.timeout.total_seconds()
        while True:
            end = self._pending.find(b"\n")
            if end >= 0:
                line, self._pending = self._pending[:end], self._pending[end + 1 :]
                if line.endswith(b"\r"):
                    line = line[:-1]
                return line, datetime.now(), time.monotonic()
            if len(self._pending) > MAX_LINE:
                got = self._pending[:40]
                self._pending = b""
                raise BalanceProtocolError(
                    f"reply: no CR LF within {MAX_LINE} bytes (starts {got!r})", "reply"
                )
            if time.monotonic() >= deadline:
                raise BalanceProtocolError(
                    f"timeout: no complete reply within {self.timeout.total_seconds():g} s "
                    f"(got {self._pending!r})",
                    "timeout",
                )
            try:
                chunk = self.stream.read(64)
            except (OSError, ValueError) as err:
                raise BalanceError(
                    f"port: reading from the balance failed: {err}", "port"
                ) from None
            if chunk:
                self._pending += bytes(chunk)
            else:
                time.sleep(0.001)

    def request(self, command: bytes) -> tuple[bytes, datetime, float]:
        """Send ``command`` + CR LF and return the reply line."""
        self.discard_input()
        self.send(command + b"\r\n")
        return self.read_line()


def open_port(url: str, baudrate: int = 9600, timeout: timedelta = timedelta(seconds=2)) -> Any:
    """Open a balance port with pyserial's ``serial_for_url`` (8N1 at ``baudrate``): a device
    (``/dev/ttyUSB0``), a pty path, ``socket://127.0.0.1:PORT`` or ``loop://``.
    ``MissingExtraError`` (extra ``rig``) without pyserial; ``BalanceError`` (field ``port``) if
    it cannot be opened."""
    from ..._extras import require

    serial = require("serial", "rig", "a balance link (pyserial)")
    timeout = timedelta(milliseconds=duration_ms(timeout, "timeout", allow_zero=False))
    if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
        raise ValidationError(f"baudrate: must be a positive integer, got {baudrate!r}", "baudrate")
    try:
        return serial.serial_for_url(
            url, baudrate=baudrate, timeout=0.02, write_timeout=timeout.total_seconds()
        )
    except Exception as err:  # SerialException, ValueError, OSError, termios.error
        raise BalanceError(f"port: cannot open {url!r}: {err}", "port") from None
