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

The patient → day arcs go through interval (segment) trees, O(log days) arcs per patient with
the same path costs, and patients alike share one node (docs:
decisions/clinic.md#calendar-network-interval-trees): 10 000 patients with 87-day windows are
≈ 120 k arcs instead of ≈ 0.6 M.
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

    Cost: one min-cost flow over O((patient classes) × log(days)) arcs. Errors: ``ValidationError``
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
    k = len(free)
    horizon = max(n_days, 1)
    w_moved = k * horizon + 1
    big = k * (w_moved + horizon) + 1
    # Patients alike for the problem (same clinician, window and ideal day) are one node with
    # as many units: any way of handing the class's places to its members is optimal.
    # windows clipped to the horizon: one opening after it ([n_days, …]) or closing before day 0
    # ([…, −1]) is empty and gets no day arcs (only the unfitted one)
    lo_all = np.clip(release[free_arr], 0, n_days) if k else np.zeros(0, dtype=np.int64)
    hi_all = np.clip(deadline[free_arr], -1, n_days - 1) if k else np.zeros(0, dtype=np.int64)
    g_all = np.where(clin[free_arr] >= 0, clin[free_arr] + 1, 0) if k and n_clin else lo_all * 0
    keys = np.stack([g_all, lo_all, hi_all, ideal[free_arr] if k else lo_all]).T
    classes, member_of, count = np.unique(
        keys.reshape(k, 4), axis=0, return_inverse=True, return_counts=True
    )
    member_of = member_of.reshape(-1)
    group, lo, hi, ide = (classes[:, j] for j in range(4))
    n_cls = len(classes)

    # Node numbering: source, classes, (clinician, day) per clinician, day nodes, sink, then
    # the interval trees. A class's group: 0 = any clinician (its days are the day nodes),
    # 1 + c = clinician c (the (c, day) nodes).
    source = 0
    p0 = 1
    cd0 = p0 + n_cls
    d0 = cd0 + n_clin * n_days
    sink = d0 + n_days
    width = 1
    while width < n_days:
        width *= 2
    tree0 = sink + 1

    def target(g: Any, d: Any) -> Any:
        return np.where(g > 0, cd0 + np.maximum(g - 1, 0) * n_days + d, d0 + d)

    tails, heads, caps, costs = [], [], [], []

    def arcs(t: Any, h: Any, cap: Any, cost: Any) -> None:
        tails.append(np.asarray(t, dtype=np.int64))
        heads.append(np.asarray(h, dtype=np.int64))
        caps.append(np.broadcast_to(np.asarray(cap, dtype=np.int64), np.shape(t)))
        costs.append(np.broadcast_to(np.asarray(cost, dtype=np.int64), np.shape(t)))

    cls_nodes = p0 + np.arange(n_cls)
    arcs(np.full(n_cls, source), cls_nodes, count, 0)  # source → class
    arcs(cls_nodes, np.full(n_cls, sink), count, big)  # class → unfitted (straight to the sink)
    # class → its ideal day, at no cost
    direct = (lo <= ide) & (ide <= hi)
    direct_cls = np.nonzero(direct)[0]
    arcs(p0 + direct_cls, target(group[direct_cls], ide[direct_cls]), count[direct_cls], 0)
    first_tree_arc = sum(len(t) for t in tails)
    # class → every other day of its window through interval trees (a segment tree per group
    # and side of the ideal day): the window [lo, ideal − 1] is O(log days) tree nodes whose
    # leaves are those days. A day d before the ideal costs (W + ideal − H) on the class's
    # arcs plus (H − d) on the leaf's, after it (W − ideal) plus d: in total W·[moved] + days
    # moved, exactly as one arc per (patient, day) would, with O(log days) arcs per class.
    sides = (
        (lo, np.minimum(hi, ide - 1), w_moved + ide - horizon),
        (np.maximum(lo, ide + 1), hi, w_moved - ide),
    )
    used = sorted({int(g) for g in group})
    slot_of_group = {g: j for j, g in enumerate(used)}
    tree_cls, tree_id = [], []
    # a side with no day left open (a clinic's ideal day is the window's last open day) needs
    # no arcs: its days have no capacity
    opened = np.concatenate([[0], np.cumsum(day_left > 0)])
    for s, (a, b, cost) in enumerate(sides):
        has = np.nonzero((a <= b) & (opened[np.maximum(b, a - 1) + 1] > opened[a]))[0]
        if not len(has):
            continue
        tid = np.array([2 * slot_of_group[int(g)] + s for g in group[has]], dtype=np.int64)
        left, right = a[has] + width, b[has] + width + 1
        while True:
            live = left < right
            if not live.any():
                break
            take = live & (left & 1 == 1)
            tree_cls.append(has[take])
            tree_id.append(tid[take])
            node = tree0 + tid[take] * 2 * width + left[take]
            arcs(p0 + has[take], node, count[has[take]], cost[has[take]])
            left = np.where(take, left + 1, left)
            take = live & (right & 1 == 1)
            right = np.where(take, right - 1, right)
            tree_cls.append(has[take])
            tree_id.append(tid[take])
            node = tree0 + tid[take] * 2 * width + right[take]
            arcs(p0 + has[take], node, count[has[take]], cost[has[take]])
            left >>= 1
            right >>= 1
    n_trees = 2 * len(used)
    leaf_first = sum(len(t) for t in tails)
    inner = np.arange(1, width)
    days_ = np.arange(n_days)
    for t in range(n_trees):
        base = tree0 + t * 2 * width
        g = used[t // 2]
        arcs(base + inner, base + 2 * inner, k, 0)
        arcs(base + inner, base + 2 * inner + 1, k, 0)
        leaf_cost = horizon - days_ if t % 2 == 0 else days_
        arcs(base + width + days_, target(np.full(n_days, g), days_), k, leaf_cost)
    if n_clin:
        cc, dd = np.meshgrid(np.arange(n_clin), np.arange(n_days), indexing="ij")
        arcs((cd0 + cc * n_days + dd).ravel(), (d0 + dd).ravel(), clin_left.ravel(), 0)
    arcs(d0 + np.arange(n_days), np.full(n_days, sink), day_left, 0)

    mcf = mcf_mod.SimpleMinCostFlow()
    t_ = np.concatenate(tails).astype(np.int32)
    h_ = np.concatenate(heads).astype(np.int32)
    mcf.add_arcs_with_capacity_and_unit_cost(
        t_, h_, np.concatenate(caps).astype(np.int64), np.concatenate(costs).astype(np.int64)
    )
    mcf.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([k, -k], dtype=np.int64)
    )
    status = mcf.solve()
    if status != mcf.OPTIMAL:  # cannot happen: the unfitted arcs make every problem feasible
        raise ValidationError(f"calendar: the solver reported status {status}", "calendar")
    flows = mcf.flows(np.arange(len(t_), dtype=np.int32))
    # each class's members (free patients in input order), handed out in that order
    members: list[list[int]] = [[] for _ in range(n_cls)]
    for j, c in enumerate(member_of.tolist()):
        members[c].append(free[j])
    taken = [0] * n_cls

    def hand_out(c: int, f: int) -> list[int]:
        got = members[c][taken[c] : taken[c] + f]
        taken[c] += f
        return got

    direct_flow = flows[2 * n_cls : 2 * n_cls + len(direct_cls)]
    for j in np.nonzero(direct_flow > 0)[0].tolist():
        c = int(direct_cls[j])
        for i in hand_out(c, int(direct_flow[j])):
            out_day[i] = int(ide[c])
    if tree_cls:
        # Which day each tree unit gets: any matching of the tree's units to the places leaving
        # its leaves, each unit to a day of its class's side range, has the flow's cost; the
        # flow proves one exists and earliest-end-first finds one (Glover's rule for intervals).
        cls_all = np.concatenate(tree_cls)
        tid_all = np.concatenate(tree_id)
        sent = flows[first_tree_arc : first_tree_arc + len(cls_all)]
        leaf_units = _leaf_flows(flows, leaf_first, n_trees, width, n_days)
        for t in range(n_trees):
            a, b, _ = sides[t % 2]
            who, starts, ends = [], [], []
            for j in np.nonzero((sent > 0) & (tid_all == t))[0].tolist():
                c = int(cls_all[j])
                got = hand_out(c, int(sent[j]))
                who += got
                starts += [int(a[c])] * len(got)
                ends += [int(b[c])] * len(got)
            if who:
                for i, d in _match(np.asarray(starts), np.asarray(ends), who, leaf_units[t]):
                    out_day[i] = d
    unfitted: list[int] = []
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


def _leaf_flows(flows: Any, first: int, n_trees: int, width: int, n_days: int) -> Any:
    """Units leaving each tree's leaves, per tree and day (the arcs are laid out tree by tree:
    ``width − 1`` left-child arcs, as many right-child arcs, then ``n_days`` leaf arcs)."""
    per_tree = 2 * (width - 1) + n_days
    out = []
    for t in range(n_trees):
        base = first + t * per_tree + 2 * (width - 1)
        out.append(flows[base : base + n_days])
    return out


def _match(a: Any, b: Any, who: list[int], units: Any) -> list[tuple[int, int]]:
    """Patients with day ranges ``[a, b]`` onto ``units[d]`` places per day: day by day, the
    open range that ends first takes the place (earliest deadline first)."""
    import heapq

    import numpy as np

    order = np.argsort(a, kind="stable").tolist()
    heap: list[tuple[int, int]] = []
    out: list[tuple[int, int]] = []
    j = 0
    for d in np.nonzero(units > 0)[0].tolist():
        while j < len(order) and a[order[j]] <= d:
            heapq.heappush(heap, (int(b[order[j]]), int(order[j])))
            j += 1
        for _ in range(int(units[d])):
            if not heap or heap[0][0] < d:  # cannot happen: the flow is such a matching
                raise ValidationError("calendar: no matching of the solver's flow", "calendar")
            _, m = heapq.heappop(heap)
            out.append((who[m], d))
    return out


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
