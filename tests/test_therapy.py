"""Therapy calls: fluid path and drug at tip, bridge and priming boluses, refills with a
pump running off-nominal, suspend/resume and motor stall, patient-activated boluses."""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 3, 2)  # a Monday
DAY_MS = 86_400_000
RIG = itb.PumpModel(
    name="rig",
    reservoir_ml=40.0,
    stroke_nl=2000,
    min_rate_ml_per_day=0.048,
    max_rate_ml_per_day=24.0,
    low_reservoir_ml=2.0,
    pump_path_ul=100.0,
)


def make(**kw) -> itb.Pump:
    args = dict(
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=1000),
    )
    args.update(kw)
    return itb.Pump(RIG, **args)


def kinds(events):
    return [e.kind for e in events if e.kind != "stroke_batch"]


# ----- fluid path ------------------------------------------------------------------------------


def test_unprimed_path_delivers_saline_until_drug_reaches_tip() -> None:
    # Path = 100 µL pump + 100 µL catheter = 200 µL of saline = 100 strokes of 2 µL.
    # 1000 µg/day at 2000 µg/mL = 0.5 mL/day → a stroke every 2000·86_400_000/500_000 = 345_600 ms.
    pump = make(catheter_volume_ul=100.0, path_primed=False)
    proj = pump.project(timedelta(days=30))
    assert proj.drug_at_tip == T0 + timedelta(
        milliseconds=101 * 345_600
    )  # stroke 101 pushes drug out
    events = pump.advance_to(T0 + timedelta(milliseconds=100 * 345_600))
    assert pump.strokes == 100 and pump.delivered_pg == 0 and pump.delivered_nl == 200_000
    assert "drug_at_tip" not in kinds(events)
    events = pump.advance(timedelta(milliseconds=345_600))
    tip = [e for e in events if e.kind == "drug_at_tip"]
    assert [e.time for e in tip] == [proj.drug_at_tip]
    assert tip[0].data == {"from_ug_per_ml": 0, "to_ug_per_ml": 2000}
    assert pump.delivered_pg == 2000 * 2000  # one stroke of drug: 2000 nL × 2000 µg/mL


def test_priming_bolus_fills_path_at_fast_rate() -> None:
    pump = make(catheter_volume_ul=100.0, path_primed=False)
    plan = pump.priming_bolus_plan()
    # Basal and bolus together fill the 200 µL at the 24 mL/day maximum: 200_000·D/24e6 = 720_000 ms.
    # The basal 0.5 mL/day moves 4166.7 nL of it; the bolus the rest, floored (field report 1):
    # 195_833 nL at ceil(195_833·D/720_000) = 23_499_960 nL/day <= 23.5 mL/day of headroom.
    assert (plan.volume_nl, plan.rate_nl_per_day) == (195_833, 23_499_960)
    assert plan.duration == timedelta(milliseconds=720_000)
    pump.start_priming_bolus()
    pump.advance(plan.duration)
    assert pump.delivered_pg == 0  # all saline, no drug yet
    # By then A = 500_000·720_000 + 195_833·D = 17_279_971_200_000_000 (99 strokes of 172.8e9);
    # stroke 101 — the first to push drug out — needs 172_828_800_000 more at 0.5 mL/day: +345_658 ms.
    events = pump.advance(timedelta(hours=1))
    tip = [e.time for e in events if e.kind == "drug_at_tip"]
    assert tip == [T0 + timedelta(milliseconds=720_000 + 345_658)]
    with pytest.raises(itb.ValidationError):
        pump.priming_bolus_plan()  # primed now


def test_replace_fluid_path_refills_the_whole_path_with_saline() -> None:
    pump = make(catheter_volume_ul=100.0)
    pump.advance(timedelta(days=1))
    pump.replace_fluid_path(catheter_volume_ul=150.0)
    assert pump.path_nl == 250_000 and pump.path_pg == 0 and pump.tip_concentration_ug_per_ml == 0
    assert (
        pump.filled_nl == pump.reservoir_nl + pump.path_nl + pump.delivered_nl + pump.withdrawn_nl
    )


def test_revise_catheter_keeps_the_tubing_drug() -> None:
    # tubing 100 µL of drug at 2000 µg/mL stays; the new 150 µL catheter holds saline
    pump = make(catheter_volume_ul=100.0)
    pump.advance(timedelta(days=1))
    pump.revise_catheter(volume_ul=150.0)
    assert pump.path_nl == 250_000 and pump.path_pg == 100_000 * 2000
    assert pump.tip_concentration_ug_per_ml == 0
    assert (
        pump.filled_nl == pump.reservoir_nl + pump.path_nl + pump.delivered_nl + pump.withdrawn_nl
    )


def test_bridge_bolus_plan_by_hand() -> None:
    # 400 µg/day; 500 → 2000 µg/mL with a 200 µL path. Old drug at 500 µg/mL for 400 µg/day =
    # 0.8 mL/day → 200 µL take 6 h; the basal at 2000 µg/mL moves 0.2 mL/day × 6 h = 50 µL;
    # the bridge adds 150 µL over 6 h = 0.6 mL/day.
    pump = make(
        concentration_ug_per_ml=500,
        catheter_volume_ul=100.0,
        program=itb.Continuous(ug_per_day=400),
    )
    pump.refill(added_ml=20.0, concentration_ug_per_ml=2000)
    plan = pump.bridge_bolus_plan()
    assert (plan.volume_nl, plan.duration, plan.rate_nl_per_day) == (
        150_000,
        timedelta(hours=6),
        600_000,
    )


def test_bridge_refused_for_dilution() -> None:
    pump = make(
        concentration_ug_per_ml=2000,
        catheter_volume_ul=100.0,
        program=itb.Continuous(ug_per_day=400),
    )
    pump.refill(added_ml=20.0, concentration_ug_per_ml=500)
    with pytest.raises(itb.ValidationError) as err:
        pump.bridge_bolus_plan()
    assert err.value.field == "bridge_bolus_plan"


def test_tip_dose_stays_within_one_stroke_with_bridge_and_drops_without() -> None:
    def hourly(bridge: bool) -> list[int]:
        pump = make(
            concentration_ug_per_ml=500,
            catheter_volume_ul=100.0,
            program=itb.Continuous(ug_per_day=400),
        )
        pump.advance(timedelta(hours=5))
        pump.refill(added_ml=20.0, concentration_ug_per_ml=2000)
        if bridge:
            pump.start_bridge_bolus()
        out = []
        for _ in range(36):
            before = pump.delivered_pg
            pump.advance(timedelta(hours=1))
            out.append(pump.delivered_pg - before)
        return out

    prescribed_pg_per_hour = 400_000_000 / 24  # 400 µg/day
    stroke_pg_max = 2000 * 2000  # one 2 µL stroke at the stronger concentration
    assert all(abs(x - prescribed_pg_per_hour) <= stroke_pg_max for x in hourly(True))
    without = hourly(False)
    # Without the bridge the old 500 µg/mL drug leaves at 0.2 mL/day: a quarter of the dose for 24 h.
    assert sum(without[:23]) < 0.3 * prescribed_pg_per_hour * 23


# ----- refills and off-nominal strokes ------------------------------------------------------


@pytest.mark.parametrize("error_ppm", [-80_000, 0, 80_000])
def test_refill_reports_physical_volume(error_ppm: int) -> None:
    pump = make(reservoir_ml=40.0, stroke_error_ppm=error_ppm)
    pump.advance(timedelta(days=30))  # 0.5 mL/day × 30 = 7500 strokes
    assert pump.strokes == 7500
    report = pump.refill(added_ml=40.0, concentration_ug_per_ml=2000)
    expected, aspirated = report.expected_nl, report.aspirated_nl
    assert expected == 40_000_000 - 7500 * 2000
    assert aspirated == 40_000_000 - 7500 * 2000 * (1_000_000 + error_ppm) // 1_000_000
    core = pump.core
    assert (
        core.filled_fl
        == core.true_reservoir_fl + core.path_fl + core.delivered_fl + core.withdrawn_fl
    )
    assert (
        core.filled_ag
        == core.true_reservoir_fl * 2000 + core.path_ag + core.delivered_ag + core.withdrawn_ag
    )


def test_overfill_is_rejected_and_changes_nothing() -> None:
    pump = make()
    before = pump.snapshot()
    with pytest.raises(itb.ReservoirError) as err:
        pump.refill(added_ml=40.5, concentration_ug_per_ml=2000)
    assert err.value.field == "added_ml"
    assert pump.snapshot() == before


# ----- suspend, resume, motor stall -----------------------------------------------------------


@pytest.mark.parametrize("stop", ["suspend", "stall"])
def test_stops_lose_volume_and_never_make_it_up(stop: str) -> None:
    # 0.5 mL/day, q = 2 µL: A gains 500_000 per ms while running; stopped for exactly 1 day.
    pump = make()
    pump.advance(timedelta(days=2))
    (pump.suspend if stop == "suspend" else pump.inject_motor_stall)()
    events = pump.advance(timedelta(days=1))
    assert kinds(events) == (["suspended"] if stop == "suspend" else ["fault"])
    assert pump.strokes == 500_000 * 2 * DAY_MS // (2000 * DAY_MS)
    (pump.resume if stop == "suspend" else pump.clear_fault)()
    pump.advance(timedelta(days=2))
    running_ms = 4 * DAY_MS
    assert pump.strokes == 500_000 * running_ms // (2000 * DAY_MS)


def test_double_suspend_is_an_error() -> None:
    pump = make()
    pump.suspend()
    with pytest.raises(itb.ValidationError):
        pump.suspend()
    assert pump.project().next_stroke is None


# ----- patient-activated boluses --------------------------------------------------------------


def test_patient_bolus_denials() -> None:
    pump = make()
    assert pump.patient_bolus().reason == "not_enabled"
    pump.set_patient_bolus_limits(
        dose_ug=25.0, duration=timedelta(minutes=10), lockout=timedelta(hours=2), max_per_24h=3
    )
    first = pump.patient_bolus()
    assert first.granted and first.reason == "granted" and first.bolus_id is not None
    assert pump.patient_bolus(at=T0 + timedelta(hours=1)).reason == "lockout"
    assert pump.patient_bolus(at=T0 + timedelta(hours=2)).granted
    assert pump.patient_bolus(at=T0 + timedelta(hours=4)).granted
    assert pump.patient_bolus(at=T0 + timedelta(hours=6)).reason == "daily_maximum"
    assert pump.patient_bolus(
        at=T0 + timedelta(hours=24)
    ).granted  # the 00:00 grant left the window
    pump.suspend()
    assert pump.patient_bolus(at=T0 + timedelta(hours=30)).reason == "suspended"
    events = pump.advance(timedelta(0))
    assert kinds(events).count("patient_bolus_granted") == 4
    assert (
        kinds(events).count("patient_bolus_denied") == 4
    )  # not_enabled, lockout, daily max, suspended


def test_patient_bolus_would_exceed_max_rate() -> None:
    # 24 mL/day max; basal 0.5 mL/day; a 20 mg bolus at 2000 µg/mL = 10 mL over 10 min ≫ max.
    pump = make()
    pump.set_patient_bolus_limits(
        dose_ug=20_000.0, duration=timedelta(minutes=10), lockout=timedelta(0), max_per_24h=2
    )
    assert pump.patient_bolus().reason == "would_exceed_max_rate"


@settings(max_examples=60, deadline=None)
@given(
    lockout_min=st.integers(0, 600),
    max_per_24h=st.integers(1, 8),
    gaps_min=st.lists(st.integers(0, 400), min_size=1, max_size=40),
)
def test_patient_role_never_exceeds_clinician_limits(
    lockout_min: int, max_per_24h: int, gaps_min: list[int]
) -> None:
    pump = make(reservoir_ml=40.0, program=itb.Continuous(ug_per_day=200))
    dose_ug = 20.0
    pump.set_patient_bolus_limits(
        dose_ug=dose_ug,
        duration=timedelta(minutes=5),
        lockout=timedelta(minutes=lockout_min),
        max_per_24h=max_per_24h,
    )
    t = T0
    granted: list[datetime] = []
    for gap in gaps_min:
        t += timedelta(minutes=gap)
        result = pump.patient_bolus(at=t)
        if result.granted:
            granted.append(t)
    lockout = timedelta(minutes=lockout_min)
    assert all(b - a >= lockout for a, b in zip(granted, granted[1:]))
    for i, start in enumerate(granted):  # every half-open 24 h window starting at a grant
        in_window = [g for g in granted[i:] if g < start + timedelta(hours=24)]
        assert len(in_window) <= max_per_24h
        assert len(in_window) * dose_ug <= dose_ug * max_per_24h
    # What left the reservoir for patient boluses: each granted bolus is 20 µg = 10 µL exactly.
    events = pump.advance(timedelta(days=1))
    done = [e for e in events if e.kind == "bolus_completed" and e.data["bolus_kind"] == "patient"]
    assert all(e.data["volume_nl"] == 10_000 for e in done)
    assert len([e for e in events if e.kind == "patient_bolus_granted"]) == len(granted)
