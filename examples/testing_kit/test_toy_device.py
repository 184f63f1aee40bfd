"""Testing a device with the itb testing kit: the toy pump of ``toy_device.py`` driven by a
``PumpStateMachine`` against the oracle. Run with ``pytest examples/testing_kit``.

``TestToyPump`` passes; ``test_buggy_toy_pump_is_caught`` shows the kit finding the seeded bug
(the accumulator restarted on a program change) with a short counter-example, placed at the first
stroke the device lacks and the program change before it. ``test_buggy_patient_logic_is_caught``
shows the patient-bolus exploration (activations at the lockout's end, 24 h after a grant, …)
finding a lockout restarted by refused activations. ``test_a_long_lived_toy_pump`` runs the
machine in no-reset mode: one toy pump for the whole run, each example after the first starting
from its state read back. They run through the kit's ``run()``: the machines' ``seed`` fixes the
example stream (not the test's name) and ``shrink_budget`` caps the time spent shrinking a failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import pytest
from hypothesis import Phase, settings
from itb.testing import PumpStateMachine, assert_delivery_matches
from itb.testing.machine import ACTIONS, run
from toy_device import BuggyPatientBolusLogic, BuggyToyPump, PatientBolusLogic, ToyPump


class ToyPumpMachine(PumpStateMachine):
    tol_strokes = 0  # observed synchronously, and the toy claims exact integer accounting
    device_class = ToyPump
    seed = 11  # a stable example stream, whatever the class or the test is called
    shrink_budget = timedelta(seconds=30)  # report the smallest failure found within 30 s

    def device_start(self, pump):
        self.dev = self.device_class(
            stroke_nl=pump.model.stroke_nl,
            reservoir_nl=pump.reservoir_nl,
            conc_ug_per_ml=pump.concentration_ug_per_ml,
            ug_per_day=pump.program.ug_per_day,
            now=pump.now,
        )

    def device_advance(self, until: datetime):
        self.dev.run_until(until)

    def device_set_program(self, program):
        self.dev.set_program(program.ug_per_day)

    def device_suspend(self):
        self.dev.suspend()

    def device_resume(self):
        self.dev.resume()

    def device_observed(self):
        return self.dev.pumped_nl

    # device_bolus / device_refill are not implemented: those rules are skipped


class BuggyToyPumpMachine(ToyPumpMachine):
    device_class = BuggyToyPump


TestToyPump = ToyPumpMachine.TestCase
TestToyPump.settings = settings(
    max_examples=50, stateful_step_count=20, deadline=None, derandomize=True
)


# no "explain" phase: it would re-run the shrunk example many times to annotate it (slow)
BUG_HUNT = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


@pytest.mark.itb_device
def test_buggy_toy_pump_is_caught():
    with pytest.raises(AssertionError, match="set_program") as caught:
        run(BuggyToyPumpMachine, BUG_HUNT)  # the kit's runner: seed, shrink budget, coverage
    print(caught.value)


class ToyPatientMachine(PumpStateMachine):
    """Only the patient-bolus decision is under test: limits and activations (the machine
    advances time, mostly to the instants where the rules change)."""

    unsupported = frozenset(ACTIONS) - {"set_patient_bolus_limits", "patient_bolus"}
    bolus_dose_ug = (1, 5)  # small boluses: the reservoir never runs dry within an example
    logic_class = PatientBolusLogic
    seed = 2026  # a stable stream, whatever the class is called
    report_coverage = False

    def device_start(self, pump):
        self.logic, self.now = self.logic_class(), pump.now

    def device_advance(self, until):
        self.now = until

    def device_set_patient_bolus_limits(self, dose_ug, duration, lockout, max_per_24h):
        self.logic.set_limits(None if dose_ug is None else lockout, max_per_24h)

    def device_patient_bolus(self):
        return self.logic.activate(self.now)  # a reason: compared with the oracle's at once

    def device_observed(self):
        return None  # no delivery here: the answers are what is compared


class BuggyToyPatientMachine(ToyPatientMachine):
    logic_class = BuggyPatientBolusLogic


PATIENT_HUNT = settings(BUG_HUNT, max_examples=100, report_multiple_bugs=False)


@pytest.mark.itb_device
def test_toy_patient_logic_passes():
    run(ToyPatientMachine, PATIENT_HUNT)


@pytest.mark.itb_device
def test_buggy_patient_logic_is_caught():
    with pytest.raises(AssertionError, match="patient activation: expected") as caught:
        run(BuggyToyPatientMachine, PATIENT_HUNT)
    print(caught.value)


@pytest.mark.itb_device
def test_toy_pump_by_hand(itb_oracle):
    """Without hypothesis: the same operations to the device and to the oracle (fixture of the
    itb pytest plugin), then the device's readings checked against it."""
    start = itb_oracle.pump
    dev = ToyPump(
        stroke_nl=start.model.stroke_nl,
        reservoir_nl=start.reservoir_nl,
        conc_ug_per_ml=start.concentration_ug_per_ml,
        ug_per_day=start.program.ug_per_day,
        now=start.now,
    )
    times, volumes = [], []
    t = start.now
    for hours, ug_per_day in [(5, 300), (7, 450), (11, 120), (30, 800)]:
        t += timedelta(hours=hours, minutes=7)
        dev.run_until(t)
        times.append(t)
        volumes.append(dev.pumped_nl)
        dev.set_program(ug_per_day)
        itb_oracle.call("set_program", at=t, program=itb.Continuous(ug_per_day=ug_per_day))
    assert_delivery_matches(times, volumes, itb_oracle, tol_strokes=0)


class LongLivedToyMachine(ToyPumpMachine):
    """Hardware that cannot be reset between examples: one toy pump for the whole run, and each
    example after the first starts from its state read back (docs: guide/testing-kit.md,
    "No-reset mode")."""

    resettable = False
    tol_strokes = 1  # the state read back does not carry the toy's partial stroke
    report_coverage = False

    starts = resyncs = 0

    def device_start(self, pump):  # called once: the device lives on the class
        super().device_start(pump)
        type(self).dev, type(self).ug_per_day = self.dev, pump.program.ug_per_day
        type(self).starts += 1

    def device_set_program(self, program):
        super().device_set_program(program)
        type(self).ug_per_day = program.ug_per_day

    def device_state(self):  # what a programmer would read from the pump
        type(self).resyncs += 1
        return {
            "now": self.dev.now_ms,
            "reservoir_ml": self.dev.reservoir_nl / 1e6,
            "concentration_ug_per_ml": self.dev.conc,
            "program": itb.Continuous(ug_per_day=self.ug_per_day),
        }


@pytest.mark.itb_device
def test_a_long_lived_toy_pump():
    run(
        LongLivedToyMachine,
        settings(max_examples=10, stateful_step_count=10, deadline=None, phases=[Phase.generate]),
        seed=7,
    )
    # one toy pump, started once, lived through every example; each later one was resynced
    assert LongLivedToyMachine.starts == 1
    assert LongLivedToyMachine.resyncs >= 9
