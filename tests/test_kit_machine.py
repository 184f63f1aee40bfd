"""``PumpStateMachine`` with every adapter: a device that is an ``itb.Pump`` never diverges, and
mutants of it with one bug each (cancel ignored, stall ignored, lockout ignored, a late alarm, a
missing alarm) are caught — by volume, by the patient activation's outcome, or by the alarms.
Actions a subclass declares unsupported are never sent."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import itb
import itb.scenario
from itb.testing import PumpStateMachine
from itb.testing.machine import ACTIONS

T0 = datetime(2026, 1, 5, 8, 0)
SCALE = float(os.environ.get("ITB_HYPOTHESIS_SCALE", "1"))
# detection only: no shrinking (the examples' own test checks shrinking)
HUNT = settings(max_examples=int(150 * SCALE), stateful_step_count=25, deadline=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate])


class PumpAsDevice(PumpStateMachine):
    """A 'device' that is an itb.Pump of its own, driven only through the adapters."""

    tol_strokes = 0
    program_kinds = ("continuous", "flex_day", "flex_week")
    concentrations = (4000, 2000, 1000)
    daily_dose_ug = (200, 1000)  # valid at every one of those strengths
    max_advance = timedelta(days=5)
    refill_ml = (0.5, 3.0)

    def make_pump(self):
        # 2.1 mL of 2000 µg/mL with a 200 µL catheter: low reservoir (2 mL) and empty within days
        return itb.Pump(itb.models.SYNCHROMED_II_40, now=T0, reservoir_ml=2.1, concentration_ug_per_ml=2000,
                        program=itb.Continuous(ug_per_day=400), catheter_volume_ul=200.0)

    def device_start(self, pump):
        self.dev, self.log, self.calls = pump, [], []

    def device_advance(self, until):
        self.log += self.dev.advance_to(until)

    def device_set_program(self, program):
        self.dev.set_program(program)

    def device_bolus(self, dose_ug, duration):
        return ("dev", self.dev.bolus(dose_ug, duration))

    def device_cancel_bolus(self, handle):
        tag, bolus_id = handle
        assert tag == "dev", handle  # the machine hands back the device's own handle
        self.calls.append("cancel")
        self.dev.cancel_bolus(bolus_id)

    def device_refill(self, added_ml, concentration_ug_per_ml):
        self.dev.refill(added_ml, concentration_ug_per_ml)

    def _planned(self, plan, kind):
        try:
            own = getattr(self.dev, f"{kind}_bolus_plan")()
            assert plan == own, (plan, own)  # the plan handed over is the device's own
            self.calls.append(kind)
            return ("dev", getattr(self.dev, f"start_{kind}_bolus")())
        except itb.ItbError as exc:
            raise AssertionError(f"the device refused the {kind} bolus: {exc}") from None

    def device_start_bridge_bolus(self, plan):
        return self._planned(plan, "bridge")

    def device_start_priming_bolus(self, plan):
        return self._planned(plan, "priming")

    def device_set_patient_bolus_limits(self, dose_ug, duration, lockout, max_per_24h):
        self.limits = (dose_ug, duration)
        self.dev.set_patient_bolus_limits(dose_ug, duration, lockout, max_per_24h)

    def device_patient_bolus(self):
        r = self.dev.patient_bolus()
        self.calls.append(r.reason)
        return SimpleNamespace(granted=r.granted, reason=r.reason, bolus_id=("dev", r.bolus_id))

    def device_suspend(self):
        self.dev.suspend()

    def device_resume(self):
        self.dev.resume()

    def device_inject_motor_stall(self):
        self.dev.inject_motor_stall()

    def device_clear_fault(self):
        self.dev.clear_fault()

    def device_revise_catheter(self, volume_ul):
        self.dev.revise_catheter(volume_ul)

    def device_telemetry_session(self):
        self.dev.telemetry_session()

    def device_observed(self):
        return self.dev.pumped_nl

    def device_alarms(self):
        self.log += self.dev.advance_to(self.dev.now)  # the events of the latest calls
        return [(e.time, e.kind) for e in self.log if e.severity is not None]


def test_every_action_has_an_adapter_and_a_rule():
    assert set(ACTIONS) == set(itb.scenario.ACTIONS)  # every action a scenario (a device) can receive
    for name in ACTIONS:
        assert callable(getattr(PumpStateMachine, f"device_{name}")), name
        assert callable(getattr(PumpStateMachine, name)), name  # the rule
        assert getattr(PumpAsDevice, f"device_{name}") is not getattr(PumpStateMachine, f"device_{name}"), name


def test_a_pump_as_device_never_diverges_and_every_action_runs():
    seen: set = set()
    alarms: set = set()

    class Recording(PumpAsDevice):
        def teardown(self):
            seen.update(self.calls)
            seen.update(t.split("(")[0] for t in self.trace)
            alarms.update(kind for _t, kind in self.device_alarms() or [])

    class ConcentrationChanges(Recording):  # more chances of a bridge bolus (refill with a stronger drug)
        unsupported = frozenset(ACTIONS) - {"set_program", "refill", "start_bridge_bolus", "start_priming_bolus",
                                            "revise_catheter", "cancel_bolus"}

    run_state_machine_as_test(Recording, settings=settings(HUNT, max_examples=int(60 * SCALE)))
    run_state_machine_as_test(ConcentrationChanges, settings=settings(HUNT, max_examples=int(30 * SCALE)))
    # the runs reached every action (bridge and priming boluses only where the pump plans one)
    missing = {a for a in ACTIONS if a not in seen}
    assert not missing, missing
    assert {"low_reservoir", "reservoir_empty", "fault"} <= alarms, alarms


def _caught(machine) -> str:
    with pytest.raises(AssertionError) as err:
        run_state_machine_as_test(machine, settings=HUNT)
    msg = str(err.value)
    assert re.search(r"after \d+ operations:\n", msg), msg
    return msg


def test_a_device_that_ignores_cancel_is_caught():
    class IgnoresCancel(PumpAsDevice):
        unsupported = frozenset(ACTIONS) - {"set_program", "bolus", "cancel_bolus"}

        def device_cancel_bolus(self, handle):
            pass

        def device_bolus(self, dose_ug, duration):
            try:
                return super().device_bolus(dose_ug, duration)
            except itb.ItbError:  # the uncancelled bolus leaves no room: the device drops the new one
                return None

    msg = _caught(IgnoresCancel)
    # it pumps too much, or (when both run dry) raises its reservoir alarms too early
    assert ("over by" in msg or "alarms diverged" in msg) and "cancel_bolus(#" in msg, msg


def test_a_device_that_ignores_a_stall_is_caught():
    class PumpsThroughAStall(PumpAsDevice):
        def device_inject_motor_stall(self):
            self.stalls = getattr(self, "stalls", []) + [(self.dev.now, "fault")]  # the alarm, but it keeps pumping

        def device_clear_fault(self):
            pass

        def device_alarms(self):
            return super().device_alarms() + getattr(self, "stalls", [])

    unsupported_rest = frozenset(ACTIONS) - {"set_program", "inject_motor_stall", "clear_fault"}
    PumpsThroughAStall.unsupported = unsupported_rest
    msg = _caught(PumpsThroughAStall)
    assert ("over by" in msg or "alarms diverged" in msg) and "inject_motor_stall()" in msg, msg


def test_a_device_that_ignores_the_lockout_is_caught():
    class NoLockout(PumpAsDevice):
        def device_patient_bolus(self):
            r = self.dev.patient_bolus()
            if r.reason == "lockout":  # BUG: grants it anyway
                try:
                    self.dev.bolus(*self.limits)
                except itb.ItbError:
                    pass
                return True
            return r.granted

    NoLockout.unsupported = frozenset(ACTIONS) - {"set_patient_bolus_limits", "patient_bolus"}
    msg = _caught(NoLockout)
    assert "patient activation: expected False (lockout), the device answered True" in msg, msg


def test_late_and_missing_alarms_are_caught():
    class LateAlarms(PumpAsDevice):
        def device_alarms(self):
            return [(t + timedelta(minutes=2), kind) for t, kind in super().device_alarms()]

    class NoFaultAlarm(PumpAsDevice):
        def device_alarms(self):
            return [(t, kind) for t, kind in super().device_alarms() if kind != "fault"]

    msg = _caught(LateAlarms)
    assert "device alarms diverged first at" in msg and "is missing; the device raised" in msg, msg
    msg = _caught(NoFaultAlarm)
    assert "'fault'" in msg and "the device never raised fault" in msg and "inject_motor_stall()" in msg, msg
    # within the tolerance the late device passes
    LateAlarms.alarm_tol = timedelta(minutes=2)
    run_state_machine_as_test(LateAlarms, settings=settings(HUNT, max_examples=int(30 * SCALE)))


def test_unsupported_actions_are_never_sent():
    class NoBolusNoRefill(PumpAsDevice):
        unsupported = frozenset({"bolus", "refill", "cancel_bolus"})

        def device_bolus(self, dose_ug, duration):
            raise AssertionError("bolus sent")

        def device_refill(self, added_ml, concentration_ug_per_ml):
            raise AssertionError("refill sent")

        def device_cancel_bolus(self, handle):
            raise AssertionError("cancel sent")

    run_state_machine_as_test(NoBolusNoRefill, settings=settings(HUNT, max_examples=int(30 * SCALE)))


def test_delayed_boluses_are_sent_with_their_start():
    starts = []

    class Delayed(PumpAsDevice):
        max_bolus_start = timedelta(hours=6)
        unsupported = frozenset(ACTIONS) - {"set_program", "bolus", "cancel_bolus"}

        def device_bolus(self, dose_ug, duration, start=None):
            assert start is not None and self.dev.now <= start <= self.dev.now + self.max_bolus_start
            starts.append(start > self.dev.now)
            return ("dev", self.dev.bolus(dose_ug, duration, start=start))

    run_state_machine_as_test(Delayed, settings=settings(HUNT, max_examples=int(20 * SCALE)))
    assert True in starts and False in starts  # delayed and immediate ones
