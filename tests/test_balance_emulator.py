"""The emulated balance: its physics on a fake clock, both protocols read back by the real
drivers over a pty, the ``itb rig balance-emulate`` command, and the metrology guide's
examples."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from itb.errors import BalanceBusy, BalanceOverload, ValidationError
from itb.hardware.balance import SbiBalance, SicsBalance, parse_print_line, parse_weight_reply
from itb.hardware.balance.emulator import EmulatedBalance, serve_pty
from itb.hardware.metrology import Measurement, mass_to_volume, water_density

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sics_physics_on_a_fake_clock() -> None:
    clock = Clock()
    bal = EmulatedBalance(
        readability_mg=0.01,
        flow_mg_per_h=10.0,
        evaporation_mg_per_h=0.5,
        initial_mg=0.0,
        clock=clock,
    )
    assert bal.answer_sics(b"S") == b"S S    0.00000 g\r\n"
    clock.t += 3600.0  # one hour: +10 mg delivered, -0.5 mg evaporated
    reading = parse_weight_reply(b"S", bal.answer_sics(b"S").rstrip(b"\r\n"))
    assert reading.milligrams == Decimal("9.50000")
    assert bal.answer_sics(b"T") == b"T S    0.00950 g\r\n"
    assert bal.answer_sics(b"S") == b"S S    0.00000 g\r\n"  # tared
    clock.t += 360.0
    assert bal.answer_sics(b"SI") == b"S S    0.00095 g\r\n"
    assert bal.answer_sics(b"Z") == b"Z A\r\n"
    assert bal.answer_sics(b"S") == b"S S    0.00000 g\r\n"
    assert bal.answer_sics(b"I4") == b'I4 A "EMU0000001"\r\n'
    assert bal.answer_sics(b"XYZ") == b"ES\r\n"


def test_overload_and_noise_make_status_replies() -> None:
    clock = Clock()
    over = EmulatedBalance(initial_mg=221_000.0, capacity_g=220.0, clock=clock)
    assert over.answer_sics(b"S") == b"S +\r\n"
    assert over.feed_sbi(b"\x1bP\r\n") == b"         H    \r\n"
    noisy = EmulatedBalance(
        readability_mg=0.001, noise_mg=10.0, seed=1, clock=clock, stability_timeout=timedelta(0)
    )
    assert noisy.answer_sics(b"S") == b"S I\r\n"  # never within one digit: not stable in time
    assert noisy.answer_sics(b"SI").startswith(b"S D ")


def test_sbi_physics_and_commands() -> None:
    clock = Clock()
    bal = EmulatedBalance(readability_mg=0.1, flow_mg_per_h=36.0, initial_mg=1234.5, clock=clock)
    line = bal.feed_sbi(b"\x1bP\r\n")
    assert line == b"+   1.2345 g  \r\n"
    assert parse_print_line(line.rstrip(b"\r\n")).milligrams == Decimal("1234.5000")
    assert bal.feed_sbi(b"\x1bU") == b""  # tare: no reply
    clock.t += 100.0  # +1 mg
    assert bal.feed_sbi(b"\x1b") == b""  # a command split across reads
    assert bal.feed_sbi(b"P") == b"+   0.0010 g  \r\n"


def test_emulator_refuses_bad_settings() -> None:
    with pytest.raises(ValidationError, match="readability_mg"):
        EmulatedBalance(readability_mg=0.0)
    with pytest.raises(ValidationError, match="noise_mg"):
        EmulatedBalance(noise_mg=float("nan"))
    with pytest.raises(ValidationError, match="protocol"):
        serve_pty(EmulatedBalance(), "mtsics", print, lambda: True)


@pytest.mark.parametrize("protocol", ["sics", "sbi"])
def test_drivers_read_the_emulator_over_a_pty(protocol: str) -> None:
    pytest.importorskip("serial")
    from itb.hardware.balance import open_port

    bal = EmulatedBalance(readability_mg=0.01, initial_mg=87.12, capacity_g=0.1)
    ready, stop = threading.Event(), threading.Event()
    where: list[str] = []

    def announce(path: str) -> None:
        where.append(path)
        ready.set()

    thread = threading.Thread(target=serve_pty, args=(bal, protocol, announce, stop.is_set))
    thread.start()
    try:
        assert ready.wait(5)
        port = open_port(where[0])
        try:
            driver = (SicsBalance if protocol == "sics" else SbiBalance)(port, timedelta(seconds=3))
            assert driver.read_stable().milligrams == Decimal("87.12000")
            driver.zero()
            reading = driver.read_stable()
            assert reading.value == 0 and reading.stable
            bal.initial_mg = 200.0  # above the 0.1 g capacity
            with pytest.raises(BalanceOverload):
                driver.read_immediate()
        finally:
            port.close()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_cli_balance_emulate_round_trips_the_volume() -> None:
    pytest.importorskip("serial")
    from itb.hardware.balance import open_port

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "itb",
            "rig",
            "balance-emulate",
            "--protocol",
            "sics",
            "--flow-ul-per-h",
            "36000",
            "--readability-mg",
            "0.001",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        path = re.fullmatch(r"PORT (\S+)\n", line)
        assert path, line
        port = open_port(path.group(1))
        try:
            bal = SicsBalance(port, timedelta(seconds=5))
            first = bal.read_stable()
            time.sleep(0.5)  # long against the host's timing jitter (a few ms under load)
            second = bal.read_stable()
        finally:
            port.close()
        dt_h = (second.host_monotonic - first.host_monotonic) / 3600
        mass = Measurement.exact(float(second.milligrams - first.milligrams), "mg")
        # the emulator shows the conventional mass of 36 mL/h of water at 20 °C (ρa = 1.2 kg/m³):
        # mass to volume must give back 36 000 µL/h, within the host-timing jitter
        volume = mass_to_volume(mass, water_density(20.0), 1.2)
        assert dt_h > 0
        assert volume.value / dt_h == pytest.approx(36_000, rel=0.25)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_cli_balance_emulate_bad_option_is_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "itb", "rig", "balance-emulate", "--readability-mg", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "readability-mg" in done.stderr


def test_guide_examples_run() -> None:
    text = (ROOT / "docs" / "guide" / "metrology.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        exec(compile(block, f"metrology.md[python block {i}]", "exec"), {"__name__": "doc"})


def test_busy_is_typed_for_sbi_never_stable_over_emulator() -> None:
    clock = Clock()
    noisy = EmulatedBalance(readability_mg=0.001, noise_mg=10.0, seed=3, clock=clock)
    out: list[bytes] = []

    class Stream:
        def write(self, data: bytes) -> int:
            out.append(noisy.feed_sbi(data))
            return len(data)

        def read(self, size: int) -> bytes:
            chunk = b"".join(out)
            out.clear()
            return chunk

    with pytest.raises(BalanceBusy):
        SbiBalance(
            Stream(), timedelta(milliseconds=50), poll=timedelta(milliseconds=5)
        ).read_stable()


def test_record_follower_weighs_the_rigs_strokes(tmp_path: Path) -> None:
    from itb.hardware.balance.emulator import RecordFollower
    from itb.hardware.rig import Rig

    record = tmp_path / "record.csv"
    rig = Rig(record=record)
    follow = RecordFollower(record, rig.stroke_nl, mg_per_nl=0.000997)
    assert follow() == 0.0
    rig.deliver(1, [0, 1000, 2000])
    assert follow() == pytest.approx(3 * rig.stroke_nl * 0.000997)
    with open(record, "a", encoding="ascii") as f:
        f.write("4,30")  # a torn line counts once its newline arrives
    assert follow.strokes == 3 and follow() == pytest.approx(3 * rig.stroke_nl * 0.000997)
    with open(record, "a", encoding="ascii") as f:
        f.write("00\n")
    follow()
    assert follow.strokes == 4
    rig.close()
    bal = EmulatedBalance(readability_mg=0.001, initial_mg=0.0, delivered_mg=follow)
    reading = parse_weight_reply(b"S", bal.answer_sics(b"S").rstrip(b"\r\n"))
    assert float(reading.milligrams) == pytest.approx(4 * rig.stroke_nl * 0.000997, abs=0.0005)
    with pytest.raises(ValidationError, match="stroke_nl"):
        RecordFollower(record, 0, 0.001)


def test_sbi_22_character_format_and_error_codes() -> None:
    from itb.errors import BalanceDeviceError, BalanceProtocolError

    clock = Clock()
    bal = EmulatedBalance(readability_mg=0.1, initial_mg=1255.7, clock=clock, sbi_format=22)
    line = bal.feed_sbi(b"\x1bP")
    assert line == b"N     +   1.2557 g  \r\n" and len(line) == 22
    assert parse_print_line(line[:-2]).milligrams == Decimal("1255.7000")
    bal.initial_mg = 300_000.0  # overload: a status line with the ID "Stat"
    assert bal.feed_sbi(b"\x1bP") == b"Stat           H    \r\n"
    with pytest.raises(BalanceOverload):
        parse_print_line(b"Stat           H    ")
    bal.initial_mg, bal.sbi_error = 10.0, "02"
    for fmt, expected in ((22, b"Stat     Err  02    \r\n"), (16, b"Err 02        \r\n")):
        bal.sbi_format = fmt
        out = bal.feed_sbi(b"\x1bP")
        assert out == expected and len(out) == fmt
        with pytest.raises(BalanceDeviceError) as info:
            parse_print_line(out[:-2])
        assert info.value.code == "02"
    # a driver set to one format refuses the other
    bal.sbi_error, bal.sbi_format = None, 16

    class Loop:
        def __init__(self) -> None:
            self.out = b""

        def write(self, data: bytes) -> None:
            self.out += bal.feed_sbi(data)

        def read(self, size: int) -> bytes:
            chunk, self.out = self.out[:size], self.out[size:]
            return chunk

    with pytest.raises(BalanceProtocolError):
        SbiBalance(Loop(), timedelta(milliseconds=200), line_format=22).read_immediate()
    assert SbiBalance(Loop(), timedelta(milliseconds=200), line_format=16).read_immediate().stable
    with pytest.raises(ValidationError, match="sbi_format"):
        EmulatedBalance(sbi_format=20)
    with pytest.raises(ValidationError, match="sbi_error"):
        EmulatedBalance(sbi_error="E1")


def test_sics_i1_and_sir_stream_from_the_emulator() -> None:
    clock = Clock()
    bal = EmulatedBalance(readability_mg=0.01, flow_mg_per_h=36.0, initial_mg=0.0, clock=clock)
    assert bal.answer_sics(b"I1") == b'I1 A "01" "2.00" "2.00"\r\n'
    assert not bal.repeating and bal.repeat_line() is None
    assert bal.answer_sics(b"SIR") == b"S S    0.00000 g\r\n" and bal.repeating
    clock.t += 100.0  # +1 mg
    assert bal.repeat_line() == b"S S    0.00100 g\r\n"
    assert (
        bal.answer_sics(b"I4") == b'I4 A "EMU0000001"\r\n' and bal.repeating
    )  # I4 does not end it
    assert bal.answer_sics(b"@") == b'I4 A "EMU0000001"\r\n' and not bal.repeating
    bal.answer_sics(b"SIR")
    bal.answer_sics(b"S")
    assert not bal.repeating


def test_sir_over_a_pty_streams_readings() -> None:
    pytest.importorskip("serial")
    from itb.hardware.balance import open_port

    bal = EmulatedBalance(
        readability_mg=0.001,
        flow_mg_per_h=3600.0,
        initial_mg=0.0,
        repeat_interval=timedelta(milliseconds=20),
    )
    ready, stop = threading.Event(), threading.Event()
    where: list[str] = []

    def announce(path: str) -> None:
        where.append(path)
        ready.set()

    thread = threading.Thread(target=serve_pty, args=(bal, "sics", announce, stop.is_set))
    thread.start()
    try:
        assert ready.wait(5)
        port = open_port(where[0])
        try:
            driver = SicsBalance(port, timedelta(seconds=3))
            assert driver.levels() == ("01", ("2.00", "2.00"))
            got = driver.stream_immediate(10)
            assert not bal.repeating  # ended by @
            # 1 mg/s on the pan: the stream rises, its readings ≈ 20 ms apart on the host clock
            mg = [float(r.milligrams) for r in got]
            assert all(b >= a for a, b in zip(mg, mg[1:])) and mg[-1] > mg[0]
            span = got[-1].host_monotonic - got[0].host_monotonic
            assert 9 * 0.015 < span < 5.0
            assert driver.read_stable().stable  # the link is clean after the stream
        finally:
            port.close()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
