"""One version source: the Cargo workspace version is the distribution's version (maturin reads it)
and ``itb.__version__`` (exported by the extension); docs: releasing.md."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import itb

ROOT = Path(__file__).resolve().parents[1]


def cargo_version() -> str:
    with open(ROOT / "Cargo.toml", "rb") as f:
        return str(tomllib.load(f)["workspace"]["package"]["version"])


def test_version_has_one_source() -> None:
    assert itb.__version__ == cargo_version()
    assert importlib.metadata.version("itb-pump") == itb.__version__


def test_pyproject_takes_the_version_from_cargo() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert project["name"] == "itb-pump"
    for crate in ("core", "python"):
        with open(ROOT / "rust" / crate / "Cargo.toml", "rb") as f:
            assert tomllib.load(f)["package"]["version"] == {"workspace": True}


def test_changelog_names_the_version_or_unreleased() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text or f"## [{itb.__version__}]" in text
