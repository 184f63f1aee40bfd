"""The ``itb-ci`` hypothesis settings profile and the kit's shrink time budget (registered by the
pytest plugin and by the state machine; its own module so that neither imports the other)."""

from __future__ import annotations

from datetime import timedelta

ITB_CI_PROFILE = "itb-ci"
#: default shrink time budget under the ``itb-ci`` profile (seconds; pytest ini option
#: ``itb_shrink_seconds``)
SHRINK_SECONDS = 60
_budget_seconds = [SHRINK_SECONDS]  # what the plugin's ini option set (one mutable cell)


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


def set_shrink_seconds(seconds: int) -> None:
    """The budget :func:`shrink_budget` gives under ``itb-ci`` (the plugin's ini option)."""
    _budget_seconds[0] = seconds


def shrink_budget() -> timedelta | None:
    """The shrink time budget in force for a state machine that sets none of its own: under the
    ``itb-ci`` profile ``itb_shrink_seconds`` (60 s by default), else None (hypothesis' own
    limits)."""
    try:
        from hypothesis import settings
    except ImportError:
        return None
    if settings.get_current_profile_name() != ITB_CI_PROFILE:
        return None
    return timedelta(seconds=_budget_seconds[0])
