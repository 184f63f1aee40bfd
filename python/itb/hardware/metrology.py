"""Gravimetric metrology: from balance readings to delivered volume, with GUM uncertainty.

- :class:`Measurement` — a value with its uncertainty budget, propagated to first order (GUM,
  JCGM 100:2008, law of propagation of uncertainty) through every derived figure; each
  independent input is one *source*, so a source used twice (the same water temperature in the
  density of two samples) stays correlated. ``expanded_uncertainty`` is k = 2.
- :func:`water_density` — Tanaka et al. (2001), *Metrologia* 38, 301–309 (the CIPM formula),
  with its formula uncertainty, the compressibility and dissolved-air corrections.
- :func:`air_density` — the approximate CIPM formula of OIML R 111-1 (2004), E.3-1.
- :func:`mass_to_volume` — V = m·(1 − ρa/ρb)/(ρw − ρa): the conventional-mass reading corrected
  for air buoyancy on the water and on the balance's reference weights (ρb = 8000 kg/m³), the
  practice of ISO 8655-6 and ISO 4787 (without their glass-expansion term: a flow rig measures
  the liquid's own volume at the measured temperature).
- :func:`evaporation_rate` — the mass-loss rate of a blank run (no delivery), to be added back.

Units are in the names: ``_c`` °C, ``_hpa`` hPa, ``_pct`` % relative humidity, ``_mg``
milligrams, densities kg/m³, volumes µL; durations are ``timedelta``.
Guide: docs: guide/metrology.md; decisions: docs: decisions/metrology.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from .._limits import MS_PER_HOUR
from .._time import duration_ms
from ..errors import ValidationError

__all__ = [
    "COVERAGE_FACTOR",
    "Measurement",
    "air_density",
    "balance_mass",
    "evaporation_rate",
    "mass_to_volume",
    "water_density",
    "REFERENCE_WEIGHT_DENSITY",
]

#: GUM coverage factor of every expanded uncertainty here (≈ 95 % for a normal distribution)
COVERAGE_FACTOR = 2.0
#: conventional density of a balance's reference weights, kg/m³ (OIML R 111-1; OIML D 28)
REFERENCE_WEIGHT_DENSITY = 8000.0

_serial = itertools.count(1)

# Tanaka et al. (2001), eq. (1): ρ(t) = a5·[1 − (t + a1)²·(t + a2) / (a3·(t + a4))], kg/m³, °C
_A1, _A2, _A3, _A4, _A5 = -3.983035, 301.797, 522528.9, 69.34881, 999.974950
# ... its standard uncertainty, eq. (4): b1 + b2·t + b3·t² + b4·t³ + b5·t⁴, kg/m³
_B = (8.394e-4, -1.28e-6, 1.10e-7, -6.09e-9, 1.16e-10)
# ... compressibility, eq. (5): × [1 + (c1 + c2·t + c3·t²)·(p − 101325 Pa)]
_C = (5.074e-10, -3.26e-12, 4.16e-15)
# ... dissolved air (air-saturated water, 0–25 °C), eq. (7): Δρ = d1 + d2·t, kg/m³
_D1, _D2 = -4.612e-3, 0.106e-3


def _check(name: str, value: float, low: float, high: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{name}: must be a number in {unit}, got {value!r}", name)
    value = float(value)
    if not (low <= value <= high):  # also refuses NaN
        raise ValidationError(
            f"{name}: {value:g} {unit} is outside the allowed range {low:g} to {high:g} {unit}",
            name,
        )
    return value


@dataclass(frozen=True)
class Measurement:
    """A measured or derived value with its uncertainty budget.

    ``contributions`` maps each independent source ``(name, serial)`` to its signed
    contribution cᵢ·u(xᵢ) in this value's ``unit`` (sensitivity coefficient × the source's
    standard uncertainty). The combined standard uncertainty is the root sum of squares; sources
    shared by two operands add linearly before squaring (first-order GUM with correlation)."""

    value: float
    unit: str
    contributions: Mapping[tuple[str, int], float] = field(default_factory=dict)

    @classmethod
    def measured(
        cls, value: float, standard_uncertainty: float, unit: str, source: str
    ) -> Measurement:
        """A new independent input: ``value`` ± ``standard_uncertainty`` (k = 1) in ``unit``;
        ``source`` names it in the budget. ``ValidationError`` for a non-finite value or a
        negative or non-finite uncertainty."""
        for name, x in (("value", value), ("standard_uncertainty", standard_uncertainty)):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ValidationError(f"{name}: must be a finite number in {unit}, got {x!r}", name)
        if standard_uncertainty < 0:
            raise ValidationError(
                f"standard_uncertainty: must be ≥ 0 {unit}, got {standard_uncertainty!r}",
                "standard_uncertainty",
            )
        contributions = {(source, next(_serial)): float(standard_uncertainty)}
        return cls(float(value), unit, contributions if standard_uncertainty else {})

    @classmethod
    def exact(cls, value: float, unit: str) -> Measurement:
        """A value without uncertainty (a defined constant)."""
        return cls(float(value), unit, {})

    @property
    def standard_uncertainty(self) -> float:
        """u(y), k = 1, in ``unit``."""
        return math.sqrt(math.fsum(c * c for c in self.contributions.values()))

    @property
    def expanded_uncertainty(self) -> float:
        """U = k·u(y) with k = 2, in ``unit``."""
        return COVERAGE_FACTOR * self.standard_uncertainty

    @property
    def relative_uncertainty(self) -> float:
        """u(y)/|y| (``inf`` for y = 0)."""
        return self.standard_uncertainty / abs(self.value) if self.value else math.inf

    def budget(self) -> dict[str, float]:
        """Standard-uncertainty contribution of each source by name, in ``unit``, largest
        first (sources of one name are combined in quadrature)."""
        out: dict[str, float] = {}
        for (name, _), c in self.contributions.items():
            out[name] = math.hypot(out.get(name, 0.0), c)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    @classmethod
    def derived(
        cls, value: float, unit: str, partials: Sequence[tuple[Measurement, float]]
    ) -> Measurement:
        """y = f(x₁, …): ``value`` = f at the inputs' values, ``partials`` each input with
        ∂f/∂xᵢ there (first-order GUM: c = Σ ∂f/∂xᵢ·cᵢ per source)."""
        return _combine(value, unit, partials)

    def __add__(self, other: Measurement) -> Measurement:
        _same_unit(self, other, "+")
        return _combine(self.value + other.value, self.unit, [(self, 1.0), (other, 1.0)])

    def __sub__(self, other: Measurement) -> Measurement:
        _same_unit(self, other, "-")
        return _combine(self.value - other.value, self.unit, [(self, 1.0), (other, -1.0)])

    def scaled(self, factor: float, unit: str | None = None) -> Measurement:
        """This value times an exact ``factor`` (a unit conversion), optionally relabelled."""
        return _combine(self.value * factor, unit or self.unit, [(self, factor)])

    def __mul__(self, other: Measurement) -> Measurement:
        return _combine(
            self.value * other.value,
            f"{self.unit}·{other.unit}",
            [(self, other.value), (other, self.value)],
        )

    def __truediv__(self, other: Measurement) -> Measurement:
        if other.value == 0:
            raise ValidationError("divisor: is zero", "divisor")
        return _combine(
            self.value / other.value,
            f"{self.unit}/{other.unit}",
            [(self, 1 / other.value), (other, -self.value / other.value**2)],
        )

    def __str__(self) -> str:
        value = self.value + 0.0  # -0.0 (e.g. a flat blank run's slope) prints as 0
        return f"{value:.6g} ± {self.expanded_uncertainty:.2g} {self.unit} (k = 2)"


def _same_unit(a: Measurement, b: Measurement, op: str) -> None:
    if a.unit != b.unit:
        raise ValidationError(f"unit: cannot {op} {a.unit} and {b.unit}", "unit")


def _combine(value: float, unit: str, partials: Sequence[tuple[Measurement, float]]) -> Measurement:
    out: dict[tuple[str, int], float] = {}
    for m, derivative in partials:
        for key, c in m.contributions.items():
            out[key] = out.get(key, 0.0) + derivative * c
    return Measurement(value, unit, out)


def _as_measurement(x: Measurement | float, unit: str, name: str) -> Measurement:
    if isinstance(x, Measurement):
        if x.unit != unit:
            raise ValidationError(f"{name}: must be in {unit}, got {x.unit}", name)
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValidationError(f"{name}: must be a finite number in {unit}, got {x!r}", name)
    return Measurement.exact(x, unit)


def balance_mass(
    value_mg: float, readability_mg: float, repeatability_mg: float = 0.0
) -> Measurement:
    """One balance reading as a :class:`Measurement` in mg: the readability d as a rectangular
    distribution of width d (u = d/√12) and the repeatability (a standard deviation) as two
    sources. For a difference of two readings, make one per reading."""
    d = _check("readability_mg", readability_mg, 0.0, 1e6, "mg")
    s = _check("repeatability_mg", repeatability_mg, 0.0, 1e6, "mg")
    m = Measurement.measured(value_mg, d / math.sqrt(12), "mg", "balance readability")
    if s:
        m = m + Measurement.measured(0.0, s, "mg", "balance repeatability")
    return m


def water_density(
    temperature_c: Measurement | float,
    pressure_hpa: Measurement | float = 1013.25,
    air_saturated: bool = True,
) -> Measurement:
    """Density of pure water in kg/m³ at ``temperature_c`` (ITS-90, 0–40 °C) and
    ``pressure_hpa`` (500–1100 hPa), by Tanaka et al. (2001): the formula, its own standard
    uncertainty (a source "water density formula"), the compressibility correction, and, with
    ``air_saturated`` (rig water standing in air; 0–25 °C in the source, used up to 40 °C here),
    the dissolved-air correction. The temperature's (and pressure's) uncertainty is propagated.
    ``ValidationError`` naming the argument outside its range."""
    t_m = _as_measurement(temperature_c, "°C", "temperature_c")
    p_m = _as_measurement(pressure_hpa, "hPa", "pressure_hpa")
    t = _check("temperature_c", t_m.value, 0.0, 40.0, "°C")
    p_hpa = _check("pressure_hpa", p_m.value, 500.0, 1100.0, "hPa")
    if not isinstance(air_saturated, bool):
        raise ValidationError(
            f"air_saturated: must be true or false, got {air_saturated!r}", "air_saturated"
        )
    num = (t + _A1) ** 2 * (t + _A2)
    den = _A3 * (t + _A4)
    rho0 = _A5 * (1 - num / den)
    d_num = 2 * (t + _A1) * (t + _A2) + (t + _A1) ** 2
    d_rho0 = -_A5 * (d_num * den - num * _A3) / den**2
    dp = (p_hpa - 1013.25) * 100.0
    kappa = _C[0] + _C[1] * t + _C[2] * t * t
    comp = 1 + kappa * dp
    air = (_D1 + _D2 * t) if air_saturated else 0.0
    rho = rho0 * comp + air
    d_rho_dt = d_rho0 * comp + rho0 * (_C[1] + 2 * _C[2] * t) * dp + (_D2 if air_saturated else 0.0)
    d_rho_dp_hpa = rho0 * kappa * 100.0
    u_formula = sum(b * t**i for i, b in enumerate(_B))
    formula = Measurement.measured(0.0, u_formula, "kg/m³", "water density formula")
    return _combine(rho, "kg/m³", [(t_m, d_rho_dt), (p_m, d_rho_dp_hpa), (formula, 1.0)])


def air_density(
    temperature_c: Measurement | float,
    pressure_hpa: Measurement | float,
    humidity_pct: Measurement | float,
) -> Measurement:
    """Density of moist air in kg/m³ by the approximate CIPM formula of OIML R 111-1 (2004),
    E.3-1: ρa = (0.34848·p − 0.009·hr·e^(0.061·t)) / (273.15 + t) with p in hPa, hr in %, t in
    °C, with its relative standard uncertainty 2.4 × 10⁻⁴ (a source "air density formula") and
    the inputs' uncertainties propagated. Ranges: 0–40 °C, 500–1100 hPa, 0–100 %."""
    t_m = _as_measurement(temperature_c, "°C", "temperature_c")
    p_m = _as_measurement(pressure_hpa, "hPa", "pressure_hpa")
    h_m = _as_measurement(humidity_pct, "%", "humidity_pct")
    t = _check("temperature_c", t_m.value, 0.0, 40.0, "°C")
    p = _check("pressure_hpa", p_m.value, 500.0, 1100.0, "hPa")
    h = _check("humidity_pct", h_m.value, 0.0, 100.0, "%")
    e = math.exp(0.061 * t)
    num = 0.34848 * p - 0.009 * h * e
    den = 273.15 + t
    rho = num / den
    d_t = (-0.009 * h * 0.061 * e * den - num) / den**2
    formula = Measurement.measured(0.0, 2.4e-4 * rho, "kg/m³", "air density formula")
    return _combine(
        rho, "kg/m³", [(t_m, d_t), (p_m, 0.34848 / den), (h_m, -0.009 * e / den), (formula, 1.0)]
    )


def mass_to_volume(
    mass_mg: Measurement,
    water_density_kg_m3: Measurement,
    air_density_kg_m3: Measurement | float = 1.2,
    weights_density_kg_m3: float = REFERENCE_WEIGHT_DENSITY,
) -> Measurement:
    """The volume in µL of water whose balance reading is ``mass_mg`` (a conventional mass):
    V = m·(1 − ρa/ρb)/(ρw − ρa) — the air-buoyancy correction of ISO 8655-6. ρa defaults to the
    conventional 1.2 kg/m³ (exact; pass :func:`air_density` for a measured one)."""
    m = _as_measurement(mass_mg, "mg", "mass_mg")
    rw = _as_measurement(water_density_kg_m3, "kg/m³", "water_density_kg_m3")
    ra = _as_measurement(air_density_kg_m3, "kg/m³", "air_density_kg_m3")
    rb = _check("weights_density_kg_m3", weights_density_kg_m3, 1000.0, 25000.0, "kg/m³")
    _check("water_density_kg_m3", rw.value, 900.0, 1100.0, "kg/m³")
    _check("air_density_kg_m3", ra.value, 0.0, 2.0, "kg/m³")
    k = 1 - ra.value / rb
    den = rw.value - ra.value
    v = 1000.0 * m.value * k / den  # mg / (kg/m³) = 1e-6 m³·... → ×1000 gives µL
    return _combine(
        v,
        "µL",
        [
            (m, 1000.0 * k / den),
            (rw, -v / den),
            (ra, 1000.0 * m.value * (-1 / rb * den + k) / den**2),
        ],
    )


def evaporation_rate(
    elapsed: Sequence[timedelta],
    masses_mg: Sequence[float],
    readability_mg: float,
) -> Measurement:
    """The evaporation rate in mg/h of a blank run (nothing delivered): minus the
    least-squares slope of ``masses_mg`` against ``elapsed`` (durations since the blank run's
    start; at least two, not all equal). Its standard uncertainty is the larger of the slope's
    standard error (n ≥ 3) and what the balance's readability alone allows, d/√12/√Σ(t − t̄)²,
    so a quantised, perfectly flat record is never reported as exact."""
    if len(elapsed) != len(masses_mg) or len(elapsed) < 2:
        raise ValidationError(
            f"masses_mg: need one mass per elapsed time and at least two of each, got "
            f"{len(elapsed)} times and {len(masses_mg)} masses",
            "masses_mg",
        )
    hours = [duration_ms(dt, f"elapsed[{i}]") / MS_PER_HOUR for i, dt in enumerate(elapsed)]
    masses = [_check(f"masses_mg[{i}]", m, -1e9, 1e9, "mg") for i, m in enumerate(masses_mg)]
    d = _check("readability_mg", readability_mg, 0.0, 1e6, "mg")
    n = len(hours)
    t_bar = math.fsum(hours) / n
    m_bar = math.fsum(masses) / n
    sxx = math.fsum((t - t_bar) ** 2 for t in hours)
    if sxx == 0:
        raise ValidationError("elapsed: the blank run's times are all equal", "elapsed")
    slope = math.fsum((t - t_bar) * (m - m_bar) for t, m in zip(hours, masses)) / sxx
    u = d / math.sqrt(12) / math.sqrt(sxx)
    if n >= 3:
        resid = math.fsum((m - m_bar - slope * (t - t_bar)) ** 2 for t, m in zip(hours, masses))
        u = max(u, math.sqrt(resid / (n - 2) / sxx))
    return Measurement.measured(-slope, u, "mg/h", "evaporation rate")
