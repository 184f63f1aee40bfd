"""Refusals of numbers far out of range say the value compactly (``1e+308 mL``, never hundreds of
digits) and, where the pump knows one, the allowed range; a CSV date-time with a UTC offset is
refused as such (the pump clock is naive local time)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import itb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb import scenario
from itb.clinical.patients import read_patients_csv
from itb.errors import ItbError, ReservoirError

LONG_NUMBER = re.compile(r"\d{25}")
TOML = """
[pump]
model = "SYNCHROMED_II_40"
start = 2026-01-05T08:00:00
reservoir_ml = {res}
concentration_ug_per_ml = 2000
program = {{ kind = "continuous", ug_per_day = {ug} }}
[run]
until = 2026-01-06T00:00:00
"""
HEADER = "id,model,interrogated,reservoir_ml,concentration_ug_per_ml,ug_per_day\n"


def _scenario_error(res: object, ug: object) -> str:
    with pytest.raises(ItbError) as info:
        scenario.loads(TOML.format(res=res, ug=ug), source="s.toml")
    return str(info.value)


def _csv_error(tmp_path: Path, row: str) -> str:
    f = tmp_path / "patients.csv"
    f.write_text(HEADER + row + "\n")
    with pytest.raises(ItbError) as info:
        read_patients_csv(f)
    return str(info.value)


def test_a_huge_fill_reads_compactly_with_the_reservoir_range(tmp_path):
    as_41 = "41 mL overfills the 40 mL reservoir (allowed 0 to 40 mL)"
    assert as_41 in _scenario_error(41, 400)
    text = _scenario_error("1e308", 400)
    assert "1e+308 mL overfills the 40 mL reservoir (allowed 0 to 40 mL)" in text
    assert not LONG_NUMBER.search(text)
    text = _csv_error(tmp_path, "A1,SYNCHROMED_II_40,2026-03-02T09:00,1e308,2000,400")
    assert text.endswith(
        "column reservoir_ml: reservoir_ml: 1e+308 mL overfills the 40 mL "
        "reservoir (allowed 0 to 40 mL)"
    )


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=1e13, max_value=1.7e308))
def test_any_fill_too_large_to_convert_is_an_overfill(ml):
    """Above 9.2e12 mL the exact nL do not fit an int64; the refusal is still the overfill one,
    of the same type and field as 41 mL, with the range, and short."""
    for build in (itb.Pump, itb.Pump.from_reading):
        kwargs = {"battery_mah": 100.0} if build is itb.Pump.from_reading else {}
        with pytest.raises(ReservoirError) as info:
            build(
                itb.models.SYNCHROMED_II_40,
                now=datetime(2026, 1, 5),
                reservoir_ml=ml,
                concentration_ug_per_ml=2000,
                program=itb.Continuous(ug_per_day=400),
                **kwargs,
            )
        assert info.value.field == "reservoir_ml"
        assert str(info.value).endswith("overfills the 40 mL reservoir (allowed 0 to 40 mL)")
        assert len(str(info.value)) < 100


def test_a_huge_dose_reads_compactly(tmp_path):
    text = _scenario_error(40, "1e300")
    assert "1e+300 µg/day exceeds the maximum" in text and not LONG_NUMBER.search(text)
    text = _csv_error(tmp_path, "A1,SYNCHROMED_II_40,2026-03-02T09:00,20,2000,1e300")
    assert "column ug_per_day: invalid ug_per_day: 1e+300 µg/day exceeds the maximum" in text
    assert "allowed: a number" not in text and not LONG_NUMBER.search(text)
    # text that is no number still gets the forms a cell may take
    text = _csv_error(tmp_path, "A1,SYNCHROMED_II_40,2026-03-02T09:00,20,2000,lots")
    assert "'lots'; allowed: a number (µg/day) or steps" in text


def test_a_csv_time_with_a_utc_offset_is_refused_as_such(tmp_path):
    text = _csv_error(tmp_path, "A1,SYNCHROMED_II_40,2026-03-02T09:00+01:00,20,2000,400")
    assert text.endswith(
        "column interrogated: '2026-03-02T09:00+01:00' has a UTC offset; the pump clock is naive "
        "local time (write 2026-01-05T08:00:00)"
    )
    text = _csv_error(tmp_path, "A1,SYNCHROMED_II_40,2026-13-02T09:00,20,2000,400")
    assert "column interrogated: '2026-13-02T09:00' is not a date-time" in text
