"""Flex step starts: one reader (``itb._time.step_start_ms``) behind every surface, one normal
form of ``itb.Flex`` (equal programs compare equal, whatever form their steps were given in), and
round trips through the scenario dict. Oracles: hand-written clock arithmetic and texts written
by the test itself, not by the code under test."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import itb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb import _time
from itb import scenario as sc
from itb.program import program_from_dict
from itb.testing import strategies as its

ROOT = Path(__file__).resolve().parents[1]
DAY = 24 * 3600 * 1000  # written out: the oracle does not read the core's table
NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _hand_text(h: int, m: int, s: int, ms: int) -> str:
    text = f"{h:02d}:{m:02d}"
    if s or ms:
        text += f":{s:02d}" + (f".{ms:03d}" if ms else "")
    return text


@settings(max_examples=200, deadline=None)
@given(
    h=st.integers(0, 23),
    m=st.integers(0, 59),
    s=st.integers(0, 59),
    ms=st.integers(0, 999),
    day=st.integers(0, 6),
)
def test_step_start_text_is_clock_arithmetic(h: int, m: int, s: int, ms: int, day: int) -> None:
    want = ((h * 60 + m) * 60 + s) * 1000 + ms
    text = _hand_text(h, m, s, ms)
    assert _time.step_start_ms(text, "day", "f") == want
    assert _time.step_start_text(want, "day") == text
    week = f"{NAMES[day]} {text}"
    assert _time.step_start_ms(week, "week", "f") == day * DAY + want
    assert _time.step_start_text(day * DAY + want, "week") == week
    # every form of the same start is the same offset, and the same normal form
    at = time(h, m, s, ms * 1000)
    assert _time.step_start_ms(at, "day", "f") == want
    assert _time.step_start_ms(timedelta(milliseconds=want), "day", "f") == want
    assert _time.step_start_ms((day, at), "week", "f") == day * DAY + want
    assert _time.step_start(want, "day") == at
    assert _time.step_start(day * DAY + want, "week") == (day, at)


def test_weekday_names() -> None:
    for i, name in enumerate(NAMES):
        full = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][i]
        for spelled in (name, name.upper(), full, full.lower()):
            assert _time.step_start_ms(f"{spelled} 01:00", "week", "f") == i * DAY + 3_600_000
    for bad in ("mo", "mond", "mondxyz", "lun"):
        with pytest.raises(itb.ValidationError, match=r"is not a weekday \(allowed: mon, tue"):
            _time.step_start_ms(f"{bad} 08:00", "week", "steps[0]")


def test_flex_equal_whatever_the_form() -> None:
    by_text = itb.Flex("day", [("00:00", 300), ("08:00", 500.0), ("22:00:30.5", 300.0)])
    by_time = itb.Flex("day", [(time(0), 300.0), (time(8), 500), (time(22, 0, 30, 500_000), 300)])
    by_delta = itb.Flex(
        "day",
        [
            (timedelta(0), 300.0),
            (timedelta(hours=8), 500.0),
            (timedelta(hours=22, seconds=30.5), 300.0),
        ],
    )
    assert by_text == by_time == by_delta and hash(by_text) == hash(by_time) == hash(by_delta)
    assert by_text.steps == ((time(0), 300.0), (time(8), 500.0), (time(22, 0, 30, 500_000), 300.0))
    week = itb.Flex("week", [("mon 00:00", 200.0), ("Saturday 07:30", 800.0)])
    assert week == itb.Flex("week", [((0, time(0)), 200), ((5, time(7, 30)), 800)])
    assert week == itb.Flex("week", [(timedelta(0), 200), (timedelta(days=5, hours=7.5), 800)])
    assert week.steps == (((0, time(0)), 200.0), ((5, time(7, 30)), 800.0))
    # different programs stay different
    assert by_text != itb.Flex("day", [("00:00", 300), ("08:01", 500.0), ("22:00:30.5", 300.0)])
    assert itb.Flex("day", [("00:00", 400)]) != itb.Continuous(400)
    # a dose is kept as the pump runs it: whole ng/day (half-even from the shortest decimal)
    assert (
        itb.Continuous(100.0004) == itb.Continuous(100.0)
        and itb.Continuous(400).ug_per_day == 400.0
    )
    assert itb.Flex("day", [("00:00", 1.0005)]).steps == ((time(0), 1.0),)
    assert itb.Flex("day", [("00:00", 1.0015)]).steps == ((time(0), 1.002),)


@settings(max_examples=150, deadline=None)
@given(its.programs(itb.models.SYNCHROMED_II_40, 2000))
def test_programs_round_trip_through_the_scenario_dict(program: itb.Program) -> None:
    data = program.to_dict()
    assert program_from_dict(data) == program
    assert program_from_dict(json.loads(json.dumps(data))) == program
    # the scenario file's program table builds the same program
    spec = sc.from_dict(
        {
            "pump": {
                "model": "SYNCHROMED_II_40",
                "start": "2026-01-05T08:00:00",
                "reservoir_ml": 40.0,
                "concentration_ug_per_ml": 2000,
                "program": data,
            }
        }
    )
    assert spec.pump().program == program


@settings(max_examples=100, deadline=None)
@given(dose_ng=st.integers(1, 10_000_000), extra=st.floats(0, 0.000_49))
def test_sub_ng_doses_round_trip(dose_ng: int, extra: float) -> None:
    # a dose given finer than 1 ng/day is the whole-ng dose the pump runs
    program = itb.Flex("day", [("00:00", dose_ng / 1000 + extra)])
    assert program_from_dict(program.to_dict()) == program
    assert program.exact()[2] == [(0, dose_ng)]


# the same bad start through every surface gives the same reason, naming where it is
BAD = [
    ("25:00", "day", "'25:00': hours 0 to 23, minutes and seconds 0 to 59"),
    ("08:60", "day", "'08:60': hours 0 to 23, minutes and seconds 0 to 59"),
    ("8h", "day", "'8h' is not a step start"),
    ("mon 08:00", "day", "'mon 08:00' names a weekday; a day period takes \"HH:MM\""),
    ("08:00", "week", "'08:00': a week period takes \"mon HH:MM\""),
    ("mnd 08:00", "week", "'mnd' is not a weekday (allowed: mon, tue, wed, thu, fri, sat, sun)"),
]


@pytest.mark.parametrize("bad, period, reason", BAD)
def test_every_surface_reads_a_step_start_alike(
    bad: str, period: str, reason: str, tmp_path: Path
) -> None:
    first = "00:00" if period == "day" else "mon 00:00"
    with pytest.raises(itb.ValidationError) as err:
        itb.Flex(period, [(first, 1.0), (bad, 2.0)])
    assert str(err.value).startswith(f"steps[1].offset: {reason}")
    assert err.value.field == "steps[1].offset"

    with pytest.raises(itb.ValidationError) as err:
        program_from_dict({"kind": "flex", "period": period, "steps": [[first, 1], [bad, 2]]})
    assert reason in str(err.value) and err.value.field == "steps[1].offset"

    toml = (
        '[pump]\nmodel = "SYNCHROMED_II_40"\nstart = 2026-01-05T08:00:00\nreservoir_ml = 40.0\n'
        "concentration_ug_per_ml = 2000\n"
        f'program = {{ kind = "flex", period = "{period}", steps = [["{first}", 1.0], ["{bad}", 2.0]] }}\n'
    )
    with pytest.raises(sc.ScenarioError) as info:
        sc.loads(toml, source="s.toml").pump()
    issue = info.value.issues[0]
    assert reason in issue.message, issue.message
    assert (issue.entry, issue.line) == ("pump", 6) and issue.field.startswith("program.steps[1]")

    from itb.clinical.patients import PatientFileError, read_patients_csv

    text = (ROOT / "examples" / "clinic_patients.csv").read_text().splitlines()
    row = text[1].split(",")
    cells = f"{first}=1;{bad}=2"
    row[text[0].split(",").index("ug_per_day")] = cells
    f = tmp_path / "p.csv"
    f.write_text("\n".join([text[0], ",".join(row)]) + "\n")
    if bad[:1].isalpha() != first[:1].isalpha():
        reason = "mixes day (HH:MM) and week (ddd HH:MM) steps"  # the CSV reads the mix first
    with pytest.raises(PatientFileError) as perr:
        read_patients_csv(f)
    assert reason in str(perr.value) and str(perr.value).startswith(f"{f}:2: column ug_per_day")


def test_time_of_day_option_uses_the_same_reader(capsys: pytest.CaptureFixture[str]) -> None:
    assert _time.time_of_day("09:30") == time(9, 30)
    assert _time.time_of_day(" 23:59:59.5 ") == time(23, 59, 59, 500_000)
    for bad, reason in (
        ("24:00", "hours 0 to 23"),
        ("mon 09:00", "names a weekday"),
        ("9h", "is not a step start"),
    ):
        with pytest.raises(_time.ClockTextError, match=reason):
            _time.time_of_day(bad)
    from itb.cli import main

    scenario = str(ROOT / "examples" / "adult_sci_2000.toml")
    assert main(["plan-refill", scenario, "--appointment", "24:00"]) == 2
    assert "'24:00': hours 0 to 23" in capsys.readouterr().err


def test_no_other_module_parses_clock_text() -> None:
    """Step starts and times of day are read only by ``itb._time``; weekday names are written
    there only."""
    found = []
    patterns = [
        r"strptime\(",
        r"\b(date)?time\.fromisoformat\(",  # date-time and time-of-day text
        r"\\d\{1,2\}\):",  # an HH:MM regular expression
        r"\(\s*\"mon\",\s*\"tue\"",  # a weekday tuple
    ]
    for path in sorted((ROOT / "python" / "itb").rglob("*.py")):
        if path.name == "_time.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pat in patterns:
                if re.search(pat, line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []


def test_one_date_time_reader() -> None:
    assert _time.parse_instant("2026-01-05T08:00") == datetime(2026, 1, 5, 8, 0)
    assert _time.parse_instant(" 2026-01-05 ") == datetime(2026, 1, 5)
    assert _time.parse_instant("2026-01-05T08:00:00.250") == datetime(2026, 1, 5, 8, 0, 0, 250_000)
    for bad, reason in (
        ("2026-01-05T08:00+01:00", "has a UTC offset; the pump clock is naive local time"),
        ("2026-13-01", "is not a date-time"),
        ("08:00", "is not a date-time"),
    ):
        with pytest.raises(_time.ClockTextError, match=re.escape(reason)):
            _time.parse_instant(bad)
    # a scenario file and a device log say the same
    with pytest.raises(sc.ScenarioError, match="has a UTC offset; the pump clock is naive"):
        sc.from_dict(
            {
                "pump": {
                    "model": "SYNCHROMED_II_40",
                    "start": "2026-01-05T08:00+01:00",
                    "reservoir_ml": 40.0,
                    "concentration_ug_per_ml": 2000,
                    "program": {"kind": "continuous", "ug_per_day": 400},
                }
            }
        )
    from itb.testing.record import _t

    with pytest.raises(itb.ValidationError, match="at: '2026-01-05T08:00Z' has a UTC offset"):
        _t("2026-01-05T08:00Z")


def test_other_offset_forms_say_what_to_pass() -> None:
    for offset, words in (
        (8, "got the bare number 8; a duration needs its unit"),
        (timedelta(hours=-1), "-PT1H is negative"),
        ((7, time(0)), "weekday 0..=6"),
        (
            time(8, tzinfo=UTC),
            "is tz-aware; the pump clock is naive",
        ),
        ([8, 0], "expected a step start"),
    ):
        period = "week" if isinstance(offset, tuple) else "day"
        with pytest.raises(itb.ValidationError, match=re.escape(words)) as err:
            itb.Flex(period, [(offset, 1.0)])
        assert err.value.field == "steps[0].offset"
