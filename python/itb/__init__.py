"""itb — exact, fast simulation of intrathecal baclofen (ITB) pump therapy.

An engineering tool for planning software, device test rigs and property-based tests.
**Not a medical device; not for clinical decisions.**
"""

from . import (
    clinical,  # after .pump: clinical builds on it
    fleet,
    models,
)
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

__version__ = "0.1.0"

__all__ = [
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
