"""Plots: a non-empty PNG with labelled axes, the CLI command, and a clear error without matplotlib."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from itb import cli
from itb import scenario as sc
from itb.errors import MissingExtraError, ValidationError

pytest.importorskip("matplotlib")
plots = pytest.importorskip("itb.plots")

ROOT = Path(__file__).resolve().parents[1]
NO_BRIDGE = ROOT / "examples" / "concentration_change_no_bridge.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_result_writes_a_png(tmp_path: Path) -> None:
    result = sc.load(NO_BRIDGE).run()
    path = plots.plot_result(result, tmp_path / "out.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000


def test_figure_panels_have_units_and_show_the_dip() -> None:
    result = sc.load(NO_BRIDGE).run()
    fig = plots.figure(result, every=timedelta(minutes=30))
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == [
        "reservoir (mL)",
        "volume rate (mL/day)",
        "dose rate (µg/day)",
        "battery (mAh)",
        "events",
    ]
    dose = fig.axes[2]
    tip = next(p for p in dose.patches if p.get_label().startswith("at catheter tip"))
    y = [v for v in tip.get_data().values if v == v]  # NaN-free
    # a quarter dose while the old 500 µg/mL drug leaves the path at the new 0.2 mL/day: ≈ 100 µg/day
    # (a window holds whole strokes: one stroke more in the last, 2-hour piece reads 432)
    assert min(y) == pytest.approx(100, abs=10) and max(y) == pytest.approx(400, abs=35)
    rows = [t.get_text() for t in fig.axes[4].get_yticklabels()]
    assert rows == ["refilled", "concentration changed", "drug at tip"]


def test_default_every() -> None:
    assert plots.default_every(timedelta(days=90)) == timedelta(minutes=64)
    assert plots.default_every(timedelta(minutes=5)) == timedelta(minutes=1)


def test_cli_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plot.png"
    code = cli.main(
        ["plot", str(ROOT / "examples" / "pump_near_eri.toml"), "-o", str(out), "--every", "PT6H"]
    )
    assert (
        code == 0 and out.read_bytes().startswith(PNG_MAGIC) and str(out) in capsys.readouterr().err
    )


def test_missing_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = sc.load(NO_BRIDGE).run()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'itb-pump\[plot\]'"):
        plots.figure(result)
    code = cli.main(["plot", str(NO_BRIDGE), "-o", str(tmp_path / "x.png")])
    assert code == 1 and "itb-pump[plot]" in capsys.readouterr().err


# ----- readable at any length (docs: guide/plots.md) ------------------------------------------

EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def _drawn_labels(ax) -> list[str]:
    artists = [*ax.get_lines(), *ax.patches, *ax.collections]
    return [a.get_label() for a in artists if not a.get_label().startswith("_")]


def _legend_labels(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_reads(path: Path) -> None:
    result = sc.load(path).run()
    fig = plots.figure(result)
    span = result.until - result.start
    mode = plots.resolution(span)
    axes = fig.axes
    assert len(axes) == (6 if mode == "daily" else 5)
    title = fig.get_suptitle()
    assert title.startswith(path.stem + " — ") and str(path.parent) not in title
    res, rate, dose, batt, line = axes[:5]
    for ax in (res, rate, dose, batt):
        assert sorted(_legend_labels(ax)) == sorted(
            _drawn_labels(ax)
        )  # legends list exactly what is drawn
        lo, hi = ax.get_ylim()
        for artist in ax.get_lines():
            y = [float(v) for v in artist.get_ydata() if v == v]
            assert all(lo <= v <= hi for v in y), (ax.get_ylabel(), artist.get_label())
        for patch in ax.patches:
            y = [float(v) for v in patch.get_data().values if v == v]
            assert all(lo <= v <= hi for v in y), (ax.get_ylabel(), patch.get_label())
    # the battery axis fits the charge drawn (not 0–capacity for a run that uses 1 mAh)
    charge = next(a for a in batt.get_lines() if a.get_label() == "remaining charge").get_ydata()
    lo, hi = batt.get_ylim()
    assert hi - lo <= (max(charge) - min(charge)) * 1.25 + 0.1
    # no odd window labels ("mean over each 8.2 h"): windows divide a day
    labels = " ".join(_legend_labels(dose))
    assert "mean over each" not in labels
    assert any(
        w in labels for w in ("hourly mean", "-hour mean", "-minute mean", "per calendar day")
    )
    # the timeline legend lists the marker kinds drawn, | markers included
    drawn = {(c.get_gid().split(":")[1], c.get_facecolor()[0].tobytes()) for c in line.collections}
    assert len(_legend_labels(line)) == len(drawn)
    lo, hi = line.get_xlim()
    for c in line.collections:
        assert c.get_clip_on() is False  # a marker at the first instant is not cut in half
        xs = [x for x, _ in c.get_offsets()]
        assert all(lo < x < hi for x in xs)  # … and clears the frame
    # conservation: the per-window doses integrate to the drug that left the tip
    tip = next(p for p in dose.patches if p.get_label().startswith("at catheter tip"))
    values, edges = tip.get_data().values, tip.get_data().edges
    from matplotlib.dates import num2date

    days = [(num2date(b) - num2date(a)).total_seconds() / 86400 for a, b in zip(edges, edges[1:])]
    total = sum(v * d for v, d in zip(values, days))
    assert total == pytest.approx(result.pump.delivered_ug, rel=1e-6)


def test_resolution_thresholds() -> None:
    assert plots.resolution(timedelta(days=3)) == "steps"
    assert plots.resolution(timedelta(days=3, minutes=1)) == "windows"
    assert plots.resolution(timedelta(days=21)) == "windows"
    assert plots.resolution(timedelta(days=21, minutes=1)) == "daily"
    for w in plots.WINDOWS:
        assert timedelta(days=1) % w == timedelta(0)
    for days in (1, 2, 4, 7, 10, 15, 20):
        window = plots._window(timedelta(days=days), plots._sampling(timedelta(days=days)), None)
        assert window in plots.WINDOWS and plots._label(window) in {
            "15-minute mean",
            "30-minute mean",
            "hourly mean",
            "2-hour mean",
            "3-hour mean",
            "4-hour mean",
            "6-hour mean",
            "8-hour mean",
            "12-hour mean",
            "per calendar day",
        }


def test_long_flex_run_has_a_typical_day() -> None:
    result = sc.load(ROOT / "examples" / "child_cp_flex_500.toml").run()
    fig = plots.figure(result)
    typical = fig.axes[5]
    assert typical.get_xlim() == (0, 24)
    prescribed = next(p for p in typical.patches if p.get_label().startswith("prescribed"))
    values = prescribed.get_data().values
    # the day programs: 150 µg/day 00:00–07:00 and 20:00–24:00; 250 µg/day 07:00–20:00 on
    # weekdays, more at weekends once the week program starts (examples/child_cp_flex_500.toml)
    assert list(values[:7]) == pytest.approx([150.0] * 7)
    assert list(values[20:]) == pytest.approx([150.0] * 4)
    assert (
        list(values[7:20]) == pytest.approx([values[8]] * 13, rel=1e-3)
        and 250.0 < values[7] < 300.0
    )


def test_pump_history_at_eri_shows_the_alarm_sounding() -> None:
    import itb

    since = datetime(2026, 3, 1, 8, 0)
    pump = itb.Pump.from_reading(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 3, 2, 9, 0),
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(400.0),
        battery_mah=25.0,
        active_alarms={"eri": since},
    )
    before = pump.now, pump.reservoir_nl
    fig = plots.pump_history_figure(pump, datetime(2026, 4, 30))
    assert (pump.now, pump.reservoir_nl) == before  # drawn on a copy
    line = fig.axes[4]
    assert "eri" in [t.get_text() for t in line.get_yticklabels()]
    assert "sounding at the start" in _legend_labels(line)
    batt = fig.axes[3]
    lo, hi = batt.get_ylim()
    assert lo <= 25.0 <= hi and hi < 30
    assert fig.get_suptitle().startswith("pump history — ")
    with pytest.raises(ValidationError, match="until"):
        plots.pump_history_figure(pump, datetime(2026, 3, 1))


def test_fleet_forecast_figure_counts() -> None:
    import numpy as np
    from itb.fleet import Fleet

    rng = np.random.default_rng(3)
    n = 40
    cols = {
        "model": np.zeros(n, dtype=np.int64),
        "now": np.full(n, np.datetime64("2026-01-05T08:00", "ms")),
        "reservoir_ml": np.round(rng.uniform(1.0, 20.0, n), 3),
        "concentration_ug_per_ml": rng.choice([500, 1000, 2000], n),
        "ug_per_day": np.round(rng.uniform(100.0, 900.0, n), 1),
    }
    forecast = Fleet(cols).forecast(timedelta(days=365), assume_refills=False)
    fig = plots.fleet_forecast_figure(forecast, now=datetime(2026, 1, 5, 8))
    ax = fig.axes[0]
    for kind in ("low_reservoir", "reservoir_empty", "eri", "eos"):
        future = int((~np.isnat(forecast[kind])).sum())
        now = int((~np.isnat(forecast[f"{kind}_since"])).sum())
        label = f"{kind.replace('_', ' ')}: {now} sounding now, {future} to come"
        assert (label in _legend_labels(ax)) == (future + now > 0)
    assert sorted(_legend_labels(ax)) == sorted(_drawn_labels(ax)) and _legend_labels(ax)
    assert "40 pumps" in fig.get_suptitle()


def test_fleet_forecast_lines_that_coincide_stay_visible() -> None:
    # ERI and EOS counting the same pumps at the same times: the later-drawn line must be the
    # thinner, broken one, so the wide solid one under it shows between its dashes
    import numpy as np

    at = np.array(["2026-02-01T08:00", "2026-03-01T08:00"], dtype="datetime64[ms]")
    nat = np.array(["NaT", "NaT"], dtype="datetime64[ms]")
    forecast = {"eri": at, "eos": at, "eri_since": nat, "eos_since": nat}
    ax = plots.fleet_forecast_figure(forecast, now=datetime(2026, 1, 5, 8)).axes[0]
    lines = {ln.get_label().split(":")[0]: (i, ln) for i, ln in enumerate(ax.get_lines())}
    (i_eri, eri), (i_eos, eos) = lines["eri"], lines["eos"]
    assert list(eri.get_ydata()) == list(eos.get_ydata())  # they do coincide
    assert i_eos > i_eri and eos.get_linewidth() < eri.get_linewidth()
    assert eri.get_linestyle() == "-" and eos.get_linestyle() != "-"
