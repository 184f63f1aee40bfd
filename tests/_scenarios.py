"""Test-side helpers shared by the differential and invariant suites.

* hypothesis strategies for pump models, concentrations, basal programs and start times,
  all in the core's exact integer units (nL, nL/day, ng/day, µg/mL, ms);
* a small *validity oracle*: given the reference pump's state, which typed error (if any) a call
  must raise. It is written from docs: design.md#python-api-contract ("Sum of basal + active boluses may not exceed the
  model's max rate", "A step or program rate of 0 is allowed; 0 < rate < min or > max is a
  ProgrammingError", "a start in the past is a ValidationError", overfill is a ReservoirError),
  independently of the Rust core.

Nothing here imports the code under test except to name its error classes.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from fractions import Fraction

import itb
from hypothesis import strategies as st
from reference import EVENT_KINDS, PERIODS, D, bolus_volume_nl, ceil_div, volume_rate_nl_per_day

WEEK = 7 * D
H = 3_600_000
MS = timedelta(milliseconds=1)
EPOCH = datetime(1970, 1, 1)
# The pump clock covers Python's datetime range (truncated to the millisecond).
MIN_TIME_MS = (datetime.min - EPOCH) // MS
MAX_TIME_MS = (datetime.max - EPOCH) // MS
MAX_CONCENTRATION = 100_000  # docs: units.md: concentration 1 to 100 000 µg/mL
COMMON_KINDS = (
    "bolus_started",
    "bolus_completed",
    "bolus_cancelled",
    "bolus_adjusted",
    "low_reservoir",
    "reservoir_empty",
)
# the event kinds in the fixed kind order for events at the same ms (docs: design.md#event-kinds); the
# reference model keeps the one copy.
DESIGN_KIND_ORDER = list(EVENT_KINDS)


def scale(n: int) -> int:
    """Example count, scaled by ITB_HYPOTHESIS_SCALE (default 1) for longer local runs."""
    return max(1, int(n * float(os.environ.get("ITB_HYPOTHESIS_SCALE", "1"))))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class Model:
    """A pump model in exact integers, convertible to the core's dict and to itb.PumpModel."""

    def __init__(
        self, stroke_nl, capacity_nl, min_rate, max_rate, low_nl, pump_path_nl, name="test"
    ):
        self.stroke_nl = stroke_nl
        self.capacity_nl = capacity_nl
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.low_nl = low_nl
        self.pump_path_nl = pump_path_nl
        self.name = name

    def core_dict(self) -> dict:
        return {
            "name": self.name,
            "reservoir_nl": self.capacity_nl,
            "stroke_nl": self.stroke_nl,
            "min_rate_nl_per_day": self.min_rate,
            "max_rate_nl_per_day": self.max_rate,
            "low_reservoir_nl": self.low_nl,
            "pump_path_nl": self.pump_path_nl,
        }

    def py_model(self) -> itb.PumpModel:
        # nL / 1e6 as a float has a shortest repr equal to the exact decimal (<= 10 digits),
        # so the front's half-even conversion gives the same integers back.
        return itb.PumpModel(
            name=self.name,
            reservoir_ml=self.capacity_nl / 1e6,
            stroke_nl=self.stroke_nl,
            min_rate_ml_per_day=self.min_rate / 1e6,
            max_rate_ml_per_day=self.max_rate / 1e6,
            low_reservoir_ml=self.low_nl / 1e6,
            pump_path_ul=self.pump_path_nl / 1e3,
        )

    def __repr__(self) -> str:
        return (
            f"Model(q={self.stroke_nl}, cap={self.capacity_nl}, rate={self.min_rate}..{self.max_rate}, "
            f"low={self.low_nl}, path={self.pump_path_nl})"
        )


def log_int(lo: int, hi: int):
    """Integers in [lo, hi], roughly log-uniform (plus the end points)."""
    assert 1 <= lo <= hi
    digits = len(str(hi))

    @st.composite
    def _draw(draw):
        choice = draw(st.integers(0, 9))
        if choice == 8:
            return lo
        if choice == 9:
            return hi
        d = digits - draw(st.integers(0, digits))  # simplest examples: the largest magnitudes
        a = max(lo, 10**d // 10 if d else 1)
        b = min(hi, 10**d)
        if a > b:
            return draw(st.integers(lo, hi))
        return draw(st.integers(a, b))

    return _draw()


@st.composite
def models(draw, max_strokes_per_fill: int = 3000, max_stroke: int = 5000):
    """Random models whose reservoir holds at most ``max_strokes_per_fill`` strokes (this bounds
    the work of the pure-Python reference). Built around a typical rate of ``per_day`` strokes a
    day so that most scenarios stroke, alarm and empty within days to months; the first
    alternatives of each ``one_of`` are the typical ones (hypothesis tries them first)."""
    q = draw(
        st.one_of(
            st.integers(1, max_stroke), st.sampled_from([1, 2, 7, 250, 2000, 4999, max_stroke])
        )
    )
    n = draw(
        st.one_of(
            st.integers(max(1, max_strokes_per_fill // 10), max_strokes_per_fill),
            st.integers(1, max_strokes_per_fill),
            st.integers(1, 5),
        )
    )
    capacity = q * n + draw(st.integers(0, q - 1))
    hi = min(10**9, q * D)  # <= one stroke per ms, <= 1 L/day
    per_day = draw(st.sampled_from([100, 1000, 10, 1, 10_000, Fraction(1, 10)])) * draw(
        st.integers(1, 9)
    )
    typical = max(1, min(hi, int(per_day * q)))
    max_rate = draw(
        st.one_of(st.integers(typical, min(hi, 50 * typical)), st.just(hi), st.just(typical))
    )
    min_rate = draw(
        st.one_of(st.integers(max(1, typical // 50), typical), st.just(1), st.just(max_rate))
    )
    low = draw(
        st.one_of(
            st.integers(0, min(capacity, (n // 3) * q + q)),
            st.integers(0, capacity),
            st.just(0),
            st.just(capacity),
        )
    )
    path = draw(st.one_of(st.integers(0, 200_000), st.just(0)))
    return Model(q, capacity, min_rate, max_rate, low, path)


def synchromed_like(capacity_nl=40_000_000) -> Model:
    return Model(2000, capacity_nl, 48_000, 24_000_000, 2_000_000, 100_000, name="synchromed-like")


concentrations = st.one_of(
    st.sampled_from([50, 500, 1000, 2000, 3000, 4000]),
    st.integers(1, MAX_CONCENTRATION),
    st.integers(1, 3),
)


@st.composite
def start_times(draw):
    """Pump-clock start times: around 2026, before 1970, on midnights / Mondays, arbitrary ms."""
    base = draw(
        st.one_of(
            st.integers(20_000 * D, 21_000 * D),  # 2024..2027
            st.integers(-30_000 * D, 60_000 * D),  # 1888..2134
            st.integers(19_000, 22_000).map(lambda d: d * D),  # a midnight
            st.integers(2_800, 3_000).map(lambda w: 4 * D + w * WEEK),  # a Monday 00:00
        )
    )
    jitter = draw(st.sampled_from([0, 0, -1, 1, 999]))
    return base + jitter


# --------------------------------------------------------------------------------------------
# Programs (exact core form)
# --------------------------------------------------------------------------------------------


def ng_for_volume_rate(target: int, conc: int, model: Model):
    """A dose rate (ng/day) whose volume rate at ``conc`` is within [min, max] near ``target``;
    None if the rounding grid skips the whole range."""
    ng = target * conc // 1000
    for cand in (ng, ng + 1, ng - 1, ng + 2, ng - 2):
        if cand > 0 and model.min_rate <= volume_rate_nl_per_day(cand, conc) <= model.max_rate:
            return cand
    # search the grid: volume rate is monotone in ng
    lo = max(1, model.min_rate * conc // 1000 - 2)
    for cand in range(lo, lo + 2 * (conc // 1000 + 3)):
        r = volume_rate_nl_per_day(cand, conc)
        if model.min_rate <= r <= model.max_rate:
            return cand
        if r > model.max_rate:
            break
    return None


def tie_near(ng: int, conc: int):
    """The first n >= ng with n·1000/conc exactly halfway between two integers (a half-even
    rounding tie), or None if there is none within reach."""
    for n in range(max(1, ng), max(1, ng) + min(2 * conc, 4000)):
        if (2000 * n) % (2 * conc) == conc:
            return n
    return None


def dose_ng(model: Model, conc: int, zero_weight: int = 1, max_rate: int | None = None):
    """A valid step dose (ng/day): 0 or one whose volume rate is within [min, max_rate]."""
    hi = model.max_rate if max_rate is None else max(model.min_rate, min(max_rate, model.max_rate))

    @st.composite
    def _draw(draw):
        if draw(st.integers(0, 4)) >= 5 - zero_weight:
            return 0
        target = draw(log_int(model.min_rate, hi))
        ng = ng_for_volume_rate(target, conc, model)
        if ng is not None and draw(st.integers(0, 3)) == 0:
            # a rounding tie (ng·1000/conc = k + 1/2) near the target, if the grid has one
            tie = tie_near(ng, conc)
            if tie is not None and model.min_rate <= volume_rate_nl_per_day(tie, conc) <= hi:
                ng = tie
        return 0 if ng is None else ng

    return _draw()


@st.composite
def flex_offsets(draw, period: str):
    """Valid step offsets: start at 0, strictly increasing, within the period, <= 13 per day."""
    if period == "day":
        days = [0]
    else:
        days = list(range(7))
    offsets = [0]
    for day in days:
        n = draw(st.integers(0, 12 if period == "day" else 3))
        if draw(st.integers(0, 9)) == 0:
            n = 12  # the limit: 13 starts in a day (with the day's own start or not)
        grain = draw(st.sampled_from([1, 1000, 60_000, 1_800_000]))
        choices = st.integers(1, D // grain - 1).map(lambda k: day * D + k * grain)
        offsets += draw(st.lists(choices, max_size=n, unique=True))
        if day > 0 and draw(st.booleans()):
            offsets.append(day * D)  # a step exactly at midnight
    offsets = sorted(set(offsets))
    # enforce <= 13 starts per calendar day of the period
    out, per_day = [], {}
    for o in offsets:
        d = o // D
        if per_day.get(d, 0) < 13:
            out.append(o)
            per_day[d] = per_day.get(d, 0) + 1
    return out


@st.composite
def programs(draw, model: Model, conc: int, max_rate: int | None = None):
    """A program valid for ``model`` at ``conc`` in the core's exact form."""
    kind = draw(st.sampled_from(["continuous", "day", "week"]))
    if kind == "continuous":
        return ("continuous", draw(dose_ng(model, conc, max_rate=max_rate)))
    offsets = draw(flex_offsets(kind))
    return ("flex", kind, [(o, draw(dose_ng(model, conc, max_rate=max_rate))) for o in offsets])


def program_steps(program):
    if program[0] == "continuous":
        return [(0, program[1])]
    return list(program[2])


def step_rates(program, conc):
    return [volume_rate_nl_per_day(ng, conc) for _, ng in program_steps(program)]


def first_bad_step(program, conc, model: Model):
    """Index of the first step prescribed as non-zero whose volume rate is not within [min, max]
    (a non-zero dose whose rate rounds to 0 included:
    docs: decisions/field-reports.md#no-non-zero-input-becomes-zero), else None."""
    doses = [program[1]] if program[0] == "continuous" else [ng for _, ng in program[2]]
    for i, (ng, r) in enumerate(zip(doses, step_rates(program, conc))):
        if ng != 0 and not max(1, model.min_rate) <= r <= model.max_rate:
            return i
    return None


def rate_field(program, i):
    return "ug_per_day" if program[0] == "continuous" else f"steps[{i}].ug_per_day"


# --------------------------------------------------------------------------------------------
# Validity oracle over a reference pump's state
# --------------------------------------------------------------------------------------------


def basal_rate_at(program, conc, t):
    """Volume rate (nL/day) of ``program`` at pump time ``t`` (direct phase lookup)."""
    if program[0] == "continuous":
        return volume_rate_nl_per_day(program[1], conc)
    period, anchor = PERIODS[program[1]]
    phase = (t - anchor) % period
    ng = [n for off, n in program[2] if off <= phase][-1]
    return volume_rate_nl_per_day(ng, conc)


def basal_changes(program, a, b):
    """Times in (a, b) at which the basal rate may change."""
    if program[0] == "continuous":
        return []
    period, anchor = PERIODS[program[1]]
    out = []
    start = a - (a - anchor) % period
    while start < b:
        for off, _ in program[2]:
            t = start + off
            if a < t < b:
                out.append(t)
        start += period
    return out


def max_total_rate(program, conc, boluses, now):
    """max over t >= now of basal(t) + Σ r_b of the boluses running at t, over the times where at
    least one bolus runs (0 if none). ``boluses``: (start, end, r_b) with end the first ms after."""
    live = [(max(s, now), e, r) for s, e, r in boluses if e > now]
    if not live:
        return 0
    cands = set()
    for s, e, _ in live:
        cands.add(s)
        cands.update(basal_changes(program, s, e))
    best = 0
    for t in cands:
        bol = sum(r for s, e, r in live if s <= t < e)
        if bol:
            best = max(best, basal_rate_at(program, conc, t) + bol)
    return best


def open_boluses(ref):
    """(start, end, r_b) of the reference's boluses that are neither completed nor cancelled."""
    return [(b.start_ms, b.end_ms, b.rate) for b in ref._open if not b.finished]


def bolus_shape(volume_nl: int, duration_ms: int):
    """(r_b, length) of a bolus, from docs: design.md#boluses: r_b = ceil(V·D/T); it ends when its
    contribution min(r_b·(t − s), V·D) reaches V·D."""
    total = volume_nl * D
    rate = ceil_div(total, duration_ms)
    return rate, ceil_div(total, rate)


def expect_bolus(ref, model: Model, dose_ng: int, duration_ms: int, start_ms):
    """Error classes the core may raise for this bolus call (empty: it must succeed)."""
    errs = set()
    start = ref.now_ms if start_ms is None else start_ms
    if dose_ng < 1 or duration_ms < 1:
        errs.add(itb.ValidationError)
        return errs
    if start < ref.now_ms or start > MAX_TIME_MS:
        errs.add(itb.ValidationError)
    volume = bolus_volume_nl(dose_ng, ref.conc_ug_per_ml)
    if volume < 1 or volume > model.capacity_nl:
        errs.add(itb.ValidationError)
        return errs
    if not ref.delivering:
        errs.add(itb.ReservoirError)
    rate, length = bolus_shape(volume, duration_ms)
    if start + length > MAX_TIME_MS:
        errs.add(itb.ValidationError)
    boluses = open_boluses(ref) + [(start, start + length, rate)]
    if max_total_rate(ref.program, ref.conc_ug_per_ml, boluses, ref.now_ms) > model.max_rate:
        errs.add(itb.ProgrammingError)
    return errs


def expect_program(ref, model: Model, program, conc=None):
    """Error classes for set_program(program) (or a refill to ``conc``)."""
    conc = ref.conc_ug_per_ml if conc is None else conc
    if first_bad_step(program, conc, model) is not None:
        return {itb.ProgrammingError}
    if max_total_rate(program, conc, open_boluses(ref), ref.now_ms) > model.max_rate:
        return {itb.ProgrammingError}
    return set()


def expect_refill(ref, model: Model, added_nl: int, conc: int):
    errs = set()
    if not 1 <= conc <= MAX_CONCENTRATION:
        return {itb.ValidationError}
    if added_nl < 0:
        return {itb.ValidationError}
    if added_nl > model.capacity_nl:
        errs.add(itb.ReservoirError)
    if first_bad_step(ref.program, conc, model) is not None:
        return errs | {itb.ProgrammingError}
    boluses = open_boluses(ref)
    if conc != ref.conc_ug_per_ml:
        # not yet started: re-derived at the new concentration; running: cancelled
        # (docs: decisions/field-reports.md#doses-are-prescribed-in-micrograms)
        boluses = []
        for b in ref._open:
            if b.finished or b.start_ms < ref.now_ms:
                continue
            volume = bolus_volume_nl(b.dose_ng, conc)
            if 1 <= volume <= model.capacity_nl:
                rate, length = bolus_shape(volume, b.duration_ms)
                boluses.append((b.start_ms, b.start_ms + length, rate))
    if max_total_rate(ref.program, conc, boluses, ref.now_ms) > model.max_rate:
        errs.add(itb.ProgrammingError)
    return errs


# --------------------------------------------------------------------------------------------
# Bolus parameters likely to be valid
# --------------------------------------------------------------------------------------------


@st.composite
def bolus_args(draw, ref, model: Model, max_days: int = 3):
    """(dose_ng, duration_ms, start_ms | None) for the reference pump's state: mostly valid
    (rate within the headroom left by basal and other boluses), sometimes not."""
    conc = ref.conc_ug_per_ml
    vmax = max(1, min(model.capacity_nl, 20 * model.stroke_nl))
    volume = draw(log_int(1, vmax))
    dose = max(1, volume * conc // 1000 + draw(st.integers(-1, 1)))
    if draw(st.integers(0, 3)) == 0:
        dose = tie_near(dose, conc) or dose  # a half-even tie of the bolus volume
    if bolus_volume_nl(dose, conc) < 1:
        dose = ceil_div(1000 * 1, conc)  # >= 1 nL after rounding for most conc
        while bolus_volume_nl(dose, conc) < 1:
            dose += 1
    volume = bolus_volume_nl(dose, conc)
    when = draw(st.sampled_from(["now", "now_explicit", "future", "future"]))
    if when == "now":
        start = None
    elif when == "now_explicit":
        start = ref.now_ms
    else:
        start = ref.now_ms + draw(st.one_of(st.integers(1, 1000), st.integers(1, 10 * D)))
    s = ref.now_ms if start is None else start
    basal_max = max(step_rates(ref.program, conc))
    others = sum(r for _, e, r in open_boluses(ref) if e > s)
    headroom = model.max_rate - basal_max - others
    if headroom > 0 and draw(st.integers(0, 5)) > 0:
        t_min = ceil_div(volume * D, headroom)
        duration = t_min + draw(
            st.one_of(st.just(0), st.integers(0, 3 * H), log_int(1, max_days * D))
        )
    else:
        duration = draw(st.one_of(log_int(1, max_days * D), st.just(1)))
    return dose, duration, start


def clinical(program):
    """The exact core program as an itb.Continuous / itb.Flex in clinical units (µg/day floats
    that convert back to the same ng/day; offsets as ``time`` for day periods, ``timedelta`` for
    week periods)."""
    from datetime import time as _time

    if program[0] == "continuous":
        return itb.Continuous(ug_per_day=program[1] / 1000)
    steps = []
    for off, ng in program[2]:
        if program[1] == "day":
            s, ms = divmod(off, 1000)
            o = _time(s // 3600, s // 60 % 60, s % 60, ms * 1000)
        else:
            o = timedelta(milliseconds=off)
        steps.append((o, ng / 1000))
    return itb.Flex(period=program[1], steps=steps)


def at(ms: int) -> datetime:
    """Naive datetime of a pump-clock ms."""
    return EPOCH + timedelta(milliseconds=ms)
