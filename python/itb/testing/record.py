"""Recorded hardware: what a suite sent to a device and what it read back, as a log file; the log
replayed offline against the :class:`~itb.testing.Oracle`; any run (a shrunk counter-example of
:class:`~itb.testing.PumpStateMachine` too) written as a scenario TOML file for rig regression
tests.

The log is JSON Lines (UTF-8, one object a line), the calls in the scenario format's own terms::

    {"format": "itb-device-log", "version": 1, "pump": {...the scenario's [pump] table...}}
    {"at": "2026-01-05T10:00:00", "do": "bolus", "dose_ug": 40.0, "duration": "PT1H", "name": "b1"}
    {"at": "2026-01-05T14:00:00", "read": "pumped_nl", "value": 42000}
    {"at": "2026-07-14T05:36:00", "alarm": "low_reservoir"}

``do`` entries are scenario actions (``at``, ``do`` and the method's keyword arguments, durations
as ISO 8601 strings, programs as scenario tables, a bolus's ``name`` for a later
``cancel_bolus``); ``read`` entries are cumulative readings (``pumped_nl``, ``delivered_nl`` or
``delivered_pg``: whole numbers); ``alarm`` entries are the alarms the device raised. Times are
naive pump-clock ISO 8601 date-times; entries come in time order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .._time import ClockTextError, from_ms, parse_instant, to_ms
from .._units import nl_to_ml, nl_to_ul
from ..errors import ValidationError
from ..pump import Pump
from .asserts import QUANTITIES, assert_alarms_match, assert_delivery_matches
from .oracle import Oracle

__all__ = ["DeviceLog", "replay", "scenario_table", "pump_table", "FORMAT"]

FORMAT = "itb-device-log"
VERSION = 1


def _t(value: Any) -> Any:
    """A log's ISO 8601 time as a datetime (other times as they are)."""
    if isinstance(value, str):
        try:
            return parse_instant(value)
        except ClockTextError as exc:
            raise ValidationError(f"at: {exc}", "at") from None
    return value


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")


def _value(value: Any) -> Any:
    """A keyword argument in the scenario format's terms."""
    from ..program import Continuous, Flex
    from ..scenario import format_duration
    from .strategies import program_dict

    if isinstance(value, (Continuous, Flex)):
        return program_dict(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return _iso(value)
    return value


def pump_table(pump: Pump) -> dict[str, Any]:
    """The scenario ``[pump]`` table of a starting pump (a preset model by name, else in full).
    Raises ``ValidationError`` when the table would not rebuild the same pump (a state the
    format cannot express: give the table yourself)."""
    from ..scenario import from_dict
    from .strategies import program_dict
    from .strategies.scenarios import _model_dict

    m = pump.model.exact()
    table: dict[str, Any] = {
        "model": _model_dict(pump.model),
        "start": _iso(pump.now),
        "reservoir_ml": nl_to_ml(pump.reservoir_nl),
        "concentration_ug_per_ml": pump.concentration_ug_per_ml,
        "program": program_dict(pump.program),
        "catheter_volume_ul": nl_to_ul(pump.path_nl - m["pump_path_nl"]),
    }
    if pump.tip_concentration_ug_per_ml == 0:
        table["path_primed"] = False
    rebuilt = from_dict({"pump": table, "actions": []}).pump()
    if rebuilt.snapshot() != pump.snapshot():
        raise ValidationError(
            "pump_table: this pump is not the fresh state of a scenario's [pump] table (it has "
            "history or settings the table cannot hold); write the table yourself",
            "pump",
        )
    return table


def scenario_table(
    start: Pump | dict[str, Any],
    calls: list[tuple[datetime, str, dict[str, Any]]],
    until: datetime | None = None,
) -> dict[str, Any]:
    """A scenario (as a dict: ``itb.scenario.from_dict`` / ``dumps``) of ``calls`` —
    ``(time, method, kwargs)`` as :attr:`Oracle.calls` gives them — from ``start`` (a pump or
    its ``[pump]`` table). Bolus ids become names (``b<id>``) for ``cancel_bolus``."""
    from .. import scenario as sc

    table = pump_table(start) if isinstance(start, Pump) else dict(start)
    replayed = sc.from_dict({"pump": table, "actions": []}).pump()
    actions: list[dict[str, Any]] = []
    names: dict[int, str] = {}
    for at, method, kwargs in calls:
        entry: dict[str, Any] = {"at": _iso(at), "do": method}
        if method == "cancel_bolus":
            entry["name"] = names.get(kwargs["bolus_id"], f"b{kwargs['bolus_id']}")
        else:
            entry.update(
                {k: _value(v) for k, v in kwargs.items() if not (k == "dose_ug" and v is None)}
            )
        replayed.advance_to(at)
        result = getattr(replayed, method)(**kwargs)
        bolus_id = getattr(result, "bolus_id", result)
        if (
            isinstance(bolus_id, int)
            and not isinstance(bolus_id, bool)
            and method
            in (
                "bolus",
                "start_bridge_bolus",
                "start_priming_bolus",
                "patient_bolus",
            )
        ):
            names[bolus_id] = entry["name"] = f"b{bolus_id}"
        actions.append(entry)
    out: dict[str, Any] = {"pump": table, "actions": actions}
    if until is not None:
        out["run"] = {"until": _iso(until)}
    return out


@dataclass
class DeviceLog:
    """What a suite sent to a device and what it read back (see the module docs for the file
    format). Record as you go::

        log = DeviceLog(pump_table(start_pump))
        log.call(t, "bolus", dose_ug=40.0, duration=timedelta(hours=1), name="b1")
        log.reading(t2, 42_000)                      # cumulative nL pumped
        log.alarm(t3, "low_reservoir")
        log.save("run.jsonl"); DeviceLog.load("run.jsonl")
        replay(log)                                  # AssertionError where the device diverged
    """

    pump: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)

    def _at(self, at: Any) -> str:
        t = from_ms(to_ms(_t(at), "at"))
        if self.entries and _t(self.entries[-1]["at"]) > t:
            raise ValidationError(
                f"DeviceLog: {t} is before the latest entry ({self.entries[-1]['at']})", "at"
            )
        return _iso(t)

    def call(self, at: Any, method: str, **kwargs: Any) -> None:
        """A call sent to the device (a scenario action: ``method`` and its keyword arguments)."""
        from ..scenario import ACTIONS

        if method not in ACTIONS:
            raise ValidationError(
                f"DeviceLog.call: {method!r} is not a scenario action ({', '.join(ACTIONS)})",
                "method",
            )
        self.entries.append(
            {"at": self._at(at), "do": method, **{k: _value(v) for k, v in kwargs.items()}}
        )

    def reading(self, at: Any, value: Any, quantity: str = "pumped_nl") -> None:
        """A cumulative reading (a whole number of nL, or pg for ``delivered_pg``)."""
        if quantity not in QUANTITIES:
            raise ValidationError(
                f"quantity={quantity!r}: one of {', '.join(QUANTITIES)}", "quantity"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"value={value!r}: a reading is a whole number (int)")
        self.entries.append({"at": self._at(at), "read": quantity, "value": value})

    def alarm(self, at: Any, kind: str) -> None:
        """An alarm the device raised."""
        self.entries.append({"at": self._at(at), "alarm": kind})

    # ----- files --------------------------------------------------------------------------------
    def dumps(self) -> str:
        head = {"format": FORMAT, "version": VERSION, "pump": self.pump}
        return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in [head, *self.entries])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    @classmethod
    def loads(cls, text: str, source: str = "<string>") -> DeviceLog:
        lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        if not lines:
            raise ValidationError(f"{source}: empty, not an {FORMAT} file", "log")
        parsed = []
        for i, line in lines:
            try:
                parsed.append((i, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{source}:{i}: not JSON ({exc.msg})", "log") from None
        (_, head), rest = parsed[0], parsed[1:]
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise ValidationError(f"{source}:1: not an {FORMAT} file (no format header)", "log")
        if head.get("version") != VERSION:
            raise ValidationError(
                f"{source}:1: version {head.get('version')!r}; this itb reads version {VERSION}",
                "log",
            )
        for i, entry in rest:
            if (
                not isinstance(entry, dict)
                or "at" not in entry
                or not ({"do", "read", "alarm"} & set(entry))
            ):
                raise ValidationError(
                    f"{source}:{i}: an entry has 'at' and one of 'do', 'read', 'alarm'", "log"
                )
        return cls(head.get("pump") or {}, [e for _, e in rest])

    @classmethod
    def load(cls, path: str | Path) -> DeviceLog:
        return cls.loads(Path(path).read_text(encoding="utf-8"), str(path))

    # ----- views --------------------------------------------------------------------------------
    def scenario(self) -> dict[str, Any]:
        """The calls as a scenario dict (``itb.scenario.from_dict``), run to the last entry."""
        actions = [e for e in self.entries if "do" in e]
        out: dict[str, Any] = {"pump": self.pump, "actions": actions}
        if self.entries:
            out["run"] = {"until": self.entries[-1]["at"]}
        return out

    def scenario_toml(self) -> str:
        """The calls as a scenario TOML file (for a rig regression test)."""
        from .. import scenario as sc

        return sc.dumps(sc.from_dict(self.scenario(), "<device log>"))


def replay(log: DeviceLog, *, tol_strokes: int = 0, alarm_tol: timedelta = timedelta(0)) -> Oracle:
    """Check a recorded run offline: the oracle of the log's calls (a scenario), every reading
    (:func:`assert_delivery_matches`, per quantity) and the alarms
    (:func:`assert_alarms_match`, up to the last entry). Raises ``AssertionError`` where the
    device diverged; returns the oracle (its :attr:`Oracle.results` are each call's result)."""
    from .. import scenario as sc

    oracle = Oracle(sc.from_dict(log.scenario(), "<device log>"))
    for quantity in QUANTITIES:
        reads = [e for e in log.entries if e.get("read") == quantity]
        if reads:
            assert_delivery_matches(
                [_t(e["at"]) for e in reads],
                [e["value"] for e in reads],
                oracle,
                tol_strokes,
                quantity=quantity,
            )
    alarms = [(e["at"], e["alarm"]) for e in log.entries if "alarm" in e]
    if log.entries:
        assert_alarms_match(
            [(_t(t), k) for t, k in alarms],
            oracle,
            tol=alarm_tol,
            until=_t(log.entries[-1]["at"]),
        )
    return oracle
