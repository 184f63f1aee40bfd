"""Flow accuracy with uncertainty (hardware/accuracy.py): trumpet, low-flow and start-up curves
against hand-computed Ep values, and the emulated end-to-end run (``itb rig accuracy``)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from itb.errors import ValidationError
from itb.hardware.accuracy import (
    GravimetricRun,
    low_flow_curve,
    run_emulated,
    startup_curve,
    trumpet_curve,
)
from itb.hardware.metrology import Measurement, mass_to_volume, water_density

#: µL per mg of balance reading at 20 °C in air of 1.2 kg/m³ (the run's default conditions)
UL_PER_MG = mass_to_volume(Measurement.exact(1.0, "mg"), water_density(20.0), 1.2).value
D = 0.001  # readability, mg


def _grid(hours: float, step_s: int) -> list[timedelta]:
    return [timedelta(seconds=k * step_s) for k in range(int(hours * 3600 / step_s) + 1)]


def test_trumpet_hand_computed_burst() -> None:
    # 2 mg/h for 2 h read every 30 s, and a 0.02 mg burst at 90 min that stays on the pan
    t = _grid(2, 30)
    m = [2.0 * x.total_seconds() / 3600 + (0.02 if x >= timedelta(minutes=90) else 0.0) for x in t]
    run = GravimetricRun(t, m, readability_mg=D)
    rate = 2.0 * UL_PER_MG
    curve = trumpet_curve(run, rate)
    by = {w.window: w for w in curve.windows}
    # a 2-min window holds 2 mg/h × 2/60 h = 0.0667 mg; the burst adds 0.02 mg: +30 %
    two = by[timedelta(minutes=2)]
    assert two.max_pct.value == pytest.approx(30.0, abs=1e-6)
    assert two.min_pct.value == pytest.approx(0.0, abs=1e-6)
    # its uncertainty: two readings, u = d/√12 each → U = 2·100·(d/√6)/0.0667 mg = 1.2247 %
    assert two.max_pct.expanded_uncertainty == pytest.approx(
        2 * 100 * D / math.sqrt(6) / (2 / 30), rel=1e-4
    )
    assert by[timedelta(minutes=5)].max_pct.value == pytest.approx(12.0, abs=1e-6)
    assert by[timedelta(minutes=31)].max_pct.value == pytest.approx(100 * 0.02 / (2 * 31 / 60))
    # A over the second hour: 0.02 mg on 2 mg → +1 %
    assert curve.mean_pct.value == pytest.approx(1.0, abs=1e-6)
    assert curve.passes(35.0) and not curve.passes(30.0)


def test_trumpet_window_must_be_whole_samples() -> None:
    run = GravimetricRun(_grid(2, 30), [0.0] * 241, readability_mg=D)
    with pytest.raises(ValidationError) as err:
        trumpet_curve(run, 1.0, [timedelta(seconds=45)])
    assert err.value.field == "windows"


def _low_flow_run(big: int = 8) -> tuple[GravimetricRun, list[timedelta], float, float]:
    # a 0.2 µL stroke every 600 s (1.2 µL/h), at 330 s + 600 s·k; stroke `big` is 10 % larger
    stroke_ul, cycle = 0.2, 600
    taus = [timedelta(seconds=330 + cycle * k) for k in range(30)]
    t = _grid(5, 60)
    mg = stroke_ul / UL_PER_MG
    masses = [
        sum(mg * (1.1 if k == big else 1.0) for k, tau in enumerate(taus) if tau <= x) for x in t
    ]
    return GravimetricRun(t, masses, readability_mg=D), taus, stroke_ul * 3600 / cycle, stroke_ul


def test_low_flow_hand_computed_whole_cycles() -> None:
    run, taus, rate, stroke = _low_flow_run()
    curve = low_flow_curve(run, rate, stroke, taus, [timedelta(hours=1)], timedelta(hours=1))
    (w,) = curve.windows
    assert w.window == timedelta(hours=1)  # 6 whole cycles of 600 s
    # six strokes, one of them 10 % large: +0.1/6 = +1.667 %; windows without it: exactly 0
    assert w.max_pct.value == pytest.approx(100 * 0.1 / 6, abs=1e-6)
    assert w.min_pct.value == pytest.approx(0.0, abs=1e-6)
    # the first stroke analysed is the first at or after the excluded hour (330 + 600·6 s)
    assert curve.period[0] == timedelta(seconds=330 + 600 * 6)
    # U: two readings of 1.2 mg (six strokes) on a 0.001 mg balance
    u = D / math.sqrt(6) / (6 * stroke / UL_PER_MG) * 100
    assert w.min_pct.expanded_uncertainty == pytest.approx(2 * u, rel=1e-3)


def test_low_flow_rounds_windows_to_whole_cycles() -> None:
    run, taus, rate, stroke = _low_flow_run(big=-1)
    curve = low_flow_curve(run, rate, stroke, taus, [timedelta(minutes=50)], timedelta(hours=1))
    # 50 min / 10 min = 5 cycles exactly; an ideal pump is exact in every aligned window
    assert curve.windows[0].window == timedelta(minutes=50)
    assert abs(curve.windows[0].max_pct.value) < 1e-9
    assert abs(curve.windows[0].min_pct.value) < 1e-9
    with pytest.raises(ValidationError) as err:
        low_flow_curve(run, rate, stroke, taus, [timedelta(hours=6)], timedelta(hours=1))
    assert err.value.field == "windows"


def test_startup_curve_flow_per_interval() -> None:
    t = _grid(1, 60)
    run = GravimetricRun(t, [3.0 * x.total_seconds() / 3600 for x in t], readability_mg=D)
    s = startup_curve(run, 3.0 * UL_PER_MG, timedelta(minutes=30))
    assert len(s.times) == 30
    assert all(q == pytest.approx(3.0 * UL_PER_MG, rel=1e-9) for q in s.flow_ul_per_h)
    # one interval of 1 min: U = 2·(d/√6)·60 /h in mg/h, in µL/h
    assert s.expanded_uncertainty[0] == pytest.approx(
        2 * D / math.sqrt(6) * 60 * UL_PER_MG, rel=1e-3
    )


def test_emulated_two_day_run_conserves_volume() -> None:
    emu = run_emulated(timedelta(days=2), protocol="sbi", readability_mg=0.01)
    # 500 µg/day at 2000 µg/mL: 250 µL/day, 125 strokes of 2 µL a day
    assert emu.rate_ul_per_h == pytest.approx(250 / 24)
    assert len(emu.stroke_times) == 250
    last = len(emu.run.masses_mg) - 1
    assert emu.run.volume(0, last).value == pytest.approx(500.0, abs=0.02)
    curve = low_flow_curve(
        emu.run, emu.rate_ul_per_h, emu.stroke_ul, emu.stroke_times, [timedelta(hours=1)]
    )
    assert curve.period[0] >= timedelta(hours=24)
    w = curve.windows[0]
    # 0.01 mg readability on ≈ 10 mg windows: well inside ±0.5 %
    assert abs(w.max_pct.value) + w.max_pct.expanded_uncertainty < 0.5
    assert curve.passes(15.0)


def test_cli_accuracy_pass_and_fail(capsys: pytest.CaptureFixture[str]) -> None:
    from itb.cli import main

    args = ["rig", "accuracy", "--duration", "P2D", "--windows", "PT1H,PT6H"]
    assert main([*args, "--limit", "15%"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main([*args, "--limit", "0.1%", "--readability-mg", "0.1"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_low_flow_refuses_a_run_too_short_for_the_exclusion() -> None:
    run, taus, rate, stroke = _low_flow_run()
    with pytest.raises(ValidationError) as err:
        low_flow_curve(run, rate, stroke, taus, [timedelta(hours=1)])  # 5 h run, 24 h excluded
    assert err.value.field == "exclude"
    with pytest.raises(ValidationError) as err:
        low_flow_curve(run, rate, -1.0, taus)
    assert err.value.field == "stroke_ul"


def test_cli_accuracy_junit(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from itb.cli import main

    out = tmp_path / "report.xml"
    args = ["rig", "accuracy", "--duration", "P2D", "--readability-mg", "0.1"]
    assert main([*args, "--limit", "0.5%", "--junit", str(out)]) == 1
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    # A, then Ep(max) and Ep(min) of the two default windows
    assert [c.get("name") for c in cases] == [
        "mean error A",
        "Ep(max) PT57M36S",
        "Ep(min) PT57M36S",
        "Ep(max) PT5H57M7.200S",
        "Ep(min) PT5H57M7.200S",
    ]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed and suite.get("failures") == str(len(failed))
    assert "Ep(max) PT57M36S" in failed or "Ep(min) PT57M36S" in failed  # 0.1 mg on ≈ 10 mg
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["soup.itb-pump"] and props["soup.numpy"] not in (None, "not installed")


def test_window_uncertainty_matches_monte_carlo() -> None:
    import numpy as np

    # a 2-min window at 10.4 µL/h (0.347 mg) on a 0.1 mg balance with 0.05 mg repeatability
    d, s, dm = 0.1, 0.05, 0.347
    run = GravimetricRun(
        [timedelta(0), timedelta(minutes=2)],
        [100.0, 100.0 + dm],
        readability_mg=d,
        repeatability_mg=s,
        water_temperature_c=Measurement.measured(20.0, 0.1, "°C", "thermometer"),
    )
    expected = dm * UL_PER_MG
    ep = trumpet_curve(
        run,
        expected * 30,
        [timedelta(minutes=2)],
        timedelta(minutes=2),
        (timedelta(0), timedelta(minutes=2)),
    )
    u = ep.windows[0].max_pct.standard_uncertainty
    rng = np.random.default_rng(7)
    n = 200_000

    def reading() -> np.ndarray:
        return rng.uniform(-d / 2, d / 2, n) + rng.normal(0.0, s, n)

    sim = 100 * ((dm + reading() - reading()) * UL_PER_MG / expected - 1)
    assert float(np.std(sim)) == pytest.approx(u, rel=0.02)
    assert u == pytest.approx(100 * math.sqrt(2 * (d * d / 12 + s * s)) / dm, rel=1e-3)
