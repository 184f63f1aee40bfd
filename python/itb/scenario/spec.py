"""The scenario file format: pydantic v2 models of ``[pump]``, ``[[actions]]`` and ``[run]``,
the value types (pump-clock date-times, ISO 8601 durations, flex step starts) and the JSON Schema
exported from them. Loading, error reporting and running are :mod:`itb.scenario`.

Each action model is a Pump method: ``do`` is its name and the other keys its keyword arguments
(``name`` labels a bolus for a later ``cancel_bolus``). Ranges checked here are the obvious ones
(signs, whole µg/mL in 1..100000); the Rust core checks the rest when the pump is built or called.
Simulation only — not a medical device.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    WithJsonSchema,
)

from .. import _time
from .._limits import MAX_CONCENTRATION_UG_PER_ML
from .._limits import MS_PER_DAY as _DAY_MS
from .._time import (
    DurationError,
    format_duration,
    parse_clock_text,
    parse_instant,
    parse_iso_duration,
    step_start_ms,
    step_start_text,
)
from ..errors import ItbError, ValidationError
from ..models import NOMINAL_BATTERY, PRESETS, BatteryModel, PumpModel
from ..program import Continuous, Flex, Program

__all__ = [
    "FAULT_ACTIONS",
    "ScenarioSpec",
    "PumpSpec",
    "RunSpec",
    "ModelSpec",
    "BatterySpec",
    "ContinuousProgram",
    "FlexProgram",
    "ACTIONS",
    "Action",
    "parse_duration",
    "format_duration",
    "json_schema",
]


# ----- value types --------------------------------------------------------------------------------


def _naive_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(
                "has a UTC offset; the pump clock is naive local time (write 2026-01-05T08:00:00)"
            )
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return parse_instant(value)  # a ClockTextError is a ValueError: pydantic reports it
    raise ValueError(
        f"expected a TOML local date-time such as 2026-01-05T08:00:00, got {type(value).__name__}"
    )


def _truncate_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


_DATETIME_SCHEMA = {
    "type": "string",
    "description": "TOML local date-time on the pump clock (no UTC offset), e.g. 2026-01-05T08:00:00",
}
Time = Annotated[
    datetime,
    BeforeValidator(_naive_datetime),
    AfterValidator(_truncate_ms),
    WithJsonSchema(_DATETIME_SCHEMA),
]


def parse_duration(value: Any) -> timedelta:
    """A duration of a scenario file: an ISO 8601 string (``PT30M``, ``P1DT2H``, ``PT0.5S``; no
    months or years), or a ``timedelta`` given in a dict; exact to the millisecond. A bare
    number is refused (it has no unit), as is a bool. ``ValueError`` (an
    :class:`itb._time.DurationError`) names the problem; the rules are :mod:`itb._time`'s."""
    if isinstance(value, str):
        return timedelta(milliseconds=parse_iso_duration(value))
    if isinstance(value, bool):
        raise DurationError(
            "a bool is never a duration; write an ISO 8601 duration such as 'PT30M'"
        )
    if isinstance(value, (int, float)):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise DurationError(
                f"{text} is not a duration; write an ISO 8601 duration such as 'PT30M'"
            )
        raise DurationError(
            f"{text} is a bare number and has no unit; write an ISO 8601 duration: "
            f"'PT{text}S' ({text} seconds), 'PT{text}M' ({text} minutes), 'P{text}D' ({text} days)"
        )
    return timedelta(milliseconds=_time._duration_ms(value, True))


_DURATION_SCHEMA = {
    "type": "string",
    "pattern": "^[Pp]",
    "description": "ISO 8601 duration, e.g. PT30M, PT1H30M, P7D, PT0.5S (no months or years)",
}


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise DurationError(
            f"{format_duration(value)} is zero; it must be at least 1 ms "
            f"(allowed: {_time.duration_range(False)})"
        )
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
#: A duration of at least 1 ms (a bolus's duration).
PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    WithJsonSchema(_DURATION_SCHEMA),
]


def _offset(value: Any) -> str:
    """A flex step start as canonical text (``"08:00"``, ``"mon 08:00"``), read by the one
    step-start reader (:func:`itb._time.parse_clock_text`); which period it fits is checked when
    the program is built."""
    if isinstance(value, time):
        value = step_start_text(_time.step_start_ms(value, "day", "step"), "day")
    if not isinstance(value, str):
        raise ValueError(
            f'expected a step start such as "08:00" or "mon 08:00", got {type(value).__name__}'
        )
    day, ms = parse_clock_text(value)  # a ClockTextError is a ValueError: pydantic reports it
    if day is None:
        return step_start_text(ms, "day")
    return step_start_text(day * _DAY_MS + ms, "week")


Offset = Annotated[
    str,
    BeforeValidator(_offset),
    WithJsonSchema(
        {
            "type": "string",
            "description": 'step start: "HH:MM[:SS]" (day period) or "mon HH:MM" (week period)',
        }
    ),
]


def _real(value: Any) -> Any:
    """A number of a scenario file: an int or a float, finite; never a bool or text."""
    if isinstance(value, bool):
        raise ValueError("a bool is never a number (write the number itself)")
    if not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {_toml_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if isinstance(value, int) and abs(value) > 2**63:
        raise ValueError(f"{value} is out of range")
    return value


def _whole(value: Any) -> Any:
    """A whole number of a scenario file: an int (or a float with no fraction, as ``itb.Pump``
    takes it); never a bool, text or a fraction."""
    value = _real(value)
    if isinstance(value, float):
        if value != int(value):
            raise ValueError(f"{value:g} must be a whole number")
        value = int(value)
    return value


def _flag(value: Any) -> Any:
    """A yes/no of a scenario file: ``true`` or ``false``, never a number or text."""
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_toml_type(value)}")
    return value


def _toml_type(value: Any) -> str:
    names = {bool: "a bool", int: "an integer", float: "a float", str: "a string"}
    for t, name in names.items():
        if isinstance(value, t):
            return f"{name} ({value!r})" if not isinstance(value, str) else f"{name} {value!r}"
    kinds: dict[type, str] = {dict: "a table", list: "an array"}
    return kinds.get(type(value), type(value).__name__)


#: Value types of scenario numbers and yes/no keys (docs: guide/inputs.md#bools).
Real = Annotated[float, BeforeValidator(_real)]
Whole = Annotated[int, BeforeValidator(_whole)]
Flag = Annotated[bool, BeforeValidator(_flag)]


# ----- the pump ---------------------------------------------------------------------------------


def _by_type(value: Any) -> str:
    """Union tag: a name (string) or a table (anything else)."""
    return "<name>" if isinstance(value, str) else "<table>"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContinuousProgram(_Spec):
    """``itb.Continuous``: the same dose rate all day."""

    kind: Literal["continuous"]
    ug_per_day: Real = Field(ge=0, description="dose rate, µg/day")

    def build(self) -> Program:
        return Continuous(ug_per_day=self.ug_per_day)


class FlexProgram(_Spec):
    """``itb.Flex``: steps ``[start, µg/day]`` covering a day (``"08:00"``) or a week
    (``"mon 08:00"``), the first at the period's start, repeating forever."""

    kind: Literal["flex"]
    period: Literal["day", "week"] = "day"
    steps: list[tuple[Offset, Annotated[Real, Field(ge=0)]]] = Field(
        min_length=1, description="[start, µg/day] pairs"
    )

    def build(self) -> Program:
        out = [
            (timedelta(milliseconds=step_start_ms(text, self.period, f"steps[{i}]")), dose)
            for i, (text, dose) in enumerate(self.steps)
        ]
        return Flex(period=self.period, steps=out)


ProgramSpec = Annotated[ContinuousProgram | FlexProgram, Field(discriminator="kind")]

_BATTERY_FIELDS = (
    "capacity_mah",
    "quiescent_ua",
    "stroke_uc",
    "tone_uc",
    "telemetry_uc",
    "eri_mah",
    "eos_mah",
    "non_critical_tone",
    "critical_tone",
)


class BatterySpec(_Spec):
    """``itb.models.BatteryModel`` fields; ``preset = "NOMINAL"`` starts from
    :data:`itb.models.NOMINAL_BATTERY` and the other keys override it (e.g. a small
    ``capacity_mah`` for a pump near ERI)."""

    preset: Literal["NOMINAL"] | None = None
    capacity_mah: Real | None = Field(None, gt=0, description="usable charge when new, mAh")
    quiescent_ua: Real | None = Field(None, ge=0, description="quiescent current, µA")
    stroke_uc: Real | None = Field(None, ge=0, description="charge per stroke, µC")
    tone_uc: Real | None = Field(None, ge=0, description="charge per alarm tone, µC")
    telemetry_uc: Real | None = Field(None, ge=0, description="charge per telemetry session, µC")
    eri_mah: Real | None = Field(None, ge=0, description="ERI when remaining <= this, mAh")
    eos_mah: Real | None = Field(None, ge=0, description="EOS when remaining <= this, mAh")
    non_critical_tone: Duration | None = None
    critical_tone: Duration | None = None

    def build(self) -> BatteryModel:
        base = (
            {} if self.preset is None else {k: getattr(NOMINAL_BATTERY, k) for k in _BATTERY_FIELDS}
        )
        given = {k: getattr(self, k) for k in _BATTERY_FIELDS if getattr(self, k) is not None}
        values = {**base, **given}
        missing = [k for k in _BATTERY_FIELDS[:7] if k not in values]
        if missing:
            raise ValidationError(
                f'missing {", ".join(missing)} (or set preset = "NOMINAL")', missing[0]
            )
        return BatteryModel(**values)


_MODEL_FIELDS = (
    "name",
    "reservoir_ml",
    "stroke_nl",
    "min_rate_ml_per_day",
    "max_rate_ml_per_day",
    "low_reservoir_ml",
    "pump_path_ul",
)
PresetName = Literal["SYNCHROMED_II_20", "SYNCHROMED_II_40", "PROMETRA_II_20", "PROMETRA_II_40"]
assert set(PresetName.__args__) == set(PRESETS)  # type: ignore[attr-defined]


class ModelSpec(_Spec):
    """``itb.PumpModel`` fields; ``preset`` starts from a preset and the other keys override it.
    ``battery``: a table of BatteryModel fields, ``"NOMINAL"``, or ``"none"`` (no battery
    accounting); omitted = the preset's battery (none without a preset)."""

    preset: PresetName | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    reservoir_ml: Real | None = Field(None, gt=0, description="mL")
    stroke_nl: Whole | None = Field(None, gt=0, description="volume of one stroke, nL")
    min_rate_ml_per_day: Real | None = Field(None, gt=0, description="mL/day")
    max_rate_ml_per_day: Real | None = Field(None, gt=0, description="mL/day")
    low_reservoir_ml: Real | None = Field(
        None, ge=0, description="low-reservoir alarm threshold, mL"
    )
    pump_path_ul: Real | None = Field(None, ge=0, description="pump tubing dead volume, µL")
    battery: (
        Annotated[
            Annotated[Literal["NOMINAL", "none"], Tag("<name>")]
            | Annotated[BatterySpec, Tag("<table>")],
            Discriminator(_by_type),
        ]
        | None
    ) = Field(None, description='a table of BatteryModel fields, "NOMINAL", or "none"')

    def build(self) -> PumpModel:
        base: dict[str, Any] = {}
        if self.preset is not None:
            preset = PRESETS[self.preset]
            base = {k: getattr(preset, k) for k in _MODEL_FIELDS}
            base["battery"] = preset.battery
            if (
                any(getattr(self, k) is not None for k in _MODEL_FIELDS[1:])
                or self.battery is not None
            ):
                base["name"] = f"{preset.name}, customised"
        values = {
            **base,
            **{k: getattr(self, k) for k in _MODEL_FIELDS if getattr(self, k) is not None},
        }
        if self.battery == "NOMINAL":
            values["battery"] = NOMINAL_BATTERY
        elif self.battery == "none":
            values["battery"] = None
        elif isinstance(self.battery, BatterySpec):
            try:
                values["battery"] = self.battery.build()
            except ItbError as exc:
                raise type(exc)(
                    str(exc), f"battery.{exc.field}" if exc.field else "battery"
                ) from None
        missing = [k for k in _MODEL_FIELDS[:5] if k not in values]
        if missing:
            raise ValidationError(
                f'missing {", ".join(missing)} (or set preset = "SYNCHROMED_II_40" …)', missing[0]
            )
        return PumpModel(**values)


#: The core's exact model fields → the scenario's (for error messages).
_EXACT_MODEL_FIELDS = {
    "reservoir_nl": "reservoir_ml",
    "min_rate_nl_per_day": "min_rate_ml_per_day",
    "max_rate_nl_per_day": "max_rate_ml_per_day",
    "low_reservoir_nl": "low_reservoir_ml",
    "pump_path_nl": "pump_path_ul",
}


class PumpSpec(_Spec):
    """How the pump starts: ``itb.Pump(model, now=start, …)``."""

    model: Annotated[
        Annotated[PresetName, Tag("<name>")] | Annotated[ModelSpec, Tag("<table>")],
        Discriminator(_by_type),
    ] = Field(description="a preset name or a table of PumpModel fields")
    start: Time = Field(description="pump clock at the start (TOML local date-time)")
    reservoir_ml: Real = Field(ge=0, description="initial fill, mL")
    concentration_ug_per_ml: Whole = Field(
        ge=1, le=MAX_CONCENTRATION_UG_PER_ML, description="µg/mL"
    )
    program: ProgramSpec
    catheter_volume_ul: Real = Field(0.0, ge=0, description="catheter dead volume, µL")
    path_primed: Flag = Field(True, description="false: the fluid path starts full of saline")
    stroke_error_ppm: Whole = Field(
        0, description="physical stroke volume error, ppm (off-nominal pump)"
    )
    battery_mah: float | None = Field(
        None, ge=0, description="battery charge remaining as read, mAh (itb.Pump.from_reading)"
    )
    implanted: Time | None = Field(None, description="implant date (estimates the battery)")
    active_alarms: (
        dict[
            Literal[
                "eos", "reservoir_empty", "motor_stall", "battery_fault", "eri", "low_reservoir"
            ],
            Time,
        ]
        | None
    ) = Field(None, description="alarms sounding at the start: name = since when")

    @property
    def is_reading(self) -> bool:
        """Built with ``itb.Pump.from_reading`` (a pump as a programmer reads it)."""
        return (
            self.battery_mah is not None
            or self.implanted is not None
            or self.active_alarms is not None
        )

    def build_model(self) -> PumpModel:
        return PRESETS[self.model] if isinstance(self.model, str) else self.model.build()


# ----- actions ----------------------------------------------------------------------------------


class _Action(_Spec):
    at: Time = Field(
        description="when (pump clock); the pump is advanced to it, then the method is called"
    )
    do: str = Field(description="the Pump method to call")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the Pump call (programs built, names left out)."""
        out = {}
        for key in type(self).model_fields:
            if key in ("at", "do", "name"):
                continue
            value = getattr(self, key)
            out[key] = (
                value.build() if isinstance(value, (ContinuousProgram, FlexProgram)) else value
            )
        return out


class SetProgram(_Action):
    """``pump.set_program(program)``"""

    do: Literal["set_program"]
    program: ProgramSpec


class BolusAction(_Action):
    """``pump.bolus(dose_ug, duration, start)``; ``name`` lets a later ``cancel_bolus`` refer to it."""

    do: Literal["bolus"]
    dose_ug: Real = Field(gt=0, description="µg")
    duration: PositiveDuration
    start: Time | None = Field(None, description="default: at")
    name: str | None = Field(None, min_length=1)

    def kwargs(self) -> dict[str, Any]:
        out = super().kwargs()
        if out["start"] is None:
            del out["start"]
        return out


class CancelBolus(_Action):
    """``pump.cancel_bolus(id)`` of the bolus named ``name`` by an earlier action."""

    do: Literal["cancel_bolus"]
    name: str = Field(min_length=1, description="the name given to an earlier bolus action")


class Refill(_Action):
    """``pump.refill(added_ml, concentration_ug_per_ml, aspirated_ml, tolerance_ml, tolerance_pct)``"""

    do: Literal["refill"]
    added_ml: Real = Field(ge=0, description="mL")
    concentration_ug_per_ml: Whole = Field(
        ge=1, le=MAX_CONCENTRATION_UG_PER_ML, description="µg/mL"
    )
    aspirated_ml: Real | None = Field(
        None, ge=0, description="measured aspirate, mL (default: what is there)"
    )
    tolerance_ml: Real = Field(1.0, ge=0, description="mL")
    tolerance_pct: Real = Field(20.0, ge=0, description="% of expected")
    pocket_ml: Real = Field(
        0.0, ge=0, description="mL of the added volume injected into the pocket (a pocket fill)"
    )


class StartBridgeBolus(_Action):
    """``pump.start_bridge_bolus()`` (after a concentration increase)."""

    do: Literal["start_bridge_bolus"]
    name: str | None = Field(None, min_length=1)


class StartPrimingBolus(_Action):
    """``pump.start_priming_bolus()`` (saline path)."""

    do: Literal["start_priming_bolus"]
    name: str | None = Field(None, min_length=1)


class SetPatientBolusLimits(_Action):
    """``pump.set_patient_bolus_limits(dose_ug, duration, lockout, max_per_24h)``; without
    ``dose_ug`` the patient bolus is disabled."""

    do: Literal["set_patient_bolus_limits"]
    dose_ug: Real | None = Field(None, gt=0, description="µg per activation (omit to disable)")
    duration: PositiveDuration | None = Field(None, description="required with dose_ug")
    lockout: Duration = timedelta(0)
    max_per_24h: Whole | None = Field(
        None, ge=1, le=24, description="grants per rolling 24 h, 1 to 24; required with dose_ug"
    )

    def kwargs(self) -> dict[str, Any]:
        out = super().kwargs()
        for key in ("duration", "max_per_24h"):
            if out[key] is None:
                del out[key]
        return out


class PatientBolus(_Action):
    """``pump.patient_bolus()`` — an activation; granted or denied (an event says which)."""

    do: Literal["patient_bolus"]
    name: str | None = Field(None, min_length=1)


class _NoArgs(_Action):
    pass


class Suspend(_NoArgs):
    """``pump.suspend()``"""

    do: Literal["suspend"]


class Resume(_NoArgs):
    """``pump.resume()``"""

    do: Literal["resume"]


class InjectMotorStall(_NoArgs):
    """``pump.inject_motor_stall()``"""

    do: Literal["inject_motor_stall"]


class ClearFault(_NoArgs):
    """``pump.clear_fault()``"""

    do: Literal["clear_fault"]


class ReviseCatheter(_Action):
    """``pump.revise_catheter(volume_ul)``"""

    do: Literal["revise_catheter"]
    volume_ul: Real = Field(ge=0, description="new catheter dead volume, µL")


class ReplaceFluidPath(_Action):
    """``pump.replace_fluid_path(catheter_volume_ul)`` — a new implant: tubing and catheter
    hold saline."""

    do: Literal["replace_fluid_path"]
    catheter_volume_ul: Real = Field(ge=0, description="new catheter dead volume, µL")


class InjectOcclusion(_Action):
    """``pump.inject_occlusion(pass_pct)`` — 0 % is a complete occlusion."""

    do: Literal["inject_occlusion"]
    pass_pct: Real = Field(0.0, ge=0, lt=100, description="% of the flow that passes")


class ClearOcclusion(_NoArgs):
    """``pump.clear_occlusion()``"""

    do: Literal["clear_occlusion"]


class InjectLeak(_Action):
    """``pump.inject_leak(position_ul, disconnection)``"""

    do: Literal["inject_leak"]
    position_ul: Real = Field(ge=0, description="µL of catheter from the pump connector")
    disconnection: Flag = False


class InjectDisconnection(_Action):
    """``pump.inject_disconnection(position_ul)``"""

    do: Literal["inject_disconnection"]
    position_ul: Real = Field(0.0, ge=0, description="µL of catheter from the pump connector")


class ClearLeak(_NoArgs):
    """``pump.clear_leak()``"""

    do: Literal["clear_leak"]


class InjectTipMigration(_NoArgs):
    """``pump.inject_tip_migration()``"""

    do: Literal["inject_tip_migration"]


class ClearTipMigration(_NoArgs):
    """``pump.clear_tip_migration()``"""

    do: Literal["clear_tip_migration"]


class InjectBatteryFault(_NoArgs):
    """``pump.inject_battery_fault()``"""

    do: Literal["inject_battery_fault"]


class ClearBatteryFault(_NoArgs):
    """``pump.clear_battery_fault()``"""

    do: Literal["clear_battery_fault"]


class TelemetrySession(_NoArgs):
    """``pump.telemetry_session()``"""

    do: Literal["telemetry_session"]


_ACTION_CLASSES = (
    SetProgram,
    BolusAction,
    CancelBolus,
    Refill,
    StartBridgeBolus,
    StartPrimingBolus,
    SetPatientBolusLimits,
    PatientBolus,
    Suspend,
    Resume,
    InjectMotorStall,
    ClearFault,
    ReviseCatheter,
    TelemetrySession,
    ReplaceFluidPath,
    InjectOcclusion,
    ClearOcclusion,
    InjectLeak,
    InjectDisconnection,
    ClearLeak,
    InjectTipMigration,
    ClearTipMigration,
    InjectBatteryFault,
    ClearBatteryFault,
)
#: The fault and path-replacement actions (docs: guide/faults.md): drawn by the testing kit's
#: state machine (its ``fault`` rule) and by the strategies only on request
#: (``fault_actions``, ``scenarios(faults=True)``).
FAULT_ACTIONS: tuple[str, ...] = (
    "replace_fluid_path",
    "inject_occlusion",
    "clear_occlusion",
    "inject_leak",
    "inject_disconnection",
    "clear_leak",
    "inject_tip_migration",
    "clear_tip_migration",
    "inject_battery_fault",
    "clear_battery_fault",
)
#: ``do`` name → action class (every Pump action a scenario can call).
ACTIONS: dict[str, type[_Action]] = {
    c.model_fields["do"].annotation.__args__[0]: c  # type: ignore[union-attr]
    for c in _ACTION_CLASSES
}
#: One scenario action: the tagged union of the action classes above (the table is the one list).
if TYPE_CHECKING:  # a union built from a tuple is not a static type; statically, any action
    Action = _Action
else:
    Action = Annotated[Union[_ACTION_CLASSES], Field(discriminator="do")]


class RunSpec(_Spec):
    """How far to run: ``until`` (default: the last action's time)."""

    until: Time | None = None


class ScenarioSpec(_Spec):
    """A whole scenario file (see :mod:`itb.scenario`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="itb scenario")

    pump: PumpSpec
    actions: list[Action] = Field(default_factory=list, description="in time order")
    run: RunSpec = Field(default_factory=RunSpec)


_ADAPTER = TypeAdapter(ScenarioSpec)
_TAGS = {"continuous", "flex", "<name>", "<table>", *ACTIONS}


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of scenario files, for editors that check TOML against one."""
    schema = _ADAPTER.json_schema()
    schema.update(
        title="itb scenario",
        description="itb scenario file (TOML): [pump], [[actions]] in time order, [run]. Simulation only: not a medical device.",
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
