"""The core's rates at now (commanded volume rate, prescribed dose rate, delivering), checked
against hand-computed values, and the time series columns built from them."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import itb
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 1, 5, 8, 0)


def _pump(program: itb.Continuous | itb.Flex) -> itb.Pump:
    return itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=program,
    )


def test_continuous_with_a_bolus_and_a_suspension() -> None:
    pump = _pump(itb.Continuous(ug_per_day=400.0))
    core = pump.core
    # 400 µg/day at 2000 µg/mL = 0.2 mL/day = 200 000 nL/day
    assert (core.commanded_rate_nl_per_day, core.prescribed_ng_per_day) == (200_000, 400_000)
    assert core.delivering
    pump.bolus(50.0, timedelta(minutes=30))  # 25 µL over 30 min = 1 200 000 nL/day on top
    assert core.commanded_rate_nl_per_day == 1_400_000
    pump.advance(timedelta(minutes=30))  # the bolus has ended
    assert core.commanded_rate_nl_per_day == 200_000
    pump.suspend()
    assert (core.commanded_rate_nl_per_day, core.delivering) == (0, False)
    assert core.prescribed_ng_per_day == 400_000  # the program still prescribes


def test_flex_steps() -> None:
    # 08:00-20:00 600 µg/day, else 200 µg/day; the pump starts at 08:00
    pump = _pump(itb.Flex("day", [(time(0, 0), 200.0), (time(8, 0), 600.0), (time(20, 0), 200.0)]))
    core = pump.core
    assert (core.commanded_rate_nl_per_day, core.prescribed_ng_per_day) == (300_000, 600_000)
    pump.advance_to(datetime(2026, 1, 5, 19, 59, 59, 999000))
    assert core.prescribed_ng_per_day == 600_000
    pump.advance_to(datetime(2026, 1, 5, 20, 0))
    assert (core.commanded_rate_nl_per_day, core.prescribed_ng_per_day) == (100_000, 200_000)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 23 * 60 + 59), min_size=1, max_size=6, unique=True),
    st.integers(0, 3 * 24 * 60),
)
def test_flex_step_in_force_is_the_last_step_started(minutes: list[int], at_min: int) -> None:
    """Brute force: the step in force is the last one whose time of day is at or before now's."""
    offsets = sorted({0, *minutes})
    doses = [100.0 + 10 * i for i in range(len(offsets))]
    pump = _pump(itb.Flex("day", [(time(m // 60, m % 60), d) for m, d in zip(offsets, doses)]))
    pump.advance(timedelta(minutes=at_min))
    minute_of_day = (8 * 60 + at_min) % (24 * 60)
    expected = [d for m, d in zip(offsets, doses) if m <= minute_of_day][-1]
    assert pump.core.prescribed_ng_per_day == round(expected * 1000)
    assert pump.core.commanded_rate_nl_per_day == round(expected * 1000) // 2  # at 2000 µg/mL


def test_one_events_frame_schema() -> None:
    """``export.events_frame`` of a list of events and ``EventLog.to_pandas`` give one schema."""
    import pandas as pd
    from itb.export import events_frame

    pump = _pump(itb.Continuous(ug_per_day=400.0))
    pump.bolus(50.0, timedelta(minutes=30))
    log = pump.advance_to(T0 + timedelta(days=3))
    a, b = events_frame(list(log)), log.to_pandas()
    assert (
        list(a.columns[:5]) == list(b.columns[:5]) == ["time", "kind", "severity", "time_ms", "seq"]
    )
    assert set(a.columns) == set(b.columns)
    cols = sorted(a.columns)
    pd.testing.assert_frame_equal(a[cols], b[cols])
