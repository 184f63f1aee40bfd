"""A rig runs a scenario file's whole plan: every stroke of the run with its actions, and the
actions the rig must be told about as rig commands at their places between strokes."""

from pathlib import Path

import numpy as np
import pytest
from itb import scenario
from itb.hardware import Journal, Rig, SimulatedDriver
from itb.hardware.controller import Controller
from itb.hardware.plan import RIG_COMMANDS, plan_scenario

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALL_EXAMPLES = sorted(EXAMPLES.glob("*.toml"))


def test_rig_schedule_of_a_scenario_is_every_stroke_of_its_run():
    path = EXAMPLES / "concentration_change_bridge.toml"
    sc = scenario.load(path)
    plan = plan_scenario(sc)
    times = plan.times
    result = sc.run()
    assert plan.start_ms == sc.pump().now_ms
    assert len(times) == result.pump.strokes > 0  # the bridge bolus's strokes included
    assert np.all(np.diff(times) > 0) and times[0] > plan.start_ms
    batches = [e for e in result.events if e.kind == "stroke_batch"]
    assert sum(e.data["count"] for e in batches) == len(times)
    assert times[-1] == batches[-1].time_ms  # the last batch ends at the last stroke


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: p.stem)
def test_every_action_is_placed_after_the_strokes_at_or_before_its_time(path):
    sc = scenario.load(path)
    plan = plan_scenario(sc)
    assert len(plan.steps) == len(sc.actions)
    for step, action in zip(plan.steps, sc.actions, strict=True):
        # independent of the loop's bookkeeping: the strokes at or before the action's time
        assert step.after == int(np.searchsorted(plan.times, step.at_ms, side="right"))
        assert step.command == RIG_COMMANDS.get(action.do, "")
    assert plan.min_interval_ms == -(
        -sc.model.exact()["stroke_nl"] * 86_400_000 // sc.model.exact()["max_rate_nl_per_day"]
    )


def test_patient_bolus_actions_become_rig_presses_with_the_scenarios_verdicts(tmp_path):
    sc = scenario.load(EXAMPLES / "ptm_patient_bolus.toml")
    plan = plan_scenario(sc)
    limits = [s for s in plan.steps if s.command == "SET_LIMITS"]
    # 25 µg over 15 min, 3 h lockout, 3 per 24 h: by hand
    assert limits[0].args == {
        "dose_ng": 25_000,
        "duration_ms": 900_000,
        "lockout_ms": 10_800_000,
        "max_per_24h": 3,
    }
    presses = [s for s in plan.steps if s.command == "PATIENT_BOLUS"]
    # morning granted, 90 min later lockout, afternoon, evening granted, 4th in 24 h denied,
    # next morning granted (the first grant left the window): the file's own comments
    assert [p.expect["granted"] for p in presses] == [True, False, True, True, False, True]
    rig = Rig(record=tmp_path / "rec.csv")
    with Journal(tmp_path / "j.db") as j:
        report = Controller(SimulatedDriver(rig), j, plan, batch=64).run()
    assert report.complete and report.steps == len(plan.steps)
    st = rig.status()
    assert (st["patient_boluses_granted"], st["patient_boluses_denied"]) == (4, 2)
    assert st["concentration_ug_per_ml"] == 2000 and st["limits"] == limits[0].args
    # the presses' volume came as strokes: the rig's reservoir lost exactly the schedule's strokes
    assert st["reservoir_nl"] == 40_000_000 - 2000 * plan.times.size
