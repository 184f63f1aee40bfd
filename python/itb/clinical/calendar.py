"""A clinic's refill calendar with capacity: every patient's next refill visit booked at once.

**An engineering tool, not a medical device: nothing here is dosing advice.**

Each patient has a window of days: from the earliest (a minimum interval since the last refill,
a stated earliest date, today) to the latest (the refill planner's deadline:
low-reservoir alarm − margin — with every allotted patient bolus taken when limits are set —,
the drug-stability limit, the ERI/EOS visit), on open clinic days (weekends, closed weekdays,
``holidays`` and extra closures off). Days have a number of slots, optionally per clinician;
appointments already booked are fixed and take their slot first.

Objective (docs: decisions/clinic.md#calendar-objective), lexicographic:

1. the most patients booked within their window (no patient past its deadline while a
   schedule exists that avoids it);
2. then the fewest visits moved from their ideal day (the latest open day of the window: the
   least drug discarded, the longest interval between visits);
3. then the fewest days moved in total.

It is solved exactly as a min-cost flow (OR-Tools ``SimpleMinCostFlow``, ``pip install
'itb-pump[clinic]'``): source → patient (1) → (clinician, day) (slots per clinician) → day (slots)
→ sink, with each patient's day arcs costing ``W·[moved] + days moved`` and an "unfitted" arc
costing more than any fitted schedule. Integral min-cost flows are optimal over integral
schedules, so the objective above is met exactly; tested against brute force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..errors import ValidationError

__all__ = ["CalendarProblem", "CalendarSolution", "solve_calendar"]


@dataclass(frozen=True)
class CalendarProblem:
    """The integer form of a clinic's calendar (days are indices ``0 … len(slots) − 1``).

    Per patient ``i``: ``release[i]`` ≤ day ≤ ``deadline[i]`` (a window with no open day in it
    cannot be fitted), ``ideal[i]`` in the window (or −1 when the window is empty),
    ``clinician[i]`` (an index into the clinicians, −1 for "any") and ``fixed[i]`` (a day
    already booked, −1 for none: it takes its slot whatever the window). ``slots[d]``: visits
    the clinic can take on day ``d`` (0 = closed); ``clinician_slots[c][d]``: visits clinician
    ``c`` can take that day (empty: no per-clinician limit).
    """

    release: Sequence[int]
    deadline: Sequence[int]
    ideal: Sequence[int]
    slots: Sequence[int]
    clinician: Sequence[int] = ()
    clinician_slots: Sequence[Sequence[int]] = ()
    fixed: Sequence[int] = ()


@dataclass(frozen=True)
class CalendarSolution:
    """``day[i]``: the booked day (−1: not fitted within the window), ``clinician[i]`` (−1:
    none); ``unfitted``: the patients not fitted; ``moved``: how many fitted visits are not on
    their ideal day; ``days_moved``: their total distance from it."""

    day: list[int]
    clinician: list[int]
    unfitted: list[int]
    moved: int
    days_moved: int


def _require_ortools() -> Any:
    from .._extras import require

    return require("ortools.graph.python.min_cost_flow", "clinic", "the clinic calendar")


def solve_calendar(problem: CalendarProblem) -> CalendarSolution:
    """The optimal schedule of ``problem`` for the objective of this module (see its docs).

    Cost: one min-cost flow over (patients × window days) arcs. Errors: ``ValidationError``
    naming the sequence and entry (``release[3]``, ``slots[10]``, …)."""
    import numpy as np

    mcf_mod = _require_ortools()
    n = len(problem.release)
    n_days = len(problem.slots)
    release = np.asarray(problem.release, dtype=np.int64)
    deadline = np.asarray(problem.deadline, dtype=np.int64)
    ideal = np.asarray(problem.ideal, dtype=np.int64)
    slots = np.asarray(problem.slots, dtype=np.int64)
    clin = np.asarray(problem.clinician if len(problem.clinician) else [-1] * n, dtype=np.int64)
    fixed = np.asarray(problem.fixed if len(problem.fixed) else [-1] * n, dtype=np.int64)
    n_clin = len(problem.clinician_slots)
    cslots = (
        np.asarray(problem.clinician_slots, dtype=np.int64).reshape(n_clin, n_days)
        if n_clin
        else np.zeros((0, n_days), dtype=np.int64)
    )
    for name, arr in (
        ("deadline", deadline),
        ("ideal", ideal),
        ("clinician", clin),
        ("fixed", fixed),
    ):
        if len(arr) != n:
            raise ValidationError(
                f"{name}: {len(arr)} entries; allowed: one per patient ({n})", name
            )
    if (slots < 0).any():
        i = int(np.argmax(slots < 0))
        raise ValidationError(f"slots[{i}]: {slots[i]}; allowed: >= 0", f"slots[{i}]")
    if (cslots < 0).any():
        raise ValidationError("clinician_slots: negative; allowed: >= 0", "clinician_slots")
    bad = (clin < -1) | (clin >= max(n_clin, 0)) & (clin != -1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValidationError(
            f"clinician[{i}]: {clin[i]}; allowed: -1 or 0 to {n_clin - 1}", f"clinician[{i}]"
        )
    if ((fixed < -1) | (fixed >= n_days)).any():
        i = int(np.argmax((fixed < -1) | (fixed >= n_days)))
        raise ValidationError(
            f"fixed[{i}]: {fixed[i]}; allowed: -1 or a day 0 to {n_days - 1}", f"fixed[{i}]"
        )

    # Fixed appointments take their slots first (even over capacity: they are booked).
    day_left = slots.copy()
    clin_left = cslots.copy()
    out_day = [-1] * n
    out_clin = [int(c) for c in clin]
    free = []
    for i in range(n):
        if fixed[i] >= 0:
            d = int(fixed[i])
            out_day[i] = d
            day_left[d] -= 1
            if clin[i] >= 0 and n_clin:
                clin_left[clin[i], d] -= 1
        else:
            free.append(i)
    day_left = np.maximum(day_left, 0)
    clin_left = np.maximum(clin_left, 0)

    free_arr = np.asarray(free, dtype=np.int64)
    lo = np.maximum(release[free_arr], 0) if len(free) else np.zeros(0, dtype=np.int64)
    hi = np.minimum(deadline[free_arr], n_days - 1) if len(free) else np.zeros(0, dtype=np.int64)
    lengths = np.maximum(hi - lo + 1, 0)
    horizon = max(n_days, 1)
    w_moved = len(free) * horizon + 1
    big = len(free) * (w_moved + horizon) + 1

    # Node numbering: source, patients, (clinician, day) per clinician, day nodes, sink.
    source = 0
    p0 = 1
    cd0 = p0 + len(free)
    d0 = cd0 + n_clin * n_days
    sink = d0 + n_days
    tails, heads, caps, costs = [], [], [], []
    # source → patient
    k = len(free)
    tails.append(np.full(k, source))
    heads.append(p0 + np.arange(k))
    caps.append(np.ones(k, dtype=np.int64))
    costs.append(np.zeros(k, dtype=np.int64))
    # patient → unfitted (straight to the sink)
    tails.append(p0 + np.arange(k))
    heads.append(np.full(k, sink))
    caps.append(np.ones(k, dtype=np.int64))
    costs.append(np.full(k, big, dtype=np.int64))
    # patient → (clinician, day) or day, for each open day of the window
    total = int(lengths.sum())
    if total:
        pat = np.repeat(np.arange(k), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        day = np.repeat(lo, lengths) + (np.arange(total) - starts)
        c = clin[free_arr][pat]
        open_ = day_left[day] > 0
        if n_clin:
            with_c = c >= 0
            open_ &= ~with_c | (clin_left[np.where(with_c, c, 0), day] > 0)
        pat, day, c = pat[open_], day[open_], c[open_]
        ide = ideal[free_arr][pat]
        dist = np.abs(ide - day)
        cost = np.where(dist > 0, w_moved, 0) + dist
        if n_clin:
            head = np.where(c >= 0, cd0 + np.where(c >= 0, c, 0) * n_days + day, d0 + day)
        else:
            head = d0 + day
        tails.append(p0 + pat)
        heads.append(head)
        caps.append(np.ones(len(pat), dtype=np.int64))
        costs.append(cost.astype(np.int64))
    if n_clin:
        cc, dd = np.meshgrid(np.arange(n_clin), np.arange(n_days), indexing="ij")
        tails.append((cd0 + cc * n_days + dd).ravel())
        heads.append((d0 + dd).ravel())
        caps.append(clin_left.ravel())
        costs.append(np.zeros(n_clin * n_days, dtype=np.int64))
    tails.append(d0 + np.arange(n_days))
    heads.append(np.full(n_days, sink))
    caps.append(day_left)
    costs.append(np.zeros(n_days, dtype=np.int64))

    mcf = mcf_mod.SimpleMinCostFlow()
    t = np.concatenate(tails).astype(np.int32)
    h = np.concatenate(heads).astype(np.int32)
    arc_caps = np.concatenate(caps).astype(np.int64)
    arc_costs = np.concatenate(costs).astype(np.int64)
    first_window_arc = 2 * k
    mcf.add_arcs_with_capacity_and_unit_cost(t, h, arc_caps, arc_costs)
    mcf.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([k, -k], dtype=np.int64)
    )
    status = mcf.solve()
    if status != mcf.OPTIMAL:  # cannot happen: the unfitted arcs make every problem feasible
        raise ValidationError(f"calendar: the solver reported status {status}", "calendar")
    flows = mcf.flows(np.arange(len(t), dtype=np.int32))
    unfitted: list[int] = []
    if total:
        chosen = np.nonzero(flows[first_window_arc : first_window_arc + len(pat)] > 0)[0]
        for j in chosen:
            i = free[int(pat[j])]
            out_day[i] = int(day[j])
    moved = days_moved = 0
    for i in range(n):
        if fixed[i] >= 0:
            continue
        if out_day[i] < 0:
            unfitted.append(i)
            continue
        dist = abs(int(ideal[i]) - out_day[i])
        moved += dist > 0
        days_moved += dist
    return CalendarSolution(out_day, out_clin, unfitted, moved, days_moved)


def day_index(day: date, first: date) -> int:
    return (day - first).days


def as_date(value: date | datetime, field: str) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValidationError(f"{field}: a tz-aware datetime; allowed: naive", field)
        return value.date()
    if isinstance(value, date):
        return value
    raise ValidationError(f"{field}: expected a date, got {type(value).__name__}", field)


def days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]
