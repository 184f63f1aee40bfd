"""Asynchronous and real-time devices, and the no-reset mode, without hardware.

The accelerated clock is checked on a fake monotonic clock against hand-computed times; the
devices are in-process fakes: one finishes each call later in a worker thread (the machine must
wait for it), one runs everything 5 minutes late (reported as late by that much beyond the time
tolerance, passing within it), one runs on a ``ScaledClock`` in real time, and one long-lived
device is never reset between examples (the oracle is resynced to it)."""

from __future__ import annotations

import math
import queue
import re
import threading
import time
from datetime import datetime, timedelta
from fractions import Fraction

import itb
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from itb.errors import ValidationError
from itb.testing import PumpStateMachine
from itb.testing.machine import ACTIONS, run
from itb.testing.realtime import ScaledClock, wait_until

T0 = datetime(2026, 1, 5, 8, 0)
FAST = settings(
    max_examples=6,
    stateful_step_count=8,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


class FakeTime:
    """A monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


# ----- the clock and the wait -------------------------------------------------------------------
def test_scaled_clock_runs_factor_times_faster_floored_to_the_ms():
    ft = FakeTime()
    clock = ScaledClock(T0, 3600, monotonic=ft.monotonic, sleep=ft.sleep)
    assert clock.now() == T0
    ft.t += 1.5  # 1.5 s of wall time at 3600x: 1 h 30 min of pump time
    assert clock.now() == T0 + timedelta(hours=1, minutes=30)
    ft.t += 2**-10  # 0.9765625 ms wall (exact in binary) -> 3515.625 ms pump, floored
    assert clock.now() == T0 + timedelta(hours=1, minutes=30, milliseconds=3515)
    assert clock.wall(timedelta(hours=1)) == timedelta(seconds=1)
    assert clock.wall(timedelta(minutes=1)) == timedelta(milliseconds=1000 / 60)


@given(
    factor=st.one_of(st.integers(1, 10**6), st.floats(0.001, 1e6)),
    steps=st.lists(st.integers(0, 10**6), max_size=20),  # µs of wall time between readings
)
def test_scaled_clock_is_monotone_and_exact_to_the_floored_ms(factor, steps):
    ft = FakeTime()
    ft.t = 0.0  # elapsed seconds are then exact sums of the steps
    clock = ScaledClock(T0, factor, monotonic=ft.monotonic, sleep=ft.sleep)
    seen = [clock.now_ms()]
    elapsed_us = 0
    for us in steps:
        elapsed_us += us
        ft.t = elapsed_us / 1e6
        seen.append(clock.now_ms())
        # independent: the product in exact fractions, then floored
        want = math.floor(Fraction(ft.t) * 1000 * Fraction(float(factor)))
        assert seen[-1] - seen[0] == want
    assert seen == sorted(seen)


@given(factor=st.floats(0.5, 1e5), ahead_ms=st.integers(0, 10**7))
def test_sleep_until_reaches_the_target_and_no_further_than_a_ms(factor, ahead_ms):
    ft = FakeTime()
    clock = ScaledClock(T0, factor, monotonic=ft.monotonic, sleep=ft.sleep)
    target = T0 + timedelta(milliseconds=ahead_ms)
    assert clock.sleep_until(target) == timedelta(0)
    assert target <= clock.now() <= target + timedelta(milliseconds=1)


def test_sleep_until_sleeps_the_wall_time_or_says_how_far_past_it_was():
    ft = FakeTime()
    clock = ScaledClock(T0, 60, monotonic=ft.monotonic, sleep=ft.sleep)  # a minute a second
    assert clock.sleep_until(T0 + timedelta(minutes=10)) == timedelta(0)
    assert clock.now() >= T0 + timedelta(minutes=10)
    assert sum(ft.sleeps) == pytest.approx(10.0)  # 10 pump minutes = 10 wall seconds
    ft.t += 2  # the clock is 2 pump minutes past the next target
    assert clock.sleep_until(T0 + timedelta(minutes=10)) >= timedelta(minutes=2)


@pytest.mark.parametrize("factor", [0, -1, float("nan"), float("inf"), True, "2", 1e12])
def test_a_bad_factor_is_a_validation_error_naming_it_and_the_range(factor):
    with pytest.raises(ValidationError, match=r"factor=.*must be a number > 0 and <= ") as err:
        ScaledClock(T0, factor)
    assert err.value.field == "factor"


@pytest.mark.parametrize("start", [1_000, "2026-01-05", datetime(2026, 1, 5).astimezone()])
def test_a_bad_start_is_a_validation_error_naming_start(start):
    with pytest.raises(ValidationError) as err:
        ScaledClock(start, 10)
    assert err.value.field == "start"


def test_wait_until_polls_until_ready_or_the_timeout():
    ft = FakeTime()
    calls = []

    def ready_on_third():
        calls.append(ft.t)
        return len(calls) >= 3

    waited = wait_until(
        ready_on_third,
        timedelta(seconds=1),
        poll=timedelta(milliseconds=10),
        monotonic=ft.monotonic,
        sleep=ft.sleep,
    )
    assert abs(waited - timedelta(milliseconds=20)) < timedelta(microseconds=1)
    calls.clear()
    assert (
        wait_until(
            lambda: bool(calls.append(ft.t)),
            timedelta(milliseconds=25),
            poll=timedelta(milliseconds=10),
            monotonic=ft.monotonic,
            sleep=ft.sleep,
        )
        is None
    )
    # polled at 0, 10, 20 ms and once more at the timeout (25 ms)
    assert [round((t - calls[0]) * 1000, 6) for t in calls] == [0, 10, 20, 25]


@pytest.mark.parametrize("kwargs", [{"timeout": 1.0}, {"poll": 0.01}, {"poll": timedelta(0)}])
def test_wait_durations_must_be_timedeltas(kwargs):
    args = {"timeout": timedelta(seconds=1), **kwargs}
    with pytest.raises(ValidationError) as err:
        wait_until(lambda: True, **args)
    assert err.value.field == next(iter(kwargs))


# ----- an asynchronous device: each call finishes later, in a worker thread ---------------------
def _pump(now=T0):
    return itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=now,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )


class AsyncDevice(PumpStateMachine):
    """An itb.Pump behind a worker thread: every adapter queues its work and returns at once;
    the work is done ``delay`` seconds later (wall time). A call made at time t takes effect
    when the device's own clock shows t."""

    unsupported = frozenset(ACTIONS) - {"bolus", "set_program", "suspend", "resume"}
    settle_timeout = timedelta(seconds=5)
    report_coverage = False
    delay = 0.005
    # a late mutant: its clock runs this much behind, so its whole timeline (strokes, and the
    # calls, which take effect when its clock shows their time) is late by exactly that much
    lag = timedelta(0)

    def make_pump(self):
        return _pump()

    def device_start(self, pump):
        self.stop_worker()
        self.dev = _pump()  # with a lag, its clock shows T0 only `lag` after the start
        self.strokes: list[int] = []
        self.pending: list = []  # (time, call) not yet in effect
        self.jobs: queue.Queue = queue.Queue()
        self.idle = threading.Event()
        self.idle.set()
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()

    def stop_worker(self):
        if getattr(self, "worker", None) is not None:
            self.jobs.put(None)
            self.worker.join(5)

    def teardown(self):
        self.stop_worker()

    def _work(self):
        while (job := self.jobs.get()) is not None:
            time.sleep(self.delay)
            job()
            if self.jobs.empty():
                self.idle.set()

    def _run_to(self, target):
        """The device's clock reaches ``target``: the calls due by then take effect in order."""
        while self.pending and self.pending[0][0] <= max(target, self.dev.now):
            t, call = self.pending.pop(0)
            self._record(t)
            call()
        self._record(target)

    def _record(self, t):
        if t > self.dev.now:
            self.strokes += [int(x) for x in self.dev.advance_recording(t)[1]]

    def _submit(self, call=None, until=None):
        now = self.oracle.now
        if call is not None:
            self.pending.append((now, call))
        target = (until or now) - self.lag
        self.idle.clear()
        self.jobs.put(lambda: self._run_to(target))

    def device_settled(self):
        return self.idle.is_set() and self.jobs.empty()

    def device_advance(self, until):
        self._submit(until=until)

    def device_bolus(self, dose_ug, duration):
        self._submit(lambda: self.dev.bolus(dose_ug, duration))

    def device_set_program(self, program):
        self._submit(lambda: self.dev.set_program(program))

    def device_suspend(self):
        self._submit(self.dev.suspend)

    def device_resume(self):
        self._submit(self.dev.resume)

    def device_observed(self):
        return self.dev.pumped_nl


class AsyncWithStrokes(AsyncDevice):
    def device_stroke_times(self):
        lag_ms = self.lag // timedelta(milliseconds=1)
        return np.array(self.strokes, dtype=np.int64) + lag_ms


def test_an_asynchronous_device_passes_when_the_machine_waits_for_it():
    run(AsyncWithStrokes, FAST, seed=3)


def test_without_waiting_the_same_device_is_read_before_it_finished():
    class NoWait(AsyncDevice):
        settle_timeout = None
        delay = 0.05

    with pytest.raises(AssertionError, match=r"device diverged"):
        run(NoWait, FAST, seed=3)


def test_a_device_that_never_finishes_fails_after_the_timeout():
    class Stuck(AsyncDevice):
        settle_timeout = timedelta(milliseconds=200)

        def device_settled(self):
            return False

    with pytest.raises(
        AssertionError, match=r"device did not finish .* within 0:00:00\.200000 \(settle_timeout"
    ):
        run(Stuck, FAST, seed=3)


def test_a_device_late_by_more_than_the_time_tolerance_is_reported_late_by_that_much():
    class Late(AsyncWithStrokes):
        lag = timedelta(minutes=5)
        time_tol = timedelta(minutes=1)

    with pytest.raises(AssertionError, match=r"stroke #\d+ late by 0:05:00: due at ") as err:
        run(Late, FAST, seed=3)
    assert "time tolerance 0:01:00" in str(err.value)


def test_from_volumes_alone_a_late_device_is_late_by_at_least_the_gap():
    class LateVolumes(AsyncDevice):
        lag = timedelta(minutes=5)
        time_tol = timedelta(minutes=1)

    with pytest.raises(AssertionError, match=r"device late: stroke #\d+ was due at ") as err:
        run(LateVolumes, settings(FAST, max_examples=30, stateful_step_count=15), seed=3)
    msg = str(err.value)
    # the reading misses a stroke due at least the tolerance before it, less than the lag
    late = msg.split("late by at least ")[1].split(" ")[0]
    h, m, s = (float(x) for x in late.split(":"))
    assert timedelta(minutes=1) <= timedelta(hours=h, minutes=m, seconds=s) <= timedelta(minutes=5)


def test_within_the_time_tolerance_a_late_device_passes():
    class LateButTolerated(AsyncWithStrokes):
        lag = timedelta(minutes=5)
        time_tol = timedelta(minutes=6)

    run(LateButTolerated, FAST, seed=3)


@pytest.mark.parametrize(
    ("attr", "value", "error"),
    [
        ("time_tol", 60, TypeError),
        ("time_tol", timedelta(seconds=-1), ValueError),
        ("settle_timeout", 2.0, TypeError),
        ("poll_interval", timedelta(0), ValueError),
        ("resettable", "no", TypeError),
    ],
)
def test_async_settings_are_checked(attr, value, error):
    with pytest.raises(error, match=attr):
        type("Bad", (AsyncDevice,), {attr: value})


def test_waiting_or_resyncing_without_the_adapter_is_refused():
    class NoSettled(PumpStateMachine):
        settle_timeout = timedelta(seconds=1)

        def device_advance(self, until):
            pass

        def device_observed(self):
            return 0

    with pytest.raises(TypeError, match="settle_timeout is set but device_settled"):
        NoSettled()

    class NoState(NoSettled):
        settle_timeout = None
        resettable = False

    with pytest.raises(TypeError, match="resettable is False but device_state"):
        NoState()


# ----- a real-time device on an accelerated clock ----------------------------------------------
class RealTime(PumpStateMachine):
    """A device that runs by itself on a ScaledClock (a day in 2 s of wall time): reading it
    advances its pump to the clock's time; the machine only waits for the clock."""

    unsupported = frozenset(ACTIONS) - {"bolus"}
    report_coverage = False
    factor = 86_400 / 2
    time_tol = timedelta(hours=2)  # 167 ms of wall time: room for a loaded machine's latency
    max_advance = timedelta(hours=4)
    bolus_dose_ug = (50.0, 100.0)  # 25..50 strokes, given within 30 min: beyond the window
    bolus_duration = (timedelta(minutes=1), timedelta(minutes=30))

    def make_pump(self):
        return _pump()

    def make_clock(self):
        return ScaledClock(T0, self.factor)

    def device_start(self, pump):
        self.dev = pump
        self.lock = threading.Lock()

    def _run(self):  # the device's own time passes with the clock
        with self.lock:
            now = self.clock.now()
            if now > self.dev.now:
                self.dev.advance_to(now)

    def device_advance(self, until):
        return None  # nothing to send: the machine waits for the clock

    def device_bolus(self, dose_ug, duration):
        self._run()
        with self.lock:
            self.dev.bolus(dose_ug, duration)

    def device_observed(self):
        self._run()
        return self.dev.pumped_nl


def test_a_real_time_device_on_an_accelerated_clock_matches_within_the_tolerance():
    # the tolerance covers the time between the machine's reading of the clock and the
    # device's taking the bolus (wall latency x the factor)
    run(RealTime, settings(FAST, max_examples=3, stateful_step_count=6), seed=1)


def test_a_real_time_device_that_skips_boluses_is_caught():
    class Skips(RealTime):
        def device_bolus(self, dose_ug, duration):
            self._run()

    with pytest.raises(AssertionError, match=r"device late: stroke #\d+ was due at "):
        run(Skips, settings(FAST, max_examples=20, stateful_step_count=10), seed=1)


# ----- no reset between examples: one long-lived device -----------------------------------------
LONG_LIVED: dict = {}


class LongLived(PumpStateMachine):
    """One itb.Pump for the whole run (hardware that cannot be reset): device_start is called
    once; every later example starts from the device's state as read back."""

    resettable = False
    # a read-back state does not carry the stroke phase (docs: no-reset mode): the oracle's
    # strokes after a resync may come up to one stroke interval (<= 28.8 min at >= 200 µg/day
    # of 2000 µg/mL) earlier or later than the device's
    tol_strokes = 1
    alarm_tol = timedelta(minutes=29)
    daily_dose_ug = (200, 1000)
    unsupported = frozenset(ACTIONS) - {
        "bolus",
        "cancel_bolus",
        "set_program",
        "refill",
        "set_patient_bolus_limits",
        "patient_bolus",
    }
    concentrations = (2000,)
    report_coverage = False

    def make_pump(self):
        return _pump()

    def device_start(self, pump):
        LONG_LIVED["starts"] = LONG_LIVED.get("starts", 0) + 1
        LONG_LIVED["dev"], LONG_LIVED["alarms"] = pump, []

    @property
    def dev(self):
        return LONG_LIVED["dev"]

    def device_state(self):
        LONG_LIVED["resyncs"] = LONG_LIVED.get("resyncs", 0) + 1
        d = self.dev
        return {
            "now": d.now,
            "reservoir_ml": d.reservoir_nl / 1e6,
            "concentration_ug_per_ml": d.concentration_ug_per_ml,
            "program": d.program,
            "active_alarms": d.active_alarms,
        }

    def _flush(self):
        LONG_LIVED["alarms"] += [
            (e.time, e.kind) for e in self.dev.advance_recording(self.dev.now)[0] if e.severity
        ]

    def device_advance(self, until):
        LONG_LIVED["alarms"] += [(e.time, e.kind) for e in self.dev.advance_to(until) if e.severity]

    def device_bolus(self, dose_ug, duration):
        return self.dev.bolus(dose_ug, duration)

    def device_cancel_bolus(self, handle):
        self.dev.cancel_bolus(handle)

    def device_set_program(self, program):
        self.dev.set_program(program)

    def device_refill(self, added_ml, concentration_ug_per_ml):
        self.dev.refill(added_ml, concentration_ug_per_ml)
        self._flush()

    def device_set_patient_bolus_limits(self, dose_ug, duration, lockout, max_per_24h):
        self.dev.set_patient_bolus_limits(dose_ug, duration, lockout, max_per_24h)

    def device_patient_bolus(self):
        return self.dev.patient_bolus()

    def device_observed(self):
        return self.dev.pumped_nl

    def device_alarms(self):
        return list(LONG_LIVED["alarms"])


def test_no_reset_mode_runs_many_examples_against_one_device():
    LONG_LIVED.clear()
    LongLived._long_lived = False
    reached = run(LongLived, settings(FAST, max_examples=8, stateful_step_count=10), seed=5)
    assert LONG_LIVED["starts"] == 1
    assert LONG_LIVED["resyncs"] >= 7  # every example after the first began from a read-back
    assert LONG_LIVED["dev"].now > T0 + timedelta(days=2)  # the device lived through them all
    assert any(k.startswith("patient_bolus: ") for k in reached), reached


def test_no_reset_mode_with_the_exact_state_needs_no_tolerance():
    class Exact(LongLived):
        tol_strokes = 0
        alarm_tol = timedelta(0)

        def device_state(self):
            LONG_LIVED["resyncs"] = LONG_LIVED.get("resyncs", 0) + 1
            return self.dev.copy()  # an itb.Pump: phase, limits and grants included

    LONG_LIVED.clear()
    run(Exact, settings(FAST, max_examples=8, stateful_step_count=10), seed=5)
    assert LONG_LIVED["starts"] == 1 and LONG_LIVED["resyncs"] >= 7


def test_no_reset_mode_catches_a_device_that_breaks_after_the_first_example():
    class Breaks(LongLived):
        unsupported = LongLived.unsupported | {"cancel_bolus"}

        def device_bolus(self, dose_ug, duration):
            if LONG_LIVED.get("resyncs", 0):  # fine in the first example, wrong later on
                return None  # ignored
            return super().device_bolus(dose_ug, duration)

    LONG_LIVED.clear()
    with pytest.raises(AssertionError, match=r"resync to the device's state at .* \(no reset\)"):
        run(Breaks, settings(FAST, max_examples=12, stateful_step_count=10), seed=5)


# ----- patient answers at a rule's edge, within the time tolerance -----------------------------
class ShiftedLockout(PumpStateMachine):
    """A device whose lockout ends 30 s late: wrong for a synchronous device, within a time
    tolerance of 1 minute for an asynchronous one."""

    unsupported = frozenset(ACTIONS) - {"set_patient_bolus_limits", "patient_bolus"}
    report_coverage = False
    shift = timedelta(seconds=30)

    def make_pump(self):
        return _pump()

    def device_start(self, pump):
        self.dev = pump

    def device_advance(self, until):
        self.dev.advance_to(until)

    def device_set_patient_bolus_limits(self, dose_ug, duration, lockout, max_per_24h):
        if dose_ug is not None:
            lockout = min(lockout + self.shift, timedelta(days=1))
        self.dev.set_patient_bolus_limits(dose_ug, duration, lockout, max_per_24h)

    def device_patient_bolus(self):
        return self.dev.patient_bolus().reason

    def device_observed(self):
        return self.dev.pumped_nl


PATIENT = settings(FAST, max_examples=60, stateful_step_count=12)


def test_a_lockout_30_s_late_is_caught_when_observed_synchronously():
    with pytest.raises(AssertionError, match=r"patient activation: expected 'granted'"):
        run(ShiftedLockout, PATIENT, seed=4)


def test_within_the_time_tolerance_edges_are_not_asked_and_the_rest_is_compared():
    class Tolerated(ShiftedLockout):
        time_tol = timedelta(minutes=1)

    reached = run(Tolerated, PATIENT, seed=4)
    # activations were still made and compared, aimed just outside the tolerance of each edge
    assert reached["patient_bolus: granted"] > 0 and reached["patient_bolus: lockout"] > 0
    assert reached["patient_bolus at: lockout end"] > 0


def test_a_lockout_late_by_more_than_the_time_tolerance_is_still_caught():
    class TooLate(ShiftedLockout):
        time_tol = timedelta(minutes=1)
        shift = timedelta(minutes=5)

    with pytest.raises(AssertionError, match=r"patient activation: expected 'granted'"):
        run(TooLate, PATIENT, seed=4)


def test_a_device_ahead_by_more_than_the_time_tolerance_is_reported_early():
    class EarlyStrokes(AsyncWithStrokes):
        lag = -timedelta(minutes=5)  # its timeline runs 5 minutes ahead
        time_tol = timedelta(minutes=1)

    with pytest.raises(AssertionError, match=r"stroke #\d+ early by \d+:\d\d:\d\d.*: due at "):
        run(EarlyStrokes, FAST, seed=3)

    class EarlyVolumes(AsyncDevice):
        lag = -timedelta(minutes=5)
        time_tol = timedelta(minutes=1)

    with pytest.raises(
        AssertionError, match=r"device early: it made stroke #\d+ by .*, due only at .*: early by"
    ):
        run(EarlyVolumes, settings(FAST, max_examples=30, stateful_step_count=15), seed=3)


# ----- the event log, asynchronously ------------------------------------------------------------
class AsyncWithEvents(AsyncDevice):
    """The asynchronous device with an event log whose clock is ``log_shift`` off (its delivery is
    right: only the times it logs are wrong)."""

    time_tol = timedelta(minutes=1)
    log_shift = timedelta(0)
    event_kinds = frozenset({"bolus_started", "bolus_completed", "suspended", "resumed"})

    def device_start(self, pump):
        super().device_start(pump)
        self.logged: list = []

    def _record(self, t):
        if t >= self.dev.now:  # t == now flushes the events of a call just made
            events, times = self.dev.advance_recording(t)
            self.strokes += [int(x) for x in times]
            self.logged += [(e.time + self.log_shift, e.kind) for e in events]

    def device_events(self):
        return list(self.logged)


def test_asynchronous_event_logs_within_the_time_tolerance_pass():
    class Faithful(AsyncWithEvents):
        log_shift = timedelta(seconds=50)  # within the minute

    run(Faithful, settings(FAST, max_examples=10), seed=3)


@pytest.mark.parametrize(("shift", "how"), [(5, "late"), (-5, "early")])
def test_an_asynchronous_event_log_off_by_more_than_the_tolerance_says_by_how_much(shift, how):
    class Off(AsyncWithEvents):
        log_shift = timedelta(minutes=shift)

    with pytest.raises(AssertionError) as err:
        run(Off, settings(FAST, max_examples=30, stateful_step_count=15), seed=3)
    msg = str(err.value)
    # paired with the oracle's n-th event of its kind: off by exactly the shift
    assert re.match(rf"device event '\w+' #\d+ {how} by 0:05:00: due at ", msg), msg
    assert "time tolerance 0:01:00" in msg, msg


def test_an_event_the_asynchronous_device_never_logs_is_late_by_at_least_the_gap():
    class DropsResumed(AsyncWithEvents):
        def device_events(self):
            return [(t, k) for t, k in self.logged if k != "resumed"]

    with pytest.raises(AssertionError) as err:
        run(DropsResumed, settings(FAST, max_examples=30, stateful_step_count=15), seed=3)
    msg = str(err.value)
    assert re.match(r"device event 'resumed' #1 late: due at .*, not logged when read at ", msg), (
        msg
    )
    # read at least the tolerance after it was due
    late = msg.split("late by at least ")[1].split(" ")[0]
    h, m, s = (float(x) for x in late.split(":"))
    assert timedelta(hours=h, minutes=m, seconds=s) >= timedelta(minutes=1), msg
