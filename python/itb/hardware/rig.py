"""The emulated rig's physics and bookkeeping (no protocol, no I/O): a stroke pump with a
reservoir, a gravimetric scale, the patient-bolus arbiter and the record of executed strokes.

Stroke ids are assigned by the controller (1, 2, 3…). The rig executes a DELIVER only for ids
after the last one it executed (a re-sent batch is acknowledged, not repeated) and refuses a
gap (a first id beyond last + 1), so a controller that resends after a crash can neither double
nor skip a stroke. The last executed id survives a rig restart through the record file.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ..errors import RigError
from ..models import SYNCHROMED_II_40, PumpModel
from ..program import Continuous
from ..pump import Pump

__all__ = ["Rig", "Scale", "read_record", "last_recorded_id"]


@dataclass
class Scale:
    """A simulated gravimetric scale under the catheter outlet.

    It samples every ``sample_interval_s`` seconds (rig clock) and reports mass in mg with
    Gaussian noise of standard deviation ``noise_mg``; ``density_g_per_ml`` converts delivered
    volume to mass (1 nL of a 1.0 g/mL fluid weighs 0.001 mg).
    """

    noise_mg: float = 0.0
    sample_interval_s: float = 0.5
    density_g_per_ml: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        from ..errors import ValidationError

        for name in ("noise_mg", "density_g_per_ml", "sample_interval_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0) or (
                name != "noise_mg" and v == 0
            ):
                raise ValidationError(
                    f"{name}: {v!r} must be a finite number > 0 (noise >= 0)", name
                )
        self._rng = np.random.default_rng(self.seed)
        self._times: list[float] = [0.0]
        self._cum_nl: list[int] = [0]

    def add(self, t_s: float, volume_nl: int) -> None:
        """Fluid of ``volume_nl`` nL lands on the scale at rig time ``t_s`` (s, non-decreasing)."""
        self._times.append(max(t_s, self._times[-1]))
        self._cum_nl.append(self._cum_nl[-1] + volume_nl)

    def volume_nl_at(self, t_s: float) -> int:
        """Exact volume on the scale at ``t_s`` (nL, noise-free)."""
        return self._cum_nl[bisect.bisect_right(self._times, t_s) - 1]

    def read(self, t_s: float) -> tuple[float, float]:
        """(sample time in s, mass in mg) of the latest sample at or before ``t_s``."""
        t = np.floor(t_s / self.sample_interval_s) * self.sample_interval_s
        mass = self.volume_nl_at(t) * self.density_g_per_ml * 1e-3
        if self.noise_mg:
            mass += float(self._rng.normal(0.0, self.noise_mg))
        return float(t), float(mass)


def read_record(path: os.PathLike[str] | str) -> list[tuple[int, int]]:
    """(stroke_id, time_ms) rows of a record CSV; a torn last line (rig killed mid-write) is skipped."""
    rows = []
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if not line.endswith("\n") or line.startswith("stroke_id"):
                    continue
                a, b = line.strip().split(",")
                rows.append((int(a), int(b)))
    except FileNotFoundError:
        pass
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

    ``model`` gives the stroke volume (nL) and the reservoir; ``scale`` receives every stroke;
    ``record`` (a path) gets ``stroke_id,time_ms`` per executed stroke, flushed per stroke, and
    restores the last executed id on start. ``clock`` returns seconds (monotonic); the rig's
    pump clock (for patient-bolus lockouts) runs from ``start`` at that pace. Thread-safe.
    """

    def __init__(
        self,
        model: PumpModel = SYNCHROMED_II_40,
        *,
        scale: Scale | None = None,
        record: os.PathLike[str] | str | None = None,
        clock: Callable[[], float] = time.monotonic,
        start: datetime = datetime(2026, 1, 5, 8, 0),
        reservoir_ml: float | None = None,
    ) -> None:
        self.model = model
        self.stroke_nl = model.exact()["stroke_nl"]
        self.scale = scale if scale is not None else Scale()
        self.clock = clock
        self._t0 = clock()
        self._lock = threading.RLock()
        self.reservoir_nl = int(
            round((reservoir_ml if reservoir_ml is not None else model.reservoir_ml) * 1e6)
        )
        self.record_path = record
        if record is not None:
            _drop_torn_tail(record)
        self.last_stroke_id = last_recorded_id(record) if record is not None else 0
        self._record = open(record, "a", encoding="ascii") if record is not None else None
        self.executed = 0  # strokes executed by this process
        self.stopped = False
        self.stalled = False
        # the arbiter of patient boluses: the clinician's limits live in a Pump of the rig's own
        self.pump = Pump(
            model,
            now=start,
            reservoir_ml=model.reservoir_ml,
            concentration_ug_per_ml=2000,
            program=Continuous(ug_per_day=100.0),
        )
        self._pump_start_ms = self.pump.now_ms
        self.patient_boluses: list[dict[str, Any]] = []

    # ----- time ------------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """Seconds since the rig started (its clock)."""
        return self.clock() - self._t0

    def _pump_now_ms(self) -> int:
        return max(self.pump.now_ms, self._pump_start_ms + int(self.elapsed_s() * 1000))

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
            if todo and self.stalled:
                raise RigError("motor_stall: the pump motor is stalled", "motor_stall")
            if len(todo) * self.stroke_nl > self.reservoir_nl:
                raise RigError("reservoir_empty: not enough fluid for the batch", "reservoir_empty")
            for i, t_ms in enumerate(todo):
                self._stroke(first_id + skip + i, int(t_ms))
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
        self.reservoir_nl -= self.stroke_nl
        self.scale.add(self.elapsed_s(), self.stroke_nl)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "last_stroke_id": self.last_stroke_id,
                "executed": self.executed,
                "stopped": self.stopped,
                "stalled": self.stalled,
                "reservoir_nl": self.reservoir_nl,
                "stroke_nl": self.stroke_nl,
            }

    def stop(self) -> dict[str, Any]:
        with self._lock:
            self.stopped = True
            return self.status()

    def resume(self) -> dict[str, Any]:
        with self._lock:
            self.stopped = False
            return self.status()

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
                "expected_nl": self.scale._cum_nl[n],
                "stroke_nl": self.stroke_nl,
                "last_stroke_id": self.last_stroke_id,
            }

    def set_patient_limits(
        self, dose_ng: int, duration_ms: int, lockout_ms: int, max_per_24h: int
    ) -> dict[str, Any]:
        """Clinician limits of the patient bolus (``dose_ng`` 0 disables it)."""
        with self._lock:
            self.pump.advance_to(self._pump_now_ms())
            if dose_ng == 0:
                self.pump.set_patient_bolus_limits(None)
            else:
                self.pump.set_patient_bolus_limits(
                    dose_ng / 1000.0,
                    timedelta(milliseconds=duration_ms),
                    timedelta(milliseconds=lockout_ms),
                    max_per_24h,
                )
            return {
                "dose_ng": dose_ng,
                "duration_ms": duration_ms,
                "lockout_ms": lockout_ms,
                "max_per_24h": max_per_24h,
            }

    def patient_bolus(self) -> dict[str, Any]:
        """A patient activation now, judged by the rig's pump against the clinician's limits.
        A granted bolus's volume (nL) leaves the reservoir and lands on the scale at once."""
        with self._lock:
            now_ms = self._pump_now_ms()
            self.pump.advance_to(now_ms)
            result = self.pump.patient_bolus()
            out: dict[str, Any] = {
                "granted": result.granted,
                "reason": result.reason,
                "time_ms": now_ms,
            }
            if result.granted:
                bolus = next((b for b in self.pump.boluses if b.id == result.bolus_id), None)
                if bolus is not None:
                    volume = min(bolus.volume_nl, self.reservoir_nl)
                    out["volume_nl"] = volume
                    self.reservoir_nl -= volume
                    self.scale.add(self.elapsed_s(), volume)
            self.patient_boluses.append(out)
            return out

    def close(self) -> None:
        if self._record is not None:
            self._record.close()
            self._record = None
