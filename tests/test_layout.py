"""The package layout: old import paths still work, and the module import graph has no cycle
(lazy, function-level imports included), checked here with grimp's graph as an oracle
independent of the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_old_public_paths_are_the_new_modules() -> None:
    pytest.importorskip("hypothesis")
    import itb.strategies
    import itb.testing.strategies

    assert itb.strategies is itb.testing.strategies
    from itb import strategies as its

    assert its.pumps is itb.testing.strategies.pumps


def test_scenario_package_keeps_its_names() -> None:
    import importlib

    import itb.scenario

    homes = ["run", "load", "issues", "loop", "spec", "write", "bundled"]
    modules = [importlib.import_module(f"itb.scenario.{m}") for m in homes]
    for name in itb.scenario.__all__:
        found = [m for m in modules if getattr(m, name, None) is getattr(itb.scenario, name)]
        assert found, name


def test_entry_points_resolve() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    targets = list(meta["scripts"].values())
    targets += [v for group in meta["entry-points"].values() for v in group.values()]
    for target in targets:
        module, _, attr = target.partition(":")
        obj = importlib.import_module(module)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        assert obj is not None, target
    import itb.cli

    assert callable(itb.cli.main) and itb.cli.main.__module__ == "itb.cli.app"


def _graph() -> dict[str, set[str]]:
    """itb's module graph without the edges grimp invents for ``from . import _core`` (the
    compiled core has no source, so grimp files the import under the root package)."""
    grimp = pytest.importorskip("grimp")
    g = grimp.build_graph("itb")
    edges: dict[str, set[str]] = {}
    for importer in g.modules:
        out = set()
        for imported in g.find_modules_directly_imported_by(importer):
            details = g.get_import_details(importer=importer, imported=imported)
            if (
                imported == "itb"
                and details
                and all(d["line_contents"].strip() == "from . import _core" for d in details)
            ):
                continue
            out.add(imported)
        edges[importer] = out
    return edges


def test_no_import_cycle() -> None:
    edges = _graph()
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    cycles.append(sorted(component))
    assert cycles == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a graph with a planted cycle is reported."""
    import sys

    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: planted)
    with pytest.raises(AssertionError):
        test_no_import_cycle()


def test_core_limits_are_not_re_declared() -> None:
    """The core's limits come from ``itb._core.LIMITS`` (through ``itb._limits``); no module of
    the package writes their numbers again."""
    import re

    from itb import _limits

    literals = {
        "86_400_000": "MS_PER_DAY",
        "86400000": "MS_PER_DAY",
        "604_800_000": "MS_PER_WEEK",
        "253_402_300_799_999": "MAX_TIME_MS",
        "62_135_596_800_000": "MIN_TIME_MS",
        "3_600_000_000_000": "PC_PER_MAH",
        "10_000_000_000_000": "MAX_DOSE_NG_PER_DAY",
    }
    found = []
    for path in sorted((ROOT / "python" / "itb").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for literal, name in literals.items():
                if re.search(rf"(?<![\d_]){literal}(?![\d_])", code):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {literal} (use {name})")
    assert found == []
    # hand-written values (the units page), not read from the table
    assert (_limits.MS_PER_DAY, _limits.MAX_CONCENTRATION_UG_PER_ML) == (86_400_000, 100_000)
    assert (_limits.MAX_STEPS_PER_DAY, _limits.MAX_PATIENT_BOLUSES_PER_DAY) == (13, 24)
    assert _limits.MAX_CATHETER_NL == 10 * 1_000_000 and _limits.MS_PER_HOUR == 3_600_000


def test_exact_units_convert_only_through_units() -> None:
    """A core amount in nL, ng, pg or pC becomes mL, µL, µg or mAh through ``itb._units`` (the
    one place of the factors); no module divides one by a factor of its own, and the
    concentration limit is the core's (``itb._limits``), not a literal."""
    import re

    divide = re.compile(
        r"_(nl|ng|pg|pc)(?:_per_\w+)?\W{0,3}\s*(?<!/)/(?!/)\s*"
        r"(1e[0-9]+|1_?000(?:_?000)*(?:\.0)?|3\.6e12|NL_PER_ML|PC_PER_MAH)\b"
    )
    limit = re.compile(r"(?<![\d_.])100_?000(?![\d_])")
    found = []
    for path in sorted((ROOT / "python" / "itb").rglob("*.py")):
        if path.name in ("_units.py", "_limits.py"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if divide.search(code) or "3.6e12" in code:
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
            if (
                "concentration" in code.lower()
                and limit.search(code)
                and not re.search("[\x22`]", code)
            ):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()} (use _limits)")
    assert found == []
    # the factors, by hand
    from itb import _units

    assert _units.nl_to_ml(2_500_000) == 2.5 and _units.nl_to_ul(2_500) == 2.5
    assert _units.ng_to_ug(2_500) == 2.5 and _units.pg_to_ug(2_500_000) == 2.5
    assert _units.pc_to_mah(9_000_000_000_000) == 2.5 and _units.pc_to_uc(2_500_000) == 2.5
    assert _units.pc_per_ms_to_ua(2_500) == 2.5


def test_architecture_page_examples_run() -> None:
    """Every python block of docs/guide/architecture.md runs as it stands."""
    import re

    text = (ROOT / "docs" / "guide" / "architecture.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/guide/architecture.md", "exec"), {})


def test_bundled_demo_is_the_cli_demo() -> None:
    """``itb demo`` runs the bundled scenario: its pump is the scenario's after the start's calls
    (hand-checked: 40 mL of 2000 µg/mL, one 50 µg bolus scheduled for 10:00)."""
    from datetime import datetime

    import itb.scenario
    from itb.cli.app import default_scenario

    scenario = itb.scenario.demo()
    pump = default_scenario()
    assert pump.now == scenario.start == datetime(2026, 1, 5, 8, 0)
    assert pump.reservoir_nl == 40_000_000 and pump.concentration_ug_per_ml == 2000
    [bolus] = pump.boluses
    assert bolus.start == datetime(2026, 1, 5, 10, 0) and bolus.volume_nl == 25_000


def test_kit_demo_pump_is_the_bundled_scenarios_pump(monkeypatch: pytest.MonkeyPatch) -> None:
    """The testing kit's demo pump is built from the bundled scenario's ``[pump]`` table (read
    here with tomllib, not by the scenario loader), with the kit's continuous 400 µg/day."""
    from datetime import datetime

    import itb
    import itb.scenario
    from itb.testing import demo as kit_demo

    raw = tomllib.loads((ROOT / "python" / "itb" / "scenario" / "demo.toml").read_text("utf-8"))
    table = raw["pump"]
    pump = kit_demo.demo_pump()
    assert pump.model == getattr(itb.models, table["model"])
    assert pump.now == table["start"] == datetime(2026, 1, 5, 8, 0)
    assert pump.reservoir_nl == round(table["reservoir_ml"] * 1_000_000) == 40_000_000
    assert pump.concentration_ug_per_ml == table["concentration_ug_per_ml"] == 2000
    assert pump.program == itb.Continuous(400.0) != itb.scenario.demo().pump().program
    # the same pump as the kit's hand-written one before it read the bundled scenario
    assert pump == itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 1, 5, 8, 0),
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    # 400 µg/day at 2000 µg/mL = 200 000 nL/day = 100 strokes of 2000 nL: one every 14.4 min
    pump.advance_to(datetime(2026, 1, 6, 8, 0))
    assert pump.boluses == [] and pump.strokes == 100
    # one source: a different bundled fill is the kit's fill too
    kit_demo._demo_pump_table.cache_clear()
    text = (ROOT / "python" / "itb" / "scenario" / "demo.toml").read_text("utf-8")
    changed = itb.scenario.loads(text.replace("reservoir_ml = 40.0", "reservoir_ml = 20.0"))
    monkeypatch.setattr(itb.scenario, "demo", lambda: changed)
    try:
        assert kit_demo.demo_pump().reservoir_nl == 20_000_000
    finally:
        kit_demo._demo_pump_table.cache_clear()


#: The public names of the strategies module as they were when it was one file; the split into
#: modules by job (programs, boluses, devices, scenarios) keeps every one of them.
_STRATEGY_NAMES = [
    "BolusRequest",
    "RefillRequest",
    "PatientLimits",
    "concentrations",
    "pump_models",
    "programs",
    "durations",
    "catheter_volumes",
    "boluses",
    "refills",
    "patient_limits",
    "activations",
    "pumps",
    "scenarios",
    "invalid_programs",
    "invalid_boluses",
    "invalid_refills",
    "invalid_patient_limits",
    "invalid_activations",
    "invalid_scenarios",
    "InvalidScenario",
    "SCENARIO_ACTIONS",
    "program_dict",
    "InvalidArgument",
    "FaultRequest",
    "fault_actions",
    "FAULT_KINDS",
]


def test_strategies_split_keeps_the_public_names() -> None:
    pytest.importorskip("hypothesis")
    import itb.strategies
    import itb.testing.strategies as kit

    assert kit.__all__ == _STRATEGY_NAMES
    star: dict[str, object] = {}
    exec("from itb.strategies import *", star)
    assert sorted(n for n in star if n != "__builtins__") == sorted(_STRATEGY_NAMES)
    for name in _STRATEGY_NAMES:
        assert getattr(itb.strategies, name) is getattr(kit, name), name
        # each name is defined in one of the job modules and re-exported unchanged
        obj = getattr(kit, name)
        home = getattr(obj, "__module__", None)
        if home is not None and home.startswith("itb.testing.strategies."):
            module = importlib.import_module(home)
            assert getattr(module, name) is obj, name
    assert kit.DAY_MS == 86_400_000
    assert kit.__doc__ is not None and "Valid strategies" in kit.__doc__


def test_architecture_map_names_every_module() -> None:
    """A newcomer finds any module from the architecture page in one step: each module of the
    package is named in a row of the map (``itb/hardware/journal.py``, or ``controller.py`` in
    a row that names ``itb/hardware/…``); a subpackage by its folder (``itb/hardware/balance/``)."""
    import re

    text = (ROOT / "docs" / "guide" / "architecture.md").read_text(encoding="utf-8")
    rows = [re.findall(r"`([^`]+)`", line) for line in text.splitlines() if line.startswith("|")]
    missing = []
    for path in sorted((ROOT / "python" / "itb").rglob("*.py")):
        rel = path.relative_to(ROOT / "python" / "itb").as_posix()
        folder, _, name = rel.rpartition("/")
        if rel in ("__init__.py", "__main__.py") or rel.startswith("strategies/"):  # shims
            continue
        found = False
        for names in rows:
            full = {n.removeprefix("itb/") for n in names if n.startswith("itb/")}
            folders = {n.rpartition("/")[0] for n in full}
            if name == "__init__.py":
                found |= f"{folder}/" in full or any(f.startswith(folder) for f in folders)
            else:
                found |= rel in full or (folder in folders and name in names)
        if not found:
            missing.append(rel)
    assert missing == []
