"""The emulated rig on a byte stream: speaks the rig protocol on a pty or a TCP port on
127.0.0.1 and executes commands on a :class:`~itb.hardware.rig.Rig`.

``itb rig emulate [--pty | --tcp PORT] --key-file K [--record FILE]`` runs :func:`serve_pty` or
:func:`serve_tcp`; its first stdout line is ``PORT <path or socket:// url>``.

The TCP server accepts at most ``max_connections`` connections at a time (default
:data:`MAX_CONNECTIONS`; one more is closed at once, logged), closes a connection that has not
completed a frame for ``idle_timeout`` (a duration, default :data:`IDLE_TIMEOUT`: a slowloris holds no
thread for long) and listens with a backlog of :data:`BACKLOG`. :class:`RigLog` writes
timestamped lines (UTC) and summarises refused frames per kind once a second.
(docs: decisions/rig.md#server-limits)
"""

from __future__ import annotations

import errno
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from .._time import Duration, duration_ms, format_duration
from ..errors import ItbError, ProtocolError, RigError
from .protocol import (
    MAX_BODY,
    Command,
    FrameBuffer,
    Role,
    ServerSession,
    parse_deliver,
    parse_fault,
    parse_limits,
    parse_refill,
    parse_scheduled_bolus,
    parse_therapy,
)
from .rig import Rig

__all__ = [
    "Link",
    "RigLog",
    "serve_pty",
    "serve_tcp",
    "IDLE",
    "IDLE_TIMEOUT",
    "MAX_CONNECTIONS",
    "BACKLOG",
]

#: a partial frame older than this is dropped: the sender died or the bytes were lost
IDLE = timedelta(milliseconds=500)
#: a TCP connection that completes no frame for this long is closed
IDLE_TIMEOUT = timedelta(seconds=30)
_IDLE_S = IDLE.total_seconds()
#: TCP connections served at once; one more is closed as soon as it is accepted
MAX_CONNECTIONS = 16
#: the TCP listen backlog
BACKLOG = 128


class RigLog:
    """The emulator's log: one line per event, ``<UTC time> rig: <message>``, written whole
    under a lock (threads never interleave). Refused frames are counted per kind; the first of
    a kind in each second is logged in full, the rest as one summary line per second
    (``refused 812 frames in 1.0 s: tag 800, length 12``); ``interval`` (a duration, default
    1 s) sets that span. ``out=None`` logs nothing; ``wall`` (s since the epoch) is injectable."""

    def __init__(
        self,
        out: TextIO | None = sys.stderr,
        *,
        wall: Callable[[], float] = time.time,
        interval: Duration = timedelta(seconds=1),
    ) -> None:
        self.out = out
        self.wall = wall
        self.interval = timedelta(milliseconds=duration_ms(interval, "interval", allow_zero=False))
        self._interval_s = self.interval.total_seconds()
        self._lock = threading.Lock()
        self._window_start = wall()
        self._counts: dict[str, int] = {}
        self.refused_total: dict[str, int] = {}

    def __call__(self, message: str) -> None:
        self.line(message)

    def line(self, message: str) -> None:
        if self.out is None:
            return
        stamp = datetime.fromtimestamp(self.wall(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        with self._lock:
            self.out.write(f"{stamp}Z rig: {message}\n")
            self.out.flush()

    def refused(self, kind: str, message: str) -> None:
        """A refused frame of ``kind`` (its error's field)."""
        with self._lock:
            first = kind not in self._counts
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self.refused_total[kind] = self.refused_total.get(kind, 0) + 1
        if first:
            self.line(f"refused: {message}")
        self.tick()

    def tick(self) -> None:
        """Write the summary of the second that ended (called by the serve loops)."""
        now = self.wall()
        with self._lock:
            if now - self._window_start < self._interval_s:
                return
            span = now - self._window_start
            counts, self._counts = self._counts, {}
            self._window_start = now
        extra = {k: n - 1 for k, n in counts.items() if n > 1}  # the first was logged in full
        if extra:
            total = sum(extra.values())
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(extra.items(), key=lambda kv: -kv[1]))
            self.line(f"refused {total} more frames in {span:.1f} s: {kinds}")


class Link:
    """One connection's protocol state: a frame buffer and a server session over a shared rig.

    :meth:`receive` takes raw bytes and returns the bytes to send back. Refused frames execute
    nothing; they are counted in ``refused`` (shared, by field) and, when authentic and of the
    current session, answered with NAK ``{"error": field, "message": …}`` (else not at all).
    """

    def __init__(
        self,
        rig: Rig,
        keys: Mapping[Role, bytes],
        refused: dict[str, int] | None = None,
        max_body: int = MAX_BODY,
        log: Callable[[str], None] = lambda s: None,
    ) -> None:
        self.rig = rig
        self.buffer = FrameBuffer(max_body)
        self.refused = refused if refused is not None else {}
        self.session = ServerSession(keys, max_body=max_body, refused=self.refused)
        self.log = log
        self.last_frame = time.monotonic()  # when the last complete frame came in

    def _refused(self, kind: str, message: str) -> None:
        refused = getattr(self.log, "refused", None)
        if refused is not None:
            refused(kind, message)
        else:
            self.log(f"refused: {message}")

    def hangup(self) -> None:
        """The peer went away: drop a partial frame (counted as ``truncated``), end the session."""
        if self.buffer.drop_partial():
            self.refused["truncated"] = self.refused.get("truncated", 0) + 1
        if self.session.role is not None:
            self.log(
                f"session {self.session.session:016x} closed ({self.session.role.name.lower()})"
            )
        self.session.reset()

    def idle(self) -> None:
        """No bytes for a while: a partial frame will never complete."""
        if self.buffer.drop_partial():
            self.refused["truncated"] = self.refused.get("truncated", 0) + 1

    def receive(self, data: bytes) -> bytes:
        self.buffer.feed(data)
        out = b""
        while True:
            try:
                raw = self.buffer.next_frame()
            except ProtocolError as err:  # bad length: the buffer was dropped
                self.session.count(err)
                self._refused(err.field or "length", str(err))
                return out
            if raw is None:
                return out
            self.last_frame = time.monotonic()
            out += self._handle(raw)

    def _handle(self, raw: bytes) -> bytes:
        try:
            frame = self.session.parse(raw)
        except ProtocolError as err:
            self._refused(err.field or type(err).__name__, str(err))
            req = getattr(err, "frame", None)
            sess = self.session
            if (
                req is not None
                and req.command.is_request
                and req.command not in (Command.HELLO, Command.AUTH)
                and sess.role is not None
                and req.session == sess.session
                and req.role == sess.role
            ):
                return self.session.reply(req, False, {"error": err.field, "message": str(err)})
            return b""
        if frame.command is Command.HELLO:
            return self.session.challenge(frame)
        if frame.command is Command.AUTH:
            self.log(f"session {frame.session:016x} opened ({frame.role.name.lower()})")
            return b""
        try:
            result = self._execute(frame.command, frame.payload)
        except ItbError as err:
            field = err.field or "refused"
            self.refused[field] = self.refused.get(field, 0) + 1
            self._refused(field, f"{frame.command.name}: {err}")
            return self.session.reply(frame, False, {"error": field, "message": str(err)})
        return self.session.reply(frame, True, result)

    def _execute(self, command: Command, payload: bytes) -> dict[str, Any]:
        rig = self.rig
        if command is Command.DELIVER:
            first, times = parse_deliver(payload)
            return rig.deliver(first, times)
        if command is Command.PATIENT_BOLUS:
            if self.session.role is Role.CLINICIAN:  # a scenario's press, sent by the controller
                if not payload:
                    raise ProtocolError(
                        "payload: the clinician sends scheduled presses (step, time); "
                        "a patient's press comes with the patient key",
                        "payload",
                    )
                return rig.patient_bolus(parse_scheduled_bolus(payload))
            if payload:
                raise ProtocolError("payload: a patient's PATIENT_BOLUS has no payload", "payload")
            return rig.patient_bolus()
        if command is Command.THERAPY:
            return rig.set_therapy(*parse_therapy(payload))
        if command is Command.REFILL:
            return rig.refill(*parse_refill(payload))
        if command is Command.FAULT:
            return rig.fault(parse_fault(payload))
        if payload:
            if command is not Command.SET_LIMITS:
                raise ProtocolError(f"payload: {command.name} takes no payload", "payload")
        if command is Command.STATUS:
            return {**rig.status(), "refused": dict(self.refused)}
        if command is Command.STOP:
            return rig.stop()
        if command is Command.RESUME:
            return rig.resume()
        if command is Command.MEASURE:
            return rig.measure()
        if command is Command.SET_LIMITS:
            return rig.set_patient_limits(*parse_limits(payload))
        raise RigError(f"command: {command.name} not implemented", "command")  # pragma: no cover


def serve_pty(
    rig: Rig,
    keys: Mapping[Role, bytes],
    *,
    announce: Callable[[str], None],
    stop: threading.Event | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> None:
    """Serve on a new pseudo-terminal; ``announce(path)`` is called with the slave's path.

    A reader that closes the pty is a hang-up (session ends, partial frame dropped); the next
    opener starts a new session.
    """
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.set_blocking(master, False)
    refused: dict[str, int] = {}
    link = Link(rig, keys, refused, log=log)
    announce(path)
    os.close(
        slave
    )  # the controller opens it; reads on the master fail (EIO) while nobody has it open
    last = time.monotonic()
    try:
        while stop is None or not stop.is_set():
            r, _, _ = select.select([master], [], [], 0.1)
            tick = getattr(log, "tick", None)
            if tick is not None:
                tick()
            if not r:
                if link.buffer.pending and time.monotonic() - last > _IDLE_S:
                    link.idle()
                continue
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                # select saw the last reader hang up, and a new one opened the pty before this
                # read (EAGAIN): the hang-up still ends the old session; the new reader has not
                # sent anything yet
                if link.session.role is not None or link.buffer.pending:
                    link.hangup()
                continue
            except OSError as err:
                if err.errno != errno.EIO:
                    raise
                if link.session.role is not None or link.buffer.pending:
                    link.hangup()
                time.sleep(0.01)
                continue
            last = time.monotonic()
            reply = link.receive(data)
            if reply:
                _write_all_fd(master, reply)
    finally:
        os.close(master)


def _write_all_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    deadline = time.monotonic() + 2.0
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            if time.monotonic() > deadline:
                return  # nobody reads: drop the answer (the client times out)
            select.select([], [fd], [], 0.05)
        except OSError:
            return


def serve_tcp(
    rig: Rig,
    keys: Mapping[Role, bytes],
    port: int,
    *,
    announce: Callable[[str], None],
    stop: threading.Event | None = None,
    log: Callable[[str], None] = lambda s: None,
    max_connections: int = MAX_CONNECTIONS,
    idle_timeout: Duration = IDLE_TIMEOUT,
    backlog: int = BACKLOG,
) -> None:
    """Serve on 127.0.0.1:``port`` (0: any free port); ``announce(url)`` gets ``socket://127.0.0.1:N``.
    Each connection has its own session (one thread each, at most ``max_connections``); the rig
    is shared. A connection that completes no frame for ``idle_timeout`` (a duration) is closed;
    a bare number is a ``ValidationError`` naming ``idle_timeout``."""
    idle = timedelta(milliseconds=duration_ms(idle_timeout, "idle_timeout", allow_zero=False))
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(backlog)
    srv.settimeout(0.1)
    refused: dict[str, int] = {}
    open_conns = threading.BoundedSemaphore(max_connections)
    announce(f"socket://127.0.0.1:{srv.getsockname()[1]}")
    tick = getattr(log, "tick", None)
    try:
        while stop is None or not stop.is_set():
            if tick is not None:
                tick()
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - e.g. EMFILE under a flood: try again
                time.sleep(0.01)
                continue
            if not open_conns.acquire(blocking=False):
                refused["connections"] = refused.get("connections", 0) + 1
                _refuse = getattr(log, "refused", None)
                message = f"connections: {max_connections} connections open (the cap); closed"
                _refuse("connections", message) if _refuse else log(f"refused: {message}")
                conn.close()
                continue
            threading.Thread(
                target=_serve_conn,
                args=(conn, Link(rig, keys, refused, log=log), stop, idle, open_conns),
                daemon=True,
            ).start()
    finally:
        srv.close()


def _serve_conn(
    conn: socket.socket,
    link: Link,
    stop: threading.Event | None,
    idle_timeout: timedelta = IDLE_TIMEOUT,
    slots: threading.BoundedSemaphore | None = None,
) -> None:
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(_IDLE_S)
        idle_s = idle_timeout.total_seconds()
        while stop is None or not stop.is_set():
            if time.monotonic() - link.last_frame > idle_s:
                link.refused["idle"] = link.refused.get("idle", 0) + 1
                link._refused(
                    "idle", f"idle: no complete frame for {format_duration(idle_timeout)}; closed"
                )
                break
            try:
                data = conn.recv(65536)
            except TimeoutError:
                link.idle()
                continue
            except OSError:
                break
            if not data:
                break
            reply = link.receive(data)
            if reply:
                try:
                    conn.sendall(reply)
                except OSError:
                    break
    finally:
        link.hangup()
        conn.close()
        if slots is not None:
            slots.release()
