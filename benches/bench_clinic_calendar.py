"""Clinic calendar: 10 000 patients over a year booked optimally (the min-cost-flow solver of
itb.clinical.calendar), as a ratio against a baseline run in the same process: a pure-Python
earliest-deadline-first greedy (feasibility only, no optimality) of the same problem.

Windows: each patient's deadline uniform over the year, window 7–28 days before it; 5 open days
a week, slots sized so that the clinic is ~90 % loaded; a tenth of patients fixed to a booked day.
The second figure is the whole pipeline, ``itb.clinical.plan_clinic``: 10 000 pumps as read
(reservoir, dose, battery) → each patient's window (projection of the low-reservoir alarm, EOS,
minimum interval) → the schedule, against the same EDF greedy on the windows it built.
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


def main() -> None:
    p = problem()
    t_base, booked = best_of(3, lambda: p, edf)
    t_solve, sol = best_of(3, lambda: p, solve_calendar)
    print(
        f"10 000 patients, 365 days: solver {t_solve * 1e3:.0f} ms, EDF greedy {t_base * 1e3:.0f} ms"
    )
    print(f"ratio solver / greedy: {t_solve / t_base:.1f}x")
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


if __name__ == "__main__":
    main()
    pipeline(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
