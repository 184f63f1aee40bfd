"""The Python API contract (docs: design.md#python-api-contract): hand-computed delivery, boundary rounding, and each
typed error (naming its field) leaving the pump unchanged."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

import itb
import pytest

T0 = datetime(2026, 1, 5, 8, 0)  # a Monday
D = 86_400_000


def pump(**kw) -> itb.Pump:
    args = dict(
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    args.update(kw)
    return itb.Pump(itb.models.SYNCHROMED_II_40, **args)


def test_continuous_hand_computed() -> None:
    # 400 µg/day ÷ 2000 µg/mL = 0.2 mL/day = 200_000 nL/day; q = 2000 nL.
    p = pump()
    # First stroke: A = 200_000·t ≥ 2000·D → t = 864_000 ms = 14 min 24 s.
    assert p.project().next_stroke == T0 + timedelta(minutes=14, seconds=24)
    p.advance(timedelta(days=30))
    assert p.strokes == 200_000 * 30 // 2000 == 3000
    assert p.pumped_nl == p.delivered_nl == 6_000_000
    assert p.delivered_pg == 6_000_000 * 2000 and math.isclose(p.delivered_ug, 12_000.0)
    assert p.reservoir_ml == 34.0


def test_flex_day_hand_computed() -> None:
    # 300 µg/day 00–08, 500 µg/day 08–22, 300 µg/day 22–24 at 2000 µg/mL:
    # 150_000·8/24 + 250_000·14/24 + 150_000·2/24 = 50_000 + 145_833.3 + 12_500 = 208_333.3 nL/day.
    # Over 7 whole days from midnight: floor(208_333.33…·7 / 2000) = floor(729.17) = 729 strokes.
    p = pump(
        now=datetime(2026, 1, 5),
        program=itb.Flex(
            period="day", steps=[(time(0), 300.0), (time(8), 500.0), (time(22), 300.0)]
        ),
    )
    p.advance(timedelta(days=7))
    assert p.strokes == 729


def test_week_flex_starts_monday() -> None:
    # Monday 00–24: 1000 µg/day (0.5 mL/day), rest of the week 0. From Monday 00:00, 2 weeks:
    # 2 Mondays × 500_000 nL = 1_000_000 nL = 500 strokes; nothing on other days.
    program = itb.Flex(period="week", steps=[((0, time(0)), 1000.0), ((1, time(0)), 0.0)])
    p = pump(now=datetime(2026, 1, 5), program=program)
    p.advance(timedelta(days=1))
    assert p.strokes == 250
    p.advance(timedelta(days=6))
    assert p.strokes == 250
    p.advance(timedelta(days=7))
    assert p.strokes == 500


def test_bolus_alone_hand_computed() -> None:
    # 10 µg at 2000 µg/mL = 5000 nL over 1 h: r_b = ceil(5000·D/3_600_000) = 120_000 nL/day;
    # ends at ceil(5000·D/120_000) = 3_600_000 ms; q = 2000 → strokes at 1_440_000, 2_880_000 ms.
    p = pump(program=itb.Continuous(ug_per_day=0))
    bolus_id = p.bolus(dose_ug=10.0, duration=timedelta(hours=1))
    events, times = p.advance_recording(T0 + timedelta(hours=2))
    t0 = p.now_ms - 2 * 3_600_000
    assert [t - t0 for t in times] == [1_440_000, 2_880_000]
    done = [e for e in events if e.kind == "bolus_completed"]
    assert [(e.data["bolus_id"], e.time) for e in done] == [(bolus_id, T0 + timedelta(hours=1))]


def test_rounding_at_the_boundary() -> None:
    from itb._units import ml_to_nl, ug_to_ng

    assert ug_to_ng(0.0125, "x") == 12  # 12.5 ng → 12 (half to even)
    assert ug_to_ng(0.0135, "x") == 14  # 13.5 → 14
    assert ml_to_nl(0.048, "x") == 48_000
    assert ug_to_ng(-0.0, "x") == 0
    # 0.0125 µg/day at 1000 µg/mL → 12 ng/day → 12 nL/day (exact program storage)
    assert itb.Continuous(ug_per_day=0.0125).exact() == ("continuous", 12)


def test_times_truncate_to_the_millisecond() -> None:
    p = pump(now=T0 + timedelta(microseconds=1999))
    assert p.now == T0 + timedelta(milliseconds=1)


def test_events_from_construction_come_with_the_first_advance() -> None:
    p = pump(reservoir_ml=1.0)  # below the 2 mL low-reservoir threshold
    events = p.advance(timedelta(0))
    assert [(e.kind, e.time, e.severity) for e in events] == [("low_reservoir", T0, "non_critical")]


@pytest.mark.parametrize(
    ("make", "error", "field"),
    [
        (lambda: pump(now=datetime(2026, 1, 5, tzinfo=UTC)), itb.ValidationError, "now"),
        (
            lambda: pump(program=itb.Continuous(ug_per_day=float("nan"))),
            itb.ValidationError,
            "ug_per_day",
        ),
        (
            lambda: pump(program=itb.Continuous(ug_per_day=float("inf"))),
            itb.ValidationError,
            "ug_per_day",
        ),
        (lambda: pump(program=itb.Continuous(ug_per_day=-1.0)), itb.ValidationError, "ug_per_day"),
        (
            lambda: itb.Flex(period="day", steps=[(time(8), 1.0), (time(0), 1.0)]),
            itb.ValidationError,
            "steps[0].offset",
        ),
        (
            lambda: itb.Flex(period="fortnight", steps=[(time(0), 1.0)]),
            itb.ValidationError,
            "period",
        ),
        (lambda: pump(reservoir_ml=40.5), itb.ReservoirError, "reservoir_ml"),
        (lambda: pump(concentration_ug_per_ml=0), itb.ValidationError, "concentration_ug_per_ml"),
        (lambda: pump(program=itb.Continuous(ug_per_day=50.0)), itb.ProgrammingError, "ug_per_day"),
        (
            lambda: pump(program=itb.Continuous(ug_per_day=60_000.0)),
            itb.ProgrammingError,
            "ug_per_day",
        ),
    ],
)
def test_construction_errors_are_typed_and_name_the_field(make, error, field) -> None:
    with pytest.raises(error) as err:
        make()
    assert isinstance(err.value, itb.ItbError)
    assert err.value.field == field


def test_steps_out_of_order_in_core_are_rejected() -> None:
    # Flex validates at construction; the core also rejects a hand-built tuple.
    p = pump()
    with pytest.raises(itb.ValidationError) as err:
        p.core.set_program(("flex", "day", [(0, 1000), (5000, 1000), (4000, 1000)]))
    assert err.value.field == "steps[2].offset"


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (
            lambda p: p.bolus(10.0, timedelta(minutes=5), start=T0 - timedelta(seconds=1)),
            itb.ValidationError,
            "start",
        ),
        (lambda p: p.bolus(float("nan"), timedelta(minutes=5)), itb.ValidationError, "dose_ug"),
        (lambda p: p.bolus(10.0, timedelta(0)), itb.ValidationError, "duration"),
        (
            lambda p: p.bolus(2000.0, timedelta(hours=1)),
            itb.ProgrammingError,
            "dose_ug",
        ),  # 24 mL/day + basal
        (lambda p: p.cancel_bolus(42), itb.ValidationError, "bolus_id"),
        (lambda p: p.refill(41.0, 2000), itb.ReservoirError, "added_ml"),
        (lambda p: p.refill(10.0, 0), itb.ValidationError, "concentration_ug_per_ml"),
        (
            lambda p: p.set_program(itb.Continuous(ug_per_day=10.0)),
            itb.ProgrammingError,
            "ug_per_day",
        ),
        (lambda p: p.advance_to(T0 - timedelta(days=1)), itb.ValidationError, "until"),
        (
            lambda p: p.advance_to(datetime(2027, 1, 1, tzinfo=UTC)),
            itb.ValidationError,
            "until",
        ),
        (lambda p: p.project(timedelta(days=-1)), itb.ValidationError, "horizon"),
        (lambda p: p.resume(), itb.ValidationError, "resume"),
    ],
)
def test_rejected_calls_are_typed_and_leave_the_pump_unchanged(call, error, field) -> None:
    p = pump()
    p.bolus(5.0, timedelta(minutes=30), start=T0 + timedelta(hours=1))
    p.advance(timedelta(minutes=10))
    before = p.snapshot()
    with pytest.raises(error) as err:
        call(p)
    assert err.value.field == field
    assert str(err.value)  # a readable message
    assert p.snapshot() == before


def test_out_of_range_messages_name_the_allowed_range() -> None:
    with pytest.raises(itb.ProgrammingError) as err:
        pump(program=itb.Continuous(ug_per_day=50.0))  # 25 µL/day < 48 µL/day minimum
    assert "96" in str(err.value) and "48000" in str(
        err.value
    )  # allowed 96..=48000 µg/day at 2000 µg/mL


def test_snapshot_errors() -> None:
    good = pump().snapshot()
    for bad in (b"", b"not a snapshot", good[:-3], good[:20] + bytes([good[20] ^ 1]) + good[21:]):
        with pytest.raises(itb.SnapshotError):
            itb.Pump.restore(bad)
