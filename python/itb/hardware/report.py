"""Evidence a verification team can file: the SOUP list (itb and its dependencies' versions)
and JUnit XML of pass/fail verdicts (``itb rig accuracy --junit``).

Guide: docs: guide/metrology.md; decisions: docs: decisions/metrology.md.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from typing import Any

from .._limits import MS_PER_HOUR
from .._time import format_duration
from .._units import nl_to_ul
from ..errors import ExternalToolError, ValidationError
from .accuracy import AccuracyCurve, GravimetricRun, low_flow_curve, startup_curve
from .metrology import Measurement
from .rig import read_record_lines

__all__ = [
    "Verdict",
    "build_report",
    "find_browser",
    "junit_xml",
    "print_pdf",
    "read_balance_log",
    "render_html",
    "soup",
    "write_balance_log",
]


@dataclass(frozen=True)
class Verdict:
    """One checked requirement: its ``name``, whether it passed and what was measured."""

    name: str
    passed: bool
    detail: str


def soup() -> list[tuple[str, str]]:
    """(name, version) of Python, itb and every installed distribution itb requires (its
    required dependencies, extras left out), itb first — software of unknown provenance, in
    the IEC 62304 sense, that the results depend on."""
    out = [("python", platform.python_version())]
    try:
        out.append(("itb-pump", metadata.version("itb-pump")))
        requires = metadata.requires("itb-pump") or []
    except metadata.PackageNotFoundError:
        return out + [("itb-pump", "not installed")]
    for req in requires:
        if "extra ==" in req:
            continue
        name = re.split(r"[ <>=!~;\[(]", req, maxsplit=1)[0]
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def junit_xml(suite: str, verdicts: Sequence[Verdict]) -> str:
    """A JUnit XML document (one ``testsuite`` named ``suite``, one ``testcase`` per verdict,
    a ``failure`` for each failed one; the SOUP list as suite properties)."""
    failures = sum(1 for v in verdicts if not v.passed)
    root = ET.Element(
        "testsuites", {"name": suite, "tests": str(len(verdicts)), "failures": str(failures)}
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        {"name": suite, "tests": str(len(verdicts)), "failures": str(failures), "errors": "0"},
    )
    props = ET.SubElement(ts, "properties")
    for name, version in soup():
        ET.SubElement(props, "property", {"name": f"soup.{name}", "value": version})
    for v in verdicts:
        case = ET.SubElement(ts, "testcase", {"classname": suite, "name": v.name})
        if v.passed:
            ET.SubElement(case, "system-out").text = v.detail
        else:
            ET.SubElement(case, "failure", {"message": v.detail}).text = v.detail
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


# ----- the balance log and the HTML test report ----------------------------------------------


def write_balance_log(
    path: os.PathLike[str] | str,
    run: GravimetricRun,
    start_ms: int,
    rate_ul_per_h: float,
    evaporation: Measurement,
) -> None:
    """Write a balance log: ``#`` header lines (``start_ms`` — the pump-clock ms of elapsed 0,
    the set rate, the balance's readability and repeatability, the blank run's evaporation
    rate and its standard uncertainty) and ``elapsed_ms,mass_mg`` rows."""
    with open(path, "w", encoding="ascii") as f:
        f.write("# itb balance log\n")
        f.write(f"# start_ms={int(start_ms)}\n# rate_ul_per_h={rate_ul_per_h!r}\n")
        f.write(f"# readability_mg={run.readability_mg!r}\n")
        f.write(f"# repeatability_mg={run.repeatability_mg!r}\n")
        f.write(
            f"# evaporation_mg_per_h={evaporation.value!r},{evaporation.standard_uncertainty!r}\n"
        )
        f.write("elapsed_ms,mass_mg\n")
        for t, m in zip(run.times_ms, run.masses_mg):
            f.write(f"{int(t)},{float(m)!r}\n")


def read_balance_log(
    path: os.PathLike[str] | str, journal: os.PathLike[str] | str | None = None
) -> tuple[GravimetricRun, int, float | None]:
    """(run, start_ms, rate µL/h or ``None``) of a balance log, on the pump clock.

    A log of ``itb rig accuracy --balance-out`` is on the pump clock already (``start_ms``
    header). A log of ``itb rig balance-log`` is on the host clock (``wall_start`` header): the
    run's ``journal`` puts it on the pump clock — reading times × the run's speed from the
    journal's wall-clock anchor (the host time at which the schedule's ``start_ms`` was due),
    the evaporation rate ÷ the speed. ``ValidationError`` (field ``balance``) naming the file
    and line, or why the log cannot be placed (no journal, a run at max speed)."""
    head: dict[str, str] = {}
    times: list[timedelta] = []
    masses: list[float] = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if line.startswith("#"):
                    key, eq, value = line[1:].strip().partition("=")
                    if eq:
                        head[key.strip()] = value.strip()
                    continue
                if not line or line.startswith("elapsed_ms"):
                    continue
                try:
                    a, b, *rest = line.split(",")
                    if len(rest) > 1:
                        raise ValueError(line)
                    times.append(timedelta(milliseconds=int(a)))
                    masses.append(float(b))
                except ValueError:
                    raise ValidationError(
                        f"balance: {path} line {n}: expected elapsed_ms,mass_mg[,host_time]",
                        "balance",
                    ) from None
    except OSError as err:
        raise ValidationError(f"balance: cannot read {path}: {err.strerror}", "balance") from None
    try:
        evap_v, evap_u = (float(x) for x in head["evaporation_mg_per_h"].split(","))
        readability = float(head["readability_mg"])
        repeatability = float(head.get("repeatability_mg", "0"))
        rate = float(head["rate_ul_per_h"]) if "rate_ul_per_h" in head else None
        if "start_ms" in head:
            start_ms, speed = int(head["start_ms"]), 1.0
        else:
            start_ms, speed = _pump_clock(path, float(head["wall_start"]), journal)
        run = GravimetricRun(
            [t * speed for t in times],
            masses,
            readability,
            repeatability,
            evaporation_mg_per_h=Measurement.measured(
                evap_v / speed, evap_u / speed, "mg/h", "evaporation"
            ),
        )
        return run, start_ms, rate
    except (KeyError, ValueError) as err:
        if isinstance(err, ValidationError):
            raise
        raise ValidationError(
            f"balance: {path}: header line missing or malformed ({err})", "balance"
        ) from None


def _pump_clock(
    path: os.PathLike[str] | str, wall_start: float, journal: os.PathLike[str] | str | None
) -> tuple[int, float]:
    """(pump-clock ms of the log's first reading, the run's speed) from the run's journal."""
    if journal is None:
        raise ValidationError(
            f"balance: {path} is on the host clock (itb rig balance-log); give the run's "
            "--journal to put it on the pump clock",
            "balance",
        )
    from .journal import Journal

    with Journal(journal) as j:
        speed, anchor, start = j.get("speed"), j.get("anchor_wall"), j.get("start_ms")
    if speed is None or anchor is None or start is None:
        raise ValidationError(f"balance: {journal} holds no started run", "balance")
    if speed == "max":
        raise ValidationError(
            f"balance: the run in {journal} ran at max speed, so its pump clock has no fixed "
            "relation to the host clock of the balance log; run it with --speed (1 = real time)",
            "balance",
        )
    factor = float(speed)
    return int(start) + round((wall_start - float(anchor)) * 1000 * factor), factor


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(start: Any, curve: AccuracyCurve, limit: float) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    hours = [t.total_seconds() / 3600 for t in start.times]
    ax.errorbar(hours, start.flow_ul_per_h, yerr=start.expanded_uncertainty, fmt=".", ms=3)
    ax.axhline(start.rate_ul_per_h, color="k", lw=0.8)
    ax.set(xlabel="time (h)", ylabel="flow (µL/h)", title="Start-up curve")
    startup = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3))
    w = [x.window.total_seconds() / 3600 for x in curve.windows]
    for attr, mark in (("max_pct", "^"), ("min_pct", "v")):
        vals = [getattr(x, attr) for x in curve.windows]
        ax.errorbar(
            w,
            [v.value for v in vals],
            yerr=[v.expanded_uncertainty for v in vals],
            fmt=mark + "-",
            label=attr.replace("_pct", "").replace("max", "Ep(max)").replace("min", "Ep(min)"),
        )
    for y in (limit, -limit):
        ax.axhline(y, color="r", lw=0.8, ls="--")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="window (h)", ylabel="error (%)", title="Trumpet curve (low flow)")
    ax.legend()
    trumpet = _png(fig)
    plt.close(fig)
    return {"startup": startup, "trumpet": trumpet}


def _record_rate(rows: Sequence[tuple[int, int]], stroke_nl: int) -> float:
    """The mean rate (µL/h) of the recorded strokes: (n − 1) strokes over first to last."""
    if len(rows) < 2 or rows[-1][1] <= rows[0][1]:
        raise ValidationError(
            "balance: the log names no rate (rate_ul_per_h) and the record has fewer than two "
            "strokes to derive one from",
            "balance",
        )
    return nl_to_ul((len(rows) - 1) * stroke_nl) / ((rows[-1][1] - rows[0][1]) / MS_PER_HOUR)


def _check_readable(path: os.PathLike[str] | str, field: str) -> None:
    """``ValidationError`` (``field``) if ``path`` is not an existing file: a report reads its
    inputs and must not create one (opening a missing SQLite journal would)."""
    if not os.path.isfile(path):
        raise ValidationError(f"{field}: cannot read {path}: no such file", field)


def _sha256_file(path: os.PathLike[str] | str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _check_record_times(
    record: os.PathLike[str] | str,
    lines: Sequence[tuple[int, int, int]],
    start_ms: int,
    end_ms: int,
    balance: os.PathLike[str] | str,
    journal: os.PathLike[str] | str | None,
) -> None:
    """``ValidationError`` (``record``, or ``journal``) naming the record's file, line and
    ``time_ms`` as written: a negative or decreasing stroke time, or a stroke before the balance
    log's first reading (pump ms ``start_ms``). If no stroke at all falls within the log
    (``start_ms`` … ``start_ms + end_ms``), the journal (or the log) is another run's."""
    prev: tuple[int, int] | None = None
    for n, _, t in lines:
        if t < 0:
            raise ValidationError(
                f"record: {record} line {n}: time_ms {t} is negative (pump-clock ms)", "record"
            )
        if prev is not None and t < prev[1]:
            raise ValidationError(
                f"record: {record} line {n}: time_ms {t} is before line {prev[0]}'s {prev[1]} "
                "(stroke times never go back)",
                "record",
            )
        prev = (n, t)
    if lines and all(not start_ms <= t <= start_ms + end_ms for _, _, t in lines):
        if journal is not None:
            raise ValidationError(
                f"journal: {journal} does not belong to this record/run: by its anchor the "
                f"balance log starts at pump ms {start_ms}, and no stroke of {record} "
                f"(time_ms {lines[0][2]} to {lines[-1][2]}) falls within the log; give the "
                "journal of the run that wrote the record",
                "journal",
            )
        raise ValidationError(
            f"balance: {balance} does not belong to this record/run: it starts at pump ms "
            f"{start_ms}, and no stroke of {record} (time_ms {lines[0][2]} to {lines[-1][2]}) "
            "falls within it",
            "balance",
        )
    early = [(n, t) for n, _, t in lines if t < start_ms]
    if not early:
        return
    n, t = early[-1]
    raise ValidationError(
        f"record: {record} line {n}: time_ms {t} is before the balance log's first reading "
        f"(pump ms {start_ms}); start the balance log before the run",
        "record",
    )


def build_report(
    record: os.PathLike[str] | str,
    balance: os.PathLike[str] | str,
    *,
    journal: os.PathLike[str] | str | None = None,
    scenario: os.PathLike[str] | str | None = None,
    key_file: os.PathLike[str] | str | None = None,
    limit_pct: float = 15.0,
    windows: Sequence[timedelta] = (timedelta(hours=1), timedelta(hours=6)),
    exclude: timedelta = timedelta(hours=24),
    stroke_nl: int = 2000,
) -> dict[str, Any]:
    """Everything a test report shows, JSON-ready apart from ``verdicts`` (a list of
    :class:`Verdict`): hashes (schedule from the journal, scenario file), key fingerprints
    (SHA-256 of each key, first 16 hex digits — never the keys), the exactly-once verdict of
    record vs journal (vs the scenario's schedule), delivered vs expected with U, the low-flow
    curve and the start-up and trumpet plots (PNG, base64), and the SOUP list."""
    if journal is not None:
        _check_readable(journal, "journal")
    lines = read_record_lines(record, missing_ok=False)
    rows = [(sid, t) for _, sid, t in lines]
    run, start_ms, logged_rate = read_balance_log(balance, journal)
    _check_record_times(record, lines, start_ms, int(run.times_ms[-1]), balance, journal)
    taus = [timedelta(milliseconds=t - start_ms) for _, t in rows]
    rate = logged_rate if logged_rate is not None else _record_rate(rows, stroke_nl)
    t_end = timedelta(milliseconds=int(run.times_ms[-1]))
    n_in = sum(1 for t in taus if timedelta(0) < t <= t_end)
    delivered = run.volume(0, len(run.masses_mg) - 1)
    expected = nl_to_ul(n_in * stroke_nl)
    curve = low_flow_curve(run, rate, nl_to_ul(stroke_nl), taus, windows, exclude)
    start = startup_curve(run, rate)
    verdicts: list[Verdict] = []
    out: dict[str, Any] = {"hashes": {}, "keys": {}, "limit_pct": limit_pct}
    if scenario is not None:
        out["hashes"]["scenario file sha256"] = _sha256_file(scenario)
    if key_file is not None:
        from .protocol import load_keys

        for role, key in load_keys(key_file).items():
            out["keys"][role.name.lower()] = hashlib.sha256(key).hexdigest()[:16]
    if journal is not None:
        from .journal import Journal
        from .verify import verify

        with Journal(journal) as j:
            out["hashes"]["schedule sha256 (journal)"] = j.get("schedule_sha256") or "—"
        plan = None
        if scenario is not None:
            from ..scenario import load
            from .plan import plan_scenario

            plan = plan_scenario(load(os.fspath(scenario)))
            out["hashes"]["schedule sha256 (scenario)"] = plan.fingerprint()
        rep = verify(journal, record, plan)
        out["exactly_once"] = rep.as_dict()
        verdicts.append(
            Verdict("exactly once", rep.ok, "; ".join(rep.problems) or f"{rep.strokes} strokes")
        )
    diff = (
        Measurement.derived(
            100 * (delivered.value / expected - 1), "%", [(delivered, 100 / expected)]
        )
        if expected
        else None
    )
    out["delivered"] = {
        "delivered_ul": delivered.value,
        "U_ul": delivered.expanded_uncertainty,
        "expected_ul": expected,
        "strokes": n_in,
    }
    if diff is not None:
        verdicts.append(
            Verdict(
                "delivered vs expected",
                abs(diff.value) + diff.expanded_uncertainty <= limit_pct,
                f"{diff.value:+.4f} ± {diff.expanded_uncertainty:.4f} % (k = 2)",
            )
        )

    def v(name: str, e: Measurement) -> Verdict:
        ok = abs(e.value) + e.expanded_uncertainty <= limit_pct
        return Verdict(
            name,
            ok,
            f"{e.value:+.4f} ± {e.expanded_uncertainty:.4f} % (k = 2), limit ±{limit_pct:g} %",
        )

    verdicts.append(v("mean error A", curve.mean_pct))
    for w in curve.windows:
        span = format_duration(w.window)
        verdicts += [v(f"Ep(max) {span}", w.max_pct), v(f"Ep(min) {span}", w.min_pct)]
    out["low_flow"] = curve.as_dict()
    out["plots"] = _plots(start, curve, limit_pct)
    out["soup"] = soup()
    out["verdicts"] = verdicts
    out["passed"] = all(x.passed for x in verdicts)
    return out


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>itb rig test report</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}
td,th{border:1px solid #999;padding:2px 8px;text-align:left}.pass{color:#070}.fail{color:#b00}
</style></head><body>
<h1>itb rig test report</h1>
<p>Engineering tool — not a medical device.</p>
<h2>Verdict</h2>
<p id="verdict" class="{{ 'pass' if r.passed else 'fail' }}">{{ 'PASS' if r.passed else 'FAIL' }}</p>
<table><tr><th>requirement</th><th>result</th><th>measured</th></tr>
{% for v in r.verdicts %}<tr><td>{{ v.name }}</td>
<td class="{{ 'pass' if v.passed else 'fail' }}">{{ 'pass' if v.passed else 'FAIL' }}</td>
<td>{{ v.detail }}</td></tr>
{% endfor %}</table>
<h2>Identification</h2><table>
{% for k, h in r.hashes.items() %}<tr><td>{{ k }}</td><td><code>{{ h }}</code></td></tr>{% endfor %}
{% for k, h in r["keys"].items() %}<tr><td>{{ k }} key fingerprint (key file given, not checked against the run)</td><td><code>{{ h }}</code></td></tr>{% endfor %}
</table>
<h2>Delivered vs expected</h2>
<p>{{ "%.3f"|format(r.delivered.delivered_ul) }} ± {{ "%.3f"|format(r.delivered.U_ul) }} µL
(k = 2) delivered; {{ "%.3f"|format(r.delivered.expected_ul) }} µL expected
({{ r.delivered.strokes }} strokes).</p>
<h2>Start-up curve</h2>
<img id="startup" alt="start-up curve" src="data:image/png;base64,{{ r.plots.startup }}">
<h2>Trumpet curve (low flow)</h2>
<img id="trumpet" alt="trumpet curve" src="data:image/png;base64,{{ r.plots.trumpet }}">
<h2>Environment (SOUP)</h2><table>
{% for name, version in r.soup %}<tr><td>{{ name }}</td><td>{{ version }}</td></tr>{% endfor %}
</table></body></html>
"""


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (Jinja2, extra ``report``)."""
    from .._extras import require

    jinja2 = require("jinja2", "report", "HTML test reports (Jinja2)")
    env = jinja2.Environment(autoescape=True)
    return str(env.from_string(_TEMPLATE).render(r=report))


# ----- PDF from the same HTML (a headless Chromium) ----------------------------------------------

#: how long the browser may take to print a report
PDF_TIMEOUT = timedelta(seconds=120)

#: the browsers tried, in order, when ``ITB_CHROMIUM`` is not set
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str:
    """The headless browser that prints PDFs: ``ITB_CHROMIUM`` (a path or a name on ``PATH``)
    if set, else the first of :data:`BROWSERS` found on ``PATH``. ``ExternalToolError`` (field
    ``pdf``) naming the package to install if there is none."""
    import shutil

    wanted = os.environ.get("ITB_CHROMIUM")
    for name in (wanted,) if wanted else BROWSERS:
        found = shutil.which(name)
        if found is not None:
            return found
    where = (
        f"ITB_CHROMIUM={wanted!r} is not an executable"
        if wanted
        else (f"none of {', '.join(BROWSERS)} is on PATH")
    )
    raise ExternalToolError(
        f"pdf: a PDF report is printed by a headless Chromium, and {where}: install it "
        "(Debian/Ubuntu: apt-get install chromium) or set ITB_CHROMIUM to the browser's path",
        "pdf",
    )


def print_pdf(
    html_path: os.PathLike[str] | str,
    pdf_path: os.PathLike[str] | str,
    *,
    browser: str | None = None,
) -> None:
    """Print the HTML page ``html_path`` to ``pdf_path`` with a headless Chromium
    (``--print-to-pdf``): the PDF is the page as a browser renders it. ``browser`` defaults to
    :func:`find_browser`. ``ExternalToolError`` (field ``pdf``) if there is no browser, it fails
    or takes longer than :data:`PDF_TIMEOUT`, or what it wrote is not a PDF."""
    import subprocess
    import tempfile
    from pathlib import Path

    seconds = PDF_TIMEOUT.total_seconds()
    exe = browser if browser is not None else find_browser()
    page = Path(html_path).resolve().as_uri()
    out = Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory(prefix="itb-pdf-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={out}",
            page,
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=seconds, check=False)
        except subprocess.TimeoutExpired:
            raise ExternalToolError(
                f"pdf: {exe} did not print the report within {seconds:g} s", "pdf"
            ) from None
        except OSError as err:
            raise ExternalToolError(f"pdf: cannot run {exe}: {err.strerror}", "pdf") from None
    try:
        head = out.read_bytes()[:5]
    except OSError:
        head = b""
    if done.returncode != 0 or head != b"%PDF-":
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise ExternalToolError(
            f"pdf: {exe} exited {done.returncode} without writing a PDF to {out} ({tail[0][:200]})",
            "pdf",
        )
