"""A pump as a programmer reads it (battery left, implant date, alarms already sounding), the
projection's present (alarms active since when) and the worst-case (every allotted patient bolus)
projection."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import itb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.fleet import Fleet

M40 = itb.models.SYNCHROMED_II_40
BAT = itb.models.NOMINAL_BATTERY
T0 = datetime(2026, 3, 2, 9, 0)


def read(**kw):
    args = dict(
        now=T0, reservoir_ml=20.0, concentration_ug_per_ml=2000, program=itb.Continuous(400.0)
    )
    model = kw.pop("model", M40)
    args.update(kw)
    return itb.Pump.from_reading(model, **args)


# ----- construction -------------------------------------------------------------------------


def test_at_eri_already_sounding() -> None:
    since = datetime(2026, 1, 10, 8, 0)
    pump = read(battery_mah=25.0, active_alarms={"eri": since})
    assert pump.is_eri and not pump.is_eos and pump.battery_remaining_mah == 25.0
    assert pump.active_alarms == [("eri", "non_critical", since)]
    proj = pump.project()
    assert proj.eri is None and proj.since("eri") == since and proj.when("eri") == since
    assert "eri=active since 2026-01-10T08:00" in repr(proj)
    # raised before software met the pump: no eri event now or later
    assert "eri" not in [e.kind for e in pump.advance(timedelta(days=2))]


def test_already_low_and_past_eos() -> None:
    low_since = datetime(2026, 2, 28, 14, 0)
    low = read(reservoir_ml=1.5, active_alarms=[("low_reservoir", low_since)])
    assert low.project().since("low_reservoir") == low_since
    assert low.project().low_reservoir is None and low.project().reservoir_empty is not None
    dead = read(battery_mah=4.0)
    assert dead.is_eos and dead.is_eri
    proj = dead.project()
    assert proj.next_stroke is None and proj.since("eos") == T0 and proj.since("eri") == T0
    # implied alarms begin now, with their events; nothing is delivered
    events = dead.advance(timedelta(days=1))
    assert [e.kind for e in events] == ["eri", "eos"] and dead.strokes == 0


def test_listed_eri_without_charge_sits_at_the_threshold() -> None:
    pump = read(active_alarms={"eri": datetime(2026, 2, 1)})
    assert pump.battery_remaining_mah == BAT.eri_mah
    eos = read(active_alarms={"eos": datetime(2026, 2, 1)})
    assert eos.battery_remaining_mah == BAT.eos_mah and eos.is_eos
    assert eos.project().since("eri") == datetime(2026, 2, 1)


def test_motor_stall_as_read() -> None:
    pump = read(active_alarms={"motor_stall": datetime(2026, 3, 1)})
    assert pump.is_stalled and pump.project().next_stroke is None
    assert pump.project().when("motor_stall") == datetime(2026, 3, 1)


def test_elapsed_service_estimate_by_hand() -> None:
    """400 µg/day at 2000 µg/mL = 0.2 mL/day = 100 strokes of 2 µL a day; one year (365 d):
    36 500 strokes × 200 µC + 8 µA × 365 d = 7.3 C + 252.288 C = 259.588 C = 72.1078 mAh."""
    pump = read(implanted=T0 - timedelta(days=365))
    used_c = 36_500 * 200e-6 + 8e-6 * 365 * 86_400
    assert pump.battery_remaining_pc == round((500 - used_c / 3.6) * 3.6e12)
    # a charge read wins over the estimate
    assert read(implanted=T0 - timedelta(days=365), battery_mah=300.0).battery_remaining_mah == 300


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(battery_mah=200.0, active_alarms={"eri": T0}), "active_alarms"),
        (dict(battery_mah=600.0), "battery_mah"),
        (dict(battery_mah=-1.0), "battery_mah"),
        (dict(active_alarms={"low_reservoir": T0}), "active_alarms"),
        (dict(active_alarms={"reservoir_empty": T0}), "active_alarms"),
        (
            dict(reservoir_ml=1.0, active_alarms={"low_reservoir": T0 + timedelta(1)}),
            "active_alarms[0]",
        ),
        (dict(active_alarms=[("eri", T0), ("eri", T0)], battery_mah=1.0), "active_alarms[1]"),
        (dict(active_alarms={"beeping": T0}), "active_alarms[0]"),
        (dict(active_alarms="eri"), "active_alarms"),
        (dict(implanted=T0 + timedelta(days=1)), "implanted"),
        (dict(battery_mah=True), "battery_mah"),
    ],
)
def test_bad_readings_name_the_field(kw, field) -> None:
    with pytest.raises(itb.ValidationError) as err:
        read(**kw)
    assert err.value.field == field


def test_no_battery_model_refuses_a_charge() -> None:
    plain = dataclasses.replace(M40, battery=None)
    with pytest.raises(itb.ValidationError, match="no battery"):
        read(model=plain, battery_mah=10.0)


@settings(max_examples=40, deadline=None)
@given(
    after_eri=st.integers(min_value=0, max_value=60 * 24 * 60),  # minutes after ERI
    quiescent_ua=st.floats(min_value=1.0, max_value=40.0).map(lambda x: round(x, 1)),
)
def test_a_read_pump_continues_as_the_pump_it_was(after_eri: int, quiescent_ua: float) -> None:
    """A pump that lived to ERI and beyond, read at that moment (charge, alarms and their
    starts) continues exactly as the lived one: same EOS time (tones keep their phase). No
    delivery (0 µg/day) so that nothing but the battery state carries over."""
    bat = dataclasses.replace(BAT, capacity_mah=40.0, quiescent_ua=quiescent_ua)
    model = dataclasses.replace(M40, battery=bat)
    lived = itb.Pump(
        model, now=T0, reservoir_ml=20.0, concentration_ug_per_ml=2000, program=itb.Continuous(0)
    )
    eri = lived.project().eri
    assert eri is not None
    lived.advance_to(eri + timedelta(minutes=after_eri))
    if lived.is_eos:
        return
    copy = itb.Pump.from_reading(
        model,
        now=lived.now,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(0),
        battery_pc=lived.battery_remaining_pc,
        active_alarms=lived.active_alarms,
    )
    assert copy.battery_remaining_pc == lived.battery_remaining_pc
    assert copy.project().eos == lived.project().eos
    assert copy.project() == lived.project()


# ----- fleet columns -------------------------------------------------------------------------


def test_fleet_reading_columns_match_pumps() -> None:
    n = 4
    cols = {
        "model": ["SYNCHROMED_II_40"] * n,
        "now": np.array([T0] * n, dtype="datetime64[ms]"),
        "reservoir_ml": [20.0, 1.5, 20.0, 20.0],
        "concentration_ug_per_ml": [2000] * n,
        "ug_per_day": [400.0] * n,
        "battery_mah": [25.0, np.nan, 4.0, np.nan],
        "implanted": np.array(["NaT", "NaT", "NaT", "2021-03-02"], dtype="datetime64[ms]"),
        "eri_since": np.array(["2026-01-10", "NaT", "NaT", "NaT"], dtype="datetime64[ms]"),
        "low_reservoir_since": np.array(
            ["NaT", "2026-02-28T14:00", "NaT", "NaT"], dtype="datetime64[ms]"
        ),
    }
    fleet = Fleet(cols)
    fc = fleet.forecast(assume_refills=False)
    for i in range(n):
        p = fleet.pump(i).project()
        for k, v in p.as_dict().items():
            if k in fc:
                want = np.datetime64("NaT") if v is None else np.datetime64(v, "ms")
                assert fc[k][i] == want or (v is None and np.isnat(fc[k][i])), (i, k)
        for alarm in itb.pump.ALARMS:
            since = p.since(alarm)
            got = fc[f"{alarm}_since"][i]
            assert (np.isnat(got) and since is None) or got == np.datetime64(since, "ms")
    assert fc["eri_since"][0] == np.datetime64("2026-01-10", "ms")
    assert fc["eos_since"][2] == np.datetime64(T0, "ms")


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"battery_mah": [600.0]}, "battery_mah[0]"),
        ({"battery_mah": [100.0], "eri_since": np.array([T0], "datetime64[ms]")}, "eri_since[0]"),
        ({"low_reservoir_since": np.array([T0], "datetime64[ms]")}, "low_reservoir_since[0]"),
        ({"eri_since": np.array([T0 + timedelta(1)], "datetime64[ms]")}, "eri_since[0]"),
        ({"battery_mah": ["x"]}, "battery_mah"),
        ({"implanted": [1.5]}, "implanted"),
    ],
)
def test_fleet_reading_errors_name_column_and_row(extra, field) -> None:
    cols = {
        "model": ["SYNCHROMED_II_40"],
        "now": np.array([T0], dtype="datetime64[ms]"),
        "reservoir_ml": [20.0],
        "concentration_ug_per_ml": [2000],
        "ug_per_day": [400.0],
        **extra,
    }
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols).forecast()
    assert err.value.field == field


# ----- worst case: every allotted patient bolus ----------------------------------------------


def ptm_pump(reservoir_ml: float = 10.0, basal: float = 0.0) -> itb.Pump:
    pump = itb.Pump(
        M40,
        now=T0,
        reservoir_ml=reservoir_ml,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(basal),
    )
    # 1000 µg at 2000 µg/mL = 0.5 mL over 1 h (12 mL/day); every 6 h, at most 4 a day
    pump.set_patient_bolus_limits(
        dose_ug=1000.0, duration=timedelta(hours=1), lockout=timedelta(hours=6), max_per_24h=4
    )
    return pump


def test_worst_case_by_hand() -> None:
    """No basal, 10 mL, low at 2 mL: 16 boluses of 0.5 mL, one every 6 h from now; the alarm
    fires at the last stroke of the 16th, within its hour: (T0 + 90 h, T0 + 91 h]."""
    proj = ptm_pump().project(assume_patient_boluses="max")
    assert T0 + timedelta(hours=90) < proj.low_reservoir <= T0 + timedelta(hours=91)
    assert ptm_pump().project().low_reservoir is None  # no basal: never without boluses
    assert proj.next_stroke is not None and proj.next_stroke <= T0 + timedelta(minutes=1)
    # a stroke of 2 µL at 12 mL/day comes after 14.4 s
    assert proj.next_stroke == T0 + timedelta(seconds=14.4)


@settings(max_examples=25, deadline=None)
@given(
    basal=st.sampled_from([0.0, 200.0, 600.0]),
    lockout_h=st.integers(min_value=0, max_value=12),
    per_day=st.integers(min_value=1, max_value=8),
    reservoir=st.sampled_from([6.0, 12.0, 20.0]),
)
def test_worst_case_equals_activating_a_copy(basal, lockout_h, per_day, reservoir) -> None:
    """Oracle: a copy activated by the patient at every time the limits allow (computed here
    from the lockout and the rolling-24 h rule), then observed."""
    pump = itb.Pump(
        M40,
        now=T0,
        reservoir_ml=reservoir,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(basal),
    )
    lockout = timedelta(hours=lockout_h)
    pump.set_patient_bolus_limits(
        dose_ug=100.0, duration=timedelta(minutes=10), lockout=lockout, max_per_24h=per_day
    )
    horizon = timedelta(days=60)
    proj = pump.project(horizon, assume_patient_boluses="max")
    sim = pump.copy()
    grants: list[datetime] = []
    seen: dict[str, datetime] = {}
    end = T0 + horizon
    while not sim.is_empty:
        t = max([sim.now] + ([grants[-1] + lockout] if grants else []))
        if len(grants) >= per_day:
            t = max(t, grants[-per_day] + timedelta(days=1))
        if t > end:
            break
        for e in sim.advance_to(t):
            seen.setdefault(e.kind, e.time)
        if sim.is_empty:
            break
        r = sim.patient_bolus()
        if r.granted:
            grants.append(t)
            continue
        # above the maximum rate: the patient tries again when a running bolus ends
        assert r.reason == "would_exceed_max_rate", r.reason
        ends = [b.end for b in sim.boluses if b.end > sim.now]
        if not ends or min(ends) > end:
            break
        for e in sim.advance_to(min(ends)):
            seen.setdefault(e.kind, e.time)
    for e in sim.advance_to(max(sim.now, end)):
        seen.setdefault(e.kind, e.time)
    assert proj.low_reservoir == seen.get("low_reservoir")
    assert proj.reservoir_empty == seen.get("reservoir_empty")
    plain = pump.project(horizon)
    if plain.low_reservoir is not None:
        assert proj.low_reservoir <= plain.low_reservoir


def test_worst_case_argument_checks() -> None:
    pump = ptm_pump()
    with pytest.raises(itb.ValidationError) as err:
        pump.project(assume_patient_boluses="all")
    assert err.value.field == "assume_patient_boluses"
    with pytest.raises(itb.ValidationError):
        pump.project(assume_refills=True, assume_patient_boluses="max")
    plain = itb.Pump(
        M40, now=T0, reservoir_ml=10.0, concentration_ug_per_ml=2000, program=itb.Continuous(400)
    )
    assert plain.project(assume_patient_boluses="max") == plain.project()
