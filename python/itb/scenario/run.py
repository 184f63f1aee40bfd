"""Scenario files: a pump, timed actions and a run, in TOML — validated, then run on :class:`itb.Pump`.

A scenario is the common input of the command line, rigs and test suites::

    [pump]
    model = "SYNCHROMED_II_40"         # a preset name, or a [pump.model] table (PumpModel fields)
    start = 2026-01-05T08:00:00        # TOML local date-time = pump clock
    reservoir_ml = 40.0
    concentration_ug_per_ml = 2000
    catheter_volume_ul = 100.0
    program = { kind = "continuous", ug_per_day = 400.0 }

    [[actions]]                        # in time order; `do` is the Pump method's name,
    at = 2026-01-05T10:00:00           # the other keys are its keyword arguments
    do = "bolus"
    dose_ug = 50.0
    duration = "PT30M"                 # durations: ISO 8601 strings, never bare numbers

    [run]
    until = 2026-04-05T00:00:00

The format itself (pydantic models, value types, JSON Schema) is :mod:`itb.scenario.spec`.
Running a scenario builds the pump, then for each action ``advance_to(at)`` and calls the method:
exactly the calls a program would make on :class:`itb.Pump` (all delivery numbers come from the
Rust core). Every problem — TOML syntax, a value out of range, actions out of order, a call the
pump refuses at run time — is a :class:`ScenarioError` naming the file, the entry
(``actions[3]``), the field, the allowed range where known, and the line.

**How lines are found**: TOML syntax errors carry the parser's line. For validation and run-time
errors the text is scanned once for table headers and ``key =`` lines (:mod:`itb.scenario.toml_lines`);
the error gets the line of its key, or of its entry's header when the key is not on a line of its
own (inside an inline table it is the line of the key holding the table). Scenarios built from a
dict have no lines.

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from .._time import duration_ms, from_ms, to_ms
from ..errors import ItbError, ValidationError
from ..pump import Event, Pump
from . import loop, toml_lines, write
from .issues import Issue, ScenarioError
from .loop import PumpTarget, RunTarget, Step
from .spec import (
    _EXACT_MODEL_FIELDS,
    BolusAction,
    CancelBolus,
    PumpSpec,
    ScenarioSpec,
    SetProgram,
    _Action,
)

__all__ = ["Scenario", "ScenarioResult"]


class Scenario:
    """A validated scenario: the pump to build, the actions, the run.

    Build it with :func:`load`, :func:`loads` or :func:`from_dict`. Construction also builds the
    model, the programs and the pump once, so out-of-range values the Rust core rejects are
    reported at load time; calls the pump refuses later are reported by :meth:`run`.
    """

    def __init__(
        self,
        spec: ScenarioSpec,
        source: str = "<scenario>",
        *,
        _lines: dict[Any, int] | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self._lines = _lines or {}
        issues = self._check()
        if issues:
            raise ScenarioError(source, issues)

    # -- checks --
    def _line(self, *path: str | int) -> int | None:
        return toml_lines.line_of(self._lines, path)

    def _check(self) -> list[Issue]:
        issues: list[Issue] = []
        pump = self.spec.pump
        try:
            self.model = pump.build_model()
        except ItbError as exc:
            key = _EXACT_MODEL_FIELDS.get(exc.field, exc.field)
            field = f"model.{key}" if key else "model"
            return [Issue(str(exc), "pump", field, self._line("pump", "model", *key.split(".")))]
        try:
            pump.program.build()
        except ItbError as exc:
            issues.append(
                Issue(
                    str(exc),
                    "pump",
                    f"program.{exc.field}".rstrip("."),
                    self._line("pump", "program"),
                )
            )
        if not issues:
            try:
                self.pump()
            except ItbError as exc:
                if exc.field in PumpSpec.model_fields:
                    path = [exc.field]
                elif exc.field in ("ug_per_day", "program") or exc.field.startswith("steps"):
                    path = ["program"] + ([exc.field] if exc.field != "program" else [])
                else:
                    path = []
                issues.append(
                    Issue(
                        str(exc), "pump", ".".join(path) or exc.field, self._line("pump", *path[:1])
                    )
                )
        previous = pump.start
        names: dict[str, int] = {}
        for i, action in enumerate(self.spec.actions):
            entry = f"actions[{i}]"
            if action.at < previous:
                what = (
                    "the pump's start"
                    if i == 0
                    else f"actions[{i - 1}] ({previous.isoformat(sep=' ')})"
                )
                issues.append(
                    Issue(
                        f"{action.at.isoformat(sep=' ')} is before {what}: actions must be in time order",
                        entry,
                        "at",
                        self._line("actions", i, "at"),
                        allowed=f">= {previous.isoformat(sep=' ')}",
                    )
                )
            previous = max(previous, action.at)
            if (
                isinstance(action, BolusAction)
                and action.start is not None
                and action.start < action.at
            ):
                issues.append(
                    Issue(
                        "a bolus cannot start before the action's time",
                        entry,
                        "start",
                        self._line("actions", i, "start"),
                        allowed=f">= {action.at.isoformat(sep=' ')}",
                    )
                )
            if isinstance(action, SetProgram):
                try:
                    action.program.build()
                except ItbError as exc:
                    issues.append(
                        Issue(
                            str(exc),
                            entry,
                            f"program.{exc.field}".rstrip("."),
                            self._line("actions", i, "program"),
                        )
                    )
            name = getattr(action, "name", None)
            if isinstance(action, CancelBolus):
                if name not in names:
                    known = ", ".join(repr(n) for n in names) or "none so far"
                    issues.append(
                        Issue(
                            f"no earlier bolus is named {name!r}",
                            entry,
                            "name",
                            self._line("actions", i, "name"),
                            allowed=known,
                        )
                    )
            elif name is not None:
                if name in names:
                    issues.append(
                        Issue(
                            f"the name {name!r} is already used by actions[{names[name]}]",
                            entry,
                            "name",
                            self._line("actions", i, "name"),
                            allowed="a new name",
                        )
                    )
                names[name] = i
        until = self.spec.run.until
        if until is not None:
            if until < pump.start:
                issues.append(
                    Issue(
                        "run.until is before the pump's start",
                        "run",
                        "until",
                        self._line("run", "until"),
                        allowed=f">= {pump.start.isoformat(sep=' ')}",
                    )
                )
            late = [i for i, a in enumerate(self.spec.actions) if a.at > until]
            if late:
                i = late[0]
                issues.append(
                    Issue(
                        f"after run.until ({until.isoformat(sep=' ')}): it would never run",
                        f"actions[{i}]",
                        "at",
                        self._line("actions", i, "at"),
                        allowed=f"<= {until.isoformat(sep=' ')}",
                    )
                )
        return issues

    # -- accessors --
    @property
    def start(self) -> datetime:
        """Pump clock at the start."""
        return self.spec.pump.start

    @property
    def until(self) -> datetime:
        """Where a run stops by default: ``[run] until``, else the last action's time, else the start."""
        if self.spec.run.until is not None:
            return self.spec.run.until
        return max((a.at for a in self.spec.actions), default=self.start)

    @property
    def actions(self) -> list[_Action]:
        return list(self.spec.actions)

    def pump(self) -> Pump:
        """A fresh pump as the scenario starts (nothing advanced, no action applied)."""
        p = self.spec.pump
        args: dict[str, Any] = dict(
            now=p.start,
            reservoir_ml=p.reservoir_ml,
            concentration_ug_per_ml=p.concentration_ug_per_ml,
            program=p.program.build(),
            catheter_volume_ul=p.catheter_volume_ul,
            path_primed=p.path_primed,
            stroke_error_ppm=p.stroke_error_ppm,
        )
        if not p.is_reading:
            return Pump(self.model, **args)
        return Pump.from_reading(
            self.model,
            battery_mah=p.battery_mah,
            implanted=p.implanted,
            active_alarms=p.active_alarms or {},
            **args,
        )

    # -- running --
    def run(
        self,
        until: datetime | timedelta | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> ScenarioResult:
        """Build the pump, apply every action at its time, run to ``until`` (a datetime, or a
        timedelta from the start; default :attr:`until`). Actions after ``until`` are not applied.
        ``progress(done_ms, total_ms)`` is called after each step (simulated time).

        Raises :class:`ScenarioError` (naming the entry, field, time and line) when the pump
        refuses an action."""
        stop = self._resolve_until(until)
        pump, events, outcomes = self.execute(stop, progress=progress)
        return ScenarioResult(self, pump, events, outcomes, self.start, stop)

    def stroke_times(self, until: datetime | timedelta | None = None) -> Any:
        """Every stroke time (int64 numpy array of pump-clock ms) of a run with all actions to
        ``until`` (default :attr:`until`): the schedule a test rig must execute, from the core."""
        import numpy as np

        chunks: list[Any] = []
        self.execute(self._resolve_until(until), record=chunks)
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)

    def _resolve_until(self, until: datetime | timedelta | None) -> datetime:
        if until is None:
            return self.until
        if isinstance(until, np.datetime64):
            until = from_ms(to_ms(until, "until"))
        if not isinstance(until, datetime):  # else a duration from the start, by its rule
            until = self.start + timedelta(milliseconds=duration_ms(until, "until"))
        if until < self.start:
            raise ValidationError(
                f"until: {until} is before the scenario's start {self.start}", "until"
            )
        return until

    def steps(
        self,
        until: datetime | timedelta | None = None,
        *,
        samples: Sequence[datetime] = (),
        target: RunTarget | None = None,
    ) -> Iterator[Step]:
        """The run as steps (the one run loop, :func:`itb.scenario.loop.steps`): one
        :class:`~itb.scenario.loop.Step` ``(kind, at, events, index, action, result, pump)`` per
        sample time and action up to ``until`` (default :attr:`until`), then the ``"end"``.
        ``target`` is what the loop drives (default: a :class:`~itb.scenario.loop.PumpTarget`
        around a fresh :meth:`pump`; the testing kit's oracle and rig drivers pass their own).

        Raises :class:`ScenarioError` when the pump refuses an action."""
        stop = self._resolve_until(until)
        return loop.steps(self, stop, target or PumpTarget(self.pump()), samples=samples)

    def execute(
        self,
        until: datetime,
        *,
        samples: Sequence[datetime] = (),
        on_sample: Callable[[Pump], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        record: list[Any] | None = None,
    ) -> tuple[Pump, list[Event], list[Any]]:
        """Run to ``until`` through :meth:`steps` on a fresh pump: returns the pump at the end,
        every event and what each action returned. ``on_sample(pump)`` is called at each sample
        time (before the actions of that instant), ``progress(done_ms, total_ms)`` after each
        step; with ``record``, every advance appends its stroke times (int64 array) to it."""
        target = PumpTarget(self.pump(), record)
        pump = target.pump
        start_ms, until_ms = pump.now_ms, to_ms(until, "until")
        total = max(until_ms - start_ms, 1)
        events: list[Event] = []
        outcomes: list[Any] = []
        for step in loop.steps(self, until, target, samples=samples):
            events += step.events
            if step.kind == "sample" and on_sample is not None:
                on_sample(pump)
            elif step.kind == "action":
                outcomes.append(step.result)
            if progress is not None:
                progress(total if step.kind == "end" else to_ms(step.at, "at") - start_ms, total)
        return pump, events, outcomes

    def dumps(self) -> str:
        """This scenario as TOML text (loads back to an equal scenario)."""
        return write.dumps(self)

    def __repr__(self) -> str:
        return f"<itb.scenario.Scenario {self.source!r}: {len(self.spec.actions)} actions, {self.start} → {self.until}>"


@dataclass
class ScenarioResult:
    """What a run produced: the pump at the end, the events in order, what each action
    returned (bolus ids, ``RefillReport``, ``PatientBolusResult``, ``None``), and totals."""

    scenario: Scenario
    pump: Pump
    events: list[Event]
    outcomes: list[Any]
    start: datetime
    until: datetime

    @property
    def totals(self) -> dict[str, Any]:
        """End-of-run figures in exact and clinical units (all read from the pump)."""
        from ..export import run_totals

        return run_totals(self.pump, self.start, self.events)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"scenario", "events", "totals"}``."""
        from ..export import event_record

        return {
            "scenario": self.scenario.source,
            "events": [event_record(e) for e in self.events],
            "totals": self.totals,
        }

    def events_frame(self) -> Any:
        """The events as a ``pandas.DataFrame`` (``time``, ``kind``, ``severity``, data columns);
        needs pandas (``pip install 'itb-pump[pandas]'``)."""
        from ..export import events_frame

        return events_frame(self.events)

    def timeseries(
        self,
        every: timedelta = timedelta(hours=1),
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """State sampled every ``every`` from the start to the end of this run as a
        ``pandas.DataFrame`` (columns and units: :func:`itb.export.timeseries`); needs pandas."""
        from ..export import timeseries

        return timeseries(self.scenario, every, until=self.until, progress=progress)
