"""The hardware adapter layer: drive a pump test rig from the simulation.

- :mod:`~itb.hardware.protocol` — the framed, HMAC-SHA256-authenticated, sequence-numbered rig
  protocol (pure bytes, no I/O);
- :mod:`~itb.hardware.transport` — the byte links (serial device, pty, ``socket://``) over
  pyserial (``itb-pump[rig]``);
- :mod:`~itb.hardware.client` — the :class:`PumpDriver` protocol a controller needs and
  :class:`SerialDriver`, the driver speaking the rig protocol over a link;
- :mod:`~itb.hardware.fakes` — test doubles: the in-process :class:`SimulatedDriver` with
  injectable faults;
- :mod:`~itb.hardware.rig` / :mod:`~itb.hardware.emulator` — the emulated rig and its server;
- :mod:`~itb.hardware.journal` / :mod:`~itb.hardware.controller` — the crash-safe controller
  (:mod:`~itb.hardware.plan`: the stroke schedule it executes);
- :mod:`~itb.hardware.measurement` / :mod:`~itb.hardware.metrology` /
  :mod:`~itb.hardware.balance` — gravimetric flow measurement and the balances it reads.

``itb.hardware.drivers`` and ``itb.hardware.serial_driver`` are compatibility paths (re-exports).

Engineering tool for test rigs; **not a medical device**.
"""

from .client import DeliveryAck, PumpDriver, RigStatus, SerialDriver
from .controller import Controller, RunReport, schedule_fingerprint, stroke_schedule
from .fakes import SimulatedDriver
from .journal import Journal
from .protocol import Command, Role, load_keys
from .rig import Rig, Scale, read_record

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
