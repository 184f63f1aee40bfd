"""The ``itb-ci`` hypothesis settings profile (registered by the pytest plugin and by the state
machine; its own module so that neither imports the other)."""

from __future__ import annotations

ITB_CI_PROFILE = "itb-ci"


def register_profile() -> bool:
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
