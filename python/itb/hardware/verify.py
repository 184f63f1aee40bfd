"""``itb rig verify``: compare a rig's record, a controller's journal and (optionally) the
schedule, and say whether every stroke ran exactly once — or exactly where not."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ValidationError
from .journal import Journal
from .rig import read_record

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """``ok`` when exactly once; ``problems`` say where not (each names stroke ids);
    ``notes`` are what is fine but worth saying (gaps the journal recorded, open intents)."""

    strokes: int
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "strokes": self.strokes,
            "exactly_once": self.ok,
            "problems": self.problems,
            "notes": self.notes,
        }


def _runs(ids: list[int]) -> str:
    """'3, 7 to 9' for a sorted id list (at most 5 runs shown)."""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    text = ", ".join(f"{a}" if a == b else f"{a} to {b}" for a, b in runs[:5])
    return text + (f" and {len(runs) - 5} more run(s)" if len(runs) > 5 else "")


def verify(
    journal: os.PathLike[str] | str,
    record: os.PathLike[str] | str,
    plan: Any = None,
) -> VerifyReport:
    """Check record, journal and, with ``plan`` (a :class:`~itb.hardware.plan.RigPlan`), the
    schedule: record ids 1..N each once and in order; record times equal the schedule's; the
    journal's acknowledgements, reconciliations and gap notes cover every recorded id exactly
    once and nothing more; the journal is bound to this plan. ``ValidationError`` for a missing
    or foreign file."""
    if not os.path.isfile(record):
        raise ValidationError(f"record: {record} does not exist", "record")
    rows = read_record(record)
    ids = [i for i, _ in rows]
    n = len(ids)
    report = VerifyReport(strokes=n)
    seen: dict[int, int] = {}
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
    doubled = sorted(i for i, c in seen.items() if c > 1)
    if doubled:
        report.problem(f"record: stroke id(s) {_runs(doubled)} executed more than once")
    top = max(ids, default=0)
    missing = sorted(set(range(1, top + 1)) - set(seen))
    if missing:
        report.problem(f"record: stroke id(s) {_runs(missing)} missing")
    if not doubled and not missing and ids != sorted(ids):
        report.problem("record: stroke ids out of order")
    with Journal(journal, readonly=True) as j:
        cover = np.zeros(top + 2, dtype=np.int64)
        beyond: list[int] = []
        for first, count, _row, kind in j.executed_ranges():
            last = first + count - 1
            if last > top:
                beyond += list(range(max(first, top + 1), last + 1))
            a, b = max(first, 1), min(last, top)
            if a <= b:
                cover[a : b + 1] += 1
            if kind == "note":
                report.notes.append(
                    f"journal: strokes {first} to {last} executed with no journal row (recorded as a gap)"
                )
        twice = [i for i in range(1, top + 1) if cover[i] > 1]
        unjournaled = [i for i in range(1, top + 1) if cover[i] == 0 and i in seen]
        if twice:
            report.problem(f"journal: stroke id(s) {_runs(twice)} acknowledged more than once")
        if unjournaled:
            report.problem(
                f"journal: stroke id(s) {_runs(unjournaled)} executed by the rig with no journal "
                "row and no gap note"
            )
        if beyond:
            report.problem(
                f"journal: acknowledges stroke id(s) {_runs(sorted(set(beyond)))} the record lacks"
            )
        open_ = j.open_intents()
        if open_:
            report.notes.append(
                f"journal: {len(open_)} open intent(s) (a run still going or killed; the next run reconciles them)"
            )
        if plan is not None:
            bound = j.get("schedule_sha256")
            if bound is not None and bound != plan.fingerprint():
                report.problem("journal: bound to another schedule than this scenario's")
            times = [t for _, t in rows]
            sched = plan.times.tolist()
            if n > len(sched):
                report.problem(f"schedule: the record has {n} strokes, the schedule {len(sched)}")
            else:
                bad = next((k for k in range(n) if times[k] != sched[k]), None)
                if bad is not None:
                    report.problem(
                        f"schedule: stroke {bad + 1} ran at {times[bad]} ms, scheduled {sched[bad]} ms"
                    )
                if n < len(sched):
                    report.notes.append(f"schedule: {len(sched) - n} stroke(s) still to run")
    return report
