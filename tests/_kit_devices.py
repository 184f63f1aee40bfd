"""Devices under test for the testing kit's own tests: an ``itb.Pump`` driven only through the
``PumpStateMachine`` adapters, and patient-bolus mutants of it (each with one realistic bug in its
own patient-bolus logic, written here in plain Python independently of the core)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from types import SimpleNamespace

import itb
from itb.testing import PumpStateMachine
from itb.testing.machine import ACTIONS

T0 = datetime(2026, 1, 5, 8, 0)
DAY = timedelta(days=1)


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
        return itb.Pump(
            itb.models.SYNCHROMED_II_40,
            now=T0,
            reservoir_ml=2.1,
            concentration_ug_per_ml=2000,
            program=itb.Continuous(ug_per_day=400),
            catheter_volume_ul=200.0,
        )

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


#: the patient-bolus bugs a device may have (None: the correct rules)
MUTANTS = ("lockout_strict", "calendar_day", "grant_24h_old_counted", "lockout_from_denials")


class PatientLogic:
    """A device's own patient-bolus rules (lockout from the last grant, at most ``max_per_24h``
    grants in any rolling 24 h — a grant exactly 24 h old no longer counts), with ``mutant`` one
    of :data:`MUTANTS` or None."""

    def __init__(self, mutant: str | None = None) -> None:
        assert mutant is None or mutant in MUTANTS, mutant
        self.mutant = mutant
        self.limits = None
        self.grants: list[datetime] = []
        self.last_attempt: datetime | None = None

    def decide(self, now: datetime) -> str:
        """ "granted", "lockout" or "daily_maximum" by the limits alone (the limits are set)."""
        _dose, _duration, lockout, max_per_24h = self.limits
        last = (
            self.last_attempt
            if self.mutant == "lockout_from_denials"
            else (self.grants[-1] if self.grants else None)
        )
        if last is not None:
            waited = now - last
            if (
                (waited <= lockout and lockout > timedelta(0))
                if self.mutant == "lockout_strict"
                else (waited < lockout)
            ):
                return "lockout"
        if self.mutant == "calendar_day":
            counted = [g for g in self.grants if g.date() == now.date()]
        elif self.mutant == "grant_24h_old_counted":
            counted = [g for g in self.grants if g >= now - DAY]
        else:
            counted = [g for g in self.grants if g > now - DAY]
        return "daily_maximum" if len(counted) >= max_per_24h else "granted"


class PatientDevice(PumpAsDevice):
    """An ``itb.Pump`` for delivery whose patient-bolus decision is its own :class:`PatientLogic`
    (the pump's state — disabled, suspended, fault, empty, EOS — is asked first)."""

    mutant: str | None = None
    max_advance = timedelta(days=2)  # the kit's default

    def make_pump(self):  # full: the patient rules, not an empty reservoir, decide
        return itb.Pump(
            itb.models.SYNCHROMED_II_40,
            now=T0,
            reservoir_ml=20.0,
            concentration_ug_per_ml=2000,
            program=itb.Continuous(ug_per_day=400),
            catheter_volume_ul=200.0,
        )

    def device_start(self, pump):
        super().device_start(pump)
        self.logic = PatientLogic(self.mutant)

    def device_set_patient_bolus_limits(self, dose_ug, duration, lockout, max_per_24h):
        super().device_set_patient_bolus_limits(dose_ug, duration, lockout, max_per_24h)
        self.logic.limits = None if dose_ug is None else (dose_ug, duration, lockout, max_per_24h)

    def device_patient_bolus(self):
        now = self.dev.now
        probe = self.dev.copy().patient_bolus()
        if probe.reason in (
            "not_enabled",
            "end_of_service",
            "suspended",
            "fault",
            "reservoir_empty",
        ):
            return super().device_patient_bolus()
        reason = self.logic.decide(now)
        self.logic.last_attempt = now
        if reason != "granted":
            return SimpleNamespace(granted=False, reason=reason, bolus_id=None)
        if not probe.granted and probe.reason not in ("lockout", "daily_maximum"):
            return super().device_patient_bolus()  # the rate or the reservoir refuses it
        self.logic.grants.append(now)
        if probe.granted:
            return super().device_patient_bolus()
        dose, duration = self.logic.limits[:2]  # the bug grants what the pump would not
        return SimpleNamespace(
            granted=True, reason="granted", bolus_id=("dev", self.dev.bolus(dose, duration))
        )


#: the actions of a patient-only run
PATIENT_ACTIONS = frozenset({"set_patient_bolus_limits", "patient_bolus", "set_program", "bolus"})


def patient_machine(mutant: str | None, everything: bool) -> type:
    """A machine class driving a :class:`PatientDevice` with ``mutant``: every action, or the
    patient actions only (limits, activations, advances; programs and timed boluses)."""
    unsupported = frozenset() if everything else frozenset(ACTIONS) - PATIENT_ACTIONS
    return type(
        f"Patient_{mutant}_{'all' if everything else 'patient'}",
        (PatientDevice,),
        {"mutant": mutant, "unsupported": unsupported},
    )


def caught(machine: type, seed: int, examples: int = 300) -> bool:
    """Whether ``machine`` fails within ``examples`` examples from hypothesis seed ``seed`` (no
    shrinking, no database: detection only)."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import seed as with_seed
    from hypothesis.stateful import get_state_machine_test

    test = get_state_machine_test(
        machine,
        settings=settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    try:
        with_seed(seed)(test)()
    except AssertionError:
        return True
    return False


#: the hypothesis seeds the distribution tests pool over: each seed is an independent example
#: stream, so a count pooled over them (asserted with a wide margin) does not hang on one stream —
#: a change in what the machine draws moves it a little, never across the bound
SEEDS = (0, 1, 2, 3, 4, 5)


def over_seeds(
    machine: type, examples: int, steps: int = 25, seeds: tuple[int, ...] = SEEDS
) -> Counter:
    """Run ``machine`` once per hypothesis seed (``examples`` examples of at most ``steps`` steps,
    no shrinking, no database), through :func:`itb.testing.machine.run` (a seed, not the test's
    name, fixes the stream); the cases reached (its ``coverage``), summed over the seeds."""
    from hypothesis import HealthCheck, Phase, settings
    from itb.testing.machine import run

    chosen = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    reached: Counter = Counter()
    for seed in seeds:
        reached += run(machine, chosen, seed=seed)
    return reached
