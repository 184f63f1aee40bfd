"""``Pump.project()`` against the number of scheduled boluses (figures: docs: guide/performance.md).

A bench rig pump (500 mL, 2 µL strokes, the SynchroMed II battery, flex day program 300/500/300
µg/day at 500 µg/mL) with N daily 50 µg boluses at 12:00 scheduled up front through
``bolus_many``, N = 1 … 10 000. Prints µs per ``project()`` call from Python (30-year horizon, so
every bolus is inside it, and 1-day horizon; the raw ``_core`` call too) and the ratio to N = 1,
all measured in this one process; and ``advance_to``
one day ahead (on copies made outside the timed region). Never asserted: compare ratios.
Before each size, ``project()`` is checked against what ``advance_to`` then observes (next
stroke) so a fast wrong answer is not reported.

    python benches/bench_projection.py [--sizes 1,10,100,365,1000,3000,10000]

The core alone (no Python): ``cargo run --release -p itb-core --example projection_scaling``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import timeit
from datetime import timedelta
from pathlib import Path

import itb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_delivery  # noqa: E402

# bench_delivery's rig, program and start, with a battery so that project() also searches ERI/EOS.
MODEL = dataclasses.replace(bench_delivery.MODEL, battery=itb.models.SYNCHROMED_II_40.battery)
PROGRAM, START = bench_delivery.PROGRAM, bench_delivery.START


def build(n: int) -> itb.Pump:
    pump = itb.Pump(
        MODEL, now=START, reservoir_ml=500.0, concentration_ug_per_ml=500, program=PROGRAM
    )
    starts = [START + timedelta(days=d, hours=12) for d in range(n)]
    pump.bolus_many(starts, [50.0] * n, [timedelta(minutes=30)] * n)
    return pump


def per_call_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,10,100,365,1000,3000,10000")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    horizon, one_day = timedelta(days=30 * 365), timedelta(days=1)
    horizon_ms = 30 * 365 * 86_400_000
    print(
        f"{'boluses':>8} {'project 30y µs':>15} {'× N=1':>7} {'raw _core µs':>13} {'× N=1':>7} "
        f"{'project 1d µs':>14} {'× N=1':>7} {'advance 1 d µs':>15} {'× N=1':>7}"
    )
    base = None
    for n in sizes:
        pump = build(n)
        # Check before timing: the projected next stroke is the first stroke the simulation fires.
        probe = pump.copy()
        expected = pump.project(horizon).next_stroke_ms
        times = probe.advance_recording(START + timedelta(days=2))[1]
        first = int(times[0]) if len(times) else None
        if expected != first:
            print(f"MISMATCH: N={n}: project() says {expected}, advance_to fires {first}")
            return 1
        number = 2000 if n <= 1000 else 500
        proj = per_call_us(lambda: pump.project(horizon), number)
        raw = per_call_us(lambda: pump._core.project(horizon_ms), number)
        proj_day = per_call_us(lambda: pump.project(one_day), number)
        copies = [pump.copy() for _ in range(50)]
        until = START + one_day
        it = iter(copies)
        adv = min(timeit.repeat(lambda: next(it).advance_to(until), number=1, repeat=50)) * 1e6
        if base is None:
            base = (proj, raw, proj_day, adv)
        print(
            f"{n:>8} {proj:15.2f} {proj / base[0]:7.1f} {raw:13.2f} {raw / base[1]:7.1f} "
            f"{proj_day:14.2f} {proj_day / base[2]:7.1f} {adv:15.1f} {adv / base[3]:7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
