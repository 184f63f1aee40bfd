"""Scenario files: a pump, timed actions and a run, in TOML (or the same schema as a dict/JSON).

The room's modules: :mod:`itb.scenario.spec` (the format as pydantic models, value types, JSON
Schema), :mod:`itb.scenario.run` (loading, errors with lines, the run loop, TOML writing) and
:mod:`itb.scenario.toml_lines` (line numbers for errors). This package re-exports the public
names, so ``itb.scenario.load(...)`` and ``from itb.scenario import Scenario`` keep working.

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

from .run import (
    ACTIONS,
    FAULT_ACTIONS,
    Issue,
    Scenario,
    ScenarioError,
    ScenarioResult,
    ScenarioSpec,
    dumps,
    format_duration,
    from_dict,
    json_schema,
    load,
    loads,
    parse_duration,
)

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
]
