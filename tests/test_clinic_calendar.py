"""The clinic calendar's solver against brute force on small random clinics."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("ortools")

from itb.clinical.calendar import CalendarProblem, solve_calendar  # noqa: E402


def brute_force(p: CalendarProblem) -> tuple[int, int, int]:
    """Best (unfitted, moved, days moved) over every assignment (a day of the window or none)."""
    n, n_days = len(p.release), len(p.slots)
    clin = list(p.clinician) or [-1] * n
    fixed = list(p.fixed) or [-1] * n
    choices = []
    for i in range(n):
        if fixed[i] >= 0:
            choices.append([fixed[i]])
        else:
            lo, hi = max(p.release[i], 0), min(p.deadline[i], n_days - 1)
            choices.append([-1] + list(range(lo, hi + 1)))
    best = None
    for days in itertools.product(*choices):
        used = [0] * n_days
        cused = [[0] * n_days for _ in p.clinician_slots]
        for i, d in enumerate(days):
            if d >= 0:
                used[d] += 1
                if clin[i] >= 0 and p.clinician_slots:
                    cused[clin[i]][d] += 1
        ok = all(
            used[d] <= max(p.slots[d], sum(1 for i in range(n) if fixed[i] == d))
            for d in range(n_days)
        )
        # free patients may only use what the fixed ones left
        for d in range(n_days):
            n_fixed = sum(1 for i in range(n) if fixed[i] == d)
            n_free = sum(1 for i in range(n) if fixed[i] < 0 and days[i] == d)
            if n_free > max(p.slots[d] - n_fixed, 0):
                ok = False
            for c in range(len(p.clinician_slots)):
                f = sum(1 for i in range(n) if fixed[i] == d and clin[i] == c)
                g = sum(1 for i in range(n) if fixed[i] < 0 and days[i] == d and clin[i] == c)
                if g > max(p.clinician_slots[c][d] - f, 0):
                    ok = False
        if not ok:
            continue
        free = [i for i in range(n) if fixed[i] < 0]
        unfitted = sum(1 for i in free if days[i] < 0)
        moved = sum(1 for i in free if days[i] >= 0 and days[i] != p.ideal[i])
        dist = sum(abs(days[i] - p.ideal[i]) for i in free if days[i] >= 0)
        key = (unfitted, moved, dist)
        best = key if best is None or key < best else best
    assert best is not None
    return best


@st.composite
def clinics(draw):
    n_days = draw(st.integers(1, 6))
    n = draw(st.integers(1, 5))
    slots = draw(st.lists(st.integers(0, 2), min_size=n_days, max_size=n_days))
    n_clin = draw(st.integers(0, 2))
    cslots = [
        draw(st.lists(st.integers(0, 1), min_size=n_days, max_size=n_days)) for _ in range(n_clin)
    ]
    release, deadline, ideal, clin, fixed = [], [], [], [], []
    for _ in range(n):
        r = draw(st.integers(0, n_days - 1))
        d = draw(st.integers(r - 1, n_days - 1))
        release.append(r)
        deadline.append(d)
        ideal.append(d if d >= r else -1)
        clin.append(draw(st.integers(-1, n_clin - 1)))
        fixed.append(draw(st.sampled_from([-1, -1, -1, draw(st.integers(0, n_days - 1))])))
    return CalendarProblem(release, deadline, ideal, slots, clin, cslots, fixed)


@settings(max_examples=150, deadline=None)
@given(clinics())
def test_optimal_against_brute_force(p: CalendarProblem) -> None:
    sol = solve_calendar(p)
    assert (len(sol.unfitted), sol.moved, sol.days_moved) == brute_force(p)
    # the schedule itself is valid: windows and capacities
    n_days = len(p.slots)
    for i, d in enumerate(sol.day):
        if p.fixed[i] >= 0:
            assert d == p.fixed[i]
        elif d >= 0:
            assert p.release[i] <= d <= p.deadline[i] and p.slots[d] > 0
    for d in range(n_days):
        fixed_here = sum(1 for i in range(len(sol.day)) if p.fixed[i] == d)
        assert sum(1 for x in sol.day if x == d) <= max(p.slots[d], fixed_here)


def test_by_hand() -> None:
    """Two slots on day 2, three patients whose ideal is day 2: one moves to day 1 (the one
    whose window allows it); a fourth with an empty window is unfitted."""
    p = CalendarProblem(
        release=[2, 1, 2, 3], deadline=[2, 2, 2, 2], ideal=[2, 2, 2, -1], slots=[0, 1, 2, 1]
    )
    sol = solve_calendar(p)
    assert sol.day == [2, 1, 2, -1] and sol.unfitted == [3] and sol.moved == 1
