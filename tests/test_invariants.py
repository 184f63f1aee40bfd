"""Hypothesis properties of the pump that need no oracle beyond DESIGN.md:

* delivered volume within one stroke of the ideal ∫r dt (computed here, in integers);
* conservation of volume and drug mass (filled = reservoir + path + delivered + withdrawn);
* the patient's dose follows the fluid path FIFO exactly;
* events ordered by time then kind, within the advanced window; recording changes nothing;
* snapshots: exact round trip, identical continuation, determinism, pickle;
* corrupt / truncated / foreign snapshot bytes raise itb.SnapshotError and never crash;
* a rejected call leaves the pump byte-for-byte unchanged.
"""

from __future__ import annotations

import copy
import math
import pickle
import struct
import zlib
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction

import itb
import pytest
from _scenarios import (
    DESIGN_KIND_ORDER,
    MAX_TIME_MS,
    H,
    Model,
    at,
    clinical,
    concentrations,
    log_int,
    models,
    ng_for_volume_rate,
    programs,
    scale,
    start_times,
)
from hypothesis import given, note, settings
from hypothesis import strategies as st
from itb import _core
from itb.testing import invariants
from reference import to_scaled, volume_rate_nl_per_day

D = 86_400_000
YEAR = 365 * D
KIND_RANK = {k: i for i, k in enumerate(DESIGN_KIND_ORDER)}


def rhe(x: Fraction) -> int:
    """Round half to even (written out, not via the reference)."""
    fl = x.numerator // x.denominator
    rem = x - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        return fl + 1
    return fl


def cdiv(a: int, b: int) -> int:
    return -((-a) // b)


# --------------------------------------------------------------------------------------------
# Ideal delivery, computed independently
# --------------------------------------------------------------------------------------------


def basal_integral(program, conc: int, t0: int, t1: int) -> int:
    """∫_{t0}^{t1} r dt in nL·ms/day (one ms at r nL/day adds r), whole periods in closed form."""
    if program[0] == "continuous":
        return rhe(Fraction(program[1] * 1000, conc)) * (t1 - t0)
    period, anchor = (D, 0) if program[1] == "day" else (7 * D, 4 * D)  # 1970-01-05 was a Monday
    offsets = [o for o, _ in program[2]] + [period]
    rates = [rhe(Fraction(ng * 1000, conc)) for _, ng in program[2]]

    def from_period_start(x: int) -> int:
        """∫ from the start of the period containing x up to x."""
        phase = (x - anchor) % period
        total = 0
        for i, r in enumerate(rates):
            lo, hi = offsets[i], offsets[i + 1]
            if phase <= lo:
                break
            total += r * (min(hi, phase) - lo)
        return total

    per_period = sum(r * (offsets[i + 1] - offsets[i]) for i, r in enumerate(rates))
    p0 = (t0 - anchor) // period
    p1 = (t1 - anchor) // period
    return (p1 - p0) * per_period + from_period_start(t1) - from_period_start(t0)


def bolus_contribution(volume_nl: int, duration_ms: int, start: int, t: int) -> int:
    """min(r_b·(t − start), V·D) for t >= start (0 before): DESIGN.md's bolus formula."""
    total = volume_nl * D
    r_b = cdiv(total, duration_ms)
    return max(0, min(r_b * (t - start), total))


def make_core(model: Model, now: int, fill: int, conc: int, program, catheter_nl: int = 0):
    return _core.Pump(
        model=model.core_dict(),
        now_ms=now,
        reservoir_nl=fill,
        concentration=conc,
        program=program,
        catheter_nl=catheter_nl,
    )


@settings(max_examples=scale(150))
@given(
    q=log_int(1, 5000),
    conc=concentrations,
    t0=start_times(),
    data=st.data(),
)
def test_continuous_delivery_within_one_stroke_of_ideal(q, conc, t0, data):
    """Fresh pump, continuous program, never empty: strokes·q·D <= ∫r dt < (strokes+1)·q·D at
    every checkpoint, i.e. delivered volume is within one stroke of ideal."""
    cap = 10**9
    model = Model(q, cap, 1, min(10**9, q * D), 0, 0)
    r_target = data.draw(log_int(1, model.max_rate))
    ng = ng_for_volume_rate(r_target, conc, model) or 0
    r = rhe(Fraction(ng * 1000, conc))
    pump = make_core(model, t0, cap, conc, ("continuous", ng))
    qd = q * D
    limit = (
        10 * YEAR if r == 0 else min(10 * YEAR, (cap - q) * D // r)
    )  # the reservoir never empties
    checkpoints = sorted(data.draw(st.lists(st.integers(0, limit), min_size=1, max_size=6)))
    for dt in checkpoints:
        pump.advance_to(t0 + dt)
        ideal = r * dt
        k = pump.strokes
        assert k * qd <= ideal < (k + 1) * qd
        assert pump.pumped_nl == k * q == pump.delivered_nl  # a primed path passes q per stroke
        assert pump.reservoir_nl == cap - k * q
        # the next stroke is the first ms at which the ideal reaches (k + 1)·q·D
        if r:
            nxt = t0 + cdiv((k + 1) * qd, r)
            assert pump.project(nxt - pump.now_ms)[0] == nxt
            assert pump.project(nxt - pump.now_ms - 1)[0] is None
        else:
            assert pump.project(10 * YEAR)[0] is None


@settings(max_examples=scale(120))
@given(data=st.data())
def test_strokes_equal_floor_of_ideal_with_flex_and_boluses(data):
    """Flex programs plus boluses, never empty: strokes == floor(A(t) / (q·D)) with A the
    basal integral plus each bolus's min(r_b·(t − s), V·D); next stroke by bisection on A."""
    q = data.draw(log_int(1, 5000))
    conc = data.draw(concentrations)
    cap = 10**9
    max_rate = min(10**9, q * D)
    model = Model(q, cap, 1, max_rate, 0, 0)
    program = data.draw(programs(model, conc, max_rate=max(1, max_rate // 3)))
    t0 = data.draw(start_times())
    pump = make_core(model, t0, cap, conc, program)
    boluses = []  # (volume, duration, start)
    for _ in range(data.draw(st.integers(0, 3))):
        volume = data.draw(log_int(1, 50 * q))
        dose = volume * conc // 1000 + data.draw(st.integers(0, 1))
        vol = rhe(Fraction(dose * 1000, conc))
        if vol < 1:
            continue
        dur = max(cdiv(vol * D, max_rate // 4), data.draw(log_int(1, 5 * D)))  # <= max/4 each
        start = t0 + data.draw(st.one_of(st.just(0), st.integers(0, 3 * D)))
        assert pump.bolus(dose, dur, start) >= 1
        boluses.append((vol, dur, start))

    def ideal(t):
        return basal_integral(program, conc, t0, t) + sum(
            bolus_contribution(v, d, s, t) for v, d, s in boluses
        )

    horizon = min(YEAR, (cap // 2) * D // max(1, max_rate))  # far from emptying
    qd = q * D
    for dt in sorted(data.draw(st.lists(st.integers(0, horizon), min_size=1, max_size=5))):
        t = t0 + dt
        pump.advance_to(t)
        a = ideal(t)
        assert pump.strokes == a // qd, f"at +{dt} ms: A = {a}"
        assert pump.accumulator == a - pump.strokes * qd
        # next stroke: first t' > t with A(t') >= (strokes + 1)·q·D (A is non-decreasing)
        need = (pump.strokes + 1) * qd
        lo, hi = t, t + 2 * YEAR
        if ideal(hi) < need:
            assert pump.project(2 * YEAR)[0] is None
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ideal(mid) >= need:
                hi = mid
            else:
                lo = mid
        assert pump.project(2 * YEAR)[0] == hi


def test_basal_integral_helper_by_hand():
    # the helper itself, on hand-computed numbers (DESIGN.md's flex-day example style):
    # 240 µg/day on [00:00, 12:00) and 480 µg/day on [12:00, 24:00) at 2000 µg/mL
    # -> 120_000 and 240_000 nL/day; one day = 120_000·43.2e6 + 240_000·43.2e6 = 1.5552e13.
    prog = ("flex", "day", [(0, 240_000), (12 * H, 480_000)])
    assert basal_integral(prog, 2000, 0, D) == 15_552_000_000_000
    assert basal_integral(prog, 2000, 6 * H, 18 * H) == 120_000 * 6 * H + 240_000 * 6 * H
    assert basal_integral(prog, 2000, -D, 2 * D) == 3 * 15_552_000_000_000
    # week: Monday 00:00 is t = 4 D; only Monday at 1_000 ng/day -> 500 nL/day at 2000 µg/mL
    wk = ("flex", "week", [(0, 1000), (D, 0)])
    assert basal_integral(wk, 2000, 0, 7 * D) == 500 * D
    assert basal_integral(wk, 2000, 4 * D + H, 5 * D + H) == 500 * (D - H)
    assert bolus_contribution(10_000, H, 0, H // 2) == 240_000 * (H // 2)
    assert bolus_contribution(10_000, H, 0, 2 * H) == 10_000 * D


# --------------------------------------------------------------------------------------------
# Random operation sequences through the public API
# --------------------------------------------------------------------------------------------


class Driver:
    """A public-API pump plus a record of the calls made on it (for replay)."""

    def __init__(self, data, model: Model | None = None, **pump_kwargs):
        self.data = data
        self.model = (
            model
            if model is not None
            else data.draw(models(max_strokes_per_fill=2000), label="model")
        )
        m = self.model
        conc = data.draw(concentrations, label="conc")
        program = data.draw(programs(m, conc), label="program")
        now = data.draw(start_times(), label="now")
        fill = data.draw(
            st.one_of(st.just(m.capacity_nl), st.integers(0, m.capacity_nl)), label="fill"
        )
        self.catheter_nl = data.draw(
            st.one_of(st.just(0), st.integers(0, 100_000)), label="catheter_nl"
        )
        self.kwargs = dict(
            now=at(now),
            reservoir_ml=fill / 1e6,
            concentration_ug_per_ml=conc,
            program=clinical(program),
            catheter_volume_ul=self.catheter_nl / 1000,
            **pump_kwargs,
        )
        self.pump = self.build()
        self.calls = []  # (name, args)

    def build(self):
        return itb.Pump(self.model.py_model(), **self.kwargs)

    @staticmethod
    def apply(pump, name, args):
        """Apply a call; returns (ok, result). Typed rejections are part of the game."""
        try:
            return True, getattr(pump, name)(*args)
        except itb.ItbError:
            return False, None

    def draw_call(self, ops=None):
        d, m, p = self.data, self.model, self.pump
        names = ops or ["advance", "bolus", "advance", "refill", "program", "cancel", "advance"]
        if ops is None:
            names = names + [
                n
                for n in (
                    "suspend",
                    "resume",
                    "inject_motor_stall",
                    "clear_fault",
                    "revise_catheter",
                )
                if hasattr(p, n)
            ]
        op = d.draw(st.sampled_from(names))
        conc = p.concentration_ug_per_ml
        if op == "advance":
            dt = d.draw(st.one_of(st.integers(0, 2 * D), log_int(1, YEAR), st.integers(0, 5000)))
            return "advance_to", (at(min(p.now_ms + dt, MAX_TIME_MS)),)
        if op == "bolus":
            volume = d.draw(log_int(1, max(1, min(m.capacity_nl, 20 * m.stroke_nl))))
            dose_ug = max(1, volume * conc // 1000) / 1000
            dur = timedelta(milliseconds=d.draw(log_int(1, 2 * D)))
            start = d.draw(st.one_of(st.none(), st.integers(0, D).map(lambda x: at(p.now_ms + x))))
            return "bolus", (dose_ug, dur, start)
        if op == "cancel":
            return "cancel_bolus", (d.draw(st.integers(1, 6)),)
        if op == "program":
            return "set_program", (clinical(d.draw(programs(m, conc))),)
        if op == "refill":
            added = d.draw(st.one_of(st.just(m.capacity_nl), st.integers(0, m.capacity_nl)))
            new_conc = d.draw(st.one_of(st.just(conc), concentrations))
            aspirated = d.draw(
                st.one_of(st.none(), st.integers(0, m.capacity_nl).map(lambda x: x / 1e6))
            )
            return "refill", (added / 1e6, new_conc, aspirated)
        if op == "revise_catheter":
            return "revise_catheter", (d.draw(st.integers(0, 100_000)) / 1000,)
        return op, ()

    def step(self, ops=None):
        name, args = self.draw_call(ops)
        ok, result = self.apply(self.pump, name, args)
        self.calls.append((name, args))
        return name, args, ok, result

    def replay(self, pump):
        for name, args in self.calls:
            self.apply(pump, name, args)
        return pump


def check_ledgers(p: itb.Pump, stroke_error_zero: bool = True):
    """Conservation (nL/pg when nominal, fL/ag always) and stroke accounting: the shared
    functions of itb.testing.invariants, plus what only holds for a path primed with drug."""
    invariants.conservation(p, nominal=stroke_error_zero)
    invariants.stroke_accounting(p)
    if stroke_error_zero:
        assert p.delivered_nl == p.pumped_nl  # a full path passes one stroke out per stroke in


@settings(max_examples=scale(100))
@given(data=st.data())
def test_conservation_after_random_operations(data):
    drv = Driver(data)
    check_ledgers(drv.pump)
    for _ in range(data.draw(st.integers(1, 15))):
        drv.step()
        check_ledgers(drv.pump)


@settings(max_examples=scale(60))
@given(
    data=st.data(),
    e=st.one_of(st.integers(-500_000, 500_000), st.sampled_from([-1, 1, 999, -20_000])),
)
def test_conservation_with_stroke_error(data, e):
    """Off-nominal pumps: the physical (fL/ag) ledgers balance exactly; the firmware counts q."""
    core = _core.Pump(
        model=synth_model().core_dict(),
        now_ms=0,
        reservoir_nl=0,
        concentration=1000,
        program=("continuous", 0),
        catheter_nl=0,
    )
    if not hasattr(core, "filled_fl"):
        pytest.skip("this build has no physical ledgers")
    drv = Driver(data, stroke_error_ppm=e)
    for _ in range(data.draw(st.integers(1, 10))):
        drv.step()
        check_ledgers(drv.pump, stroke_error_zero=False)


def synth_model():
    return Model(2000, 40_000_000, 48_000, 24_000_000, 2_000_000, 0)


@settings(max_examples=scale(80))
@given(data=st.data())
def test_tip_dose_follows_the_path_fifo(data):
    """delivered_pg == mass of the first pumped_nl nL of the queue [path at the initial
    concentration] + [each refill era's strokes at its concentration] (FIFO, computed here)."""
    drv = Driver(data)
    p = drv.pump
    path0 = drv.model.pump_path_nl + drv.catheter_nl
    eras = [[p.concentration_ug_per_ml, 0]]  # [conc, nL pumped at it]
    strokes = p.strokes
    for _ in range(data.draw(st.integers(1, 12))):
        name, _, ok, _ = drv.step(
            ops=["advance", "bolus", "advance", "refill", "program", "advance"]
        )
        eras[-1][1] += (p.strokes - strokes) * drv.model.stroke_nl
        strokes = p.strokes
        if name == "refill" and ok:
            eras.append([p.concentration_ug_per_ml, 0])
        queue = [(path0, eras[0][0])] + [(v, c) for c, v in eras]
        left, mass = p.pumped_nl, 0
        for v, c in queue:
            take = min(left, v)
            mass += take * c
            left -= take
        assert left == 0
        assert p.delivered_pg == mass
        assert p.path_pg == sum(v * c for v, c in queue) - mass


@settings(max_examples=scale(80))
@given(data=st.data())
def test_events_ordered_and_recording_changes_nothing(data):
    drv = Driver(data)
    p = drv.pump
    for _ in range(data.draw(st.integers(1, 10))):
        if data.draw(st.booleans()):
            drv.step()
            continue
        # advance two copies to the same time, one recording the strokes
        until = p.now_ms + data.draw(st.one_of(st.integers(0, 3 * D), log_int(1, YEAR)))
        until = min(until, MAX_TIME_MS)
        other = p.copy()
        prev, strokes0 = p.now_ms, p.strokes
        events = p.advance_to(at(until))
        rec_events, times = other.advance_recording(at(until))
        assert events == rec_events
        assert p.snapshot() == other.snapshot()
        assert len(times) == p.strokes - strokes0
        assert list(times) == sorted(times) and all(prev < t <= until for t in times)
        # Causal order: calls' events (stamped <= prev) first, in call order; then what the
        # simulation raised in (prev, until], by time and the fixed kind order among ties.
        event_times = [e.time_ms for e in events]
        assert event_times == sorted(event_times), "events must be ordered by time"
        simulated = [(e.time_ms, KIND_RANK[e.kind]) for e in events if e.time_ms > prev]
        assert simulated == sorted(simulated), "simulation events tie-break by the fixed kind order"
        seqs = [e.seq for e in events]
        assert all(a < b for a, b in zip(seqs, seqs[1:])) and all(q > 0 for q in seqs)
        assert all(prev <= e.time_ms <= until for e in events)
        assert all(e.time == at(e.time_ms) for e in events)
        for e in events:
            if e.kind in ("low_reservoir", "reservoir_empty"):
                assert e.severity in ("non_critical", "critical")
        # stroke_batch summaries account for every stroke
        assert sum(e.data["count"] for e in events if e.kind == "stroke_batch") == len(times)


# --------------------------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------------------------


STATE_ATTRS = (
    "now_ms",
    "strokes",
    "reservoir_nl",
    "pumped_nl",
    "path_nl",
    "path_pg",
    "delivered_nl",
    "delivered_pg",
    "filled_nl",
    "filled_pg",
    "withdrawn_nl",
    "withdrawn_pg",
    "concentration_ug_per_ml",
    "is_empty",
    "boluses",
    "program",
    "model",
)


def state(p):
    return {a: getattr(p, a) for a in STATE_ATTRS} | {
        "acc": p._core.accumulator,
        "schedule": p._core.schedule,
    }


@settings(max_examples=scale(80))
@given(data=st.data())
def test_snapshot_round_trip_and_identical_continuation(data):
    drv = Driver(data)
    for _ in range(data.draw(st.integers(0, 8))):
        drv.step()
    p = drv.pump
    blob = p.snapshot()
    assert isinstance(blob, bytes)
    assert p.snapshot() == blob  # deterministic
    q = itb.Pump.restore(blob)
    assert q.snapshot() == blob
    assert state(q) == state(p)
    assert q == p
    r = pickle.loads(pickle.dumps(p))
    assert r.snapshot() == blob and r == p
    c = copy.deepcopy(p)
    assert c.snapshot() == blob
    # replaying the same calls on a fresh pump gives the same bytes
    assert drv.replay(drv.build()).snapshot() == blob
    # the original and the restored pump continue identically
    for _ in range(data.draw(st.integers(1, 6))):
        name, args, ok, result = drv.step()
        assert drv.apply(q, name, args) == (ok, result)
    assert q.snapshot() == p.snapshot()
    assert state(q) == state(p)


def test_snapshot_of_equal_pumps_is_equal_bytes():
    kw = dict(
        now=datetime(2026, 1, 5, 8),
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    a = itb.Pump(itb.models.SYNCHROMED_II_40, **kw)
    b = itb.Pump(itb.models.SYNCHROMED_II_40, **kw)
    assert a.snapshot() == b.snapshot()
    a.advance(timedelta(days=3))
    assert a.snapshot() != b.snapshot()
    b.advance_to(datetime(2026, 1, 8, 8))
    assert a.snapshot() == b.snapshot()


def test_pickle_of_a_preset_pump_keeps_its_model_and_battery():
    p = itb.Pump(
        itb.models.PROMETRA_II_20,
        now=datetime(2026, 1, 5),
        reservoir_ml=20.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=100.0),
    )
    p.advance(timedelta(days=3))
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.snapshot() == p.snapshot()
    assert q.model == p.model and getattr(q.model, "battery", None) == getattr(
        p.model, "battery", None
    )
    assert q.advance(timedelta(days=30)) == p.advance(timedelta(days=30))


def _reference_blob():
    p = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 1, 5, 8),
        reservoir_ml=3.0,
        concentration_ug_per_ml=2000,
        program=itb.Flex(
            period="day", steps=[(time(0), 300.0), (time(8), 500.0), (time(22), 300.0)]
        ),
    )
    p.bolus(50.0, timedelta(minutes=30), start=datetime(2026, 1, 6))
    p.advance(timedelta(hours=20))
    return p.snapshot()


BLOB = _reference_blob()
HEADER = 8 + 2 + 4  # magic, version u16, crc32 u32 (rust/core/src/snapshot/mod.rs)


def _recrc(blob: bytes) -> bytes:
    payload = blob[HEADER:]
    return blob[:10] + struct.pack("<I", zlib.crc32(payload)) + payload


def test_snapshot_header_layout_assumed_by_these_tests():
    assert BLOB[:8] == b"ITBPUMP\0"
    assert _recrc(BLOB) == BLOB  # CRC-32 (IEEE) of the payload, little endian


def _restore_or_snapshot_error(blob: bytes):
    """Restore must raise SnapshotError or give a pump that works (errors typed, no panic)."""
    try:
        p = itb.Pump.restore(blob)
    except itb.SnapshotError:
        return None
    # accepted: it must behave like any pump
    try:
        p._core.check_invariants()
        p.project(timedelta(days=3650))
        p.advance_to(min(p.now_ms + 30 * D, MAX_TIME_MS))
        p.snapshot()
    except itb.ItbError:
        pass
    return p


@settings(max_examples=scale(150))
@given(cut=st.integers(0, len(BLOB) - 1))
def test_truncated_snapshot_raises(cut):
    with pytest.raises(itb.SnapshotError):
        itb.Pump.restore(BLOB[:cut])


@settings(max_examples=scale(150))
@given(pos=st.integers(0, len(BLOB) - 1), flip=st.integers(1, 255))
def test_corrupted_byte_raises(pos, flip):
    bad = bytearray(BLOB)
    bad[pos] ^= flip
    with pytest.raises(itb.SnapshotError):
        itb.Pump.restore(bytes(bad))


@settings(max_examples=scale(300))
@given(data=st.data())
def test_payload_mutations_with_valid_crc_never_crash(data):
    """Past the checksum: mutate, insert or delete payload bytes and fix the CRC. The decoder
    and the state validation must reject it with SnapshotError or yield a working pump."""
    payload = bytearray(BLOB[HEADER:])
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["set", "xor", "insert", "delete", "max"]))
        i = data.draw(st.integers(0, len(payload) - 1))
        if kind == "set":
            payload[i] = data.draw(st.integers(0, 255))
        elif kind == "xor":
            payload[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "insert":
            payload[i:i] = data.draw(st.binary(min_size=1, max_size=10))
        elif kind == "delete" and len(payload) > 1:
            del payload[i]
        else:  # a long varint: huge integers
            payload[i : i + 1] = b"\xff" * data.draw(st.integers(1, 19)) + b"\x01"
    _restore_or_snapshot_error(_recrc(BLOB[:HEADER] + bytes(payload)))


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"ITBPUMP",
        b"ITBPUMP\0",
        BLOB[:HEADER],
        b"\0" * 100,
        b"PK\x03\x04" + BLOB[4:],  # wrong magic
        BLOB[:8] + struct.pack("<H", 99) + BLOB[10:],  # unknown version
        BLOB[:8] + struct.pack("<H", 1) + BLOB[10:],  # a version-2 payload labelled version 1
        BLOB[:8] + struct.pack("<H", 0) + BLOB[10:],
        BLOB + b"\0",  # trailing byte (CRC now wrong)
        _recrc(BLOB + b"\0"),  # trailing byte with a fixed CRC
        pickle.dumps({"now": 0}),
        "ITBPUMP".encode("utf-16"),
    ],
)
def test_foreign_bytes_raise_snapshot_error(blob):
    with pytest.raises(itb.SnapshotError) as exc:
        itb.Pump.restore(blob)
    assert isinstance(exc.value, itb.ItbError)


@settings(max_examples=scale(100))
@given(blob=st.binary(max_size=400))
def test_random_bytes_raise_snapshot_error(blob):
    with pytest.raises(itb.SnapshotError):
        itb.Pump.restore(blob)
    with pytest.raises(itb.SnapshotError):
        itb.Pump.restore(b"ITBPUMP\0" + blob)  # right magic, garbage after


# --------------------------------------------------------------------------------------------
# Rejected calls change nothing
# --------------------------------------------------------------------------------------------


def _bad_calls(p: itb.Pump, model: Model):
    """(label, call(pump), expected error class or None = any ItbError) for each kind of bad
    input at the pump's current state."""
    now = p.now
    conc = p.concentration_ug_per_ml
    over_ml = (model.capacity_nl + 1) / 1e6
    # a continuous dose whose volume rate is above the model's max at this concentration
    ug_over = (model.max_rate + 1) * conc / 1e6 * 1.01 + 0.001
    one_h = timedelta(hours=1)
    calls = [
        ("bolus NaN", lambda p: p.bolus(math.nan, one_h), itb.ValidationError),
        ("bolus inf", lambda p: p.bolus(math.inf, one_h), itb.ValidationError),
        ("bolus negative", lambda p: p.bolus(-1.0, one_h), itb.ValidationError),
        ("bolus zero", lambda p: p.bolus(0.0, one_h), itb.ValidationError),
        ("bolus zero duration", lambda p: p.bolus(1.0, timedelta(0)), itb.ValidationError),
        (
            "bolus negative duration",
            lambda p: p.bolus(1.0, timedelta(minutes=-5)),
            itb.ValidationError,
        ),
        (
            "bolus in the past",
            lambda p: p.bolus(1.0, one_h, start=now - timedelta(milliseconds=1)),
            itb.ValidationError,
        ),
        (
            "bolus tz-aware",
            lambda p: p.bolus(1.0, one_h, start=now.replace(tzinfo=UTC)),
            itb.ValidationError,
        ),
        # the whole reservoir in 1 ms: far above any max rate (or above the capacity, or empty)
        ("bolus too fast", lambda p: p.bolus(model.capacity_nl * conc / 1e6, 1), None),
        ("cancel unknown", lambda p: p.cancel_bolus(10_000), itb.ValidationError),
        (
            "program NaN",
            lambda p: p.set_program(itb.Continuous(ug_per_day=math.nan)),
            itb.ValidationError,
        ),
        (
            "program inf",
            lambda p: p.set_program(itb.Continuous(ug_per_day=math.inf)),
            itb.ValidationError,
        ),
        (
            "program negative",
            lambda p: p.set_program(itb.Continuous(ug_per_day=-5.0)),
            itb.ValidationError,
        ),
        (
            "program above max",
            lambda p: p.set_program(itb.Continuous(ug_per_day=ug_over)),
            itb.ProgrammingError,
        ),
        (
            "flex out of order",
            lambda p: p.set_program(
                itb.Flex(period="day", steps=[(time(0), 0.0), (time(9), 0.0), (time(8), 0.0)])
            ),
            itb.ValidationError,
        ),
        (
            "flex duplicate offset",
            lambda p: p.set_program(
                itb.Flex(period="day", steps=[(time(0), 0.0), (time(8), 0.0), (time(8), 0.0)])
            ),
            itb.ValidationError,
        ),
        (
            "flex not from 0",
            lambda p: p.set_program(itb.Flex(period="day", steps=[(time(1), 0.0)])),
            itb.ValidationError,
        ),
        (
            "flex no steps",
            lambda p: p.set_program(itb.Flex(period="day", steps=[])),
            itb.ValidationError,
        ),
        (
            "flex offset beyond period",
            lambda p: p.set_program(
                itb.Flex(period="day", steps=[(timedelta(0), 0.0), (timedelta(days=1), 0.0)])
            ),
            itb.ValidationError,
        ),
        (
            "flex 14 steps a day",
            lambda p: p.set_program(
                itb.Flex(period="day", steps=[(time(h), 0.0) for h in range(14)])
            ),
            itb.ValidationError,
        ),
        ("refill overfill", lambda p: p.refill(over_ml, conc), itb.ReservoirError),
        ("refill conc 0", lambda p: p.refill(0.0, 0), itb.ValidationError),
        ("refill conc fractional", lambda p: p.refill(0.0, 2000.5), itb.ValidationError),
        ("refill conc too high", lambda p: p.refill(0.0, 100_001), itb.ValidationError),
        ("refill negative", lambda p: p.refill(-1.0, conc), itb.ValidationError),
        ("refill NaN", lambda p: p.refill(math.nan, conc), itb.ValidationError),
        ("refill negative aspirate", lambda p: p.refill(0.0, conc, -1.0), itb.ValidationError),
        (
            "advance to the past",
            lambda p: p.advance_to(now - timedelta(milliseconds=1)),
            itb.ValidationError,
        ),
        (
            "advance tz-aware",
            lambda p: p.advance_to((now + timedelta(days=1)).replace(tzinfo=UTC)),
            itb.ValidationError,
        ),
        ("advance negative", lambda p: p.advance(timedelta(seconds=-1)), itb.ValidationError),
        ("advance beyond the clock", lambda p: p.advance_to(MAX_TIME_MS + 1), itb.ValidationError),
        ("project negative", lambda p: p.project(timedelta(seconds=-1)), itb.ValidationError),
    ]
    if model.min_rate > 1:
        below = (model.min_rate - 1) * conc / 1e6  # µg/day whose volume rate is in (0, min)
        r = volume_rate_nl_per_day(to_scaled(below, 3), conc)
        if 0 < r < model.min_rate:
            calls.append(
                (
                    "program below min",
                    lambda p: p.set_program(itb.Continuous(ug_per_day=below)),
                    itb.ProgrammingError,
                )
            )
    if p.is_empty:
        calls.append(("bolus while empty", lambda p: p.bolus(1.0, timedelta(days=1)), None))
    return calls


@settings(max_examples=scale(60))
@given(data=st.data())
def test_rejected_calls_leave_the_pump_unchanged(data):
    drv = Driver(data)
    for _ in range(data.draw(st.integers(0, 6))):
        drv.step()
    p = drv.pump
    before = p.snapshot()
    st_before = state(p)
    for label, call, expected in _bad_calls(p, drv.model):
        note(label)
        try:
            call(p)
        except itb.ItbError as exc:
            if expected is not None:
                assert isinstance(exc, expected), f"{label}: {type(exc).__name__}: {exc}"
            assert exc.field, f"{label}: the error names no field"
        else:
            if expected is not None:
                pytest.fail(f"{label}: no error raised")
            p = itb.Pump.restore(before)  # an accepted call: start again from the saved state
            continue
        assert p.snapshot() == before, f"{label}: a rejected call changed the pump"
        assert state(p) == st_before
