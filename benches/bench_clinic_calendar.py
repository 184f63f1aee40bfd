"""Clinic calendar: 10 000 patients over a year booked optimally (the min-cost-flow solver of
itb.clinical.calendar), as a ratio against a baseline run in the same process: a pure-Python
earliest-deadline-first greedy (feasibility only, no optimality) of the same problem.

Windows: each patient's deadline uniform over the year, window 7–28 days before it; 5 open days
a week, slots sized so that the clinic is ~90 % loaded; a tenth of patients fixed to a booked day.
The second figure is the whole pipeline, ``itb.clinical.plan_clinic``: 10 000 pumps as read
(reservoir, dose, battery) → each patient's window (projection of the low-reservoir alarm, EOS,
minimum interval) → the schedule, against the same EDF greedy on the windows it built.
Two same-process baselines show what the solver's structure buys: the plain network (one arc
per patient and window day, as the solver was first built) on the same problems, and windows
built pump by pump with ``plan_refill`` (three projections, a simulated copy and a reason text
per pump) instead of the batched projections ``plan_clinic`` uses.
Run: python benches/bench_clinic_calendar.py [N]
"""

from __future__ import annotations

import heapq
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402
from itb.clinical.calendar import CalendarProblem, solve_calendar  # noqa: E402


def patients(n: int = 10_000, seed: int = 2) -> list:
    """n pumps read on 2026-03-02: reservoir 1–40 mL, 100–900 µg/day at 2000 µg/mL, a 28-day
    minimum interval since a refill in the last 60 days."""
    from datetime import date, datetime, timedelta

    import itb
    from itb.clinical import ClinicPatient

    rng = random.Random(seed)
    model = itb.models.SYNCHROMED_II_40
    out = []
    for i in range(n):
        pump = itb.Pump.from_reading(
            model,
            now=datetime(2026, 3, 2, 9, 0),
            reservoir_ml=round(rng.uniform(1.0, 40.0), 2),
            concentration_ug_per_ml=2000,
            program=itb.Continuous(round(rng.uniform(100.0, 900.0), 0)),
            battery_mah=round(rng.uniform(40.0, 500.0), 1),
        )
        out.append(
            ClinicPatient(
                id=f"P{i:05d}",
                pump=pump,
                last_refill=date(2026, 3, 2) - timedelta(days=rng.randrange(60)),
                min_interval=timedelta(days=28),
                vial_ml=20.0,
            )
        )
    return out


def problem(n: int = 10_000, days: int = 365, seed: int = 1) -> CalendarProblem:
    rng = random.Random(seed)
    open_days = [d for d in range(days) if d % 7 < 5]
    per_day = -(-n // int(len(open_days) * 0.9))
    slots = [per_day if d % 7 < 5 else 0 for d in range(days)]
    release, deadline, ideal, fixed = [], [], [], []
    for _ in range(n):
        dl = rng.randrange(days)
        r = max(dl - rng.randint(7, 28), 0)
        release.append(r)
        deadline.append(dl)
        ide = next((d for d in range(dl, r - 1, -1) if slots[d]), -1)
        ideal.append(ide)
        fixed.append(ide if rng.random() < 0.1 and ide >= 0 else -1)
    return CalendarProblem(release, deadline, ideal, slots, (), (), fixed)


def edf(p: CalendarProblem) -> int:
    """Earliest deadline first, day by day: how many are booked in their window."""
    by_release: dict[int, list[int]] = {}
    for i, r in enumerate(p.release):
        by_release.setdefault(r, []).append(i)
    heap: list[tuple[int, int]] = []
    booked = 0
    for d, cap in enumerate(p.slots):
        for i in by_release.get(d, ()):
            heapq.heappush(heap, (p.deadline[i], i))
        while heap and heap[0][0] < d:
            heapq.heappop(heap)
        for _ in range(cap):
            if not heap:
                break
            heapq.heappop(heap)
            booked += 1
    return booked


def plain_network(p: CalendarProblem) -> tuple[int, int]:
    """The same objective over the plain network: one arc per patient and open window day
    (costs W·[moved] + days moved), no clinicians, no fixed visits; (unfitted, cost)."""
    import numpy as np
    from ortools.graph.python import min_cost_flow

    n, n_days = len(p.release), len(p.slots)
    lo = np.maximum(np.asarray(p.release), 0)
    hi = np.minimum(np.asarray(p.deadline), n_days - 1)
    ideal = np.asarray(p.ideal)
    slots = np.asarray(p.slots)
    lengths = np.maximum(hi - lo + 1, 0)
    w = n * n_days + 1
    big = n * (w + n_days) + 1
    sink = 1 + n + n_days
    pat = np.repeat(np.arange(n), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    day = np.repeat(lo, lengths) + (np.arange(int(lengths.sum())) - starts)
    keep = slots[day] > 0
    pat, day = pat[keep], day[keep]
    dist = np.abs(ideal[pat] - day)
    tails = np.concatenate([np.zeros(n), 1 + np.arange(n), 1 + pat, 1 + n + np.arange(n_days)])
    heads = np.concatenate([1 + np.arange(n), np.full(n, sink), 1 + n + day, np.full(n_days, sink)])
    caps = np.concatenate([np.ones(n), np.ones(n), np.ones(len(pat)), slots])
    costs = np.concatenate([np.zeros(n), np.full(n, big), w * (dist > 0) + dist, np.zeros(n_days)])
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32),
        heads.astype(np.int32),
        caps.astype(np.int64),
        costs.astype(np.int64),
    )
    mcf.set_nodes_supplies(np.array([0, sink], dtype=np.int32), np.array([n, -n], dtype=np.int64))
    assert mcf.solve() == mcf.OPTIMAL
    return divmod(mcf.optimal_cost(), big)[0], len(pat)


def main() -> None:
    p = problem()
    t_base, booked = best_of(3, lambda: p, edf)
    t_solve, sol = best_of(3, lambda: p, solve_calendar)
    print(
        f"10 000 patients, 365 days: solver {t_solve * 1e3:.0f} ms, EDF greedy {t_base * 1e3:.0f} ms"
    )
    print(f"ratio solver / greedy: {t_solve / t_base:.1f}x")
    free = [i for i, f in enumerate(p.fixed) if f < 0]
    plain_p = CalendarProblem(
        [p.release[i] for i in free],
        [p.deadline[i] for i in free],
        [p.ideal[i] for i in free],
        p.slots,
    )
    t_plain, (_, arcs) = best_of(3, lambda: plain_p, plain_network)
    t_tree, _ = best_of(3, lambda: plain_p, solve_calendar)
    print(
        f"the {len(free)} free patients alone: interval-tree network {t_tree * 1e3:.0f} ms, "
        f"plain network ({arcs} patient-day arcs) {t_plain * 1e3:.0f} ms: "
        f"ratio plain / tree {t_plain / t_tree:.1f}x"
    )
    print(
        f"booked: solver {len(p.release) - len(sol.unfitted)}, greedy {booked}; moved {sol.moved}"
    )


def pipeline(n: int) -> None:
    from itb.clinical import plan_clinic

    pts = patients(n)
    slots = -(-n // 200)  # ~250 open days: the clinic about half loaded

    def run(ps: list) -> object:
        return plan_clinic(ps, slots_per_day=slots, days=365)

    t_plan, plan = best_of(3, lambda: pts, run)
    # the baseline on the windows the pipeline built (opening: the reading, or the minimum
    # interval since the last refill; closing: the last appointment at or before the deadline,
    # as itb.clinical.clinic counts them); capacity as planned
    from datetime import datetime

    from itb.clinical.clinic import _first_day_at_or_after, _last_day_at_or_before
    from itb.clinical.refill import ClinicCalendar

    cal = ClinicCalendar()
    first = plan.first_day
    horizon = len(plan.capacity)
    release = [
        min(
            _first_day_at_or_after(
                max(
                    p.pump.now,
                    datetime.combine(p.last_refill, datetime.min.time()) + p.min_interval,
                ),
                first,
                cal,
            ),
            horizon - 1,
        )
        for p in pts
    ]
    deadline = [
        min(_last_day_at_or_before(v.deadline, first, cal), horizon - 1) for v in plan.visits
    ]
    base = CalendarProblem(release, deadline, [-1] * n, plan.capacity, (), (), [-1] * n)
    t_base, booked = best_of(3, lambda: base, edf)
    print(
        f"{n} patients, whole pipeline (readings → windows → schedule): {t_plan * 1e3:.0f} ms; "
        f"booked {sum(1 for v in plan.visits if v.fitted)}, not fitted {len(plan.unfitted)}"
    )
    print(
        f"EDF greedy on the same windows {t_base * 1e3:.0f} ms (booked {booked}); "
        f"ratio pipeline / greedy: {t_plan / t_base:.0f}x"
    )
    # The pieces, against their same-process baselines: windows pump by pump with the refill
    # planner; the schedule of the pipeline's own windows over the plain network.
    from itb.clinical import plan_refill
    from itb.pump import project_many

    def batched(ps: list) -> object:
        pumps = [q.pump for q in ps]
        return project_many(pumps), project_many(pumps, assume_refills=True)

    def one_by_one(ps: list) -> object:
        return [plan_refill(q.pump, calendar=cal, vial_ml=q.vial_ml) for q in ps]

    t_batch, _ = best_of(3, lambda: pts, batched)
    t_one, _ = best_of(1, lambda: pts, one_by_one)
    print(
        f"projections for the windows: batched (project_many) {t_batch * 1e3:.0f} ms, "
        f"plan_refill pump by pump {t_one * 1e3:.0f} ms: ratio {t_one / t_batch:.0f}x"
    )
    ideal = [
        next((d for d in range(dl, r - 1, -1) if 0 <= d < horizon and plan.capacity[d]), -1)
        for r, dl in zip(release, deadline)
    ]
    own = CalendarProblem(release, deadline, ideal, plan.capacity)
    t_tree, _ = best_of(3, lambda: own, solve_calendar)
    t_plain, (_, arcs) = best_of(1, lambda: own, plain_network)
    print(
        f"schedule of the pipeline's windows: interval-tree network {t_tree * 1e3:.0f} ms, "
        f"plain network ({arcs} patient-day arcs) {t_plain * 1e3:.0f} ms: "
        f"ratio plain / tree {t_plain / t_tree:.1f}x"
    )


if __name__ == "__main__":
    main()
    pipeline(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
