"""Pump models and presets.

Every preset figure is **nominal and editable** (``dataclasses.replace(preset, ...)``): public,
approximate figures (sources: ``docs: facts.md#implantable-pumps``), not a device specification. Where no public
figure was found the value is a documented placeholder:

======================  =============  ==========  ==========  =========  ========  =========
preset                  reservoir mL   stroke nL   min mL/d    max mL/d   low mL    path µL
======================  =============  ==========  ==========  =========  ========  =========
SYNCHROMED_II_20        20             2000 (*)    0.048       24.0       2.0       100 (*)
SYNCHROMED_II_40        40             2000 (*)    0.048       24.0       2.0       100 (*)
PROMETRA_II_20          20             2000 (*)    0.048 (*)   24.0 (*)   3.0       100 (*)
PROMETRA_II_40          40             2000 (*)    0.048 (*)   24.0 (*)   3.0       100 (*)
======================  =============  ==========  ==========  =========  ========  =========

(*) placeholder, not from a public source. Every preset has :data:`NOMINAL_BATTERY` (assumed
figures tuned so ~0.5 mL/day lasts ≈ 6.5 years with ERI ≈ 90 days before EOS, matching the public
"typically 5–7 years, ERI about 90 days before EOS"; not device figures). SynchroMed figures: reservoir, flow range and the
2 mL low-reservoir alarm are public nominal values (from memory, unverified). Prometra: the
3.0 mL refill point is from the Flowonix PTC guide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from . import _core
from ._units import (
    ml_to_nl,
    nl_to_ml,
    nl_to_ul,
    pc_per_ms_to_ua,
    pc_to_mah,
    pc_to_uc,
    ul_to_nl,
)

__all__ = [
    "BatteryModel",
    "NOMINAL_BATTERY",
    "PumpModel",
    "SYNCHROMED_II_20",
    "SYNCHROMED_II_40",
    "PROMETRA_II_20",
    "PROMETRA_II_40",
    "PRESETS",
]


@dataclass(frozen=True)
class BatteryModel:
    """Battery figures in clinical units (validated on creation).

    Drain = ``quiescent_ua`` × time + ``stroke_uc`` per stroke + ``tone_uc`` per alarm tone +
    ``telemetry_uc`` per telemetry session. ERI (elective replacement indicator) when remaining
    ≤ ``eri_mah``; EOS (end of service: delivery stops for good) when remaining ≤ ``eos_mah``.
    Active alarms repeat a tone every ``non_critical_tone`` / ``critical_tone``.
    Exact core units: pC and pC/ms; mAh are rounded half-even to 1e-11 mAh (0.036 pC).
    """

    capacity_mah: float
    quiescent_ua: float
    stroke_uc: float
    tone_uc: float
    telemetry_uc: float
    eri_mah: float
    eos_mah: float
    non_critical_tone: timedelta = timedelta(hours=1)
    critical_tone: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        exact = self._convert()
        _validate({**_PROBE, "battery": exact})
        object.__setattr__(self, "_exact", exact)  # validated once; the dataclass is frozen

    def exact(self) -> dict[str, Any]:
        """The battery in the core's exact units (pC, pC/ms, ms): a fresh dict."""
        return dict(self._exact)  # type: ignore[attr-defined]

    def _convert(self) -> dict[str, Any]:
        from ._time import duration_ms
        from ._units import scaled

        return {
            "capacity_pc": scaled(self.capacity_mah, 11, "capacity_mah", "mAh") * 36,
            "quiescent_pc_per_ms": scaled(self.quiescent_ua, 3, "quiescent_ua", "µA"),
            "stroke_pc": scaled(self.stroke_uc, 6, "stroke_uc", "µC"),
            "tone_pc": scaled(self.tone_uc, 6, "tone_uc", "µC"),
            "telemetry_pc": scaled(self.telemetry_uc, 6, "telemetry_uc", "µC"),
            "eri_pc": scaled(self.eri_mah, 11, "eri_mah", "mAh") * 36,
            "eos_pc": scaled(self.eos_mah, 11, "eos_mah", "mAh") * 36,
            "non_critical_tone_ms": duration_ms(self.non_critical_tone, "non_critical_tone"),
            "critical_tone_ms": duration_ms(self.critical_tone, "critical_tone"),
        }

    @classmethod
    def from_exact(cls, d: dict[str, Any]) -> BatteryModel:
        return cls(
            capacity_mah=pc_to_mah(d["capacity_pc"]),
            quiescent_ua=pc_per_ms_to_ua(d["quiescent_pc_per_ms"]),
            stroke_uc=pc_to_uc(d["stroke_pc"]),
            tone_uc=pc_to_uc(d["tone_pc"]),
            telemetry_uc=pc_to_uc(d["telemetry_pc"]),
            eri_mah=pc_to_mah(d["eri_pc"]),
            eos_mah=pc_to_mah(d["eos_pc"]),
            non_critical_tone=timedelta(milliseconds=d["non_critical_tone_ms"]),
            critical_tone=timedelta(milliseconds=d["critical_tone_ms"]),
        )


#: Core (exact) field names → the parameter names of PumpModel / BatteryModel, so an error
#: names the argument the caller passed (docs: decisions/field-reports.md#an-error-names-the-refused-calls-parameter).
_PY_FIELD = {
    "reservoir_nl": "reservoir_ml",
    "min_rate_nl_per_day": "min_rate_ml_per_day",
    "max_rate_nl_per_day": "max_rate_ml_per_day",
    "low_reservoir_nl": "low_reservoir_ml",
    "pump_path_nl": "pump_path_ul",
    "battery.capacity_pc": "capacity_mah",
    "battery.quiescent_pc_per_ms": "quiescent_ua",
    "battery.stroke_pc": "stroke_uc",
    "battery.tone_pc": "tone_uc",
    "battery.telemetry_pc": "telemetry_uc",
    "battery.eri_pc": "eri_mah",
    "battery.eos_pc": "eos_mah",
    "battery.non_critical_tone_ms": "non_critical_tone",
    "battery.critical_tone_ms": "critical_tone",
}


def _validate(exact: dict[str, Any], build: Any = _core.validate_model) -> Any:
    """Validate exact fields in the core (``build(exact)``, returned); errors name the Python
    parameter."""
    from .errors import ItbError

    try:
        return build(exact)
    except ItbError as err:
        field = _PY_FIELD.get(err.field, err.field)
        if field != err.field:  # the same message about the parameter the caller passed
            raise type(err)(str(err).replace(err.field, field, 1), field) from None
        raise


# A valid model used to validate a battery on its own.
_PROBE = {
    "name": "probe",
    "reservoir_nl": 1,
    "stroke_nl": 1,
    "min_rate_nl_per_day": 1,
    "max_rate_nl_per_day": 1,
    "low_reservoir_nl": 0,
    "pump_path_nl": 0,
}

#: Nominal battery of the presets (assumptions, not device figures): 500 mAh usable; 8 µA
#: quiescent (≈ 70 mAh/year); 200 µC per 2 µL stroke (≈ 5 mAh/year at 0.5 mL/day); 5 mC per
#: alarm tone; 20 mC per telemetry session; EOS reserve 10 mAh; ERI at 32 mAh remaining
#: (≈ 90 days of typical drain plus hourly ERI tones before EOS). At 0.5 mL/day this lasts
#: about 6.5 years.
NOMINAL_BATTERY = BatteryModel(
    capacity_mah=500.0,
    quiescent_ua=8.0,
    stroke_uc=200.0,
    tone_uc=5000.0,
    telemetry_uc=20000.0,
    eri_mah=32.0,
    eos_mah=10.0,
)


@dataclass(frozen=True)
class PumpModel:
    """Hardware figures of a pump model, in clinical units (validated on creation).

    ``stroke_nl`` is the volume of one pump stroke (nL); rates are mL/day; ``pump_path_ul`` is the
    dead volume of the pump's internal tubing (µL); ``battery=None`` means no battery accounting
    (never ERI/EOS).
    """

    name: str
    reservoir_ml: float
    stroke_nl: int
    min_rate_ml_per_day: float
    max_rate_ml_per_day: float
    low_reservoir_ml: float = 2.0
    pump_path_ul: float = 0.0
    battery: BatteryModel | None = None

    def __post_init__(self) -> None:
        exact = self._convert()
        # validated once (the dataclass is frozen): the exact dict, and the core's own model
        # that every Pump built from this one shares
        object.__setattr__(self, "_core_model", _validate(exact, _core.Model))
        object.__setattr__(self, "_exact", exact)

    def exact(self) -> dict[str, Any]:
        """The model in the core's exact integer units (nL, nL/day): a fresh dict."""
        exact = dict(self._exact)  # type: ignore[attr-defined]
        if exact["battery"] is not None:
            exact["battery"] = dict(exact["battery"])
        return exact

    def _core_exact(self) -> dict[str, Any]:
        """The cached, validated exact dict (not to be mutated): what a Pump is built from."""
        return self._exact  # type: ignore[no-any-return, attr-defined]

    def _convert(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reservoir_nl": ml_to_nl(self.reservoir_ml, "reservoir_ml"),
            "stroke_nl": _int(self.stroke_nl, "stroke_nl"),
            "min_rate_nl_per_day": ml_to_nl(self.min_rate_ml_per_day, "min_rate_ml_per_day"),
            "max_rate_nl_per_day": ml_to_nl(self.max_rate_ml_per_day, "max_rate_ml_per_day"),
            "low_reservoir_nl": ml_to_nl(self.low_reservoir_ml, "low_reservoir_ml"),
            "pump_path_nl": ul_to_nl(self.pump_path_ul, "pump_path_ul"),
            "battery": None if self.battery is None else self.battery.exact(),
        }

    @classmethod
    def from_exact(cls, d: dict[str, Any]) -> PumpModel:
        """Inverse of :meth:`exact` (integer nL fields back to clinical units). Models are
        immutable, so the same exact fields give the same (cached) model: restoring many
        snapshots of a few models converts and validates each model once."""
        battery = d.get("battery")
        key = (
            tuple(sorted((k, v) for k, v in d.items() if k != "battery")),
            None if battery is None else tuple(sorted(battery.items())),
        )
        model = _FROM_EXACT.get(key)
        if model is None:
            model = cls._build_from_exact(d)
            if len(_FROM_EXACT) >= 256:
                _FROM_EXACT.clear()
            _FROM_EXACT[key] = model
        return model

    @classmethod
    def _build_from_exact(cls, d: dict[str, Any]) -> PumpModel:
        return cls(
            name=d["name"],
            reservoir_ml=nl_to_ml(d["reservoir_nl"]),
            stroke_nl=d["stroke_nl"],
            min_rate_ml_per_day=nl_to_ml(d["min_rate_nl_per_day"]),
            max_rate_ml_per_day=nl_to_ml(d["max_rate_nl_per_day"]),
            low_reservoir_ml=nl_to_ml(d["low_reservoir_nl"]),
            pump_path_ul=nl_to_ul(d["pump_path_nl"]),
            battery=None if d.get("battery") is None else BatteryModel.from_exact(d["battery"]),
        )


#: PumpModel.from_exact's cache (bounded): exact fields → model.
_FROM_EXACT: dict[tuple[Any, ...], PumpModel] = {}


def _int(value: object, field: str) -> int:
    from .errors import ValidationError

    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field}: expected an int, got {value!r}", field)
    return value


def _preset(family: str, reservoir_ml: float, low_reservoir_ml: float) -> PumpModel:
    return PumpModel(
        name=f"{family} {int(reservoir_ml)} mL (nominal)",
        reservoir_ml=reservoir_ml,
        stroke_nl=2000,
        min_rate_ml_per_day=0.048,
        max_rate_ml_per_day=24.0,
        low_reservoir_ml=low_reservoir_ml,
        pump_path_ul=100.0,
        battery=NOMINAL_BATTERY,
    )


SYNCHROMED_II_20 = _preset("SynchroMed II", 20.0, low_reservoir_ml=2.0)
SYNCHROMED_II_40 = _preset("SynchroMed II", 40.0, low_reservoir_ml=2.0)
PROMETRA_II_20 = _preset("Prometra II", 20.0, low_reservoir_ml=3.0)
PROMETRA_II_40 = _preset("Prometra II", 40.0, low_reservoir_ml=3.0)
PRESETS = {
    "SYNCHROMED_II_20": SYNCHROMED_II_20,
    "SYNCHROMED_II_40": SYNCHROMED_II_40,
    "PROMETRA_II_20": PROMETRA_II_20,
    "PROMETRA_II_40": PROMETRA_II_40,
}
