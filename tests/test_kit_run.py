"""``itb.testing.machine.run`` and ``TestCase``: a fixed seed makes the examples independent of
the machine's name; ``must_reach`` fails a run that never reached a named case; the coverage
counts are the cases the rules met."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from _kit_devices import PatientDevice
from hypothesis import HealthCheck, Phase, settings
from itb.testing.machine import ACTIONS, run

FAST = settings(
    max_examples=15,
    stateful_step_count=15,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


class Patient(PatientDevice):
    unsupported = frozenset(ACTIONS) - {"set_patient_bolus_limits", "patient_bolus"}
    report_coverage = False

    def teardown(self):
        type(self).traces.append(tuple(self.trace))


def _named(name: str) -> type:
    return type(name, (Patient,), {"traces": []})


def test_a_seed_gives_the_same_examples_whatever_the_class_is_called():
    a, b = _named("Alpha"), _named("SomethingElseEntirely")
    run(a, FAST, seed=1234)
    run(b, FAST, seed=1234)
    assert a.traces == b.traces and len(a.traces) >= 10
    c = _named("Alpha")
    run(c, FAST, seed=99)
    assert c.traces != a.traces


def test_coverage_counts_and_the_must_reach_gate():
    m = _named("Gate")
    reached = run(m, FAST, seed=7)
    granted = reached["patient_bolus: granted"]
    assert granted >= 1 and granted == sum(
        t.endswith("-> granted") for trace in m.traces for t in trace
    )
    m.must_reach = frozenset({"patient_bolus: granted"})
    run(m, FAST, seed=7)
    m.must_reach = frozenset({"alarm: eos"})  # no battery runs out in a few days
    with pytest.raises(
        AssertionError, match=r"Gate: the run never reached alarm: eos \(must_reach\)"
    ):
        run(m, FAST, seed=7)


def test_the_test_case_runs_through_run_with_its_settings():
    m = _named("ViaTestCase")
    m.must_reach = frozenset({"alarm: eos"})
    case = m.TestCase
    case.settings = FAST
    with pytest.raises(AssertionError, match="never reached alarm: eos"):
        case("runTest").runTest()


def test_boundary_activations_reach_the_rules_edges():
    """The exploration reaches the edges where patient-bolus bugs live (a regression gate)."""
    m = _named("Edges")
    m.max_advance = timedelta(days=2)
    reached = run(m, settings(FAST, max_examples=60, stateful_step_count=30), seed=3)
    for case in (
        "patient_bolus: granted",
        "patient_bolus: lockout",
        "patient_bolus: daily_maximum",
        "patient_bolus at: lockout end",
        "patient_bolus at: 24 h after the oldest grant",
    ):
        assert reached[case] >= 3, (case, reached)
    # enabled most of the time: not_enabled is rare
    assert reached["patient_bolus: not_enabled"] * 5 < reached["patient_bolus: granted"], reached


class _LosesAStrokeAfterADay(PatientDevice):
    """A device that loses one stroke once it has run more than a day (any long enough example
    fails; shrinking has a lot to cut)."""

    report_coverage = False
    unsupported = frozenset(ACTIONS) - {"set_patient_bolus_limits", "patient_bolus", "bolus"}

    def device_observed(self):
        late = self.dev.now - self.oracle.start.now > timedelta(days=1)
        return self.dev.pumped_nl - (self.oracle.stroke_nl if late else 0)


def _failure(machine: type) -> str:
    shrink = settings(FAST, max_examples=50, phases=[Phase.generate, Phase.shrink])
    with pytest.raises(AssertionError) as err:
        run(machine, shrink, seed=5)
    return str(err.value)


def test_the_shrink_budget_stops_shrinking_and_says_so():
    """With the budget spent at once (1 µs), hypothesis is stopped at the next example after the
    first failure: that failure is reported (a real divergence, with its operations), saying why
    it was not shrunk; without a budget it shrinks to fewer operations."""
    ops = lambda msg: int(re.search(r"after (\d+) operations", msg).group(1))  # noqa: E731
    unshrunk = _failure(
        type("Budget", (_LosesAStrokeAfterADay,), {"shrink_budget": timedelta(microseconds=1)})
    )
    assert "under by 2000 nL = 1 stroke(s)" in unshrunk, unshrunk
    assert re.search(
        r"shrinking stopped by the 1e-06 s shrink budget after 1 failing example\(s\); this is "
        r"the smallest seen",
        unshrunk,
    ), unshrunk
    shrunk = _failure(type("NoBudget", (_LosesAStrokeAfterADay,), {}))
    assert "shrink budget" not in shrunk and "under by 2000 nL" in shrunk, shrunk
    assert ops(shrunk) < ops(unshrunk), (ops(shrunk), ops(unshrunk))
    with pytest.raises(ValueError, match=r"Bad\.shrink_budget must be a timedelta > 0"):
        run(type("Bad", (_LosesAStrokeAfterADay,), {"shrink_budget": 60}), FAST, seed=1)
