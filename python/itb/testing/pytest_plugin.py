"""pytest plugin of the itb testing kit, registered as the ``itb`` ``pytest11`` entry point (so
it loads in any suite where itb is installed; ``-p no:itb`` turns it off).

* fixture ``itb_pump``: a fresh demo-like :class:`itb.Pump` (:func:`itb.testing.demo_pump`);
* fixture ``itb_oracle``: an :class:`itb.testing.Oracle` starting from another fresh demo pump;
* hypothesis settings profile ``itb-ci``: derandomized, no deadline, blob printed on failure —
  registered only (load it with ``--hypothesis-profile=itb-ci`` or ``settings.load_profile``);
  the suite's own profile choice is left alone. It is registered in ``pytest_configure`` (first,
  before hypothesis' plugin loads ``--hypothesis-profile``) when the option asks for it or when
  hypothesis is already imported (by a conftest, say), and whenever :mod:`itb.testing.machine` is
  imported; :func:`register_profile` registers it by hand (e.g. in a conftest that loads it);
* marker ``itb_device``: tags tests that drive a device under test (select them with
  ``-m itb_device``, skip them with ``-m "not itb_device"``).

Nothing heavy is imported at plugin load (not itb's modules, numpy or hypothesis): itb when a
fixture is first used, hypothesis only when the profile is asked for or hypothesis is already
loaded (figures: docs: guide/performance.md#import-cost).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from ._profile import ITB_CI_PROFILE, register_profile

__all__ = ["ITB_CI_PROFILE", "register_profile"]


@pytest.hookimpl(tryfirst=True)  # before hypothesis' plugin loads --hypothesis-profile
def pytest_configure(config: Any) -> None:
    wanted = _option(config, "--hypothesis-profile") == ITB_CI_PROFILE
    if wanted or "hypothesis" in sys.modules:
        register_profile()
    config.addinivalue_line(
        "markers",
        "itb_device: the test drives a device under test against the itb oracle (itb testing kit)",
    )


def _option(config: Any, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:  # hypothesis' plugin is not loaded (-p no:hypothesispytest)
        return None


@pytest.fixture
def itb_pump() -> Any:
    """A fresh demo-like pump (SynchroMed II 40 mL, 40 mL at 2000 µg/mL, 400 µg/day, 2026-01-05 08:00)."""
    from itb.testing import demo_pump

    return demo_pump()


@pytest.fixture
def itb_oracle() -> Any:
    """An :class:`itb.testing.Oracle` starting from a fresh demo-like pump (independent of ``itb_pump``)."""
    from itb.testing import Oracle, demo_pump

    return Oracle(demo_pump())
