#!/usr/bin/env python3
"""Fleet and lifetime benchmark (ratios in one process, never asserted):

1. ``itb.simulate_many``: 10,000 pump-years (``itb.fleet.random_fleet``: presets, strengths,
   continuous and flex programs; one year each) on 1 thread vs 2 threads → pump-years/s and
   the scaling ratio. Results are checked identical across thread counts.
2. The same work per pump through the Python API one pump at a time (``Pump.advance_to``),
   and through the pure-Python reference model on a sample → speed ratios per pump-year.
3. ``Pump.project()`` cost from Python (µs/call) vs a trivial method call, for a plain pump
   and with ``assume_refills=True`` over 10 years (the service-date forecast).

Run:  python benches/bench_fleet.py [--pumps N] [--sample N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import itb  # noqa: E402
from _timing import best_of  # noqa: E402
from itb.fleet import random_fleet  # noqa: E402
from reference import RefPump  # noqa: E402

START = datetime(2026, 1, 5)
UNTIL = START + timedelta(days=365)


def best(n: int, fn) -> float:
    return best_of(n, lambda: None, lambda _: fn())[0]


def ref_of(pump: itb.Pump) -> RefPump:
    exact = pump.model.exact()
    return RefPump(
        now_ms=pump.now_ms,
        stroke_nl=exact["stroke_nl"],
        capacity_nl=exact["reservoir_nl"],
        reservoir_nl=pump.reservoir_nl,
        low_reservoir_nl=exact["low_reservoir_nl"],
        conc_ug_per_ml=pump.concentration_ug_per_ml,
        program=pump.program.exact(),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pumps", type=int, default=10_000)
    ap.add_argument("--sample", type=int, default=20, help="pumps run through the reference model")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    fleet = random_fleet(args.pumps, seed=2026, start=START)
    until_ms = (UNTIL - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
    print(f"itb {itb.__version__} · {os.cpu_count()} CPUs · {args.pumps:,} pumps × 1 year")

    r1 = itb.simulate_many(fleet, UNTIL, threads=1)
    r2 = itb.simulate_many(fleet, UNTIL, threads=2)
    same = all(r1[c].tobytes() == r2[c].tobytes() for c in r1.columns)
    print(f"check: 1-thread and 2-thread results identical: {same}")
    if not same:
        return 1
    t1 = best(args.repeat, lambda: itb.simulate_many(fleet, UNTIL, threads=1))
    t2 = best(args.repeat, lambda: itb.simulate_many(fleet, UNTIL, threads=2))
    per_pump_api = best(1, lambda: [p.copy().advance_to(UNTIL) for p in fleet[:2000]]) / 2000

    sample = fleet[: args.sample]
    refs = [ref_of(p) for p in sample]
    t0 = time.perf_counter()
    for ref in refs:
        ref.advance_to(until_ms)
    per_pump_ref = (time.perf_counter() - t0) / len(sample)
    mismatch = [
        i
        for i, (ref, row) in enumerate(zip(refs, r1["strokes"][: args.sample]))
        if ref.strokes != row
    ]
    print(
        f"check: reference strokes equal simulate_many on {len(sample)} sampled pumps: {not mismatch}"
    )
    if mismatch:
        return 1

    n = args.pumps
    print()
    print(f"{'contender':52} {'seconds':>9} {'pump-years/s':>13} {'ratio':>9}")
    print(
        f"{'reference model (pure Python), per pump-year':52} {per_pump_ref:9.4f} {1 / per_pump_ref:13,.0f} {1.0:8.1f}×"
    )
    print(
        f"{'itb.Pump.advance_to, one pump at a time':52} {per_pump_api:9.6f} {1 / per_pump_api:13,.0f} {per_pump_ref / per_pump_api:8.1f}×"
    )
    print(
        f"{f'simulate_many, 1 thread, {n:,} pump-years':52} {t1:9.3f} {n / t1:13,.0f} {per_pump_ref * n / t1:8.1f}×"
    )
    print(
        f"{f'simulate_many, 2 threads, {n:,} pump-years':52} {t2:9.3f} {n / t2:13,.0f} {per_pump_ref * n / t2:8.1f}×"
    )
    print(f"scaling 1 → 2 threads: {t1 / t2:.2f}×   (target: 10,000 pump-years ≤ 1 s on 2 cores)")

    pump = fleet[0].copy()
    base = min(timeit.repeat(lambda: pump.now_ms, number=20_000, repeat=5)) / 20_000
    proj = min(timeit.repeat(lambda: pump.project(), number=5_000, repeat=5)) / 5_000
    horizon = timedelta(days=3650)
    fore = (
        min(
            timeit.repeat(
                lambda: pump.project(horizon, assume_refills=True), number=5_000, repeat=5
            )
        )
        / 5_000
    )
    print()
    print(f"{'per call from Python':52} {'µs':>9} {'vs baseline':>13}")
    print(f"{'trivial property access (baseline)':52} {base * 1e6:9.3f} {1.0:12.1f}×")
    print(f"{'Pump.project()':52} {proj * 1e6:9.3f} {proj / base:12.1f}×")
    print(
        f"{'Pump.project(10 years, assume_refills=True)':52} {fore * 1e6:9.3f} {fore / base:12.1f}×"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
