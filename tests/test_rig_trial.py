"""Regressions from a new-user trial of the rig layer (``itb rig …``, ``itb.hardware``): each input
here was accepted, crashed or gave a message without the option, the place or the range."""

from __future__ import annotations

import pytest
from itb.cli import main
from itb.errors import ValidationError
from itb.hardware import Controller, Journal, SimulatedDriver
from itb.hardware.protocol import parse_therapy, therapy_payload

# THERAPY carries the speed as a u32 of pump ms per 1000 ms (guide/rig.md, the frame table)
U32_MAX = 4_294_967_295


@pytest.mark.parametrize(
    "speed",
    [1e308, float("inf"), 5_000_000.0, U32_MAX / 1000 + 0.001, 1e-9, 0.0, -1.0, float("nan"), True],
)
def test_speed_outside_what_therapy_carries_is_refused_naming_speed(tmp_path, speed) -> None:
    with Journal(tmp_path / "j.db") as j, pytest.raises(ValidationError) as e:
        Controller(SimulatedDriver(), j, [0, 1000, 2000], speed=speed)
    assert e.value.field == "speed"
    assert "0.001" in str(e.value) and "4294967.295" in str(e.value)


@pytest.mark.parametrize("speed", [0.001, 1.0, 3600.0, U32_MAX / 1000])
def test_speed_at_the_ends_of_the_range_is_carried_exactly(tmp_path, speed) -> None:
    driver = SimulatedDriver()
    with Journal(tmp_path / "j.db") as j:
        c = Controller(driver, j, [0], speed=speed)
        c._therapy(0)
    milli = driver.rig._speed_milli
    assert 1 <= milli == round(speed * 1000) <= U32_MAX
    assert parse_therapy(therapy_payload(500, 0, milli)) == (500, 0, milli)


@pytest.mark.parametrize("text", ["1e308", "5000000", "1e-9", "0", "inf", "nan", "fast"])
def test_cli_speed_out_of_range_is_a_usage_error(tmp_path, capsys, text) -> None:
    argv = ["rig", "run", str(tmp_path / "s.toml"), "--port", "/dev/null", "--key-file"]
    argv += [str(tmp_path / "k"), "--journal", str(tmp_path / "j.db"), "--speed", text]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--speed" in err and "4294967.295" in err and "internal error" not in err


@pytest.mark.parametrize(
    ("speaks", "asked", "hint"), [("sics", "sbi", "MT-SICS"), ("sbi", "sics", "SBI")]
)
def test_balance_log_of_the_wrong_protocol_ends_at_duration_and_says_so(
    tmp_path, capsys, speaks, asked, hint
) -> None:
    pytest.importorskip("serial")
    import signal
    import threading

    from itb.hardware.balance.emulator import EmulatedBalance, serve_pty

    bal = EmulatedBalance(readability_mg=0.1, flow_mg_per_h=3600.0, initial_mg=1000.0)
    ready, stop = threading.Event(), threading.Event()
    where: list[str] = []

    def announce(path: str) -> None:
        where.append(path)
        ready.set()

    server = threading.Thread(target=serve_pty, args=(bal, speaks, announce, stop.is_set))
    server.start()

    def hung(*_: object) -> None:
        raise AssertionError("balance-log ran on past --duration")

    saved = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)  # --duration 2s plus at most one read's timeout; 30 s only under load
    try:
        assert ready.wait(5)
        argv = ["rig", "balance-log", "--port", where[0], "--protocol", asked, "--timeout", "1s"]
        argv += ["--out", str(tmp_path / "b.csv"), "--interval", "200ms", "--duration", "2s"]
        code = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, saved)
        stop.set()
        server.join(5)
    assert code == 1
    err = capsys.readouterr().err
    assert f"is the balance speaking {hint}?" in err and f"--protocol {asked}" in err


def test_log_duration_bounds_a_balance_that_never_gives_a_reading(tmp_path) -> None:
    from datetime import timedelta

    from itb.errors import BalanceProtocolError
    from itb.hardware.balance.logger import log_balance

    now = [100.0]

    class Refuses:
        reads = 0

        def read_immediate(self) -> None:
            self.reads += 1
            now[0] += 0.5  # each refused read takes 0.5 s
            raise BalanceProtocolError("reply: 'ES' is not a print line", "reply")

    def sleep(s: float) -> None:
        now[0] += s

    bal = Refuses()
    summary = log_balance(
        bal,  # type: ignore[arg-type]
        tmp_path / "b.csv",
        interval=timedelta(seconds=1),
        duration=timedelta(seconds=3),
        clock=lambda: now[0],
        sleep=sleep,
    )
    # reads due at 0, 1, 2, 3 s from the first request; the next, at 4 s, is past the 3 s
    assert bal.reads == 4 and now[0] - 100.0 <= 3 + 1
    assert summary.readings == 0 and summary.errors == 4
    assert summary.last_error == "reply: 'ES' is not a print line"
