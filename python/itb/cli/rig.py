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
from typing import Any

from .common import DISCLAIMER, console, number, positive_duration

__all__ = ["register", "load_schedule"]

_FORMAT = argparse.RawDescriptionHelpFormatter


def register(subparsers: Any, disclaimer: str = DISCLAIMER) -> None:
    """Add ``rig`` (emulate, keygen, run, status, journal, measure, limits, bolus) and ``trumpet``."""
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
            type=_seconds,
            default=2.0,
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
        "--reservoir-ml", type=_positive, default=40.0, help="rig reservoir (mL, default 40)"
    )
    p.add_argument(
        "--noise-mg",
        type=_nonneg,
        default=0.0,
        help="scale noise, standard deviation (mg, default 0)",
    )
    p.add_argument(
        "--sample-interval",
        type=_positive,
        default=0.5,
        metavar="S",
        help="scale sample interval (s, default 0.5)",
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
    p.add_argument(
        "scenario",
        help="scenario file (itb.scenario format, or the rig JSON fallback — see README)",
    )
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
        "--batch", type=int, default=16, help="strokes per command at max speed (1..64, default 16)"
    )
    p.add_argument("--json", action="store_true", help="print the run report as JSON")

    p = add("status", "ask the rig for its status", _status)
    link(p)
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
        type=_seconds,
        default=60.0,
        metavar="DURATION",
        help="how long to record (e.g. 60s, 5min; default 60s)",
    )
    p.add_argument(
        "--interval",
        type=_seconds,
        default=0.5,
        metavar="DURATION",
        help="time between samples (e.g. 500ms, 1s; default 500ms)",
    )
    p.add_argument(
        "--windows",
        type=_floats,
        default=None,
        metavar="MIN,…",
        help="trumpet windows in minutes (default 2,5,11,19,31)",
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
        "--duration-min", type=_positive, default=10.0, help="bolus duration (min, default 10)"
    )
    p.add_argument(
        "--lockout-min", type=_nonneg, default=60.0, help="lockout after a bolus (min, default 60)"
    )
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
        help="save the curve (needs matplotlib: pip install 'itb[plot]')",
    )
    t.add_argument(
        "--windows",
        type=_floats,
        default=None,
        metavar="MIN,…",
        help="windows in minutes (default 2,5,11,19,31)",
    )
    t.add_argument(
        "--sample-interval",
        type=_positive,
        default=30.0,
        metavar="S",
        help="S in seconds (default 30)",
    )
    t.add_argument(
        "--period",
        type=_floats,
        default=None,
        metavar="START,END",
        help="analysis period in s (default: the second half of the recording)",
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


def _seconds(text: str) -> float:
    """argparse type: a duration with its unit (``2s``, ``500ms``, ``PT1M``), as seconds."""
    return positive_duration(text).total_seconds()


def _speed(text: str) -> float | None:
    return None if text == "max" else _positive(text)


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

    from ..hardware.emulator import serve_pty, serve_tcp
    from ..hardware.protocol import load_keys
    from ..hardware.rig import Rig, Scale

    keys = load_keys(args.key_file)
    scale = Scale(
        noise_mg=args.noise_mg,
        sample_interval_s=args.sample_interval,
        density_g_per_ml=args.density,
        seed=args.seed,
    )
    rig = Rig(scale=scale, record=args.record, reservoir_ml=args.reservoir_ml)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def announce(where: str) -> None:
        print(f"PORT {where}", flush=True)

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"rig: {msg}", file=sys.stderr, flush=True)

    log(
        f"keys for {', '.join(r.name.lower() for r in keys)}; last executed stroke id {rig.last_stroke_id}"
    )
    try:
        if args.tcp is not None:
            serve_tcp(rig, keys, args.tcp, announce=announce, stop=stop, log=log)
        else:
            serve_pty(rig, keys, announce=announce, stop=stop, log=log)
    finally:
        rig.close()
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


def load_schedule(path: str) -> tuple[Any, int, str]:
    """(stroke times in ms, schedule start ms, description) of a scenario file.

    A ``.toml`` file is an ``itb.scenario`` file: its stroke schedule is every stroke of a run with
    all its actions to ``[run] until`` (``Scenario.stroke_times``). Other files are the rig JSON
    format::

        {"model": "SYNCHROMED_II_40", "start": "2026-01-05T08:00", "reservoir_ml": 40,
         "concentration_ug_per_ml": 500, "ug_per_day": 2000, "hours": 24,
         "boluses": [{"dose_ug": 50, "minutes": 30, "start": "2026-01-05T10:00"}]}

    Either way the stroke times come from the Rust core (``Pump.advance_recording``).
    """
    from datetime import datetime, timedelta

    from .. import models
    from ..errors import ValidationError
    from ..hardware.controller import stroke_schedule
    from ..program import Continuous
    from ..pump import Pump

    if path.endswith(".toml"):
        from .. import scenario as scenario_mod

        sc = scenario_mod.load(path)
        return sc.stroke_times(), sc.pump().now_ms, f"{path} (itb.scenario)"
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except OSError as err:
        raise ValidationError(f"scenario: cannot read {path}: {err.strerror}", "scenario") from None
    except ValueError as err:
        raise ValidationError(f"scenario: {path} is not JSON ({err})", "scenario") from None
    try:
        model = getattr(models, spec.get("model", "SYNCHROMED_II_40"))
        start = datetime.fromisoformat(spec.get("start", "2026-01-05T08:00"))
        pump = Pump(
            model,
            now=start,
            reservoir_ml=float(spec.get("reservoir_ml", model.reservoir_ml)),
            concentration_ug_per_ml=float(spec["concentration_ug_per_ml"]),
            program=Continuous(ug_per_day=float(spec["ug_per_day"])),
        )
        for b in spec.get("boluses", []):
            pump.bolus(
                float(b["dose_ug"]),
                timedelta(minutes=float(b["minutes"])),
                datetime.fromisoformat(b["start"]) if "start" in b else None,
            )
        until = start + timedelta(hours=float(spec["hours"]))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValidationError(
            f"scenario: {path}: bad or missing field ({err})", "scenario"
        ) from None
    return stroke_schedule(pump, until), pump.now_ms, f"{path} (rig JSON)"


def _driver(args: argparse.Namespace, role: Any = None) -> Any:
    from ..hardware.protocol import Role, load_keys
    from ..hardware.serial_driver import SerialDriver

    keys = load_keys(args.key_file)
    if role is None:
        role = Role.CLINICIAN if Role.CLINICIAN in keys else Role.PATIENT
    return SerialDriver(args.port, keys, role=role, timeout=args.timeout)


def _run(args: argparse.Namespace) -> int:
    from ..hardware.controller import Controller
    from ..hardware.journal import Journal

    times, start_ms, what = load_schedule(args.scenario)
    from ..errors import ValidationError

    if not 1 <= args.batch <= 64:
        raise ValidationError(f"batch: {args.batch} outside 1..64", "batch")
    with Journal(args.journal) as journal:
        driver = _driver(args)
        try:
            report = Controller(
                driver, journal, times, speed=args.speed, start_ms=start_ms, batch=args.batch
            ).run()
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
            f"{report.retries} retried exchange(s); {report.elapsed_s:.2f} s"
        )
    return 0


def _status(args: argparse.Namespace) -> int:
    driver = _driver(args)
    try:
        status = driver.status().as_dict()
    finally:
        driver.close()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        for k, v in status.items():
            print(f"{k:16} {v}")
    return 0


def _journal(args: argparse.Namespace) -> int:
    from ..errors import ValidationError
    from ..hardware.journal import COLUMNS, Journal

    if not os.path.isfile(args.file):
        raise ValidationError(f"file: {args.file} does not exist", "file")
    with Journal(args.file) as j:
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

    import numpy as np

    from ..analysis import DEFAULT_WINDOWS_MIN, trumpet

    driver = _driver(args)
    samples = []
    try:
        t_end = time.monotonic() + args.duration
        while True:
            samples.append(driver.measure())
            if time.monotonic() + args.interval > t_end:
                break
            time.sleep(args.interval)
    finally:
        driver.close()
    t = np.array([s["t_s"] for s in samples])
    density = float(samples[0]["density_g_per_ml"])
    delivered = (
        (np.array([s["mass_mg"] for s in samples]) - samples[0]["mass_mg"]) / density / 1000.0
    )  # mL
    expected = (
        np.array([s["expected_nl"] for s in samples]) - samples[0]["expected_nl"]
    ) / 1e6  # mL
    noise_ml = 3 * np.sqrt(2) * float(samples[0].get("noise_mg", 0.0)) / density / 1000.0
    tol = max(args.tolerance_pct / 100.0 * expected[-1], noise_ml)
    ok = abs(delivered[-1] - expected[-1]) <= tol
    out: dict[str, Any] = {
        "samples": len(samples),
        "duration_s": float(t[-1] - t[0]),
        "delivered_ml": float(delivered[-1]),
        "expected_ml": float(expected[-1]),
        "tolerance_ml": float(tol),
        "within_tolerance": bool(ok),
    }
    t_unique, idx = np.unique(t, return_index=True)
    if t_unique.size >= 3 and expected[-1] > 0:
        start, end = (t_unique[0] + t_unique[-1]) / 2, t_unique[-1]
        rate = (
            np.interp(end, t_unique, expected[idx]) - np.interp(start, t_unique, expected[idx])
        ) / ((end - start) / 3600)
        if rate > 0:
            res = trumpet(
                t_unique,
                delivered[idx],
                args.windows or DEFAULT_WINDOWS_MIN,
                sample_interval=args.interval,
                rate_ml_per_h=rate,
            )
            out["trumpet"] = res.as_dict()
    if args.csv:
        with open(args.csv, "w", encoding="ascii") as f:
            f.write("time_s,cumulative_ml\n")
            for a, b in zip(t_unique, delivered[idx]):
                f.write(f"{a:.3f},{b:.9f}\n")
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
        j.outcome(iid, "ack", "ok", json.dumps(result, sort_keys=True))
        return result


def _limits(args: argparse.Namespace) -> int:
    driver = _driver(args)
    try:
        role = driver.role.name.lower()
        result = _journaled(
            args,
            role,
            "SET_LIMITS",
            lambda: driver.set_patient_limits(
                int(round(args.dose_ug * 1000)),
                int(args.duration_min * 60_000),
                int(args.lockout_min * 60_000),
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


def _read_series(path: str) -> tuple[Any, Any]:
    import numpy as np

    from ..errors import ValidationError

    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split(",")
                try:
                    rows.append((float(parts[0]), float(parts[1])))
                except (ValueError, IndexError):
                    if rows or n > 1:
                        raise ValidationError(
                            f"data: {path} line {n}: expected time_s,cumulative_ml", "data"
                        ) from None
    except OSError as err:
        raise ValidationError(f"data: cannot read {path}: {err.strerror}", "data") from None
    if len(rows) < 2:
        raise ValidationError(f"data: {path} has fewer than two samples", "data")
    a = np.array(rows)
    return a[:, 0], a[:, 1]


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
    from ..analysis import DEFAULT_WINDOWS_MIN, plot_trumpet, trumpet
    from ..errors import ValidationError

    t, v = _read_series(args.data)
    period = None
    if args.period is not None:
        if len(args.period) != 2:
            raise ValidationError("period: expected START,END in seconds", "period")
        period = (args.period[0], args.period[1])
    res = trumpet(
        t,
        v,
        args.windows or DEFAULT_WINDOWS_MIN,
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
