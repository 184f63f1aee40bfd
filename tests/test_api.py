"""Hand-computed cases of the public API (every expected value is derived in the comments from
DESIGN.md's delivery model), and the typed errors with the field they name.

Notation: D = 86_400_000 ms/day; q = stroke volume (nL); a rate of r nL/day adds r to the
accumulator A per ms; stroke k fires at the first integer ms t with A(t) >= k·q·D.
With q = 2000: q·D = 172_800_000_000.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta, timezone

import itb
import pytest
from itb import _core

D = 86_400_000
H = 3_600_000
MIN = 60_000
Q = 2000
QD = Q * D
T0 = datetime(2026, 1, 5, 8, 0)  # a Monday, 08:00 (DESIGN.md's example start)
MIDNIGHT = datetime(2026, 1, 5)
MS = timedelta(milliseconds=1)


def model(**kw):
    """A SynchroMed-II-like model without battery: q = 2000 nL, 0.048..24 mL/day, low 2 mL."""
    base = dict(
        name="rig",
        reservoir_ml=40.0,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        low_reservoir_ml=2.0,
        pump_path_ul=0.0,
    )
    base.update(kw)
    return itb.PumpModel(**base)


def pump(program=None, *, now=T0, reservoir_ml=40.0, conc=2000, m=None, **kw):
    return itb.Pump(
        m or model(),
        now=now,
        reservoir_ml=reservoir_ml,
        concentration_ug_per_ml=conc,
        program=program if program is not None else itb.Continuous(ug_per_day=400.0),
        **kw,
    )


def kinds(
    events,
    only=(
        "low_reservoir",
        "reservoir_empty",
        "bolus_started",
        "bolus_completed",
        "bolus_cancelled",
        "program_changed",
        "refilled",
        "concentration_changed",
    ),
):
    return [(e.time, e.kind) for e in events if e.kind in only]


# --------------------------------------------------------------------------------------------
# Continuous delivery
# --------------------------------------------------------------------------------------------


def test_400ug_per_day_at_2000_is_0_2_ml_per_day():
    # 400 µg/day = 400_000 ng/day; × 1000 / 2000 µg/mL = 200_000 nL/day = 0.2 mL/day.
    p = pump(m=itb.models.SYNCHROMED_II_40)
    assert p._core.schedule[2] == [(0, 200_000)]
    # first stroke: A reaches q·D = 172.8e9 at 172.8e9 / 200_000 = 864_000 ms = 14 min 24 s
    assert p.project(timedelta(days=1)).next_stroke == T0 + timedelta(minutes=14, seconds=24)
    _, times = p.advance_recording(T0 + timedelta(minutes=14, seconds=24) - MS)
    assert len(times) == 0
    _, times = p.advance_recording(T0 + timedelta(minutes=14, seconds=24))
    assert list(times) == [p.now_ms]
    # by day 30: floor(200_000 × 30 / 2000) = 3000 strokes; the 3000th exactly at day 30
    events = p.advance(timedelta(days=30) - timedelta(minutes=14, seconds=24))
    assert p.now == T0 + timedelta(days=30)
    assert p.strokes == 3000
    batches = [e for e in events if e.kind == "stroke_batch"]
    assert batches[-1].time == T0 + timedelta(days=30)
    assert sum(e.data["count"] for e in batches) == 2999
    assert p.pumped_nl == 6_000_000  # 3000 × 2000 nL = 6 mL
    assert p.reservoir_nl == 34_000_000 and p.reservoir_ml == 34.0
    # the path starts full of the same drug, so the tip delivered 6 mL at 2000 µg/mL = 12 mg
    assert p.delivered_nl == 6_000_000
    assert p.delivered_pg == 6_000_000 * 2000
    assert p.delivered_ug == 12_000.0


def test_continuous_with_remainder_350ug():
    # 350 µg/day at 2000 -> 175_000 nL/day. Stroke 1 at ceil(172.8e9 / 175_000) = ceil(987_428.57)
    # = 987_429 ms; stroke 7 at 7 q D / 175_000 = 1.2096e12 / 175_000 = 6_912_000 ms exactly.
    p = pump(itb.Continuous(ug_per_day=350.0))
    _, times = p.advance_recording(T0 + timedelta(milliseconds=6_912_000))
    t0 = p.now_ms - 6_912_000
    assert [t - t0 for t in times[:2]] == [987_429, 1_974_858]  # 2: ceil(1_974_857.14)
    assert times[-1] - t0 == 6_912_000 and len(times) == 7


def test_zero_rate_is_allowed_and_never_strokes():
    p = pump(itb.Continuous(ug_per_day=0.0))
    proj = p.project(timedelta(days=3650))
    assert (proj.next_stroke, proj.low_reservoir, proj.reservoir_empty) == (None, None, None)
    p.advance(timedelta(days=400))
    assert p.strokes == 0


# --------------------------------------------------------------------------------------------
# Flex programs
# --------------------------------------------------------------------------------------------


def test_flex_day_example_from_design():
    # Flex(day): 300 µg/day from 00:00, 500 from 08:00, 300 from 22:00, at 2000 µg/mL
    #   -> 150_000, 250_000, 150_000 nL/day (a stroke per 1_152_000 ms and per 691_200 ms).
    # Start Monday 08:00 (A = 0):
    # * [08:00, 22:00) = 50_400_000 ms × 250_000 = 1.26e13 = 72.92 q·D -> 72 strokes, stroke k at
    #   08:00 + k × 691_200 ms; the 72nd at 08:00 + 49_766_400 ms = 21:49:26.400.
    #   Remainder at 22:00: 1.26e13 − 72 × 1.728e11 = 1.584e11.
    # * stroke 73 needs 1.44e10 more at 150_000 -> 96_000 ms -> 22:01:36; then every 19.2 min:
    #   (7_200_000 − 96_000) / 1_152_000 = 6.17 -> strokes 74..79, the 79th at 23:56:48.
    #   Remainder at 24:00: 192_000 ms × 150_000 = 2.88e10.
    # * Tuesday: stroke 80 needs 1.44e11 / 150_000 = 960_000 ms -> 00:16:00; by 08:00
    #   (28_800_000 − 960_000) / 1_152_000 = 24.17 -> strokes 81..104, the 104th at 07:56:48.
    # Check: one day delivers 150_000 × 10/24 + 250_000 × 14/24 = 208_333.3 nL = 104.17 strokes ✓
    flex = itb.Flex(period="day", steps=[(time(0), 300.0), (time(8), 500.0), (time(22), 300.0)])
    p = pump(flex)
    assert p._core.schedule[2] == [(0, 150_000), (8 * H, 250_000), (22 * H, 150_000)]
    _, times = p.advance_recording(T0 + timedelta(days=1))
    t = [datetime(1970, 1, 1) + timedelta(milliseconds=int(x)) for x in times]
    assert len(t) == 104
    assert t[0] == T0 + timedelta(milliseconds=691_200)
    assert t[71] == datetime(2026, 1, 5, 21, 49, 26, 400_000)
    assert t[72] == datetime(2026, 1, 5, 22, 1, 36)
    assert t[78] == datetime(2026, 1, 5, 23, 56, 48)
    assert t[79] == datetime(2026, 1, 6, 0, 16)
    assert t[103] == datetime(2026, 1, 6, 7, 56, 48)
    assert p._core.accumulator == 28_800_000_000  # 2.88e10 carried into the next day


def test_flex_week_starts_monday():
    # Week program: Monday 960 µg/day (480_000 nL/day: a stroke every 360_000 ms = 6 min), else 0.
    # From Monday 2026-01-05 00:00: 240 strokes, the 240th exactly at Tuesday 00:00
    # (A(D) = 480_000 × D = 240 q·D); then nothing until next Monday 00:06.
    flex = itb.Flex(period="week", steps=[((0, time(0)), 960.0), ((1, time(0)), 0.0)])
    p = pump(flex, now=MIDNIGHT)
    assert p.project(timedelta(hours=1)).next_stroke == MIDNIGHT + timedelta(minutes=6)
    p.advance_to(MIDNIGHT + timedelta(days=1))
    assert p.strokes == 240
    assert p.project(timedelta(days=7)).next_stroke == datetime(2026, 1, 12, 0, 6)
    # from Tuesday 00:00 that stroke is 6 days 6 min away; the horizon bound is inclusive
    assert p.project(timedelta(days=6, minutes=6)).next_stroke == datetime(2026, 1, 12, 0, 6)
    assert p.project(timedelta(days=6, minutes=6) - MS).next_stroke is None
    p.advance_to(datetime(2026, 1, 12, 0, 5, 59, 999_000))
    assert p.strokes == 240


def test_program_change_keeps_the_remainder():
    # 200_000 nL/day from 08:00; at +500_000 ms A = 1e11 (of 1.728e11). Switch to 480 µg/day
    # (240_000 nL/day): missing 7.28e10 / 240_000 = 303_333.3 -> stroke 1 at +803_334 ms.
    p = pump()
    p.advance(timedelta(milliseconds=500_000))
    p.set_program(itb.Continuous(ug_per_day=480.0))
    events, times = p.advance_recording(T0 + timedelta(milliseconds=900_000))
    assert [t - p.now_ms + 900_000 for t in times] == [803_334]
    assert kinds(events) == [(T0 + timedelta(milliseconds=500_000), "program_changed")]


# --------------------------------------------------------------------------------------------
# Boluses
# --------------------------------------------------------------------------------------------


def test_a_bolus_alone():
    # 0 basal; 50 µg over 30 min at 2000 µg/mL -> V = 25_000 nL, T = 1_800_000 ms;
    # r_b = ceil(25_000 × D / 1.8e6) = 1_200_000 nL/day exactly, so it ends at start + 30 min.
    # A stroke every 172.8e9 / 1.2e6 = 144_000 ms: 12 strokes (25_000 / 2000 = 12.5), the 12th at
    # +1_728_000 ms; the last half stroke stays in the accumulator (1000 nL·D = 8.64e10).
    p = pump(itb.Continuous(ug_per_day=0.0))
    start = T0 + timedelta(hours=1)
    bid = p.bolus(dose_ug=50.0, duration=timedelta(minutes=30), start=start)
    (b,) = p.boluses
    assert (b.id, b.start, b.end, b.volume_nl, b.requested_ng, b.rate_nl_per_day) == (
        bid,
        start,
        start + timedelta(minutes=30),
        25_000,
        50_000,
        1_200_000,
    )
    assert b.dose_pg == 25_000 * 2000 and b.dose_ug == 50.0  # 25 µL at 2000 µg/mL
    assert p.project(timedelta(days=1)).next_stroke == start + timedelta(milliseconds=144_000)
    events, times = p.advance_recording(T0 + timedelta(days=1))
    s = p.now_ms - D + H
    assert [t - s for t in times] == [144_000 * k for k in range(1, 13)]
    assert kinds(events) == [
        (start, "bolus_started"),
        (start + timedelta(minutes=30), "bolus_completed"),
    ]
    assert p.strokes == 12 and p.boluses == []
    assert p._core.accumulator == 1000 * D


def test_bolus_now_and_cancel():
    # 0 basal; 20 µg over 1 h at 2000 -> V = 10_000 nL at 240_000 nL/day (a stroke per 720_000
    # ms). Cancelled at +1_000_000 ms: A = 2.4e11 -> 1 stroke (at 720_000), never another.
    p = pump(itb.Continuous(ug_per_day=0.0))
    bid = p.bolus(20.0, timedelta(hours=1))  # start=None: now
    p.advance(timedelta(milliseconds=1_000_000))
    p.cancel_bolus(bid)
    events = p.advance(timedelta(days=3))
    assert p.strokes == 1
    assert kinds(events) == [(T0 + timedelta(milliseconds=1_000_000), "bolus_cancelled")]
    with pytest.raises(itb.ValidationError) as exc:
        p.cancel_bolus(bid)  # already cancelled: no longer a known scheduled/running bolus
    assert exc.value.field == "bolus_id"


def test_bolus_on_top_of_basal_at_the_max_rate_boundary():
    # basal 400 µg/day = 200_000 nL/day; max 24_000_000 -> 23_800_000 nL/day of headroom.
    # V = 47.6 µg at 2000 = 23_800 nL over T = 86_400 ms: r_b = 23_800 × D / 86_400 = 23_800_000
    # exactly: allowed. Over 86_399 ms: r_b = ceil(2.05632e12 / 86_399) = 23_800_276: too fast.
    p = pump()
    with pytest.raises(itb.ProgrammingError) as exc:
        p.bolus(47.6, timedelta(milliseconds=86_399))
    assert exc.value.field == "dose_ug"
    p.bolus(47.6, timedelta(milliseconds=86_400))
    assert p.boluses[0].rate_nl_per_day == 23_800_000
    # the same fast bolus alone (0 basal) is within the max: 23_800_276 <= 24_000_000
    q = pump(itb.Continuous(ug_per_day=0.0))
    q.bolus(47.6, timedelta(milliseconds=86_399))


def test_bolus_checked_against_a_later_flex_step():
    # flex 300 (150_000 nL/day) until 08:00, 500 (250_000) from 08:00. A bolus from 07:00 for 2 h
    # at r_b = 23_800_000 nL/day fits before 08:00 (150_000 + 23.8e6 <= 24e6) but not after
    # (250_000 + 23.8e6 > 24e6): rejected. V = 23.8e6 × 2/24 = 1_983_333.3 -> use V = 1_983_333 nL
    # -> r_b = ceil(1_983_333 × D / 7.2e6) = ceil(23_799_996) = 23_799_996 (still > 23_750_000).
    flex = itb.Flex(period="day", steps=[(time(0), 300.0), (time(8), 500.0)])
    p = pump(flex, now=datetime(2026, 1, 5, 6, 0))
    dose_ug = 1_983_333 * 2000 / 1e6  # 3966.666 µg -> 3_966_666 ng -> 1_983_333 nL
    before = p.snapshot()
    with pytest.raises(itb.ProgrammingError) as exc:
        p.bolus(dose_ug, timedelta(hours=2), start=datetime(2026, 1, 5, 7, 0))
    assert exc.value.field == "dose_ug"
    assert p.snapshot() == before
    # Half the volume in 1 h, ending at 08:00 exactly, only meets the 150_000 step:
    # V = 991_667 nL -> r_b = ceil(991_667 × 24) = 23_800_008; 150_000 + 23_800_008 = 23_950_008
    # <= 24e6 -> accepted; its length ceil(V·D / r_b) = 8.5680028800e13 / 23_800_008 = 3_600_000.
    p.bolus(991_667 * 2000 / 1e6, timedelta(hours=1), start=datetime(2026, 1, 5, 7, 0))
    assert p.boluses[0].end == datetime(2026, 1, 5, 8, 0)


# --------------------------------------------------------------------------------------------
# Reservoir alarms and refills
# --------------------------------------------------------------------------------------------


def test_low_reservoir_and_empty_times_for_a_small_reservoir():
    # 3.0 mL at 200_000 nL/day (a stroke per 864_000 ms), low threshold 2 mL, q = 2000:
    # low after stroke k with 3_000_000 − 2000 k <= 2_000_000 -> k = 500 -> at 500 × 864_000 ms
    # = 5 days; empty after stroke k with 3_000_000 − 2000 k < 2000 -> k = 1500 -> 15 days.
    p = pump(reservoir_ml=3.0)
    proj = p.project(timedelta(days=30))
    assert proj.next_stroke == T0 + timedelta(milliseconds=864_000)
    assert proj.low_reservoir == T0 + timedelta(days=5)
    assert proj.reservoir_empty == T0 + timedelta(days=15)
    # a horizon that ends one ms before the empty alarm does not see it
    assert p.project(timedelta(days=15) - MS).reservoir_empty is None
    events = p.advance(timedelta(days=20))
    alarms = [
        (e.time, e.kind, e.severity)
        for e in events
        if e.kind in ("low_reservoir", "reservoir_empty")
    ]
    assert alarms == [
        (T0 + timedelta(days=5), "low_reservoir", "non_critical"),
        (T0 + timedelta(days=15), "reservoir_empty", "critical"),
    ]
    assert p.strokes == 1500 and p.reservoir_nl == 0 and p.is_empty
    proj = p.project(timedelta(days=3650))
    assert (proj.next_stroke, proj.low_reservoir, proj.reservoir_empty) == (None, None, None)

    # Refill 1 mL at 4000 µg/mL: 400 µg/day -> 100_000 nL/day (a stroke per 1_728_000 ms). The
    # accumulator was exactly 0 at the empty stroke and frozen since. 1 mL <= 2 mL: low at once.
    # Empty after 500 strokes (1_000_000 / 2000) -> 500 × 1_728_000 ms = 10 days later.
    now = p.now
    rep = p.refill(1.0, 4000)
    assert (rep.expected_nl, rep.aspirated_nl) == (0, 0)
    assert p._core.schedule[2] == [(0, 100_000)]
    assert p.project(timedelta(days=30)).reservoir_empty == now + timedelta(days=10)
    events = p.advance(timedelta(days=30))
    # causal order: the refill, then what it caused (field report 5)
    assert kinds(events) == [
        (now, "refilled"),
        (now, "concentration_changed"),
        (now, "low_reservoir"),
        (now + timedelta(days=10), "reservoir_empty"),
    ]
    # conservation (no dead volume): filled 4 mL = reservoir 0 + delivered 4 mL + withdrawn 0
    assert p.filled_nl == 4_000_000 == p.reservoir_nl + p.delivered_nl + p.withdrawn_nl


def test_fill_at_threshold_alarms_at_construction_time():
    p = pump(reservoir_ml=2.0)  # 2 mL <= 2 mL threshold
    events = p.advance(timedelta(0))
    assert [(e.time, e.kind) for e in events] == [(T0, "low_reservoir")]


def test_refill_before_empty_withdraws_the_rest():
    # 10 mL, 200_000 nL/day: after 5 days 500 strokes = 1 mL pumped -> 9 mL left, withdrawn.
    p = pump(reservoir_ml=10.0)
    p.advance(timedelta(days=5))
    rep = p.refill(20.0, 2000)
    assert rep.expected_nl == 9_000_000
    assert p.withdrawn_nl == 9_000_000 and p.reservoir_nl == 20_000_000
    assert p.filled_nl == 30_000_000


# --------------------------------------------------------------------------------------------
# Rounding at the boundary (half-even from the float's shortest decimal form)
# --------------------------------------------------------------------------------------------


def test_bolus_dose_rounding_half_even():
    # 0.0125 µg = 12.5 ng -> 12 (even); 0.0135 µg = 13.5 ng -> 14. At 1 µg/mL (1 ng/µL)
    # 12 ng = 12 µL = 12_000 nL.
    m = model(min_rate_ml_per_day=0.001)
    p = pump(itb.Continuous(ug_per_day=0.0), conc=1, m=m)
    p.bolus(0.0125, timedelta(days=1))
    p.bolus(0.0135, timedelta(days=1))
    assert [(b.requested_ng, b.volume_nl, b.dose_pg) for b in p.boluses] == [
        (12, 12_000, 12_000),
        (14, 14_000, 14_000),
    ]


def test_volume_rounding_half_even():
    # mL -> nL: 0.0000025 mL = 2.5 nL -> 2; 0.0000035 mL = 3.5 nL -> 4; 0.1 mL is exactly 100_000
    m = model(stroke_nl=1, low_reservoir_ml=0.0, min_rate_ml_per_day=0.000001)
    assert pump(m=m, reservoir_ml=0.0000025).reservoir_nl == 2
    assert pump(m=m, reservoir_ml=0.0000035).reservoir_nl == 4
    assert pump(m=m, reservoir_ml=0.1).reservoir_nl == 100_000
    # a bolus volume: 0.005 µg at 2000 µg/mL = 5 ng × 1000 / 2000 = 2.5 nL -> 2;
    # 0.007 µg -> 3.5 nL -> 4
    p = pump(itb.Continuous(ug_per_day=0.0), m=m)
    p.bolus(0.005, timedelta(hours=1))
    p.bolus(0.007, timedelta(hours=1))
    assert [b.volume_nl for b in p.boluses] == [2, 4]


def test_rate_rounding_half_even_and_min_boundary():
    # SynchroMed-like min 0.048 mL/day = 48_000 nL/day = 96 µg/day at 2000 µg/mL.
    # 95.999 µg/day = 95_999 ng/day -> 47_999.5 nL/day -> half-even 48_000: allowed.
    # 95.997 µg/day -> 47_998.5 -> 47_998 < 48_000: a ProgrammingError.
    # 95.9975 µg/day -> 95_997.5 ng -> 95_998 (even) -> 47_999 -> ProgrammingError.
    p = pump(itb.Continuous(ug_per_day=95.999))
    assert p._core.schedule[2] == [(0, 48_000)]
    for bad in (95.997, 95.9975):
        with pytest.raises(itb.ProgrammingError) as exc:
            pump(itb.Continuous(ug_per_day=bad))
        assert exc.value.field == "ug_per_day"
    # a non-zero dose rate that rounds to 0 nL/day is never silently off (field report 3):
    # 0.001 µg/day = 1 ng/day -> 0.5 nL/day -> 0 is a ProgrammingError; exactly 0 is off.
    with pytest.raises(itb.ProgrammingError) as exc:
        pump(itb.Continuous(ug_per_day=0.001))
    assert exc.value.field == "ug_per_day"
    assert pump(itb.Continuous(ug_per_day=0.0))._core.schedule[2] == [(0, 0)]
    # max 24 mL/day = 48_000 µg/day at 2000: exactly the max is allowed, 48_000.002 is not
    # (24_000_001 nL/day)
    pump(itb.Continuous(ug_per_day=48_000.0))
    with pytest.raises(itb.ProgrammingError):
        pump(itb.Continuous(ug_per_day=48_000.002))


def test_times_truncate_to_the_millisecond():
    p = pump(now=datetime(2026, 1, 5, 8, 0, 0, 999_999))
    assert p.now == datetime(2026, 1, 5, 8, 0, 0, 999_000)
    # an int is taken as pump-clock ms
    q = pump(now=1_000)
    assert q.now == datetime(1970, 1, 1, 0, 0, 1)


# --------------------------------------------------------------------------------------------
# Typed errors (each a subclass of itb.ItbError with .field)
# --------------------------------------------------------------------------------------------


def raises(cls, field, fn):
    with pytest.raises(cls) as exc:
        fn()
    assert isinstance(exc.value, itb.ItbError)
    assert exc.value.field == field, f"field {exc.value.field!r} != {field!r}: {exc.value}"
    return exc.value


def test_error_hierarchy():
    for cls in (itb.ValidationError, itb.ProgrammingError, itb.ReservoirError, itb.SnapshotError):
        assert issubclass(cls, itb.ItbError)
    assert issubclass(itb.ValidationError, ValueError)


def test_tz_aware_datetimes_are_validation_errors():
    aware = datetime(2026, 1, 5, 8, tzinfo=UTC)
    raises(itb.ValidationError, "now", lambda: pump(now=aware))
    p = pump()
    raises(itb.ValidationError, "until", lambda: p.advance_to(aware + timedelta(days=1)))
    raises(
        itb.ValidationError,
        "start",
        lambda: p.bolus(1.0, timedelta(hours=1), start=aware + timedelta(days=1)),
    )
    tz_time = time(8, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(itb.ValidationError) as exc:
        itb.Flex(period="day", steps=[(time(0), 300.0), (tz_time, 500.0)])
    assert exc.value.field == "steps[1].offset"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0, -0.001])
def test_bad_doses_are_validation_errors(bad):
    raises(itb.ValidationError, "ug_per_day", lambda: pump(itb.Continuous(ug_per_day=bad)))
    p = pump()
    raises(itb.ValidationError, "ug_per_day", lambda: p.set_program(itb.Continuous(ug_per_day=bad)))
    raises(
        itb.ValidationError,
        "steps[1].ug_per_day",
        lambda: pump(itb.Flex(period="day", steps=[(time(0), 300.0), (time(8), bad)])),
    )
    raises(itb.ValidationError, "dose_ug", lambda: p.bolus(bad, timedelta(hours=1)))


def test_flex_shape_errors():
    # steps out of order: the third step (08:00) comes before the second (09:00)
    raises(
        itb.ValidationError,
        "steps[2].offset",
        lambda: pump(
            itb.Flex(period="day", steps=[(time(0), 0.0), (time(9), 100.0), (time(8), 100.0)])
        ),
    )
    raises(
        itb.ValidationError, "period", lambda: itb.Flex(period="month", steps=[(time(0), 100.0)])
    )
    raises(itb.ValidationError, "period", lambda: itb.Flex(period="Day", steps=[(time(0), 100.0)]))
    # the first step must start at 00:00
    raises(
        itb.ValidationError,
        "steps[0].offset",
        lambda: pump(itb.Flex(period="day", steps=[(time(1), 100.0)])),
    )
    # (weekday, time) offsets need a week period
    with pytest.raises(itb.ValidationError):
        itb.Flex(period="day", steps=[((0, time(0)), 100.0)])
    # at most 13 step starts a day (SynchroMed II flex)
    with pytest.raises(itb.ValidationError):
        pump(itb.Flex(period="day", steps=[(time(h), 100.0) for h in range(14)]))
    pump(itb.Flex(period="day", steps=[(time(h), 100.0) for h in range(13)]))


def test_overfill_is_a_reservoir_error():
    raises(itb.ReservoirError, "reservoir_ml", lambda: pump(reservoir_ml=40.000001))
    pump(reservoir_ml=40.0)  # exactly full is fine
    p = pump()
    raises(itb.ReservoirError, "added_ml", lambda: p.refill(40.5, 2000))


def test_concentration_errors():
    raises(itb.ValidationError, "concentration_ug_per_ml", lambda: pump(conc=0))
    raises(itb.ValidationError, "concentration_ug_per_ml", lambda: pump(conc=-50))
    raises(itb.ValidationError, "concentration_ug_per_ml", lambda: pump(conc=100_001))
    raises(itb.ValidationError, "concentration_ug_per_ml", lambda: pump(conc=math.nan))
    p = pump()
    raises(itb.ValidationError, "concentration_ug_per_ml", lambda: p.refill(20.0, 0))


def test_rate_limits_are_programming_errors():
    # above the max: 48_010 µg/day at 2000 = 24_005_000 nL/day > 24_000_000
    raises(itb.ProgrammingError, "ug_per_day", lambda: pump(itb.Continuous(ug_per_day=48_010.0)))
    # between 0 and the min: 50 µg/day = 25_000 nL/day < 48_000
    raises(itb.ProgrammingError, "ug_per_day", lambda: pump(itb.Continuous(ug_per_day=50.0)))
    p = pump()
    raises(
        itb.ProgrammingError, "ug_per_day", lambda: p.set_program(itb.Continuous(ug_per_day=50.0))
    )
    raises(
        itb.ProgrammingError,
        "steps[1].ug_per_day",
        lambda: p.set_program(itb.Flex(period="day", steps=[(time(0), 0.0), (time(8), 50.0)])),
    )
    # a refill to a concentration that makes the program's rate too low is refused too:
    # 400 µg/day at 10_000 µg/mL = 40_000 nL/day < 48_000
    before = p.snapshot()
    with pytest.raises(itb.ProgrammingError):
        p.refill(20.0, 10_000)
    assert p.snapshot() == before


def test_bolus_errors():
    p = pump()
    raises(itb.ValidationError, "start", lambda: p.bolus(10.0, timedelta(hours=1), start=T0 - MS))
    raises(
        itb.ValidationError,
        "start",
        lambda: p.bolus(10.0, timedelta(hours=1), start=T0 - timedelta(days=1)),
    )
    p.bolus(10.0, timedelta(hours=1), start=T0)  # now itself is fine
    # 1000 µg (500_000 nL) in one minute: 7.2e8 nL/day on top of the basal > 24e6
    raises(itb.ProgrammingError, "dose_ug", lambda: p.bolus(1000.0, timedelta(minutes=1)))
    raises(itb.ValidationError, "bolus_id", lambda: p.cancel_bolus(999))
    raises(itb.ValidationError, "duration", lambda: p.bolus(10.0, timedelta(0)))


def test_bolus_from_an_empty_reservoir_is_a_reservoir_error():
    p = pump(reservoir_ml=0.001)  # 1000 nL < one stroke: empty from the start
    assert p.is_empty
    with pytest.raises(itb.ReservoirError):
        p.bolus(1.0, timedelta(hours=1))


def test_program_changed_is_stamped_at_the_call():
    p = pump()
    p.advance(timedelta(hours=1))
    p.set_program(itb.Continuous(ug_per_day=480.0))
    events = p.advance(timedelta(hours=1))
    assert [(e.time, e.kind) for e in events if e.kind == "program_changed"] == [
        (T0 + timedelta(hours=1), "program_changed")
    ]


# --------------------------------------------------------------------------------------------
# Boundary integers: out-of-range ints should be typed errors too
# --------------------------------------------------------------------------------------------


def test_negative_bolus_id_is_a_validation_error():
    p = pump()
    raises(itb.ValidationError, "bolus_id", lambda: p.cancel_bolus(-1))


def test_time_int_beyond_i64_is_a_validation_error():
    p = pump()
    raises(itb.ValidationError, "until", lambda: p.advance_to(2**63 - 1))  # the typed error
    raises(itb.ValidationError, "until", lambda: p.advance_to(2**63))


def test_core_error_classes_are_the_python_ones():
    # errors raised inside the Rust core arrive as the itb.errors classes
    with pytest.raises(itb.ReservoirError) as exc:
        _core.Pump(
            model=model().exact(),
            now_ms=0,
            reservoir_nl=40_000_001,
            concentration=2000,
            program=("continuous", 0),
            catheter_nl=0,
        )
    assert exc.value.field == "reservoir_ml"


def test_numpy_scalars_are_accepted_where_python_ones_are():
    import numpy as np

    p = pump(itb.Continuous(ug_per_day=0.0))
    q = pump(itb.Continuous(ug_per_day=0.0))
    start = np.datetime64("2026-01-05T09:00:00.0009")  # floored to the ms like a datetime
    p.bolus(dose_ug=np.float64(5.0), duration=np.timedelta64(10, "m"), start=start)
    q.bolus(dose_ug=5.0, duration=timedelta(minutes=10), start=datetime(2026, 1, 5, 9))
    assert p.snapshot() == q.snapshot()
    p.cancel_bolus(np.int64(1))
    p.advance(np.timedelta64(60_000, "ms"))
    assert p.now_ms == q.now_ms + 60_000
    with pytest.raises(itb.ValidationError, match="bare number"):
        p.advance(np.int64(60_000))  # a duration is never a bare number, numpy's neither
    for bad, field in [
        (np.timedelta64(500, "us"), "duration"),
        (np.timedelta64(-1, "us"), "duration"),
        (np.timedelta64("NaT"), "duration"),
        (np.bool_(True), "duration"),
    ]:
        with pytest.raises(itb.ValidationError) as err:
            p.bolus(dose_ug=5.0, duration=bad)
        assert err.value.field == field
    with pytest.raises(itb.ValidationError) as err:
        p.advance_to(np.datetime64("NaT"))
    assert err.value.field == "until"
