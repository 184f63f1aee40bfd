"""Testing kit for suites that test their own pump software or rig against itb.

* :class:`Oracle` — from the operations a device received (a scenario, or calls recorded as they
  happen), the exact strokes, volumes, dose at the tip and alarms it must have produced, all from
  the Rust-backed :class:`itb.Pump`;
* :func:`assert_delivery_matches`, :func:`assert_strokes_match`, :func:`assert_alarms_match` —
  ``AssertionError`` saying where the device first diverged;
* :mod:`itb.testing.invariants` — the pump's invariants as plain functions;
* :class:`PumpStateMachine` — a hypothesis ``RuleBasedStateMachine`` to subclass with one adapter
  method per action of the device under test (every action a scenario can hold), comparing the
  volume it pumped and the alarms it raised with the oracle's (needs ``pip install itb-pump[testing]``);
* a pytest plugin (``itb.testing.pytest_plugin``, registered as the ``itb`` pytest11 entry point):
  fixtures ``itb_pump``, ``itb_oracle``, the hypothesis profile ``itb-ci``, the marker ``itb_device``.

Importing this package imports nothing else (names load when first used); :class:`PumpStateMachine`
imports hypothesis, on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded when first used (PEP 562), so the pytest plugin's parent stays light
    from . import invariants
    from .asserts import assert_alarms_match, assert_delivery_matches, assert_strokes_match
    from .demo import demo_pump
    from .machine import PumpStateMachine
    from .oracle import Expectation, Oracle

_NAMES = {
    "Oracle": ".oracle",
    "Expectation": ".oracle",
    "assert_delivery_matches": ".asserts",
    "assert_strokes_match": ".asserts",
    "assert_alarms_match": ".asserts",
    "PumpStateMachine": ".machine",  # imports hypothesis: only when asked for
    "demo_pump": ".demo",
}

__all__ = [
    "Oracle",
    "Expectation",
    "assert_delivery_matches",
    "assert_strokes_match",
    "assert_alarms_match",
    "invariants",
    "PumpStateMachine",
    "demo_pump",
]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
    elif name == "invariants":
        value = importlib.import_module(f"{__name__}.invariants")
    else:
        raise AttributeError(f"module 'itb.testing' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
