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
from hypothesis import given, settings
from hypothesis import strategies as st
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
        windows=(timedelta(minutes=60), timedelta(minutes=240)),
        sample_interval=timedelta(minutes=10),
        analysis_period=(24 * 3600, 48 * 3600),
        rate_ml_per_h=0.002,
    )  # a low-flow implantable
    assert np.allclose(low.max_error_pct, 0, atol=1e-9)
    assert json.loads(json.dumps(res.as_dict()))["max_error_pct"][-1] is None
    for kwargs, field in [
        ({"sample_interval": timedelta(0)}, "sample_interval"),
        ({"sample_interval": 30}, "sample_interval"),
        ({"analysis_period": (0, 99999)}, "analysis_period"),
        ({"windows": ()}, "windows"),
        ({"windows": (timedelta(seconds=6),)}, "windows[0]"),
        ({"windows": (timedelta(minutes=2), 5)}, "windows[1]"),
        ({"windows": timedelta(minutes=2)}, "windows"),
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


# ----- windows that are not a whole number of samples (docs: decisions/core.md) ----------------


def test_a_window_that_is_not_a_whole_number_of_samples_is_refused_with_the_nearest_fits() -> None:
    t, v = constant(dt=40.0)
    with pytest.raises(ValidationError) as err:
        trumpet(
            t,
            v,
            windows=(timedelta(minutes=2), timedelta(minutes=5)),
            sample_interval=timedelta(seconds=40),
            rate_ml_per_h=RATE,
        )
    # 5 min = 300 s = 7.5 intervals of 40 s; 7 → 280 s = 4.667 min, 8 → 320 s = 5.333 min
    assert err.value.field == "windows[1]"
    message = str(err.value)
    assert message.startswith("windows[1]: PT5M is not a whole number of PT40S sample intervals")
    assert "PT4M40S = 4.667 min (7 intervals)" in message
    assert "PT5M20S = 5.333 min (8 intervals)" in message
    ok = trumpet(
        t,
        v,
        windows=(timedelta(seconds=280), timedelta(seconds=320), np.timedelta64(6, "m")),
        sample_interval=np.timedelta64(40, "s"),
        rate_ml_per_h=RATE,
    )
    assert np.allclose(ok.max_error_pct, 0)


@given(
    interval_s=st.sampled_from([10.0, 20.0, 30.0, 40.0, 45.0, 60.0]),
    window_s=st.integers(1, 1800),
)
@settings(max_examples=100, deadline=None)
def test_every_window_is_used_exactly_or_refused(interval_s: float, window_s: int) -> None:
    """A window is accepted iff it is a whole number of intervals; one extra volume in one
    interval then reads 100/m % in a window of exactly m intervals (never a rounded m)."""
    t, v = constant(dt=interval_s, hours=2.0)
    k = int(4500 // interval_s)
    v = v + np.where(t >= t[k + 1], RATE * interval_s / 3600, 0.0)  # one doubled interval
    whole = window_s % interval_s == 0
    try:
        res = trumpet(
            t,
            v,
            windows=(timedelta(seconds=window_s),),
            sample_interval=timedelta(seconds=interval_s),
            rate_ml_per_h=RATE,
        )
    except ValidationError as err:
        assert not whole and err.field == "windows[0]"
        return
    assert whole
    m = window_s // interval_s
    if m <= 3600 // interval_s:
        assert res.max_error_pct[0] == pytest.approx(100 / m)


def test_the_doubled_interval_values_at_30_s_are_kept() -> None:
    t, v = constant(dt=30.0)
    v = v + np.where(t >= t[151], 0.01, 0.0)  # one interval (4500–4530 s) carries twice its volume
    res = trumpet(t, v, rate_ml_per_h=RATE)
    assert np.round(res.max_error_pct, 3).tolist() == [25.0, 10.0, 4.545, 2.632, 1.613]
    assert round(res.mean_error_pct, 3) == 0.833
