"""Basal programs in clinical units: :class:`Continuous` and :class:`Flex`.

Doses are µg/day floats, converted to exact ng/day by half-even rounding from the float's
shortest decimal form. A flex ``day`` period starts at 00:00 pump time; a ``week`` period on
Monday 00:00. Step offsets may be a ``datetime.time`` or ``"HH:MM[:SS[.fff]]"`` text (day
period), a ``timedelta`` from the period start, or ``(weekday, time)`` with weekday 0 = Monday or
``"mon HH:MM"`` text (week period) — the text is that of scenario files.

Programs report what they deliver (``daily_total_ug``, ``mean_ug_per_day``, ``daily_totals_ug``
per weekday) and convert to and from the plain dict form of scenario files (``to_dict``,
:func:`program_from_dict`), so applications can keep programs in their own records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from fractions import Fraction
from typing import Any, Union

from . import _core
from ._time import duration_ms
from ._units import ug_to_ng
from .errors import ValidationError

__all__ = ["Continuous", "Flex", "Program", "StepOffset", "program_from_dict"]

StepOffset = Union[time, timedelta, tuple[int, time], str]
_DAY_MS = 86_400_000
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_STEP_TEXT = re.compile(
    r"(?:(?P<day>[A-Za-z]+)\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,3}))?)?"
)


def parse_step_start(text: str, period: str, field: str) -> int:
    """ms from the period start of a step start written as in scenario files: ``"HH:MM"``,
    ``"HH:MM:SS[.fff]"`` (day period) or ``"mon HH:MM"`` (week period)."""
    m = _STEP_TEXT.fullmatch(text.strip())
    if m is None:
        raise ValidationError(
            f'{field}: {text!r} is not a step start ("HH:MM", "HH:MM:SS", or "mon HH:MM" for '
            "week periods; a datetime.time works too)",
            field,
        )
    h, mi, s = int(m["h"]), int(m["m"]), int(m["s"] or 0)
    if h > 23 or mi > 59 or s > 59:
        raise ValidationError(
            f"{field}: {text!r}: hours 0 to 23, minutes and seconds 0 to 59", field
        )
    ms = ((h * 60 + mi) * 60 + s) * 1000 + int((m["f"] or "0").ljust(3, "0"))
    day = m["day"]
    if day is None:
        if period == "week":
            raise ValidationError(
                f'{field}: {text!r}: a week period takes "mon HH:MM" … "sun HH:MM"', field
            )
        return ms
    if period != "week":
        raise ValidationError(
            f'{field}: {text!r} names a weekday; a day period takes "HH:MM"', field
        )
    if day.lower()[:3] not in _WEEKDAYS or len(day) < 3:
        raise ValidationError(
            f"{field}: {day!r} is not a weekday (allowed: {', '.join(_WEEKDAYS)})", field
        )
    return _WEEKDAYS.index(day.lower()[:3]) * _DAY_MS + ms


def _step_text(offset_ms: int, period: str) -> str:
    day, ms = divmod(offset_ms, _DAY_MS)
    secs, frac = divmod(ms, 1000)
    text = f"{secs // 3600:02d}:{secs // 60 % 60:02d}"
    if secs % 60 or frac:
        text += f":{secs % 60:02d}" + (f".{frac:03d}" if frac else "")
    return f"{_WEEKDAYS[day]} {text}" if period == "week" else text


class _Reports:
    """What a program delivers, from its exact form (ng/day steps)."""

    def exact(self) -> tuple:  # pragma: no cover - defined by the programs
        raise NotImplementedError

    def _period_ng(self) -> tuple[int, list[tuple[int, int]]]:
        raw = self.exact()
        if raw[0] == "continuous":
            return _DAY_MS, [(0, raw[1])]
        return (7 * _DAY_MS if raw[1] == "week" else _DAY_MS), list(raw[2])

    def _ng_between(self, start_ms: int, end_ms: int) -> Fraction:
        """Exact ng delivered (at the commanded rate) from start to end within one period."""
        period, steps = self._period_ng()
        total = Fraction(0)
        bounds = [o for o, _ in steps] + [period]
        for (offset, ng_per_day), nxt in zip(steps, bounds[1:]):
            lo, hi = max(offset, start_ms), min(nxt, end_ms)
            if hi > lo:
                total += Fraction(ng_per_day * (hi - lo), _DAY_MS)
        return total

    @property
    def daily_totals_ug(self) -> tuple[float, ...]:
        """µg commanded on each day of the period: one value for a day period, seven (Monday
        first) for a week period (the basal only, before stroke quantisation)."""
        period, _ = self._period_ng()
        return tuple(
            float(self._ng_between(d, d + _DAY_MS) / 1000) for d in range(0, period, _DAY_MS)
        )

    @property
    def daily_total_ug(self) -> float:
        """µg commanded per day (a week period: the mean day)."""
        period, _ = self._period_ng()
        return float(self._ng_between(0, period) / 1000 / (period // _DAY_MS))

    @property
    def mean_ug_per_day(self) -> float:
        """The mean dose rate over the period (µg/day); equal to :attr:`daily_total_ug`."""
        return self.daily_total_ug


@dataclass(frozen=True)
class Continuous(_Reports):
    """The same dose rate all day (µg/day)."""

    ug_per_day: float

    def __post_init__(self) -> None:
        exact = ("continuous", ug_to_ng(self.ug_per_day, "ug_per_day"))
        # converted and validated once (the dataclass is frozen)
        object.__setattr__(self, "_core_program", _core.Program(exact))
        object.__setattr__(self, "_exact", exact)

    def exact(self) -> tuple:
        """Core form: ``("continuous", ng_per_day)``."""
        return self._exact  # type: ignore[attr-defined, no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The plain dict of scenario files: ``{"kind": "continuous", "ug_per_day": …}``."""
        return {"kind": "continuous", "ug_per_day": self._exact[1] / 1000}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Flex(_Reports):
    """A repeating schedule of ``(offset, µg/day)`` steps; first step at offset 0. An offset is
    a ``datetime.time`` or ``"HH:MM"`` (day period), ``(weekday, time)`` or ``"mon HH:MM"``
    (week period), or a ``timedelta`` from the period's start."""

    period: str
    steps: Sequence[tuple[StepOffset, float]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(tuple(s) for s in self.steps))
        exact = self._convert()
        # converted and validated once (the dataclass is frozen)
        object.__setattr__(self, "_core_program", _core.Program(exact))
        object.__setattr__(self, "_exact", exact)

    def exact(self) -> tuple:
        """Core form: ``("flex", period, [(offset_ms, ng_per_day), …])`` (a fresh step list)."""
        kind, period, steps = self._exact  # type: ignore[attr-defined]
        return (kind, period, list(steps))

    def to_dict(self) -> dict[str, Any]:
        """The plain dict of scenario files: ``{"kind": "flex", "period": …, "steps":
        [["08:00", 500.0], …]}`` (``"mon 08:00"`` for a week period)."""
        _, period, steps = self._exact  # type: ignore[attr-defined]
        return {
            "kind": "flex",
            "period": period,
            "steps": [[_step_text(o, period), ng / 1000] for o, ng in steps],
        }

    def _convert(self) -> tuple:
        if self.period not in ("day", "week"):
            raise ValidationError(
                f"period: unknown period {self.period!r}; allowed: 'day', 'week'", "period"
            )
        steps = []
        for i, step in enumerate(self.steps):
            if len(step) != 2:
                raise ValidationError(f"steps[{i}]: expected (offset, ug_per_day)", f"steps[{i}]")
            offset, dose = step
            steps.append(
                (
                    _offset_ms(offset, self.period, f"steps[{i}].offset"),
                    ug_to_ng(dose, f"steps[{i}].ug_per_day"),
                )
            )
        return ("flex", self.period, steps)


Program = Union[Continuous, Flex]


def _offset_ms(offset: object, period: str, field: str) -> int:
    if isinstance(offset, str):
        return parse_step_start(offset, period, field)
    if isinstance(offset, time):
        if offset.tzinfo is not None:
            raise ValidationError(
                f"{field}: {offset!r} is tz-aware; the pump clock is naive", field
            )
        return (
            (offset.hour * 60 + offset.minute) * 60 + offset.second
        ) * 1000 + offset.microsecond // 1000
    if isinstance(offset, tuple) and len(offset) == 2 and isinstance(offset[1], time):
        day, at = offset
        if (
            period != "week"
            or isinstance(day, bool)
            or not isinstance(day, int)
            or not 0 <= day <= 6
        ):
            raise ValidationError(
                f"{field}: (weekday, time) needs a week period and weekday 0..=6 (0 = Monday)",
                field,
            )
        return day * _DAY_MS + _offset_ms(at, period, field)
    return duration_ms(offset, field)  # type: ignore[arg-type]


def program_from_exact(raw: tuple) -> Program:
    """Inverse of ``.exact()`` (offsets become timedeltas for week periods)."""
    if raw[0] == "continuous":
        return Continuous(ug_per_day=raw[1] / 1000)
    _, period, steps = raw
    out = []
    for offset_ms, ng in steps:
        if period == "day":
            secs, ms = divmod(offset_ms, 1000)
            off: StepOffset = time(secs // 3600, secs // 60 % 60, secs % 60, ms * 1000)
        else:
            off = timedelta(milliseconds=offset_ms)
        out.append((off, ng / 1000))
    return Flex(period=period, steps=out)


def program_from_dict(data: Any) -> Program:
    """A program from the plain dict of scenario files (``{"kind": "continuous", "ug_per_day":
    400}`` or ``{"kind": "flex", "period": "day", "steps": [["00:00", 300], ["08:00", 500]]}``);
    the inverse of ``to_dict``. ``ValidationError`` names the key."""
    if not isinstance(data, dict):
        raise ValidationError(f"program: expected a dict, got {type(data).__name__}", "program")
    kind = data.get("kind")
    allowed = {"continuous": {"kind", "ug_per_day"}, "flex": {"kind", "period", "steps"}}
    if kind not in allowed:
        raise ValidationError(
            f"kind: {kind!r} is not a program kind (allowed: 'continuous', 'flex')", "kind"
        )
    extra = sorted(set(data) - allowed[kind])
    if extra:
        raise ValidationError(
            f"{extra[0]}: unknown key (allowed: {', '.join(sorted(allowed[kind]))})", extra[0]
        )
    if kind == "continuous":
        if "ug_per_day" not in data:
            raise ValidationError("ug_per_day: missing", "ug_per_day")
        return Continuous(ug_per_day=data["ug_per_day"])
    steps = data.get("steps")
    if not isinstance(steps, (list, tuple)) or not steps:
        raise ValidationError("steps: expected a non-empty list of [start, µg/day] pairs", "steps")
    for i, step in enumerate(steps):
        if not isinstance(step, (list, tuple)) or len(step) != 2:
            raise ValidationError(f"steps[{i}]: expected [start, µg/day]", f"steps[{i}]")
    return Flex(period=data.get("period", "day"), steps=[tuple(s) for s in steps])
