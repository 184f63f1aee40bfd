"""Basal programs in clinical units: :class:`Continuous` and :class:`Flex`.

Doses are µg/day floats, converted to exact ng/day by half-even rounding from the float's
shortest decimal form. A flex ``day`` period starts at 00:00 pump time; a ``week`` period on
Monday 00:00. Step offsets may be a ``datetime.time`` (day period), a ``timedelta`` from the
period start, or ``(weekday, time)`` with weekday 0 = Monday (week period).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any, Literal, Union

from . import _core
from ._time import duration_ms
from ._units import ug_to_ng
from .errors import ValidationError

__all__ = ["Continuous", "Flex", "Program", "StepOffset"]

StepOffset = Union[time, timedelta, tuple[int, time]]
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Continuous:
    """The same dose rate all day (µg/day)."""

    ug_per_day: float

    def __post_init__(self) -> None:
        exact: tuple[Literal["continuous"], int] = (
            "continuous",
            ug_to_ng(self.ug_per_day, "ug_per_day"),
        )
        # converted and validated once (the dataclass is frozen)
        object.__setattr__(self, "_core_program", _core.Program(exact))
        object.__setattr__(self, "_exact", exact)

    def exact(self) -> tuple[Any, ...]:
        """Core form: ``("continuous", ng_per_day)``."""
        return self._exact  # type: ignore[attr-defined, no-any-return]


@dataclass(frozen=True)
class Flex:
    """A repeating schedule of ``(offset, µg/day)`` steps; first step at offset 0."""

    period: str
    steps: Sequence[tuple[StepOffset, float]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(tuple(s) for s in self.steps))
        exact = self._convert()
        # converted and validated once (the dataclass is frozen)
        object.__setattr__(self, "_core_program", _core.Program(exact))
        object.__setattr__(self, "_exact", exact)

    def exact(self) -> tuple[Any, ...]:
        """Core form: ``("flex", period, [(offset_ms, ng_per_day), …])`` (a fresh step list)."""
        kind, period, steps = self._exact  # type: ignore[attr-defined]
        return (kind, period, list(steps))

    def _convert(self) -> tuple[Any, ...]:
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


def program_from_exact(raw: tuple[Any, ...]) -> Program:
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
