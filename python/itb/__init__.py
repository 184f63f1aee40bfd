"""itb — exact, fast simulation of intrathecal baclofen (ITB) pump therapy.

An engineering tool for planning software, device test rigs and property-based tests.
**Not a medical device; not for clinical decisions.**

``import itb`` is light: the names below are loaded when first used (PEP 562), so a tool that only
imports ``itb`` — the pytest plugin of the testing kit, say — pays nothing until it touches one
(figures: docs: guide/performance.md#import-cost). ``itb.Pump`` loads the pump face and numpy;
``itb.clinical``, ``itb.fleet`` and the other submodules load when first named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from . import clinical, fleet, models
    from ._core import __version__
    from .errors import (
        AuthenticationError,
        EndOfServiceError,
        ItbError,
        MissingExtraError,
        ProgrammingError,
        ProtocolError,
        ProtocolViolation,
        ReservoirError,
        RigError,
        SnapshotError,
        ValidationError,
    )
    from .events import Event, EventLog
    from .fleet import FleetResult, simulate_many
    from .models import PumpModel
    from .program import Continuous, Flex
    from .pump import Bolus, BolusPlan, PatientBolusResult, Projection, Pump, RefillReport

#: public name -> the module that defines it (relative to this package)
_NAMES = {
    "__version__": "._core",
    **{
        name: ".errors"
        for name in (
            "AuthenticationError",
            "EndOfServiceError",
            "ItbError",
            "MissingExtraError",
            "ProgrammingError",
            "ProtocolError",
            "ProtocolViolation",
            "ReservoirError",
            "RigError",
            "SnapshotError",
            "ValidationError",
        )
    },
    "Event": ".events",
    "EventLog": ".events",
    "FleetResult": ".fleet",
    "simulate_many": ".fleet",
    "PumpModel": ".models",
    "Continuous": ".program",
    "Flex": ".program",
    **{
        name: ".pump"
        for name in (
            "Bolus",
            "BolusPlan",
            "PatientBolusResult",
            "Projection",
            "Pump",
            "RefillReport",
        )
    },
}
#: submodules reachable as attributes of ``itb`` after ``import itb`` alone
_SUBMODULES = ("models", "fleet", "clinical")

__all__ = [
    "__version__",
    "AuthenticationError",
    "ProtocolError",
    "RigError",
    "Bolus",
    "BolusPlan",
    "PatientBolusResult",
    "Continuous",
    "EndOfServiceError",
    "Event",
    "EventLog",
    "Flex",
    "ItbError",
    "MissingExtraError",
    "Projection",
    "ProgrammingError",
    "ProtocolViolation",
    "Pump",
    "RefillReport",
    "PumpModel",
    "ReservoirError",
    "SnapshotError",
    "ValidationError",
    "models",
    "fleet",
    "clinical",
    "FleetResult",
    "simulate_many",
]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'itb' has no attribute {name!r}")
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
