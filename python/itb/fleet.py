"""Fleet simulation: many independent pumps at once.

:func:`simulate_many` runs clones of the given pumps in the Rust core on a rayon thread pool,
with the GIL released, and returns numpy columns (:class:`FleetResult`, convertible to a pandas
``DataFrame``). Results are deterministic: the same whatever the number of threads.
:func:`simulate_dask` partitions a fleet across a Dask cluster (``pip install 'itb-pump[dask]'``) and
calls :func:`simulate_many` per partition.

:class:`Fleet` holds a fleet as columns (numpy arrays, a pandas DataFrame, a pyarrow Table or any
mapping of column names to array-likes) without a Python object per pump: each row's pump is
built in Rust, in its worker thread, for :meth:`Fleet.forecast` (service dates in closed form,
no stroke walking) and :meth:`Fleet.simulate`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, NoReturn

import numpy as np

from . import _core
from ._time import to_ms
from .models import PRESETS
from .program import Continuous, Flex
from .pump import ALARMS, PROJECTION_COLUMNS, Pump

__all__ = ["Fleet", "FleetResult", "simulate_many", "simulate_dask", "random_fleet"]

_TIME_COLUMNS = (
    "first_low_reservoir_ms",
    "first_reservoir_empty_ms",
    "eri_ms",
    "eos_ms",
    "eri_forecast_ms",
    "eos_forecast_ms",
)


@dataclass(frozen=True)
class FleetResult:
    """One row per pump. Columns (numpy arrays): ``strokes``, ``delivered_nl``, ``delivered_ug``,
    ``reservoir_nl``, ``battery_remaining_pc`` (-1 without a battery), ``events``; first alarm
    times observed in the run ``first_low_reservoir``, ``first_reservoir_empty``, ``eri``,
    ``eos``; and service dates forecast at the start as if refilled on time, ``eri_forecast``,
    ``eos_forecast`` — all ``datetime64[ms]`` with ``NaT`` for "did not happen"."""

    columns: dict[str, np.ndarray]

    @classmethod
    def _from_core(cls, raw: dict[str, np.ndarray]) -> FleetResult:
        cols: dict[str, np.ndarray] = {}
        for name, arr in raw.items():
            if name in _TIME_COLUMNS:
                cols[name[: -len("_ms")]] = arr.view("datetime64[ms]")
            else:
                cols[name] = arr
        return cls(cols)

    def __len__(self) -> int:
        return len(self.columns["strokes"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` of the columns (needs ``pip install 'itb-pump[pandas]'``)."""
        from ._extras import require

        pd = require("pandas", "pandas", "FleetResult.to_pandas()")

        return pd.DataFrame(self.columns)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` of the columns (needs ``pip install 'itb-pump[arrow]'``)."""
        from ._extras import require

        pa = require("pyarrow", "arrow", "FleetResult.to_arrow()")

        return pa.table(self.columns)

    @staticmethod
    def concat(parts: Iterable[FleetResult]) -> FleetResult:
        parts = list(parts)
        if not parts:
            return FleetResult._from_core(_core.simulate_many([], 0))
        return FleetResult(
            {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns}
        )


def simulate_many(
    pumps: Sequence[Pump], until: datetime | int, threads: int | None = None
) -> FleetResult:
    """Run clones of ``pumps`` (left unchanged) to ``until`` on ``threads`` threads (None:
    all cores). A pump already past ``until`` is reported as it is."""
    cores = [p.core for p in pumps]
    return FleetResult._from_core(_core.simulate_many(cores, to_ms(until, "until"), threads))


def _run_partition(snapshots: list[bytes], until_ms: int) -> dict[str, np.ndarray]:
    cores = [_core.Pump.restore(b) for b in snapshots]
    return _core.simulate_many(cores, until_ms, None)


def _run_fleet_partition(fleet: Fleet, until_ms: int) -> dict[str, np.ndarray]:
    return fleet._core.simulate(until_ms, None)


def simulate_dask(
    pumps: Sequence[Pump] | Fleet,
    until: datetime | int,
    *,
    partitions: int | None = None,
    client: Any = None,
) -> FleetResult:
    """Run a fleet on Dask: split it into ``partitions`` (default: 4 per worker, or 8), ship
    each partition (pump snapshots, or for a :class:`Fleet` its rows' columns), run it on the
    workers (:func:`simulate_many` / :meth:`Fleet.simulate`), and gather the rows in order.
    ``client``: a ``dask.distributed.Client`` (default: the current one, else Dask's default
    scheduler). Needs ``pip install 'itb-pump[dask]'``."""
    from ._extras import require

    dask = require("dask", "dask", "simulate_dask")
    until_ms = to_ms(until, "until")
    if partitions is None:
        workers = len(client.scheduler_info()["workers"]) if client is not None else 2
        partitions = max(1, min(len(pumps), 4 * workers))
    size = -(-len(pumps) // partitions) if len(pumps) else 1
    if isinstance(pumps, Fleet):
        tasks = [
            dask.delayed(_run_fleet_partition)(pumps.rows(i, i + size), until_ms)
            for i in range(0, len(pumps), size)
        ]
    else:
        chunks = [[p.snapshot() for p in pumps[i : i + size]] for i in range(0, len(pumps), size)]
        tasks = [dask.delayed(_run_partition)(chunk, until_ms) for chunk in chunks]
    if client is not None:
        results = client.gather(client.compute(tasks))
    else:
        results = dask.compute(*tasks)
    return FleetResult.concat(FleetResult._from_core(r) for r in results)


def random_fleet(n: int, *, seed: int = 0, start: datetime = datetime(2026, 1, 5)) -> list[Pump]:
    """``n`` varied virtual pumps (presets, concentrations, continuous and flex programs within
    each model's limits), reproducible from ``seed`` — for studies and benchmarks."""
    rng = random.Random(seed)
    presets = list(PRESETS.values())
    fleet = []
    for _ in range(n):
        model = rng.choice(presets)
        conc = rng.choice([500, 1000, 2000])
        dose = rng.uniform(
            200.0, 900.0
        )  # µg/day: with the night step ≥ 100 µg/day ≥ 0.048 mL/day at 2000 µg/mL
        if rng.random() < 0.5:
            program: Any = Continuous(ug_per_day=round(dose, 1))
        else:
            night = round(dose * rng.uniform(0.5, 1.0), 1)
            program = Flex(
                period="day", steps=[(time(0), night), (time(7), round(dose, 1)), (time(22), night)]
            )
        fleet.append(
            Pump(
                model,
                now=start + timedelta(minutes=rng.randrange(0, 1440)),
                reservoir_ml=model.reservoir_ml,
                concentration_ug_per_ml=conc,
                program=program,
            )
        )
    return fleet


class Fleet:
    """A fleet held as columns, one row per pump (path primed, no catheter).

    Columns (equal lengths): ``now`` (``datetime64`` or int ms on the pump clock),
    ``reservoir_ml`` (float), ``concentration_ug_per_ml`` (int); ``model``: an index into
    ``models`` (a list of :class:`itb.PumpModel`; default: the presets in the order of
    ``itb.models.PRESETS``) or a column of model names; the program, either ``ug_per_day``
    (float: a continuous program) or ``program``: an index into ``programs`` (a list of
    :class:`itb.Continuous`/:class:`itb.Flex` shared by rows — the steps table), -1 in a row
    meaning its ``ug_per_day``. Floats become exact integers by the package's one rounding rule,
    in Rust. Memory: the input and output columns plus one pump per worker thread (≈ 1 kB) —
    never one object per row. Pickles as its columns (for Dask workers).

    Optional columns of a pump as a programmer reads it (each row as
    :meth:`itb.Pump.from_reading`): ``battery_mah`` (float, NaN = not read), ``implanted``
    (``datetime64``/int ms, NaT = unknown), and per alarm since when it has been sounding,
    ``eos_since``, ``reservoir_empty_since``, ``motor_stall_since``, ``eri_since``,
    ``low_reservoir_since`` (``datetime64``/int ms, NaT = not sounding).

    Errors: ``ValidationError``/``ProgrammingError`` naming the column and row
    (``reservoir_ml[12]``, ``ug_per_day[3]``, ``model[7]``, ``program[5].steps[1].ug_per_day``,
    ``battery_mah[4]``, ``eri_since[2]``); a missing column names it. Extra columns (patient
    ids) are ignored, except one whose name is close to a missing optional column
    (``batery_mah``): refused with "did you mean 'battery_mah'?" (docs: guide/inputs.md).
    """

    COLUMNS = ("model", "now", "reservoir_ml", "concentration_ug_per_ml", "ug_per_day", "program")
    READING_COLUMNS = ("battery_mah", "implanted") + tuple(f"{a}_since" for a in ALARMS)

    def __init__(
        self, columns: Any, models: Sequence[Any] | None = None, programs: Sequence[Any] = ()
    ) -> None:
        from .errors import ValidationError
        from .models import PumpModel
        from .pump import _exact_program

        self.models = list(PRESETS.values()) if models is None else list(models)
        self.programs = list(programs)
        for i, m in enumerate(self.models):
            if not isinstance(m, PumpModel):
                raise ValidationError(
                    f"models[{i}]: expected itb.PumpModel, got {type(m).__name__}", f"models[{i}]"
                )

        names = [str(k) for k in _keys(columns)]
        n_rows: list[int] = []

        def optional(name: str) -> np.ndarray | None:
            try:
                columns[name]
            except (KeyError, IndexError, TypeError):
                return None
            return column(name)

        def column(name: str) -> np.ndarray:
            try:
                values = columns[name]
            except (KeyError, IndexError, TypeError):
                raise ValidationError(
                    f"{name}: missing column{_did_you_mean(name, names)} (needed: model, now, "
                    "reservoir_ml, concentration_ug_per_ml, and ug_per_day or program)",
                    name,
                ) from None
            arr = _column_array(values, name)
            if n_rows and len(arr) != n_rows[0]:
                raise ValidationError(
                    f"{name}: {len(arr)} rows; the other columns have {n_rows[0]}", name
                )
            n_rows.append(len(arr))
            return arr

        now = _time_column(column("now"), "now")
        model = self._model_column(column("model"), models is None)
        reservoir = _number_column(column("reservoir_ml"), "reservoir_ml", "mL")
        conc = _whole_column(column("concentration_ug_per_ml"), "concentration_ug_per_ml", "µg/mL")
        n = len(now)
        raw_program = optional("program")
        raw_dose = optional("ug_per_day")
        if raw_program is None and raw_dose is None:
            hint = _did_you_mean("ug_per_day", names) or _did_you_mean("program", names)
            raise ValidationError(
                f"ug_per_day: missing column{hint} (give ug_per_day, a continuous dose per row, "
                "or program, an index into programs)",
                "ug_per_day",
            )
        program = (
            np.full(n, -1, dtype=np.int64)
            if raw_program is None
            else _index_column(raw_program, "program", len(self.programs), allow_minus_one=True)
        )
        dose = np.zeros(n) if raw_dose is None else _number_column(raw_dose, "ug_per_day", "µg/day")
        if raw_dose is None:
            rows = np.flatnonzero(program < 0)
            if len(rows):
                raise ValidationError(
                    f"program[{rows[0]}]: -1 means the row's ug_per_day, and there is no "
                    "ug_per_day column",
                    f"program[{rows[0]}]",
                )
        self._cols: dict[str, np.ndarray] = {
            "model": np.ascontiguousarray(model, dtype=np.int64),
            "now": np.ascontiguousarray(now, dtype=np.int64),
            "reservoir_ml": np.ascontiguousarray(reservoir, dtype=np.float64),
            "concentration_ug_per_ml": np.ascontiguousarray(conc, dtype=np.int64),
            "ug_per_day": np.ascontiguousarray(dose, dtype=np.float64),
            "program": np.ascontiguousarray(program, dtype=np.int64),
        }
        keys = set(_keys(columns))
        known = set(self.COLUMNS) | set(self.READING_COLUMNS)
        extra = [k for k in names if k not in known]
        for wanted in ("program", "ug_per_day", *self.READING_COLUMNS):
            typo = "" if wanted in keys else _close_name(wanted, extra)
            if typo:  # a misspelt optional column would be ignored silently
                raise ValidationError(
                    f"{typo}: not a fleet column; did you mean {wanted!r}? (rename it; other "
                    "extra columns, such as patient ids, are ignored)",
                    typo,
                )
        if "battery_mah" in keys:
            battery = column("battery_mah")
            if battery.dtype.kind == "O" and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in battery
            ):
                battery = battery.astype(np.float64)
            if battery.dtype.kind not in "fiu" or battery.dtype == bool:
                raise ValidationError(
                    f"battery_mah: expected numbers (mAh, NaN = not read), got {battery.dtype}",
                    "battery_mah",
                )
            self._cols["battery_mah"] = np.ascontiguousarray(battery, dtype=np.float64)
        for name in self.READING_COLUMNS[1:]:
            if name in keys:
                self._cols[name] = _optional_time_column(column(name), name)
        exact_programs = [_exact_program(p) for p in self.programs]
        since = [self._cols.get(f"{a}_since") for a in ALARMS]
        self._core = _core.FleetColumns(
            [m._core_exact() for m in self.models],
            self._cols["model"],
            self._cols["now"],
            self._cols["reservoir_ml"],
            self._cols["concentration_ug_per_ml"],
            self._cols["ug_per_day"],
            exact_programs,  # checked in Rust
            self._cols["program"],
            self._cols.get("battery_mah"),
            self._cols.get("implanted"),
            since if any(c is not None for c in since) else None,
        )

    def _model_column(self, model: Any, presets: bool) -> np.ndarray:
        """Model indexes from indexes or names (``model[i]`` names a bad row)."""
        from .errors import ValidationError

        if model.dtype.kind in "USO" and not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in model
        ):
            index = (
                {n: i for i, n in enumerate(PRESETS)}
                if presets
                else {m.name: i for i, m in enumerate(self.models)}
            )
            out = np.empty(len(model), dtype=np.int64)
            for i, name in enumerate(model):
                if not isinstance(name, str) or name not in index:
                    shown = repr(name) if isinstance(name, str) else type(name).__name__
                    hint = _did_you_mean(str(name), list(index)) if isinstance(name, str) else ""
                    raise ValidationError(
                        f"model[{i}]: unknown model {shown}{hint} (known: {', '.join(index)})",
                        f"model[{i}]",
                    )
                out[i] = index[name]
            return out
        return _index_column(model, "model", len(self.models))

    def __len__(self) -> int:
        return len(self._core)

    def rows(self, start: int, stop: int) -> Fleet:
        """The rows ``start:stop`` as a fleet of their own (the columns are sliced, not copied
        row by row)."""
        return Fleet({k: v[start:stop] for k, v in self._cols.items()}, self.models, self.programs)

    def __reduce__(
        self,
    ) -> tuple[Any, ...]:  # ship the columns (e.g. to Dask workers), not the core object
        return (Fleet, (self._cols, self.models, self.programs))

    def forecast(
        self,
        horizon: timedelta = timedelta(days=3650),
        assume_refills: bool = True,
        threads: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Per row, as ``datetime64[ms]`` columns (``NaT``: not within ``horizon``):
        ``next_stroke``, ``low_reservoir``, ``reservoir_empty``, ``eri``, ``eos``,
        ``physically_dry`` (the physical ledger's dry stroke: ``NaT`` for a row's pump, which is
        healthy, since its firmware count runs out first) — exactly
        ``Pump.project(horizon, assume_refills)`` of each row's pump — and what is already
        sounding, ``<alarm>_since`` for ``eos``, ``reservoir_empty``, ``motor_stall``, ``eri``,
        ``low_reservoir`` (``NaT``: not sounding; exactly ``Projection.since``). Results do not
        depend on ``threads``."""
        from ._time import duration_ms
        from ._units import flag

        raw = self._core.forecast(
            duration_ms(horizon, "horizon"), flag(assume_refills, "assume_refills"), threads
        )
        names = PROJECTION_COLUMNS + tuple(f"{a}_since" for a in ALARMS)
        return {name: raw[name + "_ms"].view("datetime64[ms]") for name in names}

    def simulate(self, until: datetime | int, threads: int | None = None) -> FleetResult:
        """Run every row's pump to ``until``: the same columns as :func:`simulate_many`."""
        return FleetResult._from_core(self._core.simulate(to_ms(until, "until"), threads))

    def pump(self, i: int) -> Pump:
        """Row ``i`` as an :class:`itb.Pump` (for a closer look at one row)."""
        c = self._cols
        k = int(c["program"][i])
        program = self.programs[k] if k >= 0 else Continuous(ug_per_day=float(c["ug_per_day"][i]))
        args: dict[str, Any] = dict(
            now=int(c["now"][i]),
            reservoir_ml=float(c["reservoir_ml"][i]),
            concentration_ug_per_ml=int(c["concentration_ug_per_ml"][i]),
            program=program,
        )
        if not any(name in c for name in self.READING_COLUMNS):
            return Pump(self.models[int(c["model"][i])], **args)
        nat = np.iinfo(np.int64).min
        battery = float(c["battery_mah"][i]) if "battery_mah" in c else float("nan")
        implanted = int(c["implanted"][i]) if "implanted" in c else nat
        alarms = [
            (a, int(c[f"{a}_since"][i]))
            for a in ALARMS
            if f"{a}_since" in c and int(c[f"{a}_since"][i]) != nat
        ]
        return Pump.from_reading(
            self.models[int(c["model"][i])],
            battery_mah=None if battery != battery else battery,
            implanted=None if implanted == nat else implanted,
            active_alarms=alarms,
            **args,
        )


def _optional_time_column(values: np.ndarray, name: str) -> np.ndarray:
    """A reading's time column as int64 ms (``NaT`` → ``i64::MIN``: none): ``datetime64`` or
    integers."""
    from .errors import ValidationError

    if values.dtype.kind == "M":
        return np.ascontiguousarray(values.astype("datetime64[ms]").view(np.int64))
    if values.dtype.kind in "iu" and values.dtype != bool:
        return np.ascontiguousarray(values, dtype=np.int64)
    raise ValidationError(
        f"{name}: expected datetime64 or int ms (NaT = none), got {values.dtype}", name
    )


def _close_name(name: str, present: Sequence[str]) -> str:
    """The present column (or name) closest to ``name`` (cut-off 0.75), else ``''``."""
    import difflib

    close = difflib.get_close_matches(name, [p for p in present if p != name], n=1, cutoff=0.75)
    return close[0] if close else ""


def _did_you_mean(name: str, present: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for a present column (or name) close to ``name``, else ``''``."""
    close = _close_name(name, present)
    return f"; did you mean {close!r}?" if close else ""


def _column_array(values: Any, name: str) -> np.ndarray:
    """A column as a numpy array; a tz-aware time column (pandas, pyarrow or Python objects)
    is refused: the pump clock is naive."""
    from .errors import ValidationError

    tz = _column_tz(values)
    if tz is not None:
        raise ValidationError(
            f"{name}: a tz-aware column ({tz}); the pump clock is naive local time "
            "(convert to the pump's local wall time and drop the zone first)",
            name,
        )
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        try:
            values = values.to_numpy()  # pandas Series, pyarrow (Chunked)Array
        except TypeError:
            values = values.to_numpy(zero_copy_only=False)  # pyarrow with nulls
    try:
        if isinstance(values, np.ndarray):
            arr = values
        else:  # Python objects: kept as they are, so a bool or a text is seen as one
            arr = np.empty(len(values), dtype=object)
            arr[:] = list(values)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name}: not a column of values ({exc})", name) from None
    if arr.ndim != 1:
        raise ValidationError(f"{name}: expected a one-dimensional column", name)
    return arr


def _column_tz(values: Any) -> str | None:
    """The time zone of a tz-aware pandas/pyarrow column, else None."""
    dtype = getattr(values, "dtype", None)
    tz = getattr(dtype, "tz", None)  # pandas DatetimeTZDtype
    if tz is not None:
        return str(tz)
    arrow_type = getattr(values, "type", None)  # pyarrow Array / ChunkedArray
    tz = getattr(arrow_type, "tz", None)
    return None if tz is None else str(tz)


def _bad_row(name: str, mask: np.ndarray) -> int | None:
    rows = np.flatnonzero(mask)
    return int(rows[0]) if len(rows) else None


def _time_column(arr: np.ndarray, name: str) -> np.ndarray:
    """Pump-clock ms of ``datetime64`` (any unit, floored to the ms), int ms, or Python objects
    (naive ``datetime``, int ms) by the rules of :func:`itb._time.to_ms` (``now[i]``)."""
    from .errors import ValidationError

    kind = arr.dtype.kind
    if kind == "M":
        nat = _bad_row(name, np.isnat(arr))
        if nat is not None:
            raise ValidationError(f"{name}[{nat}]: NaT is not a time", f"{name}[{nat}]")
        return arr.astype("datetime64[ms]").astype(np.int64)
    if kind in "iu":
        return arr.astype(np.int64)
    if kind == "O":
        return np.array([to_ms(v, f"{name}[{i}]") for i, v in enumerate(arr)], dtype=np.int64)
    raise ValidationError(
        f"{name}: a column of {_dtype_name(arr)}; expected naive date-times (datetime64) or "
        "int ms on the pump clock",
        name,
    )


def _dtype_name(arr: np.ndarray) -> str:
    return {"b": "bools", "f": "floats", "U": "strings", "S": "bytes", "m": "durations"}.get(
        arr.dtype.kind, str(arr.dtype)
    )


def _number_column(arr: np.ndarray, name: str, unit: str) -> np.ndarray:
    """A float column (ints and floats; never bools or text); finite values are checked by the
    core's rounding, which names ``name[i]``."""
    from ._units import _float

    kind = arr.dtype.kind
    if kind in "fiu":
        return arr.astype(np.float64)
    if kind == "O":
        return np.array([_float(v, f"{name}[{i}]") for i, v in enumerate(arr)], dtype=np.float64)
    return _refuse_column(arr, name, f"numbers ({unit})")


def _refuse_column(arr: np.ndarray, name: str, wanted: str) -> NoReturn:
    from .errors import ValidationError

    what = _dtype_name(arr)
    field = f"{name}[0]" if len(arr) else name
    rule = "; a bool is never a number" if arr.dtype.kind == "b" else ""
    raise ValidationError(f"{field}: a column of {what}{rule}; expected {wanted}", field)


def _whole_column(arr: np.ndarray, name: str, unit: str) -> np.ndarray:
    """A whole-number column: ints, or floats with no fraction (``2000.0``); ``2000.9`` is
    refused at its row, never truncated."""
    from ._units import concentration
    from .errors import ValidationError

    kind = arr.dtype.kind
    if kind == "O":
        return np.array([concentration(v, f"{name}[{i}]") for i, v in enumerate(arr)])
    if kind in "iu":
        return arr.astype(np.int64)
    if kind != "f":
        return _refuse_column(arr, name, f"whole numbers ({unit})")
    bad = _bad_row(name, ~np.isfinite(arr) | (arr != np.floor(arr)))
    if bad is not None:
        raise ValidationError(
            f"{name}[{bad}]: {arr[bad]:g} {unit} must be a whole number", f"{name}[{bad}]"
        )
    out_of_range = _bad_row(name, (arr < -(2.0**62)) | (arr > 2.0**62))
    if out_of_range is not None:
        raise ValidationError(
            f"{name}[{out_of_range}]: {arr[out_of_range]:g} {unit} is out of range",
            f"{name}[{out_of_range}]",
        )
    return arr.astype(np.int64)


def _index_column(
    arr: np.ndarray, name: str, count: int, *, allow_minus_one: bool = False
) -> np.ndarray:
    """Indexes into a list of ``count`` entries (``-1`` too where allowed), ``name[i]`` naming
    a bad row."""
    from .errors import ValidationError

    if arr.dtype.kind == "O":
        for i, v in enumerate(arr):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise ValidationError(
                    f"{name}[{i}]: expected an int index, got {type(v).__name__}", f"{name}[{i}]"
                )
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        return _refuse_column(arr, name, "int indexes")
    low = -1 if allow_minus_one else 0
    bad = _bad_row(name, (arr < low) | (arr >= count))
    if bad is not None:
        allowed = f"{low} to {count - 1}" if count else ("-1" if allow_minus_one else "none")
        what = "programs" if name == "program" else "models"
        raise ValidationError(
            f"{name}[{bad}]: index {arr[bad]} is outside the {count} {what} (allowed: {allowed})",
            f"{name}[{bad}]",
        )
    return arr.astype(np.int64)


def _keys(columns: Any) -> Any:
    """Column names of a mapping, DataFrame or pyarrow Table."""
    names = getattr(columns, "column_names", None)  # pyarrow
    return names if names is not None else columns.keys() if hasattr(columns, "keys") else ()
