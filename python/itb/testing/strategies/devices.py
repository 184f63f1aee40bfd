"""Whole :class:`itb.Pump` objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from ..._units import ml_to_nl
from ...errors import ValidationError
from ...models import PumpModel
from ...program import Program
from ...pump import Pump
from ._common import _START, InvalidArgument, _check_common, _check_number
from .boluses import catheter_volumes
from .programs import concentrations, programs, pump_models

# ----- pumps ------------------------------------------------------------------------------------


def _times() -> st.SearchStrategy[datetime]:
    return st.one_of(
        st.just(_START),
        st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
        ),
    )


def pumps(
    model: PumpModel | None = None,
    concentration: int | None = None,
    program: Program | None = None,
    stroke_error: bool = False,
    min_reservoir_ml: float = 0.0,
) -> st.SearchStrategy[Pump]:
    """Whole :class:`itb.Pump` objects; given arguments are used as they are, the rest drawn. The
    reservoir holds ``min_reservoir_ml`` .. the capacity (whole µL; by default it may be empty, so
    ``boluses(...).apply(pump)`` can raise ``ReservoirError``: pass e.g. ``min_reservoir_ml=1.0``
    or refill first). Models whose capacity is below ``min_reservoir_ml`` are not drawn."""
    _check_common(model, concentration, program)
    _check_number(min_reservoir_ml, "min_reservoir_ml", optional=False)
    try:
        min_ul = -(-ml_to_nl(min_reservoir_ml, "min_reservoir_ml") // 1000)
    except ValidationError as exc:  # beyond the core's exact range: no reservoir holds it
        raise InvalidArgument(f"min_reservoir_ml={min_reservoir_ml!r}: {exc}") from None
    if model is not None and model.exact()["reservoir_nl"] // 1000 < min_ul:
        raise InvalidArgument(
            f"min_reservoir_ml={min_reservoir_ml!r} is above the capacity of {model.name} "
            f"({model.reservoir_ml} mL)"
        )

    @st.composite
    def build(draw: Any) -> Pump:
        if model is None:
            m = draw(pump_models().filter(lambda mm: mm.exact()["reservoir_nl"] // 1000 >= min_ul))
        else:
            m = model
        conc = draw(concentrations()) if concentration is None else int(concentration)
        prog = draw(programs(m, conc)) if program is None else program
        cap_ul = m.exact()["reservoir_nl"] // 1000
        reservoir = draw(st.one_of(st.just(cap_ul), st.integers(min_ul, cap_ul))) / 1000
        catheter = draw(catheter_volumes())
        return Pump(
            m,
            now=draw(_times()),
            reservoir_ml=reservoir,
            concentration_ug_per_ml=conc,
            program=prog,
            catheter_volume_ul=catheter,
            path_primed=not draw(st.booleans()),
            stroke_error_ppm=draw(st.integers(-100_000, 100_000)) if stroke_error else 0,
        )

    return build()
