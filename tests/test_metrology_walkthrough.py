"""The metrology guide's three-terminal walkthrough runs as written: its scenario (the ```toml
block) and its ```sh block, with the emulators started in the background, their announced ports
put where the page says /dev/pts/A and /dev/pts/B, and the report's verdict checked. The PDF step
runs when a Chromium is installed (else its option is dropped)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "guide" / "metrology.md"

pytest.importorskip("serial")
pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")


def _section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("## A rig run in three terminals")
    return text[start : text.index("\n## ", start + 3)]


def _commands(block: str) -> list[str]:
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _has_browser() -> bool:
    from itb.errors import ExternalToolError
    from itb.hardware.report import find_browser

    try:
        find_browser()
    except ExternalToolError:
        return False
    return True


def _start(argv: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    return proc, line.split()[1]


def test_three_terminal_walkthrough_runs_as_written(tmp_path: Path) -> None:
    section = _section()
    (toml,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    (sh,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    (tmp_path / "scenario.toml").write_text(toml, encoding="utf-8")
    itb = [sys.executable, "-m", "itb"]
    ports: dict[str, str] = {}
    servers: list[subprocess.Popen[str]] = []
    background: list[subprocess.Popen[bytes]] = []
    browser = _has_browser()
    try:
        for command in _commands(sh):
            words = shlex.split(command.rstrip("&"))
            if words[0] == "xdg-open":
                continue  # the reader's browser; the opt-in browser test renders the page
            if words == ["wait"]:
                for proc in background:
                    assert proc.wait(timeout=120) == 0
                continue
            assert words[0] == "itb", command
            words = [ports.get(w, w) for w in words[1:]]
            if not browser and "--pdf" in words:
                i = words.index("--pdf")
                del words[i : i + 2]
            if words[:2] in (["rig", "emulate"], ["rig", "balance-emulate"]):
                proc, port = _start([*itb, *words], tmp_path)
                servers.append(proc)
                ports["/dev/pts/A" if words[1] == "emulate" else "/dev/pts/B"] = port
            elif command.endswith("&"):
                background.append(subprocess.Popen([*itb, *words], cwd=tmp_path))
            else:
                done = subprocess.run(
                    [*itb, *words], cwd=tmp_path, capture_output=True, text=True, timeout=180
                )
                assert done.returncode == 0, (command, done.stdout, done.stderr)
    finally:
        for proc in [*servers, *background]:
            proc.terminate()
            proc.wait(timeout=10)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<p id="verdict" class="pass">PASS</p>' in html
    # what the page says the report shows: every stroke exactly once, delivered = expected
    strokes = len((tmp_path / "strokes.csv").read_text().split())
    assert strokes == 83  # 166.7 µL/h of 2 µL strokes over 1 h (the first at 43.2 s)
    assert f"{strokes} strokes" in html
    m = re.search(r"([0-9.]+) ± ([0-9.]+) µL\s*\(k = 2\) delivered; ([0-9.]+) µL expected", html)
    assert m is not None
    delivered, expected = float(m.group(1)), float(m.group(3))
    assert abs(delivered - expected) <= 2.0 + float(m.group(2))  # within one stroke (timing)
    hashes = dict(re.findall(r"<tr><td>([^<]*sha256[^<]*)</td><td><code>([^<]*)</code>", html))
    assert hashes["schedule sha256 (journal)"] == hashes["schedule sha256 (scenario)"]
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    if browser:
        assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")
