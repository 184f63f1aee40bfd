"""Helpers of the hardware end-to-end tests: an emulator subprocess and a small scenario."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import itb

START = datetime(2026, 1, 5, 8, 0)
KC = bytes(range(32))
KP = bytes(range(32, 64))


def write_keys(path: Path, clinician: bool = True, patient: bool = True) -> Path:
    lines = ([f"clinician {KC.hex()}"] if clinician else []) + (
        [f"patient {KP.hex()}"] if patient else []
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def scenario_pump(ug_per_day: float = 2000.0) -> itb.Pump:
    """500 µg/mL at ``ug_per_day`` plus a 50 µg bolus over 30 min at 08:30."""
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=START,
        reservoir_ml=40.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=ug_per_day),
    )
    pump.bolus(50.0, timedelta(minutes=30), START + timedelta(minutes=30))
    return pump


def scenario_toml(path: Path, hours: float, ug_per_day: float = 2000.0) -> Path:
    """The scenario of :func:`scenario_pump` as a TOML scenario file running ``hours``."""
    until = START + timedelta(hours=hours)
    path.write_text(
        f"""[pump]
model = "SYNCHROMED_II_40"
start = {START.isoformat()}
reservoir_ml = 40.0
concentration_ug_per_ml = 500
program = {{ kind = "continuous", ug_per_day = {ug_per_day!r} }}

[[actions]]
at = {(START + timedelta(minutes=30)).isoformat()}
do = "bolus"
dose_ug = 50.0
duration = "PT30M"

[run]
until = {until.isoformat()}
"""
    )
    return path


def delivered_by_pump(hours: float, ug_per_day: float = 2000.0) -> int:
    """Strokes the scenario delivers, as the Pump says."""
    pump = scenario_pump(ug_per_day)
    pump.advance_to(START + timedelta(hours=hours))
    return pump.strokes


@contextlib.contextmanager
def emulator(
    tmp: Path, mode: str = "tcp", *extra: str, keys: Path | None = None
) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """Run ``itb rig emulate`` (``mode`` "tcp" on 127.0.0.1 or "pty"); yields (port, record, process)."""
    keys = keys or write_keys(tmp / "rig.keys")
    record = tmp / "record.csv"
    where = ["--tcp", "0"] if mode == "tcp" else ["--pty"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "itb",
            "rig",
            "emulate",
            *where,
            "--key-file",
            str(keys),
            "--record",
            str(record),
            "--quiet",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("PORT "), (
            first,
            proc.stderr.read() if proc.poll() is not None else "",
        )
        port = first.split(" ", 1)[1].strip()
        if mode == "tcp":
            assert port.startswith("socket://127.0.0.1:")
        yield port, record, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
