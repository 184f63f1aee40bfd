"""The controller's journal: an append-only SQLite file in WAL mode (stdlib ``sqlite3``).

Each command is written as an ``intent`` row *before* it is sent, and its outcome (``ack``,
``refused``, ``error``, or ``reconciled`` after a restart) as a row referring to it *after*. An
intent with no outcome row is what a crash left in doubt; :meth:`Journal.open_intents` lists them.
Rows also carry the wall time (UTC, s since the epoch), the role and a result text: the audit
trail exported by ``itb rig journal FILE --csv``.

Durability: ``synchronous=NORMAL`` in WAL mode survives the controller being killed at any
instant (a process crash loses nothing committed); pass ``durable=True`` for ``FULL`` (also
survives power loss, one fsync per commit).

A journal cannot be fooled (docs: decisions/rig.md#the-journal-is-ours-and-single-writer): our
files carry ``PRAGMA application_id`` :data:`APPLICATION_ID` and ``user_version``
:data:`SCHEMA_VERSION`; opening another SQLite database, a file that is not SQLite, or a file
that fails ``PRAGMA quick_check`` is refused (``ValidationError`` naming the file) with the file
untouched; a writer holds an exclusive lock (``J.lock``, ``flock``) that a second writer is
refused by; ``readonly=True`` opens for reading without the lock.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError

__all__ = ["Journal", "Entry", "COLUMNS", "APPLICATION_ID", "SCHEMA_VERSION"]

#: ``PRAGMA application_id`` of an itb rig journal ("ITBJ")
APPLICATION_ID = 0x4954424A
#: ``PRAGMA user_version`` of the schema below
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

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
        readonly: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.wall = wall
        self.readonly = readonly
        self._lock_fd: int | None = None
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if new and readonly:
            raise ValidationError(f"journal: {self.path} does not exist", "journal")
        if not new:
            self._check_header()
        if not readonly:
            self._take_lock()
            if new:
                self._create()
                new = False
        try:
            if readonly:
                uri = "file:" + os.path.abspath(self.path) + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10.0)
            else:
                self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self._check_ours()
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            self._release_lock()
            raise ValidationError(
                f"journal: {self.path} is not a readable itb journal ({err})", "journal"
            ) from None
        except ValidationError:
            self._release_lock()
            raise

    def _create(self) -> None:
        """Build a new journal next to ``path`` and rename it into place, so that a controller
        killed while creating it never leaves a half-made journal (which would be refused)."""
        tmp = f"{self.path}.new-{os.getpid()}"
        try:
            for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.executescript(_SCHEMA)
                db.execute("PRAGMA journal_mode=WAL")
            finally:
                db.close()
            os.replace(tmp, self.path)
        except (OSError, sqlite3.DatabaseError) as err:
            self._release_lock()
            raise ValidationError(f"journal: cannot create {self.path}: {err}", "journal") from None

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as f:
                magic = f.read(len(_SQLITE_MAGIC))
        except OSError as err:
            raise ValidationError(
                f"journal: cannot read {self.path}: {err.strerror}", "journal"
            ) from None
        if magic != _SQLITE_MAGIC:
            raise ValidationError(
                f"journal: {self.path} is not an itb journal (not an SQLite file); not touched",
                "journal",
            )

    def _check_ours(self) -> None:
        app = self.db.execute("PRAGMA application_id").fetchone()[0]
        if app != APPLICATION_ID:
            raise ValidationError(
                f"journal: {self.path} is not an itb journal (SQLite application_id "
                f"0x{app:08x}, expected 0x{APPLICATION_ID:08x}); not touched",
                "journal",
            )
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise ValidationError(
                f"journal: {self.path} has schema version {version}, this itb reads "
                f"{SCHEMA_VERSION}; not touched",
                "journal",
            )
        problems = [r[0] for r in self.db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise ValidationError(
                f"journal: {self.path} is corrupt (integrity check: {'; '.join(problems[:3])})",
                "journal",
            )

    def _take_lock(self) -> None:
        """One writer at a time: an exclusive ``flock`` on ``J.lock`` held while open."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ValidationError(
                f"journal: cannot open the lock file {lock_path}: {err.strerror}", "journal"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = ""
            try:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            except OSError:  # pragma: no cover
                pass
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValidationError(
                    f"journal: {self.path} is in use by another controller"
                    + (f" (pid {holder})" if holder else "")
                    + "; one writer at a time",
                    "journal",
                ) from None
            raise ValidationError(  # pragma: no cover
                f"journal: cannot lock {lock_path}: {err.strerror}", "journal"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    # ----- meta -------------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def check_binding(self, key: str, value: str) -> bool:
        """Whether ``key`` is still unbound (True) or bound to ``value`` (False); writes nothing.
        ``ValidationError`` naming the key if it is bound to another value."""
        old = self.get(key)
        if old is None:
            return True
        if old != value:
            raise ValidationError(
                f"journal: {key} is {old!r} in {self.path}, not {value!r} (another run's journal?)",
                "journal",
            )
        return False

    def bind(self, key: str, value: str) -> bool:
        """Store ``value`` under ``key`` if absent (returns True), else check it is the same
        (``ValidationError`` naming the key if not). Used to refuse resuming another scenario;
        call it only after every other check of a run has passed."""
        unbound = self.check_binding(key, value)
        if unbound:
            self.set(key, value)
        return unbound

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

    def outcome(
        self,
        intent_id: int,
        kind: str,
        result: str,
        detail: str = "",
        *,
        first_id: int | None = None,
        count: int | None = None,
    ) -> int:
        """Record what became of intent ``intent_id`` (``ack``, ``refused``, ``error``,
        ``reconciled``). ``first_id``/``count`` (default: the intent's) are the strokes this
        outcome says were executed, for an ack of a partly re-sent batch or a partial
        reconciliation."""
        role, command, first_id_, count_ = self.db.execute(
            "SELECT role, command, first_id, count FROM entries WHERE id=?", (intent_id,)
        ).fetchone()
        first_id = first_id_ if first_id is None else first_id
        count = count_ if count is None else count
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
        """Largest stroke id the journal knows executed (acks, reconciliations, gap notes; 0: none)."""
        row = self.db.execute(
            "SELECT MAX(first_id + count - 1) FROM entries WHERE first_id IS NOT NULL AND count > 0 AND "
            "((kind IN ('ack','reconciled') AND command='DELIVER' AND result IN ('executed','partial')) "
            "OR (kind='note' AND command='GAP'))"
        ).fetchone()
        return int(row[0] or 0)

    def executed_ranges(self) -> list[tuple[int, int, int, str]]:
        """(first id, count, row id, kind) of every row saying strokes were executed: acks and
        reconciliations (``executed``/``partial``) of DELIVERs and ``GAP`` notes (strokes the
        rig executed with no journal row), in row order. ``itb rig verify`` checks that they
        cover every executed id exactly once."""
        rows = self.db.execute(
            "SELECT first_id, count, id, kind FROM entries WHERE first_id IS NOT NULL AND count > 0 AND "
            "((kind IN ('ack','reconciled') AND command='DELIVER' AND result IN ('executed','partial')) "
            "OR (kind='note' AND command='GAP')) ORDER BY id"
        ).fetchall()
        return [(int(a), int(b), int(c), str(d)) for a, b, c, d in rows]

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
        self._release_lock()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
