"""Timing helper shared by the benchmark scripts (wall clock, best of N; never asserted)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


def best_of(n: int, make: Callable[[], Any], run: Callable[[Any], Any]) -> tuple[float, Any]:
    """Best wall time of ``run(make())`` over ``n`` runs (``make`` is not timed; GC off while timing)."""
    best, result = float("inf"), None
    for _ in range(n):
        subject = make()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            result = run(subject)
            elapsed = time.perf_counter() - t0
        finally:
            gc.enable()
        best = min(best, elapsed)
    return best, result


def bench_args(doc: str, repeat: int, argv: list[str] | None) -> Any:
    """The shared command line of the reference-comparing benchmarks: --repeat, --ref-repeat, --quick."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument(
        "--repeat", type=int, default=repeat, help="runs of each Rust variant (best is kept)"
    )
    ap.add_argument(
        "--ref-repeat", type=int, default=3, help="runs of the Python reference (best is kept)"
    )
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.ref_repeat = 3, 1
    return args
