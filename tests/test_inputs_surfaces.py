"""Exit codes, messages, command-line parity and programs for applications
(docs: guide/inputs.md)."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import itb
import itb.clinical
import itb.scenario
import pytest
from hypothesis import given
from hypothesis import strategies as st
from itb.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
ADULT = str(ROOT / "examples" / "adult_sci_2000.toml")
T0 = datetime(2026, 1, 5, 8)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----- exit codes ------------------------------------------------------------------------------


def test_unsupported_plot_format_is_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    code, _, err = run(["plot", ADULT, "-o", "x.xyz"], capsys)
    assert code == 2 and "--output" in err and ".png" in err and "internal error" not in err


def test_unwritable_csv_is_a_bad_path(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pandas")
    code, _, err = run(["run", ADULT, "--csv", "/no/such/dir/x.csv"], capsys)
    assert code == 2 and "/no/such/dir/x.csv" in err and "internal error" not in err


def test_rig_validation_error_exits_2_like_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["rig", "run", ADULT, "--port", "x", "--key-file", "k", "--journal"]
    code, _, err = run([*argv, str(tmp_path / "j.db"), "--batch", "100"], capsys)
    assert code == 2 and "batch" in err


def test_a_bug_is_an_internal_error_with_how_to_report_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import itb.cli.scenario as cli_scenario

    def broken(args: argparse.Namespace) -> Any:
        raise TypeError("boom")

    monkeypatch.setattr(cli_scenario, "_execute", broken)
    code, _, err = run(["project", ADULT], capsys)
    assert code == 1 and "internal error: TypeError: boom" in err and "report it" in err


@pytest.mark.parametrize(
    "exc, code",
    [
        (itb.ValidationError("x: bad", "x"), 2),
        (itb.scenario.ScenarioError("f.toml", [itb.scenario.Issue("bad")]), 2),
        (FileNotFoundError(2, "No such file or directory", "/x"), 2),
        (PermissionError(13, "Permission denied", "/y"), 2),
        (itb.ProgrammingError("p", "p"), 1),
        (itb.ReservoirError("r", "r"), 1),
        (itb.RigError("stopped", "stopped"), 1),
        (itb.ProtocolError("seq", "seq"), 1),
        (itb.MissingExtraError("matplotlib", "plot", "plots"), 1),
        (KeyboardInterrupt(), 1),
    ],
)
def test_the_one_exit_code_map(exc: BaseException, code: int) -> None:
    from itb.cli.common import exit_code

    got, message = exit_code(exc)
    assert got == code and message.startswith("itb: ") and "internal" not in message


def test_no_command_module_maps_errors_itself() -> None:
    for path in (ROOT / "python" / "itb" / "cli").glob("*.py"):
        if path.name == "common.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"except[^\n]*Error[^\n]*:\n(?:[^\n]*\n)?\s+return [12]\b", text), path


# ----- did you mean ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, suggestion",
    [
        (["chek", ADULT], "check"),
        (["plan-refil", ADULT], "plan-refill"),
        (["rig", "statsu"], "status"),
        (["scenario", "shcema"], "schema"),
    ],
)
def test_unknown_commands_get_did_you_mean(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2 and f"did you mean {suggestion!r}" in err


# ----- messages --------------------------------------------------------------------------------


def pump(**kw: Any) -> itb.Pump:
    args: dict[str, Any] = dict(
        now=T0, reservoir_ml=40.0, concentration_ug_per_ml=2000, program=itb.Continuous(400)
    )
    return itb.Pump(itb.models.SYNCHROMED_II_40, **{**args, **kw})


def messages() -> list[str]:
    out = []
    for call in [
        lambda: pump(program=itb.Continuous(1e9)),
        lambda: pump(program=itb.Continuous(50)),
        lambda: pump(reservoir_ml=41.0),
        lambda: pump(catheter_volume_ul=1e9),
        lambda: pump().bolus(1e12, timedelta(minutes=30)),
        lambda: pump(concentration_ug_per_ml=200_000),
        lambda: pump().set_patient_bolus_limits(25.0, timedelta(minutes=10), timedelta(0), 0),
        lambda: pump().set_patient_bolus_limits(1e9, timedelta(minutes=10), timedelta(0), 3),
        lambda: pump().advance_to(10**17),
        lambda: pump().bolus(50.0, timedelta(0)),
        lambda: itb.PumpModel(
            name="x",
            reservoir_ml=-1.0,
            stroke_nl=2000,
            min_rate_ml_per_day=0.048,
            max_rate_ml_per_day=24.0,
            low_reservoir_ml=2.0,
            pump_path_ul=100.0,
        ),
    ]:
        with pytest.raises(itb.ItbError) as err:
            call()
        out.append(str(err.value))
    return out


def test_messages_speak_the_callers_units() -> None:
    texts = messages()
    for text in texts:
        assert "..=" not in text, text
        assert "nL/day" not in text and "pC" not in text, text
        assert "datetime.timedelta" not in text and "datetime.datetime" not in text, text
        field = text.split(":")[0].split()[-1]
        assert f"{field}: {field}:" not in text and "reservoir: reservoir" not in text, text
    assert "allowed 0 or 96 to 48000 µg/day (0.048 to 24 mL/day" in texts[1]
    assert texts[2].startswith("reservoir_ml: 41 mL overfills")
    assert "1000000000 µL is outside the allowed range 0 to 10000 µL" in texts[3]


def test_event_tables_show_people_units() -> None:
    from itb.cli.common import describe_event

    text = describe_event(
        {
            "kind": "bolus_completed",
            "data": {"dose_pg": 298_666_000, "charge_pc": 20_000_000_000, "duration_ms": 1_800_000},
        }
    )
    assert text == "dose 298.666 µg, charge 0.00555556 mAh, duration PT30M"


def test_rig_status_for_people_shows_ml_ug_and_iso() -> None:
    from itb.cli.common import describe_fields

    status = {  # as a rig reports it (exact integers, units in the keys)
        "last_stroke_id": 2050,
        "reservoir_nl": 35_800_000,
        "clock_ms": 1_767_726_889_682,  # 2026-01-01 = 1 767 225 600 s; + 5 d 19:14:49.682
        "limits": {"dose_ng": 50_000, "duration_ms": 600_000, "lockout_ms": 3_600_000},
        "faults": {"occlusion": {"pass_pct": 33}},
        "alarms": [],
        "tip_nl": 4_000,
    }
    assert describe_fields(status) == [
        "last_stroke_id 2050",
        "reservoir 35.8 mL",
        "clock 2026-01-06 19:14:49.682",
        "limits dose 50 µg, duration PT10M, lockout PT1H",
        "faults occlusion (pass_pct 33)",
        "alarms none",
        "tip 0.004 mL",
    ]


#: Range syntax of a programming language (``1..64``, ``0..=6``, ``{lo}..{hi}``) inside a message.
_RANGE_SYNTAX = re.compile(r"[0-9A-Za-z_)}\]]\.\.=?[-0-9{A-Za-z(^]")
#: The core's exact units, which no caller writes.
_EXACT_UNITS = re.compile(r"(?<![\w(])(pC|pC/ms|fL|nL/day)\b")
#: Messages not yet reworded, each with its reason (checked not to grow).
_RANGE_SYNTAX_LEFT: dict[str, str] = {}


def _message_texts(node: Any) -> str:
    """The text of a message expression; f-string fields read ``{}``."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _message_texts(node.left) + _message_texts(node.right)
    return ""


def python_messages() -> list[tuple[str, int, str]]:
    """(file, line, text) of every error message and option help in the package: the arguments
    of calls to ``…Error``/``…Violation``/``…Busy`` classes and ``help=``/``description=``."""
    import ast

    out = []
    for path in sorted((ROOT / "python" / "itb").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            args = list(node.args) if name.endswith(("Error", "Violation", "Busy")) else []
            args += [k.value for k in node.keywords if k.arg in ("help", "description")]
            out += [(rel, node.lineno, t) for t in map(_message_texts, args) if t]
    return out


def rust_messages() -> list[tuple[str, int, str]]:
    """(file, line, literal) of every string literal in the cores' non-test code."""
    out = []
    literal = re.compile(r'"(?:[^"\\]|\\.)*"')
    for root in ("rust/core/src", "rust/python/src"):
        for path in sorted((ROOT / root).rglob("*.rs")):
            code = path.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
            for i, line in enumerate(code.splitlines(), 1):
                if not line.lstrip().startswith("//"):
                    out += [(str(path.relative_to(ROOT)), i, t) for t in literal.findall(line)]
    return out


def test_no_message_uses_range_syntax_or_exact_units() -> None:
    """Ranges read "between A and B" / "A to B" in the caller's units: no ``..``/``..=`` in a
    message or help text, no pC/fL/nL per day in a Python message (the core's messages about a
    renamed parameter are rewritten, tested below)."""
    py, rs = python_messages(), rust_messages()
    assert len(py) > 300 and len(rs) > 100  # the scans see the sources
    assert _RANGE_SYNTAX.search("outside {}..{}") and _RANGE_SYNTAX.search("weekday 0..=6")
    assert not _RANGE_SYNTAX.search("expected 1 to 64") and not _RANGE_SYNTAX.search("wait...")
    bad = [
        f"{f}:{n}: {t!r}"
        for f, n, t in py
        if (_RANGE_SYNTAX.search(t) or _EXACT_UNITS.search(t)) and f not in _RANGE_SYNTAX_LEFT
    ]
    bad += [f"{f}:{n}: {t}" for f, n, t in rs if _RANGE_SYNTAX.search(t)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        # hand-derived: the core's ranges in nL, nL/day, pC and ms, read in the caller's units
        ("reservoir_ml", 1e9, "1000000000 mL is outside the allowed range 0.000001 to 1000 mL"),
        ("low_reservoir_ml", 30.0, "30 mL is outside the allowed range 0 to 20 mL"),
        ("pump_path_ul", 1e6, "1000000 µL is outside the allowed range 0 to 100000 µL"),
        (
            "min_rate_ml_per_day",
            30.0,
            "30 mL/day is outside the allowed range 0.000001 to 24 mL/day",
        ),
        (
            "max_rate_ml_per_day",
            1e9,
            "1000000000 mL/day is outside the allowed range 0.000001 to 1000 mL/day",
        ),
    ],
)
def test_pump_model_range_messages_speak_the_callers_units(
    field: str, value: float, expected: str
) -> None:
    fields: dict[str, Any] = dict(
        name="x",
        reservoir_ml=20.0,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        low_reservoir_ml=2.0,
        pump_path_ul=100.0,
    )
    with pytest.raises(itb.ValidationError) as err:
        itb.PumpModel(**{**fields, field: value})
    assert err.value.field == field
    assert str(err.value) == f"invalid {field}: {expected}"
    assert not _EXACT_UNITS.search(str(err.value)) and " nL" not in str(err.value)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        # 500 mAh battery: ERI/EOS must stay below the capacity (the core allows capacity − 1 pC)
        (
            "eri_mah",
            0.1,
            "0.1 mAh is outside the allowed range (at least 0.5 mAh and below 500 mAh)",
        ),
        (
            "eos_mah",
            600.0,
            "600 mAh is outside the allowed range (at least 0 mAh and below 500 mAh)",
        ),
        # 1 mAh = 3.6e12 pC; the core's largest battery is 1000 mAh, the smallest 1 pC
        (
            "capacity_mah",
            1e5,
            "100000 mAh is outside the allowed range (more than 0 mAh and at most 1000 mAh)",
        ),
        # 1 µC = 1e6 pC; the largest charge is that of 1000 mAh = 3.6e15 pC = 3.6e9 µC
        ("stroke_uc", 1e10, "10000000000 µC is outside the allowed range 0 to 3600000000 µC"),
        # 1 µA = 1000 pC/ms; the largest drain 1e9 pC/ms = 1e6 µA
        ("quiescent_ua", 1e12, "1000000000000 µA is outside the allowed range 0 to 1000000 µA"),
        ("critical_tone", timedelta(days=30), "P30D is outside the allowed range PT1S to P7D"),
    ],
)
def test_battery_range_messages_speak_the_callers_units(
    field: str, value: Any, expected: str
) -> None:
    nominal = itb.models.NOMINAL_BATTERY
    fields = {
        k: getattr(nominal, k)
        for k in ("capacity_mah", "quiescent_ua", "stroke_uc", "tone_uc", "telemetry_uc")
    }
    args = {**fields, "eri_mah": 1.0, "eos_mah": 0.5, field: value}
    with pytest.raises(itb.ValidationError) as err:
        itb.models.BatteryModel(**args)
    assert (err.value.field, str(err.value)) == (field, f"invalid {field}: {expected}")


@given(
    capacity=st.decimals(min_value="1", max_value="1000", places=3),
    over=st.decimals(min_value="0.001", max_value="1000", places=3),
)
def test_eri_above_capacity_is_refused_below_the_capacity_as_written(
    capacity: Any, over: Any
) -> None:
    """The bound the core checks (capacity − 1 pC) is stated as the capacity the caller wrote."""
    nominal = itb.models.NOMINAL_BATTERY
    fields = {
        k: getattr(nominal, k) for k in ("quiescent_ua", "stroke_uc", "tone_uc", "telemetry_uc")
    }
    eri = capacity + over
    with pytest.raises(itb.ValidationError) as err:
        itb.models.BatteryModel(
            capacity_mah=float(capacity), eri_mah=float(eri), eos_mah=0.5, **fields
        )
    shown = f"{capacity.normalize():f}"
    assert err.value.field == "eri_mah"
    assert str(err.value) == (
        f"invalid eri_mah: {eri.normalize():f} mAh is outside the allowed range "
        f"(at least 0.5 mAh and below {shown} mAh)"
    )


def test_a_battery_too_large_for_the_core_is_refused_in_mah() -> None:
    nominal = itb.models.NOMINAL_BATTERY
    fields = {
        k: getattr(nominal, k)
        for k in ("capacity_mah", "quiescent_ua", "stroke_uc", "tone_uc", "telemetry_uc")
    }
    # 1e7 mAh = 3.6e19 pC > 2^63 − 1 ≈ 9.22e18 pC = 2 562 047 mAh: never an OverflowError
    for field in ("capacity_mah", "eri_mah", "eos_mah"):
        args = {**fields, "eri_mah": 1.0, "eos_mah": 0.5, field: 1e7}
        with pytest.raises(itb.ValidationError, match="exceeds the maximum 2562047 mAh") as err:
            itb.models.BatteryModel(**args)
        assert err.value.field == field


def test_patient_bolus_limits_have_no_default_outside_their_range() -> None:
    """``duration`` and ``max_per_24h`` are required with a dose (the old defaults PT0S and 0 lay
    outside their own ranges); a refused call leaves the limits as they were."""
    p = pump()
    p.set_patient_bolus_limits(25.0, timedelta(minutes=10), timedelta(hours=1), 3)
    before = p.core.patient_bolus_limits
    for kw, field in [
        ({"duration": timedelta(minutes=10)}, "max_per_24h"),
        ({"max_per_24h": 3}, "duration"),
        ({}, "duration"),
    ]:
        with pytest.raises(itb.ValidationError, match="required with dose_ug") as err:
            p.set_patient_bolus_limits(25.0, **kw)
        assert err.value.field == field
        assert p.core.patient_bolus_limits == before
    for bad in (0, 25):
        with pytest.raises(itb.ValidationError, match="1 to 24 boluses") as err:
            p.set_patient_bolus_limits(25.0, timedelta(minutes=10), max_per_24h=bad)
        assert err.value.field == "max_per_24h"
    p.set_patient_bolus_limits(25.0, timedelta(minutes=10), max_per_24h=24)  # lockout: none
    assert p.core.patient_bolus_limits == (25_000, 600_000, 0, 24)
    p.set_patient_bolus_limits()  # disabled
    assert not p.has_patient_bolus_limits


@pytest.mark.parametrize("value, words", [(0, "greater than or equal to 1"), (25, "less than")])
def test_scenario_max_per_24h_range_is_the_pumps(value: int, words: str) -> None:
    text = ADULT_TOML_LIMITS.format(max_line=f"max_per_24h = {value}")
    with pytest.raises(itb.scenario.ScenarioError) as err:
        itb.scenario.loads(text)
    assert "max_per_24h" in str(err.value) and words in str(err.value), str(err.value)


def test_scenario_patient_limits_need_max_per_24h_with_a_dose() -> None:
    with pytest.raises(itb.scenario.ScenarioError) as err:
        itb.scenario.loads(ADULT_TOML_LIMITS.format(max_line="")).run()
    assert "max_per_24h" in str(err.value) and "required with dose_ug" in str(err.value)
    ok = itb.scenario.loads(ADULT_TOML_LIMITS.format(max_line="max_per_24h = 24")).run()
    assert ok.pump.core.patient_bolus_limits == (25_000, 600_000, 0, 24)


ADULT_TOML_LIMITS = """
[pump]
model = "SYNCHROMED_II_40"
start = 2026-01-05T08:00:00
reservoir_ml = 40.0
concentration_ug_per_ml = 2000
program = {{ kind = "continuous", ug_per_day = 400.0 }}

[[actions]]
at = 2026-01-05T09:00:00
do = "set_patient_bolus_limits"
dose_ug = 25.0
duration = "PT10M"
{max_line}
"""


# ----- command-line parity -----------------------------------------------------------------------


def test_plan_refill_offers_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan-refill", ADULT, "--json", "--country", "DE", "--subdivision", "BY"]
    argv += ["--closed", "2026-08-31=staff training", "--vial-ml", "20", "--fill-ml", "35"]
    code, out, _ = run(argv, capsys)
    report = json.loads(out)
    assert code == 0
    # the same plan from the API with the same calendar (the run ends 2026-07-06 00:00)
    result = itb.scenario.load(ADULT).run()
    refills = [e.time for e in result.events if e.kind == "refilled"]
    plan = itb.clinical.plan_refill(
        result.pump,
        calendar=itb.clinical.ClinicCalendar(
            country="DE", subdiv="BY", extra_closed=(datetime(2026, 8, 31).date(),)
        ),
        filled_at=refills[-1],
        fill_ml=35.0,
        vial_ml=20.0,
    )
    assert report["date"] == plan.date.isoformat(timespec="milliseconds")
    assert report["deadline"] == plan.deadline.isoformat(timespec="milliseconds")
    assert report["constraint"] == plan.constraint and report["on_time"] == plan.on_time
    assert report["vials"] == plan.vials == 2 and report["volume_to_order_ml"] == 40.0
    assert [c["constraint"] for c in report["candidates"]] == [
        c.constraint for c in plan.candidates
    ]
    assert report["margin"] == "P3D" and "disclaimer" in report
    assert report["calendar"]["closed"] == [{"date": "2026-08-31", "label": "staff training"}]


def test_check_takes_several_files_and_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[pump]\nmodel = 3\n", encoding="utf-8")
    code, out, _ = run(["check", ADULT, str(bad), "--json"], capsys)
    report = json.loads(out)
    assert code == 2 and [f["ok"] for f in report["files"]] == [True, False]
    assert report["files"][1]["exit_code"] == 2 and "bad.toml" in report["files"][1]["error"]
    code, out, _ = run(["check", ADULT, ADULT], capsys)
    assert code == 0 and out.count("ok: ") == 2


def test_run_json_carries_the_disclaimer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["run", ADULT, "--json", "--until", "P1D"], capsys)
    assert code == 0 and "NOT a medical device" in json.loads(out)["disclaimer"]


def test_one_time_format_in_all_json(capsys: pytest.CaptureFixture[str]) -> None:
    iso_ms = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")
    for argv in (
        ["run", ADULT, "--json", "--until", "P2D"],
        ["project", ADULT, "--json"],
        ["plan-refill", ADULT, "--json"],
        ["demo", "--json", "--days", "3"],
        ["check", ADULT, "--json"],
    ):
        code, out, _ = run(argv, capsys)
        assert code == 0

        def walk(v: Any, key: str = "") -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    walk(x, k)
            elif isinstance(v, list):
                for x in v:
                    walk(x, key)
            elif isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT", v):
                assert iso_ms.match(v), (argv, key, v)

        walk(json.loads(out))


# ----- programs for applications -------------------------------------------------------------


def test_flex_takes_hh_mm_like_scenario_files() -> None:
    by_text = itb.Flex("day", [("00:00", 300.0), ("08:00", 500.0), ("22:00", 300.0)])
    by_time = itb.Flex("day", [(time(0), 300.0), (time(8), 500.0), (time(22), 300.0)])
    assert by_text.exact() == by_time.exact()
    week = itb.Flex("week", [("mon 00:00", 200.0), ("sat 00:00", 800.0)])
    assert (
        week.exact()
        == itb.Flex("week", [(timedelta(0), 200.0), (timedelta(days=5), 800.0)]).exact()
    )
    for bad, period, words in [
        ("25:00", "day", "hours 0 to 23"),
        ("8h", "day", "datetime.time works too"),
        ("mon 08:00", "day", "names a weekday"),
        ("08:00", "week", "week period takes"),
        ("mnd 08:00", "week", "not a weekday"),
    ]:
        with pytest.raises(itb.ValidationError, match=words) as err:
            itb.Flex(period, [("00:00" if period == "day" else "mon 00:00", 1.0), (bad, 2.0)])
        assert err.value.field == "steps[1].offset"


def test_programs_report_daily_total_and_mean() -> None:
    # 8 h at 300 + 14 h at 500 + 2 h at 300 = 100 + 291.667 + 25 = 416.667 µg/day
    flex = itb.Flex("day", [("00:00", 300.0), ("08:00", 500.0), ("22:00", 300.0)])
    assert flex.daily_total_ug == pytest.approx(300 * 10 / 24 + 500 * 14 / 24)
    assert flex.mean_ug_per_day == flex.daily_total_ug and flex.daily_totals_ug == (
        pytest.approx(416.6666667),
    )
    assert itb.Continuous(400).daily_total_ug == 400.0
    week = itb.Flex("week", [("mon 00:00", 200.0), ("sat 00:00", 800.0), ("sat 12:00", 100.0)])
    assert week.daily_totals_ug == (200.0,) * 5 + (450.0, 100.0)
    assert week.daily_total_ug == pytest.approx((5 * 200 + 450 + 100) / 7)


@given(
    doses=st.lists(st.integers(0, 4_000_000).map(lambda ng: ng / 1000), min_size=1, max_size=5),
    cut=st.lists(st.integers(1, 1439), max_size=4, unique=True),
)
def test_daily_total_is_what_the_pump_is_commanded(doses: list[float], cut: list[int]) -> None:
    starts = [0, *sorted(cut)][: len(doses)]
    program = itb.Flex("day", [(timedelta(minutes=m), d) for m, d in zip(starts, doses)])
    bounds = [*starts, 1440]
    want = sum(d * (b - a) / 1440 for d, a, b in zip(doses, bounds, bounds[1:]))
    assert program.daily_total_ug == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_programs_round_trip_through_the_scenario_dict() -> None:
    from itb.program import program_from_dict

    for program in (
        itb.Continuous(400.0),
        itb.Flex("day", [("00:00", 300.0), ("08:00:30.5", 500.0)]),
        itb.Flex("week", [("mon 00:00", 200.0), ("sat 07:30", 800.0)]),
    ):
        data = program.to_dict()
        assert program_from_dict(data).exact() == program.exact()
        assert program_from_dict(json.loads(json.dumps(data))).exact() == program.exact()
        # the same dict is a scenario file's program table
        from itb.scenario.spec import ContinuousProgram, FlexProgram

        spec = (ContinuousProgram if data["kind"] == "continuous" else FlexProgram)(**data)
        assert spec.build().exact() == program.exact()
    for bad, field in [
        ({"kind": "pulse"}, "kind"),
        ({"kind": "continuous"}, "ug_per_day"),
        ({"kind": "continuous", "ug_per_day": 1.0, "x": 1}, "x"),
        ({"kind": "flex", "steps": []}, "steps"),
        ({"kind": "flex", "steps": [["00:00"]]}, "steps[0]"),
        ({"kind": "continuous", "ug_per_day": True}, "ug_per_day"),
    ]:
        with pytest.raises(itb.ValidationError) as err:
            program_from_dict(bad)
        assert err.value.field == field


# ----- the typed surface ---------------------------------------------------------------------


def test_event_data_matches_its_kinds_typed_dict() -> None:
    import glob
    import typing

    from itb.events import EVENT_DATA

    seen: set[str] = set()
    events: list[Any] = []
    for path in sorted(glob.glob(str(ROOT / "examples" / "*.toml"))):
        events += itb.scenario.load(path).run().events
    from itb.cli.app import default_scenario

    events += default_scenario().advance(timedelta(days=400))
    for e in events:
        hints = typing.get_type_hints(EVENT_DATA[e.kind])
        assert set(e.data) <= set(hints), (e.kind, set(e.data) - set(hints))
        for key, value in e.data.items():
            assert isinstance(value, hints[key]), (e.kind, key, value)
        seen.add(e.kind)
    assert len(seen) >= 15 and set(EVENT_DATA) >= seen


def test_projection_fields_are_optional_datetimes() -> None:
    import typing

    from itb.pump import _PROJECTION_FIELDS, Projection

    for name in _PROJECTION_FIELDS:
        prop = getattr(Projection, name)
        assert typing.get_type_hints(prop.fget)["return"] == datetime | None
        assert typing.get_type_hints(getattr(Projection, name + "_ms").fget)["return"] == int | None


def test_alarms_are_named_records_and_missing_extra_is_public() -> None:
    p = pump(reservoir_ml=1.0)
    (alarm,) = p.active_alarms
    assert (alarm.name, alarm.severity, alarm.raised) == ("low_reservoir", "non_critical", T0)
    name, severity, raised = alarm  # still a tuple
    assert issubclass(itb.errors.MissingExtraError, itb.ItbError)
    assert issubclass(itb.MissingExtraError, ImportError)
    err = itb.errors.MissingExtraError("matplotlib", "plot", "plots")
    assert "pip install '" in str(err) and "[plot]'" in str(err) and err.name == "matplotlib"


def test_the_whole_package_is_type_checked_strictly() -> None:
    """``mypy --strict`` (run by CI) covers every module: no override switches its errors off."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True and config["files"] == ["python/itb"]
    silenced = [o["module"] for o in config.get("overrides", []) if o.get("ignore_errors")]
    assert not silenced, f"modules whose type errors are ignored: {silenced}"
