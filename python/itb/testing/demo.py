"""The testing kit's demo pump (the default of the fixtures and of ``PumpStateMachine``)."""

from __future__ import annotations

from typing import Any

__all__ = ["demo_pump"]


def demo_pump() -> Any:
    """A fresh demo-like pump: SynchroMed II 40 mL, 40 mL of 2000 µg/mL at 2026-01-05 08:00,
    continuous 400 µg/day (0.2 mL/day: 100 strokes of 2 µL a day, one every 14.4 min)."""
    from datetime import datetime

    from ..models import SYNCHROMED_II_40
    from ..program import Continuous
    from ..pump import Pump

    return Pump(
        SYNCHROMED_II_40,
        now=datetime(2026, 1, 5, 8, 0),
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=Continuous(ug_per_day=400),
    )
