"""Plots: a non-empty PNG with labelled axes, the CLI command, and a clear error without matplotlib."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from itb import cli
from itb import scenario as sc
from itb.errors import MissingExtraError

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
    tip = next(line for line in dose.get_lines() if line.get_label().startswith("at catheter tip"))
    y = [v for v in tip.get_ydata() if v == v]  # NaN-free
    # a quarter dose while the old 500 µg/mL drug leaves the path at the new 0.2 mL/day: ≈ 100 µg/day
    assert min(y) == pytest.approx(100, abs=10) and max(y) == pytest.approx(400, abs=30)
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
