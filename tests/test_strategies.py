"""itb.strategies: every valid strategy's output is accepted by the real API, every invalid one is
refused with a typed error, and counter-examples shrink to small readable values."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, time, timedelta
from fractions import Fraction

import itb
import itb.scenario
import pytest
from hypothesis import HealthCheck, assume, find, given, settings
from hypothesis import strategies as st
from itb import strategies as its
from itb.testing.strategies import _common, _exact

#: ITB_STRATEGY_EXAMPLES=1000 for a long soak of the strategies (default: fast).
EXAMPLES = int(os.environ.get("ITB_STRATEGY_EXAMPLES", "40"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = datetime(2026, 1, 5, 8, 0)
M40 = itb.models.SYNCHROMED_II_40


def _pump(model, conc, program, reservoir_ml=None):
    return itb.Pump(
        model,
        now=START,
        reservoir_ml=model.reservoir_ml if reservoir_ml is None else reservoir_ml,
        concentration_ug_per_ml=conc,
        program=program,
    )


def _steps_ng(program):
    raw = program.exact()
    return [raw[1]] if raw[0] == "continuous" else [ng for _, ng in raw[2]]


@st.composite
def model_conc_program(draw, **kw):
    model = draw(its.pump_models(battery=None))
    conc = draw(its.concentrations())
    return model, conc, draw(its.programs(model, conc, **kw))


def _with_room(build, *args, **kw):
    """``build(*args, **kw)``; a program at the model's maximum rate leaves no room for a bolus
    (an InvalidArgument saying so when the strategy is built): such an example is skipped."""
    try:
        return build(*args, **kw)
    except its.InvalidArgument as exc:
        assert "no room for a bolus" in str(exc), exc
        assume(False)


def test_importing_itb_does_not_import_hypothesis():
    code = "import sys, itb, itb.scenario; assert 'hypothesis' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


@FAST
@given(model_conc_program())
def test_programs_are_accepted(mcp):
    model, conc, program = mcp
    pump = _pump(model, conc, itb.Continuous(ug_per_day=0))
    pump.set_program(program)
    assert pump.program.exact() == program.exact()
    ex = model.exact()
    for ng in _steps_ng(program):
        rate = _exact._rate_nl(ng, conc)
        assert ng == 0 or ex["min_rate_nl_per_day"] <= rate <= ex["max_rate_nl_per_day"]


@FAST
@given(its.programs(M40, 2000, kind=("flex_week",), max_steps_per_day=3, max_ug_per_day=1000.0))
def test_program_options_bound_the_output(program):
    assert isinstance(program, itb.Flex) and program.period == "week"
    days = [off[0] for off, _ in program.steps]
    assert max(days.count(d) for d in set(days)) <= 3
    assert all(dose <= 1000.0 for _, dose in program.steps)
    _pump(M40, 2000, program)


@FAST
@given(
    st.data(),
    st.floats(0, 3000, allow_nan=False) | st.sampled_from([0.000499, 0.0015, 1e-300]),
    st.floats(0, 0.01, allow_nan=False) | st.sampled_from([0.0001, 0.0009]),
)
def test_dose_bounds_finer_than_a_nanogram_bound_the_draws(data, cap, floor):
    """A bound off the 1 ng grid (``max_ug_per_day=0.000499``: what a caller's arithmetic gives)
    is a bound: an upper one floors to the grid (0.000499 µg allows only zero), a lower one
    rounds up; every non-zero dose drawn is a whole ng within both; bounds that cross on the
    grid are an InvalidArgument when the strategy is built."""
    floor = min(floor, cap)
    hi_ng = int(Fraction(str(cap)) * 1000)  # the grid below the bound (hand rule, not the code's)
    lo_ng = -int(-Fraction(str(floor)) * 1000 // 1)
    if lo_ng > hi_ng:  # the bounds cross on the grid (0.0015 .. 0.0015 is 2 .. 1 ng): refused
        with pytest.raises(its.InvalidArgument, match="no dose between min_ug_per_day="):
            its.programs(M40, 2000, max_ug_per_day=cap, min_ug_per_day=floor)
        return
    program = data.draw(its.programs(M40, 2000, max_ug_per_day=cap, min_ug_per_day=floor))
    for _, dose in program.steps if isinstance(program, itb.Flex) else [(None, program.ug_per_day)]:
        ng = Fraction(str(dose)) * 1000
        assert ng.denominator == 1 and (ng == 0 or lo_ng <= ng <= hi_ng), (dose, cap, floor)
    # the smallest bolus is 1 nL: 2 ng at 2000 µg/mL
    if hi_ng < max(lo_ng, 2):
        with pytest.raises(its.InvalidArgument, match="no bolus dose between min_dose_ug="):
            its.boluses(M40, 2000, max_dose_ug=cap, min_dose_ug=floor)
    else:
        bolus = data.draw(its.boluses(M40, 2000, max_dose_ug=cap, min_dose_ug=floor))
        ng = Fraction(str(bolus.dose_ug)) * 1000
        assert ng.denominator == 1 and max(lo_ng, 1) <= ng <= hi_ng, (bolus, cap, floor)


@FAST
@given(st.data())
def test_invalid_programs_are_refused(data):
    model = data.draw(its.pump_models(), label="model")
    conc = data.draw(its.concentrations(), label="conc")
    program = data.draw(its.invalid_programs(model, conc), label="program")
    with pytest.raises((itb.ProgrammingError, itb.ValidationError)):
        _pump(model, conc, program)
    pump = _pump(model, conc, itb.Continuous(ug_per_day=0))
    with pytest.raises((itb.ProgrammingError, itb.ValidationError)):
        pump.set_program(program)


@FAST
@given(st.data())
def test_boluses_are_accepted_on_a_pump_with_room(data):
    model, conc, program = data.draw(model_conc_program(), label="setup")
    request = data.draw(
        _with_room(its.boluses, model, conc, program, max_start=timedelta(hours=2)), label="bolus"
    )
    assert isinstance(request, its.BolusRequest)
    pump = _pump(model, conc, program)
    bolus_id = request.apply(pump)
    pump.advance(request.start + request.duration)
    assert all(b.bolus_id != bolus_id for b in pump.boluses) or pump.boluses == []


@FAST
@given(st.data())
def test_invalid_boluses_are_refused(data):
    model, conc, program = data.draw(model_conc_program(), label="setup")
    request = data.draw(its.invalid_boluses(model, conc, program), label="bolus")
    pump = _pump(model, conc, program)
    before = pump.snapshot()
    with pytest.raises((itb.ValidationError, itb.ProgrammingError)):
        request.apply(pump)
    assert pump.snapshot() == before


@FAST
@given(st.data())
def test_refills_are_accepted(data):
    model, conc, program = data.draw(model_conc_program(), label="setup")
    request = data.draw(
        its.refills(model, conc, program, change_concentration=data.draw(st.booleans())),
        label="refill",
    )
    pump = _pump(model, conc, program, reservoir_ml=0.0)
    request.apply(pump)
    assert pump.reservoir_ml == request.added_ml
    assert pump.concentration_ug_per_ml == request.concentration_ug_per_ml


@FAST
@given(st.data())
def test_invalid_refills_are_refused(data):
    model, conc, program = data.draw(model_conc_program(allow_zero=False), label="setup")
    request = data.draw(its.invalid_refills(model, conc, program), label="refill")
    pump = _pump(model, conc, program, reservoir_ml=1.0)
    with pytest.raises((itb.ValidationError, itb.ProgrammingError, itb.ReservoirError)):
        request.apply(pump)


@FAST
@given(st.data())
def test_patient_limits_and_activations(data):
    model, conc, program = data.draw(model_conc_program(), label="setup")
    limits = data.draw(_with_room(its.patient_limits, model, conc, program), label="limits")
    offsets = data.draw(its.activations(max_size=5), label="activations")
    assert offsets == sorted(offsets)
    pump = _pump(model, conc, program)
    limits.apply(pump)
    start = pump.now
    for off in offsets:
        result = pump.patient_bolus(at=start + off)
        assert result.reason != "would_exceed_max_rate"


_LIMIT_FIELDS = ("dose_ug", "duration", "lockout", "max_per_24h")


def _bad_limit_fields(limits, model, conc):
    """The arguments of ``limits`` outside the documented ranges (an oracle independent of the
    strategy): dose > 0 in whole ng with a volume of 1 nL..capacity, duration 1 ms..1 day,
    lockout 0..1 day, 1..24 grants a day."""
    day = timedelta(days=1)
    ng = round(limits.dose_ug * 1000)
    dose_ok = (
        limits.dose_ug > 0
        and ng >= 1
        and 1 <= _exact._rate_nl(ng, conc) <= model.exact()["reservoir_nl"]
    )
    ok = {
        "dose_ug": dose_ok,
        "duration": timedelta(milliseconds=1) <= limits.duration <= day,
        "lockout": timedelta(0) <= limits.lockout <= day,
        "max_per_24h": 1 <= limits.max_per_24h <= 24,
    }
    return [f for f in _LIMIT_FIELDS if not ok[f]]


@FAST
@given(st.data())
def test_invalid_patient_limits_are_refused_naming_the_field(data):
    model, conc, program = data.draw(model_conc_program(), label="setup")
    limits = data.draw(_with_room(its.invalid_patient_limits, model, conc, program), label="limits")
    bad = _bad_limit_fields(limits, model, conc)
    assert len(bad) == 1, (limits, bad)  # exactly one argument is wrong
    pump = _pump(model, conc, program)
    pump.set_patient_bolus_limits(
        10.0, timedelta(minutes=10), timedelta(hours=1), 4
    )  # earlier limits stay
    before = pump.snapshot()
    with pytest.raises(itb.ValidationError) as err:
        limits.apply(pump)
    assert err.value.field == bad[0], (limits, err.value)
    assert pump.snapshot() == before


@FAST
@given(st.data())
def test_invalid_activations_are_refused_and_change_nothing(data):
    model, conc, program = data.draw(model_conc_program(), label="setup")
    limits = data.draw(_with_room(its.patient_limits, model, conc, program), label="limits")
    offsets = data.draw(its.invalid_activations(max_size=4), label="activations")
    assert offsets[:-1] == sorted(offsets[:-1]) and offsets[-1] < (
        offsets[-2] if len(offsets) > 1 else timedelta(0)
    )
    pump = _pump(model, conc, program)
    limits.apply(pump)
    start = pump.now
    for off in offsets[:-1]:
        pump.patient_bolus(at=start + off)
    before = pump.snapshot()
    with pytest.raises(itb.ValidationError) as err:
        pump.patient_bolus(at=start + offsets[-1])
    assert err.value.field == "at"
    assert pump.snapshot() == before


@settings(
    max_examples=max(30, EXAMPLES), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(its.invalid_scenarios(max_actions=4))
def test_invalid_scenarios_are_refused_naming_entry_and_field(bad):
    import copy

    data = copy.deepcopy(bad.data)
    with pytest.raises(itb.scenario.ScenarioError) as err:
        scenario = itb.scenario.from_dict(bad.data)
        assert bad.stage == "run", f"{bad.what}: loaded"
        scenario.run()
    e = err.value
    assert isinstance(e, itb.ValidationError) and isinstance(e, itb.ItbError)
    assert (e.entry, e.field) == (bad.entry, bad.field), (bad.what, str(e))
    if bad.stage == "run":  # refused by the pump when the action ran, not by the loader
        assert e.time == bad.data["actions"][int(bad.entry[8:-1])]["at"], str(e)
        itb.scenario.from_dict(bad.data)
    else:
        assert e.time is None, str(e)
    assert bad.data == data  # the loader did not change its input


@FAST
@given(its.pumps(stroke_error=True))
def test_pumps_are_whole_pumps(pump):
    assert isinstance(pump, itb.Pump)
    assert pump.now.microsecond % 1000 == 0 and pump.now.tzinfo is None
    pump.advance(timedelta(hours=1))


def _run_and_compare_with_the_oracle(data):
    """Load and run a drawn scenario; the Oracle built from it agrees with the run exactly."""
    from itb.testing import Oracle

    scenario = itb.scenario.from_dict(data)
    ats = [a["at"] for a in data["actions"]]
    assert ats == sorted(ats)
    result = scenario.run()
    assert result.pump.now == data["run"]["until"]
    oracle = Oracle(scenario)
    e, p = oracle.expected(scenario.until), result.pump
    assert (e.strokes, e.pumped_nl, e.delivered_nl, e.delivered_pg) == (
        p.strokes,
        p.pumped_nl,
        p.delivered_nl,
        p.delivered_pg,
    )
    assert oracle.stroke_times(scenario.until).tolist() == scenario.stroke_times().tolist()
    assert oracle.alarms(scenario.until) == [
        (ev.time, ev.kind, ev.severity) for ev in result.events if ev.severity is not None
    ]
    return result


@settings(
    max_examples=max(30, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(its.scenarios(max_actions=6))
def test_scenarios_load_and_run(data):
    scenario = itb.scenario.from_dict(data)
    _run_and_compare_with_the_oracle(data)
    # the TOML text round-trips
    assert itb.scenario.loads(scenario.dumps()).spec == scenario.spec


def test_scenarios_cover_concentration_changes_bridge_and_priming_boluses():
    seen: Counter = Counter()

    def check(data):
        result = _run_and_compare_with_the_oracle(data)
        conc = data["pump"]["concentration_ug_per_ml"]
        for a in data["actions"]:
            seen[a["do"]] += 1
            if a["do"] == "refill" and a["concentration_ug_per_ml"] != conc:
                seen["stronger" if a["concentration_ug_per_ml"] > conc else "weaker"] += 1
                conc = a["concentration_ug_per_ml"]
        started = [ev for ev in result.events if ev.kind == "bolus_started"]
        n_planned = sum(
            a["do"] in ("start_bridge_bolus", "start_priming_bolus") for a in data["actions"]
        )
        assert len(started) >= n_planned  # each planned bolus really ran

    bridges = its.scenarios(max_actions=6, actions=("refill", "start_bridge_bolus", "set_program"))
    primings = its.scenarios(
        max_actions=6, actions=("revise_catheter", "start_priming_bolus", "bolus")
    )
    wanted = ("start_bridge_bolus", "start_priming_bolus", "stronger", "weaker")

    def run(strategy, **kw):
        settings(
            max_examples=max(40, EXAMPLES // 2),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            **kw,
        )(given(strategy)(check))()

    run(bridges)
    run(primings)
    # A bridge needs a stronger refill the program allows and a path holding the old drug: about
    # one scenario in ten. The derandomized stream moves whenever code is added anywhere
    # (hypothesis also draws literals from local modules), so top up with random runs before failing.
    for _ in range(3):
        if all(seen[w] for w in wanted):
            break
        run(bridges, derandomize=False, database=None)
        run(primings, derandomize=False, database=None)
    assert all(seen[w] for w in wanted), seen


def test_scenario_actions_option():
    with pytest.raises(ValueError):
        its.scenarios(actions=("frobnicate",))
    assert set(its.SCENARIO_ACTIONS) == set(itb.scenario.ACTIONS) - set(
        itb.scenario.FAULT_ACTIONS
    )  # the fault actions only with faults=True (tests/test_strategies_faults.py)

    @settings(max_examples=10, deadline=None)
    @given(its.scenarios(actions=("suspend", "telemetry_session")))
    def only(data):
        assert {a["do"] for a in data["actions"]} <= {"suspend", "telemetry_session"}

    only()


# ----- shrinking --------------------------------------------------------------------------------


def test_flex_programs_shrink_to_round_values():
    found = find(its.programs(M40, 2000), lambda p: isinstance(p, itb.Flex) and len(p.steps) >= 3)
    assert found == itb.Flex(
        period="day", steps=[(time(0), 100.0), (time(1), 100.0), (time(2), 100.0)]
    )


def test_continuous_programs_shrink_to_the_smallest_round_dose():
    found = find(its.programs(M40, 2000, kind=("continuous",)), lambda p: p.ug_per_day > 1000)
    assert found == itb.Continuous(ug_per_day=2000.0)
    # 500 µg/mL: the minimum rate 0.048 mL/day is 24 µg/day, so 50 is the first round dose
    assert find(
        its.programs(M40, 500, kind=("continuous",), allow_zero=False), lambda p: True
    ) == itb.Continuous(50.0)


def test_boluses_shrink_to_a_screening_dose():
    found = find(its.boluses(M40, 2000), lambda b: True)
    assert found == its.BolusRequest(50.0, timedelta(minutes=30))
    long = find(its.boluses(M40, 2000), lambda b: b.duration > timedelta(hours=2))
    assert long == its.BolusRequest(50.0, timedelta(hours=4))


def test_invalid_variants_shrink_to_one_readable_mistake():
    # checked by hand (docs: guide/testing.md): one minute before now; a round limit with a lockout of -1 min
    assert find(its.invalid_activations(), lambda o: True) == [timedelta(minutes=-1)]
    lim = find(its.invalid_patient_limits(M40, 2000), lambda lim: lim.lockout < timedelta(0))
    assert lim.lockout == timedelta(minutes=-1) and _bad_limit_fields(lim, M40, 2000) == ["lockout"]
    # the rest stays round (where the shrinker stops among them depends on its search)
    assert (
        lim.dose_ug in _common._BOLUS_UG + _common._ROUND and lim.duration.total_seconds() % 60 == 0
    ), lim


def test_pump_models_shrink_to_the_first_preset():
    assert find(its.pump_models(), lambda m: True) is M40
    custom = find(
        its.pump_models(battery=False),
        lambda m: m not in [p for p in itb.models.PRESETS.values()] and m.name.startswith("custom"),
    )
    assert (
        custom.reservoir_ml,
        custom.stroke_nl,
        custom.max_rate_ml_per_day,
        custom.min_rate_ml_per_day,
    ) == (40.0, 2000, 24.0, 0.048)
    assert custom.battery is None


def test_options_are_checked():
    with pytest.raises(ValueError):
        its.programs(M40, 2000, max_steps_per_day=14)
    with pytest.raises(ValueError):
        its.programs(M40, 2000, kind=("monthly",))


def test_module_docstring_example_runs():
    doc = its.__doc__
    block = doc[doc.index("Example (a downstream suite)::") :].split("::", 1)[1]
    code = "\n".join(
        line[4:]
        for line in block.split("\n\n", 1)[1].split("\nNot a medical device")[0].splitlines()
    )
    namespace: dict = {}
    exec(compile(code, "itb.strategies docstring", "exec"), namespace)
    test = namespace["test_patient_boluses_keep_the_daily_maximum"]
    settings(max_examples=10, deadline=None)(test)()


@pytest.mark.parametrize("conc", [1, 7, 500, 1999, 2000, 2001, 3000, 100_000])
def test_ng_bounds_match_brute_force(conc):
    for lo_nl, hi_nl in [(1, 1), (1, 3), (2, 2), (3, 10), (48, 60), (5, 4)]:
        lo, hi = _exact._ng_bounds(lo_nl, hi_nl, conc)
        brute = [
            ng
            for ng in range(1, (hi_nl + 2) * conc // 1000 + 10)
            if lo_nl <= _exact._rate_nl(ng, conc) <= hi_nl
        ]
        assert (lo, hi) == ((brute[0], brute[-1]) if brute else (lo, hi)) and (brute or lo > hi)


def test_round_half_even():
    # the strategies round by the core's rule (itb._units.volume_nl): n ng at 2000 µg/mL is n/2 nL
    from itb._units import volume_nl

    assert [volume_nl(n, 2000) for n in (1, 3, 5, 0)] == [0, 2, 2, 0]
    assert _exact._rate_nl(1, 2000) == 0 and _exact._rate_nl(3, 2000) == 2  # 0.5 → 0, 1.5 → 2


@pytest.mark.parametrize(
    "build, match",
    [
        (
            lambda: its.concentrations(min_value=0, max_value=0),
            r"min_value=0: expected an int within 1 to 100000",
        ),
        (
            lambda: its.concentrations(min_value=3000, max_value=2000),
            "min_value=3000 is above max_value=2000",
        ),
        (
            lambda: its.programs(M40, 2000.5),
            r"concentration=2000\.5: expected a whole number of µg/mL",
        ),
        (lambda: its.programs(M40, "2000"), r"concentration='2000': expected a whole number"),
        (
            lambda: its.programs(M40, 200_000),
            r"concentration=200000: a concentration must be within 1 to 100000",
        ),
        (
            lambda: its.programs("SYNCHROMED_II_40", 2000),
            r"model='SYNCHROMED_II_40': expected an itb\.PumpModel",
        ),
        (
            lambda: its.pumps(model="SynchroMed II"),
            r"model='SynchroMed II': expected an itb\.PumpModel",
        ),
        (
            lambda: its.refills(M40, 2000, change_concentration=True, strengths=(1000.5,)),
            r"strengths\[0\]=1000\.5",
        ),
        (
            lambda: its.boluses(M40, 2000, min_dose_ug=100, max_dose_ug=10),
            "min_dose_ug=100 is above max_dose_ug=10",
        ),
        (
            lambda: its.boluses(M40, 2000, program={"ug_per_day": 400}),
            r"program=.*expected an itb\.Continuous or itb\.Flex",
        ),
        (lambda: its.durations(0, 30), r"min_value=0: expected a datetime\.timedelta"),
        (lambda: its.durations(timedelta(hours=2), timedelta(hours=1)), "is above max_value"),
        (
            lambda: its.programs(M40, 2000, max_steps_per_day=14),
            r"max_steps_per_day=14: expected an int within 1 to 13",
        ),
        (
            lambda: its.pumps(model=M40, min_reservoir_ml=41.0),
            "min_reservoir_ml=41.0 is above the capacity",
        ),
    ],
)
def test_strategy_arguments_are_checked_when_built(build, match):
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=match):
        build()  # eagerly: not at the first draw


@FAST
@given(
    its.pumps(model=M40, concentration=2000, min_reservoir_ml=1.0),
    its.boluses(M40, 2000, max_dose_ug=100),
)
def test_pumps_min_reservoir_leaves_room_for_a_bolus(pump, request):
    assert pump.reservoir_nl >= 1_000_000
    pump.set_program(itb.Continuous(ug_per_day=0.0))
    request.apply(pump)  # never ReservoirError: the reservoir is not empty
