"""Loading scenarios: a TOML file (:func:`load`), TOML text (:func:`loads`) or the same schema
as plain data, e.g. parsed JSON (:func:`from_dict`). Every problem is a :class:`ScenarioError`
naming the file, entry, field and line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError as _PydanticError

from . import toml_lines
from .issues import Issue, ScenarioError, issue_of
from .run import Scenario
from .spec import _ADAPTER

__all__ = ["load", "loads", "from_dict"]


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
        raise ScenarioError(source, [issue_of(err, lines, data) for err in exc.errors()]) from None
    return Scenario(spec, source=source, _lines=lines)
