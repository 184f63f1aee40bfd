"""An emulated precision balance speaking MT-SICS or Sartorius SBI, for rigs without one.

:class:`EmulatedBalance` holds the physics (a delivered-mass source, readability, noise, drift,
evaporation, capacity, zero and tare); :meth:`EmulatedBalance.answer_sics` and
:meth:`EmulatedBalance.feed_sbi` turn command bytes into the protocol's reply bytes, and
:func:`serve_pty` serves either on a new pseudo-terminal until ``stop`` is set.
"""

from __future__ import annotations

import math
import os
import random
import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ..._time import duration_ms
from ...errors import ValidationError

__all__ = ["EmulatedBalance", "RecordFollower", "serve_pty"]


def _check(name: str, value: float, low: float, high: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise ValidationError(f"{name}: must be {low:g} to {high:g} {unit}, got {value!r}", name)
    return float(value)


@dataclass
class EmulatedBalance:
    """A balance whose pan receives ``delivered_mg(t)`` (t = seconds since the balance started,
    default: a constant ``flow_mg_per_h``), loses ``evaporation_mg_per_h``, drifts by
    ``drift_mg_per_h`` and reads with Gaussian ``noise_mg`` (standard deviation), quantised to
    ``readability_mg``. A reading is dynamic while its noise exceeds one readability step;
    a stable request (``S``) waits up to ``stability_timeout`` for a stable one. Above
    ``capacity_g`` it reports overload, below −10 readability steps (gross) underload.

    SBI prints ``sbi_format`` characters a line: 16, or 22 with the 6-character ID code
    ``sbi_id`` (``N`` net) in front (special codes then start ``Stat``); while ``sbi_error`` is
    set (``"02"``, ``"101"``) every print is that error code (``Err 02``) instead of a value.
    MT-SICS ``I1`` answers levels ``sics_levels`` with ``sics_versions``; ``SIR`` starts a
    stream of ``SI`` replies (:meth:`repeat_line`, every ``repeat_interval`` on a pty) that
    ``S``, ``SI``, ``SR`` or ``@`` ends."""

    readability_mg: float = 0.01
    noise_mg: float = 0.0
    drift_mg_per_h: float = 0.0
    evaporation_mg_per_h: float = 0.0
    flow_mg_per_h: float = 0.0
    initial_mg: float = 50_000.0
    capacity_g: float = 220.0
    stability_timeout: timedelta = timedelta(seconds=1)
    seed: int | None = None
    serial_number: str = "EMU0000001"
    delivered_mg: Callable[[float], float] | None = None
    clock: Callable[[], float] = time.monotonic
    sbi_format: int = 16
    sbi_id: str = "N"
    sbi_error: str | None = None
    sics_levels: str = "01"
    sics_versions: tuple[str, ...] = ("2.00", "2.00")
    repeat_interval: timedelta = timedelta(milliseconds=100)
    repeating: bool = field(init=False, default=False)
    _rng: random.Random = field(init=False, repr=False)
    _t0: float = field(init=False, repr=False)
    _zero_mg: float = field(init=False, default=0.0, repr=False)
    _tare_mg: float = field(init=False, default=0.0, repr=False)
    _sbi_buf: bytes = field(init=False, default=b"", repr=False)

    def __post_init__(self) -> None:
        _check("readability_mg", self.readability_mg, 1e-6, 1e4, "mg")
        for name in ("noise_mg", "drift_mg_per_h", "evaporation_mg_per_h", "flow_mg_per_h"):
            _check(name, getattr(self, name), -1e9 if name == "drift_mg_per_h" else 0.0, 1e9, "mg")
        _check("capacity_g", self.capacity_g, 1e-3, 1e6, "g")
        ms = duration_ms(self.stability_timeout, "stability_timeout")
        self.stability_timeout = timedelta(milliseconds=ms)
        ms = duration_ms(self.repeat_interval, "repeat_interval", allow_zero=False)
        self.repeat_interval = timedelta(milliseconds=ms)
        if self.sbi_format not in (16, 22) or isinstance(self.sbi_format, bool):
            raise ValidationError(
                f"sbi_format: must be 16 or 22 characters, got {self.sbi_format!r}", "sbi_format"
            )
        if not (isinstance(self.sbi_id, str) and len(self.sbi_id) <= 6 and self.sbi_id.isascii()):
            raise ValidationError(
                f"sbi_id: must be at most 6 ASCII characters, got {self.sbi_id!r}", "sbi_id"
            )
        if self.sbi_error is not None and not (
            isinstance(self.sbi_error, str)
            and self.sbi_error.isdigit()
            and 1 <= len(self.sbi_error) <= 3
        ):
            raise ValidationError(
                f"sbi_error: must be a code of 1 to 3 digits or None, got {self.sbi_error!r}",
                "sbi_error",
            )
        self._rng = random.Random(self.seed)
        self._t0 = self.clock()

    # --- physics -------------------------------------------------------------------------------
    def gross_mg(self) -> float:
        """The true load on the pan now (mg), before zero, tare, noise and quantisation."""
        t = self.clock() - self._t0
        hours = t / 3600.0
        delivered = self.delivered_mg(t) if self.delivered_mg else self.flow_mg_per_h * hours
        return (
            self.initial_mg
            + delivered
            - self.evaporation_mg_per_h * hours
            + self.drift_mg_per_h * hours
        )

    def sample(self) -> tuple[str, float, bool]:
        """``("ok", net_mg, stable)``, ``("overload", …)`` or ``("underload", …)``."""
        gross = self.gross_mg()
        if gross > self.capacity_g * 1000:
            return "overload", gross, False
        if gross < -10 * self.readability_mg:
            return "underload", gross, False
        noise = self._rng.gauss(0.0, self.noise_mg) if self.noise_mg else 0.0
        net = gross - self._zero_mg - self._tare_mg + noise
        steps = round(net / self.readability_mg)
        return "ok", steps * self.readability_mg, abs(noise) <= self.readability_mg

    def _stable_sample(self) -> tuple[str, float, bool]:
        deadline = self.clock() + self.stability_timeout.total_seconds()
        while True:
            state, value, stable = self.sample()
            if state != "ok" or stable or self.clock() >= deadline:
                return state, value, stable
            time.sleep(0.01)

    def _decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.readability_mg / 1000) + 1e-9))

    def _grams(self, mg: float) -> str:
        return f"{mg / 1000:.{self._decimals()}f}"

    # --- MT-SICS -------------------------------------------------------------------------------
    def _weight_reply(self, cmd: bytes) -> bytes:
        head = b"T" if cmd == b"T" else b"S"
        state, value, stable = self._stable_sample() if cmd != b"SI" else self.sample()
        if state == "overload":
            return head + b" +\r\n"
        if state == "underload":
            return head + b" -\r\n"
        if cmd != b"SI" and not stable:
            return head + b" I\r\n"
        if cmd == b"T":
            self._tare_mg += value
        text = self._grams(value)
        flag = b"S" if stable else b"D"
        return head + b" " + flag + b" " + text.rjust(10).encode() + b" g\r\n"

    def answer_sics(self, command: bytes) -> bytes:
        """The reply line (with CR LF) to one MT-SICS command line (without CR LF)."""
        cmd = command.strip()
        if cmd in (b"S", b"SI", b"SR", b"@"):
            self.repeating = False  # these end an SIR stream
        if cmd == b"SIR":
            self.repeating = True
            return self._weight_reply(b"SI")
        if cmd in (b"S", b"SI", b"T"):
            return self._weight_reply(cmd)
        if cmd == b"Z":
            state, _, stable = self._stable_sample()
            if state == "overload":
                return b"Z +\r\n"
            if state == "underload":
                return b"Z -\r\n"
            if not stable:
                return b"Z I\r\n"
            self._zero_mg, self._tare_mg = self.gross_mg(), 0.0
            return b"Z A\r\n"
        if cmd in (b"I4", b"@"):
            return b'I4 A "' + self.serial_number.encode() + b'"\r\n'
        if cmd == b"I1":
            fields = [self.sics_levels, *self.sics_versions]
            return b"I1 A " + b" ".join(b'"' + f.encode() + b'"' for f in fields) + b"\r\n"
        return b"ES\r\n"

    def repeat_line(self) -> bytes | None:
        """The next reply of a running ``SIR`` stream (an ``SI`` reply), ``None`` if none runs."""
        return self._weight_reply(b"SI") if self.repeating else None

    # --- SBI -----------------------------------------------------------------------------------
    def _sbi_line(self) -> bytes:
        wide = self.sbi_format == 22
        if self.sbi_error is not None:
            if wide:
                return f"Stat     Err {self.sbi_error:>3}    \r\n".encode()
            return f"{'Err ' + self.sbi_error:<14}\r\n".encode()
        state, value, stable = self.sample()
        text = self._grams(abs(value))
        if state == "ok" and len(text) > 9:
            state = "overload"
        if state != "ok":
            body = "         " + ("H" if state == "overload" else "L") + "    "
            return (("Stat  " if wide else "") + body + "\r\n").encode()
        sign = "-" if value < 0 else "+"
        ident = f"{self.sbi_id:<6}" if wide else ""
        return f"{ident}{sign}{text.rjust(9)} {'g  ' if stable else '   '}\r\n".encode()

    def feed_sbi(self, data: bytes) -> bytes:
        """Process received SBI bytes (``ESC`` + command letter, CR LF optional); the bytes to
        send back (a print line per ``ESC P``; nothing for tare/zero and unknown commands)."""
        self._sbi_buf += data
        out = b""
        while True:
            start = self._sbi_buf.find(b"\x1b")
            if start < 0:
                self._sbi_buf = b""
                return out
            if start + 1 >= len(self._sbi_buf):
                self._sbi_buf = self._sbi_buf[start:]
                return out
            letter = self._sbi_buf[start + 1 : start + 2]
            self._sbi_buf = self._sbi_buf[start + 2 :]
            if letter == b"P":
                out += self._sbi_line()
            elif letter in (b"T", b"U"):
                self._tare_mg = self.gross_mg() - self._zero_mg
            elif letter == b"V":
                self._zero_mg, self._tare_mg = self.gross_mg(), 0.0


class RecordFollower:
    """The water delivered by the emulated rig, read from its record file (``stroke_id,time_ms``
    per executed stroke, as ``itb rig emulate --record`` writes it): a callable giving the
    conventional mass in mg on the pan now, ``strokes × stroke_nl × mg_per_nl`` (the file is
    followed incrementally; a torn last line waits for its newline). ``mg_per_nl`` is what the
    balance shows per nL: (ρw − ρa)/(1 − ρa/ρb)·10⁻⁶ for water of density ρw in air ρa."""

    def __init__(self, path: os.PathLike[str] | str, stroke_nl: int, mg_per_nl: float) -> None:
        if isinstance(stroke_nl, bool) or not isinstance(stroke_nl, int) or stroke_nl <= 0:
            raise ValidationError(
                f"stroke_nl: must be a positive integer nL, got {stroke_nl!r}", "stroke_nl"
            )
        _check("mg_per_nl", mg_per_nl, 1e-4, 1e-2, "mg/nL")
        self.path, self.stroke_nl, self.mg_per_nl = path, stroke_nl, mg_per_nl
        self._offset, self._tail, self.strokes = 0, b"", 0

    def __call__(self, _t: float = 0.0) -> float:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        self._offset += len(data)
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        self.strokes += sum(1 for line in lines if line[:1].isdigit())
        return self.strokes * self.stroke_nl * self.mg_per_nl


def serve_pty(
    balance: EmulatedBalance,
    protocol: str,
    announce: Callable[[str], None],
    stop: Callable[[], bool],
) -> None:
    """Serve ``balance`` on a new raw pty speaking ``protocol`` (``"sics"`` or ``"sbi"``);
    ``announce(path)`` is called with the pty's path once it is ready; returns when ``stop()``
    is true (checked every 50 ms)."""
    import tty

    if protocol not in ("sics", "sbi"):
        raise ValidationError(f"protocol: must be sics or sbi, got {protocol!r}", "protocol")
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        announce(os.ttyname(slave))
        buf = b""
        every = balance.repeat_interval.total_seconds()
        next_repeat = time.monotonic() + every
        while not stop():
            ready, _, _ = select.select([master], [], [], min(0.05, every))
            if protocol == "sics" and balance.repeating and time.monotonic() >= next_repeat:
                line = balance.repeat_line()
                next_repeat = time.monotonic() + every
                if line:
                    try:
                        os.write(master, line)
                    except OSError:  # nobody reading: the stream goes nowhere
                        pass
            if not ready:
                continue
            try:
                data = os.read(master, 256)
            except OSError:  # no reader on the other side yet (EIO): wait for one
                time.sleep(0.05)
                continue
            if protocol == "sbi":
                reply = balance.feed_sbi(data)
            else:
                buf += data
                reply = b""
                while b"\n" in buf:
                    cmd, buf = buf.split(b"\n", 1)
                    reply += balance.answer_sics(cmd.rstrip(b"\r"))
                next_repeat = time.monotonic() + every
                if len(buf) > 256:
                    buf, reply = b"", reply + b"ES\r\n"
            if reply:
                os.write(master, reply)
    finally:
        os.close(slave)
        os.close(master)
