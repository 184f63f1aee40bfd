"""Type stubs of ``itb._core``, the pyo3 extension over the Rust crate ``itb-core``.

Everything here is in the core's **exact integer units**; the public, clinical-unit API is
:mod:`itb` (``itb.Pump`` wraps :class:`Pump`). Units:

===============  ==========================================================
time             ``int`` ms on the pump clock (naive; 0 = 1970-01-01 00:00)
volume           ``int`` nL (1 mL = 1_000_000 nL)
concentration    ``int`` µg/mL (1..=100_000)
drug mass        ``int`` pg (= nL × µg/mL)
dose rate        ``int`` ng/day
volume rate      ``int`` nL/day
accumulator      ``int`` nL·ms/day
===============  ==========================================================

Errors are raised as the classes of :mod:`itb.errors` (``ValidationError``,
``ProgrammingError``, ``ReservoirError``, ``SnapshotError``); a rejected call changes nothing.
Simulation only — not a medical device.
"""

from typing import Any, Literal, Optional, Sequence, Tuple, TypedDict, Union, final

import numpy as np
import numpy.typing as npt

__all__ = ["Pump", "scaled", "validate_model", "volume_rate_nl_per_day", "SNAPSHOT_VERSION", "MS_PER_DAY"]

SNAPSHOT_VERSION: int
"""Version of the snapshot format this build writes and reads (currently 1)."""

MS_PER_DAY: int
"""Milliseconds per day: 86_400_000."""

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

_ModelIn = Union[_ModelDict, dict[str, Any]]
"""A model as a plain ``dict`` with the fields of :class:`_ModelDict` (must be a real dict)."""

_ContinuousProgram = Tuple[Literal["continuous"], int]
"""``("continuous", ng_per_day)``."""

_FlexProgramIn = Tuple[Literal["flex"], Literal["day", "week"], Sequence[Tuple[int, int]]]
"""``("flex", period, [(offset_ms, ng_per_day), …])``: offsets from the period start
(day: 00:00; week: Monday 00:00), first at 0, strictly increasing."""

_FlexProgramOut = Tuple[Literal["flex"], Literal["day", "week"], list[Tuple[int, int]]]

_ProgramIn = Union[_ContinuousProgram, _FlexProgramIn]
_ProgramOut = Union[_ContinuousProgram, _FlexProgramOut]

_RawEvent = Tuple[int, str, Optional[Literal["critical", "non_critical"]], dict[str, int]]
"""``(time_ms, kind, severity, data)``. ``kind`` is snake_case (``"stroke_batch"``,
``"program_changed"``, ``"bolus_started"``, ``"bolus_completed"``, ``"bolus_cancelled"``,
``"low_reservoir"``, ``"reservoir_empty"``, ``"refilled"``, ``"concentration_changed"``);
``severity`` is set for alarms only; ``data`` values are ints whose key suffix is the unit
(``volume_nl``, ``first_ms``…)."""

_RawBolus = Tuple[int, int, int, int, int, int]
"""``(id, start_ms, end_ms, volume_nl, dose_ng, rate_nl_per_day)``."""

def scaled(value: float, power: int, field: str, unit: str = "") -> int:
    """``value × 10**power`` as an exact int, from the float's shortest decimal form, rounded half
    to even (µg → ng: ``power=3``; mL → nL: ``power=6``). NaN, ±inf, negatives and results above
    ``2**63 - 1`` raise ``ValidationError`` naming ``field`` (``unit`` is used in messages)."""

def validate_model(model: _ModelIn) -> None:
    """Raise ``ValidationError`` (naming the field and its allowed range) unless the model is valid."""

def volume_rate_nl_per_day(ng_per_day: int, concentration: int) -> int:
    """Volume rate (nL/day) of a dose rate (ng/day) at ``concentration`` µg/mL:
    ``round_half_even(ng_per_day × 1000 / concentration)``. A concentration of 0 is treated as 1."""

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
        catheter_nl: int,
    ) -> "Pump":
        """Build a pump at ``now_ms`` with ``reservoir_nl`` of drug at ``concentration`` µg/mL; the
        fluid path (pump tubing + ``catheter_nl`` of catheter, 0..=10_000_000 nL) starts full of
        the same drug. Filling at or below the low threshold stamps alarms at ``now_ms``.

        Raises ``ValidationError`` (bad value), ``ProgrammingError`` (a step rate outside the
        model's limits), ``ReservoirError`` (overfill)."""

    # ----- calls ------------------------------------------------------------------------------
    def set_program(self, program: _ProgramIn) -> None:
        """Replace the basal program from now on (the accumulator remainder carries over).
        Stamps ``program_changed`` (data ``max_rate_nl_per_day``) at now."""

    def bolus(self, dose_ng: int, duration_ms: int, start_ms: Optional[int] = None) -> int:
        """Schedule a bolus of ``dose_ng`` (1..=10**13 ng) over ``duration_ms`` (>= 1) from
        ``start_ms`` (None = now; must be >= now). Its volume (nL, half-even) is fixed now at the
        current concentration. Basal + boluses above the model's max rate is a
        ``ProgrammingError``; an empty reservoir a ``ReservoirError``. Returns the bolus id."""

    def cancel_bolus(self, bolus_id: int) -> None:
        """Cancel a scheduled or running bolus (``ValidationError`` if unknown/finished).
        Stamps ``bolus_cancelled`` at now; what it already added stays delivered."""

    def refill(self, added_nl: int, concentration: int, aspirated_nl: Optional[int] = None) -> Tuple[int, int]:
        """Empty the reservoir, then fill ``added_nl`` at ``concentration`` µg/mL.
        ``aspirated_nl`` is the measured aspirate (None = what the ledger expects).
        Re-arms the low alarm and resumes delivery. Stamps ``refilled`` (and
        ``concentration_changed`` if it changed). Overfill is a ``ReservoirError``.
        Returns ``(expected_nl, aspirated_nl)``."""

    # ----- time -------------------------------------------------------------------------------
    def advance_to(self, until_ms: int) -> list[_RawEvent]:
        """Run to ``until_ms`` (>= now): every stroke with time <= ``until_ms`` fires. Returns the
        events of (now, until] plus those stamped by calls since the last advance, ordered by time
        then kind. Spans over one day run with the GIL released."""

    def advance_to_recording(self, until_ms: int) -> Tuple[list[_RawEvent], npt.NDArray[np.int64]]:
        """Like :meth:`advance_to`, also returning every stroke time (ms) as an int64 array.
        Runs with the GIL released."""

    def project(self, horizon_ms: int) -> Tuple[Optional[int], Optional[int], Optional[int]]:
        """``(next_stroke_ms, low_reservoir_ms, reservoir_empty_ms)`` with no intervention: times
        strictly after now and within ``horizon_ms`` (>= 0), else None. Closed form; identical to
        what :meth:`advance_to` then observes."""

    # ----- persistence ------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Deterministic, versioned, checksummed bytes of the whole state."""

    @staticmethod
    def restore(data: bytes) -> "Pump":
        """Rebuild a pump from :meth:`snapshot` bytes; ``SnapshotError`` if corrupt, foreign, of
        another version or internally inconsistent."""

    def copy(self) -> "Pump":
        """An independent deep copy."""

    def check_invariants(self) -> None:
        """Raise ``SnapshotError``/``ValidationError`` if the internal state is inconsistent."""

    # ----- state (read-only) ------------------------------------------------------------------
    @property
    def boluses(self) -> list[_RawBolus]:
        """Scheduled or running boluses: ``(id, start_ms, end_ms, volume_nl, dose_ng, rate_nl_per_day)``."""
    @property
    def program(self) -> _ProgramOut:
        """The basal program (dose rates in ng/day, offsets in ms)."""
    @property
    def model(self) -> _ModelDict:
        """The pump model (a fresh dict of exact fields)."""
    @property
    def schedule(self) -> Tuple[int, int, list[Tuple[int, int]]]:
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
        """Usable reservoir volume (nL)."""
    @property
    def pumped_nl(self) -> int:
        """Volume that left the reservoir (nL) = strokes × stroke_nl."""
    @property
    def pumped_pg(self) -> int:
        """Drug mass that left the reservoir (pg)."""
    @property
    def path_nl(self) -> int:
        """Fluid in the pump tubing + catheter (nL)."""
    @property
    def path_pg(self) -> int:
        """Drug mass in the pump tubing + catheter (pg)."""
    @property
    def catheter_nl(self) -> int:
        """Catheter dead volume (nL)."""
    @property
    def delivered_nl(self) -> int:
        """Volume that left the catheter tip — the patient's dose (nL)."""
    @property
    def delivered_pg(self) -> int:
        """Drug mass that left the catheter tip (pg)."""
    @property
    def filled_nl(self) -> int:
        """Everything ever put in: initial reservoir + primed path + refills (nL)."""
    @property
    def filled_pg(self) -> int:
        """Drug mass ever put in (pg)."""
    @property
    def withdrawn_nl(self) -> int:
        """Reservoir volume removed by refills (nL)."""
    @property
    def withdrawn_pg(self) -> int:
        """Drug mass removed by refills (pg)."""
    @property
    def accumulator(self) -> int:
        """Accumulator remainder A − strokes·stroke_nl·86_400_000 (nL·ms/day), 0 <= acc < one stroke
        while delivering."""
    @property
    def empty(self) -> bool:
        """Delivery stopped: usable reservoir below one stroke."""
    @property
    def low_alarm_armed(self) -> bool:
        """The low-reservoir alarm will still fire (re-armed by a refill)."""
