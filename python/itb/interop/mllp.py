"""MLLP (HL7 Minimal Lower Layer Protocol) over TCP: a sender that waits for each message's
acknowledgement, and a small threaded receiver that acknowledges and keeps what it gets.

A frame is ``0x0B`` + message + ``0x1C 0x0D`` (HL7 v2 MLLP, release 2). The receiver answers each
message with an HL7 ``ACK`` (``MSA-1`` ``AA``, ``MSA-2`` the message's control id), or ``AE``
when its ``check`` callable raises (for instance :func:`itb.interop.hl7v2.validate`).

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from .._time import Duration, duration_ms
from ..errors import ProtocolError, ValidationError

__all__ = ["START", "END", "frame", "read_frame", "send", "Receiver", "parse_address", "ack"]

START = b"\x0b"
END = b"\x1c\x0d"
_MAX_FRAME = 16 * 1024 * 1024


def frame(message: str) -> bytes:
    """One MLLP frame of an ER7 message (UTF-8)."""
    return START + message.encode("utf-8") + END


def read_frame(sock: socket.socket, buffer: bytearray) -> str | None:
    """The next message from ``sock`` (``None`` at a clean end of stream); ``buffer`` keeps
    bytes read past it. Raises ``ProtocolError`` on bytes outside a frame or an oversized one."""
    while True:
        end = buffer.find(END)
        if end >= 0:
            if not buffer.startswith(START):
                raise ProtocolError("mllp: data before the start block (0x0B)", "frame")
            text = bytes(buffer[1:end]).decode("utf-8", errors="replace")
            del buffer[: end + len(END)]
            return text
        if len(buffer) > _MAX_FRAME:
            raise ProtocolError(f"mllp: frame longer than {_MAX_FRAME} bytes", "frame")
        chunk = sock.recv(65536)
        if not chunk:
            if buffer.strip():
                raise ProtocolError("mllp: connection closed inside a frame", "frame")
            return None
        buffer += chunk


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``; ``ValidationError`` naming ``address`` otherwise."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValidationError(
            f"address: {text!r} is not HOST:PORT with a port between 1 and 65535", "address"
        )
    return host.strip("[]"), int(port)


def _control_id(message: str) -> str:
    msh = message.split("\r", 1)[0].split("|")
    return msh[9] if len(msh) > 9 else ""


def ack(message: str, code: str = "AA", text: str = "") -> str:
    """The HL7 v2.6 ``ACK`` of ``message`` (``code``: ``AA`` accepted, ``AE`` error)."""
    msh = message.split("\r", 1)[0].split("|")
    trigger = msh[8].split("^")[1] if len(msh) > 8 and "^" in msh[8] else ""
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    control = _control_id(message)
    note = text.replace("|", " ").replace("\r", " ")[:200]
    return (
        f"MSH|^~\\&|ITB_RECEIVER|ITB|||{stamp}||ACK^{trigger}^ACK|ACK{control}|P|2.6\r"
        f"MSA|{code}|{control}" + (f"|{note}" if note else "") + "\r"
    )


def send(
    messages: Iterable[Any],
    host: str,
    port: int,
    *,
    timeout: Duration = timedelta(seconds=10),
) -> list[str]:
    """Send ``messages`` (ER7 strings or objects with a ``text``) over one TCP connection, one
    frame at a time, waiting for each acknowledgement (at most ``timeout``, a duration, for the
    connection and for each answer). Returns the acknowledgements' texts.
    Raises ``ProtocolError``: ``field`` ``connect`` (cannot connect), ``ack`` (no answer, a
    malformed one, or ``MSA-1`` other than ``AA``/``CA``), ``frame``."""
    timeout_s = duration_ms(timeout, "timeout", allow_zero=False) / 1000
    buffer = bytearray()
    acks: list[str] = []
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise ProtocolError(f"mllp: cannot connect to {host}:{port}: {exc}", "connect") from None
    with sock:
        for item in messages:
            text = item if isinstance(item, str) else item.text
            try:
                sock.sendall(frame(text))
                answer = read_frame(sock, buffer)
            except (OSError, TimeoutError) as exc:
                raise ProtocolError(f"mllp: link failed: {exc}", "ack") from None
            if answer is None:
                raise ProtocolError("mllp: the receiver closed without acknowledging", "ack")
            msa = next((s for s in answer.split("\r") if s.startswith("MSA|")), "")
            parts = msa.split("|")
            if len(parts) < 3 or parts[1] not in ("AA", "CA"):
                raise ProtocolError(f"mllp: message {_control_id(text)} refused: {msa!r}", "ack")
            if parts[2] != _control_id(text):
                raise ProtocolError(
                    f"mllp: acknowledgement for {parts[2]!r}, expected {_control_id(text)!r}", "ack"
                )
            acks.append(answer)
    return acks


class Receiver:
    """A threaded MLLP receiver on ``host:port`` (default ``127.0.0.1``, port 0 = any free one;
    the bound port is :attr:`port`). Use as a context manager or call :meth:`start` /
    :meth:`close`. Every message is passed to ``check`` (if given; an exception makes the answer
    ``AE`` with its text), kept in :attr:`messages`, and acknowledged."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        check: Callable[[str], Any] | None = None,
    ) -> None:
        self.messages: list[str] = []
        self.errors: list[str] = []
        self._check = check
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buffer = bytearray()
                while True:
                    try:
                        text = read_frame(self.request, buffer)
                    except (ProtocolError, OSError):
                        return
                    if text is None:
                        return
                    code, note = "AA", ""
                    if outer._check is not None:
                        try:
                            outer._check(text)
                        except Exception as exc:  # the sender is told why
                            code, note = "AE", str(exc)
                    with outer._lock:
                        (outer.messages if code == "AA" else outer.errors).append(text)
                    self.request.sendall(frame(ack(text, code, note)))

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port (also when never started)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
