"""bolus_many (issue 8, part 1): many boluses at once are exactly the same boluses one by one,
all or nothing, with errors naming the entry."""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 1, 5, 8)


def pump() -> itb.Pump:
    return itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )


plans = st.lists(
    st.tuples(
        st.integers(0, 30 * 24 * 60),
        st.sampled_from([0.5, 1.0, 25.0, 50.0, 300.0]),
        st.integers(1, 120),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(plan=plans)
def test_many_equals_one_by_one_or_refuses_all(plan):
    starts = [T0 + timedelta(minutes=m) for m, _, _ in plan]
    doses = [d for _, d, _ in plan]
    durations = [timedelta(minutes=k) for _, _, k in plan]
    one, many = pump(), pump()
    try:
        ids_one = [
            one.bolus(dose_ug=d, duration=k, start=s) for s, d, k in zip(starts, doses, durations)
        ]
    except itb.ProgrammingError:
        before = many.snapshot()
        with pytest.raises(itb.ProgrammingError):
            many.bolus_many(starts, doses, durations)
        assert many.snapshot() == before
        return
    assert many.bolus_many(starts, doses, durations) == ids_one
    assert many.snapshot() == one.snapshot()
    assert list(many.advance(timedelta(days=31))) == list(one.advance(timedelta(days=31)))


def test_numpy_columns_and_errors():
    p = pump()
    starts = np.array(["2026-01-05T09:00", "2026-01-06T09:00"], dtype="datetime64[ms]")
    ids = p.bolus_many(
        starts, np.array([10.0, 20.0]), np.array([600_000, 1_200_000], dtype="timedelta64[ms]")
    )
    assert ids == [1, 2]
    assert [(b.start, b.requested_dose_ug, b.duration) for b in p.boluses] == [
        (datetime(2026, 1, 5, 9), 10.0, timedelta(minutes=10)),
        (datetime(2026, 1, 6, 9), 20.0, timedelta(minutes=20)),
    ]
    before = p.snapshot()
    M, S = timedelta(minutes=1), timedelta(seconds=1)
    for starts, doses, durations, field in [
        ([T0, T0 - timedelta(1)], [1.0, 1.0], [M, M], "starts[1]"),
        ([T0, T0], [1.0, float("nan")], [M, M], "doses_ug[1]"),
        ([T0, T0], [1.0, 1e-9], [M, M], "doses_ug[1]"),
        ([T0, T0], [1.0, 1.0], [M, timedelta(0)], "durations[1]"),
        ([T0, T0], [1.0, "x"], [M, M], "doses_ug[1]"),
        ([T0], [1.0, 1.0], [M, M], "durations"),
        ([T0, T0], [5000.0, 5000.0], [S, S], "doses_ug"),
        ([T0, T0], [1.0, 1.0], [M, 60_000], "durations[1]"),  # a bare number: no unit
        ([T0, T0], [1.0, 1.0], [M, True], "durations[1]"),
    ]:
        with pytest.raises(itb.ItbError) as err:
            p.bolus_many(starts, doses, durations)
        assert err.value.field == field, (field, err.value)
        assert p.snapshot() == before
