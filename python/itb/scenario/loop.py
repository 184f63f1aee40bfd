"""The one run loop of a scenario, as a step iterator.

:func:`steps` advances a *target* to each action's time (and to each sample time, where the
state is observed before the actions of that instant), makes the action's call, and finally
advances to the end; it yields one :class:`Step` per action, sample and the end. Actions at the
same instant are called one after the other with no advance between, exactly as a program calling
:class:`itb.Pump` would. Every number comes from the pump (the Rust core).

The target is a :class:`RunTarget`: by default a :class:`PumpTarget` around a fresh pump
(``Scenario.run``, ``Scenario.stroke_times``, ``itb.export.timeseries`` use it); the testing
kit's ``Oracle`` and a rig driver plug in their own, so that every consumer runs a scenario
through this one loop::

    import itb.scenario

    scenario = itb.scenario.loads('''
    [pump]
    model = "SYNCHROMED_II_40"
    start = 2026-01-05T08:00:00
    reservoir_ml = 20.0
    concentration_ug_per_ml = 2000
    program = { kind = "continuous", ug_per_day = 400.0 }

    [[actions]]
    at = 2026-01-05T10:00:00
    do = "bolus"
    dose_ug = 50.0
    duration = "PT30M"

    [run]
    until = 2026-01-06T08:00:00
    ''')
    for step in scenario.steps():
        print(step.kind, step.at, step.action.do if step.action else "", len(step.events))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .._time import from_ms, to_ms
from ..errors import ItbError
from ..pump import Event, Pump
from .issues import Issue, ScenarioError
from .spec import CancelBolus, SetProgram

__all__ = ["Step", "RunTarget", "PumpTarget", "steps"]


@dataclass(frozen=True)
class Step:
    """One step of a run.

    ``kind`` is ``"action"`` (``index``, ``action`` — the scenario's action model, with ``do``,
    ``at`` and its keyword arguments — and ``result``, what the pump method returned),
    ``"sample"`` (a sample time asked for) or ``"end"`` (the run's end). ``events`` are the
    events of the advance that led to this step (before its call). ``pump`` is the target's
    pump when the target has one (a :class:`PumpTarget`), else ``None``."""

    kind: str
    at: datetime
    events: Sequence[Event] = field(default_factory=list)
    index: int | None = None
    action: Any = None
    result: Any = None
    pump: Pump | None = None


class RunTarget(Protocol):
    """What the loop drives: a pump clock, advancing, and calling a pump method."""

    @property
    def now_ms(self) -> int: ...

    def advance_to(self, at_ms: int) -> Sequence[Event]:
        """Let time pass to ``at_ms``; the events raised on the way."""
        ...

    def call(self, method: str, **kwargs: Any) -> Any:
        """``pump.<method>(**kwargs)`` now; raises the pump's ``ItbError`` if refused."""
        ...


class PumpTarget:
    """A :class:`RunTarget` around an :class:`itb.Pump`. With ``record`` (a list), every advance
    also appends its stroke times (an int64 numpy array) to it."""

    def __init__(self, pump: Pump, record: list[Any] | None = None) -> None:
        self.pump = pump
        self.record = record

    @property
    def now_ms(self) -> int:
        return self.pump.now_ms

    def advance_to(self, at_ms: int) -> Sequence[Event]:
        if self.record is None:
            return self.pump.advance_to(at_ms)
        events, times = self.pump.advance_recording(at_ms)
        self.record.append(times)
        return events

    def call(self, method: str, **kwargs: Any) -> Any:
        return getattr(self.pump, method)(**kwargs)


def steps(
    scenario: Any,
    until: datetime,
    target: RunTarget,
    *,
    samples: Sequence[datetime] = (),
) -> Iterator[Step]:
    """Run ``scenario`` (an :class:`itb.scenario.Scenario`) on ``target`` to ``until``: one
    :class:`Step` per sample time and action up to ``until`` (in time order; at one instant the
    samples first, then the actions in file order), then the ``"end"`` step. A call the pump
    refuses raises :class:`ScenarioError` naming the action, field, time and line."""
    pump = getattr(target, "pump", None)
    until_ms = to_ms(until, "until")
    ids: dict[str, int | None] = {}
    order: list[tuple[int, int, int, Any]] = [(to_ms(t, "sample"), 0, 0, None) for t in samples]
    order += [
        (to_ms(a.at, "at"), 1, i, a) for i, a in enumerate(scenario.spec.actions) if a.at <= until
    ]
    order.sort(key=lambda s: (s[0], s[1], s[2]))
    for at_ms, is_action, index, action in order:
        # calls at the same instant follow each other with no advance between
        events = target.advance_to(at_ms) if at_ms != target.now_ms else []
        if not is_action:
            yield Step("sample", from_ms(at_ms), events, pump=pump)
        else:
            result = _apply(scenario, target, index, action, ids)
            yield Step("action", action.at, events, index, action, result, pump)
    yield Step("end", until, target.advance_to(until_ms), pump=pump)


def _apply(
    scenario: Any, target: RunTarget, index: int, action: Any, ids: dict[str, int | None]
) -> Any:
    kwargs = action.kwargs()
    if isinstance(action, CancelBolus):
        bolus_id = ids.get(action.name)
        if bolus_id is None:  # named by a patient bolus that was denied
            raise ScenarioError(
                scenario.source,
                [
                    Issue(
                        f"the bolus named {action.name!r} never started (its activation was denied)",
                        f"actions[{index}]",
                        "name",
                        scenario._line("actions", index, "name"),
                        time=action.at,
                    )
                ],
            )
        kwargs = {"bolus_id": bolus_id}
    try:
        outcome = target.call(action.do, **kwargs)
    except ItbError as exc:
        field_ = exc.field
        if isinstance(action, SetProgram) and (
            field_ == "ug_per_day" or field_.startswith("steps")
        ):
            field_ = f"program.{field_}"  # a key of the action's program table, as at load time
        key = field_.split(".")[0] if field_.split(".")[0] in type(action).model_fields else ""
        line = scenario._line("actions", index, key or "do")  # the key, else the call's `do` line
        raise ScenarioError(
            scenario.source,
            [
                Issue(
                    f"the pump refused {action.do}: {exc}",
                    f"actions[{index}]",
                    field_,
                    line,
                    time=action.at,
                )
            ],
        ) from exc
    name = getattr(action, "name", None)
    if name is not None and not isinstance(action, CancelBolus):
        ids[name] = getattr(outcome, "bolus_id", outcome)
    return outcome
