"""The controller's journal: an append-only SQLite file in WAL mode (stdlib ``sqlite3``).

Each command is written as an ``intent`` row *before* it is sent, and its outcome (``ack``,
``refused``, ``error``, or ``reconciled`` after a restart) as a row referring to it *after*. An
intent with no outcome row is what a crash left in doubt; :meth:`Journal.open_intents` lists them.
Rows also carry the wall time (UTC, s since the epoch), the role and a result text: the audit
trail exported by ``itb rig journal FILE --csv``.

Durability: ``synchronous=NORMAL`` in WAL mode survives the controller being killed at any
instant (a process crash loses nothing committed); pass ``durable=True`` for ``FULL`` (also
survives power loss, one fsync per commit).
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError

__all__ = ["Journal", "Entry", "COLUMNS"]

COLUMNS = (
    "id",
    "wall_time_utc",
    "kind",
    "role",
    "command",
    "first_id",
    "count",
    "ref",
    "result",
    "detail",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    wall_time REAL NOT NULL,          -- s since 1970-01-01 UTC
    kind TEXT NOT NULL,               -- intent | ack | refused | error | reconciled | note
    role TEXT NOT NULL,               -- clinician | patient
    command TEXT NOT NULL,            -- DELIVER, STATUS, ...
    first_id INTEGER,                 -- first stroke id of a DELIVER
    count INTEGER,                    -- strokes in it
    ref INTEGER REFERENCES entries(id), -- the intent an outcome answers
    result TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS entries_ref ON entries(ref);
"""


@dataclass(frozen=True)
class Entry:
    """One journal row (``wall_time`` in s since the epoch, UTC)."""

    id: int
    wall_time: float
    kind: str
    role: str
    command: str
    first_id: int | None
    count: int | None
    ref: int | None
    result: str
    detail: str

    def row(self) -> tuple[Any, ...]:
        iso = datetime.fromtimestamp(self.wall_time, UTC).isoformat(timespec="milliseconds")
        return (
            self.id,
            iso,
            self.kind,
            self.role,
            self.command,
            self.first_id,
            self.count,
            self.ref,
            self.result,
            self.detail,
        )


class Journal:
    """Open (or create) the journal at ``path``. ``wall`` returns s since the epoch (injectable)."""

    def __init__(
        self,
        path: os.PathLike[str] | str,
        *,
        durable: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = os.fspath(path)
        self.wall = wall
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise ValidationError(
                f"journal: {self.path} is not an itb journal ({err})", "journal"
            ) from None

    # ----- meta -------------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def bind(self, key: str, value: str) -> bool:
        """Store ``value`` under ``key`` if absent (returns True), else check it is the same
        (``ValidationError`` naming the key if not). Used to refuse resuming another scenario."""
        old = self.get(key)
        if old is None:
            self.set(key, value)
            return True
        if old != value:
            raise ValidationError(
                f"journal: {key} is {old!r} in {self.path}, not {value!r} (another run's journal?)",
                "journal",
            )
        return False

    # ----- rows -------------------------------------------------------------------------------
    def write(
        self,
        kind: str,
        role: str,
        command: str,
        *,
        first_id: int | None = None,
        count: int | None = None,
        ref: int | None = None,
        result: str = "",
        detail: str = "",
    ) -> int:
        """Append a row (committed before returning); returns its id."""
        cur = self.db.execute(
            "INSERT INTO entries(wall_time, kind, role, command, first_id, count, ref, result, detail) VALUES (?,?,?,?,?,?,?,?,?)",
            (self.wall(), kind, role, command, first_id, count, ref, result, detail),
        )
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def intent(
        self,
        role: str,
        command: str,
        *,
        first_id: int | None = None,
        count: int | None = None,
        detail: str = "",
    ) -> int:
        return self.write("intent", role, command, first_id=first_id, count=count, detail=detail)

    def outcome(self, intent_id: int, kind: str, result: str, detail: str = "") -> int:
        """Record what became of intent ``intent_id`` (``ack``, ``refused``, ``error``, ``reconciled``)."""
        role, command, first_id, count = self.db.execute(
            "SELECT role, command, first_id, count FROM entries WHERE id=?", (intent_id,)
        ).fetchone()
        return self.write(
            kind,
            role,
            command,
            first_id=first_id,
            count=count,
            ref=intent_id,
            result=result,
            detail=detail,
        )

    def open_intents(self) -> list[Entry]:
        """Intents with no outcome row: sent or not, the journal cannot tell."""
        rows = self.db.execute(
            "SELECT * FROM entries i WHERE kind='intent' AND NOT EXISTS (SELECT 1 FROM entries o WHERE o.ref=i.id) ORDER BY id"
        ).fetchall()
        return [Entry(*r) for r in rows]

    def max_acked_id(self) -> int:
        """Largest stroke id the rig acknowledged (0: none)."""
        row = self.db.execute(
            "SELECT MAX(first_id + count - 1) FROM entries WHERE kind IN ('ack','reconciled') AND command='DELIVER' AND result='executed'"
        ).fetchone()
        return int(row[0] or 0)

    def entries(self) -> Iterator[Entry]:
        for r in self.db.execute("SELECT * FROM entries ORDER BY id"):
            yield Entry(*r)

    def to_csv(self) -> str:
        """Every row as CSV (header :data:`COLUMNS`, wall time as ISO 8601 UTC)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(COLUMNS)
        for e in self.entries():
            w.writerow(e.row())
        return out.getvalue()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
