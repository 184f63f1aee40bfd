"""A clinic's patients from a CSV file (the input of ``itb clinic plan``).

Columns (header row; order free; empty cell = not given). Required: ``id``, ``model`` (a preset
name: ``SYNCHROMED_II_20``, ``SYNCHROMED_II_40``, ``PROMETRA_II_20``, ``PROMETRA_II_40``),
``interrogated`` (the reading's date-time, ISO 8601), ``reservoir_ml``,
``concentration_ug_per_ml``, ``ug_per_day``: a number (a continuous program, µg/day) or a flex
program's steps, ``HH:MM=µg/day`` separated by ``;`` (a day program, first step at 00:00, e.g.
``00:00=150;07:00=250;20:00=150``) or ``ddd HH:MM=µg/day`` (a week program from Monday 00:00, e.g.
``mon 00:00=300;sat 00:00=400``). Optional: ``battery_mah``,
``implanted`` (date), ``active_alarms`` (``name@since`` separated by ``;``, e.g.
``eri@2026-01-10T08:00;low_reservoir@2026-02-27T14:00``), ``last_refill`` (date),
``min_interval`` and ``stability`` (durations: ISO 8601 ``P28D`` or ``28d``), ``earliest``
(date), ``clinician``, ``booked`` (date), ``fill_ml``, ``vial_ml``, ``catheter_volume_ul``.
Errors: :class:`PatientFileError` naming ``FILE:LINE`` and the column (a row with more
non-empty cells than the header: ``FILE:LINE``), the file unchanged.
Shipped example: ``examples/clinic_patients.csv``.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .._time import ClockTextError, parse_instant
from ..errors import ItbError, ValidationError
from ..models import PRESETS
from ..program import Continuous, Flex, Program
from ..pump import Pump
from .clinic import ClinicPatient

__all__ = ["PatientFileError", "read_patients_csv", "PATIENT_COLUMNS"]

REQUIRED = ("id", "model", "interrogated", "reservoir_ml", "concentration_ug_per_ml", "ug_per_day")
OPTIONAL = (
    "battery_mah",
    "implanted",
    "active_alarms",
    "last_refill",
    "min_interval",
    "stability",
    "earliest",
    "clinician",
    "booked",
    "fill_ml",
    "vial_ml",
    "catheter_volume_ul",
)
PATIENT_COLUMNS = REQUIRED + OPTIONAL


class PatientFileError(ValidationError):
    """A bad patients file: ``field`` is ``FILE:LINE:COLUMN`` (exit code 2 on the CLI)."""

    exit_code = 2


def read_patients_csv(path: str | Path) -> list[ClinicPatient]:
    """The patients of a CSV file (module docs for the columns)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PatientFileError(f"{p}: cannot read: {exc.strerror}", str(p)) from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise PatientFileError(f"{p}: empty file; allowed: a header row and patients", str(p))
    header = [h.strip() for h in rows[0]]
    for col in REQUIRED:
        if col not in header:
            raise PatientFileError(f"{p}:1: missing column {col!r}", f"{p}:1:{col}")
    for col in header:
        if col not in PATIENT_COLUMNS:
            raise PatientFileError(
                f"{p}:1: unknown column {col!r}; allowed: {', '.join(PATIENT_COLUMNS)}",
                f"{p}:1:{col}",
            )
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        extra = [c for c in row[len(header) :] if c.strip()]
        if extra:
            raise PatientFileError(
                f"{p}:{n}: {len(row)} cells, the header has {len(header)}; extra cell "
                f"{extra[0].strip()!r}; allowed: one per column",
                f"{p}:{n}",
            )
        cells = {h: (row[k].strip() if k < len(row) else "") for k, h in enumerate(header)}
        out.append(_patient(p, n, cells))
    return out


def _patient(p: Path, line: int, cells: dict[str, str]) -> ClinicPatient:
    def fail(col: str, why: str) -> PatientFileError:
        return PatientFileError(f"{p}:{line}: column {col}: {why}", f"{p}:{line}:{col}")

    def get(col: str, kind: str) -> Any:
        raw = cells.get(col, "")
        if raw == "":
            if col in REQUIRED:
                raise fail(col, "empty; a value is required")
            return None
        if kind == "datetime":
            try:
                return parse_instant(raw)
            except ClockTextError as exc:  # its own words: a UTC offset is refused as such
                raise fail(col, str(exc)) from None
        try:
            if kind == "float":
                return float(raw)
            if kind == "int":
                return int(raw)
            if kind == "date":
                return date.fromisoformat(raw)
            if kind == "duration":
                return _parse_duration(raw)
        except ValueError:
            allowed = {
                "float": "a number",
                "int": "a whole number",
                "date": "an ISO 8601 date (2026-03-02)",
                "duration": "a duration (P28D, 28d, 12h)",
            }[kind]
            raise fail(col, f"{raw!r}; allowed: {allowed}") from None
        return raw

    model_name = get("model", "str")
    if model_name not in PRESETS:
        raise fail("model", f"{model_name!r}; allowed: {', '.join(PRESETS)}")
    alarms = []
    raw_alarms = cells.get("active_alarms", "")
    for part in filter(None, (x.strip() for x in raw_alarms.split(";"))):
        name, _, since = part.partition("@")
        try:
            alarms.append((name.strip(), parse_instant(since)))
        except ValueError:
            raise fail(
                "active_alarms", f"{part!r}; allowed: name@since (eri@2026-01-10T08:00)"
            ) from None
    kwargs: dict[str, Any] = dict(
        now=get("interrogated", "datetime"),
        reservoir_ml=get("reservoir_ml", "float"),
        concentration_ug_per_ml=get("concentration_ug_per_ml", "float"),
        battery_mah=get("battery_mah", "float"),
        implanted=get("implanted", "datetime"),
        active_alarms=alarms,
    )
    cath = get("catheter_volume_ul", "float")
    if cath is not None:
        kwargs["catheter_volume_ul"] = cath
    columns = {
        "now": "interrogated",
        "reservoir_ml": "reservoir_ml",
        "concentration_ug_per_ml": "concentration_ug_per_ml",
        "battery_mah": "battery_mah",
        "implanted": "implanted",
        "catheter_volume_ul": "catheter_volume_ul",
        "ug_per_day": "ug_per_day",
        "program": "ug_per_day",
        "model": "model",
    }
    try:
        program = _program(get("ug_per_day", "str"), fail)
        pump = Pump.from_reading(PRESETS[model_name], program=program, **kwargs)
    except PatientFileError:
        raise
    except ItbError as err:
        field = err.field or ""
        col = (
            "active_alarms"
            if field.startswith("active_alarms")
            else "ug_per_day"  # a flex step (steps[i].offset / .ug_per_day)
            if field.startswith(("steps", "period"))
            else columns.get(field, field)
        )
        raise fail(col or "?", str(err)) from None
    try:
        return ClinicPatient(
            id=get("id", "str"),
            pump=pump,
            last_refill=get("last_refill", "date"),
            min_interval=get("min_interval", "duration") or timedelta(0),
            earliest=get("earliest", "date"),
            stability=get("stability", "duration"),
            clinician=get("clinician", "str"),
            booked=get("booked", "date"),
            fill_ml=get("fill_ml", "float"),
            vial_ml=get("vial_ml", "float"),
            source=f"{p}:{line}",
        )
    except PatientFileError:
        raise  # a cell's error already names FILE:LINE and the column
    except ItbError as err:
        col = err.field or "?"
        text = str(err)
        raise fail(col, text.removeprefix(f"{col}: ")) from None


_STEPS_FORM = (
    "a number (µg/day) or steps HH:MM=µg/day;… (00:00=150;07:00=250) or ddd HH:MM=µg/day;…"
)


def _program(raw: str, fail: Any) -> Program:
    """The ``ug_per_day`` cell: a continuous dose or a flex program's steps (module docs)."""
    if "=" not in raw:
        try:
            ug = float(raw)
        except ValueError:
            raise fail("ug_per_day", f"{raw!r}; allowed: {_STEPS_FORM}") from None
        try:
            return Continuous(ug_per_day=ug)
        except ItbError as err:  # a number out of range: the conversion's own words
            raise fail("ug_per_day", str(err).removeprefix("ug_per_day: ")) from None
    steps: list[tuple[str, float]] = []
    for part in (x.strip() for x in raw.split(";")):
        if not part:
            continue
        at, eq, dose = part.partition("=")
        try:
            steps.append((" ".join(at.split()).lower(), float(dose)))
        except ValueError:
            raise fail("ug_per_day", f"step {part!r}; allowed: {_STEPS_FORM}") from None
        if not eq:
            raise fail("ug_per_day", f"step {part!r}; allowed: {_STEPS_FORM}")
    # a step that starts with a letter names a weekday; itb.Flex reads (and checks) the text
    week = [s for s, _ in steps if s[:1].isalpha()]
    if week and len(week) != len(steps):
        raise fail("ug_per_day", f"{raw!r}: mixes day (HH:MM) and week (ddd HH:MM) steps")
    return Flex(period="week" if week else "day", steps=steps)


def _parse_duration(text: str) -> timedelta:
    """ISO 8601 (``P28D``, ``PT12H``) or a number with a unit (``28d``, ``12h``, ``30min``)."""
    from .._time import DurationError, parse_duration_text

    try:
        return timedelta(milliseconds=parse_duration_text(text))
    except DurationError as exc:
        raise ValueError(str(exc)) from None
