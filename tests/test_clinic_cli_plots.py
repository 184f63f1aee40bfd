"""Command-line pictures: a pump's projected course (``itb project --plot``) and a clinic's fleet
forecast (``itb clinic forecast --plot``): the file is written and the figure says what it draws."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def figures(monkeypatch):
    """Every figure the command saves, kept for a look at its artists."""
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def _legends(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_project_plot_draws_the_course_ahead(tmp_path, figures) -> None:
    from itb.cli import main
    from matplotlib.dates import num2date

    png = tmp_path / "course.png"
    scenario = ROOT / "examples" / "pump_near_eri.toml"
    args = ["project", str(scenario), "--json", "--plot", str(png), "--plot-span", "P30D"]
    assert main(args) == 0
    assert png.stat().st_size > 10_000
    (fig,) = figures
    title = fig.get_suptitle()
    assert "pump_near_eri" in title and "projected course" in title and str(scenario) not in title
    # the run ends past ERI: the alarm sounds from the start of the drawing
    assert "sounding at the start" in _legends(fig)
    lo, hi = (num2date(x).replace(tzinfo=None) for x in fig.axes[0].get_xlim())
    assert timedelta(days=29) <= hi - lo <= timedelta(days=31)
    # a bad suffix is refused before the run, naming the option
    assert main(["project", str(scenario), "--plot", str(tmp_path / "x.txt")]) == 2


def test_clinic_forecast_plot_counts_the_patients(tmp_path, figures, capsys) -> None:
    """The example clinic by hand: A02 is listed low and A05 (0.4 mL) is below the 2 mL
    threshold, so 2 low-reservoir alarms sound now; A04 (4 mAh) is past EOS and delivers
    nothing; every other pump empties within the year (the fullest, A01: 22.5 mL at
    0.2 mL/day, in 113 days): 7 empty reservoirs to come, 5 more low alarms."""
    from itb.cli import main

    png, out = tmp_path / "forecast.png", tmp_path / "forecast.json"
    csv = ROOT / "examples" / "clinic_patients.csv"
    assert main(["clinic", "forecast", str(csv), "--plot", str(png), "--out", str(out)]) == 0
    assert png.stat().st_size > 10_000
    report = json.loads(out.read_text())
    assert report["counts"]["low_reservoir"] == {"sounding": 2, "to_come": 5}
    assert report["counts"]["reservoir_empty"] == {"sounding": 0, "to_come": 7}
    rows = {r["patient"]: r for r in report["pumps"]}
    assert rows["A03"]["eri_since"] == "2026-01-10 08:00"  # listed in the CSV
    assert rows["A04"]["eos_since"] is not None and rows["A04"]["reservoir_empty"] is None
    (fig,) = figures
    legends = _legends(fig)
    for kind, c in report["counts"].items():
        label = f"{kind.replace('_', ' ')}: {c['sounding']} sounding now, {c['to_come']} to come"
        assert (label in legends) == (c["sounding"] + c["to_come"] > 0)
    assert "clinic_patients — 8 pumps" in fig.get_suptitle()
    # CSV out and the table
    assert main(["clinic", "forecast", str(csv), "--out", str(tmp_path / "f.csv")]) == 0
    header = (tmp_path / "f.csv").read_text().splitlines()[0]
    assert header.startswith("patient,now,low_reservoir,low_reservoir_since")
    printed = capsys.readouterr().out
    assert "since 2026-01-10 08:00" in printed and "already sounding at the reading" in printed
    assert main(["clinic", "forecast", str(csv), "--out", str(tmp_path / "f.txt")]) == 2


def test_clinic_calendar_plot_tells_booked_from_not_fitted(tmp_path, figures) -> None:
    """Bars of visits booked in their window and, stacked, the earliest dates of those not
    fitted: their heights count the plan's rows; the legend lists what is drawn."""
    from itb.cli import main

    png, out = tmp_path / "calendar.png", tmp_path / "plan.json"
    csv = ROOT / "examples" / "clinic_patients.csv"
    args = ["clinic", "plan", str(csv), "--capacity", "2", "--out", str(out), "--plot", str(png)]
    assert main(args) == 0
    visits = json.loads(out.read_text())["visits"]
    (fig,) = figures
    ax = fig.axes[0]
    bars = {c.get_label(): sum(p.get_height() for p in c) for c in ax.containers}
    assert bars["visits booked in their window"] == sum(v["fitted"] for v in visits)
    assert bars["overdue (empty window): booked at the earliest free slot"] == sum(
        v["overdue"] for v in visits
    )
    assert {v["patient"] for v in visits if v["overdue"]} >= {"A02", "A05"}
    later = sum(
        1 for v in visits if not v["fitted"] and not v["overdue"] and v["earliest_feasible"]
    )
    assert bars.get("not fitted: earliest date with a free slot", 0) == later
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert set(bars) <= legend and "capacity (slots)" in legend
