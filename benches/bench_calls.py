"""Per-call cost of every public ``itb.Pump`` method from Python (figures: docs: guide/performance.md).

Each call runs on a fresh copy of the demo pump (SynchroMed II 40 mL, 40 mL at 2000 µg/mL,
continuous 400 µg/day; for the refill and PTM calls the state they need). Prints best-of-N
µs per call and the ratio to a baseline measured in the same process: a no-op Python method
call taking the same arguments (so ``1×`` would be "free"). Never asserted.

    python benches/bench_calls.py [--number N]
"""

from __future__ import annotations

import argparse
import timeit
from datetime import datetime, timedelta

import itb

T0 = datetime(2026, 1, 5, 8, 0)


def demo() -> itb.Pump:
    return itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )


class _Noop:
    def call(self, *args: object, **kwargs: object) -> None:
        return None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--number", type=int, default=2000)
    args = ap.parse_args(argv)
    base = demo()
    primed = demo()
    primed.set_patient_bolus_limits(
        dose_ug=5.0, duration=timedelta(minutes=5), lockout=timedelta(0), max_per_24h=24
    )
    program = itb.Continuous(ug_per_day=400)
    blob = base.snapshot()
    later = T0 + timedelta(hours=1)
    ten_min = timedelta(minutes=10)
    cases = [
        ("Pump(...)", None, lambda p: demo()),
        ("copy()", base, lambda p: p.copy()),
        ("set_program(Continuous)", base, lambda p: p.set_program(program)),
        ("bolus(dose_ug, duration)", base, lambda p: p.bolus(dose_ug=1.0, duration=ten_min)),
        ("project()", base, lambda p: p.project()),
        ("project(assume_refills=True)", base, lambda p: p.project(assume_refills=True)),
        ("advance_to(+1 h)", base, lambda p: p.advance_to(later)),
        ("refill(...)", base, lambda p: p.refill(added_ml=40.0, concentration_ug_per_ml=2000)),
        ("patient_bolus()", primed, lambda p: p.patient_bolus()),
        ("suspend()", base, lambda p: p.suspend()),
        ("telemetry_session()", base, lambda p: p.telemetry_session()),
        ("snapshot()", base, lambda p: p.snapshot()),
        ("Pump.restore(bytes)", None, lambda p: itb.Pump.restore(blob)),
        ("strokes / reservoir_ml (properties)", base, lambda p: (p.strokes, p.reservoir_ml)),
    ]
    noop = _Noop()
    t_base = min(
        timeit.repeat(
            lambda: noop.call(dose_ug=1.0, duration=ten_min), number=args.number, repeat=5
        )
    )
    t_base /= args.number
    print(f"baseline: a no-op Python method call with two keyword arguments: {t_base * 1e6:.3f} µs")
    print(f"{'call':40s} {'µs/call':>9s} {'× baseline':>11s}")
    for name, pump, fn in cases:
        # a fresh copy per call where the call changes the pump (copy cost measured and removed)
        if pump is None:
            t = min(timeit.repeat(lambda: fn(None), number=args.number, repeat=5)) / args.number
        else:
            t = float("inf")
            for _ in range(5):  # best of 5, each on fresh copies made outside the timed region
                it = iter([pump.copy() for _ in range(args.number)])
                t = min(t, timeit.timeit(lambda: fn(next(it)), number=args.number) / args.number)
        print(f"{name:40s} {t * 1e6:9.2f} {t / t_base:11.1f}")


if __name__ == "__main__":
    main()
