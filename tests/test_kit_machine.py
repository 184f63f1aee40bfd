"""``PumpStateMachine`` with every adapter: a device that is an ``itb.Pump`` never diverges, and
mutants of it with one bug each (cancel ignored, stall ignored, lockout ignored, a late alarm, a
missing alarm) are caught — by volume, by the patient activation's outcome, or by the alarms.
Actions a subclass declares unsupported are never sent."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import itb
import itb.scenario
import pytest
from _kit_devices import T0, PumpAsDevice
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from itb.testing import PumpStateMachine
from itb.testing.machine import ACTIONS

SCALE = float(os.environ.get("ITB_HYPOTHESIS_SCALE", "1"))
# detection only: no shrinking (the examples' own test checks shrinking)
HUNT = settings(
    max_examples=int(150 * SCALE),
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
)


def test_every_action_has_an_adapter_and_a_rule():
    # every action a scenario (a device) can receive, but the fault actions the kit does not
    # drive yet (itb.scenario.FAULT_ACTIONS)
    assert set(ACTIONS) == set(itb.scenario.ACTIONS) - set(itb.scenario.FAULT_ACTIONS)
    for name in ACTIONS:
        assert callable(getattr(PumpStateMachine, f"device_{name}")), name
        assert callable(getattr(PumpStateMachine, name)), name  # the rule
        assert getattr(PumpAsDevice, f"device_{name}") is not getattr(
            PumpStateMachine, f"device_{name}"
        ), name


def test_a_pump_as_device_never_diverges_and_every_action_runs():
    seen: set = set()
    alarms: set = set()

    class Recording(PumpAsDevice):
        def teardown(self):
            seen.update(self.calls)
            seen.update(t.split("(")[0] for t in self.trace)
            alarms.update(kind for _t, kind in self.device_alarms() or [])

    class ConcentrationChanges(
        Recording
    ):  # more chances of a bridge bolus (refill with a stronger drug)
        unsupported = frozenset(ACTIONS) - {
            "set_program",
            "refill",
            "start_bridge_bolus",
            "start_priming_bolus",
            "revise_catheter",
            "cancel_bolus",
        }

    run_state_machine_as_test(Recording, settings=settings(HUNT, max_examples=int(80 * SCALE)))
    run_state_machine_as_test(
        ConcentrationChanges, settings=settings(HUNT, max_examples=int(30 * SCALE))
    )
    # the runs reached every action (bridge and priming boluses only where the pump plans one)
    missing = {a for a in ACTIONS if a not in seen}
    assert not missing, (missing, " ".join(sorted(seen)))
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
            except (
                itb.ItbError
            ):  # the uncancelled bolus leaves no room: the device drops the new one
                return None

    msg = _caught(IgnoresCancel)
    # it pumps too much, or (when both run dry) raises its reservoir alarms too early
    assert ("over by" in msg or "alarms diverged" in msg) and "cancel_bolus(#" in msg, msg


def test_a_device_that_ignores_a_stall_is_caught():
    class PumpsThroughAStall(PumpAsDevice):
        def device_inject_motor_stall(self):
            self.stalls = getattr(self, "stalls", []) + [
                (self.dev.now, "fault")
            ]  # the alarm, but it keeps pumping

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
    # reported as late, by how much (not as missing plus unexpected)
    assert "device alarms diverged first at" in msg and "late by 0:02:00: expected at" in msg, msg
    assert "missing" not in msg and "unexpected" not in msg, msg
    msg = _caught(NoFaultAlarm)
    assert (
        "'fault'" in msg
        and "the device never raised fault" in msg
        and "inject_motor_stall()" in msg
    ), msg
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

    run_state_machine_as_test(
        NoBolusNoRefill, settings=settings(HUNT, max_examples=int(30 * SCALE))
    )


def test_delayed_boluses_are_sent_with_their_start():
    starts = []

    class Delayed(PumpAsDevice):
        max_bolus_start = timedelta(hours=6)
        unsupported = frozenset(ACTIONS) - {"set_program", "bolus", "cancel_bolus"}

        def device_bolus(self, dose_ug, duration, start=None):
            assert (
                start is not None and self.dev.now <= start <= self.dev.now + self.max_bolus_start
            )
            starts.append(start > self.dev.now)
            return ("dev", self.dev.bolus(dose_ug, duration, start=start))

    run_state_machine_as_test(Delayed, settings=settings(HUNT, max_examples=int(20 * SCALE)))
    assert True in starts and False in starts  # delayed and immediate ones


# ----- subclass mistakes are refused, not passed silently ------------------------------------------


def test_a_misspelled_adapter_is_refused_naming_the_allowed_ones():
    with pytest.raises(TypeError, match=r"Typo\.device_refil is not an adapter.*device_refill"):

        class Typo(PumpAsDevice):
            def device_refil(self, added_ml, concentration_ug_per_ml):
                pass

    with pytest.raises(TypeError, match=r"device_obsreved is not an adapter"):

        class TypoObserved(PumpStateMachine):
            def device_advance(self, until):
                pass

            def device_obsreved(self):
                return 0

    class Helper(PumpAsDevice):  # a non-method attribute with the prefix is fine
        device_class = itb.Pump


@pytest.mark.parametrize(
    "unsupported, error, match",
    [
        ("cancel_bolus", TypeError, r"Bad\.unsupported must be a set or frozenset"),
        (["refill"], TypeError, r"Bad\.unsupported must be a set or frozenset"),
        (
            frozenset({"refil", "bolus_cancel"}),
            ValueError,
            r"Bad\.unsupported: unknown action\(s\) \['bolus_cancel', 'refil'\]",
        ),
    ],
)
def test_unsupported_must_be_a_set_of_known_actions(unsupported, error, match):
    with pytest.raises(error, match=match):
        type("Bad", (PumpAsDevice,), {"unsupported": unsupported})

    # assigned after the class was made: refused when the machine runs
    class Late(PumpAsDevice):
        pass

    Late.unsupported = unsupported
    with pytest.raises(error, match=match.replace("Bad", "Late")):
        Late()


def test_a_machine_that_observes_nothing_is_refused():
    class Empty(PumpStateMachine):
        pass

    class NoObservation(PumpStateMachine):
        def device_advance(self, until):
            pass

    with pytest.raises(
        TypeError, match="overrides no device_advance and no device_observed or device_alarms"
    ):
        Empty()
    with pytest.raises(
        TypeError, match=r"NoObservation overrides no device_observed or device_alarms"
    ):
        NoObservation()
    with pytest.raises(ValueError, match="tol_strokes must be a whole number of strokes >= 0"):
        type("Negative", (PumpAsDevice,), {"tol_strokes": -1})


# ----- divergence messages and concentration changes ------------------------------------------------


def test_divergence_names_the_window_and_the_oracles_stroke_times():
    """A device that loses the first stroke after a refill, checked only after a long advance: the
    message gives the last agreeing check and the oracle's stroke times in between (08:14:24 is the
    first stroke after the 08:00 refill), not only the time of the check."""
    m = PumpAsDevice()
    m._start()
    m.device_matches_oracle()
    m.oracle.call("refill", added_ml=1.0, concentration_ug_per_ml=2000)
    m.trace.append("refill(1.0 mL, 2000 µg/mL)")
    m.dev.refill(1.0, 2000)
    m.oracle.advance_to(T0 + timedelta(days=2))
    m.dev.advance_to(T0 + timedelta(days=2))
    m.device_observed = lambda: m.dev.pumped_nl - 2000  # the stroke it lost
    with pytest.raises(AssertionError) as err:
        m.device_matches_oracle()
    msg = str(err.value)
    assert msg.startswith(
        "device diverged between 2026-01-05 08:00:00 (last agreeing check, after 0 operation(s)) "
        "and 2026-01-07 08:00:00 (detected)"
    ), msg
    assert "under by 2000 nL = 1 stroke(s) (tolerance 0)" in msg, msg
    # 400 µg/day at 2000 µg/mL: a stroke every 14.4 min from 08:00, 200 in two days
    assert (
        "the oracle's strokes in between: #1 at 2026-01-05 08:14:24 … #200 at 2026-01-07 08:00:00"
        in msg
    ), msg
    assert "the first stroke the device lacks: #200 at 2026-01-07 08:00:00" in msg, msg
    assert msg.endswith("after 1 operations:\n  refill(1.0 mL, 2000 µg/mL)"), msg
    m.device_observed = lambda: m.dev.pumped_nl + 2000  # a stroke too many
    with pytest.raises(
        AssertionError,
        match=r"over by 2000 nL = 1 stroke\(s\).*the device made stroke #201, which "
        r"the oracle makes only at 2026-01-07 08:14:24",
    ):
        m.device_matches_oracle()


def test_refills_change_the_strength_often_and_bridge_boluses_follow():
    refills: list = []
    bridges: list = []

    class Counting(PumpAsDevice):
        unsupported = frozenset(ACTIONS) - {"refill", "start_bridge_bolus", "set_program"}

        def device_start_bridge_bolus(self, plan):
            bridges.append(self.trace[-1])  # the refill to a stronger drug just before it
            return super().device_start_bridge_bolus(plan)

        def device_refill(self, added_ml, concentration_ug_per_ml):
            refills.append(concentration_ug_per_ml != self.dev.concentration_ug_per_ml)
            super().device_refill(added_ml, concentration_ug_per_ml)

    run_state_machine_as_test(
        Counting, settings=settings(HUNT, max_examples=15, stateful_step_count=10)
    )
    assert len(refills) >= 20 and 0.3 <= sum(refills) / len(refills) <= 0.8, (
        sum(refills),
        len(refills),
    )
    assert len(bridges) >= 3 and all(b.startswith("refill(") for b in bridges), bridges
    with pytest.raises(ValueError, match="concentration_changes must be"):
        type("Bad", (PumpAsDevice,), {"concentration_changes": True})
    refills.clear()
    Counting.concentration_changes = "always"
    run_state_machine_as_test(
        Counting, settings=settings(HUNT, max_examples=5, stateful_step_count=10)
    )
    assert refills and all(refills), refills


def test_no_op_activations_are_not_drawn_unless_asked():
    """With patient boluses disabled, an activation answers ``not_enabled`` and changes nothing:
    by default at most one is drawn per disabled period (a shrunk counter-example holds at most
    one); ``noop_steps = True`` draws them freely."""
    per_example: list[int] = []

    class Disabled(PumpAsDevice):
        unsupported = frozenset(ACTIONS) - {"patient_bolus"}
        patient_limits_at_start = False

        def teardown(self):
            per_example.append(sum(t.endswith("-> not_enabled") for t in self.trace))

    few = settings(HUNT, max_examples=20, stateful_step_count=15)
    run_state_machine_as_test(Disabled, settings=few)
    assert per_example and max(per_example) == 1, per_example
    per_example.clear()
    Disabled.noop_steps = True
    run_state_machine_as_test(Disabled, settings=few)
    assert max(per_example) >= 3, per_example
    with pytest.raises(TypeError, match="noop_steps must be True or False"):
        type("Bad", (PumpAsDevice,), {"noop_steps": "yes"})
