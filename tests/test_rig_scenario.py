"""A rig runs a scenario file's whole stroke schedule: every stroke of the run with its actions."""

from pathlib import Path

import numpy as np
from itb import scenario
from itb.cli.rig import load_schedule

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_rig_schedule_of_a_scenario_is_every_stroke_of_its_run():
    path = EXAMPLES / "concentration_change_bridge.toml"
    times, start_ms, description = load_schedule(str(path))
    sc = scenario.load(path)
    result = sc.run()
    assert start_ms == sc.pump().now_ms and "itb.scenario" in description
    assert len(times) == result.pump.strokes > 0  # the bridge bolus's strokes included
    assert np.all(np.diff(times) > 0) and times[0] > start_ms
    batches = [e for e in result.events if e.kind == "stroke_batch"]
    assert sum(e.data["count"] for e in batches) == len(times)
    assert times[-1] == batches[-1].time_ms  # the last batch ends at the last stroke
