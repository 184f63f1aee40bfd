"""Pump-clock conversions: naive ``datetime`` ⇄ int milliseconds since 1970-01-01 00:00.

The pump clock is naive local time; there are no time zones. Times are truncated to the
millisecond (microseconds dropped); a tz-aware datetime is a ``ValidationError``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from numbers import Integral

import numpy as np

from .errors import ValidationError

EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


_I64 = (-(2**63), 2**63 - 1)


def int64(value: int, field: str, unit: str = "") -> int:
    """``value`` if it fits the core's 64-bit integers, else a ``ValidationError``."""
    if not _I64[0] <= value <= _I64[1]:
        raise ValidationError(
            f"{field}: {value} {unit} is outside the 64-bit range".replace("  ", " "), field
        )
    return value


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
        raise ValidationError(f"{field}: expected a naive datetime or int ms, got bool", field)
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
            f"{field}: {value!r} is tz-aware; the pump clock is naive local time", field
        )
    return (value - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Naive datetime of a pump-clock ms."""
    return EPOCH + timedelta(milliseconds=ms)


def duration_ms(value: timedelta | int, field: str, *, allow_zero: bool = True) -> int:
    """Milliseconds of a timedelta (floored to the ms) or an int ms. A non-zero duration never
    becomes 0: below 1 ms it is a ``ValidationError``."""
    t = type(value)
    if t is timedelta:  # the common case first: no ABC checks; floor to the ms like `// _MS`
        ms = (value.days * 86_400 + value.seconds) * 1000 + value.microseconds // 1000  # type: ignore[union-attr]
        if ms >= 1:
            return ms
    if isinstance(value, (bool, np.bool_)):
        raise ValidationError(f"{field}: expected a timedelta or int ms, got bool", field)
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            raise ValidationError(f"{field}: NaT is not a duration", field)
        as_ms = int(value.astype("timedelta64[ms]").astype(np.int64))
        if value < np.timedelta64(0):
            value = min(as_ms, -1)  # negative: refused below, never rounded to 0
        elif as_ms == 0 and value > np.timedelta64(0):
            value = timedelta(microseconds=1)  # non-zero below 1 ms: refused below
        else:
            value = as_ms
    if isinstance(value, Integral):
        ms = int64(int(value), field, "ms")
    elif isinstance(value, timedelta):
        ms = value // _MS
        if ms == 0 and value > timedelta(0):
            raise ValidationError(
                f"{field}: {value!r} truncates to 0 ms on the pump clock; the smallest accepted non-zero "
                "duration is 1 ms (or exactly 0 where 0 is allowed)",
                field,
            )
    else:
        raise ValidationError(
            f"{field}: expected a timedelta or int ms, got {type(value).__name__}", field
        )
    if ms < 0 or (ms == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValidationError(f"{field}: {value!r} must be {bound} ms", field)
    return ms
