r"""Scenario files: a pump, timed actions and a run, in TOML (or the same schema as a dict/JSON).

The room's modules, one job each: :mod:`itb.scenario.spec` (the format as pydantic models,
value types, the action table, JSON Schema), :mod:`itb.scenario.load` (TOML file, text or dict
→ :class:`Scenario`), :mod:`itb.scenario.issues` (:class:`ScenarioError` and its issues),
:mod:`itb.scenario.run` (:class:`Scenario`: checks at load, accessors, ``run``; and
:class:`ScenarioResult`), :mod:`itb.scenario.loop` (the one run loop, as :class:`Step`\ s),
:mod:`itb.scenario.write` (TOML writing with tomli-w), :mod:`itb.scenario.bundled` (the bundled
demo scenario, ``demo.toml``) and :mod:`itb.scenario.toml_lines`
(line numbers for errors). This package re-exports the public
names, so ``itb.scenario.load(...)`` and ``from itb.scenario import Scenario`` keep working.

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

from .bundled import demo
from .issues import Issue, ScenarioError
from .load import from_dict, load, loads
from .loop import PumpTarget, RunTarget, Step
from .run import Scenario, ScenarioResult
from .spec import ACTIONS, FAULT_ACTIONS, ScenarioSpec, format_duration, json_schema, parse_duration
from .write import dumps

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Issue",
    "ScenarioSpec",
    "load",
    "loads",
    "from_dict",
    "dumps",
    "json_schema",
    "ACTIONS",
    "FAULT_ACTIONS",
    "parse_duration",
    "format_duration",
    "Step",
    "RunTarget",
    "PumpTarget",
    "demo",
]
