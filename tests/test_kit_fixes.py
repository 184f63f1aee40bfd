"""Regressions from a new-user trial of the testing kit: each wrong input gets a typed error
naming the argument, raised where the strategy is built or the reading is compared."""

from __future__ import annotations

import pytest
from _kit_devices import PumpAsDevice
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

FAST = settings(
    max_examples=3,
    stateful_step_count=4,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


# ----- 1. the state machine reads whole nL only, by the assertions' rule ------------------------


class FloatMeasured(PumpAsDevice):
    def device_measured(self):
        return float(self.dev.delivered_nl)  # e.g. 482000.0 from a scale


class FloatObserved(PumpAsDevice):
    def device_observed(self):
        return float(self.dev.pumped_nl)


@pytest.mark.parametrize(
    ("machine", "adapter"),
    [(FloatMeasured, "device_measured"), (FloatObserved, "device_observed")],
)
def test_machine_refuses_a_float_reading_naming_the_adapter(machine, adapter) -> None:
    with pytest.raises(TypeError, match=rf"{machine.__name__}\.{adapter}\(\).*whole number"):
        run_state_machine_as_test(machine, settings=FAST)


def test_machine_takes_a_numpy_integer_reading() -> None:
    import numpy as np

    class NumpyMeasured(PumpAsDevice):
        def device_measured(self):
            return np.int64(self.dev.delivered_nl)

    run_state_machine_as_test(NumpyMeasured, settings=FAST)


# ----- 2. assert_delivery_matches: times before the start, bare numbers -------------------------


def _oracle():
    from itb.testing import Oracle, demo_pump

    return Oracle(demo_pump())  # starts 2026-01-05 08:00 (pump-clock ms 1767600000000)


def test_a_time_before_the_oracles_start_is_refused_naming_the_reading_and_range() -> None:
    import itb
    from itb.testing import assert_delivery_matches, assert_strokes_match

    oracle = _oracle()
    start_ms = 1_767_600_000_000  # 2026-01-05 08:00 since 1970-01-01, by hand: 20458 days + 8 h
    assert start_ms == (20_458 * 24 + 8) * 3_600_000
    with pytest.raises(
        itb.ValidationError, match=r"observed_times\[0\]=5 .*before the oracle's start"
    ) as err:
        assert_delivery_matches([5], [200_000], oracle)
    assert "2026-01-05 08:00:00.000" in str(err.value) and str(start_ms) in str(err.value)
    assert err.value.field == "observed_times[0]"
    with pytest.raises(itb.ValidationError, match=r"observed_times\[1\]"):
        assert_delivery_matches([start_ms, start_ms - 1], [0, 0], oracle)
    with pytest.raises(itb.ValidationError, match=r"observed_stroke_times\[0\]"):
        assert_strokes_match([5], oracle)
    assert_delivery_matches([start_ms], [0], oracle)  # the start itself is a reading


@pytest.mark.parametrize(
    ("times", "volumes", "name"),
    [
        ([1_767_600_000_000], 200_000, "observed_volumes_nl"),
        (1_767_600_000_000, [0], "observed_times"),
        ("2026-01-05", [0], "observed_times"),
        ([1_767_600_000_000], None, "observed_volumes_nl"),
    ],
)
def test_a_bare_value_for_a_sequence_is_a_type_error_naming_the_parameter(
    times, volumes, name
) -> None:
    from itb.testing import assert_delivery_matches

    with pytest.raises(TypeError, match=rf"^{name}=.*expected a sequence"):
        assert_delivery_matches(times, volumes, _oracle())


# ----- 3-7. strategy arguments: InvalidArgument when the strategy is built, naming the argument --


def _m40():
    import itb

    return itb.models.SYNCHROMED_II_40


@pytest.mark.parametrize("allow_zero", [True, False])
def test_program_bounds_that_cross_on_the_ng_grid_are_refused(allow_zero) -> None:
    from itb import strategies as its

    # 100.0005 µg/day rounds up to 100001 ng as a minimum and down to 100000 ng as a maximum
    with pytest.raises(its.InvalidArgument, match=r"no dose between min_ug_per_day=100\.0005"):
        its.programs(
            _m40(), 2000, min_ug_per_day=100.0005, max_ug_per_day=100.0005, allow_zero=allow_zero
        )
    its.programs(_m40(), 2000, min_ug_per_day=100.001, max_ug_per_day=100.001)  # 1 ng: fine


def test_a_program_cap_below_the_models_rates_draws_zero_unless_allow_zero_is_false() -> None:
    import itb
    from hypothesis import find
    from itb import strategies as its

    # SynchroMed II at 2000 µg/mL runs from 48 µL/day = 96 µg/day: a cap of 50 leaves only zero
    program = find(
        its.programs(_m40(), 2000, kind="continuous", max_ug_per_day=50.0), lambda p: True
    )
    assert program == itb.Continuous(ug_per_day=0.0)
    with pytest.raises(its.InvalidArgument, match="allow_zero=False"):
        its.programs(_m40(), 2000, max_ug_per_day=50.0, allow_zero=False)


def test_a_basal_at_the_models_maximum_leaves_no_room_for_a_bolus_at_build_time() -> None:
    import itb
    from itb import strategies as its

    # SynchroMed II: at most 24 mL/day; 48000 µg/day at 2000 µg/mL is 24 mL/day
    full = itb.Continuous(ug_per_day=48000.0)
    for build in (its.boluses, its.patient_limits):
        with pytest.raises(its.InvalidArgument, match=r"program=.*no room for a bolus"):
            build(_m40(), 2000, program=full)
    its.boluses(_m40(), 2000, program=itb.Continuous(ug_per_day=47000.0))  # 0.5 mL/day of room


def test_bolus_dose_bounds_no_bolus_fits_are_refused_at_build_time() -> None:
    from itb import strategies as its

    # the smallest bolus is 1 nL = 2 ng at 2000 µg/mL; the largest the 40 mL reservoir
    for kw in ({"max_dose_ug": 0.001}, {"min_dose_ug": 80_001.0}):
        with pytest.raises(its.InvalidArgument, match="no bolus dose between"):
            its.boluses(_m40(), 2000, **kw)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -float("inf"), 1e300])
def test_min_reservoir_ml_that_is_not_finite_or_too_big_is_an_invalid_argument(value) -> None:
    from itb import strategies as its

    with pytest.raises(its.InvalidArgument, match=r"^min_reservoir_ml=") as err:
        its.pumps(min_reservoir_ml=value)
    if value != value or abs(value) == float("inf"):
        assert "a finite number" in str(err.value)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda its, v: its.programs(min_ug_per_day=v), "min_ug_per_day"),
        (lambda its, v: its.boluses(min_dose_ug=v), "min_dose_ug"),
        (lambda its, v: its.refills(min_added_ml=v), "min_added_ml"),
    ],
)
def test_a_lower_bound_must_be_finite_an_upper_bound_may_be_inf(build, name) -> None:
    from itb import strategies as its

    for bad in (float("inf"), float("nan")):
        with pytest.raises(its.InvalidArgument, match=rf"^{name}=.*a finite number"):
            build(its, bad)


def test_an_infinite_upper_bound_is_no_bound() -> None:
    from hypothesis import find
    from itb import strategies as its

    inf = float("inf")
    its.programs(_m40(), 2000, max_ug_per_day=inf)
    its.boluses(_m40(), 2000, max_dose_ug=inf)
    # a fill of the whole 40 mL reservoir is the first refill drawn (no cap)
    assert find(its.refills(_m40(), 2000, max_added_ml=inf), lambda r: True).added_ml == 40.0
    with pytest.raises(its.InvalidArgument, match=r"^max_ug_per_day=nan"):
        its.programs(max_ug_per_day=float("nan"))


@pytest.mark.parametrize("pump", ["pump", 3, {"model": "x"}])
def test_fault_actions_refuses_a_pump_that_is_not_one(pump) -> None:
    from itb import strategies as its

    with pytest.raises(its.InvalidArgument, match=r"^pump=.*expected an itb\.Pump or None"):
        its.fault_actions(pump)


@pytest.mark.parametrize(
    ("build", "name", "allowed"),
    [
        (lambda its, v: its.scenarios(actions=v), "actions", "set_program"),
        (lambda its, v: its.fault_actions(kinds=v), "kinds", "inject_occlusion"),
        (lambda its, v: its.programs(kind=v), "kind", "flex_week"),
    ],
)
def test_an_empty_selection_says_it_is_empty_and_lists_what_is_allowed(
    build, name, allowed
) -> None:
    from itb import strategies as its

    for empty in ((), []):
        with pytest.raises(its.InvalidArgument, match=rf"^{name}=.* is empty: .*{allowed}") as err:
            build(its, empty)
        assert "unknown" not in str(err.value)
    with pytest.raises(
        its.InvalidArgument, match=rf"^{name}: unknown 'nope'; allowed: .*{allowed}"
    ):
        build(its, ("nope",))


def test_a_bare_string_selects_one_name() -> None:
    from hypothesis import find
    from itb import strategies as its

    one = find(its.scenarios(actions="suspend", max_actions=3), lambda d: len(d["actions"]) >= 1)
    assert [a["do"] for a in one["actions"]] == ["suspend"]  # ("suspend",): only suspends
    assert find(its.fault_actions(kinds="inject_leak"), lambda r: True).kind == "inject_leak"
