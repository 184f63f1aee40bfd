"""No input on any surface reaches a foreign exception (docs: guide/inputs.md).

* Scenario documents: hypothesis builds TOML from a valid scenario with extreme, negative,
  non-finite and wrongly typed values put into every key the schema has (enumerated from the
  pydantic models, so a new key is fuzzed too). Loading and running either succeeds or raises an
  ``itb.ItbError`` subclass (``ScenarioError`` for the file).
* Command lines: each command's options (enumerated from the parser) with mutated values.
  ``itb.cli.main`` returns 0, 1 or 2 with a message — never a traceback or "internal error".

Short by default; ``ITB_FUZZ_SCALE=20`` runs 20× the examples.
"""

from __future__ import annotations

import argparse
import math
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import itb
import itb.scenario as sc
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itb._time import format_duration
from itb.scenario.spec import (
    ACTIONS,
    BatterySpec,
    ContinuousProgram,
    FlexProgram,
    ModelSpec,
    PumpSpec,
)

SCALE = float(os.environ.get("ITB_FUZZ_SCALE", "1"))
ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 5, 8)

EXTREME = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**31,
            2**63 - 1,
            2**63,
            -(2**63),
            10**30,
            -(10**30),
            0.0,
            -0.0,
            -1.5,
            1e-300,
            5e-324,
            1e300,
            1.7976931348623157e308,
            math.inf,
            -math.inf,
            math.nan,
            True,
            False,
            "",
            "x",
            "PT30M",
            "P1000000000D",
            "P99999999D",
            "PT1e300S",
            "-PT1M",
            "P1M",
            "PT0S",
            "PT0.0001S",
            "99:99",
            "08:00",
            "mon 08:00",
            "SYNCHROMED_II_40",
            "NOMINAL",
            "none",
            datetime(1, 1, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
            date(1, 1, 1),
            [],
            [1, 2],
            {},
            {"kind": "continuous", "ug_per_day": 1e300},
        ]
    ),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=8),
)


ARGS: dict[str, dict[str, Any]] = {
    "bolus": {"dose_ug": 50.0, "duration": "PT3H", "name": "b"},
    "cancel_bolus": {"name": "b"},
    "refill": {"added_ml": 1.0, "concentration_ug_per_ml": 4000},
    "set_program": {"program": {"kind": "continuous", "ug_per_day": 300.0}},
    "set_patient_bolus_limits": {"dose_ug": 20.0, "duration": "PT10M", "max_per_24h": 4},
    "revise_catheter": {"volume_ul": 120.0},
    "replace_fluid_path": {"catheter_volume_ul": 100.0},
    "inject_leak": {"position_ul": 50.0},
}
_FIRST = ["set_program", "bolus", "cancel_bolus", "refill", "start_bridge_bolus"]
_LAST = ["revise_catheter", "replace_fluid_path", "start_priming_bolus"]
_PAIRED = ["inject_disconnection", "clear_leak"]  # one leak at a time
ORDER = _FIRST + [d for d in ACTIONS if d not in _FIRST + _LAST + _PAIRED[:1]] + _PAIRED + _LAST


def base() -> dict[str, Any]:
    return {
        "pump": {
            "model": {"preset": "SYNCHROMED_II_40", "battery": {"preset": "NOMINAL"}},
            "start": T0,
            "reservoir_ml": 30.0,
            "concentration_ug_per_ml": 2000,
            "catheter_volume_ul": 100.0,
            "program": {"kind": "continuous", "ug_per_day": 400.0},
        },
        "actions": [
            {"at": T0 + timedelta(hours=i + 1), "do": do, **ARGS.get(do, {})}
            for i, do in enumerate(ORDER)
        ],
        "run": {"until": T0 + timedelta(days=2)},
    }


def key_paths() -> list[tuple[Any, ...]]:
    """Every key of the schema, as a path into :func:`base`'s document."""
    paths: list[tuple[Any, ...]] = [("pump", k) for k in PumpSpec.model_fields]
    paths += [("pump", "model", k) for k in ModelSpec.model_fields]
    paths += [("pump", "model", "battery", k) for k in BatterySpec.model_fields]
    paths += [("pump", "program", k) for k in ContinuousProgram.model_fields]
    paths += [("run", "until")]
    doc = base()
    for i, action in enumerate(doc["actions"]):
        paths += [("actions", i, k) for k in ACTIONS[action["do"]].model_fields]
        if action["do"] == "set_program":
            paths += [("actions", i, "program", k) for k in FlexProgram.model_fields]
    return paths


PATHS = key_paths()


def put(doc: dict, path: tuple[Any, ...], value: Any) -> None:
    node: Any = doc
    for step in path[:-1]:
        if isinstance(node, dict) and not isinstance(node.get(step), (dict, list)):
            node[step] = {}
        node = node[step]
    node[path[-1]] = value


def toml_value(v: Any) -> str:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return _toml(v)


def _toml(v: Any) -> str:
    """One TOML value as tomli-w writes it (durations as ISO 8601 text, as scenario files)."""
    if isinstance(v, timedelta):
        v = format_duration(v)
    return tomli_w.dumps({"v": v}).removeprefix("v = ").rstrip("\n")


def to_toml(doc: dict) -> str:
    lines = ["[pump]"] + [f"{k} = {toml_value(v)}" for k, v in doc["pump"].items()]
    for action in doc["actions"]:
        lines += ["", "[[actions]]"] + [f"{k} = {toml_value(v)}" for k, v in action.items()]
    lines += ["", "[run]"] + [f"{k} = {toml_value(v)}" for k, v in doc["run"].items()]
    return "\n".join(lines) + "\n"


def test_the_document_is_valid_and_covers_every_action() -> None:
    result = sc.loads(to_toml(base())).run()
    assert {a.do for a in result.scenario.actions} == set(ACTIONS)
    assert len(PATHS) > 60


@settings(
    max_examples=int(60 * SCALE),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    mutations=st.lists(st.tuples(st.sampled_from(PATHS), EXTREME), min_size=1, max_size=3),
    drop=st.lists(st.integers(0, 30), max_size=2),
)
def test_any_scenario_document_loads_runs_or_names_the_problem(
    mutations: list[tuple[tuple[Any, ...], Any]], drop: list[int]
) -> None:
    doc = base()
    for path, value in mutations:
        put(doc, path, value)
    for i in drop:
        if i < len(doc["actions"]):
            del doc["actions"][i]
    text = to_toml(doc)
    try:
        scenario = sc.loads(text, source="fuzz.toml")
        scenario.run()
    except sc.ScenarioError as err:
        assert err.file == "fuzz.toml" and "fuzz.toml:" in str(err), str(err)
        assert "Traceback" not in str(err) and "..=" not in str(err), str(err)
    except itb.ItbError:
        pass


# ----- command lines ---------------------------------------------------------------------------


def commands() -> list[tuple[list[str], list[argparse.Action]]]:
    """(command path, its options) of every runnable command (rig link commands excluded: they
    open a port, tested with the emulator in test_hardware_e2e)."""
    from itb.cli.app import _parser

    out: list[tuple[list[str], list[argparse.Action]]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, [*path, name])
        if not subs and path:
            out.append(
                (path, [a for a in parser._actions if a.option_strings and a.dest != "help"])
            )

    walk(_parser(), [])
    return out


SKIP = {
    "rig emulate",
    "rig balance-emulate",
    "rig accuracy",
    "rig run",
    "rig status",
    "rig measure",
    "rig limits",
    "rig bolus",
}
RUNNABLE = [(p, o) for p, o in commands() if " ".join(p) not in SKIP]
ADULT = str(ROOT / "examples" / "adult_sci_2000.toml")
OPTION_VALUES = st.sampled_from(
    [
        "7",
        "-7",
        "0",
        "7d",
        "30min",
        "P1000000000D",
        "P1M",
        "nan",
        "inf",
        "1e400",
        "",
        "x",
        "2026-01-05T08:00",
        "2026-01-05T08:00+01:00",
        "/no/such/dir/x.csv",
        "true",
    ]
)


def test_every_command_is_fuzzed() -> None:
    names = {" ".join(p) for p, _ in commands()}
    assert {"check", "run", "project", "plan-refill", "plot", "demo", "trumpet"} <= names


@pytest.mark.parametrize(
    "path, options",
    RUNNABLE,
    ids=lambda x: " ".join(x) if isinstance(x, list) and x and isinstance(x[0], str) else "",
)
@settings(max_examples=int(5 * SCALE), deadline=None)
@given(data=st.data())
def test_any_command_line_exits_0_1_or_2_with_a_message(
    path: list[str], options: list[argparse.Action], data: Any, tmp_path_factory: Any
) -> None:
    from itb.cli.app import main

    argv = list(path)
    if path[0] in ("check", "run", "project", "plan-refill", "plot"):
        argv.append(data.draw(st.sampled_from([ADULT, "/no/such.toml", str(ROOT)])))
    if path[0] == "trumpet":
        argv.append(data.draw(st.sampled_from([ADULT, "/no/such.csv"])))
    if path[-1] in ("keygen", "journal"):
        argv.append(str(tmp_path_factory.mktemp("f") / "k"))
    for action in data.draw(st.lists(st.sampled_from(options), max_size=3)) if options else []:
        argv.append(action.option_strings[-1])
        if action.nargs != 0:
            argv.append(data.draw(OPTION_VALUES))
    import contextlib
    import io

    err, out = io.StringIO(), io.StringIO()
    # option values such as "true" or "x" may name output files: write them in a scratch folder
    with (
        contextlib.chdir(tmp_path_factory.mktemp("cwd")),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
    ):
        code = main(argv)
    text = err.getvalue()
    assert code in (0, 1, 2), (argv, code, text)
    assert "internal error" not in text and "Traceback" not in text, (argv, text)
    if code:  # the message: on stderr, or in the JSON asked for
        assert text.strip() or '"error"' in out.getvalue(), argv
