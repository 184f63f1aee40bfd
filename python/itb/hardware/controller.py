"""Run a stroke schedule against a rig, crash-safely.

The schedule is the pump-clock time (ms) of every stroke, from the Rust core
(:func:`stroke_schedule` = ``Pump.advance_recording``); stroke ``k`` (1-based) has id ``k``. The
:class:`Controller` writes each DELIVER to the :class:`~itb.hardware.journal.Journal` as an
intent before sending it and its acknowledgement after. On start it asks the rig for its last
executed stroke id, closes every intent left open by a crash as ``reconciled``
(executed / partial / not_executed), and continues after that id. Because the rig executes
only ids after its last one and refuses gaps, a controller killed at any instant resumes with
no stroke lost or doubled.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..errors import ProtocolError, RigError, ValidationError
from ..pump import Pump
from .drivers import PumpDriver, RigStatus
from .journal import Journal
from .protocol import MAX_BATCH

__all__ = ["Controller", "RunReport", "stroke_schedule", "schedule_fingerprint"]

Schedule = Union[np.ndarray, Iterable[int], Callable[[], Iterable[int]]]


def stroke_schedule(pump: Pump, until: Any) -> np.ndarray:
    """Every stroke time (int64 ms, pump clock) of ``pump`` from now to ``until``, computed by
    the Rust core on a copy (``pump`` itself is not advanced)."""
    _, times = pump.copy().advance_recording(until)
    return np.asarray(times, dtype=np.int64)


def schedule_fingerprint(times_ms: np.ndarray) -> str:
    """SHA-256 of the schedule's int64 big-endian bytes: a resumed run must be the same schedule."""
    return hashlib.sha256(np.asarray(times_ms, dtype=">i8").tobytes()).hexdigest()


@dataclass(frozen=True)
class RunReport:
    """What one :meth:`Controller.run` did: strokes in the schedule, the rig's last id when the
    run started (``resumed_from``; 0 on a fresh run) and at the end, strokes this run delivered,
    intents it reconciled, exchanges that failed and were retried, wall seconds taken."""

    strokes: int
    resumed_from: int
    last_stroke_id: int
    delivered: int
    reconciled: int
    retries: int
    elapsed_s: float

    @property
    def complete(self) -> bool:
        return self.last_stroke_id == self.strokes


class Controller:
    """Drive ``driver`` through ``schedule`` (stroke times, int ms; an array, iterable or
    callable returning one), journaling to ``journal``.

    ``speed``: ``None`` = as fast as the rig acknowledges (batches of ``batch`` strokes), else
    pump-clock seconds per wall second (1.0 = real time): stroke ``k`` is due at
    ``anchor + (t_k − start_ms) / 1000 / speed`` (``anchor``: the first run's wall time, kept in
    the journal so a resumed run keeps the same timetable — strokes that fell due while the
    controller was down are sent at once; a run resumed at another speed re-anchors so that its
    next stroke is due at once). ``start_ms``: the schedule's pump-clock origin
    (default: the first stroke's time). ``wall`` (s since epoch) and ``sleep`` are injectable.
    ``retries``: failed exchanges in a row (without progress) tolerated before giving up.
    """

    def __init__(
        self,
        driver: PumpDriver,
        journal: Journal,
        schedule: Schedule,
        *,
        speed: float | None = None,
        start_ms: int | None = None,
        batch: int = 16,
        role: str = "clinician",
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retries: int = 5,
    ) -> None:
        if callable(schedule):
            schedule = schedule()
        times = np.asarray(
            list(schedule) if not isinstance(schedule, np.ndarray) else schedule, dtype=np.int64
        )
        if times.ndim != 1 or (times.size > 1 and bool(np.any(np.diff(times) < 0))):
            raise ValidationError(
                "schedule: stroke times must be a non-decreasing 1-D sequence of ms", "schedule"
            )
        if speed is not None and not (np.isfinite(speed) and speed > 0):
            raise ValidationError(f"speed: {speed!r} must be > 0 (or None for max)", "speed")
        if not 1 <= batch <= MAX_BATCH:
            raise ValidationError(f"batch: {batch} outside 1..{MAX_BATCH}", "batch")
        self.driver = driver
        self.journal = journal
        self.times = times
        self.speed = speed
        self.start_ms = int(times[0]) if start_ms is None and times.size else int(start_ms or 0)
        self.batch = batch
        self.role = role
        self.wall = wall
        self.sleep = sleep
        self.retries = retries
        self._failures = 0
        self._retried = 0

    @classmethod
    def from_pump(
        cls, driver: PumpDriver, journal: Journal, pump: Pump, until: Any, **kwargs: Any
    ) -> Controller:
        """A controller for ``pump``'s strokes from now to ``until`` (the pump itself is not
        advanced); the schedule's origin is the pump's now."""
        kwargs.setdefault("start_ms", pump.now_ms)
        return cls(driver, journal, stroke_schedule(pump, until), **kwargs)

    # ----- helpers ----------------------------------------------------------------------------
    def _with_retries(self, what: Callable[[], Any]) -> Any:
        while True:
            try:
                result = what()
                self._failures = 0
                return result
            except ProtocolError:
                self._failures += 1
                self._retried += 1
                if self._failures > self.retries:
                    raise
                self.sleep(min(0.05 * 2 ** (self._failures - 1), 1.0))

    def _status(self) -> RigStatus:
        return self._with_retries(self.driver.status)  # type: ignore[no-any-return]

    def _reconcile(self, rig_last: int, reason: str) -> int:
        n = 0
        for e in self.journal.open_intents():
            if e.command != "DELIVER" or e.first_id is None or e.count is None:
                self.journal.outcome(e.id, "reconciled", "unknown", reason)
            else:
                last = e.first_id + e.count - 1
                result = (
                    "executed"
                    if rig_last >= last
                    else ("not_executed" if rig_last < e.first_id else "partial")
                )
                self.journal.outcome(
                    e.id, "reconciled", result, f"{reason}; rig last_stroke_id={rig_last}"
                )
            n += 1
        return n

    def _anchor(self, now: float, rig_last: int) -> float:
        """Wall time (s since epoch) at which the schedule's ``start_ms`` is (was) due. Kept in the
        journal; a run resumed at another speed re-anchors so that its next stroke is due now."""
        j = self.journal
        speed = "max" if self.speed is None else repr(float(self.speed))
        anchor_text, old_speed = j.get("anchor_wall"), j.get("speed")
        if anchor_text is not None and old_speed == speed:
            return float(anchor_text)
        anchor = now
        if self.speed is not None and anchor_text is not None and rig_last < self.times.size:
            anchor = now - (int(self.times[rig_last]) - self.start_ms) / 1000.0 / self.speed
        j.set("anchor_wall", repr(anchor))
        j.set("speed", speed)
        if old_speed is not None:
            j.write("note", self.role, "SPEED", result=speed, detail=f"was {old_speed}")
        return anchor

    # ----- run --------------------------------------------------------------------------------
    def run(self, max_strokes: int | None = None) -> RunReport:
        """Deliver the schedule (or at most ``max_strokes`` more strokes) and return a report.
        Raises ``RigError`` if the rig refuses (journaled as ``refused``) or its state does not
        match the journal, ``ProtocolError`` after ``retries`` failed exchanges in a row."""
        t0 = self.wall()
        n = int(self.times.size)
        j = self.journal
        fresh = j.bind("schedule_sha256", schedule_fingerprint(self.times))
        j.bind("strokes", str(n))
        j.bind("start_ms", str(self.start_ms))
        rig_last = self._status().last_stroke_id
        anchor = self._anchor(t0, rig_last)
        if fresh and rig_last > 0:
            raise RigError(
                f"rig_not_fresh: the rig already executed strokes up to id {rig_last}; "
                "start it with a new record file for a new journal",
                "rig_not_fresh",
            )
        if rig_last < j.max_acked_id():
            raise RigError(
                f"rig_behind: the rig reports last stroke {rig_last} but the journal has {j.max_acked_id()} "
                "acknowledged (rig state lost?)",
                "rig_behind",
            )
        if rig_last > n:
            raise RigError(
                f"rig_ahead: the rig executed {rig_last} strokes, the schedule has {n}", "rig_ahead"
            )
        reconciled = self._reconcile(rig_last, "restart")
        if not fresh:
            j.write(
                "note",
                self.role,
                "RESUME_RUN",
                first_id=rig_last + 1,
                result="resumed",
                detail=f"reconciled {reconciled} open intent(s)",
            )
        resumed_from = rig_last
        next_id = rig_last + 1
        stop_id = n if max_strokes is None else min(n, rig_last + max_strokes)
        times = self.times
        stuck = 0  # failed DELIVER exchanges in a row without progress
        while next_id <= stop_id:
            i = next_id - 1
            count = min(self.batch, stop_id - i)
            if self.speed is not None:
                now = self.wall()
                due = anchor + (int(times[i]) - self.start_ms) / 1000.0 / self.speed
                if due > now:
                    self.sleep(min(due - now, 0.5))
                    continue
                limit = self.start_ms + (now - anchor) * 1000.0 * self.speed
                count = max(
                    1, min(count, int(np.searchsorted(times[i : i + count], limit, side="right")))
                )
            batch_times = [int(t) for t in times[i : i + count]]
            iid = j.intent(
                self.role,
                "DELIVER",
                first_id=next_id,
                count=count,
                detail=f"times_ms={batch_times[0]}..{batch_times[-1]}",
            )
            try:
                ack = self.driver.deliver(next_id, count, batch_times)
            except RigError as err:
                j.outcome(iid, "refused", err.field or "refused", str(err))
                raise
            except ProtocolError as err:
                stuck += 1
                self._retried += 1
                if stuck > self.retries:
                    raise  # the intent stays open: the next run reconciles it
                self.sleep(min(0.05 * 2 ** (stuck - 1), 1.0))
                rig_last = self._status().last_stroke_id
                self._reconcile(rig_last, f"after error ({err})")
                if rig_last >= next_id:
                    stuck = 0  # the strokes went through, only the answer was lost
                next_id = rig_last + 1
                continue
            stuck = 0
            if ack.last_stroke_id != next_id + count - 1:
                j.outcome(
                    iid, "error", "unexpected_ack", f"rig last_stroke_id={ack.last_stroke_id}"
                )
                raise RigError(
                    f"unexpected_ack: rig reports last stroke {ack.last_stroke_id}, expected {next_id + count - 1}",
                    "unexpected_ack",
                )
            j.outcome(iid, "ack", "executed", f"executed={ack.executed} duplicate={ack.duplicate}")
            next_id += count
        return RunReport(
            n,
            resumed_from,
            next_id - 1,
            next_id - 1 - resumed_from,
            reconciled,
            self._retried,
            self.wall() - t0,
        )

    def call(self, command: str, fn: Callable[[], Any], role: str | None = None) -> Any:
        """Run one other driver call (``fn``) journaled as ``command`` by ``role``: intent, then
        ``ack`` with the result or ``refused``/``error`` with the reason (re-raised)."""
        role = role or self.role
        iid = self.journal.intent(role, command)
        try:
            result = fn()
        except (RigError, ProtocolError) as err:
            self.journal.outcome(
                iid,
                "refused" if not isinstance(err, ProtocolError) or err.field == "role" else "error",
                err.field or "refused",
                str(err),
            )
            raise
        self.journal.outcome(iid, "ack", "ok", "" if result is None else str(result))
        return result
