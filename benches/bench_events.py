"""Events returned by an advance: the columnar EventLog vs building an Event per event.

One-year flex program (300/500/300 µg/day) on a SynchroMed II 40 mL at 2000 µg/mL with a 1 µg
bolus every day (≈ 1 100 events). Prints best-of-N times and ratios measured in this process:
the core's raw tuples, ``Pump.advance_to`` (an EventLog), the same with every Event materialized,
and the per-event cost of each beyond the core's own work. Never asserted.

    python benches/bench_events.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itb  # noqa: E402
from _timing import best_of  # noqa: E402

START = datetime(2026, 1, 5)
END = datetime(2027, 1, 5)


def make() -> itb.Pump:
    p = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=START,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Flex(
            period="day", steps=[(time(0), 300.0), (time(8), 500.0), (time(22), 300.0)]
        ),
    )
    for d in range(365):
        p.bolus(
            dose_ug=1.0, duration=timedelta(minutes=10), start=START + timedelta(days=d, hours=12)
        )
    return p


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    until_ms = int((END - datetime(1970, 1, 1)).total_seconds() * 1000)
    n = len(make().advance_to(END))
    t_core, _ = best_of(args.repeat, make, lambda p: p.core.advance_to_log(until_ms))
    t_tuples, _ = best_of(args.repeat, make, lambda p: p.core.advance_to(until_ms))
    t_log, _ = best_of(args.repeat, make, lambda p: p.advance_to(END))
    t_list, _ = best_of(args.repeat, make, lambda p: list(p.advance_to(END)))
    t_numpy, _ = best_of(args.repeat, make, lambda p: p.advance_to(END).to_numpy())
    print(f"{n} events; best of {args.repeat}")
    rows = [
        ("core EventLog (no Python objects)", t_core),
        ("core raw tuples", t_tuples),
        ("Pump.advance_to -> EventLog", t_log),
        ("... + to_numpy()", t_numpy),
        ("... + every Event built (list)", t_list),
    ]
    for name, t in rows:
        print(
            f"{name:38s} {t * 1e3:8.3f} ms  {(t - t_core) / n * 1e6:6.3f} µs/event over the core  "
            f"{t_list / t:5.1f}× faster than building every Event"
        )


if __name__ == "__main__":
    main()
