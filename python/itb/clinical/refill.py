"""Clinic calendars and refill planning: :class:`ClinicCalendar`, :func:`plan_refill` (docs:
guide/clinical.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from .._time import duration_ms, format_duration_ms, from_ms, to_ms
from .._units import ml_to_nl, nl_to_ml, pg_to_ug
from ..errors import EndOfServiceError, ValidationError
from ..pump import Pump
from ._fmt import Time, _fmt_duration, _fmt_time

# =================================================================================================
# Refill planning
# =================================================================================================


@dataclass(frozen=True)
class ClinicCalendar:
    """The days a clinic can see a patient for a refill.

    Closed on ``closed_weekdays`` (0 = Monday; default Saturday and Sunday), the public holidays of
    ``country`` (ISO 3166 code, optional ``subdiv``, from the ``holidays`` package, observed dates
    included; ``country=None``: none) and the dates in ``extra_closed``. Refills are booked at
    ``appointment_time`` (pump-clock local time).
    """

    country: str | None = "US"
    subdiv: str | None = None
    closed_weekdays: tuple[int, ...] = (5, 6)
    extra_closed: tuple[date, ...] = ()
    appointment_time: time = time(9, 0)
    _holidays: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weekdays = tuple(self.closed_weekdays)
        if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays):
            raise ValidationError(
                f"closed_weekdays: {weekdays!r}; allowed: integers 0 (Monday) to 6 (Sunday)",
                "closed_weekdays",
            )
        if len(set(weekdays)) == 7:
            raise ValidationError(
                "closed_weekdays: all seven days closed; allowed: at most six", "closed_weekdays"
            )
        extra = []
        for d in self.extra_closed:
            if isinstance(d, datetime):
                d = d.date()
            if not isinstance(d, date):
                raise ValidationError(f"extra_closed: {d!r} is not a date", "extra_closed")
            extra.append(d)
        if not isinstance(self.appointment_time, time) or self.appointment_time.tzinfo is not None:
            raise ValidationError(
                f"appointment_time: {self.appointment_time!r}; allowed: a naive datetime.time",
                "appointment_time",
            )
        object.__setattr__(self, "closed_weekdays", weekdays)
        object.__setattr__(self, "extra_closed", tuple(sorted(set(extra))))
        if self.country is not None:
            import holidays  # a core dependency; imported here to keep `import itb` light

            try:
                table = holidays.country_holidays(self.country, subdiv=self.subdiv)
            except NotImplementedError as err:
                field_name = (
                    "subdiv" if self.subdiv is not None and "ubdiv" in str(err) else "country"
                )
                raise ValidationError(
                    f"{field_name}: {err}; allowed: a country (and subdivision) known to the holidays package",
                    field_name,
                ) from None
            object.__setattr__(self, "_holidays", table)

    def closure(self, day: date) -> str | None:
        """Why the clinic is closed on ``day`` (``None`` if open)."""
        if day.weekday() in self.closed_weekdays:
            return "weekend" if day.weekday() >= 5 else f"closed on {day.strftime('%A')}s"
        if day in self.extra_closed:
            return "closed (extra_closed)"
        if self._holidays is not None and day in self._holidays:
            return str(self._holidays.get(day))
        return None

    def is_open(self, day: date) -> bool:
        return self.closure(day) is None

    def latest_slot(self, not_after: datetime, not_before: datetime) -> datetime | None:
        """The latest appointment on an open day in [``not_before``, ``not_after``], or ``None``."""
        day = not_after.date()
        while True:
            slot = datetime.combine(day, self.appointment_time)
            if slot < not_before:
                return None
            if slot <= not_after and self.is_open(day):
                return slot
            day -= timedelta(days=1)

    def next_slot(self, not_before: datetime) -> datetime:
        """The first appointment on an open day at or after ``not_before``."""
        day = not_before.date()
        for _ in range(3 * 366):
            slot = datetime.combine(day, self.appointment_time)
            if slot >= not_before and self.is_open(day):
                return slot
            day += timedelta(days=1)
        raise ValidationError("calendar: no open day within three years", "calendar")


@dataclass(frozen=True)
class RefillCandidate:
    """One constraint on the refill date: ``constraint`` (``low_reservoir``, ``drug_stability``,
    ``eri`` or ``eos``), the event it comes from (``event_at``) and the latest refill time it
    allows (``deadline`` = event − margin for the reservoir and EOS, the event itself otherwise)."""

    constraint: str
    event_at: datetime
    deadline: datetime


@dataclass(frozen=True)
class RefillPlan:
    """When to refill and what to order (see :func:`plan_refill`).

    ``date``: the booked appointment; ``constraint``/``reason``: what decided it and why that day;
    ``deadline``: the earliest candidate deadline; ``on_time``: ``date <= deadline``;
    ``candidates``: every constraint considered, earliest first. Volumes in mL (exact ``*_nl``):
    ``volume_to_order`` = ``fill_volume`` rounded up to whole vials (``vials``, when a vial size was
    given); ``expected_residual`` is the pump's count at ``date`` (aspirated and discarded at the
    refill). ``tip_dose_ug``: drug leaving the catheter tip from now to ``date``;
    ``alarms_before``: alarm kinds the pump raises up to ``date`` (normally none when on time).
    """

    date: datetime
    constraint: str
    reason: str
    deadline: datetime
    on_time: bool
    candidates: tuple[RefillCandidate, ...]
    concentration_ug_per_ml: int
    fill_volume_nl: int
    volume_to_order_nl: int
    vials: int | None
    expected_residual_nl: int
    tip_dose_pg: int
    alarms_before: tuple[str, ...] = ()

    @property
    def volume_to_order_ml(self) -> float:
        return nl_to_ml(self.volume_to_order_nl)

    @property
    def fill_volume_ml(self) -> float:
        return nl_to_ml(self.fill_volume_nl)

    @property
    def expected_residual_ml(self) -> float:
        return nl_to_ml(self.expected_residual_nl)

    @property
    def drug_to_order_ug(self) -> float:
        """Baclofen in the volume to order at the pump's concentration (µg)."""
        # nL × µg/mL = pg
        return pg_to_ug(self.volume_to_order_nl * self.concentration_ug_per_ml)

    @property
    def tip_dose_ug(self) -> float:
        return pg_to_ug(self.tip_dose_pg)


_DEFAULT_MARGIN = timedelta(days=3)
_TEN_YEARS = timedelta(days=3650)
#: The largest margin before the alarm (docs: decisions/clinic.md#margin-range): the
#: projection's ten-year horizon; a larger one dates every deadline before any reading.
MAX_MARGIN = _TEN_YEARS


def _check_margin(margin: timedelta) -> int:
    """Milliseconds of ``margin`` (a ``timedelta``, PT0S to P3650D), else a
    ``ValidationError`` naming ``margin`` and that range."""
    ms = duration_ms(margin, "margin")
    if ms > MAX_MARGIN // timedelta(milliseconds=1):
        raise ValidationError(
            f"margin: {format_duration_ms(ms)}; allowed: PT0S to P{MAX_MARGIN.days}D", "margin"
        )
    return ms


def plan_refill(
    pump: Pump,
    margin: timedelta = _DEFAULT_MARGIN,
    stability: timedelta | None = None,
    calendar: ClinicCalendar | None = None,
    *,
    filled_at: Time | None = None,
    fill_ml: float | None = None,
    vial_ml: float | None = None,
    horizon: timedelta = _TEN_YEARS,
) -> RefillPlan:
    """Plan the next refill of ``pump`` under its current program (the pump is not changed).

    The deadline is the earliest of (docs: guide/clinical.md; clinic guidance "refills: schedule a few
    days before the alarm date", docs: facts.md#baclofen-intrathecal-labelling):

    * the low-reservoir alarm − ``margin`` (``pump.project()``; if the pump is already at or below
      the alarm threshold, now − margin);
    * ``filled_at`` (default ``pump.now``; after it: ``ValidationError``) + ``stability`` (>= 1 ms),
      the drug-stability limit the caller gives
      (no figure is asserted here);
    * the battery ERI (``pump.project(assume_refills=True)``); once at ERI, EOS − ``margin``.

    The refill is booked at ``calendar.appointment_time`` on the latest open clinic day at or
    before the deadline (default :class:`ClinicCalendar`: weekends and US public holidays closed).
    ``volume_to_order_ml`` is ``fill_ml`` (default: the reservoir capacity; itb refills discard
    what is left) rounded up to whole vials of ``vial_ml``. ``tip_dose_ug`` comes from simulating
    ``pump.copy()`` to the date. ``margin``: PT0S to P3650D (docs:
    decisions/clinic.md#margin-range). Constraints beyond ``horizon`` are ignored; with none at all a
    ``ValidationError`` (field ``pump``). A pump at end of service is an ``EndOfServiceError``.
    """
    if not isinstance(pump, Pump):
        raise ValidationError(f"pump: expected itb.Pump, got {type(pump).__name__}", "pump")
    if pump.is_eos:
        raise EndOfServiceError(
            "pump: at end of service (EOS); replace it, there is nothing to refill", "pump"
        )
    margin_ms = _check_margin(margin)
    horizon = timedelta(milliseconds=duration_ms(horizon, "horizon"))
    cal = ClinicCalendar() if calendar is None else calendar
    if not isinstance(cal, ClinicCalendar):
        raise ValidationError(
            f"calendar: expected itb.clinical.ClinicCalendar, got {type(cal).__name__}", "calendar"
        )
    fill_nl, vial_nl = _fill_and_vial(pump, fill_ml, vial_ml)
    now = pump.now
    margin_td = timedelta(milliseconds=margin_ms)
    # With patient-bolus limits, the reservoir is dated assuming every allotted bolus is taken
    # (the worst case, as patient therapy controllers date refills; docs: decisions/clinic.md).
    worst = "max" if pump.has_patient_bolus_limits else None
    reservoir = pump.project(horizon, assume_patient_boluses=worst)
    service = pump.project(horizon, assume_refills=True)
    # one rule with ClinicPatient: a stability of 0 is refused, and so is a fill after the
    # reading (docs: decisions/clinic.md#a-last-refill-after-the-reading)
    stable_ms = None if stability is None else duration_ms(stability, "stability", allow_zero=False)
    filled = now
    if filled_at is not None:
        filled_at_t = from_ms(to_ms(filled_at, "filled_at"))
        if filled_at_t > now:
            raise ValidationError(
                f"filled_at: {filled_at_t:%Y-%m-%d %H:%M} is after the reading "
                f"({now:%Y-%m-%d %H:%M}); allowed: at or before pump.now",
                "filled_at",
            )
        if stable_ms is not None:
            filled = filled_at_t
    candidates = _candidates(
        pump,
        now,
        ml_to_nl(pump.model.low_reservoir_ml, "low_reservoir_ml"),
        reservoir.low_reservoir,
        service.eri,
        service.eos,
        margin_td,
        stable_ms,
        filled,
        horizon,
    )
    decisive = candidates[0]
    deadline = decisive.deadline

    slot = cal.latest_slot(not_after=deadline, not_before=now)
    on_time = slot is not None
    date_ = slot if slot is not None else cal.next_slot(now)
    reason = _refill_reason(decisive, margin_td, deadline, date_, on_time, cal)

    sim = pump.copy()
    events = sim.advance_to(date_)
    alarms = tuple(e.kind for e in events if e.severity is not None)
    residual_nl = sim.reservoir_nl
    tip_pg = sim.delivered_pg - pump.delivered_pg

    order_nl, vials = _order(fill_nl, vial_nl)
    return RefillPlan(
        date=date_,
        constraint=decisive.constraint,
        reason=reason,
        deadline=deadline,
        on_time=on_time,
        candidates=tuple(candidates),
        concentration_ug_per_ml=pump.concentration_ug_per_ml,
        fill_volume_nl=fill_nl,
        volume_to_order_nl=order_nl,
        vials=vials,
        expected_residual_nl=residual_nl,
        tip_dose_pg=tip_pg,
        alarms_before=alarms,
    )


def _fill_and_vial(
    pump: Pump, fill_ml: float | None, vial_ml: float | None
) -> tuple[int, int | None]:
    """The fill volume (default: the reservoir capacity) and vial size in nL, checked."""
    capacity_nl = ml_to_nl(pump.model.reservoir_ml, "reservoir_ml")
    fill_nl = capacity_nl if fill_ml is None else ml_to_nl(fill_ml, "fill_ml")
    if not 0 < fill_nl <= capacity_nl:
        raise ValidationError(
            f"fill_ml: {nl_to_ml(fill_nl):g} mL; allowed: > 0 to the {nl_to_ml(capacity_nl):g} mL reservoir capacity",
            "fill_ml",
        )
    vial_nl = None if vial_ml is None else ml_to_nl(vial_ml, "vial_ml")
    if vial_nl == 0:
        raise ValidationError("vial_ml: must be > 0 mL", "vial_ml")
    return fill_nl, vial_nl


def _order(fill_nl: int, vial_nl: int | None) -> tuple[int, int | None]:
    """The volume to order: the fill rounded up to whole vials (and how many), in nL."""
    if vial_nl is None:
        return fill_nl, None
    vials = -(-fill_nl // vial_nl)
    return vials * vial_nl, vials


def _candidates(
    pump: Pump,
    now: datetime,
    low_nl: int,
    low_reservoir: datetime | None,
    eri: datetime | None,
    eos: datetime | None,
    margin: timedelta,
    stability_ms: int | None,
    filled: datetime,
    horizon: timedelta,
) -> list[RefillCandidate]:
    """Every constraint on the refill date, earliest deadline first (see :func:`plan_refill`):
    ``low_reservoir`` projected (with the worst-case boluses when limits are set), ``eri`` and
    ``eos`` projected with refills on time, the drug filled at ``filled``; ``now`` is
    ``pump.now`` and ``low_nl`` its model's low-reservoir threshold. A ``ValidationError``
    (field ``pump``) when none falls within ``horizon``."""
    candidates: list[RefillCandidate] = []
    if pump.reservoir_nl <= low_nl:
        candidates.append(RefillCandidate("low_reservoir", now, now - margin))
    elif low_reservoir is not None:
        candidates.append(RefillCandidate("low_reservoir", low_reservoir, low_reservoir - margin))
    if stability_ms is not None:
        expiry = filled + timedelta(milliseconds=stability_ms)
        if expiry <= now + horizon:
            candidates.append(RefillCandidate("drug_stability", expiry, expiry))
    if eri is not None:
        candidates.append(RefillCandidate("eri", eri, eri))
    elif pump.is_eri and eos is not None:
        candidates.append(RefillCandidate("eos", eos, eos - margin))
    if not candidates:
        raise ValidationError(
            f"pump: nothing limits the refill within the {horizon.days}-day horizon "
            "(no low-reservoir alarm, no battery ERI, no stability given)",
            "pump",
        )
    candidates.sort(key=lambda c: (c.deadline, c.constraint))
    return candidates


_EVENT_NAMES = {
    "low_reservoir": "low-reservoir alarm",
    "drug_stability": "drug-stability limit",
    "eri": "battery ERI",
    "eos": "battery EOS",
}


def _refill_reason(
    decisive: RefillCandidate,
    margin: timedelta,
    deadline: datetime,
    date_: datetime,
    on_time: bool,
    cal: ClinicCalendar,
) -> str:
    what = f"{_EVENT_NAMES[decisive.constraint]} at {_fmt_time(decisive.event_at)}"
    if decisive.deadline != decisive.event_at:
        what += f" minus a margin of {_fmt_duration(margin)}"
    text = f"{what} → deadline {_fmt_time(deadline)}"
    if not on_time:
        return (
            text
            + f"; no clinic appointment before it: earliest open appointment {_fmt_time(date_)} (late)"
        )
    closed = []
    day = deadline.date()
    while day > date_.date():
        why = cal.closure(day)
        if why is not None:
            closed.append(f"{day.isoformat()} {why}")
        day -= timedelta(days=1)
    text += f"; clinic appointment {_fmt_time(date_)}"
    if closed:
        text += " (closed: " + ", ".join(closed) + ")"
    elif date_.date() == deadline.date() - timedelta(days=1):
        text += (
            f" (the deadline is before the {cal.appointment_time.strftime('%H:%M')} appointment)"
        )
    return text
