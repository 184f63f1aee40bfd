"""The byte links a rig client speaks over: :func:`open_stream` opens a serial device, a pty path,
``socket://127.0.0.1:PORT`` or ``loop://`` (anything pyserial's ``serial_for_url`` opens; install
with ``pip install 'itb-pump[rig]'``), :func:`close_stream` closes one, and :data:`LINK_ERRORS`
are the exceptions a failing link raises. No protocol here: :mod:`~itb.hardware.client` frames
the bytes; the rig side of a pty or a TCP port is :mod:`~itb.hardware.emulator`."""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

from .._time import Duration, duration_ms
from ..errors import ProtocolError

__all__ = ["LINK_ERRORS", "open_stream", "close_stream"]

try:  # pyserial's POSIX backend raises termios.error (not an OSError) from tcsetattr/tcflush
    from termios import error as _TermiosError

    LINK_ERRORS: tuple[type[BaseException], ...] = (OSError, _TermiosError)
except ImportError:  # pragma: no cover - Windows
    LINK_ERRORS = (OSError,)


def open_stream(url: str, timeout: Duration) -> Any:
    """Open ``url`` with ``serial.serial_for_url`` (``MissingExtraError`` naming ``itb-pump[rig]`` if
    pyserial is missing, ``ProtocolError`` if the port cannot be opened). ``timeout`` (a duration,
    e.g. ``timedelta(seconds=2)``; a bare number is a ``ValidationError``) bounds each write and
    the retries of a pty still hanging up."""
    from .._extras import require

    timeout_s = duration_ms(timeout, "timeout", allow_zero=False) / 1000
    serial = require("serial", "rig", "a serial rig link (pyserial)")
    # A pty whose last reader has just hung up refuses opens (and pyserial's tcsetattr during the
    # open) with EIO until the kernel has finished the hang-up, which on a loaded machine can take
    # a while: retry those for up to the timeout; any other failure is reported at once.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            stream = serial.serial_for_url(
                url, baudrate=115200, timeout=min(timeout_s, 0.05), write_timeout=timeout_s
            )
            break
        except Exception as err:  # SerialException, ValueError, OSError, termios.error, ...
            if _errno_of(err) == errno.EIO and time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            raise ProtocolError(f"port: cannot open {url!r}: {err}", "port") from None
    sock = getattr(
        stream, "_socket", None
    )  # socket://: small request/answer frames, no Nagle delay
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return stream


def _errno_of(err: BaseException) -> int | None:
    """The errno of an open failure: ``OSError.errno``, or the first argument of a
    ``termios.error`` (which is not an ``OSError``) raised by pyserial's ``tcsetattr``."""
    code = getattr(err, "errno", None)
    if code is None and err.args and isinstance(err.args[0], int):
        code = err.args[0]
    return code if isinstance(code, int) else None


def close_stream(stream: Any) -> None:
    """Close ``stream``; a pyserial ``socket://`` port is closed without the 0.3 s pause its
    ``close()`` takes (meant for quick reconnects to slow servers)."""
    sock = getattr(stream, "_socket", None)
    try:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            stream._socket = None
            stream.is_open = False
        else:
            stream.close()
    except Exception:  # pragma: no cover - closing a broken link
        pass
