"""Regressions from a new-user trial of the rig layer (``itb rig …``, ``itb.hardware``): each input
here was accepted, crashed or gave a message without the option, the place or the range."""

from __future__ import annotations

import numpy as np
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


def _host_log_run(d, anchor_wall: float) -> None:
    """A host-clock balance log (first reading at wall 1 000 010 s, one every 10 s for 1 h), a
    record of a 2 µL stroke every 43.2 s from pump ms 1 767 600 000 000 on, and a journal at
    speed 1 whose schedule start was due at ``anchor_wall``."""
    from itb.hardware.journal import Journal

    start = 1_767_600_000_000
    d.joinpath("r.csv").write_text(
        "stroke_id,time_ms\n" + "".join(f"{k},{start + 43_200 * k}\n" for k in range(1, 84 + 6))
    )
    rows = "".join(
        f"{10_000 * i},{50_000 + i * 0.5!r},2026-12-02T09:00:00.000\n" for i in range(361)
    )
    d.joinpath("b.csv").write_text(
        "# itb balance log\n# wall_start=1000010.0\n# readability_mg=0.001\n"
        "# evaporation_mg_per_h=0.0,0.0\nelapsed_ms,mass_mg,host_time\n" + rows
    )
    with Journal(d / "run.db") as j:
        j.set("speed", "1.0")
        j.set("anchor_wall", repr(anchor_wall))
        j.set("start_ms", str(start))


def _report_err(d, capsys, record_edit=None) -> tuple[int, str]:
    if record_edit is not None:
        lines = d.joinpath("r.csv").read_text().splitlines(keepends=True)
        record_edit(lines)
        d.joinpath("r.csv").write_text("".join(lines))
    argv = ["rig", "report", "--record", str(d / "r.csv"), "--balance", str(d / "b.csv")]
    argv += ["--journal", str(d / "run.db"), "-o", str(d / "r.html")]
    code = main(argv)
    return code, capsys.readouterr().err


def test_report_names_the_record_line_and_the_time_as_written(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    _host_log_run(tmp_path, 1_000_000.0)  # the log starts 10 s after the schedule start

    def minus_five(lines: list[str]) -> None:
        lines[84] = "84,-5\n"  # file line 85 (line 1 is the header)

    code, err = _report_err(tmp_path, capsys, minus_five)
    assert code == 2
    assert f"{tmp_path / 'r.csv'} line 85: time_ms -5 is negative" in err
    assert "-P" not in err and "internal error" not in err


def test_report_a_stroke_going_back_names_both_lines(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    _host_log_run(tmp_path, 1_000_000.0)

    def back(lines: list[str]) -> None:
        lines[11] = "11,1767600000001\n"  # file line 12, before line 11's stroke

    code, err = _report_err(tmp_path, capsys, back)
    assert code == 2 and "line 12: time_ms 1767600000001 is before line 11's" in err


@pytest.mark.parametrize("days", [13, -13])
def test_report_with_another_runs_journal_says_it_does_not_belong(tmp_path, capsys, days) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    # the other run's schedule start was due 13 days later (earlier): by its anchor the log lies
    # 13 days before (after) every stroke of the record
    _host_log_run(tmp_path, 1_000_000.0 + days * 86_400)
    code, err = _report_err(tmp_path, capsys)
    assert code == 2
    assert f"journal: {tmp_path / 'run.db'} does not belong to this record/run" in err
    assert "-P" not in err and "stroke_times" not in err


def test_report_a_stroke_before_the_log_names_its_line(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    # the log starts 110 s after the schedule start: strokes 1 and 2 (43.2 s, 86.4 s) precede it
    _host_log_run(tmp_path, 1_000_000.0 - 100)
    code, err = _report_err(tmp_path, capsys)
    assert code == 2
    assert "line 3: time_ms 1767600086400 is before the balance log's first reading" in err
    assert "(pump ms 1767600110000)" in err


def test_a_disconnection_is_named_as_injected_and_clears_by_its_name() -> None:
    from itb.cli.rig import fault_names
    from itb.hardware import Rig

    rig = Rig()
    status = rig.fault({"fault": "disconnection", "position_ul": 0})
    # as the core's model: one breach slot, the kind it was injected as
    assert status["faults"] == {"leak": {"kind": "disconnection", "position_ul": 0.0}}
    assert fault_names(rig.fault({"fault": "occlusion", "pass_pct": 25})) == (
        "disconnection, occlusion"
    )
    assert rig.fault({"fault": "clear", "which": "disconnection"})["faults"] == {
        "occlusion": {"pass_pct": 25}
    }
    assert fault_names(rig.fault({"fault": "leak", "position_ul": 50})) == "leak, occlusion"
    assert fault_names({"faults": {}, "stalled": True}) == "stall"


def test_clear_which_disconnection_is_a_choice(tmp_path, capsys) -> None:
    argv = ["rig", "fault", "clear", "--which", "disconnection", "--port", str(tmp_path / "none")]
    main([*argv, "--key-file", str(tmp_path / "k")])
    assert "invalid choice" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["fault", "migration", "--pass-pct", "5"], ["--pass-pct", "fault occlusion", "migration"]),
        (["fault", "battery", "--position-ul", "4"], ["--position-ul", "battery"]),
        (["fault", "occlusion", "--which", "leak"], ["--which", "occlusion"]),
        (
            ["balance-emulate", "--protocol", "sics", "--sbi-format", "22"],
            ["--sbi-format", "--protocol sics"],
        ),
        (["balance-emulate", "--stroke-nl", "2000"], ["--stroke-nl", "--record"]),
    ],
)
def test_an_option_that_does_not_apply_is_refused_naming_both(
    tmp_path, capsys, args, named
) -> None:
    # refused before any port is opened: the port given does not exist
    extra = ["--port", str(tmp_path / "none"), "--key-file", str(tmp_path / "k")]
    assert main(["rig", *args, *(extra if args[0] == "fault" else [])]) == 2
    err = capsys.readouterr().err
    assert all(n in err for n in named), err


def test_balance_emulate_flow_and_record_together_or_a_missing_record_are_refused(
    tmp_path, capsys
) -> None:
    record = tmp_path / "strokes.csv"
    record.write_text("")
    assert main(["rig", "balance-emulate", "--flow-ul-per-h", "5", "--record", str(record)]) == 2
    err = capsys.readouterr().err
    assert "--flow-ul-per-h and --record" in err
    missing = tmp_path / "nonexist.csv"
    assert main(["rig", "balance-emulate", "--record", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--record: {missing} does not exist" in err


@pytest.mark.parametrize("n", [-1, 1.5, True, "2", None])
def test_drop_acks_takes_a_whole_number_of_deliveries(n) -> None:
    driver = SimulatedDriver()
    with pytest.raises(ValidationError) as e:
        driver.drop_acks(n)
    assert e.value.field == "n"
    driver.deliver(1, 1)  # nothing changed: the next answer is not lost
    assert driver.rig.last_stroke_id == 1


@pytest.mark.parametrize("bad", [5, 0.5, -1, "5", None, np.timedelta64(-1, "s")])
def test_delay_is_checked_when_set_and_a_duration_takes_effect(bad) -> None:
    from datetime import timedelta

    slept: list[float] = []
    driver = SimulatedDriver(sleep=slept.append)
    with pytest.raises(ValidationError) as e:
        driver.delay = bad
    assert e.value.field == "delay"
    assert driver.delay == timedelta(0)  # unchanged
    driver.delay = np.timedelta64(250, "ms")
    assert driver.delay == timedelta(milliseconds=250)
    driver.status()
    assert slept == [0.25]


@pytest.mark.parametrize("rate", ["0", "1e-6", "0.001", "95.999", "48000.001", "-3"])
def test_accuracy_ug_per_day_has_one_message_with_the_range_it_accepts(capsys, rate) -> None:
    # SynchroMed II 40 mL: 0.048 to 24 mL/day, at 2000 µg/mL 96 to 48000 µg/day (by hand)
    assert main(["rig", "accuracy", "--duration", "P2D", "--ug-per-day", rate]) == 2
    err = capsys.readouterr().err
    assert "argument --ug-per-day:" in err and "allowed 96 to 48000 µg/day" in err
    assert "0 or" not in err and "must be > 0" not in err and "smallest accepted" not in err


@pytest.mark.parametrize(
    ("option", "value", "range_text"),
    [
        ("--readability-mg", "0", "between 1e-06 mg and 10000 mg"),
        ("--concentration", "0", "between 1 µg/mL and 100000 µg/mL"),
    ],
)
def test_accuracy_range_errors_state_the_unit(capsys, option, value, range_text) -> None:
    assert main(["rig", "accuracy", "--duration", "P2D", option, value]) == 2
    assert range_text in capsys.readouterr().err


def test_balance_readability_range_errors_state_the_unit(tmp_path, capsys) -> None:
    assert main(["rig", "balance-emulate", "--readability-mg", "0"]) == 2
    assert "between 1e-06 mg and 10000 mg" in capsys.readouterr().err
    argv = ["rig", "balance-log", "--port", "x", "--out", str(tmp_path / "b"), "--readability-mg"]
    assert main([*argv, "0"]) == 2
    assert "between 1e-06 mg and 10000 mg" in capsys.readouterr().err
