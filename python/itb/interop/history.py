"""A therapy history in the form the exports need: the pump's identity, the prescription over
time, one record per delivery segment and per bolus with the dose that left the catheter tip,
refills, alarms — built from a :class:`~itb.scenario.ScenarioResult` or a :class:`Recorder`.

**Where the numbers come from.** Every dose is read from the pump's own tip ledger
(``Pump.delivered_pg``): the history is measured at *marks* — every instant where what flows can
change (a basal step boundary, a program or concentration change, a bolus start or end, a stop or
a restart) — so each stretch between two marks has one constant set of flows. A scenario is run a
second time on a fresh pump with the marks as sample times (the scenario's own run loop, ``Scenario.execute``); a
:class:`Recorder` advances its pump from mark to mark. No delivery arithmetic is done here.

**Remainder rule** (docs: decisions/interop.md#dose-apportioning). The drug mass M (pg) that left
the tip between two marks is shared among the flows running there (the basal segment and any
boluses) in proportion to their commanded dose over that stretch (basal: its step's ng/day × time;
a bolus: its dose over its programmed duration × time; nothing while delivery is stopped). Each
share is floored to a whole pg and the pg left over go one each to the largest fractional parts
(ties: basal first, then boluses in start order). The shares of every stretch add up to M
exactly, so the doses of all records add up to what the pump delivered at the tip, to the pg.

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, cast

from .._limits import MS_PER_DAY as _DAY_MS
from .._time import Duration, from_ms
from .._units import exact_decimal, pg_to_ug, ul_to_nl
from ..errors import ValidationError
from ..events import BolusData, ConcentrationData, Event, RefillData
from ..models import PumpModel
from ..pump import Pump

__all__ = ["Administration", "TherapyHistory", "Recorder", "history_of", "utc_offset_minutes"]

#: A flex ``week`` period starts on Monday 00:00 (1970-01-05 is a Monday); a ``day`` at 00:00.
_ANCHOR_MS = {"day": 0, "week": 4 * _DAY_MS}
_PERIOD_MS = {"day": _DAY_MS, "week": 7 * _DAY_MS}
_STOP_ON = {"suspended": "suspended", "fault": "fault", "reservoir_empty": "empty", "eos": "eos"}
_STOP_OFF = {"resumed": "suspended", "fault_cleared": "fault"}


# Typed views of ``Event.data`` for the kinds read here (``itb.events.EVENT_DATA``); the caller
# has checked ``kind``.
def concentration_data(e: Event) -> ConcentrationData:
    """``data`` of a ``concentration_changed``/``drug_at_tip`` event."""
    return cast(ConcentrationData, e.data)


def refill_data(e: Event) -> RefillData:
    """``data`` of a ``refilled``/``refill_discrepancy`` event."""
    return cast(RefillData, e.data)


def bolus_data(e: Event) -> BolusData:
    """``data`` of a ``bolus_*`` event."""
    return cast(BolusData, e.data)


class _Span:
    """``start`` and ``end`` as datetimes of a record's ``start_ms`` / ``end_ms``."""

    start_ms: int
    end_ms: int

    @property
    def start(self) -> datetime:
        return from_ms(self.start_ms)

    @property
    def end(self) -> datetime:
        return from_ms(self.end_ms)


@dataclass(frozen=True)
class Administration(_Span):
    """One delivery record: a basal segment (``kind == "basal"``) or a bolus (``timed``,
    ``bridge``, ``priming``, ``patient``).

    ``start_ms``/``end_ms``: pump-clock ms (the segment covers strokes at times in
    ``(start, end]``); ``tip_pg``: drug mass that left the catheter tip, attributed by the
    remainder rule; ``ng_per_day``: the basal step's prescribed dose rate (basal only);
    ``bolus_id``, ``bolus_dose_pg`` (what the bolus moves out of the reservoir), ``bolus_volume_nl``
    and ``bolus_duration_ms`` (programmed: its planned end − start) for boluses; ``status``: ``completed``, ``in-progress`` (still
    running at the end of the history) or ``stopped`` (a cancelled bolus);
    ``concentration_ug_per_ml``: the reservoir's concentration when it started."""

    kind: str
    start_ms: int
    end_ms: int
    tip_pg: int
    concentration_ug_per_ml: int
    status: str = "completed"
    ng_per_day: int | None = None
    bolus_id: int | None = None
    bolus_dose_pg: int | None = None
    bolus_volume_nl: int | None = None
    bolus_duration_ms: int | None = None
    program_index: int = 0

    @property
    def tip_ug(self) -> float:
        return pg_to_ug(self.tip_pg)


@dataclass
class TherapyHistory(_Span):
    """Everything an export writes, in exact units (see the module docstring).

    ``programs``: ``[(from_ms, exact program), …]`` (``Continuous.exact()`` / ``Flex.exact()``
    forms) in force from each time; ``events``: the pump's events in order (stroke batches
    included); ``administrations``: basal segments and boluses in start order; ``delivered_pg``:
    what left the tip over the history (the sum of the administrations' ``tip_pg``)."""

    model: PumpModel
    start_ms: int
    end_ms: int
    programs: list[tuple[int, tuple[Any, ...]]]
    events: list[Event]
    administrations: list[Administration]
    delivered_pg: int
    delivered_nl: int
    concentration_ug_per_ml: int
    reservoir_nl: int
    battery_remaining_pc: int | None
    eri: bool
    eos: bool
    catheter_nl: int
    initial_concentration_ug_per_ml: int
    #: ``[(time_ms, delivered_pg, delivered_nl), …]``: the tip ledger read at every mark
    marks: list[tuple[int, int, int]] = field(default_factory=list)
    #: the alarms already sounding at the start (a pump as a programmer reads it), as alarm
    #: events timed when each began (:func:`sounding_at_start`); not in ``events``
    active_at_start: list[Event] = field(default_factory=list)

    def tip_at(self, t_ms: int) -> tuple[int, int]:
        """``(pg, nL)`` that left the tip from the start to the last mark at or before ``t_ms``."""
        import bisect

        i = bisect.bisect_right(self.marks, (t_ms, float("inf"), float("inf"))) - 1
        if i < 0:
            return (0, 0)
        _, pg, nl = self.marks[i]
        return (pg - self.marks[0][1], nl - self.marks[0][2])

    def program_at(self, t_ms: int) -> tuple[Any, ...]:
        """The exact program in force at ``t_ms``."""
        current = self.programs[0][1]
        for at, program in self.programs:
            if at <= t_ms:
                current = program
        return current


def utc_offset_minutes(value: Any, field: str = "utc_offset") -> int:
    """Minutes east of UTC of an offset given as a ``timedelta`` / ``numpy.timedelta64``
    (negative west), whole minutes within ±14 h. Anything else — a bare number, a bool, text —
    is a ``ValidationError`` naming ``field`` (the duration rule, docs: guide/inputs.md)."""
    import numpy as np

    from .._time import duration_ms

    negative = isinstance(value, (timedelta, np.timedelta64)) and value < type(value)(0)
    ms = -duration_ms(-value, field) if negative else duration_ms(value, field)
    minutes, rest = divmod(ms, 60_000)
    if rest or abs(minutes) > 14 * 60:
        raise ValidationError(
            f"{field}: {value} must be whole minutes within -14:00..+14:00 h "
            "(allowed: timedelta(hours=-14) to timedelta(hours=14))",
            field,
        )
    return minutes


# ----- program arithmetic (the documented schedule rule: steps repeat from the period's start) --


def step_dose(program: tuple[Any, ...], t_ms: int) -> int:
    """ng/day of the basal step in force at ``t_ms`` (strokes in ``(t, …]``)."""
    if program[0] == "continuous":
        return int(program[1])
    _, period, steps = program
    into = (t_ms - _ANCHOR_MS[period]) % _PERIOD_MS[period]
    dose = steps[0][1]
    for offset, ng in steps:
        if offset <= into:
            dose = ng
    return int(dose)


def step_boundaries(program: tuple[Any, ...], start_ms: int, end_ms: int) -> list[int]:
    """Times in ``(start, end)`` where a flex step begins."""
    if program[0] == "continuous" or len(program[2]) < 2:
        return []
    _, period, steps = program
    p, anchor = _PERIOD_MS[period], _ANCHOR_MS[period]
    out: list[int] = []
    k = (start_ms - anchor) // p
    while True:
        base = anchor + k * p
        if base >= end_ms:
            break
        for offset, _ in steps:
            t = base + offset
            if start_ms < t < end_ms:
                out.append(t)
        k += 1
    return out


# ----- building ---------------------------------------------------------------------------------


@dataclass
class _Bolus:
    id: int
    kind: str
    start: int
    planned_end: int
    end: int
    dose_pg: int
    volume_nl: int
    status: str
    concentration: int


def _stops(
    events: Sequence[Event], model: PumpModel, start: Sequence[Event] = (), start_ms: int = 0
) -> list[tuple[int, bool]]:
    """``[(time_ms, stopped), …]`` at every change of the delivering state, from the events;
    ``start``: the alarms sounding at ``start_ms`` (a pump read stalled, empty or at EOS is
    stopped from the start)."""
    active: set[str] = {_STOP_ON[e.kind] for e in start if e.kind in _STOP_ON}
    out: list[tuple[int, bool]] = [(start_ms, True)] if active else []
    stroke = model.stroke_nl
    for e in events:
        before = bool(active)
        if e.kind in _STOP_ON:
            active.add(_STOP_ON[e.kind])
        elif e.kind in _STOP_OFF:
            active.discard(_STOP_OFF[e.kind])
        elif e.kind == "refilled" and refill_data(e).get("added_nl", 0) >= stroke:
            active.discard("empty")
        if bool(active) != before:
            out.append((e.time_ms, bool(active)))
    return out


def _stopped_spans(changes: list[tuple[int, bool]], end_ms: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    since: int | None = None
    for t, stopped in changes:
        if stopped and since is None:
            since = t
        elif not stopped and since is not None:
            spans.append((since, t))
            since = None
    if since is not None:
        spans.append((since, end_ms))
    return spans


def _boluses(events: Sequence[Event], end_ms: int) -> list[_Bolus]:
    running: dict[int, _Bolus] = {}
    out: list[_Bolus] = []
    concentration = 0
    for e in events:
        if e.kind == "concentration_changed":
            concentration = int(concentration_data(e)["to_ug_per_ml"])
        if e.kind == "bolus_started":
            d = bolus_data(e)
            b = _Bolus(
                int(d["bolus_id"]),
                str(d.get("bolus_kind", "timed")),
                e.time_ms,
                int(d["end_ms"]),
                end_ms,
                int(d["dose_pg"]),
                int(d["volume_nl"]),
                "in-progress",
                concentration,
            )
            running[b.id] = b
            out.append(b)
        elif e.kind in ("bolus_completed", "bolus_cancelled"):
            done = running.pop(int(bolus_data(e)["bolus_id"]), None)
            if done is not None:
                done.end = e.time_ms
                done.status = "completed" if e.kind == "bolus_completed" else "stopped"
    return out


def boundaries(
    start_ms: int,
    end_ms: int,
    programs: Sequence[tuple[int, tuple[Any, ...]]],
    events: Sequence[Event],
    model: PumpModel,
) -> list[int]:
    """Every mark a history of these programs and events needs, sorted, from start to end."""
    times = {start_ms, end_ms}
    for i, (at, program) in enumerate(programs):
        until = programs[i + 1][0] if i + 1 < len(programs) else end_ms
        times.add(at)
        times.update(step_boundaries(program, max(at, start_ms), min(until, end_ms)))
    for e in events:
        if (
            e.kind in _STOP_ON
            or e.kind in _STOP_OFF
            or e.kind
            in (
                "refilled",
                "concentration_changed",
                "bolus_started",
                "bolus_completed",
                "bolus_cancelled",
                "program_changed",
            )
        ):
            times.add(e.time_ms)
    return sorted(t for t in times if start_ms <= t <= end_ms)


def build(
    *,
    model: PumpModel,
    start_ms: int,
    end_ms: int,
    programs: list[tuple[int, tuple[Any, ...]]],
    events: list[Event],
    marks: list[tuple[int, int, int]],
    initial_concentration: int,
    final: Pump,
    active_at_start: Sequence[Event] = (),
) -> TherapyHistory:
    """Basal segments and boluses with their tip doses (see the module docstring);
    ``active_at_start``: the alarms sounding at the start (:func:`sounding_at_start`)."""
    sounding = list(active_at_start)
    changes = _stops(events, model, sounding, start_ms)
    stopped = _stopped_spans(changes, end_ms)
    conc_changes = [
        (e.time_ms, int(concentration_data(e)["to_ug_per_ml"]))
        for e in events
        if e.kind == "concentration_changed"
    ]

    def concentration_at(t: int) -> int:
        c = initial_concentration
        for at, to in conc_changes:
            if at <= t:
                c = to
        return c

    def is_stopped(t: int) -> bool:  # delivery stopped over (t, next mark]
        return any(a <= t < b for a, b in stopped)

    cuts = boundaries(start_ms, end_ms, programs, events, model)
    # basal pieces: one per stretch between consecutive cuts while delivering, merged while the
    # program, its step dose and the concentration stay the same
    basal: list[dict[str, Any]] = []
    prog_i = 0
    for lo_ms, hi_ms in zip(cuts, cuts[1:]):
        while prog_i + 1 < len(programs) and programs[prog_i + 1][0] <= lo_ms:
            prog_i += 1
        if is_stopped(lo_ms):
            continue
        dose = step_dose(programs[prog_i][1], lo_ms)
        conc = concentration_at(lo_ms)
        last = basal[-1] if basal else None
        if (
            last is not None
            and last["end"] == lo_ms
            and last["dose"] == dose
            and last["conc"] == conc
            and last["prog"] == prog_i
            and not _boundary_splits(lo_ms, programs, prog_i)
        ):
            last["end"] = hi_ms
        else:
            basal.append({"start": lo_ms, "end": hi_ms, "dose": dose, "conc": conc, "prog": prog_i})
    boluses = _boluses(events, end_ms)
    for b in boluses:
        if b.concentration == 0:
            b.concentration = concentration_at(b.start)

    # the flows as (start, end, weight-per-ms as a Fraction of pg, key); basal first
    flows: list[tuple[int, int, Fraction, int]] = []
    for i, piece in enumerate(basal):
        flows.append((piece["start"], piece["end"], Fraction(piece["dose"] * 1000, _DAY_MS), i))
    for j, b in enumerate(boluses):
        span = max(b.planned_end - b.start, 1)
        flows.append((b.start, b.end, Fraction(b.dose_pg, span), len(basal) + j))
    shares = [0] * (len(basal) + len(boluses))

    def delivering_overlap(a: int, b: int) -> int:
        total = b - a
        for s, e in stopped:
            lo, hi = max(a, s), min(b, e)
            if hi > lo:
                total -= hi - lo
        return total

    order = sorted(flows, key=lambda f: (f[0], f[3]))
    orphans: list[tuple[int, int, int]] = []  # (t0, t1, mass) with no flow running
    first = 0
    for (t0, p0, _), (t1, p1, _) in zip(marks, marks[1:]):
        mass = p1 - p0
        if mass == 0 or t1 <= t0:
            continue
        while first < len(order) and order[first][1] <= t0 and order[first][0] < t0:
            first += 1
        weights: list[tuple[Fraction, int]] = []
        overlapping = []
        i = first
        while i < len(order) and order[i][0] < t1:
            f = order[i]
            i += 1
            lo, hi = max(f[0], t0), min(f[1], t1)
            if hi > lo:
                overlapping.append((f, hi - lo))
                ms = delivering_overlap(lo, hi) if stopped else hi - lo
                if ms > 0 and f[2] > 0:
                    weights.append((f[2] * ms, f[3]))
        if not weights:  # the stop bookkeeping disagrees with the ledger: weigh by time alone
            weights = [(Fraction(ms), f[3]) for f, ms in overlapping]
        if not weights:  # nothing was running: a segment of its own (see the decisions page)
            orphans.append((t0, t1, mass))
            continue
        for k, part in _apportion(mass, weights):
            shares[k] += part

    records: list[Administration] = []
    for i, piece in enumerate(basal):
        if piece["dose"] == 0 and shares[i] == 0:
            continue
        records.append(
            Administration(
                "basal",
                piece["start"],
                piece["end"],
                shares[i],
                piece["conc"],
                "in-progress" if piece["end"] == end_ms and not final.is_eos else "completed",
                ng_per_day=piece["dose"],
                program_index=piece["prog"],
            )
        )
    for j, b in enumerate(boluses):
        span = max(b.planned_end - b.start, 1)
        records.append(
            Administration(
                b.kind,
                b.start,
                b.end,
                shares[len(basal) + j],
                b.concentration,
                b.status,
                bolus_id=b.id,
                bolus_dose_pg=b.dose_pg,
                bolus_volume_nl=b.volume_nl,
                bolus_duration_ms=span,
            )
        )
    for t0, t1, mass in orphans:
        records.append(
            Administration("basal", t0, t1, mass, concentration_at(t0), "completed", ng_per_day=0)
        )
    records.sort(key=lambda r: (r.start_ms, r.kind != "basal", r.bolus_id or 0))
    delivered = marks[-1][1] - marks[0][1] if marks else 0
    return TherapyHistory(
        model=model,
        start_ms=start_ms,
        end_ms=end_ms,
        programs=programs,
        events=events,
        administrations=records,
        delivered_pg=delivered,
        delivered_nl=marks[-1][2] - marks[0][2] if marks else 0,
        concentration_ug_per_ml=final.concentration_ug_per_ml,
        reservoir_nl=final.reservoir_nl,
        battery_remaining_pc=final.battery_remaining_pc,
        eri=final.is_eri,
        eos=final.is_eos,
        catheter_nl=max(final.path_nl - ul_to_nl(model.pump_path_ul, "pump_path_ul"), 0),
        initial_concentration_ug_per_ml=initial_concentration,
        marks=marks,
        active_at_start=sounding,
    )


#: :attr:`Pump.active_alarms` names that the pump reports as a ``fault`` event (``data.fault``)
_FAULT_ALARMS = ("motor_stall", "battery_fault")


def sounding_at_start(pump: Pump, events: Sequence[Event] = ()) -> list[Event]:
    """The alarms sounding on ``pump`` (:attr:`~itb.Pump.active_alarms`) as the alarm events the
    pump raises for them: ``kind`` the alarm (``fault`` with ``data.fault`` for ``motor_stall``
    / ``battery_fault``), its severity, ``time_ms`` = when it began, ``seq`` 0; in the order
    they began (ties: the pump's priority order). An alarm whose own event is in ``events``
    (same kind, fault and time) is left out, so no alarm is written twice
    (docs: decisions/interop.md#alarms-sounding-at-the-start)."""
    from .._time import to_ms

    raised = {
        (e.kind, str(e.data.get("fault", "")), e.time_ms) for e in events if e.severity is not None
    }
    out: list[Event] = []
    for name, severity, since in pump.active_alarms:
        since_ms = to_ms(since, "since")
        if name in _FAULT_ALARMS:
            kind, data, fault = "fault", {"fault": name}, name
        else:
            kind, data, fault = name, {}, ""
        if (kind, fault, since_ms) not in raised:
            out.append(Event(since_ms, kind, severity, data))
    return sorted(out, key=lambda e: e.time_ms)


def _boundary_splits(t: int, programs: Sequence[tuple[int, tuple[Any, ...]]], prog_i: int) -> bool:
    """A flex step boundary at ``t`` starts a new segment even when the next step has the
    same dose (each step of the prescription is one segment)."""
    program = programs[prog_i][1]
    if program[0] == "continuous":
        return False
    return t in step_boundaries(program, t - 1, t + 1)


def _apportion(mass: int, weights: list[tuple[Fraction, int]]) -> list[tuple[int, int]]:
    """``mass`` pg split by ``weights`` (floor, then largest remainders; ties in list order)."""
    total = sum(w for w, _ in weights)
    exact = [mass * w / total for w, _ in weights]
    floors = [int(x.numerator // x.denominator) for x in exact]
    left = mass - sum(floors)
    ranked = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in ranked[:left]:
        floors[i] += 1
    return [(weights[i][1], floors[i]) for i in range(len(weights))]


# ----- sources ----------------------------------------------------------------------------------


def history_of(source: Any) -> TherapyHistory:
    """The :class:`TherapyHistory` of a :class:`~itb.scenario.ScenarioResult`, a
    :class:`Recorder`, or an already built history. Anything else is a ``ValidationError``."""
    if isinstance(source, TherapyHistory):
        return source
    if isinstance(source, Recorder):
        return source.history()
    from ..scenario import ScenarioResult

    if isinstance(source, ScenarioResult):
        return _from_result(source)
    hint = ""
    if isinstance(source, Pump):
        hint = (
            "; drive the pump through itb.interop.Recorder(pump) from its start (a pump's events "
            "do not carry the tip dose per segment)"
        )
    raise ValidationError(
        "source: expected an itb.scenario.ScenarioResult or an itb.interop.Recorder, got "
        f"{type(source).__name__}{hint}",
        "source",
    )


def _from_result(result: Any) -> TherapyHistory:
    from .._time import to_ms
    from ..scenario.spec import SetProgram

    scenario = result.scenario
    spec = scenario.spec
    start_ms, end_ms = to_ms(result.start, "start"), to_ms(result.until, "until")
    programs: list[tuple[int, tuple[Any, ...]]] = [(start_ms, spec.pump.program.build().exact())]
    for action in spec.actions:
        if isinstance(action, SetProgram) and action.at <= result.until:
            at = to_ms(action.at, "at")
            if programs[-1][0] == at:
                programs[-1] = (at, action.program.build().exact())
            else:
                programs.append((at, action.program.build().exact()))
    events = list(result.events)
    cuts = boundaries(start_ms, end_ms, programs, events, scenario.model)
    marks: list[tuple[int, int, int]] = []
    pump, _, _ = scenario.execute(
        result.until,
        samples=[from_ms(t) for t in cuts],
        on_sample=lambda p: marks.append((p.now_ms, p.delivered_pg, p.delivered_nl)),
    )
    if not marks or marks[-1][0] != end_ms:
        marks.append((end_ms, pump.delivered_pg, pump.delivered_nl))
    if marks[-1][1] != result.pump.delivered_pg or marks[0][:2] != (start_ms, 0):
        raise RuntimeError(
            "the replay of the scenario for the export did not reproduce its tip ledger"
        )  # a bug, not an input problem
    return build(
        model=scenario.model,
        start_ms=start_ms,
        end_ms=end_ms,
        programs=programs,
        events=events,
        marks=marks,
        initial_concentration=int(spec.pump.concentration_ug_per_ml),
        final=result.pump,
        active_at_start=sounding_at_start(scenario.pump(), events),
    )


class Recorder:
    """Drive a :class:`~itb.Pump` and keep what an export needs: call the pump's methods as
    usual (``recorder.pump.bolus(…)``) but advance it through :meth:`advance_to` /
    :meth:`advance`, which stop at every mark (flex step boundaries, bolus starts and ends, the
    projected empty reservoir and EOS) to read the tip ledger, and keep every event.

    >>> import itb
    >>> from datetime import datetime, timedelta
    >>> from itb.interop import Recorder
    >>> pump = itb.Pump(itb.models.SYNCHROMED_II_40, now=datetime(2026, 1, 5, 8), reservoir_ml=40.0,
    ...                 concentration_ug_per_ml=2000, program=itb.Continuous(ug_per_day=400))
    >>> rec = Recorder(pump)
    >>> _ = rec.pump.bolus(dose_ug=50.0, duration=timedelta(minutes=30))
    >>> _ = rec.advance(timedelta(days=2))
    >>> sum(a.tip_pg for a in rec.history().administrations) == pump.delivered_pg
    True

    Advancing the pump directly (not through the recorder) is detected and refused
    (``ValidationError``) at the next :meth:`advance_to` or :meth:`history`."""

    def __init__(self, pump: Pump) -> None:
        if not isinstance(pump, Pump):
            raise ValidationError(f"pump: expected itb.Pump, got {type(pump).__name__}", "pump")
        self.pump = pump
        self._start_ms = pump.now_ms
        self._initial_concentration = pump.concentration_ug_per_ml
        self._start_pg = pump.delivered_pg
        self._marks: list[tuple[int, int, int]] = [
            (pump.now_ms, pump.delivered_pg, pump.delivered_nl)
        ]
        self._programs: list[tuple[int, tuple[Any, ...]]] = [(pump.now_ms, pump.core.program)]
        self._events: list[Event] = []
        self._active_at_start = sounding_at_start(pump)

    def _check(self) -> None:
        if self.pump.now_ms != self._marks[-1][0]:
            raise ValidationError(
                "pump: advanced outside the recorder (use Recorder.advance_to/advance)", "pump"
            )

    def advance_to(self, until: Any) -> list[Event]:
        """Run the pump to ``until`` (naive datetime or int ms), stopping at every mark; returns
        the events of this advance (they are also kept)."""
        from .._time import to_ms

        self._check()
        until_ms = to_ms(until, "until")
        if until_ms < self.pump.now_ms:
            return list(self.pump.advance_to(until_ms))  # the pump's own refusal (in the past)
        program = self.pump.core.program
        if program != self._programs[-1][1]:
            if self._programs[-1][0] == self.pump.now_ms:
                self._programs[-1] = (self.pump.now_ms, program)
            else:
                self._programs.append((self.pump.now_ms, program))
        got: list[Event] = []
        steps = step_boundaries(program, self.pump.now_ms, until_ms)
        k = 0
        while self.pump.now_ms < until_ms:
            now = self.pump.now_ms
            nxt = until_ms
            while k < len(steps) and steps[k] <= now:
                k += 1
            if k < len(steps):
                nxt = min(nxt, steps[k])
            for b in self.pump.boluses:
                for t in (b.start, b.end):
                    ms = to_ms(t, "t")
                    if now < ms < nxt:
                        nxt = ms
            proj = self.pump.project(horizon=_as_delta(nxt - now))
            for alarm_ms in (proj.reservoir_empty_ms, proj.eos_ms):
                if alarm_ms is not None and now < alarm_ms < nxt:
                    nxt = alarm_ms
            got += self.pump.advance_to(nxt)
            self._marks.append((self.pump.now_ms, self.pump.delivered_pg, self.pump.delivered_nl))
        self._events += got
        return got

    def advance(self, duration: Duration) -> list[Event]:
        """Run the pump for ``duration`` (a ``timedelta``/``numpy.timedelta64``; a bare number is
        a ``ValidationError`` naming ``duration``)."""
        from .._time import duration_ms

        return self.advance_to(self.pump.now_ms + duration_ms(duration, "duration"))

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def history(self) -> TherapyHistory:
        """The history so far (see :class:`TherapyHistory`)."""
        self._check()
        hist = build(
            model=self.pump.model,
            start_ms=self._start_ms,
            end_ms=self.pump.now_ms,
            programs=list(self._programs),
            events=list(self._events),
            marks=list(self._marks),
            initial_concentration=self._initial_concentration,
            final=self.pump,
            active_at_start=self._active_at_start,
        )
        return hist


def _as_delta(ms: int) -> Any:
    return timedelta(milliseconds=max(ms, 1))


def iter_alarms(events: Iterable[Event]) -> list[Event]:
    """The alarm events (with a severity) and refill discrepancies, in order."""
    return [e for e in events if e.severity is not None or e.kind == "refill_discrepancy"]


# Event data keys in internal integer units → (suffix to drop, clinical unit, decimal places).
_DETAIL_UNITS = (
    ("_nl_per_day", "mL/day", 6),
    ("_ng_per_day", "µg/day", 3),
    ("_nl", "mL", 6),
    ("_pg", "µg", 6),
)


def alarm_detail(data: dict[str, Any]) -> str:
    """An event's data as clinical text: ``key=value`` pairs sorted by key, volumes in mL, drug
    mass in µg, rates in mL/day or µg/day (exact decimals of the pump's integer nL, pg, ng/day;
    e.g. ``aspirated_nl=10500000`` reads ``aspirated=10.5 mL``); other keys as they are."""
    parts = []
    for k, v in sorted(data.items()):
        for suffix, unit, places in _DETAIL_UNITS:
            if k.endswith(suffix) and isinstance(v, int) and not isinstance(v, bool):
                parts.append(f"{k[: -len(suffix)]}={exact_decimal(v, places)} {unit}")
                break
        else:
            parts.append(f"{k}={v}")
    return ", ".join(parts)
