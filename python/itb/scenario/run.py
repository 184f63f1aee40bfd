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

import json
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError as _PydanticError

from .._time import duration_ms, from_ms, to_ms
from ..errors import ItbError, ValidationError
from ..pump import Event, Pump
from . import toml_lines
from .spec import (
    _ADAPTER,
    _EXACT_MODEL_FIELDS,
    _TAGS,
    ACTIONS,
    FAULT_ACTIONS,
    BatterySpec,
    BolusAction,
    CancelBolus,
    ContinuousProgram,
    FlexProgram,
    ModelSpec,
    PumpSpec,
    RunSpec,
    ScenarioSpec,
    SetProgram,
    _Action,
    format_duration,
    json_schema,
    parse_duration,
)

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Issue",
    "ScenarioSpec",
    "load",
    "loads",
    "from_dict",
    "dumps",
    "json_schema",
    "ACTIONS",
    "FAULT_ACTIONS",
    "parse_duration",
    "format_duration",
]

# ----- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One problem in a scenario: where (``entry``, ``field``, ``line``), what, and the allowed
    range when known. ``time`` is set for calls the pump refused at run time."""

    message: str
    entry: str = ""
    field: str = ""
    line: int | None = None
    allowed: str | None = None
    time: datetime | None = None

    def describe(self, source: str) -> str:
        where = source if self.line is None else f"{source}:{self.line}"
        place = ".".join(p for p in (self.entry, self.field) if p)
        when = "" if self.time is None else f" (at {self.time.isoformat(sep=' ')})"
        allowed = (
            ""
            if not self.allowed or self.allowed in self.message
            else f" (allowed: {self.allowed})"
        )
        return f"{where}: {place or 'scenario'}{when}: {self.message}{allowed}"


class ScenarioError(ValidationError):
    """A scenario file is unreadable, malformed, out of range, or asks the pump for something it
    refuses. The message lists every issue as ``file:line: entry.field: message (allowed: …)``;
    the first issue's place is also in ``file``, ``entry``, ``field``, ``line``, ``allowed``,
    ``time``; all of them are in ``issues``. A subclass of :class:`itb.ValidationError`."""

    #: The ``itb`` command line exits with this code on a scenario error (a bad file).
    exit_code = 2

    def __init__(self, source: str, issues: Sequence[Issue]) -> None:
        issues = list(issues) or [Issue("invalid scenario")]
        first = issues[0]
        lines = [i.describe(source) for i in issues]
        more = "" if len(lines) == 1 else f"{len(lines)} problems in {source}:\n  "
        super().__init__(more + "\n  ".join(lines), first.field)
        self.file = source
        self.issues = issues
        self.entry = first.entry
        self.line = first.line
        self.allowed = first.allowed
        self.time = first.time


# ----- loading ------------------------------------------------------------------------------------


def load(path: str | Path) -> Scenario:
    """Read and validate a TOML scenario file; :class:`ScenarioError` names the problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(source, [Issue(f"cannot read the file: {reason}")]) from None
    return loads(text, source=source)


def loads(text: str, source: str = "<string>") -> Scenario:
    """Parse and validate TOML scenario text (``source`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
        if line is None and "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ScenarioError(source, [Issue(f"TOML syntax error: {message}", line=line)]) from None
    return from_dict(data, source=source, text=text)


def from_dict(data: Any, source: str = "<dict>", text: str | None = None) -> Scenario:
    """Validate a scenario given as plain data (what ``tomllib`` returns); ``text`` is the TOML
    it came from, used only to find line numbers."""
    lines = toml_lines.key_lines(text) if text else {}
    try:
        spec = _ADAPTER.validate_python(data)
    except _PydanticError as exc:
        raise ScenarioError(source, [_issue_of(err, lines, data) for err in exc.errors()]) from None
    return Scenario(spec, source=source, _lines=lines)


def _issue_of(err: Any, lines: dict, data: Any) -> Issue:
    # drop the tags pydantic puts into locations of union members (`actions.3.bolus.dose_ug`)
    loc = [p for i, p in enumerate(err["loc"]) if not (i > 0 and p in _TAGS)]
    entry, rest = _split_loc(loc)
    kind, ctx, message = err["type"], err.get("ctx") or {}, err["msg"]
    if kind == "extra_forbidden" and len(loc) == 1:  # an unknown top-level table or key
        entry, rest = "", [str(loc[0])]
    allowed = None
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        if discriminator:
            rest, loc = rest + [discriminator], loc + [discriminator]
        allowed = ctx.get("expected_tags")
        message = "missing" if kind == "union_tag_not_found" else f"{ctx.get('tag')!r} is not known"
        if kind == "union_tag_invalid":
            message += _did_you_mean(str(ctx.get("tag")), str(allowed or ""))
    elif kind == "literal_error":
        allowed = ctx.get("expected")
    elif kind == "extra_forbidden":
        allowed = _known_keys(entry, rest, data)
        message = "unknown key" + _did_you_mean(str(loc[-1]), allowed or "")
    else:
        bounds = [
            f"{sym} {ctx[k]}"
            for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
            if k in ctx
        ]
        if bounds:
            allowed = ", ".join(bounds)
        if kind == "value_error":
            message = message.removeprefix("Value error, ")
    field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in rest).replace(".[", "[")
    return Issue(
        message, entry=entry, field=field, line=toml_lines.line_of(lines, loc), allowed=allowed
    )


def _did_you_mean(name: str, allowed: str) -> str:
    """``; did you mean 'x'?`` for the closest of the allowed names (a comma list), else ''."""
    import difflib

    names = [n.strip().strip("'\"") for n in allowed.split(",") if n.strip()]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _split_loc(loc: list) -> tuple[str, list]:
    if not loc:
        return "", []
    if loc[0] == "actions" and len(loc) > 1 and isinstance(loc[1], int):
        return f"actions[{loc[1]}]", list(loc[2:])
    return str(loc[0]), list(loc[1:])


def _known_keys(entry: str, rest: list, data: Any) -> str | None:
    """The keys an entry accepts (for an "unknown key" message), when simple to tell."""
    cls: Any = None
    if entry == "" and len(rest) <= 1:
        return "pump, actions, run"
    if entry == "run" and len(rest) == 1:
        cls = RunSpec
    elif entry == "pump" and len(rest) >= 2 and rest[0] == "program":
        cls = _program_class(
            data.get("pump", {}).get("program") if isinstance(data.get("pump"), dict) else None
        )
    elif entry == "pump":
        cls = {1: PumpSpec, 2: ModelSpec, 3: BatterySpec}.get(len(rest))
    elif entry.startswith("actions["):
        try:
            action = data["actions"][int(entry[8:-1])]
        except (KeyError, IndexError, TypeError, ValueError):
            action = None
        if isinstance(action, dict) and len(rest) == 1:
            cls = ACTIONS.get(action.get("do"))
        elif isinstance(action, dict) and len(rest) == 2 and rest[0] == "program":
            cls = _program_class(action.get("program"))
    return None if cls is None else ", ".join(cls.model_fields)


def _program_class(program: Any) -> Any:
    """The spec class of a program table by its ``kind`` (None if it cannot be told)."""
    kind = program.get("kind") if isinstance(program, dict) else None
    return {"continuous": ContinuousProgram, "flex": FlexProgram}.get(kind)


# ----- the scenario -------------------------------------------------------------------------------


class Scenario:
    """A validated scenario: the pump to build, the actions, the run.

    Build it with :func:`load`, :func:`loads` or :func:`from_dict`. Construction also builds the
    model, the programs and the pump once, so out-of-range values the Rust core rejects are
    reported at load time; calls the pump refuses later are reported by :meth:`run`.
    """

    def __init__(
        self, spec: ScenarioSpec, source: str = "<scenario>", *, _lines: dict | None = None
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
        args = dict(
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

    def execute(
        self,
        until: datetime,
        *,
        samples: Sequence[datetime] = (),
        on_sample: Callable[[Pump], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        record: list[Any] | None = None,
    ) -> tuple[Pump, list[Event], list[Any]]:
        """The one run loop: advance to each action (and each sample time, where the state
        is observed before the actions of that instant), call it, then advance to ``until``.
        Actions at the same instant are called one after the other with no advance between,
        exactly as a program calling the Pump would. With ``record``, every advance also appends
        its stroke times (an int64 array) to it."""
        pump = self.pump()

        def advance(to_ms_: int) -> list[Event]:
            if record is None:
                return pump.advance_to(to_ms_)
            got, times = pump.advance_recording(to_ms_)
            record.append(times)
            return got

        start_ms, until_ms = pump.now_ms, to_ms(until, "until")
        events: list[Event] = []
        outcomes: list[Any] = []
        ids: dict[str, int | None] = {}
        steps: list[tuple[int, int, Any]] = [(to_ms(t, "sample"), 0, None) for t in samples]
        steps += [
            (to_ms(a.at, "at"), 1, (i, a)) for i, a in enumerate(self.spec.actions) if a.at <= until
        ]
        steps.sort(key=lambda s: (s[0], s[1], s[2][0] if s[2] else 0))
        total = max(until_ms - start_ms, 1)
        for at_ms, is_action, payload in steps:
            if (
                at_ms != pump.now_ms
            ):  # calls at the same instant follow each other with no advance between
                events += advance(at_ms)
            if not is_action:
                if on_sample is not None:
                    on_sample(pump)
            else:
                index, action = payload
                outcomes.append(self._apply(pump, index, action, ids))
            if progress is not None:
                progress(at_ms - start_ms, total)
        events += advance(until_ms)
        if progress is not None:
            progress(total, total)
        return pump, events, outcomes

    def _apply(self, pump: Pump, index: int, action: _Action, ids: dict[str, int | None]) -> Any:
        kwargs = action.kwargs()
        if isinstance(action, CancelBolus):
            bolus_id = ids.get(action.name)
            if bolus_id is None:  # named by a patient bolus that was denied
                raise ScenarioError(
                    self.source,
                    [
                        Issue(
                            f"the bolus named {action.name!r} never started (its activation was denied)",
                            f"actions[{index}]",
                            "name",
                            self._line("actions", index, "name"),
                            time=action.at,
                        )
                    ],
                )
            kwargs = {"bolus_id": bolus_id}
        try:
            outcome = getattr(pump, action.do)(**kwargs)  # type: ignore[attr-defined]
        except ItbError as exc:
            field = exc.field
            if isinstance(action, SetProgram) and (
                field == "ug_per_day" or field.startswith("steps")
            ):
                field = f"program.{field}"  # a key of the action's program table, as at load time
            key = field.split(".")[0] if field.split(".")[0] in type(action).model_fields else ""
            line = self._line("actions", index, key or "do")  # the key, else the call's `do` line
            raise ScenarioError(
                self.source,
                [
                    Issue(
                        f"the pump refused {action.do}: {exc}",
                        f"actions[{index}]",
                        field,
                        line,
                        time=action.at,
                    )
                ],
            ) from exc
        name = getattr(action, "name", None)
        if name is not None and not isinstance(action, CancelBolus):
            ids[name] = getattr(outcome, "bolus_id", outcome)
        return outcome

    # -- writing --
    def dumps(self) -> str:
        """This scenario as TOML text (loads back to an equal scenario)."""
        return dumps(self)

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
        p = self.pump
        return {
            "start": self.start.isoformat(timespec="milliseconds"),
            "end": p.now.isoformat(timespec="milliseconds"),
            "days_simulated": (p.now - self.start) / timedelta(days=1),
            "strokes": p.strokes,
            "pumped_nl": p.pumped_nl,
            "pumped_ml": p.pumped_nl / 1e6,
            "delivered_nl": p.delivered_nl,
            "delivered_ml": p.delivered_nl / 1e6,
            "delivered_pg": p.delivered_pg,
            "delivered_ug": p.delivered_pg / 1e6,
            "reservoir_nl": p.reservoir_nl,
            "reservoir_ml": p.reservoir_nl / 1e6,
            "concentration_ug_per_ml": p.concentration_ug_per_ml,
            "tip_concentration_ug_per_ml": p.tip_concentration_ug_per_ml,
            "reservoir_empty": p.is_empty,
            "battery_remaining_mah": p.battery_remaining_mah,
            "eri": p.is_eri,
            "eos": p.is_eos,
            "alarms": sum(1 for e in self.events if e.severity is not None),
        }

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
        needs pandas (``pip install 'itb[pandas]'``)."""
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


# ----- writing TOML -------------------------------------------------------------------------------


def dumps(scenario: Scenario | ScenarioSpec) -> str:
    """TOML text of a scenario; loading it gives the same scenario."""
    spec = scenario.spec if isinstance(scenario, Scenario) else scenario
    out = ["[pump]"]
    pump = spec.pump.model_dump(exclude_none=True)
    model = pump.pop("model")
    alarms = pump.pop("active_alarms", None)
    if isinstance(model, str):
        out.append(f"model = {_toml(model)}")
    for key, value in pump.items():
        out.append(f"{key} = {_toml(value)}")
    if isinstance(model, dict):
        battery = model.pop("battery", None)
        if isinstance(battery, str):
            model["battery"] = battery
        out += ["", "[pump.model]"] + [f"{k} = {_toml(v)}" for k, v in model.items()]
        if isinstance(battery, dict):
            out += ["", "[pump.model.battery]"] + [f"{k} = {_toml(v)}" for k, v in battery.items()]
    if alarms:
        out += ["", "[pump.active_alarms]"] + [f"{k} = {_toml(v)}" for k, v in alarms.items()]
    for action in spec.actions:
        out += ["", "[[actions]]"]
        data = action.model_dump(exclude_none=True)
        out += [f"at = {_toml(data.pop('at'))}", f"do = {_toml(data.pop('do'))}"]
        out += [f"{k} = {_toml(v)}" for k, v in data.items()]
    if spec.run.until is not None:
        out += ["", "[run]", f"until = {_toml(spec.run.until)}"]
    return "\n".join(out) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, timedelta):
        return f'"{format_duration(value)}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
