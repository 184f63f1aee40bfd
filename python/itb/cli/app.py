"""Command-line interface: ``itb demo`` runs a bundled scenario and prints what happened; the
scenario-file commands (``check``, ``run``, ``project``, ``plan-refill``, ``plot``, ``scenario
schema``) come from :mod:`itb.cli.scenario`.

Subcommands are added by *registrars*: callables ``register(subparsers)`` listed in
:data:`REGISTRARS`, or modules with a ``register`` function named in :data:`COMMAND_MODULES`
(imported when the parser is built; a module that is not installed is skipped). A registrar adds
each command with :func:`itb.cli.common.add_command` and a handler ``handler(args) -> exit code``;
it imports optional dependencies inside the handler (an import error at module level would break
every command).

Exit codes: 0 success; 2 a bad scenario file or argument (message on stderr); 1 anything else.

itb is an engineering / simulation tool. **It is not a medical device and must not be used
for clinical decisions.**
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from .. import __version__
from .._time import to_ms
from ..events import StrokeBatchData
from ..pump import Event, Projection, Pump
from .common import (
    DISCLAIMER,
    NOTICE,
    Parser,
    add_command,
    console,
    delivery_rows,
    events_table,
    exit_code,
    number,
    print_heading,
    print_json,
    totals_table,
)

__all__ = [
    "main",
    "default_scenario",
    "run_demo",
    "DEMO_START",
    "DEFAULT_DAYS",
    "REGISTRARS",
    "COMMAND_MODULES",
    "DISCLAIMER",
]

DEMO_START = datetime(2026, 1, 5, 8, 0)
DEFAULT_DAYS = 240


def default_scenario() -> Pump:
    """The bundled demo pump, freshly built (nothing advanced yet).

    SynchroMed II 40 mL (nominal preset), 40 mL of 2000 µg/mL at 2026-01-05 08:00, a Flex day
    program (00:00 300 µg/day, 08:00 500 µg/day, 22:00 300 µg/day), and one 50 µg bolus over
    30 min starting at 10:00 on day 1.
    """
    from ..scenario.bundled import demo_pump

    return demo_pump()


def run_demo(days: int = DEFAULT_DAYS, pump: Pump | None = None) -> dict[str, Any]:
    """Run a scenario until the reservoir empties or ``days`` pass; return a JSON-ready report.

    The stop time is taken from ``pump.project()`` (made before the run), so the run ends exactly
    at the projected ``reservoir_empty`` event when it falls within ``days``.
    """
    from ..export import event_record, run_totals
    from ..scenario.bundled import demo

    scenario = demo() if pump is None else None
    if pump is None:
        pump = default_scenario()
    start = pump.now
    horizon = timedelta(days=days)
    projection = pump.project(horizon=horizon)
    service = pump.project(horizon=timedelta(days=3650), assume_refills=True)
    until = start + horizon
    if projection.reservoir_empty is not None:
        until = min(until, projection.reservoir_empty)
    events: Sequence[Event]
    if scenario is not None:  # the bundled scenario, through the one run loop
        result = scenario.run(until=until)
        pump, events = result.pump, result.events
    else:
        events = pump.advance_to(until)

    # project() reports what comes strictly after now; events stamped at the start by earlier
    # calls (e.g. a fill below the low threshold) are not part of the comparison.
    later = [e for e in events if e.time > start]
    batches = [e for e in later if e.kind == "stroke_batch"]
    observed = {
        "next_stroke": cast(StrokeBatchData, batches[0].data)["first_ms"] if batches else None,
        "low_reservoir": _first(later, "low_reservoir"),
        "reservoir_empty": _first(later, "reservoir_empty"),
        "drug_at_tip": _first(later, "drug_at_tip"),
    }
    projection_matches = all(_ms(getattr(projection, k, None)) == v for k, v in observed.items())

    totals = {
        **run_totals(pump, start, events),
        "projection_matches_run": projection_matches,
        "eri_forecast": _iso(service.eri),
        "eos_forecast": _iso(service.eos),
    }
    return {
        "disclaimer": DISCLAIMER,
        "model": pump.model.name,
        "projection": _projection_json(projection),
        "events": [event_record(e) for e in events],
        "totals": totals,
    }


# ----- rendering ------------------------------------------------------------------------------


def _first(events: Sequence[Event], kind: str) -> int | None:
    return next((e.time_ms for e in events if e.kind == kind), None)


def _ms(t: datetime | None) -> int | None:
    return None if t is None else to_ms(t, "t")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="milliseconds")


_PROJECTED = ("next_stroke", "low_reservoir", "reservoir_empty", "drug_at_tip")


def _projection_json(p: Projection) -> dict[str, str | None]:
    return {k: _iso(getattr(p, k, None)) for k in _PROJECTED}


def _print_report(report: dict[str, Any], days: int) -> None:
    from rich.table import Table

    out = console()
    print_heading(out, "demo", f"{report['model']}, up to {days} days")

    proj = Table(title="Projection before the run (no intervention)")
    proj.add_column("event")
    proj.add_column("projected time")
    for key, value in report["projection"].items():
        proj.add_row(key, value or "— (not within the horizon)")
    out.print(proj)
    out.print(events_table(report["events"]))

    t = report["totals"]
    out.print(
        totals_table(
            [
                *delivery_rows(t),
                ("projection == run", "yes" if t["projection_matches_run"] else "NO"),
                (
                    "battery left",
                    "n/a"
                    if t["battery_remaining_mah"] is None
                    else f"{t['battery_remaining_mah']:.1f} mAh",
                ),
                ("ERI / EOS if refilled on time", f"{t['eri_forecast']} / {t['eos_forecast']}"),
            ]
        )
    )


# ----- entry point ------------------------------------------------------------------------------


def _run_demo_command(args: argparse.Namespace) -> int:
    report = run_demo(days=args.days)
    if args.json:
        return print_json(report)
    _print_report(report, args.days)
    return 0


def _register_demo(sub: Any) -> None:
    demo = add_command(
        sub,
        "demo",
        _run_demo_command,
        help="run the bundled demo scenario and print its events and totals",
        description=(
            "Run the bundled scenario (SynchroMed II 40 mL nominal preset, 40 mL at 2000 µg/mL, flex day "
            "program 300/500/300 µg/day, a 50 µg bolus over 30 min on day 1) until the reservoir "
            "empties or DAYS pass."
        ),
    )
    demo.add_argument(
        "--days",
        type=number(int, low=0, high=36_500, what="an integer"),
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"simulate at most N days (default {DEFAULT_DAYS})",
    )
    demo.add_argument(
        "--json", action="store_true", help="print events and totals as JSON to stdout"
    )


#: Callables ``register(subparsers)`` that add subcommands, in ``--help`` order.
REGISTRARS: list[Callable[[Any], None]] = [_register_demo]
#: Modules defining ``register(subparsers)``, imported when the parser is built; one that is not
#: installed (``ModuleNotFoundError`` for that very module) is skipped.
COMMAND_MODULES: list[str] = ["itb.cli.scenario", "itb.cli.rig", "itb.cli.export", "itb.cli.clinic"]


def _registrars() -> list[Callable[[Any], None]]:
    found = list(REGISTRARS)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        found.append(module.register)
    return found


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="itb",
        description=(
            "itb — exact simulation of an intrathecal baclofen (ITB) pump.\n\n"
            "WARNING: " + DISCLAIMER
        ),
        epilog=NOTICE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"itb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code by the one map of every command
    (:data:`itb.cli.common.EXIT_CODES`): 0 success; 2 a bad argument, option, file or path
    (argparse usage errors, ``ValidationError`` incl. ``ScenarioError``, unreadable input,
    unwritable output); 1 a run-time refusal or other failure (other itb errors, a missing
    optional dependency, an interrupt); 1 with "internal error" and how to report it for a bug."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler = getattr(args, "handler", None)
    if handler is None:  # `itb` alone, or a command group without its subcommand
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except BaseException as exc:  # noqa: BLE001 - every outcome goes through the one map
        if isinstance(exc, SystemExit):
            raise
        code, message = exit_code(exc)
        print(message, file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
