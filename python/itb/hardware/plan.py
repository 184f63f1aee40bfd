"""A scenario as rig commands: the stroke schedule and, between its strokes, every action the
rig must be told about.

:func:`plan_scenario` runs the scenario once through the one scenario run loop
(:mod:`itb.scenario`), recording every stroke time (from the Rust core) and, for each action,
how many strokes came before it and what the pump answered. Each action becomes a
:class:`RigStep`:

=============================  ===================================================================
scenario action                rig command
=============================  ===================================================================
``set_patient_bolus_limits``   ``SET_LIMITS`` (dose in ng, duration and lockout in ms, max per 24 h)
``patient_bolus``              ``PATIENT_BOLUS`` as a scheduled press (step id, pump time): the rig
                               judges it against its limits and grant history; its verdict must be
                               the scenario's (else ``patient_bolus_mismatch``); the volume of a
                               granted press comes as the schedule's strokes
``refill``                     ``REFILL`` (volume and concentration; the rig aspirates first)
``suspend`` / ``resume``       ``STOP`` / ``RESUME``
anything else                  none: the stroke schedule carries it (``bolus``, ``set_program``,
                               bridge and priming boluses, a motor stall and its clearing — a rig
                               motor cannot be told to stall), journaled as a ``note``
=============================  ===================================================================

The controller also sends ``THERAPY`` (concentration, pump clock, speed) at every run start.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from .._limits import MS_PER_DAY
from .._time import to_ms
from .._units import ml_to_nl, ug_to_ng

__all__ = [
    "RigStep",
    "RigPlan",
    "plan_scenario",
    "plan_schedule",
    "min_stroke_interval_ms",
    "RIG_COMMANDS",
]

#: scenario action (``do``) → the rig command it becomes ("" = carried by the schedule)
RIG_COMMANDS: dict[str, str] = {
    "set_patient_bolus_limits": "SET_LIMITS",
    "patient_bolus": "PATIENT_BOLUS",
    "refill": "REFILL",
    "suspend": "STOP",
    "resume": "RESUME",
}


@dataclass(frozen=True)
class RigStep:
    """One scenario action at its place in the schedule: after stroke ``after`` (0: before the
    first), at pump time ``at_ms``. ``command`` is the rig command ("" for none), ``args`` its
    exact arguments, ``expect`` what the scenario's pump answered (``granted`` for a press)."""

    step: int
    after: int
    at_ms: int
    do: str
    command: str
    args: dict[str, int] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "after": self.after,
            "at_ms": self.at_ms,
            "do": self.do,
            "command": self.command,
            "args": self.args,
            "expect": self.expect,
        }


@dataclass(frozen=True)
class RigPlan:
    """The stroke times (int64 ms), the schedule's start (ms), the concentration it starts at
    (µg/mL) and the steps in order."""

    times: np.ndarray
    start_ms: int
    concentration_ug_per_ml: int
    steps: tuple[RigStep, ...] = ()
    source: str = ""
    min_interval_ms: int = 0  # pump ms between strokes at the model's maximum rate

    def fingerprint(self) -> str:
        """SHA-256 of the stroke times (int64 big-endian) and, if any, the steps: a resumed run
        must be the same plan."""
        h = hashlib.sha256(np.asarray(self.times, dtype=">i8").tobytes())
        if self.steps:
            h.update(json.dumps([s.as_dict() for s in self.steps], sort_keys=True).encode())
        return h.hexdigest()

    def concentration_after(self, strokes: int) -> int:
        """The concentration in force once ``strokes`` strokes have run (refills before them)."""
        conc = self.concentration_ug_per_ml
        for s in self.steps:
            if s.command == "REFILL" and s.after <= strokes:
                conc = s.args["concentration_ug_per_ml"]
        return conc


def plan_schedule(times: Any, start_ms: int, concentration_ug_per_ml: int = 2000) -> RigPlan:
    """A plan of strokes only (no actions)."""
    return RigPlan(np.asarray(times, dtype=np.int64), int(start_ms), int(concentration_ug_per_ml))


def plan_scenario(scenario: Any, until: Any = None) -> RigPlan:
    """The rig plan of an :class:`itb.scenario.Scenario` run to ``until`` (default: its own)."""
    stop = scenario._resolve_until(until)
    chunks: list[Any] = []
    counts: list[int] = []

    def progress(done: int, total: int) -> None:  # called after each action's step
        counts.append(sum(len(c) for c in chunks))

    pump, _events, outcomes = scenario.execute(stop, record=chunks, progress=progress)
    times = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    actions = [a for a in scenario.actions if a.at <= stop]
    steps = []
    for i, (action, outcome) in enumerate(zip(actions, outcomes, strict=True)):
        at_ms = to_ms(action.at, "at")
        # strokes before this action: those at or before its time (the loop advanced to it)
        after = counts[i]
        command = RIG_COMMANDS.get(action.do, "")
        args: dict[str, int] = {}
        expect: dict[str, Any] = {}
        if action.do == "set_patient_bolus_limits":
            args = {
                "dose_ng": 0 if action.dose_ug is None else ug_to_ng(action.dose_ug, "dose_ug"),
                "duration_ms": action.duration // timedelta(milliseconds=1),
                "lockout_ms": action.lockout // timedelta(milliseconds=1),
                "max_per_24h": int(action.max_per_24h),
            }
        elif action.do == "patient_bolus":
            expect = {"granted": bool(outcome.granted), "reason": str(outcome.reason)}
        elif action.do == "refill":
            args = {
                "added_nl": ml_to_nl(action.added_ml, "added_ml"),
                "concentration_ug_per_ml": int(action.concentration_ug_per_ml),
            }
        steps.append(RigStep(i + 1, after, at_ms, action.do, command, args, expect))
    first = scenario.pump()
    return RigPlan(
        times,
        first.now_ms,
        int(first.concentration_ug_per_ml),
        tuple(steps),
        str(getattr(scenario, "source", "")),
        min_stroke_interval_ms(first.model),
    )


def min_stroke_interval_ms(model: Any) -> int:
    """Pump ms between strokes at ``model``'s maximum rate, rounded up (0 if it states none):
    the one definition the plan and the controller use."""
    exact = model.exact()
    rate = int(exact.get("max_rate_nl_per_day", 0) or 0)
    if rate <= 0:
        return 0
    return -(-int(exact["stroke_nl"]) * MS_PER_DAY // rate)
