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
        # the clinic's ideal is the window's last day; the solver takes any day of it
        ideal.append(-1 if d < r else draw(st.sampled_from([d, draw(st.integers(r, d))])))
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


def dense_optimum(p: CalendarProblem) -> tuple[int, int, int]:
    """The objective's optimum from the plain network: one arc per patient and window day
    (source → patient → (clinician, day) → day → sink; an unfitted arc per patient), costs
    W·[moved] + days moved, solved by OR-Tools' min-cost flow; fixed patients take their slot
    first. An independent formulation of the same problem, for clinics too large to enumerate."""
    from ortools.graph.python import min_cost_flow

    n, n_days = len(p.release), len(p.slots)
    clin = list(p.clinician) or [-1] * n
    fixed = list(p.fixed) or [-1] * n
    n_clin = len(p.clinician_slots)
    left = list(p.slots)
    cleft = [list(row) for row in p.clinician_slots]
    for i in range(n):
        if fixed[i] >= 0:
            left[fixed[i]] -= 1
            if clin[i] >= 0 and n_clin:
                cleft[clin[i]][fixed[i]] -= 1
    free = [i for i in range(n) if fixed[i] < 0]
    w = len(free) * n_days + 1
    big = len(free) * (w + n_days) + 1
    src, sink = 0, 1
    pat = {i: 2 + j for j, i in enumerate(free)}
    cd = lambda c, d: 2 + len(free) + c * n_days + d  # noqa: E731
    day = lambda d: 2 + len(free) + n_clin * n_days + d  # noqa: E731
    mcf = min_cost_flow.SimpleMinCostFlow()
    for i in free:
        mcf.add_arc_with_capacity_and_unit_cost(src, pat[i], 1, 0)
        mcf.add_arc_with_capacity_and_unit_cost(pat[i], sink, 1, big)
        for d in range(max(p.release[i], 0), min(p.deadline[i], n_days - 1) + 1):
            dist = abs(d - p.ideal[i])
            head = cd(clin[i], d) if clin[i] >= 0 and n_clin else day(d)
            mcf.add_arc_with_capacity_and_unit_cost(pat[i], head, 1, w * (dist > 0) + dist)
    for c in range(n_clin):
        for d in range(n_days):
            mcf.add_arc_with_capacity_and_unit_cost(cd(c, d), day(d), max(cleft[c][d], 0), 0)
    for d in range(n_days):
        mcf.add_arc_with_capacity_and_unit_cost(day(d), sink, max(left[d], 0), 0)
    mcf.set_node_supply(src, len(free))
    mcf.set_node_supply(sink, -len(free))
    assert mcf.solve() == mcf.OPTIMAL
    cost = mcf.optimal_cost()
    unfitted, rest = divmod(cost, big)
    moved, dist = divmod(rest, w)
    return unfitted, moved, dist


@st.composite
def big_clinics(draw):
    n_days = draw(st.integers(20, 80))
    n = draw(st.integers(5, 60))
    slots = draw(st.lists(st.integers(0, 3), min_size=n_days, max_size=n_days))
    n_clin = draw(st.integers(0, 3))
    cslots = [
        draw(st.lists(st.integers(0, 2), min_size=n_days, max_size=n_days)) for _ in range(n_clin)
    ]
    release, deadline, ideal, clin, fixed = [], [], [], [], []
    for _ in range(n):
        r = draw(st.integers(-3, n_days - 1))
        d = draw(st.integers(r - 1, n_days + 3))
        release.append(r)
        deadline.append(d)
        lo, hi = max(r, 0), min(d, n_days - 1)
        ideal.append(-1 if hi < lo else draw(st.integers(lo, hi)))
        clin.append(draw(st.integers(-1, n_clin - 1)))
        fixed.append(draw(st.sampled_from([-1] * 9 + [draw(st.integers(0, n_days - 1))])))
    # patients alike (the solver merges them into one node): copies of drawn ones
    for _ in range(draw(st.integers(0, 40))):
        j = draw(st.integers(0, n - 1))
        for col in (release, deadline, ideal, clin, fixed):
            col.append(col[j])
    return CalendarProblem(release, deadline, ideal, slots, clin, cslots, fixed)


@settings(max_examples=60, deadline=None)
@given(big_clinics())
def test_optimal_against_the_plain_network(p: CalendarProblem) -> None:
    """The solver's interval-tree network (O(log days) arcs per patient) reaches the optimum
    of the plain one-arc-per-day network, and its schedule is valid and costs what it says."""
    sol = solve_calendar(p)
    assert (len(sol.unfitted), sol.moved, sol.days_moved) == dense_optimum(p)
    n_days = len(p.slots)
    clin = list(p.clinician)
    for i, d in enumerate(sol.day):
        if p.fixed[i] >= 0:
            assert d == p.fixed[i]
        elif d >= 0:
            assert max(p.release[i], 0) <= d <= min(p.deadline[i], n_days - 1)
    for d in range(n_days):
        fixed_here = [i for i in range(len(sol.day)) if p.fixed[i] == d]
        free_here = [i for i, x in enumerate(sol.day) if x == d and p.fixed[i] < 0]
        assert len(free_here) <= max(p.slots[d] - len(fixed_here), 0)
        for c in range(len(p.clinician_slots)):
            f = sum(1 for i in fixed_here if clin[i] == c)
            g = sum(1 for i in free_here if clin[i] == c)
            assert g <= max(p.clinician_slots[c][d] - f, 0)
    moved = sum(
        1
        for i in range(len(sol.day))
        if sol.day[i] >= 0 and p.fixed[i] < 0 and sol.day[i] != p.ideal[i]
    )
    assert moved == sol.moved


def test_by_hand() -> None:
    """Two slots on day 2, three patients whose ideal is day 2: one moves to day 1 (the one
    whose window allows it); a fourth with an empty window is unfitted."""
    p = CalendarProblem(
        release=[2, 1, 2, 3], deadline=[2, 2, 2, 2], ideal=[2, 2, 2, -1], slots=[0, 1, 2, 1]
    )
    sol = solve_calendar(p)
    assert sol.day == [2, 1, 2, -1] and sol.unfitted == [3] and sol.moved == 1
