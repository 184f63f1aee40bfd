"""What every ``itb`` subcommand shares: the notice, a parser factory that puts it in ``--help``,
argument types for times and durations, and a progress bar for runs that take a while.

Modules that add subcommands (``itb.cli.scenario``, ``itb.cli.rig``) define
``register(subparsers)`` and call :func:`add_command` for each command; the handler given to it
takes the parsed arguments and returns the exit code. See :mod:`itb.cli` for exit codes.
"""

from __future__ import annotations

import argparse
import re
import sys
import time as _time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NoReturn

from .._time import ClockTextError, from_ms, parse_instant
from .._units import ng_to_ug, nl_to_ml, nl_to_ul, pc_to_mah, pg_to_ug
from ..errors import ItbError, MissingExtraError, ValidationError

__all__ = [
    "delivery_rows",
    "describe_event",
    "DISCLAIMER",
    "NOTICE",
    "UsageError",
    "EXIT_CODES",
    "exit_code",
    "Parser",
    "add_command",
    "when",
    "duration",
    "positive_duration",
    "number",
    "progress_callback",
    "console",
    "print_json",
    "print_heading",
    "events_table",
    "totals_table",
]

DISCLAIMER = (
    "itb is an engineering and simulation tool for software and test-rig development. "
    "It is NOT a medical device and must NOT be used for clinical decisions, dosing, "
    "or patient care."
)
NOTICE = "Not a medical device. Not for clinical decisions."

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A bad command-line argument found after parsing (exit code 2)."""


def _reportable() -> str:
    import platform

    from .. import __version__

    return (
        "This is a bug in itb, not a problem with your input: please report it to the itb "
        "maintainers with the command line, its input files and this message "
        f"(itb {__version__}, Python {platform.python_version()})."
    )


def _os_message(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    return f"{exc.filename}: {what}" if exc.filename else what


#: The one error → exit-code map of every ``itb`` command, first match wins (docs:
#: guide/inputs.md#exit-codes): 2 a bad argument, option, file or path; 1 a run-time refusal or
#: other failure. Anything else is a bug: exit 1 with "internal error" and how to report it.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, 2),
    (ValidationError, 2),  # incl. ScenarioError: a bad value, file or path
    (OSError, 2),  # an unreadable input or unwritable output
    (ItbError, 1),  # the pump, rig or protocol refused at run time
    (MissingExtraError, 1),
    (KeyboardInterrupt, 1),
)


def exit_code(exc: BaseException) -> tuple[int, str]:
    """The exit code and the stderr message of an error a command raised."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            if isinstance(exc, KeyboardInterrupt):
                return code, "itb: interrupted"
            text = _os_message(exc) if isinstance(exc, OSError) else str(exc)
            return code, f"itb: error: {text}"
    return 1, f"itb: internal error: {type(exc).__name__}: {exc}\n{_reportable()}"


def _closest_option(parser: argparse.ArgumentParser, name: str) -> str | None:
    """The long option of ``parser`` closest to the misspelt ``name`` (None: none is close)."""
    import difflib

    known = [o for o in parser._option_string_actions if o.startswith("--")]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for an unknown command, action or choice, for a misspelt
    option of any subcommand (``--capcity`` for ``--capacity``), and for a misspelt option that
    makes a required one look missing (``--durtion`` for ``--duration``)."""

    _itb_seen: Sequence[str] = ()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._itb_seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        import difflib

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'?([\w.-]+)'?", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]!r}?"
        if message.startswith("unrecognized arguments"):
            message += self._itb_option_hint(message)
        if message.startswith("the following arguments are required"):
            known = [o for o in self._option_string_actions if o.startswith("--")]
            for arg in self._itb_seen:
                name = arg.split("=", 1)[0]
                if name.startswith("--") and not any(o.startswith(name) for o in known):
                    option = _closest_option(self, name)
                    hint = f" (did you mean {option}?)" if option else ""
                    message += f"; unrecognized option {name}{hint}"
        super().error(message)

    def _itb_option_hint(self, message: str) -> str:
        """For an unknown option of a subcommand (reported by the top-level parser): the
        closest option of the subcommand the command words name, as "did you mean"."""
        parser: argparse.ArgumentParser = self
        for word in self._itb_seen:  # follow the command words down to the subcommand used
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if not subs or word.startswith("-"):
                break
            if word in subs[0].choices:
                parser = subs[0].choices[word]
        hints = []
        for name in re.findall(r"(?<!\S)(--[\w-]+)", message.split(":", 1)[-1]):
            close = _closest_option(parser, name)
            if close:
                hints.append(f"{name}: did you mean {close}?")
        return f" ({'; '.join(hints)})" if hints else ""


def add_command(
    subparsers: Any, name: str, handler: Handler | None, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` whose ``--help`` carries the not-a-medical-device notice;
    ``handler(args) -> exit code`` runs it (``None`` for a group of subcommands: ``itb GROUP``
    alone prints the group's help and exits 2)."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=f"{description}\n\nSimulation only — {DISCLAIMER}",
        epilog=NOTICE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler, group_parser=parser if handler is None else None)
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def duration(text: str) -> timedelta:
    """argparse type: ISO 8601 (``P7D``, ``PT12H``) or a number with a unit (``7d``, ``30min``,
    ``90s``); a bare number is refused (argparse names the option). Rules: :mod:`itb._time`."""
    from .._time import DurationError, parse_duration_text

    try:
        return timedelta(milliseconds=parse_duration_text(text))
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_duration(text: str) -> timedelta:
    """argparse type: as :func:`duration`, at least 1 ms."""
    from .._time import DurationError, parse_duration_text

    try:
        return timedelta(milliseconds=parse_duration_text(text, allow_zero=False))
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def when(text: str) -> datetime | timedelta:
    """argparse type: a pump-clock time (``2026-03-01``, ``2026-03-01T08:00``) or a duration
    from the scenario's start (``P30D``, ``30d``)."""
    stripped = text.strip()
    if re.fullmatch(r"[+-]?\d+(?:\.\d*)?", stripped):
        return duration(text)  # refused: a bare number (ms? days?) names no unit
    if stripped[:1].upper() == "P" or re.fullmatch(r"\d+(?:\.\d+)?\s*[a-zA-Zµ]+", stripped):
        return duration(text)
    try:
        return parse_instant(stripped)
    except ClockTextError as exc:
        if "UTC offset" in str(exc):
            raise argparse.ArgumentTypeError(str(exc)) from None
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a date-time (2026-03-01T08:00) nor a duration from the "
            "start (P30D, 30d)"
        ) from None


def _fmt_ms_time(ms: int) -> str:
    return from_ms(ms).isoformat(sep=" ", timespec="milliseconds")


def describe_event(e: dict[str, Any]) -> str:
    """Human summary of an event's data (units from the field-name suffixes)."""
    d = e["data"]
    if e["kind"] == "stroke_batch":
        return f"{d['count']} strokes, {nl_to_ul(d['volume_nl']):g} µL, first {_fmt_ms_time(d['first_ms'])}"
    return ", ".join(_describe_value(key, value) for key, value in d.items())


#: Exact-unit suffixes of event data → the unit people read and its ``itb._units`` conversion
#: (docs: guide/inputs.md#messages): tables show µg, mL, mAh; the exact integers stay in
#: ``Event.data``.
_PEOPLE_UNITS: tuple[tuple[str, str, Callable[[int], float]], ...] = (
    ("_nl_per_day", "mL/day", nl_to_ml),
    ("_ng_per_day", "µg/day", ng_to_ug),
    ("_nl", "mL", nl_to_ml),
    ("_pg", "µg", pg_to_ug),
    ("_ng", "µg", ng_to_ug),
    ("_pc", "mAh", pc_to_mah),
)
_DURATION_KEYS = ("duration", "lockout", "interval", "window")


def describe_fields(data: dict[str, Any]) -> list[str]:
    """One line per field for people (``reservoir 35.8 mL``, ``clock 2026-01-06 …``,
    ``limits dose 50 µg, duration PT10M, …``): units from the key suffixes, as in event tables."""

    def field(key: str, value: Any, nested: bool = False) -> str:
        if isinstance(value, dict):
            inner = ", ".join(field(k, v, True) for k, v in value.items()) or "none"
            return f"{key} ({inner})" if nested else f"{key} {inner}"
        if value is None or (isinstance(value, (list, tuple)) and not value):
            return f"{key} none"
        if isinstance(value, (list, tuple)):
            return f"{key} {', '.join(map(str, value))}"
        return _describe_value(key, value)

    return [field(k, v) for k, v in data.items()]


def _describe_value(key: str, value: Any) -> str:
    if key.endswith("_ms") and isinstance(value, int):
        name = key[:-3]
        if any(w in name for w in _DURATION_KEYS):
            from .._time import format_duration_ms

            return f"{name} {format_duration_ms(value)}"
        return f"{name} {_fmt_ms_time(value)}"
    for suffix, unit, convert in _PEOPLE_UNITS:
        if key.endswith(suffix) and isinstance(value, int) and not isinstance(value, bool):
            return f"{key[: -len(suffix)]} {convert(value):,.6g} {unit}"
    return f"{key} {value}"


def number(
    kind: Callable[[str], Any],
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    what: str = "a number",
    unit: str = "",
) -> Callable[[str], Any]:
    """argparse type: ``kind(text)`` (``int`` or ``float``) between ``low`` and ``high`` (``> low`` when
    ``low_open``); the error names the text and the allowed range, in ``unit`` when given
    (argparse adds the option). A fractional number for an ``int`` "must be a whole number";
    text that is not a number names the range too when there is a ``high``."""
    u = f" {unit}" if unit else ""
    # text that is not a number still learns the range when there is one
    span = f"; allowed {low:g} to {high:g}{u}" if high is not None else ""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            if kind is int and what == "a number":
                try:
                    float(text)
                except ValueError:
                    pass
                else:
                    raise argparse.ArgumentTypeError(
                        f"{text!r} must be a whole number{span}"
                    ) from None
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}{span}") from None
        too_low = value <= low if low_open else value < low
        if too_low or not value < float("inf") or (high is not None and value > high):
            if high is not None:
                allowed = f"is not between {low:g}{u} and {high:g}{u}"
            else:
                allowed = f"must be {'>' if low_open else '>='} {low:g}{u}"
            raise argparse.ArgumentTypeError(f"{text!r} {allowed}")
        return value

    return parse


def console(stderr: bool = False) -> Any:
    """A rich console; piped or captured output gets 120 columns instead of 80."""
    from rich.console import Console

    out = Console(stderr=stderr)
    return out if out.is_terminal else Console(stderr=stderr, width=120)


@contextmanager
def progress_callback(
    label: str, *, delay: timedelta = timedelta(milliseconds=300)
) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a rich progress bar on stderr — only when
    stderr is a terminal, and only once the work has taken more than ``delay`` (a duration);
    ``None`` (no callback) when stderr is not a terminal."""
    from .._time import duration_ms

    delay_s = duration_ms(delay, "delay") / 1000
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = _time.monotonic()
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            if _time.monotonic() - started < delay_s:
                return
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}% of simulated time"),
                TimeElapsedColumn(),
                console=console(stderr=True),
                transient=True,
            )
            bar.start()
            state["bar"], state["task"] = bar, bar.add_task(label, total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


def delivery_rows(t: dict[str, Any]) -> list[tuple[str, str]]:
    """The delivery rows of a totals table (``itb demo``, ``itb run``) from a JSON-ready totals
    dict: time simulated, strokes, volumes (mL), drug (µg), reservoir left, empty or not."""
    return [
        (
            "simulated",
            f"{t['start'].replace('T', ' ')} → {t['end'].replace('T', ' ')} ({t['days_simulated']:.3f} days)",
        ),
        ("strokes", f"{t['strokes']:,}"),
        ("pumped (left reservoir)", f"{t['pumped_ml']:.6f} mL"),
        ("delivered at catheter tip", f"{t['delivered_ml']:.6f} mL"),
        ("delivered drug", f"{t['delivered_ug']:,.3f} µg"),
        ("reservoir left", f"{t['reservoir_ml']:.6f} mL at {t['concentration_ug_per_ml']} µg/mL"),
        ("reservoir empty", "yes" if t["reservoir_empty"] else "no"),
    ]


def print_json(report: Any) -> int:
    """Write ``report`` as indented UTF-8 JSON to stdout; returns exit code 0."""
    import json

    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def print_heading(out: Any, command: str, subject: str) -> None:
    """The first two lines of every rich report: ``itb COMMAND — subject`` and the disclaimer."""
    out.print(f"[bold]itb {command}[/bold] — {subject}")
    out.print(f"[dim]{DISCLAIMER}[/dim]")


_SEVERITY_STYLES = {"critical": "bold red", "non_critical": "yellow"}


def events_table(records: Any) -> Any:
    """A rich table of JSON-ready event records (``time``, ``kind``, ``severity``, ``data``),
    alarms coloured by severity."""
    from rich.table import Table

    table = Table(title="Events")
    table.add_column("time", no_wrap=True)
    table.add_column("kind")
    table.add_column("severity")
    table.add_column("data")
    for e in records:
        sev = e["severity"] or ""
        style = _SEVERITY_STYLES.get(sev)
        table.add_row(
            e["time"].replace("T", " "),
            e["kind"],
            f"[{style}]{sev}[/]" if style else sev,
            describe_event(e),
        )
    return table


def totals_table(rows: Any) -> Any:
    """A rich two-column ``Totals`` table (quantity, right-aligned value) of ``(name, text)`` rows."""
    from rich.table import Table

    totals = Table(title="Totals")
    totals.add_column("quantity")
    totals.add_column("value", justify="right")
    for row in rows:
        totals.add_row(*row)
    return totals
