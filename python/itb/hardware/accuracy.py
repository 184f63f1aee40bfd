"""Flow accuracy of a gravimetric run, with GUM uncertainty: the start-up curve and trumpet
curve of IEC 60601-2-24 and a low-flow mode for implant rates.

A :class:`GravimetricRun` holds balance readings (mg) at durations since delivery started, the
balance's readability and repeatability, the water temperature, air density and the
evaporation rate of a blank run. Every window's volume is the difference of two readings,
corrected for evaporation and converted by :func:`itb.hardware.metrology.mass_to_volume`, so
each Ep carries its uncertainty budget (k = 2).

- Trumpet (IEC 60601-2-24): windows of P minutes over a sample grid S, starting at every sample
  of the analysis period (default: the second hour); Ep = 100·(V − r·Δt)/(r·Δt) with Δt the
  time between the window's two samples (the mean of the per-interval errors).
- Low flow: hour-scale windows after the first 24 h, each a whole number n of stroke cycles
  (n = round(P / T), T the nominal cycle), from the last sample before stroke k to the last
  sample before stroke k + n: exactly n strokes, expected r·(τ[k+n] − τ[k]).
- Start-up: the flow of each sample interval over the first period (default 2 h), µL/h.

Guide: docs: guide/metrology.md; decisions: docs: decisions/metrology.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from .._limits import MS_PER_HOUR
from .._time import duration_ms, to_ms
from .._units import nl_to_ul
from ..errors import ValidationError
from .metrology import Measurement, balance_mass, mass_to_volume, water_density

__all__ = [
    "AccuracyCurve",
    "GravimetricRun",
    "IEC_WINDOWS",
    "StartupCurve",
    "WindowError",
    "EmulatedAccuracyRun",
    "run_emulated",
    "low_flow_curve",
    "startup_curve",
    "trumpet_curve",
]

_MS_PER_H = MS_PER_HOUR
#: the observation windows of IEC 60601-2-24 (2, 5, 11, 19 and 31 min)
IEC_WINDOWS = tuple(timedelta(minutes=m) for m in (2, 5, 11, 19, 31))


def _ms_array(values: Sequence[timedelta], name: str) -> np.ndarray:
    return np.array(
        [duration_ms(v, f"{name}[{i}]", allow_zero=True) for i, v in enumerate(values)],
        dtype=np.int64,
    )


def _rate(rate_ul_per_h: float) -> float:
    if (
        isinstance(rate_ul_per_h, bool)
        or not isinstance(rate_ul_per_h, (int, float))
        or not (0 < rate_ul_per_h <= 1e7)
    ):
        raise ValidationError(
            f"rate_ul_per_h: must be more than 0 and at most 1e7 µL/h, got {rate_ul_per_h!r}",
            "rate_ul_per_h",
        )
    return float(rate_ul_per_h)


@dataclass(frozen=True)
class GravimetricRun:
    """Balance readings ``masses_mg`` at ``elapsed`` (durations since delivery started,
    non-decreasing), read on a balance of ``readability_mg`` and ``repeatability_mg``; the water
    at ``water_temperature_c`` (°C, a :class:`Measurement` or a number), the air of density
    ``air_density_kg_m3``, and ``evaporation_mg_per_h`` (a blank run's
    :func:`~itb.hardware.metrology.evaporation_rate`, added back)."""

    elapsed: Sequence[timedelta]
    masses_mg: Sequence[float]
    readability_mg: float
    repeatability_mg: float = 0.0
    water_temperature_c: Measurement | float = 20.0
    air_density_kg_m3: Measurement | float = 1.2
    evaporation_mg_per_h: Measurement | float = 0.0
    _t_ms: np.ndarray = field(init=False, repr=False, compare=False)
    _m: np.ndarray = field(init=False, repr=False, compare=False)
    _rho_w: Measurement = field(init=False, repr=False, compare=False)
    _evap: Measurement = field(init=False, repr=False, compare=False)
    _ul_per_mg: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.elapsed) != len(self.masses_mg) or len(self.elapsed) < 2:
            raise ValidationError(
                f"masses_mg: need one mass per elapsed time and at least two, got "
                f"{len(self.elapsed)} times and {len(self.masses_mg)} masses",
                "masses_mg",
            )
        t = _ms_array(self.elapsed, "elapsed")
        if np.any(np.diff(t) < 0):
            raise ValidationError("elapsed: must be non-decreasing", "elapsed")
        m = np.asarray(self.masses_mg, dtype=np.float64)
        if not np.all(np.isfinite(m)):
            raise ValidationError("masses_mg: NaN or infinite masses", "masses_mg")
        object.__setattr__(self, "_t_ms", t)
        object.__setattr__(self, "_m", m)
        rho_w = water_density(self.water_temperature_c)
        object.__setattr__(self, "_rho_w", rho_w)
        evap = self.evaporation_mg_per_h
        if not isinstance(evap, Measurement):
            evap = Measurement.exact(float(evap), "mg/h")
        object.__setattr__(self, "_evap", evap)
        # µL per mg (mass_to_volume is linear in the mass): for the vectorised search
        ul_per_mg = mass_to_volume(Measurement.exact(1.0, "mg"), rho_w, self.air_density_kg_m3)
        object.__setattr__(self, "_ul_per_mg", ul_per_mg.value)

    @property
    def times_ms(self) -> np.ndarray:
        """The sample times in ms since delivery started (int64)."""
        return np.asarray(self._t_ms)

    def volumes_ul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Point estimates of the volume (µL) delivered between samples ``a`` and ``b``."""
        t, m = self.times_ms, np.asarray(self._m)
        evap: Measurement = self._evap
        dm = m[b] - m[a] + evap.value * (t[b] - t[a]) / _MS_PER_H
        return np.asarray(dm * float(self._ul_per_mg), dtype=np.float64)

    def volume(self, a: int, b: int) -> Measurement:
        """The volume (µL) delivered between samples ``a`` and ``b`` with its uncertainty: two
        readings (each its readability and repeatability), the evaporation added back over the
        time between them, the water density and air buoyancy."""
        t, m = self.times_ms, np.asarray(self._m)
        dm = balance_mass(float(m[b]), self.readability_mg, self.repeatability_mg) - balance_mass(
            float(m[a]), self.readability_mg, self.repeatability_mg
        )
        evap: Measurement = self._evap
        dm = dm + evap.scaled(float(t[b] - t[a]) / _MS_PER_H, "mg")
        return mass_to_volume(dm, self._rho_w, self.air_density_kg_m3)


@dataclass(frozen=True)
class WindowError:
    """One window length: its (effective) ``window``, Ep(max) and Ep(min) in % with their
    uncertainty, and where each window starts (since delivery started)."""

    window: timedelta
    max_pct: Measurement
    min_pct: Measurement
    max_start: timedelta
    min_start: timedelta
    count: int

    def within(self, limit_pct: float) -> bool:
        """Both extremes, widened by their expanded uncertainty, inside ±``limit_pct``."""
        return all(
            abs(e.value) + e.expanded_uncertainty <= limit_pct for e in (self.max_pct, self.min_pct)
        )


@dataclass(frozen=True)
class AccuracyCurve:
    """A trumpet or low-flow curve: ``kind`` (``"trumpet"`` or ``"low-flow"``), the set rate,
    the analysis period, the mean error A over it and one :class:`WindowError` per window."""

    kind: str
    rate_ul_per_h: float
    period: tuple[timedelta, timedelta]
    mean_pct: Measurement
    windows: tuple[WindowError, ...]

    def passes(self, limit_pct: float) -> bool:
        """Every Ep and A, widened by its expanded uncertainty (k = 2), inside ±``limit_pct``
        (conformance shown, the guarded-acceptance reading of a limit)."""
        if not (isinstance(limit_pct, (int, float)) and 0 < limit_pct <= 100):
            raise ValidationError(
                f"limit_pct: must be more than 0 and at most 100 %, got {limit_pct!r}", "limit_pct"
            )
        mean_ok = abs(self.mean_pct.value) + self.mean_pct.expanded_uncertainty <= limit_pct
        return mean_ok and all(w.within(limit_pct) for w in self.windows)

    def as_dict(self) -> dict[str, object]:
        def m(x: Measurement) -> dict[str, float]:
            return {"value": x.value, "U": x.expanded_uncertainty}

        return {
            "kind": self.kind,
            "rate_ul_per_h": self.rate_ul_per_h,
            "period_s": [self.period[0].total_seconds(), self.period[1].total_seconds()],
            "mean_pct": m(self.mean_pct),
            "windows": [
                {
                    "window_s": w.window.total_seconds(),
                    "max_pct": m(w.max_pct),
                    "min_pct": m(w.min_pct),
                    "max_start_s": w.max_start.total_seconds(),
                    "min_start_s": w.min_start.total_seconds(),
                    "count": w.count,
                }
                for w in self.windows
            ],
        }


def _ep(run: GravimetricRun, a: int, b: int, expected_ul: float) -> Measurement:
    v = run.volume(a, b)
    return Measurement.derived(
        100.0 * (v.value / expected_ul - 1.0), "%", [(v, 100.0 / expected_ul)]
    )


def _extremes(
    run: GravimetricRun,
    window: timedelta,
    a: np.ndarray,
    b: np.ndarray,
    expected: np.ndarray,
) -> WindowError | None:
    if a.size == 0:
        return None
    ep = 100.0 * (run.volumes_ul(a, b) / expected - 1.0)
    hi, lo = int(np.argmax(ep)), int(np.argmin(ep))
    t = run.times_ms
    return WindowError(
        window,
        _ep(run, int(a[hi]), int(b[hi]), float(expected[hi])),
        _ep(run, int(a[lo]), int(b[lo]), float(expected[lo])),
        timedelta(milliseconds=int(t[a[hi]])),
        timedelta(milliseconds=int(t[a[lo]])),
        int(a.size),
    )


def trumpet_curve(
    run: GravimetricRun,
    rate_ul_per_h: float,
    windows: Sequence[timedelta] = IEC_WINDOWS,
    sample_interval: timedelta = timedelta(seconds=30),
    period: tuple[timedelta, timedelta] = (timedelta(hours=1), timedelta(hours=2)),
) -> AccuracyCurve:
    """The IEC 60601-2-24 trumpet curve of ``run`` against the set rate (µL/h): for each window
    (a whole number of ``sample_interval``, else ``ValidationError`` naming ``windows``) the
    largest and smallest Ep over every window of samples inside ``period``, read on the grid
    ``period[0] + k·S`` (samples off the grid are not used). Windows longer than the period are
    left out."""
    r = _rate(rate_ul_per_h)
    s = duration_ms(sample_interval, "sample_interval", allow_zero=False)
    p0, p1 = (duration_ms(p, "period", allow_zero=True) for p in period)
    t = run.times_ms
    idx = np.flatnonzero((t >= p0) & (t <= p1) & ((t - p0) % s == 0))  # the S grid
    if idx.size < 2:
        raise ValidationError(
            f"period: fewer than two samples between {p0 / 1000:g} s and {p1 / 1000:g} s", "period"
        )
    out = []
    for i, w in enumerate(windows):
        w_ms = duration_ms(w, f"windows[{i}]", allow_zero=False)
        if w_ms % s:
            raise ValidationError(
                f"windows: {w_ms / 60000:g} min is not a whole number of {s / 1000:g} s sample "
                f"intervals",
                "windows",
            )
        m = w_ms // s
        a, b = idx[:-m] if m < idx.size else idx[:0], idx[m:]
        expected = r * (t[b] - t[a]) / _MS_PER_H
        e = _extremes(run, timedelta(milliseconds=w_ms), a, b, expected)
        if e is not None:
            out.append(e)
    first, last = int(idx[0]), int(idx[-1])
    mean = _ep(run, first, last, r * float(t[last] - t[first]) / _MS_PER_H)
    return AccuracyCurve(
        "trumpet",
        r,
        (timedelta(milliseconds=int(t[first])), timedelta(milliseconds=int(t[last]))),
        mean,
        tuple(out),
    )


def low_flow_curve(
    run: GravimetricRun,
    rate_ul_per_h: float,
    stroke_ul: float,
    stroke_times: Sequence[timedelta],
    windows: Sequence[timedelta] = (timedelta(hours=1), timedelta(hours=6)),
    exclude: timedelta = timedelta(hours=24),
) -> AccuracyCurve:
    """Low-flow accuracy: each window is n = round(P / T) whole stroke cycles (T = stroke
    volume / rate, n ≥ 1), measured from the last sample before stroke k to the last sample
    before stroke k + n, for every stroke k at or after ``exclude`` (default the first 24 h).
    ``stroke_times`` are the executed strokes' times on the balance's time base (since
    delivery started). A window whose boundary has no sample strictly between two strokes is
    skipped; ``ValidationError`` (``windows``) if a window has no place at all."""
    r = _rate(rate_ul_per_h)
    if not (isinstance(stroke_ul, (int, float)) and 0 < stroke_ul <= 1e6):
        raise ValidationError(f"stroke_ul: must be more than 0 µL, got {stroke_ul!r}", "stroke_ul")
    ex = duration_ms(exclude, "exclude", allow_zero=True)
    tau = _ms_array(stroke_times, "stroke_times")
    if np.any(np.diff(tau) < 0):
        raise ValidationError("stroke_times: must be non-decreasing", "stroke_times")
    t = run.times_ms
    # boundary k: the last sample strictly before stroke k, if it is after stroke k − 1
    before = np.searchsorted(t, tau, side="left") - 1
    prev = np.concatenate(([-1], tau[:-1]))
    ok = (before >= 0) & (t[np.clip(before, 0, None)] >= np.maximum(prev, 0)) & (tau >= ex)
    if np.count_nonzero(ok) < 2:
        raise ValidationError(
            f"exclude: fewer than two strokes with a reading before them after the first "
            f"{ex / _MS_PER_H:g} h of the run",
            "exclude",
        )
    if not windows:
        raise ValidationError("windows: no window lengths given", "windows")
    cycle_ms = stroke_ul / r * _MS_PER_H
    out = []
    for i, w in enumerate(windows):
        w_ms = duration_ms(w, f"windows[{i}]", allow_zero=False)
        n = max(1, round(w_ms / cycle_ms))
        k = np.arange(tau.size - n)
        k = k[ok[k] & ok[k + n]] if k.size else k
        a, b = before[k], before[k + n]
        expected = r * (tau[k + n] - tau[k]) / _MS_PER_H
        e = _extremes(run, timedelta(milliseconds=round(n * cycle_ms)), a, b, expected)
        if e is None:
            raise ValidationError(
                f"windows: no {w_ms / _MS_PER_H:g} h window ({n} stroke cycles) fits after the "
                f"first {ex / _MS_PER_H:g} h of the run",
                "windows",
            )
        out.append(e)
    good = np.flatnonzero(ok)
    k0, k1 = int(good[0]), int(good[-1])
    mean = _ep(run, int(before[k0]), int(before[k1]), r * float(tau[k1] - tau[k0]) / _MS_PER_H)
    return AccuracyCurve(
        "low-flow",
        r,
        (timedelta(milliseconds=int(tau[k0])), timedelta(milliseconds=int(tau[k1]))),
        mean,
        tuple(out),
    )


@dataclass(frozen=True)
class StartupCurve:
    """The flow of each sample interval (µL/h) at its end time, with its expanded
    uncertainty (k = 2), and the set rate."""

    times: tuple[timedelta, ...]
    flow_ul_per_h: tuple[float, ...]
    expanded_uncertainty: tuple[float, ...]
    rate_ul_per_h: float


def startup_curve(
    run: GravimetricRun, rate_ul_per_h: float, period: timedelta = timedelta(hours=2)
) -> StartupCurve:
    """The IEC 60601-2-24 start-up curve: the flow between consecutive samples over the first
    ``period`` of the run (µL/h)."""
    r = _rate(rate_ul_per_h)
    end = duration_ms(period, "period", allow_zero=False)
    t = run.times_ms
    idx = np.flatnonzero(t <= end)
    times, flows, us = [], [], []
    for a, b in zip(idx[:-1], idx[1:]):
        dt_h = float(t[b] - t[a]) / _MS_PER_H
        if dt_h <= 0:
            continue
        q = run.volume(int(a), int(b)).scaled(1 / dt_h, "µL/h")
        times.append(timedelta(milliseconds=int(t[b])))
        flows.append(q.value)
        us.append(q.expanded_uncertainty)
    if not times:
        raise ValidationError("period: fewer than two samples in the start-up period", "period")
    return StartupCurve(tuple(times), tuple(flows), tuple(us), r)


class _EmulatorStream:
    """An in-memory serial stream to an :class:`EmulatedBalance` (its replies are queued)."""

    def __init__(self, balance: object, protocol: str) -> None:
        self.balance, self.protocol, self._in, self._out = balance, protocol, b"", b""

    def write(self, data: bytes) -> None:
        if self.protocol == "sbi":
            self._out += self.balance.feed_sbi(data)  # type: ignore[attr-defined]
            return
        self._in += data
        while b"\n" in self._in:
            line, self._in = self._in.split(b"\n", 1)
            self._out += self.balance.answer_sics(line.rstrip(b"\r"))  # type: ignore[attr-defined]

    def read(self, size: int) -> bytes:
        chunk, self._out = self._out[:size], self._out[size:]
        return chunk


@dataclass(frozen=True)
class EmulatedAccuracyRun:
    """What :func:`run_emulated` measured: the run, the stroke times (since delivery started),
    the blank run's evaporation rate (mg/h), the set rate (µL/h), the stroke volume (µL) and the pump-clock ms of
    elapsed 0."""

    run: GravimetricRun
    stroke_times: tuple[timedelta, ...]
    evaporation: Measurement
    rate_ul_per_h: float
    stroke_ul: float
    start_ms: int = 0


def run_emulated(
    duration: timedelta,
    *,
    ug_per_day: float = 500.0,
    concentration_ug_per_ml: int = 2000,
    protocol: str = "sics",
    readability_mg: float = 0.01,
    noise_mg: float = 0.0,
    evaporation_mg_per_h: float = 0.0,
    sample_interval: timedelta = timedelta(seconds=30),
    blank: timedelta = timedelta(hours=2),
    seed: int | None = 0,
    journal: os.PathLike[str] | str | None = None,
    record: os.PathLike[str] | str | None = None,
) -> EmulatedAccuracyRun:
    """Run the emulated rig (:class:`itb.hardware.rig.Rig`, strokes from the Rust core for a
    continuous ``ug_per_day``) under an emulated balance speaking ``protocol`` through its
    driver, on a simulated clock (a two-day run takes seconds): a blank run of ``blank`` first
    (nothing delivered) gives the evaporation rate, then a reading every ``sample_interval``
    for ``duration``. The balance shows the conventional mass of the delivered water at 20 °C
    in air of 1.2 kg/m³, what :class:`GravimetricRun` assumes by default.

    With ``journal`` (a new SQLite file) the strokes go through the journaled
    :class:`~itb.hardware.controller.Controller` over a :class:`SimulatedDriver`, the due ones
    before each reading; with ``record`` the rig writes its record file (``stroke_id,time_ms``),
    as ``itb rig emulate --record`` does — the inputs of ``itb rig verify`` and ``itb rig report``."""
    from datetime import datetime

    from ..models import SYNCHROMED_II_40
    from ..program import Continuous
    from ..pump import Pump
    from .balance import SbiBalance, SicsBalance
    from .balance.emulator import EmulatedBalance
    from .metrology import REFERENCE_WEIGHT_DENSITY, evaporation_rate
    from .rig import Rig

    if protocol not in ("sics", "sbi"):
        raise ValidationError(f"protocol: must be sics or sbi, got {protocol!r}", "protocol")
    total = duration_ms(duration, "duration", allow_zero=False)
    if total > 31 * 24 * _MS_PER_H:
        raise ValidationError(
            f"duration: {total / _MS_PER_H / 24:g} days is longer than the 31 days allowed",
            "duration",
        )
    step = duration_ms(sample_interval, "sample_interval", allow_zero=False)
    blank_ms = duration_ms(blank, "blank", allow_zero=False)
    now = [0.0]  # the simulated clock, s

    def clock() -> float:
        return now[0]

    rho_w, rho_a = water_density(20.0).value, 1.2
    mg_per_nl = (rho_w - rho_a) / (1 - rho_a / REFERENCE_WEIGHT_DENSITY) / 1e6

    def driver(delivered: object) -> SicsBalance | SbiBalance:
        emu = EmulatedBalance(
            readability_mg=readability_mg,
            noise_mg=noise_mg,
            evaporation_mg_per_h=evaporation_mg_per_h,
            seed=seed,
            clock=clock,
            delivered_mg=delivered,  # type: ignore[arg-type]
        )
        stream = _EmulatorStream(emu, protocol)
        return SicsBalance(stream) if protocol == "sics" else SbiBalance(stream)

    def read(balance: SicsBalance | SbiBalance) -> float:
        return float(balance.read_immediate().milligrams)

    # blank run: nothing on the pan but evaporation
    blank_balance = driver(lambda _t: 0.0)
    b_t, b_m = [], []
    for k in range(blank_ms // step + 1):
        now[0] = k * step / 1000
        b_t.append(timedelta(milliseconds=k * step))
        b_m.append(read(blank_balance))
    evaporation = evaporation_rate(b_t, b_m, readability_mg)

    start = datetime(2026, 1, 5, 8, 0)
    pump = Pump(
        SYNCHROMED_II_40,
        now=start,
        reservoir_ml=SYNCHROMED_II_40.reservoir_ml,
        concentration_ug_per_ml=concentration_ug_per_ml,
        program=Continuous(ug_per_day=ug_per_day),
    )
    _, times = pump.advance_recording(start + timedelta(milliseconds=total))
    origin = to_ms(start, "start")
    rel = [int(x) - origin for x in times]
    now[0] = 0.0
    if journal is not None and os.path.exists(journal):
        raise ValidationError(f"journal: {journal} exists; give a new file", "journal")
    if record is not None and os.path.exists(record):
        raise ValidationError(f"record: {record} exists; give a new file", "record")
    rig = Rig(SYNCHROMED_II_40, clock=clock, start=start, record=record)
    controller = None
    if journal is not None:
        from .controller import Controller
        from .drivers import SimulatedDriver
        from .journal import Journal
        from .plan import plan_schedule

        jr = Journal(journal)
        plan = plan_schedule(times, origin, concentration_ug_per_ml)
        controller = Controller(SimulatedDriver(rig), jr, plan, clock=clock, sleep=lambda _s: None)
    stroke_nl = rig.stroke_nl
    balance = driver(lambda _t: rig.executed * stroke_nl * mg_per_nl)
    elapsed, masses = [], []
    done = 0
    for k in range(total // step + 1):
        t_ms = k * step
        upto = done
        while upto < len(rel) and rel[upto] <= t_ms:
            upto += 1
        if upto > done:
            if controller is not None:
                controller.run(max_strokes=upto - done)
            else:
                rig.deliver(done + 1, [origin + x for x in rel[done:upto]])
            done = upto
        now[0] = t_ms / 1000
        elapsed.append(timedelta(milliseconds=t_ms))
        masses.append(read(balance))
    rig.close()
    if controller is not None:
        controller.journal.close()
    rate = ug_per_day / concentration_ug_per_ml * 1000 / 24
    run = GravimetricRun(
        elapsed, masses, readability_mg, noise_mg, evaporation_mg_per_h=evaporation
    )
    return EmulatedAccuracyRun(
        run,
        tuple(timedelta(milliseconds=x) for x in rel),
        evaporation,
        rate,
        nl_to_ul(stroke_nl),
        origin,
    )
