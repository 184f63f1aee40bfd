"""Scenario problems: :class:`Issue` (where, what, the allowed range) and :class:`ScenarioError`,
and the translation of pydantic's validation errors into issues naming the file's entries,
fields and lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import ValidationError
from . import toml_lines
from .spec import (
    _TAGS,
    ACTIONS,
    BatterySpec,
    ContinuousProgram,
    FlexProgram,
    ModelSpec,
    PumpSpec,
    RunSpec,
)

__all__ = ["Issue", "ScenarioError", "issue_of"]


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


def issue_of(err: Any, lines: dict[Any, int], data: Any) -> Issue:
    """The :class:`Issue` of one pydantic error ``err`` (``lines``: key lines of the text)."""
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


def _split_loc(loc: list[Any]) -> tuple[str, list[Any]]:
    if not loc:
        return "", []
    if loc[0] == "actions" and len(loc) > 1 and isinstance(loc[1], int):
        return f"actions[{loc[1]}]", list(loc[2:])
    return str(loc[0]), list(loc[1:])


def _known_keys(entry: str, rest: list[Any], data: Any) -> str | None:
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
            cls = ACTIONS.get(str(action.get("do")))
        elif isinstance(action, dict) and len(rest) == 2 and rest[0] == "program":
            cls = _program_class(action.get("program"))
    return None if cls is None else ", ".join(cls.model_fields)


def _program_class(program: Any) -> Any:
    """The spec class of a program table by its ``kind`` (None if it cannot be told)."""
    kind = program.get("kind") if isinstance(program, dict) else None
    return {"continuous": ContinuousProgram, "flex": FlexProgram}.get(str(kind))
