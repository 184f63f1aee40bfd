"""``itb rig balance-log``: a balance read every interval during a rig run, each reading with
host timestamps, and the report putting that host-clock log on the pump clock with the run's
journal (hand-computed times)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from itb.errors import BalanceBusy, BalanceError, BalanceOverload, ValidationError
from itb.hardware.balance import Reading
from itb.hardware.balance.logger import log_balance, readability_of
from itb.hardware.journal import Journal
from itb.hardware.report import read_balance_log


class FakeClock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class ScriptedBalance:
    """Returns (or raises) the next scripted item, stamped with the fake clock; 0.1 s a read."""

    def __init__(self, clock: FakeClock, items: list[object]) -> None:
        self.clock, self.items = clock, list(items)

    def read_immediate(self) -> Reading:
        self.clock.t += 0.1
        item = self.items.pop(0) if self.items else Decimal("1.00000")
        if isinstance(item, Exception):
            raise item
        assert isinstance(item, Decimal)
        return Reading(item, "g", True, datetime(2026, 12, 2, 9, 0), self.clock.t)

    read_stable = read_immediate

    def zero(self) -> None: ...

    def tare(self) -> None: ...


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines() if line[:1].isdigit()]


def test_log_every_interval_with_refusals_as_comments(tmp_path: Path) -> None:
    clock = FakeClock()
    items: list[object] = [
        Decimal("50.00000"),
        Decimal("50.00002"),
        BalanceOverload("overload: S +", "overload"),
        Decimal("50.00004"),
    ]
    out = tmp_path / "b.csv"
    summary = log_balance(
        ScriptedBalance(clock, items),
        out,
        interval=timedelta(seconds=2),
        duration=timedelta(seconds=7),
        rate_ul_per_h=10.4,
        clock=clock,
        wall=lambda: 1_000_000.0 + clock.t,
        sleep=clock.sleep,
    )
    rows = _rows(out)
    # reads due at 0, 2, 4, 6 s after the first (each takes 0.1 s): elapsed 0, 2000, 6000 ms
    # (the one at 4 s was refused), then readings at 8 s would be past the 7 s duration
    assert [int(r[0]) for r in rows] == [0, 2000, 6000]
    assert [float(r[1]) for r in rows] == [50_000.0, 50_000.02, 50_000.04]
    assert rows[0][2] == "2026-12-02T09:00:00.000"
    text = out.read_text()
    assert "# 4000 error overload: overload: S +" in text
    assert "# wall_start=1000500.1\n" in text  # the wall clock at the first reading
    assert summary.readings == 3 and summary.errors == 1
    assert summary.readability_mg == pytest.approx(0.01)  # 5 decimals of a gram
    with pytest.raises(ValidationError) as err:
        log_balance(ScriptedBalance(clock, []), out, interval=timedelta(seconds=1))
    assert err.value.field == "out"


def test_a_port_failure_ends_the_log(tmp_path: Path) -> None:
    clock = FakeClock()
    items: list[object] = [
        Decimal("1.0"),
        BalanceBusy("busy", "busy"),
        BalanceError("gone", "port"),
    ]
    with pytest.raises(BalanceError) as err:
        log_balance(
            ScriptedBalance(clock, items),
            tmp_path / "b.csv",
            interval=timedelta(seconds=1),
            clock=clock,
            sleep=clock.sleep,
        )
    assert err.value.field == "port"
    assert len(_rows(tmp_path / "b.csv")) == 1  # what was read is kept


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("interval", {"interval": timedelta(0)}),
        ("rate_ul_per_h", {"rate_ul_per_h": -1.0}),
        ("readability_mg", {"readability_mg": float("nan")}),
        ("evaporation_mg_per_h", {"evaporation_mg_per_h": (0.1, -0.1)}),
    ],
)
def test_bad_settings_are_typed(tmp_path: Path, name: str, kwargs: dict[str, object]) -> None:
    clock = FakeClock()
    args: dict[str, object] = {"interval": timedelta(seconds=1), **kwargs}
    with pytest.raises(ValidationError) as err:
        log_balance(ScriptedBalance(clock, []), tmp_path / "b.csv", **args)  # type: ignore[arg-type]
    assert err.value.field == name and not (tmp_path / "b.csv").exists()


def test_readability_from_the_printed_decimals() -> None:
    stamp = datetime(2026, 1, 1)
    for value, unit, mg in [("0.08712", "g", 0.01), ("87.1", "mg", 0.1), ("1.000001", "g", 0.001)]:
        assert readability_of(Reading(Decimal(value), unit, True, stamp, 0.0)) == pytest.approx(mg)
    with pytest.raises(BalanceError) as err:
        readability_of(Reading(Decimal("1.0"), "ct", True, stamp, 0.0))
    assert err.value.field == "unit"


def _journal(path: Path, speed: str, anchor_wall: float, start_ms: int) -> None:
    with Journal(path) as j:
        j.set("speed", speed)
        j.set("anchor_wall", repr(anchor_wall))
        j.set("start_ms", str(start_ms))


def _log(path: Path) -> None:
    path.write_text(
        "# itb balance log\n# wall_start=1000010.5\n# readability_mg=0.001\n"
        "# evaporation_mg_per_h=0.36,0.036\nelapsed_ms,mass_mg,host_time\n"
        "0,100.0,2026-12-02T09:00:00.000\n500,100.5,2026-12-02T09:00:00.500\n"
        "1000,101.0,2026-12-02T09:00:01.000\n"
    )


def test_report_puts_a_host_clock_log_on_the_pump_clock(tmp_path: Path) -> None:
    log, journal = tmp_path / "b.csv", tmp_path / "run.db"
    _log(log)
    # the run's start_ms 1 767 600 000 000 was due at wall 1 000 000.0 s, speed 360
    _journal(journal, "360.0", 1_000_000.0, 1_767_600_000_000)
    run, start_ms, rate = read_balance_log(log, journal)
    # first reading 10.5 s of wall time later = 3780 s of pump time
    assert start_ms == 1_767_600_000_000 + 3_780_000
    assert [int(t) for t in run.times_ms] == [0, 180_000, 360_000]  # 0.5 s × 360 = 3 min
    assert run.evaporation_mg_per_h.value == pytest.approx(0.001)  # 0.36 mg/h ÷ 360
    assert run.evaporation_mg_per_h.standard_uncertainty == pytest.approx(0.0001)
    assert rate is None
    with pytest.raises(ValidationError, match="--journal"):
        read_balance_log(log)
    _journal(journal, "max", 1_000_000.0, 1_767_600_000_000)
    with pytest.raises(ValidationError, match="max speed"):
        read_balance_log(log, journal)


@pytest.mark.parametrize("protocol", ["sics", "sbi"])
def test_cli_logs_the_emulator_over_a_pty(
    protocol: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("serial")
    import threading

    from itb.cli import main
    from itb.hardware.balance.emulator import EmulatedBalance, serve_pty

    # 3.6 g/h = 1 mg/s onto the pan, a 0.1 mg display
    bal = EmulatedBalance(readability_mg=0.1, flow_mg_per_h=3600.0, initial_mg=1000.0)
    ready, stop = threading.Event(), threading.Event()
    where: list[str] = []

    def announce(path: str) -> None:
        where.append(path)
        ready.set()

    thread = threading.Thread(target=serve_pty, args=(bal, protocol, announce, stop.is_set))
    thread.start()
    try:
        assert ready.wait(5)
        out = tmp_path / "b.csv"
        argv = ["rig", "balance-log", "--port", where[0], "--protocol", protocol]
        argv += ["--out", str(out), "--interval", "100ms", "--duration", "1s"]
        assert main(argv) == 0
    finally:
        stop.set()
        thread.join(5)
    rows = _rows(out)
    assert 5 <= len(rows) <= 12
    assert "readability 0.1 mg" in capsys.readouterr().out
    # the masses follow 1 mg/s of host time, to the display step and the timing jitter
    (t0, m0), (t1, m1) = [(int(r[0]), float(r[1])) for r in (rows[0], rows[-1])]
    assert m1 - m0 == pytest.approx((t1 - t0) / 1000, abs=0.3)
    run, _, _ = read_balance_log(
        out,
        _journal_for(
            tmp_path / "run.db",
            wall_start=float(out.read_text().split("wall_start=")[1].split()[0]),
        ),
    )
    assert run.readability_mg == pytest.approx(0.1)


def _journal_for(path: Path, wall_start: float) -> Path:
    _journal(path, "1.0", wall_start, 0)  # real time, the schedule's start at the first reading
    return path


def test_cli_bad_port_is_a_typed_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("serial")
    from itb.cli import main

    argv = ["rig", "balance-log", "--port", str(tmp_path / "no-tty"), "--out", str(tmp_path / "b")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "itb: error: port:" in err and "internal error" not in err


def test_report_of_a_host_clock_log_derives_the_rate_from_the_record(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from itb.hardware.metrology import Measurement, mass_to_volume, water_density
    from itb.hardware.report import build_report

    # a run at speed 2 whose schedule start (pump ms 0) was due at wall 1 000 000 s: a 2 µL
    # stroke every 43.2 s of pump time (166.67 µL/h) for 2 h; the logger started 1 s (wall)
    # before, reading every 5 s of wall time (10 s of pump time)
    start = 1_767_600_000_000
    strokes = [start + 43_200 * k for k in range(1, 167)]
    (tmp_path / "r.csv").write_text("".join(f"{k},{t}\n" for k, t in enumerate(strokes, 1)))
    _journal(tmp_path / "run.db", "2.0", 1_000_000.0, start)
    mg_per_ul = 1 / mass_to_volume(Measurement.exact(1.0, "mg"), water_density(20.0), 1.2).value
    rows = []
    for i in range(0, 3700):  # wall 999 999 s + 5 s·i → pump −2 s + 10 s·i
        pump_ms = -2000 + 10_000 * i
        if pump_ms > 7_200_000:
            break
        n = sum(1 for t in strokes if t - start <= pump_ms)
        rows.append(f"{5000 * i},{50_000 + n * 2 * mg_per_ul!r},2026-12-02T09:00:00.000\n")
    (tmp_path / "b.csv").write_text(
        "# itb balance log\n# wall_start=999999.0\n# readability_mg=0.001\n"
        "# evaporation_mg_per_h=0.0,0.0\nelapsed_ms,mass_mg,host_time\n" + "".join(rows)
    )
    rep = build_report(
        tmp_path / "r.csv",
        tmp_path / "b.csv",
        journal=tmp_path / "run.db",
        windows=[timedelta(minutes=20)],
        exclude=timedelta(minutes=30),
    )
    # the rate of the record: 165 intervals of 43.2 s, 2 µL each
    assert rep["low_flow"]["rate_ul_per_h"] == pytest.approx(2 * 3600 / 43.2)
    # every stroke lies inside the log (pump −2 s … 7 198 s): 166 expected, 332 µL delivered
    assert rep["delivered"]["strokes"] == 166
    assert rep["delivered"]["delivered_ul"] == pytest.approx(332.0, abs=1e-6)
    (window,) = rep["low_flow"]["windows"]
    assert window["window_s"] == pytest.approx(28 * 43.2)  # 20 min → 28 whole stroke cycles
    assert abs(window["max_pct"]["value"]) < 1e-6 and abs(window["min_pct"]["value"]) < 1e-6
    # the hand-made journal holds the clock only, no stroke rows: exactly once fails, alone
    assert [v.name for v in rep["verdicts"] if not v.passed] == ["exactly once"]
