"""Pure-Python reference model (test oracle) of the itb pump delivery model.

Written from the specification in DESIGN.md ("Exact units", "Delivery model"), independently of
the Rust core.  Readability comes first; speed only matters enough that a one-year scenario
(~100k strokes) runs in a second or two.

Units (all ``int``):
    time            ms on the pump clock (naive; t = 0 is 1970-01-01 00:00, a Thursday)
    volume          nL
    concentration   µg/mL
    dose rate       ng/day
    volume rate     nL/day
    accumulator A   nL·ms/day  (one ms at r nL/day adds r)
    mass            pg = nL × µg/mL

Delivery model in one paragraph: the commanded volume rate is piecewise constant (basal program
plus boluses).  A(t) is the accumulated commanded volume; the interval [t, t+1) adds the rate in
force at t.  Stroke k (counted from construction) fires at the first integer ms t with
A(t) >= k·q·D, where q is the stroke volume and D = 86_400_000.  A is never reset; it only stops
growing while delivery is stopped (reservoir empty), and a bolus's increments that fall while
stopped are lost.

The simulation walks segments of constant total rate and, inside a segment, jumps from stroke to
stroke with a ceiling division.  It never iterates millisecond by millisecond.

Physical side (fL = 10⁻⁶ nL, ag = fL × µg/mL; written from DESIGN.md "Fluid path FIFO" and the
README's "Concepts"):
    * the fluid path (model pump tubing + catheter) is a FIFO of (fL, µg/mL) parcels, tip first;
      primed with the reservoir's drug or, with ``path_primed=False``, with saline (0 µg/mL);
    * a stroke physically moves q·(10⁶ + stroke_error_ppm) fL, but never more than what is really
      left in the reservoir; that volume enters the path at the reservoir's concentration and the
      same volume of the oldest fluid leaves the tip (the patient's dose);
    * the firmware still counts q per stroke (``reservoir_nl``) and alone decides the alarms;
    * conservation: filled = true reservoir + path + delivered + withdrawn, exactly, in fL and ag.
Therapy calls: refill with discrepancy check, suspend/resume, motor-stall fault injection and
patient-activated boluses (clinician limits, lockout, rolling 24 h maximum, max-rate check).

Events: by default (``all_events=False``) only the five kinds of the original model are reported
(bolus_started/_completed/_cancelled, low_reservoir, reservoir_empty), so older tests keep their
exact expectations; ``all_events=True`` also reports program_changed, patient_bolus_granted/
_denied, refilled, refill_discrepancy, concentration_changed, drug_at_tip, suspended, resumed,
fault and fault_cleared (and, with a battery, eri, eos and telemetry_session).
``stroke_batch`` summaries are never produced by the reference.

Battery (``battery=`` the dict of ``itb.models.BatteryModel.exact()``): used(t) = quiescent ×
(t − t0) + stroke_pc per stroke + tone_pc per alarm tone + telemetry_pc per session, each charge
counting from its own ms; remaining = capacity − used, clamped at 0.  Active alarms (low_reservoir,
ERI: non-critical; reservoir_empty, motor_stall, EOS: critical) tone at r + k·interval, k >= 1;
refills clear the reservoir alarms, clear_fault() the stall; ERI/EOS never clear.  ERI / EOS at
the first ms with remaining <= eri_pc / eos_pc; at EOS delivery stops for good (a stroke at the
EOS ms still fires).  Crossings and tone counts are closed-form (bisection), never walked.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

D = 86_400_000  # ms per day
WEEK = 7 * D
# t = 0 is Thursday 1970-01-01 00:00, so the first Monday 00:00 is 1970-01-05 00:00 = 4 days.
FIRST_MONDAY_MS = 4 * D

PERIODS = {"day": (D, 0), "week": (WEEK, FIRST_MONDAY_MS)}  # name -> (length, anchor)

# Events at the same ms are ordered by this kind order (DESIGN.md lists kinds in this order),
# then by the order in which they were produced.
EVENT_KINDS = [
    "stroke_batch",
    "program_changed",
    "bolus_started",
    "bolus_completed",
    "bolus_cancelled",
    "bolus_adjusted",
    "patient_bolus_granted",
    "patient_bolus_denied",
    "low_reservoir",
    "reservoir_empty",
    "refilled",
    "refill_discrepancy",
    "concentration_changed",
    "drug_at_tip",
    "eri",
    "eos",
    "suspended",
    "resumed",
    "fault",
    "fault_cleared",
    "telemetry_session",
    "path_replaced",
]
EVENT_KIND_ORDER = {kind: rank for rank, kind in enumerate(EVENT_KINDS)}
# The kinds the original model reported (all that is reported unless ``all_events=True``).
LEGACY_EVENT_KINDS = frozenset(
    [
        "bolus_started",
        "bolus_completed",
        "bolus_cancelled",
        "bolus_adjusted",
        "low_reservoir",
        "reservoir_empty",
    ]
)

FL_PER_NL = 1_000_000  # physical ledgers: 1 nL = 10**6 fL; mass in ag = fL × µg/mL
PPM = 1_000_000

PATIENT_REASONS = (
    "not_enabled",
    "suspended",
    "fault",
    "reservoir_empty",
    "lockout",
    "daily_maximum",
    "would_exceed_max_rate",
)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def round_half_even(x: Fraction) -> int:
    """Round an exact rational to the nearest int, ties to even (Fraction.__round__ does that)."""
    return round(Fraction(x))


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for ints, b > 0."""
    return -((-a) // b)


def to_scaled(x: float, power: int) -> int:
    """Decimal form of ``x`` (its shortest round-trip repr) × 10**power, rounded half-even.

    to_scaled(0.0125, 3) == 12 (12.5 ng -> 12), to_scaled(2.5, 0) == 2, to_scaled(3.5, 0) == 4.
    """
    scaled = Decimal(repr(x)).scaleb(power)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def ug_to_ng(ug: float) -> int:
    return to_scaled(ug, 3)


def ml_to_nl(ml: float) -> int:
    return to_scaled(ml, 6)


def ug_per_day_to_ng_per_day(ug_per_day: float) -> int:
    return to_scaled(ug_per_day, 3)


def volume_rate_nl_per_day(ng_per_day: int, conc_ug_per_ml: int) -> int:
    """ng/day -> nL/day at a concentration: ng × 1000 / (µg/mL), round half-even."""
    return round_half_even(Fraction(ng_per_day * 1000, conc_ug_per_ml))


def bolus_volume_nl(dose_ng: int, conc_ug_per_ml: int) -> int:
    """Bolus dose (ng) -> volume (nL) at a concentration, round half-even."""
    return round_half_even(Fraction(dose_ng * 1000, conc_ug_per_ml))


# --------------------------------------------------------------------------------------------
# Basal program
# --------------------------------------------------------------------------------------------


class _Basal:
    """A basal program with its step rates converted to nL/day at one concentration.

    ``program`` is ``("continuous", ng_per_day)`` or
    ``("flex", "day" | "week", [(offset_ms, ng_per_day), ...])``.
    """

    def __init__(self, program, conc_ug_per_ml: int):
        kind = program[0]
        if kind == "continuous":
            self.period = None
            self.anchor = 0
            self.offsets = [0]
            self.rates = [volume_rate_nl_per_day(program[1], conc_ug_per_ml)]
        elif kind == "flex":
            self.period, self.anchor = PERIODS[program[1]]
            steps = sorted(program[2])
            assert steps and steps[0][0] == 0, "flex steps must start at offset 0"
            assert steps[-1][0] < self.period, "flex step offset beyond the period"
            self.offsets = [offset for offset, _ in steps]
            self.rates = [volume_rate_nl_per_day(ng, conc_ug_per_ml) for _, ng in steps]
        else:
            raise ValueError(f"unknown program kind {kind!r}")

    def rate_and_next_change(self, t: int) -> tuple[int, int | None]:
        """(rate in force over [t, t+1), first time > t at which the rate may change)."""
        if self.period is None:
            return self.rates[0], None
        phase = (t - self.anchor) % self.period  # Python's % is a floor modulo: fine for t < 0
        period_start = t - phase
        # the step in force is the last one whose offset is <= phase
        i = len(self.offsets) - 1
        while self.offsets[i] > phase:
            i -= 1
        if i + 1 < len(self.offsets):
            next_change = period_start + self.offsets[i + 1]
        else:
            next_change = period_start + self.period
        return self.rates[i], next_change


# --------------------------------------------------------------------------------------------
# Bolus
# --------------------------------------------------------------------------------------------


@dataclass
class _Bolus:
    """A bolus of ``volume_nl`` starting at ``start_ms``.

    It adds ``rate`` (r_b) per ms from the start; the last ms [end-1, end) adds only what is left
    so that the total is exactly volume·D.  Its contribution at time t >= start is therefore
    min(r_b·(t − start), volume·D).  Cancelling it at time c drops every increment of an
    interval [t, t+1) with t >= c.
    """

    bolus_id: int
    start_ms: int
    volume_nl: int
    rate: int  # r_b, nL/day (= per-ms increment of A)
    end_ms: int  # e: the contribution reaches volume·D at e
    last_increment: int  # increment of the interval [e-1, e)
    cancelled_ms: int | None = None
    started_reported: bool = False
    finished: bool = False  # completed or cancelled
    dose_ng: int = 0  # the prescribed dose (what a concentration change re-derives the volume from)
    duration_ms: int = 0  # the programmed duration

    @classmethod
    def make(
        cls, bolus_id: int, start_ms: int, volume_nl: int, duration_ms: int, dose_ng: int = 0
    ) -> _Bolus:
        total = volume_nl * D
        if total == 0:
            # A zero-volume bolus adds nothing and is complete the moment it starts.
            return cls(
                bolus_id,
                start_ms,
                volume_nl,
                0,
                start_ms,
                0,
                dose_ng=dose_ng,
                duration_ms=duration_ms,
            )
        rate = ceil_div(total, duration_ms)
        n_ms = ceil_div(total, rate)  # <= duration_ms
        last = total - rate * (n_ms - 1)  # in (0, rate]
        return cls(
            bolus_id,
            start_ms,
            volume_nl,
            rate,
            start_ms + n_ms,
            last,
            dose_ng=dose_ng,
            duration_ms=duration_ms,
        )

    def increment_at(self, t: int) -> int:
        """What this bolus adds to A over the interval [t, t+1)."""
        if self.cancelled_ms is not None and t >= self.cancelled_ms:
            return 0
        if t < self.start_ms or t >= self.end_ms:
            return 0
        if t == self.end_ms - 1:
            return self.last_increment
        return self.rate

    def next_change_after(self, t: int) -> int | None:
        """First time > t at which increment_at may change."""
        for candidate in (self.start_ms, self.end_ms - 1, self.end_ms):
            if candidate > t:
                return candidate
        return None


# --------------------------------------------------------------------------------------------
# The pump
# --------------------------------------------------------------------------------------------


class RefPump:
    """Reference pump: exact integer stroke timing, reservoir, alarms, bolus events, the physical
    fluid path (fL/ag ledgers), refills, suspend/resume, motor-stall faults and patient boluses.

    ``max_rate_nl_per_day`` (the model's maximum total rate) is only used by the patient-bolus
    "would_exceed_max_rate" check (None: no limit).  The reference does not validate programs or
    clinician boluses against the model's limits; tests predict those errors themselves, with
    :meth:`peak_rate` for the rate limit.
    """

    def __init__(
        self,
        *,
        now_ms: int,
        stroke_nl: int,
        capacity_nl: int,
        reservoir_nl: int,
        low_reservoir_nl: int,
        conc_ug_per_ml: int,
        program,
        pump_path_nl: int = 0,
        catheter_nl: int = 0,
        path_primed: bool = True,
        stroke_error_ppm: int = 0,
        max_rate_nl_per_day: int | None = None,
        all_events: bool = False,
        battery: dict | None = None,
    ):
        if reservoir_nl > capacity_nl:
            raise ValueError("initial fill exceeds the reservoir capacity")
        if pump_path_nl < 0 or catheter_nl < 0:
            raise ValueError("negative fluid path volume")
        if stroke_error_ppm <= -PPM:
            raise ValueError("a stroke must move some fluid")
        self.now_ms = now_ms
        self.stroke_nl = stroke_nl
        self.capacity_nl = capacity_nl
        self.low_reservoir_nl = low_reservoir_nl
        self.conc_ug_per_ml = conc_ug_per_ml
        self.max_rate_nl_per_day = max_rate_nl_per_day
        self.all_events = all_events

        self.program = program
        self._basal = _Basal(program, conc_ug_per_ml)

        self.accumulator = 0  # A, nL·ms/day, never reset
        self.strokes = 0
        self.stroke_times: list[int] = []
        # Firmware ledgers (nL): what the pump counts.  filled_nl counts reservoir fills only,
        # withdrawn_nl the firmware's reservoir count at each refill.
        self.pumped_nl = 0
        self.withdrawn_nl = 0
        self.filled_nl = 0
        self.reservoir_nl = 0

        # Physical ledgers (fL, and ag = fL × µg/mL).
        self.stroke_error_ppm = stroke_error_ppm
        self.stroke_fl = stroke_nl * (PPM + stroke_error_ppm)  # what one stroke really moves
        self.pump_path_nl = pump_path_nl
        self.catheter_nl = catheter_nl
        self.true_reservoir_fl = 0
        self.filled_fl = 0
        self.filled_ag = 0
        self.withdrawn_fl = 0
        self.withdrawn_ag = 0
        self.delivered_fl = 0
        self.delivered_ag = 0
        path_fl = (pump_path_nl + catheter_nl) * FL_PER_NL
        path_conc = conc_ug_per_ml if path_primed else 0
        # The path FIFO: [fL, µg/mL] parcels, tip (oldest) first; adjacent parcels differ in conc.
        self._path: deque[list[int]] = deque([[path_fl, path_conc]] if path_fl else [])
        self.path_fl = path_fl
        self.path_ag = path_fl * path_conc
        self.filled_fl += path_fl
        self.filled_ag += path_fl * path_conc
        # Concentration of the fluid last at the tip (the reservoir's when there is no path).
        self.tip_conc = path_conc if path_fl else conc_ug_per_ml

        self._boluses: dict[int, _Bolus] = {}  # every bolus ever programmed
        self._open: list[_Bolus] = []  # boluses with increments or events still to come
        self._next_bolus_id = 1

        self._delivering = False  # the reservoir is not empty (firmware count >= q)
        self.suspended = False
        self.stalled = False
        self._low_armed = False
        self._events: list[tuple[int, int, int, str, dict]] = []  # (t, kind rank, seq, kind, data)
        self._running = False  # inside _run_to: events go to _run_buffer first
        self._run_buffer: list[tuple[int, int, int, str, dict]] = []
        self._seq = 0

        self.patient_limits: tuple[int, int, int, int] | None = None
        self.patient_grants: list[int] = []  # times of granted patient boluses

        # Battery (None: no accounting, never ERI/EOS).  used(t) = quiescent × (t − t0) + the
        # discrete charges (strokes, tones, telemetry) at times <= t, clamped to the capacity.
        self.battery = None if battery is None else dict(battery)
        self._bat_t0 = now_ms
        self._bat_t = now_ms  # crossings checked and tones counted for every time <= this
        self._bat_charges = 0  # sum of the discrete charges so far (pC)
        self.tones = 0
        self.eri = False
        self.eos = False
        self.eri_ms: int | None = None
        self.eos_ms: int | None = None
        # Active alarms that sound tones: name -> (raised_ms, interval_ms).
        self.alarms: dict[str, tuple[int, int]] = {}
        self._assume_refills = False  # projection copies only: never low or empty
        if self.battery is not None:
            self._bat_check(now_ms)

        self._fill(reservoir_nl)

    # ---- public API ---------------------------------------------------------------------

    @property
    def delivering(self) -> bool:
        """The reservoir is not empty (usable >= q).  Kept with its original meaning; whether
        strokes can actually fire is :attr:`running` (also not suspended, not stalled)."""
        return self._delivering

    @property
    def empty(self) -> bool:
        return not self._delivering

    @property
    def running(self) -> bool:
        """A accumulates: reservoir not empty, not suspended, no motor-stall fault, not at EOS."""
        return self._delivering and not self.suspended and not self.stalled and not self.eos

    # ---- battery ----------------------------------------------------------------------------

    def battery_used_pc(self, t: int | None = None) -> int:
        """Charge used by time ``t`` (default now; t must be >= the last evaluated time's
        discrete charges, i.e. only meaningful for t >= the last charge), clamped."""
        if self.battery is None:
            return 0
        t = self.now_ms if t is None else t
        used = self._bat_charges + self.battery["quiescent_pc_per_ms"] * (t - self._bat_t0)
        return min(used, self.battery["capacity_pc"])

    @property
    def battery_remaining_pc(self) -> int | None:
        if self.battery is None:
            return None
        return self.battery["capacity_pc"] - self.battery_used_pc()

    def telemetry_session(self) -> None:
        """A programmer session now: costs telemetry_pc at now (may raise ERI/EOS now)."""
        self._emit(self.now_ms, "telemetry_session", {})
        if self.battery is None:
            return
        self._bat_charges += self.battery["telemetry_pc"]
        self._bat_check(self.now_ms)

    def _raise_alarm(self, name: str, t: int, critical: bool) -> None:
        if (
            self.battery is None
            or self._assume_refills
            and name in ("low_reservoir", "reservoir_empty")
        ):
            return
        b = self.battery
        self.alarms[name] = (t, b["critical_tone_ms"] if critical else b["non_critical_tone_ms"])

    def _clear_alarm(self, name: str) -> None:
        self.alarms.pop(name, None)

    def _tones_between(self, a: int, t: int) -> int:
        """Number of tones with time in (a, t] of the active alarms (tones at r + k·interval,
        k >= 1), in closed form."""
        n = 0
        for r, interval in self.alarms.values():
            n += max(0, (t - r) // interval) - max(0, (a - r) // interval)
        return n

    def _bat_check(self, t: int) -> None:
        """Raise ERI / EOS at t if remaining(t) (all charges at t counted) is at or below them."""
        b = self.battery
        remaining = b["capacity_pc"] - self.battery_used_pc(t)
        if not self.eri and remaining <= b["eri_pc"]:
            self.eri = True
            self.eri_ms = t
            self._emit(t, "eri", {"remaining_pc": remaining})
            self._raise_alarm("eri", t, critical=False)
        if not self.eos and remaining <= b["eos_pc"]:
            self.eos = True
            self.eos_ms = t
            self._emit(t, "eos", {"remaining_pc": remaining})
            self._raise_alarm("eos", t, critical=True)

    def _bat_to(self, t_to: int) -> None:
        """Count tones and find ERI/EOS crossings for every time in (evaluated, t_to].

        Until the alarm set changes, used(t) = charges + quiescent·(t − t0) + tone·tones(t) is
        monotone in t with tones counted in closed form, so the first crossing ms of a threshold
        is found by bisection; never walks milliseconds or tones.
        """
        b = self.battery
        if b is None:
            return
        q, tone_pc = b["quiescent_pc_per_ms"], b["tone_pc"]
        while self._bat_t < t_to:
            a = self._bat_t
            threshold = None if self.eos else (b["eos_pc"] if self.eri else b["eri_pc"])

            def used_at(t: int) -> int:
                return (
                    self._bat_charges + q * (t - self._bat_t0) + tone_pc * self._tones_between(a, t)
                )

            if threshold is None or used_at(t_to) < b["capacity_pc"] - threshold:
                n = self._tones_between(a, t_to)
                self.tones += n
                self._bat_charges += tone_pc * n
                self._bat_t = t_to
                return
            lo, hi = a + 1, t_to  # first t in [lo, hi] with used_at(t) >= capacity − threshold
            target = b["capacity_pc"] - threshold
            while lo < hi:
                mid = (lo + hi) // 2
                if used_at(mid) >= target:
                    hi = mid
                else:
                    lo = mid + 1
            n = self._tones_between(a, lo)
            self.tones += n
            self._bat_charges += tone_pc * n
            self._bat_t = lo
            self._bat_check(lo)  # raises ERI (and EOS if also crossed): the alarm set changes

    @property
    def path_volume_fl(self) -> int:
        return self.path_fl

    @property
    def delivered_nl(self) -> int:
        return self.delivered_fl // FL_PER_NL

    @property
    def delivered_pg(self) -> int:
        return self.delivered_ag // FL_PER_NL

    @property
    def path_parcels(self) -> list[tuple[int, int]]:
        """The path FIFO, tip first: [(fL, µg/mL), …]."""
        return [(fl, c) for fl, c in self._path]

    def conservation_fl(self) -> tuple[int, int]:
        """(filled, reservoir + path + delivered + withdrawn) in fL: equal by construction."""
        return (
            self.filled_fl,
            self.true_reservoir_fl + self.path_fl + self.delivered_fl + self.withdrawn_fl,
        )

    def conservation_ag(self) -> tuple[int, int]:
        """(filled, reservoir + path + delivered + withdrawn) in ag."""
        reservoir_ag = self.true_reservoir_fl * self.conc_ug_per_ml
        return self.filled_ag, reservoir_ag + self.path_ag + self.delivered_ag + self.withdrawn_ag

    def revise_catheter(self, catheter_nl: int) -> None:
        """Replace only the catheter: the ``catheter_nl`` of fluid nearest the tip (the old
        catheter) is withdrawn, the tubing keeps its fluid, the new catheter holds saline."""
        removed: list[tuple[int, int]] = []
        need = self.catheter_nl * FL_PER_NL
        flat = [(fl, c) for fl, c in self._path]  # tip first
        kept: list[tuple[int, int]] = []
        for fl, c in flat:
            take = min(fl, need)
            need -= take
            if take:
                removed.append((take, c))
            if fl - take:
                kept.append((fl - take, c))
        new_fl = catheter_nl * FL_PER_NL
        self._replace_path(([(new_fl, 0)] if new_fl else []) + kept, removed, new_fl)
        self.catheter_nl = catheter_nl

    def replace_fluid_path(self, catheter_nl: int) -> None:
        """Replace tubing and catheter: the whole old path is withdrawn, the new one is saline."""
        new_fl = (self.pump_path_nl + catheter_nl) * FL_PER_NL
        removed = [(fl, c) for fl, c in self._path]
        self._replace_path([(new_fl, 0)] if new_fl else [], removed, new_fl)
        self.catheter_nl = catheter_nl

    def _replace_path(self, parcels, removed, saline_fl: int) -> None:
        merged: list[list[int]] = []
        for fl, c in parcels:
            if merged and merged[-1][1] == c:
                merged[-1][0] += fl
            else:
                merged.append([fl, c])
        self._path = deque(merged)
        self.path_fl = sum(fl for fl, _ in merged)
        self.path_ag = sum(fl * c for fl, c in merged)
        self.withdrawn_fl += sum(fl for fl, _ in removed)
        self.withdrawn_ag += sum(fl * c for fl, c in removed)
        self.filled_fl += saline_fl
        self.tip_conc = merged[0][1] if merged else self.conc_ug_per_ml
        self._emit(self.now_ms, "path_replaced", {})

    def set_program(self, program) -> None:
        """Replace the basal program from now on (A and its remainder carry over)."""
        self._basal = _Basal(program, self.conc_ug_per_ml)
        self.program = program
        self._emit(self.now_ms, "program_changed", {})

    def bolus(self, dose_ng: int, duration_ms: int, start_ms: int | None = None) -> int:
        """Program a bolus; its volume is fixed now, at the current concentration."""
        start = self.now_ms if start_ms is None else start_ms
        if start < self.now_ms:
            raise ValueError("bolus start in the past")
        if duration_ms <= 0:
            raise ValueError("bolus duration must be positive")
        volume = bolus_volume_nl(dose_ng, self.conc_ug_per_ml)
        return self._add_bolus(start, volume, duration_ms, dose_ng)

    def cancel_bolus(self, bolus_id: int) -> None:
        """Stop a bolus's future increments from now on; emits bolus_cancelled at now."""
        b = self._boluses.get(bolus_id)
        if b is None:
            raise ValueError(f"unknown bolus id {bolus_id}")
        if b.finished:
            raise ValueError(f"bolus {bolus_id} already completed or cancelled")
        b.cancelled_ms = self.now_ms
        b.finished = True
        self._open.remove(b)
        self._emit(self.now_ms, "bolus_cancelled", {"bolus_id": bolus_id})

    def refill(
        self,
        added_nl: int,
        conc_ug_per_ml: int,
        aspirated_nl: int | None = None,
        tolerance_nl: int = 1_000_000,
        tolerance_ppm: int = 200_000,
    ) -> tuple[int, int, bool]:
        """Aspirate everything, fill ``added_nl`` at a (possibly new) concentration.

        expected = the firmware's reservoir count; aspirated = ``aspirated_nl`` (a measurement)
        or what is physically there (floor to nL).  Flagged iff |aspirated − expected| >
        max(tolerance_nl, expected × tolerance_ppm // 10⁶).  The physical reservoir is withdrawn
        entirely.  Events at now: refilled, refill_discrepancy (if flagged),
        concentration_changed (if changed), and low_reservoir / reservoir_empty for the new fill.
        Returns (expected_nl, aspirated_nl, flagged).
        """
        if added_nl > self.capacity_nl:
            raise ValueError("overfill: added volume exceeds the reservoir capacity")
        if added_nl < 0 or (aspirated_nl is not None and aspirated_nl < 0):
            raise ValueError("negative volume")
        expected = self.reservoir_nl
        aspirated = self.true_reservoir_fl // FL_PER_NL if aspirated_nl is None else aspirated_nl
        discrepancy = aspirated - expected
        flagged = abs(discrepancy) > max(tolerance_nl, expected * tolerance_ppm // PPM)

        old_conc = self.conc_ug_per_ml
        self._clear_alarm("low_reservoir")
        self._clear_alarm("reservoir_empty")
        self.withdrawn_nl += self.reservoir_nl
        self.reservoir_nl = 0
        self.withdrawn_fl += self.true_reservoir_fl
        self.withdrawn_ag += self.true_reservoir_fl * old_conc
        self.true_reservoir_fl = 0
        self.conc_ug_per_ml = conc_ug_per_ml
        self._basal = _Basal(self.program, conc_ug_per_ml)  # ng/day -> nL/day at the new conc

        self._emit(
            self.now_ms,
            "refilled",
            {"added_nl": added_nl, "aspirated_nl": aspirated, "expected_nl": expected},
        )
        if flagged:
            self._emit(self.now_ms, "refill_discrepancy", {"discrepancy_nl": discrepancy})
        if conc_ug_per_ml != old_conc:
            self._emit(
                self.now_ms,
                "concentration_changed",
                {"from_ug_per_ml": old_conc, "to_ug_per_ml": conc_ug_per_ml},
            )
            self._rederive_boluses()
        self._fill(added_nl)
        return expected, aspirated, flagged

    def _rederive_boluses(self) -> None:
        """Doses are prescribed in µg (DESIGN.md, field report 4): after a concentration change
        a bolus that has not started (start >= now) gets the volume of its dose at the new
        concentration (same start, same programmed duration) -> bolus_adjusted; one already
        running, or whose dose is now 0 nL or more than the reservoir, is cancelled ->
        bolus_cancelled with reason concentration_changed. The events come in the order the
        boluses start (ties: the order they were scheduled)."""
        for b in sorted(self._open, key=lambda b: (b.start_ms, b.bolus_id)):
            volume = bolus_volume_nl(b.dose_ng, self.conc_ug_per_ml)
            if b.start_ms >= self.now_ms and 1 <= volume <= self.capacity_nl:
                new = _Bolus.make(b.bolus_id, b.start_ms, volume, b.duration_ms, b.dose_ng)
                new.started_reported = b.started_reported
                self._boluses[b.bolus_id] = new
                self._open[self._open.index(b)] = new
                self._emit(
                    self.now_ms,
                    "bolus_adjusted",
                    {
                        "bolus_id": b.bolus_id,
                        "from_volume_nl": b.volume_nl,
                        "volume_nl": volume,
                        "dose_pg": volume * self.conc_ug_per_ml,
                        "end_ms": new.end_ms,
                        "reason": "concentration_changed",
                    },
                )
            else:
                b.cancelled_ms = self.now_ms
                b.finished = True
                self._open.remove(b)
                self._emit(
                    self.now_ms,
                    "bolus_cancelled",
                    {"bolus_id": b.bolus_id, "reason": "concentration_changed"},
                )

    def suspend(self) -> None:
        if self.suspended:
            raise ValueError("already suspended")
        self.suspended = True
        self._emit(self.now_ms, "suspended", {})

    def resume(self) -> None:
        if not self.suspended:
            raise ValueError("not suspended")
        self.suspended = False
        self._emit(self.now_ms, "resumed", {})

    def inject_motor_stall(self) -> None:
        if self.stalled:
            raise ValueError("a motor stall is already active")
        self.stalled = True
        self._emit(self.now_ms, "fault", {"fault": "motor_stall"})
        self._raise_alarm("motor_stall", self.now_ms, critical=True)

    def clear_fault(self) -> None:
        if not self.stalled:
            raise ValueError("no fault is active")
        self.stalled = False
        self._clear_alarm("motor_stall")
        self._emit(self.now_ms, "fault_cleared", {})

    def set_patient_bolus_limits(self, limits: tuple[int, int, int, int] | None) -> None:
        """``(dose_ng, duration_ms, lockout_ms, max_per_24h)`` or None to disable.  The history of
        grants is kept (lockout and the rolling 24 h window count earlier grants)."""
        if limits is not None:
            dose, duration, lockout, max_per_24h = limits
            if dose < 1 or duration < 1 or lockout < 0 or max_per_24h < 1:
                raise ValueError("invalid patient bolus limits")
            limits = (dose, duration, lockout, max_per_24h)
        self.patient_limits = limits

    def patient_denial(self) -> str | None:
        """Why a patient activation now would be denied (None: it would be granted)."""
        if self.patient_limits is None:
            return "not_enabled"
        if self.suspended:
            return "suspended"
        if self.stalled:
            return "fault"
        if not self._delivering:
            return "reservoir_empty"
        dose, duration, lockout, max_per_24h = self.patient_limits
        now = self.now_ms
        if self.patient_grants and now - self.patient_grants[-1] < lockout:
            return "lockout"
        if sum(1 for g in self.patient_grants if g > now - D) >= max_per_24h:
            return "daily_maximum"
        if self.max_rate_nl_per_day is not None:
            b = _Bolus.make(0, now, bolus_volume_nl(dose, self.conc_ug_per_ml), duration)
            if (
                b.end_ms > now
                and self.peak_rate(now, b.end_ms, extra_rate=b.rate) > self.max_rate_nl_per_day
            ):
                return "would_exceed_max_rate"
        return None

    def patient_bolus(self, at_ms: int | None = None) -> tuple[bool, str, int | None]:
        """Patient activation at ``at_ms`` (None = now; a later time first runs the pump there,
        keeping those events for the next advance).  Returns (granted, reason, bolus_id)."""
        if at_ms is not None:
            if at_ms < self.now_ms:
                raise ValueError("activation in the past")
            self._run_to(at_ms)
        reason = self.patient_denial()
        if reason is not None:
            self._emit(self.now_ms, "patient_bolus_denied", {"bolus_id": 0, "reason": reason})
            return False, reason, None
        dose, duration, _lockout, _max = self.patient_limits
        volume = bolus_volume_nl(dose, self.conc_ug_per_ml)
        bolus_id = self._next_bolus_id  # granted before its bolus_started is reported
        self._emit(
            self.now_ms, "patient_bolus_granted", {"bolus_id": bolus_id, "reason": "granted"}
        )
        self.patient_grants.append(self.now_ms)
        assert self._add_bolus(self.now_ms, volume, duration, dose) == bolus_id
        return True, "granted", bolus_id

    def peak_rate(
        self,
        start_ms: int,
        end_ms: int,
        extra_rate: int = 0,
        program=None,
        conc_ug_per_ml: int | None = None,
    ) -> int:
        """max over t in [start, end) of basal(t) + ``extra_rate`` + Σ r_b of the open
        (scheduled or running, not cancelled) boluses with start <= t < end_b (commanded rates
        r_b, not the smaller last increment).  ``program``/``conc``: evaluate another basal
        program or concentration (default: the current ones).  0 if the interval is empty."""
        if end_ms <= start_ms:
            return 0
        basal = self._basal
        if program is not None or conc_ug_per_ml is not None:
            basal = _Basal(
                self.program if program is None else program,
                self.conc_ug_per_ml if conc_ug_per_ml is None else conc_ug_per_ml,
            )
        spans = [(b.start_ms, b.end_ms, b.rate) for b in self._open if not b.finished]
        edges = sorted({s for s, _, _ in spans} | {e for _, e, _ in spans})
        best = 0
        t = start_ms
        while t < end_ms:
            rate, next_change = basal.rate_and_next_change(t)
            seg_end = end_ms if next_change is None else min(next_change, end_ms)
            for x in [t] + [x for x in edges if t < x < seg_end]:
                total = rate + extra_rate + sum(r for s, e, r in spans if s <= x < e)
                best = max(best, total)
            t = seg_end
        return best

    def advance_to(self, t_ms: int) -> list[tuple[int, str, dict]]:
        """Run to ``t_ms`` (every stroke with time <= t_ms fires) and return the events.

        Returned: events stamped by calls since the last advance, in call order, then those
        with time in (previous now, t_ms], sorted by (time, kind order, production order).
        """
        self._run_to(t_ms)
        events = self._events
        self._events = []
        return [(t, kind, data) for t, _rank, _seq, kind, data in events]

    def project(self, horizon_ms: int, assume_refills: bool = False) -> dict:
        """Times strictly after now and <= now + horizon, with no intervention.

        Simulates a deep copy in growing chunks and stops as soon as nothing more can be learned
        (all found, or delivery stopped with the battery settled, or the horizon reached).
        Keys: next_stroke, low_reservoir, reservoir_empty, and with a battery (or
        ``assume_refills``) eri and eos.  ``assume_refills``: the copy is refilled on time (topped up to capacity, same
        concentration, whenever it would be low or empty), so it is never low or empty and no
        new reservoir alarm sounds (alarms already active keep sounding; a pump already empty
        stays empty); low_reservoir and reservoir_empty are then None.
        """
        result = {"next_stroke": None, "low_reservoir": None, "reservoir_empty": None}
        if self.battery is not None or assume_refills:
            result.update(eri=None, eos=None)  # (without a battery: the original three keys)
        end = self.now_ms + horizon_ms
        if horizon_ms <= 0:
            return result

        saved_times = self.stroke_times
        self.stroke_times = []  # don't deep-copy a long history
        try:
            sim = copy.deepcopy(self)
        finally:
            self.stroke_times = saved_times
        sim._events = []  # events stamped at now are not "strictly after now"
        if assume_refills:
            # From now on never low or empty (topped up whenever it would be): no new reservoir
            # alarm.  Alarms already raised before now were not refilled: they keep sounding,
            # and a pump already empty stays empty (the Rust core's reading, checked in tests).
            sim._assume_refills = True

        def battery_settled() -> bool:
            return sim.battery is None or sim.eos

        t = self.now_ms
        chunk = D
        while t < end:
            t = min(end, t + chunk)
            chunk *= 2
            for when, kind, _data in sim.advance_to(t):
                if kind in ("low_reservoir", "reservoir_empty") and result[kind] is None:
                    result[kind] = when
            if result["next_stroke"] is None and sim.stroke_times:
                result["next_stroke"] = sim.stroke_times[0]
            if not sim.running:
                if battery_settled():
                    break  # no stroke, hence no alarm, can happen without an intervention
                continue
            low_settled = result["low_reservoir"] is not None or not sim._low_armed
            if (
                result["next_stroke"] is not None
                and low_settled
                and (result["reservoir_empty"] or assume_refills)
                and battery_settled()
            ):
                break
        if "eri" in result and sim.eri_ms is not None and self.now_ms < sim.eri_ms <= end:
            result["eri"] = sim.eri_ms
        if sim.eos_ms is not None and self.now_ms < sim.eos_ms <= end:
            result["eos"] = sim.eos_ms
        return result

    # ---- internals ------------------------------------------------------------------------

    def _emit(self, t: int, kind: str, data: dict) -> None:
        if not self.all_events and kind not in LEGACY_EVENT_KINDS:
            return
        entry = (t, EVENT_KIND_ORDER[kind], self._seq, kind, data)
        self._seq += 1
        # Causal order: what a call stamps goes to the log at once, in call order; what the
        # simulation raises during one run is ordered by (time, kind order) at its end.
        (self._run_buffer if self._running else self._events).append(entry)

    def _run_to(self, t_ms: int) -> None:
        if t_ms < self.now_ms:
            raise ValueError("cannot go back in time")
        start = self.now_ms
        self._running, self._run_buffer = True, []
        try:
            self._deliver(start, t_ms)
            self._bat_to(t_ms)
            self._report_bolus_events(start, t_ms)
        finally:
            self._running = False
        self._events.extend(sorted(self._run_buffer))
        self._run_buffer = []
        self.now_ms = t_ms

    def _add_bolus(self, start: int, volume_nl: int, duration_ms: int, dose_ng: int = 0) -> int:
        b = _Bolus.make(self._next_bolus_id, start, volume_nl, duration_ms, dose_ng)
        self._next_bolus_id += 1
        self._boluses[b.bolus_id] = b
        self._open.append(b)
        # Events at the current time cannot be found by the next advance (it reports (now, t]).
        self._report_bolus_events(self.now_ms - 1, self.now_ms)
        return b.bolus_id

    def _fill(self, added_nl: int) -> None:
        """Put ``added_nl`` into an emptied reservoir, re-arm the low alarm, clear the empty
        state (suspension and faults stay as they are)."""
        self.reservoir_nl = added_nl
        self.filled_nl += added_nl
        added_fl = added_nl * FL_PER_NL
        self.true_reservoir_fl = added_fl
        self.filled_fl += added_fl
        self.filled_ag += added_fl * self.conc_ug_per_ml
        self._low_armed = True
        self._delivering = True
        self._check_reservoir(self.now_ms)

    def _check_reservoir(self, t: int) -> None:
        """Alarms after a fill or a stroke at time t."""
        if self._assume_refills:
            # Projection copy "as if refilled on time": never low or empty, no alarm, no tone.
            if self.reservoir_nl <= self.low_reservoir_nl or self.reservoir_nl < self.stroke_nl:
                self.reservoir_nl = self.capacity_nl
                self.true_reservoir_fl = self.capacity_nl * FL_PER_NL
                self._low_armed = True
                self._delivering = True
            return
        if self._low_armed and self.reservoir_nl <= self.low_reservoir_nl:
            self._low_armed = False
            self._emit(
                t,
                "low_reservoir",
                {"reservoir_nl": self.reservoir_nl, "threshold_nl": self.low_reservoir_nl},
            )
            self._raise_alarm("low_reservoir", t, critical=False)
        if self.reservoir_nl < self.stroke_nl:
            self._delivering = False
            self._emit(t, "reservoir_empty", {"reservoir_nl": self.reservoir_nl})
            self._raise_alarm("reservoir_empty", t, critical=True)

    def _fire_stroke(self, t: int) -> None:
        assert (
            self._delivering and self.reservoir_nl >= self.stroke_nl
        )  # (and running: see _deliver)
        self.reservoir_nl -= self.stroke_nl
        self.pumped_nl += self.stroke_nl
        self.strokes += 1
        if self.battery is not None:
            self._bat_charges += self.battery["stroke_pc"]  # checked when the battery reaches t
        self.stroke_times.append(t)
        moved = self.stroke_fl
        if moved > self.true_reservoir_fl:
            moved = self.true_reservoir_fl  # a dry reservoir moves only what is left
        if moved:
            self.true_reservoir_fl -= moved
            conc = self.conc_ug_per_ml
            path = self._path
            if conc == self.tip_conc and (not path or (len(path) == 1 and path[0][1] == conc)):
                # Fast path (nothing changes along the path): the same fluid enters and leaves.
                self.delivered_fl += moved
                self.delivered_ag += moved * conc
            else:
                self._push_through_path(t, moved, conc)
        if self.reservoir_nl <= self.low_reservoir_nl or self.reservoir_nl < self.stroke_nl:
            self._check_reservoir(t)

    def _push_through_path(self, t: int, volume_fl: int, conc: int) -> None:
        """``volume_fl`` at ``conc`` enters the path; the same volume of the oldest fluid leaves
        the tip (with no path, the fluid itself leaves)."""
        path = self._path
        if not path:
            leaving = [(volume_fl, conc)]
        else:
            if path[-1][1] == conc:
                path[-1][0] += volume_fl
            else:
                path.append([volume_fl, conc])
            self.path_ag += volume_fl * conc
            leaving = []
            need = volume_fl
            while need:
                head = path[0]
                take = min(head[0], need)
                leaving.append((take, head[1]))
                self.path_ag -= take * head[1]
                head[0] -= take
                need -= take
                if head[0] == 0:
                    path.popleft()
        for fl, c in leaving:
            self.delivered_fl += fl
            self.delivered_ag += fl * c
            if c != self.tip_conc:
                self._emit(t, "drug_at_tip", {"from_ug_per_ml": self.tip_conc, "to_ug_per_ml": c})
                self.tip_conc = c

    def _rate_and_next_change(self, t: int) -> tuple[int, int | None]:
        """Total per-ms increment over [t, t+1) and the first time > t it may change."""
        rate, next_change = self._basal.rate_and_next_change(t)
        for b in self._open:
            rate += b.increment_at(t)
            change = b.next_change_after(t)
            if change is not None and (next_change is None or change < next_change):
                next_change = change
        return rate, next_change

    def _deliver(self, t_from: int, t_to: int) -> None:
        """Accumulate A over [t_from, t_to) and fire the strokes with time in (t_from, t_to]."""
        q_day = self.stroke_nl * D
        t = t_from
        while t < t_to and self.running:
            rate, next_change = self._rate_and_next_change(t)
            seg_end = t_to if next_change is None else min(next_change, t_to)
            # The rate is constant on [t, seg_end): fire every stroke in (t, seg_end].
            while self._delivering and rate > 0:
                needed = (self.strokes + 1) * q_day - self.accumulator
                # Invariant (rates never exceed q per ms): A < next threshold at an evaluated t.
                assert needed > 0, "rate above one stroke per ms: outside the model"
                if rate * (seg_end - t) < needed:
                    break
                dt = ceil_div(needed, rate)
                if self.battery is not None:
                    self._bat_to(t + dt - 1)  # EOS strictly before the stroke ms stops it
                    if self.eos:
                        return  # delivery stops for good
                self.accumulator += rate * dt
                t += dt
                self._fire_stroke(t)
            if self._delivering:
                self.accumulator += rate * (seg_end - t)
                t = seg_end
        # While stopped, time passes but A is frozen and bolus increments are lost.

    def _report_bolus_events(self, t_from: int, t_to: int) -> None:
        """Emit bolus_started / bolus_completed with time in (t_from, t_to] (wall clock:
        reported whether or not delivery is running)."""
        still_open = []
        for b in self._open:
            if not b.started_reported and t_from < b.start_ms <= t_to:
                b.started_reported = True
                self._emit(b.start_ms, "bolus_started", {"bolus_id": b.bolus_id})
            if b.started_reported and t_from < b.end_ms <= t_to:
                b.finished = True
                self._emit(b.end_ms, "bolus_completed", {"bolus_id": b.bolus_id})
            if not b.finished:
                still_open.append(b)
        self._open = still_open
