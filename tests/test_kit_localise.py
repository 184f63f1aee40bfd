"""Localisation: a volume divergence found after a long advance is placed at the first wrong
stroke (the oracle's stroke the device lacks), with the operation before it — by replaying the
device's calls with the advance split at the oracle's strokes, or from the device's own stroke
times. Expected times are hand-computed from the stroke rule (a stroke every 86 400 s × q / rate)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import itb
import numpy as np
import pytest
from _kit_devices import T0, PumpAsDevice
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from itb.testing.machine import ACTIONS


class KeepsTheOldVolumeRate(PumpAsDevice):
    """Bug: after a refill at another strength the device keeps its old volume rate (the program is
    not re-derived): 400 µg/day at 2000 µg/mL is 0.2 mL/day; at 1000 µg/mL it must be 0.4."""

    def device_refill(self, added_ml, concentration_ug_per_ml):
        old_conc, old = self.dev.concentration_ug_per_ml, self.dev.program
        super().device_refill(added_ml, concentration_ug_per_ml)
        if concentration_ug_per_ml != old_conc and isinstance(old, itb.Continuous):
            scaled = old.ug_per_day * concentration_ug_per_ml / old_conc
            self.dev.set_program(itb.Continuous(ug_per_day=scaled))


class WithStrokeTimes(KeepsTheOldVolumeRate):
    def device_start(self, pump):
        super().device_start(pump)
        self.strokes_at: list = []

    def device_advance(self, until):
        events, times = self.dev.advance_recording(until)
        self.log += events
        self.strokes_at += [int(t) for t in times]

    def device_stroke_times(self):
        return np.asarray(self.strokes_at, dtype=np.int64)


def _run_refill_then_long_advance(machine_cls) -> str:
    m = machine_cls()
    m._start()
    m.device_matches_oracle()
    m._do(
        "refill",
        "refill(1.0 mL, 1000 µg/mL)",
        {"added_ml": 1.0, "concentration_ug_per_ml": 1000},
        (1.0, 1000),
    )
    m.device_matches_oracle()
    m._advance_both(T0 + timedelta(days=2))
    with pytest.raises(AssertionError) as err:
        m.device_matches_oracle()
    return str(err.value)


@pytest.mark.parametrize("machine_cls", [KeepsTheOldVolumeRate, WithStrokeTimes])
def test_a_divergence_after_a_long_advance_is_placed_at_the_first_wrong_stroke(machine_cls):
    msg = _run_refill_then_long_advance(machine_cls)
    # at 1000 µg/mL 400 µg/day is 0.4 mL/day: a 2 µL stroke every 7.2 min from the 08:00 refill;
    # the device still makes one every 14.4 min, so it lacks the oracle's first, at 08:07:12
    first = msg.splitlines()[0]
    assert first.startswith("first wrong stroke: #1, due at 2026-01-05 08:07:12"), msg
    assert "after refill(1.0 mL, 1000 µg/mL) at 2026-01-05 08:00:00" in first, msg
    # the 2-day window is still given, after the exact place
    assert "device diverged between 2026-01-05 08:00:00" in msg and "2026-01-07 08:00:00" in msg


def test_a_device_whose_delivery_depends_on_how_time_is_split_is_told_so():
    class LateWhenAdvancedOften(PumpAsDevice):
        def device_advance(self, until):  # each advance after day 1 starts with 30 min suspended
            if self.dev.now > T0 + timedelta(days=1):
                self.dev.suspend()
                self.log += self.dev.advance_to(min(until, self.dev.now + timedelta(minutes=30)))
                self.dev.resume()
            self.log += self.dev.advance_to(until)

    m = LateWhenAdvancedOften()
    m._start()
    m._advance_both(T0 + timedelta(days=1, hours=1))
    m.device_matches_oracle()
    m._advance_both(T0 + timedelta(days=3))
    with pytest.raises(AssertionError) as err:
        m.device_matches_oracle()
    msg = str(err.value)
    # the run agreed at day 1 + 1 h; split at every stroke, the replay already lags on day 1 (the
    # first piece after 2026-01-06 08:00 starts suspended): #101 at 08:14:24 is not made
    assert msg.startswith("the replay diverged before the run did"), msg
    assert "first wrong stroke: #101, due at 2026-01-06 08:14:24" in msg, msg


def test_in_a_hypothesis_run_the_reported_counterexample_is_localised():
    class Refills(KeepsTheOldVolumeRate):
        unsupported = frozenset(ACTIONS) - {"refill"}
        max_advance = timedelta(days=20)
        concentration_changes = "always"

        def device_alarms(self):  # volumes only: the one bug is the volume rate
            return None

    with pytest.raises(AssertionError) as err:
        run_state_machine_as_test(
            Refills,
            settings=settings(
                max_examples=100,
                deadline=None,
                derandomize=True,
                report_multiple_bugs=False,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            ),
        )
    msg = str(err.value)
    assert re.match(r"first wrong stroke: #\d+, (due at|made early)", msg), msg
    assert "after refill(" in msg.splitlines()[0], msg


class LogsTheNominalEnd(PumpAsDevice):
    """A device that delivers right but logs a bolus's end at start + the requested duration (the
    pump ends it when its volume is in: at the rate rounded up, a little earlier)."""

    def device_start(self, pump):
        super().device_start(pump)
        self.ends: dict = {}

    def device_bolus(self, dose_ug, duration):
        handle = super().device_bolus(dose_ug, duration)
        self.ends[handle[1]] = self.dev.now + duration
        return handle

    def device_events(self):
        self.log += self.dev.advance_to(self.dev.now)
        out = []
        for e in self.log:
            if e.kind == "bolus_completed" and e.data["bolus_id"] in self.ends:
                end = self.ends[e.data["bolus_id"]]
                if end <= self.dev.now:
                    out.append((end, e.kind))
            elif e.kind != "stroke_batch":
                out.append((e.time, e.kind))
        return out


def test_the_event_log_adapter_places_a_wrong_event_at_its_millisecond():
    """10 µg at 2000 µg/mL is 5000 nL; over 61.5 min the rate is ceil(5000 × 86 400 000 /
    3 690 000) = 117 074 nL/day, so the volume is in after 5000 × 86 400 000 / 117 074 =
    3 689 973.8 ms: the bolus ends at 09:01:29.974, not at 09:01:30 as the device logs."""
    m = LogsTheNominalEnd()
    m._start()
    m._do(
        "bolus",
        "bolus(10.0 µg, 1:01:30)",
        {"dose_ug": 10.0, "duration": timedelta(minutes=61, seconds=30)},
        (10.0, timedelta(minutes=61, seconds=30)),
    )
    m.device_matches_oracle()  # bolus_started at 08:00 on both
    m._advance_both(T0 + timedelta(hours=2))
    with pytest.raises(AssertionError) as err:
        m.device_matches_oracle()
    msg = str(err.value)
    assert msg.startswith(
        "device event log diverged at 2026-01-05 09:01:29.974: expected 'bolus_completed' then, "
        "the device logged it at 2026-01-05 09:01:30 (after bolus(10.0 µg, 1:01:30) at "
        "2026-01-05 08:00:00)"
    ), msg
    # the volume agrees: only the log shows the bug
    assert m.device_observed() == m.oracle.expected().pumped_nl


def test_event_log_kinds_are_checked_and_a_faithful_log_passes():
    class Faithful(LogsTheNominalEnd):
        unsupported = frozenset(ACTIONS) - {
            "bolus",
            "cancel_bolus",
            "set_program",
            "suspend",
            "resume",
        }

        def device_bolus(self, dose_ug, duration):
            return PumpAsDevice.device_bolus(self, dose_ug, duration)

    run_state_machine_as_test(
        Faithful,
        settings=settings(
            max_examples=20,
            stateful_step_count=15,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    with pytest.raises(ValueError, match=r"Bad\.event_kinds: unknown kind\(s\) \['bolus_ended'\]"):
        type("Bad", (PumpAsDevice,), {"event_kinds": frozenset({"bolus_ended"})})
    with pytest.raises(TypeError, match=r"Bad\.event_kinds must be a set or frozenset"):
        type("Bad", (PumpAsDevice,), {"event_kinds": "bolus_started"})
    m = Faithful()
    m._start()
    m.device_events = lambda: [("not a time", "bolus_started")]
    with pytest.raises(itb.ValidationError, match=r"device_events\(\)\[0\]"):
        m.device_matches_oracle()
    m.device_events = lambda: [("bolus_started",)]
    with pytest.raises(TypeError, match=r"device_events\(\)\[0\] = \('bolus_started',\)"):
        m.device_matches_oracle()


# ----- step boundaries ----------------------------------------------------------------------------
# 2 µL strokes at 2000 µg/mL: 200 µg/day is 0.1 mL/day, a stroke every 28.8 min; 800 µg/day is
# 0.4 mL/day, a stroke every 7.2 min.
NOON_STEP = itb.Flex("day", [("00:00", 200), ("12:00", 800)])


class SwitchesAnHourLate(PumpAsDevice):
    """Bug: the device starts each flex step 1 h late (it runs the previous step an hour on)."""

    def device_set_program(self, program):
        if isinstance(program, itb.Flex) and program.period == "day":
            steps = [(timedelta(hours=1) + _offset(o), dose) for o, dose in program.steps]
            last = steps[-1][1]
            program = itb.Flex("day", [(timedelta(0), last), *steps])
        self.dev.set_program(program)

    def device_alarms(self):  # volumes only: the one bug is the step timing
        return None


def _offset(t):
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)


def test_a_device_late_at_a_flex_step_is_placed_after_that_step_within_one_stroke():
    m = SwitchesAnHourLate()
    m._start()
    m._do("set_program", f"set_program({NOON_STEP!r})", {"program": NOON_STEP}, (NOON_STEP,))
    m.device_matches_oracle()
    # to 12:30 the next day (over a whole day the device's total is right: check mid-step)
    m._advance_both(T0 + timedelta(days=1, hours=4, minutes=30))
    with pytest.raises(AssertionError) as err:
        m.device_matches_oracle()
    first = str(err.value).splitlines()[0]
    # from 08:00 at 28.8 min a stroke: #8 at 11:50:24; at 12:00 a third of a stroke is in, the
    # other two thirds take 2/3 × 7.2 min = 4.8 min at 800 µg/day: the oracle's #9 is at
    # 12:04:48, the device (still at 200 µg/day) makes it only at 12:19:12
    assert first.startswith("first wrong stroke: #9, due at 2026-01-05 12:04:48, not made"), first
    # the window: after the 12:00 step start, not (only) after the 08:00 operation
    assert "after the program's step 2 at 2026-01-05 12:00:00" in first, first
    assert "step boundaries" in first, first


def test_step_starts_are_the_schedules_boundaries_hand_computed():
    from itb.testing.machine import _step_starts

    def ms(t):
        return int((t - datetime(1970, 1, 1)).total_seconds() * 1000)

    p = PumpAsDevice().make_pump()  # continuous: midnight only
    got = _step_starts(p, ms(T0), ms(T0 + timedelta(days=2)))
    assert got == [(ms(datetime(2026, 1, 6)), "midnight"), (ms(datetime(2026, 1, 7)), "midnight")]
    p.set_program(itb.Flex("week", [("mon 00:00", 200), ("wed 12:00", 800)]))
    # T0 is Monday 2026-01-05 08:00; 9 days on is Wednesday 2026-01-14 08:00
    got = _step_starts(p, ms(T0), ms(T0 + timedelta(days=9)))
    assert got == [
        (ms(datetime(2026, 1, 7, 12)), "the program's step 2"),
        (ms(datetime(2026, 1, 12)), "the program's step 1"),
    ]
    # the end is inclusive, the start exclusive
    assert _step_starts(p, ms(datetime(2026, 1, 7, 12)), ms(datetime(2026, 1, 12))) == [
        (ms(datetime(2026, 1, 12)), "the program's step 1")
    ]


@given(
    period=st.sampled_from(["day", "week"]),
    offsets=st.sets(st.integers(1, 7 * 24 * 4 - 1), max_size=4),
    after_min=st.integers(0, 14 * 24 * 60),
    span_min=st.integers(0, 10 * 24 * 60),
)
@settings(max_examples=60, deadline=None)
def test_step_starts_match_the_calendar(period, offsets, after_min, span_min):
    """Property: the split points are the steps' starts on the calendar (each date's or each
    Monday's start plus the step's offset), in (after, until], from the steps as given."""
    from itb.testing.machine import _step_starts

    quarter = timedelta(minutes=15)
    span = timedelta(days=1 if period == "day" else 7)
    offs = sorted({0} | {o for o in offsets if o * quarter < span})
    steps = [(o * quarter, 200 + 100 * i) for i, o in enumerate(offs)]
    p = PumpAsDevice().make_pump()
    p.set_program(itb.Flex(period, steps))
    after = T0 + timedelta(minutes=after_min)
    until = after + timedelta(minutes=span_min)
    epoch = datetime(1970, 1, 1)
    # the calendar: every period start (midnight, Monday 00:00) from a week before on
    first = datetime.combine((after - timedelta(days=7)).date(), datetime.min.time())
    if period == "week":
        first -= timedelta(days=first.weekday())
    want = []
    start = first
    while start <= until:
        for i, (off, _dose) in enumerate(steps):
            if after < start + off <= until:
                want.append((start + off, f"the program's step {i + 1}"))
        start += span
    ms = timedelta(milliseconds=1)
    got = [
        (epoch + t * ms, what)
        for t, what in _step_starts(p, (after - epoch) // ms, (until - epoch) // ms)
    ]
    assert got == want


class BolusRunsAnHourOn(PumpAsDevice):
    """Bug: the device runs each timed bolus an hour past its end at the same rate."""

    def device_bolus(self, dose_ug, duration):
        longer = duration + timedelta(hours=1)
        return ("dev", self.dev.bolus(dose_ug * (longer / duration), longer))

    def device_alarms(self):
        return None


def test_a_device_late_at_a_bolus_end_is_placed_after_that_end():
    m = BolusRunsAnHourOn()
    m._start()
    hour = timedelta(hours=1)
    m._do("bolus", "bolus(10.0 µg, 1:00:00)", {"dose_ug": 10.0, "duration": hour}, (10.0, hour))
    m.device_matches_oracle()
    m._advance_both(T0 + timedelta(hours=6))
    with pytest.raises(AssertionError) as err:
        m.device_matches_oracle()
    first = str(err.value).splitlines()[0]
    # 10 µg at 2000 µg/mL is 5 µL in 1 h: 120 000 nL/day on the basal 200 000, a stroke every
    # 9 min to 08:54 (#6), two thirds of one in by 09:00; then the basal alone (a stroke every
    # 14.4 min) brings the oracle's #7 at 09:04:48, while the device still at 9 min made it at
    # 09:03: seen at the piece ending 1 ms before the oracle's
    assert first.startswith(
        "first wrong stroke: #7, made early, by 2026-01-05 09:04:47.999 (due at 2026-01-05 09:04:48"
    ), first
    assert "after bolus completed (bolus #1) at 2026-01-05 09:00:00" in first, first
