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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from fractions import Fraction
from typing import Any, Literal, Union

from . import _core
from ._limits import MS_PER_DAY as _DAY_MS
from ._time import step_start, step_start_ms, step_start_text
from ._units import ng_to_ug, ug_to_ng
from .errors import ValidationError

__all__ = ["Continuous", "Flex", "Program", "StepOffset", "program_from_dict"]

StepOffset = Union[time, timedelta, tuple[int, time], str]

# the one reader and writer of step starts is the pump-clock vocabulary (itb._time)


class _Reports:
    """What a program delivers, from its exact form (ng/day steps)."""

    def exact(self) -> tuple[Any, ...]:  # pragma: no cover - defined by the programs
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
        exact: tuple[Literal["continuous"], int] = (
            "continuous",
            ug_to_ng(self.ug_per_day, "ug_per_day"),
        )
        # converted and validated once (the dataclass is frozen)
        object.__setattr__(self, "_core_program", _core.Program(exact))
        object.__setattr__(self, "_exact", exact)
        # the normal form: the dose the pump runs (docs: decisions/layout.md#programs-keep-their-normal-form)
        object.__setattr__(self, "ug_per_day", ng_to_ug(exact[1]))

    def exact(self) -> tuple[Any, ...]:
        """Core form: ``("continuous", ng_per_day)``."""
        return self._exact  # type: ignore[attr-defined, no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The plain dict of scenario files: ``{"kind": "continuous", "ug_per_day": …}``."""
        return {"kind": "continuous", "ug_per_day": ng_to_ug(self._exact[1])}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Flex(_Reports):
    """A repeating schedule of ``(offset, µg/day)`` steps; first step at offset 0. An offset is
    a ``datetime.time`` or ``"HH:MM"`` (day period), ``(weekday, time)`` or ``"mon HH:MM"``
    (week period), or a ``timedelta`` from the period's start.

    The steps are kept in one normal form, whatever form they were given in: offsets as a
    ``datetime.time`` (day period) or ``(weekday, time)`` (week period), doses as the µg/day
    the pump runs (whole ng/day). So ``Flex("day", [("08:00", 500)]) == Flex("day",
    [(time(8), 500.0)])``, and ``program_from_dict(p.to_dict()) == p`` for every program."""

    period: str
    steps: Sequence[tuple[StepOffset, float]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(tuple(s) for s in self.steps))
        exact = self._convert()
        # converted and validated once (the dataclass is frozen)
        object.__setattr__(self, "_core_program", _core.Program(exact))
        object.__setattr__(self, "_exact", exact)
        # the normal form (docs: decisions/layout.md#programs-keep-their-normal-form)
        normal = tuple((step_start(o, self.period), ng_to_ug(ng)) for o, ng in exact[2])
        object.__setattr__(self, "steps", normal)

    def exact(self) -> tuple[Any, ...]:
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
            "steps": [[step_start_text(o, period), ng_to_ug(ng)] for o, ng in steps],
        }

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
                    step_start_ms(offset, self.period, f"steps[{i}].offset"),
                    ug_to_ng(dose, f"steps[{i}].ug_per_day"),
                )
            )
        return ("flex", self.period, steps)


Program = Union[Continuous, Flex]


def program_from_exact(raw: tuple[Any, ...]) -> Program:
    """Inverse of ``.exact()``."""
    if raw[0] == "continuous":
        return Continuous(ug_per_day=ng_to_ug(raw[1]))
    _, period, steps = raw
    return Flex(period=period, steps=[(timedelta(milliseconds=o), ng_to_ug(ng)) for o, ng in steps])


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
