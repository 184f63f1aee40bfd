"""Stateful differential test: ``itb.Pump`` (Rust core) against the pure-Python oracle
``tests/reference.py`` (``RefPump(all_events=True)``), driven in lock step by a hypothesis
``RuleBasedStateMachine`` through advances, timed boluses, cancellations, refills (with measured
aspirates and flagged discrepancies), patient-bolus limits and activations, suspend/resume,
motor-stall fault injection, program changes and snapshot → restore.

Compared after every step: clock, stroke count, every stroke time, firmware reservoir, the exact
physical ledgers in fL and ag (reservoir, path, delivered, filled, withdrawn), the path FIFO, tip
concentration, accumulator remainder, suspended/stalled/empty/low-alarm flags, and — at every
advance — the non-``stroke_batch`` events (time, kind, and every data field the reference
defines). Invariants: conservation in fL and ag on both sides; events ordered by time, then by the
fixed kind order.

The calls that must be rejected are predicted here from the spec (docs: concepts.md and
docs: decisions/index.md); the core must raise exactly then, with a typed error, and change nothing.

The first tests are hand-computed checks of the reference's newer features (fluid path FIFO,
off-nominal strokes, refill discrepancy, patient boluses, suspend/fault); each is run on the core
as well.

Known core bug (strict xfail ``test_dry_partial_stroke_emits_no_drug_at_tip``): a spurious
``drug_at_tip`` with from == to on a stroke that runs the physical reservoir dry. The machine
skips exactly such events (never valid: they announce no change) and compares everything else.
"""

from __future__ import annotations

import copy
import os
from datetime import timedelta

import itb
import numpy as np
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from itb import _core
from itb.testing import invariants
from reference import (
    FL_PER_NL,
    D,
    RefPump,
    bolus_volume_nl,
    ceil_div,
    volume_rate_nl_per_day,
)

H = 3_600_000
NOW0 = 20_458 * D + 8 * H  # 2026-01-05 08:00 on the pump clock


# --------------------------------------------------------------------------------------------
# Helpers shared by the unit tests and the state machine
# --------------------------------------------------------------------------------------------


def core_model(q, capacity, min_rate, max_rate, low, path, name="stateful"):
    return {
        "name": name,
        "reservoir_nl": capacity,
        "stroke_nl": q,
        "min_rate_nl_per_day": min_rate,
        "max_rate_nl_per_day": max_rate,
        "low_reservoir_nl": low,
        "pump_path_nl": path,
    }


def make_pair(model: dict, *, now, fill, conc, program, catheter=0, error_ppm=0, primed=True):
    """(core pump, reference pump) built from the same exact inputs."""
    core = _core.Pump(
        model=model,
        now_ms=now,
        reservoir_nl=fill,
        concentration=conc,
        program=program,
        catheter_nl=catheter,
        stroke_error_ppm=error_ppm,
        path_primed=primed,
    )
    ref = RefPump(
        now_ms=now,
        stroke_nl=model["stroke_nl"],
        capacity_nl=model["reservoir_nl"],
        reservoir_nl=fill,
        low_reservoir_nl=model["low_reservoir_nl"],
        conc_ug_per_ml=conc,
        program=program,
        pump_path_nl=model["pump_path_nl"],
        catheter_nl=catheter,
        stroke_error_ppm=error_ppm,
        path_primed=primed,
        max_rate_nl_per_day=model["max_rate_nl_per_day"],
        all_events=True,
    )
    return core, ref


def ledgers(p) -> dict:
    """The physical ledgers of a core pump (``_core.Pump``) or a ``RefPump``."""
    if isinstance(p, RefPump):
        return dict(
            reservoir_nl=p.reservoir_nl,
            true_reservoir_fl=p.true_reservoir_fl,
            path_fl=p.path_fl,
            path_ag=p.path_ag,
            delivered_fl=p.delivered_fl,
            delivered_ag=p.delivered_ag,
            filled_fl=p.filled_fl,
            filled_ag=p.filled_ag,
            withdrawn_fl=p.withdrawn_fl,
            withdrawn_ag=p.withdrawn_ag,
        )
    return {
        k: getattr(p, k)
        for k in (
            "reservoir_nl",
            "true_reservoir_fl",
            "path_fl",
            "path_ag",
            "delivered_fl",
            "delivered_ag",
            "filled_fl",
            "filled_ag",
            "withdrawn_fl",
            "withdrawn_ag",
        )
    }


def assert_conserved(core) -> None:
    """filled = reservoir + path + delivered + withdrawn, in fL and in ag, on the core (the shared
    invariant of itb.testing)."""
    invariants.conservation(core, nominal=False)


def no_batches(events):
    """Core events without stroke_batch summaries, as (time, kind, data)."""
    return [(t, k, data) for t, k, _sev, data, _seq in events if k != "stroke_batch"]


def assert_causal_order(core_events) -> None:
    """Times never go back and sequence numbers strictly increase (raw core tuples)."""
    times = [e[0] for e in core_events]
    assert times == sorted(times), "core events not ordered by time"
    seqs = [e[4] for e in core_events]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), f"sequence numbers not increasing: {seqs}"


def assert_events_match(core_events, ref_events) -> None:
    """Same (time, kind) sequence; every data field the reference defines has the same value."""
    got = no_batches(core_events)
    assert [(t, k) for t, k, _ in got] == [(t, k) for t, k, _ in ref_events], (got, ref_events)
    for (t, k, data), (_, _, ref_data) in zip(got, ref_events):
        for key, value in ref_data.items():
            assert data.get(key) == value, (
                f"event {k} at {t}: {key}={data.get(key)!r}, reference {value!r}"
            )
    assert_causal_order(core_events)


# --------------------------------------------------------------------------------------------
# Hand-computed checks of the reference's newer features (and of the core on the same inputs)
# --------------------------------------------------------------------------------------------


def test_path_fifo_with_concentration_change():
    # q = 1000 nL; path = pump tubing 1500 + catheter 1000 = 2500 nL = 2.5e9 fL, primed at 500 µg/mL.
    # 100_000 ng/day at 500 µg/mL -> 100_000 × 1000 / 500 = 200_000 nL/day -> a stroke every
    # q·D / r = 1000 × 86_400_000 / 200_000 = 432_000 ms.
    model = core_model(1000, 20_000, 1, 10_000_000, 0, 1500)
    core, ref = make_pair(
        model, now=0, fill=10_000, conc=500, program=("continuous", 100_000), catheter=1000
    )
    assert ref.path_parcels == [(2_500_000_000, 500)] == core.path_parcels
    assert ref.advance_to(1_296_000) == []
    # 3 strokes (432_000, 864_000, 1_296_000): 3000 nL of the 500 µg/mL drug left the tip.
    assert ref.stroke_times == [432_000, 864_000, 1_296_000]
    assert (ref.delivered_fl, ref.delivered_ag) == (3_000_000_000, 3_000_000_000 * 500)

    # Refill 10_000 nL at 2000 µg/mL: expected = aspirated = 7000 nL (nominal pump), not flagged.
    # The basal becomes 100_000 × 1000 / 2000 = 50_000 nL/day -> a stroke every 1_728_000 ms; A was
    # exactly 3 q·D at the refill (stroke 3 fired then), so strokes 4, 5, 6 come at
    # 1_296_000 + k × 1_728_000 = 3_024_000, 4_752_000, 6_480_000.
    assert ref.refill(10_000, 2000) == (7_000, 7_000, False)
    assert ref.withdrawn_fl == 7_000_000_000 and ref.withdrawn_ag == 7_000_000_000 * 500
    events = ref.advance_to(6_480_000)
    assert ref.stroke_times[3:] == [3_024_000, 4_752_000, 6_480_000]
    # Path after stroke 4: [1500 @500, 1000 @2000]; after 5: [500 @500, 2000 @2000]; stroke 6 pushes
    # out 500 nL @500 then 500 nL @2000: the new drug reaches the tip during stroke 6.
    assert events == [
        (1_296_000, "refilled", {"added_nl": 10_000, "aspirated_nl": 7_000, "expected_nl": 7_000}),
        (1_296_000, "concentration_changed", {"from_ug_per_ml": 500, "to_ug_per_ml": 2000}),
        (6_480_000, "drug_at_tip", {"from_ug_per_ml": 500, "to_ug_per_ml": 2000}),
    ]
    assert ref.path_parcels == [(2_500_000_000, 2000)]
    # Delivered: 5500 nL @500 + 500 nL @2000 = 6e9 fL; (5.5e9 × 500 + 0.5e9 × 2000) = 3.75e12 ag.
    assert ref.delivered_fl == 6_000_000_000
    assert ref.delivered_ag == 3_750_000_000_000
    # Conservation: filled = 10_000 + 2500 (path) + 10_000 = 22_500 nL
    #   = reservoir 7000 + path 2500 + delivered 6000 + withdrawn 7000.
    # In pg: 10_000×500 + 2500×500 + 10_000×2000 = 26.25e6
    #   = 7000×2000 + 2500×2000 + 3.75e6 + 7000×500 = 14e6 + 5e6 + 3.75e6 + 3.5e6.
    assert ref.conservation_fl() == (22_500_000_000, 22_500_000_000)
    assert ref.conservation_ag() == (26_250_000_000_000, 26_250_000_000_000)

    # The core, driven the same way, agrees number for number.
    core.advance_to(1_296_000)
    assert core.refill(10_000, 2000)[:3] == (7_000, 7_000, False)
    core_events, times = core.advance_to_recording(6_480_000)
    assert times.tolist() == [3_024_000, 4_752_000, 6_480_000]
    assert_events_match(core_events, events)
    assert ledgers(core) == ledgers(ref)
    assert core.path_parcels == ref.path_parcels and core.tip_concentration == 2000
    assert_conserved(core)


def test_saline_path_and_fast_pump_running_dry():
    # q = 1000 nL, 5 % fast: a stroke moves 1000 × 1.05 = 1050 nL = 1.05e9 fL. Path 2500 nL of saline.
    # 50_000 ng/day at 500 µg/mL -> 100_000 nL/day -> a stroke every 864_000 ms.
    model = core_model(1000, 20_000, 1, 10_000_000, 5_000, 1500)
    core, ref = make_pair(
        model,
        now=0,
        fill=10_000,
        conc=500,
        program=("continuous", 50_000),
        catheter=1000,
        error_ppm=50_000,
        primed=False,
    )
    assert ref.tip_conc == 0 and ref.filled_ag == 10_000_000_000 * 500  # saline carries no drug
    events = ref.advance_to(10 * 864_000)
    # Strokes 1-2 push out 2100 nL of saline; stroke 3 reaches 3150 > 2500: drug at the tip at 2_592_000.
    # Firmware: 10_000 - 1000 k; low (<= 5000) after stroke 5 at 4_320_000; empty (< 1000) after 10.
    # Physically 9 strokes moved 9450 nL; stroke 10 finds only 550 nL and moves just that.
    assert events == [
        (2_592_000, "drug_at_tip", {"from_ug_per_ml": 0, "to_ug_per_ml": 500}),
        (4_320_000, "low_reservoir", {"reservoir_nl": 5_000, "threshold_nl": 5_000}),
        (8_640_000, "reservoir_empty", {"reservoir_nl": 0}),
    ]
    assert ref.strokes == 10 and ref.true_reservoir_fl == 0 and ref.reservoir_nl == 0
    # Delivered: 10_000 nL, of which the first 2500 were saline: 7500e6 fL × 500 = 3.75e12 ag.
    assert (ref.delivered_fl, ref.delivered_ag) == (10_000_000_000, 3_750_000_000_000)
    assert ref.path_parcels == [(2_500_000_000, 500)]
    assert ref.conservation_fl()[0] == ref.conservation_fl()[1] == 12_500_000_000

    core_events, times = core.advance_to_recording(10 * 864_000)
    assert times.tolist() == ref.stroke_times
    assert_events_match(core_events, events)
    assert ledgers(core) == ledgers(ref)
    assert_conserved(core)


@pytest.mark.parametrize(
    "aspirated, flagged",
    [
        (None, True),  # what is physically there: 7.6 mL
        (8_000_000, False),  # |8.0 − 10.0| = 2.0 mL, not > 2.0 mL
        (7_999_999, True),
        (12_000_000, False),
        (12_000_001, True),
    ],
)
def test_refill_discrepancy_of_a_pump_running_8_percent_fast(aspirated, flagged):
    # SynchroMed-like: q = 2000 nL, 40 mL, low 2 mL, path 100 µL. 1000 µg/day at 2000 µg/mL
    # -> 500_000 nL/day -> a stroke every 2000 × 86_400_000 / 500_000 = 345_600 ms;
    # 60 days = 5_184_000_000 ms -> 15_000 strokes. Firmware: 40e6 − 15_000 × 2000 = 10_000_000 nL.
    # Physically each stroke moves 2160 nL: 40e6 − 15_000 × 2160 = 7_600_000 nL are left.
    # Tolerance: max(1_000_000, 10_000_000 × 200_000 // 10**6 = 2_000_000) = 2_000_000 nL;
    # |7.6e6 − 10e6| = 2.4e6 > 2e6 -> flagged.
    model = core_model(2000, 40_000_000, 48_000, 24_000_000, 2_000_000, 100_000)
    core, ref = make_pair(
        model,
        now=NOW0,
        fill=40_000_000,
        conc=2000,
        program=("continuous", 1_000_000),
        error_ppm=80_000,
    )
    end = NOW0 + 60 * D
    ref.advance_to(end)
    assert ref.strokes == 15_000 and ref.reservoir_nl == 10_000_000
    assert ref.true_reservoir_fl == 7_600_000 * FL_PER_NL
    expected_aspirate = 7_600_000 if aspirated is None else aspirated
    assert ref.refill(40_000_000, 2000, aspirated) == (10_000_000, expected_aspirate, flagged)
    kinds = [(t, k) for t, k, _ in ref.advance_to(end)]
    assert kinds == [(end, "refilled")] + ([(end, "refill_discrepancy")] if flagged else [])
    # Withdrawn: the physical 7.6 mL, whatever was measured.
    assert ref.withdrawn_fl == 7_600_000 * FL_PER_NL
    assert ref.true_reservoir_fl == 40_000_000 * FL_PER_NL and ref.reservoir_nl == 40_000_000

    core.advance_to(end)
    res = core.refill(40_000_000, 2000, aspirated)
    assert res[:3] == (10_000_000, expected_aspirate, flagged)
    got = core.advance_to(end)
    assert [(t, k) for t, k, _s, _d, _q in got if k != "stroke_batch"] == kinds
    if flagged:
        assert (
            next(d for _t, k, _s, d, _q in got if k == "refill_discrepancy")["discrepancy_nl"]
            == expected_aspirate - 10_000_000
        )
    assert ledgers(core) == ledgers(ref)
    assert_conserved(core)


def test_patient_bolus_reasons_lockout_and_rolling_window():
    # q = 2000, basal 400 µg/day at 2000 µg/mL = 200_000 nL/day, max 24 mL/day.
    # PTM: 50 µg -> 25_000 nL over 1 h: r_b = 25_000 × 86_400_000 / 3_600_000 = 600_000 nL/day;
    # lockout 3 h, at most 2 grants per rolling 24 h.
    model = core_model(2000, 40_000_000, 48_000, 24_000_000, 2_000_000, 0)
    core, ref = make_pair(
        model, now=NOW0, fill=40_000_000, conc=2000, program=("continuous", 400_000)
    )
    t0 = NOW0
    steps = [
        (t0, None, (False, "not_enabled", None)),
        (t0, (50_000, H, 3 * H, 2), (True, "granted", 1)),
        (t0 + H, None, (False, "lockout", None)),  # 1 h < 3 h
        (t0 + 3 * H, None, (True, "granted", 2)),  # exactly the lockout: allowed
        (t0 + 6 * H, None, (False, "daily_maximum", None)),  # t0 and t0 + 3 h in the window
        (t0 + D, None, (True, "granted", 3)),  # t0 left the half-open window (t0, t0 + D]
        # window (t0 + 3 h, t0 + D + 3 h]: only the grant at t0 + D counts (1 < 2), and exactly
        # the 3 h lockout has passed since it
        (t0 + D + 3 * H, None, (True, "granted", 4)),
    ]
    for at, limits, want in steps:
        if limits is not None:
            ref.set_patient_bolus_limits(limits)
            core.set_patient_bolus_limits(limits)
        assert ref.patient_bolus(at) == want
        assert core.patient_bolus(at) == want
    # 1-minute duration: r_b = 25_000 × 86_400_000 / 60_000 = 36_000_000 > 24e6 − 200_000.
    t = t0 + 3 * D
    for p in (ref, core):
        p.set_patient_bolus_limits((50_000, 60_000, 3 * H, 2))
        assert p.patient_bolus(t) == (False, "would_exceed_max_rate", None)
        p.suspend()
        p.inject_motor_stall()
        assert p.patient_bolus() == (False, "suspended", None)  # suspended is checked before fault
        p.resume()
        assert p.patient_bolus() == (False, "fault", None)
        p.clear_fault()
    ref_events = ref.advance_to(t)
    assert [(e[0], e[1]) for e in ref_events if e[0] == t] == [
        # causal order: each call's event in call order (docs: decisions/field-reports.md#events-keep-causal-order)
        (t, "patient_bolus_denied"),
        (t, "suspended"),
        (t, "fault"),
        (t, "patient_bolus_denied"),
        (t, "resumed"),
        (t, "patient_bolus_denied"),
        (t, "fault_cleared"),
    ]
    core_events = core.advance_to(t)
    assert_events_match(core_events, ref_events)
    assert core.strokes == ref.strokes and ledgers(core) == ledgers(ref)


def test_suspend_and_stall_freeze_the_accumulator():
    # 200_000 nL/day, q = 2000: a stroke every 864_000 ms. Suspend at 432_000 (A = half a stroke);
    # resume at 10_000_000: stroke 1 at 10_000_000 + 432_000 = 10_432_000. A 2 h motor stall from
    # 11_000_000 (A then holds 568_000 ms' worth) delays stroke 2 to 11_000_000 + 7_200_000 +
    # (864_000 − 568_000) = 18_496_000. A bolus running only during the stall adds nothing.
    model = core_model(2000, 40_000_000, 48_000, 24_000_000, 0, 0)
    core, ref = make_pair(model, now=0, fill=40_000_000, conc=2000, program=("continuous", 400_000))
    for p in (ref, core):
        p.advance_to(432_000)
        p.suspend()
        p.advance_to(10_000_000)
        p.resume()
        p.advance_to(11_000_000)
        p.inject_motor_stall()
        p.bolus(10_000, H, 12_000_000)  # 5000 nL, entirely within the stall
        p.advance_to(18_200_000)
        p.clear_fault()
    ref.advance_to(19_000_000)  # stroke 3 would come 864_000 later, at 19_360_000
    _, times = core.advance_to_recording(19_000_000)
    assert ref.stroke_times == [10_432_000, 18_496_000]
    assert core.strokes == 2 and times.tolist() == [18_496_000]


def test_dry_partial_stroke_emits_no_drug_at_tip():
    # q = 1000 nL, 1 % fast: a full stroke would move 1010 nL. Path 1000 nL of saline; the reservoir
    # holds 1000 nL. 50_000 ng/day at 500 µg/mL = 100_000 nL/day -> stroke 1 at 864_000 ms, which
    # finds only 1000 nL and moves just that: the 1000 nL of saline leave the tip, the drug now
    # fills the path but none of it has left. Firmware: 1000 − 1000 = 0 -> low (threshold 0) and
    # empty at 864_000. No drug_at_tip: the fluid that left (saline) is what was last at the tip.
    model = core_model(1000, 20_000, 1, 10_000_000, 0, 1000)
    core, ref = make_pair(
        model,
        now=0,
        fill=1000,
        conc=500,
        program=("continuous", 50_000),
        error_ppm=10_000,
        primed=False,
    )
    want = [
        (864_000, "low_reservoir", {"reservoir_nl": 0, "threshold_nl": 0}),
        (864_000, "reservoir_empty", {"reservoir_nl": 0}),
    ]
    assert ref.advance_to(864_000) == want
    assert (ref.delivered_fl, ref.delivered_ag, ref.tip_conc) == (1_000_000_000, 0, 0)
    got = core.advance_to(864_000)
    assert (core.delivered_fl, core.delivered_ag, core.tip_concentration) == (1_000_000_000, 0, 0)
    assert no_batches(got) == want  # the core adds (864000, 'drug_at_tip', {from 0, to 0})


# --------------------------------------------------------------------------------------------
# The state machine
# --------------------------------------------------------------------------------------------

CONCS = [50, 500, 1000, 2000]
# What the machine exercised (checked by test_machine_exercised_everything, after the machine).
STATS: dict = {
    "examples": 0,
    "strokes": 0,
    "kinds": set(),
    "calls": set(),
    "patient": set(),
    "flagged": 0,
    "max_strokes": 0,
    "rules": {},
}


def count_rule(name: str) -> None:
    STATS["rules"][name] = STATS["rules"].get(name, 0) + 1


def log_uniform(lo: int, hi: int):
    """Integers in [lo, hi], spread over magnitudes (plus the end points). Hypothesis favours its
    simplest draws, so those are made the interesting ones: the largest magnitudes first."""
    assert 0 <= lo <= hi

    @st.composite
    def draw_(draw):
        kind = draw(st.integers(0, 9))
        if kind == 8:
            return lo
        if kind == 9:
            return hi
        span = hi - lo
        digits = len(str(span)) - draw(st.integers(0, len(str(span))))
        low_end = min(span, 10 ** (digits - 1) if digits else 0)
        return lo + draw(st.integers(low_end, min(span, 10**digits)))

    return draw_()


@st.composite
def random_models(draw):
    # (the first alternative of each choice is the one hypothesis draws most: the typical case)
    q = draw(st.one_of(st.sampled_from([2000, 250, 1000, 7, 1, 5000]), st.integers(1, 5000)))
    n = draw(st.one_of(st.integers(1000, 3000), st.integers(1, 30)))  # strokes per full reservoir
    capacity = q * n + draw(st.integers(0, q - 1))
    per_day = draw(st.sampled_from([200, 2000, 20, 2])) * draw(
        st.integers(1, 5)
    )  # typical strokes/day
    typical = per_day * q
    hi = min(q * D, 10**9)  # at most one stroke per ms and 1 L/day (model validation)
    max_rate = min(hi, typical * draw(st.sampled_from([100, 60, 400])))
    min_rate = max(1, typical // draw(st.sampled_from([1000, 100, 10**6])))
    low = draw(st.one_of(st.integers(capacity // 10, capacity // 3), st.integers(0, capacity)))
    path = draw(st.one_of(log_uniform(0, 20 * q), st.just(0), log_uniform(0, 300_000)))
    return dict(
        q=q,
        capacity=capacity,
        per_day=per_day,
        typical=typical,
        min_rate=min_rate,
        max_rate=max_rate,
        low=low,
        path=path,
    )


def dose_for_rate(rate: int, conc: int, m: dict) -> int:
    """A daily dose (ng/day) whose volume rate at ``conc`` is ``rate``-ish and valid (or 0)."""
    ng = rate * conc // 1000
    for cand in (ng, ng + 1, ng - 1):
        if cand > 0 and m["min_rate"] <= volume_rate_nl_per_day(cand, conc) <= m["max_rate"]:
            return cand
    return 0


@st.composite
def random_programs(draw, m: dict, conc: int):
    def step_dose():
        choice = draw(st.integers(0, 5))
        if choice == 5:
            return 0
        if choice == 4:
            return dose_for_rate(draw(log_uniform(m["min_rate"], 2 * m["typical"])), conc, m)
        factor = draw(st.sampled_from([1, 2, 0.5, 0.2, 4]))
        return dose_for_rate(max(m["min_rate"], int(m["typical"] * factor)), conc, m)

    if draw(st.booleans()):
        return ("continuous", step_dose())
    offsets = sorted(
        set(
            [0]
            + draw(st.lists(st.integers(1, D // 60_000 - 1).map(lambda k: k * 60_000), max_size=3))
        )
    )
    return ("flex", "day", [(o, step_dose()) for o in offsets])


def to_public_program(program):
    """The same program in the public clinical-unit form (µg/day floats with exact reprs)."""
    if program[0] == "continuous":
        return itb.Continuous(ug_per_day=program[1] / 1000)
    return itb.Flex(
        period=program[1], steps=[(timedelta(milliseconds=o), ng / 1000) for o, ng in program[2]]
    )


def step_rates(program, conc):
    steps = [(0, program[1])] if program[0] == "continuous" else program[2]
    return [volume_rate_nl_per_day(ng, conc) for _, ng in steps]


class PumpMachine(RuleBasedStateMachine):
    """``itb.Pump`` and ``RefPump`` in lock step (exact integer inputs on both sides)."""

    @initialize(data=st.data())
    def build(self, data):
        m = data.draw(random_models(), label="model")
        conc = data.draw(st.sampled_from(CONCS), label="conc")
        fill = data.draw(
            st.one_of(st.just(m["capacity"]), st.integers(0, m["capacity"])), label="fill"
        )
        catheter = data.draw(
            st.one_of(log_uniform(0, 20 * m["q"]), st.just(0), log_uniform(0, 300_000)),
            label="catheter",
        )
        error_ppm = data.draw(
            st.one_of(st.sampled_from([80_000, -80_000, 0]), st.integers(-100_000, 100_000)),
            label="stroke_error_ppm",
        )
        primed = data.draw(st.booleans(), label="path_primed")
        now = data.draw(st.one_of(st.just(NOW0), st.integers(20_000 * D, 21_000 * D)), label="now")
        program = data.draw(random_programs(m, conc), label="program")
        self.m = m
        model = itb.PumpModel(
            name="stateful",
            reservoir_ml=m["capacity"] / 1e6,
            stroke_nl=m["q"],
            min_rate_ml_per_day=m["min_rate"] / 1e6,
            max_rate_ml_per_day=m["max_rate"] / 1e6,
            low_reservoir_ml=m["low"] / 1e6,
            pump_path_ul=m["path"] / 1e3,
        )
        self.pump = itb.Pump(
            model,
            now=now,
            reservoir_ml=fill / 1e6,
            concentration_ug_per_ml=conc,
            program=to_public_program(program),
            catheter_volume_ul=catheter / 1e3,
            path_primed=primed,
            stroke_error_ppm=error_ppm,
        )
        want = core_model(
            m["q"], m["capacity"], m["min_rate"], m["max_rate"], m["low"], m["path"], "stateful"
        )
        assert {k: self.pump.core.model[k] for k in want} == want
        assert tuple(self.pump.core.program[:2]) == tuple(program[:2])
        self.ref = RefPump(
            now_ms=now,
            stroke_nl=m["q"],
            capacity_nl=m["capacity"],
            reservoir_nl=fill,
            low_reservoir_nl=m["low"],
            conc_ug_per_ml=conc,
            program=program,
            pump_path_nl=m["path"],
            catheter_nl=catheter,
            stroke_error_ppm=error_ppm,
            path_primed=primed,
            max_rate_nl_per_day=m["max_rate"],
            all_events=True,
        )
        STATS["examples"] += 1
        self.seen = 0  # reference stroke times already compared
        self.compare()

    # ---- helpers -----------------------------------------------------------------------------

    @property
    def core(self):
        return self.pump.core

    def expect_call(self, expected: set, core_call, ref_call, what: str):
        """The core raises (typed, changing nothing) iff ``expected``; else run the reference."""
        before = self.core.snapshot()
        try:
            result = core_call()
        except itb.ItbError as exc:
            assert expected, f"{what}: core raised {exc!r} but the spec says the call is valid"
            assert type(exc) in expected, (
                f"{what}: core raised {type(exc).__name__}, expected one of {expected}"
            )
            assert self.core.snapshot() == before, f"{what}: a rejected call changed the pump"
            note(f"{what} -> rejected ({type(exc).__name__})")
            STATS["calls"].add((what.split("(")[0], type(exc).__name__))
            return False, None, None
        assert not expected, f"{what}: core accepted a call that must raise one of {expected}"
        note(f"{what} -> ok")
        STATS["calls"].add((what.split("(")[0], "ok"))
        return True, result, ref_call()

    def program_errors(self, program, conc) -> set:
        """Errors of running ``program`` at ``conc`` from now with the open boluses (after a
        refill to another concentration: with the boluses that refill re-derives or cancels)."""
        m = self.m
        doses = [program[1]] if program[0] == "continuous" else [ng for _, ng in program[2]]
        rates = step_rates(program, conc)
        # a non-zero dose never becomes a rate of 0 (docs: decisions/field-reports.md#no-non-zero-input-becomes-zero)
        if any(
            ng != 0 and not max(1, m["min_rate"]) <= r <= m["max_rate"]
            for ng, r in zip(doses, rates)
        ):
            return {itb.ProgrammingError}
        ref = self.ref
        if conc != ref.conc_ug_per_ml:
            history, ref.stroke_times = ref.stroke_times, []
            try:
                ref = copy.deepcopy(ref)
            finally:
                self.ref.stroke_times = history
            ref.refill(0, conc)
        for b in ref._open:
            if (
                ref.peak_rate(
                    max(b.start_ms, ref.now_ms), b.end_ms, program=program, conc_ug_per_ml=conc
                )
                > m["max_rate"]
            ):
                return {itb.ProgrammingError}
        return set()

    def compare(self):
        c, r = self.core, self.ref
        assert c.now_ms == r.now_ms
        assert c.strokes == r.strokes == len(r.stroke_times)
        assert c.concentration == r.conc_ug_per_ml
        assert ledgers(c) == ledgers(r)
        assert c.pumped_nl == r.pumped_nl == r.strokes * self.m["q"]
        assert c.path_parcels == r.path_parcels
        assert c.tip_concentration == r.tip_conc
        assert (c.suspended, c.stalled, c.empty, c.low_alarm_armed) == (
            r.suspended,
            r.stalled,
            r.empty,
            r._low_armed,
        )
        assert c.accumulator == r.accumulator - r.strokes * self.m["q"] * D
        assert r.conservation_fl()[0] == r.conservation_fl()[1]
        assert r.conservation_ag()[0] == r.conservation_ag()[1]
        assert_conserved(c)
        c.check_invariants()

    # ---- time --------------------------------------------------------------------------------

    # Four advance rules (hypothesis picks rules about uniformly: this makes time pass often).

    @rule(data=st.data())
    def advance(self, data):
        how = data.draw(st.sampled_from(["hours", "minutes", "ms", "zero"]))
        hi = {"zero": 0, "ms": 1000, "minutes": H, "hours": D}[how]
        self.advance_by(data.draw(log_uniform(0, hi), label="dt"))

    @rule(data=st.data())
    def advance_days(self, data):
        self.advance_by(data.draw(log_uniform(D // 2, 10 * D), label="dt"))

    @rule(data=st.data())
    def advance_strokes(self, data):
        # about k strokes at the model's typical rate
        k = data.draw(log_uniform(1, 400), label="strokes")
        self.advance_by(k * D // self.m["per_day"] + data.draw(st.integers(0, 1000)))

    @rule(data=st.data())
    def advance_to_next_stroke(self, data):
        # projection (next stroke, low reservoir, empty) first: the core's equals the reference's
        horizon = data.draw(st.sampled_from([30 * D, D, 0]), label="horizon")
        core_proj = self.core.project(horizon)
        assert core_proj[:3] == tuple(
            self.ref.project(horizon)[k]
            for k in ("next_stroke", "low_reservoir", "reservoir_empty")
        )
        nxt = core_proj[0]
        self.advance_by(
            1 if nxt is None else nxt - self.ref.now_ms + data.draw(st.sampled_from([0, -1, 1]))
        )

    def advance_by(self, dt: int):
        count_rule("advance")
        t = self.ref.now_ms + max(0, dt)
        note(f"advance_to({t}) (+{max(0, dt)} ms)")
        events, times = self.pump.advance_recording(t)
        raw = [(e.time_ms, e.kind, e.severity, e.data, e.seq) for e in events]
        ref_events = self.ref.advance_to(t)
        assert isinstance(times, np.ndarray) and times.dtype == np.int64
        ref_times = self.ref.stroke_times[self.seen :]
        self.seen = len(self.ref.stroke_times)
        assert times.tolist() == ref_times, _first_diff(times.tolist(), ref_times)
        assert_events_match(raw, ref_events)
        assert all(e[0] <= t for e in raw)
        STATS["kinds"] |= {k for _t, k, _s, _d, _q in raw}
        STATS["strokes"] += len(ref_times)
        STATS["max_strokes"] = max(STATS["max_strokes"], self.ref.strokes)

    # ---- programming -------------------------------------------------------------------------

    @rule(data=st.data())
    def bolus(self, data):
        count_rule("bolus")
        ref, m = self.ref, self.m
        conc = ref.conc_ug_per_ml
        volume = data.draw(log_uniform(1, max(1, min(m["capacity"], 20 * m["q"]))), label="volume")
        dose = max(1, volume * conc // 1000 + data.draw(st.integers(-1, 1)))
        volume = bolus_volume_nl(dose, conc)
        # start: now, or when another bolus starts (overlaps), or some time ahead
        starts = [b.start_ms for b in ref._open if b.start_ms >= ref.now_ms]
        start = data.draw(
            st.one_of(
                st.none(),
                st.sampled_from(starts or [ref.now_ms]),
                st.integers(ref.now_ms, ref.now_ms + 2 * D),
            ),
            label="start",
        )
        s = ref.now_ms if start is None else start
        # duration: at the edge of the max rate left by basal + other boluses (either side of it),
        # within the model's max rate alone, or anything
        headroom = m["max_rate"] - ref.peak_rate(s, s + D)
        edge = (
            D
            if headroom <= 0
            else max(1, ceil_div(volume * D, headroom) + data.draw(st.integers(-1, 1)))
        )
        fastest = max(
            1, ceil_div(volume * D, m["max_rate"])
        )  # shortest duration within the max rate
        duration = data.draw(
            st.one_of(
                st.just(min(edge, D)), log_uniform(fastest, max(fastest, D)), log_uniform(1, D)
            ),
            label="duration",
        )
        errs = set()
        if not 1 <= volume <= m["capacity"]:
            errs.add(itb.ValidationError)
        else:
            if ref.empty:
                errs.add(itb.ReservoirError)
            rate = ceil_div(volume * D, duration)
            end = s + ceil_div(volume * D, rate)
            if ref.peak_rate(s, end, extra_rate=rate) > m["max_rate"]:
                errs.add(itb.ProgrammingError)
        ok, got, want = self.expect_call(
            errs,
            lambda: self.core.bolus(dose, duration, start),
            lambda: ref.bolus(dose, duration, start),
            f"bolus({dose}, {duration}, {start})",
        )
        if ok:
            assert got == want

    @rule(data=st.data())
    def cancel(self, data):
        count_rule("cancel")
        ref = self.ref
        open_ids = [b.bolus_id for b in ref._open]
        ids = open_ids + [max(ref._boluses, default=0) + 1] + list(ref._boluses)
        bolus_id = data.draw(
            st.sampled_from(open_ids)
            if open_ids and data.draw(st.booleans())
            else st.sampled_from(ids)
        )
        errs = set() if bolus_id in open_ids else {itb.ValidationError}
        self.expect_call(
            errs,
            lambda: self.core.cancel_bolus(bolus_id),
            lambda: ref.cancel_bolus(bolus_id),
            f"cancel_bolus({bolus_id})",
        )

    # Open boluses are rare at a random step (`cancel` met one in ~1 of 12 calls), so whether the
    # machine ever cancelled one hung on generation luck, which any new constant in the package
    # re-rolls (hypothesis draws literals from local modules). This rule is offered only while a
    # bolus is open.
    @precondition(lambda self: hasattr(self, "ref") and bool(self.ref._open))
    @rule(data=st.data())
    def cancel_open(self, data):
        count_rule("cancel_open")
        ref = self.ref
        bolus_id = data.draw(st.sampled_from([b.bolus_id for b in ref._open]), label="open bolus")
        self.expect_call(
            set(),
            lambda: self.core.cancel_bolus(bolus_id),
            lambda: ref.cancel_bolus(bolus_id),
            f"cancel_bolus({bolus_id})",
        )

    @rule(data=st.data())
    def set_program(self, data):
        count_rule("set_program")
        program = data.draw(random_programs(self.m, self.ref.conc_ug_per_ml), label="program")
        errs = self.program_errors(program, self.ref.conc_ug_per_ml)
        self.expect_call(
            errs,
            lambda: self.core.set_program(program),
            lambda: self.ref.set_program(program),
            f"set_program({program})",
        )

    @rule(data=st.data())
    def refill(self, data):
        count_rule("refill")
        ref, m = self.ref, self.m
        added = data.draw(
            st.one_of(
                st.just(m["capacity"]),
                st.integers(0, m["capacity"]),
                st.integers(0, min(m["capacity"], 3 * m["q"])),
            ),
            label="added",
        )
        if data.draw(st.integers(0, 19)) == 19:
            added = m["capacity"] + 1  # overfill
        conc = data.draw(st.sampled_from(CONCS), label="conc")
        aspirated = data.draw(
            st.one_of(
                st.none(), st.none(), st.just(ref.reservoir_nl), st.integers(0, 2 * m["capacity"])
            ),
            label="aspirated",
        )
        # the default tolerance (1 mL, 20 %) or tighter ones that small test reservoirs can exceed
        tol_nl, tol_ppm = data.draw(
            st.sampled_from(
                [(1_000_000, 200_000), (m["q"], 50_000), (0, 0), (m["capacity"] // 10, 200_000)]
            ),
            label="tolerance",
        )
        errs = self.program_errors(ref.program, conc)
        if added > m["capacity"]:
            errs.add(itb.ReservoirError)
        ok, got, want = self.expect_call(
            errs,
            lambda: self.core.refill(added, conc, aspirated, tol_nl, tol_ppm),
            lambda: ref.refill(added, conc, aspirated, tol_nl, tol_ppm),
            f"refill({added}, {conc}, {aspirated}, {tol_nl}, {tol_ppm})",
        )
        if ok:
            expected, asp, flagged, reason = got
            assert (expected, asp, flagged) == want
            assert (reason is not None) == flagged
            STATS["flagged"] += flagged

    @rule(data=st.data())
    def patient_limits(self, data):
        count_rule("patient_limits")
        self.set_patient_limits(data)

    def set_patient_limits(self, data):
        ref, m = self.ref, self.m
        if data.draw(st.integers(0, 5)) == 5 or m["capacity"] < 40:
            limits = None
        else:
            # 2 ng gives >= 1 nL at 2000 µg/mL; dose <= capacity / 20 keeps the volume within the
            # reservoir capacity even at 50 µg/mL (ng × 1000 / 50 = 20 × ng nL).
            dose = data.draw(log_uniform(2, max(2, m["capacity"] // 20)), label="dose_ng")
            # duration: at the edge of the rate headroom left now (either side), or anything
            volume = bolus_volume_nl(dose, ref.conc_ug_per_ml)
            headroom = m["max_rate"] - ref.peak_rate(ref.now_ms, ref.now_ms + D)
            edge = (
                D
                if headroom <= 0
                else ceil_div(volume * D, headroom) + data.draw(st.integers(-1, 1))
            )
            duration = data.draw(
                st.one_of(st.just(min(max(1, edge), D)), log_uniform(1, D)), label="duration"
            )
            limits = (dose, duration, data.draw(log_uniform(0, D)), data.draw(st.integers(1, 24)))
        errs = set()
        if limits is not None and bolus_volume_nl(limits[0], ref.conc_ug_per_ml) < 1:
            errs = {itb.ValidationError}
        self.expect_call(
            errs,
            lambda: self.core.set_patient_bolus_limits(limits),
            lambda: ref.set_patient_bolus_limits(limits),
            f"set_patient_bolus_limits({limits})",
        )

    @rule(data=st.data())
    def patient_bolus(self, data):
        """One to four activations, now or a little later (at the lockout's end, or at random)."""
        count_rule("patient_bolus")
        ref = self.ref
        if ref.patient_limits is None and not data.draw(st.booleans(), label="leave disabled"):
            self.set_patient_limits(data)
        for _ in range(data.draw(st.integers(1, 4), label="activations")):
            lockout = ref.patient_limits[2] if ref.patient_limits else H
            at = data.draw(
                st.one_of(
                    st.none(),
                    st.just(ref.now_ms + lockout),
                    st.just(ref.now_ms + max(0, lockout - 1)),
                    st.integers(ref.now_ms, ref.now_ms + 6 * H),
                ),
                label="at",
            )
            got = self.core.patient_bolus(at)
            want = ref.patient_bolus(at)
            note(f"patient_bolus({at}) -> {got}")
            assert got == want
            STATS["patient"].add(got[1])
            # The core fired the strokes up to ``at`` inside this call and returns no times for
            # them: they are compared by count only (compare()), not time by time.
            self.seen = len(ref.stroke_times)
            self.compare()

    # ---- therapy state -----------------------------------------------------------------------

    def toggle(self, data, flag: str, on_name: str, off_name: str):
        """Suspend/resume or stall/clear. Mostly a span (on, some time passes, off) so that pumps
        spend most of their time delivering; sometimes a single call (the state persists across
        other steps); sometimes the call not allowed in this state (ValidationError)."""
        mode = data.draw(st.sampled_from(["span", "span", "single", "wrong"]), label=flag)
        active = getattr(self.ref, flag)
        if mode == "wrong":
            name = on_name if active else off_name
            self.expect_call(
                {itb.ValidationError},
                getattr(self.core, name),
                getattr(self.ref, name),
                f"{name}()",
            )
            return
        if active:  # single or span: switch it off
            self.expect_call(
                set(), getattr(self.core, off_name), getattr(self.ref, off_name), f"{off_name}()"
            )
            return
        self.expect_call(
            set(), getattr(self.core, on_name), getattr(self.ref, on_name), f"{on_name}()"
        )
        if mode == "span":
            self.advance_by(data.draw(log_uniform(0, D), label="while " + flag))
            self.expect_call(
                set(), getattr(self.core, off_name), getattr(self.ref, off_name), f"{off_name}()"
            )

    @rule(data=st.data())
    def suspend_or_resume(self, data):
        count_rule("suspend_or_resume")
        self.toggle(data, "suspended", "suspend", "resume")

    @rule(data=st.data())
    def stall_or_clear(self, data):
        count_rule("stall_or_clear")
        self.toggle(data, "stalled", "inject_motor_stall", "clear_fault")

    @rule(data=st.data())  # (a rule without arguments would be hypothesis's favourite: rules are
    def snapshot_restore(self, data):  # ordered by arguments then name, and it prefers the first)
        count_rule("snapshot_restore")
        blob = self.pump.snapshot()
        self.pump = itb.Pump.restore(blob)
        assert self.pump.snapshot() == blob
        note("snapshot -> restore")

    # ---- after every step ----------------------------------------------------------------------

    @invariant()
    def states_agree(self):
        if hasattr(self, "ref"):
            self.compare()

    def teardown(self):
        # Flush the events stamped by the last calls (they come with the next advance) and
        # compare them too.
        if hasattr(self, "ref"):
            self.advance_by(0)
            self.compare()


def _first_diff(got, want) -> str:
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"stroke #{i}: core {a}, reference {b}"
    return f"lengths: core {len(got)}, reference {len(want)}"


PumpMachine.TestCase.settings = settings(
    # ITB_HYPOTHESIS_SCALE=10 for a longer local run (as in _scenarios.scale)
    max_examples=max(1, int(80 * float(os.environ.get("ITB_HYPOTHESIS_SCALE", "1")))),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
TestPumpMachine = PumpMachine.TestCase


def test_machine_exercised_everything():
    """Guard against a generator that stopped reaching the interesting states (runs after the
    machine; skipped when the machine was deselected)."""
    if STATS["examples"] == 0:
        pytest.skip("the state machine did not run in this session")
    print(STATS)
    assert STATS["strokes"] >= 1000
    assert {
        "drug_at_tip",
        "refilled",
        "concentration_changed",
        "low_reservoir",
        "reservoir_empty",
        "bolus_started",
        "patient_bolus_granted",
        "patient_bolus_denied",
        "suspended",
        "fault",
    } <= STATS["kinds"]
    assert {"granted", "not_enabled"} < STATS["patient"]
    assert {
        ("bolus", "ok"),
        ("refill", "ok"),
        ("set_program", "ok"),
        ("cancel_bolus", "ok"),
    } <= STATS["calls"]
    assert STATS["flagged"] >= 1
