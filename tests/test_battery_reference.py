"""Battery in the reference model (tests/reference.py) and the Rust core against it.

Hand-computed cases check the oracle's battery arithmetic (and the core's on the same inputs);
a differential property drives ``itb._core.Pump`` and ``RefPump`` in lock step through random
batteries, programs, refills, telemetry sessions, stalls and suspensions, and compares ERI/EOS
event times and data, remaining charge, stroke times, reservoir alarms and ``project()``
(also with ``assume_refills=True``).
"""

from __future__ import annotations

import os

from hypothesis import given, note, settings
from hypothesis import strategies as st
from itb import _core
from itb.models import NOMINAL_BATTERY
from reference import D, RefPump

MIN = 60_000
HOUR = 3_600_000
Q = 2000  # stroke, nL
T0 = 1_767_571_200_000  # 2026-01-05 00:00 (a Monday) in pump-clock ms

# Kinds both models report whose (time, kind) must agree; eri/eos also compare their data.
KINDS = (
    "low_reservoir",
    "reservoir_empty",
    "eri",
    "eos",
    "refilled",
    "fault",
    "fault_cleared",
    "suspended",
    "resumed",
    "telemetry_session",
)


def battery(**kw) -> dict:
    b = dict(
        capacity_pc=0,
        quiescent_pc_per_ms=0,
        stroke_pc=0,
        tone_pc=0,
        telemetry_pc=0,
        eri_pc=0,
        eos_pc=0,
        non_critical_tone_ms=HOUR,
        critical_tone_ms=10 * MIN,
    )
    b.update(kw)
    return b


def model(bat: dict, reservoir_nl: int = 40_000_000, low_nl: int = 2_000_000) -> dict:
    return dict(
        name="rig",
        reservoir_nl=reservoir_nl,
        stroke_nl=Q,
        min_rate_nl_per_day=48_000,
        max_rate_nl_per_day=24_000_000,
        low_reservoir_nl=low_nl,
        pump_path_nl=0,
        battery=bat,
    )


def pair(
    bat: dict,
    *,
    fill: int,
    program,
    conc: int = 1000,
    reservoir_nl: int = 40_000_000,
    low_nl: int = 2_000_000,
    now: int = T0,
):
    core = _core.Pump(
        model=model(bat, reservoir_nl, low_nl),
        now_ms=now,
        reservoir_nl=fill,
        concentration=conc,
        program=program,
    )
    ref = RefPump(
        now_ms=now,
        stroke_nl=Q,
        capacity_nl=reservoir_nl,
        reservoir_nl=fill,
        low_reservoir_nl=low_nl,
        conc_ug_per_ml=conc,
        program=program,
        all_events=True,
        battery=bat,
    )
    return core, ref


def battery_events(events) -> list:
    """(time, kind, data) of eri/eos from either model's event list."""
    # core tuples are (time, kind, severity, data, seq); the reference's (time, kind, data)
    return [(e[0], e[1], e[3] if len(e) == 5 else e[2]) for e in events if e[1] in ("eri", "eos")]


def test_nominal_battery_exact_fields_are_what_refpump_takes() -> None:
    ref = RefPump(
        now_ms=0,
        stroke_nl=Q,
        capacity_nl=Q,
        reservoir_nl=Q,
        low_reservoir_nl=0,
        conc_ug_per_ml=500,
        program=("continuous", 0),
        battery=NOMINAL_BATTERY.exact(),
    )
    assert ref.battery_remaining_pc == 500 * 3_600_000_000_000


# --------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------


def test_quiescent_only() -> None:
    # capacity 10_000 pC at 10 pC/ms, nothing else. ERI when remaining <= 4000, i.e. used >= 6000:
    # 6000 / 10 = 600 ms. EOS when used >= 9000: 900 ms. Empty by 1000 ms, then clamped at 0.
    bat = battery(capacity_pc=10_000, quiescent_pc_per_ms=10, eri_pc=4000, eos_pc=1000)
    core, ref = pair(bat, fill=10_000_000, program=("continuous", 0))
    want_proj = {
        "next_stroke": None,
        "low_reservoir": None,
        "reservoir_empty": None,
        "eri": T0 + 600,
        "eos": T0 + 900,
    }
    assert ref.project(D) == want_proj
    assert core.project(D)[4:6] == (T0 + 600, T0 + 900)
    assert ref.project(899)["eos"] is None and ref.project(900)["eos"] == T0 + 900
    want = [(T0 + 600, "eri", {"remaining_pc": 4000}), (T0 + 900, "eos", {"remaining_pc": 1000})]
    assert battery_events(ref.advance_to(T0 + 5000)) == want
    assert battery_events(core.advance_to(T0 + 5000)) == want
    assert ref.battery_remaining_pc == core.battery_remaining_pc == 0  # 50_000 used, clamped


def test_strokes_and_tones_after_a_low_alarm() -> None:
    # 2000 µg/day at 1000 µg/mL = 2_000_000 nL/day = 1000 strokes of 2 µL a day: a stroke every
    # 86_400 ms. Fill 10 µL (5 strokes), low threshold 4 µL:
    #   strokes at 86_400, 172_800, 259_200 (leaves 4 µL: low alarm), 345_600, 432_000 (leaves 0:
    #   reservoir empty). Low (non-critical, every 60 s) tones at 319_200, 379_200, 439_200,
    #   499_200; empty (critical, every 30 s) tones at 462_000, 492_000.
    # used(500_000) = 1 pC/ms × 500_000 + 5 strokes × 100 + 6 tones × 1000 = 506_500 pC.
    bat = battery(
        capacity_pc=1_000_000,
        quiescent_pc_per_ms=1,
        stroke_pc=100,
        tone_pc=1000,
        eri_pc=0,
        eos_pc=0,
        non_critical_tone_ms=60_000,
        critical_tone_ms=30_000,
    )
    core, ref = pair(
        bat, fill=10_000, program=("continuous", 2_000_000), reservoir_nl=10_000, low_nl=4000, now=0
    )
    ref_events = ref.advance_to(500_000)
    core_events = core.advance_to(500_000)
    assert ref.stroke_times == [86_400, 172_800, 259_200, 345_600, 432_000]
    assert ref.tones == 6
    assert ref.battery_remaining_pc == core.battery_remaining_pc == 1_000_000 - 506_500
    alarms = [(t, k) for t, k, _ in ref_events if k in ("low_reservoir", "reservoir_empty")]
    assert alarms == [(259_200, "low_reservoir"), (432_000, "reservoir_empty")]
    assert [
        (e[0], e[1]) for e in core_events if e[1] in ("low_reservoir", "reservoir_empty")
    ] == alarms
    # A refill clears both alarms: from now on only quiescent drain and strokes.
    ref.refill(10_000, 1000)
    core.refill(10_000, 1000)
    ref.advance_to(600_000)
    core.advance_to(600_000)
    # + 100_000 quiescent, + stroke at 586_400 (+100): 499_200 was the last tone before the refill
    assert ref.battery_remaining_pc == core.battery_remaining_pc == 1_000_000 - 606_600


def test_eri_and_eos_at_the_same_ms_by_a_stroke() -> None:
    # capacity 200_000, 1 pC/ms, 100_000 pC per stroke; a stroke every 86_400 ms (as above).
    # At 86_399: used 86_399, remaining 113_601 > 20_000. At 86_400 the stroke counts: used
    # 86_400 + 100_000 = 186_400, remaining 13_600 <= 15_000 <= 20_000: ERI and EOS at 86_400 (eri
    # first). That stroke happens; none after it.
    bat = battery(
        capacity_pc=200_000, quiescent_pc_per_ms=1, stroke_pc=100_000, eri_pc=20_000, eos_pc=15_000
    )
    core, ref = pair(bat, fill=10_000_000, program=("continuous", 2_000_000), now=0)
    assert ref.project(D)["eri"] == ref.project(D)["eos"] == 86_400
    assert core.project(D)[4:6] == (86_400, 86_400)
    want = [(86_400, "eri", {"remaining_pc": 13_600}), (86_400, "eos", {"remaining_pc": 13_600})]
    assert battery_events(ref.advance_to(D)) == want
    assert battery_events(core.advance_to(D)) == want
    assert ref.stroke_times == [86_400] and ref.strokes == core.strokes == 1


def test_telemetry_pushes_over_eri_at_the_call_time() -> None:
    # capacity 100_000, 1 pC/ms, 50_000 pC per telemetry session. At 20_000 ms remaining is
    # 80_000; a session then leaves 30_000 <= 40_000: ERI at 20_000 (the call time). EOS when
    # used >= 90_000: 70_000 + (t − 20_000) => t = 40_000 (the first ERI tone would be at 120_000).
    bat = battery(
        capacity_pc=100_000,
        quiescent_pc_per_ms=1,
        telemetry_pc=50_000,
        eri_pc=40_000,
        eos_pc=10_000,
        non_critical_tone_ms=100_000,
    )
    core, ref = pair(bat, fill=10_000_000, program=("continuous", 0), now=0)
    assert ref.project(D)["eri"] == 60_000  # without the session: used 60_000 at 60 s
    ref.advance_to(20_000)
    core.advance_to(20_000)
    ref.telemetry_session()
    core.telemetry_session()
    assert ref.battery_remaining_pc == core.battery_remaining_pc == 30_000
    assert ref.project(D)["eri"] is None  # raised at now: not strictly after now
    assert ref.project(D)["eos"] == 40_000 and core.project(D)[4:6] == (None, 40_000)
    want = [(20_000, "eri", {"remaining_pc": 30_000}), (40_000, "eos", {"remaining_pc": 10_000})]
    ref_events = ref.advance_to(D)
    assert battery_events(ref_events) == want
    core_events = core.advance_to(D)
    assert battery_events(core_events) == want
    # causal order: the session, then the ERI it pushed the battery over (docs: decisions/field-reports.md#events-keep-causal-order)
    assert [k for t, k, _ in ref_events if t == 20_000] == ["telemetry_session", "eri"]
    assert [e[1] for e in core_events if e[0] == 20_000] == ["telemetry_session", "eri"]


def test_assume_refills_has_no_reservoir_tones() -> None:
    # Small reservoir, loud tones: the plain projection's EOS comes earlier than the one that
    # assumes refills (no low/empty tones), which equals a run refilled at every low alarm.
    bat = battery(
        capacity_pc=400_000_000_000,
        quiescent_pc_per_ms=100,
        stroke_pc=10_000_000,
        tone_pc=2_000_000_000,
        eri_pc=100_000_000_000,
        eos_pc=20_000_000_000,
    )
    core, ref = pair(bat, fill=4_000_000, program=("continuous", 500_000), conc=1000)
    plain = ref.project(60 * D)
    refilled = ref.project(60 * D, assume_refills=True)
    assert plain["eos"] < refilled["eos"]
    assert core.project(60 * D)[4:6] == (plain["eri"], plain["eos"])
    assert core.project(60 * D, True)[4:6] == (refilled["eri"], refilled["eos"])
    # The same as refilling (same volume and concentration) exactly at each low alarm:
    run = refilled_run(
        bat, 4_000_000, 2_000_000, 4_000_000, 1000, ("continuous", 500_000), T0, T0 + 60 * D
    )
    assert (refilled["eri"], refilled["eos"]) == (run.eri_ms, run.eos_ms)


def refilled_run(bat, reservoir, low, fill, conc, program, start, end) -> RefPump:
    run = RefPump(
        now_ms=start,
        stroke_nl=Q,
        capacity_nl=reservoir,
        reservoir_nl=fill,
        low_reservoir_nl=low,
        conc_ug_per_ml=conc,
        program=program,
        all_events=True,
        battery=bat,
    )
    while run.now_ms < end and not run.eos:
        nxt = run.project(end - run.now_ms)["low_reservoir"]  # the next low alarm, exactly
        run.advance_to(end if nxt is None else nxt)
        if nxt is not None:
            run.refill(fill, conc)  # at the alarm ms: cleared before its first tone
    return run


# --------------------------------------------------------------------------------------------
# Differential property
# --------------------------------------------------------------------------------------------


@st.composite
def scenarios(draw):
    quiescent = draw(st.integers(0, 2000))
    life_days = draw(st.floats(0.2, 40.0))
    base = max(1, int(quiescent * D * life_days))
    capacity = draw(st.integers(max(base, 2), 2 * base + 1000))
    eri = draw(st.integers(0, capacity - 1))  # the core requires eri_pc < capacity_pc
    eos = draw(st.integers(0, eri))
    bat = battery(
        capacity_pc=capacity,
        quiescent_pc_per_ms=quiescent,
        stroke_pc=draw(st.integers(0, capacity // 2000)),
        tone_pc=draw(st.integers(0, capacity // 300)),
        telemetry_pc=draw(st.integers(0, capacity // 4)),
        eri_pc=eri,
        eos_pc=eos,
        non_critical_tone_ms=draw(st.integers(1000, 2 * HOUR)),
        critical_tone_ms=draw(st.integers(1000, 30 * MIN)),
    )
    reservoir = draw(st.sampled_from([4_000_000, 10_000_000, 20_000_000]))
    low = draw(st.sampled_from([500_000, 1_000_000, 2_000_000]))
    fill = draw(st.integers(0, reservoir // Q)) * Q + draw(st.sampled_from([0, 1, 999]))
    fill = min(fill, reservoir)
    conc = draw(st.sampled_from([500, 1000, 2000]))

    # volume rates 0.05 .. 2 mL/day (dose ng/day = nL/day × conc / 1000)
    def dose():
        return draw(st.integers(50_000, 2_000_000)) * conc // 1000

    if draw(st.booleans()):
        program = ("continuous", dose())
    else:
        program = (
            "flex",
            "day",
            [(0, dose()), (8 * HOUR, dose()), (22 * HOUR, draw(st.sampled_from([0, dose()])))],
        )
    ops = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("advance"), st.integers(1, 20 * D)),
                st.tuples(st.just("project"), st.integers(0, 200 * D)),
                st.tuples(st.just("telemetry"), st.just(0)),
                st.tuples(st.just("refill"), st.integers(0, reservoir)),
                st.tuples(st.just("stall"), st.just(0)),
                st.tuples(st.just("suspend"), st.just(0)),
            ),
            min_size=1,
            max_size=12,
        )
    )
    start = T0 + draw(st.integers(0, D))
    return bat, reservoir, low, fill, conc, program, start, ops


def check_project(core, ref, horizon):
    got = core.project(horizon)
    exp = ref.project(horizon)
    assert (got[0], got[1], got[2], got[4], got[5]) == (
        exp["next_stroke"],
        exp["low_reservoir"],
        exp["reservoir_empty"],
        exp["eri"],
        exp["eos"],
    )
    got_r = core.project(horizon, True)
    exp_r = ref.project(horizon, assume_refills=True)
    assert (got_r[4], got_r[5]) == (exp_r["eri"], exp_r["eos"])


# More examples for a local hunt: ITB_BATTERY_EXAMPLES=3000 (and derandomize=False below).
EXAMPLES = int(os.environ.get("ITB_BATTERY_EXAMPLES", "200"))


@settings(
    max_examples=EXAMPLES, deadline=None, derandomize="ITB_BATTERY_EXAMPLES" not in os.environ
)
@given(scenarios())
def test_core_matches_reference_battery(scenario) -> None:
    bat, reservoir, low, fill, conc, program, start, ops = scenario
    core, ref = pair(
        bat, fill=fill, program=program, conc=conc, reservoir_nl=reservoir, low_nl=low, now=start
    )
    check_project(core, ref, 120 * D)
    for op, arg in ops:
        note(f"{op} {arg} at {ref.now_ms}")
        if op == "advance":
            until = ref.now_ms + arg
            n0 = ref.strokes
            exp = ref.advance_to(until)
            got, times = core.advance_to_recording(until)
            assert [int(t) for t in times] == ref.stroke_times[n0:]
            assert [(e[0], e[1]) for e in got if e[1] in KINDS] == [
                (e[0], e[1]) for e in exp if e[1] in KINDS
            ]
            assert battery_events(got) == battery_events(exp)
        elif op == "project":
            check_project(core, ref, arg)
        elif op == "telemetry":
            ref.telemetry_session()
            core.telemetry_session()
        elif ref.eos:
            continue  # calls that change delivery are refused at EOS
        elif op == "refill":
            ref.refill(arg, conc)
            core.refill(arg, conc)
        elif op == "stall":
            if ref.stalled:
                ref.clear_fault()
                core.clear_fault()
            else:
                ref.inject_motor_stall()
                core.inject_motor_stall()
        elif op == "suspend":
            if ref.suspended:
                ref.resume()
                core.resume()
            else:
                ref.suspend()
                core.suspend()
        assert core.strokes == ref.strokes
        assert core.battery_remaining_pc == ref.battery_remaining_pc
        assert (core.eri, core.eos) == (ref.eri, ref.eos)
        assert sorted(a[0] for a in core.active_alarms) == sorted(ref.alarms)
    # Finally run on to the battery's end (or 120 days): every stroke and ERI/EOS compared.
    check_project(core, ref, 400 * D)
    until = ref.now_ms + 120 * D
    n0 = ref.strokes
    exp = ref.advance_to(until)
    got, times = core.advance_to_recording(until)
    assert [int(t) for t in times] == ref.stroke_times[n0:]
    assert [(e[0], e[1]) for e in got if e[1] in KINDS] == [
        (e[0], e[1]) for e in exp if e[1] in KINDS
    ]
    assert battery_events(got) == battery_events(exp)
    assert core.battery_remaining_pc == ref.battery_remaining_pc
    assert sorted(a[0] for a in core.active_alarms) == sorted(ref.alarms)


@settings(max_examples=25, deadline=None)
@given(scenarios(), st.integers(1, 400 * D))
def test_assume_refills_equals_a_run_refilled_at_every_low_alarm(scenario, horizon) -> None:
    """The oracle's assume_refills projection == a reference run refilled (same volume and
    concentration) exactly at each low-reservoir alarm; and the core agrees with both."""
    bat, reservoir, low, fill, conc, program, start, _ops = scenario
    fill = reservoir  # a full reservoir, refilled to full at every low alarm
    core, ref = pair(
        bat, fill=fill, program=program, conc=conc, reservoir_nl=reservoir, low_nl=low, now=start
    )
    proj = ref.project(horizon, assume_refills=True)
    assert core.project(horizon, True)[4:6] == (proj["eri"], proj["eos"])
    run = refilled_run(bat, reservoir, low, fill, conc, program, start, start + horizon)
    after = lambda t: t if t is not None and t > start else None  # noqa: E731
    assert (proj["eri"], proj["eos"]) == (after(run.eri_ms), after(run.eos_ms))
