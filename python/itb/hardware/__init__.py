"""The hardware adapter layer: drive a pump test rig from the simulation.

- :mod:`~itb.hardware.protocol` — the framed, HMAC-SHA256-authenticated, sequence-numbered rig
  protocol (pure bytes, no I/O);
- :mod:`~itb.hardware.drivers` — the :class:`PumpDriver` protocol and the in-process
  :class:`SimulatedDriver` with injectable faults;
- :mod:`~itb.hardware.serial_driver` — :class:`SerialDriver` over pyserial (``itb-pump[rig]``);
- :mod:`~itb.hardware.rig` / :mod:`~itb.hardware.emulator` — the emulated rig and its server;
- :mod:`~itb.hardware.journal` / :mod:`~itb.hardware.controller` — the crash-safe controller.

Engineering tool for test rigs; **not a medical device**.
"""

from .controller import Controller, RunReport, schedule_fingerprint, stroke_schedule
from .drivers import DeliveryAck, PumpDriver, RigStatus, SimulatedDriver
from .journal import Journal
from .protocol import Command, Role, load_keys
from .rig import Rig, Scale, read_record
from .serial_driver import SerialDriver

__all__ = [
    "Command",
    "Controller",
    "DeliveryAck",
    "Journal",
    "PumpDriver",
    "Rig",
    "RigStatus",
    "Role",
    "RunReport",
    "Scale",
    "SerialDriver",
    "SimulatedDriver",
    "load_keys",
    "read_record",
    "schedule_fingerprint",
    "stroke_schedule",
]
