"""A whole clinic: every patient's next refill booked against capacity, with what is at risk.

**An engineering tool, not a medical device: nothing here is dosing advice.**

:func:`plan_clinic` takes patients (each a pump as read, :meth:`itb.Pump.from_reading`, with
the last refill date and the clinic's constraints), computes each window with
:func:`itb.clinical.plan_refill` (deadline, binding constraint, ideal day, volume in whole
vials), books them all at once with :func:`itb.clinical.calendar.solve_calendar` (optimal:
docs: decisions/clinic.md#calendar-objective) and reports, per patient, the time without drug:

* ``drug_stops``: when delivery at the catheter tip stops if nothing is done — the earlier of
  the projected empty reservoir and EOS, or since when it has already stopped (empty, EOS,
  motor stall sounding);
* ``hours_without_drug``: from then to the booked visit (0 when the visit comes first; for a
  patient not fitted, to the earliest feasible date; with no visit in the horizon, ``inf`` when
  delivery stops inside the horizon, else 0: docs:
  decisions/clinic.md#windows-outside-the-horizon);
* ``restart_at_full_dose``: the visit ends a gap and the pump resumes its programmed, pre-gap
  dose — the titration guard's restart rule flags exactly that ``overdose_risk`` (docs:
  decisions/core.md#titration-restart-from-0).

Context, not a prediction (Lioresal Intrathecal / Gablofen labelling, boxed warning; reviews):
withdrawal after an interruption typically begins within 1–3 days and its severe form can
progress over 24–72 h to high fever, altered mental status, rebound spasticity, muscle
rigidity, rhabdomyolysis, multi-organ failure and death (:data:`WITHDRAWAL_CONTEXT`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .._time import duration_ms
from .._units import ml_to_nl, nl_to_ml
from ..errors import ValidationError
from ..pump import Pump, project_many
from .calendar import CalendarProblem, as_date, solve_calendar

__all__ = [
    "ClinicPatient",
    "ClinicVisit",
    "ClinicPlan",
    "plan_clinic",
    "WITHDRAWAL_CONTEXT",
]

#: The labelling's withdrawal timeline, as context for a risk report (cited, not a model).
WITHDRAWAL_CONTEXT = (
    "Abrupt discontinuation of intrathecal baclofen (empty reservoir, end of battery, missed "
    "refill) has resulted in high fever, altered mental status, exaggerated rebound spasticity "
    "and muscle rigidity, which in rare cases advanced to rhabdomyolysis, multiple organ-system "
    "failure and death; onset is typically within 1-3 days and the severe form can progress "
    "over 24-72 h (Lioresal Intrathecal and Gablofen prescribing information, boxed warning). "
    "Hours without drug here are a device figure, not a clinical prediction."
)


@dataclass(frozen=True)
class ClinicPatient:
    """One patient of the clinic.

    ``pump``: the pump as read at its last interrogation (:meth:`itb.Pump.from_reading`);
    ``last_refill``: the date of the last refill (drug stability counts from it; default: the
    reading); ``min_interval``: least time between refills (the window opens at
    ``last_refill + min_interval``); ``earliest``: a stated earliest date; ``stability``: the
    drug-stability limit (none asserted); ``clinician``: who must see the patient (``None``:
    anyone); ``booked``: an appointment already fixed (a date); ``fill_ml``/``vial_ml``: the
    fill volume (default: the reservoir) and vial size (volume ordered in whole vials);
    ``source``: where it was read (``FILE:LINE``), for error messages."""

    id: str
    pump: Pump
    last_refill: date | datetime | None = None
    min_interval: timedelta = timedelta(0)
    earliest: date | None = None
    stability: timedelta | None = None
    clinician: str | None = None
    booked: date | None = None
    fill_ml: float | None = None
    vial_ml: float | None = None
    #: where the patient was read (``FILE:LINE``, set by :func:`read_patients_csv`): errors of
    #: :func:`plan_clinic` then name ``FILE:LINE:COLUMN`` instead of ``patients[i].field``
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # durations are never bare numbers (docs: decisions/inputs.md)
        duration_ms(self.min_interval, "min_interval")
        if self.stability is not None:
            duration_ms(self.stability, "stability", allow_zero=False)
        # a last refill after the reading contradicts it, as an implant date or an alarm start
        # after it does (docs: decisions/clinic.md#a-last-refill-after-the-reading)
        if self.last_refill is not None and isinstance(self.pump, Pump):
            now = self.pump.now
            last = self.last_refill
            if isinstance(last, datetime):
                as_date(last, "last_refill")  # naive only
                late = last > now
            else:
                late = as_date(last, "last_refill") > now.date()
            if late:
                raise ValidationError(
                    f"last_refill: {last} is after the reading ({now:%Y-%m-%d %H:%M}); "
                    "allowed: at or before the reading",
                    "last_refill",
                )


@dataclass(frozen=True)
class ClinicVisit:
    """The plan for one patient. ``date``: the booked appointment (``None``: not fitted);
    ``slot``: its 0-based order among that day's visits; ``deadline``/``binding``: the latest
    refill time and the constraint behind it (``low_reservoir``, ``drug_stability``, ``eri``,
    ``eos``, ``stopped``); ``ideal``: the latest open appointment of the window; ``slack``:
    ``deadline − date``; ``reason``: why not fitted (``None`` when fitted); ``earliest_feasible``:
    for a patient not fitted, the first appointment with a free slot at or after its window
    opens; volumes in mL (whole vials); time without drug (module docs). ``overdue``: the
    window has no open appointment (the deadline passes before it opens): the visit is booked
    at the earliest free slot all the same (``date``; ``reason`` says why it is late) and the
    patient is listed in :attr:`ClinicPlan.at_risk` (docs:
    decisions/clinic.md#overdue-patients)."""

    patient: str
    date: datetime | None
    slot: int | None
    clinician: str | None
    deadline: datetime | None
    binding: str
    ideal: datetime | None
    slack: timedelta | None
    fixed: bool
    reason: str | None
    earliest_feasible: datetime | None
    volume_to_order_ml: float | None
    vials: int | None
    concentration_ug_per_ml: int
    low_reservoir: datetime | None
    eri: datetime | None
    eos: datetime | None
    drug_stops: datetime | None
    hours_without_drug: float
    restart_at_full_dose: bool
    overdue: bool = False
    #: the start of an alarm already sounding at the reading (``None``: not sounding); then
    #: ``low_reservoir``/``eri``/``eos`` hold that start too (Python), while the rows put it in
    #: ``<alarm>_since`` only, as ``itb clinic forecast`` does
    low_reservoir_since: datetime | None = None
    eri_since: datetime | None = None
    eos_since: datetime | None = None

    @property
    def fitted(self) -> bool:
        """Booked inside its window (an overdue visit is booked, but past its deadline)."""
        return self.reason is None

    def as_row(self) -> dict[str, Any]:
        """A flat row (ISO 8601 strings, numbers, ``None``) for CSV/JSON."""

        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat(sep=" ", timespec="minutes")

        return {
            "patient": self.patient,
            "date": iso(self.date),
            "slot": self.slot,
            "clinician": self.clinician,
            "fitted": self.fitted,
            "overdue": self.overdue,
            "fixed": self.fixed,
            "reason": self.reason,
            "earliest_feasible": iso(self.earliest_feasible),
            "deadline": iso(self.deadline),
            "binding": self.binding,
            "ideal": iso(self.ideal),
            "slack_days": None if self.slack is None else round(self.slack / timedelta(days=1), 3),
            "volume_to_order_ml": self.volume_to_order_ml,
            "vials": self.vials,
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
            # projected (to come) and already sounding in separate columns, as the forecast's
            # (docs: decisions/clinic.md#plan-rows-alarms-sounding-since)
            "low_reservoir": None if self.low_reservoir_since else iso(self.low_reservoir),
            "low_reservoir_since": iso(self.low_reservoir_since),
            "eri": None if self.eri_since else iso(self.eri),
            "eri_since": iso(self.eri_since),
            "eos": None if self.eos_since else iso(self.eos),
            "eos_since": iso(self.eos_since),
            "drug_stops": iso(self.drug_stops),
            # no visit in the horizon after delivery stops: unbounded, written as null (strict
            # JSON has no Infinity; docs: decisions/clinic.md#unbounded-time-without-drug)
            "hours_without_drug": round(self.hours_without_drug, 3)
            if math.isfinite(self.hours_without_drug)
            else None,
            "restart_at_full_dose": self.restart_at_full_dose,
        }


@dataclass(frozen=True)
class ClinicPlan:
    """Every patient's :class:`ClinicVisit` (input order); ``unfitted``: those with no
    appointment; ``overdue``: those booked past their deadline (an empty window);
    ``at_risk``: every overdue patient and every patient whose visit (or earliest feasible
    date) comes after delivery stops, most hours without drug first;
    ``visits_per_day``/``capacity``: per calendar day from ``first_day``;
    ``moved``/``days_moved``: the objective's figures."""

    visits: list[ClinicVisit]
    first_day: date
    visits_per_day: list[int]
    capacity: list[int]
    moved: int
    days_moved: int
    context: str = WITHDRAWAL_CONTEXT
    _by_id: dict[str, ClinicVisit] = field(default_factory=dict, repr=False, compare=False)

    @property
    def unfitted(self) -> list[ClinicVisit]:
        return [v for v in self.visits if not v.fitted and not v.overdue]

    @property
    def overdue(self) -> list[ClinicVisit]:
        return [v for v in self.visits if v.overdue]

    @property
    def at_risk(self) -> list[ClinicVisit]:
        risky = [v for v in self.visits if v.hours_without_drug > 0 or v.overdue]
        return sorted(risky, key=lambda v: (-v.hours_without_drug, v.patient))

    def __getitem__(self, patient: str) -> ClinicVisit:
        return self._by_id[patient]

    def rows(self) -> list[dict[str, Any]]:
        return [v.as_row() for v in self.visits]


def _appointment(day: date, cal: Any) -> datetime:
    return datetime.combine(day, cal.appointment_time)


def plan_clinic(
    patients: Iterable[ClinicPatient],
    *,
    slots_per_day: int,
    calendar: Any = None,
    clinician_slots: Mapping[str, int] | None = None,
    days: int = 365,
    today: date | None = None,
    margin: timedelta = timedelta(days=3),
) -> ClinicPlan:
    """Book every patient's next refill (see the module docs).

    ``slots_per_day``: visits per open day (an int >= 1); ``clinician_slots``: visits per open
    day per clinician (ints >= 1; patients naming another clinician are an error);
    ``calendar``: a :class:`itb.clinical.ClinicCalendar` (default: weekends and US holidays
    closed); ``days``: how far ahead to book, 1 to 3660 (from ``today``, default: the latest
    pump reading's date); ``margin``: before the low-reservoir alarm (and EOS), PT0S to P3650D.
    Errors: ``ValidationError`` naming the patient (``patients[3].booked``) or the argument
    (``clinician_slots['dr_lee']``, ``margin``)."""
    from .refill import ClinicCalendar, _candidates, _check_margin, _fill_and_vial, _order

    cal = ClinicCalendar() if calendar is None else calendar
    if not isinstance(cal, ClinicCalendar):
        raise ValidationError(
            f"calendar: expected itb.clinical.ClinicCalendar, got {type(cal).__name__}", "calendar"
        )
    pts = list(patients)
    # a count of visits is an int >= 1 (never a bool): 0 would plan a clinic with no visit at
    # all (docs: decisions/clinic.md#capacity-counts)
    if isinstance(slots_per_day, bool) or not isinstance(slots_per_day, int) or slots_per_day < 1:
        raise ValidationError(
            f"slots_per_day: {slots_per_day!r}; allowed: an integer >= 1", "slots_per_day"
        )
    if clinician_slots is not None:
        if not isinstance(clinician_slots, Mapping):
            raise ValidationError(
                "clinician_slots: expected a mapping of clinician to visits per open day, got "
                f"{type(clinician_slots).__name__}",
                "clinician_slots",
            )
        for name, n in clinician_slots.items():
            if not isinstance(name, str) or not name:
                raise ValidationError(
                    f"clinician_slots: key {name!r}; allowed: a clinician's name (text)",
                    "clinician_slots",
                )
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValidationError(
                    f"clinician_slots[{name!r}]: {n!r}; allowed: an integer >= 1 "
                    "(visits per open day)",
                    f"clinician_slots[{name!r}]",
                )
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        raise ValidationError(f"days: {days!r}; allowed: 1 to 3660", "days")
    ids: dict[str, int] = {}
    for i, p in enumerate(pts):
        if not isinstance(p, ClinicPatient):
            raise ValidationError(
                f"patients[{i}]: expected ClinicPatient, got {type(p).__name__}", f"patients[{i}]"
            )
        if p.id in ids:
            first_at = pts[ids[p.id]].source or f"patients[{ids[p.id]}]"
            raise _bad(i, p, "id", f"{p.id!r} is used twice (first at {first_at}); allowed: unique")
        ids[p.id] = i
    if today is None:
        today = max((p.pump.now.date() for p in pts), default=date.today())
    first = as_date(today, "today")
    cal_days = [first + timedelta(days=d) for d in range(days)]
    horizon_end = datetime.combine(first + timedelta(days=days), datetime.min.time())
    capacity = [slots_per_day if cal.is_open(d) else 0 for d in cal_days]
    clinicians = sorted(clinician_slots) if clinician_slots else []
    cindex = {c: k for k, c in enumerate(clinicians)}
    cslots = [
        [clinician_slots[c] if capacity[d] else 0 for d in range(days)]  # type: ignore[index]
        for c in clinicians
    ]

    # Every pump's projections at once in the core (rayon, GIL released): as programmed (the
    # alarms to come and those sounding), with refills on time (ERI/EOS), and with every
    # allotted patient bolus taken (the reservoir's worst case, when limits are set).
    margin_td = timedelta(milliseconds=_check_margin(margin))
    horizon = timedelta(days=3650)
    pumps = [p.pump for p in pts]
    plain = project_many(pumps, horizon)
    service = project_many(pumps, horizon, assume_refills=True)
    col = {k: v.tolist() for k, v in plain.items()}
    service_eri, service_eos = service["eri"].tolist(), service["eos"].tolist()
    reservoir_low = list(col["low_reservoir"])
    limited = [i for i, pump in enumerate(pumps) if pump.has_patient_bolus_limits]
    if limited:
        worst = project_many([pumps[i] for i in limited], horizon, assume_patient_boluses="max")[
            "low_reservoir"
        ].tolist()
        for j, i in enumerate(limited):
            reservoir_low[i] = worst[j]

    release, deadline_day, ideal, clin, fixed, raw_deadline = [], [], [], [], [], []
    info: list[dict[str, Any]] = []
    volumes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for i, p in enumerate(pts):
        pump = p.pump
        now = pump.now
        if p.clinician is not None and clinicians and p.clinician not in cindex:
            raise _bad(
                i,
                p,
                "clinician",
                f"{p.clinician!r}; allowed: {', '.join(clinicians)} (those given slots)",
            )
        last = (
            None if p.last_refill is None else as_date(p.last_refill, f"patients[{i}].last_refill")
        )
        # when delivery at the tip stops with no intervention (or since when it has stopped)
        stops = next(
            (col[f"{a}_since"][i] for a in _STOPPED if col[f"{a}_since"][i] is not None),
            None,
        )
        if stops is None:
            ends = [t for t in (col["reservoir_empty"][i], col["eos"][i]) if t is not None]
            stops = min(ends) if ends else None
        rec: dict[str, Any] = dict(
            conc=pump.concentration_ug_per_ml,
            low=col["low_reservoir_since"][i] or col["low_reservoir"][i],
            eri=col["eri_since"][i] or col["eri"][i],
            eos=col["eos_since"][i] or col["eos"][i],
            stops=stops,
            since={a: col[f"{a}_since"][i] for a in ("low_reservoir", "eri", "eos")},
        )
        open_from = max(
            now,
            datetime.combine(last, datetime.min.time()) + p.min_interval if last else now,
            datetime.combine(p.earliest, datetime.min.time()) if p.earliest else now,
        )
        if pump.is_eos:
            rec.update(deadline=stops, binding="eos", order=None, vials=None)
            dl = now  # a replacement, at once
        else:
            # the refill planner's deadline (itb.clinical.plan_refill, from the same pieces)
            try:
                model = pump.model
                key = (model.reservoir_ml, model.low_reservoir_ml, p.fill_ml, p.vial_ml)
                if key not in volumes:  # one check and conversion per model and fill
                    volumes[key] = (
                        *_fill_and_vial(pump, p.fill_ml, p.vial_ml),
                        ml_to_nl(model.low_reservoir_ml, "low_reservoir_ml"),
                    )
                fill_nl, vial_nl, low_nl = volumes[key]
                candidates = _candidates(
                    pump,
                    now,
                    low_nl,
                    reservoir_low[i],
                    service_eri[i],
                    service_eos[i],
                    margin_td,
                    None if p.stability is None else duration_ms(p.stability, "stability"),
                    now if last is None else datetime.combine(last, cal.appointment_time),
                    horizon,
                )
            except ValidationError as err:
                what = err.field or "?"
                if p.source is not None:
                    raise _bad(i, p, what, str(err).removeprefix(f"{what}: ")) from None
                raise ValidationError(
                    f"patients[{i}] ({p.id}): {err}", f"patients[{i}].{err.field}"
                ) from None
            order_nl, vials = _order(fill_nl, vial_nl)
            dl = candidates[0].deadline
            rec.update(
                deadline=dl,
                binding=candidates[0].constraint,
                order=nl_to_ml(order_nl),
                vials=vials,
            )
        if stops is not None and stops <= now:
            rec["binding"] = "stopped"
        rec["open_from"] = open_from
        r = _first_day_at_or_after(open_from, first, cal)
        d = _last_day_at_or_before(dl, first, cal)
        release.append(r)
        raw_deadline.append(d)
        deadline_day.append(min(d, days - 1))
        ideal_day = _latest_open(r, min(d, days - 1), capacity)
        ideal.append(ideal_day)
        clin.append(cindex.get(p.clinician, -1) if p.clinician is not None else -1)
        if p.booked is not None:
            b = (as_date(p.booked, f"patients[{i}].booked") - first).days
            if not 0 <= b < days:
                raise _bad(
                    i, p, "booked", f"{p.booked}; allowed: {first} to {cal_days[-1]} (days={days})"
                )
            # a fixed appointment on a closed day is refused, never booked silently (docs:
            # decisions/clinic.md#a-fixed-appointment-on-a-closed-day)
            closed = cal.closure(cal_days[b])
            if closed is not None:
                raise _bad(
                    i,
                    p,
                    "booked",
                    f"{cal_days[b]} ({p.id}) is a closed clinic day ({closed}); "
                    "allowed: an open day of the calendar",
                )
            fixed.append(b)
        else:
            fixed.append(-1)
        info.append(rec)

    problem = CalendarProblem(release, deadline_day, ideal, capacity, clin, cslots, fixed)
    sol = solve_calendar(problem)
    per_day = [0] * days
    slot_of: dict[int, int] = {}
    for i in sorted(range(len(pts)), key=lambda i: (sol.day[i], pts[i].id)):
        d = sol.day[i]
        if d >= 0:
            slot_of[i] = per_day[d]
            per_day[d] += 1

    # Patients not fitted: the first appointment with a free slot at or after the window opens
    # (that slot, and the clinician's, then counts as used). Overdue patients first (a window
    # with no open appointment: the deadline passes, inside the horizon, before it opens), the
    # first to run dry first (then the earliest deadline), and they are booked there (docs:
    # decisions/clinic.md#overdue-patients); then the others, in input order.
    cused = [[0] * days for _ in clinicians]
    for i, d in enumerate(sol.day):
        if d >= 0 and clin[i] >= 0 and cslots:
            cused[clin[i]][d] += 1
    # next[d]: a day at or after d that may have a free slot (days found full are skipped)
    nxt = list(range(days + 1))
    n_pts = len(pts)
    late = [
        i
        for i in range(n_pts)
        if sol.day[i] < 0 and ideal[i] < 0 and release[i] < days and raw_deadline[i] < days
    ]
    late_set = set(late)
    rest = [i for i in range(n_pts) if sol.day[i] < 0 and i not in late_set]
    overdue = [False] * n_pts
    first_free: dict[int, int] = {}

    def urgency(i: int) -> tuple[datetime, int, int]:
        return (info[i]["stops"] or datetime.max, raw_deadline[i], i)

    for i in sorted(late, key=urgency) + rest:
        e = _first_free(release[i], per_day, capacity, clin[i], cused, cslots, nxt)
        if e is None:
            continue
        first_free[i] = e
        if i in late_set:
            overdue[i] = True
            slot_of[i] = per_day[e]
        per_day[e] += 1
        if clin[i] >= 0 and cslots:
            cused[clin[i]][e] += 1
    visits = []
    for i, p in enumerate(pts):
        rec = info[i]
        d = sol.day[i]
        reason = None
        earliest_feasible = None
        when = None if d < 0 else _appointment(cal_days[d], cal)
        if d < 0:
            reason = _why_unfitted(i, problem, rec, cal_days, cal, days)
            if i in first_free:
                earliest_feasible = _appointment(cal_days[first_free[i]], cal)
            if overdue[i]:
                reason = f"overdue: {reason}; booked at the earliest free slot"
                when = earliest_feasible
        visit_at = when if when is not None else earliest_feasible
        stops = rec["stops"]
        gap_h = 0.0
        if stops is not None and visit_at is not None and visit_at > stops:
            gap_h = (visit_at - stops) / timedelta(hours=1)
        elif stops is not None and visit_at is None and stops < horizon_end:
            # no visit in the horizon and delivery stops inside it (docs:
            # decisions/clinic.md#windows-outside-the-horizon)
            gap_h = float("inf")
            if reason is not None:
                reason += (
                    f"; but delivery stops {stops:%Y-%m-%d %H:%M}, inside the horizon: at risk"
                )
        dl = rec["deadline"]
        visits.append(
            ClinicVisit(
                patient=p.id,
                date=when,
                slot=slot_of.get(i),
                clinician=p.clinician,
                deadline=dl,
                binding=rec["binding"],
                ideal=None if ideal[i] < 0 else _appointment(cal_days[ideal[i]], cal),
                slack=None if when is None or dl is None else dl - when,
                fixed=fixed[i] >= 0,
                reason=reason,
                earliest_feasible=earliest_feasible,
                volume_to_order_ml=rec["order"],
                vials=rec["vials"],
                concentration_ug_per_ml=rec["conc"],
                low_reservoir=rec["low"],
                eri=rec["eri"],
                eos=rec["eos"],
                drug_stops=stops,
                hours_without_drug=gap_h,
                # refilled at the visit, the pump resumes the programmed pre-gap dose
                restart_at_full_dose=gap_h > 0 and rec["binding"] != "eos",
                overdue=overdue[i],
                low_reservoir_since=rec["since"]["low_reservoir"],
                eri_since=rec["since"]["eri"],
                eos_since=rec["since"]["eos"],
            )
        )
    clinic_plan = ClinicPlan(visits, first, per_day, capacity, sol.moved, sol.days_moved)
    clinic_plan._by_id.update({v.patient: v for v in visits})
    return clinic_plan


def _bad(i: int, p: ClinicPatient, col: str, why: str) -> ValidationError:
    """A patient's bad entry: ``FILE:LINE: column COL: why`` (field ``FILE:LINE:COL``) for a
    patient read from a file, else ``patients[i].col: why``."""
    if p.source is not None:
        return ValidationError(f"{p.source}: column {col}: {why}", f"{p.source}:{col}")
    return ValidationError(f"patients[{i}].{col}: {why}", f"patients[{i}].{col}")


#: Alarms that mean delivery at the tip has stopped, in the order their start is reported.
_STOPPED = ("eos", "reservoir_empty", "motor_stall")


def _first_day_at_or_after(t: datetime, first: date, cal: Any) -> int:
    day = t.date()
    if _appointment(day, cal) < t:
        day += timedelta(days=1)
    return max((day - first).days, 0)


def _last_day_at_or_before(t: datetime | None, first: date, cal: Any) -> int:
    if t is None:
        return 10**6
    day = t.date()
    if _appointment(day, cal) > t:
        day -= timedelta(days=1)
    return (day - first).days


def _latest_open(lo: int, hi: int, capacity: list[int]) -> int:
    for d in range(hi, lo - 1, -1):
        if 0 <= d < len(capacity) and capacity[d] > 0:
            return d
    return -1


def _first_free(
    lo: int,
    per_day: list[int],
    capacity: list[int],
    c: int,
    cused: Any,
    cslots: list[list[int]],
    nxt: list[int],
) -> int | None:
    """The first day at or after ``lo`` with a free slot (and a free slot of clinician ``c``);
    days found full are linked past in ``nxt`` (path halving), so many calls cost near-linear."""

    def find(d: int) -> int:
        while nxt[d] != d:
            nxt[d] = nxt[nxt[d]]
            d = nxt[d]
        return d

    if lo >= len(capacity):
        return None
    d = find(max(lo, 0))
    while d < len(capacity):
        if per_day[d] >= capacity[d]:
            nxt[d] = d + 1  # full for everyone from now on
        elif not (c >= 0 and cslots and cused[c][d] >= cslots[c][d]):
            return d
        d = find(d + 1)
    return None


def _why_unfitted(
    i: int, p: CalendarProblem, rec: dict[str, Any], cal_days: list[date], cal: Any, days: int
) -> str:
    dl = rec["deadline"]
    if rec["binding"] in ("stopped", "eos") and dl is not None and dl <= rec["open_from"]:
        return f"delivery already stopped ({rec['binding']}); see at once"
    if p.release[i] >= days:
        opens = rec["open_from"].strftime("%Y-%m-%d %H:%M")
        return (
            f"the window opens {opens}, after the horizon (last day {cal_days[-1]}, "
            f"days={days}): nothing to book in the horizon"
        )
    if p.deadline[i] < p.release[i] or p.ideal[i] < 0:
        opens = rec["open_from"].strftime("%Y-%m-%d %H:%M")
        due = "?" if dl is None else dl.strftime("%Y-%m-%d %H:%M")
        return (
            f"no open appointment in the window: opens {opens}, deadline {due} ({rec['binding']})"
        )
    return "no free slot in the window (capacity taken by patients with tighter windows)"
