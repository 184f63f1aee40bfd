"""The emulated rig on a byte stream: speaks the rig protocol on a pty or a TCP port on
127.0.0.1 and executes commands on a :class:`~itb.hardware.rig.Rig`.

``itb rig emulate [--pty | --tcp PORT] --key-file K [--record FILE]`` runs :func:`serve_pty` or
:func:`serve_tcp`; its first stdout line is ``PORT <path or socket:// url>``.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ItbError, ProtocolError, RigError
from .protocol import (
    MAX_BODY,
    Command,
    FrameBuffer,
    Role,
    ServerSession,
    parse_deliver,
    parse_limits,
)
from .rig import Rig

__all__ = ["Link", "serve_pty", "serve_tcp", "IDLE_S"]

#: a partial frame older than this (s) is dropped: the sender died or the bytes were lost
IDLE_S = 0.5


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

    def hangup(self) -> None:
        """The peer went away: drop a partial frame (counted as ``truncated``), end the session."""
        if self.buffer.drop_partial():
            self.refused["truncated"] = self.refused.get("truncated", 0) + 1
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
                self.log(f"refused: {err}")
                return out
            if raw is None:
                return out
            out += self._handle(raw)

    def _handle(self, raw: bytes) -> bytes:
        try:
            frame = self.session.parse(raw)
        except ProtocolError as err:
            self.log(f"refused: {err}")
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
            self.log(f"refused {frame.command.name}: {err}")
            return self.session.reply(frame, False, {"error": field, "message": str(err)})
        return self.session.reply(frame, True, result)

    def _execute(self, command: Command, payload: bytes) -> dict[str, Any]:
        rig = self.rig
        if command is Command.DELIVER:
            first, times = parse_deliver(payload)
            return rig.deliver(first, times)
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
        if command is Command.PATIENT_BOLUS:
            return rig.patient_bolus()
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
            if not r:
                if link.buffer.pending and time.monotonic() - last > IDLE_S:
                    link.idle()
                continue
            try:
                data = os.read(master, 65536)
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
) -> None:
    """Serve on 127.0.0.1:``port`` (0: any free port); ``announce(url)`` gets ``socket://127.0.0.1:N``.
    Each connection has its own session (one thread each); the rig is shared."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    srv.settimeout(0.1)
    refused: dict[str, int] = {}
    announce(f"socket://127.0.0.1:{srv.getsockname()[1]}")
    try:
        while stop is None or not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(
                target=_serve_conn,
                args=(conn, Link(rig, keys, refused, log=log), stop),
                daemon=True,
            ).start()
    finally:
        srv.close()


def _serve_conn(conn: socket.socket, link: Link, stop: threading.Event | None) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.settimeout(IDLE_S)
    try:
        while stop is None or not stop.is_set():
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
