"""The bundled demo scenario (``demo.toml`` next to this module): what ``itb demo`` runs, the
benchmarks' demo pump, and a ready example.

Simulation only — not a medical device."""

from __future__ import annotations

from importlib import resources
from itertools import islice

from ..pump import Pump
from .load import loads
from .loop import PumpTarget
from .run import Scenario

__all__ = ["demo", "demo_pump"]


def demo() -> Scenario:
    """The bundled demo scenario: SynchroMed II 40 mL (nominal preset), 40 mL of 2000 µg/mL at
    2026-01-05 08:00, a flex day program (00:00 300 µg/day, 08:00 500 µg/day, 22:00
    300 µg/day), and one 50 µg bolus over 30 min starting at 10:00 on day 1 (scheduled at the
    start). No ``[run] until``: ``itb demo`` chooses the end."""
    text = resources.files(__package__).joinpath("demo.toml").read_text(encoding="utf-8")
    return loads(text, source="itb/scenario/demo.toml")


def demo_pump() -> Pump:
    """The demo scenario's pump after the calls made at its start (the bolus is scheduled, no
    time has passed; the calls' events are still pending, as after calling the pump directly)."""
    scenario = demo()
    target = PumpTarget(scenario.pump())
    at_start = sum(1 for a in scenario.actions if a.at == scenario.start)
    # only the start's action steps: the end step's advance would flush the pending events
    for _ in islice(scenario.steps(until=scenario.start, target=target), at_start):
        pass
    return target.pump
