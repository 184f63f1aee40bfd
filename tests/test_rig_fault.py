"""Faults injected into the emulated rig at run time (``itb rig fault``): the scale weighs what
physically left the catheter, the rig's ledgers say where it went, the firmware's strokes are
what the controller was acknowledged. Values by hand (docs: guide/faults.md#the-emulated-rig).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from _rig import emulator, write_keys
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.errors import ProtocolError, RigError
from itb.hardware import Rig
from itb.hardware.protocol import Role, load_keys
from itb.hardware.rig import RIG_FAULTS
from itb.hardware.serial_driver import SerialDriver

T0 = 1_767_600_000_000  # 2026-01-05T08:00Z in ms
STEP = 43_200  # 4 mL/day in 2 µL strokes: one every 43.2 s


def times(n: int, start: int = 0) -> list[int]:
    return [T0 + (start + i) * STEP for i in range(n)]


class Clock:
    """A monotonic clock the test moves (s)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def later(rig: Rig) -> dict:
    """A scale sample one second later (after the strokes)."""
    assert isinstance(rig.clock, Clock)
    rig.clock.t += 1.0
    return rig.measure()


def ledger(rig: Rig) -> dict[str, int]:
    s = rig.status()
    return {k: s[k] for k in ("tip_nl", "elsewhere_nl", "held_back_nl", "not_pumped_nl")}


def conserved(rig: Rig, start_nl: int, strokes: int) -> None:
    s = rig.status()
    assert start_nl == s["reservoir_nl"] + s["tip_nl"] + s["elsewhere_nl"]
    assert strokes * rig.stroke_nl == (
        s["tip_nl"] + s["elsewhere_nl"] + s["held_back_nl"] + s["not_pumped_nl"]
    )
    assert rig.scale.volume_nl_at(1e18) == s["tip_nl"] + s["elsewhere_nl"]


def test_the_cli_knows_the_rig_faults() -> None:
    from itb.cli.rig import RIG_FAULTS as CLI

    assert CLI == RIG_FAULTS


def test_complete_occlusion_counts_strokes_moves_nothing() -> None:
    rig = Rig(clock=Clock())
    start = rig.reservoir_nl
    rig.fault({"fault": "occlusion", "pass_pct": 0})
    assert rig.deliver(1, times(10))["executed"] == 10  # the firmware counts 10 strokes
    assert rig.reservoir_nl == start  # 40 mL still there
    assert ledger(rig) == {
        "tip_nl": 0,
        "elsewhere_nl": 0,
        "held_back_nl": 20_000,
        "not_pumped_nl": 0,
    }
    m = later(rig)
    assert (m["expected_nl"], m["moved_nl"], m["mass_mg"]) == (20_000, 0, 0.0)
    conserved(rig, start, 10)


def test_partial_occlusion_passes_an_exact_fraction_with_its_remainder_carried() -> None:
    rig = Rig()
    rig.fault({"fault": "occlusion", "pass_pct": 33})
    rig.deliver(1, times(3))
    # floor(6000 · 33 / 100) = 1980 nL passed of 6000 commanded, 4020 held back
    assert ledger(rig)["tip_nl"] == 1980 and ledger(rig)["held_back_nl"] == 4020
    rig.fault({"fault": "clear", "which": "occlusion"})
    rig.deliver(4, times(1, 3))
    assert ledger(rig)["tip_nl"] == 3980  # cleared: the next stroke moves all 2000 nL, no bolus


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 99), st.lists(st.integers(1, 12), min_size=1, max_size=8))
def test_occlusion_in_batches_or_at_once_moves_the_same(pass_pct: int, batches: list[int]) -> None:
    a, b = Rig(), Rig()
    for r in (a, b):
        r.fault({"fault": "occlusion", "pass_pct": pass_pct})
    n = sum(batches)
    first = 1
    for k in batches:
        a.deliver(first, times(k, first - 1))
        first += k
    b.deliver(1, times(n))
    assert ledger(a) == ledger(b)
    assert ledger(a)["tip_nl"] == n * 2000 * pass_pct // 100
    conserved(a, 40_000_000, n)


def test_leak_and_disconnection_send_everything_elsewhere_the_scale_weighs_it() -> None:
    rig = Rig(clock=Clock())
    rig.fault({"fault": "leak", "position_ul": 50.0})
    rig.deliver(1, times(5))
    assert ledger(rig)["elsewhere_nl"] == 10_000 and ledger(rig)["tip_nl"] == 0
    assert rig.status()["faults"] == {"leak": {"position_ul": 50.0, "kind": "leak"}}
    assert rig.reservoir_nl == 40_000_000 - 10_000  # the reservoir empties as expected
    m = later(rig)
    assert m["moved_nl"] == m["expected_nl"] == 10_000
    rig.fault({"fault": "clear", "which": "leak"})
    rig.fault({"fault": "disconnection"})  # at the connector by default
    assert rig.status()["faults"]["leak"] == {"position_ul": 0.0, "kind": "disconnection"}
    rig.deliver(6, times(2, 5))
    assert ledger(rig)["elsewhere_nl"] == 14_000
    rig.fault({"fault": "clear"})
    rig.deliver(8, times(1, 7))
    assert ledger(rig)["tip_nl"] == 2_000
    conserved(rig, 40_000_000, 8)


def test_tip_migration_delivers_elsewhere() -> None:
    rig = Rig()
    rig.fault({"fault": "migration"})
    rig.deliver(1, times(3))
    assert ledger(rig)["elsewhere_nl"] == 6_000 and ledger(rig)["tip_nl"] == 0


def test_battery_fault_runs_the_minimum_rate_and_alarms() -> None:
    # SynchroMed II: 0.048 mL/day = 48 000 nL/day -> one 2 µL stroke per 2000·86 400 000/48 000
    # = 3 600 000 ms (1 h). Strokes every 43.2 s for 2 h (167 of them, i = 0..166): the motor
    # makes i = 0 and i = 84 (3 628 800 ms ≥ 1 h after); the next would be i = 168.
    rig = Rig(clock=Clock())
    rig.fault({"fault": "battery"})
    assert rig.status()["alarms"] == ["battery_fault"]
    rig.deliver(1, times(167))
    assert ledger(rig)["tip_nl"] == 4_000
    assert ledger(rig)["not_pumped_nl"] == 165 * 2_000
    m = later(rig)
    assert (m["expected_nl"], m["moved_nl"]) == (167 * 2_000, 4_000)
    conserved(rig, 40_000_000, 167)
    rig.fault({"fault": "clear", "which": "battery"})
    assert rig.status()["alarms"] == []


def test_stall_refuses_strokes_until_cleared() -> None:
    rig = Rig()
    rig.fault({"fault": "stall"})
    with pytest.raises(RigError) as err:
        rig.deliver(1, times(1))
    assert err.value.field == "motor_stall"
    rig.fault({"fault": "clear", "which": "stall"})
    assert rig.deliver(1, times(1))["executed"] == 1


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"fault": "kink"}, "fault"),
        ({"fault": "occlusion", "pass_pct": 100}, "pass_pct"),
        ({"fault": "occlusion", "pass_pct": -1}, "pass_pct"),
        ({"fault": "occlusion", "pass_pct": 5.5}, "pass_pct"),
        ({"fault": "leak", "position_ul": -1}, "position_ul"),
        ({"fault": "leak", "position_ul": 10_001}, "position_ul"),
        ({"fault": "clear", "which": "pocket"}, "which"),
    ],
)
def test_bad_faults_are_refused_naming_the_field(spec: dict, field: str) -> None:
    rig = Rig()
    with pytest.raises(RigError) as err:
        rig.fault(spec)
    assert err.value.field == field
    assert rig.status()["faults"] == {}


def test_faults_and_ledgers_survive_a_restart(tmp_path: Path) -> None:
    rig = Rig(record=tmp_path / "r.csv")
    rig.fault({"fault": "occlusion", "pass_pct": 33})
    rig.deliver(1, times(1))
    rig.close()
    back = Rig(record=tmp_path / "r.csv")
    assert back.status()["faults"] == {"occlusion": {"pass_pct": 33}}
    back.deliver(2, times(2, 1))
    assert ledger(back)["tip_nl"] == 6000 * 33 // 100  # the carried remainder survived
    back.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "itb", "rig", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("mode", ["tcp", "pty"])
def test_itb_rig_fault_over_the_protocol(tmp_path: Path, mode: str) -> None:
    keys = write_keys(tmp_path / "rig.keys")
    with emulator(tmp_path, mode, keys=keys) as (port, _record, _proc):
        link = ["--port", port, "--key-file", str(keys)]
        out = _cli(
            "fault", "occlusion", "--pass-pct", "25", *link, "--journal", str(tmp_path / "j.db")
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "faults: occlusion"
        with SerialDriver(
            port, load_keys(keys), role=Role.CLINICIAN, timeout=timedelta(seconds=5)
        ) as d:
            d.deliver(1, 4, times(4))
            time.sleep(0.6)  # one scale sample interval
            m = d.measure()
        # 4 strokes = 8000 nL commanded; 25 % passes: 2000 nL = 2 mg of a 1 g/mL fluid
        assert (m["expected_nl"], m["moved_nl"]) == (8_000, 2_000)
        assert m["mass_mg"] == pytest.approx(2.0)
        out = _cli("status", *link, "--json")
        st_ = json.loads(out.stdout)
        assert (st_["held_back_nl"], st_["tip_nl"]) == (6_000, 2_000)
        out = _cli("fault", "clear", *link, "--json")
        assert json.loads(out.stdout)["faults"] == {}
        # the patient's key may not inject faults
        pkeys = write_keys(tmp_path / "patient.keys", clinician=False)
        out = _cli("fault", "stall", "--port", port, "--key-file", str(pkeys))
        assert out.returncode != 0


def test_the_patient_role_may_not_fault(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "rig.keys")
    with emulator(tmp_path, "tcp", keys=keys) as (port, _record, _proc):
        with SerialDriver(
            port, load_keys(keys), role=Role.PATIENT, timeout=timedelta(seconds=5)
        ) as d:
            with pytest.raises((ProtocolError, RigError)) as err:
                d.fault({"fault": "stall"})
            assert err.value.field == "role"


_KILLED_CHILD = """
import json, os, signal, sys
import itb.hardware.rig as R

record, spec, kill_at, t0, step = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
times = lambda n, start=0: [t0 + (start + i) * step for i in range(n)]
rig = R.Rig(record=record)
rig.deliver(1, times(3))
rig.fault(spec)
rig.deliver(4, times(57, 3))  # saved: strokes 1..60
made = R.Rig._stroke
def stroke(self, stroke_id, time_ms):
    made(self, stroke_id, time_ms)
    if stroke_id == kill_at:  # recorded, its physics done, the batch's state never saved
        os.kill(os.getpid(), signal.SIGKILL)
R.Rig._stroke = stroke
rig.deliver(61, times(200, 60))
"""


@pytest.mark.parametrize(
    "spec",
    [
        {"fault": "occlusion", "pass_pct": 33},
        {"fault": "leak", "position_ul": 50.0},
        {"fault": "disconnection"},
        {"fault": "migration"},
        {"fault": "battery"},
    ],
    ids=lambda s: s["fault"],
)
def test_killed_mid_batch_with_a_fault_in_force_restores_the_uninterrupted_ledgers(
    tmp_path: Path, spec: dict
) -> None:
    """SIGKILL after stroke 173 of a batch begun at 61 (the state last saved at stroke 60): the
    113 strokes after the save are taken from the record and replayed with the fault in force;
    the restored rig equals an uninterrupted run exactly (nL), and so does the rest of the run
    (the occlusion's carried remainder, the battery fault's pacing)."""
    kill_at = 173
    record = tmp_path / "killed.csv"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_CHILD,
            str(record),
            json.dumps(spec),
            str(kill_at),
            str(T0),
            str(STEP),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr
    whole = Rig(record=tmp_path / "whole.csv")
    whole.deliver(1, times(3))
    whole.fault(spec)
    whole.deliver(4, times(kill_at - 3, 3))
    back = Rig(record=record)
    assert back.restored and back.status()["last_stroke_id"] == kill_at
    assert back.status()["faults"] == whole.status()["faults"]
    assert (ledger(back), back.reservoir_nl) == (ledger(whole), whole.reservoir_nl)
    n = kill_at - 3  # strokes under the fault, by hand
    if spec["fault"] == "occlusion":  # 6 000 nL before it, then ⌊n · 2000 · 33 / 100⌋
        assert ledger(back)["tip_nl"] == 6_000 + n * 2_000 * 33 // 100 == 118_200
    elif spec["fault"] == "battery":  # one stroke an hour: i = 3, 87, 171 of 43.2 s spacing
        assert ledger(back)["tip_nl"] == 6_000 + 3 * 2_000
        assert ledger(back)["not_pumped_nl"] == (n - 3) * 2_000
    else:  # everything from stroke 4 on left the catheter elsewhere
        assert ledger(back)["elsewhere_nl"] == n * 2_000 and ledger(back)["tip_nl"] == 6_000
    for r in (back, whole):  # the rest of the run, one batch
        r.deliver(kill_at + 1, times(100, kill_at))
    assert (ledger(back), back.reservoir_nl) == (ledger(whole), whole.reservoir_nl)
    conserved(whole, 40_000_000, kill_at + 100)
    assert back.reservoir_nl + ledger(back)["tip_nl"] + ledger(back)["elsewhere_nl"] == 40_000_000
