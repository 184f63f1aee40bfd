"""One year end to end from Python at 250 nL and 2000 nL strokes: itb against (a) the pure-Python
reference model ``tests/reference.py`` and (b) a *segment-wise* pure-Python baseline — the best a
user could write without itb: constant-rate pieces, stroke times of each piece in closed form
with numpy (figures: docs: guide/performance.md).

Scenario (bench_delivery's): flex day program 00:00 300 / 08:00 500 / 22:00 300 µg/day at
500 µg/mL on a 500 mL rig, one 50 µg bolus over 30 min every day at 12:00, 365 days. Each
contender starts from nothing and ends with every stroke time (int64 ms); all three must agree
exactly (checked, not timed). itb: ``Pump(...)`` + ``bolus_many`` + ``advance_recording``.
Prints best-of-N times and ratios measured in this process; never asserted.

    python benches/bench_segmentwise.py [--repeat N] [--ref-repeat N] [--quick] [--no-reference]
"""

from __future__ import annotations

import argparse
import os
import sys

# numpy's BLAS threads would spin on the second core of a 2-core machine; no contender uses BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benches"))

import itb  # noqa: E402
from _timing import best_of  # noqa: E402
from bench_delivery import BOLUS_AT, BOLUS_DURATION, BOLUS_UG, CONC, DAYS, END, PROGRAM, START, ms  # noqa: E402
from reference import RefPump  # noqa: E402

D = 86_400_000
STEPS = [(0, 300_000), (8 * 3_600_000, 500_000), (22 * 3_600_000, 300_000)]  # (offset ms, ng/day)


def half_even(x: Fraction) -> int:
    return round(x)  # Python rounds Fractions half to even


def model(q_nl: int) -> itb.PumpModel:
    return itb.PumpModel(
        name=f"bench rig {q_nl} nL",
        reservoir_ml=500.0,
        stroke_nl=q_nl,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        low_reservoir_ml=2.0,
        pump_path_ul=100.0,
    )


def run_itb(q_nl: int) -> np.ndarray:
    """The plan as numpy columns (what a user holding a year plan passes to ``bolus_many``)."""
    pump = itb.Pump(
        model(q_nl), now=START, reservoir_ml=500.0, concentration_ug_per_ml=CONC, program=PROGRAM
    )
    days = np.arange(DAYS) * np.timedelta64(1, "D")
    starts = np.datetime64(START + BOLUS_AT, "ms") + days
    pump.bolus_many(
        starts, np.full(DAYS, BOLUS_UG), np.full(DAYS, np.timedelta64(BOLUS_DURATION, "ms"))
    )
    _, times = pump.advance_recording(END)
    return times


def run_reference(q_nl: int) -> np.ndarray:
    ref = RefPump(
        now_ms=ms(START),
        stroke_nl=q_nl,
        capacity_nl=500_000_000,
        reservoir_nl=500_000_000,
        low_reservoir_nl=2_000_000,
        conc_ug_per_ml=CONC,
        program=("flex", "day", STEPS),
    )
    for d in range(DAYS):
        ref.bolus(
            int(BOLUS_UG * 1000),
            BOLUS_DURATION // timedelta(milliseconds=1),
            ms(START + timedelta(days=d) + BOLUS_AT),
        )
    ref.advance_to(ms(END))
    return np.asarray(ref.stroke_times, dtype=np.int64)


def run_segmentwise(q_nl: int) -> np.ndarray:
    """Constant-rate pieces: basal steps (nL/day, half-even) plus the daily bolus (r_b per ms,
    its last ms only what is left); the accumulator A crosses k·q·D at t0 + ceil((k·g − a)/s)."""
    g = q_nl * D
    basal = [(off, half_even(Fraction(ng * 1000, CONC))) for off, ng in STEPS]
    volume = half_even(Fraction(int(BOLUS_UG * 1000) * 1000, CONC))
    duration = BOLUS_DURATION // timedelta(milliseconds=1)
    rate = -(-volume * D // duration)
    length = -(-volume * D // rate)
    last = volume * D - rate * (length - 1)
    pieces = []  # (t0, t1, slope)
    t_start = ms(START)
    for d in range(DAYS):
        day = t_start + d * D
        b0 = day + BOLUS_AT // timedelta(milliseconds=1)
        cuts = sorted(
            {day, day + D, b0, b0 + length - 1, b0 + length} | {day + off for off, _ in basal}
        )
        for t0, t1 in zip(cuts, cuts[1:]):
            off = t0 - day
            s = [r for o, r in basal if o <= off][-1]
            if b0 <= t0 < b0 + length - 1:
                s += rate
            elif t0 == b0 + length - 1:
                s += last
            pieces.append((t0, t1, s))
    out = []
    a = 0  # accumulator remainder
    for t0, t1, s in pieces:
        total = a + s * (t1 - t0)
        n = total // g
        if n:
            k = np.arange(1, n + 1, dtype=np.int64)
            need = k * g - a  # int64 is enough here: < 2**63
            out.append(t0 + -(-need // s))
        a = total - n * g
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--ref-repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat = 2
    for q in (2000, 250):
        t_itb, mine = best_of(args.repeat, lambda: q, run_itb)
        t_seg, seg = best_of(args.repeat, lambda: q, run_segmentwise)
        assert np.array_equal(mine, seg), "segment-wise baseline disagrees with itb"
        line = (
            f"{q:>5} nL strokes, {len(mine):,} strokes: itb {t_itb * 1e3:7.2f} ms; segment-wise "
            f"{t_seg * 1e3:7.2f} ms = {t_seg / t_itb:5.1f}× slower"
        )
        if not args.no_reference:
            t_ref, ref = best_of(args.ref_repeat, lambda: q, run_reference)
            assert np.array_equal(mine, ref), "reference disagrees with itb"
            line += f"; reference {t_ref:6.2f} s = {t_ref / t_itb:6.0f}× slower"
        print(line)


if __name__ == "__main__":
    main()
