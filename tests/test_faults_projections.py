"""``physically_dry`` (the physical ledger's first short stroke) wherever projections are shown:
``itb.pump.project_many``, ``Fleet.forecast`` and ``itb project`` (docs: guide/faults.md,
"Projections under faults"; guide/fleets.md). Expected values by hand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import itb
import numpy as np
import pytest
from itb import cli
from itb.fleet import Fleet
from itb.pump import project_many

T0 = datetime(2026, 1, 5, 8, 0)
STROKE = timedelta(minutes=14.4)  # 2 µL strokes at 0.2 mL/day (400 µg/day of 2000 µg/mL)
REFILL = T0 + timedelta(days=50)  # 10 mL counted and there
# 5 mL reach the reservoir (5 into the pocket), 10 mL counted: 2 500 strokes of 2 µL are there,
# stroke 2 501 is the first dry one; the firmware empties at its 5 000th (50 days)
DRY = datetime(2026, 3, 21, 8, 14, 24)  # REFILL (2026-02-24 08:00) + 2 501 × 14.4 min
EMPTY = datetime(2026, 4, 15, 8, 0)  # REFILL + 50 days


def pocket_filled() -> itb.Pump:
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_20,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        catheter_volume_ul=150.0,
        program=itb.Continuous(ug_per_day=400),
    )
    pump.advance(timedelta(days=50))
    pump.refill(10.0, 2000, pocket_ml=5.0)
    return pump


def healthy() -> itb.Pump:
    return itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )


def test_hand_dates() -> None:
    assert REFILL + 2_501 * STROKE == DRY and REFILL + 5_000 * STROKE == EMPTY


def when(value: np.datetime64) -> datetime | None:
    return None if np.isnat(value) else value.astype(datetime)


def test_project_many_has_physically_dry() -> None:
    pumps = [healthy(), pocket_filled()]
    cols = project_many(pumps, timedelta(days=100))
    assert when(cols["physically_dry"][1]) == DRY
    assert when(cols["reservoir_empty"][1]) == EMPTY
    # a healthy pump: the firmware's count runs out first (reservoir_empty at 100 days)
    assert when(cols["physically_dry"][0]) is None
    assert when(cols["reservoir_empty"][0]) == T0 + timedelta(days=100)
    refilled = project_many(pumps, timedelta(days=100), assume_refills=True)
    assert np.isnat(refilled["physically_dry"]).all()
    for i, pump in enumerate(pumps):  # and row i is the pump's own projection
        assert when(cols["physically_dry"][i]) == pump.project(timedelta(days=100)).physically_dry


@pytest.mark.parametrize("assume_refills", [False, True])
def test_fleet_forecast_has_physically_dry(assume_refills: bool) -> None:
    fleet = Fleet(
        {
            "model": ["SYNCHROMED_II_40", "PROMETRA_II_20"],
            "now": np.array(["2026-01-05T08:00", "2026-02-01T09:30"], dtype="datetime64[ms]"),
            "reservoir_ml": [40.0, 12.5],
            "concentration_ug_per_ml": [2000, 500],
            "ug_per_day": [400.0, 250.0],
        }
    )
    got = fleet.forecast(timedelta(days=3650), assume_refills=assume_refills)
    # rows are healthy pumps (no pocket fill, no stroke error): never physically dry before
    # the firmware's count stops them
    assert got["physically_dry"].dtype == np.dtype("datetime64[ms]")
    assert np.isnat(got["physically_dry"]).all()
    if not assume_refills:  # the firmware's count does run out: (40 − 0) mL at 0.2 mL/day
        assert when(got["reservoir_empty"][0]) == T0 + timedelta(days=200)
    for i in range(2):
        own = fleet.pump(i).project(timedelta(days=3650), assume_refills)
        assert when(got["physically_dry"][i]) == own.physically_dry


SCENARIO = """
[pump]
model = "SYNCHROMED_II_20"
start = 2026-01-05T08:00:00
reservoir_ml = 20.0
concentration_ug_per_ml = 2000
catheter_volume_ul = 150.0
program = { kind = "continuous", ug_per_day = 400.0 }

[[actions]]
at = 2026-02-24T08:00:00
do = "refill"
added_ml = 10.0
concentration_ug_per_ml = 2000
pocket_ml = 5.0

[run]
until = 2026-02-24T08:00:00
"""


def test_itb_project_shows_physically_dry(tmp_path, capsys) -> None:
    path = tmp_path / "pocket.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    code = cli.main(["project", str(path), "--json", "--horizon", "P100D"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["projection"]["physically_dry"] == "2026-03-21T08:14:24.000"
    assert report["projection"]["reservoir_empty"] == "2026-04-15T08:00:00.000"
    assert report["assume_refills"]["physically_dry"] is None
    code = cli.main(["project", str(path), "--horizon", "P100D"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "physically_dry" in line)
    assert code == 0 and "2026-03-21 08:14:24" in row
