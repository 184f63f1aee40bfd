"""The fault strategies (docs: guide/faults.md, guide/testing-kit.md): ``fault_actions`` draws every
fault and clearing a pump accepts, each with its effect checked by hand; they shrink to the simplest
fault; ``scenarios(faults=True)`` draws them into scenarios that run and match the Oracle."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import itb
import itb.scenario
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from itb import strategies as its
from itb.testing import invariants

START = datetime(2026, 1, 5, 8, 0)


def _pump() -> itb.Pump:
    return itb.Pump(
        itb.models.SYNCHROMED_II_20,
        now=START,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        catheter_volume_ul=150.0,
        program=itb.Continuous(ug_per_day=400),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fault_actions_are_accepted_and_do_what_they_say(data) -> None:
    p = _pump()
    for _ in range(data.draw(st.integers(1, 8), label="n")):
        p.advance(timedelta(hours=data.draw(st.integers(0, 72), label="hours")))
        req = data.draw(its.fault_actions(p) | st.none(), label="fault")
        if req is None:
            continue
        kw = req.kwargs
        tissue = p.tissue_nl
        req.apply(p)  # never refused: drawn for this pump's state
        f = p.active_faults
        if req.kind == "inject_occlusion":
            assert f["occlusion_pass_pct"] == kw["pass_pct"]
        elif req.kind in ("inject_leak", "inject_disconnection"):
            kind = "disconnection" if req.kind == "inject_disconnection" else "leak"
            assert f["leak"] == (kind, kw["position_ul"])
            assert 0 <= kw["position_ul"] <= 150
        elif req.kind == "inject_tip_migration":
            assert f["tip_migrated"]
        elif req.kind == "pocket_fill":
            assert req.do == "refill" and 0 < kw["pocket_ml"] <= kw["added_ml"] <= 20.0
            # the pocket's volume goes into tissue at once; the firmware counts all of it
            assert p.tissue_nl - tissue == round(kw["pocket_ml"] * 1_000_000)
            assert p.reservoir_nl == round(kw["added_ml"] * 1_000_000)
            assert p.true_reservoir_nl == round((kw["added_ml"] - kw["pocket_ml"]) * 1_000_000)
        elif req.kind == "inject_battery_fault":
            assert f["battery_fault"] and p.program == itb.Continuous(ug_per_day=96.0)
        elif req.kind == "inject_motor_stall":
            assert f["motor_stall"]
        elif req.kind == "clear_occlusion":
            assert f["occlusion_pass_pct"] is None
        elif req.kind == "clear_leak":
            assert f["leak"] is None
        elif req.kind == "clear_tip_migration":
            assert not f["tip_migrated"]
        elif req.kind == "clear_battery_fault":
            assert not f["battery_fault"]
        else:
            assert req.kind == "clear_fault" and not f["motor_stall"]
        invariants.check_state(p)


def test_only_what_the_pump_accepts_now() -> None:
    p = _pump()
    kinds = set()

    @settings(max_examples=60, deadline=None)
    @given(its.fault_actions(p))
    def draw(req):
        kinds.add(req.kind)

    draw()
    # nothing in force: no clearing; everything else can be injected
    assert kinds == set(its.FAULT_KINDS) - {k for k in its.FAULT_KINDS if k.startswith("clear_")}
    p.inject_occlusion()
    p.inject_leak(10.0)
    p.inject_tip_migration()
    p.inject_battery_fault()
    p.inject_motor_stall()
    clears = {
        find(its.fault_actions(p, kinds=(k,)), lambda r: True).kind
        for k in its.FAULT_KINDS
        if k.startswith("clear_")
    }
    assert clears == {k for k in its.FAULT_KINDS if k.startswith("clear_")}
    for k in ("inject_occlusion", "inject_leak", "inject_disconnection", "inject_battery_fault"):
        assert its.fault_actions(p, kinds=(k,)).is_empty, k  # each already in force


def test_fault_actions_shrink_to_the_simplest_fault() -> None:
    assert find(its.fault_actions(), lambda r: True) == its.FaultRequest(
        "inject_occlusion", (("pass_pct", 0.0),)
    )
    leak = find(its.fault_actions(kinds=("inject_leak",)), lambda r: True)
    assert leak.kwargs == {"position_ul": 0.0}  # at the pump connector
    # a leak beyond 40 µL shrinks to exactly 41 µL
    far = find(its.fault_actions(kinds=("inject_leak",)), lambda r: r.kwargs["position_ul"] > 40)
    assert far.kwargs == {"position_ul": 41.0}
    pocket = find(its.fault_actions(_pump(), kinds=("pocket_fill",)), lambda r: True)
    assert pocket.kwargs == {"added_ml": 1.0, "concentration_ug_per_ml": 2000, "pocket_ml": 1.0}
    big = find(
        its.fault_actions(_pump(), kinds=("pocket_fill",)), lambda r: r.kwargs["pocket_ml"] > 5
    )
    # the smallest pocket over 5 mL in whole µL, all of the refill into the pocket
    assert big.kwargs["added_ml"] == 5.001 and big.kwargs["pocket_ml"] == 5.001
    assert pocket.action(START) == {
        "at": START,
        "do": "refill",
        "added_ml": 1.0,
        "concentration_ug_per_ml": 2000,
        "pocket_ml": 1.0,
    }


def test_fault_action_arguments_are_checked() -> None:
    for bad in (
        lambda: its.fault_actions(kinds=("frobnicate",)),
        lambda: its.fault_actions(kinds=()),
        lambda: its.fault_actions(max_position_ul=-1),
        lambda: its.fault_actions(max_position_ul=True),
        lambda: its.fault_actions(min_added_ml="1"),
        lambda: its.scenarios(faults=1),
    ):
        with pytest.raises(its.InvalidArgument):
            bad()


def _run_matches_the_oracle(data) -> itb.scenario.ScenarioResult:
    from itb.testing import Oracle

    scenario = itb.scenario.from_dict(data)
    result = scenario.run()
    assert result.pump.now == data["run"]["until"]
    e, p = Oracle(scenario).expected(scenario.until), result.pump
    assert (e.strokes, e.pumped_nl, e.delivered_nl, e.delivered_pg) == (
        p.strokes,
        p.pumped_nl,
        p.delivered_nl,
        p.delivered_pg,
    )
    invariants.check_state(p)
    return result


def test_scenarios_with_faults_run_and_reach_every_fault() -> None:
    seen: Counter = Counter()

    def check(data):
        result = _run_matches_the_oracle(data)
        for a in data["actions"]:
            seen["pocket_fill" if a.get("pocket_ml") else a["do"]] += 1
        # the text round-trips, fault actions included
        scenario = itb.scenario.from_dict(data)
        assert itb.scenario.loads(scenario.dumps()).spec == scenario.spec
        assert sum(ev.kind == "fault" for ev in result.events) == sum(
            a["do"].startswith("inject_") or bool(a.get("pocket_ml")) for a in data["actions"]
        )

    mixed = its.scenarios(max_actions=8, faults=True)
    dense = its.scenarios(max_actions=12, actions=("telemetry_session",), faults=True)

    def run(**kw):
        for strategy in (mixed, dense):
            settings(
                max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], **kw
            )(given(strategy)(check))()

    run()
    wanted = [k for k in its.FAULT_KINDS if k not in ("inject_motor_stall", "clear_fault")]
    for _ in range(4):  # the derandomized stream moves with any code change: top up
        if all(seen[w] for w in wanted):
            break
        run(derandomize=False, database=None)
    assert [w for w in wanted if not seen[w]] == [], seen


def test_scenarios_draw_no_faults_unless_asked() -> None:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(its.scenarios(max_actions=8))
    def plain(data):
        assert not any(
            a["do"] in itb.scenario.FAULT_ACTIONS or a.get("pocket_ml") for a in data["actions"]
        )

    plain()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(its.scenarios(max_actions=8, horizon=timedelta(days=30)))
def test_no_false_refill_flags_on_a_healthy_pump_over_random_therapies(data) -> None:
    # docs/guide/faults.md, detection: with no fault, what is aspirated is what the firmware expects
    for a in data["actions"]:
        a.pop("aspirated_ml", None)  # the clinician's own measurement is not the pump's fault
    result = itb.scenario.from_dict(data).run()
    assert not [ev for ev in result.events if ev.kind == "refill_discrepancy"]
    assert result.pump.true_reservoir_nl == result.pump.reservoir_nl  # nominal strokes
