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
    import itb.scenario
    import itb.scenario.run as run

    for name in itb.scenario.__all__:
        assert getattr(itb.scenario, name) is getattr(run, name), name


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
