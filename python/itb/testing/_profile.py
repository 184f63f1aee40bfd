"""The ``itb-ci`` hypothesis settings profile (registered by the pytest plugin and by the state
machine; its own module so that neither imports the other)."""

from __future__ import annotations

ITB_CI_PROFILE = "itb-ci"


def register_profile() -> bool:
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
