"""Sartorius SBI (Sartorius Balance Interface).

Commands are ``ESC`` + a command letter (+ optional CR LF): ``ESC P`` prints the current value,
``ESC T`` is the TARE key (tare/zero), ``ESC U`` tares, ``ESC V`` zeroes; these control
commands get no reply. A printed value is 16 characters (or 22 with a 6-character ID code in
front, e.g. ``N     ``): position 1 the sign (``+``, ``-`` or space), 2–10 the value with its
decimal point (leading zeros as spaces), 11 a space, 12–14 the unit, then CR LF. The unit is
printed only once the reading is stable, so a blank unit is a dynamic reading. Special codes
replace the value: ``H``/``High`` overload, ``L``/``Low`` underload, ``C``/``Cal.Ext.``
adjustment running, ``Err ##``/``Err ###`` or ``APP.ERR``/``DIS.ERR``/``PRT.ERR`` an error of the
balance (with an ID code the line starts ``Stat``: ``Stat     Err  02    ``). Source: Sartorius
operating instructions, *Data Interface* chapters ("Data Output Format with 16 Characters",
"Data Output Format with 22 Characters", "Special Codes", "Error Codes", "SBI Commands").
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..._time import duration_ms
from ...errors import (
    BalanceBusy,
    BalanceDeviceError,
    BalanceOverload,
    BalanceProtocolError,
    BalanceUnderload,
    ValidationError,
)
from .base import LineLink, Reading

__all__ = ["SbiBalance", "parse_print_line", "ESC"]

ESC = b"\x1b"
_VALUE = re.compile(r"^ *([0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_UNIT = re.compile(r"^([A-Za-z%/]{1,3}) *$")
_ERR = re.compile(r"^(?:Err|ERR) *([0-9]{1,3})$|^(APP|DIS|PRT)\.? ?ERR$")


def _show(line: bytes) -> str:
    return repr(line[:60].decode("ascii", "backslashreplace"))


def _special(text: str, line: bytes) -> None:
    """Raise the typed error of an SBI special code; return if ``text`` is not one."""
    code = text.strip()
    if code in ("H", "HH", "High"):
        raise BalanceOverload(
            f"overload: the load is above the weighing range (SBI {code})", "overload"
        )
    if code in ("L", "LL", "Low"):
        raise BalanceUnderload(
            f"underload: the load is below the weighing range (SBI {code}; pan missing?)",
            "underload",
        )
    if code in ("C", "Cal.Ext.", "Cal Ext", "CalExt"):
        raise BalanceBusy(f"busy: the balance is adjusting (SBI {code})", "busy")
    err = _ERR.match(code)
    if err is not None:
        number, part = err.group(1), err.group(2)
        printed = number if number is not None else f"{part}.ERR"
        what = f"error {number}" if number is not None else f"{part}.ERR"
        raise BalanceDeviceError(
            f"error: the balance reports {what} ({_show(line)}); see its operating "
            "instructions, Error Messages",
            printed,
        )


def parse_print_line(
    line: bytes, host_time: datetime | None = None, host_monotonic: float = 0.0
) -> Reading:
    """The :class:`Reading` of one SBI print line (without CR LF): 14 characters, or 20 with
    an ID code. Errors (always one of these): ``BalanceOverload``, ``BalanceUnderload``,
    ``BalanceBusy``, ``BalanceDeviceError`` (``Err ###``, its ``code``), ``BalanceProtocolError``
    (field ``reply``) for anything else."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise BalanceProtocolError(f"reply: {_show(line)} is not ASCII", "reply") from None
    if len(text) == 20:
        ident, body = text[:6], text[6:]
        if ident.startswith("Stat"):
            _special(body, line)
            raise BalanceProtocolError(f"reply: {_show(line)}: unknown SBI status", "reply")
    elif len(text) == 14:
        body = text
    else:
        _special(text, line)
        raise BalanceProtocolError(
            f"reply: {_show(line)} is {len(text)} characters, an SBI print line has 14 or 20 "
            "before CR LF",
            "reply",
        )
    _special(body, line)
    sign, digits, gap, unit = body[0], body[1:10], body[10], body[11:14]
    value = _VALUE.match(digits)
    unit_match = _UNIT.match(unit)
    if sign not in "+- " or gap != " " or value is None or not (unit_match or unit == "   "):
        raise BalanceProtocolError(f"reply: {_show(line)} is not an SBI value line", "reply")
    number = Decimal(value.group(1))
    return Reading(
        value=-number if sign == "-" else number,
        unit=unit_match.group(1) if unit_match else "",
        stable=unit_match is not None,
        host_time=host_time if host_time is not None else datetime.now(),
        host_monotonic=host_monotonic,
    )


class SbiBalance:
    """A balance speaking Sartorius SBI over ``stream`` (see :mod:`.base`).

    A dynamic reading has no unit printed, so its ``Reading.unit`` is the ``unit`` given here
    (default ``g``; set it to the balance's display unit). ``timeout`` bounds each reply and the
    wait for a stable reading in :meth:`read_stable`; ``poll`` is the pause between prints.
    ``line_format`` is the balance's print format: 16 characters, 22 (a 6-character ID code in
    front), or ``None`` (default) to take either; a line of the other format is then a
    ``BalanceProtocolError``. Every method raises only ``itb.errors.BalanceError`` subclasses."""

    def __init__(
        self,
        stream: Any,
        timeout: timedelta = timedelta(seconds=5),
        poll: timedelta = timedelta(milliseconds=50),
        unit: str = "g",
        line_format: int | None = None,
    ) -> None:
        if line_format not in (None, 16, 22) or isinstance(line_format, bool):
            raise ValidationError(
                f"line_format: must be 16, 22 or None, got {line_format!r}", "line_format"
            )
        self.link = LineLink(stream, timeout)
        self.poll = timedelta(milliseconds=duration_ms(poll, "poll"))
        self.unit = unit
        self.line_format = line_format

    def read_immediate(self) -> Reading:
        """``ESC P``: the current reading, stable or dynamic."""
        self.link.discard_input()
        self.link.send(ESC + b"P\r\n")
        line, wall, mono = self.link.read_line()
        if self.line_format is not None and len(line) + 2 != self.line_format:
            raise BalanceProtocolError(
                f"reply: {_show(line)} is {len(line) + 2} characters with CR LF; this balance "
                f"prints {self.line_format}",
                "reply",
            )
        reading = parse_print_line(line, wall, mono)
        if not reading.stable:
            reading = Reading(reading.value, self.unit, False, wall, mono)
        return reading

    def read_stable(self) -> Reading:
        """Print until a stable reading comes; ``BalanceBusy`` if none within the timeout."""
        deadline = time.monotonic() + self.link.timeout.total_seconds()
        while True:
            reading = self.read_immediate()
            if reading.stable:
                return reading
            if time.monotonic() >= deadline:
                raise BalanceBusy(
                    f"busy: no stable reading within {self.link.timeout.total_seconds():g} s "
                    f"(last {reading.value} {reading.unit}, dynamic)",
                    "busy",
                )
            time.sleep(self.poll.total_seconds())

    def zero(self) -> None:
        """``ESC V``: zero (no reply in SBI)."""
        self.link.send(ESC + b"V\r\n")

    def tare(self) -> None:
        """``ESC U``: tare (no reply in SBI; read afterwards to see the new zero)."""
        self.link.send(ESC + b"U\r\n")
