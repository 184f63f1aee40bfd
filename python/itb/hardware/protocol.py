"""The rig wire protocol: framing, HMAC-SHA256 tags, handshake and per-session checks.

Pure byte handling, no I/O: :func:`encode` builds a frame, :func:`parse_frame` checks one
complete frame, :class:`FrameBuffer` splits a byte stream into frames (checking the length
before waiting for a body), :class:`ServerSession` / :class:`ClientSession` hold the session
id and sequence numbers of each side.

Frame (all integers big-endian)::

    offset  size  field
    0       4     length    bytes that follow this field (51 .. max_body)
    4       1     version   1
    5       1     command   see Command (requests < 0x80, responses >= 0x80)
    6       1     role      1 clinician, 2 patient (selects the HMAC key)
    7       8     session   session id agreed at connect (0 in HELLO)
    15      8     seq       strictly increasing per session (responses echo the request's)
    23      n     payload   command-specific
    23+n    32    tag       HMAC-SHA256(role key, bytes 0 .. 23+n)

Handshake (challenge–response): the client sends ``HELLO`` (session 0, seq 0, payload: a
16-byte client nonce Nc); the rig answers ``CHALLENGE`` (session = a fresh random id S, payload
Nc ‖ Nr with a 16-byte rig nonce Nr); the client sends ``AUTH`` (session S, seq 1, payload Nr).
Both sides have then shown they hold the role key for this S; frames of an older session carry
another S and are refused, frames of this session are refused unless their seq is larger than
every seq seen before.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import AuthenticationError, ProtocolError

__all__ = [
    "VERSION",
    "TAG_SIZE",
    "MIN_BODY",
    "MAX_BODY",
    "NONCE_SIZE",
    "MAX_BATCH",
    "Command",
    "Role",
    "Frame",
    "encode",
    "parse_frame",
    "FrameBuffer",
    "ServerSession",
    "ClientSession",
    "deliver_payload",
    "parse_deliver",
    "limits_payload",
    "parse_limits",
    "therapy_payload",
    "parse_therapy",
    "refill_payload",
    "parse_refill",
    "scheduled_bolus_payload",
    "parse_scheduled_bolus",
    "json_payload",
    "parse_json",
    "load_keys",
    "KEY_SIZE",
]

VERSION = 1
LENGTH = struct.Struct(">I")
HEAD = struct.Struct(">BBBQQ")  # version, command, role, session, seq
TAG_SIZE = 32
MIN_BODY = HEAD.size + TAG_SIZE  # 51: a frame with an empty payload
MAX_BODY = 1024
NONCE_SIZE = 16
KEY_SIZE = 32
MAX_BATCH = 64  # strokes per DELIVER (its payload must fit MAX_BODY)
_U64 = 2**64 - 1


class Command(enum.IntEnum):
    """Frame commands. Requests (client → rig) are < 0x80, responses (rig → client) >= 0x80."""

    HELLO = 0x01
    AUTH = 0x02
    DELIVER = 0x10
    STATUS = 0x11
    STOP = 0x12
    RESUME = 0x13
    SET_LIMITS = 0x14
    PATIENT_BOLUS = 0x15
    MEASURE = 0x16
    THERAPY = 0x17
    REFILL = 0x18
    FAULT = 0x19
    CHALLENGE = 0x81
    ACK = 0x82
    NAK = 0x83

    @property
    def is_request(self) -> bool:
        return self.value < 0x80


class Role(enum.IntEnum):
    """Who holds the key: the clinician may do everything, the patient only ``PATIENT_BOLUS``."""

    CLINICIAN = 1
    PATIENT = 2


#: what each role may ask once connected (HELLO/AUTH are always allowed)
PERMITTED: dict[Role, frozenset[Command]] = {
    Role.CLINICIAN: frozenset(
        {
            Command.DELIVER,
            Command.STATUS,
            Command.STOP,
            Command.RESUME,
            Command.SET_LIMITS,
            Command.MEASURE,
            Command.THERAPY,
            Command.REFILL,
            Command.FAULT,
            Command.PATIENT_BOLUS,  # only as a scheduled press (with a payload): see the rig
        }
    ),
    Role.PATIENT: frozenset({Command.PATIENT_BOLUS}),
}


@dataclass(frozen=True)
class Frame:
    """One decoded, tag-verified frame."""

    command: Command
    role: Role
    session: int
    seq: int
    payload: bytes = b""
    version: int = VERSION


def _tag(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def encode(frame: Frame, key: bytes, *, max_body: int = MAX_BODY) -> bytes:
    """The bytes of ``frame`` tagged with ``key`` (``ProtocolError`` if it would exceed ``max_body``)."""
    body_len = MIN_BODY + len(frame.payload)
    if body_len > max_body:
        raise ProtocolError(
            f"length: frame body of {body_len} bytes exceeds the {max_body}-byte limit", "length"
        )
    if not (0 <= frame.session <= _U64 and 0 <= frame.seq <= _U64):
        raise ProtocolError("seq: session and seq must fit 64 bits", "seq")
    data = LENGTH.pack(body_len) + HEAD.pack(
        frame.version, int(frame.command), int(frame.role), frame.session, frame.seq
    )
    data += frame.payload
    return data + _tag(key, data)


def check_length(length: int, max_body: int = MAX_BODY) -> None:
    """Refuse a length field before any body byte is read."""
    if length < MIN_BODY:
        raise ProtocolError(
            f"length: {length} bytes is shorter than the {MIN_BODY}-byte minimum frame", "length"
        )
    if length > max_body:
        raise ProtocolError(f"length: {length} bytes exceeds the {max_body}-byte limit", "length")


def parse_frame(data: bytes, keys: Mapping[Role, bytes], *, max_body: int = MAX_BODY) -> Frame:
    """Check one complete frame (length field included) and return it.

    Order of checks: length (bounds, then exact size: ``truncated``/trailing bytes), version, role
    (a key must be known for it), tag (``hmac.compare_digest``), then command. Raises
    ``ProtocolError`` or ``AuthenticationError`` naming the field; nothing else.
    """
    if len(data) < LENGTH.size:
        raise ProtocolError(
            f"length: truncated frame ({len(data)} bytes, no length field)", "length"
        )
    (length,) = LENGTH.unpack_from(data)
    check_length(length, max_body)
    if len(data) - LENGTH.size < length:
        raise ProtocolError(
            f"length: truncated frame ({len(data) - LENGTH.size} of {length} body bytes)", "length"
        )
    if len(data) - LENGTH.size > length:
        raise ProtocolError(
            f"length: {len(data) - LENGTH.size - length} bytes after the frame", "length"
        )
    version, command, role, session, seq = HEAD.unpack_from(data, LENGTH.size)
    if version != VERSION:
        raise ProtocolError(
            f"version: unsupported protocol version {version} (this side speaks {VERSION})",
            "version",
        )
    try:
        role_ = Role(role)
        key = keys[role_]
    except (ValueError, KeyError):
        raise AuthenticationError(f"role: no key for role {role}", "role") from None
    body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
    if not hmac.compare_digest(_tag(key, body), tag):
        raise AuthenticationError(
            "tag: HMAC-SHA256 tag does not verify (tampered frame or wrong key)", "tag"
        )
    try:
        command_ = Command(command)
    except ValueError:
        raise ProtocolError(f"command: unknown command 0x{command:02x}", "command") from None
    return Frame(command_, role_, session, seq, bytes(body[LENGTH.size + HEAD.size :]), version)


class FrameBuffer:
    """Split a byte stream into complete frames.

    :meth:`feed` appends bytes; :meth:`next_frame` returns the next complete frame's bytes or
    ``None``. A length outside ``MIN_BODY..max_body`` raises ``ProtocolError`` as soon as the 4
    length bytes are in (the body is never waited for) and drops the buffer: the stream is out of
    step, so everything up to the next :meth:`feed` is discarded. :meth:`drop_partial` abandons a
    partial frame (the link went quiet or the peer hung up) and says whether there was one.
    """

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self.max_body = max_body
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_frame(self) -> bytes | None:
        if len(self._buf) < LENGTH.size:
            return None
        (length,) = LENGTH.unpack_from(self._buf)
        try:
            check_length(length, self.max_body)
        except ProtocolError:
            self._buf.clear()
            raise
        end = LENGTH.size + length
        if len(self._buf) < end:
            return None
        frame = bytes(self._buf[:end])
        del self._buf[:end]
        return frame

    def drop_partial(self) -> bool:
        had = bool(self._buf)
        self._buf.clear()
        return had

    @property
    def pending(self) -> int:
        return len(self._buf)


# ----- payloads -------------------------------------------------------------------------------

_DELIVER_HEAD = struct.Struct(">QH")
_TIME = struct.Struct(">q")
_LIMITS = struct.Struct(">QQQI")


def deliver_payload(first_id: int, times_ms: list[int]) -> bytes:
    """DELIVER payload: first stroke id (u64, ids start at 1), count (u16, 1 to MAX_BATCH), then
    each stroke's scheduled pump-clock time (i64 ms)."""
    if not 1 <= len(times_ms) <= MAX_BATCH:
        raise ProtocolError(
            f"count: {len(times_ms)} strokes per DELIVER, expected 1 to {MAX_BATCH}", "count"
        )
    if not 1 <= first_id <= _U64 - MAX_BATCH:
        raise ProtocolError(
            f"stroke_id: {first_id} is not between 1 and 2^64 - {MAX_BATCH + 1}", "stroke_id"
        )
    return _DELIVER_HEAD.pack(first_id, len(times_ms)) + b"".join(
        _TIME.pack(int(t)) for t in times_ms
    )


def parse_deliver(payload: bytes) -> tuple[int, list[int]]:
    """(first stroke id, scheduled times in ms) of a DELIVER payload."""
    if len(payload) < _DELIVER_HEAD.size:
        raise ProtocolError("payload: DELIVER payload is shorter than its header", "payload")
    first, count = _DELIVER_HEAD.unpack_from(payload)
    if not 1 <= count <= MAX_BATCH:
        raise ProtocolError(
            f"count: {count} strokes per DELIVER, expected 1 to {MAX_BATCH}", "count"
        )
    if first < 1:
        raise ProtocolError("stroke_id: stroke ids start at 1", "stroke_id")
    if len(payload) != _DELIVER_HEAD.size + count * _TIME.size:
        raise ProtocolError(
            f"payload: DELIVER of {count} strokes has {len(payload)} payload bytes", "payload"
        )
    times = [
        _TIME.unpack_from(payload, _DELIVER_HEAD.size + i * _TIME.size)[0] for i in range(count)
    ]
    return first, times


def limits_payload(dose_ng: int, duration_ms: int, lockout_ms: int, max_per_24h: int) -> bytes:
    """SET_LIMITS payload: patient bolus dose (u64 ng; 0 disables), duration (u64 ms), lockout
    (u64 ms), maximum activations per 24 h (u32)."""
    try:
        return _LIMITS.pack(dose_ng, duration_ms, lockout_ms, max_per_24h)
    except struct.error:
        raise ProtocolError("payload: patient bolus limits out of range", "payload") from None


def parse_limits(payload: bytes) -> tuple[int, int, int, int]:
    if len(payload) != _LIMITS.size:
        raise ProtocolError(f"payload: SET_LIMITS payload must be {_LIMITS.size} bytes", "payload")
    return _LIMITS.unpack(payload)


_THERAPY = struct.Struct(">IqI")
_REFILL = struct.Struct(">QI")
_SCHEDULED = struct.Struct(">Iq")


def therapy_payload(concentration_ug_per_ml: int, clock_ms: int, speed_milli: int) -> bytes:
    """THERAPY payload: the concentration the therapy runs at (u32 µg/mL), the pump clock now
    (i64 ms) and how fast it runs (u32, pump ms per 1000 monotonic ms of the rig; 0: the clock
    moves only with the commands' times)."""
    try:
        return _THERAPY.pack(concentration_ug_per_ml, clock_ms, speed_milli)
    except struct.error:
        raise ProtocolError("payload: therapy out of range", "payload") from None


def parse_therapy(payload: bytes) -> tuple[int, int, int]:
    if len(payload) != _THERAPY.size:
        raise ProtocolError(f"payload: THERAPY payload must be {_THERAPY.size} bytes", "payload")
    return _THERAPY.unpack(payload)


def refill_payload(added_nl: int, concentration_ug_per_ml: int) -> bytes:
    """REFILL payload: volume filled after aspirating the reservoir empty (u64 nL) and its
    concentration (u32 µg/mL)."""
    try:
        return _REFILL.pack(added_nl, concentration_ug_per_ml)
    except struct.error:
        raise ProtocolError("payload: refill out of range", "payload") from None


def parse_refill(payload: bytes) -> tuple[int, int]:
    if len(payload) != _REFILL.size:
        raise ProtocolError(f"payload: REFILL payload must be {_REFILL.size} bytes", "payload")
    return _REFILL.unpack(payload)


def scheduled_bolus_payload(step: int, at_ms: int) -> bytes:
    """PATIENT_BOLUS payload of a scheduled press (clinician role): the scenario step's id (u32,
    a repeat of an executed id is answered with its first result) and its pump-clock time (i64
    ms). A patient's own press has an empty payload."""
    try:
        return _SCHEDULED.pack(step, at_ms)
    except struct.error:
        raise ProtocolError("payload: scheduled bolus out of range", "payload") from None


def parse_scheduled_bolus(payload: bytes) -> tuple[int, int]:
    if len(payload) != _SCHEDULED.size:
        raise ProtocolError(
            f"payload: a scheduled PATIENT_BOLUS payload must be {_SCHEDULED.size} bytes",
            "payload",
        )
    return _SCHEDULED.unpack(payload)


def fault_payload(spec: Mapping[str, Any]) -> bytes:
    """FAULT payload: the fault as a compact UTF-8 JSON object (see ``Rig.fault``)."""
    return json_payload(spec)


def parse_fault(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("payload: FAULT payload is not UTF-8 JSON", "payload") from None
    if not isinstance(obj, dict):
        raise ProtocolError("payload: FAULT payload is not a JSON object", "payload")
    return obj


def json_payload(obj: Mapping[str, Any]) -> bytes:
    """Response payload: a compact UTF-8 JSON object."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def parse_json(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("payload: response payload is not UTF-8 JSON", "payload") from None
    if not isinstance(obj, dict):
        raise ProtocolError("payload: response payload is not a JSON object", "payload")
    return obj


# ----- sessions -------------------------------------------------------------------------------


@dataclass
class ServerSession:
    """The rig's side of one link: handshake state, session id, last accepted seq, refusal counts.

    :meth:`accept` checks a tag-verified request against the session and returns the frame to
    execute, or the CHALLENGE to send during the handshake; anything else raises and is counted
    in ``refused`` (keyed by the error's field). ``random`` supplies nonces and session ids.
    """

    keys: Mapping[Role, bytes]
    max_body: int = MAX_BODY
    random: Any = os.urandom
    refused: dict[str, int] = field(default_factory=dict)
    session: int = 0
    role: Role | None = None
    last_seq: int = 0
    _pending: tuple[Role, int, bytes] | None = None  # role, session id, rig nonce

    def reset(self) -> None:
        """Forget the session (the peer hung up or the rig reset)."""
        self.session, self.role, self.last_seq, self._pending = 0, None, 0, None

    def count(self, err: Exception) -> None:
        key = getattr(err, "field", "") or type(err).__name__
        self.refused[key] = self.refused.get(key, 0) + 1

    def parse(self, data: bytes) -> Frame:
        """Parse and check one frame; refusals are counted and re-raised (with ``err.frame`` set
        to the frame when its tag verified, so the rig can answer NAK, else ``None``)."""
        frame = None
        try:
            frame = parse_frame(data, self.keys, max_body=self.max_body)
            return self._check(frame)
        except ProtocolError as err:
            self.count(err)
            err.frame = frame  # type: ignore[attr-defined]  # authentic but refused: the rig NAKs it
            raise

    def _check(self, frame: Frame) -> Frame:
        if not frame.command.is_request:
            raise ProtocolError(
                f"command: {frame.command.name} is a response, not a request", "command"
            )
        if frame.command is Command.HELLO:
            if frame.session != 0 or frame.seq != 0 or len(frame.payload) != NONCE_SIZE:
                raise ProtocolError(
                    "handshake: HELLO must carry session 0, seq 0 and a 16-byte nonce", "handshake"
                )
            return frame
        if frame.command is Command.AUTH:
            pending = self._pending
            if pending is None or frame.role != pending[0] or frame.session != pending[1]:
                raise AuthenticationError(
                    "handshake: AUTH without a matching CHALLENGE", "handshake"
                )
            if frame.seq != 1 or not hmac.compare_digest(frame.payload, pending[2]):
                raise AuthenticationError(
                    "handshake: AUTH does not answer the challenge", "handshake"
                )
            self._pending = None
            self.session, self.role, self.last_seq = pending[1], pending[0], 1
            return frame
        if self.role is None or frame.session != self.session:
            raise AuthenticationError(
                "session: frame does not belong to the current session", "session"
            )
        if frame.role != self.role:
            raise AuthenticationError(
                f"role: session is {self.role.name.lower()}, frame claims {frame.role.name.lower()}",
                "role",
            )
        if frame.seq <= self.last_seq:
            raise ProtocolError(
                f"seq: {frame.seq} is not after {self.last_seq} (replayed or out of order)", "seq"
            )
        self.last_seq = frame.seq
        if frame.command not in PERMITTED[frame.role]:
            raise AuthenticationError(
                f"role: the {frame.role.name.lower()} role may not {frame.command.name}", "role"
            )
        return frame

    def challenge(self, hello: Frame) -> bytes:
        """The CHALLENGE answering ``hello``; starts a new pending session (the old one ends)."""
        self.reset()
        session = int.from_bytes(self.random(8), "big") or 1
        nonce = bytes(self.random(NONCE_SIZE))
        self._pending = (hello.role, session, nonce)
        return self.respond(Frame(Command.CHALLENGE, hello.role, session, 0, hello.payload + nonce))

    def respond(self, frame: Frame) -> bytes:
        return encode(frame, self.keys[frame.role], max_body=self.max_body)

    def reply(self, request: Frame, ok: bool, result: Mapping[str, Any]) -> bytes:
        """ACK/NAK to ``request`` (same session, role and seq) with a JSON payload."""
        cmd = Command.ACK if ok else Command.NAK
        return self.respond(
            Frame(cmd, request.role, request.session, request.seq, json_payload(result))
        )


@dataclass
class ClientSession:
    """The controller's side: builds HELLO/AUTH and requests, checks responses."""

    role: Role
    key: bytes
    max_body: int = MAX_BODY
    random: Any = os.urandom
    session: int = 0
    seq: int = 0
    _nonce: bytes = b""

    def hello(self) -> bytes:
        self.session, self.seq = 0, 0
        self._nonce = bytes(self.random(NONCE_SIZE))
        return encode(
            Frame(Command.HELLO, self.role, 0, 0, self._nonce), self.key, max_body=self.max_body
        )

    def auth(self, challenge_bytes: bytes) -> bytes:
        """The AUTH answering a CHALLENGE (``AuthenticationError`` if it is not for our HELLO)."""
        frame = parse_frame(challenge_bytes, {self.role: self.key}, max_body=self.max_body)
        if frame.command is not Command.CHALLENGE or len(frame.payload) != 2 * NONCE_SIZE:
            raise AuthenticationError(
                f"handshake: expected CHALLENGE, got {frame.command.name}", "handshake"
            )
        if not hmac.compare_digest(frame.payload[:NONCE_SIZE], self._nonce) or frame.session == 0:
            raise AuthenticationError("handshake: CHALLENGE does not answer our HELLO", "handshake")
        self.session, self.seq = frame.session, 1
        return encode(
            Frame(Command.AUTH, self.role, self.session, 1, frame.payload[NONCE_SIZE:]),
            self.key,
            max_body=self.max_body,
        )

    def request(self, command: Command, payload: bytes = b"") -> bytes:
        if self.session == 0:
            raise ProtocolError("session: not connected", "session")
        self.seq += 1
        return encode(
            Frame(command, self.role, self.session, self.seq, payload),
            self.key,
            max_body=self.max_body,
        )

    def response(self, data: bytes) -> tuple[bool, dict[str, Any]]:
        """(ok, result) of the response to the last request; refuses anything else."""
        frame = parse_frame(data, {self.role: self.key}, max_body=self.max_body)
        if frame.command not in (Command.ACK, Command.NAK):
            raise ProtocolError(
                f"command: expected ACK or NAK, got {frame.command.name}", "command"
            )
        if frame.session != self.session or frame.role != self.role:
            raise AuthenticationError(
                "session: response does not belong to this session", "session"
            )
        if frame.seq != self.seq:
            raise ProtocolError(
                f"seq: response to {frame.seq}, expected {self.seq} (stale or replayed)", "seq"
            )
        return frame.command is Command.ACK, parse_json(frame.payload)


def load_keys(path: os.PathLike[str] | str) -> dict[Role, bytes]:
    """Read a key file: lines ``clinician <64 hex digits>`` / ``patient <64 hex digits>`` (``#``
    comments allowed). A file may hold one role's key (a patient's device) or both (the rig).
    Raises ``ValidationError`` naming the file and line."""
    from ..errors import ValidationError

    keys: dict[Role, bytes] = {}
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as err:
        raise ValidationError(f"key_file: cannot read {path}: {err.strerror}", "key_file") from None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(":", " ").split()
        try:
            role = Role[parts[0].upper()]
            key = bytes.fromhex(parts[1])
            if len(parts) != 2 or len(key) < 16:
                raise ValueError
        except (KeyError, IndexError, ValueError):
            raise ValidationError(
                f"key_file: {path} line {n}: expected 'clinician|patient <hex key of >= 16 bytes>'",
                "key_file",
            ) from None
        keys[role] = key
    if not keys:
        raise ValidationError(f"key_file: {path} holds no key", "key_file")
    return keys
