"""Float clinical units → exact integers, by the core's one rounding rule: the float's
shortest decimal form (``repr``) scaled by a power of ten, rounded half to even."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from . import _core
from ._limits import MAX_CONCENTRATION_UG_PER_ML as _MAX_CONCENTRATION
from ._limits import PC_PER_MAH as _PC_PER_MAH
from ._time import int64
from .errors import ValidationError

NL_PER_UL = 1_000


def _float(value: object, field: str) -> float:
    if type(value) is float:  # the common case, without the ABC check
        if value - value != 0.0:  # NaN or ±inf
            raise ValidationError(f"{field}: {value} is not a finite number", field)
        return value
    if isinstance(value, (bool, np.bool_)):
        raise ValidationError(
            f"{field}: expected a number, got a bool (a bool is never a number)", field
        )
    if not isinstance(value, Real):
        raise ValidationError(f"{field}: expected a number, got {type(value).__name__}", field)
    try:
        x = float(value)
    except OverflowError:  # an int beyond the float range (10**400)
        raise ValidationError(f"{field}: {value!r} is not a finite number", field) from None
    if math.isnan(x) or math.isinf(x):
        raise ValidationError(f"{field}: {x} is not a finite number", field)
    return x


def flag(value: object, field: str) -> bool:
    """A yes/no argument: ``True``/``False`` (or a numpy bool), never a number or text — the
    other half of "a bool is never a number" (docs: guide/inputs.md#bools)."""
    if type(value) is bool:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise ValidationError(
        f"{field}: expected True or False, got {type(value).__name__}"
        + (f" {value}" if isinstance(value, (int, float)) else ""),
        field,
    )


def scaled(value: object, power: int, field: str, unit: str = "") -> int:
    """``value × 10**power`` as an exact int (half-even from the shortest decimal form)."""
    return _core.scaled(_float(value, field), power, field, unit)


def ug_to_ng(value: object, field: str) -> int:
    """µg (or µg/day: a ``field`` ending in ``ug_per_day`` speaks that unit) to exact ng."""
    per_day = field.replace("-", "_").endswith("ug_per_day")
    return scaled(value, 3, field, "µg/day" if per_day else "µg")


def ml_to_nl(value: object, field: str) -> int:
    return scaled(value, 6, field, "mL")


def ul_to_nl(value: object, field: str) -> int:
    return scaled(value, 3, field, "µL")


def nl_to_ml(nl: int) -> float:
    """An exact nL amount in mL, for display and reports (the inverse of :func:`ml_to_nl`)."""
    return nl / 1_000_000


def exact_decimal(value: int, places: int) -> str:
    """``value / 10**places`` as an exact decimal text, trailing zeros dropped (display of an
    exact integer amount: ``exact_decimal(10_500_000, 6) == "10.5"``)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**places)
    return sign + f"{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")


def ng_to_ug(ng: int) -> float:
    """An exact ng amount in µg, for display and reports (the inverse of :func:`ug_to_ng`)."""
    return ng / 1000


def pg_to_ug(pg: int) -> float:
    """An exact pg amount (the core's delivered-drug unit) in µg, for display and reports."""
    return pg / 1_000_000


def nl_to_ul(nl: int) -> float:
    """An exact nL amount in µL, for display and reports (the inverse of :func:`ul_to_nl`)."""
    return nl / 1000


def pc_to_mah(pc: int) -> float:
    """An exact pC charge (the core's battery unit) in mAh, for display and reports."""
    return pc / _PC_PER_MAH


def pc_to_uc(pc: int) -> float:
    """An exact pC charge in µC (a stroke's, a tone's charge), for display and reports."""
    return pc / 1_000_000


def pc_per_ms_to_ua(pc_per_ms: int) -> float:
    """An exact current in pC/ms (= nA) in µA, for display and reports."""
    return pc_per_ms / 1000


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
            f"invalid {field}: {n} µg/mL is outside the allowed range 1 to {_MAX_CONCENTRATION} µg/mL",
            field,
        )
    return n


def integer(value: object, field: str) -> int:
    """An integer argument (Python or numpy int; not a bool) within the core's 64 bits, else a
    ``ValidationError`` naming ``field``. The bindings call this for any non-``int`` argument."""
    if (
        isinstance(value, bool)
        or type(value).__name__ == "bool_"
        or not isinstance(value, Integral)
    ):
        raise ValidationError(f"{field}: expected an int, got {value!r}", field)
    return int64(int(value), field)


def check_dose(value: object, i: int) -> None:
    """One entry of ``bolus_many``'s ``doses_ug`` must be a number (not a bool), else a
    ``ValidationError`` naming ``doses_ug[i]``. The bindings call this for any non-``float``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            f"doses_ug[{i}]: expected a number, got {type(value).__name__}", f"doses_ug[{i}]"
        )


def volume_nl(ng: int, concentration_ug_per_ml: int) -> int:
    """Volume (nL) of ``ng`` ng — or rate (nL/day) of ``ng`` ng/day — at a concentration
    (µg/mL): the core's half-even rounding (``itb._core.volume_rate_nl_per_day``). Raises
    ``ValidationError`` outside 0..=10¹³ ng or a concentration outside 1..=100 000 µg/mL."""
    return _core.volume_rate_nl_per_day(ng, concentration_ug_per_ml)
