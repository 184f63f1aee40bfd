"""Mettler Toledo MT-SICS (Standard Interface Command Set), levels 0 and 1.

Commands are upper-case ASCII closed by CR LF; each is answered by one line whose first token
repeats the command: ``S`` → ``S S      100.00 g`` (stable), ``S I`` (not executable now, e.g.
taring, or stability timeout), ``S +`` (overload), ``S -`` (underload); ``SI`` may also answer
``S D <value> <unit>`` (dynamic, not stable); ``Z`` → ``Z A`` / ``Z I`` / ``Z +`` / ``Z -``;
``T`` → ``T S <tare> <unit>`` / ``T I`` / ``T +`` / ``T -``; ``I4`` → ``I4 A "<serial number>"``;
``I1`` → ``I1 A "<levels>" "<V0>" "<V1>" "<V2>" "<V3>"`` (the MT-SICS levels implemented, e.g.
``"0123"``, and the version of each); ``SIR`` → a stream of ``SI`` replies, one per update of the
balance, until ``S``, ``SI``, ``SR`` or ``@`` (reset, answered like ``I4``) ends it.
Any command may get the general errors ``ES`` (syntax: command unknown), ``ET`` (transmission
error) or ``EL`` (logical error: cannot be executed). Source: Mettler Toledo, *Reference Manual
MT-SICS Interface Commands* (command formats, responses and their examples).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ...errors import (
    BalanceBusy,
    BalanceError,
    BalanceOverload,
    BalanceProtocolError,
    BalanceUnderload,
    ValidationError,
)
from .base import LineLink, Reading

__all__ = ["SicsBalance", "parse_levels_reply", "parse_weight_reply"]

_WEIGHT = re.compile(rb"^(S|T) ([SD]) +([+-]?[0-9]+(?:\.[0-9]+)?) ([A-Za-z%/]{1,5})$")
_LEVELS = re.compile(rb'I1 A ("[0-9]{1,5}"(?: "[\x20-\x21\x23-\x7e]{0,16}"){0,4})')
_GENERAL = {
    b"ES": "syntax error: the balance does not know the command",
    b"ET": "transmission error: the balance could not read the command",
    b"EL": "logical error: the command cannot be executed",
}


def _show(line: bytes) -> str:
    return repr(line[:60].decode("ascii", "backslashreplace"))


def _status_error(command: bytes, line: bytes) -> None:
    """Raise the typed error a status reply (``<cmd> I``/``+``/``-``, ``ES``/``ET``/``EL``)
    stands for; return if the line is not one."""
    name = command.decode("ascii")
    if line in _GENERAL:
        raise BalanceError(f"error: {name}: {_GENERAL[line]} ({_show(line)})", "error")
    if line == command + b" I":
        raise BalanceBusy(
            f"busy: {name}: the balance cannot execute it now (taring, adjusting, or no "
            "stable weight within its stability timeout)",
            "busy",
        )
    if line == command + b" +":
        raise BalanceOverload(f"overload: {name}: the load is above the weighing range", "overload")
    if line == command + b" -":
        raise BalanceUnderload(
            f"underload: {name}: the load is below the weighing range (pan missing?)", "underload"
        )


def parse_weight_reply(
    command: bytes, line: bytes, host_time: Any = None, host_monotonic: float = 0.0
) -> Reading:
    """The :class:`Reading` in the reply ``line`` (no CR LF) to ``command`` (``b"S"``,
    ``b"SI"`` or ``b"T"``). Errors (always one of these): ``BalanceOverload``,
    ``BalanceUnderload``, ``BalanceBusy``, ``BalanceError`` (``ES``/``ET``/``EL``),
    ``BalanceProtocolError`` (field ``reply``) for anything else, including a dynamic ``S D``
    to a command that must be stable (``S``)."""
    from datetime import datetime

    head = b"T" if command == b"T" else b"S"
    _status_error(head, line)
    match = _WEIGHT.match(line)
    if match is None or match.group(1) != head:
        raise BalanceProtocolError(
            f"reply: {_show(line)} is not an MT-SICS reply to {command.decode('ascii')}", "reply"
        )
    stable = match.group(2) == b"S"
    if command in (b"S", b"T") and not stable:
        raise BalanceProtocolError(
            f"reply: {_show(line)} is dynamic, but {command.decode('ascii')} answers stable "
            "values only",
            "reply",
        )
    return Reading(
        value=Decimal(match.group(3).decode("ascii")),
        unit=match.group(4).decode("ascii"),
        stable=stable,
        host_time=host_time if host_time is not None else datetime.now(),
        host_monotonic=host_monotonic,
    )


def parse_levels_reply(line: bytes) -> tuple[str, tuple[str, ...]]:
    """(levels, versions) of an ``I1`` reply: ``I1 A "0123" "2.00" "2.20" "1.00" "1.50"`` →
    ``("0123", ("2.00", "2.20", "1.00", "1.50"))``: the levels implemented (digits) and the
    version of each level as printed (possibly empty). ``BalanceBusy`` for ``I1 I``,
    ``BalanceError`` for ``ES``/``ET``/``EL``, ``BalanceProtocolError`` (field ``reply``) for
    anything else."""
    _status_error(b"I1", line)
    match = _LEVELS.fullmatch(line)
    if match is None:
        raise BalanceProtocolError(f"reply: {_show(line)} is not a reply to I1", "reply")
    fields = re.findall(rb'"([^"]*)"', match.group(1))
    return fields[0].decode("ascii"), tuple(f.decode("ascii") for f in fields[1:])


class SicsBalance:
    """A balance speaking MT-SICS level 0/1 over ``stream`` (see :mod:`.base`).

    ``timeout`` (a ``timedelta``) bounds each reply; a stable read waits for the balance's own
    stability timeout, so give it more than that balance's (typically a few seconds).
    Every method raises only ``itb.errors.BalanceError`` subclasses."""

    def __init__(self, stream: Any, timeout: timedelta = timedelta(seconds=5)) -> None:
        self.link = LineLink(stream, timeout)

    def _weight(self, command: bytes) -> Reading:
        line, wall, mono = self.link.request(command)
        return parse_weight_reply(command, line, wall, mono)

    def read_stable(self) -> Reading:
        """``S``: the next stable net weight."""
        return self._weight(b"S")

    def read_immediate(self) -> Reading:
        """``SI``: the current net weight, stable or dynamic."""
        return self._weight(b"SI")

    def zero(self) -> None:
        """``Z``: zero the balance (waits for stability); ``Z A`` is success."""
        line, _, _ = self.link.request(b"Z")
        _status_error(b"Z", line)
        if line != b"Z A":
            raise BalanceProtocolError(f"reply: {_show(line)} is not a reply to Z", "reply")

    def tare(self) -> Reading:
        """``T``: tare with the next stable weight; returns the tare weight (``T S``)."""
        return self._weight(b"T")

    def serial_number(self) -> str:
        """``I4``: the balance's serial number."""
        line, _, _ = self.link.request(b"I4")
        _status_error(b"I4", line)
        match = re.fullmatch(rb'I4 A "([\x20-\x21\x23-\x7e]{0,40})"', line)
        if match is None:
            raise BalanceProtocolError(f"reply: {_show(line)} is not a reply to I4", "reply")
        return match.group(1).decode("ascii")

    def levels(self) -> tuple[str, tuple[str, ...]]:
        """``I1``: the MT-SICS levels the balance implements and their versions (see
        :func:`parse_levels_reply`)."""
        line, _, _ = self.link.request(b"I1")
        return parse_levels_reply(line)

    def stream_immediate(self, count: int) -> list[Reading]:
        """``SIR``: the next ``count`` readings of the balance's own stream (stable or dynamic,
        each with its arrival time), then ``@`` to end the stream (the ``I4``-style reply to the
        reset and any reading still on its way are dropped). A status reply in the stream (``S +``,
        ``S -``, ``S I``) raises its typed error after the stream is ended."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100_000:
            raise ValidationError(f"count: must be 1 to 100000 readings, got {count!r}", "count")
        out: list[Reading] = []
        try:
            line, wall, mono = self.link.request(b"SIR")
            while True:
                out.append(parse_weight_reply(b"SI", line, wall, mono))
                if len(out) == count:
                    return out
                line, wall, mono = self.link.read_line()
        finally:
            self._end_stream()

    def _end_stream(self) -> None:
        self.link.send(b"@\r\n")
        for _ in range(64):  # readings sent before the reset arrived, then its reply
            line, _, _ = self.link.read_line()
            if line.startswith(b"I4 "):
                break
        self.link.discard_input()
