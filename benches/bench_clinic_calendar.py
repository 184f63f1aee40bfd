"""Clinic calendar: 10 000 patients over a year booked optimally (the min-cost-flow solver of
itb.clinical.calendar), as a ratio against a baseline run in the same process: a pure-Python
earliest-deadline-first greedy (feasibility only, no optimality) of the same problem.

Windows: each patient's deadline uniform over the year, window 7–28 days before it; 5 open days
a week, slots sized so that the clinic is ~90 % loaded; a tenth of patients fixed to a booked day.
Run: python benches/bench_clinic_calendar.py
"""

from __future__ import annotations

import heapq
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402
from itb.clinical.calendar import CalendarProblem, solve_calendar  # noqa: E402


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


if __name__ == "__main__":
    main()
