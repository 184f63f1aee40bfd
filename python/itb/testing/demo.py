"""The testing kit's demo pump (the default of the fixtures and of ``PumpStateMachine``).

It is the bundled demo scenario's pump (``itb/scenario/demo.toml``, the one ``itb demo`` runs:
model, start, fill, concentration, catheter) with a continuous program instead of the demo's
flex one, so that the kit's documented numbers stay round (docs:
decisions/layout.md#the-kits-demo-pump-is-the-bundled-scenarios-pump)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..pump import Pump

__all__ = ["demo_pump", "DEMO_UG_PER_DAY"]

#: The kit's demo program: continuous µg/day (at the demo's 2000 µg/mL: 0.2 mL/day, 100 strokes
#: of 2 µL a day, one every 14.4 min).
DEMO_UG_PER_DAY = 400.0


@lru_cache(maxsize=1)
def _demo_pump_table() -> tuple[Any, dict[str, Any]]:
    """The bundled scenario's model and ``[pump]`` arguments, read once (scenario files are
    immutable; the state machine builds a pump per example)."""
    from ..scenario import demo

    scenario = demo()
    p = scenario.spec.pump
    return scenario.model, {
        "now": p.start,
        "reservoir_ml": p.reservoir_ml,
        "concentration_ug_per_ml": p.concentration_ug_per_ml,
        "catheter_volume_ul": p.catheter_volume_ul,
        "path_primed": p.path_primed,
        "stroke_error_ppm": p.stroke_error_ppm,
    }


def demo_pump() -> Pump:
    """A fresh demo pump: the bundled demo scenario's pump (SynchroMed II 40 mL, 40 mL of
    2000 µg/mL at 2026-01-05 08:00) running continuous 400 µg/day (0.2 mL/day: 100 strokes of
    2 µL a day, one every 14.4 min). Nothing advanced, no event pending."""
    from ..program import Continuous
    from ..pump import Pump

    model, args = _demo_pump_table()
    return Pump(model, program=Continuous(ug_per_day=DEMO_UG_PER_DAY), **args)
