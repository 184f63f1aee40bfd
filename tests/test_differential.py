"""Differential tests: the Rust core (through ``itb._core`` and the ``itb`` front) against the
independent pure-Python oracle ``tests/reference.py``, on random scenarios.

Compared after every advance: every stroke time (stroke for stroke), stroke count, reservoir,
pumped volume, accumulator remainder, empty flag, low-alarm arming, open boluses, and the time,
kind and ids of the events both models produce (bolus_started/_completed/_cancelled,
low_reservoir, reservoir_empty). Events only the core produces (program_changed, refilled,
concentration_changed, stroke_batch) are checked against what the calls imply.

Calls that must be rejected are predicted by the validity oracle in ``_scenarios.py`` (written
from docs: design.md#python-api-contract); the core must raise exactly then, with a typed error, and change nothing.
"""

from __future__ import annotations

from datetime import timedelta

import itb
import numpy as np
import pytest
from _scenarios import (
    COMMON_KINDS,
    EPOCH,
    MAX_TIME_MS,
    H,
    Model,
    bolus_args,
    clinical,
    concentrations,
    expect_bolus,
    expect_program,
    expect_refill,
    first_bad_step,
    log_int,
    models,
    programs,
    rate_field,
    scale,
    start_times,
    synchromed_like,
)
from hypothesis import assume, given, note, seed, settings
from hypothesis import strategies as st
from itb import _core
from reference import D, RefPump, to_scaled, volume_rate_nl_per_day

YEAR = 365 * D


# --------------------------------------------------------------------------------------------
# A pair of pumps driven in lock step
# --------------------------------------------------------------------------------------------


class Pair:
    """The core pump and the reference pump, built from the same exact inputs."""

    def __init__(self, model: Model, now: int, fill: int, conc: int, program, catheter: int = 0):
        self.model = model
        self.rust = _core.Pump(
            model=model.core_dict(),
            now_ms=now,
            reservoir_nl=fill,
            concentration=conc,
            program=program,
            catheter_nl=catheter,
        )
        self.ref = RefPump(
            now_ms=now,
            stroke_nl=model.stroke_nl,
            capacity_nl=model.capacity_nl,
            reservoir_nl=fill,
            low_reservoir_nl=model.low_nl,
            conc_ug_per_ml=conc,
            program=program,
        )
        self.path0 = model.pump_path_nl + catheter
        self.seen = 0  # reference stroke_times already compared
        self.extra = []  # core-only events the calls since the last advance must produce
        self.advances = 0
        self.n_strokes = 0
        self.kinds_seen = set()
        self.compare_state()

    # ---- calls ----------------------------------------------------------------------------

    def _call(self, expected: set, rust_call, ref_call, what: str):
        """Run a call on the core; it must fail (typed, no change) iff ``expected``."""
        before = self.rust.snapshot()
        try:
            result = rust_call()
        except itb.ItbError as exc:
            assert expected, f"{what}: core raised {exc!r} but the call is valid"
            assert type(exc) in expected, (
                f"{what}: core raised {type(exc).__name__}, expected one of {expected}"
            )
            assert self.rust.snapshot() == before, f"{what}: a rejected call changed the pump"
            return None, False
        assert not expected, f"{what}: core accepted a call that must raise one of {expected}"
        ref_result = ref_call()
        return (result, ref_result), True

    def bolus(self, dose: int, duration: int, start):
        expected = expect_bolus(self.ref, self.model, dose, duration, start)
        out, ok = self._call(
            expected,
            lambda: self.rust.bolus(dose, duration, start),
            lambda: self.ref.bolus(dose, duration, start_ms=start),
            f"bolus({dose}, {duration}, {start})",
        )
        if ok:
            rust_id, ref_id = out
            assert rust_id == ref_id
        return ok

    def cancel(self, bolus_id: int):
        b = self.ref._boluses.get(bolus_id)
        expected = set() if b is not None and not b.finished else {itb.ValidationError}
        self._call(
            expected,
            lambda: self.rust.cancel_bolus(bolus_id),
            lambda: self.ref.cancel_bolus(bolus_id),
            f"cancel_bolus({bolus_id})",
        )

    def set_program(self, program):
        expected = expect_program(self.ref, self.model, program)
        _, ok = self._call(
            expected,
            lambda: self.rust.set_program(program),
            lambda: self.ref.set_program(program),
            f"set_program({program})",
        )
        if ok:
            self.extra.append((self.ref.now_ms, "program_changed"))

    def refill(self, added: int, conc: int, aspirated):
        expected = expect_refill(self.ref, self.model, added, conc)
        res_before, conc_before = self.ref.reservoir_nl, self.ref.conc_ug_per_ml
        out, ok = self._call(
            expected,
            lambda: self.rust.refill(added, conc, aspirated),
            lambda: self.ref.refill(added, conc),
            f"refill({added}, {conc}, {aspirated})",
        )
        if ok:
            res, _ = out
            exp_nl, asp_nl = res[0], res[1]
            assert exp_nl == res_before
            assert asp_nl == (res_before if aspirated is None else aspirated)
            self.extra.append((self.ref.now_ms, "refilled"))
            if conc != conc_before:
                self.extra.append((self.ref.now_ms, "concentration_changed"))
        self.compare_state()

    # ---- time -----------------------------------------------------------------------------

    def advance_to(self, t: int):
        t = min(t, MAX_TIME_MS)
        prev = self.rust.now_ms
        rust_events, times = self.rust.advance_to_recording(t)
        ref_events = self.ref.advance_to(t)
        self.advances += 1

        # every stroke, in order
        assert isinstance(times, np.ndarray) and times.dtype == np.int64
        ref_times = self.ref.stroke_times[self.seen :]
        self.seen = len(self.ref.stroke_times)
        assert times.tolist() == ref_times, _first_diff(times.tolist(), ref_times)
        self.n_strokes += len(ref_times)

        # events both produce
        got = [
            (e[0], e[1], e[3].get("bolus_id"), e[3].get("reservoir_nl"))
            for e in rust_events
            if e[1] in COMMON_KINDS
        ]
        exp = [(e[0], e[1], e[2].get("bolus_id"), e[2].get("reservoir_nl")) for e in ref_events]
        assert got == exp
        self.kinds_seen |= {e[1] for e in rust_events}

        # core-only call events, stamped at the call times
        calls = [
            (e[0], e[1])
            for e in rust_events
            if e[1] in ("program_changed", "refilled", "concentration_changed")
        ]
        assert sorted(calls) == sorted(self.extra)
        self.extra = []

        # ordering and window
        event_times = [e[0] for e in rust_events]
        assert event_times == sorted(event_times), "events not ordered by time"
        seqs = [e[4] for e in rust_events]
        assert all(x < y for x, y in zip(seqs, seqs[1:])), "sequence numbers must strictly increase"
        assert all(prev <= e[0] <= t for e in rust_events)

        # stroke_batch summaries partition the recorded strokes
        check_batches(rust_events, times.tolist(), self.model.stroke_nl)
        self.compare_state()

    def compare_state(self):
        r, f, q = self.rust, self.ref, self.model.stroke_nl
        assert r.now_ms == f.now_ms
        assert r.strokes == f.strokes
        assert r.reservoir_nl == f.reservoir_nl
        assert r.pumped_nl == f.pumped_nl == f.strokes * q
        assert r.withdrawn_nl == f.withdrawn_nl
        assert r.filled_nl == f.filled_nl + self.path0
        assert r.concentration == f.conc_ug_per_ml
        assert r.empty == (not f.delivering)
        assert r.low_alarm_armed == f._low_armed
        assert r.accumulator == f.accumulator - f.strokes * q * D
        exp_bol = [
            (b.bolus_id, b.start_ms, b.end_ms, b.volume_nl, b.rate)
            for b in f._open
            if not b.finished
        ]
        got_bol = [
            tuple(b[:4]) + (b[6],) for b in r.boluses
        ]  # (id, start, end, volume_nl, …, rate)
        assert got_bol == exp_bol

    # ---- projection -----------------------------------------------------------------------

    def check_project(self, horizon: int, against_ref: bool = True):
        got = tuple(self.rust.project(horizon)[:3])
        if against_ref:
            exp = self.ref.project(horizon)
            assert got == (exp["next_stroke"], exp["low_reservoir"], exp["reservoir_empty"])
        assert got == observe(self.rust, horizon)
        return got


def _first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"stroke {i}: core {x} != reference {y} (lengths {len(a)} vs {len(b)})"
    return f"lengths differ: core {len(a)} vs reference {len(b)}"


def check_batches(events, times, q):
    i = 0
    for t, kind, _sev, data, _seq in events:
        if kind != "stroke_batch":
            continue
        n = data["count"]
        assert n >= 1
        assert times[i] == data["first_ms"]
        assert times[i + n - 1] == t
        assert data["volume_nl"] == n * q
        i += n
    assert i == len(times)


def observe(core_pump, horizon: int):
    """Run a copy to now + horizon and report what it did: first stroke, first low-reservoir
    and first reservoir-empty event strictly after now (None if not seen)."""
    p = core_pump.copy()
    now = p.now_ms
    end = min(now + horizon, MAX_TIME_MS)
    events, times = p.advance_to_recording(end)
    nxt = int(times[0]) if len(times) else None
    low = next((e[0] for e in events if e[1] == "low_reservoir" and e[0] > now), None)
    empty = next((e[0] for e in events if e[1] == "reservoir_empty" and e[0] > now), None)
    return nxt, low, empty


# --------------------------------------------------------------------------------------------
# Random scenario driver
# --------------------------------------------------------------------------------------------


@st.composite
def bad_program(draw, model: Model, conc: int):
    """A program with one step at a rate that is not 0 and outside [min, max] (if one exists
    on the rounding grid), the other steps valid."""
    prog = draw(programs(model, conc))
    steps = [(0, prog[1])] if prog[0] == "continuous" else list(prog[2])
    i = draw(st.integers(0, len(steps) - 1))
    candidates = []
    if model.min_rate > 1:
        target = draw(st.integers(1, model.min_rate - 1))
        candidates.append(target * conc // 1000)
    target = draw(log_int(model.max_rate + 1, 3 * model.max_rate + 10))
    candidates.append(target * conc // 1000 + 1)
    ng = draw(st.sampled_from(candidates))
    steps[i] = (steps[i][0], max(ng, 1))
    if prog[0] == "continuous":
        return ("continuous", steps[0][1])
    return ("flex", prog[1], steps)


def advance_target(data, pair: Pair, long: bool):
    now = pair.ref.now_ms
    kind = data.draw(
        st.sampled_from(["event", "day", "long", "event", "small", "bolus_edge", "zero"])
    )
    if kind == "zero":
        return now
    if kind == "small":
        return now + data.draw(st.integers(1, 5000))
    if kind == "day":
        return now + data.draw(st.integers(1, 2 * D))
    if kind == "long":
        return now + data.draw(log_int(1, (2 * YEAR) if long else 60 * D))
    if kind == "event":
        # exactly at (or one ms before) a projected stroke / alarm: boundary times
        nxt, low, empty = pair.rust.project(YEAR)[:3]
        cands = [t for t in (nxt, low, empty) if t is not None]
        if not cands:
            return now + data.draw(st.integers(1, D))
        return data.draw(st.sampled_from(cands)) - data.draw(st.sampled_from([0, 0, 1]))
    # bolus start/end boundaries
    edges = [t for b in pair.rust.boluses for t in (b[1], b[2] - 1, b[2]) if t >= now]
    if not edges:
        return now + data.draw(st.integers(1, H))
    return data.draw(st.sampled_from(edges))


def run_scenario(data, model: Model, *, n_ops: int, long: bool, project_every: bool):
    conc = data.draw(concentrations, label="conc")
    program = data.draw(programs(model, conc), label="program")
    now = data.draw(start_times(), label="now")
    cap = model.capacity_nl
    fill = data.draw(
        st.one_of(st.just(cap), st.integers(cap // 2, cap), st.integers(0, cap)), label="fill"
    )
    catheter = data.draw(st.one_of(st.just(0), st.integers(0, 50_000)), label="catheter_nl")
    pair = Pair(model, now, fill, conc, program, catheter)
    note(f"{model!r} conc={conc} program={program} now={now} fill={fill}")
    ops = st.sampled_from(
        [
            "advance",
            "bolus",
            "advance",
            "refill",
            "advance",
            "bolus_cancel",
            "cancel",
            "program",
            "project",
        ]
    )
    for _ in range(n_ops):
        op = data.draw(ops)
        if op == "advance":
            pair.advance_to(advance_target(data, pair, long))
        elif op == "bolus":
            pair.bolus(*data.draw(bolus_args(pair.ref, model)))
        elif op == "bolus_cancel":
            # a bolus, then a cancel before, during or just after its delivery
            if pair.bolus(*data.draw(bolus_args(pair.ref, model))):
                b = pair.ref._boluses[pair.ref._next_bolus_id - 1]
                t = data.draw(st.integers(pair.ref.now_ms, b.end_ms + 1))
                pair.advance_to(t)
                pair.cancel(b.bolus_id)
        elif op == "cancel":
            open_ids = [b.bolus_id for b in pair.ref._open if not b.finished]
            any_id = st.integers(0, pair.ref._next_bolus_id)
            bid = data.draw(st.one_of(st.sampled_from(open_ids), any_id) if open_ids else any_id)
            pair.cancel(bid)
        elif op == "program":
            c = pair.ref.conc_ug_per_ml
            prog = data.draw(
                st.one_of(programs(model, c), programs(model, c), bad_program(model, c))
            )
            pair.set_program(prog)
        elif op == "refill":
            added = data.draw(
                st.one_of(
                    st.integers(0, model.capacity_nl),
                    st.just(model.capacity_nl),
                    st.integers(0, model.stroke_nl),
                    st.just(model.capacity_nl + 1),
                )
            )
            c = data.draw(st.one_of(st.just(pair.ref.conc_ug_per_ml), concentrations))
            aspirated = data.draw(st.one_of(st.none(), st.integers(0, model.capacity_nl)))
            pair.refill(added, c, aspirated)
        if project_every or op == "project":
            pair.check_project(data.draw(st.one_of(log_int(1, 10 * YEAR), st.just(10 * YEAR))))
    pair.advance_to(pair.ref.now_ms + data.draw(log_int(1, YEAR if long else 30 * D)))
    return pair


_STATS = {"strokes": 0, "kinds": set(), "examples": 0}


def _random_scenario(data) -> None:
    model = data.draw(models(), label="model")
    pair = run_scenario(
        data, model, n_ops=data.draw(st.integers(4, 14)), long=True, project_every=False
    )
    _STATS["strokes"] += pair.n_strokes
    _STATS["kinds"] |= pair.kinds_seen
    _STATS["examples"] += 1


@settings(max_examples=scale(200))
@given(st.data())
def test_random_scenarios_match_reference(data):
    _random_scenario(data)


def test_random_scenarios_were_not_trivial():
    """Guard against a generator that silently stopped producing strokes, alarms or boluses.

    The derandomized stream shifts whenever code changes (hypothesis also draws literals found
    in the package), so a rare kind (a bolus re-derived by a concentration change) may be
    missing from one stream: up to 4 more fixed seeds are drawn (each a full differential
    check). A generator that cannot produce a kind still fails."""
    wanted = set(COMMON_KINDS) | {"stroke_batch", "program_changed", "refilled"}
    if _STATS["examples"] == 0:
        test_random_scenarios_match_reference()
    for extra_seed in range(1, 5):
        if wanted <= _STATS["kinds"]:
            break

        @seed(extra_seed)
        @settings(derandomize=False, database=None, max_examples=scale(200))
        @given(st.data())
        def more(data):
            _random_scenario(data)

        more()
    assert _STATS["strokes"] > 10_000
    assert wanted <= _STATS["kinds"]


@settings(max_examples=scale(40))
@given(st.data())
def test_realistic_model_scenarios_match_reference(data):
    """SynchroMed-like figures (q = 2000 nL, 0.048..24 mL/day), small reservoirs so that
    alarms and refills happen within the scenario."""
    cap = data.draw(st.sampled_from([40_000, 200_000, 2_000_000, 4_000_000]))
    model = synchromed_like(cap)
    model.low_nl = min(model.low_nl, data.draw(st.integers(0, cap)))
    run_scenario(data, model, n_ops=data.draw(st.integers(1, 10)), long=True, project_every=False)


@settings(max_examples=scale(80))
@given(st.data())
def test_project_matches_reference_and_advance(data):
    """project(h) == RefPump.project(h) == what advance_to then observes, after each call,
    for flex programs, pending boluses and horizons up to 10 years."""
    model = data.draw(models(max_strokes_per_fill=600), label="model")
    run_scenario(data, model, n_ops=data.draw(st.integers(1, 6)), long=False, project_every=True)


@settings(max_examples=scale(60))
@given(st.data())
def test_project_equals_observation_large_reservoir(data):
    """Rust only (the reference would be too slow): big reservoirs, 10-year horizons, pending
    boluses. Each projected time T is pinned: nothing at T − 1, the event at T; a None means
    nothing happens up to the horizon's end (inclusive)."""
    q = data.draw(log_int(1, 5000))
    cap = data.draw(log_int(q, 1_000_000_000))
    hi = min(10**9, q * D)
    max_rate = data.draw(log_int(1, hi))
    min_rate = data.draw(log_int(1, max_rate))
    model = Model(q, cap, min_rate, max_rate, data.draw(st.integers(0, cap)), 0)
    conc = data.draw(concentrations)
    program = data.draw(programs(model, conc, max_rate=max_rate // 2 + 1))
    now = data.draw(start_times())
    pump = _core.Pump(
        model=model.core_dict(),
        now_ms=now,
        reservoir_nl=data.draw(st.integers(0, cap)),
        concentration=conc,
        program=program,
        catheter_nl=0,
    )
    ref_shadow = RefPump(
        now_ms=now,
        stroke_nl=q,
        capacity_nl=cap,
        reservoir_nl=pump.reservoir_nl,
        low_reservoir_nl=model.low_nl,
        conc_ug_per_ml=conc,
        program=program,
    )
    for _ in range(data.draw(st.integers(0, 3))):
        dose, dur, start = data.draw(bolus_args(ref_shadow, model, max_days=30))
        try:
            pump.bolus(dose, dur, start)
            ref_shadow.bolus(dose, dur, start_ms=start)
        except itb.ItbError:
            pass
    pump.advance_to(pump.now_ms + data.draw(st.integers(0, 3 * D)))
    horizon = data.draw(st.one_of(st.just(10 * YEAR), log_int(1, 10 * YEAR)))
    proj = pump.project(horizon)[:3]
    now = pump.now_ms
    end = now + horizon
    strokes0 = pump.strokes

    nxt, low, empty = proj
    for t in (nxt, low, empty):
        assert t is None or now < t <= end
    if nxt is not None:
        a = pump.copy()
        a.advance_to(nxt - 1)
        assert a.strokes == strokes0
        a.advance_to(nxt)
        assert a.strokes > strokes0
    for kind, t in (("low_reservoir", low), ("reservoir_empty", empty)):
        a = pump.copy()
        if t is None:
            evs = a.advance_to(end)
            assert not [e for e in evs if e[1] == kind and e[0] > now]
            if kind == "low_reservoir" and nxt is None:
                assert a.strokes == strokes0
        else:
            evs = a.advance_to(t - 1)
            assert not [e for e in evs if e[1] == kind and e[0] > now]
            evs = a.advance_to(t)
            assert [e[0] for e in evs if e[1] == kind] == [t]
    if nxt is None:
        a = pump.copy()
        a.advance_to(end)
        assert a.strokes == strokes0
    # the horizon bound is inclusive: exactly to the event finds it, one ms short does not
    if nxt is not None:
        assert pump.project(nxt - now)[0] == nxt
        assert pump.project(nxt - now - 1)[0] is None


@settings(max_examples=scale(25))
@given(st.data())
def test_ten_year_flex_projection_matches_reference(data):
    """Flex (day/week) programs with a pending bolus over a 10-year horizon, large enough
    reservoirs that the empty alarm is years away."""
    model = synchromed_like(data.draw(st.sampled_from([20_000_000, 40_000_000])))
    conc = data.draw(st.sampled_from([500, 2000, 4000]))
    # low rates: 0.048..0.15 mL/day -> 40 mL lasts 0.7..2.3 years
    program = data.draw(programs(model, conc, max_rate=150_000))
    now = data.draw(start_times())
    pair = Pair(model, now, model.capacity_nl, conc, program, 0)
    if data.draw(st.booleans()):
        pair.bolus(*data.draw(bolus_args(pair.ref, model)))
    pair.check_project(10 * YEAR)


# --------------------------------------------------------------------------------------------
# Programs outside the model's limits
# --------------------------------------------------------------------------------------------


@settings(max_examples=scale(80))
@given(st.data())
def test_invalid_programs_raise_programming_error(data):
    model = data.draw(models(max_strokes_per_fill=100), label="model")
    conc = data.draw(concentrations)
    prog = data.draw(bad_program(model, conc))
    i = first_bad_step(prog, conc, model)
    assume(i is not None)  # the rounding grid may have put the rate back in range
    kwargs = dict(
        model=model.core_dict(),
        now_ms=0,
        reservoir_nl=model.capacity_nl,
        concentration=conc,
        catheter_nl=0,
    )
    with pytest.raises(itb.ProgrammingError) as exc:
        _core.Pump(program=prog, **kwargs)
    assert exc.value.field == rate_field(prog, i)
    # and through set_program on a valid pump (which stays unchanged)
    pump = _core.Pump(program=("continuous", 0), **kwargs)
    before = pump.snapshot()
    with pytest.raises(itb.ProgrammingError) as exc:
        pump.set_program(prog)
    assert exc.value.field == rate_field(prog, i)
    assert pump.snapshot() == before


@settings(max_examples=scale(60))
@given(st.data())
def test_valid_programs_are_accepted(data):
    model = data.draw(models(max_strokes_per_fill=100), label="model")
    conc = data.draw(concentrations)
    prog = data.draw(programs(model, conc))
    assert first_bad_step(prog, conc, model) is None
    pump = _core.Pump(
        model=model.core_dict(),
        now_ms=0,
        reservoir_nl=0,
        concentration=conc,
        program=prog,
        catheter_nl=0,
    )
    # the schedule is the program's steps at the concentration (half-even volume rates)
    period_ms, _anchor, steps = pump.schedule
    exp_steps = [(0, prog[1])] if prog[0] == "continuous" else prog[2]
    assert [o for o, _ in steps] == [o for o, _ in exp_steps]
    assert [r for _, r in steps] == [volume_rate_nl_per_day(ng, conc) for _, ng in exp_steps]


# --------------------------------------------------------------------------------------------
# Through the public Python API (floats, datetimes) against the reference
# --------------------------------------------------------------------------------------------


@settings(max_examples=scale(40))
@given(st.data())
def test_python_api_matches_reference(data):
    model = data.draw(models(max_strokes_per_fill=1500), label="model")
    conc = data.draw(concentrations)
    prog = data.draw(programs(model, conc))
    now = data.draw(start_times())
    fill = data.draw(st.integers(0, model.capacity_nl))

    # the same program in clinical units: ng -> µg floats, offsets as time / timedelta
    for _, ng in prog[2] if prog[0] == "flex" else [(0, prog[1])]:
        assert to_scaled(ng / 1000, 3) == ng  # the float carries the exact dose
    pump = itb.Pump(
        model.py_model(),
        now=EPOCH + timedelta(milliseconds=now),
        reservoir_ml=fill / 1e6,
        concentration_ug_per_ml=conc,
        program=clinical(prog),
    )
    ref = RefPump(
        now_ms=now,
        stroke_nl=model.stroke_nl,
        capacity_nl=model.capacity_nl,
        reservoir_nl=fill,
        low_reservoir_nl=model.low_nl,
        conc_ug_per_ml=conc,
        program=prog,
    )
    assert pump.now_ms == now and pump.reservoir_nl == fill
    seen = 0
    for _ in range(data.draw(st.integers(1, 5))):
        op = data.draw(st.sampled_from(["advance", "advance", "bolus", "refill"]))
        if op == "bolus":
            dose, dur, start = data.draw(bolus_args(ref, model))
            if expect_bolus(ref, model, dose, dur, start):
                continue
            when = None if start is None else EPOCH + timedelta(milliseconds=start)
            bid = pump.bolus(dose_ug=dose / 1000, duration=timedelta(milliseconds=dur), start=when)
            assert bid == ref.bolus(dose, dur, start_ms=start)
        elif op == "refill":
            added = data.draw(st.integers(0, model.capacity_nl))
            if expect_refill(ref, model, added, ref.conc_ug_per_ml):
                continue
            pump.refill(added / 1e6, ref.conc_ug_per_ml)
            ref.refill(added, ref.conc_ug_per_ml)
        else:
            until = ref.now_ms + data.draw(log_int(1, 90 * D))
            events, times = pump.advance_recording(EPOCH + timedelta(milliseconds=until))
            ref_events = ref.advance_to(until)
            assert times.tolist() == ref.stroke_times[seen:]
            seen = len(ref.stroke_times)
            got = [(e.time_ms, e.kind) for e in events if e.kind in COMMON_KINDS]
            assert got == [(t, k) for t, k, _ in ref_events]
            assert all(e.time == EPOCH + timedelta(milliseconds=e.time_ms) for e in events)
            proj = pump.project(timedelta(days=3650))
            rp = ref.project(3650 * D)
            conv = lambda t: None if t is None else EPOCH + timedelta(milliseconds=t)  # noqa: E731
            assert (proj.next_stroke, proj.low_reservoir, proj.reservoir_empty) == (
                conv(rp["next_stroke"]),
                conv(rp["low_reservoir"]),
                conv(rp["reservoir_empty"]),
            )
        assert pump.strokes == ref.strokes
        assert pump.reservoir_nl == ref.reservoir_nl
        assert pump.pumped_nl == ref.pumped_nl
