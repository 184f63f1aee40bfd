"""The rig under faults, end to end over 127.0.0.1: every shipped example on the emulated rig,
the server's limits and log, a controller that reconnects to a restarted rig, and the emulator
itself killed with SIGKILL at random moments.

``ITB_RIG_KILLS`` (default 50) sets how many times the crash loop kills the emulator.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from _rig import write_keys
from itb import scenario
from itb.errors import ProtocolError
from itb.hardware import Controller, Journal, Rig, SerialDriver, SimulatedDriver, load_keys
from itb.hardware.plan import plan_scenario
from itb.hardware.rig import read_record
from itb.hardware.verify import verify

pytest.importorskip("serial")
if sys.platform == "win32":  # pragma: no cover
    pytest.skip("fork and SIGKILL are POSIX", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
KILLS = int(os.environ.get("ITB_RIG_KILLS", "50"))
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z rig: ")


def itb_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "itb", *args], capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(tmp: Path, port: int, *extra: str, log: Path | None = None) -> subprocess.Popen:
    keys = tmp / "rig.keys"
    if not keys.exists():
        write_keys(keys)
    err = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "itb",
            "rig",
            "emulate",
            "--tcp",
            str(port),
            "--key-file",
            str(keys),
            "--record",
            str(tmp / "record.csv"),
            *(() if log is not None else ("--quiet",)),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("PORT socket://127.0.0.1:"), first
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def expected_reservoir_nl(plan, strokes: int, initial_nl: int = 40_000_000) -> int:
    """By hand: the last refill's volume (or the rig's 40 mL) minus 2 µL per stroke since."""
    level, since = initial_nl, 0
    for s in plan.steps:
        if s.command == "REFILL" and s.after <= strokes:
            level, since = s.args["added_nl"], s.after
    return level - (strokes - since) * 2000


# ----- every shipped example runs on the emulated rig --------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_shipped_example_runs_end_to_end_on_the_emulated_rig(
    tmp_path: Path, example: Path
) -> None:
    port = free_port()
    proc = start_emulator(tmp_path, port)
    url = f"socket://127.0.0.1:{port}"
    keys = str(tmp_path / "rig.keys")
    try:
        r = itb_cli(
            "rig", "run", str(example), "--port", url, "--key-file", keys,
            "--journal", str(tmp_path / "j.db"), "--batch", "64", "--json",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        with SerialDriver(url, load_keys(keys), timeout=timedelta(seconds=5)) as drv:
            status = drv.status().as_dict()
    finally:
        stop(proc)
    sc = scenario.load(example)
    plan = plan_scenario(sc)
    strokes = sc.run().pump.strokes
    assert report["complete"] and report["strokes"] == strokes == plan.times.size
    assert report["steps"] == len(sc.actions)
    assert status["last_stroke_id"] == strokes
    assert status["reservoir_nl"] == expected_reservoir_nl(plan, strokes)
    assert status["concentration_ug_per_ml"] == plan.concentration_after(strokes)
    assert not status["stopped"]
    assert [i for i, _ in read_record(tmp_path / "record.csv")] == list(range(1, strokes + 1))
    checked = verify(tmp_path / "j.db", tmp_path / "record.csv", plan)
    assert checked.ok and checked.strokes == strokes, checked.problems


# ----- the server's limits and its log -----------------------------------------------------------


def test_connection_cap_idle_timeout_and_a_summarised_timestamped_log(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "rig.log"
    proc = start_emulator(tmp_path, port, "--max-connections", "4", "--idle-timeout", "1s", log=log)
    keys = load_keys(tmp_path / "rig.keys")
    url = f"socket://127.0.0.1:{port}"
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        extra = socket.create_connection(("127.0.0.1", port))
        extra.settimeout(3)
        assert extra.recv(10) == b""  # the fifth is closed at once
        extra.close()
        # a slowloris: one byte every 0.3 s, never a whole frame; closed after the idle timeout
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 6:
            try:
                held[0].sendall(b"\x00")
                held[0].settimeout(0.3)
                if held[0].recv(10) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        assert closed and time.monotonic() - t0 < 4
        for s in held:
            s.close()
        time.sleep(1.5)  # the idle ones go too
        flood = socket.create_connection(("127.0.0.1", port))
        junk = (80).to_bytes(4, "big") + b"\x01\x11\x01" + bytes(77)  # a frame with a bad tag
        flood.sendall(junk * 300)
        time.sleep(0.3)
        flood.close()
        with SerialDriver(
            url, keys, timeout=timedelta(seconds=5)
        ) as drv:  # legitimate clients are still served
            refused = drv.status().extra["refused"]
        assert refused.get("tag", 0) >= 300 and refused.get("connections", 0) >= 1
        time.sleep(1.2)  # a summary per second
    finally:
        stop(proc)
    lines = log.read_text().splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines[:5]
    assert len(lines) < 40  # 300 refused frames did not make 300 lines
    assert any(re.search(r"refused \d+ more frames in [\d.]+ s: tag \d+", ln) for ln in lines)
    assert any("session" in ln and "closed (clinician)" in ln for ln in lines)
    assert any("connections open (the cap)" in ln for ln in lines)
    assert any("idle: no complete frame" in ln for ln in lines)


# ----- reconnect ---------------------------------------------------------------------------------


SCENARIO = """
[pump]
model = "SYNCHROMED_II_20"
start = 2026-05-04T08:00:00
reservoir_ml = 20.0
concentration_ug_per_ml = 2000
program = { kind = "continuous", ug_per_day = 1500.0 }

[[actions]]
at = 2026-05-04T08:30:00
do = "set_patient_bolus_limits"
dose_ug = 25.0
duration = "PT15M"
lockout = "PT1H"
max_per_24h = 3

[[actions]]
at = 2026-05-04T09:00:00
do = "patient_bolus"

[[actions]]
at = 2026-05-04T09:30:00
do = "patient_bolus"

[[actions]]
at = 2026-05-04T12:00:00
do = "suspend"

[[actions]]
at = 2026-05-04T13:00:00
do = "resume"

[[actions]]
at = 2026-05-04T14:00:00
do = "patient_bolus"

[[actions]]
at = 2026-05-04T18:00:00
do = "refill"
added_ml = 20.0
concentration_ug_per_ml = 1000

[[actions]]
at = 2026-05-04T20:00:00
do = "patient_bolus"

[run]
until = 2026-05-05T08:00:00
"""


def test_a_controller_reconnects_to_a_restarted_rig_and_journals_it(tmp_path: Path) -> None:
    plan = plan_scenario(scenario.loads(SCENARIO))
    port = free_port()
    proc = start_emulator(tmp_path, port)
    keys = load_keys(tmp_path / "rig.keys")
    out: dict = {}

    def run() -> None:
        try:
            with SerialDriver(
                f"socket://127.0.0.1:{port}", keys, timeout=timedelta(seconds=2)
            ) as drv:
                with Journal(tmp_path / "j.db") as j:
                    out["report"] = Controller(drv, j, plan, speed=12_000.0).run()
                    out["reopened"] = drv.reopened
        except BaseException as exc:  # pragma: no cover - reported below
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        time.sleep(1.0)
        proc.kill()  # SIGKILL the rig mid-run
        proc.wait()
        proc.stdout.close()
        proc = start_emulator(tmp_path, port)  # back on the same port, same record
        thread.join(timeout=120)
    finally:
        stop(proc)
    assert "error" not in out, out.get("error")
    assert out["report"].complete and out["reopened"] >= 1
    with Journal(tmp_path / "j.db", readonly=True) as j:
        link = [e.result for e in j.entries() if e.command == "LINK"]
    assert link[:1] == ["lost"] and "back" in link
    ids = [i for i, _ in read_record(tmp_path / "record.csv")]
    assert ids == list(range(1, plan.times.size + 1))


# ----- the emulator killed at random moments ---------------------------------------------------


def _emulator_child(tmp: Path, port: int) -> None:
    from itb.hardware.emulator import serve_tcp

    code = 0
    try:
        rig = Rig(record=tmp / "record.csv")
        serve_tcp(rig, load_keys(tmp / "rig.keys"), port, announce=lambda _: None)
    except BaseException as exc:
        (tmp / "emulator.err").write_text(f"{type(exc).__name__}: {exc}")
        code = 4
    os._exit(code)


def _controller_child(tmp: Path, port: int, plan) -> None:
    code = 4
    try:
        keys = load_keys(tmp / "rig.keys")
        deadline = time.monotonic() + 10
        while True:  # the first open fails fast (no rig yet): like an operator, try again
            try:
                d = SerialDriver(f"socket://127.0.0.1:{port}", keys, timeout=timedelta(seconds=2))
                break
            except ProtocolError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        with d:
            with Journal(tmp / "j.db") as j:
                Controller(d, j, plan, batch=4).run()
        code = 0
    except ProtocolError as exc:  # the rig stayed away longer than the backoff: restart it
        code = 3
        (tmp / "controller.err").write_text(f"{type(exc).__name__}: {exc}")
    except BaseException as exc:
        (tmp / "controller.err").write_text(f"{type(exc).__name__}: {exc}")
    os._exit(code)


def test_the_emulator_killed_at_random_moments_restores_exactly(tmp_path: Path, capsys) -> None:
    """The rig (forked from this preloaded process, so it restarts in milliseconds) is SIGKILLed
    at a random 0–40 ms after each start while a controller runs the scenario; then it runs
    undisturbed to the end. Every stroke id is in the record exactly once and the rig's restored
    state is the state of an uninterrupted run."""
    import serial.urlhandler.protocol_socket  # noqa: F401 - loaded before forking

    plan = plan_scenario(scenario.loads(SCENARIO))
    write_keys(tmp_path / "rig.keys")
    port = free_port()
    rng = random.Random(int(os.environ.get("ITB_CRASH_SEED", "20261202")))
    stats: Counter = Counter()
    t0 = time.monotonic()
    controller = os.fork()
    if controller == 0:
        _controller_child(tmp_path, port, plan)
    try:
        while True:
            rig_pid = os.fork()
            if rig_pid == 0:
                _emulator_child(tmp_path, port)
            done, status = os.waitpid(controller, os.WNOHANG)
            if stats["kills"] >= KILLS:
                # undisturbed from here: wait for the controller to finish (restart it if it
                # gave up while the rig was away)
                _, status = os.waitpid(controller, 0) if not done else (done, status)
                if os.WEXITSTATUS(status) == 3 and stats["restarts"] < 5:
                    stats["restarts"] += 1
                    controller = os.fork()
                    if controller == 0:
                        _controller_child(tmp_path, port, plan)
                    os.kill(rig_pid, signal.SIGKILL)
                    os.waitpid(rig_pid, 0)
                    continue
                err = tmp_path / "controller.err"
                assert os.WEXITSTATUS(status) == 0, err.read_text() if err.exists() else "?"
                break
            if done:  # the controller finished or gave up before the kills were done
                if os.WEXITSTATUS(status) == 0:
                    stats["finished_early"] += 1
                    break
                stats["restarts"] += 1
                controller = os.fork()
                if controller == 0:
                    _controller_child(tmp_path, port, plan)
            time.sleep(rng.uniform(0, 0.04))
            os.kill(rig_pid, signal.SIGKILL)
            os.waitpid(rig_pid, 0)
            stats["kills"] += 1
        # the last rig is still up: read its state
        with SerialDriver(f"socket://127.0.0.1:{port}", load_keys(tmp_path / "rig.keys")) as d:
            restored = d.status().as_dict()
    finally:
        for pid in (controller, locals().get("rig_pid")):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
    with capsys.disabled():
        print(f"\n[rig crash loop] {dict(stats)}, {time.monotonic() - t0:.1f} s")
    assert stats["kills"] >= KILLS or stats["finished_early"]
    ids = [i for i, _ in read_record(tmp_path / "record.csv")]
    assert ids == list(range(1, plan.times.size + 1)), "a stroke id lost, doubled or out of order"
    assert [t for _, t in read_record(tmp_path / "record.csv")] == plan.times.tolist()
    # the same plan, uninterrupted, in process
    ref = (
        Rig(record=tmp_path / "ref" / "record.csv") if (tmp_path / "ref").mkdir() is None else None
    )
    with Journal(tmp_path / "ref" / "j.db") as j:
        assert Controller(SimulatedDriver(ref), j, plan).run().complete
    want = ref.status()
    for d in (restored, want):
        for transient in ("executed", "refused"):
            d.pop(transient, None)
        # a complete run leaves the rig's clock running in real time from the last command's
        # pump time: equal up to the wall time between the two reads
        assert 0 <= d.pop("clock_ms") - max(plan.times[-1], plan.steps[-1].at_ms) < 600_000
    assert restored == want
    assert want["patient_boluses_granted"] == 3 and want["concentration_ug_per_ml"] == 1000
    r = itb_cli(
        "rig", "verify", "--journal", str(tmp_path / "j.db"),
        "--record", str(tmp_path / "record.csv"),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout
