#!/usr/bin/env python3
"""One-year delivery benchmark: the Rust core (through the ``itb`` API) vs the pure-Python
reference model ``tests/reference.py``, plus the cost of ``Pump.project()`` from Python.

Run:  python benches/bench_delivery.py [--repeat N] [--ref-repeat N] [--quick]

Scenario (identical for every contender): a custom 500 mL "bench rig" model (2 µL strokes,
nominal SynchroMed-like rate limits) filled with 500 mL at 500 µg/mL so it never empties in a
year; a flex day program 00:00 300 / 08:00 500 / 22:00 300 µg/day; one 50 µg bolus over 30 min
every day at 12:00. It is run two ways:

  A. "one call": all 365 boluses scheduled up front, then ONE ``advance_to`` over 365 days;
  B. "daily":    each day, schedule that day's bolus and ``advance_to`` the next midnight
                 (365 bolus + 365 advance calls, as a planning app or test rig would).

Checks (not timed): Rust and the reference fire the same number of strokes, at the same
milliseconds (recording variant), and the same bolus/alarm events at the same times, in both
ways; A and B end in the same state. Timings are
best-of-N wall-clock (``time.perf_counter``) and are printed, never asserted.
"""

from __future__ import annotations

import copy
import platform
import sys
import timeit
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # for reference.py

import itb  # noqa: E402
from _timing import bench_args, best_of  # noqa: E402
from itb import _core  # noqa: E402
from itb.cli.app import default_scenario  # noqa: E402
from reference import RefPump  # noqa: E402

START = datetime(2026, 1, 5, 0, 0)  # a Monday
DAYS = 365
END = START + timedelta(days=DAYS)
CONC = 500  # µg/mL
BOLUS_UG = 50.0
BOLUS_DURATION = timedelta(minutes=30)
BOLUS_AT = timedelta(hours=12)

MODEL = itb.PumpModel(
    name="bench rig 500 mL",
    reservoir_ml=500.0,
    stroke_nl=2000,
    min_rate_ml_per_day=0.048,
    max_rate_ml_per_day=24.0,
    low_reservoir_ml=2.0,
    pump_path_ul=100.0,
)
PROGRAM = itb.Flex(period="day", steps=[(clock(0), 300.0), (clock(8), 500.0), (clock(22), 300.0)])
REF_KINDS = (
    "bolus_started",
    "bolus_completed",
    "bolus_cancelled",
    "low_reservoir",
    "reservoir_empty",
)


def ms(t: datetime) -> int:
    return (t - datetime(1970, 1, 1)) // timedelta(milliseconds=1)


def bolus_starts() -> list[datetime]:
    return [START + timedelta(days=d) + BOLUS_AT for d in range(DAYS)]


def build_rust(boluses: bool = True) -> itb.Pump:
    pump = itb.Pump(
        MODEL,
        now=START,
        reservoir_ml=MODEL.reservoir_ml,
        concentration_ug_per_ml=CONC,
        program=PROGRAM,
    )
    for start in bolus_starts() if boluses else []:
        pump.bolus(dose_ug=BOLUS_UG, duration=BOLUS_DURATION, start=start)
    return pump


def build_ref(boluses: bool = True) -> RefPump:
    exact = MODEL.exact()
    ref = RefPump(
        now_ms=ms(START),
        stroke_nl=exact["stroke_nl"],
        capacity_nl=exact["reservoir_nl"],
        reservoir_nl=exact["reservoir_nl"],
        low_reservoir_nl=exact["low_reservoir_nl"],
        conc_ug_per_ml=CONC,
        program=PROGRAM.exact(),
    )
    dose_ng = round(BOLUS_UG * 1000)
    duration_ms = BOLUS_DURATION // timedelta(milliseconds=1)
    for start in bolus_starts() if boluses else []:
        ref.bolus(dose_ng, duration_ms, ms(start))
    return ref


def daily_rust(pump: itb.Pump, record: bool = False) -> list[Any]:
    """Way B on an ``itb.Pump`` built without boluses; returns the per-day stroke-time arrays."""
    chunks = []
    for d, start in enumerate(bolus_starts()):
        pump.bolus(dose_ug=BOLUS_UG, duration=BOLUS_DURATION, start=start)
        if record:
            chunks.append(pump.advance_recording(START + timedelta(days=d + 1))[1])
        else:
            pump.advance_to(START + timedelta(days=d + 1))
    return chunks


def daily_ref(ref: RefPump) -> list[tuple[int, str, dict]]:
    """Way B on a ``RefPump`` built without boluses; returns all its events."""
    dose_ng = round(BOLUS_UG * 1000)
    duration_ms = BOLUS_DURATION // timedelta(milliseconds=1)
    events = []
    for d, start in enumerate(bolus_starts()):
        ref.bolus(dose_ng, duration_ms, ms(start))
        events += ref.advance_to(ms(START + timedelta(days=d + 1)))
    return events


def per_call_us(stmt: Callable[[], Any], repeat: int = 5) -> float:
    """Best-of-``repeat`` µs per call, each repeat sized by ``Timer.autorange`` (≥ 0.2 s)."""
    timer = timeit.Timer(stmt)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


class _Trivial:
    def method(self) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    args = bench_args(__doc__, 30, argv)

    print(
        f"itb {itb.__version__} · Python {platform.python_version()} · {platform.machine()} · {platform.system()}"
    )
    print(
        f"scenario: {DAYS} days, flex 300/500/300 µg/day at {CONC} µg/mL, "
        f"{BOLUS_UG:g} µg/{BOLUS_DURATION.seconds // 60} min bolus daily, {MODEL.name}"
    )

    rust_base = build_rust()
    ref_base = build_ref()
    rust_bare = build_rust(boluses=False)
    ref_bare = build_ref(boluses=False)
    until_ms = ms(END)

    # ---- correctness checks (untimed) ------------------------------------------------------
    def fail(msg: str) -> int:
        print(f"MISMATCH: {msg}")
        return 1

    ref_times: dict[str, np.ndarray] = {}
    # A: one call
    rust_a = rust_base.copy()
    rust_events, rust_times_a = rust_a.advance_recording(END)
    ref_a = copy.deepcopy(ref_base)
    ref_events_a = ref_a.advance_to(until_ms)
    ref_times["A"] = np.asarray(ref_a.stroke_times, dtype=np.int64)
    strokes = rust_a.strokes
    if strokes != ref_a.strokes:
        return fail(f"A: Rust fired {strokes} strokes, reference {ref_a.strokes}")
    if not np.array_equal(rust_times_a, ref_times["A"]):
        return fail("A: stroke times differ between Rust and the reference")
    rust_marks = [(e.time_ms, e.kind) for e in rust_events if e.kind in REF_KINDS]
    if rust_marks != [(t, kind) for t, kind, _ in ref_events_a]:
        return fail("A: bolus/alarm events differ between Rust and the reference")
    plain = rust_base.copy()
    plain.advance_to(END)
    if plain.snapshot() != rust_a.snapshot():
        return fail("A: advance_to and advance_recording end in different states")
    # B: daily
    rust_b = rust_bare.copy()
    rust_times_b = np.concatenate(daily_rust(rust_b, record=True))
    ref_b = copy.deepcopy(ref_bare)
    ref_events_b = daily_ref(ref_b)
    ref_times["B"] = np.asarray(ref_b.stroke_times, dtype=np.int64)
    if not (rust_b.strokes == ref_b.strokes == strokes):
        return fail(f"B: strokes Rust {rust_b.strokes}, reference {ref_b.strokes}, A {strokes}")
    if not (
        np.array_equal(rust_times_b, ref_times["B"]) and np.array_equal(rust_times_b, rust_times_a)
    ):
        return fail("B: stroke times differ (Rust B vs reference B vs Rust A)")
    if [(t, kind) for t, kind, _ in ref_events_b] != rust_marks:
        return fail("B: reference bolus/alarm events differ from A's")
    if (rust_b.now_ms, rust_b.reservoir_nl, rust_b.delivered_pg) != (
        rust_a.now_ms,
        rust_a.reservoir_nl,
        rust_a.delivered_pg,
    ):
        return fail("B: the daily run ends in a different state from the one-call run")
    print(
        f"checks: OK — {strokes:,} strokes at identical ms and {len(rust_marks)} identical bolus events, "
        "Rust vs reference, one-call (A) and daily (B)"
    )

    # ---- timings ---------------------------------------------------------------------------
    n, nr = args.repeat, args.ref_repeat
    core_base = rust_base._core  # raw extension object: no Event wrapping, no datetime conversion
    t = {
        "A rust": best_of(n, rust_base.copy, lambda p: p.advance_to(END))[0],
        "A rust rec": best_of(n, rust_base.copy, lambda p: p.advance_recording(END))[0],
        "A core": best_of(n, core_base.copy, lambda c: c.advance_to(until_ms))[0],
        "A ref": best_of(nr, lambda: copy.deepcopy(ref_base), lambda r: r.advance_to(until_ms))[0],
        "B rust": best_of(n, rust_bare.copy, daily_rust)[0],
        "B rust rec": best_of(n, rust_bare.copy, lambda p: daily_rust(p, record=True))[0],
        "B ref": best_of(nr, lambda: copy.deepcopy(ref_bare), daily_ref)[0],
    }

    # ---- project() per call ----------------------------------------------------------------
    demo = default_scenario()  # SynchroMed II 40 mL, flex program, one pending bolus
    horizon = timedelta(days=3650)
    horizon_ms = 3650 * _core.MS_PER_DAY
    trivial = _Trivial()
    # Every measurement goes through one lambda call, the baseline's included.
    project_rows = [
        ("trivial Python method call (baseline)", per_call_us(lambda: trivial.method())),
        (
            "itb.Pump.project() — demo pump, 1 scheduled bolus",
            per_call_us(lambda: demo.project(horizon)),
        ),
        (
            "raw _core.Pump.project(ms) — demo pump",
            per_call_us(lambda: demo._core.project(horizon_ms)),
        ),
        (
            "itb.Pump.project() — bench pump, 365 scheduled boluses",
            per_call_us(lambda: rust_base.project(horizon), 3),
        ),
    ]

    # ---- report ----------------------------------------------------------------------------
    rows = [
        ("A  Rust  itb.Pump.advance_to (closed form)", t["A rust"], "A ref", n),
        ("A  Rust  itb.Pump.advance_recording (every stroke)", t["A rust rec"], "A ref", n),
        ("A  Rust  raw _core.Pump.advance_to", t["A core"], "A ref", n),
        ("A  reference RefPump.advance_to", t["A ref"], "A ref", nr),
        ("B  Rust  itb.Pump bolus+advance_to daily", t["B rust"], "B ref", n),
        ("B  Rust  itb.Pump bolus+advance_recording daily", t["B rust rec"], "B ref", n),
        ("B  reference RefPump bolus+advance_to daily", t["B ref"], "B ref", nr),
    ]
    print()
    print(
        f"strokes in the year: {strokes:,}   (A = 365 boluses up front + one advance; B = daily calls)"
    )
    print(f"{'contender':<52} {'best':>11} {'strokes/s':>12} {'vs ref':>8} {'runs':>5}")
    for name, seconds, ref_key, runs in rows:
        print(
            f"{name:<52} {seconds * 1e3:8.3f} ms {strokes / seconds / 1e6:10.2f} M "
            f"{t[ref_key] / seconds:7.1f}× {runs:5d}"
        )
    print()
    print("speed ratio Rust (itb API) / reference:")
    print(
        f"  A one call : closed-form {t['A ref'] / t['A rust']:7.1f}×   per-stroke recording {t['A ref'] / t['A rust rec']:7.1f}×"
    )
    print(
        f"  B daily    : closed-form {t['B ref'] / t['B rust']:7.1f}×   per-stroke recording {t['B ref'] / t['B rust rec']:7.1f}×"
    )
    print()
    base_us = project_rows[0][1]
    print(
        f"{'per call from Python (best of timeit repeats)':<60} {'µs/call':>10} {'vs baseline':>12}"
    )
    for name, us in project_rows:
        print(f"{name:<60} {us:10.3f} {us / base_us:11.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
