"""Regression tests of the clinic planner's input edges: windows outside the horizon, typed
errors for bad arguments, readings that contradict the patient record, fixed appointments on
closed days. Oracles: dates computed by hand in each docstring, and invariants (hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import itb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itb.clinical import ClinicCalendar, ClinicPatient, plan_clinic
from itb.clinical.calendar import CalendarProblem, solve_calendar

pytest.importorskip("ortools")

M40 = itb.models.SYNCHROMED_II_40
T0 = datetime(2026, 3, 2, 9, 0)  # a Monday
CAL = ClinicCalendar(country=None)  # weekends closed only
HEADER = (
    "id,model,interrogated,reservoir_ml,concentration_ug_per_ml,ug_per_day,battery_mah,"
    "implanted,active_alarms,last_refill,min_interval,stability,earliest,clinician,booked,"
    "fill_ml,vial_ml"
)


def read(**kw) -> itb.Pump:
    args = dict(
        now=T0, reservoir_ml=20.0, concentration_ug_per_ml=2000, program=itb.Continuous(400.0)
    )
    args.update(kw)
    return itb.Pump.from_reading(M40, **args)


# 1. windows outside the horizon


def test_cli_window_opening_after_the_horizon_books_nothing(tmp_path, capsys) -> None:
    """The trial's row: read Monday 2026-03-02, earliest 2026-04-01; with --days 14 the plan
    ends Sunday 2026-03-15, so the window opens after it: not overdue, not booked, not at risk
    (30 mL at 0.25 mL/day lasts into June)."""
    from itb.cli import main

    path = tmp_path / "early.csv"
    row = "X1,SYNCHROMED_II_40,2026-03-02T09:00,30.0,2000,500,,,,,,,2026-04-01,,,,20"
    path.write_text(HEADER + "\n" + row + "\n", encoding="utf-8")
    assert main(["clinic", "plan", str(path), "--days", "14", "--country", "none"]) == 0
    out = capsys.readouterr().out
    assert "— (none in" in out  # the date column (the reason is checked in the JSON below)
    assert "None" not in out and "inf" not in out.split("Refill calendar")[1]
    assert "at risk" not in out
    assert main(["clinic", "plan", str(path), "--days", "14", "--json"]) == 0
    report = __import__("json").loads(capsys.readouterr().out)
    v = report["visits"][0]
    assert v["date"] is None and not v["overdue"] and not v["fitted"]
    assert "nothing to book in the horizon" in v["reason"]
    assert report["at_risk"] == [] and report["overdue"] == []


def test_window_opening_after_the_horizon_in_python() -> None:
    """Same in Python, with a second patient inside the horizon who is still booked: its
    window opens Monday 09:00 and its ideal day is the horizon's last open day, Friday 03-13."""
    late = ClinicPatient("late", read(), earliest=date(2026, 4, 1))
    now = ClinicPatient("now", read(reservoir_ml=40.0))
    plan = plan_clinic([late, now], slots_per_day=1, calendar=CAL, days=14)
    v = plan["late"]
    assert v.date is None and not v.overdue and v.earliest_feasible is None
    assert v.hours_without_drug == 0 and v not in plan.at_risk
    assert "nothing to book in the horizon" in v.reason
    assert plan["now"].date == datetime(2026, 3, 13, 9, 0)


def test_window_opening_and_closing_after_the_horizon() -> None:
    """min_interval opens the window at 2026-03-30 (last refill 03-02 + 28 d) and 20 mL at
    0.2 mL/day lasts 100 days: both ends are after a 7-day horizon (last day 03-08)."""
    p = ClinicPatient("p", read(), last_refill=date(2026, 3, 2), min_interval=timedelta(days=28))
    v = plan_clinic([p], slots_per_day=1, calendar=CAL, days=7)["p"]
    assert v.date is None and not v.overdue and "nothing to book" in v.reason


def test_window_closing_before_the_first_day_is_overdue() -> None:
    """Read 03-02 with 1.5 mL (alarm since 02-27 14:00: deadline 02-24 14:00); planned from
    today = Monday 03-09: the window closes before day 0 and the patient is booked overdue on
    the first open day, 03-09."""
    pump = read(reservoir_ml=1.5, active_alarms={"low_reservoir": datetime(2026, 2, 27, 14)})
    plan = plan_clinic(
        [ClinicPatient("p", pump)], slots_per_day=1, calendar=CAL, days=10, today=date(2026, 3, 9)
    )
    v = plan["p"]
    assert v.overdue and v.date == datetime(2026, 3, 9, 9, 0) and v in plan.at_risk


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(-8, 30), st.integers(-8, 30), st.integers(0, 3)),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(0, 2), min_size=1, max_size=20),
)
def test_solver_windows_anywhere_never_raise(windows, slots) -> None:
    """Any window (opening after the horizon, closing before day 0, empty): no exception, and
    every booked free patient is on a day inside both its window and the horizon, with no day
    over its slots."""
    n = len(slots)
    rel = [a for a, _, _ in windows]
    dl = [b for _, b, _ in windows]
    ide = []
    for a, b, _ in windows:
        days_open = [d for d in range(max(a, 0), min(b, n - 1) + 1) if slots[d] > 0]
        ide.append(days_open[-1] if days_open else -1)
    sol = solve_calendar(CalendarProblem(rel, dl, ide, slots))
    used = [0] * n
    for i, d in enumerate(sol.day):
        if d >= 0:
            assert max(rel[i], 0) <= d <= min(dl[i], n - 1)
            used[d] += 1
        else:
            assert i in sol.unfitted
    assert all(u <= s for u, s in zip(used, slots))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.floats(0.3, 40.0),  # reservoir mL (0.2 mL/day)
            st.integers(-20, 60),  # earliest, days from the reading
            st.integers(0, 40),  # min_interval, days from the reading
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 40),  # days
    st.integers(-10, 30),  # today, days from the reading
    st.integers(1, 2),  # slots
)
def test_plan_windows_and_horizons_never_raise(patients, days, today_off, slots) -> None:
    """Random windows and horizons through plan_clinic: never an exception; every booked visit
    is on an open day inside the horizon, and a fitted one inside its window."""
    pts = [
        ClinicPatient(
            f"p{k}",
            read(reservoir_ml=ml),
            earliest=(T0 + timedelta(days=e)).date(),
            last_refill=T0.date(),
            min_interval=timedelta(days=mi),
        )
        for k, (ml, e, mi) in enumerate(patients)
    ]
    first = (T0 + timedelta(days=today_off)).date()
    plan = plan_clinic(pts, slots_per_day=slots, calendar=CAL, days=days, today=first)
    end = first + timedelta(days=days)
    for p, v in zip(pts, plan.visits):
        if v.date is None:
            continue
        assert first <= v.date.date() < end and CAL.is_open(v.date.date())
        if v.fitted:
            opens = max(
                T0,
                datetime.combine(p.earliest, datetime.min.time()),
                T0.replace(hour=0) + p.min_interval,
            )
            assert opens <= v.date <= v.deadline
    assert all(u <= c for u, c in zip(plan.visits_per_day, plan.capacity))


# 2. typed errors for the calendar and the capacities


def test_calendar_must_be_a_clinic_calendar_in_both_planners() -> None:
    """plan_refill refused a country code as the calendar; plan_clinic now says the same."""
    from itb.clinical import plan_refill

    for call in (
        lambda: plan_refill(read(), calendar="US"),
        lambda: plan_clinic([ClinicPatient("a", read())], slots_per_day=1, calendar="US"),
    ):
        with pytest.raises(itb.ValidationError, match="ClinicCalendar, got str") as err:
            call()
        assert err.value.field == "calendar"


@pytest.mark.parametrize("n", [True, False, 0, -1, 1.0, "2", None])
def test_clinician_slots_must_be_a_count(n) -> None:
    """A bool (or 0, a float, text) is not a number of visits: refused naming the clinician."""
    pt = ClinicPatient("a", read(), clinician="dr_lee")
    with pytest.raises(itb.ValidationError, match=r"allowed: an integer >= 1") as err:
        plan_clinic([pt], slots_per_day=1, calendar=CAL, clinician_slots={"dr_lee": n})
    assert err.value.field == "clinician_slots['dr_lee']" and "dr_lee" in str(err.value)


@pytest.mark.parametrize("n", [0, True, -2])
def test_slots_per_day_is_at_least_one(n) -> None:
    with pytest.raises(itb.ValidationError, match="allowed: an integer >= 1") as err:
        plan_clinic([ClinicPatient("a", read())], slots_per_day=n, calendar=CAL)
    assert err.value.field == "slots_per_day"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--capacity", "0"], "--capacity: '0': allowed 1 or more"),
        (["--clinician", "dr_lee=0"], "--clinician 'dr_lee=0': dr_lee's visits"),
    ],
)
def test_cli_zero_capacity_is_refused_with_the_range(args, said, capsys) -> None:
    from itb.cli import main

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    assert main(["clinic", "plan", str(root / "examples" / "clinic_patients.csv"), *args]) == 2
    err = capsys.readouterr().err
    assert said in err and "allowed 1 or more" in err


# 3. margin range


@pytest.mark.parametrize("days", [3651, 999_999])
def test_margin_beyond_ten_years_is_a_validation_error(days) -> None:
    """now − margin used to overflow the datetime range (OverflowError)."""
    from itb.clinical import plan_refill

    for call in (
        lambda: plan_refill(read(), margin=timedelta(days=days)),
        lambda: plan_clinic(
            [ClinicPatient("a", read())],
            slots_per_day=1,
            calendar=CAL,
            margin=timedelta(days=days),
        ),
    ):
        with pytest.raises(itb.ValidationError, match=r"allowed: PT0S to P3650D") as err:
            call()
        assert err.value.field == "margin"


def test_margin_of_ten_years_is_allowed() -> None:
    """At the bound: the low-reservoir alarm (read 03-02 09:00, 20 mL at 0.2 mL/day, alarm at
    2 mL: 90 days, 05-31 09:00) minus 3650 days is long past, so the refill is due now."""
    from itb.clinical import plan_refill

    plan = plan_refill(read(), margin=timedelta(days=3650), calendar=CAL)
    assert plan.deadline == datetime(2026, 5, 31, 9, 0) - timedelta(days=3650)
    assert plan.date == T0 and not plan.on_time


# 4. a last refill after the reading; one stability rule


def test_cli_last_refill_after_the_reading_names_line_and_column(tmp_path, capsys) -> None:
    """Read 2026-03-02 09:00, last refill 2026-03-05: refused like an implant date after it."""
    from itb.cli import main

    path = tmp_path / "late.csv"
    row = "X1,SYNCHROMED_II_40,2026-03-02T09:00,30.0,2000,500,,,,2026-03-05,,,,,,,20"
    path.write_text(HEADER + "\n" + row + "\n", encoding="utf-8")
    assert main(["clinic", "plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: column last_refill: 2026-03-05 is after the reading" in err
    assert "allowed: at or before the reading" in err


@pytest.mark.parametrize(
    ("last", "ok"),
    [
        (date(2026, 3, 2), True),  # the reading's day (a date has no time)
        (date(2026, 3, 3), False),
        (datetime(2026, 3, 2, 9, 0), True),  # the reading itself
        (datetime(2026, 3, 2, 9, 1), False),
    ],
)
def test_clinic_patient_last_refill_at_or_before_the_reading(last, ok) -> None:
    if ok:
        assert ClinicPatient("a", read(), last_refill=last).last_refill == last
        return
    with pytest.raises(itb.ValidationError, match="is after the reading") as err:
        ClinicPatient("a", read(), last_refill=last)
    assert err.value.field == "last_refill"


def test_plan_refill_filled_at_after_the_reading_is_refused() -> None:
    from itb.clinical import plan_refill

    with pytest.raises(itb.ValidationError, match="after the reading") as err:
        plan_refill(read(), stability=timedelta(days=30), filled_at=datetime(2026, 3, 5))
    assert err.value.field == "filled_at"
    # at the reading: the stability limit counts from it (03-02 09:00 + 30 d = 04-01 09:00)
    plan = plan_refill(read(), stability=timedelta(days=30), filled_at=T0, calendar=CAL)
    assert plan.constraint == "drug_stability" and plan.deadline == datetime(2026, 4, 1, 9, 0)


def test_stability_of_zero_is_refused_by_both() -> None:
    from itb.clinical import plan_refill

    for call in (
        lambda: plan_refill(read(), stability=timedelta(0)),
        lambda: ClinicPatient("a", read(), stability=timedelta(0)),
    ):
        with pytest.raises(itb.ValidationError, match="PT0S is zero") as err:
            call()
        assert err.value.field == "stability"


# 5. a fixed appointment on a closed day


def test_booked_on_a_saturday_is_refused_naming_patient_and_date() -> None:
    """2026-03-07 is a Saturday (03-02 is a Monday); 03-06 is the Friday before, open."""
    with pytest.raises(itb.ValidationError, match=r"2026-03-07 \(A07\) is a closed") as err:
        plan_clinic(
            [ClinicPatient("A07", read(), booked=date(2026, 3, 7))], slots_per_day=1, calendar=CAL
        )
    assert err.value.field == "patients[0].booked" and "weekend" in str(err.value)
    plan = plan_clinic(
        [ClinicPatient("A07", read(), booked=date(2026, 3, 6))], slots_per_day=1, calendar=CAL
    )
    assert plan["A07"].date == datetime(2026, 3, 6, 9, 0) and plan["A07"].fixed


def test_cli_booked_on_a_closed_day_names_line_and_column(tmp_path, capsys) -> None:
    """An extra closed day (--closed 2026-03-04, a Wednesday) counts as closed too."""
    from itb.cli import main

    path = tmp_path / "booked.csv"
    row = "X1,SYNCHROMED_II_40,2026-03-02T09:00,30.0,2000,500,,,,,,,,,2026-03-04,,20"
    path.write_text(HEADER + "\n" + row + "\n", encoding="utf-8")
    assert main(["clinic", "plan", str(path), "--closed", "2026-03-04", "--json"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: column booked: 2026-03-04 (X1) is a closed clinic day" in err
    assert main(["clinic", "plan", str(path), "--json"]) == 0
    report = __import__("json").loads(capsys.readouterr().out)
    assert report["visits"][0]["date"] == "2026-03-04 09:00"


# 7. plan.csv: alarms already sounding in <alarm>_since columns, as the forecast's


def test_plan_csv_puts_active_alarm_starts_in_since_columns(tmp_path) -> None:
    """One pump at ERI since 2026-01-10 (listed) and low since 02-27 14:00; one with 20 mL at
    0.2 mL/day, alarm at 2 mL: 90 days after the 03-02 09:00 reading, 05-31 09:00, to come.
    plan.csv and forecast.csv have the same <alarm>/<alarm>_since columns and values."""
    import csv

    from itb.cli import main

    rows = [
        "id,model,interrogated,reservoir_ml,concentration_ug_per_ml,ug_per_day,battery_mah,"
        "active_alarms",
        "old,SYNCHROMED_II_40,2026-03-02T09:00,1.5,2000,400,25,"
        "eri@2026-01-10T00:00;low_reservoir@2026-02-27T14:00",
        "new,SYNCHROMED_II_40,2026-03-02T09:00,20,2000,400,,",
    ]
    src = tmp_path / "p.csv"
    src.write_text("\n".join(rows) + "\n")
    plan_csv, fc_csv = tmp_path / "plan.csv", tmp_path / "forecast.csv"
    assert main(["clinic", "plan", str(src), "--country", "none", "--out", str(plan_csv)]) == 0
    assert main(["clinic", "forecast", str(src), "--out", str(fc_csv)]) == 0
    plan = {r["patient"]: r for r in csv.DictReader(plan_csv.open())}
    fc = {r["patient"]: r for r in csv.DictReader(fc_csv.open())}
    assert plan["old"]["eri_since"] == "2026-01-10 00:00" and plan["old"]["eri"] == ""
    assert plan["old"]["low_reservoir_since"] == "2026-02-27 14:00"
    assert plan["old"]["low_reservoir"] == ""
    assert plan["new"]["low_reservoir"] == "2026-05-31 09:00"
    assert plan["new"]["low_reservoir_since"] == ""
    for pid in ("old", "new"):
        # (eos of "new" is in 2029: past the forecast's 365-day horizon, so not compared)
        for col in ("low_reservoir", "low_reservoir_since", "eri_since", "eos_since"):
            assert plan[pid][col] == fc[pid][col], (pid, col)


def test_a_patient_who_runs_dry_before_a_window_after_the_horizon_is_flagged_in_strict_json(
    tmp_path, capsys
) -> None:
    """3 mL at 0.2 mL/day (400 µg/day at 2000 µg/mL) runs dry 15 days after 2026-03-02 09:00,
    on 2026-03-17 09:00, inside a 21-day plan (last day 03-22); the earliest date 2026-04-01 is
    after it. No visit in the horizon: at risk with unbounded hours without drug — ``inf`` in
    Python, ``null`` in the JSON (strict parsers have no Infinity), and the reason says why."""
    import json

    from itb.cli import main

    p = ClinicPatient("p", read(reservoir_ml=3.0), earliest=date(2026, 4, 1))
    plan = plan_clinic([p], slots_per_day=1, calendar=CAL, days=21)
    v = plan["p"]
    assert v.date is None and v.drug_stops == datetime(2026, 3, 17, 9, 0)
    assert v.hours_without_drug == float("inf") and plan.at_risk == [v]
    assert "delivery stops 2026-03-17 09:00, inside the horizon" in v.reason
    assert plan.rows()[0]["hours_without_drug"] is None
    path = tmp_path / "dry.csv"
    row = "p,SYNCHROMED_II_40,2026-03-02T09:00,3.0,2000,400,,,,,,,2026-04-01,,,,20"
    path.write_text(HEADER + "\n" + row + "\n", encoding="utf-8")
    assert main(["clinic", "plan", str(path), "--days", "21", "--country", "none", "--json"]) == 0

    def strict(token: str) -> None:
        raise AssertionError(f"non-standard JSON number {token}")

    report = json.loads(capsys.readouterr().out, parse_constant=strict)
    assert report["at_risk"] == [{"patient": "p", "hours_without_drug": None}]
    assert report["visits"][0]["hours_without_drug"] is None
