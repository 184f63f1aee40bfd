"""The testing kit (``itb.testing``): oracle, assertions, invariants, state machine, pytest
plugin, and the worked example in ``examples/testing_kit`` (the buggy toy device is caught with a
short counter-example; the fixed one passes)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import itb
import numpy as np
import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from itb import scenario as scn
from itb.testing import (
    Oracle,
    assert_alarms_match,
    assert_delivery_matches,
    assert_strokes_match,
    demo_pump,
    invariants,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 5, 8, 0)
# demo pump: 400 µg/day at 2000 µg/mL = 200_000 nL/day = 100 strokes of 2000 nL a day, one every 864_000 ms
STROKE_MS = 864_000


def test_import_itb_and_itb_testing_do_not_import_hypothesis():
    code = "import sys, itb, itb.testing; assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_oracle_of_calls_recorded_as_they_happen():
    oracle = Oracle(demo_pump())
    assert oracle.expected(T0).strokes == 0
    # strokes at 08:14:24, 08:28:48, ... ; one day = exactly 100 strokes
    times = oracle.stroke_times(T0 + timedelta(days=1))
    assert times.dtype == np.int64 and len(times) == 100
    assert np.all(np.diff(times) == STROKE_MS)
    # a 40 µg bolus = 20_000 nL = 10 strokes over 1 h from 10:00 (on top of the basal)
    oracle.call("bolus", at=T0 + timedelta(hours=2), dose_ug=40.0, duration=timedelta(hours=1))
    e = oracle.expected(T0 + timedelta(days=1))
    assert e.strokes == 110 and e.pumped_nl == 220_000 and e.delivered_nl == 220_000
    assert e.delivered_pg == 220_000 * 2000
    # before the call, from a replay: 08:00 + 2 h holds 8 basal strokes (at 8 × 14.4 min = 1 h 55.2 min)
    assert oracle.expected(T0 + timedelta(hours=2)).strokes == 8
    assert len(oracle.stroke_times(T0 + timedelta(hours=2))) == 8
    # a refused call raises the pump's error and is not recorded
    with pytest.raises(itb.ProgrammingError):
        oracle.call("set_program", program=itb.Continuous(ug_per_day=60_000))
    assert len(oracle.calls) == 1
    with pytest.raises(itb.ValidationError):
        oracle.call("snapshot")
    with pytest.raises(itb.ValidationError):
        oracle.call("suspend", at=T0)  # before the latest call


def test_oracle_alarms():
    oracle = Oracle(demo_pump())
    # 40 mL, low at 2 mL: (40 − 2) mL / 0.2 mL/day = 190 days; empty 10 days later
    alarms = oracle.alarms(T0 + timedelta(days=365))
    assert [(k, s) for _t, k, s in alarms[:2]] == [
        ("low_reservoir", "non_critical"),
        ("reservoir_empty", "critical"),
    ]
    assert alarms[0][0] == T0 + timedelta(
        days=190
    )  # the stroke after which 2 mL are left: 19_000 strokes
    oracle.call("suspend", at=T0 + timedelta(days=1))
    assert oracle.alarms() == []


def test_oracle_of_a_scenario_equals_the_scenario_run():
    s = scn.load(ROOT / "examples" / "ptm_patient_bolus.toml")
    oracle = Oracle(s)
    assert np.array_equal(oracle.stroke_times(s.until), s.stroke_times())
    end = s.run().pump
    e = oracle.expected(s.until)
    assert (e.strokes, e.pumped_nl, e.delivered_nl, e.delivered_pg) == (
        end.strokes,
        end.pumped_nl,
        end.delivered_nl,
        end.delivered_pg,
    )
    invariants.check_state(oracle.pump)


def test_assert_delivery_matches_reports_the_first_divergence():
    oracle = Oracle(demo_pump())
    oracle.advance_to(T0 + timedelta(days=2))
    hours = [T0 + timedelta(hours=h) for h in range(0, 48, 3)]
    exact = [len(oracle.stroke_times(t)) * 2000 for t in hours]
    assert_delivery_matches(hours, exact, oracle, tol_strokes=0)
    one_off = [v + (2000 if i % 2 else 0) for i, v in enumerate(exact)]
    assert_delivery_matches(hours, one_off, oracle, tol_strokes=1)
    lagging = [v - (4000 if t >= T0 + timedelta(hours=30) else 0) for t, v in zip(hours, exact)]
    with pytest.raises(AssertionError) as err:
        assert_delivery_matches(hours, lagging, oracle, tol_strokes=1)
    msg = str(err.value)
    assert "2026-01-06 14:00:00" in msg and "under by 4000 nL = 2 stroke(s)" in msg, msg
    assert f"expected {exact[10]} nL" in msg


def test_assert_strokes_match():
    oracle = Oracle(demo_pump())
    oracle.advance_to(T0 + timedelta(days=1))
    exact = oracle.stroke_times()
    assert_strokes_match(exact, oracle, tol_strokes=0)
    assert_strokes_match(exact + 1000, oracle, tol_strokes=1)  # each a second late: never 2 behind
    with pytest.raises(
        AssertionError, match=r"under by 1 strokes? \(tolerance 0\)|under by 1 strokes"
    ):
        assert_strokes_match(exact + 1000, oracle, tol_strokes=0)
    with pytest.raises(AssertionError, match="2026-01-05 09:26:24.000: expected 6 strokes"):
        assert_strokes_match(np.delete(exact, [4, 5]), oracle, tol_strokes=1)


def test_assert_alarms_match():
    oracle = Oracle(demo_pump())
    until = T0 + timedelta(days=300)
    oracle.advance_to(until)
    expected = oracle.alarms()
    assert_alarms_match(expected, oracle)
    late = [(t + timedelta(minutes=5), k) for t, k, _s in expected]
    assert_alarms_match(late, oracle, tol=timedelta(minutes=5))
    # 5 min late with a 1-min tolerance: reported as late, by how much (not missing + unexpected)
    with pytest.raises(AssertionError) as err:
        assert_alarms_match(late, oracle, tol=timedelta(minutes=1))
    low, empty = expected[0][0], expected[1][0]
    assert str(err.value).startswith(
        f"device alarms diverged first at {low.isoformat(sep=' ', timespec='milliseconds')}: alarm "
        f"'low_reservoir' late by 0:05:00: expected at "
        f"{low.isoformat(sep=' ', timespec='milliseconds')} (±0:01:00), the device raised it at "
        f"{(low + timedelta(minutes=5)).isoformat(sep=' ', timespec='milliseconds')}"
    ), err.value
    assert "unexpected" not in str(err.value) and "missing" not in str(err.value), err.value
    assert (
        f"'reservoir_empty' late by 0:05:00: expected at {empty.isoformat(sep=' ', timespec='milliseconds')}"
        in str(err.value)
    )
    early = [(t - timedelta(hours=2), k) for t, k, _s in expected]
    with pytest.raises(AssertionError, match=r"alarm 'low_reservoir' early by 2:00:00"):
        assert_alarms_match(early, oracle)
    with pytest.raises(
        AssertionError, match="reservoir_empty.*is missing; the device never raised"
    ):
        assert_alarms_match(expected[:1], oracle)
    with pytest.raises(AssertionError, match="unexpected alarm 'eri'"):
        assert_alarms_match(expected + [(T0 + timedelta(days=250), "eri", "non_critical")], oracle)
    # a device at `until` may still raise an alarm due less than `tol` ago, not one due earlier
    low = expected[0][0]
    assert_alarms_match([], oracle, tol=timedelta(minutes=5), until=low + timedelta(minutes=4))
    with pytest.raises(
        AssertionError, match="'low_reservoir' at .* is missing; the device never raised"
    ):
        assert_alarms_match([], oracle, tol=timedelta(minutes=5), until=low + timedelta(minutes=5))
    with pytest.raises(AssertionError, match="'low_reservoir' at .* is missing"):
        assert_alarms_match([], oracle, until=low)


def test_invariants_catch_broken_states():
    pump = demo_pump()
    before = pump.copy()
    pump.advance(timedelta(days=3))
    invariants.check_step(before, pump, advance_only=True)
    assert invariants.within_one_stroke_of_ideal(before, pump)
    invariants.projection_matches_simulation(pump)
    with pytest.raises(AssertionError, match="now_ms went back"):
        invariants.monotone(pump, before)
    pump.suspend()
    stopped = pump.copy()
    pump.advance(timedelta(days=1))
    invariants.no_delivery_while_stopped(stopped, pump)
    assert not invariants.within_one_stroke_of_ideal(stopped, pump)  # does not apply
    with pytest.raises(AssertionError, match="strokes while stopped"):
        invariants.no_delivery_while_stopped(stopped, _resumed_and_advanced(stopped))


def _resumed_and_advanced(p):
    q = p.copy()
    q.resume()
    q.advance(timedelta(days=1))
    return q


def test_patient_limits_invariant():
    pump = demo_pump()
    pump.set_patient_bolus_limits(
        dose_ug=10.0, duration=timedelta(minutes=10), lockout=timedelta(hours=3), max_per_24h=2
    )
    events = []
    for h in range(0, 48, 1):
        pump.patient_bolus(T0 + timedelta(hours=h))
        events += pump.advance_to(T0 + timedelta(hours=h))
    assert sum(e.kind == "patient_bolus_granted" for e in events) == 4
    invariants.patient_limits_respected(events, 3 * 3_600_000, 2)
    with pytest.raises(AssertionError, match="lockout"):
        invariants.patient_limits_respected(events, 25 * 3_600_000, 2)
    extra = itb.Event(events[-1].time_ms + 1, "patient_bolus_granted")
    with pytest.raises(AssertionError, match="3 patient boluses in the 24 h"):
        invariants.patient_limits_respected(events + [extra], 0, 2)


# ----- the worked example -----------------------------------------------------------------------

EXAMPLE = ROOT / "examples" / "testing_kit"
BUG_HUNT = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield importlib.import_module("test_toy_device")
    finally:
        sys.path.remove(str(EXAMPLE))


def test_example_buggy_device_is_caught_with_a_short_counter_example(example):
    with pytest.raises(AssertionError) as err:
        run_state_machine_as_test(example.BuggyToyPumpMachine, settings=BUG_HUNT)
    msg = str(err.value)
    # placed exactly: the first stroke the device lacks, after the program change that lost it
    first = msg.splitlines()[0]
    assert re.match(
        r"first wrong stroke: #\d+, due at [-\d :.]+, not made by then \(after set_program\(", first
    ), msg
    assert "device diverged between" in msg, msg  # the window, too
    n = int(re.search(r"after (\d+) operations", msg).group(1))
    steps = msg.split("operations:\n", 1)[1].split("\n")
    # Short, but not asserted minimal: hypothesis also draws literals from the package's own
    # modules, so the derandomized stream (and how far shrinking gets in its budget) moves
    # whenever code is added anywhere in itb — runs have given 4 and 15 operations.
    assert n == len(steps) and 2 <= n <= 20, msg
    assert any(s.strip().startswith("set_program(") for s in steps), msg
    assert "under by" in msg  # the restarted accumulator loses the partial stroke


def test_example_fixed_device_passes(example):
    run_state_machine_as_test(example.ToyPumpMachine, settings=settings(BUG_HUNT, max_examples=40))


def test_example_runs_under_pytest_with_the_plugin():
    """``pytest examples/testing_kit`` as a user runs it: the plugin (entry point) provides the
    fixture and the marker; every example test passes (the buggy device's test expects the failure)."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            str(EXAMPLE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 passed" in run.stdout, run.stdout


def test_machine_with_every_action_on_the_oracle_itself():
    """A 'device' that is an itb.Pump driven through every adapter: never diverges."""
    from itb.testing import PumpStateMachine

    class PumpAsDevice(PumpStateMachine):
        tol_strokes = 0

        def device_start(self, pump):
            self.dev = pump

        def device_advance(self, until):
            self.dev.advance_to(until)

        def device_set_program(self, program):
            self.dev.set_program(program)

        def device_bolus(self, dose_ug, duration):
            self.dev.bolus(dose_ug, duration)

        def device_refill(self, added_ml, conc):
            self.dev.refill(added_ml, conc)

        def device_suspend(self):
            self.dev.suspend()

        def device_resume(self):
            self.dev.resume()

        def device_observed(self):
            return self.dev.pumped_nl

    run_state_machine_as_test(
        PumpAsDevice, settings=settings(BUG_HUNT, max_examples=30, stateful_step_count=15)
    )


# ----- the pytest plugin --------------------------------------------------------------------------


def test_plugin_fixtures(itb_pump, itb_oracle):
    assert isinstance(itb_pump, itb.Pump) and itb_pump.now == T0 and itb_pump.strokes == 0
    assert itb_oracle.now == T0 and itb_oracle.expected().strokes == 0


def test_plugin_profile_and_marker(pytestconfig):
    assert settings.get_profile("itb-ci").derandomize is True
    assert settings.get_profile("itb-ci").deadline is None
    assert any(m.startswith("itb_device") for m in pytestconfig.getini("markers"))
    # registering the profile did not change the suite's own (tests/conftest.py loads "ci" by default)
    own = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    assert (
        settings.default.derandomize == own.derandomize
        and settings.default.max_examples == own.max_examples
    )


def test_plugin_is_an_installed_entry_point():
    from importlib.metadata import entry_points

    eps = entry_points(group="pytest11")
    assert any(e.name == "itb" and e.value == "itb.testing.pytest_plugin" for e in eps)


def test_oracle_sources_and_patient_boluses():
    kwargs = dict(
        model=itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    a, b = Oracle(**kwargs), Oracle(demo_pump)  # Pump keyword arguments, or a factory
    with pytest.raises(itb.ValidationError):
        Oracle()
    for oracle in (a, b):
        oracle.call(
            "set_patient_bolus_limits",
            at=T0,
            dose_ug=10.0,
            duration=timedelta(minutes=10),
            lockout=timedelta(hours=3),
            max_per_24h=2,
        )
        results = [
            oracle.call("patient_bolus", at=T0 + timedelta(hours=h)) for h in range(0, 30, 2)
        ]
        # granted at 0 h and 4 h (2 h: lockout), then the 24 h maximum until 24 h, then 28 h (lockout 3 h)
        assert [r.reason for r in results if r.granted] == ["granted"] * 4
        events = oracle.events(T0 + timedelta(hours=30))
        assert [e.time for e in events if e.kind == "patient_bolus_granted"] == [
            T0,
            T0 + timedelta(hours=4),
            T0 + timedelta(hours=24),
            T0 + timedelta(hours=28),
        ]
        invariants.patient_limits_respected(events, 3 * 3_600_000, 2)
        # 31 h of basal: floor(31 × 100 / 24) = 129 strokes; 4 × 10 µg = 4 × 5000 nL = 10 strokes
        assert oracle.expected(T0 + timedelta(hours=31)).strokes == 129 + 10


@pytest.mark.parametrize("order", [[], ["-p", "itb"], ["-p", "hypothesispytest"]])
def test_hypothesis_profile_option_loads_itb_ci(tmp_path, order):
    """``pytest --hypothesis-profile=itb-ci`` in a fresh suite: the profile exists when hypothesis'
    plugin loads it (it used to be registered too late: INTERNALERROR, profile not registered),
    whichever plugin comes first."""
    (tmp_path / "test_profile.py").write_text(
        "from hypothesis import settings\n"
        "def test_loaded():\n"
        "    assert settings.get_current_profile_name() == 'itb-ci'\n"
        "    assert settings.default.derandomize and settings.default.deadline is None\n"
        "    from hypothesis import Phase\n"
        "    from datetime import timedelta\n"
        "    from itb.testing.pytest_plugin import shrink_budget\n"
        "    assert settings.default.report_multiple_bugs is False\n"
        "    assert Phase.explain not in settings.default.phases and Phase.shrink in settings.default.phases\n"
        "    assert shrink_budget() == timedelta(seconds=60)\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            *order,
            "--hypothesis-profile=itb-ci",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr


def test_assert_arguments_are_checked():
    o = Oracle(demo_pump())
    o.advance_to(T0 + timedelta(days=200))
    t1 = T0 + timedelta(days=1)
    with pytest.raises(ValueError, match=r"tol_strokes=-1: must be >= 0"):
        assert_delivery_matches([t1], [o.expected(t1).pumped_nl], o, tol_strokes=-1)
    with pytest.raises(TypeError, match=r"tol_strokes=1\.5: expected a whole number"):
        assert_strokes_match([], o, tol_strokes=1.5)
    with pytest.raises(TypeError, match=r"tol=60: expected a datetime\.timedelta"):
        assert_alarms_match([], o, tol=60)
    with pytest.raises(
        ValueError, match=r"unknown alarm kind 'low-reservoir'; itb's alarm kinds: low_reservoir, "
    ):
        assert_alarms_match([(T0, "low-reservoir")], o)
    with pytest.raises(
        ValueError, match=r"unknown severity 'high'; severities: critical, non_critical"
    ):
        assert_alarms_match([(T0, "low_reservoir", "high")], o)
    # the right alarm at the right time, as critical: the message says the severities differ
    swapped = [
        (t, kind, "critical" if sev == "non_critical" else "non_critical")
        for t, kind, sev in o.alarms()
    ]
    with pytest.raises(
        AssertionError,
        match=r"alarm 'low_reservoir' at .*: the severities differ: expected "
        r"non_critical, the device raised it as critical",
    ):
        assert_alarms_match(swapped, o)


def test_oracle_refuses_bare_number_durations_and_times_before_its_start():
    o = Oracle(demo_pump())
    with pytest.raises(
        itb.ValidationError, match=r"duration=30: give a datetime\.timedelta"
    ) as err:
        o.call("bolus", at=T0 + timedelta(hours=1), dose_ug=50.0, duration=30)
    assert err.value.field == "duration" and o.calls == []
    with pytest.raises(
        itb.ValidationError,
        match=r"Oracle\.expected: at=2026-01-04 08:00:00 is before the "
        r"oracle's start \(2026-01-05 08:00:00\)",
    ):
        o.expected(T0 - timedelta(days=1))


def test_readings_must_be_whole_numbers_of_the_right_length():
    """A reading the kit would have to round, or that is not a number, is the caller's error
    (TypeError/ValueError naming the argument), never a device failure or a silent pass."""
    o = Oracle(demo_pump())
    t1 = T0 + timedelta(days=1)
    exact = o.expected(t1).pumped_nl
    assert exact == 200_000  # 100 strokes of 2 µL a day
    assert_delivery_matches([t1], [exact], o)
    assert_delivery_matches([t1], np.array([exact], dtype=np.int64), o)
    assert_delivery_matches([t1], [np.int32(exact)], o)
    for bad in (exact + 0.9, float(exact), str(exact), None, True):
        with pytest.raises(TypeError, match=r"observed_volumes_nl\[0\]="):
            assert_delivery_matches([t1], [bad], o)
    with pytest.raises(TypeError, match="observed_volumes_nl: a numpy array of dtype float64"):
        assert_delivery_matches([t1], np.array([exact], dtype=float), o)
    with pytest.raises(ValueError, match="observed_times has 2 readings but observed_volumes_nl 1"):
        assert_delivery_matches([t1, t1], [exact], o)
    # the default tolerance is 0: one stroke off is a divergence
    with pytest.raises(AssertionError, match=r"under by 2000 nL = 1 stroke\(s\) \(tolerance 0\)"):
        assert_delivery_matches([t1], [exact - 2000], o)
    with pytest.raises(AssertionError, match=r"over by 1 stroke"):
        assert_strokes_match(np.append(o.stroke_times(t1), o.stroke_times(t1)[-1]), o, until=t1)


def test_the_tip_dose_is_comparable():
    """Dose at the catheter tip: a primed path passes every stroke's 2 µL of 2000 µg/mL on, so a
    day of 400 µg/day is 200 000 nL and 400 µg = 4e8 pg; a saline path (200 µL catheter, not
    primed) holds the first 200 µL back."""
    o = Oracle(demo_pump())
    t1 = T0 + timedelta(days=1)
    assert_delivery_matches([t1], [200_000], o, quantity="delivered_nl")
    assert_delivery_matches([t1], [400_000_000], o, quantity="delivered_pg")
    with pytest.raises(AssertionError, match=r"expected 400000000 pg delivered at the tip"):
        assert_delivery_matches([t1], [399_999_999], o, quantity="delivered_pg")
    # one stroke's worth of drug at 2000 µg/mL is 2000 nL × 2000 µg/mL = 4e6 pg
    assert_delivery_matches([t1], [396_000_000], o, quantity="delivered_pg", tol_strokes=1)
    with pytest.raises(AssertionError, match=r"= 1\.00025 stroke"):
        assert_delivery_matches([t1], [395_999_000], o, quantity="delivered_pg", tol_strokes=1)
    with pytest.raises(ValueError, match="quantity='dose'"):
        assert_delivery_matches([t1], [0], o, quantity="dose")


def test_itb_ci_shrink_budget_is_an_ini_option(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nitb_shrink_seconds = 7\n", encoding="utf-8")
    (tmp_path / "test_budget.py").write_text(
        "from datetime import timedelta\n"
        "from itb.testing.pytest_plugin import shrink_budget\n"
        "def test_budget():\n"
        "    assert shrink_budget() == timedelta(seconds=7)\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--hypothesis-profile=itb-ci",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
