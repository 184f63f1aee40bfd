"""The clinic's windows built in a batch equal the refill planner's, pump by pump; many pumps'
projections at once equal each pump's own."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import itb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.clinical import ClinicCalendar, ClinicPatient, plan_clinic, plan_refill
from itb.pump import project_many

pytest.importorskip("ortools")

M40 = itb.models.SYNCHROMED_II_40
T0 = datetime(2026, 3, 2, 9, 0)  # a Monday
CAL = ClinicCalendar(country=None)


@st.composite
def read_pumps(draw) -> itb.Pump:
    """A pump as read: any reservoir (low and empty included), any battery charge (at ERI and
    past EOS included), sometimes patient-bolus limits, sometimes an alarm already sounding."""
    reservoir = draw(st.sampled_from([0.0, 0.5, 1.5, 2.5, 8.0, 20.0, 40.0]))
    kw: dict = dict(
        now=T0 + timedelta(hours=draw(st.integers(0, 72))),
        reservoir_ml=reservoir,
        concentration_ug_per_ml=draw(st.sampled_from([500, 2000])),
        program=itb.Continuous(float(draw(st.integers(200, 900)))),
    )
    battery = draw(st.sampled_from([None, 3.0, 10.0, 25.0, 60.0, 300.0]))
    if battery is not None:
        kw["battery_mah"] = battery
    if reservoir == 1.5 and draw(st.booleans()):
        kw["active_alarms"] = {"low_reservoir": T0 - timedelta(days=2)}
    pump = itb.Pump.from_reading(M40, **kw)
    if draw(st.booleans()) and not pump.is_eos:
        pump.set_patient_bolus_limits(
            dose_ug=float(draw(st.sampled_from([25, 100]))),
            duration=timedelta(minutes=10),
            lockout=timedelta(hours=draw(st.integers(1, 8))),
            max_per_24h=draw(st.integers(1, 6)),
        )
    return pump


@settings(max_examples=30, deadline=None)
@given(st.lists(read_pumps(), min_size=1, max_size=12))
def test_project_many_equals_each_pumps_projection(pumps) -> None:
    cases = [
        (dict(), dict()),
        (dict(assume_refills=True), dict(assume_refills=True)),
        (dict(assume_patient_boluses="max"), dict(assume_patient_boluses="max")),
    ]
    for many_kw, one_kw in cases:
        cols = project_many(pumps, timedelta(days=800), threads=2, **many_kw)
        for i, pump in enumerate(pumps):
            own = pump.project(timedelta(days=800), **one_kw)
            for name, value in own.as_dict().items():
                if name in cols:
                    got = cols[name][i]
                    assert (None if np.isnat(got) else got.astype(datetime)) == value, name
            for alarm in itb.pump.ALARMS:
                got = cols[f"{alarm}_since"][i]
                assert (None if np.isnat(got) else got.astype(datetime)) == own.since(alarm)


def test_project_many_errors() -> None:
    pump = itb.Pump(
        M40, now=T0, reservoir_ml=20.0, concentration_ug_per_ml=2000, program=itb.Continuous(400)
    )
    with pytest.raises(itb.ValidationError) as err:
        project_many([pump, "pump"])
    assert err.value.field == "pumps[1]"
    with pytest.raises(itb.ValidationError) as err:
        project_many([pump], assume_refills=True, assume_patient_boluses="max")
    assert err.value.field == "assume_patient_boluses"
    with pytest.raises(itb.ValidationError) as err:
        project_many([pump], timedelta(days=-1))
    assert err.value.field == "horizon"
    assert project_many([])["eri"].shape == (0,)


@st.composite
def patients(draw) -> list[ClinicPatient]:
    out = []
    for k in range(draw(st.integers(1, 10))):
        pump = draw(read_pumps())
        out.append(
            ClinicPatient(
                id=f"p{k}",
                pump=pump,
                last_refill=draw(st.none() | st.just(date(2026, 2, 20))),
                min_interval=timedelta(days=draw(st.sampled_from([0, 14, 28]))),
                stability=draw(st.sampled_from([None, timedelta(days=45), timedelta(days=180)])),
                fill_ml=draw(st.sampled_from([None, 20.0])),
                vial_ml=draw(st.sampled_from([None, 20.0, 8.0])),
            )
        )
    return out


@settings(max_examples=40, deadline=None)
@given(patients(), st.sampled_from([timedelta(days=3), timedelta(days=7)]))
def test_clinic_windows_equal_the_refill_planner(pts, margin) -> None:
    """Oracle: plan_refill of each patient's pump on its own (its own projections, the same
    margin, stability from the last refill): deadline, binding constraint, volume in whole
    vials. A pump past EOS cannot be refilled: the planner refuses it, the clinic books it at
    once as ``eos``/``stopped``."""
    plan = plan_clinic(pts, slots_per_day=2, calendar=CAL, margin=margin)
    for p in pts:
        v = plan[p.id]
        if p.pump.is_eos:
            with pytest.raises(itb.EndOfServiceError):
                plan_refill(p.pump, calendar=CAL)
            assert v.binding in ("eos", "stopped") and v.vials is None
            continue
        filled = (
            None if p.last_refill is None else datetime.combine(p.last_refill, CAL.appointment_time)
        )
        one = plan_refill(
            p.pump,
            margin=margin,
            stability=p.stability,
            calendar=CAL,
            filled_at=filled,
            fill_ml=p.fill_ml,
            vial_ml=p.vial_ml,
        )
        assert v.deadline == one.deadline
        assert v.binding == (
            "stopped" if v.drug_stops and v.drug_stops <= p.pump.now else one.constraint
        )
        assert v.volume_to_order_ml == one.volume_to_order_ml and v.vials == one.vials
        assert v.low_reservoir == p.pump.project().when("low_reservoir")


def test_bad_fill_names_the_patient() -> None:
    pump = itb.Pump(
        M40, now=T0, reservoir_ml=20.0, concentration_ug_per_ml=2000, program=itb.Continuous(400)
    )
    with pytest.raises(itb.ValidationError) as err:
        plan_clinic(
            [ClinicPatient("a", pump), ClinicPatient("b", pump.copy(), fill_ml=60.0)],
            slots_per_day=1,
            calendar=CAL,
        )
    assert err.value.field == "patients[1].fill_ml" and "40 mL" in str(err.value)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from([0.3, 0.6, 1.0, 3.0, 20.0]), min_size=2, max_size=14),
    st.lists(st.sampled_from([None, "a", "b"]), min_size=14, max_size=14),
    st.integers(1, 3),
)
def test_earliest_feasible_is_the_first_free_slot(reservoirs, who, slots) -> None:
    """Patients not fitted get the first open day (from the reading, here day 0) with a free
    slot for the clinic and their clinician, counting the booked visits and the earlier
    patients' earliest dates — the overdue first (booked there), then the others in input
    order: recounted here day by day."""
    pts = [
        ClinicPatient(
            f"p{k}",
            itb.Pump(
                M40,
                now=T0,
                reservoir_ml=r,
                concentration_ug_per_ml=2000,
                program=itb.Continuous(400),
            ),
            clinician=who[k],
        )
        for k, r in enumerate(reservoirs)
    ]
    plan = plan_clinic(
        pts, slots_per_day=slots, clinician_slots={"a": 1, "b": 1}, calendar=CAL, days=30
    )
    day = lambda t: (t.date() - T0.date()).days  # noqa: E731
    used = [0] * 30
    cused = {c: [0] * 30 for c in "ab"}
    for v in plan.visits:
        if v.fitted:
            used[day(v.date)] += 1
            if v.clinician:
                cused[v.clinician][day(v.date)] += 1
    # overdue (the deadline before the window opens at the reading) first, the first to run
    # dry first, then the deadline, then input order; then the others in input order
    late = [v for v in plan.visits if not v.fitted and v.deadline < T0]
    late.sort(key=lambda v: (v.drug_stops, v.deadline, plan.visits.index(v)))
    rest = [v for v in plan.visits if not v.fitted and v.deadline >= T0]
    for v in late + rest:
        free = [
            d
            for d in range(30)
            if used[d] < plan.capacity[d] and (v.clinician is None or cused[v.clinician][d] < 1)
        ]
        assert v.earliest_feasible == (
            None
            if not free
            else datetime.combine(T0.date() + timedelta(days=free[0]), CAL.appointment_time)
        )
        # an overdue patient is booked at that slot; the others only shown it
        assert v.overdue == (v in late and bool(free))
        assert v.date == (v.earliest_feasible if v.overdue else None)
        if free:
            used[free[0]] += 1
            if v.clinician:
                cused[v.clinician][free[0]] += 1
    assert used == plan.visits_per_day
