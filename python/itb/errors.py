"""Exception hierarchy of itb. The Rust core's errors are mapped onto these classes in one
place (``rust/python/src/errors.rs``); each carries the ``field`` it is about."""

from __future__ import annotations

__all__ = [
    "ItbError",
    "ValidationError",
    "ProgrammingError",
    "ReservoirError",
    "SnapshotError",
    "EndOfServiceError",
    "ProtocolViolation",
    "ProtocolError",
    "AuthenticationError",
    "RigError",
    "BalanceError",
    "BalanceOverload",
    "BalanceUnderload",
    "BalanceBusy",
    "BalanceProtocolError",
    "BalanceDeviceError",
    "ExternalToolError",
    "MissingExtraError",
]


class ItbError(Exception):
    """Base class of every itb error. ``field`` names the offending argument ('' if none)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ValidationError(ItbError, ValueError):
    """A value is malformed or out of range (NaN, negative, tz-aware time, time in the past…)."""


class ProgrammingError(ItbError):
    """A program or bolus exceeds the pump model's rate limits."""


class ReservoirError(ItbError):
    """Reservoir misuse: overfill, bolus from an empty reservoir."""


class SnapshotError(ItbError, ValueError):
    """Snapshot bytes are corrupt, truncated, foreign or of an unknown version."""


class EndOfServiceError(ItbError):
    """The battery reached end of service (EOS): delivery stopped for good; calls that would
    deliver (program, bolus, resume…) are refused."""


class ProtocolViolation(ValidationError):
    """A clinical-workflow step outside its protocol (``itb.clinical``): a screening dose that is
    not the next one, given too soon or after the outcome is known; a response recorded too early.
    ``field`` names the offending argument; ``reason`` is a short code (``wrong_dose``,
    ``too_soon``, ``awaiting_response``, ``trial_closed``, ``no_dose_pending``,
    ``observation_incomplete``, ``no_effective_dose``, ``denied``, ``stale``)."""

    def __init__(self, message: str, field: str = "", reason: str = "") -> None:
        super().__init__(message, field)
        self.reason = reason


class ProtocolError(ItbError):
    """A rig frame or exchange is malformed: truncated, oversized, unknown version or command,
    out-of-order or replayed sequence number, wrong session, or the peer did not answer in time.
    ``field`` names the frame field (``length``, ``version``, ``command``, ``seq``…)."""


class AuthenticationError(ProtocolError):
    """A rig frame's HMAC-SHA256 tag does not verify, the handshake failed, or the role is not
    allowed the command (``field`` is ``tag``, ``handshake`` or ``role``)."""


class RigError(ItbError):
    """The rig understood the command and refused it (stopped, motor stall, stroke-id gap…) or the
    link to it failed; ``field`` names the reason code."""


class BalanceError(ItbError):
    """A precision balance (MT-SICS or Sartorius SBI, ``itb.hardware.balance``) refused or could
    not give a reading; ``field`` names the reason (``overload``, ``underload``, ``busy``,
    ``error``, ``reply``, ``timeout``, ``port``…)."""


class BalanceOverload(BalanceError):
    """The load is above the balance's weighing range (MT-SICS ``S +``, SBI ``H``)."""


class BalanceUnderload(BalanceError):
    """The load is below the balance's weighing range, e.g. the pan was lifted (MT-SICS ``S -``,
    SBI ``L``)."""


class BalanceBusy(BalanceError):
    """The balance could not execute the command now: it is taring or adjusting, or no stable
    reading came within its stability timeout (MT-SICS ``S I``/``Z I``/``T I``, SBI ``C``)."""


class BalanceProtocolError(BalanceError, ProtocolError):
    """A balance reply is malformed, too long, not the reply to the command sent, or did not
    come in time (``field`` is ``reply`` or ``timeout``); also a :class:`ProtocolError`."""


class ExternalToolError(ItbError):
    """A program itb runs (not a Python package) is missing or failed, e.g. the headless
    browser that prints a test report as PDF; the message names what to install. ``field``
    names the option that needs it (``pdf``)."""


class BalanceDeviceError(BalanceError):
    """The balance reports an error of its own instead of a value: Sartorius SBI ``Err ##`` /
    ``Err ###`` or ``APP.ERR`` / ``DIS.ERR`` / ``PRT.ERR`` (application, display, printer).
    ``code`` is the code as printed (``"02"``, ``"101"``, ``"APP.ERR"``); what it means depends
    on the model (its operating instructions, "Error Messages"). ``field`` is ``error``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, "error")
        self.code = code


#: The distribution's name on PyPI (the import name is ``itb``; docs: install.md).
DISTRIBUTION = "itb-pump"


def _distribution() -> str:
    """The name this package is installed under (pip's name for it), for install hints."""
    try:
        from importlib.metadata import packages_distributions

        names = packages_distributions().get("itb")
    except Exception:  # noqa: BLE001 - metadata is a hint only
        names = None
    return names[0] if names else DISTRIBUTION


class MissingExtraError(ItbError, ImportError):
    """An optional dependency is missing; the message names the extra to install by the
    distribution's real name (``pip install '<distribution>[plot]'``). ``extra`` is the extra,
    ``name`` the missing module. Also an ``ImportError``."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        ItbError.__init__(
            self,
            f"{purpose} needs {module}, which is not installed: "
            f"pip install '{_distribution()}[{extra}]'",
            module,
        )
        self.name = module
        self.extra = extra
