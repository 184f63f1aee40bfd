"""Events: :class:`Event` (one thing the pump did or raised) and :class:`EventLog`, the
sequence ``Pump.advance``/``advance_to`` return.

An :class:`EventLog` keeps the events in Rust and builds an :class:`Event` only when one is
indexed or iterated; its columns go to numpy (:meth:`EventLog.to_numpy`) or pandas
(:meth:`EventLog.to_pandas`) without a Python object per event, and :meth:`EventLog.of_kind`
filters by kind in Rust. It is a ``Sequence[Event]``: ``len``, indexing, slicing, iteration, ``==``
with any sequence of events, ``+`` (a list, or an ``EventLog`` when both are logs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypedDict, Union, overload

from . import _core
from ._time import from_ms

__all__ = ["Event", "EventLog", "EventData", "EVENT_DATA"]


# ----- the data of each kind: integer fields carry their unit in the name -----------------------


class StrokeBatchData(TypedDict, total=False):
    count: int
    first_ms: int
    volume_nl: int


class ProgramChangedData(TypedDict, total=False):
    max_rate_nl_per_day: int


class BolusData(TypedDict, total=False):
    """``bolus_started``/``_completed``/``_cancelled``/``_adjusted``."""

    bolus_id: int
    volume_nl: int
    from_volume_nl: int
    delivered_nl: int
    dose_pg: int
    end_ms: int
    bolus_kind: str
    reason: str


class PatientBolusData(TypedDict, total=False):
    bolus_id: int
    reason: str


class ReservoirData(TypedDict, total=False):
    """``low_reservoir``/``reservoir_empty``."""

    reservoir_nl: int
    threshold_nl: int


class RefillData(TypedDict, total=False):
    """``refilled``/``refill_discrepancy``."""

    added_nl: int
    aspirated_nl: int
    expected_nl: int
    discrepancy_nl: int
    reason: str


class ConcentrationData(TypedDict, total=False):
    """``concentration_changed``/``drug_at_tip``."""

    from_ug_per_ml: int
    to_ug_per_ml: int


class FaultData(TypedDict, total=False):
    fault: str


class BatteryData(TypedDict, total=False):
    """``eri``/``eos``/``telemetry_session``."""

    remaining_pc: int
    charge_pc: int


class NoData(TypedDict, total=False):
    """``suspended``/``resumed``."""


EventData = Union[
    StrokeBatchData,
    ProgramChangedData,
    BolusData,
    PatientBolusData,
    ReservoirData,
    RefillData,
    ConcentrationData,
    FaultData,
    BatteryData,
    NoData,
]

#: ``kind`` → the TypedDict of its ``Event.data``.
EVENT_DATA: dict[str, type] = {
    "stroke_batch": StrokeBatchData,
    "program_changed": ProgramChangedData,
    "bolus_started": BolusData,
    "bolus_completed": BolusData,
    "bolus_cancelled": BolusData,
    "bolus_adjusted": BolusData,
    "patient_bolus_granted": PatientBolusData,
    "patient_bolus_denied": PatientBolusData,
    "low_reservoir": ReservoirData,
    "reservoir_empty": ReservoirData,
    "refilled": RefillData,
    "refill_discrepancy": RefillData,
    "concentration_changed": ConcentrationData,
    "drug_at_tip": ConcentrationData,
    "suspended": NoData,
    "resumed": NoData,
    "fault": FaultData,
    "fault_cleared": FaultData,
    "eri": BatteryData,
    "eos": BatteryData,
    "telemetry_session": BatteryData,
}


class Event:
    """Something the pump did or raised (immutable).

    ``kind`` is snake_case (``"low_reservoir"``…); ``severity`` is ``"critical"`` /
    ``"non_critical"`` for alarms, else ``None``; ``data`` holds integer fields whose names carry
    their units (``volume_nl``, ``first_ms``…) and text fields (``reason``, ``bolus_kind``,
    ``fault``). ``time`` is a naive ``datetime`` built on access from the exact ``time_ms``.
    ``seq`` is the event's sequence number: 1, 2, 3, … over the pump's life, strictly
    increasing in the order events are returned (kept in snapshots; 0 for an event built by hand).
    """

    __slots__ = ("time_ms", "kind", "severity", "data", "seq")

    time_ms: int
    kind: str
    severity: str | None
    data: EventData  # the TypedDict of its kind: EVENT_DATA[kind]
    seq: int

    def __init__(
        self,
        time_ms: int,
        kind: str,
        severity: str | None = None,
        data: EventData | dict[str, Any] | None = None,
        seq: int = 0,
    ) -> None:
        object.__setattr__(self, "time_ms", time_ms)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "data", {} if data is None else data)
        object.__setattr__(self, "seq", seq)

    @property
    def time(self) -> datetime:
        return from_ms(self.time_ms)

    @classmethod
    def _from_core(cls, raw: tuple) -> Event:
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "time_ms", raw[0])
        setattr_(self, "kind", raw[1])
        setattr_(self, "severity", raw[2])
        setattr_(self, "data", raw[3])
        setattr_(self, "seq", raw[4])
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("itb.Event is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.time_ms, self.kind, self.severity, self.data, self.seq) == (
            other.time_ms,
            other.kind,
            other.severity,
            other.data,
            other.seq,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sev = f", severity={self.severity!r}" if self.severity else ""
        return (
            f"Event(seq={self.seq}, time={self.time.isoformat(timespec='milliseconds')}, kind={self.kind!r}{sev}, "
            f"data={self.data!r})"
        )

    def __reduce__(self) -> tuple:
        return (Event, (self.time_ms, self.kind, self.severity, self.data, self.seq))


class EventLog(Sequence):  # Sequence[Event]
    """The events of one advance, in causal order (see :class:`Event`), backed by Rust columns.

    ``log[i]`` is an :class:`Event` (built on access), ``log[a:b]`` an :class:`EventLog` (a
    stepped slice a list); iterating builds every :class:`Event`. Cheap without building events:

    - ``len(log)``, ``log.kinds`` (numpy array of kind names), ``log.of_kind("low_reservoir", …)``;
    - ``log.to_numpy()``: a dict of numpy arrays — ``time`` (``datetime64[ms]``), ``time_ms``
      (int64), ``seq`` (uint64), ``kind`` (str), ``severity`` (str, ``""`` when not an alarm),
      one int64 masked array per integer data field (masked where an event has no such field,
      units in the name: ``volume_nl``…) and one object array per text field (``reason``…);
    - ``log.to_pandas()``: the same as a DataFrame (nullable ``Int64`` data columns, ``kind`` and
      ``severity`` categorical); needs pandas (``pip install 'itb[pandas]'``).

    Pickling gives a plain list of events.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw  # itb._core.EventLog

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> EventLog: ...

    def __getitem__(self, index: int | slice) -> Event | EventLog:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self._raw))
            if step == 1:
                return EventLog(self._raw.slice(start, max(start, stop)))
            return [self[i] for i in range(start, stop, step)]  # type: ignore[return-value]
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"EventLog indices must be int or slice, not {type(index).__name__}")
        return Event._from_core(self._raw.get(index))

    def __iter__(self) -> Iterator[Event]:
        return map(Event._from_core, self._raw.tuples())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: object) -> Any:
        if isinstance(other, EventLog):
            return EventLog(self._raw.concat(other._raw))
        if isinstance(other, Sequence):
            return list(self) + list(other)
        return NotImplemented

    def __radd__(self, other: object) -> Any:
        if isinstance(other, Sequence):
            return list(other) + list(self)
        return NotImplemented

    def __repr__(self) -> str:
        return f"<itb.EventLog of {len(self)} events: {', '.join(self.kinds[:5].tolist())}{', …' if len(self) > 5 else ''}>"

    def __reduce__(self) -> tuple:
        return (list, (list(self),))

    @property
    def kinds(self) -> Any:
        """Kind names as a numpy array of str (no :class:`Event` built)."""
        import numpy as np

        names = np.array(_core.EventLog.kind_names())
        return names[self._raw.columns()["kind"]] if len(self) else names[:0]

    def of_kind(self, *kinds: str) -> EventLog:
        """The events whose kind is one of ``kinds``, in order (filtered in Rust). An unknown
        kind is a ``ValidationError``."""
        known = set(_core.EventLog.kind_names())
        for k in kinds:
            if k not in known:
                from .errors import ValidationError

                raise ValidationError(
                    f"kinds: unknown event kind {k!r}; known: {sorted(known)}", "kinds"
                )
        return EventLog(self._raw.select(list(kinds)))

    def to_numpy(self) -> dict[str, Any]:
        """The log as a dict of numpy arrays (see the class docstring)."""
        import numpy as np

        cols = self._raw.columns()
        names = np.array(_core.EventLog.kind_names())
        severities = np.array(["", "non_critical", "critical"])
        out: dict[str, Any] = {
            "time": cols["time_ms"].astype("datetime64[ms]"),
            "time_ms": cols["time_ms"],
            "seq": cols["seq"],
            "kind": names[cols["kind"]] if len(self) else names[:0],
            "severity": severities[cols["severity"]] if len(self) else severities[:0],
        }
        for key, (values, present) in cols["ints"].items():
            out[key] = np.ma.MaskedArray(values, mask=~present)
        for key, values in cols["texts"].items():
            out[key] = np.array(values, dtype=object)
        return out

    def to_pandas(self) -> Any:
        """The log as a pandas DataFrame, one row per event (see the class docstring)."""
        import numpy as np

        from ._extras import require

        pd = require("pandas", "pandas", "EventLog.to_pandas()")
        frame: dict[str, Any] = {}
        for key, col in self.to_numpy().items():
            if isinstance(col, np.ma.MaskedArray):
                frame[key] = pd.arrays.IntegerArray(
                    np.asarray(col.data, dtype=np.int64), np.ma.getmaskarray(col)
                )
            elif key in ("kind", "severity"):
                frame[key] = pd.Categorical(col)
            else:
                frame[key] = col
        return pd.DataFrame(frame)
