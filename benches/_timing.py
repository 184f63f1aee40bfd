"""Timing helper shared by the benchmark scripts (wall clock, best of N; never asserted)."""

from __future__ import annotations

import gc
import time
from typing import Any, Callable


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
