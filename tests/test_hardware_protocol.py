"""The rig protocol: round trips, every refusal path, and arbitrary bytes (hypothesis)."""

from __future__ import annotations

import os
import struct
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.errors import AuthenticationError, ItbError, ProtocolError, RigError
from itb.hardware.emulator import Link
from itb.hardware.protocol import (
    MAX_BATCH,
    MAX_BODY,
    MIN_BODY,
    ClientSession,
    Command,
    Frame,
    FrameBuffer,
    Role,
    deliver_payload,
    encode,
    limits_payload,
    load_keys,
    parse_deliver,
    parse_frame,
    parse_json,
    parse_limits,
)
from itb.hardware.rig import Rig

KC = bytes(range(32))
KP = bytes(range(32, 64))
KEYS = {Role.CLINICIAN: KC, Role.PATIENT: KP}
#: ITB_FUZZ_EXAMPLES=100000 turns the arbitrary-bytes properties into a long fuzz run
FUZZ = int(os.environ.get("ITB_FUZZ_EXAMPLES", "0"))


def connect(link: Link, role: Role = Role.CLINICIAN) -> ClientSession:
    client = ClientSession(role, KEYS[role])
    challenge = link.receive(client.hello())
    assert link.receive(client.auth(challenge)) == b""
    return client


def ask(
    link: Link, client: ClientSession, command: Command, payload: bytes = b""
) -> tuple[bool, dict]:
    return client.response(link.receive(client.request(command, payload)))


@pytest.fixture
def link() -> Link:
    return Link(Rig(), KEYS)


# ----- frames --------------------------------------------------------------------------------------


def test_frame_round_trip_and_layout() -> None:
    frame = Frame(Command.DELIVER, Role.CLINICIAN, 0x0102030405060708, 9, b"xyz")
    data = encode(frame, KC)
    assert len(data) == 4 + MIN_BODY + 3
    assert struct.unpack(">I", data[:4])[0] == len(data) - 4
    assert data[4:7] == bytes([1, 0x10, 1])
    assert data[7:15] == bytes(range(1, 9)) and data[15:23] == (9).to_bytes(8, "big")
    assert parse_frame(data, KEYS) == frame


def test_payload_round_trips() -> None:
    assert parse_deliver(deliver_payload(5, [1, 2, -3])) == (5, [1, 2, -3])
    assert parse_limits(limits_payload(50_000, 600_000, 3_600_000, 4)) == (
        50_000,
        600_000,
        3_600_000,
        4,
    )
    with pytest.raises(ProtocolError) as e:
        deliver_payload(1, [0] * (MAX_BATCH + 1))
    assert e.value.field == "count"
    with pytest.raises(ProtocolError) as e:
        parse_deliver(deliver_payload(1, [1, 2])[:-1])
    assert e.value.field == "payload"
    with pytest.raises(ProtocolError):
        parse_json(b"[1]")
    with pytest.raises(ProtocolError):
        parse_json(b"\xff")


@pytest.mark.parametrize(
    "mutate, field, error",
    [
        (lambda d: d[:-1], "length", ProtocolError),  # truncated
        (lambda d: d + b"\0", "length", ProtocolError),  # trailing byte
        (lambda d: d[:4], "length", ProtocolError),
        (lambda d: b"\0\0", "length", ProtocolError),
        (lambda d: d[:4] + bytes([2]) + d[5:], "version", ProtocolError),
        (lambda d: d[:6] + bytes([9]) + d[7:], "role", AuthenticationError),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "tag", AuthenticationError),  # tampered tag
        (
            lambda d: d[:20] + bytes([d[20] ^ 0x80]) + d[21:],
            "tag",
            AuthenticationError,
        ),  # tampered seq
        (
            lambda d: d[:-33] + bytes([d[-33] ^ 1]) + d[-32:],
            "tag",
            AuthenticationError,
        ),  # tampered payload
    ],
)
def test_parse_refusals(mutate, field, error) -> None:
    data = encode(Frame(Command.STATUS, Role.CLINICIAN, 7, 3, b"p"), KC)
    with pytest.raises(error) as e:
        parse_frame(mutate(data), KEYS)
    assert e.value.field == field


def test_wrong_key_and_unknown_command() -> None:
    frame = Frame(Command.STATUS, Role.CLINICIAN, 7, 3)
    with pytest.raises(AuthenticationError):
        parse_frame(encode(frame, KP), KEYS)  # clinician role, patient key
    bad = encode(frame, KC)
    body = bad[:5] + bytes([0x7E]) + bad[6:-32]
    import hashlib
    import hmac

    forged = body + hmac.new(KC, body, hashlib.sha256).digest()
    with pytest.raises(ProtocolError) as e:
        parse_frame(forged, KEYS)
    assert e.value.field == "command" and not isinstance(e.value, AuthenticationError)


def test_oversized_length_refused_before_the_body() -> None:
    buf = FrameBuffer()
    buf.feed(struct.pack(">I", MAX_BODY + 1))  # no body at all: refused on the length alone
    with pytest.raises(ProtocolError) as e:
        buf.next_frame()
    assert e.value.field == "length" and buf.pending == 0
    with pytest.raises(ProtocolError):
        encode(Frame(Command.DELIVER, Role.CLINICIAN, 1, 1, b"x" * MAX_BODY), KC)


def test_frame_buffer_splits_a_stream_fed_bytewise() -> None:
    frames = [encode(Frame(Command.STATUS, Role.CLINICIAN, 1, i), KC) for i in range(1, 4)]
    buf = FrameBuffer()
    out = []
    for byte in b"".join(frames):
        buf.feed(bytes([byte]))
        f = buf.next_frame()
        if f is not None:
            out.append(f)
    assert out == frames


# ----- sessions over a Link (the emulator's protocol state) ----------------------------------------


def test_handshake_and_commands(link: Link) -> None:
    client = connect(link)
    ok, st_ = ask(link, client, Command.STATUS)
    assert ok and st_["last_stroke_id"] == 0
    ok, r = ask(link, client, Command.DELIVER, deliver_payload(1, [100, 200]))
    assert ok and r == {"last_stroke_id": 2, "executed": 2, "duplicate": 0}
    ok, r = ask(
        link, client, Command.DELIVER, deliver_payload(2, [200, 300])
    )  # id 2 again: not repeated
    assert ok and r == {"last_stroke_id": 3, "executed": 1, "duplicate": 1}
    ok, r = ask(link, client, Command.DELIVER, deliver_payload(9, [1]))  # a gap
    assert not ok and r["error"] == "stroke_gap"
    assert link.rig.last_stroke_id == 3


def test_replayed_and_out_of_order_frames_are_refused(link: Link) -> None:
    client = connect(link)
    first = client.request(Command.DELIVER, deliver_payload(1, [10]))
    assert client.response(link.receive(first))[0]
    second = client.request(Command.DELIVER, deliver_payload(2, [20]))
    third = client.request(Command.DELIVER, deliver_payload(3, [30]))
    assert link.receive(third)  # seq 4 accepted
    for replay in (first, second):  # replayed / out of order (seq <= last)
        reply = link.receive(replay)
        ok, r = ClientSession.response(_same(client, replay), reply)
        assert not ok and r["error"] == "seq"
    assert (
        link.rig.last_stroke_id == 1
    )  # seq 4 was id 3 after id 1: a gap, refused; nothing else ran
    assert link.refused["seq"] == 2


def _same(client: ClientSession, request: bytes) -> ClientSession:
    """A view of ``client`` expecting the answer to ``request``."""
    c = ClientSession(
        client.role, client.key, session=client.session, seq=int.from_bytes(request[15:23], "big")
    )
    return c


def test_old_session_frames_are_refused(link: Link) -> None:
    old = connect(link)
    stale = old.request(Command.DELIVER, deliver_payload(1, [10]))
    new = connect(link)  # a new handshake ends the old session
    assert new.session != old.session
    assert link.receive(stale) == b""  # a frame of another session: refused, no answer
    assert link.refused["session"] == 1 and link.rig.last_stroke_id == 0
    assert ask(link, new, Command.STATUS)[0]


def test_handshake_refusals(link: Link) -> None:
    client = ClientSession(Role.CLINICIAN, KC)
    hello = client.hello()
    challenge = link.receive(hello)
    auth = client.auth(challenge)
    tampered = auth[:-2] + bytes([auth[-2] ^ 1]) + auth[-1:]
    assert link.receive(tampered) == b""
    assert link.refused["tag"] == 1
    # an AUTH echoing the wrong rig nonce
    wrong = encode(Frame(Command.AUTH, Role.CLINICIAN, client.session, 1, b"\0" * 16), KC)
    assert link.receive(wrong) == b"" and link.refused["handshake"] == 1
    # replaying the whole handshake of an earlier connection fails: the rig picks a new nonce
    link2 = Link(Rig(), KEYS)
    link2.receive(hello)
    assert link2.receive(auth) == b"" and link2.refused["handshake"] == 1
    assert link2.receive(client.request(Command.STATUS)) == b"" and link2.refused["session"] == 1
    with pytest.raises(ProtocolError) as e:
        ClientSession(Role.CLINICIAN, KC).request(Command.STATUS)  # not connected
    assert e.value.field == "session"
    # a client refuses a CHALLENGE that does not answer its HELLO
    c3 = ClientSession(Role.CLINICIAN, KC)
    c3.hello()
    with pytest.raises(AuthenticationError):
        c3.auth(challenge)


def test_commands_before_the_handshake_are_refused(link: Link) -> None:
    frame = encode(Frame(Command.DELIVER, Role.CLINICIAN, 0, 5, deliver_payload(1, [1])), KC)
    assert link.receive(frame) == b""
    assert link.refused["session"] == 1 and link.rig.last_stroke_id == 0


def test_responses_sent_as_requests_are_refused(link: Link) -> None:
    client = connect(link)
    reflected = encode(Frame(Command.ACK, Role.CLINICIAN, client.session, 99, b"{}"), KC)
    assert link.receive(reflected) == b""
    assert link.refused["command"] == 1


def test_bad_payloads_are_refused_with_nak(link: Link) -> None:
    client = connect(link)
    ok, r = ask(link, client, Command.DELIVER, b"\0\0")
    assert not ok and r["error"] == "payload"
    ok, r = ask(link, client, Command.STATUS, b"junk")
    assert not ok and r["error"] == "payload"
    ok, r = ask(link, client, Command.SET_LIMITS, b"\0")
    assert not ok and r["error"] == "payload"


def test_oversized_frame_on_a_link_drops_the_buffer(link: Link) -> None:
    client = connect(link)
    junk = struct.pack(">I", 10_000_000)
    assert link.receive(junk) == b""
    assert link.refused["length"] == 1 and link.buffer.pending == 0
    assert ask(link, client, Command.STATUS)[0]  # the next frame is read normally


def test_patient_role_is_limited_to_patient_boluses(link: Link) -> None:
    clin = connect(link)
    pat_link = Link(link.rig, KEYS, link.refused)
    pat = connect(pat_link, Role.PATIENT)
    for cmd, payload in [
        (Command.DELIVER, deliver_payload(1, [1])),
        (Command.STATUS, b""),
        (Command.STOP, b""),
        (Command.SET_LIMITS, limits_payload(1, 1, 1, 1)),
        (Command.MEASURE, b""),
    ]:
        ok, r = ask(pat_link, pat, cmd, payload)
        assert not ok and r["error"] == "role", cmd
    assert link.rig.last_stroke_id == 0 and not link.rig.stopped
    ok, r = ask(pat_link, pat, Command.PATIENT_BOLUS)
    assert ok and not r["granted"] and r["reason"] == "not_enabled"
    # the clinician sets limits; the rig enforces lockout itself
    assert ask(link, clin, Command.SET_LIMITS, limits_payload(50_000, 600_000, 3_600_000, 4))[0]
    assert ask(pat_link, pat, Command.PATIENT_BOLUS)[1]["granted"]
    ok, r = ask(pat_link, pat, Command.PATIENT_BOLUS)
    assert ok and not r["granted"] and r["reason"] == "lockout"
    # a patient key cannot claim the clinician role in its session
    forged = encode(Frame(Command.STOP, Role.CLINICIAN, pat.session, pat.seq + 1), KP)
    assert pat_link.receive(forged) == b"" and link.refused["tag"] >= 1


def test_client_refuses_stale_and_foreign_responses(link: Link) -> None:
    client = connect(link)
    reply1 = link.receive(client.request(Command.STATUS))
    client.request(Command.STATUS)  # the answer to this one is "lost"
    with pytest.raises(ProtocolError) as e:
        client.response(reply1)  # an older answer: stale
    assert e.value.field == "seq"
    with pytest.raises(AuthenticationError):
        client.response(reply1[:-1] + bytes([reply1[-1] ^ 1]))
    request = client.request(Command.STATUS)
    with pytest.raises(ProtocolError):
        client.response(request)  # our own frame reflected back (e.g. loop://)


def test_load_keys(tmp_path) -> None:
    p = tmp_path / "k"
    p.write_text(f"# comment\nclinician {KC.hex()}\npatient: {KP.hex()}\n")
    assert load_keys(p) == KEYS
    p.write_text("clinician zz\n")
    with pytest.raises(ItbError) as e:
        load_keys(p)
    assert e.value.field == "key_file" and "line 1" in str(e.value)
    with pytest.raises(ItbError):
        load_keys(tmp_path / "missing")


# ----- arbitrary bytes ----------------------------------------------------------------------------


@settings(max_examples=FUZZ or 300)
@given(st.binary(max_size=2 * MAX_BODY))
def test_parse_frame_of_arbitrary_bytes_only_raises_protocol_errors(data: bytes) -> None:
    try:
        parse_frame(data, KEYS)
    except ProtocolError:
        pass


@settings(max_examples=FUZZ or 200)
@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans())
def test_a_link_fed_arbitrary_chunks_executes_nothing(chunks: list[bytes], handshake: bool) -> None:
    rig = Rig()
    link = Link(rig, KEYS)
    if handshake:
        connect(link)
    for chunk in chunks:
        out = link.receive(chunk)
        assert isinstance(out, bytes)
    link.idle()
    assert rig.last_stroke_id == 0 and not rig.stopped and rig.patient_boluses == []


@settings(max_examples=FUZZ or 200)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255), st.data())
def test_any_single_corruption_of_a_valid_frame_is_refused(pos: int, xor: int, data) -> None:
    rig = Rig()
    link = Link(rig, KEYS)
    client = connect(link)
    frame = bytearray(client.request(Command.DELIVER, deliver_payload(1, [5, 6])))
    if data.draw(st.booleans(), label="truncate"):
        payload = bytes(
            frame[: data.draw(st.integers(min_value=1, max_value=len(frame) - 1), label="cut")]
        )
    else:
        frame[pos % len(frame)] ^= xor or 1
        payload = bytes(frame)
    link.receive(payload)
    link.idle()
    assert rig.last_stroke_id == 0
    assert sum(link.refused.values()) >= 1


def test_rig_errors_are_typed() -> None:
    rig = Rig()
    with pytest.raises(RigError) as e:
        rig.deliver(2, [1])
    assert e.value.field == "stroke_gap"


@settings(max_examples=FUZZ or 200)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from([int(c) for c in Command]), st.integers(0, 255)),
            st.one_of(st.integers(2, 40), st.integers(0, 2**64 - 1)),
            st.one_of(
                st.binary(max_size=200),
                st.builds(
                    deliver_payload,
                    st.integers(1, 3),
                    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=4),
                ),
            ),
        ),
        max_size=6,
    )
)
def test_authentic_frames_with_arbitrary_content_are_answered_or_refused(frames) -> None:
    """Correctly tagged frames of the session with any command, seq and payload: the link never
    raises, every answer it sends parses for the client, and the rig keeps its invariants."""
    rig = Rig()
    link = Link(rig, KEYS)
    client = connect(link)
    for command, seq, payload in frames:
        out = link.receive(_signed(command, client.session, seq, payload))
        buf = FrameBuffer()
        buf.feed(out)
        while (raw := buf.next_frame()) is not None:
            frame = parse_frame(raw, KEYS)
            assert frame.command in (Command.ACK, Command.NAK) and frame.seq == seq
            parse_json(frame.payload)
    assert 0 <= rig.last_stroke_id <= MAX_BATCH * len(frames) and rig.reservoir_nl >= 0


def _signed(command: int, session: int, seq: int, payload: bytes) -> bytes:
    import hashlib
    import hmac

    from itb.hardware.protocol import HEAD, LENGTH, TAG_SIZE

    body = (
        LENGTH.pack(HEAD.size + len(payload) + TAG_SIZE)
        + HEAD.pack(1, command, 1, session, seq)
        + payload
    )
    return body + hmac.new(KC, body, hashlib.sha256).digest()


# ----- link failures in the serial driver ---------------------------------------------------------


class _DeadLink:
    """A stream whose pty was hung up: every read and write fails with EIO."""

    def read(self, n: int) -> bytes:
        raise OSError(5, "Input/output error")

    def write(self, data: bytes) -> int:
        raise OSError(5, "Input/output error")

    def reset_input_buffer(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_failing_link_is_a_protocol_error_on_port():
    from itb.hardware import SerialDriver

    drv = SerialDriver(_DeadLink(), os.urandom(32), timeout=timedelta(seconds=0.5))
    with pytest.raises(ProtocolError) as err:
        drv.connect()
    assert err.value.field == "port" and "link to the rig failed" in str(err.value)
    with pytest.raises(ProtocolError) as err:
        drv.status()
    assert err.value.field == "port"


def test_opening_a_port_retries_only_transient_eio(monkeypatch):
    serial = pytest.importorskip("serial")
    from itb.hardware import serial_driver

    calls = []
    real_open = serial.serial_for_url

    def flaky(url, **kwargs):
        calls.append(url)
        if len(calls) <= 2:
            raise serial.SerialException(
                5, f"could not open port {url}: [Errno 5] Input/output error"
            )
        return real_open("loop://", **kwargs)

    monkeypatch.setattr(serial, "serial_for_url", flaky)
    stream = serial_driver.open_stream("/dev/pts/99", timeout=timedelta(seconds=2))
    assert len(calls) == 3
    stream.close()

    calls.clear()

    def missing(url, **kwargs):
        calls.append(url)
        raise serial.SerialException(
            2, f"could not open port {url}: [Errno 2] No such file or directory"
        )

    monkeypatch.setattr(serial, "serial_for_url", missing)
    with pytest.raises(ProtocolError) as err:
        serial_driver.open_stream("/dev/nonexistent", timeout=timedelta(seconds=2))
    assert err.value.field == "port" and "/dev/nonexistent" in str(err.value)
    assert len(calls) == 1


def test_termios_errors_while_opening_or_on_the_link_are_protocol_errors(monkeypatch):
    """pyserial's POSIX open ends with tcsetattr, whose failure is a termios.error (not an
    OSError): a transient EIO is retried like an OSError's, anything else is ProtocolError on
    port; on an open link a termios.error is ProtocolError on port too."""
    serial = pytest.importorskip("serial")
    termios = pytest.importorskip("termios")
    from itb.hardware import SerialDriver, serial_driver

    calls = []
    real_open = serial.serial_for_url

    def flaky(url, **kwargs):
        calls.append(url)
        if len(calls) <= 3:
            raise termios.error(5, "Input/output error")
        return real_open("loop://", **kwargs)

    monkeypatch.setattr(serial, "serial_for_url", flaky)
    serial_driver.open_stream("/dev/pts/99", timeout=timedelta(seconds=2)).close()
    assert len(calls) == 4

    calls.clear()

    def invalid(url, **kwargs):
        calls.append(url)
        raise termios.error(22, "Invalid argument")

    monkeypatch.setattr(serial, "serial_for_url", invalid)
    with pytest.raises(ProtocolError) as err:
        serial_driver.open_stream("/dev/pts/98", timeout=timedelta(seconds=2))
    assert err.value.field == "port" and len(calls) == 1

    def eio_forever(url, **kwargs):
        raise termios.error(5, "Input/output error")

    monkeypatch.setattr(serial, "serial_for_url", eio_forever)
    with pytest.raises(ProtocolError) as err:  # retried only up to the timeout
        serial_driver.open_stream("/dev/pts/97", timeout=timedelta(milliseconds=100))
    assert err.value.field == "port"

    class _TermiosLink(_DeadLink):
        def read(self, n: int) -> bytes:
            raise termios.error(5, "Input/output error")

        def write(self, data: bytes) -> int:
            raise termios.error(5, "Input/output error")

    drv = SerialDriver(_TermiosLink(), os.urandom(32), timeout=timedelta(seconds=0.5))
    with pytest.raises(ProtocolError) as err:
        drv.status()
    assert err.value.field == "port"
