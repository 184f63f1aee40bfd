"""The emulated rig's physics and bookkeeping (no protocol, no I/O): a stroke pump with a
reservoir, a gravimetric scale, the patient-bolus arbiter and the record of executed strokes.

Stroke ids are assigned by the controller (1, 2, 3…). The rig executes a DELIVER only for ids
after the last one it executed (a re-sent batch is acknowledged, not repeated) and refuses a
gap (a first id beyond last + 1), so a controller that resends after a crash can neither double
nor skip a stroke. The last executed id survives a rig restart through the record file.

The rest of the rig's state — reservoir, concentration, stopped/stalled, the clinician's
patient-bolus limits, the grant history with its times, its pump clock — is kept in a state
file next to the record (``RECORD.state.json``), rewritten atomically (write, fsync, rename)
after every change and restored on start, as a real rig keeps it in non-volatile memory: a rig
killed and restarted comes back exactly as it was (a stopped rig comes back stopped). Strokes
recorded after the state's last write (killed mid-batch) are taken from the record.
(docs: decisions/rig.md#the-rig-keeps-its-state)
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from .._limits import MAX_CATHETER_NL, MAX_CONCENTRATION_UG_PER_ML, MS_PER_DAY
from .._time import Duration, duration_ms, to_ms
from .._units import ml_to_nl, ng_to_ug, nl_to_ml
from ..errors import ItbError, RigError
from ..models import SYNCHROMED_II_40, PumpModel
from ..program import Continuous
from ..pump import Pump

__all__ = [
    "Rig",
    "Scale",
    "read_record",
    "last_recorded_id",
    "STATE_VERSION",
    "state_path",
    "RIG_FAULTS",
]

#: faults ``Rig.fault`` (``itb rig fault …``) injects, and ``clear`` (one of them or all)
RIG_FAULTS = ("occlusion", "leak", "disconnection", "migration", "battery", "stall", "clear")
#: ``leak`` and ``disconnection`` name the one catheter-breach fault (as the core's model: a
#: disconnection is a leak at a position, kept with its kind); either clears it, as ``clear_leak``
_CLEARABLE = ("occlusion", "leak", "disconnection", "migration", "battery", "stall", "all")

STATE_VERSION = 1
#: concentration (µg/mL) of a rig no THERAPY or REFILL has told otherwise
DEFAULT_CONCENTRATION = 2000
_MAX_CONCENTRATION = MAX_CONCENTRATION_UG_PER_ML  # the core's, from its limit table


def state_path(record: os.PathLike[str] | str) -> str:
    """The state file kept next to a record file."""
    return os.fspath(record) + ".state.json"


@dataclass
class Scale:
    """A simulated gravimetric scale under the catheter outlet.

    It samples every ``sample_interval`` (a duration, default 500 ms, rig clock) and reports mass
    in mg with Gaussian noise of standard deviation ``noise_mg``; ``density_g_per_ml`` converts
    delivered volume to mass (1 nL of a 1.0 g/mL fluid weighs 0.001 mg). Sample times (``t_s``)
    are positions on the rig clock in seconds. Errors: ``ValidationError`` naming the field (a
    bare-number ``sample_interval`` included).
    """

    noise_mg: float = 0.0
    sample_interval: Duration = timedelta(milliseconds=500)
    density_g_per_ml: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        from ..errors import ValidationError

        ms = duration_ms(self.sample_interval, "sample_interval", allow_zero=False)
        self.sample_interval = timedelta(milliseconds=ms)
        self._interval_s = ms / 1000
        for name in ("noise_mg", "density_g_per_ml"):
            v = getattr(self, name)
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if not (number and np.isfinite(v) and v >= 0) or (name != "noise_mg" and v == 0):
                need = "at least 0 mg" if name == "noise_mg" else "above 0 g/mL"
                raise ValidationError(f"{name}: {v!r} must be a finite number {need}", name)
        self._rng = np.random.default_rng(self.seed)
        self._times: list[float] = [0.0]
        self._cum_nl: list[int] = [0]
        self._cum_commanded_nl: list[int] = [0]  # what the strokes were meant to move

    def add(self, t_s: float, volume_nl: int, commanded_nl: int | None = None) -> None:
        """Fluid of ``volume_nl`` nL lands on the scale at rig time ``t_s`` (s, non-decreasing),
        of ``commanded_nl`` (default: the same) the pump's strokes were meant to move."""
        self._times.append(max(t_s, self._times[-1]))
        self._cum_nl.append(self._cum_nl[-1] + volume_nl)
        self._cum_commanded_nl.append(
            self._cum_commanded_nl[-1] + (volume_nl if commanded_nl is None else commanded_nl)
        )

    def volume_nl_at(self, t_s: float) -> int:
        """Exact volume on the scale at ``t_s`` (nL, noise-free)."""
        return self._cum_nl[bisect.bisect_right(self._times, t_s) - 1]

    def read(self, t_s: float) -> tuple[float, float]:
        """(sample time in s, mass in mg) of the latest sample at or before ``t_s``."""
        t = np.floor(t_s / self._interval_s) * self._interval_s
        mass = self.volume_nl_at(t) * self.density_g_per_ml * 1e-3
        if self.noise_mg:
            mass += float(self._rng.normal(0.0, self.noise_mg))
        return float(t), float(mass)


def read_record(path: os.PathLike[str] | str, *, missing_ok: bool = True) -> list[tuple[int, int]]:
    """(stroke_id, time_ms) rows of a record CSV. A torn last line (no newline: the rig was killed
    writing it) and blank lines are skipped; a line that is not ``stroke_id,time_ms`` is a
    ``ValidationError`` (field ``record``) naming the file and line. A missing file is an empty
    record (a new rig), or with ``missing_ok=False`` (a report, which reads its inputs) a
    ``ValidationError`` saying it cannot be read."""
    return [(sid, t) for _, sid, t in read_record_lines(path, missing_ok=missing_ok)]


def read_record_lines(
    path: os.PathLike[str] | str, *, missing_ok: bool = True
) -> list[tuple[int, int, int]]:
    """(line number, stroke_id, time_ms) rows of a record CSV, as :func:`read_record` reads
    them: for messages that name the file's line."""
    from ..errors import ValidationError

    rows: list[tuple[int, int, int]] = []
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for n, line in enumerate(f, 1):
                text = line.strip()
                if not line.endswith("\n") or not text or text == "stroke_id,time_ms":
                    continue
                try:
                    a, b = text.split(",")
                    rows.append((n, int(a), int(b)))
                except ValueError:
                    raise ValidationError(
                        f"record: {path} line {n}: expected stroke_id,time_ms", "record"
                    ) from None
    except FileNotFoundError as err:
        if not missing_ok:
            raise ValidationError(f"record: cannot read {path}: {err.strerror}", "record") from None
    except OSError as err:
        raise ValidationError(f"record: cannot read {path}: {err.strerror}", "record") from None
    return rows


def last_recorded_id(path: os.PathLike[str] | str) -> int:
    """Last stroke id in a record file (0 if none), reading only its tail."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return 0
    for line in reversed(tail.split("\n")[:-1]):  # complete lines only
        try:
            return int(line.split(",")[0])
        except ValueError:
            continue
    return 0


def _drop_torn_tail(path: os.PathLike[str] | str) -> None:
    """Cut a last line without its newline (the rig died writing it: that stroke did not count)."""
    try:
        with open(path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                f.truncate(size - len(tail) + tail.rfind(b"\n") + 1)
    except FileNotFoundError:
        pass


class Rig:
    """An emulated test rig.

    ``model`` gives the stroke volume (nL) and the reservoir capacity; ``scale`` receives every
    stroke; ``record`` (a path) gets ``stroke_id,time_ms`` per executed stroke, flushed per
    stroke, and restores the last executed id on start; ``state`` (default: next to the record,
    see :func:`state_path`; ``None`` without a record) keeps and restores everything else.
    ``clock`` returns monotonic seconds; the rig's pump clock (patient-bolus lockouts and 24 h
    windows) runs in real time on that clock from ``start`` until :meth:`set_therapy` sets its
    time and speed; it never goes back. ``reservoir_ml`` and
    ``concentration_ug_per_ml`` apply to a rig without a saved state. Thread-safe.
    """

    def __init__(
        self,
        model: PumpModel = SYNCHROMED_II_40,
        *,
        scale: Scale | None = None,
        record: os.PathLike[str] | str | None = None,
        state: os.PathLike[str] | str | None = None,
        clock: Callable[[], float] = time.monotonic,
        start: datetime = datetime(2026, 1, 5, 8, 0),
        reservoir_ml: float | None = None,
        concentration_ug_per_ml: int = DEFAULT_CONCENTRATION,
    ) -> None:
        self.model = model
        exact = model.exact()
        self.stroke_nl = exact["stroke_nl"]
        self.capacity_nl = ml_to_nl(model.reservoir_ml, "reservoir_ml")
        self.scale = scale if scale is not None else Scale()
        self.clock = clock
        self._t0 = clock()
        self._lock = threading.RLock()
        self.reservoir_nl = ml_to_nl(
            reservoir_ml if reservoir_ml is not None else model.reservoir_ml, "reservoir_ml"
        )
        if not 0 <= self.reservoir_nl <= self.capacity_nl:
            from ..errors import ValidationError

            raise ValidationError(
                f"reservoir_ml: {nl_to_ml(self.reservoir_nl):g} mL is not between 0 and {model.reservoir_ml:g} mL "
                f"(the {model.name} reservoir)",
                "reservoir_ml",
            )
        self.concentration_ug_per_ml = _check_concentration(concentration_ug_per_ml)
        self.record_path = record
        if record is not None:
            _drop_torn_tail(record)
        self.last_stroke_id = last_recorded_id(record) if record is not None else 0
        self._record = open(record, "a", encoding="ascii") if record is not None else None
        self.state_path = (
            os.fspath(state) if state is not None else (state_path(record) if record else None)
        )
        self.executed = 0  # strokes executed by this process
        self.stopped = False
        self._stalled = False
        self.limits: dict[str, int] | None = None
        self.patient_boluses: list[dict[str, Any]] = []
        self._scheduled: dict[str, dict[str, Any]] = {}  # scheduled press step id -> its result
        # faults at run time and where the fluid went (nL; docs: guide/faults.md#the-emulated-rig)
        self.faults: dict[str, Any] = {}
        self.ledger = {"tip_nl": 0, "elsewhere_nl": 0, "held_back_nl": 0, "not_pumped_nl": 0}
        self._occlusion_commanded_nl = 0  # since the occlusion: commanded and moved past it
        self._occlusion_moved_nl = 0
        self._battery_last_ms: int | None = None  # last stroke a battery-faulted motor made
        self._clock_ms = to_ms(start, "start")
        self._speed_milli = 1000  # real time until a THERAPY says otherwise
        self._anchor = (self._t0, self._clock_ms)
        self.pump = self._arbiter(self._clock_ms)
        self.restored = False
        if self.state_path is not None and os.path.exists(self.state_path):
            self._restore()
            self.restored = True

    # ----- state ------------------------------------------------------------------------------
    def _arbiter(self, now_ms: int) -> Pump:
        """The judge of patient boluses: a Pump of the rig's own, delivering nothing, holding the
        clinician's limits and the grant history."""
        return Pump(
            self.model,
            now=now_ms,
            reservoir_ml=self.model.reservoir_ml,
            concentration_ug_per_ml=self.concentration_ug_per_ml,
            program=Continuous(ug_per_day=0.0),
        )

    def state(self) -> dict[str, Any]:
        """What the rig keeps across restarts (JSON-ready; the arbiter as a snapshot)."""
        with self._lock:
            wall = (
                time.time()
            )  # read before the clock: the downtime added on restore is never short
            return {
                "version": STATE_VERSION,
                "last_stroke_id": self.last_stroke_id,
                "reservoir_nl": self.reservoir_nl,
                "concentration_ug_per_ml": self.concentration_ug_per_ml,
                "stopped": self.stopped,
                "stalled": self._stalled,
                "limits": self.limits,
                "patient_boluses": self.patient_boluses,
                "scheduled": self._scheduled,
                "clock_ms": self.clock_ms(),
                "speed_milli": self._speed_milli,
                "saved_wall": wall,
                "arbiter": base64.b64encode(self.pump.snapshot()).decode("ascii"),
                "faults": self.faults,
                "ledger": self.ledger,
                "occlusion_nl": [self._occlusion_commanded_nl, self._occlusion_moved_nl],
                "battery_last_ms": self._battery_last_ms,
            }

    def _save(self) -> None:
        if self.state_path is None:
            return
        data = json.dumps(self.state(), sort_keys=True, separators=(",", ":"))
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    def _restore(self) -> None:
        from ..errors import ValidationError

        path = self.state_path
        assert path is not None
        try:
            with open(path, encoding="ascii") as f:
                d = json.load(f)
            if d.get("version") != STATE_VERSION:
                raise ValueError(f"state version {d.get('version')!r}, expected {STATE_VERSION}")
            pump = Pump.restore(base64.b64decode(d["arbiter"]))
            saved_last = int(d["last_stroke_id"])
            reservoir = int(d["reservoir_nl"])
            conc = _check_concentration(int(d["concentration_ug_per_ml"]))
            clock_ms = int(d["clock_ms"])
            speed = int(d["speed_milli"])
            saved_wall = float(d.get("saved_wall", 0.0))
            stopped, stalled = bool(d["stopped"]), bool(d["stalled"])
            limits = d["limits"]
            boluses = list(d["patient_boluses"])
            scheduled = dict(d["scheduled"])
            faults = dict(d.get("faults", {}))  # absent in states written before faults
            ledger = {k: int(v) for k, v in d.get("ledger", self.ledger).items()}
            occl = [int(v) for v in d.get("occlusion_nl", [0, 0])]
            battery_last = d.get("battery_last_ms")
            battery_last = None if battery_last is None else int(battery_last)
        except (OSError, ValueError, KeyError, TypeError, ItbError) as err:
            raise ValidationError(
                f"state: {path} is not a rig state file this rig can restore ({err})", "state"
            ) from None
        if saved_last > self.last_stroke_id:
            raise ValidationError(
                f"state: {path} has stroke {saved_last} but the record ends at "
                f"{self.last_stroke_id} (record and state of different rigs?)",
                "state",
            )
        late: list[int] = []  # times of strokes recorded after the last save (killed mid-batch)
        if self.last_stroke_id > saved_last and self.record_path is not None:
            late = [t for sid, t in read_record(self.record_path) if sid > saved_last]
            clock_ms = max(clock_ms, late[-1] if late else 0)
        self.pump, self.reservoir_nl, self.concentration_ug_per_ml = pump, reservoir, conc
        self.stopped, self._stalled, self.limits = stopped, stalled, limits
        self.patient_boluses, self._scheduled = boluses, scheduled
        self.faults, self.ledger = faults, {**self.ledger, **ledger}
        self._occlusion_commanded_nl, self._occlusion_moved_nl = occl[0], occl[1]
        self._battery_last_ms = battery_last
        # the late strokes were made under the faults in force at the save: replay their physics
        # (reservoir, ledgers, occlusion carry, battery pacing) exactly as _stroke did
        for t in late:
            self._physics(t, weigh=False)
        self._speed_milli = speed
        if speed and saved_wall:  # a running clock ran on while the rig was down (its RTC)
            # rounded up: the restored clock is never behind a reading taken before the restart
            clock_ms += math.ceil(max(0.0, time.time() - saved_wall) * speed)
        self._clock_ms = clock_ms
        self._anchor = (self.clock(), clock_ms)

    # ----- time ------------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """Seconds since the rig started (its monotonic clock)."""
        return self.clock() - self._t0

    def clock_ms(self) -> int:
        """The rig's pump clock (ms): the last THERAPY's time, run on at its speed by the rig's
        monotonic clock, and never before a command's time (strokes, scheduled presses)."""
        with self._lock:
            t = self._clock_ms
            if self._speed_milli:
                mono, at = self._anchor
                t = max(t, at + int((self.clock() - mono) * self._speed_milli))
            return t

    def _advance_clock(self, t_ms: int) -> int:
        self._clock_ms = max(self.clock_ms(), int(t_ms))
        self._anchor = (self.clock(), self._clock_ms)
        return self._clock_ms

    @property
    def stalled(self) -> bool:
        return self._stalled

    @stalled.setter
    def stalled(self, value: bool) -> None:
        with self._lock:
            self._stalled = bool(value)
            self._save()

    # ----- commands ----------------------------------------------------------------------------
    def deliver(self, first_id: int, times_ms: Sequence[int]) -> dict[str, Any]:
        """Execute strokes ``first_id, first_id+1, …`` (one per entry of ``times_ms``, the
        scheduled pump-clock ms) that are after :attr:`last_stroke_id`. Raises ``RigError``
        (``stopped``, ``motor_stall``, ``stroke_gap``, ``reservoir_empty``) executing nothing."""
        with self._lock:
            if first_id > self.last_stroke_id + 1:
                raise RigError(
                    f"stroke_gap: first id {first_id} after last executed {self.last_stroke_id}",
                    "stroke_gap",
                )
            skip = self.last_stroke_id + 1 - first_id
            todo = list(times_ms)[skip:]
            if todo and self.stopped:
                raise RigError("stopped: the rig is stopped (RESUME first)", "stopped")
            if todo and self._stalled:
                raise RigError("motor_stall: the pump motor is stalled", "motor_stall")
            if len(todo) * self.stroke_nl > self.reservoir_nl:
                raise RigError(
                    f"reservoir_empty: {nl_to_ml(self.reservoir_nl):g} mL left, the batch needs "
                    f"{nl_to_ml(len(todo) * self.stroke_nl):g} mL",
                    "reservoir_empty",
                )
            for i, t_ms in enumerate(todo):
                self._stroke(first_id + skip + i, int(t_ms))
            if todo:
                self._advance_clock(max(int(t) for t in todo))
                self._save()
            return {
                "last_stroke_id": self.last_stroke_id,
                "executed": len(todo),
                "duplicate": max(0, min(skip, len(times_ms))),
            }

    def _stroke(self, stroke_id: int, time_ms: int) -> None:
        if self._record is not None:
            self._record.write(f"{stroke_id},{time_ms}\n")
            self._record.flush()
        self.last_stroke_id = stroke_id
        self.executed += 1
        self._physics(time_ms)

    def _physics(self, time_ms: int, weigh: bool = True) -> None:
        """What one recorded stroke at ``time_ms`` does to the fluid (see :meth:`_move`);
        ``weigh=False`` when replaying strokes made before a restart (the scale saw them)."""
        if "battery" in self.faults:
            # the motor runs the model's minimum-rate program, not the controller's schedule:
            # a stroke sooner than one minimum-rate interval after the last one is not made
            min_rate = self.model.exact()["min_rate_nl_per_day"]
            interval = -(-self.stroke_nl * MS_PER_DAY // min_rate)
            last = self._battery_last_ms
            if last is not None and time_ms - last < interval:
                self.ledger["not_pumped_nl"] += self.stroke_nl
                if weigh:
                    self.scale.add(self.elapsed_s(), 0, self.stroke_nl)
                return
            self._battery_last_ms = time_ms
        self._move(self.stroke_nl, weigh)

    def _move(self, volume_nl: int, weigh: bool = True) -> int:
        """The pump pushes ``volume_nl``: an occlusion keeps (part of) it in the reservoir; what
        passes leaves the catheter — at a leak or disconnection site into the catch tray
        (``elsewhere``), else at the tip (``tip``; a migrated tip's outflow is ``elsewhere``) —
        and lands on the scale. Returns the volume that moved."""
        moved = volume_nl
        occlusion = self.faults.get("occlusion")
        if occlusion is not None:
            pass_pct = int(occlusion["pass_pct"])
            self._occlusion_commanded_nl += volume_nl
            total = self._occlusion_commanded_nl * pass_pct // 100  # exact, remainder carried
            moved = total - self._occlusion_moved_nl
            self._occlusion_moved_nl = total
            self.ledger["held_back_nl"] += volume_nl - moved
        self.reservoir_nl -= moved
        where = (
            "elsewhere_nl" if ("leak" in self.faults or "migration" in self.faults) else "tip_nl"
        )
        self.ledger[where] += moved
        if weigh:
            self.scale.add(self.elapsed_s(), moved, volume_nl)
        return moved

    def fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Inject (or clear) a fault at run time: ``{"fault": "occlusion", "pass_pct": 0 to 99}``,
        ``{"fault": "leak" | "disconnection", "position_ul": µL from the pump connector}``,
        ``{"fault": "migration"}``, ``{"fault": "battery"}``, ``{"fault": "stall"}``,
        ``{"fault": "clear", "which": "occlusion" | "leak" | "disconnection" | "migration" |
        "battery" | "stall" | "all"}``. A disconnection is a leak at a position, as in the core's
        model (``Pump.active_faults``): ``faults["leak"]`` holds it with ``kind`` the name it
        was injected as, and ``which`` ``"leak"`` or ``"disconnection"`` clears it. Refused (``fault``, ``pass_pct``, ``position_ul``, ``which``) changing nothing.
        (docs: guide/faults.md#the-emulated-rig)"""
        with self._lock:
            kind = spec.get("fault")
            if kind not in RIG_FAULTS:
                raise RigError(f"fault: {kind!r} is not one of {', '.join(RIG_FAULTS)}", "fault")
            if kind == "occlusion":
                pct = spec.get("pass_pct", 0)
                if not (isinstance(pct, int) and not isinstance(pct, bool) and 0 <= pct <= 99):
                    raise RigError(
                        f"pass_pct: {pct!r} is not a whole % between 0 and 99 (0: complete occlusion)",
                        "pass_pct",
                    )
                self.faults["occlusion"] = {"pass_pct": pct}
                self._occlusion_commanded_nl = self._occlusion_moved_nl = 0
            elif kind in ("leak", "disconnection"):
                pos = spec.get("position_ul", 0)
                limit = MAX_CATHETER_NL // 1000  # µL: the core's largest catheter
                if not (
                    isinstance(pos, (int, float))
                    and not isinstance(pos, bool)
                    and np.isfinite(pos)
                    and 0 <= pos <= limit
                ):
                    raise RigError(
                        f"position_ul: {pos!r} µL is not between 0 and {limit} µL "
                        "(from the pump connector along the catheter)",
                        "position_ul",
                    )
                self.faults["leak"] = {"position_ul": float(pos), "kind": kind}
            elif kind == "migration":
                self.faults["migration"] = {}
            elif kind == "battery":
                self.faults["battery"] = {"alarm": "battery_fault"}
                self._battery_last_ms = None
            elif kind == "stall":
                self._stalled = True
            else:
                which = spec.get("which", "all")
                if which not in _CLEARABLE:
                    raise RigError(
                        f"which: {which!r} is not one of {', '.join(_CLEARABLE)}", "which"
                    )
                if which == "disconnection":
                    which = "leak"  # the same slot (its ``kind`` says which was injected)
                for name in ("occlusion", "leak", "migration", "battery"):
                    if which in (name, "all"):
                        self.faults.pop(name, None)
                if which in ("stall", "all"):
                    self._stalled = False
            self._save()
            return self.status()

    def status(self) -> dict[str, Any]:
        with self._lock:
            granted = sum(1 for b in self.patient_boluses if b["granted"])
            return {
                "last_stroke_id": self.last_stroke_id,
                "executed": self.executed,
                "stopped": self.stopped,
                "stalled": self._stalled,
                "reservoir_nl": self.reservoir_nl,
                "stroke_nl": self.stroke_nl,
                "concentration_ug_per_ml": self.concentration_ug_per_ml,
                "clock_ms": self.clock_ms(),
                "limits": self.limits,
                "patient_boluses_granted": granted,
                "patient_boluses_denied": len(self.patient_boluses) - granted,
                "faults": {k: dict(v) for k, v in self.faults.items()},
                "alarms": ["battery_fault"] if "battery" in self.faults else [],
                **self.ledger,
            }

    def stop(self) -> dict[str, Any]:
        with self._lock:
            self.stopped = True
            self._save()
            return self.status()

    def resume(self) -> dict[str, Any]:
        with self._lock:
            self.stopped = False
            self._save()
            return self.status()

    def set_therapy(
        self, concentration_ug_per_ml: int, clock_ms: int, speed_milli: int = 0
    ) -> dict[str, Any]:
        """The therapy the controller runs: its concentration (µg/mL; patient doses are
        converted at it), the pump clock now (ms; the clock never goes back, except on a rig
        with no strokes and no patient boluses yet) and the clock's speed (pump ms per 1000
        monotonic ms; 0: the clock moves only with the commands' times)."""
        with self._lock:
            conc = _check_concentration(concentration_ug_per_ml)
            if clock_ms < self.clock_ms() and self.last_stroke_id == 0 and not self.patient_boluses:
                self.concentration_ug_per_ml = conc
                self.pump = self._arbiter(clock_ms)
                if self.limits is not None:
                    self._apply_limits(**self.limits)
                self._clock_ms = int(clock_ms)
                self._anchor = (self.clock(), self._clock_ms)
            else:
                self._advance_clock(clock_ms)
                self._set_concentration(conc)
            self._speed_milli = int(speed_milli)
            self._save()
            return self.status()

    def _set_concentration(self, conc: int) -> None:
        if conc != self.concentration_ug_per_ml:
            self.pump.advance_to(max(self.pump.now_ms, self.clock_ms()))
            self.pump.refill(self.model.reservoir_ml, conc)
            self.concentration_ug_per_ml = conc

    def refill(self, added_nl: int, concentration_ug_per_ml: int) -> dict[str, Any]:
        """Aspirate the reservoir empty, then fill ``added_nl`` at a concentration. Refused
        (``overfill``, ``concentration``) changing nothing."""
        with self._lock:
            conc = _check_concentration(concentration_ug_per_ml)
            if not 0 <= added_nl <= self.capacity_nl:
                raise RigError(
                    f"overfill: {nl_to_ml(added_nl):g} mL is not between 0 and {nl_to_ml(self.capacity_nl):g} mL "
                    "(the rig's reservoir)",
                    "overfill",
                )
            aspirated = self.reservoir_nl
            self.reservoir_nl = int(added_nl)
            self._set_concentration(conc)
            self._save()
            return {
                "aspirated_nl": aspirated,
                "reservoir_nl": self.reservoir_nl,
                "concentration_ug_per_ml": conc,
            }

    def measure(self) -> dict[str, Any]:
        """A scale sample: ``t_s`` (s, rig clock), ``mass_mg``, ``density_g_per_ml``, and the
        strokes executed so far (``executed``) with ``stroke_nl``, for delivered-vs-expected."""
        with self._lock:
            now = self.elapsed_s()
            t, mass = self.scale.read(now)
            n = bisect.bisect_right(self.scale._times, t) - 1
            return {
                "t_s": t,
                "mass_mg": mass,
                "density_g_per_ml": self.scale.density_g_per_ml,
                "noise_mg": self.scale.noise_mg,
                "expected_nl": self.scale._cum_commanded_nl[n],
                "moved_nl": self.scale._cum_nl[n],
                "stroke_nl": self.stroke_nl,
                "last_stroke_id": self.last_stroke_id,
            }

    def _apply_limits(
        self, dose_ng: int, duration_ms: int, lockout_ms: int, max_per_24h: int
    ) -> None:
        from datetime import timedelta

        if dose_ng == 0:
            self.pump.set_patient_bolus_limits(None)
        else:
            self.pump.set_patient_bolus_limits(
                ng_to_ug(dose_ng),
                timedelta(milliseconds=duration_ms),
                timedelta(milliseconds=lockout_ms),
                max_per_24h,
            )

    def set_patient_limits(
        self, dose_ng: int, duration_ms: int, lockout_ms: int, max_per_24h: int
    ) -> dict[str, Any]:
        """Clinician limits of the patient bolus (``dose_ng`` 0 disables it)."""
        with self._lock:
            self.pump.advance_to(max(self.pump.now_ms, self.clock_ms()))
            limits = {
                "dose_ng": int(dose_ng),
                "duration_ms": int(duration_ms),
                "lockout_ms": int(lockout_ms),
                "max_per_24h": int(max_per_24h),
            }
            try:
                self._apply_limits(**limits)
            except ItbError as err:
                raise RigError(f"limits: {err}", "limits") from None
            self.limits = None if dose_ng == 0 else limits
            self._save()
            return dict(limits)

    def patient_bolus(self, scheduled: tuple[int, int] | None = None) -> dict[str, Any]:
        """A patient activation, judged by the rig's pump against the clinician's limits at the
        rig's pump clock. Denied (``stopped``, ``stalled``) while the rig is stopped or its motor
        stalled, like DELIVER.

        A patient's own press (``scheduled=None``): a granted bolus's volume (nL, at the
        therapy's concentration) leaves the reservoir and lands on the scale at once.
        ``scheduled=(step, at_ms)`` is a scenario's press sent by the controller: judged at
        ``at_ms``, recorded in the grant history, but its volume comes as the schedule's strokes;
        a repeated ``step`` gets its first answer again (``duplicate``)."""
        with self._lock:
            if scheduled is not None and str(scheduled[0]) in self._scheduled:
                return {**self._scheduled[str(scheduled[0])], "duplicate": True}
            now_ms = self._advance_clock(scheduled[1]) if scheduled else self.clock_ms()
            out: dict[str, Any] = {"time_ms": now_ms}
            if self.stopped or self._stalled:
                out.update(granted=False, reason="stopped" if self.stopped else "stalled")
            else:
                self.pump.advance_to(max(self.pump.now_ms, now_ms))
                result = self.pump.patient_bolus()
                out.update(granted=result.granted, reason=result.reason)
                if result.granted:
                    bolus = next((b for b in self.pump.boluses if b.id == result.bolus_id), None)
                    volume = 0 if bolus is None else bolus.volume_nl
                    out["volume_nl"] = volume
                    if scheduled is None:
                        self._move(min(volume, self.reservoir_nl))
            if scheduled is not None:
                out["step"] = int(scheduled[0])
                self._scheduled[str(scheduled[0])] = dict(out)
            self.patient_boluses.append(dict(out))
            self._save()
            return out

    def close(self) -> None:
        if self._record is not None:
            self._record.close()
            self._record = None


def _check_concentration(value: int) -> int:
    if not (isinstance(value, int) and 0 < value <= _MAX_CONCENTRATION):
        raise RigError(
            f"concentration: {value!r} µg/mL is not a whole number between 1 and {_MAX_CONCENTRATION} µg/mL",
            "concentration",
        )
    return value
