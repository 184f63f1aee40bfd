"""Compatibility path: the driver interface is in :mod:`itb.hardware.client`, the in-process
test double in :mod:`itb.hardware.fakes`."""

from .client import DeliveryAck, PumpDriver, RigStatus
from .fakes import SimulatedDriver

__all__ = ["PumpDriver", "RigStatus", "DeliveryAck", "SimulatedDriver"]
