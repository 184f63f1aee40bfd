"""pytest plugin of the itb testing kit, registered as the ``itb`` ``pytest11`` entry point (so
it loads in any suite where itb is installed; ``-p no:itb`` turns it off).

* fixture ``itb_pump``: a fresh demo-like :class:`itb.Pump` (:func:`itb.testing.demo_pump`);
* fixture ``itb_oracle``: an :class:`itb.testing.Oracle` starting from another fresh demo pump;
* hypothesis settings profile ``itb-ci``: derandomized, no deadline, blob printed on failure, one
  bug per run (``report_multiple_bugs=False``), no explain phase, shrinking stopped after
  ``itb_shrink_seconds`` (ini option, 60 s by default) —
  registered only (load it with ``--hypothesis-profile=itb-ci`` or ``settings.load_profile``);
  the suite's own profile choice is left alone. It is registered when this module is imported
  (pytest imports every ``pytest11`` plugin before any ``pytest_configure`` runs), so
  hypothesis' own plugin finds it whatever the plugin order;
* marker ``itb_device``: tags tests that drive a device under test (select them with
  ``-m itb_device``, skip them with ``-m "not itb_device"``).

Nothing heavy is imported at plugin load: itb when a fixture is first used; hypothesis (to
register the profile) only if it is installed.
"""

from __future__ import annotations

from typing import Any

import pytest

ITB_CI_PROFILE = "itb-ci"


#: default shrink time budget of the ``itb-ci`` profile (seconds; ini option ``itb_shrink_seconds``)
SHRINK_SECONDS = 60


def _register_profile() -> bool:
    """Register the ``itb-ci`` profile; False when hypothesis is not installed."""
    try:
        from hypothesis import HealthCheck, Phase, settings
    except ImportError:  # the kit works without hypothesis; only the profile is missing
        return False
    settings.register_profile(
        ITB_CI_PROFILE,
        derandomize=True,
        deadline=None,
        print_blob=True,
        # one bug per run: an AssertionError, not an ExceptionGroup of every distinct failure
        report_multiple_bugs=False,
        # no explain phase: it re-runs the failing example many times (slow on a device) and
        # fills the report with the kit's own lines
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    return True


# At import, not in pytest_configure: hypothesis' plugin loads ``--hypothesis-profile`` in its own
# pytest_configure, which may run before ours.
_register_profile()


def pytest_addoption(parser: Any) -> None:
    parser.addini(
        "itb_shrink_seconds",
        f"shrink time budget (s) when the itb-ci hypothesis profile is loaded (default {SHRINK_SECONDS})",
        default=str(SHRINK_SECONDS),
    )


@pytest.hookimpl(trylast=True)  # after hypothesis' plugin loaded the chosen profile
def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "itb_device: the test drives a device under test against the itb oracle (itb testing kit)",
    )
    apply_shrink_budget(config.getini("itb_shrink_seconds"))


def apply_shrink_budget(seconds: Any) -> bool:
    """With the ``itb-ci`` profile loaded, stop shrinking after ``seconds`` (hypothesis has no
    setting for it: this sets its engine's ``MAX_SHRINKING_SECONDS``, 300 s by default). Returns
    whether the budget was applied."""
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
