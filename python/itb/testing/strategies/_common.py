"""Constants and argument checks shared by the strategy modules (eager: a wrong argument fails where the strategy is built)."""

from __future__ import annotations

import math
import numbers
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis.errors import InvalidArgument as _HypothesisInvalidArgument

from ... import _limits, _time
from ...models import PumpModel
from ...program import Continuous, Flex

DAY_MS = _limits.MS_PER_DAY
_HOUR_MS = _limits.MS_PER_HOUR
_MIN_MS = _limits.MS_PER_MINUTE
_MAX_STEPS_PER_DAY = _limits.MAX_STEPS_PER_DAY
_MAX_DOSE_NG = _limits.MAX_DOSE_NG_PER_DAY
_MAX_CONC = _limits.MAX_CONCENTRATION_UG_PER_ML
_CORE_MAX_CATHETER_UL = _limits.MAX_CATHETER_NL // 1000
_MAX_PER_24H = _limits.MAX_PATIENT_BOLUSES_PER_DAY
_WEEKDAYS = _time.WEEKDAYS
#: Round values in preference order (shrinking goes to the first one that is valid).
_ROUND = sorted(x * 10**k for k in range(-3, 9) for x in (1, 2, 5))
_BOLUS_UG = [50.0, 25.0, 75.0, 100.0, 10.0, 5.0, 1.0, 200.0, 500.0, 1000.0]
_START = datetime(2026, 1, 5, 8, 0)


# ----- argument checks (eager: a wrong argument fails where the strategy is built) ----------------


class InvalidArgument(_HypothesisInvalidArgument, ValueError):
    """A strategy argument of the wrong type or out of range: ``hypothesis.errors.InvalidArgument``
    (and a ``ValueError``), raised when the strategy is built, naming the parameter."""


def _check_model(model: Any, name: str = "model") -> None:
    if model is not None and not isinstance(model, PumpModel):
        raise InvalidArgument(
            f"{name}={model!r}: expected an itb.PumpModel (e.g. itb.models.SYNCHROMED_II_40) "
            f"or None, not {type(model).__name__}"
        )


def _whole_conc(value: Any, name: str) -> int:
    """A concentration as an int: whole µg/mL within 1 to 100000 (an integral float is accepted)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Integral, float))
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise InvalidArgument(
            f"{name}={value!r}: expected a whole number of µg/mL (an int) within 1 to {_MAX_CONC}"
        )
    if not 1 <= int(value) <= _MAX_CONC:
        raise InvalidArgument(
            f"{name}={value!r}: a concentration must be within 1 to {_MAX_CONC} µg/mL"
        )
    return int(value)


def _check_program(program: Any, name: str = "program") -> None:
    if program is not None and not isinstance(program, (Continuous, Flex)):
        raise InvalidArgument(
            f"{name}={program!r}: expected an itb.Continuous or itb.Flex program or None, "
            f"not {type(program).__name__}"
        )


def _check_number(
    value: Any, name: str, minimum: float = 0.0, optional: bool = True, upper: bool = False
) -> None:
    """``value`` is a finite real number >= ``minimum`` (or None when ``optional``); an upper
    bound (``upper``) may also be ``math.inf``: no bound, as None. NaN, -inf, and +inf where
    it is not an upper bound are an ``InvalidArgument`` naming ``name``."""
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or math.isnan(value)
        or (math.isinf(value) and not (upper and float(value) > 0))
    ):
        allowed = ", math.inf (no bound)" if upper else ""
        raise InvalidArgument(
            f"{name}={value!r}: expected a finite number >= {minimum:g}{allowed}"
            + (" or None" if optional else "")
        )
    if value < minimum:
        raise InvalidArgument(f"{name}={value!r}: must be >= {minimum:g}")


def _bound_ng(value: float | None, upper: bool) -> int | None:
    """A µg (or µg/day) bound of a strategy as whole ng: an upper bound floored, a lower one raised
    to the ng grid (``0.000499`` as a maximum is 0 ng: only zero, never an error); ``None`` or an
    infinite bound is no bound. The value has passed :func:`_check_number`."""
    if value is None or math.isinf(value):
        return None
    ng = Fraction(Decimal(repr(float(value)))) * 1000
    return math.floor(ng) if upper else math.ceil(ng)


def _check_int(value: Any, name: str, lo: int, hi: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or int(value) < lo
        or (hi is not None and int(value) > hi)
    ):
        raise InvalidArgument(
            f"{name}={value!r}: expected an int within {lo} to "
            + ("any" if hi is None else f"{hi}")
        )


def _check_duration(value: Any, name: str, minimum: timedelta = timedelta(0)) -> None:
    if not isinstance(value, timedelta):
        raise InvalidArgument(
            f"{name}={value!r}: expected a datetime.timedelta (e.g. timedelta(minutes=30)), "
            f"not {type(value).__name__}"
        )
    if value < minimum:
        raise InvalidArgument(f"{name}={value!r}: must be >= {minimum}")


def _check_order(lo: Any, hi: Any, lo_name: str, hi_name: str) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise InvalidArgument(f"{lo_name}={lo!r} is above {hi_name}={hi!r}: nothing to draw")


def _check_common(model: Any, concentration: Any, program: Any = None) -> None:
    _check_model(model)
    if concentration is not None:
        _whole_conc(concentration, "concentration")
    _check_program(program)


def _names(value: Any, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    """A selection of names out of ``allowed``: None is all of them; a bare string is one name
    (``"bolus"`` is ``("bolus",)``); an empty selection, an unknown name or anything but a
    sequence of strings is an ``InvalidArgument`` naming ``name`` and listing ``allowed``."""
    if value is None:
        return allowed
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list, set, frozenset)) or not all(
        isinstance(v, str) for v in value
    ):
        raise InvalidArgument(
            f"{name}={value!r}: expected a name or a sequence of names; allowed: "
            f"{', '.join(allowed)}"
        )
    if not value:
        raise InvalidArgument(
            f"{name}={value!r} is empty: give at least one of {', '.join(allowed)} "
            f"(or None for all)"
        )
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"{name}: unknown {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
        )
    return tuple(value)
