"""The ``itb`` command line: exit codes, the notice in every --help, JSON/CSV output that parses
and matches a direct run, registrars, and plan-refill against the itb.clinical contract."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import itb
import pytest
from itb import cli
from itb import scenario as sc
from itb.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[1]
ADULT = str(ROOT / "examples" / "adult_sci_2000.toml")
BRIDGE = str(ROOT / "examples" / "concentration_change_bridge.toml")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(Path(BRIDGE).read_text().replace("added_ml = 20.0", "added_ml = -20.0"))
    return path


def test_demo_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["demo", "--days", "10", "--json"], capsys)
    report = json.loads(out)
    assert (
        code == 0
        and report["totals"]["days_simulated"] == 10
        and report["totals"]["projection_matches_run"]
    )
    code, out, _ = run(["demo", "--days", "2"], capsys)
    assert code == 0 and "Totals" in out and "NOT a medical device" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo"],
        ["check"],
        ["run"],
        ["project"],
        ["plan-refill"],
        ["plot"],
        ["scenario"],
        ["scenario", "schema"],
    ],
)
def test_every_help_carries_the_notice(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(argv + ["--help"], capsys)
    assert code == 0
    flat = " ".join(out.split())
    assert "NOT a medical device" in flat and "Not a medical device" in flat


def test_check(capsys: pytest.CaptureFixture[str], bad_file: Path) -> None:
    code, out, _ = run(["check", ADULT], capsys)
    assert code == 0 and out.startswith("ok: ") and "7 actions" in out
    code, out, err = run(["check", str(bad_file)], capsys)
    assert code == 2 and out == ""
    assert f"{bad_file}:18: actions[0].added_ml: " in err and "greater than or equal to 0" in err


def test_exit_codes_for_usage_and_missing_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(["frobnicate"], capsys)[0] == 2
    assert run([], capsys)[0] == 2
    assert run(["scenario"], capsys)[0] == 2
    code, _, err = run(["run", ADULT, "--until", "next tuesday"], capsys)
    assert code == 2 and "neither a date-time" in err
    code, _, err = run(["run", ADULT, "--until", "2020-01-01"], capsys)
    assert code == 2 and "before the scenario's start" in err
    code, _, err = run(["check", str(tmp_path / "missing.toml")], capsys)
    assert code == 2 and "missing.toml" in err and "cannot read" in err
    code, _, err = run(["run", ADULT, "--every", "PT1H"], capsys)
    assert code == 2 and "--csv" in err


def test_runtime_refusal_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "refused.toml"
    path.write_text(
        Path(BRIDGE)
        .read_text()
        .replace("concentration_ug_per_ml = 2000", "concentration_ug_per_ml = 50")
    )
    code, _, err = run(["run", str(path)], capsys)
    assert (
        code == 2
        and "actions[1]" in err
        and "(at 2026-03-04 10:00:00)" in err
        and f"{path}:23" in err
    )


def test_unwritable_output_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(["run", ADULT, "--csv", str(tmp_path / "no" / "such" / "dir.csv")], capsys)
    assert code == 2 and "itb: error:" in err and "dir.csv" in err


def test_run_json_matches_a_direct_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["run", ADULT, "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    direct = sc.load(ADULT).run()
    assert report["totals"]["strokes"] == direct.pump.strokes
    assert report["totals"]["delivered_ug"] == direct.pump.delivered_ug
    assert report["totals"]["reservoir_ml"] == direct.pump.reservoir_ml
    assert [e["kind"] for e in report["events"]] == [e.kind for e in direct.events]
    assert all(set(e) >= {"time", "kind", "severity", "data"} for e in report["events"])
    fault = next(e for e in report["events"] if e["kind"] == "fault")
    assert {k: fault[k] for k in ("time", "kind", "severity", "data")} == {
        "time": "2026-02-10T14:00:00.000",
        "kind": "fault",
        "severity": "critical",
        "data": {"fault": "motor_stall"},
    }
    assert fault["time_ms"] == (datetime(2026, 2, 10, 14) - datetime(1970, 1, 1)) // timedelta(
        milliseconds=1
    )


def test_run_until(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["run", ADULT, "--json", "--until", "P30D"], capsys)
    totals = json.loads(out)["totals"]
    assert code == 0 and totals["end"] == "2026-02-04T08:00:00.000"
    # hand-computed: 0.2 mL/day for 14 d 1 h, the 25 µL (50 µg) bolus, then 0.24 mL/day for 15 d 23 h
    # (the MRI stall comes later); strokes = floor(ideal / 2 µL) since the accumulator is exact
    ideal_nl = (
        Fraction(200_000) * (14 + Fraction(1, 24))
        + 25_000
        + Fraction(240_000) * (15 + Fraction(23, 24))
    )
    assert totals["strokes"] == math.floor(ideal_nl / 2000) == 3331
    code, out, _ = run(["run", ADULT, "--json", "--until", "2026-01-06T08:00"], capsys)
    assert json.loads(out)["totals"]["end"] == "2026-01-06T08:00:00.000"


def test_run_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["run", BRIDGE], capsys)
    assert code == 0 and "bolus_started" in out and "bolus_kind bridge" in out and "Totals" in out


def test_run_csv_parses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "events.csv"
    code, _, err = run(["run", ADULT, "--csv", str(path)], capsys)
    frame = pd.read_csv(path)
    direct = sc.load(ADULT).run()
    assert code == 0 and f"to {path}" in err
    assert list(frame["kind"]) == [e.kind for e in direct.events]
    assert frame["count"].sum() == direct.pump.strokes
    code, out, _ = run(["run", BRIDGE, "--csv", "-", "--every", "PT6H"], capsys)
    series = pd.read_csv(io.StringIO(out), parse_dates=["time"])
    assert code == 0 and len(series) == 5 * 4 + 1
    assert (
        series["reservoir_ml"].iloc[0] == 20.0
        and series["concentration_ug_per_ml"].iloc[-1] == 2000
    )


def test_project_json_matches_the_pump(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["project", ADULT, "--json"], capsys)
    report = json.loads(out)
    pump = sc.load(ADULT).run().pump
    expected = pump.project(timedelta(days=3650))
    assert code == 0 and report["now"] == "2026-07-06T00:00:00.000"
    assert report["projection"]["low_reservoir"] == expected.low_reservoir.isoformat(
        timespec="milliseconds"
    )
    assert report["assume_refills"]["low_reservoir"] is None
    assert report["assume_refills"]["eos"] == pump.project(
        timedelta(days=3650), assume_refills=True
    ).eos.isoformat(timespec="milliseconds")
    code, out, _ = run(["project", ADULT], capsys)
    assert code == 0 and "low_reservoir" in out and "refilled on time" in out


def test_scenario_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(["scenario", "schema"], capsys)
    assert code == 0 and json.loads(out) == sc.json_schema()
    code, _, _ = run(["scenario", "schema", "-o", str(tmp_path / "s.json")], capsys)
    assert code == 0 and json.loads((tmp_path / "s.json").read_text()) == sc.json_schema()


def test_plan_refill_against_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["plan-refill", ADULT, "--json", "--margin", "P10D", "--stability", "P180D"], capsys
    )
    assert code == 0
    report = json.loads(out)
    # stability counts from the scenario's last refill (its `refill` action at 2026-04-06 09:00)
    result = sc.load(ADULT).run()
    plan = itb.clinical.plan_refill(
        result.pump,
        margin=timedelta(days=10),
        stability=timedelta(days=180),
        filled_at=datetime(2026, 4, 6, 9, 0),
    )
    assert report["now"] == "2026-07-06T00:00:00.000"
    assert report["date"] == plan.date.isoformat(timespec="milliseconds")
    assert (report["reason"], report["volume_to_order_ml"]) == (
        plan.reason,
        plan.volume_to_order_ml,
    )
    assert report["tip_dose_ug"] == plan.tip_dose_ug
    code, out, _ = run(["plan-refill", ADULT], capsys)
    default = itb.clinical.plan_refill(result.pump, filled_at=datetime(2026, 4, 6, 9, 0))
    assert code == 0 and "margin P3D" in out  # plan_refill's default
    assert default.date.isoformat(sep=" ", timespec="milliseconds") in out


def test_plan_refill_with_the_real_module(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("itb.clinical")
    code, out, _ = run(["plan-refill", ADULT, "--json"], capsys)
    assert code == 0 and set(json.loads(out)) >= {
        "date",
        "reason",
        "volume_to_order_ml",
        "tip_dose_ug",
    }


def test_registrars_add_commands_and_missing_modules_are_skipped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def register(sub: object) -> None:
        from itb.cli.common import add_command

        add_command(
            sub,
            "hello",
            lambda args: 0 if print("hi") is None else 1,
            help="say hi",
            description="Say hi.",
        )

    monkeypatch.setattr(cli_app, "REGISTRARS", [*cli_app.REGISTRARS, register])
    monkeypatch.setattr(
        cli_app, "COMMAND_MODULES", [*cli_app.COMMAND_MODULES, "itb.no_such_module"]
    )
    code, out, _ = run(["hello"], capsys)
    assert code == 0 and out == "hi\n"
    code, out, _ = run(["hello", "--help"], capsys)
    assert "NOT a medical device" in " ".join(out.split())


def test_console_script_exit_codes(bad_file: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "itb", "check", BRIDGE], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ")
    bad = subprocess.run(
        [sys.executable, "-m", "itb", "run", str(bad_file), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stdout == "" and "actions[0].added_ml" in bad.stderr


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from itb.cli import common as _cli_common

    with _cli_common.progress_callback("x") as progress:  # captured stderr: no bar
        assert progress is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with _cli_common.progress_callback("running", delay=timedelta(0)) as progress:
        assert progress is not None
        result = sc.load(ADULT).run(progress=progress)
    assert result.pump.now == datetime(2026, 7, 6)


def test_ptm_totals_hand_computed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["run", str(ROOT / "examples" / "ptm_patient_bolus.toml"), "--json"], capsys)
    totals = json.loads(out)["totals"]
    # 300 µg/day for 3 days + 4 granted 25 µg boluses = 1000 µg = 0.5 mL at 2000 µg/mL = 250 strokes of 2 µL
    assert (
        code == 0
        and totals["delivered_ug"] == 1000.0
        and totals["strokes"] == 250
        and totals["reservoir_ml"] == 19.5
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--days", "36501"], "--days: '36501' is not between 0 and 36500"),
        (["demo", "--days", "-1"], "--days: '-1' is not between 0 and 36500"),
        (["demo", "--days", "3.5"], "--days: '3.5' is not an integer"),
        (["rig", "emulate", "--tcp", "65536"], "--tcp: '65536' is not between 0 and 65535"),
        (
            ["rig", "emulate", "--tcp", "0", "--reservoir-ml", "0"],
            "--reservoir-ml: '0' must be > 0",
        ),
        (["rig", "emulate", "--tcp", "0", "--noise-mg", "-0.1"], "--noise-mg: '-0.1' must be >= 0"),
        (["rig", "emulate", "--tcp", "0", "--noise-mg", "inf"], "--noise-mg: 'inf' must be >= 0"),
        (
            ["rig", "emulate", "--tcp", "0", "--density", "heavy"],
            "--density: 'heavy' is not a number",
        ),
    ],
)
def test_numeric_arguments_name_option_and_range(argv, message, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
