"""Flow accuracy (trumpet curve) on hand-built series with known answers, and ``itb trumpet``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import itb
import numpy as np
import pytest
from _rig import START
from itb.analysis import DEFAULT_WINDOWS_MIN, cumulative_from_strokes, plot_trumpet, trumpet
from itb.errors import ValidationError
from itb.hardware import stroke_schedule

RATE = 1.2  # mL/h = 0.01 mL per 30 s interval


def constant(
    rate_ml_h: float = RATE, hours: float = 2.0, dt: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, hours * 3600 + dt / 2, dt)
    return t, rate_ml_h * t / 3600


def test_exact_flow_has_zero_error_everywhere() -> None:
    t, v = constant()
    res = trumpet(t, v, rate_ml_per_h=RATE)
    assert res.period_s == (3600.0, 7200.0)  # the second hour of the 2-hour run
    assert np.allclose(res.max_error_pct, 0) and np.allclose(res.min_error_pct, 0)
    assert res.mean_error_pct == pytest.approx(0, abs=1e-9)
    assert list(res.windows_min) == list(DEFAULT_WINDOWS_MIN)


def test_a_uniformly_fast_pump_is_off_by_the_same_percentage_in_every_window() -> None:
    t, v = constant(RATE * 1.1)
    res = trumpet(t, v, rate_ml_per_h=RATE)
    assert np.allclose(res.max_error_pct, 10) and np.allclose(res.min_error_pct, 10)
    assert res.mean_error_pct == pytest.approx(10)


def test_one_extra_volume_shows_as_a_trumpet() -> None:
    """0.01 mL extra in one 30-s interval of the second hour: a window of m intervals that holds it
    reads 100·0.01/(m·0.01) = 100/m % high; windows without it read 0 %."""
    t, v = constant(dt=30.0)
    k = 150  # interval 4500–4530 s
    v = v + np.where(t >= t[k + 1], 0.01, 0.0)
    res = trumpet(t, v, rate_ml_per_h=RATE)
    m = np.array(DEFAULT_WINDOWS_MIN) * 2
    assert np.allclose(res.max_error_pct, 100 / m)
    assert np.allclose(res.min_error_pct, 0)
    assert res.mean_error_pct == pytest.approx(100 * 0.01 / 1.2)  # 0.01 mL over the hour's 1.2 mL


def test_a_pause_reads_minus_100_in_short_windows() -> None:
    """No flow for 5 minutes (3600–3900 s): 2- and 5-min windows inside it read −100 %; an
    11-min window reads −100·5/11 %; the max is 0 % for windows that miss it."""
    t, v = constant(dt=30.0)
    v = np.where(t < 3600, v, np.where(t < 3900, RATE, RATE + RATE * (t - 3900) / 3600))
    res = trumpet(t, v, rate_ml_per_h=RATE)
    assert res.min_error_pct[0] == pytest.approx(-100) and res.min_error_pct[1] == pytest.approx(
        -100
    )
    assert res.min_error_pct[2] == pytest.approx(-100 * 5 / 11)
    assert np.allclose(res.max_error_pct, 0)
    assert res.mean_error_pct == pytest.approx(-100 * 5 / 60)


def test_defaults_and_options() -> None:
    t, v = constant(hours=1.0)
    res = trumpet(t, v)  # rate: the mean over the period → A = 0
    assert res.period_s == (1800.0, 3600.0) and res.mean_error_pct == pytest.approx(0, abs=1e-9)
    assert np.isnan(res.max_error_pct[-1])  # a 31-min window does not fit a 30-min period
    low = trumpet(
        *constant(0.002, hours=48, dt=600),
        windows=(60, 240),
        sample_interval=600,
        analysis_period=(24 * 3600, 48 * 3600),
        rate_ml_per_h=0.002,
    )  # a low-flow implantable
    assert np.allclose(low.max_error_pct, 0, atol=1e-9)
    assert json.loads(json.dumps(res.as_dict()))["max_error_pct"][-1] is None
    for kwargs, field in [
        ({"sample_interval": 0}, "sample_interval"),
        ({"analysis_period": (0, 99999)}, "analysis_period"),
        ({"windows": ()}, "windows"),
        ({"windows": (0.1,)}, "windows"),
        ({"kind": "cubic"}, "kind"),
        ({"rate_ml_per_h": -1}, "rate_ml_per_h"),
    ]:
        with pytest.raises(ValidationError) as e:
            trumpet(t, v, **kwargs)
        assert e.value.field == field
    with pytest.raises(ValidationError):
        trumpet(t[::-1], v)
    with pytest.raises(ValidationError):
        trumpet([0.0], [0.0])


def test_simulated_strokes_from_the_core() -> None:
    """A 2000 ug/day program at 500 ug/mL = 4 mL/day = 1/6 mL/h in 2-uL strokes every 43.2 s."""
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=START,
        reservoir_ml=40.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=2000.0),
    )
    times = stroke_schedule(pump, START + timedelta(hours=4))
    t, v = cumulative_from_strokes(
        times, 2000, start_ms=pump.now_ms, end_ms=pump.now_ms + 4 * 3_600_000
    )
    res = trumpet(t, v, rate_ml_per_h=4 / 24, kind="step", analysis_period=(3600, 4 * 3600))
    # a 2-min window holds 2 or 3 strokes of 2 uL against 5.56 uL expected
    assert res.max_error_pct[0] == pytest.approx(100 * (3 * 2 / (4000 / 24 * 2 / 60) - 1))
    assert res.min_error_pct[0] == pytest.approx(100 * (2 * 2 / (4000 / 24 * 2 / 60) - 1))
    assert abs(res.mean_error_pct) < 1.0
    assert res.max_error_pct[-1] < res.max_error_pct[0]  # the trumpet narrows with the window


def test_cli_trumpet(tmp_path) -> None:
    t, v = constant(RATE * 0.95, dt=30.0)
    data = tmp_path / "data.csv"
    data.write_text("time_s,cumulative_ml\n" + "".join(f"{a},{b}\n" for a, b in zip(t, v)))
    r = subprocess.run(
        [sys.executable, "-m", "itb", "trumpet", str(data), "--rate", str(RATE), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mean_error_pct"] == pytest.approx(-5) and out["max_error_pct"] == pytest.approx(
        [-5] * 5
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,cumulative_ml\n1,2\nx,y\n")
    r = subprocess.run(
        [sys.executable, "-m", "itb", "trumpet", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "line 3" in r.stderr
    pytest.importorskip("matplotlib")
    png = tmp_path / "t.png"
    r = subprocess.run(
        [sys.executable, "-m", "itb", "trumpet", str(data), "--plot", str(png)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path) -> None:
    import sys

    from itb.errors import ItbError, MissingExtraError

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    res = trumpet(*constant(), rate_ml_per_h=RATE)
    with pytest.raises(MissingExtraError) as e:
        plot_trumpet(res, str(tmp_path / "x.png"))
    assert "pip install 'itb-pump[plot]'" in str(e.value)
    assert isinstance(e.value, ItbError) and e.value.extra == "plot"
    assert not (tmp_path / "x.png").exists()
