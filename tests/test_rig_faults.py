"""The rig under faults: each example of what went wrong around the protocol, as a test.

State that survives a rig restart; patient boluses refused while stopped or stalled; the rig's
patient bolus at the therapy's concentration and on its pump clock; a journal that cannot be
fooled; pacing on a monotonic clock; scenario actions as rig commands.
(docs: decisions/rig.md#the-rig-keeps-its-state)
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import itb
import numpy as np
import pytest
from itb.errors import RigError, ValidationError
from itb.hardware import Controller, Journal, Rig, SimulatedDriver, read_record, stroke_schedule
from itb.hardware.plan import RigPlan, RigStep, plan_schedule
from itb.hardware.verify import verify

START = datetime(2026, 1, 5, 8, 0)


def four_ml_a_day(hours: float = 2.0) -> tuple[itb.Pump, np.ndarray]:
    """500 µg/mL at 2000 µg/day: 4 mL/day in 2 µL strokes, one every 43.2 s (by hand)."""
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=START,
        reservoir_ml=40.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=2000.0),
    )
    return pump, stroke_schedule(pump, START + timedelta(hours=hours))


def itb_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "itb", *args], capture_output=True, text=True, timeout=60
    )


# ----- 1. a rig restart remembers what it was doing --------------------------------------------


def test_a_restarted_rig_keeps_reservoir_stop_limits_grants_and_clock(tmp_path: Path) -> None:
    record = tmp_path / "record.csv"
    rig = Rig(record=record)
    t0 = rig.clock_ms()
    rig.deliver(1, [t0 + 1000 * k for k in range(1, 41)])  # 40 strokes of 2 µL
    rig.set_patient_limits(25_000, 600_000, 0, 2)  # at most 2 per 24 h, no lockout
    assert [rig.patient_bolus()["granted"] for _ in range(3)] == [True, True, False]
    rig.stop()
    clock = rig.clock_ms()
    rig.close()  # the rig goes down (a kill -9 loses nothing either: every change was written)

    again = Rig(record=record)
    st = again.status()
    # 40 000 000 nL − 40 strokes × 2000 nL − 2 grants × 12 500 nL (25 µg at 2000 µg/mL)
    assert st["reservoir_nl"] == 40_000_000 - 40 * 2000 - 2 * 12_500
    assert st["stopped"] and st["last_stroke_id"] == 40 and again.restored
    assert st["limits"] == {
        "dose_ng": 25_000,
        "duration_ms": 600_000,
        "lockout_ms": 0,
        "max_per_24h": 2,
    }
    assert st["clock_ms"] >= clock  # not back at a fixed start
    with pytest.raises(RigError) as err:  # a stopped rig comes back stopped
        again.deliver(41, [clock + 1000])
    assert err.value.field == "stopped"
    again.resume()
    # the grant history survived: a third press within 24 h is still the daily maximum
    assert again.patient_bolus()["reason"] == "daily_maximum"


def test_strokes_recorded_after_the_last_state_write_are_taken_from_the_record(
    tmp_path: Path,
) -> None:
    record = tmp_path / "record.csv"
    rig = Rig(record=record)
    rig.deliver(1, [rig.clock_ms() + 1] * 5)
    rig.close()
    with open(record, "a", encoding="ascii") as f:  # killed after 3 more lines, before the state
        f.write("6,1767600000100\n7,1767600000200\n8,1767600000300\n9,17676")  # and a torn one
    again = Rig(record=record)
    assert again.status()["last_stroke_id"] == 8
    assert again.status()["reservoir_nl"] == 40_000_000 - 8 * 2000


def test_a_state_file_that_does_not_fit_its_record_is_refused(tmp_path: Path) -> None:
    record = tmp_path / "record.csv"
    rig = Rig(record=record)
    rig.deliver(1, [rig.clock_ms() + 1] * 3)
    rig.close()
    record.write_text("1,1767600000001\n")  # the record of another rig
    with pytest.raises(ValidationError) as err:
        Rig(record=record)
    assert err.value.field == "state"
    (tmp_path / "record.csv.state.json").write_text("{not json")
    with pytest.raises(ValidationError):
        Rig(record=record)


# ----- 2. no patient bolus while stopped or stalled ---------------------------------------------


@pytest.mark.parametrize("state", ["stopped", "stalled"])
def test_a_patient_bolus_is_denied_while_stopped_or_stalled(tmp_path: Path, state: str) -> None:
    rig = Rig()
    drv = SimulatedDriver(rig)
    rig.set_patient_limits(50_000, 600_000, 3_600_000, 4)
    if state == "stopped":
        rig.stop()
    else:
        drv.stall()
    before = rig.reservoir_nl
    with Journal(tmp_path / "j.db") as j:
        c = Controller(drv, j, [])
        result = c.call("PATIENT_BOLUS", drv.patient_bolus, role="patient")
        assert (result["granted"], result["reason"]) == (False, state)
        assert [e.kind for e in j.entries()] == ["intent", "ack"]
    assert rig.reservoir_nl == before and rig.scale.volume_nl_at(1e9) == 0  # nothing moved
    with pytest.raises(RigError):  # like DELIVER
        drv.deliver(1, 1, [rig.clock_ms()])


# ----- 3. the therapy's concentration and the pump clock -----------------------------------------


def test_a_patient_bolus_is_converted_at_the_therapys_concentration() -> None:
    rig = Rig()
    rig.set_therapy(500, rig.clock_ms(), 1000)
    rig.set_patient_limits(50_000, 600_000, 0, 4)
    out = rig.patient_bolus()
    assert out["granted"] and out["volume_nl"] == 100_000  # 50 µg at 500 µg/mL = 100 µL
    assert rig.scale.volume_nl_at(1e9) == 100_000
    rig.refill(20_000_000, 2000)  # a refill at 2000 µg/mL: 50 µg is 25 µL from now on
    rig.set_patient_limits(50_000, 600_000, 0, 4)
    assert rig.patient_bolus()["volume_nl"] == 25_000


def test_lockouts_and_24_h_windows_run_on_the_pump_clock_at_the_runs_speed() -> None:
    mono = [100.0]
    rig = Rig(clock=lambda: mono[0])
    start = int(np.datetime64("2026-03-02T08:00", "ms").astype(np.int64))
    rig.set_therapy(2000, start, 3_600_000)  # 3600× real time: a pump hour per wall second
    assert rig.clock_ms() == start
    rig.set_patient_limits(25_000, 600_000, 3_600_000, 2)  # 60 min lockout, 2 per 24 h
    assert rig.patient_bolus()["granted"]
    mono[0] += 0.5  # half a pump hour
    assert rig.patient_bolus()["reason"] == "lockout"
    mono[0] += 0.625  # 67.5 pump minutes after the grant
    assert rig.patient_bolus()["granted"]
    mono[0] += 2.0
    assert rig.patient_bolus()["reason"] == "daily_maximum"
    mono[0] += 22.0  # the first grant leaves the rolling 24 h window
    assert rig.patient_bolus()["granted"]
    assert rig.clock_ms() == start + 25 * 3_600_000 + 450_000  # 25.125 pump hours


def test_the_controller_tells_the_rig_the_therapy(tmp_path: Path) -> None:
    pump, times = four_ml_a_day(hours=1)
    rig = Rig()
    plan = plan_schedule(times, pump.now_ms, 500)
    with Journal(tmp_path / "j.db") as j:
        Controller(SimulatedDriver(rig), j, plan).run()
        therapy = [e for e in j.entries() if e.command == "THERAPY"]
    # at the start, then at the end: from the last stroke on, the rig's clock runs in real time
    assert [e.kind for e in therapy] == ["intent", "ack"] * 2
    assert "speed_milli=0" in therapy[0].detail and "speed_milli=1000" in therapy[2].detail
    assert rig.concentration_ug_per_ml == 500 and 0 <= rig.clock_ms() - int(times[-1]) < 60_000


# ----- 4. a journal that cannot be fooled ---------------------------------------------------------


def test_a_refused_run_binds_nothing_and_is_refused_again(tmp_path: Path) -> None:
    pump, a = four_ml_a_day(hours=2)
    rig = Rig()
    with Journal(tmp_path / "a.db") as j:
        Controller(SimulatedDriver(rig), j, a).run(max_strokes=100)
    b = a[:50] + 1  # another scenario
    for _ in range(2):  # pressing Enter again changes nothing
        with Journal(tmp_path / "b.db") as j:
            with pytest.raises(RigError) as err:
                Controller(SimulatedDriver(rig), j, b).run()
            assert err.value.field == "rig_not_fresh"
            assert j.get("schedule_sha256") is None and list(j.entries()) == []
    assert rig.last_stroke_id == 100


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "music.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE songs (title TEXT)")
    db.execute("INSERT INTO songs VALUES ('Blue in Green')")
    db.commit()
    db.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValidationError) as err:
        Journal(path)
    assert err.value.field == "journal" and "not an itb journal" in str(err.value)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert not (tmp_path / "music.db-wal").exists()
    (tmp_path / "notes.txt").write_text("not a database at all\n")
    with pytest.raises(ValidationError):
        Journal(tmp_path / "notes.txt")
    r = itb_cli("rig", "journal", str(path))
    assert r.returncode == 2 and "not an itb journal" in r.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_a_journal_corrupted_mid_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _, times = four_ml_a_day(hours=24)
    with Journal(path) as j:
        Controller(SimulatedDriver(Rig()), j, times, batch=1).run(max_strokes=400)
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096
    mid = len(data) // 2
    data[mid : mid + 2000] = os.urandom(2000)
    path.write_bytes(bytes(data))
    with pytest.raises(ValidationError) as err:
        Journal(path)
    assert str(path) in str(err.value)
    r = itb_cli("rig", "journal", str(path))
    assert r.returncode == 2 and str(path) in r.stderr and "internal error" not in r.stderr


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path):
        with pytest.raises(ValidationError) as err:
            Journal(path)
        assert "in use by another controller" in str(err.value) and str(os.getpid()) in str(
            err.value
        )
        with Journal(path, readonly=True) as reader:  # readers need no lock
            assert list(reader.entries()) == []
    with Journal(path):  # released on close
        pass


def test_strokes_with_no_journal_row_are_recorded_as_a_gap_and_verify_says_so(
    tmp_path: Path,
) -> None:
    _, times = four_ml_a_day(hours=2)
    record = tmp_path / "record.csv"
    rig = Rig(record=record)
    with Journal(tmp_path / "j.db") as j:
        Controller(SimulatedDriver(rig), j, times).run(max_strokes=50)
    rig.deliver(51, [int(t) for t in times[50:80]])  # executed; their rows lost with the -wal
    report = verify(tmp_path / "j.db", record, plan_schedule(times, int(times[0])))
    assert not report.ok
    assert report.problems == [
        "journal: stroke id(s) 51 to 80 executed by the rig with no journal row and no gap note"
    ]
    with Journal(tmp_path / "j.db") as j:
        r = Controller(SimulatedDriver(rig), j, times).run()
        assert r.complete and r.gap == 30
        gap = [e for e in j.entries() if e.command == "GAP"]
        assert [(e.first_id, e.count) for e in gap] == [(51, 30)]
    report = verify(tmp_path / "j.db", record, plan_schedule(times, int(times[0])))
    assert report.ok and report.strokes == times.size
    assert report.notes == [
        "journal: strokes 51 to 80 executed with no journal row (recorded as a gap)"
    ]


def test_verify_names_doubled_missing_and_mistimed_strokes(tmp_path: Path) -> None:
    _, times = four_ml_a_day(hours=1)
    record = tmp_path / "record.csv"
    rig = Rig(record=record)
    with Journal(tmp_path / "j.db") as j:
        Controller(SimulatedDriver(rig), j, times).run()
    rig.close()
    plan = plan_schedule(times, int(times[0]))
    assert verify(tmp_path / "j.db", record, plan).ok
    rows = record.read_text().splitlines()
    bad = rows[:10] + [rows[9]] + rows[11:20] + [rows[20].split(",")[0] + ",1"] + rows[21:]
    record.write_text("\n".join(bad) + "\n")  # 10 twice, 11 missing, 21 at the wrong time
    report = verify(tmp_path / "j.db", record, plan)
    assert report.problems[:2] == [
        "record: stroke id(s) 10 executed more than once",
        "record: stroke id(s) 11 missing",
    ]
    assert any("schedule: stroke" in p for p in report.problems)
    with sqlite3.connect(tmp_path / "j.db") as db:  # a second controller's duplicate acks
        db.execute(
            "INSERT INTO entries(wall_time, kind, role, command, first_id, count, result) "
            "VALUES (0, 'ack', 'clinician', 'DELIVER', 5, 3, 'executed')"
        )
    report = verify(tmp_path / "j.db", record, None)
    assert "journal: stroke id(s) 5 to 7 acknowledged more than once" in report.problems


# ----- 5. pacing by a monotonic clock -------------------------------------------------------------


class Clocks:
    """A monotonic clock that ``sleep`` advances and a wall clock that may step."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.step_at: float | None = None
        self.step_s = 0.0
        self.offset = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        step = self.step_s if self.step_at is not None and self.mono >= self.step_at else 0.0
        return self.offset + self.mono + step

    def sleep(self, s: float) -> None:
        self.mono += s


class Spy(SimulatedDriver):
    def __init__(self, rig: Rig, clocks: Clocks) -> None:
        super().__init__(rig)
        self.clocks = clocks
        self.sent: list[tuple[float, int]] = []  # (monotonic s, stroke id)

    def deliver(self, stroke_id, count, times_ms=None):
        self.sent += [(self.clocks.mono, stroke_id + k) for k in range(count)]
        return super().deliver(stroke_id, count, times_ms)


def _paced(tmp_path: Path, clocks: Clocks, **kwargs) -> tuple[Spy, np.ndarray]:
    pump, times = four_ml_a_day(hours=1)
    drv = Spy(Rig(), clocks)
    with Journal(tmp_path / "j.db", wall=clocks.wall) as j:
        Controller.from_pump(
            drv,
            j,
            pump,
            START + timedelta(hours=1),
            speed=1.0,
            wall=clocks.wall,
            clock=clocks.monotonic,
            sleep=clocks.sleep,
            boot=lambda: "boot-1",
            **kwargs,
        ).run()
    return drv, times


@pytest.mark.parametrize("step_s", [20 * 60.0, -20 * 60.0])
def test_a_wall_clock_step_during_a_run_neither_bursts_nor_stalls(
    tmp_path: Path, step_s: float
) -> None:
    clocks = Clocks()
    clocks.step_at, clocks.step_s = 600.0, step_s
    drv, times = _paced(tmp_path, clocks)
    sent = [t for t, _ in drv.sent]
    assert len(sent) == times.size == 83  # 3600 s / 43.2 s
    window = [sum(1 for t in sent if a <= t < a + 10) for a in np.arange(0, 3600, 0.5)]
    assert max(window) <= 1  # at most 1 stroke in any 10 s
    assert sum(1 for t in sent if t <= 900) == 20  # 20 strokes by 900 s (20 × 43.2 = 864)
    assert 604.8 <= sent[13] < 604.8 + 0.5  # stroke 14 at 14 × 43.2 s


def test_a_wall_step_while_the_controller_was_down_neither_bursts_nor_stalls(
    tmp_path: Path,
) -> None:
    pump, times = four_ml_a_day(hours=1)
    for step in (3600.0, -10.0):
        clocks = Clocks()
        rig = Rig()
        drv = Spy(rig, clocks)
        common = dict(speed=1.0, wall=clocks.wall, clock=clocks.monotonic, sleep=clocks.sleep)
        path = tmp_path / f"j{step}.db"
        with Journal(path, wall=clocks.wall) as j:
            Controller(drv, j, times, start_ms=pump.now_ms, boot=lambda: "b1", **common).run(
                max_strokes=6
            )  # stroke 6 at 259.2 s
        clocks.mono += 40.0  # down 40 s on the same boot ...
        clocks.offset += step  # ... while the wall clock stepped
        with Journal(path, wall=clocks.wall) as j:
            Controller(drv, j, times, start_ms=pump.now_ms, boot=lambda: "b1", **common).run()
        sent = dict((sid, t) for t, sid in drv.sent)
        assert sent[7] == pytest.approx(7 * 43.2, abs=0.5)  # due at 302.4 s: on time
        assert sent[8] == pytest.approx(8 * 43.2, abs=0.5)
        assert len(sent) == times.size


def test_strokes_due_during_real_downtime_are_caught_up_at_the_maximum_rate(
    tmp_path: Path,
) -> None:
    pump, times = four_ml_a_day(hours=1)
    clocks = Clocks()
    drv = Spy(Rig(), clocks)
    common = dict(
        speed=1.0,
        wall=clocks.wall,
        clock=clocks.monotonic,
        sleep=clocks.sleep,
        boot=lambda: "b1",
    )
    with Journal(tmp_path / "j.db", wall=clocks.wall) as j:
        Controller.from_pump(drv, j, pump, START + timedelta(hours=1), **common).run(max_strokes=6)
    clocks.mono += 600.0  # down 10 minutes: strokes 7..20 fell due
    with Journal(tmp_path / "j.db", wall=clocks.wall) as j:
        Controller.from_pump(drv, j, pump, START + timedelta(hours=1), **common).run()
    sent = [t for t, sid in drv.sent if sid >= 7]
    gaps = np.diff(sent)
    # SynchroMed II: 24 mL/day maximum, 2 µL strokes: at most one per 7.2 s
    assert gaps.min() >= 7.2 - 1e-9
    assert len(drv.sent) == times.size


def test_after_a_reboot_the_downtime_is_measured_on_the_wall_clock(tmp_path: Path) -> None:
    pump, times = four_ml_a_day(hours=1)
    clocks = Clocks()
    drv = Spy(Rig(), clocks)
    common = dict(speed=1.0, wall=clocks.wall, sleep=clocks.sleep, start_ms=pump.now_ms)
    with Journal(tmp_path / "j.db", wall=clocks.wall) as j:
        Controller(drv, j, times, clock=clocks.monotonic, boot=lambda: "b1", **common).run(
            max_strokes=6
        )
    clocks.offset += 40.0  # rebooted after 40 s: the monotonic clock starts again near 0
    rebooted = Clocks()
    rebooted.offset = clocks.wall() - 5.0
    rebooted.mono = 5.0
    with Journal(tmp_path / "j.db", wall=rebooted.wall) as j:
        drv.clocks = rebooted
        Controller(
            drv,
            j,
            times,
            clock=rebooted.monotonic,
            boot=lambda: "b2",
            **{**common, "wall": rebooted.wall, "sleep": rebooted.sleep},
        ).run(max_strokes=2)
        assert [e.command for e in j.entries() if e.kind == "note"][-2:] == ["BOOT", "RESUME_RUN"]
    # stroke 7 was due at 302.4 s of the first boot's schedule: 302.4 − 299.2 = 3.2 s after the
    # wall time at which the rebooted controller started
    first = [t for t, sid in drv.sent if sid == 7][0]
    assert first == pytest.approx(5.0 + 302.4 - (259.2 + 40.0), abs=0.5)


# ----- 6. scenario actions are rig commands -------------------------------------------------------


def test_stop_and_resume_steps_and_a_refill_reach_the_rig(tmp_path: Path) -> None:
    _, times = four_ml_a_day(hours=1)
    steps = (
        RigStep(1, 10, int(times[9]), "suspend", "STOP"),
        RigStep(2, 10, int(times[9]) + 1, "resume", "RESUME"),
        RigStep(
            3,
            20,
            int(times[19]),
            "refill",
            "REFILL",
            {"added_nl": 20_000_000, "concentration_ug_per_ml": 500},
        ),
    )
    plan = RigPlan(times, int(times[0]) - 43_200, 500, steps)
    rig = Rig()
    drv = SimulatedDriver(rig)
    with Journal(tmp_path / "j.db") as j:
        report = Controller(drv, j, plan, batch=64).run()
        kinds = [
            (e.kind, e.command) for e in j.entries() if e.command in ("STOP", "RESUME", "REFILL")
        ]
    assert report.complete and report.steps == 3
    assert kinds == [(k, c) for c in ("STOP", "RESUME", "REFILL") for k in ("intent", "ack")]
    order = [name for name, _ in drv.calls if name in ("deliver", "stop", "resume", "refill")]
    # batches stop at each step's place: 10 strokes, STOP, RESUME, 10 strokes, REFILL, the rest
    assert order[:6] == ["deliver", "stop", "resume", "deliver", "refill", "deliver"]
    assert rig.reservoir_nl == 20_000_000 - (times.size - 20) * 2000


def test_a_press_the_rig_judges_otherwise_than_the_scenario_stops_the_run(tmp_path: Path) -> None:
    _, times = four_ml_a_day(hours=1)
    steps = (RigStep(1, 5, int(times[4]), "patient_bolus", "PATIENT_BOLUS", {}, {"granted": True}),)
    plan = RigPlan(times, int(times[0]) - 43_200, 500, steps)
    rig = Rig()  # no limits set on the rig: it denies (not_enabled)
    with Journal(tmp_path / "j.db") as j:
        with pytest.raises(RigError) as err:
            Controller(SimulatedDriver(rig), j, plan).run()
        assert err.value.field == "patient_bolus_mismatch"
        assert [e.result for e in j.entries() if e.command == "PATIENT_BOLUS"][-1] == (
            "patient_bolus_mismatch"
        )
    assert rig.last_stroke_id == 5


def test_a_repeated_scheduled_press_gets_its_first_answer(tmp_path: Path) -> None:
    rig = Rig(record=tmp_path / "r.csv")
    rig.set_patient_limits(25_000, 600_000, 3_600_000, 4)
    t = rig.clock_ms() + 1000
    first = rig.patient_bolus((7, t))
    assert first["granted"]
    rig.close()
    again = Rig(record=tmp_path / "r.csv")  # restarted before the controller saw the answer
    repeat = again.patient_bolus((7, t))
    assert repeat["granted"] and repeat["duplicate"]
    assert again.status()["patient_boluses_granted"] == 1
    assert read_record(tmp_path / "r.csv") == []
