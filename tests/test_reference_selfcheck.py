"""Self-checks of the pure-Python reference model against HAND-COMPUTED numbers.

Every expected value below is derived in the comments from the delivery model, not copied from
the model's output.  Notation: D = 86_400_000 ms/day, q = stroke volume (nL); a rate of r nL/day
adds r to A per ms; stroke k fires at the first t with A(t) >= k·q·D.
With q = 2000: q·D = 2000 × 86_400_000 = 172_800_000_000.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

try:  # tests/ on sys.path (pytest rootdir-less "prepend" import mode)
    from reference import (
        D,
        RefPump,
        bolus_volume_nl,
        ceil_div,
        round_half_even,
        to_scaled,
        volume_rate_nl_per_day,
    )
except ImportError:  # tests/ is a package
    from tests.reference import (
        D,
        RefPump,
        bolus_volume_nl,
        ceil_div,
        round_half_even,
        to_scaled,
        volume_rate_nl_per_day,
    )

Q = 2000
QD = Q * D  # 172_800_000_000
H = 3_600_000  # ms per hour
BIG = 10**12  # a reservoir/capacity that never runs out in these tests


def make(program, *, now=0, reservoir=40_000_000, capacity=40_000_000, low=2_000_000, conc=2000):
    return RefPump(
        now_ms=now,
        stroke_nl=Q,
        capacity_nl=capacity,
        reservoir_nl=reservoir,
        low_reservoir_nl=low,
        conc_ug_per_ml=conc,
        program=program,
    )


def kinds(events):
    return [(t, k) for t, k, _ in events]


# ---------------------------------------------------------------- conversions


def test_to_scaled_rounding():
    assert to_scaled(0.0125, 3) == 12  # 12.5 ng -> tie -> even 12
    assert to_scaled(0.0135, 3) == 14  # 13.5 -> tie -> even 14
    assert to_scaled(2.5, 0) == 2
    assert to_scaled(3.5, 0) == 4
    assert to_scaled(-2.5, 0) == -2
    assert to_scaled(0.1, 6) == 100_000  # repr '0.1', not 0.1000000000000000055...
    assert to_scaled(40.0, 6) == 40_000_000  # 40 mL -> nL
    assert to_scaled(400.0, 3) == 400_000  # 400 µg/day -> ng/day
    assert to_scaled(1.0000005, 6) == 1_000_000  # 1_000_000.5 -> even
    assert to_scaled(1.0000015, 6) == 1_000_002  # 1_000_001.5 -> even
    assert to_scaled(7, 3) == 7000  # ints work too


def test_rate_and_volume_rounding():
    # 400_000 ng/day × 1000 / 2000 µg/mL = 200_000 nL/day exactly
    assert volume_rate_nl_per_day(400_000, 2000) == 200_000
    # 1 × 1000 / 2000 = 0.5 -> 0 ; 3 × 1000 / 2000 = 1.5 -> 2 ; 5 × 1000/2000 = 2.5 -> 2
    assert volume_rate_nl_per_day(1, 2000) == 0
    assert volume_rate_nl_per_day(3, 2000) == 2
    assert volume_rate_nl_per_day(5, 2000) == 2
    # 100 × 1000 / 3 = 33_333.33 -> 33_333 ; 200 × 1000 / 3 = 66_666.67 -> 66_667
    assert volume_rate_nl_per_day(100, 3) == 33_333
    assert volume_rate_nl_per_day(200, 3) == 66_667
    # 50 µg = 50_000 ng at 2000 µg/mL = 25_000 nL ; 25 ng at 10_000 = 2.5 nL -> 2
    assert bolus_volume_nl(50_000, 2000) == 25_000
    assert bolus_volume_nl(25, 10_000) == 2
    assert bolus_volume_nl(35, 10_000) == 4  # 3.5 -> 4
    assert round_half_even(Fraction(-5, 2)) == -2
    assert ceil_div(7, 2) == 4 and ceil_div(8, 2) == 4 and ceil_div(0, 3) == 0


# ---------------------------------------------------------------- continuous basal


def test_continuous_400ug_at_2000():
    # 400 µg/day at 2000 µg/mL -> 200_000 nL/day; one stroke every q·D / 200_000
    #   = 172_800_000_000 / 200_000 = 864_000 ms exactly (14.4 min), stroke k at k·864_000.
    t0 = 20_458 * D + 8 * H  # 2026-01-05 08:00 (any start works for a continuous program)
    p = make(("continuous", 400_000), now=t0)
    assert p.advance_to(t0 + 863_999) == []
    assert p.strokes == 0
    p.advance_to(t0 + 864_000)  # a stroke exactly at the boundary time fires
    assert p.stroke_times == [t0 + 864_000]
    # by day 30: floor(200_000 × 30 / 2000) = 3000 strokes = 6 mL, the last at exactly 30 days
    p.advance_to(t0 + 30 * D)
    assert p.strokes == 3000
    assert p.stroke_times[-1] == t0 + 30 * D
    assert p.stroke_times[:3] == [t0 + 864_000, t0 + 1_728_000, t0 + 2_592_000]
    assert p.pumped_nl == 6_000_000
    assert p.reservoir_nl == 40_000_000 - 6_000_000


def test_continuous_with_remainder():
    # 350 µg/day at 2000 µg/mL -> 175_000 nL/day.
    # stroke 1: ceil(172_800_000_000 / 175_000) = ceil(987_428.57) = 987_429
    # stroke 2: ceil(345_600_000_000 / 175_000) = ceil(1_974_857.14) = 1_974_858
    # stroke 7: 7 q D = 1_209_600_000_000 / 175_000 = 6_912_000 exactly
    p = make(("continuous", 350_000))
    p.advance_to(6_912_000)
    assert p.strokes == 7
    assert p.stroke_times[0] == 987_429
    assert p.stroke_times[1] == 1_974_858
    assert p.stroke_times[-1] == 6_912_000


def test_zero_rate_never_strokes():
    p = make(("continuous", 0))
    assert p.advance_to(365 * D) == []
    assert p.strokes == 0
    assert p.project(3650 * D) == {
        "next_stroke": None,
        "low_reservoir": None,
        "reservoir_empty": None,
    }


# ---------------------------------------------------------------- flex programs


def test_flex_day_from_midnight():
    # 240 µg/day on [00:00, 12:00), 480 µg/day on [12:00, 24:00) at 2000 µg/mL
    #   -> 120_000 and 240_000 nL/day -> one stroke per 1_440_000 ms (24 min) and 720_000 ms.
    # Start at t = 0 (midnight). First half: 43_200_000 / 1_440_000 = 30 strokes, the 30th at 12:00.
    # Second half: 43_200_000 / 720_000 = 60 strokes, the 60th at 24:00. 90 strokes/day = 180 µL
    # (= 120_000 / 2 + 240_000 / 2 nL ✓).
    prog = ("flex", "day", [(0, 240_000), (12 * H, 480_000)])
    p = make(prog)
    p.advance_to(D)
    assert p.strokes == 90
    assert p.stroke_times[0] == 1_440_000
    assert p.stroke_times[29] == 12 * H
    assert p.stroke_times[30] == 12 * H + 720_000
    assert p.stroke_times[89] == D
    # the program repeats: day 2 is identical, shifted by D
    p.advance_to(2 * D)
    assert p.strokes == 180
    assert p.stroke_times[90] == D + 1_440_000


def test_flex_day_remainder_carries_across_step_boundary():
    # Same program, start at 06:10 = 22_200_000 ms.
    # [06:10, 12:00) = 21_000_000 ms × 120_000 = 2_520_000_000_000 = 14.58 q·D -> 14 strokes,
    #   stroke k at 22_200_000 + k × 1_440_000, the 14th at 22_200_000 + 20_160_000 = 42_360_000.
    # Remainder at 12:00: 2.52e12 − 14 × 1.728e11 = 1.008e11; missing 1.728e11 − 1.008e11 = 7.2e10
    #   at 240_000/ms -> 300_000 ms -> stroke 15 at 43_200_000 + 300_000 = 43_500_000,
    #   then every 720_000 ms.
    prog = ("flex", "day", [(0, 240_000), (12 * H, 480_000)])
    p = make(prog, now=22_200_000)
    p.advance_to(44_300_000)
    assert p.stroke_times[0] == 22_200_000 + 1_440_000
    assert p.stroke_times[13] == 42_360_000
    assert p.stroke_times[14] == 43_500_000
    assert p.stroke_times[15] == 44_220_000
    assert p.strokes == 16


def test_flex_week_starts_monday():
    # Week program: Monday (offset 0) 0 µg/day, Tuesday..Sunday (offset 1 day) 480 µg/day
    #   -> 240_000 nL/day = one stroke per 720_000 ms.
    # t = 0 is Thursday 00:00; Monday 00:00 is t = 4 D. Thu..Sun = 4 days = 345_600_000 ms
    #   -> 480 strokes, the last at exactly 4 D. Monday: nothing. Tuesday 00:00 = 5 D, next stroke
    #   at 5 D + 720_000.
    prog = ("flex", "week", [(0, 0), (D, 480_000)])
    p = make(prog)
    p.advance_to(5 * D)
    assert p.strokes == 480
    assert p.stroke_times[-1] == 4 * D
    p.advance_to(5 * D + 720_000)
    assert p.strokes == 481
    assert p.stroke_times[-1] == 5 * D + 720_000
    # next Monday (11 D) is again silent: 6 full days Tue..Sun = 6 × 120 = 720 more strokes
    p.advance_to(12 * D)
    assert p.strokes == 480 + 720
    assert p.stroke_times[-1] == 11 * D


def test_set_program_keeps_remainder():
    # 200_000 nL/day from t = 0; at t = 500_000, A = 1e11 (of 1.728e11).
    # Switch to 480 µg/day -> 240_000 nL/day: missing 7.28e10 / 240_000 = 303_333.3 -> 303_334
    #   -> stroke 1 at 803_334 (not at 500_000 + 720_000, which would ignore the remainder).
    p = make(("continuous", 400_000))
    p.advance_to(500_000)
    p.set_program(("continuous", 480_000))
    p.advance_to(900_000)
    assert p.stroke_times == [803_334]


# ---------------------------------------------------------------- boluses


def test_bolus_alone_exact():
    # 0 basal; bolus 20 µg = 20_000 ng at 2000 µg/mL -> V = 10_000 nL over T = 1 h = 3_600_000 ms.
    # V·D = 864_000_000_000; r_b = ceil(864e9 / 3.6e6) = 240_000 nL/day exactly;
    # e = s + 864e9 / 240_000 = s + 3_600_000. Strokes every 172.8e9 / 240_000 = 720_000 ms:
    # 5 strokes (10_000 / 2000) at s + 720k, 1.44M, 2.16M, 2.88M, 3.6M.
    s = 10 * D
    p = make(("continuous", 0), now=s)
    bid = p.bolus(20_000, H)
    assert bid == 1
    events = p.advance_to(s + 2 * H)
    assert p.stroke_times == [s + 720_000 * k for k in range(1, 6)]
    assert kinds(events) == [(s, "bolus_started"), (s + H, "bolus_completed")]
    assert events[0][2] == {"bolus_id": 1} and events[1][2] == {"bolus_id": 1}


def test_bolus_alone_inexact():
    # V = 10_000 nL over T = 7_000_000 ms: V·D / T = 864e9 / 7e6 = 123_428.57 -> r_b = 123_429.
    # e − s = ceil(864e9 / 123_429): 123_429 × 6_999_975 = 863_999_914_275 < 864e9,
    #   + 123_429 = 864_000_037_704 >= 864e9 -> 6_999_976 (<= T ✓). The last ms adds only
    #   864e9 − 863_999_914_275 = 85_725.
    # stroke 1: ceil(172.8e9 / 123_429): 123_429 × 1_399_995 = 172_799_982_855 < 172.8e9 -> 1_399_996
    # stroke 2: ceil(345.6e9 / 123_429): 123_429 × 2_799_990 = 345_599_965_710 < 345.6e9,
    #   × 2_799_991 = 345_600_089_139 >= -> 2_799_991
    # stroke 5: A reaches 5 q D = 864e9 = V·D only at e -> at s + 6_999_976.
    s = 1_000
    p = make(("continuous", 0), now=s)
    p.bolus(20_000, 7_000_000)
    events = p.advance_to(s + 8_000_000)
    assert p.strokes == 5
    assert p.stroke_times[0] == s + 1_399_996
    assert p.stroke_times[1] == s + 2_799_991
    assert p.stroke_times[4] == s + 6_999_976
    assert kinds(events) == [(s, "bolus_started"), (s + 6_999_976, "bolus_completed")]


def test_bolus_last_ms_adds_only_the_rest():
    # Bolus 1 as in test_bolus_alone_inexact: r_b = 123_429, 6_999_976 ms, the last ms adds only
    # 85_725, so at its end A = V·D = 864e9 = 5 q·D exactly (not 864e9 + 37_704).
    # Bolus 2 at s2 = s + 8e6: 4_000 ng -> V = 2_000 nL over 10 h = 36e6 ms -> r_b = 172.8e9 / 36e6
    # = 4_800 exactly, so A reaches 6 q·D exactly at s2 + 36e6: stroke 6 fires there (had bolus 1
    # overshot by 37_704 it would fire floor(37_704 / 4_800) = 7 ms earlier).
    s = 0
    s2 = s + 8_000_000
    p = make(("continuous", 0), now=s)
    p.bolus(20_000, 7_000_000)
    p.bolus(4_000, 36_000_000, start_ms=s2)
    p.advance_to(s2)
    assert p.accumulator == 5 * QD
    events = p.advance_to(s2 + 40_000_000)
    assert p.strokes == 6
    assert p.stroke_times[5] == s2 + 36_000_000
    assert (s2 + 36_000_000, "bolus_completed") in kinds(events)


def test_bolus_on_top_of_basal_and_future_start():
    # basal 200_000 nL/day, bolus V = 10_000 nL over 1 h (240_000/day) starting at s = 2_000_000.
    # Before s: strokes at 864_000, 1_728_000; A(s) = 2e6 × 2e5 = 4e11 = 2.3148 q·D.
    # During [s, s + 1 h): 440_000 per ms. Stroke 3 needs 3 × 1.728e11 − 4e11 = 1.184e11
    #   -> ceil(1.184e11 / 440_000) = ceil(269_090.9) = 269_091 -> at 2_269_091.
    p = make(("continuous", 400_000))
    bid = p.bolus(20_000, H, start_ms=2_000_000)
    assert p.advance_to(1_999_999) == []
    events = p.advance_to(2_300_000)
    assert kinds(events) == [(2_000_000, "bolus_started")]
    assert p.stroke_times == [864_000, 1_728_000, 2_269_091]
    assert bid == 1
    # Over the whole day: basal 200_000 + bolus 10_000 = 210_000 nL -> 105 strokes by 24:00
    p.advance_to(D)
    assert p.strokes == 105


def test_bolus_cancel():
    # 0 basal, bolus V = 10_000 nL over 1 h from s = 0 (240_000/ms), cancelled at 1_000_000:
    # A = 1e6 × 240_000 = 2.4e11 -> exactly 1 stroke (at 720_000), and never any other.
    p = make(("continuous", 0))
    bid = p.bolus(20_000, H)
    p.advance_to(1_000_000)
    p.cancel_bolus(bid)
    events = p.advance_to(10 * D)
    assert p.stroke_times == [720_000]
    assert kinds(events) == [(1_000_000, "bolus_cancelled")]
    with pytest.raises(ValueError):
        p.cancel_bolus(bid)


def test_bolus_cancel_before_start():
    p = make(("continuous", 0))
    bid = p.bolus(20_000, H, start_ms=5 * H)
    p.advance_to(H)
    p.cancel_bolus(bid)
    events = p.advance_to(10 * H)
    assert kinds(events) == [(H, "bolus_cancelled")]
    assert p.strokes == 0


def test_overlapping_boluses_ids_and_volume():
    # Two boluses of 10_000 nL each (ids 1 and 2) overlapping; 0 basal.
    # Total 20_000 nL = 10 strokes, all by the end of the later one.
    p = make(("continuous", 0))
    assert p.bolus(20_000, H) == 1
    assert p.bolus(20_000, 2 * H, start_ms=H // 2) == 2
    events = p.advance_to(D)
    assert p.strokes == 10
    assert kinds(events) == [
        (0, "bolus_started"),
        (H // 2, "bolus_started"),
        (H, "bolus_completed"),
        (H // 2 + 2 * H, "bolus_completed"),
    ]
    # bolus 2 at r = 864e9 / 7.2e6 = 120_000; together 360_000/ms on [H/2, H):
    # at H/2: A = 1_800_000 × 240_000 = 4.32e11 = 2.5 q·D (strokes at 720k, 1.44M);
    # stroke 3 needs 0.5 q·D = 8.64e10 / 360_000 = 240_000 -> at 2_040_000.
    assert p.stroke_times[:3] == [720_000, 1_440_000, 2_040_000]


# ---------------------------------------------------------------- reservoir, alarms, refill


def test_low_and_empty_small_reservoir():
    # 200_000 nL/day -> stroke every 864_000 ms. Reservoir 11_000 nL, low threshold 4_000, q 2000.
    # after stroke 3: 5_000 > 4_000; after stroke 4: 3_000 <= 4_000 -> low at 4 × 864_000 = 3_456_000
    # after stroke 5: 1_000 < 2_000 -> empty at 5 × 864_000 = 4_320_000; then no more strokes.
    p = make(("continuous", 400_000), reservoir=11_000, capacity=20_000, low=4_000)
    proj = p.project(10 * D)
    assert proj == {
        "next_stroke": 864_000,
        "low_reservoir": 3_456_000,
        "reservoir_empty": 4_320_000,
    }
    events = p.advance_to(10 * D)
    assert kinds(events) == [(3_456_000, "low_reservoir"), (4_320_000, "reservoir_empty")]
    assert p.strokes == 5 and p.reservoir_nl == 1_000
    assert p.project(10 * D) == {
        "next_stroke": None,
        "low_reservoir": None,
        "reservoir_empty": None,
    }

    # Refill at 10 D with 10_000 nL at 4000 µg/mL: withdraws the 1_000 left;
    # rate = 400_000 × 1000 / 4000 = 100_000 nL/day -> strokes every 1_728_000 ms from the refill
    # (the remainder of A at the empty stroke was exactly 0 and A was frozen since).
    p.refill(10_000, 4000)
    assert p.withdrawn_nl == 1_000
    # 10_000 -> 8_000 -> 6_000 -> 4_000 (low, 3rd stroke) -> 2_000 -> 0 (empty, 5th stroke)
    assert p.project(10 * D) == {
        "next_stroke": 10 * D + 1_728_000,
        "low_reservoir": 10 * D + 3 * 1_728_000,
        "reservoir_empty": 10 * D + 5 * 1_728_000,
    }
    events = p.advance_to(20 * D)
    assert kinds(events) == [
        (10 * D + 3 * 1_728_000, "low_reservoir"),
        (10 * D + 5 * 1_728_000, "reservoir_empty"),
    ]
    assert p.strokes == 10
    # conservation: filled 21_000 = reservoir 0 + pumped 20_000 + withdrawn 1_000
    assert p.filled_nl == 21_000
    assert p.filled_nl == p.reservoir_nl + p.pumped_nl + p.withdrawn_nl


def test_fill_at_or_below_threshold_alarms_at_once():
    # filled with 4_000 <= low 4_000 -> low_reservoir at construction time (t0);
    # 1_500 < q -> both low and empty at the refill time.
    t0 = 123_456
    p = make(("continuous", 400_000), now=t0, reservoir=4_000, capacity=20_000, low=4_000)
    events = p.advance_to(t0)
    assert kinds(events) == [(t0, "low_reservoir")]
    # 2 strokes: at t0 + 864_000 (2_000 left) and t0 + 1_728_000 (0 left -> empty)
    events = p.advance_to(t0 + D)
    assert kinds(events) == [(t0 + 1_728_000, "reservoir_empty")]
    p.refill(1_500, 2000)
    events = p.advance_to(t0 + 2 * D)
    assert kinds(events) == [(t0 + D, "low_reservoir"), (t0 + D, "reservoir_empty")]
    assert p.strokes == 2
    assert p.withdrawn_nl == 0 and p.filled_nl == 5_500 and p.reservoir_nl == 1_500


def test_refill_before_empty_withdraws_and_rearms():
    # 200_000 nL/day, reservoir 10_000, low 6_000: low after stroke 2 (6_000) at 1_728_000.
    # Refill at 2_000_000 with 20_000: withdraws 6_000, re-arms; A carries
    #   (A(2e6) = 4e11 = 2.3148 q·D, stroke 3 still at 3 × 864_000 = 2_592_000).
    # New fill: low again after stroke k with 20_000 − 2000 (k − 2) <= 6_000 -> k = 9 at 7_776_000.
    p = make(("continuous", 400_000), reservoir=10_000, capacity=20_000, low=6_000)
    events = p.advance_to(2_000_000)
    assert kinds(events) == [(1_728_000, "low_reservoir")]
    p.refill(20_000, 2000)
    assert p.withdrawn_nl == 6_000 and p.reservoir_nl == 20_000
    events = p.advance_to(8_000_000)
    assert p.stroke_times[2] == 2_592_000
    assert kinds(events) == [(7_776_000, "low_reservoir")]
    assert p.filled_nl == p.reservoir_nl + p.pumped_nl + p.withdrawn_nl == 30_000


def test_overfill_rejected():
    p = make(("continuous", 400_000), reservoir=10_000, capacity=20_000)
    with pytest.raises(ValueError):
        p.refill(20_001, 2000)


def test_bolus_increments_lost_while_empty():
    # 0 basal, reservoir 4_000 (2 strokes), low 0. Bolus V = 10_000 over 1 h at 240_000/ms.
    # strokes at 720_000 and 1_440_000 (reservoir 0 -> low and empty at 1_440_000); A frozen at
    # 3.456e11. Refill at 2_000_000: the increments of [1.44M, 2.0M) are lost. From 2.0M to the
    # bolus end 3.6M: 1.6e6 × 240_000 = 3.84e11 -> A = 7.296e11 = 4.22 q·D -> strokes 3 and 4 at
    # 2_000_000 + 720_000 = 2_720_000 and 3_440_000; none afterwards (the bolus is wall-clock).
    p = make(("continuous", 0), reservoir=4_000, capacity=20_000, low=0)
    p.bolus(20_000, H)
    events = p.advance_to(2_000_000)
    assert kinds(events) == [
        (0, "bolus_started"),
        (1_440_000, "low_reservoir"),
        (1_440_000, "reservoir_empty"),
    ]
    p.refill(20_000, 2000)
    events = p.advance_to(D)
    assert kinds(events) == [(H, "bolus_completed")]
    assert p.stroke_times == [720_000, 1_440_000, 2_720_000, 3_440_000]


def test_project_matches_advance_and_is_side_effect_free():
    prog = ("flex", "day", [(0, 240_000), (12 * H, 480_000)])
    p = make(prog, now=22_200_000, reservoir=100_000, capacity=100_000, low=40_000)
    p.bolus(20_000, H, start_ms=30_000_000)
    before = (p.now_ms, p.strokes, p.reservoir_nl, p.accumulator)
    proj = p.project(30 * D)
    assert (p.now_ms, p.strokes, p.reservoir_nl, p.accumulator) == before
    events = p.advance_to(p.now_ms + 30 * D)
    assert proj["next_stroke"] == p.stroke_times[0] == 22_200_000 + 1_440_000
    assert proj["low_reservoir"] == next(t for t, k, _ in events if k == "low_reservoir")
    assert proj["reservoir_empty"] == next(t for t, k, _ in events if k == "reservoir_empty")
    # 100_000 nL = 50 strokes: low when <= 40_000, i.e. after stroke 30; empty after stroke 50
    assert proj["low_reservoir"] == p.stroke_times[29]
    assert proj["reservoir_empty"] == p.stroke_times[49]
    # a short horizon does not see them
    q = make(prog, now=0)
    assert q.project(1_439_999)["next_stroke"] is None
    assert q.project(1_440_000)["next_stroke"] == 1_440_000


def test_one_year_of_strokes_lands_exactly():
    # 400 µg/day at 500 µg/mL -> 800_000 nL/day -> 400 strokes/day, 146_000 strokes in 365 days
    # (every 172.8e9 / 800_000 = 216_000 ms exactly).
    p = make(("continuous", 400_000), reservoir=BIG, capacity=BIG, low=0, conc=500)
    p.advance_to(365 * D)
    assert p.strokes == 146_000
    assert p.stroke_times[-1] == 365 * D


# ---------------------------------------------------------------- brute force cross-check
#
# A deliberately naive, independent simulation: one loop iteration per millisecond, bolus
# contributions taken straight from the spec formula c(x) = clamp(r_b·(x − s), 0, V·D), flex
# rates from a direct phase lookup. Small stroke (q = 1 nL) so that strokes are frequent and the
# per-ms loop stays short. Scenarios are random but seeded (deterministic).

import random

RANK = {
    "bolus_started": 0,
    "bolus_completed": 1,
    "bolus_cancelled": 2,
    "bolus_adjusted": 3,
    "low_reservoir": 4,
    "reservoir_empty": 5,
}


def _basal_rate(program, conc, t):
    if program[0] == "continuous":
        ng = program[1]
    else:
        period, anchor = (D, 0) if program[1] == "day" else (7 * D, 4 * D)
        phase = (t - anchor) % period
        ng = [r for off, r in program[2] if off <= phase][-1]
    return round(Fraction(ng * 1000, conc))


def _brute_force(now, q, cap, reservoir, low, conc, program, actions, until):
    """actions: {time: [("bolus", dose_ng, T, start) | ("cancel", id) | ("refill", nl, conc)
    | ("program", p)]}. Returns (stroke_times, events, cancel_errors, final state dict)."""
    A, k = 0, 0
    strokes, events, cancel_errors = [], [], []
    filled, pumped, withdrawn = reservoir, 0, 0
    boluses = []  # dicts
    state = {"deliver": True, "armed": True}

    def check(t):
        if state["armed"] and reservoir <= low:
            state["armed"] = False
            events.append((t, "low_reservoir"))
        if reservoir < q:
            state["deliver"] = False
            events.append((t, "reservoir_empty"))

    def cancel(b, x):
        b["cancel"] = x
        b["done"] = True
        if x >= b["s"] and not b["started"]:
            b["started"] = True
            events.append((b["s"], "bolus_started", b["id"]))
        events.append((x, "bolus_cancelled", b["id"]))

    def c(b, x):
        if x <= b["s"]:
            return 0
        return min(b["r"] * (x - b["s"]), b["VD"])

    check(now)
    for x in range(now, until + 1):
        # 1. stroke at x from the intervals before x (done in the loop body below)
        # 2. actions at x
        for act in actions.get(x, []):
            if act[0] == "bolus":
                _, dose, T, start = act
                V = round(Fraction(dose * 1000, conc))
                VD = V * D
                r = -((-VD) // T)
                boluses.append(
                    {
                        "id": len(boluses) + 1,
                        "s": start,
                        "VD": VD,
                        "r": r,
                        "dose": dose,
                        "T": T,
                        "cancel": None,
                        "started": False,
                        "done": False,
                    }
                )
            elif act[0] == "cancel":
                b = boluses[act[1] - 1]
                if b["done"] or (x >= b["s"] and c(b, x) == b["VD"]):
                    cancel_errors.append(act[1])
                else:
                    cancel(b, x)
            elif act[0] == "refill":
                withdrawn += reservoir
                reservoir = act[1]
                filled += act[1]
                if act[2] != conc:
                    # µg are prescribed: a bolus not started yet gets its dose's volume at the new
                    # concentration; a running one (or one that no longer fits) is cancelled
                    for b in boluses:
                        if b["done"] or b["cancel"] is not None:
                            continue
                        V = round(Fraction(b["dose"] * 1000, act[2]))
                        if x <= b["s"] and 1 <= V <= cap:
                            b["VD"] = V * D
                            b["r"] = -((-b["VD"]) // b["T"])
                            events.append((x, "bolus_adjusted", b["id"]))
                        else:
                            cancel(b, x)
                conc = act[2]
                state["armed"] = True
                state["deliver"] = True
                check(x)
            elif act[0] == "program":
                program = act[1]
        # 3. wall-clock bolus events at x
        for b in boluses:
            if b["cancel"] is not None and b["cancel"] < b["s"]:
                continue
            if x == b["s"] and not b["started"]:
                b["started"] = True
                events.append((x, "bolus_started", b["id"]))
            if b["started"] and not b["done"] and c(b, x) == b["VD"]:
                b["done"] = True
                events.append((x, "bolus_completed", b["id"]))
        if x == until:
            break
        # 4. the interval [x, x+1)
        if state["deliver"]:
            inc = _basal_rate(program, conc, x)
            for b in boluses:
                if b["cancel"] is None or x < b["cancel"]:
                    inc += c(b, x + 1) - c(b, x)
            A += inc
            if A >= (k + 1) * q * D:
                assert reservoir >= q
                k += 1
                strokes.append(x + 1)
                reservoir -= q
                pumped += q
                check(x + 1)
    final = {"reservoir": reservoir, "pumped": pumped, "withdrawn": withdrawn, "filled": filled}
    return strokes, events, cancel_errors, final


def _random_scenario(rng):
    q = 1
    qd4 = q * D // 4  # each of basal and up to 3 boluses stays under a quarter of q per ms
    conc = rng.choice([50, 500, 2000, 3000])
    day_start = rng.randrange(0, 30) * D  # a midnight; week boundaries when day_start % 7D == 4D
    now = day_start - rng.randrange(0, 20_000)
    horizon = 40_000
    until = now + horizon

    def rand_program():
        def ng():  # nL/day <= 2_000_000 -> ng/day <= 2e6 × conc / 1000
            return rng.choice([0, rng.randrange(1, 2_000_000 * conc // 1000)])

        if rng.random() < 0.3:
            return ("continuous", ng())
        period = rng.choice(["day", "week"])
        p_len = D if period == "day" else 7 * D
        # put step boundaries near `now` so that the short horizon crosses some of them
        base = (now - (0 if period == "day" else 4 * D)) % p_len
        offs = {0}
        for _ in range(rng.randrange(0, 4)):
            offs.add((base + rng.randrange(-5_000, horizon)) % p_len)
        return ("flex", period, [(o, ng()) for o in sorted(offs)])

    program = rand_program()
    cap = 3_000
    reservoir = rng.randrange(0, cap + 1)
    low = rng.randrange(0, 1_000)
    actions = {}
    n_bolus = 0
    for _ in range(rng.randrange(0, 6)):
        t = rng.randrange(now, until)
        kind = rng.random()
        if kind < 0.4 and n_bolus < 3:
            n_bolus += 1
            dose = rng.choice([0, rng.randrange(1, 200 * conc // 1000 + 2)])
            V = round(Fraction(dose * 1000, conc))
            T = rng.randrange(max(1, -((-V * D) // qd4)), 30_000)
            start = t + rng.choice([0, rng.randrange(0, 20_000)])
            actions.setdefault(t, []).append(("bolus", dose, T, start))
            if start > t and rng.random() < 0.5:
                # a refill at another strength before it starts re-derives it (docs: decisions/field-reports.md#doses-are-prescribed-in-micrograms);
                # not weaker than the first fill, so that its rate stays under a quarter of q per ms
                actions.setdefault(rng.randrange(t, min(start, until - 1) + 1), []).append(
                    (
                        "refill",
                        rng.randrange(0, cap + 1),
                        rng.choice([c for c in (50, 500, 2000, 3000) if c >= conc]),
                    )
                )
            if rng.random() < 0.5:  # cancel it later (before, during or after its delivery)
                tc = rng.randrange(t, min(until, start + T + 2_000) + 1)
                actions.setdefault(tc, []).append(("cancel", n_bolus))
        elif kind < 0.8:
            actions.setdefault(t, []).append(
                ("refill", rng.randrange(0, cap + 1), rng.choice([50, 500, 2000, 3000]))
            )
        else:
            actions.setdefault(t, []).append(("program", rand_program()))
    # cancels must refer to boluses created at an earlier or equal action; drop the others
    seen, clean = 0, {}
    for t in sorted(actions):
        for act in actions[t]:
            if act[0] == "bolus":
                seen += 1
            if act[0] == "cancel" and act[1] > seen:
                continue
            clean.setdefault(t, []).append(act)
    return dict(
        now=now,
        q=q,
        cap=cap,
        reservoir=reservoir,
        low=low,
        conc=conc,
        program=program,
        actions=clean,
        until=until,
    )


def _norm(events):
    """(time, kind rank, kind, bolus id or None), sorted; works for both sides' event shapes."""
    out = []
    for e in events:
        t, kind = e[0], e[1]
        extra = e[2] if len(e) > 2 else None
        bid = extra.get("bolus_id") if isinstance(extra, dict) else extra
        out.append((t, RANK[kind], kind, bid))
    return sorted(out)


@pytest.mark.parametrize("seed", range(25))
def test_against_brute_force(seed):
    rng = random.Random(seed)
    sc = _random_scenario(rng)
    exp_strokes, exp_events, exp_cancel_errors, final = _brute_force(
        sc["now"],
        sc["q"],
        sc["cap"],
        sc["reservoir"],
        sc["low"],
        sc["conc"],
        sc["program"],
        sc["actions"],
        sc["until"],
    )

    p = RefPump(
        now_ms=sc["now"],
        stroke_nl=sc["q"],
        capacity_nl=sc["cap"],
        reservoir_nl=sc["reservoir"],
        low_reservoir_nl=sc["low"],
        conc_ug_per_ml=sc["conc"],
        program=sc["program"],
    )
    got_events, cancel_errors = [], []
    for t in sorted(sc["actions"]):
        batch = p.advance_to(t)
        assert batch == sorted(batch, key=lambda e: (e[0], RANK[e[1]]))
        got_events += batch
        for act in sc["actions"][t]:
            if act[0] == "bolus":
                p.bolus(act[1], act[2], start_ms=act[3])
            elif act[0] == "cancel":
                try:
                    p.cancel_bolus(act[1])
                except ValueError:
                    cancel_errors.append(act[1])
            elif act[0] == "refill":
                p.refill(act[1], act[2])
            else:
                p.set_program(act[1])
    got_events += p.advance_to(sc["until"])

    assert p.stroke_times == exp_strokes
    assert _norm(got_events) == _norm(exp_events)
    assert cancel_errors == exp_cancel_errors
    assert (p.reservoir_nl, p.pumped_nl, p.withdrawn_nl, p.filled_nl) == (
        final["reservoir"],
        final["pumped"],
        final["withdrawn"],
        final["filled"],
    )
    assert p.filled_nl == p.reservoir_nl + p.pumped_nl + p.withdrawn_nl


def test_brute_force_scenarios_are_not_trivial():
    # guard against a generator that never produces strokes, alarms or bolus events
    total_strokes, kinds_seen = 0, set()
    for seed in range(25):
        sc = _random_scenario(random.Random(seed))
        strokes, events, _, _ = _brute_force(
            sc["now"],
            sc["q"],
            sc["cap"],
            sc["reservoir"],
            sc["low"],
            sc["conc"],
            sc["program"],
            sc["actions"],
            sc["until"],
        )
        total_strokes += len(strokes)
        kinds_seen |= {e[1] for e in events}
    assert total_strokes > 1000
    assert kinds_seen == set(RANK)
