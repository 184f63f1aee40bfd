"""Command-line subcommands of the hardware layer: ``itb rig …`` and ``itb trumpet``.

:func:`register` adds them to the main parser's subparsers; each sets ``handler`` (a function of
the parsed arguments returning the exit code; errors are mapped by the one map of
:data:`itb.cli.common.EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .._limits import MAX_CONCENTRATION_UG_PER_ML, MAX_RIG_SPEED, MAX_STROKE_NL, MIN_RIG_SPEED
from .._units import nl_to_ml
from .common import (
    DISCLAIMER,
    UsageError,
    console,
    describe_fields,
    duration,
    number,
    positive_duration,
)

__all__ = ["register", "load_plan"]

_FORMAT = argparse.RawDescriptionHelpFormatter
#: the faults of ``itb rig fault`` (the same as ``itb.hardware.rig.RIG_FAULTS``, kept here so the
#: parser is built without importing the hardware room)
RIG_FAULTS = ("occlusion", "leak", "disconnection", "migration", "battery", "stall", "clear")


def register(subparsers: Any, disclaimer: str = DISCLAIMER) -> None:
    """Add ``rig`` (emulate, keygen, run, verify, status, stop, resume, journal, measure,
    limits, bolus) and ``trumpet``."""
    note = "\n\nEngineering tool — " + disclaimer

    rig = subparsers.add_parser(
        "rig",
        help="drive a pump test rig (or the emulated one)",
        description="Drive a pump test rig over the authenticated rig protocol." + note,
        formatter_class=_FORMAT,
    )
    rig.set_defaults(handler=lambda a: (rig.print_help(sys.stderr), 2)[1])
    sub = rig.add_subparsers(dest="rig_command", metavar="RIG_COMMAND")

    def add(
        name: str, help_: str, fn: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help_,
            description=help_[0].upper() + help_[1:] + "." + note,
            formatter_class=_FORMAT,
        )
        p.set_defaults(handler=fn)
        return p

    def link(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--port", required=True, help="pty path, serial device or socket://127.0.0.1:PORT"
        )
        p.add_argument("--key-file", required=True, help="key file (see 'itb rig keygen')")
        p.add_argument(
            "--timeout",
            type=positive_duration,
            default=timedelta(seconds=2),
            metavar="DURATION",
            help="how long to wait for each answer (e.g. 2s, 500ms; default 2s)",
        )

    p = add("emulate", "run the emulated rig on a pty or a 127.0.0.1 TCP port", _emulate)
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--pty", action="store_true", help="serve on a new pseudo-terminal (the default)"
    )
    where.add_argument(
        "--tcp", type=_port, metavar="PORT", help="serve on 127.0.0.1:PORT (0: any free port)"
    )
    p.add_argument("--key-file", required=True, help="key file with the clinician and patient keys")
    p.add_argument(
        "--record",
        metavar="FILE",
        help="append stroke_id,time_ms per executed stroke; resumes its last id",
    )
    p.add_argument(
        "--reservoir-ml",
        type=_positive,
        default=40.0,
        help="rig reservoir of a new rig (mL, default 40; a restarted rig keeps its own)",
    )
    p.add_argument(
        "--concentration",
        type=int,
        default=2000,
        metavar="UG_PER_ML",
        help="concentration of a new rig until a run tells it the therapy's (µg/mL, default 2000)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=16,
        help="TCP connections served at once (default 16; one more is closed)",
    )
    p.add_argument(
        "--idle-timeout",
        type=positive_duration,
        default=timedelta(seconds=30),
        metavar="DURATION",
        help="close a TCP connection that completes no frame this long (e.g. 30s; default 30s)",
    )
    p.add_argument(
        "--noise-mg",
        type=_nonneg,
        default=0.0,
        help="scale noise, standard deviation (mg, default 0)",
    )
    p.add_argument(
        "--sample-interval",
        type=positive_duration,
        default=timedelta(milliseconds=500),
        metavar="DURATION",
        help="scale sample interval (e.g. 500ms, 1s; default 500ms)",
    )
    p.add_argument(
        "--density", type=_positive, default=1.0, help="fluid density (g/mL, default 1.0)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the scale noise")
    p.add_argument("--quiet", action="store_true", help="no log on stderr")

    p = add("keygen", "write a key file with fresh clinician and patient keys", _keygen)
    p.add_argument("file", help="key file to create (refuses to overwrite)")
    p.add_argument("--patient-file", help="also write a file with the patient key only")

    p = add(
        "run", "run a scenario's stroke schedule on the rig, journaled; run again to resume", _run
    )
    p.add_argument("scenario", help="scenario file (TOML, the itb.scenario format)")
    link(p)
    p.add_argument(
        "--journal",
        required=True,
        help="SQLite journal (created if missing; the same file resumes)",
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="X|max",
        help="pump-clock seconds per wall second, or 'max' (default: max)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=16,
        help="strokes per command at max speed (1 to 64, default 16)",
    )
    p.add_argument("--json", action="store_true", help="print the run report as JSON")

    p = add(
        "verify",
        "compare a rig's record, a journal and the schedule: exactly once, or where not",
        _verify,
    )
    p.add_argument("--journal", required=True, help="the controller's journal")
    p.add_argument("--record", required=True, help="the rig's record file (stroke_id,time_ms)")
    p.add_argument("--scenario", help="the scenario file the run was made of (TOML)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("status", "ask the rig for its status", _status)
    link(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    for name, help_ in (
        ("stop", "stop the rig: DELIVER and patient boluses are refused until 'resume'"),
        ("resume", "resume a stopped rig"),
    ):
        p = add(name, help_ + " (clinician key)", _stop_resume)
        link(p)
        p.add_argument("--journal", help="journal the command here")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "fault",
        "inject or clear a fault in a running rig at run time (clinician key): occlusion, leak, "
        "disconnection, migration, battery, stall, clear",
        _fault,
    )
    link(p)
    p.add_argument("kind", choices=RIG_FAULTS, help="the fault (clear: repair one or all)")
    p.add_argument(
        "--pass-pct",
        type=int,
        default=None,
        help="occlusion: %% of each stroke's flow still passing, 0 to 99 (default 0: complete)",
    )
    p.add_argument(
        "--position-ul",
        type=float,
        default=None,
        help="leak/disconnection: µL of catheter from the pump connector (default 0)",
    )
    p.add_argument(
        "--which",
        default=None,
        choices=("occlusion", "leak", "disconnection", "migration", "battery", "stall", "all"),
        help="clear: the fault repaired (default all; leak and disconnection: the catheter "
        "breach, whichever was injected)",
    )
    p.add_argument("--journal", help="journal the command here")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("journal", "show or export a controller journal", _journal)
    p.add_argument("file", help="journal file")
    p.add_argument("--csv", action="store_true", help="write every row as CSV to stdout")

    p = add(
        "measure",
        "record the rig's scale; report delivered vs expected and the trumpet curve",
        _measure,
    )
    link(p)
    p.add_argument(
        "--duration",
        type=positive_duration,
        default=timedelta(seconds=60),
        metavar="DURATION",
        help="how long to record (e.g. 60s, 5min; default 60s)",
    )
    p.add_argument(
        "--interval",
        type=positive_duration,
        default=timedelta(milliseconds=500),
        metavar="DURATION",
        help="time between samples (e.g. 500ms, 1s; default 500ms)",
    )
    p.add_argument(
        "--windows",
        type=_durations,
        default=None,
        metavar="DURATION,…",
        help="trumpet windows (e.g. 2min,5min; default 2min,5min,11min,19min,31min)",
    )
    p.add_argument(
        "--tolerance-pct",
        type=_positive,
        default=5.0,
        help="allowed delivered-vs-expected difference (%%, default 5)",
    )
    p.add_argument(
        "--csv", metavar="OUT", help="save the samples (time_s,cumulative_ml) for 'itb trumpet'"
    )
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("limits", "set the patient-bolus limits on the rig (clinician key)", _limits)
    link(p)
    p.add_argument(
        "--dose-ug", type=_nonneg, required=True, help="dose per patient bolus (µg; 0 disables)"
    )
    p.add_argument(
        "--duration",
        type=positive_duration,
        default=timedelta(minutes=10),
        metavar="DURATION",
        help="bolus duration (e.g. 10min, PT10M; default 10min)",
    )
    p.add_argument(
        "--lockout",
        type=duration,
        default=timedelta(minutes=60),
        metavar="DURATION",
        help="lockout after a bolus (e.g. 1h, PT60M; default 60min)",
    )
    for old, new in (("--duration-min", "--duration"), ("--lockout-min", "--lockout")):
        p.add_argument(old, type=_renamed(old, new), help=argparse.SUPPRESS)
    p.add_argument(
        "--max-per-24h", type=int, default=4, help="maximum boluses per 24 h (default 4)"
    )
    p.add_argument("--journal", help="journal the command here")

    p = add(
        "bolus",
        "request a patient bolus (patient key; the rig enforces the clinician's limits)",
        _bolus,
    )
    link(p)
    p.add_argument("--journal", help="journal the request here")
    p.add_argument("--json", action="store_true", help="print JSON")

    _register_balance_emulate(add)
    _register_balance_log(add)
    _register_accuracy(add)

    t = subparsers.add_parser(
        "trumpet",
        help="flow accuracy (IEC 60601-2-24 trumpet curve) of a recording",
        description=(
            "Trumpet curve of DATA.csv (columns time_s, cumulative_ml; a header line "
            "is allowed): Ep(max)/Ep(min) per observation window and the mean error." + note
        ),
        formatter_class=_FORMAT,
    )
    t.add_argument("data", help="CSV file: time_s,cumulative_ml")
    t.add_argument(
        "--plot",
        metavar="OUT.png",
        help="save the curve (needs matplotlib: pip install 'itb-pump[plot]')",
    )
    t.add_argument(
        "--windows",
        type=_durations,
        default=None,
        metavar="DURATION,…",
        help="observation windows (e.g. 2min,5min; default 2min,5min,11min,19min,31min)",
    )
    t.add_argument(
        "--sample-interval",
        type=positive_duration,
        default=timedelta(seconds=30),
        metavar="DURATION",
        help="sample interval S (e.g. 30s, PT30S; default 30s)",
    )
    t.add_argument(
        "--period",
        type=_floats,
        default=None,
        metavar="START,END",
        help="analysis period on the file's time_s axis, in s (default: the second half of "
        "the recording)",
    )
    t.add_argument(
        "--rate",
        type=_positive,
        default=None,
        metavar="ML_PER_H",
        help="set rate (mL/h; default: the mean rate over the period)",
    )
    t.add_argument(
        "--kind",
        choices=("linear", "step"),
        default="linear",
        help="linear (scale) or step (strokes)",
    )
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(handler=_trumpet)


# ----- argument types ---------------------------------------------------------------------------


_positive = number(float, low=0, low_open=True)
_nonneg = number(float, low=0)
_port = number(int, low=0, high=65535, what="a port number")


def _renamed(old: str, new: str) -> Callable[[str], Any]:
    """argparse type of a removed option: refused, saying what to write instead."""

    def refuse(text: str) -> Any:
        raise argparse.ArgumentTypeError(
            f"{old} was replaced by {new}, a duration with its unit: {new} {text}min"
        )

    return refuse


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not MIN_RIG_SPEED <= value <= MAX_RIG_SPEED:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not between {MIN_RIG_SPEED:g} and {MAX_RIG_SPEED:.3f} pump-clock seconds per "
            "wall second, or 'max'"
        )
    return value


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers"
        ) from None


# ----- rig emulate / keygen ---------------------------------------------------------------------


def _emulate(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..errors import ValidationError
    from ..hardware.emulator import RigLog, serve_pty, serve_tcp
    from ..hardware.protocol import load_keys
    from ..hardware.rig import Rig, Scale

    keys = load_keys(args.key_file)
    scale = Scale(
        noise_mg=args.noise_mg,
        sample_interval=args.sample_interval,
        density_g_per_ml=args.density,
        seed=args.seed,
    )
    rig = Rig(
        scale=scale,
        record=args.record,
        reservoir_ml=args.reservoir_ml,
        concentration_ug_per_ml=args.concentration,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def announce(where: str) -> None:
        print(f"PORT {where}", flush=True)

    if args.max_connections < 1:
        raise ValidationError(
            f"max_connections: {args.max_connections} must be >= 1", "max_connections"
        )
    log = RigLog(None if args.quiet else sys.stderr)
    st = rig.status()
    log(
        f"keys for {', '.join(r.name.lower() for r in keys)}; "
        + ("state restored" if rig.restored else "new rig")
        + f": last stroke id {st['last_stroke_id']}, reservoir {nl_to_ml(st['reservoir_nl']):g} mL at "
        f"{st['concentration_ug_per_ml']} µg/mL"
        + (", STOPPED" if st["stopped"] else "")
        + (", motor stalled" if st["stalled"] else "")
    )
    try:
        if args.tcp is not None:
            serve_tcp(
                rig,
                keys,
                args.tcp,
                announce=announce,
                stop=stop,
                log=log,
                max_connections=args.max_connections,
                idle_timeout=args.idle_timeout,
            )
        else:
            serve_pty(rig, keys, announce=announce, stop=stop, log=log)
    finally:
        rig.close()
        log.tick()
        log("stopped")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from ..errors import ValidationError

    clinician, patient = os.urandom(32).hex(), os.urandom(32).hex()
    files = [(args.file, f"clinician {clinician}\npatient {patient}\n")]
    if args.patient_file:
        files.append((args.patient_file, f"patient {patient}\n"))
    for path, text in files:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ValidationError(
                f"file: {path} exists; not overwriting a key file", "file"
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write("# itb rig keys (HMAC-SHA256); keep secret\n" + text)
    return 0


# ----- rig run / status / journal -----------------------------------------------------------------


def load_plan(path: str) -> Any:
    """The :class:`~itb.hardware.plan.RigPlan` of a TOML scenario file: every stroke of a run
    with all its actions to ``[run] until`` (from the Rust core, through the one scenario run
    loop) and the actions as rig commands. ``ScenarioError`` (exit 2) names a bad file."""
    from .. import scenario as scenario_mod
    from ..hardware.plan import plan_scenario

    return plan_scenario(scenario_mod.load(path))


def _driver(args: argparse.Namespace, role: Any = None) -> Any:
    from ..hardware.client import SerialDriver
    from ..hardware.protocol import Role, load_keys

    keys = load_keys(args.key_file)
    if role is None:
        role = Role.CLINICIAN if Role.CLINICIAN in keys else Role.PATIENT
    return SerialDriver(args.port, keys, role=role, timeout=args.timeout)


def _run(args: argparse.Namespace) -> int:
    from ..errors import ValidationError
    from ..hardware.controller import Controller
    from ..hardware.journal import Journal

    plan = load_plan(args.scenario)
    what = args.scenario
    if not 1 <= args.batch <= 64:
        raise ValidationError(f"batch: {args.batch} is not between 1 and 64 strokes", "batch")
    with Journal(args.journal) as journal:
        driver = _driver(args)
        try:
            report = Controller(driver, journal, plan, speed=args.speed, batch=args.batch).run()
        finally:
            driver.close()
    out = {"scenario": what, **report.__dict__, "complete": report.complete}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        verb = "resumed after stroke" if report.resumed_from else "started at stroke"
        print(
            f"{what}: {verb} {report.resumed_from}; delivered {report.delivered} strokes; rig last stroke id "
            f"{report.last_stroke_id} of {report.strokes}; reconciled {report.reconciled} open intent(s); "
            f"{report.steps} action(s); {report.retries} retried exchange(s); {report.elapsed_s:.2f} s"
            + (f"; {report.gap} stroke(s) had no journal row (gap noted)" if report.gap else "")
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ..hardware.verify import verify

    plan = load_plan(args.scenario) if args.scenario else None
    report = verify(args.journal, args.record, plan)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        if report.ok:
            print(f"exactly once: {report.strokes} strokes; record, journal and schedule agree")
        for line in report.problems:
            print(f"NOT exactly once: {line}")
        for line in report.notes:
            print(f"note: {line}")
    return 0 if report.ok else 1


def _status(args: argparse.Namespace) -> int:
    driver = _driver(args)
    try:
        status = driver.status().as_dict()
    finally:
        driver.close()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:  # for people: mL, µg, ISO times (the exact integers are in --json)
        for line in describe_fields(status):
            print(line)
    return 0


def _stop_resume(args: argparse.Namespace) -> int:
    from ..hardware.protocol import Role

    driver = _driver(args, Role.CLINICIAN)
    command = args.rig_command
    try:
        fn = driver.stop if command == "stop" else driver.resume
        _journaled(args, "clinician", command.upper(), lambda: fn() or {})
        status = driver.status().as_dict()
    finally:
        driver.close()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print("stopped" if status["stopped"] else "running")
    return 0


def _fault(args: argparse.Namespace) -> int:
    from ..hardware.protocol import Role

    applies = {"--pass-pct": ("occlusion",), "--position-ul": ("leak", "disconnection")}
    applies["--which"] = ("clear",)
    given = {"--pass-pct": args.pass_pct, "--position-ul": args.position_ul}
    given["--which"] = args.which
    for option, kinds in applies.items():
        if given[option] is not None and args.kind not in kinds:
            raise UsageError(
                f"{option} applies to `itb rig fault {'|'.join(kinds)}` only, not to "
                f"`itb rig fault {args.kind}`"
            )
    spec: dict[str, Any] = {"fault": args.kind}
    if args.kind == "occlusion":
        spec["pass_pct"] = 0 if args.pass_pct is None else args.pass_pct
    elif args.kind in ("leak", "disconnection"):
        spec["position_ul"] = 0.0 if args.position_ul is None else args.position_ul
    elif args.kind == "clear":
        spec["which"] = args.which or "all"
    driver = _driver(args, Role.CLINICIAN)
    try:
        status = _journaled(args, "clinician", "FAULT", lambda: driver.fault(spec))
    finally:
        driver.close()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(f"faults: {fault_names(status)}")
    return 0


def fault_names(status: dict[str, Any]) -> str:
    """The active faults of a rig ``status``, as injected: the breach slot ``leak`` shows its
    ``kind`` (``disconnection`` where it was injected as one), a stall as ``stall``."""
    faults = status.get("faults") or {}
    names = [
        str(spec.get("kind", name)) if name == "leak" and isinstance(spec, dict) else name
        for name, spec in faults.items()
    ]
    if status.get("stalled"):
        names.append("stall")
    return ", ".join(sorted(names)) or "none"


def _journal(args: argparse.Namespace) -> int:
    from ..errors import ValidationError
    from ..hardware.journal import COLUMNS, Journal

    if not os.path.isfile(args.file):
        raise ValidationError(f"file: {args.file} does not exist", "file")
    with Journal(args.file, readonly=True) as j:
        if args.csv:
            sys.stdout.write(j.to_csv())
            return 0
        from rich.table import Table

        table = Table(title=f"journal {args.file}")
        for c in COLUMNS:
            table.add_column(c)
        for e in j.entries():
            table.add_row(*("" if v is None else str(v) for v in e.row()))
        console().print(table)
    return 0


# ----- rig measure / limits / bolus ---------------------------------------------------------------


def _measure(args: argparse.Namespace) -> int:
    import time

    from ..hardware.measurement import summarise_samples, write_series

    driver = _driver(args)
    samples = []
    try:
        interval_s = args.interval.total_seconds()
        t_end = time.monotonic() + args.duration.total_seconds()
        while True:
            samples.append(driver.measure())
            if time.monotonic() + interval_s > t_end:
                break
            time.sleep(interval_s)
    finally:
        driver.close()
    out, t_unique, delivered = summarise_samples(
        samples,
        tolerance_pct=args.tolerance_pct,
        windows=args.windows,
        sample_interval=args.interval,
    )
    ok, tol = out["within_tolerance"], out["tolerance_ml"]
    if args.csv:
        write_series(args.csv, t_unique, delivered)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{out['samples']} samples over {out['duration_s']:.1f} s: delivered {out['delivered_ml']:.6f} mL, "
            f"expected {out['expected_ml']:.6f} mL (tolerance ±{tol:.6f} mL): "
            + ("within tolerance" if ok else "OUT OF TOLERANCE")
        )
        if "trumpet" in out:
            _print_trumpet(out["trumpet"])
    return 0 if ok else 1


def _journaled(args: argparse.Namespace, role: str, command: str, fn: Callable[[], Any]) -> Any:
    if not args.journal:
        return fn()
    from ..errors import ProtocolError, RigError
    from ..hardware.journal import Journal

    with Journal(args.journal) as j:
        iid = j.intent(role, command)
        try:
            result = fn()
        except (RigError, ProtocolError) as err:
            j.outcome(
                iid,
                "refused" if isinstance(err, RigError) or err.field == "role" else "error",
                err.field,
                str(err),
            )
            raise
        if command == "PATIENT_BOLUS" and not result.get("granted"):
            j.outcome(iid, "refused", str(result.get("reason")), json.dumps(result, sort_keys=True))
        else:
            j.outcome(iid, "ack", "ok", json.dumps(result, sort_keys=True))
        return result


def _limits(args: argparse.Namespace) -> int:
    from .._time import duration_ms
    from .._units import ug_to_ng

    driver = _driver(args)
    try:
        role = driver.role.name.lower()
        result = _journaled(
            args,
            role,
            "SET_LIMITS",
            lambda: driver.set_patient_limits(
                ug_to_ng(args.dose_ug, "--dose-ug"),
                duration_ms(args.duration, "--duration", allow_zero=False),
                duration_ms(args.lockout, "--lockout"),
                args.max_per_24h,
            ),
        )
    finally:
        driver.close()
    print(json.dumps(result, sort_keys=True))
    return 0


def _bolus(args: argparse.Namespace) -> int:
    from ..hardware.protocol import Role, load_keys

    keys = load_keys(args.key_file)
    driver = _driver(args, Role.PATIENT if Role.PATIENT in keys else Role.CLINICIAN)
    try:
        result = _journaled(args, driver.role.name.lower(), "PATIENT_BOLUS", driver.patient_bolus)
    finally:
        driver.close()
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print("granted" if result.get("granted") else f"refused: {result.get('reason')}")
    return 0 if result.get("granted") else 1


# ----- trumpet ------------------------------------------------------------------------------------


def _print_trumpet(d: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"Trumpet curve: period {d['period_s'][0]:g}–{d['period_s'][1]:g} s, "
        f"S = {d['sample_interval_s']:g} s, rate {d['rate_ml_per_h']:.6g} mL/h"
    )
    table = Table()
    table.add_column("window (min)", justify="right")
    table.add_column("Ep(max) %", justify="right")
    table.add_column("Ep(min) %", justify="right")
    for w, a, b in zip(d["windows_min"], d["max_error_pct"], d["min_error_pct"]):
        table.add_row(
            f"{w:g}", "—" if a is None else f"{a:+.3f}", "—" if b is None else f"{b:+.3f}"
        )
    out.print(table)
    out.print(f"mean flow error A = {d['mean_error_pct']:+.3f} %")


def _trumpet(args: argparse.Namespace) -> int:
    from ..analysis import DEFAULT_WINDOWS, plot_trumpet, trumpet
    from ..errors import ValidationError
    from ..hardware.measurement import read_series

    t, v = read_series(args.data)
    period = None
    if args.period is not None:
        if len(args.period) != 2:
            raise ValidationError("period: expected START,END in seconds", "period")
        period = (args.period[0], args.period[1])
    res = trumpet(
        t,
        v,
        args.windows or DEFAULT_WINDOWS,
        sample_interval=args.sample_interval,
        analysis_period=period,
        rate_ml_per_h=args.rate,
        kind=args.kind,
    )
    if args.plot:
        plot_trumpet(res, args.plot, title=f"Trumpet curve — {os.path.basename(args.data)}")
    if args.json:
        print(json.dumps(res.as_dict(), indent=2))
    else:
        _print_trumpet(res.as_dict())
    return 0


# --- itb rig balance-emulate (an MT-SICS / SBI balance on a pty) ---------------------------------


def _register_balance_emulate(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "balance-emulate",
        "serve an emulated precision balance (MT-SICS or Sartorius SBI) on a pty",
        _balance_emulate,
    )
    p.add_argument("--protocol", choices=("sics", "sbi"), default="sics", help="default sics")
    p.add_argument(
        "--sbi-format",
        type=int,
        choices=(16, 22),
        default=None,
        help="SBI print line: 16 characters, or 22 with an ID code (default 16; --protocol sbi)",
    )
    p.add_argument(
        "--flow-ul-per-h",
        type=_nonneg,
        default=None,
        help="a constant flow of water onto the pan (µL/h, default 0; not with --record)",
    )
    p.add_argument(
        "--readability-mg",
        type=number(float, low=1e-6, high=1e4, unit="mg"),
        default=0.01,
        help="display step (mg, 0.000001 to 10000, default 0.01)",
    )
    p.add_argument("--noise-mg", type=_nonneg, default=0.0, help="noise, standard deviation (mg)")
    p.add_argument(
        "--drift-mg-per-h",
        type=number(float, low=-1e6, high=1e6),
        default=0.0,
        help="zero drift (mg/h, -1000000 to 1000000)",
    )
    p.add_argument("--evaporation-mg-per-h", type=_nonneg, default=0.0, help="mass loss (mg/h)")
    p.add_argument("--seed", type=int, default=None, help="seed of the noise")
    p.add_argument(
        "--record",
        metavar="FILE",
        help="follow the emulated rig's record file: each stroke lands on the pan",
    )
    p.add_argument(
        "--stroke-nl",
        type=number(int, low=1, high=MAX_STROKE_NL),  # a pump model's stroke, the core's limit
        default=None,
        help="stroke volume for --record (nL; default: the rig's pump model)",
    )


def _balance_emulate_options(args: argparse.Namespace) -> None:
    """``UsageError`` (exit 2) naming both options where one does not apply with the other."""
    if args.sbi_format is not None and args.protocol != "sbi":
        raise UsageError(
            f"--sbi-format applies to --protocol sbi only (got --protocol {args.protocol})"
        )
    if args.record is not None and args.flow_ul_per_h is not None:
        raise UsageError(
            "--flow-ul-per-h and --record both put water on the pan: give one (--record "
            "weighs each stroke of the rig's record, --flow-ul-per-h a constant flow)"
        )
    if args.stroke_nl is not None and args.record is None:
        raise UsageError("--stroke-nl applies to --record only (the volume of each stroke)")
    if args.record is not None and not os.path.isfile(args.record):
        raise UsageError(
            f"--record: {args.record} does not exist; start `itb rig emulate --record "
            f"{args.record}` first (the rig creates it when it starts)"
        )


def _balance_emulate(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..hardware.balance.emulator import EmulatedBalance, RecordFollower, serve_pty
    from ..hardware.metrology import REFERENCE_WEIGHT_DENSITY, water_density
    from ..models import SYNCHROMED_II_40

    # the balance shows a conventional mass: the volume's true mass less the air buoyancy
    rho_w, rho_a = water_density(20.0).value, 1.2
    mg_per_ul = (rho_w - rho_a) / (1 - rho_a / REFERENCE_WEIGHT_DENSITY) / 1000
    _balance_emulate_options(args)
    flow_mg = (args.flow_ul_per_h or 0.0) * mg_per_ul
    follower = None
    if args.record is not None:
        stroke_nl = args.stroke_nl or SYNCHROMED_II_40.exact()["stroke_nl"]
        follower = RecordFollower(args.record, stroke_nl, mg_per_ul / 1000)
    balance = EmulatedBalance(
        readability_mg=args.readability_mg,
        noise_mg=args.noise_mg,
        drift_mg_per_h=args.drift_mg_per_h,
        evaporation_mg_per_h=args.evaporation_mg_per_h,
        flow_mg_per_h=flow_mg,
        seed=args.seed,
        delivered_mg=(lambda t: follower() + flow_mg * t / 3600) if follower else None,
        sbi_format=args.sbi_format or 16,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve_pty(balance, args.protocol, lambda path: print(f"PORT {path}", flush=True), stop.is_set)
    return 0


# --- itb rig balance-log (a real or emulated balance read during a rig run) --------------------


def _pair(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected RATE or RATE,U (mg/h)") from None
    if len(values) not in (1, 2) or not all(abs(v) <= 1e6 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected RATE or RATE,U, each within ±1e6")
    if len(values) == 2 and values[1] < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the uncertainty U must be >= 0")
    return values[0], values[1] if len(values) == 2 else 0.0


def _register_balance_log(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "balance-log",
        "read a precision balance (MT-SICS or Sartorius SBI) during a rig run and log each "
        "reading with host timestamps, for 'itb rig report --balance'",
        _balance_log,
    )
    p.add_argument("--port", required=True, help="the balance's port (device, pty path, socket://)")
    p.add_argument("--protocol", choices=("sics", "sbi"), default="sics", help="default sics")
    p.add_argument(
        "--baudrate", type=number(int, low=1, high=4_000_000), default=9600, help="default 9600"
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the balance log (a new file)")
    p.add_argument(
        "--interval", type=positive_duration, default=timedelta(seconds=30), help="default 30s"
    )
    p.add_argument(
        "--duration", type=positive_duration, default=None, help="stop after (default: Ctrl-C)"
    )
    p.add_argument(
        "--rate-ul-per-h",
        type=number(float, low=1e-6, high=1e9),
        default=None,
        help="the set rate (µL/h; default: the report derives it from the record)",
    )
    p.add_argument(
        "--readability-mg",
        type=number(float, low=1e-6, high=1e4, unit="mg"),
        default=None,
        help="display step (mg; default: read from the first reading's decimals)",
    )
    p.add_argument(
        "--repeatability-mg",
        type=number(float, low=0.0, high=1e4),
        default=0.0,
        help="the balance's repeatability, standard deviation (mg, default 0)",
    )
    p.add_argument(
        "--evaporation-mg-per-h",
        type=_pair,
        default=(0.0, 0.0),
        metavar="RATE[,U]",
        help="evaporation of a blank run and its standard uncertainty (mg/h, default 0,0)",
    )
    p.add_argument(
        "--timeout", type=positive_duration, default=timedelta(seconds=5), help="reply timeout"
    )


def _balance_log(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..hardware.balance import SbiBalance, SicsBalance, open_port
    from ..hardware.balance.logger import log_balance

    stop = threading.Event()
    port = open_port(args.port, args.baudrate, args.timeout)
    saved = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        balance = (SicsBalance if args.protocol == "sics" else SbiBalance)(port, args.timeout)
        summary = log_balance(
            balance,
            args.out,
            interval=args.interval,
            duration=args.duration,
            stop=stop.is_set,
            rate_ul_per_h=args.rate_ul_per_h,
            readability_mg=args.readability_mg,
            repeatability_mg=args.repeatability_mg,
            evaporation_mg_per_h=args.evaporation_mg_per_h,
            source=f"{args.protocol} {args.port}",
        )
    finally:
        port.close()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    print(
        f"{args.out}: {summary.readings} readings, {summary.errors} refused by the balance, "
        f"readability {summary.readability_mg:g} mg"
    )
    if not summary.readings:
        from ..errors import BalanceProtocolError

        mine, other = ("SBI", "MT-SICS") if args.protocol == "sbi" else ("MT-SICS", "SBI")
        why = f" (last: {summary.last_error})" if summary.last_error else ""
        raise BalanceProtocolError(
            f"protocol: no valid {mine} reply from {args.port}{why}; is the balance speaking "
            f"{other}? (--protocol {args.protocol} was given)",
            "protocol",
        )
    return 0


# --- itb rig accuracy (emulated rig + balance, low-flow accuracy with uncertainty) --------------


def _durations(text: str) -> list[Any]:
    out = [positive_duration(part) for part in text.split(",") if part.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected durations separated by commas, e.g. PT1H,PT6H")
    return out


def _percent(text: str) -> float:
    value = text.strip().removesuffix("%").strip()
    try:
        pct = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (e.g. 15%)") from None
    if not 0 < pct <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 % and at most 100 %")
    return pct


def _register_accuracy(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "accuracy",
        "run the emulated rig and balance end to end; low-flow accuracy with uncertainty, "
        "pass or fail",
        _accuracy,
    )
    p.add_argument(
        "--duration", type=positive_duration, required=True, help="run length (e.g. P2D)"
    )
    p.add_argument(
        "--windows",
        type=_durations,
        default=None,
        metavar="DURATION,…",
        help="low-flow windows (default PT1H,PT6H), each rounded to whole stroke cycles",
    )
    p.add_argument(
        "--limit", type=_percent, default=15.0, help="accuracy limit (e.g. 15%%; default 15%%)"
    )
    p.add_argument(
        "--exclude",
        type=positive_duration,
        default=None,
        help="start of the low-flow analysis (default PT24H)",
    )
    p.add_argument(
        "--ug-per-day",
        type=_ug_per_day,
        default=500.0,
        help="continuous dose rate (µg/day, default 500; the pump model's flow range at the "
        "concentration bounds it)",
    )
    p.add_argument(
        "--concentration",
        type=number(int, low=1, high=MAX_CONCENTRATION_UG_PER_ML, unit="µg/mL"),
        default=2000,
        metavar="UG_PER_ML",
        help="concentration (µg/mL, default 2000)",
    )
    p.add_argument("--protocol", choices=("sics", "sbi"), default="sics", help="default sics")
    p.add_argument(
        "--readability-mg",
        type=number(float, low=1e-6, high=1e4, unit="mg"),
        default=0.01,
        help="balance display step (mg, default 0.01)",
    )
    p.add_argument("--noise-mg", type=_nonneg, default=0.0, help="balance noise, σ (mg)")
    p.add_argument("--evaporation-mg-per-h", type=_nonneg, default=0.0, help="evaporation (mg/h)")
    p.add_argument("--seed", type=int, default=0, help="seed of the balance noise (default 0)")
    p.add_argument("--junit", metavar="OUT.xml", help="write the verdicts as JUnit XML")
    p.add_argument(
        "--balance-out", metavar="FILE", help="write the balance log (for 'itb rig report')"
    )
    p.add_argument(
        "--record-out", metavar="FILE", help="the rig's stroke record (stroke_id,time_ms; new file)"
    )
    p.add_argument(
        "--journal",
        metavar="FILE",
        help="drive the rig through the journaled controller (a new SQLite journal)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "report",
        "write an HTML test report (and JUnit XML) of a record, a balance log and a journal",
        _report,
    )
    p.add_argument("--record", required=True, help="the rig's record file (stroke_id,time_ms)")
    p.add_argument("--balance", required=True, help="balance log (itb rig accuracy --balance-out)")
    p.add_argument("--journal", help="the controller's journal (the exactly-once verdict)")
    p.add_argument("--scenario", help="the scenario file of the run (TOML)")
    p.add_argument("--key-file", help="key file: its keys' fingerprints go in the report")
    p.add_argument("-o", "--output", required=True, metavar="OUT.html", help="HTML report")
    p.add_argument("--junit", metavar="OUT.xml", help="also write the verdicts as JUnit XML")
    p.add_argument(
        "--pdf",
        metavar="OUT.pdf",
        help="also print the HTML page as PDF (a headless Chromium; ITB_CHROMIUM names one)",
    )
    p.add_argument(
        "--limit", type=_percent, default=15.0, help="accuracy limit (e.g. 15%%; default 15%%)"
    )
    p.add_argument(
        "--windows", type=_durations, default=None, metavar="DURATION,…", help="default PT1H,PT6H"
    )
    p.add_argument("--exclude", type=positive_duration, default=None, help="default PT24H")


def _report(args: argparse.Namespace) -> int:
    from ..hardware.report import build_report, find_browser, junit_xml, print_pdf, render_html

    if os.fspath(args.output).lower().endswith(".pdf"):
        from .common import UsageError

        raise UsageError(
            f"argument -o/--output: {args.output} would hold HTML under a .pdf name; "
            f"write the page to an .html file and add --pdf {args.output} for the PDF"
        )
    browser = find_browser() if args.pdf else None  # before any work: say what to install
    rep = build_report(
        args.record,
        args.balance,
        journal=args.journal,
        scenario=args.scenario,
        key_file=args.key_file,
        limit_pct=args.limit,
        windows=args.windows or [timedelta(hours=1), timedelta(hours=6)],
        exclude=args.exclude if args.exclude is not None else timedelta(hours=24),
    )
    html = render_html(rep)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(html)
    if args.junit:
        with open(args.junit, "w", encoding="utf-8") as f:
            f.write(junit_xml("itb rig report", rep["verdicts"]))
    if args.pdf:
        print_pdf(args.output, args.pdf, browser=browser)
    print(f"{args.output}: " + ("PASS" if rep["passed"] else "FAIL"))
    return 0 if rep["passed"] else 1


def _ug_per_day(text: str) -> float:
    """argparse type of ``accuracy --ug-per-day``: a finite number; its range depends on
    ``--concentration`` and is checked by :func:`_check_ug_per_day`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of µg/day") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of µg/day")
    return value


def _check_ug_per_day(ug_per_day: float, concentration: int) -> None:
    """``UsageError`` naming ``--ug-per-day`` and the one range ``itb rig accuracy`` accepts:
    the pump model's flow range at ``concentration`` (a zero rate has no strokes to measure)."""
    from fractions import Fraction

    from .._units import nl_to_ml
    from ..models import SYNCHROMED_II_40

    exact = SYNCHROMED_II_40.exact()
    lo = Fraction(exact["min_rate_nl_per_day"] * concentration, 1_000_000)
    hi = Fraction(exact["max_rate_nl_per_day"] * concentration, 1_000_000)
    if not lo <= Fraction(ug_per_day) <= hi:
        raise UsageError(
            f"argument --ug-per-day: {ug_per_day:g} µg/day at --concentration {concentration} "
            f"µg/mL is {ug_per_day / concentration:g} mL/day; allowed {float(lo):g} to "
            f"{float(hi):g} µg/day ({nl_to_ml(exact['min_rate_nl_per_day']):g} to "
            f"{nl_to_ml(exact['max_rate_nl_per_day']):g} "
            f"mL/day for model {SYNCHROMED_II_40.name})"
        )


def _accuracy(args: argparse.Namespace) -> int:

    from .._time import format_duration
    from ..errors import ProgrammingError, ValidationError
    from ..hardware.accuracy import low_flow_curve, run_emulated, startup_curve, trumpet_curve

    _check_ug_per_day(args.ug_per_day, args.concentration)
    try:
        emu = run_emulated(
            args.duration,
            ug_per_day=args.ug_per_day,
            concentration_ug_per_ml=args.concentration,
            protocol=args.protocol,
            readability_mg=args.readability_mg,
            noise_mg=args.noise_mg,
            evaporation_mg_per_h=args.evaporation_mg_per_h,
            seed=args.seed,
            journal=args.journal,
            record=args.record_out,
        )
    except (ProgrammingError, ValidationError) as err:  # the core's rounding at a range end
        if err.field not in ("ug_per_day", "program", "") and isinstance(err, ValidationError):
            raise
        detail = str(err).removeprefix("cannot program ug_per_day: ")
        detail = detail.removeprefix("the continuous program: ")
        raise UsageError(f"argument --ug-per-day: {detail}") from None
    windows = args.windows or [timedelta(hours=1), timedelta(hours=6)]
    exclude = args.exclude if args.exclude is not None else timedelta(hours=24)
    low = low_flow_curve(
        emu.run, emu.rate_ul_per_h, emu.stroke_ul, emu.stroke_times, windows, exclude
    )
    ok = low.passes(args.limit)
    out: dict[str, Any] = {
        "rate_ul_per_h": emu.rate_ul_per_h,
        "evaporation_mg_per_h": {
            "value": emu.evaporation.value + 0.0,  # never -0.0
            "U": emu.evaporation.expanded_uncertainty,
        },
        "low_flow": low.as_dict(),
        "limit_pct": args.limit,
        "pass": ok,
    }
    if args.balance_out:
        from ..hardware.report import write_balance_log

        write_balance_log(
            args.balance_out, emu.run, emu.start_ms, emu.rate_ul_per_h, emu.evaporation
        )
    if args.junit:
        from ..hardware.report import Verdict, junit_xml

        def verdict(name: str, e: Any) -> Verdict:
            worst = abs(e.value) + e.expanded_uncertainty
            return Verdict(
                name,
                worst <= args.limit,
                f"{e.value:+.4f} ± {e.expanded_uncertainty:.4f} % (k = 2), limit ±{args.limit:g} %",
            )

        verdicts = [verdict("mean error A", low.mean_pct)]
        for w in low.windows:
            span = format_duration(w.window)
            verdicts += [
                verdict(f"Ep(max) {span}", w.max_pct),
                verdict(f"Ep(min) {span}", w.min_pct),
            ]
        with open(args.junit, "w", encoding="utf-8") as f:
            f.write(junit_xml("itb rig accuracy", verdicts))
    if args.duration >= timedelta(hours=2):
        out["trumpet"] = trumpet_curve(emu.run, emu.rate_ul_per_h).as_dict()
        start = startup_curve(emu.run, emu.rate_ul_per_h)
        out["startup_max_ul_per_h"] = max(start.flow_ul_per_h)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0 if ok else 1
    print(
        f"rate {emu.rate_ul_per_h:.4g} µL/h, evaporation {emu.evaporation} (blank run), "
        f"low-flow period {format_duration(low.period[0])} – {format_duration(low.period[1])}"
    )
    for w in low.windows:
        print(
            f"  window {format_duration(w.window)} ({w.count} windows): Ep(max) {w.max_pct.value:+.3f} ± "
            f"{w.max_pct.expanded_uncertainty:.3f} %, Ep(min) {w.min_pct.value:+.3f} ± "
            f"{w.min_pct.expanded_uncertainty:.3f} % (k = 2)"
        )
    print(f"  mean error A {low.mean_pct.value:+.4f} ± {low.mean_pct.expanded_uncertainty:.4f} %")
    print(f"limit ±{args.limit:g} % (Ep ± U inside): " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1
