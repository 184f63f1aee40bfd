"""Type stubs of ``itb._core``, the pyo3 extension over the Rust crate ``itb-core``.

Everything here is in the core's **exact integer units**; the public, clinical-unit API is
:mod:`itb` (``itb.Pump`` wraps :class:`Pump`). Units:

===============  ==========================================================
time             ``int`` ms on the pump clock (naive; 0 = 1970-01-01 00:00)
volume           ``int`` nL (1 mL = 1_000_000 nL); physical ledgers in fL (1 nL = 1_000_000 fL)
concentration    ``int`` µg/mL (1..=100_000; 0 = saline in the fluid path)
drug mass        ``int`` pg (= nL × µg/mL); physical ledgers in ag (1 pg = 1_000_000 ag)
dose rate        ``int`` ng/day
volume rate      ``int`` nL/day
accumulator      ``int`` nL·ms/day
===============  ==========================================================

Errors are raised as the classes of :mod:`itb.errors` (``ValidationError``,
``ProgrammingError``, ``ReservoirError``, ``SnapshotError``); a rejected call changes nothing.
Simulation only — not a medical device.
"""

from collections.abc import Sequence
from typing import Any, Literal, TypedDict, Union, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "EventLog",
    "FleetColumns",
    "Model",
    "Program",
    "Pump",
    "doses_f64",
    "durations_ms",
    "times_ms",
    "scaled",
    "project_many",
    "simulate_many",
    "validate_model",
    "validate_program",
    "volume_rate_nl_per_day",
    "SNAPSHOT_VERSION",
    "MS_PER_DAY",
    "LIMITS",
    "__version__",
]

__version__: str
"""The product's version: the Cargo workspace version (the same as the distribution's)."""

SNAPSHOT_VERSION: int
"""Version of the snapshot format this build writes and reads (currently 2)."""

MS_PER_DAY: int
"""Milliseconds per day: 86_400_000."""

LIMITS: dict[str, int]
"""Every limit and unit factor the core checks against, by name (``rust/core/src/limits.rs``):
``MS_PER_DAY``, ``MS_PER_WEEK``, ``NL_PER_ML``, ``FL_PER_NL``, ``PC_PER_MAH``, ``MIN_TIME_MS``,
``MAX_TIME_MS``, ``MAX_CONCENTRATION_UG_PER_ML``, ``MAX_DOSE_NG_PER_DAY``, ``MAX_BOLUS_NG``,
``MAX_STEPS_PER_DAY``, ``MAX_PATIENT_BOLUSES_PER_DAY``, ``MAX_CATHETER_NL``,
``MAX_STROKE_ERROR_PPM``, ``MAX_RESERVOIR_NL``, ``MAX_STROKE_NL``, ``MAX_RATE_NL_PER_DAY``,
``MAX_PATH_NL``, ``FORECAST_MS``, ``SNAPSHOT_VERSION``. Python reads them through
:mod:`itb._limits`."""

class _BatteryDict(TypedDict):
    """A battery in exact units (what ``itb.models.BatteryModel.exact()`` returns)."""

    capacity_pc: int
    """Usable charge when new (pC; 1 mAh = 3.6e12 pC)."""
    quiescent_pc_per_ms: int
    """Quiescent drain (pC/ms = nA)."""
    stroke_pc: int
    """Charge per stroke (pC)."""
    tone_pc: int
    """Charge per alarm tone (pC)."""
    telemetry_pc: int
    """Charge per telemetry session (pC)."""
    eri_pc: int
    """ERI when remaining <= this (pC), eos_pc..capacity."""
    eos_pc: int
    """EOS when remaining <= this (pC), 0..capacity."""
    non_critical_tone_ms: int
    """Tone interval of non-critical alarms (ms), 1 s..=7 days."""
    critical_tone_ms: int
    """Tone interval of critical alarms (ms), 1 s..=7 days."""

class _ModelDict(TypedDict):
    """A pump model in exact integer units (what ``itb.PumpModel.exact()`` returns)."""

    name: str
    """1..=200 characters."""
    reservoir_nl: int
    """Reservoir capacity (nL), 1..=1_000_000_000."""
    stroke_nl: int
    """Volume of one stroke (nL), 1..=1_000_000."""
    min_rate_nl_per_day: int
    """Smallest non-zero programmable rate (nL/day), 1..=max_rate_nl_per_day."""
    max_rate_nl_per_day: int
    """Largest total rate, basal + boluses (nL/day), at most one stroke per ms."""
    low_reservoir_nl: int
    """Low-reservoir alarm threshold (nL), 0..=reservoir_nl."""
    pump_path_nl: int
    """Dead volume of the pump's internal tubing (nL), 0..=100_000_000."""
    battery: _BatteryDict | None
    """Battery figures, or None for no battery accounting (never ERI/EOS)."""

_ModelIn = Union[_ModelDict, dict[str, Any]]
"""A model as a plain ``dict`` with the fields of :class:`_ModelDict` (must be a real dict)."""

_ContinuousProgram = tuple[Literal["continuous"], int]
"""``("continuous", ng_per_day)``."""

_FlexProgramIn = tuple[Literal["flex"], Literal["day", "week"], Sequence[tuple[int, int]]]
"""``("flex", period, [(offset_ms, ng_per_day), …])``: offsets from the period start
(day: 00:00; week: Monday 00:00), first at 0, strictly increasing."""

_FlexProgramOut = tuple[Literal["flex"], Literal["day", "week"], list[tuple[int, int]]]

_ProgramIn = Union[_ContinuousProgram, _FlexProgramIn]
_ProgramOut = Union[_ContinuousProgram, _FlexProgramOut]

_RawEvent = tuple[int, str, Literal["critical", "non_critical"] | None, dict[str, int | str], int]
"""``(time_ms, kind, severity, data, seq)``. Events are in causal order: by time; at the same ms,
calls in call order, each followed by what it caused; events raised together inside the
simulation are ordered by this fixed kind order: ``stroke_batch``, ``program_changed``,
``bolus_started``, ``bolus_completed``, ``bolus_cancelled``, ``bolus_adjusted``,
``patient_bolus_granted``, ``patient_bolus_denied``, ``low_reservoir``,
``reservoir_empty``, ``refilled``, ``refill_discrepancy``, ``concentration_changed``,
``drug_at_tip``, ``eri``, ``eos``, ``suspended``, ``resumed``, ``fault``, ``fault_cleared``,
``telemetry_session``, ``path_replaced``. ``seq`` is 1, 2, 3, … over the pump's life (strictly increasing,
kept in snapshots). ``severity`` is ``"non_critical"`` (low_reservoir, refill_discrepancy,
eri), ``"critical"`` (reservoir_empty, fault, eos) or None. ``data`` values are ints whose key suffix is the unit (``volume_nl``, ``first_ms``…) or
text (``reason``, ``fault``, ``bolus_kind``)."""

_BolusKind = Literal["timed", "bridge", "priming", "patient"]

_RawBolus = tuple[int, int, int, int, int, int, int, int, _BolusKind]
"""``(id, start_ms, end_ms, volume_nl, dose_pg, requested_ng, rate_nl_per_day, duration_ms, kind)``:
``dose_pg`` is what it really delivers (volume × concentration), ``requested_ng`` what was asked."""

_BolusPlan = tuple[int, int, int]
"""``(volume_nl, duration_ms, rate_nl_per_day)``."""

_PatientLimits = tuple[int, int, int, int]
"""``(dose_ng, duration_ms, lockout_ms, max_per_24h)``: dose 1..=10**13 ng, duration 1 ms..=1 day,
lockout 0..=1 day between granted activations, 1..=24 grants per rolling 24 h."""

_PatientReason = Literal[
    "granted",
    "not_enabled",
    "suspended",
    "fault",
    "reservoir_empty",
    "lockout",
    "daily_maximum",
    "would_exceed_max_rate",
    "end_of_service",
    "invalid_dose",
]

_Projection = tuple[
    int | None, int | None, int | None, int | None, int | None, int | None, int | None
]
"""``(next_stroke_ms, low_reservoir_ms, reservoir_empty_ms, drug_at_tip_ms, eri_ms, eos_ms,
physically_dry_ms)``."""

def simulate_many(
    pumps: list[Pump], until_ms: int, threads: int | None = None
) -> dict[str, npt.NDArray[Any]]:
    """Advance clones of ``pumps`` to ``until_ms`` on a rayon pool (``threads``; None: all cores)
    with the GIL released. Returns numpy columns, one row per pump: ``strokes``, ``delivered_nl``,
    ``delivered_ug`` (float64), ``reservoir_nl``, ``battery_remaining_pc`` (-1: no battery),
    ``events``, and int64 ms times (``i64::MIN`` = NaT: did not happen) ``first_low_reservoir_ms``,
    ``first_reservoir_empty_ms``, ``eri_ms``, ``eos_ms``, ``eri_forecast_ms``, ``eos_forecast_ms``
    (forecast at the start with ``assume_refills``, 30-year horizon). Thread-count independent."""

def project_many(
    pumps: list[Pump], horizon_ms: int, mode: str, threads: int | None = None
) -> dict[str, npt.NDArray[np.int64]]:
    """The projection of each of ``pumps`` (not changed) on a rayon pool with the GIL released:
    the columns of :meth:`FleetColumns.forecast` (``next_stroke_ms`` … ``eos_ms``, ``<alarm>_since_ms``;
    ``i64::MIN`` = none). ``mode``: ``"as_programmed"``, ``"refills_on_time"`` or
    ``"max_patient_boluses"``. Thread-count independent."""

@final
class FleetColumns:
    """A fleet held as columns, converted once to exact integers (no pump object per row).
    Row i: ``models[model[i]]`` at ``now_ms[i]`` with ``reservoir_ml[i]`` at ``concentration[i]``
    µg/mL on ``programs[program[i]]`` (exact program tuples) when ``program[i] >= 0``, else a
    continuous ``ug_per_day[i]``; errors name ``column[row]``."""

    def __new__(
        cls,
        models: list[_ModelIn],
        model: npt.NDArray[np.int64],
        now_ms: npt.NDArray[np.int64],
        reservoir_ml: npt.NDArray[np.float64],
        concentration: npt.NDArray[np.int64],
        ug_per_day: npt.NDArray[np.float64],
        programs: list[_ProgramIn],
        program: npt.NDArray[np.int64],
        battery_mah: npt.NDArray[np.float64] | None = None,
        implanted_ms: npt.NDArray[np.int64] | None = None,
        since_ms: list[npt.NDArray[np.int64] | None] | None = None,
    ) -> FleetColumns: ...
    def __len__(self) -> int: ...
    def forecast(
        self, horizon_ms: int, assume_refills: bool = False, threads: int | None = None
    ) -> dict[str, npt.NDArray[np.int64]]:
        """Per row, built and projected in a rayon worker with the GIL released: ``next_stroke_ms``,
        ``low_reservoir_ms``, ``reservoir_empty_ms``, ``eri_ms``, ``eos_ms``, ``physically_dry_ms``
        (``i64::MIN`` = none)."""
    def simulate(self, until_ms: int, threads: int | None = None) -> dict[str, npt.NDArray[Any]]:
        """:func:`simulate_many` of every row's pump (the same columns)."""

def scaled(value: float, power: int, field: str, unit: str = "") -> int:
    """``value × 10**power`` as an exact int, from the float's shortest decimal form, rounded half
    to even (µg → ng: ``power=3``; mL → nL: ``power=6``). NaN, ±inf, negatives and results above
    ``2**63 - 1`` raise ``ValidationError`` naming ``field`` (``unit`` is used in messages)."""

def times_ms(values: Any, prefix: str) -> npt.NDArray[np.int64]:
    """``[itb._time.to_ms(v, f"{prefix}[{i}]") for i, v in enumerate(values)]`` as int64 (naive
    datetimes and ints converted in Rust, anything else by ``to_ms``: the same errors)."""

def durations_ms(values: Any, prefix: str) -> npt.NDArray[np.int64]:
    """``[itb._time.duration_ms(v, f"{prefix}[{i}]", allow_zero=False) for …]`` as int64."""

def doses_f64(values: Any) -> npt.NDArray[np.float64]:
    """``bolus_many``'s doses: every entry checked to be a number (``itb._units.check_dose``,
    errors naming ``doses_ug[i]``), then ``float(entry)``, as float64."""

def validate_program(program: _ProgramIn) -> None:
    """Validate a program's shape: steps start at offset 0, strictly increase, stay within the
    period, at most 13 start in a day, doses 0..=10**13 ng/day. Raises ``ValidationError``."""

def validate_model(model: _ModelIn) -> None:
    """Raise ``ValidationError`` (naming the field and its allowed range) unless the model is valid."""

def volume_rate_nl_per_day(ng_per_day: int, concentration: int) -> int:
    """Volume rate (nL/day) of a dose rate (ng/day) at ``concentration`` µg/mL:
    ``round_half_even(ng_per_day × 1000 / concentration)``. A concentration of 0 is treated as 1."""

@final
class EventLog:
    """Events of one advance kept as core events (no Python object per event until asked)."""

    def __len__(self) -> int: ...
    def get(self, i: int) -> _RawEvent:
        """Event ``i`` (negative counts from the end) as a raw tuple; ``IndexError`` if out of range."""
    def tuples(self) -> list[_RawEvent]:
        """Every event as a raw tuple."""
    def select(self, kinds: Sequence[str]) -> EventLog:
        """The events whose kind is one of ``kinds`` (unknown names match nothing)."""
    def slice(self, start: int, stop: int) -> EventLog:
        """Events ``start..stop`` (clamped)."""
    def concat(self, other: EventLog) -> EventLog:
        """This log followed by ``other``."""
    @staticmethod
    def kind_names() -> list[str]:
        """Kind names in code order (the fixed kind order)."""
    def columns(self) -> dict[str, Any]:
        """``time_ms`` int64, ``seq`` uint64, ``kind`` uint8 codes, ``severity`` uint8 (0 none,
        1 non_critical, 2 critical), ``ints``: name → (int64 values, bool present), ``texts``:
        name → list of str or None."""

@final
class Model:
    """A pump model converted and validated once (``itb.PumpModel`` keeps one): building a pump
    from it does not convert or validate the model again. Pickles as its exact dict."""

    def __new__(cls, exact: _ModelIn) -> Model:
        """Raise ``ValidationError`` (naming the field) unless the model is valid."""
    def exact(self) -> _ModelDict:
        """The exact dict (a fresh one)."""

@final
class Program:
    """A basal program whose shape is validated once (``itb.Continuous``/``itb.Flex`` keep one).
    Pickles as its exact tuple."""

    def __new__(cls, exact: _ProgramIn) -> Program:
        """Raise ``ValidationError`` (naming the step) unless the shape is valid (as
        :func:`validate_program`)."""
    def exact(self) -> _ProgramIn:
        """The exact tuple (a fresh one)."""

@final
class Pump:
    """The exact pump state machine of ``itb-core`` (integer units; see the module docstring).

    Not picklable itself; ``itb.Pump`` pickles through :meth:`snapshot`/:meth:`restore`.
    """

    def __new__(
        cls,
        *,
        model: _ModelIn,
        now_ms: int,
        reservoir_nl: int,
        concentration: int,
        program: _ProgramIn,
        catheter_nl: int = 0,
        stroke_error_ppm: int = 0,
        path_primed: bool = True,
    ) -> Pump:
        """Build a pump at ``now_ms`` with ``reservoir_nl`` of drug at ``concentration`` µg/mL. The
        fluid path (pump tubing + ``catheter_nl`` of catheter, 0..=10_000_000 nL) starts full of
        the same drug if ``path_primed``, else of saline. ``stroke_error_ppm`` (±500_000) makes each
        stroke move q·(1 + e/10**6) of real fluid while the firmware still counts q. Filling at or
        below the low threshold stamps alarms at ``now_ms``.

        Raises ``ValidationError`` (bad value), ``ProgrammingError`` (a step rate outside the
        model's limits), ``ReservoirError`` (overfill)."""

    @staticmethod
    def build(
        model: Model,
        now: Any,
        reservoir_ml: Any,
        concentration_ug_per_ml: Any,
        program: Program,
        catheter_volume_ul: Any,
        stroke_error_ppm: Any,
        path_primed: Any,
    ) -> Pump:
        """``itb.Pump(...)`` in one call: the clinical arguments are converted by the rules (and
        with the errors) of ``itb._time.to_ms``, ``itb._units.ml_to_nl``/``concentration``/
        ``ul_to_nl`` and ``itb._units.integer`` — the common types in Rust, anything else by those
        functions; ``path_primed`` by truth value. Then as the constructor."""

    # ----- calls ------------------------------------------------------------------------------
    def set_program(self, program: Program | _ProgramIn) -> None:
        """Replace the basal program from now on (the accumulator remainder carries over).
        Stamps ``program_changed`` (data ``max_rate_nl_per_day``) at now."""

    def bolus(self, dose_ng: int, duration_ms: int, start_ms: int | None = None) -> int:
        """Schedule a bolus of ``dose_ng`` (1..=10**13 ng) over ``duration_ms`` (>= 1) from
        ``start_ms`` (None = now; must be >= now). Its volume (nL, half-even) is derived now at the
        current concentration (a dose that rounds to 0 nL is a ``ValidationError``) and re-derived
        if the concentration changes before it starts. Basal + boluses above the model's max rate
        is a ``ProgrammingError``; an empty reservoir a ``ReservoirError``. Returns the bolus id."""

    def bolus_ug(self, dose_ug: Any, duration: Any, start: Any = None) -> int:
        """:meth:`bolus` from ``itb.Pump.bolus``'s arguments (µg; timedelta or int ms; None,
        naive datetime or int ms), converted by the rules and errors of ``itb._units.ug_to_ng``,
        ``itb._time.duration_ms`` (non-zero) and ``itb._time.to_ms``."""

    def bolus_many(
        self, doses_ug: Sequence[float], durations_ms: Sequence[int], starts_ms: Sequence[int]
    ) -> list[int]:
        """Many timed boluses at once, all or nothing, one rate check; errors name the entry
        (``doses_ug[i]``, ``durations[i]``, ``starts[i]``). Returns the ids in order."""

    def bolus_many_arrays(
        self,
        doses_ug: npt.NDArray[np.float64],
        durations_ms: npt.NDArray[np.int64],
        starts_ms: npt.NDArray[np.int64],
    ) -> list[int]:
        """:meth:`bolus_many` from numpy columns (float64 µg, int64 ms, int64 ms), read in place."""

    def cancel_bolus(self, bolus_id: int) -> None:
        """Cancel a scheduled or running bolus (``ValidationError`` if unknown/finished).
        Stamps ``bolus_cancelled`` at now; what it already added stays delivered."""

    def refill(
        self,
        added_nl: int,
        concentration: int,
        aspirated_nl: int | None = None,
        tolerance_nl: int = 1_000_000,
        tolerance_ppm: int = 200_000,
        pocket_nl: int = 0,
    ) -> tuple[int, int, bool, str | None]:
        """Aspirate the reservoir (``aspirated_nl`` = the measured aspirate; None = what is physically
        there), then fill ``added_nl`` at ``concentration`` µg/mL. Re-arms the low alarm and resumes
        delivery. A discrepancy |aspirated − expected| > max(``tolerance_nl``, ``tolerance_ppm`` ×
        expected / 10**6) is flagged. Stamps ``refilled`` (data ``added_nl``, ``aspirated_nl``,
        ``expected_nl``), ``concentration_changed`` if it changed, and ``refill_discrepancy``
        (non-critical; ``discrepancy_nl``, ``reason``) if flagged. Overfill is a
        ``ReservoirError``. On a concentration change, boluses not yet started are re-derived
        from their requested dose (``bolus_adjusted``) and running ones cancelled
        (``bolus_cancelled``, reason ``concentration_changed``). Returns ``(expected_nl,
        aspirated_nl, flagged, reason or None)``."""

    # ----- time -------------------------------------------------------------------------------
    def advance_to(self, until_ms: int) -> list[_RawEvent]:
        """Run to ``until_ms`` (>= now): every stroke with time <= ``until_ms`` fires. Returns the
        events stamped by calls since the last advance (call order) then those of (now, until]
        (by time, then kind order), numbered. Spans over one day run with the GIL released."""

    def advance_to_log(self, until_ms: int) -> EventLog:
        """Like :meth:`advance_to`, the events as an :class:`EventLog`."""

    def advance_to_recording_log(self, until_ms: int) -> tuple[EventLog, npt.NDArray[np.int64]]:
        """Like :meth:`advance_to_recording`, the events as an :class:`EventLog`."""

    def advance_to_recording(self, until_ms: int) -> tuple[list[_RawEvent], npt.NDArray[np.int64]]:
        """Like :meth:`advance_to`, also returning every stroke time (ms) as an int64 array.
        Runs with the GIL released."""

    def project_max_patient_boluses(self, horizon_ms: int) -> _Projection:
        """As ``project``, assuming every allotted patient bolus is taken."""
    @staticmethod
    def build_read(
        model: Model,
        now: Any,
        reservoir_ml: Any,
        concentration_ug_per_ml: Any,
        program: Program,
        catheter_volume_ul: Any,
        stroke_error_ppm: Any,
        path_primed: Any,
        battery_remaining_pc: int | None,
        alarms: list[tuple[str, int]],
        implanted_ms: int | None,
    ) -> Pump:
        """``itb.Pump.from_reading`` in one call."""
    def project(self, horizon_ms: int, assume_refills: bool = False) -> _Projection:
        """What comes next with no intervention: times strictly after now and within
        ``horizon_ms`` (>= 0), else None (stroke times are None while suspended, stalled, empty or
        at EOS). ``drug_at_tip_ms``: when fluid of a new concentration (or the first drug after
        saline) reaches the catheter tip. ERI/EOS by search over the closed-form battery drain.
        ``physically_dry_ms``: the first stroke that finds the reservoir physically short (pocket
        fill, stroke error; None with ``assume_refills``). ``assume_refills``: never low or empty (service-date forecast). Identical to what
        :meth:`advance_to` then observes."""

    def telemetry_session(self) -> None:
        """A programmer telemetry session now: costs its battery charge; may raise ERI/EOS now."""
    @property
    def battery_used_pc(self) -> int:
        """Battery charge used so far (pC; 0 without a battery)."""
    @property
    def battery_remaining_pc(self) -> int | None:
        """Remaining battery charge (pC), never below 0; None without a battery."""
    @property
    def eri(self) -> bool:
        """Elective replacement indicator raised."""
    @property
    def eos(self) -> bool:
        """End of service: delivery stopped for good."""
    @property
    def active_alarms(self) -> list[tuple[str, Literal["critical", "non_critical"], int]]:
        """Alarms sounding now, highest priority first: ``(name, severity, raised_ms)``."""

    # ----- therapy ----------------------------------------------------------------------------
    def suspend(self) -> None:
        """Stop delivery from now (remainder kept, nothing made up later); stamps ``suspended``.
        ``ValidationError`` if already suspended."""

    def resume(self) -> None:
        """Resume after :meth:`suspend`; stamps ``resumed``. ``ValidationError`` if not suspended."""

    def inject_motor_stall(self) -> None:
        """Test hook: a motor-stall fault stops delivery until :meth:`clear_fault`; stamps ``fault``
        (critical, data ``fault="motor_stall"``). ``ValidationError`` if one is already active."""

    def clear_fault(self) -> None:
        """Clear the injected motor stall; delivery resumes from now. Stamps ``fault_cleared``.
        ``ValidationError`` if no fault is active."""

    def revise_catheter(self, catheter_nl: int) -> None:
        """Replace only the catheter (0 to 10 000 µL dead volume): the old catheter's contents
        (nearest the tip) count as withdrawn, the pump tubing keeps its fluid, the new catheter
        holds saline. Stamps ``path_replaced`` (``part="catheter"``)."""

    def inject_occlusion(self, pass_ppm: int) -> None:
        """Occlusion letting ``pass_ppm`` (0 = complete, < 1 000 000) of the flow through."""
    def clear_occlusion(self) -> None: ...
    def inject_leak(self, position_nl: int, disconnection: bool) -> None:
        """Leak or disconnection ``position_nl`` of catheter from the pump connector."""
    def clear_leak(self) -> None: ...
    def inject_tip_migration(self) -> None: ...
    def clear_tip_migration(self) -> None: ...
    def inject_battery_fault(self) -> None:
        """Program reset to the model's minimum rate, boluses lost, ``battery_fault`` alarm."""
    def clear_battery_fault(self) -> None: ...
    @property
    def active_faults(
        self,
    ) -> tuple[int | None, tuple[str, int] | None, bool, bool, bool]:
        """``(occlusion pass ppm, (leak kind, position_nl), tip_migrated, battery_fault,
        motor_stall)``."""
    @property
    def tissue_nl(self) -> int: ...
    @property
    def tissue_pg(self) -> int: ...
    @property
    def held_back_nl(self) -> int: ...
    @property
    def dry_nl(self) -> int: ...
    @property
    def physically_pumped_nl(self) -> int: ...
    @property
    def physically_pumped_pg(self) -> int: ...
    def replace_fluid_path(self, catheter_nl: int) -> None:
        """Replace the whole path (pump tubing + a catheter of 0 to 10 000 µL): the old contents
        count as withdrawn, the new path holds saline. Stamps ``path_replaced``
        (``part="tubing_and_catheter"``)."""

    def bridge_bolus_plan(self) -> _BolusPlan:
        """Bridge bolus after a concentration increase: pushes the old drug still in the path at
        the dose rate in force now. ``ValidationError`` if no bridge is needed or possible."""

    def start_bridge_bolus(self) -> int:
        """Start the planned bridge bolus now; returns its bolus id."""

    def priming_bolus_plan(self) -> _BolusPlan:
        """Priming bolus: pushes the saline ahead of the drug out of the path at the fastest rate
        the model allows on top of the basal program. ``ValidationError`` if the path is primed;
        ``ProgrammingError`` if the basal program leaves no rate headroom."""

    def start_priming_bolus(self) -> int:
        """Start the planned priming bolus now (``drug_at_tip`` fires when drug reaches the tip);
        returns its bolus id."""

    def set_patient_bolus_limits(self, limits: _PatientLimits | None = None) -> None:
        """Set the clinician limits of patient-activated (PTM) boluses, or disable them (None)."""

    @property
    def patient_bolus_limits(self) -> _PatientLimits | None:
        """Current PTM limits ``(dose_ng, duration_ms, lockout_ms, max_per_24h)``, or None."""

    def patient_bolus(self, at_ms: int | None = None) -> tuple[bool, _PatientReason, int | None]:
        """Patient activation at ``at_ms`` (None = now; a later time first advances the pump and
        keeps those events for the next advance). Granted only within the clinician limits.
        Stamps ``patient_bolus_granted``/``_denied`` (data ``bolus_id``, ``reason``).
        Returns ``(granted, reason, bolus_id or None)``."""

    # ----- persistence ------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Deterministic, versioned, checksummed bytes of the whole state."""

    @staticmethod
    def restore(data: bytes) -> Pump:
        """Rebuild a pump from :meth:`snapshot` bytes; ``SnapshotError`` if corrupt, foreign, of
        another version or internally inconsistent."""

    def copy(self) -> Pump:
        """An independent deep copy."""

    def check_invariants(self) -> None:
        """Raise ``SnapshotError``/``ValidationError`` if the internal state is inconsistent."""

    # ----- state (read-only) ------------------------------------------------------------------
    @property
    def boluses(self) -> list[_RawBolus]:
        """Scheduled or running boluses:
        ``(id, start_ms, end_ms, volume_nl, dose_pg, requested_ng, rate_nl_per_day, duration_ms, kind)``."""
    @property
    def next_event_seq(self) -> int:
        """Sequence number the next returned event will carry (1 for a new pump)."""
    @property
    def program(self) -> _ProgramOut:
        """The basal program (dose rates in ng/day, offsets in ms)."""
    @property
    def model(self) -> _ModelDict:
        """The pump model (a fresh dict of exact fields)."""
    @property
    def commanded_rate_nl_per_day(self) -> int:
        """Volume rate (nL/day) commanded now: the basal step in force plus every bolus running
        now; 0 while not delivering."""
    @property
    def prescribed_ng_per_day(self) -> int:
        """Dose rate (ng/day) the basal program prescribes now (boluses not included)."""
    @property
    def delivering(self) -> bool:
        """Not suspended, stalled, empty or at end of service."""
    @property
    def schedule(self) -> tuple[int, int, list[tuple[int, int]]]:
        """Basal volume-rate schedule at the current concentration:
        ``(period_ms, anchor_ms, [(offset_ms, nl_per_day), …])``."""
    @property
    def now_ms(self) -> int:
        """Pump clock (ms)."""
    @property
    def concentration(self) -> int:
        """Reservoir concentration (µg/mL)."""
    @property
    def strokes(self) -> int:
        """Strokes fired since construction."""
    @property
    def reservoir_nl(self) -> int:
        """Usable reservoir volume as the firmware counts it (nL)."""
    @property
    def true_reservoir_fl(self) -> int:
        """Physical reservoir volume (fL); differs from the firmware count when stroke_error_ppm != 0."""
    @property
    def true_reservoir_nl(self) -> int:
        """Physical reservoir volume (nL, floor of the fL ledger)."""
    @property
    def pumped_nl(self) -> int:
        """Volume the firmware counts as pumped out of the reservoir (nL) = strokes × stroke_nl."""
    @property
    def stroke_error_ppm(self) -> int:
        """Physical stroke volume error (ppm)."""
    @property
    def path_fl(self) -> int:
        """Physical fluid in the pump tubing + catheter (fL)."""
    @property
    def path_ag(self) -> int:
        """Drug mass in the pump tubing + catheter (ag)."""
    @property
    def path_nl(self) -> int:
        """Fluid in the pump tubing + catheter (nL, floor)."""
    @property
    def path_pg(self) -> int:
        """Drug mass in the pump tubing + catheter (pg, floor)."""
    @property
    def path_parcels(self) -> list[tuple[int, int]]:
        """The path FIFO, tip first: ``[(fL, µg/mL), …]`` (0 µg/mL = saline)."""
    @property
    def catheter_nl(self) -> int:
        """Catheter dead volume (nL)."""
    @property
    def tip_concentration(self) -> int:
        """Concentration of the fluid last at the catheter tip (µg/mL; 0 = saline)."""
    @property
    def delivered_fl(self) -> int:
        """Physical volume that left the catheter tip — the patient's dose (fL)."""
    @property
    def delivered_ag(self) -> int:
        """Drug mass that left the catheter tip (ag)."""
    @property
    def delivered_nl(self) -> int:
        """Volume that left the catheter tip (nL, floor of the fL ledger)."""
    @property
    def delivered_pg(self) -> int:
        """Drug mass that left the catheter tip (pg, floor of the ag ledger)."""
    @property
    def filled_fl(self) -> int:
        """Everything ever put in: initial reservoir + primed path + refills + revised paths (fL)."""
    @property
    def filled_ag(self) -> int:
        """Drug mass ever put in (ag)."""
    @property
    def filled_nl(self) -> int:
        """:attr:`filled_fl` in nL (floor)."""
    @property
    def filled_pg(self) -> int:
        """:attr:`filled_ag` in pg (floor)."""
    @property
    def withdrawn_fl(self) -> int:
        """Removed by refills (aspirated reservoir) and catheter revisions (old path) (fL)."""
    @property
    def withdrawn_ag(self) -> int:
        """Drug mass removed (ag)."""
    @property
    def withdrawn_nl(self) -> int:
        """:attr:`withdrawn_fl` in nL (floor)."""
    @property
    def withdrawn_pg(self) -> int:
        """:attr:`withdrawn_ag` in pg (floor)."""
    @property
    def accumulator(self) -> int:
        """Accumulator remainder A − strokes·stroke_nl·86_400_000 (nL·ms/day), 0 <= acc < one stroke
        while delivering."""
    @property
    def empty(self) -> bool:
        """Delivery stopped: usable reservoir below one stroke."""
    @property
    def suspended(self) -> bool:
        """Delivery suspended by :meth:`suspend`."""
    @property
    def stalled(self) -> bool:
        """A motor-stall fault is active."""
    @property
    def low_alarm_armed(self) -> bool:
        """The low-reservoir alarm will still fire (re-armed by a refill)."""
