"""The core's limits and unit factors, read once from the compiled core's table
(``itb._core.LIMITS``, defined in ``rust/core/src/limits.rs``). Python code uses these names and
never re-declares the numbers."""

from __future__ import annotations

from ._core import LIMITS

__all__ = [
    "LIMITS",
    "MS_PER_DAY",
    "MS_PER_WEEK",
    "NL_PER_ML",
    "FL_PER_NL",
    "PC_PER_MAH",
    "MIN_TIME_MS",
    "MAX_TIME_MS",
    "MAX_CONCENTRATION_UG_PER_ML",
    "MAX_DOSE_NG_PER_DAY",
    "MAX_BOLUS_NG",
    "MAX_STEPS_PER_DAY",
    "MAX_PATIENT_BOLUSES_PER_DAY",
    "MAX_CATHETER_NL",
    "MAX_STROKE_ERROR_PPM",
    "MAX_RESERVOIR_NL",
    "MAX_STROKE_NL",
    "MAX_RATE_NL_PER_DAY",
    "MAX_PATH_NL",
    "FORECAST_MS",
    "MS_PER_HOUR",
    "MS_PER_MINUTE",
]

#: Milliseconds per day (rates are per day).
MS_PER_DAY: int = LIMITS["MS_PER_DAY"]
MS_PER_WEEK: int = LIMITS["MS_PER_WEEK"]
NL_PER_ML: int = LIMITS["NL_PER_ML"]
FL_PER_NL: int = LIMITS["FL_PER_NL"]
#: Battery charge: picocoulombs per mAh.
PC_PER_MAH: int = LIMITS["PC_PER_MAH"]
#: The pump clock's first and last instant (ms since 1970-01-01 00:00): 0001-01-01 00:00 and
#: 9999-12-31 23:59:59.999.
MIN_TIME_MS: int = LIMITS["MIN_TIME_MS"]
MAX_TIME_MS: int = LIMITS["MAX_TIME_MS"]
#: Concentrations are whole µg/mL in 1..MAX_CONCENTRATION_UG_PER_ML.
MAX_CONCENTRATION_UG_PER_ML: int = LIMITS["MAX_CONCENTRATION_UG_PER_ML"]
MAX_DOSE_NG_PER_DAY: int = LIMITS["MAX_DOSE_NG_PER_DAY"]
MAX_BOLUS_NG: int = LIMITS["MAX_BOLUS_NG"]
#: A flex program starts at most this many steps on any day.
MAX_STEPS_PER_DAY: int = LIMITS["MAX_STEPS_PER_DAY"]
#: Patient-bolus grants per rolling 24 h are at most this.
MAX_PATIENT_BOLUSES_PER_DAY: int = LIMITS["MAX_PATIENT_BOLUSES_PER_DAY"]
#: Catheter volume (at build or revision) is at most this (10 mL).
MAX_CATHETER_NL: int = LIMITS["MAX_CATHETER_NL"]
MAX_STROKE_ERROR_PPM: int = LIMITS["MAX_STROKE_ERROR_PPM"]
MAX_RESERVOIR_NL: int = LIMITS["MAX_RESERVOIR_NL"]
MAX_STROKE_NL: int = LIMITS["MAX_STROKE_NL"]
MAX_RATE_NL_PER_DAY: int = LIMITS["MAX_RATE_NL_PER_DAY"]
MAX_PATH_NL: int = LIMITS["MAX_PATH_NL"]
#: How far ahead fleet forecasts look.
FORECAST_MS: int = LIMITS["FORECAST_MS"]

# Clock factors the core has no constant for (not limits).
MS_PER_HOUR = MS_PER_DAY // 24
MS_PER_MINUTE = MS_PER_HOUR // 60

#: The slowest and fastest rig run ``speed`` (pump-clock seconds per wall second) the rig can
#: carry: THERAPY sends it as a u32 of pump ms per 1000 ms (docs: guide/rig.md, the frame table),
#: so 0.001 (1) up to (2**32 - 1) / 1000; 0 on the wire means "moves with the commands" (max).
MIN_RIG_SPEED = 0.001
MAX_RIG_SPEED = (2**32 - 1) / 1000
