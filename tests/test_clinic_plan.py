"""The whole clinic end to end: a pump at ERI, one already low, one past EOS through
projection, planner, calendar and risk report."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import itb
import pytest
from itb.clinical import ClinicCalendar, ClinicPatient, plan_clinic

pytest.importorskip("ortools")

M40 = itb.models.SYNCHROMED_II_40
T0 = datetime(2026, 3, 2, 9, 0)  # a Monday
CAL = ClinicCalendar(country=None)  # weekends closed only


def read(**kw) -> itb.Pump:
    args = dict(
        now=T0, reservoir_ml=20.0, concentration_ug_per_ml=2000, program=itb.Continuous(400.0)
    )
    args.update(kw)
    return itb.Pump.from_reading(M40, **args)


def test_three_pumps_end_to_end() -> None:
    eri = read(battery_mah=25.0, active_alarms={"eri": datetime(2026, 1, 10)})
    low = read(reservoir_ml=1.5, active_alarms={"low_reservoir": datetime(2026, 2, 27, 14)})
    dead = read(battery_mah=4.0)
    # projection: the present included
    assert eri.project().since("eri") == datetime(2026, 1, 10)
    assert low.project().since("low_reservoir") == datetime(2026, 2, 27, 14)
    assert dead.project().since("eos") == T0 and dead.project().next_stroke is None
    # planner
    p_eri = itb.clinical.plan_refill(eri, calendar=CAL)
    assert p_eri.constraint == "eos" and p_eri.deadline == eri.project().eos - timedelta(days=3)
    with pytest.raises(itb.EndOfServiceError):
        itb.clinical.plan_refill(dead, calendar=CAL)
    # calendar and report: one slot a day
    plan = plan_clinic(
        [
            ClinicPatient("eri", eri, vial_ml=20.0),
            ClinicPatient("low", low),
            ClinicPatient("dead", dead),
        ],
        slots_per_day=1,
        calendar=CAL,
    )
    assert plan["dead"].date == T0 and plan["dead"].binding == "stopped"
    assert plan["dead"].drug_stops == T0 and plan["dead"].hours_without_drug == 0
    # the low pump's deadline (alarm − 3 days) is already past: listed, never dropped
    v = plan["low"]
    assert not v.fitted and "deadline 2026-02-27" in v.reason
    assert v.earliest_feasible == datetime(2026, 3, 3, 9, 0)  # Monday's slot is taken
    # ... and booked there: overdue, at risk, never only "not fitted"
    assert v.overdue and v.date == v.earliest_feasible and v.slot == 0
    assert v.slack == v.deadline - v.date < timedelta(0)
    assert plan.overdue == [v] and v in plan.at_risk and v not in plan.unfitted
    # empty at 1.5 mL / 0.2 mL/day minus one stroke's rounding: 7.5 days after the reading
    assert v.drug_stops == low.project().reservoir_empty
    assert v.drug_stops - T0 == timedelta(days=7, hours=12)
    assert v.hours_without_drug == 0
    e = plan["eri"]
    assert e.fitted and e.date <= e.deadline and e.vials == 2 and e.volume_to_order_ml == 40.0
    assert plan.visits_per_day[0] == 1 and plan.capacity[5] == 0  # Saturday closed


def test_a_late_visit_is_at_risk_and_flags_the_restart() -> None:
    """A pump empty in 2 days and a clinic closed for a week: the visit comes after delivery
    stops; hours without drug = visit − empty; the restart resumes the full dose."""
    pump = read(reservoir_ml=0.4)  # 0.4 mL at 0.2 mL/day: empty in 2 days
    closed = ClinicCalendar(
        country=None, extra_closed=tuple(date(2026, 3, d) for d in range(2, 10))
    )
    plan = plan_clinic([ClinicPatient("p", pump)], slots_per_day=2, calendar=closed)
    v = plan["p"]
    empty = pump.project().reservoir_empty
    assert v.drug_stops == empty == T0 + timedelta(days=2)
    assert not v.fitted and v.earliest_feasible == datetime(2026, 3, 10, 9, 0)
    assert v.hours_without_drug == (datetime(2026, 3, 10, 9) - empty) / timedelta(hours=1) == 144
    assert v.restart_at_full_dose and plan.at_risk == [v]
    assert "24-72 h" in plan.context


def test_capacity_moves_the_fewest_visits() -> None:
    """Three patients due the same Friday, two slots a day: one moves to Thursday."""
    pumps = [read(reservoir_ml=2.0 + 0.2 * 4 + x) for x in (0.0, 0.01, 0.02)]
    plan = plan_clinic(
        [ClinicPatient(f"p{i}", p) for i, p in enumerate(pumps)], slots_per_day=2, calendar=CAL
    )
    days = sorted(v.date for v in plan.visits)
    assert all(v.fitted for v in plan.visits) and plan.moved == 1
    assert days[0] == days[1] - timedelta(days=1) == days[2] - timedelta(days=1)


def test_bad_patients_name_the_entry() -> None:
    with pytest.raises(itb.ValidationError) as err:
        plan_clinic([ClinicPatient("a", read()), ClinicPatient("a", read())], slots_per_day=1)
    assert err.value.field == "patients[1].id"
    with pytest.raises(itb.ValidationError) as err:
        plan_clinic([ClinicPatient("a", read())], slots_per_day=-1)
    assert err.value.field == "slots_per_day"


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_cli_clinic_plan(tmp_path) -> None:
    from itb.cli import main

    out, png = tmp_path / "plan.json", tmp_path / "cal.png"
    csv_path = ROOT / "examples" / "clinic_patients.csv"
    args = ["clinic", "plan", str(csv_path), "--capacity", "2", "--out", str(out)]
    assert main([*args, "--plot", str(png), "--country", "US"]) == 0
    report = __import__("json").loads(out.read_text())
    assert {v["patient"] for v in report["visits"]} == {f"A0{i}" for i in range(1, 9)}
    assert png.stat().st_size > 10_000
    assert main(["clinic", "plan", str(csv_path), "--out", str(tmp_path / "x.txt")]) == 2


def test_patients_csv_errors_name_line_and_column(tmp_path) -> None:
    from itb.cli import main
    from itb.clinical.patients import PatientFileError, read_patients_csv

    text = (ROOT / "examples" / "clinic_patients.csv").read_text().splitlines()
    bad = text[:3] + [text[3].replace("500,120", "500,abc")]
    f = tmp_path / "bad.csv"
    f.write_text("\n".join(bad) + "\n")
    with pytest.raises(PatientFileError) as err:
        read_patients_csv(f)
    assert err.value.field == f"{f}:4:ug_per_day"
    f.write_text("\n".join(text[:2] + [text[2].replace("SYNCHROMED_II_40", "NOPE", 1)]) + "\n")
    with pytest.raises(PatientFileError) as err:
        read_patients_csv(f)
    assert err.value.field == f"{f}:3:model"
    assert main(["clinic", "plan", str(f)]) == 2


def test_guide_code_blocks_run(monkeypatch) -> None:
    """Every python block of docs/guide/clinic.md runs as-is (from the repository root)."""
    import re

    monkeypatch.chdir(ROOT)
    text = (ROOT / "docs" / "guide" / "clinic.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "clinic.md", "exec"), {})


def test_patients_csv_flex_programs(tmp_path) -> None:
    from datetime import time, timedelta

    from itb.clinical.patients import PatientFileError, read_patients_csv
    from itb.program import Flex

    patients = {p.id: p for p in read_patients_csv(ROOT / "examples" / "clinic_patients.csv")}
    assert patients["A08"].pump.program == Flex(
        period="day", steps=[(time(0), 150.0), (time(7), 250.0), (time(20), 150.0)]
    )
    text = (ROOT / "examples" / "clinic_patients.csv").read_text().splitlines()
    row = text[1].split(",")
    f = tmp_path / "p.csv"
    row[5] = "mon 00:00=300; sat 00:00=400"
    f.write_text("\n".join([text[0], ",".join(row)]) + "\n")
    program = read_patients_csv(f)[0].pump.program
    assert program == Flex(period="week", steps=[(timedelta(0), 300.0), (timedelta(days=5), 400.0)])
    # Monday to Friday at 300, the weekend at 400 µg/day
    assert program.mean_ug_per_day == pytest.approx((5 * 300 + 2 * 400) / 7)
    for bad, why in (
        ("00:00=150;07:00=x", "step '07:00=x'"),
        ("07:00=150", "first step"),
        ("00:00=150;mon 07:00=3", "mixes day"),
        ("00:00=150;25:00=3", "hours 0 to 23"),
        ("00:00=-5", "negative"),
        ("00:00", "allowed"),
    ):
        row[5] = bad
        f.write_text("\n".join([text[0], ",".join(row)]) + "\n")
        with pytest.raises(PatientFileError, match=why) as err:
            read_patients_csv(f)
        assert err.value.field == f"{f}:2:ug_per_day", bad


def test_three_pumps_end_to_end_through_the_command_line(tmp_path) -> None:
    """The same three pumps as read by a programmer, as a clinic's CSV, through `itb clinic
    forecast` (projection: what sounds since when) and `itb clinic plan` (planner, calendar,
    report), one visit a day, weekends only closed. By hand: the dead pump (4 mAh, past EOS)
    stopped at the reading and takes Monday's slot at once; the low pump's deadline (already
    below the threshold: the reading − 3 days) is past, so it is listed with Tuesday's slot and
    empties 7.5 days after the reading (1.5 mL at 0.2 mL/day); the pump at ERI is booked before EOS − 3 days
    with 40 mL in two 20 mL vials."""
    import json

    from itb.cli import main

    rows = [
        "id,model,interrogated,reservoir_ml,concentration_ug_per_ml,ug_per_day,battery_mah,"
        "active_alarms,vial_ml",
        "eri,SYNCHROMED_II_40,2026-03-02T09:00,20,2000,400,25,eri@2026-01-10T00:00,20",
        "low,SYNCHROMED_II_40,2026-03-02T09:00,1.5,2000,400,,low_reservoir@2026-02-27T14:00,",
        "dead,SYNCHROMED_II_40,2026-03-02T09:00,20,2000,400,4,,",
    ]
    csv_path = tmp_path / "three.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    forecast, out = tmp_path / "forecast.json", tmp_path / "plan.json"
    assert main(["clinic", "forecast", str(csv_path), "--out", str(forecast)]) == 0
    seen = {r["patient"]: r for r in json.loads(forecast.read_text())["pumps"]}
    assert seen["eri"]["eri_since"] == "2026-01-10 00:00" and seen["eri"]["eri"] is None
    assert seen["low"]["low_reservoir_since"] == "2026-02-27 14:00"
    assert seen["low"]["reservoir_empty"] == "2026-03-09 21:00"
    assert seen["dead"]["eos_since"] == "2026-03-02 09:00"
    args = ["clinic", "plan", str(csv_path), "--capacity", "1", "--country", "none"]
    assert main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    v = {r["patient"]: r for r in report["visits"]}
    assert v["dead"]["date"] == "2026-03-02 09:00" and v["dead"]["binding"] == "stopped"
    assert v["dead"]["drug_stops"] == "2026-03-02 09:00" and v["dead"]["hours_without_drug"] == 0
    assert v["dead"]["vials"] is None  # nothing to refill: a replacement
    assert not v["low"]["fitted"] and "deadline 2026-02-27 09:00" in v["low"]["reason"]
    # overdue (an empty window): booked all the same at the first free slot, and at risk
    assert v["low"]["overdue"] and v["low"]["date"] == "2026-03-03 09:00"
    assert v["low"]["earliest_feasible"] == "2026-03-03 09:00"
    assert v["low"]["drug_stops"] == "2026-03-09 21:00" and v["low"]["hours_without_drug"] == 0
    assert v["eri"]["fitted"] and v["eri"]["binding"] == "eos"
    # sounding since: in eri_since, as the forecast's files (the projected eri: none to come)
    assert v["eri"]["eri_since"] == "2026-01-10 00:00" and v["eri"]["eri"] is None
    assert (
        v["low"]["low_reservoir_since"] == "2026-02-27 14:00" and v["low"]["low_reservoir"] is None
    )
    assert v["eri"]["date"] <= v["eri"]["deadline"]
    assert (v["eri"]["vials"], v["eri"]["volume_to_order_ml"]) == (2, 40.0)
    assert report["unfitted"] == [] and report["overdue"] == ["low"]
    assert report["at_risk"] == [{"patient": "low", "hours_without_drug": 0}]
    assert "24-72 h" in report["context"]


def test_an_overdue_patient_is_booked_at_the_earliest_open_slot() -> None:
    """A pump with 0.4 mL left (empty in 2 days at 0.2 mL/day; the low-reservoir alarm already
    sounding) has a deadline before its window opens. It is booked at the first open day with
    a free slot (by hand: the reading's Monday is past 09:00, so Tuesday), listed as overdue
    and at risk; with the clinic closed until after it runs dry, the visit is still booked and
    the hours without drug are counted from the empty reservoir to that visit."""
    t = datetime(2026, 3, 2, 11, 0)  # Monday, after the appointment time
    pump = read(now=t, reservoir_ml=0.4)
    plan = plan_clinic([ClinicPatient("A05", pump)], slots_per_day=8, calendar=CAL)
    v = plan["A05"]
    assert v.deadline < t and v.overdue and v.date == datetime(2026, 3, 3, 9, 0)
    assert v.drug_stops == t + timedelta(days=2) and v.hours_without_drug == 0
    assert plan.at_risk == [v] and plan.unfitted == [] and plan.visits_per_day[1] == 1
    assert "overdue" in v.reason and "booked at the earliest free slot" in v.reason
    closed = ClinicCalendar(country=None, extra_closed=(date(2026, 3, 3), date(2026, 3, 4)))
    late = plan_clinic([ClinicPatient("A05", pump)], slots_per_day=1, calendar=closed)["A05"]
    assert late.overdue and late.date == datetime(2026, 3, 5, 9, 0)
    assert late.hours_without_drug == (datetime(2026, 3, 5, 9) - v.drug_stops) / timedelta(hours=1)
    assert late.hours_without_drug == 22 and late.restart_at_full_dose


def test_overdue_patients_take_free_slots_only_after_the_windows() -> None:
    """One slot a day. A patient whose window closes Monday keeps Monday (booking inside the
    windows is the solver's, unchanged); the overdue patients take the next free days, the
    first to run dry first (1.0 mL before 1.5 mL), whatever their input order."""
    due = read(reservoir_ml=2.7)  # alarm in 3.5 days: deadline (− 3 days) Monday 21:00
    old = read(reservoir_ml=1.0, active_alarms={"low_reservoir": datetime(2026, 2, 20, 14)})
    new = read(reservoir_ml=1.5, active_alarms={"low_reservoir": datetime(2026, 2, 27, 14)})
    pts = [ClinicPatient("new", new), ClinicPatient("old", old), ClinicPatient("due", due)]
    plan = plan_clinic(pts, slots_per_day=1, calendar=CAL)
    assert plan["due"].fitted and plan["due"].date == T0
    assert plan["old"].overdue and plan["old"].date == datetime(2026, 3, 3, 9, 0)
    assert plan["new"].overdue and plan["new"].date == datetime(2026, 3, 4, 9, 0)
    assert plan.overdue == [plan["new"], plan["old"]]
    assert {v.patient for v in plan.at_risk} == {"new", "old"}


def test_examples_overdue_patients_are_booked_and_at_risk(tmp_path) -> None:
    """The example clinic: A02 (alarm sounding since 27 Feb) and A05 (0.4 mL left) have a
    deadline before their window opens; with room in the clinic both are booked on the first
    open day after the reading and listed at risk, with 8 slots or 2."""
    import json
    from pathlib import Path

    from itb.cli import main

    csv = Path(__file__).resolve().parents[1] / "examples" / "clinic_patients.csv"
    for cap in ("8", "2"):
        out = tmp_path / f"plan{cap}.json"
        assert main(["clinic", "plan", str(csv), "--capacity", cap, "--out", str(out)]) == 0
        report = json.loads(out.read_text())
        v = {r["patient"]: r for r in report["visits"]}
        risky = {r["patient"] for r in report["at_risk"]}
        for pid in ("A02", "A05"):
            assert v[pid]["overdue"] and v[pid]["date"] is not None, (cap, pid)
            assert v[pid]["date"] == v[pid]["earliest_feasible"] and pid in risky
            assert pid not in report["unfitted"]
        assert v["A05"]["date"] == "2026-03-03 09:00"  # Monday is past 09:00 at every reading


@pytest.mark.parametrize(
    ("cell", "column", "why"),
    [
        ("28", "min_interval", "'28'; allowed: a duration (P28D, 28d, 12h)"),
        ("2026-13-01", "booked", "'2026-13-01'; allowed: an ISO 8601 date (2026-03-02)"),
        ("lots", "vial_ml", "'lots'; allowed: a number"),
    ],
)
def test_patients_csv_error_names_the_place_once(tmp_path, cell, column, why) -> None:
    """A bad optional cell: FILE:LINE, the column and the value, each said once."""
    from itb.clinical.patients import PatientFileError, read_patients_csv

    f = tmp_path / "bad.csv"
    head = "id,model,interrogated,reservoir_ml,concentration_ug_per_ml,ug_per_day"
    f.write_text(f"{head},{column}\nA01,SYNCHROMED_II_40,2026-03-02T09:00,20,2000,400,{cell}\n")
    with pytest.raises(PatientFileError) as err:
        read_patients_csv(f)
    assert err.value.field == f"{f}:2:{column}"
    assert str(err.value) == f"{f}:2: column {column}: {why}"


def test_plan_errors_name_file_line_and_column(tmp_path, capsys) -> None:
    """Patients read from a file: the planner's errors (a duplicate id, a clinician without
    slots, a booked date past the horizon) name FILE:LINE:COLUMN, lines counted from the header
    as line 1; --days outside 1 to 3660 is refused as such, exit 2."""
    from itb.cli import main
    from itb.clinical.patients import read_patients_csv

    text = (ROOT / "examples" / "clinic_patients.csv").read_text().splitlines()
    f = tmp_path / "dup.csv"
    f.write_text("\n".join([*text[:3], text[1]]) + "\n")  # A01 again on line 4
    with pytest.raises(itb.errors.ValidationError) as err:
        plan_clinic(read_patients_csv(f), slots_per_day=2, calendar=CAL)
    assert err.value.field == f"{f}:4:id"
    assert str(err.value).startswith(f"{f}:4: column id: 'A01' is used twice (first at {f}:2)")
    ex = ROOT / "examples" / "clinic_patients.csv"
    for extra, where in (
        (["--clinician", "dr_nobody=1"], f"{ex}:2: column clinician: 'dr_lee'"),
        (["--days", "10"], f"{ex}:8: column booked: 2026-04-02; allowed: 2026-03-02 to"),
        (["--days", "0"], "--days: '0' is not between 1 and 3660"),
        (["--days", "P30D"], "--days: 'P30D' is not a whole number of days; allowed 1 to 3660"),
    ):
        capsys.readouterr()
        assert main(["clinic", "plan", str(ex), *extra]) == 2
        assert where in capsys.readouterr().err, extra
    f.write_text("\n".join([text[0], text[1].replace(",dr_lee,,,20", ",dr_lee,,50,20")]) + "\n")
    with pytest.raises(itb.errors.ValidationError) as err:
        plan_clinic(read_patients_csv(f), slots_per_day=2, calendar=CAL)
    assert err.value.field == f"{f}:2:fill_ml" and str(err.value).startswith(
        f"{f}:2: column fill_ml: "
    )
    assert "fill_ml: fill_ml" not in str(err.value) and "40 mL" in str(err.value)
    # patients built in code keep their index
    pts = read_patients_csv(ex)
    bare = [dataclasses.replace(p, source=None) for p in pts[:2]]
    with pytest.raises(itb.errors.ValidationError) as err:
        plan_clinic([*bare, bare[0]], slots_per_day=2, calendar=CAL)
    assert err.value.field == "patients[2].id"


def test_patients_csv_row_with_an_extra_cell_names_the_line(tmp_path) -> None:
    """A row with more cells than the header (…,20,extra) is refused naming FILE:LINE and the
    cell; trailing empty cells (a spreadsheet's export) are not data and pass."""
    from itb.cli import main
    from itb.clinical.patients import PatientFileError, read_patients_csv

    text = (ROOT / "examples" / "clinic_patients.csv").read_text().splitlines()
    f = tmp_path / "extra.csv"
    f.write_text("\n".join([text[0], text[1], text[2] + ",extra"]) + "\n")
    with pytest.raises(PatientFileError) as err:
        read_patients_csv(f)
    assert err.value.field == f"{f}:3"
    assert str(err.value) == (
        f"{f}:3: 18 cells, the header has 17; extra cell 'extra'; allowed: one per column"
    )
    assert main(["clinic", "plan", str(f)]) == 2
    f.write_text("\n".join([text[0], text[1] + ",,"]) + "\n")
    assert [p.id for p in read_patients_csv(f)] == ["A01"]
