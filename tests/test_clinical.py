"""itb.clinical: screening trial, initial dose, titration guard and refill planner, checked on
hand-computed cases from the baclofen intrathecal labelling (shared/FACTS.md), plus a property
test of the titration limits over any 24 h window that does not use the guard's own logic."""

from __future__ import annotations

import doctest
from datetime import date, datetime, time, timedelta
from fractions import Fraction

import itb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.clinical import (
    ClinicCalendar,
    DoseChange,
    ScreeningOutcome,
    ScreeningTrial,
    TitrationGuard,
    initial_daily_dose,
    plan_refill,
)
from itb.errors import ProtocolViolation, ValidationError

T0 = datetime(2026, 3, 2, 9, 0)  # a Monday
H = timedelta(hours=1)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(itb.clinical)
    assert result.attempted > 0 and result.failed == 0


def test_clinical_is_reexported() -> None:
    assert itb.clinical.plan_refill is plan_refill
    assert issubclass(itb.ProtocolViolation, itb.ValidationError) and issubclass(
        itb.ProtocolViolation, ValueError
    )


# ----- screening trial ---------------------------------------------------------------------


def test_screening_50_inadequate_then_75_at_24h_responds() -> None:
    trial = ScreeningTrial()
    step = trial.next_step()
    assert (step.action, step.dose_ug, step.earliest) == ("give_dose", 50.0, None)
    trial.give(50, at=T0)
    step = trial.next_step()
    assert (step.action, step.earliest, step.latest) == ("record_response", T0 + 4 * H, T0 + 8 * H)
    trial.record_response(False, at=T0 + 6 * H)
    step = trial.next_step()
    assert (step.action, step.dose_ug, step.earliest) == ("give_dose", 75.0, T0 + 24 * H)

    with pytest.raises(ProtocolViolation) as err:  # 23 h later: too soon
        trial.give(75, at=T0 + 23 * H)
    assert (err.value.field, err.value.reason) == ("at", "too_soon")
    assert "24 h" in str(err.value) and "2026-03-03 09:00" in str(err.value)
    assert len(trial.doses) == 1  # a refused step changes nothing

    trial.give(75, at=T0 + 24 * H)
    trial.record_response(True, at=T0 + 34 * H, effect_duration=10 * H)
    assert trial.outcome is ScreeningOutcome.CANDIDATE
    assert trial.next_step().action == "done"
    assert trial.effective_dose is not None and trial.effective_dose.dose_ug == 75.0
    assert trial.initial_daily_dose() == 75.0  # effect > 8 h: the same dose per 24 h
    assert [(d.dose_ug, d.at, d.adequate, d.effect_duration) for d in trial.doses] == [
        (50.0, T0, False, None),
        (75.0, T0 + 24 * H, True, 10 * H),
    ]
    with pytest.raises(ProtocolViolation) as err:
        trial.give(100, at=T0 + 48 * H)
    assert (err.value.field, err.value.reason) == ("dose_ug", "trial_closed")


def test_screening_no_response_to_100_is_not_a_candidate() -> None:
    trial = ScreeningTrial()
    for i, dose in enumerate((50, 75, 100)):
        trial.give(dose, at=T0 + i * 24 * H)
        assert trial.outcome is ScreeningOutcome.PENDING
        trial.record_response(False, at=T0 + i * 24 * H + 8 * H)
    assert trial.outcome is ScreeningOutcome.NOT_CANDIDATE
    assert trial.outcome == "not_candidate"
    step = trial.next_step()
    assert step.action == "done" and "not a candidate" in step.description
    with pytest.raises(ProtocolViolation) as err:
        trial.give(100, at=T0 + 96 * H)
    assert err.value.reason == "trial_closed"
    with pytest.raises(ProtocolViolation) as err:
        trial.initial_daily_dose()
    assert err.value.reason == "no_effective_dose"


def test_screening_refuses_out_of_protocol_steps() -> None:
    trial = ScreeningTrial()
    with pytest.raises(ProtocolViolation) as err:
        trial.give(75, at=T0)  # must start at 50 µg
    assert (err.value.field, err.value.reason) == ("dose_ug", "wrong_dose")
    assert "50 µg" in str(err.value)
    with pytest.raises(ProtocolViolation) as err:
        trial.record_response(False, at=T0)
    assert err.value.reason == "no_dose_pending"
    trial.give(50.0, at=T0)
    with pytest.raises(ProtocolViolation) as err:  # response not recorded yet
        trial.give(75, at=T0 + 24 * H)
    assert err.value.reason == "awaiting_response"
    with pytest.raises(ProtocolViolation) as err:  # observe at least 4 h
        trial.record_response(False, at=T0 + 3 * H)
    assert (err.value.field, err.value.reason) == ("at", "observation_incomplete")
    with pytest.raises(ValidationError) as verr:  # an adequate response needs its duration
        trial.record_response(True, at=T0 + 5 * H)
    assert verr.value.field == "effect_duration"
    with pytest.raises(ValidationError) as verr:  # cannot have observed 6 h of effect in 5 h
        trial.record_response(True, at=T0 + 5 * H, effect_duration=6 * H)
    assert verr.value.field == "effect_duration"
    trial.record_response(False, at=T0 + 5 * H)
    with pytest.raises(ProtocolViolation) as err:  # 100 µg skips 75 µg
        trial.give(100, at=T0 + 24 * H)
    assert err.value.reason == "wrong_dose" and "75 µg" in str(err.value)
    with pytest.raises(ValidationError) as verr:
        trial.give(75, at=(T0 + 24 * H).astimezone())  # tz-aware
    assert verr.value.field == "at"
    assert len(trial.doses) == 1


# ----- initial dose ------------------------------------------------------------------------


def test_initial_daily_dose_doubles_unless_effect_over_8_hours() -> None:
    assert initial_daily_dose(100, 6) == 200.0
    assert initial_daily_dose(100, 10) == 100.0
    assert initial_daily_dose(100, 8) == 200.0  # "more than 8 hours" is strict
    assert initial_daily_dose(50, timedelta(hours=8, milliseconds=1)) == 50.0
    assert initial_daily_dose(75, timedelta(hours=4)) == 150.0


@pytest.mark.parametrize(
    "dose, hours, field",
    [
        (0, 6, "effective_screening_dose_ug"),
        (-50, 6, "effective_screening_dose_ug"),
        (100, -1, "effect_hours"),
        (100, float("nan"), "effect_hours"),
        (100, "6", "effect_hours"),
    ],
)
def test_initial_daily_dose_errors(dose: float, hours: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        initial_daily_dose(dose, hours)  # type: ignore[arg-type]
    assert err.value.field == field


# ----- titration guard ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin, phase, allowed, denied",
    [
        ("spinal", "titration", 390, 391),
        ("cerebral", "titration", 345, 346),
        ("spinal", "maintenance", 420, 421),
        ("cerebral", "maintenance", 360, 361),
    ],
)
def test_titration_percent_limits(origin: str, phase: str, allowed: float, denied: float) -> None:
    guard = TitrationGuard(origin, phase, max_ug_per_day=2000)
    ok = guard.check(300, allowed, at=T0)
    assert ok and ok.allowed and ok.code == "increase" and ok.flags == ()
    no = guard.check(300, denied, at=T0)
    assert not no and no.code == "exceeds_step"
    assert no.limit_ug_per_day == allowed
    pct = round(100 * (allowed - 300) / 300)
    assert f"+{pct} %" in no.reason and f"{allowed} µg/day" in no.reason and origin in no.reason
    assert guard.changes == ()  # check records nothing


def test_titration_one_increase_per_24_hours() -> None:
    guard = TitrationGuard("spinal", "titration", max_ug_per_day=1000)
    first = guard.apply(300, 330, at=T0)
    assert first.allowed and first.next_increase_at == T0 + 24 * H
    second = guard.apply(330, 360, at=T0 + 23 * H + timedelta(minutes=59))
    assert not second and second.code == "too_soon"
    assert second.next_increase_at == T0 + 24 * H and second.limit_ug_per_day == 330
    assert "once per 24 h" in second.reason
    # a decrease is allowed at any time and does not reopen increases
    down = guard.apply(330, 290, at=T0 + 2 * H)  # -12 %
    assert down.allowed and down.code == "decrease" and down.flags == ()
    assert guard.check(290, 310, at=T0 + 3 * H).code == "too_soon"
    later = guard.apply(290, 377, at=T0 + 24 * H)  # exactly 24 h after the last increase: +30 %
    assert later.allowed
    assert guard.changes == (
        DoseChange(T0, 300.0, 330.0),
        DoseChange(T0 + 2 * H, 330.0, 290.0),
        DoseChange(T0 + 24 * H, 290.0, 377.0),
    )
    assert guard.current_ug_per_day == 377.0


def test_titration_decreases_and_maximum() -> None:
    guard = TitrationGuard("cerebral", "maintenance", max_ug_per_day=500)
    d = guard.check(400, 340, at=T0)  # -15 %: labelled
    assert d.allowed and d.flags == ()
    d = guard.check(400, 300, at=T0)  # -25 %: allowed, flagged
    assert d.allowed and d.flags == ("decrease_beyond_label",) and "abrupt withdrawal" in d.reason
    d = guard.check(400, 0, at=T0)
    assert d.allowed and d.flags == ("decrease_beyond_label", "stop")
    d = guard.check(400, 390, at=T0)
    assert d.allowed and d.flags == ("below_labelled_step",)
    d = guard.check(450, 501, at=T0)  # within +20 % but above the absolute maximum
    assert (
        not d
        and d.code == "exceeds_maximum"
        and d.limit_ug_per_day == 500.0
        and "500 µg/day" in d.reason
    )
    d = guard.check(600, 550, at=T0)  # lowering a dose above the maximum is never denied
    assert d.allowed and "above_maximum" in d.flags
    d = guard.check(400, 410, at=T0)  # +2.5 %: smaller than the labelled 5 % step
    assert d.allowed and d.flags == ("below_labelled_step",)
    assert guard.check(400, 400, at=T0).code == "unchanged"


def test_titration_history_from_implant() -> None:
    implant = datetime(2026, 3, 2, 14, 0)
    guard = TitrationGuard(
        "spinal", "titration", max_ug_per_day=1000, history=[DoseChange(implant, 0, 200)]
    )
    assert (
        guard.check(200, 260, at=implant + 23 * H).code == "too_soon"
    )  # "after the first 24 hours"
    assert guard.check(200, 260, at=implant + 24 * H).allowed
    with pytest.raises(ValidationError) as err:
        guard.check(300, 330, at=implant + 24 * H)  # not the recorded dose
    assert err.value.field == "current_ug_per_day" and "200" in str(err.value)
    with pytest.raises(ValidationError) as err:
        guard.check(200, 210, at=implant - H)  # before the last recorded change
    assert err.value.field == "at"


def test_titration_record_refuses_denied_and_stale_decisions() -> None:
    guard = TitrationGuard("spinal", "titration", max_ug_per_day=1000)
    with pytest.raises(ProtocolViolation) as err:
        guard.record(guard.check(300, 400, at=T0))
    assert err.value.reason == "denied"
    a = guard.check(300, 330, at=T0)
    b = guard.check(300, 360, at=T0 + H)
    guard.record(a)
    with pytest.raises(ProtocolViolation) as err:  # b was checked against 300 µg/day; it is now 330
        guard.record(b)
    assert (err.value.reason, err.value.field) == ("stale", "current_ug_per_day")
    c = guard.check(330, 320, at=T0 + H)
    guard.record(guard.check(330, 300, at=T0 + 2 * H))
    with pytest.raises(ProtocolViolation) as err:  # c was made before the last recorded change
        guard.record(c)
    assert err.value.reason == "stale"
    assert len(guard.changes) == 2  # a and the decrease; nothing from the refused ones


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"origin": "brain"}, "origin"),
        ({"phase": "bolus"}, "phase"),
        ({"max_ug_per_day": 0}, "max_ug_per_day"),
        ({"max_ug_per_day": float("inf")}, "max_ug_per_day"),
    ],
)
def test_titration_guard_argument_errors(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TitrationGuard(
            **{"origin": "spinal", "phase": "titration", "max_ug_per_day": 1000, **kwargs}
        )
    assert err.value.field == field


DAY_MS = 86_400_000
LIMITS = {
    ("spinal", "titration"): Fraction(13, 10),
    ("cerebral", "titration"): Fraction(115, 100),
    ("spinal", "maintenance"): Fraction(14, 10),
    ("cerebral", "maintenance"): Fraction(12, 10),
}


def _within_limits(history: list[tuple[int, int]], factor: Fraction, max_ng: int) -> bool:
    """Independent statement of the labelled limits over a dose history [(t_ms, ng/day)] (the first
    entry is the starting dose, in force since long before): the dose D(t) is the last entry at or
    before t. (1) increases never go above the maximum; (2) an increase comes >= 24 h after the
    previous increase, unless it is a restart (from 0); (3) for all s < t with t - s < 24 h and D
    positive on all of [s, t], D(t) <= factor × D(s); (4) a restart from 0 goes no higher than the
    last positive dose before the 0 (docs: decisions/core.md#titration-restart-from-0)."""
    doses = [d for _, d in history]
    times = [t for t, _ in history]
    ups = [k for k in range(1, len(history)) if doses[k] > doses[k - 1]]
    if any(doses[k] > max_ng for k in ups):
        return False
    if any(times[b] - times[a] < DAY_MS and doses[b - 1] > 0 for a, b in zip(ups, ups[1:])):
        return False
    for k in ups:
        if doses[k - 1] == 0:
            before = [d for d in doses[:k] if d > 0]
            if not before or doses[k] > before[-1]:
                return False
    # D takes value doses[i] on [times[i], times[i+1]); the closest s in that piece to a later piece j
    # is just before times[i+1], so the pair is inside a 24 h window iff times[j] - times[i+1] < 24 h.
    for i in range(len(history) - 1):
        for j in range(i + 1, len(history)):
            if 0 in doses[i : j + 1]:
                break
            if times[j] - times[i + 1] < DAY_MS and doses[j] > factor * doses[i]:
                return False
    return True


@settings(max_examples=400)
@given(
    origin=st.sampled_from(["spinal", "cerebral"]),
    phase=st.sampled_from(["titration", "maintenance"]),
    start_ng=st.integers(10_000, 800_000),
    max_extra_ng=st.integers(0, 600_000),
    steps=st.lists(
        st.tuples(  # (ms since the previous proposal, proposed dose): mostly on the boundaries
            st.one_of(
                st.sampled_from([0, 1, DAY_MS - 1, DAY_MS, DAY_MS + 1]), st.integers(0, 2 * DAY_MS)
            ),
            st.one_of(
                st.sampled_from(
                    [
                        "limit",
                        "limit+1",
                        "+1",
                        "max",
                        "max+1",
                        "same",
                        "down",
                        "zero",
                        "pre",
                        "pre+1",
                    ]
                ),
                st.integers(0, 2_000_000),
            ),
        ),
        max_size=12,
    ),
)
def test_accepted_changes_never_exceed_the_labelled_limits(
    origin: str, phase: str, start_ng: int, max_extra_ng: int, steps: list
) -> None:
    factor = LIMITS[(origin, phase)]
    max_ng = start_ng + max_extra_ng
    guard = TitrationGuard(origin, phase, max_ug_per_day=max_ng / 1000)
    t = 1_772_000_000_000  # ms, early 2026
    history = [(t, start_ng)]
    for dt, target in steps:
        t += dt
        cur = history[-1][1]
        if target == "limit":
            new = int(cur * factor)
        elif target == "limit+1":
            new = int(cur * factor) + 1
        elif target in ("max", "max+1"):
            new = max_ng + (target == "max+1")
        elif target == "+1":
            new = cur + 1
        elif target == "same":
            new = cur
        elif target == "down":
            new = cur * 3 // 4
        elif target == "zero":
            new = 0
        elif target in ("pre", "pre+1"):  # the last positive dose (the restart limit after a stop)
            new = [d for _, d in history if d > 0][-1] + (target == "pre+1")
        else:
            new = target
        decision = guard.apply(cur / 1000, new / 1000, at=t)
        candidate = history + [(t, new)]
        # the guard allows exactly what keeps the independent limits (decreases: always)
        assert decision.allowed == (new <= cur or _within_limits(candidate, factor, max_ng)), (
            decision.reason
        )
        if decision.allowed and new != cur:
            history = candidate
    assert _within_limits(history, factor, max_ng)
    assert [(c.to_ug_per_day) for c in guard.changes] == [d / 1000 for _, d in history[1:]]


# ----- refill planning ---------------------------------------------------------------------

START = datetime(2026, 1, 5, 8, 0)  # a Monday


def _pump(
    ug_per_day: float = 400.0,
    reservoir_ml: float = 40.0,
    model: itb.PumpModel = itb.models.SYNCHROMED_II_40,
) -> itb.Pump:
    # 400 µg/day at 2000 µg/mL = 0.2 mL/day = 200 000 nL/day: one 2 µL stroke every 14.4 min
    return itb.Pump(
        model,
        now=START,
        reservoir_ml=reservoir_ml,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=ug_per_day),
    )


def test_plan_refill_low_reservoir_moved_off_weekend_and_holiday() -> None:
    pump = _pump()
    before = pump.snapshot()
    # low alarm when usable <= 2 mL: after (40 - 2) / 0.2 = 190 days = 2026-07-14 08:00 (Tuesday);
    # minus 10 days = Saturday 2026-07-04 08:00 (Independence Day); Friday 07-03 is its observed
    # holiday; so Thursday 2026-07-02 at the 09:00 appointment.
    plan = plan_refill(pump, margin=timedelta(days=10), vial_ml=20.0)
    assert plan.candidates[0].event_at == datetime(2026, 7, 14, 8, 0)
    assert plan.deadline == datetime(2026, 7, 4, 8, 0)
    assert plan.date == datetime(2026, 7, 2, 9, 0)
    assert plan.constraint == "low_reservoir" and plan.on_time
    assert "low-reservoir alarm" in plan.reason and "Independence Day (observed)" in plan.reason
    # 178 days 1 h = 15 382 800 000 ms -> floor(/ 864 000 ms per stroke) = 17 804 strokes of 4 µg
    assert plan.tip_dose_ug == 17_804 * 4.0
    assert plan.expected_residual_ml == pytest.approx(40.0 - 17_804 * 0.002)
    assert plan.expected_residual_nl == 40_000_000 - 17_804 * 2_000
    assert (plan.volume_to_order_ml, plan.vials) == (
        40.0,
        2,
    )  # the whole reservoir, 2 × 20 mL vials
    assert plan.drug_to_order_ug == 80_000.0
    assert plan.alarms_before == ()
    assert pump.snapshot() == before  # planning never changes the pump


def test_plan_refill_margin_and_vials() -> None:
    pump = _pump()
    # 3 days before Tuesday 07-14 08:00 = Saturday 07-11 08:00 -> Friday 07-10 09:00
    plan = plan_refill(pump, margin=timedelta(days=3), vial_ml=15.0)
    assert plan.date == datetime(2026, 7, 10, 9, 0)
    assert (plan.volume_to_order_ml, plan.vials) == (45.0, 3)  # 40 mL in 15 mL vials
    assert plan_refill(pump, fill_ml=20.0).volume_to_order_ml == 20.0
    with pytest.raises(ValidationError) as err:
        plan_refill(pump, fill_ml=41.0)
    assert err.value.field == "fill_ml"
    with pytest.raises(ValidationError) as err:
        plan_refill(pump, vial_ml=0.0)
    assert err.value.field == "vial_ml"


def test_plan_refill_appointment_time_and_extra_closures() -> None:
    pump = _pump()
    open_every_day = ClinicCalendar(country=None, closed_weekdays=())
    # deadline Saturday 07-04 08:00 is before the 09:00 appointment: the day before
    assert plan_refill(pump, margin=timedelta(days=10), calendar=open_every_day).date == datetime(
        2026, 7, 3, 9, 0
    )
    early = ClinicCalendar(country=None, closed_weekdays=(), appointment_time=time(7, 30))
    assert plan_refill(pump, margin=timedelta(days=10), calendar=early).date == datetime(
        2026, 7, 4, 7, 30
    )
    closed = ClinicCalendar(
        country=None, closed_weekdays=(), extra_closed=[date(2026, 7, 3), datetime(2026, 7, 2)]
    )
    plan = plan_refill(pump, margin=timedelta(days=10), calendar=closed)
    assert plan.date == datetime(2026, 7, 1, 9, 0) and "extra_closed" in plan.reason


def test_plan_refill_drug_stability_decides() -> None:
    pump = _pump()
    # filled now + 90 days = Sunday 2026-04-05 08:00 -> Friday 04-03 09:00 (not a US holiday)
    plan = plan_refill(pump, stability=timedelta(days=90))
    assert (plan.constraint, plan.deadline, plan.date) == (
        "drug_stability",
        datetime(2026, 4, 5, 8, 0),
        datetime(2026, 4, 3, 9, 0),
    )
    assert [c.constraint for c in plan.candidates] == ["drug_stability", "low_reservoir", "eri"]
    # 88 days 1 h: floor(7 606 800 000 / 864 000) = 8 804 strokes of 4 µg
    assert plan.tip_dose_ug == 8_804 * 4.0
    # the fill date can be given
    plan = plan_refill(pump, stability=timedelta(days=90), filled_at=datetime(2025, 12, 8, 8, 0))
    assert plan.deadline == datetime(2026, 3, 8, 8, 0) and plan.date == datetime(2026, 3, 6, 9, 0)


def test_plan_refill_battery_eri_decides_without_delivery() -> None:
    pump = _pump(ug_per_day=0.0)  # nothing delivered: only the battery limits
    plan = plan_refill(pump)
    eri = pump.project(timedelta(days=3650), assume_refills=True).eri
    assert plan.constraint == "eri" and plan.deadline == eri
    assert plan.date <= eri and eri - plan.date < timedelta(days=5)
    assert ClinicCalendar().is_open(plan.date.date()) and plan.date.time() == time(9, 0)
    no_battery = itb.PumpModel(
        name="rig",
        reservoir_ml=20.0,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
    )
    with pytest.raises(ValidationError) as err:
        plan_refill(_pump(ug_per_day=0.0, reservoir_ml=20.0, model=no_battery))
    assert err.value.field == "pump"


def test_plan_refill_late_when_no_clinic_day_before_deadline() -> None:
    pump = _pump(reservoir_ml=1.5)  # already below the 2 mL alarm threshold
    plan = plan_refill(pump)
    assert plan.constraint == "low_reservoir" and not plan.on_time
    assert plan.date == datetime(2026, 1, 5, 9, 0)  # the next appointment
    assert "late" in plan.reason and "low_reservoir" in plan.alarms_before


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"country": "XX"}, "country"),
        ({"closed_weekdays": (0, 1, 2, 3, 4, 5, 6)}, "closed_weekdays"),
        ({"closed_weekdays": (7,)}, "closed_weekdays"),
        ({"extra_closed": ["2026-07-03"]}, "extra_closed"),
    ],
)
def test_clinic_calendar_errors(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ClinicCalendar(**kwargs)
    assert err.value.field == field


def test_clinic_calendar_default_closures() -> None:
    cal = ClinicCalendar()
    assert cal.closure(date(2026, 11, 26)) == "Thanksgiving Day"
    assert cal.closure(date(2026, 7, 11)) == "weekend"
    assert cal.is_open(date(2026, 7, 10))
