"""Range messages in the caller's units: durations passed as timedelta (or ISO text in a
scenario) are reported in ISO 8601, never in the core's internal ms."""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from itb import scenario
from itb._time import parse_duration_text
from itb.errors import ValidationError
from itb.models import SYNCHROMED_II_20


def _pump() -> itb.Pump:
    return itb.Pump(
        SYNCHROMED_II_20,
        now=datetime(2026, 3, 2),
        reservoir_ml=18.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=500),
    )


def test_lockout_over_a_day_reads_iso():
    with pytest.raises(ValidationError) as info:
        _pump().set_patient_bolus_limits(
            10.0, timedelta(minutes=10), lockout=timedelta(hours=25), max_per_24h=3
        )
    assert info.value.field == "lockout"
    assert str(info.value) == "lockout: P1DT1H is outside the allowed range PT0S to P1D"


def test_duration_over_a_day_reads_iso():
    with pytest.raises(ValidationError) as info:
        _pump().set_patient_bolus_limits(10.0, timedelta(hours=24, seconds=1), max_per_24h=3)
    assert info.value.field == "duration"
    assert str(info.value) == "duration: P1DT1S is outside the allowed range PT0.001S to P1D"


@given(st.integers(24 * 3600 * 1000 + 1, 30 * 24 * 3600 * 1000))
def test_refused_lockout_round_trips_and_leaves_limits(ms):
    pump = _pump()
    pump.set_patient_bolus_limits(10.0, timedelta(minutes=10), max_per_24h=3)
    before = pump.snapshot()
    with pytest.raises(ValidationError) as info:
        pump.set_patient_bolus_limits(
            10.0, timedelta(minutes=10), lockout=timedelta(milliseconds=ms), max_per_24h=3
        )
    text = str(info.value)
    assert " ms" not in text
    shown = text.split(": ", 1)[1].split(" is outside", 1)[0]
    assert parse_duration_text(shown) == ms  # exact, in ISO
    assert pump.snapshot() == before  # state unchanged on refusal


def test_scenario_lockout_reads_iso():
    text = """
[pump]
model = "SYNCHROMED_II_20"
start = 2026-03-02T00:00:00
reservoir_ml = 18.0
concentration_ug_per_ml = 500
program = { kind = "continuous", ug_per_day = 500.0 }

[[actions]]
at = 2026-03-02T01:00:00
do = "set_patient_bolus_limits"
dose_ug = 25.0
duration = "PT15M"
lockout = "PT25H"
max_per_24h = 3

[run]
until = 2026-03-03T00:00:00
"""
    with pytest.raises(itb.errors.ItbError) as info:
        scenario.loads(text, source="s.toml").run()
    assert "lockout: P1DT1H is outside the allowed range PT0S to P1D" in str(info.value)
    assert "ms" not in str(info.value).split("lockout", 1)[1]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: itb.Continuous(ug_per_day=-1), "ug_per_day"),
        (lambda: itb.Flex(period="day", steps=[("00:00:00", -5.0)]), "steps[0].ug_per_day"),
    ],
)
def test_negative_daily_dose_reads_ug_per_day(build, field):
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field
    assert str(info.value).endswith("must be >= 0 µg/day")


def test_negative_bolus_dose_stays_ug():
    with pytest.raises(ValidationError) as info:
        _pump().set_patient_bolus_limits(-1.0, timedelta(minutes=10), max_per_24h=3)
    assert str(info.value).endswith("must be >= 0 µg")


def test_aspirating_more_than_the_reservoir_holds_is_refused():
    pump = _pump()  # a 20 mL SynchroMed II
    pump.advance(timedelta(days=1))
    before = pump.snapshot()
    with pytest.raises(ValidationError) as info:
        pump.refill(10.0, 2000, aspirated_ml=30.0)
    assert info.value.field == "aspirated_ml"
    assert "30 mL is outside the allowed range 0 to 20 mL" in str(info.value)
    assert pump.snapshot() == before
    assert pump.refill(10.0, 2000, aspirated_ml=20.0).aspirated_nl == 20_000_000


def test_scenario_aspirated_ml_above_capacity_is_refused():
    text = """
[pump]
model = "SYNCHROMED_II_20"
start = 2026-03-02T00:00:00
reservoir_ml = 18.0
concentration_ug_per_ml = 500
program = { kind = "continuous", ug_per_day = 500.0 }

[[actions]]
at = 2026-03-03T00:00:00
do = "refill"
added_ml = 10.0
concentration_ug_per_ml = 2000
aspirated_ml = 30

[run]
until = 2026-03-04T00:00:00
"""
    with pytest.raises(itb.errors.ItbError) as info:
        scenario.loads(text, source="s.toml").run()
    assert "aspirated_ml" in str(info.value)
    assert "30 mL is outside the allowed range 0 to 20 mL" in str(info.value)


def test_a_value_beyond_the_exact_range_states_the_maximum() -> None:
    # ng/day are 64-bit: at most (2**63 - 1) ng/day = 9 223 372 036 854 775.807 µg/day, which a
    # float prints as 9223372036854776 (by hand)
    with pytest.raises(itb.ValidationError, match=r"exceeds the maximum 9223372036854776 µg/day"):
        itb.Continuous(ug_per_day=1e30)
