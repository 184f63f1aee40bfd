"""pytest plugin of the itb testing kit, registered as the ``itb`` ``pytest11`` entry point (so
it loads in any suite where itb is installed; ``-p no:itb`` turns it off).

* fixture ``itb_pump``: a fresh demo :class:`itb.Pump` (:func:`itb.testing.demo_pump`: the
  bundled scenario's pump at 400 µg/day);
* fixture ``itb_oracle``: an :class:`itb.testing.Oracle` starting from another fresh demo pump;
* hypothesis settings profile ``itb-ci``: derandomized, no deadline, blob printed on failure, one
  bug per run (``report_multiple_bugs=False``), no explain phase, shrinking stopped after
  ``itb_shrink_seconds`` (ini option, 60 s by default) —
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

__all__ = ["ITB_CI_PROFILE", "SHRINK_SECONDS", "apply_shrink_budget", "register_profile"]

#: default shrink time budget of the ``itb-ci`` profile (seconds; ini option ``itb_shrink_seconds``)
SHRINK_SECONDS = 60


def pytest_addoption(parser: Any) -> None:
    parser.addini(
        "itb_shrink_seconds",
        f"shrink time budget (s) when the itb-ci hypothesis profile is loaded (default {SHRINK_SECONDS})",
        default=str(SHRINK_SECONDS),
    )


@pytest.hookimpl(tryfirst=True)  # before hypothesis' plugin loads --hypothesis-profile
def pytest_configure(config: Any) -> None:
    wanted = _option(config, "--hypothesis-profile") == ITB_CI_PROFILE
    if wanted or "hypothesis" in sys.modules:
        register_profile()
    config.addinivalue_line(
        "markers",
        "itb_device: the test drives a device under test against the itb oracle (itb testing kit)",
    )


def pytest_sessionstart(session: Any) -> None:
    # after every pytest_configure: hypothesis' plugin has loaded the chosen profile by now
    apply_shrink_budget(session.config.getini("itb_shrink_seconds"))


def _option(config: Any, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:  # hypothesis' plugin is not loaded (-p no:hypothesispytest)
        return None


def apply_shrink_budget(seconds: Any) -> bool:
    """With the ``itb-ci`` profile loaded, stop shrinking after ``seconds`` (hypothesis has no
    setting for it: this sets its engine's ``MAX_SHRINKING_SECONDS``, 300 s by default). Returns
    whether the budget was applied."""
    if (
        "hypothesis" not in sys.modules
    ):  # no profile can be loaded: nothing to apply, nothing imported
        return False
    try:
        from hypothesis import settings
        from hypothesis.internal.conjecture import engine
    except ImportError:
        return False
    if getattr(settings, "_current_profile", None) != ITB_CI_PROFILE:
        return False
    try:
        budget = int(seconds)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"itb_shrink_seconds = {seconds!r}: a whole number of seconds (e.g. 60)"
        ) from None
    if budget < 1 or not hasattr(engine, "MAX_SHRINKING_SECONDS"):
        return False
    engine.MAX_SHRINKING_SECONDS = budget
    return True


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
