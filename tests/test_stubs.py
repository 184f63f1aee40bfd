"""The shipped type stubs match the compiled extension (mypy's stubtest), and the typed
package type-checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_core_stub_matches_extension(tmp_path: Path) -> None:
    """Against the installed package (run outside the source tree, so a wheel install is checked
    as installed, not the checkout's python/ folder)."""
    pytest.importorskip("mypy")
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "itb._core"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
