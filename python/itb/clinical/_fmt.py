"""Formatting helpers shared by the clinical workflows (µg, pump-clock times, durations)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Union

from .._units import ng_to_ug

Time = Union[datetime, int]


def _ug(ng: int) -> float:
    return ng_to_ug(ng)


def _fmt_ug(ng: int) -> str:
    return f"{ng_to_ug(ng):g}"


def _fmt_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def _fmt_duration(d: timedelta) -> str:
    """'3 days', '1 day 12 h', '6 h 30 min', '0 min'."""
    minutes = d // timedelta(minutes=1)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{mins} min"] if mins or not parts else []
    return " ".join(parts)


# =================================================================================================
# Screening trial
# =================================================================================================

#: The test bolus doses of the screening phase, in order (µg). Labelling (docs: facts.md#baclofen-intrathecal-labelling, "screening"):
