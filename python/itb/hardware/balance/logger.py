"""A balance log of a real (or emulated) rig run: the balance read through its driver every
``interval`` on the host clock, each reading written as it arrives (``itb rig balance-log``).

The log is the CSV that ``itb rig report --balance`` reads: ``#`` header lines, then
``elapsed_ms,mass_mg,host_time`` rows. ``elapsed_ms`` is host monotonic time since the first
reading; the header's ``wall_start`` (the host's epoch seconds at that reading) lets the report
put the readings on the pump clock with the run's journal (its wall-clock anchor and speed).
Guide: docs: guide/metrology.md#logging-a-real-run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TextIO

from ..._time import duration_ms
from ...errors import BalanceError, ValidationError
from .base import UNIT_GRAMS, Balance, Reading

__all__ = ["LogSummary", "log_balance", "readability_of"]


@dataclass(frozen=True)
class LogSummary:
    """What :func:`log_balance` wrote: ``readings`` rows, ``errors`` readings refused by the
    balance (each a ``#`` line naming the error), and the readability it recorded (mg)."""

    readings: int
    errors: int
    readability_mg: float
    #: the last refusal's message ("" if none): with no readings, why the balance gave none
    last_error: str = ""


def readability_of(reading: Reading) -> float:
    """The display step (mg) a reading was printed with: one unit of its last decimal
    (``0.08712 g`` → 0.01 mg). ``BalanceError`` (field ``unit``) for a non-mass unit."""
    exponent = reading.value.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN/Infinity never come out of the parsers
        raise ValidationError(f"reading: {reading.value} is not a number", "reading")
    if reading.unit not in UNIT_GRAMS:
        _ = reading.grams  # the typed error naming the unit
    return float(Decimal(1).scaleb(exponent) * UNIT_GRAMS[reading.unit] * 1000)


def _check_number(name: str, value: float | None, low: float, high: float, unit: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(f"{name}: must be {low:g} to {high:g} {unit}, got {value!r}", name)


def log_balance(
    balance: Balance,
    out: os.PathLike[str] | str,
    *,
    interval: timedelta,
    duration: timedelta | None = None,
    stop: Callable[[], bool] = lambda: False,
    rate_ul_per_h: float | None = None,
    readability_mg: float | None = None,
    repeatability_mg: float = 0.0,
    evaporation_mg_per_h: tuple[float, float] = (0.0, 0.0),
    source: str = "",
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> LogSummary:
    """Read ``balance`` (``read_immediate``: stable or not, as a rig logs) every ``interval``
    until ``duration`` (host time from the first request, whatever the balance answers or does
    not; a read under way may add up to the balance's timeout) has passed or ``stop()`` is true,
    writing the log to ``out`` (a new file; each row flushed, so a crash keeps what was read). A reading the balance
    refuses (overload, busy, an error code, a bad reply) becomes a ``# elapsed_ms error …``
    line and logging goes on; a port failure (``BalanceError`` field ``port``) ends it and is
    raised. ``readability_mg`` defaults to the display step of the first reading;
    ``evaporation_mg_per_h`` is (rate, standard uncertainty) of a blank run, on the host clock;
    ``rate_ul_per_h`` the set rate (the report derives one from the record if it is ``None``).
    ``ValidationError`` naming the argument for bad settings, ``out`` if it exists."""
    step_ms = duration_ms(interval, "interval", allow_zero=False)
    until_ms = None if duration is None else duration_ms(duration, "duration", allow_zero=False)
    _check_number("rate_ul_per_h", rate_ul_per_h, 1e-6, 1e9, "µL/h")
    _check_number("readability_mg", readability_mg, 1e-6, 1e4, "mg")
    _check_number("repeatability_mg", repeatability_mg, 0.0, 1e4, "mg")
    evap, evap_u = evaporation_mg_per_h
    _check_number("evaporation_mg_per_h", evap, -1e6, 1e6, "mg/h")
    _check_number("evaporation_mg_per_h", evap_u, 0.0, 1e6, "mg/h")
    try:
        f: TextIO = open(out, "x", encoding="utf-8")  # noqa: SIM115 - closed below
    except FileExistsError:
        raise ValidationError(f"out: {out} exists; give a new file", "out") from None
    readings = errors = 0
    last_error = ""
    with f:
        t0: float | None = None
        begin = next_due = clock()
        while not stop():
            now = clock()
            if until_ms is not None and (now - begin) * 1000 > until_ms:
                break
            if now < next_due:
                sleep(min(next_due - now, 0.05))
                continue
            next_due = max(next_due + step_ms / 1000, now)  # a slow read skips, not bunches
            try:
                reading = balance.read_immediate()
            except BalanceError as err:
                if err.field == "port":
                    raise
                errors += 1
                last_error = str(err)
                if t0 is not None:
                    f.write(f"# {round((clock() - t0) * 1000)} error {err.field}: {err}\n")
                    f.flush()
                continue
            if t0 is None:
                t0 = reading.host_monotonic
                start_wall = wall() - (clock() - t0)
                if readability_mg is None:
                    readability_mg = readability_of(reading)
                f.write("# itb balance log\n")
                if source:
                    f.write(f"# source={source}\n")
                f.write(f"# wall_start={start_wall!r}\n")
                f.write(f"# host_start={reading.host_time.isoformat(timespec='milliseconds')}\n")
                if rate_ul_per_h is not None:
                    f.write(f"# rate_ul_per_h={float(rate_ul_per_h)!r}\n")
                f.write(f"# readability_mg={float(readability_mg)!r}\n")
                f.write(f"# repeatability_mg={float(repeatability_mg)!r}\n")
                f.write(f"# evaporation_mg_per_h={float(evap)!r},{float(evap_u)!r}\n")
                f.write("elapsed_ms,mass_mg,host_time\n")
            elapsed = round((reading.host_monotonic - t0) * 1000)
            stamp = reading.host_time.isoformat(timespec="milliseconds")
            f.write(f"{elapsed},{float(reading.milligrams)!r},{stamp}\n")
            f.flush()
            readings += 1
    return LogSummary(readings, errors, float(readability_mg or 0.0), last_error)
