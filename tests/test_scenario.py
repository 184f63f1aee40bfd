"""Scenario files: loading, validation errors (file, entry, field, line, allowed range), runs equal
to the same calls made directly on a Pump, every example, export, and a TOML round trip."""

from __future__ import annotations

import dataclasses
import inspect
import sys
import tomllib
from datetime import datetime, time, timedelta
from pathlib import Path

import itb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb import scenario as sc
from itb.errors import MissingExtraError
from itb.scenario.toml_lines import key_lines, line_of

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))

BASE = """\
[pump]
model = "SYNCHROMED_II_40"
start = 2026-01-05T08:00:00
reservoir_ml = 40.0
concentration_ug_per_ml = 2000
catheter_volume_ul = 100.0
program = { kind = "continuous", ug_per_day = 400.0 }
"""


def error_of(text: str, source: str = "s.toml") -> sc.ScenarioError:
    with pytest.raises(sc.ScenarioError) as info:
        sc.loads(text, source=source).run()
    return info.value


# ----- runs -------------------------------------------------------------------------------------


def test_continuous_30_days_hand_computed() -> None:
    result = sc.loads(BASE + "[run]\nuntil = 2026-02-04T08:00:00\n").run()
    # 400 µg/day at 2000 µg/mL = 0.2 mL/day = 200 000 nL/day; 2000 nL strokes
    assert result.pump.strokes == 200_000 * 30 // 2000 == 3000
    assert result.totals["strokes"] == 3000
    assert result.totals["pumped_nl"] == 3000 * 2000
    assert result.totals["reservoir_ml"] == pytest.approx(40.0 - 6.0)
    assert result.until == datetime(2026, 2, 4, 8)


def test_run_equals_the_same_calls_on_a_pump() -> None:
    scenario = sc.load(ROOT / "examples" / "adult_sci_2000.toml")
    result = scenario.run()

    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 1, 5, 8),
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        catheter_volume_ul=100.0,
        program=itb.Continuous(ug_per_day=400.0),
    )
    events = pump.advance_to(datetime(2026, 1, 5, 10))
    pump.bolus(dose_ug=50.0, duration=timedelta(minutes=30))
    events += pump.advance_to(datetime(2026, 1, 19, 9))
    pump.telemetry_session()
    pump.set_program(itb.Continuous(ug_per_day=480.0))
    events += pump.advance_to(datetime(2026, 2, 10, 14))
    pump.inject_motor_stall()
    events += pump.advance_to(datetime(2026, 2, 10, 15))
    pump.clear_fault()
    events += pump.advance_to(datetime(2026, 4, 6, 9))
    pump.telemetry_session()
    report = pump.refill(added_ml=40.0, concentration_ug_per_ml=2000)
    events += pump.advance_to(datetime(2026, 7, 6))

    assert result.pump.snapshot() == pump.snapshot()
    assert [(e.time_ms, e.kind, e.severity, e.data) for e in result.events] == [
        (e.time_ms, e.kind, e.severity, e.data) for e in events
    ]
    assert result.outcomes[-1] == report
    assert result.outcomes[0] == 1  # the bolus id


def test_until_overrides_and_later_actions_are_skipped() -> None:
    scenario = sc.load(ROOT / "examples" / "adult_sci_2000.toml")
    short = scenario.run(until=timedelta(days=10))
    assert short.pump.now == datetime(2026, 1, 15, 8)
    assert len(short.outcomes) == 1  # only the day-one bolus
    same = scenario.run(until=datetime(2026, 1, 15, 8))
    assert same.pump.snapshot() == short.pump.snapshot()
    with pytest.raises(itb.ValidationError):
        scenario.run(until=datetime(2025, 1, 1))


def test_no_run_table_runs_to_the_last_action() -> None:
    text = BASE + '\n[[actions]]\nat = 2026-01-06T08:00:00\ndo = "suspend"\n'
    result = sc.loads(text).run()
    assert result.until == datetime(2026, 1, 6, 8) and result.pump.is_suspended


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_loads_and_runs(path: Path) -> None:
    result = sc.load(path).run()
    assert result.pump.now == result.until
    assert result.pump.strokes > 0
    p = result.pump
    assert (
        p.filled_nl == p.reservoir_nl + p.path_nl + p.delivered_nl + p.withdrawn_nl
    )  # conservation (stroke_error 0)


def kinds(name: str) -> list[str]:
    return [
        e.kind
        for e in sc.load(ROOT / "examples" / f"{name}.toml").run().events
        if e.kind != "stroke_batch"
    ]


def test_examples_show_what_they_say() -> None:
    assert {"bolus_started", "fault", "fault_cleared", "refilled", "program_changed"} <= set(
        kinds("adult_sci_2000")
    )
    bridge = sc.load(ROOT / "examples" / "concentration_change_bridge.toml").run()
    started = [e for e in bridge.events if e.kind == "bolus_started"]
    assert [e.data["bolus_kind"] for e in started] == ["bridge"]
    assert "concentration_changed" in kinds(
        "concentration_change_bridge"
    ) and "drug_at_tip" in kinds("concentration_change_bridge")
    assert "eri" in kinds("pump_near_eri") and "eos" not in kinds("pump_near_eri")
    child = sc.load(ROOT / "examples" / "child_cp_flex_500.toml")
    assert child.spec.pump.program.kind == "flex" and child.run().pump.program.period == "week"
    ptm = sc.load(ROOT / "examples" / "ptm_patient_bolus.toml").run()
    assert [o.reason for o in ptm.outcomes[1:]] == [
        "granted",
        "lockout",
        "granted",
        "granted",
        "daily_maximum",
        "granted",
    ]


def test_bridge_keeps_the_tip_dose_and_no_bridge_does_not() -> None:
    """Independent expectation: 400 µg/day is 16.7 µg/h; with 4 µg strokes every hour is within a stroke."""

    def tip_by_hour(name: str) -> list[float]:
        frame = (
            sc.load(ROOT / "examples" / f"{name}.toml").run().timeseries(every=timedelta(hours=1))
        )
        after = frame.loc[datetime(2026, 3, 4, 11) : datetime(2026, 3, 5, 10)]
        return list(after["tip_dose_ug_per_day"] / 24)

    assert all(abs(x - 400 / 24) <= 4.0 for x in tip_by_hour("concentration_change_bridge"))
    without = tip_by_hour("concentration_change_no_bridge")
    assert sum(without[:20]) < 0.3 * 400 * 20 / 24


def test_flex_week_offsets_and_named_cancel() -> None:
    text = BASE.replace(
        'program = { kind = "continuous", ug_per_day = 400.0 }',
        'program = { kind = "flex", period = "week", steps = [["mon 00:00", 200.0], ["sat 00:00", 800.0]] }',
    )
    text += (
        '\n[[actions]]\nat = 2026-01-05T10:00:00\ndo = "bolus"\ndose_ug = 50.0\nduration = "PT30M"\nname = "b"\n'
        '\n[[actions]]\nat = 2026-01-05T10:10:00\ndo = "cancel_bolus"\nname = "b"\n'
        "\n[run]\nuntil = 2026-01-12T00:00:00\n"
    )
    result = sc.loads(text).run()
    assert result.pump.program == itb.Flex(
        period="week", steps=[(timedelta(0), 200.0), (timedelta(days=5), 800.0)]
    )
    assert [e.data["bolus_id"] for e in result.events if e.kind == "bolus_cancelled"] == [1]


def test_durations_are_iso_8601() -> None:
    assert sc.parse_duration("PT30M") == timedelta(minutes=30)
    assert sc.parse_duration("P1DT2H") == timedelta(days=1, hours=2)
    assert sc.parse_duration("PT0.5S") == timedelta(milliseconds=500)
    assert sc.parse_duration("P2W") == timedelta(days=14)
    for bad in ("30 minutes", "P", "PT", -5, True, 1800, 0.5, "P1M", "P1Y"):
        with pytest.raises(ValueError):
            sc.parse_duration(bad)
    assert sc.format_duration(timedelta(days=1, hours=2, milliseconds=5)) == "P1DT2H0.005S"


def test_pump_options_and_custom_model() -> None:
    text = """\
[pump]
start = 2026-01-05
reservoir_ml = 20.0
concentration_ug_per_ml = 2000
program = { kind = "continuous", ug_per_day = 1000.0 }
path_primed = false
stroke_error_ppm = 80000
catheter_volume_ul = 50.0

[pump.model]
name = "rig"
reservoir_ml = 20.0
stroke_nl = 1000
min_rate_ml_per_day = 0.01
max_rate_ml_per_day = 10.0
low_reservoir_ml = 1.0
battery = "none"
"""
    scenario = sc.loads(text)
    assert scenario.model == itb.PumpModel(
        name="rig",
        reservoir_ml=20.0,
        stroke_nl=1000,
        min_rate_ml_per_day=0.01,
        max_rate_ml_per_day=10.0,
        low_reservoir_ml=1.0,
    )
    pump = scenario.pump()
    assert pump.tip_concentration_ug_per_ml == 0 and pump.core.stroke_error_ppm == 80_000
    assert pump.battery_remaining_mah is None and pump.now == datetime(2026, 1, 5)


def test_a_pump_read_with_little_battery_left() -> None:
    """45 mAh left of the preset's battery behaves as a new 45 mAh battery with the same
    thresholds (the old workaround): the same ERI and EOS times."""
    scenario = sc.load(ROOT / "examples" / "pump_near_eri.toml")
    assert scenario.model is itb.models.SYNCHROMED_II_40
    pump = scenario.pump()
    assert pump.battery_remaining_mah == 45.0 and not pump.is_eri
    small = dataclasses.replace(
        itb.models.SYNCHROMED_II_40,
        battery=dataclasses.replace(itb.models.NOMINAL_BATTERY, capacity_mah=45.0),
    )
    p = scenario.spec.pump
    fresh = itb.Pump(
        small,
        now=p.start,
        reservoir_ml=p.reservoir_ml,
        concentration_ug_per_ml=p.concentration_ug_per_ml,
        program=p.program.build(),
        catheter_volume_ul=p.catheter_volume_ul,
    )
    a, b = pump.project(), fresh.project()
    assert (a.eri, a.eos) == (b.eri, b.eos) and a.eri is not None


def test_action_keys_are_the_pump_methods_keyword_arguments() -> None:
    public = {
        n for n, f in inspect.getmembers(itb.Pump, inspect.isfunction) if not n.startswith("_")
    }
    not_actions = {
        "advance",
        "advance_to",
        "advance_recording",
        "project",
        "snapshot",
        "restore",
        "copy",
        "bridge_bolus_plan",
        "priming_bolus_plan",
        "bolus_many",
    }  # a file lists its boluses as `bolus` actions
    assert set(sc.ACTIONS) == public - not_actions
    for name, cls in sc.ACTIONS.items():
        params = set(inspect.signature(getattr(itb.Pump, name)).parameters) - {"self"}
        keys = set(cls.model_fields) - {"at", "do", "name"}
        if name == "cancel_bolus":
            assert params == {"bolus_id"} and keys == set()
        else:
            assert keys <= params, name


def test_pump_table_takes_every_pump_constructor_argument() -> None:
    # battery_pc is the exact twin of battery_mah (scenario files take mAh)
    params = set(inspect.signature(itb.Pump.from_reading).parameters) - {"cls", "battery_pc"}
    assert set(inspect.signature(itb.Pump.__init__).parameters) - {"self"} <= params
    keys = set(sc.ScenarioSpec.model_fields["pump"].annotation.model_fields) - {"start"} | {"now"}
    assert params == keys, (
        "a new itb.Pump(...) argument needs a key in [pump] (itb/scenario/spec.py PumpSpec)"
    )


# ----- errors -----------------------------------------------------------------------------------


def test_scenario_error_is_an_itb_validation_error() -> None:
    assert issubclass(sc.ScenarioError, itb.ValidationError) and issubclass(
        sc.ScenarioError, itb.ItbError
    )


def test_toml_syntax_error_has_the_line() -> None:
    err = error_of(BASE + "[[actions]\nat = 1\n")
    assert (
        err.line == 8
        and err.file == "s.toml"
        and "s.toml:8" in str(err)
        and "TOML syntax error" in str(err)
    )


def test_out_of_range_names_entry_field_line_and_range() -> None:
    err = error_of(BASE.replace("reservoir_ml = 40.0", "reservoir_ml = -1.0"))
    assert (err.entry, err.field, err.line, err.allowed) == ("pump", "reservoir_ml", 4, ">= 0.0")
    assert str(err).startswith("s.toml:4: pump.reservoir_ml: ")
    err = error_of(
        BASE + '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "suspend"\n'
        '\n[[actions]]\nat = 2026-01-07T00:00:00\ndo = "bolus"\ndose_ug = 0\nduration = "PT1H"\n'
    )
    assert (err.entry, err.field, err.line, err.allowed) == ("actions[1]", "dose_ug", 16, "> 0.0")


def test_unknown_action_and_unknown_key() -> None:
    err = error_of(BASE + '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "bolux"\n')
    assert (err.entry, err.field, err.line) == ("actions[0]", "do", 11)
    assert "'bolus'" in err.allowed and "'telemetry_session'" in err.allowed
    err = error_of(BASE + "[runn]\nuntil = 2026-01-06T00:00:00\n")
    assert (err.entry, err.field, err.line, err.allowed) == ("", "runn", 8, "pump, actions, run")
    err = error_of(BASE + 'colour = "red"\n')
    assert (err.entry, err.field, err.line) == (
        "pump",
        "colour",
        8,
    ) and "reservoir_ml" in err.allowed
    err = error_of(BASE + '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "suspend"\nhow = "now"\n')
    assert (err.entry, err.field, err.line, err.allowed) == ("actions[0]", "how", 12, "at, do")
    err = error_of(
        BASE.replace(
            'model = "SYNCHROMED_II_40"', 'model = { preset = "SYNCHROMED_II_40", colour = "red" }'
        )
    )
    assert (err.entry, err.field, err.line) == (
        "pump",
        "model.colour",
        2,
    ) and "stroke_nl" in err.allowed


def test_every_issue_is_listed() -> None:
    text = BASE.replace("reservoir_ml = 40.0", "reservoir_ml = -1.0").replace(
        '"SYNCHROMED_II_40"', '"SYNCHROMED_II_41"'
    )
    err = error_of(text)
    assert [(i.entry, i.field, i.line) for i in err.issues] == [
        ("pump", "model", 2),
        ("pump", "reservoir_ml", 4),
    ]
    assert "PROMETRA_II_20" in err.issues[0].message and "2 problems in s.toml" in str(err)


def test_flex_step_errors_name_the_step() -> None:
    err = error_of(
        BASE.replace(
            '{ kind = "continuous", ug_per_day = 400.0 }',
            '{ kind = "flex", steps = [["00:00", 300.0], ["25:00", 500.0]] }',
        )
    )
    assert (err.entry, err.field, err.line) == (
        "pump",
        "program.steps[1][0]",
        7,
    ) and "0 to 23" in str(err)
    err = error_of(
        BASE.replace(
            '{ kind = "continuous", ug_per_day = 400.0 }',
            '{ kind = "flex", period = "day", steps = [["mon 00:00", 300.0]] }',
        )
    )
    assert (err.entry, err.field, err.line) == ("pump", "program.steps[0]", 7)


def test_rate_beyond_the_model_is_reported_at_load() -> None:
    err = error_of(BASE.replace("ug_per_day = 400.0", "ug_per_day = 400000.0"))
    assert (err.entry, err.field, err.line) == ("pump", "program.ug_per_day", 7)
    assert "96 to 48000 µg/day" in str(err)  # 0.048 to 24 mL/day at 2000 µg/mL, from the core


def test_actions_out_of_time_order() -> None:
    err = error_of(
        BASE + '\n[[actions]]\nat = 2026-01-07T00:00:00\ndo = "suspend"\n'
        '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "resume"\n'
    )
    assert (err.entry, err.field, err.line) == ("actions[1]", "at", 14)
    assert "time order" in str(err) and err.allowed == ">= 2026-01-07 00:00:00"
    err = error_of(BASE + '\n[[actions]]\nat = 2026-01-01T00:00:00\ndo = "suspend"\n')
    assert (err.entry, err.field) == ("actions[0]", "at") and "start" in str(err)


def test_names_must_exist_and_be_unique() -> None:
    err = error_of(
        BASE + '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "cancel_bolus"\nname = "nope"\n'
    )
    assert (err.entry, err.field, err.line) == ("actions[0]", "name", 12)
    bolus = '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "bolus"\ndose_ug = 5.0\nduration = "PT1M"\nname = "b"\n'
    err = error_of(BASE + bolus + bolus)
    assert (err.entry, err.field, err.line) == ("actions[1]", "name", 21) and "actions[0]" in str(
        err
    )


def test_action_after_run_until_and_offset_datetime() -> None:
    err = error_of(
        BASE
        + '\n[[actions]]\nat = 2026-02-01T00:00:00\ndo = "suspend"\n\n[run]\nuntil = 2026-01-10T00:00:00\n'
    )
    assert (err.entry, err.field, err.line) == ("actions[0]", "at", 10)
    err = error_of(BASE.replace("start = 2026-01-05T08:00:00", "start = 2026-01-05T08:00:00+01:00"))
    assert (err.entry, err.field, err.line) == ("pump", "start", 3) and "naive" in str(err)


def test_custom_model_missing_fields() -> None:
    err = error_of(
        BASE.replace('model = "SYNCHROMED_II_40"', 'model = { name = "rig", reservoir_ml = 20.0 }')
    )
    assert (err.entry, err.field, err.line) == ("pump", "model.stroke_nl", 2) and "preset" in str(
        err
    )


def test_pump_refusal_at_run_time_names_entry_time_and_line() -> None:
    text = BASE + (
        '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "refill"\nadded_ml = 20.0\nconcentration_ug_per_ml = 2000\n'
        '\n[[actions]]\nat = 2026-01-07T10:00:00\ndo = "bolus"\ndose_ug = 50000.0\nduration = "PT1M"\n'
    )
    err = error_of(text)
    assert (err.entry, err.field, err.line, err.time) == (
        "actions[1]",
        "dose_ug",
        18,
        datetime(2026, 1, 7, 10),
    )
    assert isinstance(err.__cause__, itb.ProgrammingError)
    assert str(err).startswith(
        "s.toml:18: actions[1].dose_ug (at 2026-01-07 10:00:00): the pump refused bolus:"
    )
    err = error_of(
        BASE
        + '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "refill"\nadded_ml = 41.0\nconcentration_ug_per_ml = 2000\n'
    )
    assert (err.entry, err.field, err.line) == ("actions[0]", "added_ml", 12) and isinstance(
        err.__cause__, itb.ReservoirError
    )


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(sc.ScenarioError) as info:
        sc.load(tmp_path / "nope.toml")
    assert info.value.file.endswith("nope.toml") and "cannot read" in str(info.value)


def test_key_lines_scan() -> None:
    text = (
        '[pump]\nprogram = { kind = "flex", steps = [\n  ["00:00", 1.0],\n] }\n'
        '[pump.model]\nname = "x"\n[[actions]]\nat = 1\n[[actions]]\n"do" = 2\n[actions.program]\nkind = 3\n'
    )
    lines = key_lines(text)
    assert lines[("pump", "program")] == 2 and lines[("pump", "model", "name")] == 6
    assert lines[("actions", 1, "do")] == 10 and lines[("actions", 1, "program", "kind")] == 12
    assert line_of(lines, ("actions", 0, "missing")) == 7 and line_of(lines, ("nothing",)) is None


# ----- export -----------------------------------------------------------------------------------


def test_events_frame_and_timeseries() -> None:
    result = sc.loads(BASE + "[run]\nuntil = 2026-01-15T08:00:00\n").run()
    frame = result.events_frame()
    assert list(frame.columns[:3]) == ["time", "kind", "severity"] and len(frame) == len(
        result.events
    )
    assert frame["count"].sum() == result.pump.strokes
    ts = result.timeseries(every=timedelta(days=1))
    assert len(ts) == 11 and ts.index[-1] == datetime(2026, 1, 15, 8)
    # independent: 0.2 mL/day, whole 2 µL strokes; 400 µg/day at the tip (path primed with drug)
    for day in range(11):
        assert ts["reservoir_ml"].iloc[day] == pytest.approx(
            40.0 - 2000 * (200_000 * day // 2000) / 1e6
        )
    assert (ts["commanded_ml_per_day"] == 0.2).all() and (
        ts["prescribed_ug_per_day"] == 400.0
    ).all()
    assert ts["tip_dose_ug_per_day"].iloc[1:].tolist() == [400.0] * 10
    assert ts["delivered_ug"].iloc[-1] == result.pump.delivered_ug
    assert ts["battery_mah"].is_monotonic_decreasing
    with pytest.raises(itb.ValidationError):
        result.timeseries(every=timedelta(0))


def test_timeseries_shows_boluses_and_flex_steps() -> None:
    text = BASE.replace(
        '{ kind = "continuous", ug_per_day = 400.0 }',
        '{ kind = "flex", steps = [["00:00", 300.0], ["08:00", 500.0], ["22:00", 300.0]] }',
    )
    text += '\n[[actions]]\nat = 2026-01-05T09:00:00\ndo = "bolus"\ndose_ug = 50.0\nduration = "PT1H"\n\n[run]\nuntil = 2026-01-06T08:00:00\n'
    ts = sc.loads(text).run().timeseries(every=timedelta(minutes=30))
    at = ts["commanded_ml_per_day"]
    assert at[datetime(2026, 1, 5, 8)] == 0.25 and at[datetime(2026, 1, 5, 23)] == 0.15
    assert at[datetime(2026, 1, 5, 9, 30)] == pytest.approx(0.25 + 0.025 * 24)  # 25 µL over 1 h
    assert ts["prescribed_ug_per_day"][datetime(2026, 1, 5, 9, 30)] == 500.0


def test_missing_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    result = sc.loads(BASE + "[run]\nuntil = 2026-01-06T08:00:00\n").run()
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"itb-pump\[pandas\]"):
        result.events_frame()
    with pytest.raises(ImportError, match=r"itb-pump\[pandas\]"):
        result.timeseries()


def test_json_schema_lists_every_action() -> None:
    schema = sc.json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/") and set(
        schema["properties"]
    ) == {"pump", "actions", "run"}
    text = str(schema)
    for name in sc.ACTIONS:
        assert f"'{name}'" in text


def _json_ready(value: object) -> object:
    """TOML values as an editor hands them to a JSON Schema validator (date-times as text)."""
    if isinstance(value, (datetime, time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def test_json_schema_accepts_the_examples_and_rejects_mistakes() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(sc.json_schema())
    for path in EXAMPLES:
        assert list(validator.iter_errors(_json_ready(tomllib.loads(path.read_text())))) == [], (
            path.name
        )
    bad = tomllib.loads(
        BASE
        + '\n[[actions]]\nat = 2026-01-06T00:00:00\ndo = "bolux"\n\n[run]\nuntil = "soon"\nx = 1\n'
    )
    assert (
        len(list(validator.iter_errors(_json_ready(bad)))) == 2
    )  # unknown action; unknown key in [run]


# ----- round trip -------------------------------------------------------------------------------

_DAY_STEPS = st.lists(
    st.tuples(st.integers(1, 23), st.sampled_from([0, 30])), min_size=0, max_size=4, unique=True
)
_DOSE = st.one_of(
    st.just(0.0), st.integers(200, 2000).map(lambda x: x / 2)
)  # 0 or 100..1000 µg/day


@st.composite
def programs(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["continuous", "day", "week"]))
    if kind == "continuous":
        return {"kind": "continuous", "ug_per_day": draw(_DOSE)}
    if kind == "day":
        starts = sorted({(0, 0), *draw(_DAY_STEPS)})
        return {
            "kind": "flex",
            "period": "day",
            "steps": [[f"{h:02d}:{m:02d}", draw(_DOSE)] for h, m in starts],
        }
    days = sorted({0, *draw(st.lists(st.integers(1, 6), max_size=3))})
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return {
        "kind": "flex",
        "period": "week",
        "steps": [[f"{names[d]} 00:00", draw(_DOSE)] for d in days],
    }


@settings(max_examples=25)
@given(
    first=programs(),
    second=programs(),
    bolus_min=st.integers(5, 600),
    conc=st.sampled_from([500, 1000, 2000]),
    hours=st.integers(1, 200),
)
def test_dumped_scenario_round_trips_to_the_same_pump(
    first: dict, second: dict, bolus_min: int, conc: int, hours: int
) -> None:
    start = datetime(2026, 1, 5, 8)
    data = {
        "pump": {
            "model": "SYNCHROMED_II_40",
            "start": start,
            "reservoir_ml": 40.0,
            "concentration_ug_per_ml": conc,
            "catheter_volume_ul": 100.0,
            "program": first,
        },
        "actions": [
            {"at": start + timedelta(hours=hours), "do": "set_program", "program": second},
            {
                "at": start + timedelta(hours=hours),
                "do": "bolus",
                "dose_ug": 25.0,
                "duration": f"PT{bolus_min}M",
                "name": "b",
            },
            {"at": start + timedelta(hours=hours, minutes=1), "do": "cancel_bolus", "name": "b"},
        ],
        "run": {"until": start + timedelta(days=10)},
    }
    scenario = sc.from_dict(data)
    again = sc.loads(scenario.dumps())
    assert again.spec == scenario.spec
    result = again.run()

    def build(p: dict) -> itb.Flex | itb.Continuous:  # independently of itb.scenario
        if p["kind"] == "continuous":
            return itb.Continuous(ug_per_day=p["ug_per_day"])
        if p["period"] == "day":
            return itb.Flex(
                period="day", steps=[(time(int(s[:2]), int(s[3:])), d) for s, d in p["steps"]]
            )
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        return itb.Flex(
            period="week", steps=[((names.index(s[:3]), time(0)), d) for s, d in p["steps"]]
        )

    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=start,
        reservoir_ml=40.0,
        concentration_ug_per_ml=conc,
        catheter_volume_ul=100.0,
        program=build(first),
    )
    pump.advance_to(start + timedelta(hours=hours))
    pump.set_program(build(second))
    bolus_id = pump.bolus(dose_ug=25.0, duration=timedelta(minutes=bolus_min))
    pump.advance_to(start + timedelta(hours=hours, minutes=1))
    pump.cancel_bolus(bolus_id)
    pump.advance_to(start + timedelta(days=10))
    assert result.pump.snapshot() == pump.snapshot()


def test_docs_scenario_format_block_runs() -> None:
    import re

    page = ROOT / "docs" / "guide" / "scenarios.md"
    blocks = re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for block in blocks:
        result = sc.loads(block, source="docs/guide/scenarios.md").run()
        assert result.pump.now == result.until


def test_a_typo_in_a_program_lists_the_program_keys() -> None:
    text = """
[pump]
model = "SYNCHROMED_II_40"
start = 2026-01-05T08:00:00
reservoir_ml = 40.0
concentration_ug_per_ml = 2000
program = { kind = "continuous", ug_per_dya = 400.0 }

[[actions]]
at = 2026-01-05T10:00:00
do = "set_program"
program = { kind = "flex", period = "day", stepz = [["00:00", 300.0]] }
"""
    with pytest.raises(sc.ScenarioError) as err:
        sc.loads(text)
    message = str(err.value)
    assert (
        "pump.program.ug_per_dya: unknown key; did you mean 'ug_per_day'? "
        "(allowed: kind, ug_per_day)" in message
    )
    assert (
        "actions[0].program.stepz: unknown key; did you mean 'steps'? "
        "(allowed: kind, period, steps)" in message
    )
