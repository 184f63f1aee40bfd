"""Run a stroke schedule against a rig, crash-safely.

The schedule is the pump-clock time (ms) of every stroke, from the Rust core
(:func:`stroke_schedule` = ``Pump.advance_recording``); stroke ``k`` (1-based) has id ``k``. The
:class:`Controller` writes each DELIVER to the :class:`~itb.hardware.journal.Journal` as an
intent before sending it and its acknowledgement after. On start it asks the rig for its last
executed stroke id, closes every intent left open by a crash as ``reconciled``
(executed / partial / not_executed), and continues after that id. Because the rig executes
only ids after its last one and refuses gaps, a controller killed at any instant resumes with
no stroke lost or doubled.

A :class:`~itb.hardware.plan.RigPlan` (``itb rig run`` builds one from a scenario with
:func:`~itb.hardware.plan.plan_scenario`) also carries the scenario's actions as rig commands
at their places between strokes; each is journaled (intent, then ack/refused) and re-sent after
a crash only if the journal has no ack for it (the rig's commands are idempotent, a scheduled
patient press carries its step id). Every run starts with ``THERAPY`` (concentration, pump
clock, speed) so that the rig converts patient doses and runs its lockouts in pump time.

Pacing (docs: decisions/rig.md#pacing-follows-a-monotonic-clock): in real or accelerated time
the strokes are due on a **monotonic** clock; the wall clock only anchors a journal across host
boots. The journal keeps the boot id and the monotonic anchor, so a controller restarted on the
same boot measures its downtime on the monotonic clock and a wall-clock step while it was down
neither bursts nor stalls the schedule. Strokes that fell due during real downtime are caught up
no faster than the model's maximum rate. A link that fails is reconnected with bounded backoff
(``backoff``: 0.05 s doubling to 2 s, ``retries`` failures in a row without progress), journaled.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .._limits import MAX_RIG_SPEED, MIN_RIG_SPEED
from ..errors import ProtocolError, RigError, ValidationError
from ..pump import Pump
from .client import PumpDriver, RigStatus
from .journal import Journal
from .plan import RigPlan, RigStep, min_stroke_interval_ms, plan_schedule
from .protocol import MAX_BATCH

__all__ = [
    "Controller",
    "RunReport",
    "stroke_schedule",
    "schedule_fingerprint",
    "boot_id",
    "BACKOFF_MAX_S",
    "MIN_SPEED",
    "MAX_SPEED",
    "check_speed",
]

Schedule = Union[RigPlan, np.ndarray, Iterable[int], Callable[[], Iterable[int]]]

#: longest wait between reconnection attempts (s); the first waits 0.05 s, each next doubles
BACKOFF_MAX_S = 2.0
#: while waiting for a stroke, the link is kept alive with a STATUS this often (s)
KEEPALIVE_S = 10.0


def boot_id() -> str:
    """An id of this host boot (Linux: ``/proc/sys/kernel/random/boot_id``; elsewhere the
    boot time as the wall clock minus the monotonic clock, to the minute)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:  # pragma: no cover - not Linux
        return f"boot@{int((time.time() - time.monotonic()) // 60)}"


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
    steps: int = 0
    gap: int = 0

    @property
    def complete(self) -> bool:
        return self.last_stroke_id == self.strokes


#: The ``speed`` range the rig can carry (THERAPY's u32 of pump ms per 1000 ms).
MIN_SPEED = MIN_RIG_SPEED
MAX_SPEED = MAX_RIG_SPEED


def check_speed(speed: object) -> float | None:
    """``speed`` as a float (``None``: as fast as the rig acknowledges), else
    :class:`~itb.errors.ValidationError` naming ``speed`` and the range
    :data:`MIN_SPEED` … :data:`MAX_SPEED` (pump-clock seconds per wall second)."""
    if speed is None:
        return None
    ok = isinstance(speed, (int, float)) and not isinstance(speed, bool)
    if not ok or not MIN_SPEED <= float(speed) <= MAX_SPEED:  # type: ignore[arg-type]
        raise ValidationError(
            f"speed: {speed!r} is not between {MIN_SPEED:g} and {MAX_SPEED:.3f} pump-clock "
            "seconds per wall second (None: as fast as the rig acknowledges)",
            "speed",
        )
    return float(speed)  # type: ignore[arg-type]


class Controller:
    """Drive ``driver`` through ``schedule`` (a :class:`~itb.hardware.plan.RigPlan`, or stroke
    times in int ms: an array, iterable or callable returning one), journaling to ``journal``.

    ``speed``: ``None`` = as fast as the rig acknowledges (batches of ``batch`` strokes), else
    pump-clock seconds per wall second (1.0 = real time): stroke ``k`` is due at
    ``anchor + (t_k − start_ms) / 1000 / speed`` on the monotonic ``clock``. ``start_ms``: the
    schedule's pump-clock origin (default: the plan's, else the first stroke's time).
    ``min_interval_ms``: the shortest pump-time spacing of strokes caught up after downtime
    (default: the plan's, from the model's maximum rate; 0 = at once). ``wall`` (s since
    epoch), ``clock`` (monotonic s), ``sleep`` and ``boot`` are injectable. ``retries``: failed
    exchanges in a row (without progress) tolerated before giving up, each followed by a
    reconnecting backoff.
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        boot: Callable[[], str] = boot_id,
        retries: int = 12,
        min_interval_ms: int | None = None,
    ) -> None:
        if callable(schedule):
            schedule = schedule()
        if isinstance(schedule, RigPlan):
            plan = schedule
        else:
            times = np.asarray(list(schedule) if not isinstance(schedule, np.ndarray) else schedule)
            if times.ndim != 1 or (times.size and not np.issubdtype(times.dtype, np.integer)):
                raise ValidationError(
                    "schedule: stroke times must be a 1-D sequence of int ms", "schedule"
                )
            times = times.astype(np.int64)
            origin = int(times[0]) if start_ms is None and times.size else int(start_ms or 0)
            plan = plan_schedule(times, origin)
        times = plan.times
        if times.ndim != 1 or (times.size > 1 and bool(np.any(np.diff(times) < 0))):
            raise ValidationError(
                "schedule: stroke times must be a non-decreasing 1-D sequence of ms", "schedule"
            )
        speed = check_speed(speed)
        if not 1 <= batch <= MAX_BATCH:
            raise ValidationError(
                f"batch: {batch} is not between 1 and {MAX_BATCH} strokes", "batch"
            )
        self.driver = driver
        self.journal = journal
        self.plan = plan
        self.times = times
        self.speed = speed
        self.start_ms = plan.start_ms if start_ms is None else int(start_ms)
        self.batch = batch
        self.role = role
        self.wall = wall
        self.clock = clock
        self.sleep = sleep
        self.boot = boot
        self.retries = retries
        self.min_interval_ms = (
            int(getattr(plan, "min_interval_ms", 0) or 0)
            if min_interval_ms is None
            else int(min_interval_ms)
        )
        self._failures = 0
        self._retried = 0
        self._last_exchange = clock()

    @classmethod
    def from_pump(
        cls, driver: PumpDriver, journal: Journal, pump: Pump, until: Any, **kwargs: Any
    ) -> Controller:
        """A controller for ``pump``'s strokes from now to ``until`` (the pump itself is not
        advanced); the schedule's origin is the pump's now."""
        kwargs.setdefault("start_ms", pump.now_ms)
        kwargs.setdefault("min_interval_ms", min_stroke_interval_ms(pump.model))
        return cls(driver, journal, stroke_schedule(pump, until), **kwargs)

    # ----- helpers ----------------------------------------------------------------------------
    def _backoff(self, failures: int, err: Exception) -> None:
        """Wait before the next attempt (0.05 s doubling to BACKOFF_MAX_S) and journal the first
        failure of an outage."""
        if failures == 1:
            self.journal.write(
                "note", self.role, "LINK", result="lost", detail=f"{err}; reconnecting"
            )
        self.sleep(min(0.05 * 2 ** (failures - 1), BACKOFF_MAX_S))

    def _link_back(self, failures: int) -> None:
        if failures:
            self.journal.write(
                "note", self.role, "LINK", result="back", detail=f"after {failures} failure(s)"
            )

    def _with_retries(self, what: Callable[[], Any]) -> Any:
        while True:
            try:
                result = what()
                self._link_back(self._failures)
                self._failures = 0
                self._last_exchange = self.clock()
                return result
            except ProtocolError as err:
                self._failures += 1
                self._retried += 1
                if self._failures > self.retries:
                    raise
                self._backoff(self._failures, err)

    def _status(self) -> RigStatus:
        return self._with_retries(self.driver.status)  # type: ignore[no-any-return]

    def _reconcile(self, rig_last: int, reason: str) -> int:
        n = 0
        for e in self.journal.open_intents():
            if e.command != "DELIVER" or e.first_id is None or e.count is None:
                self.journal.outcome(e.id, "reconciled", "unknown", reason)
            else:
                last = e.first_id + e.count - 1
                if rig_last >= last:
                    result, count = "executed", e.count
                elif rig_last < e.first_id:
                    result, count = "not_executed", 0
                else:
                    result, count = "partial", rig_last - e.first_id + 1
                self.journal.outcome(
                    e.id,
                    "reconciled",
                    result,
                    f"{reason}; rig last_stroke_id={rig_last}",
                    count=count,
                )
            n += 1
        return n

    def _speed_text(self) -> str:
        return "max" if self.speed is None else repr(float(self.speed))

    def _anchor(self, rig_last: int) -> float:
        """Monotonic time at which the schedule's ``start_ms`` is (was) due.

        The journal keeps the wall and monotonic anchors with the boot id. Same boot, same
        speed: the monotonic anchor as kept (downtime measured on the monotonic clock). Another
        boot: the monotonic clock restarted, so the downtime is measured on the wall clock once.
        Another speed: re-anchored so that the next stroke is due now."""
        j = self.journal
        now_mono, now_wall, boot = self.clock(), self.wall(), self.boot()
        speed = self._speed_text()
        old_speed = j.get("speed")
        anchor_wall, anchor_mono, old_boot = (
            j.get("anchor_wall"),
            j.get("anchor_mono"),
            j.get("boot_id"),
        )
        if old_speed == speed and anchor_wall is not None:
            if old_boot == boot and anchor_mono is not None:
                return float(anchor_mono)
            anchor = now_mono - (now_wall - float(anchor_wall))
            j.write("note", self.role, "BOOT", result=boot, detail=f"was {old_boot}")
        else:
            anchor = now_mono
            if self.speed is not None and anchor_wall is not None and rig_last < self.times.size:
                anchor = (
                    now_mono - (int(self.times[rig_last]) - self.start_ms) / 1000.0 / self.speed
                )
            if old_speed is not None:
                j.write("note", self.role, "SPEED", result=speed, detail=f"was {old_speed}")
        j.set("anchor_mono", repr(anchor))
        j.set("anchor_wall", repr(now_wall - (now_mono - anchor)))
        j.set("boot_id", boot)
        j.set("speed", speed)
        return anchor

    def _due(self, anchor: float, t_ms: int) -> float:
        assert self.speed is not None
        return anchor + (int(t_ms) - self.start_ms) / 1000.0 / self.speed

    def _wait_until(self, due: float) -> bool:
        """Sleep towards ``due`` (monotonic s) in slices of at most 0.5 s, keeping the link
        alive; True when it is due."""
        now = self.clock()
        if due <= now:
            return True
        if now - self._last_exchange > KEEPALIVE_S:
            self._status()
        self.sleep(min(due - now, 0.5))
        return False

    def _acked_steps(self) -> set[int]:
        done = set()
        for e in self.journal.entries():
            if e.kind in ("ack", "note") and e.detail.startswith("step="):
                done.add(int(e.detail.split()[0][5:]))
        return done

    def _run_step(self, step: RigStep) -> None:
        j = self.journal
        if not step.command:
            j.write(
                "note",
                self.role,
                step.do.upper(),
                first_id=None,
                result="schedule",
                detail=f"step={step.step} at_ms={step.at_ms}: carried by the stroke schedule",
            )
            return
        iid = j.intent(self.role, step.command, detail=f"step={step.step} at_ms={step.at_ms}")
        call = self._step_call(step)
        while True:
            try:
                result = call()
                break
            except RigError as err:
                j.outcome(iid, "refused", err.field or "refused", f"step={step.step} {err}")
                raise
            except ProtocolError as err:
                self._failures += 1
                self._retried += 1
                if self._failures > self.retries:
                    raise  # the intent stays open; the next run re-sends the step
                self._backoff(self._failures, err)
        self._link_back(self._failures)
        self._failures = 0
        self._last_exchange = self.clock()
        if step.command == "PATIENT_BOLUS" and bool(result.get("granted")) != bool(
            step.expect.get("granted")
        ):
            detail = (
                f"step={step.step} rig {'granted' if result.get('granted') else 'denied'} "
                f"({result.get('reason')}), the scenario {step.expect.get('reason')}"
            )
            j.outcome(iid, "error", "patient_bolus_mismatch", detail)
            raise RigError(
                f"patient_bolus_mismatch: step {step.step} at {step.at_ms} ms: {detail[len(f'step={step.step} ') :]}",
                "patient_bolus_mismatch",
            )
        j.outcome(iid, "ack", "ok", f"step={step.step} " + json.dumps(result, sort_keys=True))

    def _step_call(self, step: RigStep) -> Callable[[], Any]:
        d: Any = self.driver
        a = step.args
        if step.command == "SET_LIMITS":
            return lambda: d.set_patient_limits(
                a["dose_ng"], a["duration_ms"], a["lockout_ms"], a["max_per_24h"]
            )
        if step.command == "PATIENT_BOLUS":
            return lambda: d.scheduled_patient_bolus(step.step, step.at_ms)
        if step.command == "REFILL":
            return lambda: d.refill(a["added_nl"], a["concentration_ug_per_ml"])
        if step.command == "STOP":
            return lambda: d.stop() or {}
        if step.command == "RESUME":
            return lambda: d.resume() or {}
        raise ValidationError(f"plan: unknown rig command {step.command!r}", "plan")

    def _therapy(self, rig_last: int, *, done: bool = False) -> None:
        """Tell the rig the therapy: concentration in force, pump clock, speed (the run's; real
        time once the run is complete)."""
        therapy = getattr(self.driver, "set_therapy", None)
        if therapy is None:
            return
        clock_ms = int(self.times[rig_last - 1]) if rig_last else self.start_ms
        past = [s.at_ms for s in self.plan.steps if s.after < rig_last or done]
        clock_ms = max([clock_ms, *past])
        speed_milli = 0 if self.speed is None else int(round(self.speed * 1000))
        if done:
            speed_milli = 1000
        conc = self.plan.concentration_after(rig_last)
        self.call_with_retries(
            "THERAPY",
            lambda: therapy(conc, clock_ms, speed_milli),
            f"concentration={conc} clock_ms={clock_ms} speed_milli={speed_milli}",
        )

    def call_with_retries(self, command: str, fn: Callable[[], Any], detail: str = "") -> Any:
        iid = self.journal.intent(self.role, command, detail=detail)
        try:
            result = self._with_retries(fn)
        except RigError as err:
            self.journal.outcome(iid, "refused", err.field or "refused", str(err))
            raise
        self.journal.outcome(iid, "ack", "ok", json.dumps(result, sort_keys=True, default=str))
        return result

    # ----- run --------------------------------------------------------------------------------
    def run(self, max_strokes: int | None = None) -> RunReport:
        """Deliver the schedule (or at most ``max_strokes`` more strokes) and return a report.
        Raises ``RigError`` if the rig refuses (journaled as ``refused``) or its state does not
        match the journal, ``ProtocolError`` after ``retries`` failed exchanges in a row.
        Nothing is written to the journal before every check has passed."""
        t0 = self.wall()
        n = int(self.times.size)
        j = self.journal
        fingerprint = self.plan.fingerprint()
        fresh = j.check_binding("schedule_sha256", fingerprint)
        j.check_binding("strokes", str(n))
        j.check_binding("start_ms", str(self.start_ms))
        rig_last = self._status().last_stroke_id
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
        # every check passed: bind the journal to this plan
        j.bind("schedule_sha256", fingerprint)
        j.bind("strokes", str(n))
        j.bind("start_ms", str(self.start_ms))
        if self.plan.source:
            j.set("source", self.plan.source)
        anchor = self._anchor(rig_last)
        reconciled = self._reconcile(rig_last, "restart")
        gap = 0
        known = j.max_acked_id()
        if rig_last > known:  # executed by the rig, lost from the journal (a deleted -wal file)
            gap = rig_last - known
            j.write(
                "note",
                self.role,
                "GAP",
                first_id=known + 1,
                count=gap,
                result="no_journal_row",
                detail=f"the rig executed {gap} stroke(s) from id {known + 1} with no journal row",
            )
        if not fresh:
            j.write(
                "note",
                self.role,
                "RESUME_RUN",
                first_id=rig_last + 1,
                result="resumed",
                detail=f"reconciled {reconciled} open intent(s)",
            )
        self._therapy(rig_last)
        acked = self._acked_steps()
        steps = [s for s in self.plan.steps if s.after >= rig_last and s.step not in acked]
        resumed_from = rig_last
        next_id = rig_last + 1
        stop_id = n if max_strokes is None else min(n, rig_last + max_strokes)
        times = self.times
        gap_s = 0.0 if self.speed is None else self.min_interval_ms / 1000.0 / self.speed
        virtual_sent = -float("inf")  # when the last stroke was (virtually) sent, for catch-up
        stuck = 0  # failed DELIVER exchanges in a row without progress
        done_steps = 0
        while True:
            while steps and steps[0].after < next_id:
                step = steps[0]
                if self.speed is not None and not self._wait_until(self._due(anchor, step.at_ms)):
                    continue
                self._run_step(step)
                steps.pop(0)
                done_steps += 1
            if next_id > stop_id:
                break
            i = next_id - 1
            count = min(self.batch, stop_id - i)
            if steps:  # an action comes after stroke steps[0].after: stop the batch there
                count = max(1, min(count, steps[0].after - i))
            if self.speed is not None:
                first_send = max(self._due(anchor, int(times[i])), virtual_sent + gap_s)
                if not self._wait_until(first_send):
                    continue
                now = self.clock()
                sent, k = max(first_send, now), 1  # the first goes now; the next keep the gap
                while k < count:
                    t = max(self._due(anchor, int(times[i + k])), sent + gap_s)
                    if t > now:
                        break
                    sent, k = t, k + 1
                count = k
                virtual_sent = sent
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
                j.outcome(iid, "refused", err.field or "refused", str(err), count=0)
                raise
            except ProtocolError as err:
                stuck += 1
                self._retried += 1
                if stuck > self.retries:
                    raise  # the intent stays open: the next run reconciles it
                self._backoff(stuck, err)
                rig_last = self._status().last_stroke_id
                self._reconcile(rig_last, f"after error ({err})")
                if rig_last >= next_id:
                    stuck = 0  # the strokes went through, only the answer was lost
                next_id = rig_last + 1
                continue
            self._link_back(stuck)
            stuck = 0
            self._last_exchange = self.clock()
            if ack.last_stroke_id != next_id + count - 1:
                j.outcome(
                    iid,
                    "error",
                    "unexpected_ack",
                    f"rig last_stroke_id={ack.last_stroke_id}",
                    count=0,
                )
                raise RigError(
                    f"unexpected_ack: rig reports last stroke {ack.last_stroke_id}, expected {next_id + count - 1}",
                    "unexpected_ack",
                )
            j.outcome(
                iid,
                "ack",
                "executed",
                f"executed={ack.executed} duplicate={ack.duplicate}",
                first_id=next_id + ack.duplicate,
                count=ack.executed,
            )
            next_id += count
        if next_id - 1 == n:  # complete: from now on the rig's clock runs in real time
            self._therapy(n, done=True)
        return RunReport(
            n,
            resumed_from,
            next_id - 1,
            next_id - 1 - resumed_from,
            reconciled,
            self._retried,
            self.wall() - t0,
            done_steps,
            gap,
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
