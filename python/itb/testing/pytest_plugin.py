"""pytest plugin of the itb testing kit, registered as the ``itb`` ``pytest11`` entry point (so
it loads in any suite where itb is installed; ``-p no:itb`` turns it off).

* fixture ``itb_pump``: a fresh demo-like :class:`itb.Pump` (:func:`itb.testing.demo_pump`);
* fixture ``itb_oracle``: an :class:`itb.testing.Oracle` starting from another fresh demo pump;
* hypothesis settings profile ``itb-ci``: derandomized, no deadline, blob printed on failure —
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


def _register_profile() -> bool:
    """Register the ``itb-ci`` profile; False when hypothesis is not installed."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # the kit works without hypothesis; only the profile is missing
        return False
    settings.register_profile(
        ITB_CI_PROFILE,
        derandomize=True,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    return True


# At import, not in pytest_configure: hypothesis' plugin loads ``--hypothesis-profile`` in its own
# pytest_configure, which may run before ours.
_register_profile()


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "itb_device: the test drives a device under test against the itb oracle (itb testing kit)",
    )


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
