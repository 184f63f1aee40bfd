"""The README stays true: .ci/run runs its test command and the pump module's doctests pass (its
Python examples run in tests/test_docs.py with every docs page)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command.strip() in ci.splitlines()


def test_docstring_examples_run() -> None:
    import doctest

    import itb.pump

    result = doctest.testmod(itb.pump)
    assert result.attempted > 0 and result.failed == 0
