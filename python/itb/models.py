"""Pump models and presets.

Every preset figure is **nominal and editable** (``dataclasses.replace(preset, ...)``): public,
approximate figures (see ``shared/FACTS.md``), not a device specification. Where no public
figure was found the value is a documented placeholder:

======================  =============  ==========  ==========  =========  ========  =========
preset                  reservoir mL   stroke nL   min mL/d    max mL/d   low mL    path µL
======================  =============  ==========  ==========  =========  ========  =========
SYNCHROMED_II_20        20             2000 (*)    0.048       24.0       2.0       100 (*)
SYNCHROMED_II_40        40             2000 (*)    0.048       24.0       2.0       100 (*)
PROMETRA_II_20          20             2000 (*)    0.048 (*)   24.0 (*)   3.0       100 (*)
PROMETRA_II_40          40             2000 (*)    0.048 (*)   24.0 (*)   3.0       100 (*)
======================  =============  ==========  ==========  =========  ========  =========

(*) placeholder, not from a public source. SynchroMed figures: reservoir, flow range and the
2 mL low-reservoir alarm are public nominal values (from memory, unverified). Prometra: the
3.0 mL refill point is from the Flowonix PTC guide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _core
from ._units import ml_to_nl, ul_to_nl

__all__ = ["PumpModel", "SYNCHROMED_II_20", "SYNCHROMED_II_40", "PROMETRA_II_20", "PROMETRA_II_40", "PRESETS"]


@dataclass(frozen=True)
class PumpModel:
    """Hardware figures of a pump model, in clinical units (validated on creation).

    ``stroke_nl`` is the volume of one pump stroke (nL); rates are mL/day; ``pump_path_ul`` is the
    dead volume of the pump's internal tubing (µL). ``battery`` is reserved for the battery model.
    """

    name: str
    reservoir_ml: float
    stroke_nl: int
    min_rate_ml_per_day: float
    max_rate_ml_per_day: float
    low_reservoir_ml: float = 2.0
    pump_path_ul: float = 0.0
    battery: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _core.validate_model(self.exact())

    def exact(self) -> dict[str, Any]:
        """The model in the core's exact integer units (nL, nL/day)."""
        return {
            "name": self.name,
            "reservoir_nl": ml_to_nl(self.reservoir_ml, "reservoir_ml"),
            "stroke_nl": _int(self.stroke_nl, "stroke_nl"),
            "min_rate_nl_per_day": ml_to_nl(self.min_rate_ml_per_day, "min_rate_ml_per_day"),
            "max_rate_nl_per_day": ml_to_nl(self.max_rate_ml_per_day, "max_rate_ml_per_day"),
            "low_reservoir_nl": ml_to_nl(self.low_reservoir_ml, "low_reservoir_ml"),
            "pump_path_nl": ul_to_nl(self.pump_path_ul, "pump_path_ul"),
        }

    @classmethod
    def from_exact(cls, d: dict[str, Any]) -> PumpModel:
        """Inverse of :meth:`exact` (integer nL fields back to clinical units)."""
        return cls(
            name=d["name"],
            reservoir_ml=d["reservoir_nl"] / 1e6,
            stroke_nl=d["stroke_nl"],
            min_rate_ml_per_day=d["min_rate_nl_per_day"] / 1e6,
            max_rate_ml_per_day=d["max_rate_nl_per_day"] / 1e6,
            low_reservoir_ml=d["low_reservoir_nl"] / 1e6,
            pump_path_ul=d["pump_path_nl"] / 1e3,
        )


def _int(value: object, field: str) -> int:
    from .errors import ValidationError

    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field}: expected an int, got {value!r}", field)
    return value


def _synchromed(reservoir_ml: float) -> PumpModel:
    return PumpModel(
        name=f"SynchroMed II {int(reservoir_ml)} mL (nominal)",
        reservoir_ml=reservoir_ml,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        low_reservoir_ml=2.0,
        pump_path_ul=100.0,
    )


def _prometra(reservoir_ml: float) -> PumpModel:
    return PumpModel(
        name=f"Prometra II {int(reservoir_ml)} mL (nominal)",
        reservoir_ml=reservoir_ml,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        low_reservoir_ml=3.0,
        pump_path_ul=100.0,
    )


SYNCHROMED_II_20 = _synchromed(20.0)
SYNCHROMED_II_40 = _synchromed(40.0)
PROMETRA_II_20 = _prometra(20.0)
PROMETRA_II_40 = _prometra(40.0)
PRESETS = {
    "SYNCHROMED_II_20": SYNCHROMED_II_20,
    "SYNCHROMED_II_40": SYNCHROMED_II_40,
    "PROMETRA_II_20": PROMETRA_II_20,
    "PROMETRA_II_40": PROMETRA_II_40,
}
