"""Balance drivers (MT-SICS, Sartorius SBI): the manuals' example conversations over an
in-memory stream and over a real pty, and hypothesis over malformed replies (always a typed
``BalanceError``, never a foreign exception)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.errors import (
    BalanceBusy,
    BalanceDeviceError,
    BalanceError,
    BalanceOverload,
    BalanceProtocolError,
    BalanceUnderload,
    ItbError,
    ProtocolError,
)
from itb.hardware.balance import (
    SbiBalance,
    SicsBalance,
    parse_print_line,
    parse_weight_reply,
)
from itb.hardware.balance.sics import parse_levels_reply

SHORT = timedelta(milliseconds=200)


class FakeStream:
    """A pyserial-like stream: each complete command line written is answered by
    ``answer(command_without_terminator)`` (bytes, may be empty for no reply)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.out = b""
        self.written: list[bytes] = []
        self._buf = b""

    def write(self, data: bytes) -> int:
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            self.written.append(line)
            self.out += self.answer(line)
        return len(data)

    def reset_input_buffer(self) -> None:
        self.out = b""

    def read(self, size: int) -> bytes:
        chunk, self.out = self.out[:size], self.out[size:]
        return chunk


def script(pairs: dict[bytes, bytes]) -> FakeStream:
    return FakeStream(lambda cmd: pairs.get(cmd, b"ES\r\n"))


# --- MT-SICS: the reference manual's conversations -------------------------------------------


def test_sics_stable_weight_example() -> None:
    # manual: "Command S  Query a stable weight value. Response S S 100.00 g"
    stream = script({b"S": b"S S      100.00 g\r\n"})
    before = datetime.now()
    reading = SicsBalance(stream, SHORT).read_stable()
    assert reading.value == Decimal("100.00") and reading.unit == "g" and reading.stable
    assert reading.grams == Decimal("100.00") and reading.milligrams == Decimal("100000.00")
    assert before <= reading.host_time <= datetime.now() and reading.host_time.tzinfo is None
    assert stream.written == [b"S"]


def test_sics_immediate_dynamic_and_stable() -> None:
    stream = script({b"SI": b"S D      129.07 g\r\n"})
    reading = SicsBalance(stream, SHORT).read_immediate()
    assert (reading.value, reading.stable) == (Decimal("129.07"), False)
    stream = script({b"SI": b"S S     -0.00012 g\r\n"})
    reading = SicsBalance(stream, SHORT).read_immediate()
    assert (reading.value, reading.stable) == (Decimal("-0.00012"), True)
    assert reading.milligrams == Decimal("-0.12")


@pytest.mark.parametrize(
    ("reply", "error", "field"),
    [
        (b"S I", BalanceBusy, "busy"),
        (b"S +", BalanceOverload, "overload"),
        (b"S -", BalanceUnderload, "underload"),
        (b"ES", BalanceError, "error"),
        (b"EL", BalanceError, "error"),
        (b"S S 12.3", BalanceProtocolError, "reply"),
        (b"S D      100.00 g", BalanceProtocolError, "reply"),  # S answers stable values only
        (b"T S      100.00 g", BalanceProtocolError, "reply"),  # not the reply to S
    ],
)
def test_sics_status_replies_are_typed(reply: bytes, error: type, field: str) -> None:
    stream = script({b"S": reply + b"\r\n"})
    with pytest.raises(error) as info:
        SicsBalance(stream, SHORT).read_stable()
    assert info.value.field == field


def test_sics_zero_tare_serial() -> None:
    stream = script(
        {b"Z": b"Z A\r\n", b"T": b"T S      100.00 g\r\n", b"I4": b'I4 A "B021002593"\r\n'}
    )
    bal = SicsBalance(stream, SHORT)
    bal.zero()
    assert bal.tare().value == Decimal("100.00")
    assert bal.serial_number() == "B021002593"
    assert stream.written == [b"Z", b"T", b"I4"]
    for reply, error in [
        (b"Z I", BalanceBusy),
        (b"Z +", BalanceOverload),
        (b"Z -", BalanceUnderload),
    ]:
        with pytest.raises(error):
            SicsBalance(script({b"Z": reply + b"\r\n"}), SHORT).zero()
    with pytest.raises(BalanceBusy):
        SicsBalance(script({b"T": b"T I\r\n"}), SHORT).tare()


def test_sics_timeout_and_overlong_reply() -> None:
    with pytest.raises(BalanceProtocolError) as info:
        SicsBalance(script({b"S": b""}), SHORT).read_stable()
    assert info.value.field == "timeout" and isinstance(info.value, ProtocolError)
    with pytest.raises(BalanceProtocolError) as info:
        SicsBalance(script({b"S": b"S" * 500}), SHORT).read_stable()
    assert info.value.field == "reply"


def test_sics_stale_reply_is_discarded() -> None:
    stream = script({b"S": b"S S      1.00 g\r\n"})
    stream.out = b"S S      9.99 g\r\n"  # left over from an earlier, abandoned request
    assert SicsBalance(stream, SHORT).read_stable().value == Decimal("1.00")


# --- SBI: the operating instructions' print lines -------------------------------------------


@pytest.mark.parametrize(
    ("line", "value", "unit"),
    [
        (b"+   1255.7 g  ", Decimal("1255.7"), "g"),  # "+***1255.7*g**"
        (b"+111.25507 mg ", Decimal("111.25507"), "mg"),  # "+111.25507*mg*"
        (b"-   123.56 g  ", Decimal("-123.56"), "g"),
        (b"N     +   123.56 g  ", Decimal("123.56"), "g"),  # 22-character line with ID code
    ],
)
def test_sbi_print_lines(line: bytes, value: Decimal, unit: str) -> None:
    reading = parse_print_line(line)
    assert (reading.value, reading.unit, reading.stable) == (value, unit, True)


def test_sbi_blank_unit_is_dynamic_and_read_stable_waits() -> None:
    lines = iter([b"+    12.34    \r\n", b"+    12.35 g  \r\n"])
    stream = FakeStream(lambda cmd: next(lines) if cmd == b"\x1bP" else b"")
    bal = SbiBalance(stream, SHORT, poll=timedelta(milliseconds=1))
    reading = bal.read_stable()
    assert (reading.value, reading.unit, reading.stable) == (Decimal("12.35"), "g", True)
    assert stream.written == [b"\x1bP", b"\x1bP"]
    dyn = parse_print_line(b"+    12.34    ")
    assert not dyn.stable and dyn.unit == ""


def test_sbi_never_stable_is_busy() -> None:
    stream = FakeStream(lambda cmd: b"+    12.34    \r\n")
    with pytest.raises(BalanceBusy):
        SbiBalance(stream, timedelta(milliseconds=50), poll=timedelta(milliseconds=5)).read_stable()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"         H    ", BalanceOverload),
        (b"         L    ", BalanceUnderload),
        (b"         C    ", BalanceBusy),
        (b"Stat         H      "[:20], BalanceOverload),
        (b"Stat         L      "[:20], BalanceUnderload),
        (b"Err 54        ", BalanceDeviceError),
        (b"+   12.3x g   ", BalanceProtocolError),
        (b"+ 12.3 g", BalanceProtocolError),
    ],
)
def test_sbi_special_codes(line: bytes, error: type) -> None:
    with pytest.raises(error):
        parse_print_line(line)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        # the 22-character error lines of the manuals: "Stat*****Err**##****", "…Err*###****"
        (b"Stat     Err  02    ", "02"),
        (b"Stat     Err 101    ", "101"),
        (b"Stat     ERR 320    ", "320"),
        # the 16-character ones: "Err*###****"
        (b"Err 02        ", "02"),
        (b"Err 101    ", "101"),
        (b"Stat     APP.ERR    ", "APP.ERR"),
        (b"Stat     PRT.ERR    ", "PRT.ERR"),
    ],
)
def test_sbi_error_codes_are_typed_with_their_code(line: bytes, code: str) -> None:
    with pytest.raises(BalanceDeviceError) as info:
        parse_print_line(line)
    assert info.value.code == code and info.value.field == "error"
    assert isinstance(info.value, BalanceError)
    # through the driver too
    stream = FakeStream(lambda cmd: line + b"\r\n" if cmd == b"\x1bP" else b"")
    with pytest.raises(BalanceDeviceError) as info:
        SbiBalance(stream, SHORT).read_immediate()
    assert info.value.code == code


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"Stat            High", BalanceOverload),  # 22 characters: "Stat" … "High"
        (b"Stat             Low", BalanceUnderload),
        (b"Stat        Cal.Ext.", BalanceBusy),
        (b"          High", BalanceOverload),  # 16 characters
        (b"           Low", BalanceUnderload),
    ],
)
def test_sbi_special_words(line: bytes, error: type) -> None:
    with pytest.raises(error):
        parse_print_line(line)


def test_sbi_22_character_format_example() -> None:
    # manual: output of +1255.7 g with ID code "G#" (gross): "G#****+***1255.7*g**"
    reading = parse_print_line(b"G#    +   1255.7 g  ")
    assert (reading.value, reading.unit, reading.stable) == (Decimal("1255.7"), "g", True)
    dyn = parse_print_line(b"N     -     0.12    ")
    assert (dyn.value, dyn.stable) == (Decimal("-0.12"), False)


def test_sbi_line_format_is_enforced_when_set() -> None:
    wide = b"N     +   123.56 g  \r\n"
    narrow = b"+   123.56 g  \r\n"
    for fmt, good, bad in ((22, wide, narrow), (16, narrow, wide)):
        bal = SbiBalance(FakeStream(lambda cmd, g=good: g), SHORT, line_format=fmt)
        assert bal.read_immediate().value == Decimal("123.56")
        with pytest.raises(BalanceProtocolError) as info:
            SbiBalance(FakeStream(lambda cmd, b=bad: b), SHORT, line_format=fmt).read_immediate()
        assert info.value.field == "reply" and str(fmt) in str(info.value)
    for loose in (wide, narrow):  # None takes either
        assert SbiBalance(FakeStream(lambda cmd, x=loose: x), SHORT).read_immediate().stable
    with pytest.raises(ItbError) as err:
        SbiBalance(FakeStream(lambda cmd: b""), SHORT, line_format=20)
    assert err.value.field == "line_format"


# --- MT-SICS I1 and SIR -------------------------------------------------------------------------


def test_sics_i1_levels_example() -> None:
    # manual: "I1 A "0123" "2.00" "2.20" "1.00" "1.50"": levels 0-3, version of each
    bal = SicsBalance(script({b"I1": b'I1 A "0123" "2.00" "2.20" "1.00" "1.50"\r\n'}), SHORT)
    assert bal.levels() == ("0123", ("2.00", "2.20", "1.00", "1.50"))
    assert parse_levels_reply(b'I1 A "01" "2.00" "2.00" "" ""') == ("01", ("2.00", "2.00", "", ""))
    for line, error in (
        (b"I1 I", BalanceBusy),
        (b"ES", BalanceError),
        (b"I1 A 0123", BalanceProtocolError),
    ):
        with pytest.raises(error):
            parse_levels_reply(line)


def test_sics_sir_reads_a_stream_and_ends_it() -> None:
    # SIR: one SI reply per update, until @ (answered like I4); the manual's example values
    stream_lines = [
        b"S D      129.07 g",
        b"S D      129.08 g",
        b"S S      129.09 g",
        b"S S      129.09 g",
    ]

    class Streaming(FakeStream):
        def write(self, data: bytes) -> int:
            n = super().write(data)
            if self.written and self.written[-1] == b"SIR" and not self.out:
                self.out = b"".join(x + b"\r\n" for x in stream_lines)
            return n

    stream = Streaming(lambda cmd: b'I4 A "0123456789"\r\n' if cmd == b"@" else b"")
    bal = SicsBalance(stream, SHORT)
    got = bal.stream_immediate(3)
    assert [(r.value, r.stable) for r in got] == [
        (Decimal("129.07"), False),
        (Decimal("129.08"), False),
        (Decimal("129.09"), True),
    ]
    assert got[0].host_monotonic <= got[1].host_monotonic <= got[2].host_monotonic
    assert stream.written == [b"SIR", b"@"]
    overload = SicsBalance(
        FakeStream(lambda cmd: b"S +\r\n" if cmd == b"SIR" else b'I4 A "1"\r\n'), SHORT
    )
    with pytest.raises(BalanceOverload):
        overload.stream_immediate(2)
    with pytest.raises(ItbError) as err:
        bal.stream_immediate(0)
    assert err.value.field == "count"


def test_sbi_tare_and_zero_send_escape_commands() -> None:
    stream = FakeStream(lambda cmd: b"")
    bal = SbiBalance(stream, SHORT)
    bal.tare()
    bal.zero()
    assert stream.written == [b"\x1bU", b"\x1bV"]


# --- malformed replies: always a typed error ---------------------------------------------------

_noise = st.one_of(
    st.binary(max_size=40),
    st.text(alphabet='SDTIZA+-. 0123456789gmk"ESLH', max_size=30).map(str.encode),
)


@settings(max_examples=300, deadline=None)
@given(line=_noise, command=st.sampled_from([b"S", b"SI", b"T"]))
def test_sics_parser_never_leaks_foreign_errors(line: bytes, command: bytes) -> None:
    try:
        reading = parse_weight_reply(command, line)
    except BalanceError as err:
        assert isinstance(err, ItbError) and err.field
    else:
        assert reading.value.is_finite() and reading.unit


@settings(max_examples=300, deadline=None)
@given(
    line=st.one_of(
        st.binary(max_size=30),
        st.text(alphabet="+- .0123456789gmHLCErStatN", min_size=12, max_size=22).map(str.encode),
        st.text(alphabet="+- .0123456789gErRStatAPDIShighLowCx#", min_size=14, max_size=20).map(
            str.encode
        ),
    )
)
def test_sbi_parser_never_leaks_foreign_errors(line: bytes) -> None:
    try:
        reading = parse_print_line(line)
    except BalanceError as err:
        assert err.field
    else:
        assert reading.value.is_finite() and reading.stable == bool(reading.unit)


@settings(max_examples=100, deadline=None)
@given(reply=st.binary(max_size=200))
def test_drivers_never_leak_foreign_errors(reply: bytes) -> None:
    for make, call in [
        (lambda s: SicsBalance(s, timedelta(milliseconds=5)), "read_immediate"),
        (lambda s: SicsBalance(s, timedelta(milliseconds=5)), "zero"),
        (lambda s: SicsBalance(s, timedelta(milliseconds=5)), "serial_number"),
        (lambda s: SicsBalance(s, timedelta(milliseconds=5)), "levels"),
        (lambda s: SicsBalance(s, timedelta(milliseconds=5)), "stream_immediate"),
        (lambda s: SbiBalance(s, timedelta(milliseconds=5)), "read_immediate"),
    ]:
        try:
            method = getattr(make(FakeStream(lambda cmd: reply)), call)
            method(2) if call == "stream_immediate" else method()
        except BalanceError:
            pass


# --- a real pty with pyserial ------------------------------------------------------------------


def test_sics_over_a_pty() -> None:
    pytest.importorskip("serial")
    from itb.hardware.balance import open_port

    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    stop = threading.Event()

    def balance() -> None:
        buf = b""
        while not stop.is_set():
            try:
                buf += os.read(master, 64)
            except OSError:
                return
            while b"\r\n" in buf:
                cmd, buf = buf.split(b"\r\n", 1)
                reply = {b"S": b"S S      0.08712 g", b"Z": b"Z A", b"SI": b"S +"}.get(cmd, b"ES")
                os.write(master, reply + b"\r\n")

    thread = threading.Thread(target=balance, daemon=True)
    thread.start()
    port = open_port(os.ttyname(slave), baudrate=9600)
    try:
        bal = SicsBalance(port, timedelta(seconds=2))
        bal.zero()
        assert bal.read_stable().milligrams == Decimal("87.12000")
        with pytest.raises(BalanceOverload):
            bal.read_immediate()
    finally:
        port.close()
        stop.set()
        os.close(slave)
        thread.join(timeout=2)
        os.close(master)


def test_open_port_refuses_a_missing_device() -> None:
    pytest.importorskip("serial")
    from itb.hardware.balance import open_port

    with pytest.raises(BalanceError) as info:
        open_port("/nonexistent/tty-balance")
    assert info.value.field == "port"


@settings(max_examples=300, deadline=None)
@given(
    line=st.one_of(
        st.binary(max_size=60),
        st.text(alphabet='I1A "0123.4 ESL', max_size=50).map(str.encode),
        st.lists(st.text(alphabet="0123456789.", max_size=6), max_size=7).map(
            lambda xs: b"I1 A " + b" ".join(b'"' + x.encode() + b'"' for x in xs)
        ),
    )
)
def test_sics_levels_parser_never_leaks_foreign_errors(line: bytes) -> None:
    try:
        levels, versions = parse_levels_reply(line)
    except BalanceError as err:
        assert err.field
    else:
        assert levels.isdigit() and len(versions) <= 4
