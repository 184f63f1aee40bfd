"""A year of a flex program with one bolus a day, exported as a FHIR bundle (R5 and R4B, validated
by fhir.resources; also the R5 JSON text the CLI writes) and as IHE PCD-10 messages; times against
the scenario run itself (the baseline, same process). Prints figures and ratios; exits 1 on
``MISMATCH`` (doses not adding up, or R4B and R5 doses differing).

    python benches/bench_interop.py [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from decimal import Decimal

from itb import scenario
from itb.interop import fhir, history_of, hl7v2

SCENARIO = """
[pump]
model = { name = "bench rig", reservoir_ml = 500.0, stroke_nl = 2000, min_rate_ml_per_day = 0.048, max_rate_ml_per_day = 24.0, pump_path_ul = 100.0 }
start = 2026-01-05T00:00:00
reservoir_ml = 500.0
concentration_ug_per_ml = 500
catheter_volume_ul = 100.0
program = { kind = "flex", period = "day", steps = [["00:00:00", 300.0], ["08:00:00", 500.0], ["22:00:00", 300.0]] }
"""


def year() -> scenario.Scenario:
    lines = [SCENARIO]
    for day in range(365):
        lines.append(
            "[[actions]]\n"
            f"at = {(_start() + _days(day)).isoformat()}T12:00:00\n"
            'do = "bolus"\ndose_ug = 50.0\nduration = "PT30M"\n'
        )
    lines.append(f"[run]\nuntil = {(_start() + _days(365)).isoformat()}T00:00:00\n")
    return scenario.loads("\n".join(lines), source="bench-year.toml")


def _start():
    from datetime import date

    return date(2026, 1, 5)


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


def best(fn, repeat: int) -> tuple[float, object]:
    out = None
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        gc.enable()
    return min(times), out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sc = year()
    t_run, result = best(sc.run, args.repeat)
    t_hist, hist = best(lambda: history_of(result), args.repeat)
    t_fhir, bundle = best(lambda: fhir.bundle(result, version="R5"), args.repeat)
    t_fhir_nv, _ = best(lambda: fhir.bundle(result, version="R5", validate=False), args.repeat)
    t_r4b, r4b = best(lambda: fhir.bundle(result, version="R4B"), args.repeat)
    t_json, _ = best(lambda: fhir.dumps(result, version="R5"), args.repeat)
    t_hl7, msgs = best(lambda: hl7v2.messages(result), args.repeat)
    sample = msgs[: min(len(msgs), 20)]
    t_val, _ = best(lambda: [hl7v2.validate(m.text) for m in sample], 1)
    doses = sum(
        Decimal(str(e["resource"]["dosage"]["dose"]["value"]))
        for e in bundle["entry"]  # type: ignore[index]
        if e["resource"]["resourceType"] == "MedicationAdministration"
    )
    doses_r4b = sum(
        Decimal(str(e["resource"]["dosage"]["dose"]["value"]))
        for e in r4b["entry"]  # type: ignore[index]
        if e["resource"]["resourceType"] == "MedicationAdministration"
    )
    if doses != Decimal(result.pump.delivered_pg) / 10**6 or doses_r4b != doses:
        print(f"MISMATCH: doses {doses} µg != delivered {result.pump.delivered_pg / 1e6} µg")
        return 1
    n_ma = sum(1 for a in hist.administrations)  # type: ignore[union-attr]
    print(
        f"one year, flex 3 steps/day + 1 bolus/day: {n_ma} administrations, "
        f"{len(bundle['entry'])} bundle entries, {len(msgs)} PCD-10 messages"
    )  # type: ignore[index]
    rows = [
        ("scenario run (baseline)", t_run),
        ("history (replay + segments)", t_hist),
        ("FHIR R5 bundle, validated", t_fhir),
        ("FHIR R5 bundle, not validated", t_fhir_nv),
        ("FHIR R4B bundle, validated", t_r4b),
        ("FHIR R5 JSON text, validated", t_json),
        ("PCD-10 messages (ER7)", t_hl7),
    ]
    for name, t in rows:
        print(f"  {name:32s} {t * 1000:8.1f} ms   {t / t_run:6.1f} × run")
    per = t_val / len(sample)
    print(
        f"  hl7apy strict parse per message  {per * 1000:8.1f} ms   "
        f"(all {len(msgs)}: ≈ {per * len(msgs):.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
