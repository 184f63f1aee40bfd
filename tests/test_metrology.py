"""Mass to volume with uncertainty: each formula against published table values or a
hand-computed value from its source, the propagation against a numpy Monte Carlo run, and the
GUM algebra against its closed form (hypothesis)."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itb.errors import ValidationError
from itb.hardware.metrology import (
    Measurement,
    air_density,
    balance_mass,
    evaporation_rate,
    mass_to_volume,
    water_density,
)


# Tanaka et al. (2001), Table 1 (air-free SMOW at 101 325 Pa), kg/m³, printed to 4 places
@pytest.mark.parametrize(
    ("t", "table"),
    [(0.0, 999.8428), (4.0, 999.9749), (20.0, 998.2067), (25.0, 997.0470)],
)
def test_water_density_matches_tanaka_table(t: float, table: float) -> None:
    rho = water_density(t, air_saturated=False)
    assert abs(rho.value - table) <= 0.00005 + 1e-9
    assert rho.unit == "kg/m³"


def test_water_density_corrections_by_hand() -> None:
    # dissolved air at 20 °C: d1 + d2·t = -4.612e-3 + 0.106e-3·20 = -2.492e-3 kg/m³
    diff = water_density(20.0).value - water_density(20.0, air_saturated=False).value
    assert diff == pytest.approx(-2.492e-3, abs=1e-9)
    # compressibility at 20 °C, +50 hPa: rho·(5.074e-10 - 3.26e-12·20 + 4.16e-15·400)·5e3 Pa
    rho = 998.2067
    kappa = 5.074e-10 - 3.26e-12 * 20 + 4.16e-15 * 400
    diff = (
        water_density(20.0, 1063.25, air_saturated=False).value
        - water_density(20.0, air_saturated=False).value
    )
    assert diff == pytest.approx(rho * kappa * 5e3, rel=1e-4)
    # the formula's own standard uncertainty at 20 °C: b1 + b2·20 + b3·400 + b4·8000 + b5·160000
    u = 8.394e-4 - 1.28e-6 * 20 + 1.10e-7 * 400 - 6.09e-9 * 8000 + 1.16e-10 * 160000
    assert water_density(20.0).standard_uncertainty == pytest.approx(u, rel=1e-12)


def test_water_density_temperature_sensitivity() -> None:
    # the analytic sensitivity against a central difference of the formula itself
    t = Measurement.measured(20.0, 0.1, "°C", "water thermometer")
    rho = water_density(t, air_saturated=False)
    h = 1e-3
    slope = (
        water_density(20.0 + h, air_saturated=False).value
        - water_density(20.0 - h, air_saturated=False).value
    ) / (2 * h)
    assert rho.budget()["water thermometer"] == pytest.approx(abs(slope) * 0.1, rel=1e-5)
    # and against the table: 998.2067 at 20 °C, 997.9950 at 21 °C (about 0.21 kg/m³ per K)
    assert 0.19 < abs(slope) < 0.2117


def test_air_density_by_hand() -> None:
    # OIML R 111-1 E.3-1 at 20 °C, 1013.25 hPa, 50 %: (0.34848·1013.25 - 0.009·50·e^1.22)/293.15
    by_hand = (353.097 - 0.45 * 3.387188) / 293.15
    rho = air_density(20.0, 1013.25, 50.0)
    assert rho.value == pytest.approx(by_hand, rel=1e-5)
    assert rho.standard_uncertainty == pytest.approx(2.4e-4 * rho.value, rel=1e-9)


def test_z_factor_matches_iso_8655_6_table() -> None:
    # ISO 8655-6 Annex A, Z (µL/mg): 1.0029 at 20 °C, 1.0040 at 25 °C (1013 hPa)
    one_mg = Measurement.exact(1.0, "mg")
    z20 = mass_to_volume(one_mg, water_density(20.0, air_saturated=False), 1.2)
    assert round(z20.value, 4) == 1.0029
    z25 = mass_to_volume(
        one_mg, water_density(25.0, air_saturated=False), air_density(25.0, 1013.25, 50.0)
    )
    assert round(z25.value, 4) == 1.0040


def test_evaporation_rate_by_hand() -> None:
    hours = [timedelta(hours=h) for h in (0, 1, 2)]
    rate = evaporation_rate(hours, [100.000, 99.990, 99.980], readability_mg=0.01)
    assert rate.value == pytest.approx(0.010, abs=1e-12) and rate.unit == "mg/h"
    # flat residuals: the readability floor 0.01/√12/√2
    assert rate.standard_uncertainty == pytest.approx(0.01 / math.sqrt(12) / math.sqrt(2))
    noisy = evaporation_rate(hours, [100.000, 99.995, 99.980], readability_mg=0.0)
    # residuals about the fitted line (slope -0.010 mg/h): (-0.005/3, +0.010/3, -0.005/3) mg,
    # n - 2 = 1 degree of freedom, Σ(t - t̄)² = 2 h²
    se = math.sqrt((2 * (0.005 / 3) ** 2 + (0.010 / 3) ** 2) / 1 / 2)
    assert noisy.standard_uncertainty == pytest.approx(se, rel=1e-6)


def test_bad_inputs_are_typed_and_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"temperature_c: 41 °C is outside .* 0 to 40 °C"):
        water_density(41.0)
    with pytest.raises(ValidationError, match="humidity_pct"):
        air_density(20.0, 1013.25, float("nan"))
    with pytest.raises(ValidationError, match="air_saturated"):
        water_density(20.0, air_saturated=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="elapsed"):
        evaporation_rate([timedelta(0), timedelta(0)], [1.0, 2.0], 0.01)
    with pytest.raises(ValidationError, match="elapsed"):
        evaporation_rate([0, 1], [1.0, 2.0], 0.01)  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="unit"):
        Measurement.exact(1.0, "mg") + Measurement.exact(1.0, "µL")
    with pytest.raises(ValidationError, match="standard_uncertainty"):
        Measurement.measured(1.0, -0.1, "mg", "x")
    with pytest.raises(ValidationError, match="mass_mg"):
        mass_to_volume(Measurement.exact(1.0, "g"), water_density(20.0))


def _sample_volume(
    rng: np.random.Generator, n: int
) -> tuple[np.ndarray, dict[str, tuple[float, float]]]:
    inputs = {
        "mass": (87.12, 0.03),  # mg
        "water t": (22.0, 0.2),  # °C
        "air t": (22.0, 0.5),
        "air p": (990.0, 2.0),  # hPa
        "air h": (45.0, 5.0),  # %
    }
    s = {k: rng.normal(mu, u, n) for k, (mu, u) in inputs.items()}
    out = np.empty(n)
    for i in range(n):
        rw = water_density(float(s["water t"][i]), float(s["air p"][i]))
        ra = air_density(float(s["air t"][i]), float(s["air p"][i]), float(s["air h"][i]))
        out[i] = mass_to_volume(Measurement.exact(float(s["mass"][i]), "mg"), rw, ra).value
    return out, inputs


def test_propagation_matches_monte_carlo() -> None:
    rng = np.random.default_rng(20260105)
    samples, inputs = _sample_volume(rng, 6000)
    m = {
        k: Measurement.measured(mu, u, unit, k)
        for (k, (mu, u)), unit in zip(inputs.items(), ["mg", "°C", "°C", "hPa", "%"])
    }
    rw = water_density(m["water t"], m["air p"])
    ra = air_density(m["air t"], m["air p"], m["air h"])
    v = mass_to_volume(m["mass"], rw, ra)
    # the Monte Carlo run draws the inputs only: compare without the formulas' own terms
    u_inputs = math.sqrt(
        sum(c * c for (name, _), c in v.contributions.items() if "formula" not in name)
    )
    # standard error of a standard deviation from n samples ≈ u/√(2n) ≈ 0.9 %: allow 4 σ
    assert float(np.std(samples, ddof=1)) == pytest.approx(u_inputs, rel=0.04)
    assert float(np.mean(samples)) == pytest.approx(
        v.value, abs=3 * u_inputs / math.sqrt(6000) + 1e-6
    )
    assert v.expanded_uncertainty == pytest.approx(2 * v.standard_uncertainty)


def test_shared_source_stays_correlated() -> None:
    # the same thermometer in both densities: its share cancels in the difference of two volumes
    t = Measurement.measured(20.0, 0.5, "°C", "thermometer")
    rho = water_density(t)
    a = mass_to_volume(Measurement.measured(100.0, 0.01, "mg", "reading a"), rho)
    b = mass_to_volume(Measurement.measured(100.0, 0.01, "mg", "reading b"), rho)
    diff = a - b
    assert diff.value == 0.0
    assert "thermometer" not in {k for k, v in diff.budget().items() if v > 1e-15}
    assert diff.standard_uncertainty == pytest.approx(
        math.sqrt(2) * 0.01 * a.value / 100.0, rel=1e-9
    )


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(-1e3, 1e3),
    b=st.floats(-1e3, 1e3),
    u1=st.floats(0, 10),
    u2=st.floats(0, 10),
)
def test_linear_combination_matches_closed_form(a: float, b: float, u1: float, u2: float) -> None:
    x1 = Measurement.measured(1.0, u1, "mg", "x1")
    x2 = Measurement.measured(2.0, u2, "mg", "x2")
    y = x1.scaled(a) + x2.scaled(b)
    assert y.value == pytest.approx(a + 2 * b, abs=1e-9)
    assert y.standard_uncertainty == pytest.approx(math.hypot(a * u1, b * u2), rel=1e-9, abs=1e-12)
    z = y - y  # a quantity minus itself is exact
    assert z.standard_uncertainty == pytest.approx(0.0, abs=1e-9)


def test_balance_mass_readability_is_rectangular() -> None:
    m = balance_mass(0.087, readability_mg=0.1, repeatability_mg=0.02)
    assert m.standard_uncertainty == pytest.approx(math.hypot(0.1 / math.sqrt(12), 0.02))
    assert set(m.budget()) == {"balance readability", "balance repeatability"}
