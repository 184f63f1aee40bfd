"""Pump-clock vocabulary: instants and durations, the one place their rules are enforced.

**Instants** are naive ``datetime`` (the pump's local clock; no time zones), ``numpy.datetime64``
or int milliseconds since 1970-01-01 00:00, truncated to the millisecond; a tz-aware datetime is a
``ValidationError``. The clock runs from 0001-01-01 00:00 to 9999-12-31 23:59:59.999.

**Durations are never bare numbers** (docs: guide/inputs.md#durations):

* Python: ``datetime.timedelta`` (a pandas ``Timedelta`` is one) or ``numpy.timedelta64``,
  floored to the millisecond; an int, float or bool is refused (:func:`duration_ms`). Integer
  milliseconds only where the parameter's name says so (``*_ms``, :func:`millis`).
* Text (scenario files): ISO 8601 (``"PT30M"``, ``"P7D"``, ``"PT0.5S"``); months and years are
  refused, they have no fixed length (:func:`parse_iso_duration`).
* Command line: ISO 8601 or a number with a unit (``7d``, ``30min``, ``90s``, ``500ms``;
  :func:`parse_duration_text`).

Every duration is at most the pump clock's whole span (``P3652058DT23H59M59.999S``); messages
show durations in ISO 8601 (:func:`format_duration_ms`).

**Step starts** of flex programs (docs: guide/inputs.md#flex-step-starts) are read here and
nowhere else (:func:`step_start_ms`): a ``datetime.time`` or ``"HH:MM[:SS[.fff]]"`` text (day
period), ``(weekday, time)`` or ``"mon HH:MM"`` text (week period), or a ``timedelta`` from the
period's start; :func:`step_start_text` writes the canonical text, :func:`parse_clock_text` reads
the text alone (also for a time of day such as an appointment, :func:`time_of_day`).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from fractions import Fraction
from numbers import Integral
from typing import Any, Union

import numpy as np

from ._limits import MAX_TIME_MS, MIN_TIME_MS, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, MS_PER_WEEK
from .errors import ValidationError

__all__ = [
    "EPOCH",
    "MIN_TIME_MS",
    "MAX_TIME_MS",
    "MAX_DURATION_MS",
    "DurationError",
    "to_ms",
    "from_ms",
    "duration_ms",
    "millis",
    "format_duration",
    "format_duration_ms",
    "format_time_ms",
    "parse_iso_duration",
    "parse_duration_text",
    "duration_range",
    "WEEKDAYS",
    "ClockTextError",
    "parse_clock_text",
    "weekday_index",
    "time_of_day",
    "step_start_ms",
    "step_start_text",
    "step_start",
    "parse_instant",
]

EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)
#: The pump clock's first and last instant (ms since 1970-01-01): 0001-01-01 00:00 and
#: 9999-12-31 23:59:59.999, as the Rust core checks them.
#: The longest duration anything accepts: the clock's whole span.
MAX_DURATION_MS = MAX_TIME_MS - MIN_TIME_MS

#: A Python duration argument.
Duration = Union[timedelta, np.timedelta64]
_I64 = (-(2**63), 2**63 - 1)


class DurationError(ValueError):
    """A duration that breaks the rules; the message does not name the field (the caller's
    surface adds it: a parameter, a scenario key, a command-line option)."""


class ClockTextError(ValueError):
    """A date-time, time-of-day or step-start text that breaks the rules; the message does not name the
    field (the caller's surface adds it, as for :class:`DurationError`)."""


def int64(value: int, field: str, unit: str = "") -> int:
    """``value`` if it fits the core's 64-bit integers, else a ``ValidationError``."""
    if not _I64[0] <= value <= _I64[1]:
        raise ValidationError(
            f"{field}: {value} {unit} is outside the 64-bit range".replace("  ", " "), field
        )
    return value


# ----- instants --------------------------------------------------------------------------------


def to_ms(value: datetime | int, field: str) -> int:
    """Pump-clock ms of a naive datetime, a ``numpy.datetime64`` (floored to the ms) or an
    integer ms (Python or numpy) passed through."""
    t = type(value)
    if t is datetime:  # the common cases first: no ABC checks
        if value.tzinfo is None:  # type: ignore[union-attr]
            return (value - EPOCH) // _MS  # type: ignore[operator]
    elif t is int:
        return int64(value, field, "ms")  # type: ignore[arg-type]
    if isinstance(value, (bool, np.bool_)):
        raise ValidationError(
            f"{field}: expected a naive datetime or int ms, got a bool (a bool is never a time)",
            field,
        )
    if isinstance(value, Integral):
        return int64(int(value), field, "ms")
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValidationError(f"{field}: NaT is not a time", field)
        return int64(int(value.astype("datetime64[ms]").astype(np.int64)), field, "ms")
    if not isinstance(value, datetime):
        raise ValidationError(
            f"{field}: expected a naive datetime or int ms, got {type(value).__name__}", field
        )
    if value.tzinfo is not None and value.tzinfo.utcoffset(value) is not None:
        raise ValidationError(
            f"{field}: {value.isoformat()} is tz-aware; the pump clock is naive local time "
            "(pass a naive datetime)",
            field,
        )
    return (value - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Naive datetime of a pump-clock ms."""
    return EPOCH + timedelta(milliseconds=ms)


def format_time_ms(ms: int) -> str:
    """A pump-clock ms as ISO 8601 text to the millisecond (``2026-01-05T08:00:00.000``); the
    one time format of itb's output."""
    if MIN_TIME_MS <= ms <= MAX_TIME_MS:
        return from_ms(ms).isoformat(timespec="milliseconds")
    return f"{ms} ms (outside the pump clock)"


def parse_instant(text: str) -> datetime:
    """A pump-clock instant from ISO 8601 text (``2026-01-05T08:00``, ``2026-01-05T08:00:00.250``;
    a date alone is its midnight) — the one reader of date-time text (scenario files, options,
    CSV cells, device logs). Text with a UTC offset is refused: the pump clock is naive local
    time. A :class:`ClockTextError` otherwise (the caller names the field)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ClockTextError(f"{text!r} is not a date-time (write 2026-01-05T08:00:00)") from None
    if value.tzinfo is not None:
        raise ClockTextError(
            f"{text!r} has a UTC offset; the pump clock is naive local time "
            "(write 2026-01-05T08:00:00)"
        )
    return value


# ----- durations -------------------------------------------------------------------------------


def format_duration_ms(ms: int) -> str:
    """ISO 8601 text of a duration in ms, exact (``PT30M``, ``P1DT2H``, ``PT0.005S``; ``-`` in
    front of a negative one)."""
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    days, ms = divmod(ms, MS_PER_DAY)
    hours, ms = divmod(ms, MS_PER_HOUR)
    minutes, ms = divmod(ms, MS_PER_MINUTE)
    seconds, ms = divmod(ms, 1000)
    out = f"P{days}D" if days else "P"
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or ms:
        clock += f"{seconds}.{ms:03d}S" if ms else f"{seconds}S"
    if clock:
        out += "T" + clock
    return sign + (out if out != "P" else "PT0S")


def format_duration(value: timedelta) -> str:
    """ISO 8601 text of a timedelta, exact to the millisecond (floored)."""
    return format_duration_ms(value // _MS)


def duration_range(allow_zero: bool = True) -> str:
    """The allowed range of a duration, as messages state it."""
    low = "PT0S" if allow_zero else "PT0.001S"
    return f"{low} to {format_duration_ms(MAX_DURATION_MS)}"


def _check_ms(ms: int, shown: str, allow_zero: bool) -> int:
    """``ms`` within the duration range, else a :class:`DurationError` showing ``shown``."""
    if ms < 0:
        raise DurationError(f"{shown} is negative (allowed: {duration_range(allow_zero)})")
    if ms == 0 and not allow_zero:
        raise DurationError(
            f"{shown} is zero; it must be at least 1 ms (allowed: {duration_range(False)})"
        )
    if ms > MAX_DURATION_MS:
        raise DurationError(
            f"{shown} is longer than the pump clock's whole span, 0001-01-01 to "
            f"9999-12-31 23:59:59.999 (allowed: {duration_range(allow_zero)})"
        )
    return ms


def _bare_number_hint(value: Any) -> str:
    n = value
    try:
        text = f"{n:g}" if isinstance(n, float) else str(int(n))
    except (TypeError, ValueError, OverflowError):
        text = str(n)
    return (
        f"got the bare number {text}; a duration needs its unit: pass a timedelta, e.g. "
        f"timedelta(minutes={text}) or timedelta(seconds={text})"
    )


def _duration_ms(value: Any, allow_zero: bool) -> int:
    """The rule of :func:`duration_ms` without the field (raises :class:`DurationError`)."""
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            raise DurationError("NaT is not a duration")
        as_ms = int(value.astype("timedelta64[ms]").astype(np.int64))
        if as_ms == 0 and value > np.timedelta64(0):
            raise DurationError(
                f"{value} is shorter than 1 ms, the pump clock's resolution "
                f"(allowed: {duration_range(allow_zero)})"
            )
        return _check_ms(
            min(as_ms, -1) if value < np.timedelta64(0) else as_ms, str(value), allow_zero
        )
    if isinstance(value, timedelta):
        ms = value // _MS
        shown = format_duration_ms(ms) if ms >= 0 else "-" + format_duration(-value)
        if ms == 0 and value > timedelta(0):
            raise DurationError(
                f"{value.microseconds} µs is shorter than 1 ms, the pump clock's resolution "
                f"(allowed: {duration_range(allow_zero)})"
            )
        return _check_ms(ms, shown, allow_zero)
    if isinstance(value, (bool, np.bool_)):
        raise DurationError("got a bool; a bool is never a duration (pass a timedelta)")
    if isinstance(value, (Integral, float, np.floating)):
        raise DurationError(_bare_number_hint(value))
    if isinstance(value, str):
        raise DurationError(
            f"got the text {value!r}; pass a timedelta (ISO 8601 text is for scenario files "
            "and the command line)"
        )
    raise DurationError(f"expected a timedelta or numpy.timedelta64, got {type(value).__name__}")


def duration_ms(value: Duration, field: str, *, allow_zero: bool = True) -> int:
    """Milliseconds of a ``timedelta``/``numpy.timedelta64`` (floored to the ms) within
    ``PT0S``/``PT0.001S`` to the clock's span. A bare number, a bool or text is a
    ``ValidationError`` naming ``field`` and saying what to pass; a non-zero duration never
    becomes 0 (below 1 ms it is refused)."""
    if type(value) is timedelta:  # the common case first: no ABC checks
        ms = (value.days * 86_400 + value.seconds) * 1000 + value.microseconds // 1000
        if 1 <= ms <= MAX_DURATION_MS:
            return ms
    try:
        return _duration_ms(value, allow_zero)
    except DurationError as exc:
        raise ValidationError(f"{field}: {exc}", field) from None


def millis(value: Any, field: str, *, allow_zero: bool = True) -> int:
    """An exact integer of milliseconds, for parameters named ``*_ms`` (Python or numpy int,
    never a bool or float), within the duration range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise ValidationError(
            f"{field}: expected an int number of milliseconds, got {type(value).__name__}", field
        )
    try:
        return _check_ms(int(value), f"{int(value)} ms", allow_zero)
    except DurationError as exc:
        raise ValidationError(f"{field}: {exc}", field) from None


_CORE_MS_RANGE = re.compile(
    r"(?P<v>-?\d+) ms is outside the allowed range (?P<lo>-?\d+) to (?P<hi>-?\d+) ms"
)


def iso_range_error(err: ValidationError) -> ValidationError:
    """A core range error about a duration the caller passed as a ``timedelta``, re-worded in
    ISO 8601 (``lockout: PT25H is outside the allowed range PT0S to P1D``; the core speaks ms).
    Other errors come back as they are."""
    m = _CORE_MS_RANGE.search(str(err))
    if m is None or not err.field:
        return err
    v, lo, hi = (format_duration_ms(int(m[k])) for k in ("v", "lo", "hi"))
    return ValidationError(f"{err.field}: {v} is outside the allowed range {lo} to {hi}", err.field)


# ----- durations as text ---------------------------------------------------------------------

_NUM = r"\d+(?:[.,]\d+)?"
_ISO = re.compile(
    rf"P(?:(?P<Y>{_NUM})Y)?(?:(?P<MO>{_NUM})M)?(?:(?P<W>{_NUM})W)?(?:(?P<D>{_NUM})D)?"
    rf"(?:T(?:(?P<H>{_NUM})H)?(?:(?P<MI>{_NUM})M)?(?:(?P<S>{_NUM})S)?)?"
)
_ISO_MS = {"W": MS_PER_WEEK, "D": MS_PER_DAY, "H": MS_PER_HOUR, "MI": MS_PER_MINUTE, "S": 1000}
_EXAMPLES = "'PT30M', 'PT1H30M', 'P7D', 'PT0.5S'"


def _exact_ms(number: str, unit_ms: int, shown: str) -> int:
    ms = Fraction(number.replace(",", ".")) * unit_ms
    if ms.denominator != 1:
        raise DurationError(f"{shown} is not a whole number of milliseconds")
    return int(ms)


def parse_iso_duration(text: str, *, allow_zero: bool = True) -> int:
    """Milliseconds of an ISO 8601 duration (``PT30M``, ``P1DT2H``, ``P2W``, ``PT0.5S``; a
    decimal fraction only on the smallest part). Months and years are refused (not fixed
    lengths), as are negative, malformed, finer-than-1-ms and longer-than-the-clock durations
    (:class:`DurationError`)."""
    shown = text.strip()
    m = _ISO.fullmatch(shown.upper())
    if m is None or shown.upper() in ("P", "PT") or shown.upper().endswith("T"):
        raise DurationError(f"{text!r} is not an ISO 8601 duration (e.g. {_EXAMPLES})")
    parts = {k: v for k, v in m.groupdict().items() if v is not None}
    if "Y" in parts or "MO" in parts:
        raise DurationError(
            f"{text!r}: months and years have no fixed length; write days or weeks (P30D, P52W)"
        )
    order = [k for k in _ISO_MS if k in parts]
    if any(re.search("[.,]", parts[k]) for k in order[:-1]):
        raise DurationError(f"{text!r}: only the smallest part may have a fraction (PT1H30.5M)")
    ms = sum(_exact_ms(parts[k], _ISO_MS[k], repr(text)) for k in order)
    return _check_ms(ms, shown, allow_zero)


_UNIT_MS = {
    "ms": 1,
    "s": 1000,
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "min": MS_PER_MINUTE,
    "mins": MS_PER_MINUTE,
    "minute": MS_PER_MINUTE,
    "minutes": MS_PER_MINUTE,
    "h": MS_PER_HOUR,
    "hr": MS_PER_HOUR,
    "hrs": MS_PER_HOUR,
    "hour": MS_PER_HOUR,
    "hours": MS_PER_HOUR,
    "d": MS_PER_DAY,
    "day": MS_PER_DAY,
    "days": MS_PER_DAY,
    "w": MS_PER_WEEK,
    "week": MS_PER_WEEK,
    "weeks": MS_PER_WEEK,
}
_WITH_UNIT = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<u>[a-zA-Zµ]+)")
_UNITS_HELP = "ms, s, min, h, d, w"


def parse_duration_text(text: str, *, allow_zero: bool = True) -> int:
    """Milliseconds of a command-line duration: ISO 8601 (:func:`parse_iso_duration`) or a
    number with a unit (``7d``, ``30min``, ``1.5h``, ``90s``, ``500ms``, ``2w``). A bare number
    is refused (it has no unit), as is ``m`` (minutes or months?)."""
    shown = text.strip()
    if shown.upper().startswith("P"):
        return parse_iso_duration(shown, allow_zero=allow_zero)
    try:
        float(shown)
    except ValueError:
        pass
    else:
        raise DurationError(
            f"{shown!r} is a bare number; give its unit: {shown}d, {shown}h, {shown}min or "
            f"{shown}s (or ISO 8601: P{shown}D)"
        )
    m = _WITH_UNIT.fullmatch(shown)
    if m is None:
        raise DurationError(
            f"{text!r} is not a duration: write a number with a unit ({_UNITS_HELP}: 7d, "
            "30min, 90s) or ISO 8601 (P7D, PT30M)"
        )
    unit = m["u"].lower()
    if unit in ("m", "mo", "month", "months", "y", "yr", "year", "years"):
        raise DurationError(
            f"{text!r}: {m['u']!r} is ambiguous or has no fixed length; use min for minutes, "
            "d or w for days or weeks"
        )
    if unit not in _UNIT_MS:
        raise DurationError(f"{text!r}: unknown unit {m['u']!r} (allowed: {_UNITS_HELP})")
    return _check_ms(_exact_ms(m["n"], _UNIT_MS[unit], repr(text)), shown, allow_zero)


# ----- times of day and flex step starts --------------------------------------------------------

#: Weekday names as step starts and options write them, Monday first (index 0 = Monday, as
#: ``datetime.weekday()``).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK_TEXT = re.compile(
    r"(?:(?P<day>[A-Za-z]+)\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,3}))?)?"
)
_STEP_FORMS = '"HH:MM", "HH:MM:SS", or "mon HH:MM" for week periods; a datetime.time works too'


def weekday_index(name: str) -> int:
    """0 (Monday) … 6 of a weekday name: ``"mon"`` … ``"sun"`` or the full English name, any
    case; anything else is a :class:`ClockTextError` listing the allowed names."""
    key = name.strip().lower()
    if key in WEEKDAYS:
        return WEEKDAYS.index(key)
    if key in _FULL_WEEKDAYS:
        return _FULL_WEEKDAYS.index(key)
    raise ClockTextError(f"{name!r} is not a weekday (allowed: {', '.join(WEEKDAYS)})")


def parse_clock_text(text: str) -> tuple[int | None, int]:
    """``(weekday, ms into the day)`` of ``"HH:MM[:SS[.fff]]"`` (weekday ``None``) or
    ``"ddd HH:MM[:SS[.fff]]"`` (weekday 0 = Monday): hours 0 to 23, minutes and seconds 0 to 59,
    at most 3 decimals of a second. A :class:`ClockTextError` otherwise."""
    m = _CLOCK_TEXT.fullmatch(text.strip())
    if m is None:
        raise ClockTextError(f"{text!r} is not a step start ({_STEP_FORMS})")
    h, mi, s = int(m["h"]), int(m["m"]), int(m["s"] or 0)
    if h > 23 or mi > 59 or s > 59:
        raise ClockTextError(f"{text!r}: hours 0 to 23, minutes and seconds 0 to 59")
    ms = ((h * 60 + mi) * 60 + s) * 1000 + int((m["f"] or "0").ljust(3, "0"))
    return (None if m["day"] is None else weekday_index(m["day"])), ms


def _time_ms(value: time) -> int:
    if value.tzinfo is not None:
        raise ClockTextError(f"{value!r} is tz-aware; the pump clock is naive")
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def time_of_day(text: str) -> time:
    """A pump-clock time of day from ``"HH:MM[:SS[.fff]]"`` text (no weekday, no UTC offset);
    a :class:`ClockTextError` otherwise."""
    day, ms = parse_clock_text(text)
    if day is not None:
        raise ClockTextError(f"{text!r} names a weekday; a time of day is HH:MM")
    return _ms_time(ms)


def _ms_time(ms: int) -> time:
    secs, frac = divmod(ms, 1000)
    return time(secs // 3600, secs // 60 % 60, secs % 60, frac * 1000)


def _step_start_ms(offset: object, period: str) -> int:
    if isinstance(offset, str):
        day, ms = parse_clock_text(offset)
        if day is None and period == "week":
            raise ClockTextError(f'{offset!r}: a week period takes "mon HH:MM" … "sun HH:MM"')
        if day is not None and period != "week":
            raise ClockTextError(f'{offset!r} names a weekday; a day period takes "HH:MM"')
        return (day or 0) * MS_PER_DAY + ms
    if isinstance(offset, time):
        return _time_ms(offset)
    if isinstance(offset, tuple) and len(offset) == 2 and isinstance(offset[1], time):
        day, at = offset
        if (
            period != "week"
            or isinstance(day, bool)
            or not isinstance(day, int)
            or not 0 <= day <= 6
        ):
            raise ClockTextError(
                "(weekday, time) needs a week period and a weekday from 0 to 6 (0 = Monday)"
            )
        return day * MS_PER_DAY + _time_ms(at)
    try:
        return _duration_ms(offset, allow_zero=True)
    except DurationError as exc:
        if isinstance(offset, (timedelta, np.timedelta64, Integral, float, np.floating)):
            raise ClockTextError(str(exc)) from None  # e.g. a bare number: which unit?
        raise ClockTextError(
            f"expected a step start ({_STEP_FORMS}; or a timedelta from the period start), "
            f"got {type(offset).__name__}"
        ) from None


def step_start_ms(offset: object, period: str, field: str) -> int:
    """ms from the period's start of a flex step start in any of its forms (module docs) —
    the one reader of step starts (``itb.Flex``, scenario files, the patients CSV). A
    ``ValidationError`` naming ``field`` if it is malformed or does not fit ``period``
    (``"day"`` or ``"week"``); whether it lies inside the period is the core's check."""
    try:
        return _step_start_ms(offset, period)
    except ClockTextError as exc:
        raise ValidationError(f"{field}: {exc}", field) from None


def step_start_text(offset_ms: int, period: str) -> str:
    """The canonical text of a step start (ms from the period's start): ``"08:00"``,
    ``"08:00:30.500"`` (seconds only when not 0), ``"sat 07:30"`` for a week period; the
    inverse of :func:`step_start_ms` on text."""
    day, ms = divmod(offset_ms, MS_PER_DAY)
    secs, frac = divmod(ms, 1000)
    text = f"{secs // 3600:02d}:{secs // 60 % 60:02d}"
    if secs % 60 or frac:
        text += f":{secs % 60:02d}" + (f".{frac:03d}" if frac else "")
    return f"{WEEKDAYS[day]} {text}" if period == "week" else text


def step_start(offset_ms: int, period: str) -> time | tuple[int, time]:
    """The normal form ``itb.Flex`` keeps a step start in: a ``datetime.time`` (day period) or
    ``(weekday, time)`` with 0 = Monday (week period)."""
    if period == "week":
        day, ms = divmod(offset_ms, MS_PER_DAY)
        return (day, _ms_time(ms))
    return _ms_time(offset_ms)
