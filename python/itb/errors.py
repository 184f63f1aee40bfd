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


def _distribution() -> str:
    """The name this package is installed under (pip's name for it), for install hints."""
    try:
        from importlib.metadata import packages_distributions

        names = packages_distributions().get("itb")
    except Exception:  # noqa: BLE001 - metadata is a hint only
        names = None
    return names[0] if names else "itb"


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
