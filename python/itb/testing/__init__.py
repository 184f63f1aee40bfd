"""Testing kit for suites that test their own pump software or rig against itb.

* :class:`Oracle` — from the operations a device received (a scenario, or calls recorded as they
  happen), the exact strokes, volumes, dose at the tip and alarms it must have produced, all from
  the Rust-backed :class:`itb.Pump`;
* :func:`assert_delivery_matches`, :func:`assert_strokes_match`, :func:`assert_alarms_match` —
  ``AssertionError`` saying where the device first diverged;
* :mod:`itb.testing.invariants` — the pump's invariants as plain functions;
* :class:`PumpStateMachine` — a hypothesis ``RuleBasedStateMachine`` to subclass with one adapter
  method per action of the device under test (every action a scenario can hold), comparing the
  volume it pumped and the alarms it raised with the oracle's (needs ``pip install itb[testing]``);
* a pytest plugin (``itb.testing.pytest_plugin``, registered as the ``itb`` pytest11 entry point):
  fixtures ``itb_pump``, ``itb_oracle``, the hypothesis profile ``itb-ci``, the marker ``itb_device``.

Importing this package does not import hypothesis; :class:`PumpStateMachine` does, on first use.
"""

from __future__ import annotations

from typing import Any

from . import invariants
from .asserts import assert_alarms_match, assert_delivery_matches, assert_strokes_match
from .demo import demo_pump
from .oracle import Expectation, Oracle

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
    if name == "PumpStateMachine":  # imports hypothesis: only when asked for
        from .machine import PumpStateMachine

        return PumpStateMachine
    raise AttributeError(f"module 'itb.testing' has no attribute {name!r}")
