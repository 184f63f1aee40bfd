"""The Python face of a pump: ``datetime``/``timedelta`` in and out, clinical units plus
the exact integers (``*_nl``, ``*_pg``). All delivery math runs in the Rust core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Union

if TYPE_CHECKING:
    import numpy as np

from . import _core
from ._limits import MAX_TIME_MS, MS_PER_DAY
from ._time import MAX_DURATION_MS, duration_ms, from_ms, iso_range_error, to_ms
from ._units import (
    concentration,
    exact_decimal,
    flag,
    integer,
    ml_to_nl,
    ng_to_ug,
    nl_to_ml,
    nl_to_ul,
    pc_to_mah,
    pg_to_ug,
    scaled,
    ug_to_ng,
    ul_to_nl,
)
from .events import Event, EventLog
from .models import PumpModel
from .program import Continuous, Flex, Program, program_from_exact

__all__ = [
    "Pump",
    "Event",
    "EventLog",
    "Projection",
    "ActiveAlarm",
    "Bolus",
    "BolusPlan",
    "PatientBolusResult",
    "RefillReport",
    "ALARMS",
    "project_many",
]

Time = Union[datetime, int]
_TEN_YEARS = timedelta(days=3650)
_TEN_YEARS_MS = 3650 * MS_PER_DAY
_MAX_MS = MAX_TIME_MS  # 9999-12-31 23:59:59.999, the pump clock's end
Duration = Union[timedelta, "np.timedelta64"]  # never a bare number (docs: guide/inputs.md)


_PROJECTION_FIELDS = (
    "next_stroke",
    "low_reservoir",
    "reservoir_empty",
    "drug_at_tip",
    "eri",
    "eos",
    "physically_dry",
)


class ActiveAlarm(NamedTuple):
    """An alarm sounding now: its ``name`` (``low_reservoir``, ``reservoir_empty``, ``eri``,
    ``eos``, …), ``severity`` (``critical``/``non_critical``) and when it was ``raised``."""

    name: str
    severity: str
    raised: datetime


class Projection:
    """Exact times of what comes next with no intervention (``None``: not within the horizon):
    ``next_stroke``, ``low_reservoir``, ``reservoir_empty``, ``drug_at_tip``, ``eri``, ``eos``,
    ``physically_dry`` as naive ``datetime`` (built on access), and the same as int ms in
    ``<name>_ms``. ``physically_dry`` is on the physical ledger (what the patient gets), the
    others on the firmware's count (docs: guide/faults.md, "Projections under faults").

    Those are events *still to come* (strictly after now). What is already sounding comes
    with them: :attr:`active_alarms` (``(name, severity, since)``, highest priority first),
    :meth:`since` (when an alarm began, ``None`` if it is not sounding) and :meth:`when` (its
    start if sounding, else when it comes) — so a pump sounding ERI never reads as "ERI: none".
    """

    __slots__ = ("_ms", "_active")

    def __init__(self, *times_ms: int | None, active: tuple[Any, ...] = ()) -> None:
        if len(times_ms) != len(_PROJECTION_FIELDS):
            raise TypeError(f"Projection takes {len(_PROJECTION_FIELDS)} times")
        self._ms: tuple[int | None, ...] = times_ms
        self._active = tuple(active)  # ((name, severity, since_ms), …)

    def _at(self, i: int) -> datetime | None:
        ms = self._ms[i]
        return None if ms is None else from_ms(ms)

    @property
    def next_stroke(self) -> datetime | None:
        """Next stroke. ``None``: not within the horizon."""
        return self._at(0)

    @property
    def next_stroke_ms(self) -> int | None:
        return self._ms[0]

    @property
    def low_reservoir(self) -> datetime | None:
        """Low-reservoir alarm. ``None``: not within the horizon."""
        return self._at(1)

    @property
    def low_reservoir_ms(self) -> int | None:
        return self._ms[1]

    @property
    def reservoir_empty(self) -> datetime | None:
        """Reservoir empty: delivery stops. ``None``: not within the horizon."""
        return self._at(2)

    @property
    def reservoir_empty_ms(self) -> int | None:
        return self._ms[2]

    @property
    def drug_at_tip(self) -> datetime | None:
        """New drug reaches the catheter tip. ``None``: not within the horizon."""
        return self._at(3)

    @property
    def drug_at_tip_ms(self) -> int | None:
        return self._ms[3]

    @property
    def eri(self) -> datetime | None:
        """Elective replacement indicator (battery). ``None``: not within the horizon."""
        return self._at(4)

    @property
    def eri_ms(self) -> int | None:
        return self._ms[4]

    @property
    def eos(self) -> datetime | None:
        """End of service: delivery stops for good. ``None``: not within the horizon."""
        return self._at(5)

    @property
    def eos_ms(self) -> int | None:
        return self._ms[5]

    @property
    def physically_dry(self) -> datetime | None:
        """The first stroke that finds the reservoir **physically** short of what it should move
        (a pocket fill, a positive stroke error: before ``reservoir_empty``, which the firmware's
        count gives); from it on strokes move nothing (``Pump.dry_nl`` grows) — the "dosing from
        an empty reservoir" case. ``None``: not within the horizon, or refills assumed."""
        return self._at(6)

    @property
    def physically_dry_ms(self) -> int | None:
        return self._ms[6]

    @property
    def active_alarms(self) -> list[ActiveAlarm]:
        """Alarms sounding at the projection's start: :class:`ActiveAlarm` ``(name, severity,
        raised)``, highest priority first (``eos``, ``reservoir_empty``, ``motor_stall``,
        ``battery_fault``, ``eri``, ``low_reservoir``)."""
        return [ActiveAlarm(n, sev, from_ms(t)) for n, sev, t in self._active]

    def since(self, alarm: str) -> datetime | None:
        """When ``alarm`` (``"eri"``, ``"low_reservoir"``, …) began if it is sounding, else
        ``None``."""
        _check_alarm(alarm)
        return next((from_ms(t) for n, _, t in self._active if n == alarm), None)

    def when(self, alarm: str) -> datetime | None:
        """``alarm``'s start if it is sounding now, else its projected time (``None``: neither)."""
        since = self.since(alarm)
        if since is not None or alarm not in _PROJECTION_FIELDS:
            return since
        return self._at(_PROJECTION_FIELDS.index(alarm))

    def as_dict(self) -> dict[str, datetime | None]:
        return {name: self._at(i) for i, name in enumerate(_PROJECTION_FIELDS)}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Projection)
            and self._ms == other._ms
            and self._active == other._active
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sounding = {n: t for n, _, t in self.active_alarms}
        parts = []
        for k, v in self.as_dict().items():
            if k in sounding:
                parts.append(f"{k}=active since {sounding[k].isoformat(timespec='milliseconds')}")
            else:
                parts.append(f"{k}={v.isoformat(timespec='milliseconds') if v else None}")
        for fault in ("motor_stall", "battery_fault"):
            if fault in sounding:
                parts.append(
                    f"{fault}=active since {sounding[fault].isoformat(timespec='milliseconds')}"
                )
        return f"Projection({', '.join(parts)})"


ALARMS = ("eos", "reservoir_empty", "motor_stall", "battery_fault", "eri", "low_reservoir")


def _check_alarm(alarm: object) -> None:
    if alarm not in ALARMS:
        from .errors import ValidationError

        raise ValidationError(
            f"alarm: {alarm!r}; allowed: {', '.join(ALARMS)}",
            "alarm",
        )


@dataclass(frozen=True)
class Bolus:
    """A scheduled or running bolus.

    ``dose_pg`` is the drug mass it really moves out of the reservoir (its whole-nL volume ×
    the concentration it was derived at); ``requested_ng`` is the dose that was asked for
    (0 for priming). They differ by the nL rounding: 0.25 µg at 100 000 µg/mL is 2 nL = 0.2 µg.
    ``duration`` is the programmed duration; the bolus ends at ``end`` <= ``start + duration``.
    """

    id: int
    start: datetime
    end: datetime
    volume_nl: int
    dose_pg: int
    requested_ng: int
    rate_nl_per_day: int
    duration: timedelta
    kind: str = "timed"

    @property
    def dose_ug(self) -> float:
        """The dose it really delivers (µg)."""
        return pg_to_ug(self.dose_pg)

    @property
    def requested_dose_ug(self) -> float:
        """The dose that was asked for (µg)."""
        return ng_to_ug(self.requested_ng)


@dataclass(frozen=True)
class RefillReport:
    """What a refill found: expected vs aspirated volume (exact nL) and whether the
    discrepancy is beyond tolerance (``reason`` says which way)."""

    expected_nl: int
    aspirated_nl: int
    flagged: bool
    reason: str | None

    @property
    def expected_ml(self) -> float:
        return nl_to_ml(self.expected_nl)

    @property
    def aspirated_ml(self) -> float:
        return nl_to_ml(self.aspirated_nl)

    @property
    def discrepancy_ml(self) -> float:
        """aspirated − expected (mL); negative: less came back than expected."""
        return nl_to_ml(self.aspirated_nl - self.expected_nl)

    @property
    def discrepancy_pct(self) -> float | None:
        """Discrepancy as % of expected (None when nothing was expected)."""
        return (
            None
            if self.expected_nl == 0
            else 100.0 * (self.aspirated_nl - self.expected_nl) / self.expected_nl
        )

    def __repr__(self) -> str:
        """In mL, exact (the pump's nL as decimals): ``RefillReport(expected=17.048 mL, …)``."""
        pct = self.discrepancy_pct
        return (
            f"RefillReport(expected={exact_decimal(self.expected_nl, 6)} mL, "
            f"aspirated={exact_decimal(self.aspirated_nl, 6)} mL, "
            f"discrepancy={exact_decimal(self.aspirated_nl - self.expected_nl, 6)} mL"
            + (f" ({pct:+.1f} %)" if pct is not None else "")
            + f", flagged={self.flagged}, reason={self.reason!r})"
        )


@dataclass(frozen=True)
class BolusPlan:
    """A planned bridge or priming bolus (exact nL, ms, nL/day)."""

    volume_nl: int
    duration: timedelta
    rate_nl_per_day: int

    @property
    def volume_ml(self) -> float:
        return nl_to_ml(self.volume_nl)


@dataclass(frozen=True)
class PatientBolusResult:
    """Outcome of a patient activation: ``reason`` is ``"granted"`` or why not
    (``not_enabled``, ``suspended``, ``fault``, ``reservoir_empty``, ``lockout``,
    ``daily_maximum``, ``would_exceed_max_rate``, ``end_of_service``, ``invalid_dose``)."""

    granted: bool
    reason: str
    bolus_id: int | None


class Pump:
    """An implanted ITB pump, simulated exactly.

    >>> import itb
    >>> from datetime import datetime, timedelta
    >>> pump = itb.Pump(itb.models.SYNCHROMED_II_40, now=datetime(2026, 1, 5, 8, 0), reservoir_ml=40.0,
    ...                 concentration_ug_per_ml=2000, program=itb.Continuous(ug_per_day=400))
    >>> _ = pump.advance(timedelta(days=30))
    >>> pump.strokes          # 0.2 mL/day = 200_000 nL/day; floor(200_000 * 30 / 2000)
    3000
    """

    __slots__ = ("_core", "_model")

    def __init__(
        self,
        model: PumpModel,
        *,
        now: Time,
        reservoir_ml: float,
        concentration_ug_per_ml: float,
        program: Program,
        catheter_volume_ul: float = 0.0,
        path_primed: bool = True,
        stroke_error_ppm: int = 0,
    ) -> None:
        if type(model) is not PumpModel and not isinstance(model, PumpModel):
            from .errors import ValidationError

            raise ValidationError(
                f"model: expected itb.PumpModel, got {type(model).__name__}", "model"
            )
        self._model = model
        # one call: the arguments are converted in Rust by the rules of to_ms, ml_to_nl,
        # concentration, ul_to_nl and integer (which it falls back to for unusual types)
        self._core = _core.Pump.build(
            model._core_model,  # type: ignore[attr-defined]  # set in PumpModel.__post_init__  # type: ignore[attr-defined]  # set in PumpModel.__post_init__
            now,
            reservoir_ml,
            concentration_ug_per_ml,
            _core_program(program),
            catheter_volume_ul,
            stroke_error_ppm,
            path_primed,
        )

    @classmethod
    def from_reading(
        cls,
        model: PumpModel,
        *,
        now: Time,
        reservoir_ml: float,
        concentration_ug_per_ml: float,
        program: Program,
        battery_mah: float | None = None,
        implanted: Time | None = None,
        active_alarms: Any = (),
        catheter_volume_ul: float = 0.0,
        path_primed: bool = True,
        stroke_error_ppm: int = 0,
        battery_pc: int | None = None,
    ) -> Pump:
        """A pump as a clinician programmer reads it at ``now`` (an implanted pump is never new):
        the arguments of :class:`Pump`, plus

        * ``battery_mah``: charge remaining (0 to the model's capacity; at or below its
          ``eri_mah`` the pump is at ERI, at or below ``eos_mah`` past EOS: it delivers nothing;
          rounded half-even to 1e-11 mAh); or exactly, ``battery_pc`` (picocoulombs, as
          :attr:`battery_remaining_pc` gives it), not both;
        * ``implanted``: implant date; with no ``battery_mah``, the charge used is estimated as
          the quiescent drain plus the stroke charge of the current program since then (tones and
          telemetry uncounted: a lower bound). Neither: a new battery;
        * ``active_alarms``: the alarms sounding, with when each began — a mapping
          ``{"eri": datetime, …}`` or pairs ``(name, since)`` (or :attr:`active_alarms`'s
          triples). Names: ``eos``, ``reservoir_empty``, ``motor_stall``, ``eri``,
          ``low_reservoir``. Listed ERI/EOS without ``battery_mah`` put the charge at that
          threshold; ``motor_stall`` leaves the pump stalled.

        A listed alarm keeps its start (tones keep their phase) and emits no event; an alarm the
        state implies but the list omits begins now with its event. A reading that contradicts
        itself (ERI listed with the charge above the ERI threshold, low reservoir listed with a
        fuller reservoir, a start after ``now``) is a ``ValidationError`` naming
        ``active_alarms`` (or ``active_alarms[i]``, ``battery_mah``, ``implanted``).
        (docs: decisions/clinic.md#a-pump-as-read)"""
        if type(model) is not PumpModel and not isinstance(model, PumpModel):
            from .errors import ValidationError

            raise ValidationError(
                f"model: expected itb.PumpModel, got {type(model).__name__}", "model"
            )
        if battery_pc is not None:
            if battery_mah is not None:
                from .errors import ValidationError

                raise ValidationError(
                    "battery_pc: give battery_mah or battery_pc, not both", "battery_pc"
                )
            remaining_pc: int | None = integer(battery_pc, "battery_pc")
        else:
            remaining_pc = (
                None if battery_mah is None else scaled(battery_mah, 11, "battery_mah", "mAh") * 36
            )
        implanted_ms = None if implanted is None else to_ms(implanted, "implanted")
        alarms = _alarm_list(active_alarms)
        self = cls.__new__(cls)
        self._model = model
        self._core = _core.Pump.build_read(
            model._core_model,  # type: ignore[attr-defined]
            now,
            reservoir_ml,
            concentration_ug_per_ml,
            _core_program(program),
            catheter_volume_ul,
            stroke_error_ppm,
            path_primed,
            remaining_pc,
            alarms,
            implanted_ms,
        )
        return self

    @classmethod
    def _wrap(cls, core: Any, model: PumpModel | None = None) -> Pump:
        self = cls.__new__(cls)
        self._core = core
        self._model = model if model is not None else PumpModel.from_exact(core.model)
        return self

    # ----- programming --------------------------------------------------------------------
    def set_program(self, program: Program) -> None:
        """Replace the basal program from now on (emits ``program_changed``)."""
        self._core.set_program(_core_program(program))

    def bolus(self, dose_ug: float, duration: Duration, start: Time | None = None) -> int:
        """Schedule a timed bolus of ``dose_ug`` µg over ``duration`` from ``start`` (None = now).

        Its volume is derived now at the current concentration (whole nL, half-even; the dose
        it really delivers is ``pump.boluses[…].dose_ug``). If the concentration changes before
        it starts, its volume is re-derived from ``dose_ug`` (``bolus_adjusted``); a running one
        is cancelled (``bolus_cancelled``, reason ``concentration_changed``). Returns the bolus id.
        Errors: ``ValidationError`` (``dose_ug`` rounds to 0 nL, ``duration`` < 1 ms, ``start`` in
        the past), ``ProgrammingError`` (basal + boluses above the model's maximum rate),
        ``ReservoirError`` (empty reservoir), ``EndOfServiceError``."""
        # converted in Rust by the rules of ug_to_ng, duration_ms and to_ms
        return self._core.bolus_ug(dose_ug, duration, start)

    def bolus_many(
        self,
        starts: Sequence[Time] | np.ndarray,
        doses_ug: Sequence[float] | np.ndarray,
        durations: Sequence[Duration] | np.ndarray,
    ) -> list[int]:
        """Schedule many timed boluses at once, all or nothing, with one maximum-rate check over
        them all (for rigs and test suites that load a whole plan).

        ``starts``: naive datetimes or int ms (or a ``datetime64`` array), each >= now;
        ``doses_ug``: µg floats (or a float array); ``durations``: timedeltas (or a
        ``timedelta64`` array; never bare numbers). Same length. Each bolus is exactly what :meth:`bolus` would
        schedule. Returns the ids in the given order. Errors name the entry (``starts[3]``,
        ``doses_ug[3]``, ``durations[3]``); a refused plan schedules nothing."""
        import numpy as np

        # Each column as a numpy array: datetime64/timedelta64 arrays in place, sequences entry
        # by entry in Rust (by the rules and errors of to_ms, duration_ms and the dose check).
        def ms_column(values: Any, kind: str, unit: str, convert: Any, field: str) -> Any:
            if isinstance(values, np.ndarray) and values.dtype.kind == kind:
                ms = values.astype(unit, copy=False).view(np.int64)  # floored to the ms
                if kind == "M" or not len(ms) or (ms.min() >= 1 and ms.max() <= MAX_DURATION_MS):
                    return ms  # NaT times are refused by the core
                values = list(values)  # an entry out of range: named by the entry-wise check
            return convert(values, field)

        start_ms = ms_column(starts, "M", "datetime64[ms]", _core.times_ms, "starts")
        duration_list = ms_column(
            durations, "m", "timedelta64[ms]", _core.durations_ms, "durations"
        )
        if isinstance(doses_ug, np.ndarray) and doses_ug.dtype == np.float64:
            doses = doses_ug  # read in place by the core
        else:
            doses = _core.doses_f64(
                doses_ug.tolist() if isinstance(doses_ug, np.ndarray) else doses_ug
            )
        return self._core.bolus_many_arrays(doses, duration_list, start_ms)

    def cancel_bolus(self, bolus_id: int) -> None:
        """Cancel a scheduled or running bolus (what it delivered stays delivered)."""
        self._core.cancel_bolus(integer(bolus_id, "bolus_id"))

    def refill(
        self,
        added_ml: float,
        concentration_ug_per_ml: float,
        aspirated_ml: float | None = None,
        *,
        tolerance_ml: float = 1.0,
        tolerance_pct: float = 20.0,
        pocket_ml: float = 0.0,
    ) -> RefillReport:
        """Aspirate the reservoir (``aspirated_ml=None``: what is physically there), compare with
        what the pump expected, fill ``added_ml`` at a concentration. A discrepancy beyond
        max(``tolerance_ml``, ``tolerance_pct`` % of expected) is flagged and emits
        ``refill_discrepancy``. A concentration change re-computes the program's volume rates and
        emits ``concentration_changed``. Overfill is a ``ReservoirError`` and changes nothing;
        ``aspirated_ml`` above the reservoir's capacity is a ``ValidationError`` (0 to capacity mL)
        and changes nothing.

        ``pocket_ml`` (0 to ``added_ml``) injects a **pocket fill**: that part of the added volume
        goes into the subcutaneous pocket — an immediate tissue dose (:attr:`tissue_pg`) — while
        the pump believes all of ``added_ml`` is in the reservoir; stamps ``fault``
        (``fault="pocket_fill"``). Docs: guide/faults.md."""
        expected, aspirated, flagged, reason = self._core.refill(
            ml_to_nl(added_ml, "added_ml"),
            concentration(concentration_ug_per_ml),
            None if aspirated_ml is None else ml_to_nl(aspirated_ml, "aspirated_ml"),
            ml_to_nl(tolerance_ml, "tolerance_ml"),
            scaled(tolerance_pct, 4, "tolerance_pct", "%"),
            ml_to_nl(pocket_ml, "pocket_ml"),
        )
        return RefillReport(expected, aspirated, flagged, reason)

    def suspend(self) -> None:
        """Stop delivery (clinician); nothing missed is made up later."""
        self._core.suspend()

    def resume(self) -> None:
        self._core.resume()

    def inject_motor_stall(self) -> None:
        """Fault injection: delivery stops until :meth:`clear_fault`."""
        self._core.inject_motor_stall()

    def clear_fault(self) -> None:
        """Clear the motor stall; delivery resumes from now."""
        self._core.clear_fault()

    # ----- faults (docs: guide/faults.md) ----------------------------------------------
    def inject_occlusion(self, pass_pct: float = 0.0) -> None:
        """A catheter occlusion letting ``pass_pct`` % of the flow through (0 = complete, below
        100). Strokes are still counted; what does not pass stays in the reservoir
        (:attr:`held_back_nl`), which a refill then aspirates as a surplus."""
        self._core.inject_occlusion(scaled(pass_pct, 4, "pass_pct", "%"))

    def clear_occlusion(self) -> None:
        self._core.clear_occlusion()

    def inject_leak(self, position_ul: float, *, disconnection: bool = False) -> None:
        """A leak (or, with ``disconnection=True``, a disconnection) ``position_ul`` µL of
        catheter from the pump connector (0 to the catheter volume): everything reaching the
        site goes into tissue (:attr:`tissue_nl`), the catheter beyond it is stagnant."""
        if not isinstance(disconnection, bool):
            from .errors import ValidationError

            raise ValidationError("disconnection: expected True or False", "disconnection")
        self._core.inject_leak(ul_to_nl(position_ul, "position_ul"), disconnection)

    def inject_disconnection(self, position_ul: float = 0.0) -> None:
        """:meth:`inject_leak` with ``disconnection=True`` (default: at the pump connector)."""
        self.inject_leak(position_ul, disconnection=True)

    def clear_leak(self) -> None:
        """Repair the leak or disconnection: the stagnant segment rejoins the path."""
        self._core.clear_leak()

    def inject_tip_migration(self) -> None:
        """The catheter tip leaves the intrathecal space: what leaves it goes into tissue."""
        self._core.inject_tip_migration()

    def clear_tip_migration(self) -> None:
        self._core.clear_tip_migration()

    def inject_battery_fault(self) -> None:
        """A battery fault resets the program to the model's minimum rate (boluses are lost)
        and sounds the critical ``battery_fault`` alarm until :meth:`clear_battery_fault`."""
        self._core.inject_battery_fault()

    def clear_battery_fault(self) -> None:
        """Acknowledge the battery fault; the program stays at the minimum until reprogrammed."""
        self._core.clear_battery_fault()

    @property
    def active_faults(self) -> dict[str, object]:
        """The faults now active: ``occlusion_pass_pct`` (or None), ``leak`` (``(kind,
        position_ul)`` or None), ``tip_migrated``, ``battery_fault``, ``motor_stall``."""
        occ, leak, migrated, battery, stall = self._core.active_faults
        return {
            "occlusion_pass_pct": None if occ is None else occ / 10_000,
            "leak": None if leak is None else (leak[0], nl_to_ul(leak[1])),
            "tip_migrated": migrated,
            "battery_fault": battery,
            "motor_stall": stall,
        }

    @property
    def tissue_nl(self) -> int:
        """Drug solution that went elsewhere — into tissue through a leak, a disconnection, a
        migrated tip or a pocket fill (nL)."""
        return self._core.tissue_nl

    @property
    def tissue_pg(self) -> int:
        """Drug mass that went into tissue (pg)."""
        return self._core.tissue_pg

    @property
    def held_back_nl(self) -> int:
        """Volume the strokes were commanded to move but an occlusion held in the reservoir."""
        return self._core.held_back_nl

    @property
    def dry_nl(self) -> int:
        """Volume commanded while the reservoir was physically dry (nothing there to move)."""
        return self._core.dry_nl

    @property
    def physically_pumped_nl(self) -> int:
        """What physically left the reservoir (nL), against :attr:`pumped_nl` (the firmware's)."""
        return self._core.physically_pumped_nl

    @property
    def physically_pumped_pg(self) -> int:
        return self._core.physically_pumped_pg

    def revise_catheter(self, volume_ul: float) -> None:
        """A catheter revision: replace **only the catheter** by one of ``volume_ul`` µL dead
        volume. The old catheter's contents (the fluid nearest the tip) leave the system and
        count as withdrawn; the pump's own tubing keeps its fluid (drug, on a pump that has
        run); the new catheter holds saline, which :meth:`priming_bolus_plan` then pushes out.
        Stamps a ``path_replaced`` event (``part="catheter"``, ``removed_nl``, ``removed_pg``,
        ``saline_nl``). ``ValidationError`` (``volume_ul``) outside 0–10 000 µL.
        See :meth:`replace_fluid_path` for a whole new path (new implant)."""
        self._core.revise_catheter(ul_to_nl(volume_ul, "volume_ul"))

    def replace_fluid_path(self, catheter_volume_ul: float) -> None:
        """A new implant (or a pump replacement with a new catheter): replace **the whole fluid
        path**, the pump tubing and a catheter of ``catheter_volume_ul`` µL, which then hold only
        saline. The old contents leave the system (withdrawn). Stamps ``path_replaced``
        (``part="tubing_and_catheter"``). ``ValidationError`` (``catheter_volume_ul``) outside
        0–10 000 µL."""
        self._core.replace_fluid_path(ul_to_nl(catheter_volume_ul, "catheter_volume_ul"))

    def bridge_bolus_plan(self) -> BolusPlan:
        """After a concentration increase: the bolus that keeps the prescribed µg/day while
        the old drug in the path is pushed out."""
        v, d, r = self._core.bridge_bolus_plan()
        return BolusPlan(v, timedelta(milliseconds=d), r)

    def start_bridge_bolus(self) -> int:
        return self._core.start_bridge_bolus()

    def priming_bolus_plan(self) -> BolusPlan:
        """The bolus that fills a saline path with drug as fast as the model allows."""
        v, d, r = self._core.priming_bolus_plan()
        return BolusPlan(v, timedelta(milliseconds=d), r)

    def start_priming_bolus(self) -> int:
        return self._core.start_priming_bolus()

    @property
    def has_patient_bolus_limits(self) -> bool:
        """Whether patient-activated boluses are enabled (clinician limits set)."""
        return self._core.patient_bolus_limits is not None

    def set_patient_bolus_limits(
        self,
        dose_ug: float | None = None,
        duration: Duration | None = None,
        lockout: Duration = timedelta(0),
        max_per_24h: int | None = None,
    ) -> None:
        """Clinician limits of the patient-activated bolus; ``dose_ug=None`` disables it.

        With ``dose_ug`` (µg per activation), ``duration`` (PT0.001S to P1D) and ``max_per_24h``
        (grants per rolling 24 h, 1 to 24) are required: neither has a safe default;
        ``lockout`` (PT0S to P1D, default none) is the least time from one grant to the next.
        Errors: ``ValidationError`` naming the parameter; the limits are unchanged."""
        if dose_ug is None:
            self._core.set_patient_bolus_limits(None)
            return
        from .errors import ValidationError

        if duration is None:
            raise ValidationError(
                "duration: required with dose_ug (how long each patient bolus runs, "
                "e.g. timedelta(minutes=10); allowed: PT0.001S to P1D)",
                "duration",
            )
        if max_per_24h is None:
            raise ValidationError(
                "max_per_24h: required with dose_ug (grants per rolling 24 h; allowed: 1 to 24)",
                "max_per_24h",
            )
        limits = (
            ug_to_ng(dose_ug, "dose_ug"),
            duration_ms(duration, "duration", allow_zero=False),
            duration_ms(lockout, "lockout"),
            integer(max_per_24h, "max_per_24h"),
        )
        try:
            self._core.set_patient_bolus_limits(limits)
        except ValidationError as err:  # the core speaks ms; the caller passed timedeltas
            raise iso_range_error(err) from None

    def patient_bolus(self, at: Time | None = None) -> PatientBolusResult:
        """Patient activation now (or at ``at`` >= now, advancing the pump first; the
        events of that advance come with the next :meth:`advance_to`)."""
        granted, reason, bolus_id = self._core.patient_bolus(
            None if at is None else to_ms(at, "at")
        )
        return PatientBolusResult(granted, reason, bolus_id)

    # ----- time ---------------------------------------------------------------------------
    def advance_to(self, until: Time) -> EventLog:
        """Run the pump to ``until``; returns the events since the last advance, in causal
        order, as an :class:`EventLog` (a ``Sequence[Event]`` backed by Rust columns)."""
        return EventLog(self._core.advance_to_log(to_ms(until, "until")))

    def advance(self, duration: Duration) -> EventLog:
        """Run the pump for ``duration``."""
        until = self._core.now_ms + duration_ms(duration, "duration")
        if until > _MAX_MS:
            from ._time import format_duration_ms, format_time_ms
            from .errors import ValidationError

            raise ValidationError(
                f"duration: {format_duration_ms(until - self._core.now_ms)} from "
                f"{format_time_ms(self._core.now_ms)} runs past the pump clock's end "
                "(9999-12-31 23:59:59.999)",
                "duration",
            )
        return EventLog(self._core.advance_to_log(until))

    def advance_recording(self, until: Time) -> tuple[EventLog, Any]:
        """Like :meth:`advance_to`, also returning every stroke time as an int64 numpy array (ms)."""
        events, times = self._core.advance_to_recording_log(to_ms(until, "until"))
        return EventLog(events), times

    def project(
        self,
        horizon: Duration = _TEN_YEARS,
        assume_refills: bool = False,
        *,
        assume_patient_boluses: str | None = None,
    ) -> Projection:
        """Exact times of the next stroke, low-reservoir alarm, empty reservoir, new drug at the
        tip, ERI, EOS and the physically dry reservoir (strictly after now, within ``horizon``;
        which ledger each is on: docs guide/faults.md), with no intervention — equal to
        what :meth:`advance_to` then observes — and the alarms already sounding, with since
        when (:attr:`Projection.active_alarms`). ``assume_refills=True`` treats the reservoir as
        refilled on time (never low or empty, same concentration), for service-date forecasts.

        ``assume_patient_boluses="max"``: the patient takes every allotted patient bolus, each
        at the first moment the clinician's limits (lockout, most per 24 h) allow — the worst
        case for the reservoir, as patient therapy controllers date their refills (Flowonix PTC
        manual: "assuming all allotted boluses are delivered"). Equal to activating a copy at
        those times. Not with ``assume_refills``; without patient-bolus limits the same as
        ``None``. Errors: ``ValidationError`` (``horizon``, ``assume_patient_boluses``)."""
        horizon_ms = _TEN_YEARS_MS if horizon is _TEN_YEARS else duration_ms(horizon, "horizon")
        active = tuple(self._core.active_alarms)
        if assume_patient_boluses is None:
            return Projection(
                *self._core.project(horizon_ms, flag(assume_refills, "assume_refills")),
                active=active,
            )
        if assume_patient_boluses != "max":
            from .errors import ValidationError

            raise ValidationError(
                f"assume_patient_boluses: {assume_patient_boluses!r}; allowed: None or 'max'",
                "assume_patient_boluses",
            )
        if assume_refills:
            from .errors import ValidationError

            raise ValidationError(
                "assume_patient_boluses: 'max' dates the reservoir; allowed only with "
                "assume_refills=False",
                "assume_patient_boluses",
            )
        return Projection(*self._core.project_max_patient_boluses(horizon_ms), active=active)

    def telemetry_session(self) -> None:
        """A programmer telemetry session now (costs its battery charge)."""
        self._core.telemetry_session()

    # ----- persistence --------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Deterministic, versioned bytes of the whole state."""
        return self._core.snapshot()

    @classmethod
    def restore(cls, data: bytes) -> Pump:
        """Rebuild a pump from :meth:`snapshot` bytes (``SnapshotError`` if corrupt/foreign)."""
        return cls._wrap(_core.Pump.restore(bytes(data)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pump.restore, (self.snapshot(),))

    def copy(self) -> Pump:
        return Pump._wrap(self._core.copy(), self._model)

    def __repr__(self) -> str:
        return (
            f"<itb.Pump {self._model.name!r} now={self.now.isoformat()} reservoir={self.reservoir_ml:g} mL "
            f"conc={self.concentration_ug_per_ml} µg/mL strokes={self.strokes}>"
        )

    # ----- state --------------------------------------------------------------------------
    @property
    def model(self) -> PumpModel:
        return self._model

    @property
    def program(self) -> Program:
        return program_from_exact(self._core.program)

    @property
    def now(self) -> datetime:
        return from_ms(self._core.now_ms)

    @property
    def now_ms(self) -> int:
        return self._core.now_ms

    @property
    def boluses(self) -> list[Bolus]:
        """Scheduled or running boluses."""
        return [
            Bolus(i, from_ms(s), from_ms(e), v, d, req, r, timedelta(milliseconds=dur), k)
            for i, s, e, v, d, req, r, dur, k in self._core.boluses
        ]

    @property
    def strokes(self) -> int:
        return self._core.strokes

    @property
    def concentration_ug_per_ml(self) -> int:
        return self._core.concentration

    @property
    def reservoir_nl(self) -> int:
        """Usable reservoir volume (nL)."""
        return self._core.reservoir_nl

    @property
    def reservoir_ml(self) -> float:
        return nl_to_ml(self._core.reservoir_nl)

    @property
    def pumped_nl(self) -> int:
        """Volume that left the reservoir (nL)."""
        return self._core.pumped_nl

    @property
    def battery_remaining_pc(self) -> int | None:
        """Remaining battery charge (pC); None without a battery model."""
        return self._core.battery_remaining_pc

    @property
    def battery_remaining_mah(self) -> float | None:
        rem = self._core.battery_remaining_pc
        return None if rem is None else pc_to_mah(rem)

    @property
    def is_eri(self) -> bool:
        """Elective replacement indicator raised."""
        return self._core.eri

    @property
    def catheter_volume_ul(self) -> float:
        """The catheter's dead volume (µL, to the nL): where a leak can be (0 µL is the pump
        connector)."""
        return nl_to_ul(self._core.catheter_nl)

    @property
    def is_eos(self) -> bool:
        """End of service: delivery stopped for good."""
        return self._core.eos

    @property
    def active_alarms(self) -> list[ActiveAlarm]:
        """Alarms sounding now, highest priority first (:class:`ActiveAlarm`: ``name``,
        ``severity``, ``raised``; still a 3-tuple)."""
        return [ActiveAlarm(n, sev, from_ms(t)) for n, sev, t in self._core.active_alarms]

    @property
    def true_reservoir_nl(self) -> int:
        """Physical reservoir volume (nL, floor); differs from :attr:`reservoir_nl` when
        ``stroke_error_ppm`` != 0."""
        return self._core.true_reservoir_nl

    @property
    def tip_concentration_ug_per_ml(self) -> int:
        """Concentration of the fluid at the catheter tip (0 = saline)."""
        return self._core.tip_concentration

    @property
    def is_suspended(self) -> bool:
        return self._core.suspended

    @property
    def is_stalled(self) -> bool:
        return self._core.stalled

    @property
    def core(self) -> Any:
        """The underlying ``itb._core.Pump`` (exact integer API, incl. fL/ag ledgers)."""
        return self._core

    @property
    def path_nl(self) -> int:
        """Fluid in the pump tubing + catheter (nL)."""
        return self._core.path_nl

    @property
    def path_pg(self) -> int:
        return self._core.path_pg

    @property
    def delivered_nl(self) -> int:
        """Volume that left the catheter tip: the patient's dose (nL)."""
        return self._core.delivered_nl

    @property
    def delivered_pg(self) -> int:
        """Drug mass that left the catheter tip (pg)."""
        return self._core.delivered_pg

    @property
    def delivered_ug(self) -> float:
        return pg_to_ug(self._core.delivered_pg)

    @property
    def filled_nl(self) -> int:
        """Everything ever put in: initial reservoir + primed path + refills (nL)."""
        return self._core.filled_nl

    @property
    def filled_pg(self) -> int:
        return self._core.filled_pg

    @property
    def withdrawn_nl(self) -> int:
        """Everything aspirated by refills (nL)."""
        return self._core.withdrawn_nl

    @property
    def withdrawn_pg(self) -> int:
        return self._core.withdrawn_pg

    @property
    def is_empty(self) -> bool:
        """Delivery stopped: usable reservoir below one stroke."""
        return self._core.empty

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pump) and self.snapshot() == other.snapshot()

    __hash__ = None  # type: ignore[assignment]


#: The columns of :func:`project_many` (and :meth:`itb.Fleet.forecast`) before the ``_since`` ones.
PROJECTION_COLUMNS = (
    "next_stroke",
    "low_reservoir",
    "reservoir_empty",
    "eri",
    "eos",
    "physically_dry",
)


def project_many(
    pumps: Sequence[Pump],
    horizon: Duration = _TEN_YEARS,
    assume_refills: bool = False,
    *,
    assume_patient_boluses: str | None = None,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """:meth:`Pump.project` of many pumps at once, in the core on a rayon pool (``threads``;
    ``None``: all cores) with the GIL released; the pumps are not changed. Per pump, as
    ``datetime64[ms]`` columns (``NaT``: none): ``next_stroke``, ``low_reservoir``,
    ``reservoir_empty``, ``eri``, ``eos``, ``physically_dry`` (on the physical ledger: the first
    stroke that finds the reservoir physically short, e.g. after a pocket fill; docs:
    guide/faults.md) — row ``i`` exactly ``pumps[i].project(horizon,
    assume_refills, assume_patient_boluses=…)`` — and ``<alarm>_since`` for each of
    :data:`ALARMS` (exactly :meth:`Projection.since`), the columns of
    :meth:`itb.Fleet.forecast`. Errors: ``ValidationError`` naming ``pumps[i]``, ``horizon`` or
    ``assume_patient_boluses``."""
    from .errors import ValidationError

    horizon_ms = _TEN_YEARS_MS if horizon is _TEN_YEARS else duration_ms(horizon, "horizon")
    refills = flag(assume_refills, "assume_refills")
    if assume_patient_boluses not in (None, "max"):
        raise ValidationError(
            f"assume_patient_boluses: {assume_patient_boluses!r}; allowed: None or 'max'",
            "assume_patient_boluses",
        )
    if assume_patient_boluses == "max" and refills:
        raise ValidationError(
            "assume_patient_boluses: 'max' dates the reservoir; allowed only with "
            "assume_refills=False",
            "assume_patient_boluses",
        )
    cores = []
    for i, p in enumerate(pumps):
        if not isinstance(p, Pump):
            raise ValidationError(
                f"pumps[{i}]: expected itb.Pump, got {type(p).__name__}", f"pumps[{i}]"
            )
        cores.append(p._core)
    mode = (
        "max_patient_boluses"
        if assume_patient_boluses == "max"
        else "refills_on_time"
        if refills
        else "as_programmed"
    )
    raw = _core.project_many(cores, horizon_ms, mode, threads)
    names = PROJECTION_COLUMNS + tuple(f"{a}_since" for a in ALARMS)
    return {name: raw[name + "_ms"].view("datetime64[ms]") for name in names}


def _alarm_list(active_alarms: Any) -> list[tuple[str, int]]:
    """``active_alarms`` of :meth:`Pump.from_reading` as ``[(name, since_ms), …]``."""
    from collections.abc import Mapping

    from .errors import ValidationError

    items = list(active_alarms.items()) if isinstance(active_alarms, Mapping) else active_alarms
    if isinstance(items, (str, bytes)):
        raise ValidationError(
            "active_alarms: expected a mapping {name: since} or (name, since) pairs",
            "active_alarms",
        )
    out = []
    for i, item in enumerate(items):
        field = f"active_alarms[{i}]"
        if not isinstance(item, tuple) or len(item) not in (2, 3):
            raise ValidationError(
                f"{field}: {item!r}; allowed: (name, since) or (name, severity, since)", field
            )
        name, since = item[0], item[-1]
        if name not in ALARMS:
            raise ValidationError(
                f"{field}: unknown alarm {name!r}; allowed: {', '.join(ALARMS)}", field
            )
        out.append((name, to_ms(since, field)))
    return out


def _core_program(program: object) -> Any:
    """The program's validated core object (``_core.Program``)."""
    t = type(program)
    if t is not Continuous and t is not Flex and not isinstance(program, (Continuous, Flex)):
        from .errors import ValidationError

        raise ValidationError(
            f"program: expected itb.Continuous or itb.Flex, got {type(program).__name__}", "program"
        )
    return program._core_program  # type: ignore[attr-defined]


def _exact_program(program: object) -> tuple[Any, ...]:
    if not isinstance(program, (Continuous, Flex)):
        from .errors import ValidationError

        raise ValidationError(
            f"program: expected itb.Continuous or itb.Flex, got {type(program).__name__}", "program"
        )
    return program.exact()
