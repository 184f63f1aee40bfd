"""Fleets from tables (docs: guide/fleets.md): a Fleet held as columns forecasts and simulates
exactly what the same pumps built one by one do, whatever the thread count."""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import numpy as np
import pytest
from itb.fleet import Fleet

PRESET_NAMES = list(itb.models.PRESETS)


def table(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "model": rng.integers(0, len(PRESET_NAMES), n),
        "now": (
            np.datetime64("2026-01-05T08:00", "ms")
            + rng.integers(0, 365 * 86_400_000, n).astype("timedelta64[ms]")
        ),
        "reservoir_ml": np.round(rng.uniform(1.0, 20.0, n), 3),
        "concentration_ug_per_ml": rng.choice([500, 1000, 2000], n),
        "ug_per_day": np.round(rng.uniform(100.0, 900.0, n), 1),
    }


def one_by_one(cols: dict, i: int) -> itb.Pump:
    return itb.Pump(
        itb.models.PRESETS[PRESET_NAMES[int(cols["model"][i])]],
        now=int(cols["now"][i].astype("datetime64[ms]").astype(np.int64)),
        reservoir_ml=float(cols["reservoir_ml"][i]),
        concentration_ug_per_ml=int(cols["concentration_ug_per_ml"][i]),
        program=itb.Continuous(ug_per_day=float(cols["ug_per_day"][i])),
    )


@pytest.mark.parametrize("assume_refills", [True, False])
def test_forecast_equals_each_pumps_projection(assume_refills):
    cols = table(300)
    fleet = Fleet(cols)
    got = fleet.forecast(timedelta(days=3650), assume_refills=assume_refills)
    for i in range(len(fleet)):
        proj = one_by_one(cols, i).project(timedelta(days=3650), assume_refills=assume_refills)
        for name in ("next_stroke", "low_reservoir", "reservoir_empty", "eri", "eos"):
            want = getattr(proj, name + "_ms")
            value = got[name][i]
            assert np.isnat(value) if want is None else int(value.astype(np.int64)) == want, (
                i,
                name,
            )
    again = fleet.forecast(timedelta(days=3650), assume_refills=assume_refills, threads=1)
    assert all(np.array_equal(got[k].view(np.int64), again[k].view(np.int64)) for k in got)


def test_simulate_equals_simulate_many_and_accepts_pandas():
    pd = pytest.importorskip("pandas")
    cols = table(120, seed=3)
    frame = pd.DataFrame(cols)
    frame["model"] = [PRESET_NAMES[i] for i in cols["model"]]  # preset names work too
    until = datetime(2027, 6, 1)
    got = Fleet(frame).simulate(until, threads=2)
    want = itb.simulate_many([one_by_one(cols, i) for i in range(120)], until)
    for k in want.columns:
        g, w = (x.view(np.int64) if x.dtype.kind == "M" else x for x in (got[k], want[k]))
        assert np.array_equal(g, w), k


def test_errors_name_the_column_and_row():
    cols = table(10)
    cols["reservoir_ml"][4] = 1e-9
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols).forecast()
    assert err.value.field == "reservoir_ml[4]"
    cols = table(10)
    cols["ug_per_day"][6] = 60_000.0
    with pytest.raises(itb.ProgrammingError) as err:
        Fleet(cols).forecast()
    assert err.value.field == "ug_per_day[6]"
    cols = table(10)
    cols["model"][2] = 99
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols).forecast()
    assert err.value.field == "model[2]"
    del cols["now"]
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols)
    assert err.value.field == "now"


def test_simulate_dask_takes_a_fleet_in_row_partitions():
    pytest.importorskip("dask")
    import pickle

    from itb.fleet import simulate_dask

    fleet = Fleet(table(50, seed=11))
    until = datetime(2026, 9, 1)
    whole = fleet.simulate(until)
    parts = simulate_dask(fleet, until, partitions=4)  # Dask's default scheduler (no cluster)
    for k in whole.columns:
        assert np.array_equal(
            whole[k].view(np.int64) if whole[k].dtype.kind == "M" else whole[k],
            parts[k].view(np.int64) if parts[k].dtype.kind == "M" else parts[k],
        ), k
    again = pickle.loads(pickle.dumps(fleet.rows(10, 20)))
    assert len(again) == 10
    assert np.array_equal(
        again.forecast()["eos"].view(np.int64), fleet.forecast()["eos"][10:20].view(np.int64)
    )


def test_a_steps_table_of_shared_flex_programs():
    from datetime import time

    programs = [
        itb.Flex(period="day", steps=[(time(0), 200.0), (time(8), 600.0), (time(22), 200.0)]),
        itb.Flex(period="week", steps=[((0, time(0)), 300.0), ((5, time(0)), 500.0)]),
    ]
    cols = table(80, seed=5)
    cols["program"] = np.array([i % 3 - 1 for i in range(80)])  # -1 (ug_per_day), 0, 1, -1, …
    fleet = Fleet(cols, programs=programs)
    got = fleet.forecast(timedelta(days=400), assume_refills=False)
    for i in range(80):
        k = int(cols["program"][i])
        pump = one_by_one(cols, i)
        if k >= 0:
            pump.set_program(programs[k])  # set at the start: the same pump as built with it
        proj = pump.project(timedelta(days=400))
        for name in ("next_stroke", "low_reservoir", "reservoir_empty", "eos"):
            want = getattr(proj, name + "_ms")
            value = got[name][i]
            assert np.isnat(value) if want is None else int(value.astype(np.int64)) == want, (
                i,
                name,
            )
        want_program = (
            programs[k] if k >= 0 else itb.Continuous(ug_per_day=float(cols["ug_per_day"][i]))
        )
        assert fleet.pump(i).program.exact() == want_program.exact()
    bad = dict(cols, concentration_ug_per_ml=np.full(80, 100_000))
    bad["program"] = np.full(80, 0)
    with pytest.raises(itb.ProgrammingError) as err:
        Fleet(bad, programs=programs).forecast()
    assert err.value.field == "program[0].steps[0].ug_per_day"
    with pytest.raises(itb.ValidationError) as err:
        Fleet(dict(cols, program=np.full(80, 7)), programs=programs).forecast()
    assert err.value.field == "program[0]"


def test_a_pyarrow_table_gives_the_same_forecast_as_numpy_columns():
    pa = pytest.importorskip("pyarrow")
    cols = table(80, seed=11)
    arrow = pa.table({**cols, "model": pa.array([PRESET_NAMES[i] for i in cols["model"]])})
    got = Fleet(arrow).forecast(timedelta(days=3650), assume_refills=True)
    want = Fleet(cols).forecast(timedelta(days=3650), assume_refills=True)
    assert set(got) == set(want)
    for k in want:
        assert np.array_equal(got[k].view(np.int64), want[k].view(np.int64)), k
    # and against one pump built by hand
    proj = one_by_one(cols, 5).project(timedelta(days=3650), assume_refills=True)
    assert proj.eri_ms is not None and int(got["eri"][5].astype(np.int64)) == proj.eri_ms
