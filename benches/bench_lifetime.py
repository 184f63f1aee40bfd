#!/usr/bin/env python3
"""Seven-year lifetime benchmark with the battery: the Rust core (through the ``itb`` API) vs the
pure-Python reference model ``tests/reference.py``.

Run:  python benches/bench_lifetime.py [--repeat N] [--ref-repeat N] [--quick]

Scenario (identical for both): a SynchroMed-II-like 40 mL pump (``itb.models.SYNCHROMED_II_40``,
its ``NOMINAL_BATTERY``: assumed figures, not device data) filled with 40 mL at 2000 µg/mL,
1000 µg/day continuous (0.5 mL/day, 250 strokes/day), refilled to 40 mL at the same
concentration exactly at every low-reservoir alarm (the alarm time is taken from
``project()``), run for 7 years from 2026-01-05 or until EOS stops delivery.

Checks (not timed): both models fire the same strokes at the same milliseconds, raise ERI and
EOS at the same ms, refill at the same times, and end with the same remaining charge. Timings
are best-of-N wall clock (``time.perf_counter``), printed and never asserted.
"""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # for reference.py

import itb  # noqa: E402
from _timing import bench_args, best_of  # noqa: E402
from reference import RefPump  # noqa: E402

START = datetime(2026, 1, 5, 0, 0)
END = datetime(2033, 1, 5, 0, 0)  # 7 years
MODEL = itb.models.SYNCHROMED_II_40
FILL_ML = 40.0
CONC = 2000  # µg/mL
DOSE = 1000.0  # µg/day
YEAR_DAYS = 365.2425


def ms(t: datetime) -> int:
    return (t - datetime(1970, 1, 1)) // timedelta(milliseconds=1)


def date_of(t_ms: int | None) -> datetime | None:
    return None if t_ms is None else datetime(1970, 1, 1) + timedelta(milliseconds=t_ms)


def build_rust() -> itb.Pump:
    return itb.Pump(
        MODEL,
        now=START,
        reservoir_ml=FILL_ML,
        concentration_ug_per_ml=CONC,
        program=itb.Continuous(ug_per_day=DOSE),
    )


def build_ref() -> RefPump:
    m = MODEL.exact()
    return RefPump(
        now_ms=ms(START),
        stroke_nl=m["stroke_nl"],
        capacity_nl=m["reservoir_nl"],
        reservoir_nl=m["reservoir_nl"],
        low_reservoir_nl=m["low_reservoir_nl"],
        conc_ug_per_ml=CONC,
        program=("continuous", 1_000_000),
        pump_path_nl=m["pump_path_nl"],
        max_rate_nl_per_day=m["max_rate_nl_per_day"],
        all_events=True,
        battery=m["battery"],
    )


def run_rust(pump: itb.Pump, record: bool = False) -> dict[str, Any]:
    """Refill at every low alarm until the end; ERI/EOS from the events."""
    out: dict[str, Any] = {"refills": [], "eri": None, "eos": None, "times": []}
    core = pump.core
    end = ms(END)

    def advance(t: int) -> None:
        if record:
            events, times = core.advance_to_recording(t)
            out["times"].extend(times.tolist())
        else:
            events = core.advance_to(t)
        for when, kind, _sev, _data in events:
            if kind in ("eri", "eos"):
                out[kind] = when

    while core.now_ms < end:
        low = core.project(end - core.now_ms)[1]
        advance(end if low is None else low)
        if low is not None:
            core.refill(40_000_000, CONC)
            out["refills"].append(low)
    out["strokes"] = core.strokes
    out["remaining_pc"] = core.battery_remaining_pc
    return out


def run_ref(ref: RefPump) -> dict[str, Any]:
    out: dict[str, Any] = {"refills": []}
    end = ms(END)
    while ref.now_ms < end:
        low = ref.project(end - ref.now_ms)["low_reservoir"]
        ref.advance_to(end if low is None else low)
        if low is not None:
            ref.refill(40_000_000, CONC)
            out["refills"].append(low)
    out.update(
        strokes=ref.strokes,
        remaining_pc=ref.battery_remaining_pc,
        eri=ref.eri_ms,
        eos=ref.eos_ms,
        times=ref.stroke_times,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = bench_args(__doc__, 20, argv)

    print(
        f"itb {itb.__version__} · Python {platform.python_version()} · {platform.machine()} · {platform.system()}"
    )
    print(
        f"scenario: {MODEL.name}, NOMINAL_BATTERY, {DOSE:g} µg/day at {CONC} µg/mL, "
        f"refilled to {FILL_ML:g} mL at every low-reservoir alarm, {START:%Y-%m-%d} → {END:%Y-%m-%d}"
    )

    # ---- checks (not timed) ----------------------------------------------------------------
    rust = run_rust(build_rust(), record=True)
    t_ref, ref = best_of(args.ref_repeat, build_ref, run_ref)
    checks = [
        ("stroke count", rust["strokes"], ref["strokes"]),
        ("stroke times", rust["times"], ref["times"]),
        ("refill (low alarm) times", rust["refills"], ref["refills"]),
        ("ERI time", rust["eri"], ref["eri"]),
        ("EOS time", rust["eos"], ref["eos"]),
        ("remaining charge (pC)", rust["remaining_pc"], ref["remaining_pc"]),
    ]
    for name, a, b in checks:
        if a != b:
            shown = (a, b) if not isinstance(a, list) else (len(a), len(b))
            print(f"MISMATCH: {name}: rust {shown[0]!r} vs reference {shown[1]!r}")
            return 1
    print(
        f"checks: OK — {rust['strokes']:,} strokes at identical ms, {len(rust['refills'])} refills, "
        f"identical ERI/EOS and remaining charge"
    )

    # ---- timings ---------------------------------------------------------------------------
    t_rust, _ = best_of(args.repeat, build_rust, run_rust)
    print()
    print(f"{'contender':<52} {'best':>12} {'runs':>5}")
    print(
        f"{'itb.Pump.core (project + advance_to + refill)':<52} {t_rust * 1e3:9.3f} ms {args.repeat:>5}"
    )
    print(
        f"{'tests/reference.py RefPump (same calls)':<52} {t_ref * 1e3:9.1f} ms {args.ref_repeat:>5}"
    )
    print(f"speed ratio Rust / reference: {t_ref / t_rust:,.0f}× faster")

    # ---- service dates ---------------------------------------------------------------------
    eri, eos = date_of(rust["eri"]), date_of(rust["eos"])
    print()
    if eri is not None:
        print(
            f"ERI: {eri:%Y-%m-%d %H:%M:%S.%f}"[:-3]
            + f"  ({(eri - START).total_seconds() / 86400 / YEAR_DAYS:.3f} years)"
        )
    else:
        print("ERI: not within 7 years")
    if eos is not None:
        years = (eos - START).total_seconds() / 86400 / YEAR_DAYS
        print(f"EOS: {eos:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f"  ({years:.3f} years of service)")
        if eri is not None:
            print(f"ERI → EOS: {(eos - eri).total_seconds() / 86400:.1f} days")
    else:
        print("EOS: not within 7 years")
    return 0


if __name__ == "__main__":
    sys.exit(main())
