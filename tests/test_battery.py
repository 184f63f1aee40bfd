"""Battery, alarms and safe state from the Python API: hand-computed figures, EOS refusal,
projection equal to simulation, assume_refills equal to a refilling simulation."""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.models import BatteryModel

T0 = datetime(2026, 1, 5)
MS = timedelta(milliseconds=1)


def tiny_battery(**kw) -> BatteryModel:
    args = dict(
        capacity_mah=1.0,
        quiescent_ua=100.0,
        stroke_uc=0.0,
        tone_uc=0.0,
        telemetry_uc=0.0,
        eri_mah=0.5,
        eos_mah=0.1,
    )
    args.update(kw)
    return BatteryModel(**args)


def rig(battery: BatteryModel) -> itb.PumpModel:
    return itb.PumpModel(
        name="rig",
        reservoir_ml=40.0,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        low_reservoir_ml=2.0,
        battery=battery,
    )


def test_quiescent_only_eri_and_eos_by_hand() -> None:
    # 1 mAh = 3.6e12 pC; 100 µA = 100_000 pC/ms. ERI when remaining ≤ 0.5 mAh: used ≥ 1.8e12 pC
    # → t = 1.8e12 / 1e5 = 18_000_000 ms = 5 h. EOS when used ≥ 0.9 mAh = 3.24e12 pC → 32_400_000 ms
    # = 9 h. ERI tones: hourly from 5 h, 0 µC each here.
    pump = itb.Pump(
        rig(tiny_battery()),
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=0),
    )
    proj = pump.project(timedelta(days=1))
    assert (proj.eri, proj.eos) == (T0 + timedelta(hours=5), T0 + timedelta(hours=9))
    events = pump.advance(timedelta(days=1))
    eri = [e for e in events if e.kind == "eri"]
    eos = [e for e in events if e.kind == "eos"]
    assert [e.time for e in eri] == [proj.eri] and eri[0].severity == "non_critical"
    assert [e.time for e in eos] == [proj.eos] and eos[0].severity == "critical"
    assert pump.is_eos and pump.battery_remaining_pc == 0
    assert [a[0] for a in pump.active_alarms] == ["eos", "eri"]  # priority order


def test_eos_stops_delivery_and_refuses_delivering_calls() -> None:
    pump = itb.Pump(
        rig(tiny_battery()),
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=1000),
    )
    pump.advance(timedelta(hours=9))
    strokes = pump.strokes
    pump.advance(timedelta(days=3))
    assert pump.is_eos and pump.strokes == strokes
    before = pump.snapshot()
    for call in (
        lambda: pump.bolus(10.0, timedelta(minutes=5)),
        lambda: pump.set_program(itb.Continuous(ug_per_day=500)),
    ):
        with pytest.raises(itb.EndOfServiceError):
            call()
    assert pump.snapshot() == before  # refused calls change nothing
    pump.set_patient_bolus_limits(10.0, timedelta(minutes=5), timedelta(hours=1), 2)
    assert pump.patient_bolus().reason == "end_of_service"
    assert pump.project().next_stroke is None


def test_strokes_and_telemetry_cost_charge() -> None:
    # No quiescent drain; 1 mC per stroke, 5 mC per telemetry session. 0.5 mL/day of 2 µL strokes
    # = 250 strokes/day. After 2 days: 500 strokes = 0.5 C; plus one session = 0.505 C = 5.05e11 pC.
    battery = tiny_battery(
        quiescent_ua=0.0,
        stroke_uc=1000.0,
        telemetry_uc=5000.0,
        capacity_mah=100.0,
        eri_mah=10.0,
        eos_mah=1.0,
    )
    pump = itb.Pump(
        rig(battery),
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=1000),
    )
    pump.advance(timedelta(days=2))
    pump.telemetry_session()
    assert pump.strokes == 500
    assert pump.battery_remaining_pc == 100 * 3_600_000_000_000 - 505_000_000_000
    assert "telemetry_session" in [e.kind for e in pump.advance(timedelta(0))]


def test_nominal_preset_lasts_about_six_and_a_half_years() -> None:
    # Documented assumption of NOMINAL_BATTERY: ~0.5 mL/day lasts 5–7 years, ERI ≈ 90 days before EOS.
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=1000),
    )
    proj = pump.project(timedelta(days=3650), assume_refills=True)
    years = (proj.eos - T0) / timedelta(days=365.25)
    assert 5.0 <= years <= 7.0
    assert timedelta(days=80) <= proj.eos - proj.eri <= timedelta(days=100)


batteries = st.builds(
    tiny_battery,
    capacity_mah=st.floats(0.5, 5.0),
    # at the units' resolution: a non-zero value below it is refused (docs: decisions/field-reports.md#no-non-zero-input-becomes-zero)
    quiescent_ua=st.floats(0.0, 50.0).map(lambda x: round(x, 3)),
    stroke_uc=st.floats(0.0, 20_000.0).map(lambda x: round(x, 6)),
    tone_uc=st.floats(0.0, 50_000.0).map(lambda x: round(x, 6)),
    eri_mah=st.just(0.2),
    eos_mah=st.just(0.05),
)


@settings(max_examples=40, deadline=None)
@given(
    battery=batteries,
    dose=st.floats(100.0, 20_000.0),
    reservoir_ml=st.floats(0.1, 40.0),
    days=st.integers(1, 120),
)
def test_projection_equals_simulation(
    battery: BatteryModel, dose: float, reservoir_ml: float, days: int
) -> None:
    pump = itb.Pump(
        rig(battery),
        now=T0,
        reservoir_ml=reservoir_ml,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=dose),
    )
    horizon = timedelta(days=days)
    proj = pump.project(horizon)
    events = pump.advance(horizon)
    first = {}
    for e in events:
        if e.time > T0:
            first.setdefault(e.kind, e.time)
    assert proj.eri == first.get("eri")
    assert proj.eos == first.get("eos")
    assert proj.low_reservoir == first.get("low_reservoir")
    assert proj.reservoir_empty == first.get("reservoir_empty")


@settings(max_examples=25, deadline=None)
@given(battery=batteries, dose=st.floats(100.0, 20_000.0), days=st.integers(1, 200))
def test_assume_refills_equals_refilling_at_each_low_alarm(
    battery: BatteryModel, dose: float, days: int
) -> None:
    pump = itb.Pump(
        rig(battery),
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=dose),
    )
    end = T0 + timedelta(days=days)
    proj = pump.project(end - T0, assume_refills=True)
    seen: dict[str, datetime] = {}
    while pump.now < end:
        low = pump.project(end - pump.now).low_reservoir
        for e in pump.advance_to(low or end):
            seen.setdefault(e.kind, e.time)
        if low is not None and pump.now == low and not pump.is_eos:
            pump.refill(added_ml=40.0, concentration_ug_per_ml=2000)
    assert proj.eri == seen.get("eri")
    assert proj.eos == seen.get("eos")
