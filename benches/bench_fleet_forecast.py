"""Service-date forecasts of fleets held as columns (`itb.fleet.Fleet.forecast`) vs fleet size.

Random continuous-program fleets over the presets (as `tests/test_fleet_columns.py` builds them)
of 10³ … 10⁶ rows; prints best-of-N wall times on 1 and on all threads, forecasts per second,
and the ratio to a Python loop building an `itb.Pump` per row and calling `project()` (timed
on 10³ rows, in the same process). Never asserted.

    python benches/bench_fleet_forecast.py [--max-rows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _timing import best_of  # noqa: E402
from itb.fleet import Fleet  # noqa: E402
from test_fleet_columns import one_by_one, table  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    horizon = timedelta(days=3650)
    small = table(1000)
    t_loop, _ = best_of(
        args.repeat,
        lambda: small,
        lambda c: [one_by_one(c, i).project(horizon, assume_refills=True) for i in range(1000)],
    )
    per_pump_loop = t_loop / 1000
    print(f"Python loop (Pump + project per row): {per_pump_loop * 1e6:.1f} µs per row")
    n = 1000
    while n <= args.max_rows:
        fleet = Fleet(table(n))
        t1, _ = best_of(args.repeat, lambda: fleet, lambda f: f.forecast(horizon, threads=1))
        tn, _ = best_of(args.repeat, lambda: fleet, lambda f: f.forecast(horizon))
        print(
            f"{n:>9,} rows: 1 thread {t1:7.3f} s, all threads {tn:7.3f} s = {n / tn / 1e6:5.2f} M forecasts/s "
            f"({per_pump_loop * n / tn:6.0f}× the Python loop; {t1 / tn:.2f}× scaling)"
        )
        n *= 10


if __name__ == "__main__":
    main()
