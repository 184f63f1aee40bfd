"""Compatibility path: :class:`SerialDriver` is in :mod:`itb.hardware.client`, the byte links
(:func:`open_stream`, :func:`close_stream`) in :mod:`itb.hardware.transport`."""

from .client import HELLO_RETRY_S, SerialDriver
from .transport import close_stream, open_stream

__all__ = ["SerialDriver", "open_stream", "close_stream", "HELLO_RETRY_S"]
