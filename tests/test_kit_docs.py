"""The testing-kit guide stays true: its Python blocks run, and the patient-bolus rules it states
hold on the pump (hand-computed times)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from itb.testing import demo_pump

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "testing-kit.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_block_runs(index):
    exec(
        compile(BLOCKS[index], f"testing-kit.md[python block {index}]", "exec"), {"__name__": "doc"}
    )


T0 = datetime(2026, 1, 5, 8, 0)
H = timedelta(hours=1)


def _pump(lockout=3 * H, per_day=2):
    p = demo_pump()
    p.set_patient_bolus_limits(10.0, timedelta(minutes=10), lockout, per_day)
    return p


def test_lockout_from_the_last_grant_and_exact_at_its_end():
    p = _pump()
    assert p.patient_bolus(T0 + H).reason == "granted"
    assert p.patient_bolus(T0 + 2 * H).reason == "lockout"  # refused: does not restart it
    assert p.patient_bolus(T0 + 4 * H - timedelta(milliseconds=1)).reason == "lockout"
    assert p.patient_bolus(T0 + 4 * H).reason == "granted"  # exactly 3 h after the grant


def test_rolling_24_h_and_a_grant_exactly_24_h_old_no_longer_counts():
    p = _pump(lockout=timedelta(minutes=10), per_day=1)
    g = datetime(2026, 1, 5, 23, 0)
    assert p.patient_bolus(g).reason == "granted"
    assert (
        p.patient_bolus(datetime(2026, 1, 6, 1, 0)).reason == "daily_maximum"
    )  # not per calendar day
    assert p.patient_bolus(g + 24 * H - timedelta(milliseconds=1)).reason == "daily_maximum"
    assert p.patient_bolus(g + 24 * H).reason == "granted"


def test_grants_are_kept_across_new_limits():
    p = _pump(lockout=timedelta(minutes=10), per_day=3)
    assert p.patient_bolus(T0 + H).granted and p.patient_bolus(T0 + 2 * H).granted
    p.set_patient_bolus_limits(None)
    assert p.patient_bolus(T0 + 3 * H).reason == "not_enabled"
    p.set_patient_bolus_limits(10.0, timedelta(minutes=10), 2 * H, 2)
    assert p.patient_bolus(T0 + 3 * H).reason == "lockout"  # 1 h after the last grant
    assert p.patient_bolus(T0 + 4 * H).reason == "daily_maximum"  # two in the last 24 h


def test_the_order_of_refusal_reasons():
    p = _pump()
    assert p.patient_bolus(T0 + H).granted
    p.suspend()
    assert p.patient_bolus(T0 + 2 * H).reason == "suspended"  # before the lockout
    p.resume()
    p.inject_motor_stall()
    assert p.patient_bolus(T0 + 2 * H).reason == "fault"
