"""itb — exact, fast simulation of intrathecal baclofen (ITB) pump therapy.

An engineering tool for planning software, device test rigs and property-based tests.
**Not a medical device; not for clinical decisions.**
"""

from . import (
    clinical,  # after .pump: clinical builds on it
    fleet,
    models,
)
from ._core import __version__
from .errors import (
    AuthenticationError,
    EndOfServiceError,
    ItbError,
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
