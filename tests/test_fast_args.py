"""Cheap calls (docs: guide/performance.md): ``itb.Pump(...)`` and ``bolus()`` convert their arguments in
Rust for the everyday types and hand anything else to the Python converters. Either way the
result and every error (class, field, message) must be exactly those of the Python converters
(``itb._time.to_ms``/``duration_ms``, ``itb._units``), which these tests call directly."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import itb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb import _core
from itb._time import duration_ms, to_ms
from itb._units import concentration, flag, ml_to_nl, ug_to_ng, ul_to_nl
from itb._units import integer as _int
from itb.errors import ItbError

T0 = datetime(2026, 1, 5, 8)
MODEL = itb.models.SYNCHROMED_II_40
PROGRAM = itb.Continuous(ug_per_day=400)


def outcome(fn: Callable[[], Any]) -> Any:
    """A value, or the error as (class, field, message) — what the two paths must agree on."""
    try:
        return ("ok", fn())
    except ItbError as err:
        return ("err", type(err), err.field, str(err))
    except (TypeError, ValueError, OverflowError) as err:
        return ("err", type(err), None, str(err))


def old_pump(
    now: Any, reservoir_ml: Any, conc: Any, catheter_ul: Any = 0.0, ppm: Any = 0, primed: Any = True
) -> Any:
    """The pump as built before the Rust fast path: every argument through the Python converters."""
    return _core.Pump(
        model=MODEL.exact(),
        now_ms=to_ms(now, "now"),
        reservoir_nl=ml_to_nl(reservoir_ml, "reservoir_ml"),
        concentration=concentration(conc),
        program=PROGRAM.exact(),
        catheter_nl=ul_to_nl(catheter_ul, "catheter_volume_ul"),
        stroke_error_ppm=_int(ppm, "stroke_error_ppm"),
        path_primed=flag(primed, "path_primed"),
    )


def new_pump(
    now: Any, reservoir_ml: Any, conc: Any, catheter_ul: Any = 0.0, ppm: Any = 0, primed: Any = True
) -> Any:
    return itb.Pump(
        MODEL,
        now=now,
        reservoir_ml=reservoir_ml,
        concentration_ug_per_ml=conc,
        program=PROGRAM,
        catheter_volume_ul=catheter_ul,
        stroke_error_ppm=ppm,
        path_primed=primed,
    ).core


def _beyond_conversion(old: Any, reservoir_ml: Any) -> bool:
    """The converters refuse a fill too large for exact nL ("exceeds the maximum …"); the pump
    refuses it as what it is, an overfill of the model's reservoir (docs: decisions/inputs.md)."""
    if (
        old[:3] != ("err", itb.ValidationError, "reservoir_ml")
        or "exceeds the maximum" not in old[3]
    ):
        return False
    try:
        return float(reservoir_ml) > MODEL.reservoir_ml
    except (TypeError, ValueError, OverflowError):
        return False


def same_pump(args: tuple) -> None:
    old = outcome(lambda: old_pump(*args).snapshot())
    new = outcome(lambda: new_pump(*args).snapshot())
    if _beyond_conversion(old, args[1]):
        kind, cls, field, message = new
        assert (kind, cls, field) == ("err", itb.ReservoirError, "reservoir_ml"), (args, new)
        assert message.startswith("reservoir_ml: ") and message.endswith(
            " mL overfills the 40 mL reservoir (allowed 0 to 40 mL)"
        ), (args, message)
        return
    assert new == old, args


times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999)
    ),
    st.integers(-(2**64), 2**64),
    st.sampled_from(
        [
            True,
            1.5,
            "2026-01-05",
            np.datetime64("2026-01-05T08:00:00.123456"),
            np.datetime64("NaT"),
            np.int64(1_767_600_000_000),
            datetime(2026, 1, 5, tzinfo=UTC),
            None,
        ]
    ),
)
volumes = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=60),
    st.integers(-5, 2**70),
    st.sampled_from(
        [True, "40", np.float64(40.0), np.float32(12.5), Fraction(1, 3), Decimal("1.5"), None, -0.0]
    ),
)
concentrations = st.one_of(
    st.integers(-5, 200_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            2000.0,
            2000.5,
            0,
            100_000,
            100_001,
            2**70,
            True,
            np.int64(500),
            np.float64(1000.0),
            "2000",
            None,
        ]
    ),
)
ppms = st.one_of(
    st.integers(-(2**65), 2**65),
    st.sampled_from([0, 500_000, 500_001, True, 1.0, np.int32(7), None]),
)


@settings(max_examples=300, deadline=None)
@given(
    now=times,
    reservoir=volumes,
    conc=concentrations,
    catheter=volumes,
    ppm=ppms,
    primed=st.sampled_from([True, False, 0, 1, "", "x", None]),
)
def test_pump_arguments_convert_as_the_python_converters(
    now, reservoir, conc, catheter, ppm, primed
):
    same_pump((now, reservoir, conc, catheter, ppm, primed))


@pytest.mark.parametrize(
    "now",
    [
        datetime(1970, 1, 1),
        datetime(1969, 12, 31, 23, 59, 59, 999_999),
        datetime(1, 1, 1),
        datetime(2000, 2, 29, 12),
        datetime(2100, 3, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999_999),
        datetime(2026, 1, 5, 8, 0, 0, 999),
    ],
)
def test_datetimes_to_ms(now):
    assert new_pump(now, 40.0, 2000).now_ms == to_ms(now, "now")


durations = st.one_of(
    st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=400)),
    st.timedeltas(min_value=timedelta(microseconds=-2000), max_value=timedelta(microseconds=2000)),
    st.integers(-(2**64), 2**64),
    st.sampled_from(
        [
            timedelta(0),
            timedelta(microseconds=999),
            True,
            1.5,
            np.timedelta64(5, "m"),
            np.timedelta64("NaT"),
            np.int64(60_000),
            "10 min",
            None,
        ]
    ),
)
doses = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=100),
    st.integers(-3, 2**70),
    st.sampled_from([True, np.float64(1.5), Fraction(1, 4), "1.0", None, 1e-9, 0.0005]),
)
starts = st.one_of(st.none(), times, st.datetimes(min_value=T0, max_value=T0 + timedelta(days=30)))


@settings(max_examples=400, deadline=None)
@given(dose=doses, duration=durations, start=starts)
def test_bolus_arguments_convert_as_the_python_converters(dose, duration, start):
    base = itb.Pump(MODEL, now=T0, reservoir_ml=40.0, concentration_ug_per_ml=2000, program=PROGRAM)
    old, new = base.copy(), base.copy()

    def old_call() -> Any:
        return old.core.bolus(
            ug_to_ng(dose, "dose_ug"),
            duration_ms(duration, "duration", allow_zero=False),
            None if start is None else to_ms(start, "start"),
        )

    assert outcome(lambda: new.bolus(dose, duration, start)) == outcome(old_call)
    assert new.snapshot() == old.snapshot()


def test_models_and_programs_keep_their_core_objects_through_copies_and_pickles():
    flex = itb.Flex(period="day", steps=[(time(0), 300.0), (time(8), 500.0)])
    for obj in (MODEL, itb.models.NOMINAL_BATTERY, PROGRAM, flex):
        for again in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj), copy.copy(obj)):
            assert again == obj
    for program in (PROGRAM, flex):
        again = pickle.loads(pickle.dumps(program))
        assert again._core_program.exact() == program.exact()
        assert program.exact() == again.exact()
        p = itb.Pump(
            pickle.loads(pickle.dumps(MODEL)),
            now=T0,
            reservoir_ml=40.0,
            concentration_ug_per_ml=2000,
            program=again,
        )
        assert p.program == program
    assert pickle.loads(pickle.dumps(MODEL))._core_model.exact() == MODEL.exact()
    # exact() hands out fresh containers: mutating one changes nothing cached
    steps = flex.exact()[2]
    steps.append((1, 2))
    assert len(flex.exact()[2]) == 2


def test_set_program_takes_core_programs_and_exact_tuples():
    a = itb.Pump(MODEL, now=T0, reservoir_ml=40.0, concentration_ug_per_ml=2000, program=PROGRAM)
    b = a.copy()
    a.set_program(itb.Continuous(ug_per_day=300))
    b.core.set_program(("continuous", 300_000))
    assert a.snapshot() == b.snapshot()
    with pytest.raises(itb.ValidationError) as err:
        a.set_program(("continuous", 300_000))  # the public API takes itb programs only
    assert err.value.field == "program"


def old_bolus_many(pump: itb.Pump, starts: Any, doses: Any, durations: Any) -> Any:
    """``bolus_many`` of sequences as it was before the Rust converters: entry by entry in Python."""
    start_ms = [to_ms(v, f"starts[{i}]") for i, v in enumerate(starts)]
    duration_list = [
        duration_ms(v, f"durations[{i}]", allow_zero=False) for i, v in enumerate(durations)
    ]
    values = list(doses)
    for i, d in enumerate(values):
        if isinstance(d, bool) or not isinstance(d, (int, float)):
            raise itb.ValidationError(
                f"doses_ug[{i}]: expected a number, got {type(d).__name__}", f"doses_ug[{i}]"
            )
    return pump.core.bolus_many([float(d) for d in values], duration_list, start_ms)


@settings(max_examples=300, deadline=None)
@given(
    plan=st.lists(
        st.tuples(
            st.one_of(starts, st.datetimes(min_value=T0, max_value=T0 + timedelta(days=30))),
            doses,
            durations,
        ),
        max_size=6,
    ),
    extra=st.sampled_from([None, "starts", "doses", "durations"]),
)
def test_bolus_many_sequences_convert_as_the_python_converters(plan, extra):
    base = itb.Pump(MODEL, now=T0, reservoir_ml=40.0, concentration_ug_per_ml=2000, program=PROGRAM)
    old, new = base.copy(), base.copy()
    s, d, k = [p[0] for p in plan], [p[1] for p in plan], [p[2] for p in plan]
    if extra == "starts":
        s.append(T0)  # unequal lengths
    assert outcome(lambda: new.bolus_many(s, d, k)) == outcome(lambda: old_bolus_many(old, s, d, k))
    assert new.snapshot() == old.snapshot()


def test_display_conversions_invert_the_input_ones():
    """nL→mL, ng→µg, pg→µg for reports: hand values, and the round trip through the input side."""
    from itb._units import ml_to_nl, ng_to_ug, nl_to_ml, pg_to_ug, ug_to_ng

    assert nl_to_ml(20_000_000) == 20.0 and nl_to_ml(1) == 1e-6
    assert ng_to_ug(2500) == 2.5 and pg_to_ug(2_000_500) == 2.0005
    for ml in (0.001, 2.5, 19.999999, 40.0):
        assert nl_to_ml(ml_to_nl(ml, "ml")) == ml
    for ug in (0.001, 2.5, 1234.567):
        assert ng_to_ug(ug_to_ng(ug, "ug")) == ug


@pytest.mark.parametrize("fill", [9223372036855.0, 1e308, 10**30, 41.0, Decimal("1e308")])
def test_a_fill_beyond_exact_conversion_is_an_overfill_on_both_paths(fill: Any) -> None:
    """Past the exact nL range (about 9.2e12 mL) or just past 40 mL: the same overfill error
    from the fast path and the converters; a type the converters refuse (a Decimal) stays that
    type error, whatever its size."""
    same_pump((T0, fill, 2000, 0.0, 0, True))
    expected = itb.ValidationError if isinstance(fill, Decimal) else itb.ReservoirError
    assert outcome(lambda: new_pump(T0, fill, 2000).snapshot())[1] is expected
