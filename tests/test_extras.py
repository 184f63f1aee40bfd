"""A missing optional dependency (pandas, pyarrow, dask) is an error naming the extra to install
(docs: install.md). The import failure is simulated, whatever is installed."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import itb
import numpy as np
import pytest
from itb.errors import MissingExtraError
from itb.fleet import Fleet, FleetResult, simulate_dask

T0 = datetime(2026, 1, 5, 8)


def fleet() -> Fleet:
    return Fleet(
        {
            "model": ["SYNCHROMED_II_40", "PROMETRA_II_20"],
            "now": [0, 1_000],
            "reservoir_ml": [40.0, 12.5],
            "concentration_ug_per_ml": [2000, 500],
            "ug_per_day": [400.0, 250.0],
        }
    )


def result() -> FleetResult:
    return fleet().simulate(timedelta(days=30) // timedelta(milliseconds=1))


def missing(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``import module`` fail as if it were not installed."""
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import raises ModuleNotFoundError(name=module)


@pytest.mark.parametrize(
    "module, extra, call",
    [
        ("pandas", "pandas", lambda: result().to_pandas()),
        (
            "pandas",
            "pandas",
            lambda: (
                itb.Pump(
                    itb.models.SYNCHROMED_II_40,
                    now=T0,
                    reservoir_ml=40.0,
                    concentration_ug_per_ml=2000,
                    program=itb.Continuous(ug_per_day=400),
                )
                .advance(timedelta(days=1))
                .to_pandas()
            ),
        ),
        ("pyarrow", "arrow", lambda: result().to_arrow()),
        ("dask", "dask", lambda: simulate_dask(fleet(), 86_400_000)),
    ],
)
def test_a_missing_extra_names_what_to_install(monkeypatch, module, extra, call):
    missing(monkeypatch, module)
    with pytest.raises(
        MissingExtraError,
        match=rf"needs {module}, which is not installed: pip install 'itb-pump\[{extra}\]'",
    ) as err:
        call()
    assert err.value.extra == extra
    assert isinstance(err.value, ImportError)


def test_to_arrow_has_the_columns():
    pa = pytest.importorskip("pyarrow")
    r = result()
    table = r.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.column_names == list(r.columns)
    for name, col in r.columns.items():
        np.testing.assert_array_equal(table[name].to_numpy(), col)  # NaT where null
