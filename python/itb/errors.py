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


#: The distribution's name on PyPI (the import name is ``itb``); install hints name its extras.
DISTRIBUTION = "itb-pump"


class MissingExtraError(ItbError, ImportError):
    """An optional dependency is missing. The message names the extra that provides it
    (``pip install 'itb-pump[plot]'``); ``extra`` is its name, ``name`` the missing module. Both an
    :class:`ItbError` and an :class:`ImportError`."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs {module}, which is not installed: "
            f"pip install '{DISTRIBUTION}[{extra}]'"
        )
        self.name = module
        self.extra = extra
