"""End to end: controller → SerialDriver → emulator subprocess, over a pty and socket://127.0.0.1;
the command line; and the kill -9 crash loop.

Environment: ``ITB_CRASH_LOOPS`` (default 200) kills per transport-run of the crash loop;
``ITB_SOAK_SECONDS`` (default 0: skipped) runs the soak test for that long.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from _rig import START, delivered_by_pump, emulator, scenario_pump, scenario_toml
from itb.errors import AuthenticationError, ProtocolError
from itb.hardware import (
    Controller,
    Journal,
    Role,
    SerialDriver,
    load_keys,
    read_record,
    stroke_schedule,
)

pytest.importorskip("serial")
if sys.platform == "win32":  # pragma: no cover
    pytest.skip("ptys and fork are POSIX", allow_module_level=True)

CRASH_LOOPS = int(os.environ.get("ITB_CRASH_LOOPS", "200"))
SOAK_SECONDS = float(os.environ.get("ITB_SOAK_SECONDS", "0"))


def itb_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "itb", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("mode", ["pty", "tcp"])
def test_controller_drives_the_emulator(tmp_path: Path, mode: str) -> None:
    hours = 3.0
    sched = stroke_schedule(scenario_pump(), START + timedelta(hours=hours))
    with emulator(tmp_path, mode) as (port, record, _):
        keys = load_keys(tmp_path / "rig.keys")
        with (
            SerialDriver(port, keys, timeout=timedelta(seconds=5)) as drv,
            Journal(tmp_path / "j.db") as j,
        ):
            c = Controller(drv, j, sched, batch=8)
            assert c.run(max_strokes=50).last_stroke_id == 50
            drv.close()  # hang up mid-run; a new driver resumes on the same journal
        with (
            SerialDriver(port, keys, timeout=timedelta(seconds=5)) as drv,
            Journal(tmp_path / "j.db") as j,
        ):
            report = Controller(drv, j, sched, batch=8).run()
            assert report.complete and report.resumed_from == 50
            status = drv.status()
            assert status.last_stroke_id == sched.size and status.extra["refused"] == {}
            # the scale samples every 0.5 s: a sample taken more than 0.5 s after the last
            # stroke holds every stroke (one taken sooner may not: that was a flake under load)
            time.sleep(0.6)
            m = drv.measure()
            assert m["expected_nl"] == 2000 * sched.size
            # the patient's key is refused everything but patient boluses (and the refusal is journaled)
        with (
            SerialDriver(port, keys, role=Role.PATIENT, timeout=timedelta(seconds=5)) as pat,
            Journal(tmp_path / "j.db") as j,
        ):
            c = Controller(pat, j, sched, role="patient")
            with pytest.raises(AuthenticationError) as e:
                c.call("STATUS", pat.status)
            assert e.value.field == "role"
            assert list(j.entries())[-1].kind == "refused"
            assert c.call("PATIENT_BOLUS", pat.patient_bolus)["reason"] == "not_enabled"
    rows = read_record(record)
    assert [i for i, _ in rows] == list(range(1, delivered_by_pump(hours) + 1))
    assert [t for _, t in rows] == sched.tolist()


def test_wrong_key_and_loop_reflection_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.keys"
    other.write_text(f"clinician {bytes(32).hex()}\n")
    with emulator(tmp_path, "tcp") as (port, record, _):
        with SerialDriver(port, load_keys(other), timeout=timedelta(seconds=0.5)) as drv:
            with pytest.raises(
                ProtocolError
            ) as e:  # the rig does not answer a HELLO it cannot verify
                drv.status()
            assert e.value.field == "timeout"
    # loop:// echoes our own frames back: the HELLO comes back as a "CHALLENGE" and is refused
    with SerialDriver(
        "loop://", load_keys(tmp_path / "rig.keys"), timeout=timedelta(seconds=0.3)
    ) as drv:
        with pytest.raises(ProtocolError):
            drv.status()
        assert sum(drv.refused.values()) >= 1


def test_command_line_session(tmp_path: Path) -> None:
    scen = scenario_toml(tmp_path / "scenario.toml", hours=1)
    keys = tmp_path / "k"
    assert (
        itb_cli("rig", "keygen", str(keys), "--patient-file", str(tmp_path / "p")).returncode == 0
    )
    assert itb_cli("rig", "keygen", str(keys)).returncode == 2  # no overwrite
    with emulator(tmp_path, "pty", keys=keys) as (port, record, _):
        r = itb_cli(
            "rig",
            "run",
            str(scen),
            "--port",
            port,
            "--key-file",
            str(keys),
            "--journal",
            str(tmp_path / "j.db"),
            "--json",
        )
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["complete"] and report["strokes"] == delivered_by_pump(1)
        r = itb_cli("rig", "status", "--port", port, "--key-file", str(keys), "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["last_stroke_id"] == report["strokes"]
        r = itb_cli(
            "rig",
            "limits",
            "--port",
            port,
            "--key-file",
            str(keys),
            "--dose-ug",
            "25",
            "--lockout",
            "60min",
            "--journal",
            str(tmp_path / "j.db"),
        )
        assert r.returncode == 0, r.stderr
        limits = json.loads(r.stdout)  # durations with their unit, exact ms on the wire
        assert (limits["duration_ms"], limits["lockout_ms"]) == (600_000, 3_600_000)
        r = itb_cli(
            "rig",
            "bolus",
            "--port",
            port,
            "--key-file",
            str(tmp_path / "p"),
            "--journal",
            str(tmp_path / "j.db"),
        )
        assert (r.returncode, r.stdout.strip()) == (0, "granted")
        r = itb_cli(
            "rig",
            "bolus",
            "--port",
            port,
            "--key-file",
            str(tmp_path / "p"),
            "--journal",
            str(tmp_path / "j.db"),
        )
        assert (r.returncode, r.stdout.strip()) == (1, "refused: lockout")
        r = itb_cli(
            "rig",
            "stop",
            "--port",
            port,
            "--key-file",
            str(keys),
            "--journal",
            str(tmp_path / "j.db"),
        )
        assert (r.returncode, r.stdout.strip()) == (0, "stopped"), r.stderr
        r = itb_cli("rig", "bolus", "--port", port, "--key-file", str(tmp_path / "p"))
        assert (r.returncode, r.stdout.strip()) == (1, "refused: stopped")
        r = itb_cli("rig", "resume", "--port", port, "--key-file", str(keys))
        assert (r.returncode, r.stdout.strip()) == (0, "running"), r.stderr
        r = itb_cli("rig", "status", "--port", port, "--key-file", str(tmp_path / "p"))
        assert r.returncode == 1 and "patient role may not STATUS" in r.stderr
        r = itb_cli(
            "rig",
            "measure",
            "--port",
            port,
            "--key-file",
            str(keys),
            "--duration",
            "1s",
            "--interval",
            "250ms",
            "--json",
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["within_tolerance"]
    r = itb_cli("rig", "journal", str(tmp_path / "j.db"), "--csv")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("id,wall_time_utc,kind,role,command")
    assert (
        any(",refused,patient,STATUS," in ln for ln in lines) is False
    )  # status was not journaled (no --journal)
    assert sum(",ack,patient,PATIENT_BOLUS," in ln for ln in lines) == 1
    assert sum(",refused,patient,PATIENT_BOLUS," in ln and ",lockout," in ln for ln in lines) == 1
    assert any(",ack,clinician,SET_LIMITS," in ln for ln in lines)
    r = itb_cli(
        "rig",
        "verify",
        "--journal",
        str(tmp_path / "j.db"),
        "--record",
        str(record),
        "--scenario",
        str(scen),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"exactly once: {report['strokes']} strokes")
    # exit codes: bad file / argument → 2
    assert itb_cli("rig", "journal", str(tmp_path / "missing.db")).returncode == 2
    assert (
        itb_cli(
            "rig",
            "run",
            str(tmp_path / "missing.toml"),
            "--port",
            "loop://",
            "--key-file",
            str(keys),
            "--journal",
            str(tmp_path / "x.db"),
        ).returncode
        == 2
    )
    assert (
        itb_cli(
            "rig", "status", "--port", "loop://", "--key-file", str(tmp_path / "nokeys")
        ).returncode
        == 2
    )
    assert itb_cli("rig", "run", "--speed", "fast").returncode == 2
    assert itb_cli("rig").returncode == 2  # no rig command: usage on stderr
    r = itb_cli("rig", "journal", str(tmp_path / "j.db"))
    assert r.returncode == 0 and "PATIENT_BOLUS" in r.stdout
    for cmd in (["rig", "emulate"], ["rig", "run"], ["trumpet"]):
        r = itb_cli(*cmd, "--help")
        assert r.returncode == 0 and "NOT a medical device" in " ".join(r.stdout.split())


# ----- kill -9 crash loop ---------------------------------------------------------------------------


def _crash_round(
    tmp: Path, mode: str, hours: float, kills_wanted: int, rng: random.Random, max_delay: float
) -> dict:
    """One rig + journal: kill forked controllers at random moments until one finishes; check the record."""
    import serial  # noqa: F401  - loaded before forking, so children start fast
    import serial.urlhandler.protocol_socket  # noqa: F401

    sched = stroke_schedule(scenario_pump(), START + timedelta(hours=hours))
    stats: Counter = Counter()
    with emulator(tmp, mode) as (port, record, proc):
        keys = load_keys(tmp / "rig.keys")
        journal = tmp / "j.db"
        while True:
            assert proc.poll() is None, (
                f"the emulator died: {proc.stderr.read() if proc.stderr else '?'}"
            )
            pid = os.fork()
            if pid == 0:  # the controller
                code = 4
                try:
                    drv = SerialDriver(port, keys, timeout=timedelta(seconds=5))
                    Controller(drv, Journal(journal), sched, batch=3).run()
                    code = 0
                except ProtocolError as exc:
                    # A rig that does not answer within 5 s (a heavily loaded machine) or a link
                    # that fails (a pty hung up under the controller): the operator restarts the
                    # controller, like after a kill; anything else fails.
                    code = 3 if getattr(exc, "field", None) in ("timeout", "port") else 4
                    (tmp / "controller.err").write_text(f"{type(exc).__name__}: {exc}")
                except BaseException as exc:
                    (tmp / "controller.err").write_text(f"{type(exc).__name__}: {exc}")
                os._exit(code)
            if stats["kills"] < kills_wanted:
                time.sleep(rng.uniform(0, max_delay))
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                stats["kills"] += 1
                continue
            if os.WEXITSTATUS(status) == 3 and stats["link_failures"] < 5:
                stats["link_failures"] += (
                    1  # restarted like after a kill; the record is checked below
                )
                continue
            err = tmp / "controller.err"
            assert os.WEXITSTATUS(status) == 0, (
                f"a controller run failed: {err.read_text() if err.exists() else '?'}"
            )
            stats["runs_finished"] += 1
            if stats["kills"] >= kills_wanted or stats["runs_finished"] >= 1:
                break
    rows = read_record(record)
    ids = [i for i, _ in rows]
    expected = delivered_by_pump(hours)
    assert len(ids) == expected == sched.size, "strokes lost or doubled"
    assert ids == list(range(1, expected + 1)), "a stroke id missing, doubled or out of order"
    assert [t for _, t in rows] == sched.tolist()
    with Journal(journal) as j:
        assert j.open_intents() == []
        for e in j.entries():
            if e.kind == "reconciled":
                stats[f"reconciled_{e.result}"] += 1
    stats["strokes"] = expected
    return dict(stats)


@pytest.mark.parametrize("mode, share", [("tcp", 1.0), ("pty", 0.15)])
def test_kill_9_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, mode: str, share: float, capsys
) -> None:
    """Controllers forked from this (preloaded) process are SIGKILLed after a random 0–20 ms;
    each round runs until a controller finishes, then the rig's record must hold every stroke id
    of the scenario exactly once. ITB_CRASH_LOOPS kills over TCP (15 % of that over the pty)."""
    wanted = max(1, int(CRASH_LOOPS * share))
    rng = random.Random(int(os.environ.get("ITB_CRASH_SEED", "20261130")))
    total: Counter = Counter()
    rounds = 0
    t0 = time.monotonic()
    while total["kills"] < wanted:
        d = tmp_path / f"round{rounds}"
        d.mkdir()
        total.update(
            _crash_round(
                d,
                mode,
                hours=8.0,
                kills_wanted=min(40, wanted - total["kills"]),
                rng=rng,
                max_delay=0.02,
            )
        )
        rounds += 1
    with capsys.disabled():
        print(
            f"\n[crash loop {mode}] {rounds} rounds, {dict(total)}, {time.monotonic() - t0:.1f} s"
        )
    assert total["kills"] >= wanted


# ----- soak -----------------------------------------------------------------------------------------


@pytest.mark.skipif(SOAK_SECONDS <= 0, reason="set ITB_SOAK_SECONDS to run the soak test")
def test_soak(tmp_path: Path) -> None:
    """For ITB_SOAK_SECONDS: controllers at 600× real time over the pty, killed after a random
    0–2 s or hung up after a random number of strokes; then a last run at max speed must leave
    every stroke of the scenario exactly once."""
    import serial  # noqa: F401  - loaded before forking

    rng = random.Random(1)
    hours = 24.0
    sched = stroke_schedule(scenario_pump(), START + timedelta(hours=hours))
    deadline = time.monotonic() + SOAK_SECONDS
    stats: Counter = Counter()
    with emulator(tmp_path, "pty") as (port, record, _):
        keys = load_keys(tmp_path / "rig.keys")
        journal = tmp_path / "j.db"
        while time.monotonic() < deadline:
            if rng.random() < 0.5:
                pid = os.fork()
                if pid == 0:
                    code = 3
                    try:
                        Controller(
                            SerialDriver(port, keys, timeout=timedelta(seconds=5)),
                            Journal(journal),
                            sched,
                            speed=600.0,
                        ).run()
                        code = 0
                    except BaseException:
                        pass
                    os._exit(code)
                time.sleep(rng.uniform(0, 2.0))
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                stats["killed" if os.WIFSIGNALED(status) else "finished"] += 1
            else:
                with (
                    SerialDriver(port, keys, timeout=timedelta(seconds=5)) as drv,
                    Journal(journal) as j,
                ):
                    Controller(drv, j, sched, speed=600.0).run(max_strokes=rng.randint(1, 50))
                    stats["hung_up"] += 1
        with SerialDriver(port, keys, timeout=timedelta(seconds=5)) as drv, Journal(journal) as j:
            assert Controller(drv, j, sched).run().complete
            assert j.open_intents() == []
    ids = [i for i, _ in read_record(record)]
    assert ids == list(range(1, delivered_by_pump(hours) + 1))
    print(f"\n[soak] {SOAK_SECONDS:g} s: {dict(stats)}, {len(ids)} strokes")


def test_a_peer_killed_mid_frame_does_not_block_the_next_one(tmp_path: Path) -> None:
    """Half a frame left in the pty by a dead controller: the next one's HELLO is answered after
    the rig's idle drop (HELLO re-sent), within the driver's timeout."""
    with emulator(tmp_path, "pty") as (port, record, _):
        keys = load_keys(tmp_path / "rig.keys")
        for cut in (2, 30):
            fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
            os.write(fd, (200).to_bytes(4, "big") + b"\x01\x11\x01" + bytes(cut))
            with SerialDriver(
                port, keys, timeout=timedelta(seconds=3)
            ) as drv:  # opened while the junk is still there
                os.close(fd)
                t0 = time.monotonic()
                assert drv.status().last_stroke_id == 0
                assert time.monotonic() - t0 < 3
            refused = SerialDriver(port, keys, timeout=timedelta(seconds=3))
            assert (
                refused.status().extra["refused"].get("truncated", 0)
                + refused.status().extra["refused"].get("tag", 0)
                >= 1
            )
            refused.close()


def test_the_rig_killed_and_restarted_on_its_record_resumes_exactly(tmp_path: Path) -> None:
    hours = 2.0
    sched = stroke_schedule(scenario_pump(), START + timedelta(hours=hours))
    keys = None
    with emulator(tmp_path, "tcp") as (port, record, proc):
        keys = load_keys(tmp_path / "rig.keys")
        with SerialDriver(port, keys) as drv, Journal(tmp_path / "j.db") as j:
            Controller(drv, j, sched, batch=5).run(max_strokes=60)
        proc.kill()  # kill -9 the rig
        proc.wait()
    with emulator(tmp_path, "tcp") as (port, record, _):  # same record file, new port
        with SerialDriver(port, keys) as drv, Journal(tmp_path / "j.db") as j:
            assert drv.status().last_stroke_id == 60
            report = Controller(drv, j, sched, batch=5).run()
            assert report.complete and report.resumed_from == 60
    assert [i for i, _ in read_record(record)] == list(range(1, delivered_by_pump(hours) + 1))


def test_a_reader_reopening_the_pty_before_the_rig_reads_keeps_the_rig_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A controller killed and restarted fast: select saw the hang-up, the next one opened the pty
    before the rig's read, and that read finds nothing (EAGAIN). The rig used to die of it
    (``Resource temporarily unavailable``, found by the crash loop under load); it must end the old
    session and serve the new reader."""
    import threading

    from _rig import KC, KP
    from itb.hardware import Rig
    from itb.hardware import emulator as emu

    keys = {Role.CLINICIAN: KC, Role.PATIENT: KP}
    real_read = os.read
    served: list[str] = []
    raised = threading.Event()

    def read(fd: int, n: int) -> bytes:
        if threading.current_thread().name == "rig" and not raised.is_set():
            raised.set()  # the first read after a hang-up, as the race leaves it
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return real_read(fd, n)

    monkeypatch.setattr(emu.os, "read", read)
    stop, ready = threading.Event(), threading.Event()

    def announce(path: str) -> None:
        served.append(path)
        ready.set()

    rig = Rig(record=tmp_path / "record.csv")
    thread = threading.Thread(
        target=emu.serve_pty,
        args=(rig, keys),
        kwargs={"announce": announce, "stop": stop},
        name="rig",
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(5)
        for _ in range(2):  # the first session meets the EAGAIN, the second a fresh rig loop
            with SerialDriver(served[0], keys, timeout=timedelta(seconds=5)) as drv:
                assert drv.status().last_stroke_id == 0
        assert raised.is_set() and thread.is_alive()
    finally:
        stop.set()
        thread.join(5)
        rig.close()
    assert not thread.is_alive()
