"""Fleet simulation: simulate_many (rayon) and simulate_dask (a LocalCluster on loopback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import itb
import numpy as np
import pytest
from itb.fleet import random_fleet, simulate_dask

UNTIL = datetime(2027, 1, 5)


def one_by_one(pumps: list[itb.Pump], until: datetime) -> dict[str, list]:
    """The same columns computed pump by pump through the public API."""
    cols: dict[str, list] = {
        k: []
        for k in (
            "strokes",
            "delivered_nl",
            "reservoir_nl",
            "events",
            "eri_forecast",
            "first_reservoir_empty",
        )
    }
    for p in pumps:
        p = p.copy()
        forecast = p.project(timedelta(days=30 * 365), assume_refills=True)
        events = p.advance_to(until)
        cols["strokes"].append(p.strokes)
        cols["delivered_nl"].append(p.delivered_nl)
        cols["reservoir_nl"].append(p.reservoir_nl)
        cols["events"].append(len(events))
        cols["eri_forecast"].append(forecast.eri)
        empty = [e.time for e in events if e.kind == "reservoir_empty"]
        cols["first_reservoir_empty"].append(empty[0] if empty else None)
    return cols


def as_datetimes(arr: np.ndarray) -> list:
    return [None if np.isnat(x) else x.astype("datetime64[ms]").astype(datetime) for x in arr]


def test_simulate_many_equals_pump_by_pump_and_leaves_pumps_unchanged() -> None:
    fleet = random_fleet(40, seed=7)
    before = [p.snapshot() for p in fleet]
    result = itb.simulate_many(fleet, UNTIL)
    assert [p.snapshot() for p in fleet] == before
    expected = one_by_one(fleet, UNTIL)
    assert len(result) == 40
    for name in ("strokes", "delivered_nl", "reservoir_nl", "events"):
        assert result[name].tolist() == expected[name], name
    assert as_datetimes(result["eri_forecast"]) == expected["eri_forecast"]
    assert as_datetimes(result["first_reservoir_empty"]) == expected["first_reservoir_empty"]
    # Delivered mass: a 1-year run of a primed pump delivers pumped volume × concentration.
    conc = np.array([p.concentration_ug_per_ml for p in fleet])
    assert np.array_equal(result["delivered_ug"] * 1e6, result["delivered_nl"] * conc)


def test_results_do_not_depend_on_thread_count() -> None:
    fleet = random_fleet(64, seed=3)
    one = itb.simulate_many(fleet, UNTIL, threads=1)
    two = itb.simulate_many(fleet, UNTIL, threads=2)
    four = itb.simulate_many(fleet, UNTIL, threads=4)
    for name in one.columns:
        assert one[name].dtype == two[name].dtype == four[name].dtype
        assert one[name].tobytes() == two[name].tobytes() == four[name].tobytes(), name


def test_empty_fleet_and_pandas() -> None:
    empty = itb.simulate_many([], UNTIL)
    assert len(empty) == 0
    result = itb.simulate_many(random_fleet(5, seed=1), UNTIL)
    frame = result.to_pandas()
    assert len(frame) == 5 and list(frame["strokes"]) == result["strokes"].tolist()
    assert str(frame["eos_forecast"].dtype).startswith("datetime64")


def test_bad_until_is_a_validation_error() -> None:
    with pytest.raises(itb.ValidationError) as err:
        itb.simulate_many(random_fleet(2), datetime(2026, 1, 5, tzinfo=UTC))
    assert err.value.field == "until"


def test_simulate_dask_on_a_local_cluster_matches_simulate_many() -> None:
    distributed = pytest.importorskip("dask.distributed")
    fleet = random_fleet(30, seed=11)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = simulate_dask(fleet, UNTIL, client=client, partitions=4)
    local = itb.simulate_many(fleet, UNTIL)
    assert len(result) == 30
    for name in local.columns:
        assert result[name].tobytes() == local[name].tobytes(), name
