"""Exact integer helpers: volume rates, dose bounds, round-value tiers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from ... import models as _models
from ..._units import ug_to_ng, volume_nl
from ...models import PumpModel
from ...program import Program
from ._common import _MAX_DOSE_NG, _ROUND

# ----- exact helpers --------------------------------------------------------------------------


def _rate_nl(ng: int, conc: int) -> int:
    """Volume (nL, or nL/day) of ``ng`` (ng, or ng/day) at ``conc`` µg/mL, by the core's
    rounding (:func:`itb._units.volume_nl`). Above the core's largest dose it is that dose's
    volume (the searches here only compare it with model rates, which it then exceeds)."""
    return volume_nl(min(ng, _MAX_DOSE_NG), conc)


def _ng_bounds(lo_nl: int, hi_nl: int, conc: int) -> tuple[int, int]:
    """The ng range whose volume at ``conc`` lies in lo_nl..=hi_nl (empty if lo > hi)."""
    if hi_nl < lo_nl:
        return 1, 0
    lo = max(1, (2 * lo_nl - 1) * conc // 2000 - 1)
    while _rate_nl(lo, conc) < lo_nl:
        lo += 1
    hi = (2 * hi_nl + 1) * conc // 2000 + 1
    while _rate_nl(hi, conc) > hi_nl:
        hi -= 1
    return lo, min(hi, _MAX_DOSE_NG)


def _ug(ng: int) -> float:
    return ng / 1000


def _tiered(*options: st.SearchStrategy[Any] | None) -> st.SearchStrategy[Any]:
    """Like ``one_of`` with a fixed number of choices whatever the bounds: an unavailable
    option (None) falls through to the next available one. Every draw makes the same number of
    choices, so hypothesis' shortlex shrinking prefers the first option (round values) instead of
    a branch that happens to need fewer choices."""
    present = [o for o in options if o is not None]
    if not present:
        return st.nothing()
    resolved = []
    for i in range(len(options)):
        resolved.append(next((o for o in options[i:] if o is not None), present[-1]))
    return st.integers(0, len(options) - 1).flatmap(lambda i: resolved[i])


def _doses(lo_ng: int, hi_ng: int, preferred: Sequence[float] = ()) -> st.SearchStrategy[float]:
    """µg floats with whole-ng values in lo..=hi: round values first, then whole µg, then any ng."""
    if lo_ng > hi_ng:
        return st.nothing()
    nice = [float(u) for u in [*preferred, *_ROUND] if lo_ng <= ug_to_ng(u, "dose_ug") <= hi_ng]
    nice = list(dict.fromkeys(nice))
    ug_lo, ug_hi = -(-lo_ng // 1000), hi_ng // 1000
    return _tiered(
        st.sampled_from(nice) if nice else None,
        st.integers(ug_lo, ug_hi).map(float) if ug_lo <= ug_hi else None,
        st.integers(lo_ng, hi_ng).map(_ug),
    )


def _model(model: PumpModel | None) -> PumpModel:
    return _models.SYNCHROMED_II_40 if model is None else model


def _conc(concentration: int | None) -> int:
    return 2000 if concentration is None else int(concentration)


def _peak_nl(program: Program | None, conc: int) -> int:
    """The highest basal volume rate of ``program`` at ``conc`` (nL/day)."""
    if program is None:
        return 0
    raw = program.exact()
    doses = [raw[1]] if raw[0] == "continuous" else [ng for _, ng in raw[2]]
    return max(_rate_nl(ng, conc) for ng in doses)


def _program_valid(program: Program, model: PumpModel, conc: int) -> bool:
    raw = program.exact()
    doses = [raw[1]] if raw[0] == "continuous" else [ng for _, ng in raw[2]]
    ex = model.exact()
    return all(
        ng == 0 or ex["min_rate_nl_per_day"] <= _rate_nl(ng, conc) <= ex["max_rate_nl_per_day"]
        for ng in doses
    )
