"""``itb`` subcommands on scenario files: ``check``, ``run``, ``project``, ``plan-refill``,
``plot`` and ``scenario schema`` (registered by :func:`register`; see :mod:`itb.cli`).

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, time, timedelta
from typing import Any

from .. import _time
from .._time import format_duration
from .._units import nl_to_ml
from .common import (
    DISCLAIMER,
    UsageError,
    add_command,
    console,
    delivery_rows,
    duration,
    events_table,
    exit_code,
    number,
    positive_duration,
    print_heading,
    print_json,
    progress_callback,
    totals_table,
    when,
)

__all__ = ["register"]

_TEN_YEARS = timedelta(days=3650)


def register(sub: Any) -> None:
    """Add the scenario commands to an argparse ``subparsers`` object."""
    check = add_command(
        sub,
        "check",
        _check,
        help="validate a scenario file and run it once",
        description="Validate SCENARIO (TOML) and run it to its end; print a one-line summary. Errors name the "
        "file, line, entry (actions[3]), field and allowed range; exit code 2.",
    )
    check.add_argument("scenario", metavar="SCENARIO", nargs="+", help="scenario files (TOML)")
    check.add_argument(
        "--json", action="store_true", help="print one result per file as JSON to stdout"
    )

    run = add_command(
        sub,
        "run",
        _run,
        help="run a scenario file and print its events and totals",
        description="Run SCENARIO to its [run] until (or --until) and print the events and totals, as tables, "
        "JSON (--json) or CSV (--csv FILE: the events; with --every, the sampled time series).",
    )
    _scenario_arg(run)
    _until_arg(run)
    out = run.add_mutually_exclusive_group()
    out.add_argument(
        "--json",
        action="store_true",
        help='print {"scenario", "events", "totals"} as JSON to stdout',
    )
    out.add_argument(
        "--csv",
        metavar="FILE",
        help="write the events as CSV to FILE ('-' for stdout); needs pandas: pip install 'itb-pump[pandas]'",
    )
    run.add_argument(
        "--every",
        type=duration,
        metavar="DURATION",
        help="with --csv: write the state sampled every DURATION (e.g. PT1H) instead of the events",
    )

    project = add_command(
        sub,
        "project",
        _project,
        help="run a scenario, then project what comes next with no intervention",
        description="Run SCENARIO to its end, then print the exact times of the next stroke, low reservoir, empty "
        "reservoir, drug at tip, ERI and EOS with no intervention, and the same assuming refills on time.",
    )
    _scenario_arg(project)
    _until_arg(project)
    project.add_argument(
        "--horizon",
        type=duration,
        default=_TEN_YEARS,
        metavar="DURATION",
        help="look this far ahead (ISO 8601, default P3650D)",
    )
    project.add_argument("--json", action="store_true", help="print the projections as JSON")
    project.add_argument(
        "--plot",
        metavar="FILE",
        default=None,
        help="also draw the pump's course from the end of the run with no intervention "
        "(.png, .svg, .pdf; needs itb-pump[plot])",
    )
    project.add_argument(
        "--plot-span",
        type=positive_duration,
        default=timedelta(days=90),
        metavar="DURATION",
        help="with --plot: how far ahead to draw (default P90D)",
    )

    plan = add_command(
        sub,
        "plan-refill",
        _plan_refill,
        help="run a scenario, then plan the next refill (itb.clinical.plan_refill)",
        description="Run SCENARIO to its end, then plan the next refill: the earliest of the low-reservoir alarm "
        "minus MARGIN, the drug-stability limit and the battery ERI, with the volume to order.",
    )
    _scenario_arg(plan)
    _until_arg(plan)
    margin = _refill_default("margin")
    plan.add_argument(
        "--margin",
        type=duration,
        default=margin,
        metavar="DURATION",
        help="refill this long before the low-reservoir alarm "
        f"(default {format_duration(margin)}, as itb.clinical.plan_refill)",
    )
    plan.add_argument(
        "--stability",
        type=duration,
        default=None,
        metavar="DURATION",
        help="drug stability in the pump, counted from the last fill in the scenario "
        "(its last refill, else its start; e.g. P180D; default: no limit)",
    )
    cal = _calendar_default()
    plan.add_argument(
        "--country",
        default=cal.country or "none",
        metavar="CODE",
        help="public holidays of this country, ISO 3166 (default %(default)s; 'none': no holidays)",
    )
    plan.add_argument(
        "--subdivision",
        default=cal.subdiv,
        metavar="CODE",
        help="state or province for its holidays (e.g. CA, BY; default none)",
    )
    plan.add_argument(
        "--closed",
        action="append",
        default=[],
        type=_closed_day,
        metavar="DATE[=LABEL]",
        help="a day the clinic is closed, with an optional label (repeatable; "
        "e.g. 2026-12-24=staff training)",
    )
    plan.add_argument(
        "--closed-weekdays",
        type=_weekdays,
        default=cal.closed_weekdays,
        metavar="DAYS",
        help="weekdays the clinic is closed, e.g. sat,sun (default sat,sun; 'none': open daily)",
    )
    plan.add_argument(
        "--appointment",
        type=_clock_time,
        default=cal.appointment_time,
        metavar="HH:MM",
        help=f"appointment time on the booked day (default {cal.appointment_time:%H:%M})",
    )
    plan.add_argument(
        "--fill-ml",
        type=number(float, low=0, low_open=True),
        default=None,
        metavar="ML",
        help="volume to fill (mL; default: the reservoir capacity)",
    )
    plan.add_argument(
        "--vial-ml",
        type=number(float, low=0, low_open=True),
        default=None,
        metavar="ML",
        help="order whole vials of this size (mL; default: no rounding)",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    plot = add_command(
        sub,
        "plot",
        _plot,
        help="plot a scenario run to a PNG (needs itb-pump[plot])",
        description="Run SCENARIO and plot the reservoir, the commanded rate, the dose at the catheter tip, the "
        "battery and the alarms on one time axis. Needs matplotlib: pip install 'itb-pump[plot]'.",
    )
    _scenario_arg(plot)
    _until_arg(plot)
    plot.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="image file to write (.png, .svg, .pdf)",
    )
    plot.add_argument(
        "--every",
        type=duration,
        default=None,
        metavar="DURATION",
        help="sampling interval (default: about 2000 samples over the run)",
    )

    group = add_command(
        sub,
        "scenario",
        None,
        help="scenario-file tools (schema)",
        description="Tools for scenario files.",
    )
    tools = group.add_subparsers(dest="scenario_command", metavar="TOOL")
    schema = add_command(
        tools,
        "schema",
        _schema,
        help="print the JSON Schema of scenario files",
        description="Print the JSON Schema (draft 2020-12) of scenario files, for editors that check TOML "
        "against a schema (e.g. Even Better TOML / taplo).",
    )
    schema.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


_WEEKDAYS = _time.WEEKDAYS


def _calendar_default() -> Any:
    from ..clinical import ClinicCalendar

    return ClinicCalendar()


def _closed_day(text: str) -> tuple[date, str]:
    """argparse type: ``DATE`` or ``DATE=LABEL``."""
    day, _, label = text.partition("=")
    try:
        return date.fromisoformat(day.strip()), label.strip()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected DATE or DATE=LABEL, e.g. 2026-12-24=staff training"
        ) from None


def _weekdays(text: str) -> tuple[int, ...]:
    """argparse type: weekday names (``sat,sun``) or ``none``."""
    if text.strip().lower() == "none":
        return ()
    out = []
    for part in text.split(","):
        name = part.strip().lower()[:3]
        if name not in _WEEKDAYS:
            import difflib

            close = difflib.get_close_matches(name, _WEEKDAYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not a weekday{hint} (allowed: {', '.join(_WEEKDAYS)}, none)"
            )
        out.append(_WEEKDAYS.index(name))
    return tuple(sorted(set(out)))


def _clock_time(text: str) -> time:
    """argparse type: a pump-clock time of day, ``HH:MM[:SS]`` (:func:`itb._time.time_of_day`)."""
    try:
        return _time.time_of_day(text)
    except _time.ClockTextError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (a time of day: HH:MM)") from None


def _refill_default(name: str) -> Any:
    """The default of ``itb.clinical.plan_refill``'s parameter ``name`` (one default for the
    API and the command line)."""
    import inspect

    from ..clinical import plan_refill

    return inspect.signature(plan_refill).parameters[name].default


def _scenario_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario file (TOML)")


def _until_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--until",
        type=when,
        metavar="T",
        help="stop at T: a pump-clock time (2026-03-01T08:00) or a duration from the start (P30D)",
    )


# ----- handlers ---------------------------------------------------------------------------------


def _execute(args: argparse.Namespace) -> Any:
    from ..scenario import load

    scenario = load(args.scenario)
    until = getattr(args, "until", None)
    if until is not None:
        stop = scenario.start + until if isinstance(until, timedelta) else until
        if stop < scenario.start:
            raise UsageError(
                f"--until {stop.isoformat(sep=' ')} is before the scenario's start {scenario.start.isoformat(sep=' ')}"
            )
    with progress_callback(f"running {args.scenario}") as progress:
        return scenario.run(until=until, progress=progress)


def _check(args: argparse.Namespace) -> int:
    """Check every file; the exit code is the worst of theirs (2 a bad file, 1 a refusal)."""
    worst, records = 0, []
    for path in args.scenario:
        one = argparse.Namespace(**{**vars(args), "scenario": path})
        try:
            result = _execute(one)
        except Exception as exc:  # noqa: BLE001 - each file's error by the one map
            code, message = exit_code(exc)
            if message.startswith("itb: internal error"):
                raise
            worst = max(worst, code)
            records.append({"scenario": path, "ok": False, "exit_code": code, "error": str(exc)})
            if not args.json:
                print(message, file=sys.stderr)
            continue
        s = result.scenario
        record = {
            "scenario": path,
            "ok": True,
            "model": result.pump.model.name,
            "actions": len(s.actions),
            "start": _iso(result.start),
            "until": _iso(result.until),
            "events": len(result.events),
            "alarms": sum(1 for e in result.events if e.severity is not None),
        }
        records.append(record)
        if not args.json:
            print(
                f"ok: {path}: {record['model']}, {record['actions']} actions, "
                f"{_people_time(record['start'])} → {_people_time(record['until'])}, "
                f"{record['events']} events, {record['alarms']} alarms"
            )
    if args.json:
        print_json({"disclaimer": DISCLAIMER, "files": records})
    return worst


def _run(args: argparse.Namespace) -> int:
    if args.every is not None and args.csv is None:
        raise UsageError("--every needs --csv FILE (it selects the sampled time series)")
    if args.every is not None and args.every <= timedelta(0):
        raise UsageError("--every must be a positive duration")
    result = _execute(args)
    if args.json:
        return print_json({"disclaimer": DISCLAIMER, **result.to_dict()})
    if args.csv is not None:
        if args.every is not None:
            with progress_callback("sampling") as progress:
                frame = result.timeseries(every=args.every, progress=progress)
            what, text = f"{len(frame)} samples", frame.to_csv(index=True)
        else:
            frame = result.events_frame()
            what, text = f"{len(frame)} events", frame.to_csv(index=False)
        if args.csv == "-":
            sys.stdout.write(text)
        else:
            with open(args.csv, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            print(f"wrote {what} to {args.csv}", file=sys.stderr)
        return 0
    _print_run(result)
    return 0


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="milliseconds")


def _project(args: argparse.Namespace) -> int:
    if args.plot:
        from ..plots import image_format

        image_format(args.plot, "--plot")  # before the run: a bad suffix is a bad option
    result = _execute(args)
    pump = result.pump
    if args.plot:
        from pathlib import Path

        from ..plots import plot_pump_history

        name = Path(result.scenario.source).stem.strip("<>") or "scenario"
        path = plot_pump_history(
            pump,
            pump.now + args.plot_span,
            args.plot,
            title=f"{name} — projected course from "
            f"{pump.now.isoformat(sep=' ', timespec='minutes')}",
        )
        print(f"wrote {path}", file=sys.stderr)
    plain = pump.project(horizon=args.horizon)
    refilled = pump.project(horizon=args.horizon, assume_refills=True)
    report = {
        "scenario": result.scenario.source,
        "now": _iso(pump.now),
        "horizon_days": args.horizon / timedelta(days=1),
        "projection": {k: _iso(v) for k, v in plain.as_dict().items()},
        "assume_refills": {k: _iso(v) for k, v in refilled.as_dict().items()},
        "active_alarms": [
            {"alarm": n, "severity": sev, "since": _iso(t)} for n, sev, t in plain.active_alarms
        ],
    }
    if args.json:
        return print_json(report)
    from rich.table import Table

    out = console()
    print_heading(
        out,
        "project",
        f"{result.scenario.source}: {pump.model.name}, from {pump.now.isoformat(sep=' ')}",
    )
    table = Table(
        title=f"What comes next with no intervention (horizon {report['horizon_days']:g} days)"
    )
    table.add_column("event")
    table.add_column("as programmed", no_wrap=True)
    table.add_column("refilled on time", no_wrap=True)
    sounding = {a["alarm"]: a["since"] for a in report["active_alarms"]}
    for key in report["projection"]:
        a, b = report["projection"][key], report["assume_refills"][key]
        if key in sounding:
            a = b = f"active since {sounding[key]}"
        table.add_row(key, (a or "—").replace("T", " "), (b or "—").replace("T", " "))
    for fault in ("motor_stall", "battery_fault"):
        if fault in sounding:
            now = f"active since {sounding[fault]}".replace("T", " ")
            table.add_row(fault, now, now)
    out.print(table)
    return 0


def _plan_refill(args: argparse.Namespace) -> int:
    from .. import clinical

    calendar = clinical.ClinicCalendar(
        country=None if str(args.country).lower() == "none" else args.country,
        subdiv=args.subdivision,
        closed_weekdays=args.closed_weekdays,
        extra_closed=tuple(d for d, _ in args.closed),
        appointment_time=args.appointment,
    )
    result = _execute(args)
    # Drug stability counts from the last fill: the last refill of the run, else the start.
    refills = [e.time for e in result.events if e.kind == "refilled"]
    filled_at = refills[-1] if refills else result.start
    plan = clinical.plan_refill(
        result.pump,
        margin=args.margin,
        stability=args.stability,
        calendar=calendar,
        filled_at=filled_at,
        fill_ml=args.fill_ml,
        vial_ml=args.vial_ml,
    )
    labels = {d.isoformat(): label for d, label in args.closed if label}
    report = {
        "disclaimer": DISCLAIMER,
        "scenario": result.scenario.source,
        "now": _iso(result.pump.now),
        "date": _iso(plan.date),
        "constraint": plan.constraint,
        "reason": plan.reason,
        "deadline": _iso(plan.deadline),
        "on_time": plan.on_time,
        "candidates": [
            {
                "constraint": c.constraint,
                "event_at": _iso(c.event_at),
                "deadline": _iso(c.deadline),
            }
            for c in plan.candidates
        ],
        "margin": format_duration(args.margin),
        "stability": None if args.stability is None else format_duration(args.stability),
        "calendar": {
            "country": calendar.country,
            "subdivision": calendar.subdiv,
            "closed_weekdays": [_WEEKDAYS[d] for d in calendar.closed_weekdays],
            "closed": [{"date": d.isoformat(), "label": label} for d, label in args.closed],
            "appointment": calendar.appointment_time.isoformat(timespec="minutes"),
        },
        "concentration_ug_per_ml": plan.concentration_ug_per_ml,
        "fill_volume_ml": nl_to_ml(plan.fill_volume_nl),
        "volume_to_order_ml": plan.volume_to_order_ml,
        "vials": plan.vials,
        "vial_ml": args.vial_ml,
        "drug_to_order_ug": plan.drug_to_order_ug,
        "expected_residual_ml": nl_to_ml(plan.expected_residual_nl),
        "tip_dose_ug": plan.tip_dose_ug,
        "alarms_before": list(plan.alarms_before),
    }
    if args.json:
        return print_json(report)
    from rich.table import Table

    out = console()
    print_heading(out, "plan-refill", f"{result.scenario.source}: {result.pump.model.name}")
    table = Table(
        title=f"Next refill (margin {report['margin']}, stability {report['stability'] or 'no limit'})"
    )
    table.add_column("quantity")
    table.add_column("value")
    table.add_row("as of", _people_time(report["now"]))
    table.add_row("refill on", _people_time(report["date"]))
    table.add_row(
        "deadline", _people_time(report["deadline"]) + ("" if plan.on_time else " (late)")
    )
    table.add_row("because", str(plan.reason))
    for c in report["candidates"]:
        table.add_row(
            f"  {c['constraint']}",
            f"{_people_time(c['event_at'])} → deadline {_people_time(c['deadline'])}",
        )
    for day, label in labels.items():
        table.add_row("  closed", f"{day} ({label})")
    order = f"{plan.volume_to_order_ml:.3f} mL"
    if plan.vials is not None:
        order += f" ({plan.vials} × {args.vial_ml:g} mL vials)"
    table.add_row("volume to order", order)
    table.add_row("drug to order", f"{plan.drug_to_order_ug:,.1f} µg")
    table.add_row("left in the reservoir then", f"{nl_to_ml(plan.expected_residual_nl):.3f} mL")
    table.add_row("dose at the tip until then", f"{plan.tip_dose_ug:,.1f} µg")
    if plan.alarms_before:
        table.add_row("alarms before the refill", ", ".join(plan.alarms_before))
    out.print(table)
    return 0


def _people_time(iso: str | None) -> str:
    return "—" if iso is None else iso.replace("T", " ")


def _plot(args: argparse.Namespace) -> int:
    from ..plots import image_format, plot_result

    image_format(args.output, "--output")  # before the run: a bad suffix is a bad option
    result = _execute(args)
    with progress_callback("sampling") as progress:
        path = plot_result(result, args.output, every=args.every, progress=progress)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from ..scenario import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


# ----- rendering ----------------------------------------------------------------------------------


def _print_run(result: Any) -> None:
    from ..export import event_record

    out = console()
    s = result.scenario
    print_heading(
        out,
        "run",
        f"{s.source}: {result.pump.model.name}, "
        f"{result.start.isoformat(sep=' ')} → {result.until.isoformat(sep=' ')}",
    )
    out.print(events_table(event_record(e) for e in result.events))
    t = result.totals
    battery = t["battery_remaining_mah"]
    out.print(
        totals_table(
            [
                *delivery_rows(t),
                (
                    "battery left",
                    "n/a"
                    if battery is None
                    else f"{battery:.1f} mAh"
                    + (" (EOS)" if t["eos"] else " (ERI)" if t["eri"] else ""),
                ),
                ("alarm events", str(t["alarms"])),
            ]
        )
    )
