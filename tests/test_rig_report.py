"""``itb rig report``: the HTML test report and JUnit XML of an emulated accuracy run; an
opt-in check in headless chromium (ITB_BROWSER_TESTS=1)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from itb.cli import main

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    args = ["rig", "accuracy", "--duration", "P2D", "--noise-mg", "0.005"]
    out = ["--balance-out", str(d / "b.csv"), "--record-out", str(d / "r.csv")]
    assert main([*args, *out, "--journal", str(d / "j.db")]) == 0
    assert main(["rig", "keygen", str(d / "keys.toml")]) == 0
    return d


def _report(d: Path, *extra: str) -> tuple[int, str]:
    rc = main(
        [
            "rig",
            "report",
            "--record",
            str(d / "r.csv"),
            "--balance",
            str(d / "b.csv"),
            "--key-file",
            str(d / "keys.toml"),
            "-o",
            str(d / "report.html"),
            "--junit",
            str(d / "report.xml"),
            *extra,
        ]
    )
    return rc, (d / "report.html").read_text(encoding="utf-8")


def test_report_verdict_plots_keys_and_soup(run_files: Path) -> None:
    rc, html = _report(run_files, "--journal", str(run_files / "j.db"))
    assert rc == 0
    assert re.search(r'<p id="verdict" class="pass">PASS</p>', html)
    for plot in ("startup", "trumpet"):
        m = re.search(rf'id="{plot}" alt="[^"]*" src="data:image/png;base64,([^"]+)"', html)
        assert m is not None and base64.b64decode(m.group(1)).startswith(PNG)
    # delivered vs expected: 250 strokes of 2 µL in the two days
    assert "500.000 µL expected" in html and "(250 strokes)" in html
    # key fingerprints, never the keys
    keys = (run_files / "keys.toml").read_text()
    for hexkey in re.findall(r"[0-9a-f]{64}", keys):
        assert hexkey not in html
        assert __import__("hashlib").sha256(bytes.fromhex(hexkey)).hexdigest()[:16] in html
    assert "itb-pump" in html and "numpy" in html
    suite = ET.parse(run_files / "report.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names[:2] == ["exactly once", "delivered vs expected"] and "Ep(max) PT57M36S" in names
    assert "schedule sha256 (journal)" in html


def test_report_fails_a_tight_limit(run_files: Path) -> None:
    rc, html = _report(run_files, "--limit", "0.01%")
    assert rc == 1 and '<p id="verdict" class="fail">FAIL</p>' in html
    assert "exactly once" not in html  # no journal given: no such verdict
    suite = ET.parse(run_files / "report.xml").getroot().find("testsuite")
    assert suite is not None and int(suite.get("failures") or 0) > 0


@pytest.mark.skipif(os.environ.get("ITB_BROWSER_TESTS") != "1", reason="ITB_BROWSER_TESTS=1")
def test_report_in_headless_chromium(run_files: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium")
    _report(run_files)
    page = (run_files / "report.html").as_uri()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu"]
    dom = subprocess.run(
        [*common, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert '<p id="verdict" class="pass">PASS</p>' in dom
    # the images decoded: the DOM keeps them, and the screenshot is not blank
    shot = run_files / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1000,1400", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000
    # --pdf: the same page printed by the browser
    pdf = run_files / "report.pdf"
    rc, _ = _report(run_files, "--pdf", str(pdf))
    data = pdf.read_bytes()
    assert rc == 0 and data.startswith(b"%PDF-") and b"/Type /Page" in data


SCENARIO = """[pump]
model = "SYNCHROMED_II_40"
start = 2026-01-05T08:00:00
reservoir_ml = 40.0
concentration_ug_per_ml = 2000
program = {{ kind = "continuous", ug_per_day = {ug_per_day} }}

[run]
until = 2026-01-07T08:00:00
"""


def _hashes(html: str) -> dict[str, str]:
    return dict(re.findall(r"<tr><td>([^<]*sha256[^<]*)</td><td><code>([^<]*)</code>", html))


def test_report_scenario_hashes(run_files: Path) -> None:
    # the scenario of the accuracy run: 500 µg/day at 2000 µg/mL for two days from 08:00
    scenario = run_files / "same.toml"
    scenario.write_text(SCENARIO.format(ug_per_day=500.0), encoding="utf-8")
    rc, html = _report(run_files, "--journal", str(run_files / "j.db"), "--scenario", str(scenario))
    assert rc == 0
    hashes = _hashes(html)
    # the file's hash, computed here from its bytes
    assert hashes["scenario file sha256"] == hashlib.sha256(scenario.read_bytes()).hexdigest()
    # the schedule's: SHA-256 of the executed strokes' times (int64 big-endian), from the record
    times = [int(row.split(",")[1]) for row in (run_files / "r.csv").read_text().split()]
    assert len(times) == 250
    schedule = hashlib.sha256(b"".join(t.to_bytes(8, "big", signed=True) for t in times))
    assert hashes["schedule sha256 (scenario)"] == schedule.hexdigest()
    assert hashes["schedule sha256 (journal)"] == schedule.hexdigest()
    suite = ET.parse(run_files / "report.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"


def test_report_another_scenario_fails_exactly_once(run_files: Path) -> None:
    other = run_files / "other.toml"
    other.write_text(SCENARIO.format(ug_per_day=600.0), encoding="utf-8")
    rc, html = _report(run_files, "--journal", str(run_files / "j.db"), "--scenario", str(other))
    assert rc == 1 and '<p id="verdict" class="fail">FAIL</p>' in html
    hashes = _hashes(html)
    assert hashes["scenario file sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert hashes["schedule sha256 (scenario)"] != hashes["schedule sha256 (journal)"]
    suite = ET.parse(run_files / "report.xml").getroot().find("testsuite")
    assert suite is not None
    failed = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed == ["exactly once"]


def _fake_browser(tmp_path: Path, body: str) -> Path:
    """An executable standing in for chromium: it logs its arguments, then runs ``body``."""
    exe = tmp_path / "fake-chromium"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        f"pathlib.Path({str(tmp_path / 'argv.txt')!r}).write_text('\\n'.join(sys.argv[1:]))\n"
        "out = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--print-to-pdf='))\n"
        + body,
        encoding="utf-8",
    )
    exe.chmod(0o755)
    return exe


def test_pdf_without_a_browser_names_what_to_install(
    run_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ITB_CHROMIUM", str(tmp_path / "no-such-browser"))
    html = tmp_path / "r.html"
    argv = ["rig", "report", "--record", str(run_files / "r.csv"), "--balance"]
    argv += [str(run_files / "b.csv"), "-o", str(html), "--pdf", str(tmp_path / "r.pdf")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "itb: error: pdf:" in err and "apt-get install chromium" in err
    assert "ITB_CHROMIUM" in err and "internal error" not in err
    assert not html.exists()  # refused before any work
    from itb.errors import ExternalToolError
    from itb.hardware.report import find_browser

    with pytest.raises(ExternalToolError) as info:
        find_browser()
    assert info.value.field == "pdf"


def test_pdf_prints_the_same_html_page(
    run_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = _fake_browser(tmp_path, "pathlib.Path(out).write_bytes(b'%PDF-1.4 fake')\n")
    monkeypatch.setenv("ITB_CHROMIUM", str(exe))
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    argv = ["rig", "report", "--record", str(run_files / "r.csv"), "--balance"]
    assert main([*argv, str(run_files / "b.csv"), "-o", str(html), "--pdf", str(pdf)]) == 0
    assert pdf.read_bytes() == b"%PDF-1.4 fake"
    args = (tmp_path / "argv.txt").read_text().splitlines()
    assert "--headless" in args and args[-1] == html.resolve().as_uri()
    assert f"--print-to-pdf={pdf.resolve()}" in args


def test_pdf_a_failing_browser_is_a_typed_error(
    run_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exe = _fake_browser(tmp_path, "sys.stderr.write('no display\\n'); sys.exit(3)\n")
    monkeypatch.setenv("ITB_CHROMIUM", str(exe))
    argv = ["rig", "report", "--record", str(run_files / "r.csv"), "--balance"]
    argv += [str(run_files / "b.csv"), "-o", str(tmp_path / "r.html"), "--pdf"]
    assert main([*argv, str(tmp_path / "r.pdf")]) == 1
    err = capsys.readouterr().err
    assert "exited 3 without writing a PDF" in err and "no display" in err
