"""Field reports (issue 7): five kinds of fault found by replaying pump incidents.

Each report's example is a hand-computed test here, and each rule is also checked as a property
over many inputs. The rules are the product's ("Decisions" in the README):

1. every planned bolus (priming, bridge) accounts for all flow running at the same time;
2. an error's ``field`` names the refused call's own parameter (or a path into it), or the call
   itself when no argument is at fault;
3. no non-zero input becomes zero at any rounding step; a bolus reports the dose it delivers;
4. doses are prescribed in µg: a concentration change re-derives boluses not yet started and
   cancels running ones, each with an event;
5. events keep causal order and carry strictly increasing sequence numbers.
"""

from __future__ import annotations

import inspect
import pickle
from datetime import datetime, time, timedelta

import itb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

D = 86_400_000
T0 = datetime(2026, 3, 2, 8, 0)


# ---------------------------------------------------------------------------------------------
# 1. A priming bolus pushes drug at the priming rate
# ---------------------------------------------------------------------------------------------


def priming_pump(program=None, catheter_ul=150.0) -> itb.Pump:
    return itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=500,
        program=program or itb.Continuous(ug_per_day=1000),  # 2 mL/day at 500 µg/mL
        catheter_volume_ul=catheter_ul,
        path_primed=False,  # 100 + 150 µL of saline
    )


def test_priming_plan_counts_the_basal_running_with_it():
    # Saline S = 250 000 nL. Fastest total rate = the model maximum 24 mL/day, so the plan lasts
    # S / 24e6 nL/day = 900 000 ms. Basal 2e6 nL/day fills 2e6 × 900 000 / 86.4e6 = 20 833.3 nL of
    # it; the bolus fills the rest, floored so that it never pushes drug out: 229 166 nL at
    # ceil(229 166 × 86.4e6 / 900 000) = 21 999 936 nL/day (<= 24e6 − 2e6).
    p = priming_pump()
    plan = p.priming_bolus_plan()
    assert (plan.volume_nl, plan.duration, plan.rate_nl_per_day) == (
        229_166,
        timedelta(milliseconds=900_000),
        21_999_936,
    )
    p.start_priming_bolus()
    p.advance_to(p.now + plan.duration)
    assert p.delivered_pg == 0, "no drug leaves the tip before the plan ends"
    # Gain by the plan's end: 2e6 × 900 000 + 229 166 × 86.4e6 = 21 599 942 400 000 000 nL·ms/day
    # (a stroke is 2000 × 86.4e6 = 172 800 000 000): 124 strokes. Stroke 125 (the last saline)
    # needs 57 600 000 more at 2e6/day -> +29 ms; stroke 126 — the first to push drug out of the
    # tip — needs 172 857 600 000 more -> +86 429 ms.
    assert p.strokes == 124
    events = p.advance(timedelta(days=1))
    tip = [e for e in events if e.kind == "drug_at_tip"]
    assert [e.time for e in tip] == [T0 + timedelta(milliseconds=900_000 + 86_429)]


def _priming_programs():
    day_steps = st.lists(
        st.sampled_from([0.0, 100.0, 500.0, 1000.0, 3000.0]), min_size=2, max_size=4
    )

    def flex(doses):
        # steps every 5 min from 00:00, then the last dose for the rest of the day
        return itb.Flex(
            period="day",
            steps=[(time(0), doses[0])] + [(time(8, 5 * i), d) for i, d in enumerate(doses[1:])],
        )

    return st.one_of(
        st.sampled_from([0.0, 300.0, 1000.0, 5000.0]).map(lambda d: itb.Continuous(ug_per_day=d)),
        day_steps.map(flex),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    program=_priming_programs(),
    catheter_ul=st.sampled_from([20.0, 150.0, 400.0]),
    boluses=st.lists(
        st.tuples(st.integers(0, 20), st.integers(1, 15), st.sampled_from([5.0, 20.0, 50.0])),
        max_size=3,
    ),
    offset_ms=st.integers(0, 10 * 60_000),
)
def test_priming_never_pushes_drug_and_fills_within_a_stroke(
    program, catheter_ul, boluses, offset_ms
):
    """With flex steps changing during the plan and boluses already scheduled, the plan still
    fills exactly the saline: no drug at the tip before it ends (not even one stroke), and at
    most one stroke of saline left."""
    p = priming_pump(program, catheter_ul)
    p.advance(timedelta(milliseconds=offset_ms))
    for start_min, dur_min, dose in boluses:
        try:
            p.bolus(
                dose_ug=dose,
                duration=timedelta(minutes=dur_min),
                start=p.now + timedelta(minutes=start_min),
            )
        except itb.ProgrammingError:
            pass
    saline_nl = p.path_nl if p.tip_concentration_ug_per_ml == 0 else 0
    try:
        plan = p.priming_bolus_plan()
    except itb.ItbError:
        return  # no headroom or nothing to prime: refused, and that is a typed error
    before = p.delivered_pg
    p.start_priming_bolus()  # would raise ProgrammingError above the max rate
    p.advance_to(p.now + plan.duration)
    q_nl = p.model.stroke_nl
    assert p.delivered_pg - before == 0, "drug left the tip before the priming plan ended"
    # At most one stroke of saline left in the path when the plan ends.
    pushed_nl = p.delivered_nl
    assert saline_nl - pushed_nl <= q_nl


def test_bridge_plan_counts_a_bolus_already_scheduled():
    # After a 500 -> 2000 µg/mL change with 200 µL of old drug ahead at 400 µg/day: the bridge
    # lasts 200 µL / 0.8 mL/day = 6 h; basal at 2000 µg/mL moves 50 µL, so 150 µL remain — less
    # the 25 µL of a 50 µg bolus scheduled inside those 6 h: 125 µL.
    def pump(with_bolus: bool) -> itb.Pump:
        p = itb.Pump(
            itb.models.SYNCHROMED_II_40,
            now=T0,
            reservoir_ml=20.0,
            concentration_ug_per_ml=500,
            catheter_volume_ul=100.0,
            program=itb.Continuous(ug_per_day=400),
        )
        p.advance(timedelta(days=1))
        p.refill(added_ml=20.0, concentration_ug_per_ml=2000)
        if with_bolus:
            p.bolus(dose_ug=50.0, duration=timedelta(minutes=30), start=p.now + timedelta(hours=1))
        return p

    assert pump(False).bridge_bolus_plan().volume_nl == 150_000
    plan = pump(True).bridge_bolus_plan()
    assert (plan.volume_nl, plan.duration) == (125_000, timedelta(hours=6))


def test_bridge_plan_follows_flex_steps_of_the_prescription():
    # Old drug 200 µL at 500 µg/mL; prescription 400 µg/day until 12:00, then 1600 µg/day.
    # From 08:00 (after a day): 4 h at 0.8 mL/day push 133.33 µL; the remaining 66.67 µL at
    # 3.2 mL/day take 30 min: the bridge lasts 4 h 30 min (the old plan used 400 µg/day
    # throughout: 6 h). Basal at 2000 µg/mL: 4 h × 0.2 + 0.5 h × 0.8 mL/day = 50 µL (floor
    # 49 999.99 -> the bolus is 200 000 − 50 000 = 150 000 nL).
    program = itb.Flex(period="day", steps=[(time(0), 400.0), (time(12), 1600.0)])
    p = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=500,
        catheter_volume_ul=100.0,
        program=program,
    )
    p.advance(timedelta(days=1))
    p.refill(added_ml=20.0, concentration_ug_per_ml=2000)
    plan = p.bridge_bolus_plan()
    assert plan.duration == timedelta(hours=4, minutes=30)
    assert abs(plan.volume_nl - 150_000) <= 1


# ---------------------------------------------------------------------------------------------
# 2. An error names a field the caller did not pass
# ---------------------------------------------------------------------------------------------


def test_refill_error_names_the_concentration():
    p = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=800),
    )
    before = p.snapshot()
    with pytest.raises(itb.ProgrammingError) as err:
        p.refill(added_ml=20.0, concentration_ug_per_ml=30)  # 800 µg/day at 30 µg/mL = 26.7 mL/day
    assert err.value.field == "concentration_ug_per_ml"
    assert "continuous program" in str(err.value)
    assert p.snapshot() == before


def test_refill_error_says_which_flex_step():
    p = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Flex(
            period="day", steps=[(time(0), 100.0), (time(8), 100.0), (time(20), 800.0)]
        ),
    )
    with pytest.raises(itb.ProgrammingError) as err:
        p.refill(added_ml=20.0, concentration_ug_per_ml=30)
    assert err.value.field == "concentration_ug_per_ml" and "flex step 2" in str(err.value)


def _fresh(**kw) -> itb.Pump:
    args = dict(
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    args.update(kw)
    return itb.Pump(itb.models.SYNCHROMED_II_40, **args)


def _eos_pump() -> itb.Pump:
    tiny = itb.models.BatteryModel(
        capacity_mah=1.0,
        quiescent_ua=1000.0,
        stroke_uc=0.0,
        tone_uc=0.0,
        telemetry_uc=0.0,
        eri_mah=0.5,
        eos_mah=0.2,
    )
    model = itb.PumpModel(
        name="tiny",
        reservoir_ml=20.0,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        battery=tiny,
    )
    p = itb.Pump(
        model,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    p.advance(timedelta(days=1))
    assert p.is_eos
    return p


def _empty_pump() -> itb.Pump:
    return _fresh(reservoir_ml=0.001)


def _stalled_suspended() -> itb.Pump:
    p = _fresh()
    p.suspend()
    p.inject_motor_stall()
    return p


# (call name, how to get the pump, the bad call). Each entry must raise an itb.ItbError.
BAD_CALLS = [
    ("set_program", _fresh, lambda p: p.set_program(itb.Continuous(ug_per_day=60_000))),
    (
        "set_program",
        _fresh,
        lambda p: p.set_program(
            itb.Flex(period="day", steps=[(time(0), 1.0), (time(8), 60_000.0)])
        ),
    ),
    ("set_program", _fresh, lambda p: p.set_program("fast")),
    ("set_program", _eos_pump, lambda p: p.set_program(itb.Continuous(ug_per_day=100))),
    ("bolus", _fresh, lambda p: p.bolus(dose_ug=-1.0, duration=timedelta(minutes=5))),
    ("bolus", _fresh, lambda p: p.bolus(dose_ug=1e-9, duration=timedelta(minutes=5))),
    ("bolus", _fresh, lambda p: p.bolus(dose_ug=5.0, duration=timedelta(0))),
    (
        "bolus",
        _fresh,
        lambda p: p.bolus(dose_ug=5.0, duration=timedelta(minutes=5), start=T0 - timedelta(1)),
    ),
    ("bolus", _fresh, lambda p: p.bolus(dose_ug=5000.0, duration=timedelta(seconds=1))),
    ("bolus", _empty_pump, lambda p: p.bolus(dose_ug=5.0, duration=timedelta(minutes=5))),
    ("bolus", _eos_pump, lambda p: p.bolus(dose_ug=5.0, duration=timedelta(minutes=5))),
    ("cancel_bolus", _fresh, lambda p: p.cancel_bolus(99)),
    ("cancel_bolus", _fresh, lambda p: p.cancel_bolus(-1)),
    ("refill", _fresh, lambda p: p.refill(added_ml=41.0, concentration_ug_per_ml=2000)),
    ("refill", _fresh, lambda p: p.refill(added_ml=-1.0, concentration_ug_per_ml=2000)),
    ("refill", _fresh, lambda p: p.refill(added_ml=20.0, concentration_ug_per_ml=0)),
    ("refill", _fresh, lambda p: p.refill(added_ml=20.0, concentration_ug_per_ml=10)),
    (
        "refill",
        _fresh,
        lambda p: p.refill(added_ml=20.0, concentration_ug_per_ml=2000, aspirated_ml=-2.0),
    ),
    (
        "refill",
        _fresh,
        lambda p: p.refill(added_ml=20.0, concentration_ug_per_ml=2000, tolerance_pct=-1.0),
    ),
    (
        "refill",
        _fresh,
        lambda p: p.refill(added_ml=20.0, concentration_ug_per_ml=2000, tolerance_ml=1e-9),
    ),
    ("suspend", _stalled_suspended, lambda p: p.suspend()),
    ("resume", _fresh, lambda p: p.resume()),
    ("inject_motor_stall", _stalled_suspended, lambda p: p.inject_motor_stall()),
    ("clear_fault", _fresh, lambda p: p.clear_fault()),
    ("revise_catheter", _fresh, lambda p: p.revise_catheter(volume_ul=-1.0)),
    ("revise_catheter", _fresh, lambda p: p.revise_catheter(volume_ul=1e-7)),
    ("bridge_bolus_plan", _fresh, lambda p: p.bridge_bolus_plan()),
    ("start_bridge_bolus", _fresh, lambda p: p.start_bridge_bolus()),
    ("priming_bolus_plan", _fresh, lambda p: p.priming_bolus_plan()),
    ("start_priming_bolus", _fresh, lambda p: p.start_priming_bolus()),
    (
        "set_patient_bolus_limits",
        _fresh,
        lambda p: p.set_patient_bolus_limits(dose_ug=0.0001, duration=timedelta(minutes=5)),
    ),
    (
        "set_patient_bolus_limits",
        _fresh,
        lambda p: p.set_patient_bolus_limits(dose_ug=5.0, duration=timedelta(0)),
    ),
    (
        "set_patient_bolus_limits",
        _fresh,
        lambda p: p.set_patient_bolus_limits(
            dose_ug=5.0, duration=timedelta(minutes=5), lockout=timedelta(days=2)
        ),
    ),
    (
        "set_patient_bolus_limits",
        _fresh,
        lambda p: p.set_patient_bolus_limits(
            dose_ug=5.0,
            duration=timedelta(minutes=5),
            lockout=timedelta(microseconds=10),
            max_per_24h=2,
        ),
    ),
    (
        "set_patient_bolus_limits",
        _fresh,
        lambda p: p.set_patient_bolus_limits(
            dose_ug=5.0, duration=timedelta(minutes=5), max_per_24h=99
        ),
    ),
    ("patient_bolus", _fresh, lambda p: p.patient_bolus(at=T0 - timedelta(1))),
    (
        "patient_bolus",
        _fresh,
        lambda p: p.patient_bolus(
            at=datetime(2026, 1, 1, tzinfo=__import__("datetime").timezone.utc)
        ),
    ),
    ("advance_to", _fresh, lambda p: p.advance_to(T0 - timedelta(1))),
    ("advance", _fresh, lambda p: p.advance(timedelta(days=-1))),
    ("advance", _fresh, lambda p: p.advance(timedelta(days=3_000_000))),
    ("advance_recording", _fresh, lambda p: p.advance_recording(T0 - timedelta(1))),
    ("project", _fresh, lambda p: p.project(horizon=timedelta(days=-1))),
    ("telemetry_session", _eos_pump, None),  # allowed after EOS: no error expected (see below)
]


def _allowed_fields(call: str) -> set[str]:
    params = set(inspect.signature(getattr(itb.Pump, call)).parameters) - {"self"}
    return params | {call}


@pytest.mark.parametrize("i", range(len(BAD_CALLS)))
def test_every_error_names_the_calls_own_parameter(i):
    call, make, bad = BAD_CALLS[i]
    p = make()
    if bad is None:
        getattr(p, call)()
        return
    before = p.snapshot()
    with pytest.raises(itb.ItbError) as err:
        bad(p)
    field = err.value.field
    root = field.split(".")[0].split("[")[0]
    allowed = _allowed_fields(call)
    if call == "set_program":
        allowed |= {"ug_per_day", "steps", "period"}  # paths into `program`
    assert root in allowed, (
        f"{call}: error field {field!r} is not one of {sorted(allowed)}: {err.value}"
    )
    assert p.snapshot() == before, f"{call}: a refused call changed the pump"


def test_constructor_and_model_errors_name_their_own_parameters():
    kw = dict(
        name="x",
        reservoir_ml=20.0,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
    )
    with pytest.raises(itb.ValidationError) as err:
        itb.PumpModel(**{**kw, "max_rate_ml_per_day": 1e6})
    assert err.value.field == "max_rate_ml_per_day"
    with pytest.raises(itb.ValidationError) as err:
        itb.PumpModel(**{**kw, "low_reservoir_ml": 30.0})
    assert err.value.field == "low_reservoir_ml"
    with pytest.raises(itb.ValidationError) as err:
        itb.models.BatteryModel(
            capacity_mah=10.0,
            quiescent_ua=1.0,
            stroke_uc=1.0,
            tone_uc=1.0,
            telemetry_uc=1.0,
            eri_mah=20.0,
            eos_mah=1.0,
        )
    assert err.value.field == "eri_mah"
    pump_params = set(inspect.signature(itb.Pump).parameters)
    bad = [
        dict(reservoir_ml=50.0),
        dict(concentration_ug_per_ml=0),
        dict(catheter_volume_ul=-1.0),
        dict(stroke_error_ppm=10**7),
        dict(program=itb.Continuous(ug_per_day=60_000)),
        dict(now=datetime(2026, 1, 1, tzinfo=__import__("datetime").timezone.utc)),
    ]
    for extra in bad:
        with pytest.raises(itb.ItbError) as err:
            _fresh(**extra)
        root = err.value.field.split(".")[0].split("[")[0]
        assert root in pump_params | {"ug_per_day", "steps"}, (extra, err.value.field)
    with pytest.raises(itb.SnapshotError) as err:
        itb.Pump.restore(b"not a snapshot")
    assert err.value.field == "data"


# ---------------------------------------------------------------------------------------------
# 3. A non-zero prescription silently becomes "off"
# ---------------------------------------------------------------------------------------------


def test_tiny_program_rates_are_errors_not_off():
    p = _fresh(concentration_ug_per_ml=100_000, program=itb.Continuous(ug_per_day=0))
    with pytest.raises(itb.ProgrammingError) as err:
        p.set_program(itb.Continuous(ug_per_day=0.04))  # 0.4 nL/day rounds to 0
    assert err.value.field == "ug_per_day"
    with pytest.raises(itb.ValidationError) as err:
        itb.Continuous(ug_per_day=0.0005)  # 0.5 ng/day rounds (half-even) to 0
    assert err.value.field == "ug_per_day" and "0.001" in str(err.value)
    with pytest.raises(itb.ValidationError) as err:
        itb.Flex(period="day", steps=[(time(0), 1.0), (time(6), 0.0004)])
    assert err.value.field == "steps[1].ug_per_day"
    itb.Continuous(ug_per_day=0.0)  # exactly 0 is allowed: off


def test_bolus_reports_the_dose_it_really_delivers():
    p = _fresh(concentration_ug_per_ml=100_000, program=itb.Continuous(ug_per_day=0))
    p.bolus(dose_ug=0.25, duration=timedelta(minutes=5))  # 2.5 nL -> 2 nL (half-even) = 0.2 µg
    (b,) = p.boluses
    assert (b.volume_nl, b.requested_ng, b.dose_pg) == (2, 250, 200_000)
    assert b.dose_ug == 0.2 and b.requested_dose_ug == 0.25
    with pytest.raises(itb.ValidationError) as err:
        p.bolus(dose_ug=0.05, duration=timedelta(minutes=5))  # 0.5 nL -> 0
    assert err.value.field == "dose_ug" and "smallest accepted dose is 0.051" in str(err.value)
    p.bolus(dose_ug=0.051, duration=timedelta(minutes=5))  # 0.51 nL -> 1 nL


@given(x=st.floats(min_value=1e-12, max_value=1e-2, allow_nan=False, allow_infinity=False))
@settings(max_examples=200, deadline=None)
def test_no_nonzero_input_becomes_zero(x):
    """Every float→int boundary conversion: a positive input is either refused or >= 1 unit."""
    for make in (
        lambda: itb.Continuous(ug_per_day=x).exact()[1],
        lambda: itb.Flex(period="day", steps=[(time(0), x)]).exact()[2][0][1],
        lambda: itb.PumpModel(
            name="m",
            reservoir_ml=20.0,
            stroke_nl=2000,
            min_rate_ml_per_day=0.048,
            max_rate_ml_per_day=24.0,
            pump_path_ul=x,
        ).exact()["pump_path_nl"],
    ):
        try:
            assert make() >= 1
        except itb.ValidationError as err:
            assert err.field
    p = _fresh(program=itb.Continuous(ug_per_day=0))
    for call in (
        lambda: p.bolus(dose_ug=x, duration=timedelta(minutes=1)),
        lambda: p.revise_catheter(volume_ul=x),
        lambda: p.refill(added_ml=x, concentration_ug_per_ml=2000),
        lambda: p.set_patient_bolus_limits(dose_ug=x, duration=timedelta(minutes=5)),
    ):
        try:
            call()
        except itb.ValidationError as err:
            assert err.field
    for b in p.boluses:
        assert b.volume_nl >= 1 and b.dose_pg >= 1
    assert p.core.catheter_nl != 0 or p.path_nl == p.model.pump_path_ul * 1000


@given(us=st.integers(1, 999))
def test_no_nonzero_duration_becomes_zero(us):
    p = _fresh()
    with pytest.raises(itb.ValidationError) as err:
        p.set_patient_bolus_limits(
            dose_ug=5.0,
            duration=timedelta(minutes=5),
            lockout=timedelta(microseconds=us),
            max_per_24h=2,
        )
    assert err.value.field == "lockout"


# ---------------------------------------------------------------------------------------------
# 4. A pending bolus changes its dose across a concentration change
# ---------------------------------------------------------------------------------------------


def no_dead_volume_model() -> itb.PumpModel:
    m = itb.models.SYNCHROMED_II_40
    return itb.PumpModel(
        name="no dead volume",
        reservoir_ml=m.reservoir_ml,
        stroke_nl=m.stroke_nl,
        min_rate_ml_per_day=m.min_rate_ml_per_day,
        max_rate_ml_per_day=m.max_rate_ml_per_day,
        low_reservoir_ml=m.low_reservoir_ml,
        pump_path_ul=0.0,
    )


def test_scheduled_bolus_is_rederived_at_the_new_concentration():
    p = itb.Pump(
        no_dead_volume_model(),
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=0),
    )
    bid = p.bolus(dose_ug=50.0, duration=timedelta(minutes=30), start=T0.replace(hour=10))
    assert p.boluses[0].volume_nl == 100_000  # 50 µg at 500 µg/mL
    p.advance_to(T0.replace(hour=9))
    p.refill(added_ml=20.0, concentration_ug_per_ml=2000)
    (b,) = p.boluses
    assert (b.id, b.volume_nl, b.dose_ug, b.requested_dose_ug) == (bid, 25_000, 50.0, 50.0)
    assert b.start == T0.replace(hour=10) and b.end == T0.replace(hour=10, minute=30)
    events = p.advance_to(T0.replace(hour=11))
    kinds = [e.kind for e in events if e.time == T0.replace(hour=9)]
    assert kinds == ["refilled", "concentration_changed", "bolus_adjusted"]
    adjusted = next(e for e in events if e.kind == "bolus_adjusted")
    assert adjusted.data["bolus_id"] == bid and adjusted.data["from_volume_nl"] == 100_000
    assert adjusted.data["volume_nl"] == 25_000 and adjusted.data["dose_pg"] == 50_000_000
    # 25 000 nL = 12.5 strokes of 2000 nL: 12 strokes = 48 µg by 10:30, the half stroke waits.
    assert p.delivered_ug == 48.0
    done = next(e for e in events if e.kind == "bolus_completed")
    assert done.data["dose_pg"] == 50_000_000


def test_running_bolus_is_cancelled_with_the_reason():
    p = itb.Pump(
        no_dead_volume_model(),
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=0),
    )
    bid = p.bolus(dose_ug=50.0, duration=timedelta(minutes=30))
    p.advance(timedelta(minutes=10))  # a third of 100 000 nL has run
    p.refill(added_ml=20.0, concentration_ug_per_ml=2000)
    assert p.boluses == []
    events = p.advance(timedelta(minutes=30))
    (cancelled,) = [e for e in events if e.kind == "bolus_cancelled"]
    assert cancelled.data["bolus_id"] == bid and cancelled.data["reason"] == "concentration_changed"
    assert cancelled.data["delivered_nl"] == 33_333
    assert not [e for e in events if e.kind == "bolus_completed"]


@settings(max_examples=80, deadline=None)
@given(
    conc=st.sampled_from([50, 500, 1000, 2000, 4000]),
    new_conc=st.sampled_from([50, 500, 1000, 2000, 4000]),
    dose=st.sampled_from([1.0, 25.0, 50.0, 100.0]),
    start_min=st.integers(0, 240),
    refill_min=st.integers(0, 300),
    duration_min=st.integers(1, 60),
)
def test_no_bolus_delivers_another_dose_without_an_event(
    conc, new_conc, dose, start_min, refill_min, duration_min
):
    """Every bolus that completes delivers (at the reservoir) its requested µg up to the half-nL
    rounding at the concentration in force when it ran; otherwise an event said why."""
    p = itb.Pump(
        no_dead_volume_model(),
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=conc,
        program=itb.Continuous(ug_per_day=0),
    )
    try:
        bid = p.bolus(
            dose_ug=dose,
            duration=timedelta(minutes=duration_min),
            start=T0 + timedelta(minutes=start_min),
        )
    except itb.ItbError:
        return
    events = p.advance(timedelta(minutes=refill_min))
    try:
        p.refill(added_ml=20.0, concentration_ug_per_ml=new_conc)
    except itb.ProgrammingError as err:
        assert err.field == "concentration_ug_per_ml"
        return
    events += p.advance(timedelta(hours=8))
    mine = [e for e in events if e.data.get("bolus_id") == bid]
    kinds = [e.kind for e in mine]
    if "bolus_completed" in kinds:
        done = next(e for e in mine if e.kind == "bolus_completed")
        c = new_conc if start_min >= refill_min else conc  # the concentration it was derived at
        assert abs(done.data["dose_pg"] - dose * 1e6) <= c * 500, (kinds, done.data)
        if conc != new_conc and start_min >= refill_min:
            assert "bolus_adjusted" in kinds
    else:
        assert "bolus_cancelled" in kinds
        if conc != new_conc and start_min < refill_min:
            assert (
                next(e for e in mine if e.kind == "bolus_cancelled").data["reason"]
                == "concentration_changed"
            )


# ---------------------------------------------------------------------------------------------
# 5. Events raised by a call are listed before the call's own event
# ---------------------------------------------------------------------------------------------


def test_events_keep_causal_order():
    p = itb.Pump(
        itb.models.PROMETRA_II_20,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=300),
    )
    p.advance(timedelta(days=1))
    p.refill(added_ml=0.0, concentration_ug_per_ml=500)  # emptied for an MRI
    p.set_program(itb.Continuous(ug_per_day=0))
    events = p.advance(timedelta(0))
    assert [e.kind for e in events] == [
        "refilled",
        "low_reservoir",
        "reservoir_empty",
        "program_changed",
    ]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_sequence_numbers_increase_over_the_pumps_life_and_survive_snapshots():
    p = _fresh()
    seen = [e.seq for e in p.advance(timedelta(days=3))]
    assert seen[0] == 1 and seen == list(range(1, len(seen) + 1))
    p.bolus(dose_ug=10.0, duration=timedelta(minutes=10))
    same = pickle.loads(pickle.dumps(p))
    again = itb.Pump.restore(p.snapshot())
    for q in (p, same, again):
        more = [e.seq for e in q.advance(timedelta(days=1))]
        assert more[0] == seen[-1] + 1 and more == sorted(more)
    assert p.snapshot() == same.snapshot() == again.snapshot()


def test_patient_grant_comes_before_the_bolus_it_starts():
    p = _fresh()
    p.set_patient_bolus_limits(
        dose_ug=10.0, duration=timedelta(minutes=10), lockout=timedelta(hours=1), max_per_24h=4
    )
    p.patient_bolus()
    kinds = [e.kind for e in p.advance(timedelta(0))]
    assert kinds == ["patient_bolus_granted", "bolus_started"]


def test_a_call_in_between_keeps_its_place():
    # suspend, then a stall, then resume at the same ms: call order, not kind order
    p = _fresh()
    p.advance(timedelta(hours=1))
    p.suspend()
    p.inject_motor_stall()
    p.resume()
    p.clear_fault()
    p.set_program(itb.Continuous(ug_per_day=200))
    kinds = [e.kind for e in p.advance(timedelta(0))]
    assert kinds == ["suspended", "fault", "resumed", "fault_cleared", "program_changed"]


def test_version_1_snapshots_written_by_the_old_build_still_restore():
    from pathlib import Path

    blob = (
        Path(__file__).resolve().parent.parent
        / "rust"
        / "core"
        / "tests"
        / "fixtures"
        / "v1_scheduled_bolus.bin"
    ).read_bytes()
    p = itb.Pump.restore(blob)
    (b,) = p.boluses
    assert (b.volume_nl, b.requested_dose_ug, b.dose_ug, b.duration) == (
        25_000,
        50.0,
        50.0,
        timedelta(minutes=30),
    )
    assert p.snapshot()[8:10] == b"\x03\x00" and itb.Pump.restore(p.snapshot()) == p
    assert [e.seq for e in p.advance(timedelta(hours=3))][:1] == [1]


def test_rederived_and_cancelled_boluses_are_listed_in_start_order():
    """Found by the stateful oracle: adjustments and cancellations at a concentration change
    come in the order the boluses start (ties: the order they were scheduled), not by id."""
    p = itb.Pump(
        no_dead_volume_model(),
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=0),
    )
    late = p.bolus(dose_ug=50.0, duration=timedelta(minutes=30), start=T0.replace(hour=12))  # id 1
    early = p.bolus(dose_ug=20.0, duration=timedelta(minutes=30), start=T0.replace(hour=10))  # id 2
    tie = p.bolus(dose_ug=10.0, duration=timedelta(minutes=30), start=T0.replace(hour=12))  # id 3
    running = p.bolus(dose_ug=10.0, duration=timedelta(hours=8))  # id 4, now
    p.advance_to(T0.replace(hour=9))
    p.refill(added_ml=20.0, concentration_ug_per_ml=1000)
    events = [
        e
        for e in p.advance_to(T0.replace(hour=9))
        if e.kind in ("bolus_adjusted", "bolus_cancelled")
    ]
    assert [(e.kind, e.data["bolus_id"]) for e in events] == [
        ("bolus_cancelled", running),
        ("bolus_adjusted", early),
        ("bolus_adjusted", late),
        ("bolus_adjusted", tie),
    ]
    # 20 µg at 1000 µg/mL = 20 000 nL (was 40 000 at 500)
    assert (events[1].data["from_volume_nl"], events[1].data["volume_nl"]) == (40_000, 20_000)


def test_rate_limit_error_gives_the_peak_as_a_pump_clock_time():
    """Found by the kit review: the maximum-rate refusal printed the peak as raw ms."""
    p = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    at = T0 + timedelta(hours=1)
    with pytest.raises(itb.ProgrammingError) as err:
        p.bolus(dose_ug=500.0, duration=timedelta(minutes=1), start=at)  # 0.25 mL/min = 360 mL/day
    assert err.value.field == "dose_ug"
    assert f"at {at.isoformat(timespec='milliseconds')} exceeds the maximum rate" in str(err.value)
    assert " ms " not in str(err.value)
