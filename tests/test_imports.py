"""Light imports (docs: guide/performance.md#import-cost): the pytest plugin, loaded in every pytest
run of every project that has itb installed, imports nothing heavy; ``import itb`` loads its
names when first used; optional parts load only when used. Each check runs in a fresh interpreter
outside the source tree, so it sees the installed package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ["numpy", "hypothesis", "pydantic", "rich", "holidays", "pandas", "matplotlib", "pyarrow"]


def loaded_after(code: str, cwd: Path) -> set[str]:
    """Top-level packages and itb submodules loaded by ``code`` (beyond a bare interpreter)."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "import json\n"
        "new = set(sys.modules) - before\n"
        "print(json.dumps(sorted({m if m.startswith('itb') else m.split('.')[0] for m in new})))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return set(json.loads(run.stdout))


def test_the_pytest_plugin_loads_nothing_heavy(tmp_path: Path) -> None:
    got = loaded_after("import itb.testing.pytest_plugin", tmp_path)
    assert not got & set(HEAVY), got
    assert {m for m in got if m.startswith("itb")} == {
        "itb",
        "itb.testing",
        "itb.testing._profile",
        "itb.testing.pytest_plugin",
    }


def test_import_itb_is_light_and_names_load_when_used(tmp_path: Path) -> None:
    assert {
        m for m in loaded_after("import itb", tmp_path) if m.startswith("itb") or m in HEAVY
    } == {"itb"}
    got = loaded_after("import itb; itb.Pump; itb.ItbError; itb.__version__", tmp_path)
    assert "numpy" in got and not got & (set(HEAVY) - {"numpy"}), got
    assert not {"itb.clinical", "itb.fleet", "itb.scenario", "itb.testing"} & got, got


def test_lazy_names_are_the_real_objects() -> None:
    import itb
    import itb.clinical
    import itb.errors
    import itb.pump

    assert itb.Pump is itb.pump.Pump and itb.MissingExtraError is itb.errors.MissingExtraError
    assert itb.clinical is sys.modules["itb.clinical"]
    assert set(itb.__all__) <= set(dir(itb))
    namespace: dict[str, object] = {}
    exec("from itb import *", namespace)
    assert {n for n in itb.__all__ if n != "__version__"} <= set(namespace)
    try:
        itb.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_a_pytest_run_of_another_project_does_not_import_itb_s_dependencies(tmp_path: Path) -> None:
    (tmp_path / "test_other.py").write_text(
        "import sys\n"
        "def test_nothing_heavy():\n"
        f"    heavy = {HEAVY!r}\n"
        "    assert [m for m in heavy if m in sys.modules] == []\n"
        "    assert 'itb.testing.pytest_plugin' in sys.modules  # the plugin is loaded\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
