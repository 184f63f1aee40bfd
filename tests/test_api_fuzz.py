"""API fuzz: random sequences of public ``itb.Pump`` calls with invalid values
of the right shape mixed in — NaN, ±inf, negative, huge and 64-bit-overflowing ints, bools,
tz-aware and extreme datetimes, ``timedelta(microseconds=1)``, negative and huge durations.

Every call either succeeds or raises an ``itb.ItbError`` subclass (never a bare
``ValueError``/``TypeError``, ``OverflowError``, a pyo3 ``PanicException`` or a crash), and a refused
call leaves the pump unchanged (``snapshot()`` equal before and after). After a successful call the
invariants of :mod:`itb.testing.invariants` hold.

Default run: a few seconds; ``ITB_HYPOTHESIS_SCALE=10`` for a longer one.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from datetime import UTC, datetime, time, timedelta, timezone

import itb
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from itb.testing import demo_pump, invariants

SCALE = float(os.environ.get("ITB_HYPOTHESIS_SCALE", "1"))
STATS: Counter = Counter()

# ----- values of the right shape, valid or not -----------------------------------------------------

BAD_FLOATS = [
    math.nan,
    math.inf,
    -math.inf,
    -1.0,
    -0.0,
    0.0,
    1e-300,
    5e-324,
    1e300,
    1.7976931348623157e308,
    10**30,
    2**63,
    -(2**63),
    2**64,
    10**400,
    -(10**400),
    True,
    False,
]
numbers = st.one_of(
    st.sampled_from(BAD_FLOATS),
    st.floats(0.001, 200.0),
    st.integers(0, 100),
    st.floats(allow_nan=True, allow_infinity=True),
)
volumes_ml = st.one_of(
    st.sampled_from(BAD_FLOATS),
    st.floats(0.0, 45.0),
    st.floats(allow_nan=True, allow_infinity=True),
)
ints = st.one_of(
    st.sampled_from(
        [
            -1,
            0,
            1,
            2,
            2**31,
            2**32,
            2**63 - 1,
            2**63,
            2**64,
            -(2**63),
            -(2**63) - 1,
            10**30,
            True,
            False,
        ]
    ),
    st.integers(-5, 30),
)
UTC = UTC
END = datetime(9999, 12, 28)
durations = st.one_of(
    st.sampled_from(
        [
            timedelta(microseconds=1),
            timedelta(microseconds=999),
            timedelta(0),
            -timedelta(milliseconds=1),
            timedelta.max,
            timedelta.min,
            timedelta(days=3650 * 1000),
            0,
            -1,
            1,
            2**63,
            2**64,
            -(2**63),
            True,
            False,
        ]
    ),
    st.integers(1, 5 * 86_400_000).map(lambda ms: timedelta(milliseconds=ms)),
    st.integers(0, 86_400_000),
)


def times(now: datetime):
    now_ms = (now - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
    return st.one_of(
        st.integers(0, 3 * 86_400_000).map(
            lambda ms: min(now + timedelta(milliseconds=ms), END) if now < END else now
        ),
        st.sampled_from(
            [
                now,
                now.replace(tzinfo=UTC),
                now.replace(tzinfo=timezone(timedelta(hours=-5))),
                now - timedelta(milliseconds=1),
                now + timedelta(microseconds=1),
                datetime.min,
                datetime.max,
                datetime(9999, 12, 31, 23, 59, 59, 999000),
                datetime(1969, 12, 31),
                now_ms,
                now_ms + 1,
                now_ms - 1,
                -1,
                0,
                2**63 - 1,
                2**63,
                2**64,
                -(2**63) - 1,
                True,
                False,
            ]
        ),
    )


def programs():
    steps = st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from([time(0), time(8), time(23, 59, 59, 999999), time(12)]),
                st.sampled_from(
                    [
                        timedelta(0),
                        timedelta(hours=6),
                        timedelta(microseconds=1),
                        -timedelta(hours=1),
                        timedelta(days=1),
                        timedelta(days=8),
                        (0, time(0)),
                        (6, time(12)),
                        (7, time(0)),
                        (-1, time(0)),
                    ]
                ),
            ),
            numbers,
        ),
        min_size=0,
        max_size=4,
    )
    return st.one_of(
        st.builds(lambda x: ("Continuous", x), numbers),
        st.builds(
            lambda period, s: ("Flex", period, s),
            st.sampled_from(["day", "week", "month", ""]),
            steps,
        ),
    )


def build_program(spec):
    if spec[0] == "Continuous":
        return itb.Continuous(ug_per_day=spec[1])
    return itb.Flex(period=spec[1], steps=spec[2])


class ApiFuzz(RuleBasedStateMachine):
    @initialize(reservoir=st.sampled_from([40.0, 0.004, 3.0]), limits=st.booleans())
    def start(self, reservoir, limits):
        self.pump = demo_pump()
        if reservoir != 40.0:
            self.pump.refill(
                reservoir - self.pump.reservoir_ml if reservoir > self.pump.reservoir_ml else 0.0,
                2000,
                aspirated_ml=None,
            )
        if limits:
            self.pump.set_patient_bolus_limits(10.0, timedelta(minutes=10), timedelta(hours=1), 4)
        self.before_step = self.pump.copy()

    def call(self, text, fn):
        """Run one call: success, or an ItbError that changed nothing. Anything else fails."""
        before = self.pump.snapshot()
        note(text)
        try:
            result = fn()
        except itb.ItbError as exc:
            STATS["refused"] += 1
            STATS[f"refused:{type(exc).__name__}"] += 1
            after = self.pump.snapshot()
            assert after == before, (
                f"{text} raised {type(exc).__name__}: {exc} but changed the pump"
            )
            assert isinstance(exc.field, str)
            return None
        except BaseException as exc:  # noqa: BLE001 - the point of this test
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise AssertionError(
                f"{text} raised {type(exc).__module__}.{type(exc).__name__}: {exc!r} "
                "(not an itb.ItbError)"
            ) from exc
        STATS["ok"] += 1
        STATS[f"ok:{text.split('(')[0]}"] += 1
        return result

    # ----- programming ------------------------------------------------------------------------------
    @rule(spec=st.one_of(programs(), st.floats(0.0, 2000.0).map(lambda x: ("Continuous", x))))
    def set_program(self, spec):
        self.call(f"set_program({spec})", lambda: self.pump.set_program(build_program(spec)))

    @rule(
        data=st.data(),
        dose=numbers,
        duration=durations,
        start_none=st.booleans(),
        valid=st.booleans(),
    )
    def bolus(self, data, dose, duration, start_none, valid):
        if valid:  # mostly accepted: the pump must get into states with boluses
            dose = data.draw(st.floats(0.5, 60.0), label="valid dose")
            duration = data.draw(
                st.integers(10, 600).map(lambda m: timedelta(minutes=m)), label="valid duration"
            )
        start = None if start_none else data.draw(times(self.pump.now), label="start")
        self.call(
            f"bolus({dose!r}, {duration!r}, {start!r})",
            lambda: self.pump.bolus(dose, duration, start),
        )

    @rule(bolus_id=ints)
    def cancel_bolus(self, bolus_id):
        self.call(f"cancel_bolus({bolus_id!r})", lambda: self.pump.cancel_bolus(bolus_id))

    @rule(
        added=st.floats(0.0, 40.0),
        conc=st.sampled_from([500, 1000, 2000, 4000]),
        aspirated=st.one_of(st.none(), st.floats(0.0, 40.0)),
    )
    def valid_refill(self, added, conc, aspirated):
        self.call(
            f"refill({added!r}, {conc!r}, {aspirated!r})",
            lambda: self.pump.refill(added, conc, aspirated),
        )

    @rule(
        added=volumes_ml,
        conc=st.one_of(
            st.sampled_from([2000, 500, 100_000, 100_001, 0, -1, 2000.5, 2**64]), numbers
        ),
        aspirated=st.one_of(st.none(), volumes_ml),
        tol_ml=st.one_of(st.just(1.0), numbers),
        tol_pct=st.one_of(st.just(20.0), numbers),
    )
    def refill(self, added, conc, aspirated, tol_ml, tol_pct):
        self.call(
            f"refill({added!r}, {conc!r}, {aspirated!r}, tolerance_ml={tol_ml!r}, tolerance_pct={tol_pct!r})",
            lambda: self.pump.refill(
                added, conc, aspirated, tolerance_ml=tol_ml, tolerance_pct=tol_pct
            ),
        )

    @rule(
        dose=st.one_of(st.none(), numbers), duration=durations, lockout=durations, max_per_24h=ints
    )
    def set_patient_bolus_limits(self, dose, duration, lockout, max_per_24h):
        self.call(
            f"set_patient_bolus_limits({dose!r}, {duration!r}, {lockout!r}, {max_per_24h!r})",
            lambda: self.pump.set_patient_bolus_limits(dose, duration, lockout, max_per_24h),
        )

    @rule(data=st.data(), now=st.booleans())
    def patient_bolus(self, data, now):
        at = None if now else data.draw(times(self.pump.now), label="at")
        self.call(f"patient_bolus({at!r})", lambda: self.pump.patient_bolus(at))

    @rule(volume=volumes_ml)
    def revise_catheter(self, volume):
        self.call(f"revise_catheter({volume!r})", lambda: self.pump.revise_catheter(volume * 100))

    @rule(
        name=st.sampled_from(
            [
                "suspend",
                "resume",
                "inject_motor_stall",
                "clear_fault",
                "bridge_bolus_plan",
                "start_bridge_bolus",
                "priming_bolus_plan",
                "start_priming_bolus",
                "telemetry_session",
            ]
        )
    )
    def no_argument_call(self, name):
        self.call(f"{name}()", getattr(self.pump, name))

    # ----- time ----------------------------------------------------------------------------------------
    @rule(data=st.data(), how=st.sampled_from(["advance_to", "advance", "advance_recording"]))
    def advance(self, data, how):
        if how == "advance":
            value = data.draw(durations, label="duration")
        else:
            value = data.draw(times(self.pump.now), label="until")
        before = self.pump.copy()
        out = self.call(f"{how}({value!r})", lambda: getattr(self.pump, how)(value))
        if out is not None:
            invariants.check_step(before, self.pump)

    @rule(horizon=durations, assume_refills=st.booleans())
    def project(self, horizon, assume_refills):
        out = self.call(
            f"project({horizon!r}, {assume_refills})",
            lambda: self.pump.project(horizon, assume_refills),
        )
        if (
            out is not None
            and isinstance(horizon, timedelta)
            and horizon <= timedelta(days=400)
            and horizon >= timedelta(0)
            and not assume_refills
        ):
            invariants.projection_matches_simulation(
                self.pump, horizon // timedelta(milliseconds=1)
            )

    @rule(data=st.data())
    def restore(self, data):
        blob = bytearray(self.pump.snapshot())
        how = data.draw(st.sampled_from(["same", "flip", "truncate", "empty"]), label="restore")
        if how == "flip":
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
        elif how == "truncate":
            blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
        elif how == "empty":
            blob = bytearray()
        restored = self.call(f"Pump.restore({how})", lambda: itb.Pump.restore(bytes(blob)))
        if how == "same":
            assert restored is not None and restored == self.pump

    @rule(
        data=st.data(),
        reservoir=volumes_ml,
        conc=st.one_of(st.sampled_from([2000, 0, 100_001, 2**64]), numbers),
        catheter=volumes_ml,
        primed=st.booleans(),
        error_ppm=ints,
        spec=programs(),
        valid=st.booleans(),
    )
    def construct(self, data, reservoir, conc, catheter, primed, error_ppm, spec, valid):
        """A new pump from fuzzed arguments: built, or an ItbError (the machine's pump is untouched)."""
        now = data.draw(times(self.pump.now), label="now")
        if valid:  # some must be built
            now, reservoir, conc, catheter, error_ppm = self.pump.now, 20.0, 2000, 1.0, 0
            spec = ("Continuous", data.draw(st.floats(0.0, 2000.0), label="valid ug_per_day"))
        text = f"Pump(now={now!r}, reservoir_ml={reservoir!r}, conc={conc!r}, catheter={catheter!r}, {error_ppm!r}, {spec})"
        built = self.call(
            text,
            lambda: itb.Pump(
                itb.models.SYNCHROMED_II_40,
                now=now,
                reservoir_ml=reservoir,
                concentration_ug_per_ml=conc,
                program=build_program(spec),
                catheter_volume_ul=catheter * 100,
                path_primed=primed,
                stroke_error_ppm=error_ppm,
            ),
        )
        if built is not None:
            invariants.check_state(built)
            invariants.projection_matches_simulation(built, 86_400_000)

    @invariant()
    def consistent(self):
        if hasattr(self, "pump"):
            invariants.check_state(self.pump)
            invariants.monotone(self.before_step, self.pump)
            self.before_step = self.pump.copy()


ApiFuzz.TestCase.settings = settings(
    max_examples=max(1, int(150 * SCALE)),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
TestApiFuzz = ApiFuzz.TestCase


def test_api_fuzz_reached_both_outcomes():
    """Guard: the machine made calls that succeeded and calls that were refused (skipped when the
    machine was deselected)."""
    if not STATS:
        pytest.skip("the fuzz machine did not run in this session")
    print(dict(STATS))
    assert STATS["ok"] >= 100 and STATS["refused"] >= 100
    assert STATS["refused:ValidationError"] >= 1
    assert (
        STATS["ok:Pump"] >= 3
        and STATS["ok:bolus"] >= 3
        and STATS["ok:refill"] >= 3
        and STATS["ok:set_program"] >= 3
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.refill(1.0, 2**64),  # was OverflowError (concentration beyond i64)
        lambda p: p.refill(1.0, -(2**64)),
        lambda p: p.bolus(
            10**400, timedelta(hours=1)
        ),  # was OverflowError (int beyond the float range)
        lambda p: p.revise_catheter(-(10**400)),
        lambda p: p.set_program(itb.Continuous(ug_per_day=10**400)),
    ],
)
def test_found_by_the_fuzz_now_validation_errors(call):
    pump = demo_pump()
    before = pump.snapshot()
    with pytest.raises(itb.ValidationError):
        call(pump)
    assert pump.snapshot() == before
