"""The request objects the strategies yield: arguments of ``pump.bolus``, ``pump.refill`` and ``pump.set_patient_bolus_limits``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ...pump import Pump

# ----- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BolusRequest:
    """Arguments of ``pump.bolus``: ``dose_ug`` µg over ``duration`` from ``start`` after now."""

    dose_ug: float
    duration: timedelta
    start: timedelta = timedelta(0)

    def apply(self, pump: Pump) -> int:
        """``pump.bolus(dose_ug, duration, start=pump.now + start)``; returns the bolus id."""
        return pump.bolus(self.dose_ug, self.duration, start=pump.now + self.start)


@dataclass(frozen=True)
class RefillRequest:
    """Arguments of ``pump.refill``."""

    added_ml: float
    concentration_ug_per_ml: Any
    aspirated_ml: float | None = None
    tolerance_ml: float = 1.0
    tolerance_pct: float = 20.0

    def apply(self, pump: Pump) -> Any:
        """``pump.refill(...)``; returns the :class:`itb.RefillReport`."""
        return pump.refill(
            self.added_ml,
            self.concentration_ug_per_ml,
            self.aspirated_ml,
            tolerance_ml=self.tolerance_ml,
            tolerance_pct=self.tolerance_pct,
        )


@dataclass(frozen=True)
class PatientLimits:
    """Arguments of ``pump.set_patient_bolus_limits``."""

    dose_ug: float
    duration: timedelta
    lockout: timedelta
    max_per_24h: int

    def apply(self, pump: Pump) -> None:
        pump.set_patient_bolus_limits(self.dose_ug, self.duration, self.lockout, self.max_per_24h)
