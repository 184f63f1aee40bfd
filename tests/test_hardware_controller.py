"""Controller + journal against the in-process SimulatedDriver: faults, reconciliation, real time."""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import numpy as np
import pytest
from itb.errors import ProtocolError, RigError, ValidationError
from itb.hardware import (
    Controller,
    Journal,
    PumpDriver,
    Rig,
    SimulatedDriver,
    read_record,
    stroke_schedule,
)
from itb.hardware.controller import schedule_fingerprint

START = datetime(2026, 1, 5, 8, 0)


def scenario(hours: float = 2.0) -> tuple[itb.Pump, datetime]:
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=START,
        reservoir_ml=40.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=2000.0),
    )
    pump.bolus(50.0, timedelta(minutes=30), START + timedelta(minutes=30))
    return pump, START + timedelta(hours=hours)


@pytest.fixture
def sched() -> np.ndarray:
    pump, until = scenario()
    return stroke_schedule(pump, until)


class FakeTime:
    """An injectable wall clock: ``sleep`` advances it."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t
        self.slept = 0.0

    def wall(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s
        self.slept += s


def ids(path) -> list[int]:
    return [i for i, _ in read_record(path)]


def test_schedule_comes_from_the_core_and_matches_the_pump(sched: np.ndarray) -> None:
    pump, until = scenario()
    before = pump.strokes
    assert pump.strokes == before  # stroke_schedule ran on a copy
    pump.advance_to(until)
    assert sched.size == pump.strokes - before and sched.dtype == np.int64
    assert isinstance(SimulatedDriver(), PumpDriver)


def test_run_delivers_every_stroke_once(tmp_path, sched: np.ndarray) -> None:
    rig = Rig(record=tmp_path / "rec.csv")
    with Journal(tmp_path / "j.db") as j:
        report = Controller(SimulatedDriver(rig), j, sched, batch=7).run()
        assert report.complete and report.delivered == sched.size and report.resumed_from == 0
        assert j.open_intents() == []
        assert j.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = read_record(tmp_path / "rec.csv")
    assert [i for i, _ in rows] == list(range(1, sched.size + 1))
    assert [t for _, t in rows] == sched.tolist()


def test_from_pump(tmp_path) -> None:
    pump, until = scenario(1.0)
    rig = Rig()
    with Journal(tmp_path / "j.db") as j:
        c = Controller.from_pump(SimulatedDriver(rig), j, pump, until, batch=64)
        assert c.start_ms == pump.now_ms and pump.strokes == 0
        assert c.run().complete
    pump.advance_to(until)
    assert rig.last_stroke_id == pump.strokes


def test_dropped_acks_delays_and_resets_lose_and_double_nothing(
    tmp_path, sched: np.ndarray
) -> None:
    rig = Rig(record=tmp_path / "rec.csv")
    ft = FakeTime()
    drv = SimulatedDriver(rig, delay=timedelta(milliseconds=10), sleep=ft.sleep)
    drv.drop_acks(3)
    with Journal(tmp_path / "j.db", wall=ft.wall) as j:
        c = Controller(drv, j, sched, batch=5, wall=ft.wall, clock=ft.wall, sleep=ft.sleep)
        c.run(max_strokes=40)
        drv.reset()
        report = c.run()
        assert report.complete and report.retries >= 4
        reconciled = [e for e in j.entries() if e.kind == "reconciled"]
        assert len(reconciled) == 3 and all(e.result == "executed" for e in reconciled)
    assert ids(tmp_path / "rec.csv") == list(range(1, sched.size + 1))
    assert ft.slept >= 0.01 * len(drv.calls)


def test_stall_is_refused_and_journaled_then_resumes(tmp_path, sched: np.ndarray) -> None:
    rig = Rig(record=tmp_path / "rec.csv")
    drv = SimulatedDriver(rig)
    with Journal(tmp_path / "j.db") as j:
        c = Controller(drv, j, sched, batch=4)
        c.run(max_strokes=8)
        drv.stall()
        with pytest.raises(RigError) as e:
            c.run()
        assert e.value.field == "motor_stall"
        refused = [x for x in j.entries() if x.kind == "refused"]
        assert len(refused) == 1 and refused[0].result == "motor_stall" and refused[0].first_id == 9
        drv.clear_stall()
        assert c.run().complete
    assert ids(tmp_path / "rec.csv") == list(range(1, sched.size + 1))


def test_restart_reconciles_intents_left_open(tmp_path, sched: np.ndarray) -> None:
    """A controller killed between intent and ack (either side of the rig executing)."""
    rig = Rig(record=tmp_path / "rec.csv")
    path = tmp_path / "j.db"
    with Journal(path) as j:
        Controller(SimulatedDriver(rig), j, sched, batch=4).run(max_strokes=8)
        # crash 1: intent written, the rig executed, no ack written
        j.intent("clinician", "DELIVER", first_id=9, count=4)
        rig.deliver(9, sched[8:12].tolist())
        # crash 2 would be "intent written, never sent": simulated on a second journal below
    with Journal(path) as j:
        report = Controller(SimulatedDriver(rig), j, sched, batch=4).run()
        assert report.resumed_from == 12 and report.reconciled == 1
        rec = [e for e in j.entries() if e.kind == "reconciled"]
        assert rec[0].result == "executed" and rec[0].first_id == 9
        assert any(e.kind == "note" and e.command == "RESUME_RUN" for e in j.entries())
    assert ids(tmp_path / "rec.csv") == list(range(1, sched.size + 1))

    rig2 = Rig(record=tmp_path / "rec2.csv")
    with Journal(tmp_path / "j2.db") as j:
        Controller(SimulatedDriver(rig2), j, sched, batch=4).run(max_strokes=4)
        j.intent("clinician", "DELIVER", first_id=5, count=4)  # never sent
        report = Controller(SimulatedDriver(rig2), j, sched, batch=4).run()
        assert [e.result for e in j.entries() if e.kind == "reconciled"] == ["not_executed"]
        assert report.resumed_from == 4
    assert ids(tmp_path / "rec2.csv") == list(range(1, sched.size + 1))


def test_journal_refuses_another_schedule_and_a_rig_that_lost_state(
    tmp_path, sched: np.ndarray
) -> None:
    rig = Rig()
    with Journal(tmp_path / "j.db") as j:
        Controller(SimulatedDriver(rig), j, sched).run(max_strokes=20)
        with pytest.raises(ValidationError) as e:
            Controller(SimulatedDriver(rig), j, sched[:-1]).run()
        assert e.value.field == "journal"
        with pytest.raises(RigError) as e2:
            Controller(SimulatedDriver(Rig()), j, sched).run()  # a fresh rig: its record was lost
        assert e2.value.field == "rig_behind"
        assert j.get("schedule_sha256") == schedule_fingerprint(sched)
    with Journal(tmp_path / "other.db") as j:
        with pytest.raises(RigError) as e3:
            Controller(SimulatedDriver(rig), j, sched).run()  # a new journal on a used rig
        assert e3.value.field == "rig_not_fresh"
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValidationError):
        Journal(tmp_path / "junk.db")


def test_real_time_follows_the_schedule(tmp_path, sched: np.ndarray) -> None:
    ft = FakeTime()
    sent_at = []
    rig = Rig()

    class Spy(SimulatedDriver):
        def deliver(self, stroke_id, count, times_ms=None):
            sent_at.append((ft.t, stroke_id, count))
            return super().deliver(stroke_id, count, times_ms)

    speed = 60.0  # one pump minute per wall second
    with Journal(tmp_path / "j.db", wall=ft.wall) as j:
        c = Controller(
            Spy(rig),
            j,
            sched,
            speed=speed,
            start_ms=int(sched[0]),
            wall=ft.wall,
            clock=ft.wall,
            sleep=ft.sleep,
        )
        t0 = ft.t
        assert c.run().complete
    for t, sid, count in sent_at:
        due = t0 + (int(sched[sid - 1]) - int(sched[0])) / 1000 / speed
        last_due = t0 + (int(sched[sid + count - 2]) - int(sched[0])) / 1000 / speed
        assert due <= t + 1e-6 and last_due <= t + 1e-6  # never early
        assert t - due < 0.6  # and on time (sleeps are at most 0.5 s)
    assert ft.t - t0 == pytest.approx((int(sched[-1]) - int(sched[0])) / 1000 / speed, abs=0.6)


def test_controller_arguments_are_validated(tmp_path, sched: np.ndarray) -> None:
    with Journal(tmp_path / "j.db") as j:
        for kwargs in ({"speed": 0}, {"batch": 0}, {"batch": 65}):
            with pytest.raises(ValidationError):
                Controller(SimulatedDriver(), j, sched, **kwargs)
        with pytest.raises(ValidationError) as e:
            Controller(SimulatedDriver(), j, [3, 2, 1])
        assert e.value.field == "schedule"
        assert (
            Controller(SimulatedDriver(), j, lambda: iter(sched.tolist())).times.size == sched.size
        )


def test_lost_answers_with_progress_continue_but_a_dead_link_gives_up(
    tmp_path, sched: np.ndarray
) -> None:
    ft = FakeTime()
    drv = SimulatedDriver(Rig())
    drv.drop_acks(10**6)  # every answer lost, every stroke executed: progress via status
    with Journal(tmp_path / "a.db") as j:
        assert Controller(drv, j, sched, retries=2, clock=ft.wall, sleep=ft.sleep).run().complete

    class Dead(SimulatedDriver):
        def deliver(self, stroke_id, count, times_ms=None):
            raise ProtocolError("timeout: no answer", "timeout")

    with Journal(tmp_path / "b.db") as j:
        with pytest.raises(ProtocolError):
            Controller(Dead(Rig()), j, sched, retries=2, clock=ft.wall, sleep=ft.sleep).run()
        assert [e.result for e in j.entries() if e.kind == "reconciled"] == ["not_executed"] * 2
        open_ = j.open_intents()
        assert len(open_) == 1 and open_[0].first_id == 1  # left for the next run to reconcile


def test_patient_requests_are_journaled_and_limits_enforced_by_the_rig(tmp_path) -> None:
    clock = [0.0]
    rig = Rig(clock=lambda: clock[0])
    drv = SimulatedDriver(rig)
    with Journal(tmp_path / "j.db") as j:
        c = Controller(drv, j, [], role="clinician")
        assert not c.call("PATIENT_BOLUS", drv.patient_bolus, role="patient")[
            "granted"
        ]  # not enabled
        rig.set_patient_limits(50_000, 600_000, 3_600_000, 2)
        assert c.call("PATIENT_BOLUS", drv.patient_bolus, role="patient")["granted"]
        assert c.call("PATIENT_BOLUS", drv.patient_bolus, role="patient")["reason"] == "lockout"
        clock[0] += 3601
        assert c.call("PATIENT_BOLUS", drv.patient_bolus, role="patient")["granted"]
        clock[0] += 3601
        assert (
            c.call("PATIENT_BOLUS", drv.patient_bolus, role="patient")["reason"] == "daily_maximum"
        )
        drv.stall()
        with pytest.raises(RigError):
            c.call("DELIVER", lambda: drv.deliver(1, 1, [0]))
        rows = list(j.entries())
        assert [r.role for r in rows if r.kind == "intent"][:5] == ["patient"] * 5
        assert rows[-1].kind == "refused" and rows[-1].result == "motor_stall"
        csv_text = j.to_csv()
    assert (
        csv_text.splitlines()[0]
        == "id,wall_time_utc,kind,role,command,first_id,count,ref,result,detail"
    )
    assert rig.scale.volume_nl_at(1e9) > 0  # granted boluses reached the scale


def test_resuming_at_another_speed_re_anchors(tmp_path, sched: np.ndarray) -> None:
    ft = FakeTime()
    rig = Rig(record=tmp_path / "rec.csv")
    with Journal(tmp_path / "j.db", wall=ft.wall) as j:
        Controller(
            SimulatedDriver(rig), j, sched, speed=60.0, wall=ft.wall, clock=ft.wall, sleep=ft.sleep
        ).run(max_strokes=10)
        Controller(SimulatedDriver(rig), j, sched, wall=ft.wall, clock=ft.wall, sleep=ft.sleep).run(
            max_strokes=10
        )  # max
        ft.t += 3600  # down for an hour, then real time x120: the next stroke is due at once
        before = ft.t
        Controller(
            SimulatedDriver(rig), j, sched, speed=120.0, wall=ft.wall, clock=ft.wall, sleep=ft.sleep
        ).run(max_strokes=1)
        assert ft.t == before
        report = Controller(
            SimulatedDriver(rig), j, sched, speed=120.0, wall=ft.wall, clock=ft.wall, sleep=ft.sleep
        ).run()
        assert report.complete
        notes = [
            (e.command, e.result) for e in j.entries() if e.kind == "note" and e.command == "SPEED"
        ]
        assert notes == [("SPEED", "max"), ("SPEED", "120.0")]
    assert ids(tmp_path / "rec.csv") == list(range(1, sched.size + 1))


def test_stop_refuses_deliveries_until_resume(tmp_path, sched: np.ndarray) -> None:
    drv = SimulatedDriver(Rig())
    with Journal(tmp_path / "j.db") as j:
        c = Controller(drv, j, sched)
        drv.stop()
        with pytest.raises(RigError) as e:
            c.run()
        assert e.value.field == "stopped" and drv.rig.last_stroke_id == 0
        drv.resume()
        assert c.run().complete


def test_the_rig_restores_its_last_stroke_id_from_its_record(tmp_path) -> None:
    path = tmp_path / "rec.csv"
    rig = Rig(record=path)
    rig.deliver(1, [10, 20, 30])
    rig.close()
    with open(path, "a") as f:
        f.write("4,4")  # a torn line: the rig died mid-write, the stroke is not counted
    rig2 = Rig(record=path)
    assert rig2.last_stroke_id == 3 and read_record(path) == [(1, 10), (2, 20), (3, 30)]
    assert rig2.deliver(3, [30, 40]) == {"last_stroke_id": 4, "executed": 1, "duplicate": 1}
    rig2.close()
    assert read_record(path) == [(1, 10), (2, 20), (3, 30), (4, 40)]


def test_min_stroke_interval_is_one_definition_rounded_up():
    """The plan and the controller share one minimum stroke spacing: one stroke's volume at the
    model's maximum rate, rounded up (hand-computed: 2000 nL at 24 mL/day is 7200 ms exactly;
    at 7 mL/day 172 800 000 000 / 7 000 000 = 24 685.7 → 24 686 ms)."""
    import dataclasses

    from itb.hardware import controller, plan
    from itb.models import PRESETS

    model = PRESETS["SYNCHROMED_II_20"]
    assert plan.min_stroke_interval_ms(model) == 7200
    slow = dataclasses.replace(model, max_rate_ml_per_day=7.0)
    assert plan.min_stroke_interval_ms(slow) == 24686
    assert controller.min_stroke_interval_ms is plan.min_stroke_interval_ms
