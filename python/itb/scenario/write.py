"""Writing scenarios as TOML (with ``tomli-w``): :func:`dumps` gives text that loads back to an
equal scenario. Durations are written as ISO 8601 strings (``"PT30M"``), times as TOML local
date-times."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import tomli_w

from .._time import format_duration

__all__ = ["dumps"]


def dumps(scenario: Any) -> str:
    """TOML text of a scenario (an :class:`itb.scenario.Scenario` or its ``ScenarioSpec``);
    loading it gives the same scenario."""
    spec = getattr(scenario, "spec", scenario)
    data: dict[str, Any] = {"pump": _plain(spec.pump.model_dump(exclude_none=True))}
    if spec.actions:
        data["actions"] = [_plain(a.model_dump(exclude_none=True)) for a in spec.actions]
    if spec.run.until is not None:
        data["run"] = {"until": spec.run.until}
    return tomli_w.dumps(data)


def _plain(value: Any) -> Any:
    """``value`` with durations as ISO 8601 text and tuples as lists (what TOML can hold)."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
