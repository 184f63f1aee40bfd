"""``itb export fhir`` and ``itb export hl7``: a scenario's therapy history as an HL7 FHIR
bundle (R5 or R4B) or as IHE PCD-10 HL7 v2 event messages, to a file or over MLLP (registered by
:func:`register`; see :mod:`itb.cli`).

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from .common import UsageError, add_command, progress_callback, when

__all__ = ["register", "utc_offset"]


def utc_offset(text: str) -> timedelta:
    """argparse type: a UTC offset ``+01:00``, ``-05:30``, ``+0000`` or ``Z``."""
    t = text.strip()
    if t.upper() == "Z":
        return timedelta(0)
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", t)
    if not m or int(m.group(3)) >= 60 or int(m.group(2)) * 60 + int(m.group(3)) > 14 * 60:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a UTC offset within -14:00..+14:00 (e.g. +01:00, -05:30, Z)"
        )
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return timedelta(minutes=-minutes if m.group(1) == "-" else minutes)


def register(sub: Any) -> None:
    """Add the ``export`` group to an argparse ``subparsers`` object."""
    group = add_command(
        sub,
        "export",
        None,
        help="export a scenario's therapy history (HL7 FHIR, IHE PCD-10 HL7 v2)",
        description="Export the therapy history of a scenario run in a standard form.",
    )
    tools = group.add_subparsers(dest="export_command", metavar="FORMAT")
    fhir = add_command(
        tools,
        "fhir",
        _fhir,
        help="an HL7 FHIR Bundle (collection) of the run, R5 or R4B",
        description="Run SCENARIO and write an HL7 FHIR Bundle (type collection): the pump and catheter "
        "Devices, the patient link, a MedicationRequest per program, a MedicationAdministration per basal "
        "segment and bolus (dose at the catheter tip), Observations and DetectedIssues. Validated with "
        "fhir.resources (pip install 'itb-pump[fhir]').",
    )
    _common(fhir)
    fhir.add_argument(
        "--fhir-version",
        choices=("R4B", "R5"),
        default="R5",
        help="FHIR release (default R5)",
    )
    fhir.add_argument(
        "-o", "--output", metavar="FILE", default="-", help="output file ('-': stdout)"
    )
    fhir.add_argument(
        "--titration-guard",
        metavar="ORIGIN:PHASE",
        help="check every program change with the titration guard (e.g. spinal:titration, "
        "cerebral:maintenance); denied or flagged changes become DetectedIssues",
    )
    fhir.add_argument(
        "--max-ug-per-day",
        type=float,
        metavar="UG",
        help="the guard's absolute daily maximum in µg/day (needed with --titration-guard)",
    )
    hl7 = add_command(
        tools,
        "hl7",
        _hl7,
        help="IHE PCD-10 ORU^R42 event messages of the run, to a file or over MLLP",
        description="Run SCENARIO and write one IHE PCD-10 (Infusion Pump Event Communication) HL7 v2.6 "
        "ORU^R42^ORU_R01 message per delivery event and alarm, each parsed strictly with hl7apy "
        "(pip install 'itb-pump[hl7]'); to FILE, or sent over MLLP to HOST:PORT (each message acknowledged).",
    )
    _common(hl7)
    out = hl7.add_mutually_exclusive_group()
    out.add_argument(
        "-o", "--output", metavar="FILE", help="output file ('-': stdout, the default)"
    )
    out.add_argument("--mllp", metavar="HOST:PORT", help="send over MLLP to HOST:PORT")
    hl7.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the hl7apy parse of every message (faster for long runs)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario file (TOML)")
    parser.add_argument(
        "--until",
        type=when,
        metavar="T",
        help="stop at T: a pump-clock time (2026-03-01T08:00) or a duration from the start (P30D)",
    )
    parser.add_argument(
        "--utc-offset",
        type=utc_offset,
        default=timedelta(0),
        metavar="OFFSET",
        help="the pump clock's offset from UTC, e.g. +01:00 (default +00:00)",
    )
    parser.add_argument(
        "--patient-id", default="itb-patient", metavar="ID", help="the patient identifier to write"
    )


def _result(args: argparse.Namespace) -> Any:
    from ..scenario import load

    scenario = load(args.scenario)
    until = args.until
    if until is not None:
        stop = scenario.start + until if isinstance(until, timedelta) else until
        if stop < scenario.start:
            raise UsageError(
                f"--until {stop.isoformat(sep=' ')} is before the scenario's start "
                f"{scenario.start.isoformat(sep=' ')}"
            )
    with progress_callback(f"running {args.scenario}") as progress:
        return scenario.run(until=until, progress=progress)


def _write(path: str | None, text: str) -> None:
    if path in (None, "-"):
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"-o {path}: cannot write: {exc.strerror or exc}") from None


def _fhir(args: argparse.Namespace) -> int:
    from ..errors import ValidationError
    from ..interop import fhir

    if (args.titration_guard is None) != (args.max_ug_per_day is None):
        raise UsageError("--titration-guard and --max-ug-per-day go together")
    result = _result(args)
    titration: list[Any] = []
    if args.titration_guard is not None:
        origin, _, phase = args.titration_guard.partition(":")
        try:
            titration = fhir.titration_findings(
                result, origin=origin, phase=phase, max_ug_per_day=args.max_ug_per_day
            )
        except ValidationError as exc:
            raise UsageError(f"--titration-guard/--max-ug-per-day: {exc}") from None
    text = fhir.dumps(
        result,
        titration=titration,
        version=args.fhir_version,
        utc_offset=args.utc_offset,
        patient_id=args.patient_id,
        indent=2,
    )
    _write(args.output, text + "\n")
    if args.output not in (None, "-"):
        import json

        n = len(json.loads(text).get("entry", []))
        print(
            f"wrote a FHIR {args.fhir_version} bundle of {n} resources to {args.output}",
            file=sys.stderr,
        )
    return 0


def _hl7(args: argparse.Namespace) -> int:
    from ..interop import hl7v2, mllp

    address = None
    if args.mllp is not None:
        try:
            address = mllp.parse_address(args.mllp)
        except ValueError as exc:
            raise UsageError(f"--mllp: {exc}") from None
    messages = hl7v2.messages(
        _result(args),
        utc_offset=args.utc_offset,
        patient_id=args.patient_id,
        validate_each=not args.no_validate,
    )
    if address is not None:
        from ..errors import ProtocolError

        try:
            acks = mllp.send(messages, *address)
        except ProtocolError as exc:
            if exc.field != "connect":
                raise
            # Nothing listens at the address given: a bad --mllp argument (exit 2).
            where = f"{address[0]}:{address[1]}"
            why = re.sub(r"^\[Errno \d+\] ", "", str(exc).partition(f"{where}: ")[2])
            raise UsageError(
                f"--mllp {where}: cannot connect ({why or exc}); is an MLLP receiver listening there?"
            ) from None
        print(f"sent {len(acks)} messages to {address[0]}:{address[1]}, all acknowledged")
        return 0
    _write(args.output, "".join(m.text + "\r\n" for m in messages))
    if args.output not in (None, "-"):
        print(f"wrote {len(messages)} HL7 messages to {args.output}", file=sys.stderr)
    return 0
