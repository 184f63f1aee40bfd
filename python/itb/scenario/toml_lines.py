"""Where is it in the file? A light line scan of TOML text for error messages.

``tomllib`` gives line numbers only for syntax errors; after parsing, a validation error knows
its place as a path (``("actions", 3, "dose_ug")``) but not its line. :func:`key_lines` scans
the text once and maps each table header and each ``key =`` line to its 1-based line number:

- ``[a.b]`` maps ``("a", "b")``; the n-th ``[[a]]`` maps ``("a", n)`` (0-based, like the parsed
  list), and headers below it (``[a.c]``) map under that entry: ``("a", n, "c")``;
- ``key = …`` at the start of a line maps ``(<current table>, key)``; dotted keys are split;
- lines inside a multi-line array or inline table (bracket depth > 0) and inside multi-line
  strings are skipped: a key inside an inline table maps to the line of the key holding it.

It is not a TOML parser: it runs only on text that ``tomllib`` already accepted, and
:func:`line_of` falls back to the longest known prefix of a path (the entry's header).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["key_lines", "line_of"]

Path = tuple[str | int, ...]

_HEADER = re.compile(r"\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_PART = re.compile(r"[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'")


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(p[1:-1] if p[0] in "\"'" else p for p in _PART.findall(text))


def _depth_change(line: str) -> tuple[int, bool]:
    """Net change of bracket depth on a line (outside strings and comments), and whether a
    multi-line string opens (odd number of triple quotes) on it."""
    depth, i, n = 0, 0, len(line)
    while i < n:
        c = line[i]
        if c == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            quote = line[i : i + 3]
            end = line.find(quote, i + 3)
            if end < 0:
                return depth, True
            i = end + 3
            continue
        if c in "\"'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if (c == '"' and line[j] == "\\") else 1
            i = j + 1
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return depth, False


def key_lines(text: str) -> dict[Path, int]:
    """Map table headers and ``key =`` lines of TOML ``text`` to 1-based line numbers."""
    lines: dict[Path, int] = {}
    arrays: dict[tuple[str, ...], int] = {}  # [[name]] -> count seen so far
    table: Path = ()
    depth = 0
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if in_string in line:
                in_string = None
            continue
        if depth == 0:
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                names = _split_key(header.group(2))
                if header.group(1) == "[[":
                    arrays[names] = arrays.get(names, 0) + 1
                table = _expand(names, arrays)
                lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = table + _split_key(key.group(1))
                lines.setdefault(path, number)
        change, opens = _depth_change(line)
        depth = max(0, depth + change)
        if opens:
            in_string = '"""' if line.count('"""') % 2 else "'''"
    return lines


def _expand(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> Path:
    """Insert the current index after every array-of-tables prefix of a header's names."""
    out: list[str | int] = []
    for i, name in enumerate(names):
        out.append(name)
        count = arrays.get(names[: i + 1])
        if count:
            out.append(count - 1)
    return tuple(out)


def line_of(lines: dict[Path, int], path: Sequence[str | int]) -> int | None:
    """Line of ``path`` or of its longest known prefix (None if nothing matches)."""
    path = tuple(path)
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None
