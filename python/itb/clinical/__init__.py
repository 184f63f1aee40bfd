"""Clinical workflow on top of the pump: screening trial, initial daily dose, titration guard and
refill planner.

**An engineering tool, not a medical device: nothing here is dosing advice.**

Every clinical rule is transcribed from the baclofen intrathecal labelling (Lioresal Intrathecal
and Gablofen prescribing information, "Dosage and Administration"), as summarised with its source in
the docs (``docs: facts.md#baclofen-intrathecal-labelling``). Each rule's
docstring quotes the row it implements. Device figures come from the Rust-backed :class:`~itb.Pump`
(``project()`` and a simulated ``copy()``); this module holds no delivery math.

Doses are compared exactly: µg become integer ng by the package's one rounding rule
(round-half-even from the float's shortest decimal form), so 300 → 390 µg/day is exactly +30 %.

Decisions where the labelling is silent
---------------------------------------
Screening (:class:`ScreeningTrial`)
    "24 h later" is read as *at least* 24 h after the previous test dose, with no upper bound. A
    response may be recorded no earlier than 4 h after its dose (the label's 4–8 h observation);
    an adequate response must state its effect duration (it decides the initial dose), and no
    effect duration may exceed the time from the dose to the assessment. The 25 µg paediatric
    first dose is not modelled.
Initial dose (:func:`initial_daily_dose`)
    "more than 8 hours" is strict: an effect of exactly 8 h doubles the dose.
Titration (:class:`TitrationGuard`)
    * The percentage is of the current daily dose. Because increases are at most once per 24 h,
      this is the same as "the dose never rises by more than the limit within any 24 h window"
      (the property test checks that window form independently).
    * "Once per 24 h" is stated for titration; the guard applies it in maintenance too. An
      increase exactly 24 h after the previous one is allowed.
    * Increases smaller than the labelled step (10 % spinal, 5 % cerebral) are allowed and flagged
      ``below_labelled_step``.
    * **Decreases are never denied**: a guard must not stand in the way of lowering a dose (the
      overdose signs in the labelling call for it). A decrease of more than 20 % in one step is
      allowed but flagged ``decrease_beyond_label`` and its reason recalls the boxed warning on
      abrupt withdrawal; a decrease to 0 is also flagged ``stop``; a decrease below 10 % is flagged
      ``below_labelled_step``. Decreases do not count towards "once per 24 h".
    * **Restart from 0** (docs: decisions/core.md#titration-restart-from-0): a percentage of 0 is
      0, so the per-24 h rule cannot judge a restart; the labelling expects therapy to be
      re-introduced after an interruption and asks for care when it is (overdosage section; a
      case series reports overdose about 6 h after re-starting a pre-"drug holiday" dose:
      Delhaas & Brouwers, "Intrathecal baclofen overdose: report of 7 events in 5 patients",
      1991). Rule: from a recorded 0, a dose up to the dose in force before the stop (and up to
      ``max_ug_per_day``) is allowed, code ``restart``, flagged ``restart``; exactly the full
      pre-stop dose is allowed but also flagged ``overdose_risk`` (a warning, not a denial: after
      a short interruption, e.g. a pump replacement, the full dose is the usual restart, and a
      denial would push clinics to bypass the guard); above it is denied (``exceeds_restart``).
      A restart is not held back by "once per 24 h" (ending an interruption must not wait: the
      withdrawal boxed warning) but counts as an increase: the next increase waits 24 h and is
      judged by the usual percentage of the restart dose. With no positive dose recorded before
      the 0 there is nothing to judge against: ``no_prior_dose`` (denied; seed the history).
    * Only increases are checked against ``max_ug_per_day``; keeping or lowering a dose that is
      still above it is allowed and flagged ``above_maximum``.
    * No figure is asserted for the absolute maximum: the caller gives it.
Refill planning (:func:`plan_refill`)
    * Constraints: the low-reservoir alarm minus ``margin`` (default 3 days: clinic guidance "schedule a
      few days before the alarm date", docs: facts.md#baclofen-intrathecal-labelling); the fill date plus the drug stability the caller gives
      (no figure asserted; the fill date defaults to ``pump.now``, i.e. plan right after a refill);
      the battery ERI (no margin: ERI is itself the ≈ 90-day warning before EOS; once at ERI, EOS
      minus ``margin`` takes its place). The earliest is the deadline.
    * The refill is booked at the clinic's appointment time (default 09:00) on the latest open day
      whose appointment is at or before the deadline and not before now; if there is none, the next
      open appointment after now is returned with ``on_time=False``.
    * Volume to order: an itb refill aspirates and discards what is left (see
      :meth:`itb.Pump.refill`), so the order is the fill volume (default: the reservoir capacity),
      rounded up to whole vials when ``vial_ml`` is given. What is expected to be left at the
      refill date is reported as ``expected_residual_ml`` (drug that will be discarded).
    * The default :class:`ClinicCalendar` is closed on Saturdays, Sundays and US public holidays
      (``holidays`` package, a core dependency of itb; observed dates included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from .._limits import MS_PER_DAY as _DAY_MS
from .._limits import MS_PER_HOUR as _HOUR_MS
from .._time import duration_ms, from_ms, to_ms
from .._units import ug_to_ng
from ..errors import ProtocolViolation, ValidationError

__all__ = [
    "SCREENING_DOSES_UG",
    "ScreeningOutcome",
    "ScreeningDose",
    "ScreeningStep",
    "ScreeningTrial",
    "initial_daily_dose",
    "INCREASE_LIMIT_PCT",
    "DoseChange",
    "TitrationDecision",
    "TitrationGuard",
    "ClinicCalendar",
    "RefillCandidate",
    "RefillPlan",
    "plan_refill",
]

from ._fmt import Time, _fmt_duration, _fmt_time, _fmt_ug, _ug  # noqa: F401

#: "50 µg in 1 mL by barbotage over ≥ 1 min, observe 4–8 h; if inadequate 75 µg 24 h later; then
#: 100 µg 24 h later; no response to 100 µg → not a candidate".
SCREENING_DOSES_UG: tuple[int, ...] = (50, 75, 100)
#: Least time between two screening doses (labelling: "24 h later").
SCREENING_INTERVAL = timedelta(hours=24)
#: The observation window after each screening dose (labelling: "observe 4–8 h").
OBSERVATION_WINDOW = (timedelta(hours=4), timedelta(hours=8))


class ScreeningOutcome(str, Enum):
    """Result of a screening trial."""

    PENDING = "pending"
    CANDIDATE = "candidate"
    NOT_CANDIDATE = "not_candidate"


@dataclass(frozen=True)
class ScreeningDose:
    """One screening test bolus: ``dose_ug`` µg given at ``at``; ``adequate`` is ``None`` until its
    response is recorded (at ``assessed_at``), with how long the effect lasted
    (``effect_duration``, required when adequate)."""

    dose_ug: float
    at: datetime
    adequate: bool | None = None
    assessed_at: datetime | None = None
    effect_duration: timedelta | None = None


@dataclass(frozen=True)
class ScreeningStep:
    """What the protocol allows next.

    ``action`` is ``"give_dose"`` (``dose_ug`` at or after ``earliest``), ``"record_response"``
    (at or after ``earliest`` = dose + 4 h; ``latest`` = dose + 8 h ends the labelled observation
    window, advisory) or ``"done"`` (the outcome is known); ``description`` says it in words.
    """

    action: str
    description: str
    dose_ug: float | None = None
    earliest: datetime | None = None
    latest: datetime | None = None


class ScreeningTrial:
    """The screening phase before implant, as the labelling gives it (docs: facts.md#baclofen-intrathecal-labelling, "screening"):

    * a 50 µg test bolus (1 mL by barbotage over ≥ 1 min), then observe for 4–8 h;
    * if the response is inadequate, 75 µg at least 24 h after the first dose;
    * if still inadequate, 100 µg at least 24 h after the second;
    * a patient with no response to 100 µg is not a candidate for an implanted pump.

    :meth:`give` records a dose, :meth:`record_response` its response; any other step is refused
    with :class:`~itb.errors.ProtocolViolation` (``.field`` and ``.reason`` say why), leaving the
    trial unchanged. Times are naive ``datetime`` (or int ms), truncated to the millisecond.

    >>> from datetime import datetime, timedelta
    >>> trial = ScreeningTrial()
    >>> _ = trial.give(50, at=datetime(2026, 3, 2, 9, 0))
    >>> _ = trial.record_response(False, at=datetime(2026, 3, 2, 15, 0))
    >>> step = trial.next_step()
    >>> step.dose_ug, step.earliest
    (75.0, datetime.datetime(2026, 3, 3, 9, 0))
    """

    def __init__(self) -> None:
        self._doses: list[ScreeningDose] = []

    # ----- state ----------------------------------------------------------------------------
    @property
    def doses(self) -> tuple[ScreeningDose, ...]:
        """Every dose given so far, in order, with its response."""
        return tuple(self._doses)

    @property
    def outcome(self) -> ScreeningOutcome:
        """``CANDIDATE`` after an adequate response, ``NOT_CANDIDATE`` after no response to the
        last (100 µg) dose, else ``PENDING``."""
        if self._doses and self._doses[-1].adequate is True:
            return ScreeningOutcome.CANDIDATE
        if len(self._doses) == len(SCREENING_DOSES_UG) and self._doses[-1].adequate is False:
            return ScreeningOutcome.NOT_CANDIDATE
        return ScreeningOutcome.PENDING

    @property
    def effective_dose(self) -> ScreeningDose | None:
        """The dose that gave an adequate response (``None`` unless a candidate)."""
        return self._doses[-1] if self.outcome is ScreeningOutcome.CANDIDATE else None

    def next_step(self) -> ScreeningStep:
        """What the protocol allows next (see :class:`ScreeningStep`)."""
        outcome = self.outcome
        if outcome is ScreeningOutcome.CANDIDATE:
            dose = self._doses[-1]
            return ScreeningStep("done", f"candidate: adequate response to {dose.dose_ug:g} µg")
        if outcome is ScreeningOutcome.NOT_CANDIDATE:
            return ScreeningStep(
                "done", f"not a candidate: no adequate response to {SCREENING_DOSES_UG[-1]} µg"
            )
        if self._doses and self._doses[-1].adequate is None:
            last = self._doses[-1]
            lo, hi = OBSERVATION_WINDOW
            return ScreeningStep(
                "record_response",
                f"observe the response to {last.dose_ug:g} µg for 4–8 h, then record it",
                earliest=last.at + lo,
                latest=last.at + hi,
            )
        dose_ug = float(SCREENING_DOSES_UG[len(self._doses)])
        if not self._doses:
            return ScreeningStep(
                "give_dose", f"give the {dose_ug:g} µg test bolus", dose_ug=dose_ug
            )
        earliest = self._doses[-1].at + SCREENING_INTERVAL
        return ScreeningStep(
            "give_dose",
            f"response inadequate: give {dose_ug:g} µg at least 24 h after the previous dose",
            dose_ug=dose_ug,
            earliest=earliest,
        )

    # ----- steps ----------------------------------------------------------------------------
    def give(self, dose_ug: float, at: Time) -> ScreeningDose:
        """Record a test bolus of ``dose_ug`` µg given at ``at``.

        Refused (:class:`~itb.errors.ProtocolViolation`) when the outcome is already known
        (``trial_closed``), the previous dose has no recorded response (``awaiting_response``),
        the dose is not the protocol's next one (``wrong_dose``, field ``dose_ug``) or it comes
        less than 24 h after the previous dose (``too_soon``, field ``at``).
        """
        dose_ng = ug_to_ng(dose_ug, "dose_ug")
        at_dt = from_ms(to_ms(at, "at"))
        if self.outcome is not ScreeningOutcome.PENDING:
            raise ProtocolViolation(
                f"dose_ug: the screening trial is over ({self.outcome.value}); no further test dose",
                "dose_ug",
                "trial_closed",
            )
        if self._doses and self._doses[-1].adequate is None:
            raise ProtocolViolation(
                f"dose_ug: the response to {self._doses[-1].dose_ug:g} µg given at {_fmt_time(self._doses[-1].at)} "
                "must be recorded first",
                "dose_ug",
                "awaiting_response",
            )
        expected = SCREENING_DOSES_UG[len(self._doses)]
        if dose_ng != expected * 1000:
            raise ProtocolViolation(
                f"dose_ug: {_fmt_ug(dose_ng)} µg is not the protocol's next test dose; "
                f"allowed: {expected} µg (sequence {', '.join(map(str, SCREENING_DOSES_UG))} µg)",
                "dose_ug",
                "wrong_dose",
            )
        if self._doses:
            earliest = self._doses[-1].at + SCREENING_INTERVAL
            if at_dt < earliest:
                gap = at_dt - self._doses[-1].at
                raise ProtocolViolation(
                    f"at: {expected} µg at {_fmt_time(at_dt)} is only {gap.total_seconds() / 3600:g} h after the "
                    f"previous dose; allowed: at least 24 h later, from {_fmt_time(earliest)}",
                    "at",
                    "too_soon",
                )
        record = ScreeningDose(dose_ug=float(expected), at=at_dt)
        self._doses.append(record)
        return record

    def record_response(
        self, adequate: bool, *, at: Time, effect_duration: timedelta | None = None
    ) -> ScreeningDose:
        """Record the response to the last dose, assessed at ``at`` (≥ 4 h after the dose:
        the labelling's 4–8 h observation). ``effect_duration`` (how long the effect lasted) is
        required when ``adequate`` and may not exceed the time from the dose to ``at``."""
        if not isinstance(adequate, bool):
            raise ValidationError(f"adequate: expected True or False, got {adequate!r}", "adequate")
        at_dt = from_ms(to_ms(at, "at"))
        if not self._doses or self._doses[-1].adequate is not None:
            raise ProtocolViolation(
                "adequate: no test dose is awaiting its response", "adequate", "no_dose_pending"
            )
        last = self._doses[-1]
        lo, _ = OBSERVATION_WINDOW
        if at_dt < last.at + lo:
            raise ProtocolViolation(
                f"at: {_fmt_time(at_dt)} is before the end of the 4 h minimum observation of the dose given at "
                f"{_fmt_time(last.at)}; allowed: from {_fmt_time(last.at + lo)}",
                "at",
                "observation_incomplete",
            )
        duration: timedelta | None = None
        if effect_duration is not None:
            duration = timedelta(milliseconds=duration_ms(effect_duration, "effect_duration"))
            if duration > at_dt - last.at:
                raise ValidationError(
                    f"effect_duration: {duration} is longer than the {at_dt - last.at} observed since the dose; "
                    f"allowed: 0 to {at_dt - last.at}",
                    "effect_duration",
                )
        elif adequate:
            raise ValidationError(
                "effect_duration: required for an adequate response (it decides the initial daily dose)",
                "effect_duration",
            )
        record = ScreeningDose(last.dose_ug, last.at, adequate, at_dt, duration)
        self._doses[-1] = record
        return record

    def initial_daily_dose(self) -> float:
        """The initial pump dose (µg/day) from the effective screening dose: see
        :func:`initial_daily_dose`. A ``ProtocolViolation`` unless the patient is a candidate."""
        dose = self.effective_dose
        if dose is None or dose.effect_duration is None:
            raise ProtocolViolation(
                f"outcome: {self.outcome.value}; an initial dose needs an adequate screening response",
                "outcome",
                "no_effective_dose",
            )
        return initial_daily_dose(dose.dose_ug, dose.effect_duration)


def initial_daily_dose(
    effective_screening_dose_ug: float, effect_hours: float | timedelta
) -> float:
    """Initial daily pump dose (µg/day) after implant.

    Labelling (docs: facts.md#baclofen-intrathecal-labelling, "initial pump dose"): "twice the effective screening dose per 24 h; the
    same dose if the screening effect lasted > 8 h". ``effect_hours`` is how long the effect of the
    effective screening dose lasted (hours, or a ``timedelta``); exactly 8 h still doubles.

    >>> initial_daily_dose(100, 6), initial_daily_dose(100, 10)
    (200.0, 100.0)
    """
    dose_ng = ug_to_ng(effective_screening_dose_ug, "effective_screening_dose_ug")
    if dose_ng == 0:
        raise ValidationError(
            "effective_screening_dose_ug: must be > 0 µg", "effective_screening_dose_ug"
        )
    if isinstance(effect_hours, timedelta):
        longer_than_8h = duration_ms(effect_hours, "effect_hours") > 8 * _HOUR_MS
    else:
        if (
            isinstance(effect_hours, bool)
            or not isinstance(effect_hours, (int, float))
            or not math.isfinite(effect_hours)
        ):
            raise ValidationError(
                f"effect_hours: expected a finite number of hours, got {effect_hours!r}",
                "effect_hours",
            )
        if effect_hours < 0:
            raise ValidationError(
                f"effect_hours: {effect_hours} h is negative; allowed: >= 0", "effect_hours"
            )
        longer_than_8h = effect_hours > 8
    return _ug(dose_ng if longer_than_8h else 2 * dose_ng)


# =================================================================================================
# Titration guard
# =================================================================================================

#: Largest increase of the daily dose per 24 h, in % of the current dose, by (origin, phase).
#: Labelling (docs: facts.md#baclofen-intrathecal-labelling): "post-implant titration: spinal origin +10–30 % once per 24 h; cerebral
#: origin +5–15 % once per 24 h"; "maintenance adjustments: spinal +10–40 %; cerebral +5–20 %".
INCREASE_LIMIT_PCT: dict[tuple[str, str], int] = {
    ("spinal", "titration"): 30,
    ("cerebral", "titration"): 15,
    ("spinal", "maintenance"): 40,
    ("cerebral", "maintenance"): 20,
}
#: Smallest labelled increase step (%): spinal 10 %, cerebral 5 % (same rows).
LABELLED_MIN_STEP_PCT: dict[str, int] = {"spinal": 10, "cerebral": 5}
#: Labelled decrease for side effects (%): "reduce 10–20 % for side effects" (docs: facts.md#baclofen-intrathecal-labelling).
LABELLED_DECREASE_PCT: tuple[int, int] = (10, 20)
#: At most one increase per this interval (labelling: "once per 24 h").
INCREASE_INTERVAL = timedelta(hours=24)

_ORIGINS = ("spinal", "cerebral")
_PHASES = ("titration", "maintenance")


@dataclass(frozen=True)
class DoseChange:
    """A change of the daily dose from ``from_ug_per_day`` to ``to_ug_per_day`` at ``at``."""

    at: datetime
    from_ug_per_day: float
    to_ug_per_day: float


@dataclass(frozen=True)
class TitrationDecision:
    """The guard's answer to a proposed daily dose (truthy when allowed).

    ``code``: ``increase``, ``decrease``, ``restart`` (from 0) or ``unchanged`` (allowed),
    ``exceeds_maximum``, ``too_soon``, ``exceeds_step``, ``exceeds_restart`` or
    ``no_prior_dose`` (denied); ``reason`` says it in words with the limit.
    ``limit_ng_per_day`` is the highest daily dose an increase may reach at ``at`` (the current dose
    while increases wait; never above the maximum); ``next_increase_at`` is the earliest time an
    increase may be proposed if this decision is recorded. ``flags`` mark allowed changes outside
    the labelled steps (``below_labelled_step``, ``decrease_beyond_label``, ``stop``,
    ``above_maximum``, ``restart``, ``overdose_risk``). Exact integers in ng/day; clinical floats in µg/day.
    """

    allowed: bool
    code: str
    reason: str
    at: datetime
    current_ng_per_day: int
    proposed_ng_per_day: int
    limit_ng_per_day: int
    flags: tuple[str, ...] = ()
    next_increase_at: datetime | None = None

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def current_ug_per_day(self) -> float:
        return _ug(self.current_ng_per_day)

    @property
    def proposed_ug_per_day(self) -> float:
        return _ug(self.proposed_ng_per_day)

    @property
    def limit_ug_per_day(self) -> float:
        return _ug(self.limit_ng_per_day)

    @property
    def change_pct(self) -> float | None:
        """Proposed change in % of the current dose (``None`` from 0)."""
        if self.current_ng_per_day == 0:
            return None
        return (
            100.0 * (self.proposed_ng_per_day - self.current_ng_per_day) / self.current_ng_per_day
        )


class TitrationGuard:
    """Checks proposed changes of the daily dose against the labelled limits.

    Labelling (docs: facts.md#baclofen-intrathecal-labelling): titration after implant — spinal origin +10–30 %, cerebral origin
    +5–15 %, "once per 24 h"; maintenance — spinal +10–40 %, cerebral +5–20 %; "reduce 10–20 % for
    side effects". Hence an increase is **denied** when it would exceed ``max_ug_per_day``, comes
    less than 24 h after the previous recorded increase, or exceeds the phase's limit
    (:data:`INCREASE_LIMIT_PCT`: 30/15 % in titration, 40/20 % in maintenance) of the current dose.
    Decreases are never denied (flagged beyond the labelled 10–20 %; see the module docstring).
    ``origin`` and ``phase`` have no default: the looser spinal limits must be chosen, not assumed.

    The guard remembers what it accepted:

    * :meth:`check` (``current``, ``proposed``, ``at``) → :class:`TitrationDecision`; changes nothing;
    * :meth:`record` (decision) stores an allowed decision (re-checked against the history, so a
      stale decision is refused);
    * :meth:`apply` = :meth:`check` then :meth:`record` when allowed; returns the decision.

    ``history`` seeds past changes (trusted, in time order), e.g. the initial programming at
    implant, ``DoseChange(implant, 0, 200)``: it counts as an increase, so the first titration
    step is possible 24 h later ("after the first 24 hours", labelling). Once there is a history,
    ``current`` must equal its last dose and ``at`` may not precede its last change
    (``ValidationError``). Without history, ``current`` is taken as in force for long enough.

    >>> from datetime import datetime
    >>> guard = TitrationGuard("spinal", "titration", max_ug_per_day=1000)
    >>> guard.apply(300, 390, at=datetime(2026, 3, 2, 9)).allowed
    True
    >>> guard.check(390, 400, at=datetime(2026, 3, 3, 8)).code
    'too_soon'
    """

    def __init__(
        self,
        origin: str,
        phase: str,
        *,
        max_ug_per_day: float,
        history: Iterable[DoseChange] = (),
    ) -> None:
        if origin not in _ORIGINS:
            raise ValidationError(
                f"origin: {origin!r}; allowed: {', '.join(map(repr, _ORIGINS))}", "origin"
            )
        if phase not in _PHASES:
            raise ValidationError(
                f"phase: {phase!r}; allowed: {', '.join(map(repr, _PHASES))}", "phase"
            )
        self.origin = origin
        self.phase = phase
        self._max_ng = ug_to_ng(max_ug_per_day, "max_ug_per_day")
        if self._max_ng == 0:
            raise ValidationError("max_ug_per_day: must be > 0 µg/day", "max_ug_per_day")
        # (at_ms, from_ng, to_ng) of every recorded change, in time order
        self._changes: list[tuple[int, int, int]] = []
        self._last_increase_ms: int | None = None
        for i, change in enumerate(history):
            if not isinstance(change, DoseChange):
                raise ValidationError(
                    f"history[{i}]: expected itb.clinical.DoseChange, got {type(change).__name__}",
                    "history",
                )
            at_ms = to_ms(change.at, f"history[{i}].at")
            frm = ug_to_ng(change.from_ug_per_day, f"history[{i}].from_ug_per_day")
            to = ug_to_ng(change.to_ug_per_day, f"history[{i}].to_ug_per_day")
            if self._changes and at_ms < self._changes[-1][0]:
                raise ValidationError(f"history[{i}].at: changes must be in time order", "history")
            if self._changes and frm != self._changes[-1][2]:
                raise ValidationError(
                    f"history[{i}].from_ug_per_day: {_fmt_ug(frm)} µg/day does not follow the previous change's "
                    f"{_fmt_ug(self._changes[-1][2])} µg/day",
                    "history",
                )
            self._store(at_ms, frm, to)

    # ----- state ----------------------------------------------------------------------------
    @property
    def max_ug_per_day(self) -> float:
        """The absolute daily maximum given by the caller (µg/day)."""
        return _ug(self._max_ng)

    @property
    def max_increase_pct(self) -> int:
        """Largest increase per 24 h in this origin and phase (% of the current dose)."""
        return INCREASE_LIMIT_PCT[(self.origin, self.phase)]

    @property
    def changes(self) -> tuple[DoseChange, ...]:
        """Every recorded change (history and accepted decisions), in time order."""
        return tuple(DoseChange(from_ms(t), _ug(a), _ug(b)) for t, a, b in self._changes)

    @property
    def current_ug_per_day(self) -> float | None:
        """The last recorded daily dose (``None`` before any change)."""
        return _ug(self._changes[-1][2]) if self._changes else None

    # ----- decisions ------------------------------------------------------------------------
    def check(
        self, current_ug_per_day: float, proposed_ug_per_day: float, at: Time
    ) -> TitrationDecision:
        """Is changing the daily dose from ``current_ug_per_day`` to ``proposed_ug_per_day`` at
        ``at`` within the limits? Pure: records nothing (see :meth:`record`, :meth:`apply`)."""
        cur = ug_to_ng(current_ug_per_day, "current_ug_per_day")
        new = ug_to_ng(proposed_ug_per_day, "proposed_ug_per_day")
        at_ms = to_ms(at, "at")
        self._check_continuity(cur, at_ms)
        return self._decide(cur, new, at_ms)

    def record(self, decision: TitrationDecision) -> None:
        """Store an allowed decision as a change (an unchanged dose stores nothing). A denied
        decision (reason ``denied``), or one made stale by a change recorded since (``stale``), is
        a :class:`~itb.errors.ProtocolViolation` and stores nothing."""
        if not isinstance(decision, TitrationDecision):
            raise ValidationError(
                f"decision: expected a TitrationDecision, got {type(decision).__name__}", "decision"
            )
        if not decision.allowed:
            raise ProtocolViolation(
                f"decision: a denied change cannot be recorded ({decision.reason})",
                "decision",
                "denied",
            )
        at_ms = to_ms(decision.at, "at")
        try:
            self._check_continuity(decision.current_ng_per_day, at_ms)
        except ValidationError as err:
            raise ProtocolViolation(f"decision: stale, {err}", err.field, "stale") from None
        fresh = self._decide(decision.current_ng_per_day, decision.proposed_ng_per_day, at_ms)
        if not fresh.allowed:
            raise ProtocolViolation(
                f"decision: no longer allowed: {fresh.reason}", "decision", "denied"
            )
        if decision.proposed_ng_per_day != decision.current_ng_per_day:
            self._store(at_ms, decision.current_ng_per_day, decision.proposed_ng_per_day)

    def apply(
        self, current_ug_per_day: float, proposed_ug_per_day: float, at: Time
    ) -> TitrationDecision:
        """:meth:`check`, and :meth:`record` the decision if allowed. Returns the decision."""
        decision = self.check(current_ug_per_day, proposed_ug_per_day, at)
        if decision.allowed:
            self.record(decision)
        return decision

    # ----- internals ------------------------------------------------------------------------
    def _store(self, at_ms: int, frm: int, to: int) -> None:
        self._changes.append((at_ms, frm, to))
        if to > frm:
            self._last_increase_ms = at_ms

    def _check_continuity(self, cur: int, at_ms: int) -> None:
        if not self._changes:
            return
        last_ms, _, last_to = self._changes[-1]
        if cur != last_to:
            raise ValidationError(
                f"current_ug_per_day: {_fmt_ug(cur)} µg/day is not the last recorded dose; allowed: {_fmt_ug(last_to)} µg/day",
                "current_ug_per_day",
            )
        if at_ms < last_ms:
            raise ValidationError(
                f"at: {_fmt_time(from_ms(at_ms))} precedes the last recorded change; allowed: from {_fmt_time(from_ms(last_ms))}",
                "at",
            )

    def _dose_before_stop(self) -> tuple[int, int] | None:
        """(dose before the stop in ng/day, time of the stop in ms) when the recorded dose is 0
        after a positive one; ``None`` when no positive dose was ever recorded."""
        if not self._changes or self._changes[-1][2] != 0:
            return None
        stop_ms = self._changes[-1][0]
        for _, frm, to in reversed(self._changes):
            if to > 0:
                return to, stop_ms
            if frm > 0:
                return frm, stop_ms
        return None

    def _decide_restart(self, new: int, at_ms: int) -> TitrationDecision:
        """A change from 0 to ``new`` > 0: the restart rule (module docstring, "Restart")."""
        at = from_ms(at_ms)
        change = f"0 → {_fmt_ug(new)} µg/day"
        before = self._dose_before_stop()
        if before is None:
            return TitrationDecision(
                False,
                "no_prior_dose",
                f"{change} denied: a start from 0 µg/day is judged against the dose before the "
                "stop, and none is recorded; seed the guard's history with it "
                "(DoseChange(stop_time, dose, 0)) or with the initial programming at implant "
                "(DoseChange(implant, 0, initial_dose))",
                at,
                0,
                new,
                0,
                (),
                at,
            )
        pre_ng, stop_ms = before
        limit = min(self._max_ng, pre_ng)
        gap = _fmt_duration(timedelta(milliseconds=at_ms - stop_ms))

        def deny(code: str, why: str) -> TitrationDecision:
            return TitrationDecision(
                False, code, f"{change} denied: {why}", at, 0, new, limit, (), at
            )

        if new > self._max_ng:
            return deny(
                "exceeds_maximum", f"above the absolute maximum of {_fmt_ug(self._max_ng)} µg/day"
            )
        if new > pre_ng:
            return deny(
                "exceeds_restart",
                f"a restart may not exceed the dose before the stop, {_fmt_ug(pre_ng)} µg/day "
                f"(stopped {gap} ago); titrate up from the restart dose",
            )
        flags: tuple[str, ...] = ("restart",)
        why = (
            f"restart {gap} after the stop, at or below the dose before it "
            f"({_fmt_ug(pre_ng)} µg/day)"
        )
        if new == pre_ng:
            flags = ("restart", "overdose_risk")
            why += (
                "; the full pre-stop dose: tolerance may have fallen during the interruption "
                "(overdose has been reported about 6 h after restarting a pre-interruption dose); "
                "watch the patient closely or restart lower"
            )
        return TitrationDecision(
            True,
            "restart",
            f"{change} allowed: {why}",
            at,
            0,
            new,
            limit,
            flags,
            from_ms(at_ms + _DAY_MS),
        )

    def _decide(self, cur: int, new: int, at_ms: int) -> TitrationDecision:
        if cur == 0 and new > 0:
            return self._decide_restart(new, at_ms)
        pct = self.max_increase_pct
        ctx = f"{self.phase} of spasticity of {self.origin} origin"
        next_ms = None if self._last_increase_ms is None else self._last_increase_ms + _DAY_MS
        waiting = next_ms is not None and at_ms < next_ms
        step_limit = cur * (100 + pct) // 100
        limit = min(self._max_ng, cur if waiting else step_limit)
        at = from_ms(at_ms)
        change = f"{_fmt_ug(cur)} → {_fmt_ug(new)} µg/day"
        rel = "" if cur == 0 else f" ({100 * (new - cur) / cur:+.4g} %)"
        next_at = from_ms(next_ms) if waiting and next_ms is not None else at

        def deny(code: str, why: str) -> TitrationDecision:
            return TitrationDecision(
                False, code, f"{change}{rel} denied: {why}", at, cur, new, limit, (), next_at
            )

        if new > cur:
            if new > self._max_ng:
                return deny(
                    "exceeds_maximum",
                    f"above the absolute maximum of {_fmt_ug(self._max_ng)} µg/day",
                )
            if waiting and next_ms is not None:
                return deny(
                    "too_soon",
                    f"increases at most once per 24 h in {ctx}; the last was at "
                    f"{_fmt_time(from_ms(next_ms - _DAY_MS))}, next allowed from {_fmt_time(from_ms(next_ms))}",
                )
            if new * 100 > cur * (100 + pct):
                return deny(
                    "exceeds_step",
                    f"above the +{pct} % per 24 h allowed in {ctx} (limit {_fmt_ug(limit)} µg/day)",
                )
            flags: tuple[str, ...] = ()
            min_step = LABELLED_MIN_STEP_PCT[self.origin]
            if new * 100 < cur * (100 + min_step):
                flags = ("below_labelled_step",)
            why = f"within +{pct} % per 24 h in {ctx}"
            if flags:
                why += f"; smaller than the labelled {min_step}–{pct} % step"
            return TitrationDecision(
                True,
                "increase",
                f"{change}{rel} allowed: {why}",
                at,
                cur,
                new,
                limit,
                flags,
                from_ms(at_ms + _DAY_MS),
            )
        if new < cur:
            lo, hi = LABELLED_DECREASE_PCT
            notes: list[str] = []
            dec_flags: list[str] = []
            if (cur - new) * 100 > cur * hi:
                dec_flags.append("decrease_beyond_label")
                notes.append(
                    f"more than the labelled {lo}–{hi} % reduction: beware abrupt withdrawal (boxed warning)"
                )
            elif (cur - new) * 100 < cur * lo:
                dec_flags.append("below_labelled_step")
                notes.append(f"smaller than the labelled {lo}–{hi} % reduction")
            if new == 0:
                dec_flags.append("stop")
                notes.append("stops delivery")
            if new > self._max_ng:
                dec_flags.append("above_maximum")
                notes.append(f"still above the maximum of {_fmt_ug(self._max_ng)} µg/day")
            why = "decreases are never denied" + ("; " + "; ".join(notes) if notes else "")
            return TitrationDecision(
                True,
                "decrease",
                f"{change}{rel} allowed: {why}",
                at,
                cur,
                new,
                limit,
                tuple(dec_flags),
                next_at,
            )
        flags = ("above_maximum",) if new > self._max_ng else ()
        return TitrationDecision(
            True, "unchanged", f"{change} unchanged", at, cur, new, limit, flags, next_at
        )


# Refill planning lives in .refill; the clinic's calendar and the whole-clinic plan in .calendar/.clinic.
# The clinic's calendar (capacity, solver) and the whole-clinic plan; public names re-exported.
from .calendar import CalendarProblem, CalendarSolution, solve_calendar  # noqa: E402
from .clinic import (  # noqa: E402
    WITHDRAWAL_CONTEXT,
    ClinicPatient,
    ClinicPlan,
    ClinicVisit,
    plan_clinic,
)
from .patients import PatientFileError, read_patients_csv  # noqa: E402
from .refill import (  # noqa: E402
    ClinicCalendar,
    RefillCandidate,
    RefillPlan,
    plan_refill,
)

__all__ += [
    "CalendarProblem",
    "CalendarSolution",
    "solve_calendar",
    "WITHDRAWAL_CONTEXT",
    "ClinicPatient",
    "ClinicPlan",
    "ClinicVisit",
    "plan_clinic",
    "read_patients_csv",
    "PatientFileError",
]
