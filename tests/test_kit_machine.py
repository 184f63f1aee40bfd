"""``PumpStateMachine`` with every adapter: a device that is an ``itb.Pump`` never diverges, and
mutants of it with one bug each (cancel ignored, stall ignored, lockout ignored, a late alarm, a
missing alarm) are caught — by volume, by the patient activation's outcome, or by the alarms.
Actions a subclass declares unsupported are never sent."""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import timedelta

import itb
import itb.scenario
import pytest
from _kit_devices import SEEDS, T0, PumpAsDevice, over_seeds
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
    """Pooled over four seeds (20 + 10 examples each), every action is sent at least 5 times and
    each reservoir and fault alarm raised at least 5 times (the rarest — bridge, resume, cancel —
    come about 40-50 times: the bound holds with a wide margin when the draws change)."""
    seen: Counter = Counter()
    alarms: Counter = Counter()

    class Recording(PumpAsDevice):
        report_coverage = False

        def teardown(self):
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

    over_seeds(Recording, int(20 * SCALE), seeds=SEEDS[:4])
    over_seeds(ConcentrationChanges, int(10 * SCALE), seeds=SEEDS[:4])
    # every action sent (bridge and priming boluses only where the pump plans one)
    few = {a: seen[a] for a in ACTIONS if seen[a] < 5}
    assert not few, (few, seen)
    few = {k: alarms[k] for k in ("low_reservoir", "reservoir_empty", "fault") if alarms[k] < 5}
    assert not few, (few, alarms)


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
    """Pooled over six seeds: about half of the refills change the strength (0.3..0.8; about 0.5
    is drawn), and a refill to a stronger drug is followed at once by the bridge bolus at least
    half of the time (3 of 4 is drawn when the pump plans one)."""
    sent: list[
        tuple[str, int]
    ] = []  # ("refill", +1 stronger / -1 weaker / 0 same) or ("bridge", 0)

    class Counting(PumpAsDevice):
        unsupported = frozenset(ACTIONS) - {"refill", "start_bridge_bolus", "set_program"}
        report_coverage = False

        def device_start(self, pump):
            super().device_start(pump)
            sent.append(("start", 0))

        def device_start_bridge_bolus(self, plan):
            sent.append(("bridge", 0))
            return super().device_start_bridge_bolus(plan)

        def device_refill(self, added_ml, concentration_ug_per_ml):
            old = self.dev.concentration_ug_per_ml
            sent.append(
                ("refill", (concentration_ug_per_ml > old) - (concentration_ug_per_ml < old))
            )
            super().device_refill(added_ml, concentration_ug_per_ml)

    over_seeds(Counting, 15, steps=10)
    refills = [d for k, d in sent if k == "refill"]
    changed = sum(d != 0 for d in refills)
    assert len(refills) >= 60 and 0.3 <= changed / len(refills) <= 0.8, (changed, len(refills))
    stronger = [i for i, (k, d) in enumerate(sent) if k == "refill" and d > 0]
    bridged = sum(i + 1 < len(sent) and sent[i + 1][0] == "bridge" for i in stronger)
    assert len(stronger) >= 15 and bridged >= len(stronger) / 2, (bridged, len(stronger))
    with pytest.raises(ValueError, match="concentration_changes must be"):
        type("Bad", (PumpAsDevice,), {"concentration_changes": True})
    sent.clear()
    Counting.concentration_changes = "always"
    over_seeds(Counting, 5, steps=10, seeds=(0, 1))
    refills = [d for k, d in sent if k == "refill"]
    assert len(refills) >= 10 and all(refills), refills


def test_no_op_activations_are_not_drawn_unless_asked():
    """With patient boluses disabled, an activation answers ``not_enabled`` and changes nothing:
    by default at most one is drawn per disabled period (a shrunk counter-example holds at most
    one) — in every example of six seeds; ``noop_steps = True`` draws them freely."""
    per_example: list[int] = []

    class Disabled(PumpAsDevice):
        unsupported = frozenset(ACTIONS) - {"patient_bolus"}
        patient_limits_at_start = False
        report_coverage = False

        def teardown(self):
            per_example.append(sum(t.endswith("-> not_enabled") for t in self.trace))

    over_seeds(Disabled, 20, steps=15)
    assert len(per_example) >= 100 and max(per_example) == 1, per_example
    assert sum(per_example) >= 50, per_example  # the first one is still drawn
    per_example.clear()
    Disabled.noop_steps = True
    over_seeds(Disabled, 20, steps=15)
    assert sum(n >= 3 for n in per_example) >= 20, per_example
    with pytest.raises(TypeError, match="noop_steps must be True or False"):
        type("Bad", (PumpAsDevice,), {"noop_steps": "yes"})


def test_a_refill_repeated_at_once_is_not_sent_unless_asked():
    """A refill right after a refill, at the same strength and with the volume the reservoir then
    holds, changes nothing a device shows: by default it is drawn but not sent (no trace entry, no
    device call), so no counter-example holds one; ``noop_steps = True`` sends it. Any other refill
    after a refill (another volume or strength) is still sent."""
    pairs: list[tuple[int, int]] = []  # (identical back-to-back refills, other back-to-back ones)

    class Refills(PumpAsDevice):
        unsupported = frozenset(ACTIONS) - {"refill"}
        report_coverage = False
        refill_ml = (0.5, 0.502)  # three volumes: repeats are common
        concentrations = (2000, 1000)

        def device_start(self, pump):
            super().device_start(pump)
            self.sent: list[tuple] = []

        def device_advance(self, until):
            self.sent.append(("advance", until))
            super().device_advance(until)

        def device_refill(self, added_ml, concentration_ug_per_ml):
            self.sent.append(("refill", added_ml, concentration_ug_per_ml))
            super().device_refill(added_ml, concentration_ug_per_ml)

        def teardown(self):
            same = other = 0
            for a, b in zip(self.sent, self.sent[1:]):
                if a[0] == b[0] == "refill":
                    same, other = (same + 1, other) if a == b else (same, other + 1)
            pairs.append((same, other))

    reached = over_seeds(Refills, 30, steps=12)
    assert len(pairs) >= 150 and sum(s for s, _ in pairs) == 0, pairs
    assert sum(o for _, o in pairs) >= 20, pairs  # other refills in a row are still sent
    assert reached["refill: duplicate skipped"] >= 20, reached
    pairs.clear()
    Refills.noop_steps = True
    over_seeds(Refills, 30, steps=12)
    assert sum(s for s, _ in pairs) >= 20, pairs


def test_delivery_boundaries_catch_a_device_a_moment_ahead():
    """A device that makes every stroke 1 ms early (its clock runs 1 ms ahead) differs from the
    oracle only in the millisecond before each stroke. Advances to the delivery boundaries (the
    next stroke − 1 ms among them) land there; the boundaries drawn are the ones named."""

    class OneMsAhead(PumpAsDevice):
        unsupported = frozenset(ACTIONS) - {"set_program", "bolus"}
        delivery_boundaries = True
        report_coverage = False

        def device_alarms(self):
            return None

        def device_observed(self):
            ahead = self.dev.copy()
            ahead.advance_to(self.dev.now + timedelta(milliseconds=1))
            return ahead.pumped_nl

    caught = 0
    for seed in SEEDS[:4]:
        try:
            over_seeds(OneMsAhead, 30, steps=15, seeds=(seed,))
        except AssertionError as exc:
            assert "over by 2000 nL = 1 stroke(s)" in str(exc), exc
            caught += 1
    assert caught == 4, caught

    class Reaching(OneMsAhead):
        def device_observed(self):
            return self.dev.pumped_nl

    reached = over_seeds(Reaching, 20, steps=15, seeds=SEEDS[:2])
    for name in (
        "the next stroke",
        "a bolus's end",
        "midnight",
        "Monday 00:00",
        "the next flex step",
    ):
        assert reached[f"advance to: {name}"] >= 3, (name, reached)
    with pytest.raises(TypeError, match="delivery_boundaries must be True or False"):
        type("Bad", (PumpAsDevice,), {"delivery_boundaries": 1})
