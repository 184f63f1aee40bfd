"""Float clinical units → exact integers, by the core's one rounding rule: the float's
shortest decimal form (``repr``) scaled by a power of ten, rounded half to even."""

from __future__ import annotations

import math
from numbers import Real

from . import _core
from .errors import ValidationError

NL_PER_ML = 1_000_000
NL_PER_UL = 1_000
_MAX_CONCENTRATION = 100_000  # µg/mL, as rust/core checks it


def _float(value: object, field: str) -> float:
    if type(value) is float:  # the common case, without the ABC check
        if value - value != 0.0:  # NaN or ±inf
            raise ValidationError(f"{field}: {value} is not a finite number", field)
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValidationError(f"{field}: expected a number, got {type(value).__name__}", field)
    try:
        x = float(value)
    except OverflowError:  # an int beyond the float range (10**400)
        raise ValidationError(f"{field}: {value!r} is not a finite number", field) from None
    if math.isnan(x) or math.isinf(x):
        raise ValidationError(f"{field}: {x} is not a finite number", field)
    return x


def scaled(value: object, power: int, field: str, unit: str = "") -> int:
    """``value × 10**power`` as an exact int (half-even from the shortest decimal form)."""
    return _core.scaled(_float(value, field), power, field, unit)


def ug_to_ng(value: object, field: str) -> int:
    return scaled(value, 3, field, "µg")


def ml_to_nl(value: object, field: str) -> int:
    return scaled(value, 6, field, "mL")


def ul_to_nl(value: object, field: str) -> int:
    return scaled(value, 3, field, "µL")


def concentration(value: object, field: str = "concentration_ug_per_ml") -> int:
    """Concentration (µg/mL) must be a whole number; the core checks its range."""
    x = _float(value, field)
    if x != int(x):
        raise ValidationError(f"{field}: {value!r} µg/mL must be a whole number", field)
    n = int(x)
    if (
        not 0 < n <= _MAX_CONCENTRATION
    ):  # the core's range; also keeps huge values out of its i64 argument
        raise ValidationError(
            f"invalid {field}: {n} µg/mL is outside the allowed range 1..={_MAX_CONCENTRATION} µg/mL",
            field,
        )
    return n
