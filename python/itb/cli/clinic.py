"""``itb clinic plan PATIENTS.csv``: a clinic's refill calendar with capacity and its risks."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .common import UsageError, add_command, console, number, positive_duration, print_heading

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``clinic`` group to an argparse ``subparsers`` object."""
    group = add_command(
        sub,
        "clinic",
        None,
        help="a clinic's refill calendar (capacity, holidays, risks)",
        description="Plan a whole clinic's refills.",
    )
    tools = group.add_subparsers(dest="clinic_command", metavar="COMMAND")
    plan = add_command(
        tools,
        "plan",
        _plan,
        help="book every patient's next refill against capacity",
        description="Read PATIENTS.csv (columns: docs/guide/clinic.md; example: "
        "examples/clinic_patients.csv), book every patient's next refill optimally (no patient "
        "past its deadline when avoidable, then fewest visits moved from their ideal day), and "
        "report unfitted patients and time without drug.",
    )
    plan.add_argument("patients", metavar="PATIENTS.csv", help="the patients file")
    plan.add_argument(
        "--capacity",
        type=_positive,
        default=8,
        metavar="N",
        help="visits per open day, 1 or more (default 8)",
    )
    plan.add_argument(
        "--clinician",
        action="append",
        default=[],
        metavar="NAME=N",
        help="visits per open day for a clinician, N 1 or more (repeatable)",
    )
    plan.add_argument("--country", default="US", help="holidays of this country (ISO code; 'none')")
    plan.add_argument("--subdiv", default=None, help="a subdivision of --country")
    plan.add_argument(
        "--closed", action="append", default=[], type=_date, metavar="DATE", help="extra closed day"
    )
    plan.add_argument(
        "--days",
        type=number(int, low=1, high=3660, what="a whole number of days"),
        default=365,
        help="days to book ahead, 1 to 3660 (default 365)",
    )
    plan.add_argument(
        "--today", type=_date, default=None, help="first day (default: the readings')"
    )
    plan.add_argument("--out", metavar="plan.csv|plan.json", default=None, help="write the plan")
    plan.add_argument("--plot", metavar="calendar.png", default=None, help="draw the calendar")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    forecast = add_command(
        tools,
        "forecast",
        _forecast,
        help="what each patient's pump does next with no intervention (a fleet forecast)",
        description="Read PATIENTS.csv (the columns of `itb clinic plan`) and project every pump "
        "with no intervention: low reservoir, empty reservoir, ERI and EOS to come, and the alarms "
        "already sounding with since when. --plot draws how many pumps sound each alarm over time.",
    )
    forecast.add_argument("patients", metavar="PATIENTS.csv", help="the patients file")
    forecast.add_argument(
        "--horizon",
        type=positive_duration,
        default=timedelta(days=365),
        metavar="DURATION",
        help="look this far ahead (default P365D)",
    )
    forecast.add_argument(
        "--assume-refills",
        action="store_true",
        help="reservoirs refilled on time (service dates: ERI, EOS only)",
    )
    forecast.add_argument(
        "--out", metavar="forecast.csv|forecast.json", default=None, help="write the forecast"
    )
    forecast.add_argument(
        "--plot", metavar="forecast.png", default=None, help="draw the fleet forecast"
    )
    forecast.add_argument("--json", action="store_true", help="print the forecast as JSON")


def _nonneg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0")
    return n


def _positive(text: str) -> int:
    n = _nonneg(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed 1 or more")
    return n


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an ISO 8601 date (2026-12-25)"
        ) from None


def _plan(args: argparse.Namespace) -> int:
    from ..clinical import ClinicCalendar, plan_clinic
    from ..clinical.patients import read_patients_csv

    clinicians = {}
    for item in args.clinician:
        name, _, n = item.partition("=")
        if not name or not n.isdigit():
            raise UsageError(f"--clinician {item!r}: expected NAME=N (N a whole number)")
        if int(n) < 1:
            raise UsageError(
                f"--clinician {item!r}: {name}'s visits per open day; allowed 1 or more"
            )
        clinicians[name] = int(n)
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise UsageError(f"--out {args.out!r}: allowed suffixes .csv, .json")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {args.plot!r}: allowed suffixes .png, .svg, .pdf")
    patients = read_patients_csv(args.patients)
    country = None if str(args.country).lower() == "none" else args.country
    cal = ClinicCalendar(country=country, subdiv=args.subdiv, extra_closed=tuple(args.closed))
    plan = plan_clinic(
        patients,
        slots_per_day=args.capacity,
        calendar=cal,
        clinician_slots=clinicians or None,
        days=args.days,
        today=args.today,
    )
    if out is not None:
        _write(out, plan.rows(), _report(plan), "plan")
    if args.plot:
        from ..plots import plot_clinic_calendar

        plot_clinic_calendar(plan, args.plot)
        print(f"wrote the calendar to {args.plot}", file=sys.stderr)
    if args.json:
        print(json.dumps(_report(plan), indent=2, default=str, allow_nan=False))
        return 0
    _print(plan, args)
    return 0


#: The forecast's alarm kinds, in the order of the table and the plot.
_FORECAST_KINDS = ("low_reservoir", "reservoir_empty", "eri", "eos")


def _forecast(args: argparse.Namespace) -> int:
    import numpy as np

    from ..clinical.patients import read_patients_csv
    from ..pump import project_many

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise UsageError(f"--out {args.out!r}: allowed suffixes .csv, .json")
    if args.plot:
        from ..plots import image_format

        image_format(args.plot, "--plot")
    patients = read_patients_csv(args.patients)
    pumps = [p.pump for p in patients]
    cols = project_many(pumps, args.horizon, assume_refills=args.assume_refills)

    def iso(value: Any) -> str | None:
        return None if np.isnat(value) else str(value.astype("datetime64[m]")).replace("T", " ")

    rows = []
    for i, p in enumerate(patients):
        row: dict[str, Any] = {"patient": p.id, "now": iso(np.datetime64(p.pump.now, "ms"))}
        for kind in _FORECAST_KINDS:
            row[kind] = iso(cols[kind][i])
            row[f"{kind}_since"] = iso(cols[f"{kind}_since"][i])
        rows.append(row)
    report = {
        "horizon_days": args.horizon / timedelta(days=1),
        "assume_refills": bool(args.assume_refills),
        "pumps": rows,
        "counts": {
            kind: {
                "sounding": sum(r[f"{kind}_since"] is not None for r in rows),
                "to_come": sum(r[kind] is not None for r in rows),
            }
            for kind in _FORECAST_KINDS
        },
    }
    if out is not None:
        _write(out, rows, report, "forecast")
    if args.plot:
        from ..plots import plot_fleet_forecast

        now = min((p.now for p in pumps), default=None)
        plot_fleet_forecast(
            cols,
            args.plot,
            now=now,
            title=f"{Path(args.patients).stem} — {len(pumps)} pumps, "
            f"{report['horizon_days']:g}-day forecast"
            + (" (refills on time)" if args.assume_refills else ""),
        )
        print(f"wrote the forecast plot to {args.plot}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
        return 0
    from rich.table import Table

    con = console()
    print_heading(con, "clinic forecast", f"{args.patients}: {len(rows)} pumps")
    t = Table(
        title=f"With no intervention (horizon {report['horizon_days']:g} days)",
        caption="since T: already sounding at the reading, from T on",
    )
    t.add_column("patient", no_wrap=True, min_width=7)
    for kind in _FORECAST_KINDS:
        t.add_column(kind.replace("_", " "), no_wrap=True)
    for r in rows:
        t.add_row(
            r["patient"],
            *(
                f"since {r[k + '_since']}" if r[k + "_since"] else (r[k] or "—")
                for k in _FORECAST_KINDS
            ),
        )
    con.print(t)
    return 0


def _write(out: Path, rows: list[dict[str, Any]], report: dict[str, Any], what: str) -> None:
    """The one writer of ``--out`` for ``plan`` and ``forecast``: ``report`` as JSON, or
    ``rows`` as CSV (one column per key; dates ISO 8601, ``<alarm>_since`` for alarms already
    sounding next to the projected ``<alarm>``)."""
    if out.suffix.lower() == ".json":
        out.write_text(
            json.dumps(report, indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8"
        )
    else:
        import csv

        with out.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["patient"])
            w.writeheader()
            w.writerows(rows)
    print(f"wrote the {what} to {out}", file=sys.stderr)


def _report(plan: Any) -> dict[str, Any]:
    return {
        "first_day": plan.first_day.isoformat(),
        "moved": plan.moved,
        "days_moved": plan.days_moved,
        "visits": plan.rows(),
        "unfitted": [v.patient for v in plan.unfitted],
        "overdue": [v.patient for v in plan.overdue],
        "at_risk": [
            {
                "patient": v.patient,
                "hours_without_drug": v.hours_without_drug
                if math.isfinite(v.hours_without_drug)
                else None,
            }
            for v in plan.at_risk
        ],
        "context": plan.context,
    }


def _print(plan: Any, args: argparse.Namespace) -> None:
    from rich.table import Table

    out = console()
    print_heading(out, "clinic plan", f"{args.patients}: {len(plan.visits)} patients")
    t = Table(title="Refill calendar")
    for col in (
        "patient",
        "date",
        "binding",
        "deadline",
        "slack",
        "order",
        "stops",
        "h w/o drug",
        "note",
    ):
        t.add_column(col)
    for v in plan.visits:
        r = v.as_row()
        note = v.reason or ""
        if v.restart_at_full_dose:
            note = (note + "; " if note else "") + "restart at full dose: overdose risk"
        if r["date"]:
            when = r["date"]
        elif r["earliest_feasible"]:
            when = f"— (earliest {r['earliest_feasible']})"
        else:
            when = "— (none in the horizon)"
        hours = (
            f"{v.hours_without_drug:g}"
            if math.isfinite(v.hours_without_drug)
            else "no visit in the horizon"
        )
        t.add_row(
            v.patient,
            when,
            v.binding,
            r["deadline"] or "—",
            "—" if r["slack_days"] is None else f"{r['slack_days']:g} d",
            "—" if v.volume_to_order_ml is None else f"{v.volume_to_order_ml:g} mL",
            r["drug_stops"] or "—",
            hours,
            note,
        )
    out.print(t)
    if plan.at_risk:
        out.print(f"[bold red]{len(plan.at_risk)} patient(s) at risk[/]: {plan.context}")
