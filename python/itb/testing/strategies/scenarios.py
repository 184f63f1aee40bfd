"""Scenario dicts in the TOML format (valid and invalid), and the model/program to-dict helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from ... import models as _models
from ..._time import to_ms
from ..._units import nl_to_ml, ug_to_ng
from ...models import PumpModel
from ...program import Program
from ...pump import Pump
from ...scenario.spec import _BATTERY_FIELDS, _MODEL_FIELDS
from ...scenario.spec import ACTIONS as _SPEC_ACTIONS
from ...scenario.spec import FAULT_ACTIONS as _FAULT_ACTIONS
from ._common import (
    _CORE_MAX_CATHETER_UL,
    _MAX_CONC,
    _MAX_DOSE_NG,
    _MAX_PER_24H,
    _MIN_MS,
    DAY_MS,
    InvalidArgument,
    _check_duration,
    _check_int,
    _names,
)
from ._exact import _ng_bounds, _rate_nl, _ug
from .boluses import _bolus_parts, refills
from .devices import _times
from .faults import fault_actions
from .programs import concentrations, programs, pump_models

# ----- scenarios --------------------------------------------------------------------------------


def program_dict(program: Program) -> dict[str, Any]:
    """A program as a scenario's ``program`` table (:meth:`itb.Flex.to_dict`: a program keeps
    the doses the pump runs, so the table rebuilds an equal program)."""
    return program.to_dict()


def _model_dict(m: PumpModel) -> Any:
    for name, preset in _models.PRESETS.items():
        if preset == m:
            return name
    out: dict[str, Any] = {
        k: getattr(m, k)
        for k in _MODEL_FIELDS  # the scenario format's model keys, defined once there
    }
    if m.battery is None:
        out["battery"] = "none"
    elif m.battery == _models.NOMINAL_BATTERY:
        out["battery"] = "NOMINAL"
    else:
        # the scenario format's battery keys (one list), but the alarm tones: strategies keep them
        out["battery"] = {
            k: getattr(m.battery, k) for k in _BATTERY_FIELDS if not k.endswith("_tone")
        }
    return out


def _iso(d: timedelta) -> str:
    from ...scenario.spec import format_duration

    return format_duration(d)


def _without_draining_battery(
    m: PumpModel, budget_nl: int, horizon_ms: int, max_actions: int, extra_nl: int = 0
) -> PumpModel:
    """``m``, or ``m`` without its battery if the worst case of a run (the rate budget for the
    horizon plus ``extra_nl`` of priming) could reach EOS."""
    if m.battery is None:
        return m
    from dataclasses import replace

    b = m.battery.exact()
    strokes = (budget_nl * horizon_ms // DAY_MS + extra_nl) // m.stroke_nl + 2
    tones = 5 * (horizon_ms // min(b["critical_tone_ms"], b["non_critical_tone_ms"]) + 1)
    drain = (
        b["quiescent_pc_per_ms"] * horizon_ms
        + b["stroke_pc"] * strokes
        + b["tone_pc"] * tones
        + b["telemetry_pc"] * (max_actions + 1)
    )
    if drain < b["capacity_pc"] - b["eri_pc"]:
        return m
    return replace(m, battery=None)


def _bisect(pred: Any, lo: int, hi: int, first_true: bool) -> int | None:
    """For ``pred`` monotone on lo..=hi: the smallest c with pred(c) (pred false…true) when
    ``first_true``, else the largest (pred true…false); None if there is none."""
    if first_true:
        if not pred(hi):
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if pred(mid) else (mid + 1, hi)
        return lo
    if not pred(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if pred(mid) else (lo, mid - 1)
    return lo


#: Most priming boluses a drawn scenario holds (their volume is reserved in the battery check).
_MAX_PRIMINGS = 2
_MAX_CATHETER_UL = 1000


class _GeneratorBug(AssertionError):
    """A call a drawn scenario makes is refused by the pump: a bug in :func:`scenarios`."""


#: The ``do`` names :func:`scenarios` draws.
#: The ``do`` names of the scenario format (its action table, :data:`itb.scenario.ACTIONS`).
SCENARIO_ACTIONS: tuple[str, ...] = tuple(a for a in _SPEC_ACTIONS if a not in _FAULT_ACTIONS)


def scenarios(
    max_actions: int = 8,
    horizon: timedelta = timedelta(days=2),
    presets_only: bool = False,
    actions: Sequence[str] | None = None,
    faults: bool = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """Scenario dicts :func:`itb.scenario.from_dict` accepts and that run to ``[run] until``
    without a refused call (see the module docstring for how that is kept true). ``actions``:
    the ``do`` names to draw from (default: all of :data:`SCENARIO_ACTIONS`; a bare string is
    one name, ``"bolus"`` is ``("bolus",)``; empty or unknown: ``InvalidArgument``). ``faults`` (off by
    default): also draw fault actions (:func:`fault_actions` on the pump run alongside: an
    occlusion, a leak or disconnection within the catheter, a tip migration, a pocket fill at a
    refill that still holds the horizon's budget by the firmware's count, a battery fault, a
    stall, and the clearing of each in force)."""
    if not isinstance(faults, bool):
        raise InvalidArgument(f"faults: expected True or False, got {faults!r}")
    _check_int(max_actions, "max_actions", 0)
    _check_duration(horizon, "horizon", timedelta(minutes=1))
    allowed = frozenset(_names(actions, SCENARIO_ACTIONS, "actions"))

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        from ...errors import ItbError

        m = draw(pump_models(presets_only=presets_only))
        ex = m.exact()
        conc = draw(concentrations())
        cap, stroke, max_nl = ex["reservoir_nl"], ex["stroke_nl"], ex["max_rate_nl_per_day"]
        horizon_ms = draw(
            st.one_of(
                st.just(DAY_MS),
                st.integers(1, max(1, horizon // timedelta(minutes=1))).map(lambda n: n * _MIN_MS),
            )
        )
        horizon_ms = min(horizon_ms, horizon // timedelta(milliseconds=1))
        # fill needed so the reservoir cannot empty: the whole rate budget for the horizon + a stroke
        usable = cap - 2 * stroke - 1
        budget = min(max_nl, max(0, usable) * DAY_MS // max(1, horizon_ms))
        need_nl = budget * horizon_ms // DAY_MS + 2 * stroke + 1
        bolus_budget = budget // 2

        def program_strategy(c: int) -> st.SearchStrategy[Program]:
            basal_cap_ug = (budget // 2) * c / 1_000_000  # µg/day of half the budget, floored below
            return programs(
                m, c, max_steps_per_day=4, max_ug_per_day=max(0.0, basal_cap_ug - c / 1_000_000)
            )

        prog_st = program_strategy(conc)
        program = draw(prog_st)
        m = _without_draining_battery(
            m,
            budget,
            horizon_ms,
            max_actions,
            _MAX_PRIMINGS * (ex["pump_path_nl"] + _MAX_CATHETER_UL * 1000),
        )
        start = draw(_times().filter(lambda d: d.year < 2099))
        fill_ul = (
            draw(st.integers(min(-(-need_nl // 1000), cap // 1000), cap // 1000))
            if need_nl <= cap
            else cap // 1000
        )
        pump: dict[str, Any] = {
            "model": _model_dict(m),
            "start": start,
            "reservoir_ml": fill_ul / 1000,
            "concentration_ug_per_ml": conc,
            "program": program_dict(program),
        }
        catheter = draw(st.one_of(st.none(), st.integers(0, _MAX_CATHETER_UL)))
        if catheter is not None:
            pump["catheter_volume_ul"] = float(catheter)
        primed = draw(st.integers(0, 3)) < 3  # a saline path one time in four
        if not primed:
            pump["path_primed"] = False
        # a pump run alongside: bridge and priming boluses are added only where it plans one, and
        # every call is checked on it (a refusal is a bug here, reported loudly)
        sync = Pump(
            m,
            now=start,
            reservoir_ml=fill_ul / 1000,
            concentration_ug_per_ml=conc,
            program=program,
            catheter_volume_ul=float(catheter or 0),
            path_primed=primed,
        )
        can_pump = need_nl <= fill_ul * 1000  # the reservoir holds the whole horizon's budget
        end = start + timedelta(milliseconds=horizon_ms)
        kinds = [
            "telemetry_session",
            "set_program",
            "suspend",
            "inject_motor_stall",
            "revise_catheter",
        ]
        if can_pump:
            kinds[1:1] = [
                "bolus",
                "refill",
                "set_patient_bolus_limits",
                "patient_bolus",
                "start_priming_bolus",
            ]
        kinds = [k for k in kinds if k in allowed] or ["telemetry_session"]
        if faults:  # about half of the actions: an injection is often followed by its clearing
            kinds += ["fault"] * len(kinds)
        actions: list[dict[str, Any]] = []
        t = start
        suspended = stalled = False
        limits: tuple[int, int] | None = None  # (ng, ms) of the patient bolus, when enabled
        n_named = primings = 0

        def call(act: dict[str, Any], method: str, **kwargs: Any) -> Any:
            if sync.now_ms != to_ms(act["at"], "at"):
                sync.advance_to(act["at"])
            try:
                out = getattr(sync, method)(**kwargs)
            except ItbError as exc:
                raise _GeneratorBug(
                    f"itb.strategies.scenarios drew a call the pump refuses (a bug in itb): "
                    f"{act} -> {type(exc).__name__}: {exc}"
                ) from exc
            actions.append(act)
            return out

        def planned(kind: str, act_at: datetime) -> Any | None:
            """The plan of a bridge/priming bolus at ``act_at`` if the pump makes one and it fits."""
            if suspended or stalled or not can_pump:
                return None
            if sync.now_ms != to_ms(act_at, "at"):
                sync.advance_to(act_at)
            try:
                plan = getattr(sync, f"{kind}_bolus_plan")()
                # the plan is made whatever the rate room: on top of the basal and the other
                # boluses it may pass the model's maximum rate, and the pump refuses it then
                getattr(sync.copy(), f"start_{kind}_bolus")()
            except ItbError:
                return None
            if kind == "priming":
                # beyond the rate budget: the reservoir must hold it on top of the rest of the horizon
                rest = (
                    budget * ((end - act_at) // timedelta(milliseconds=1)) // DAY_MS
                    + 2 * stroke
                    + 1
                )
                if primings >= _MAX_PRIMINGS or sync.reservoir_nl < plan.volume_nl + rest:
                    return None
            return plan

        def new_strength(program_now: Program, change: str) -> st.SearchStrategy[int] | None:
            """Strengths above (``change="up"``) or below ``conc`` keeping the program valid, its
            basal under half the budget and the patient bolus under the other half (each an
            interval of concentrations)."""
            raw = program_now.exact()
            doses = [raw[1]] if raw[0] == "continuous" else [ng for _, ng in raw[2]]
            doses = [ng for ng in doses if ng > 0]

            def high_enough(c: int) -> bool:  # volumes fall as the strength rises
                ok = all(
                    _rate_nl(ng, c) <= min(ex["max_rate_nl_per_day"], budget // 2) for ng in doses
                )
                return ok and (
                    limits is None or _rate_nl(limits[0], c) * DAY_MS <= bolus_budget * limits[1]
                )

            def low_enough(c: int) -> bool:
                return all(_rate_nl(ng, c) >= ex["min_rate_nl_per_day"] for ng in doses)

            lo, hi = (
                _bisect(high_enough, 1, _MAX_CONC, True),
                _bisect(low_enough, 1, _MAX_CONC, False),
            )
            if lo is None or hi is None:
                return None
            lo, hi = (max(lo, conc + 1), hi) if change == "up" else (lo, min(hi, conc - 1))
            return concentrations(lo, hi) if lo <= hi else None

        for kind in draw(st.lists(st.sampled_from(kinds), max_size=max_actions)):
            t = t + timedelta(
                minutes=draw(st.integers(0, max(0, horizon_ms // _MIN_MS // max(1, max_actions))))
            )
            if t > end:
                break
            act: dict[str, Any] = {"at": t, "do": kind}
            after = timedelta(0)
            if kind == "suspend":
                act["do"] = "resume" if suspended else "suspend"
                if act["do"] not in allowed:
                    continue
                call(act, act["do"])
                suspended = not suspended
            elif kind == "inject_motor_stall":
                act["do"] = "clear_fault" if stalled else "inject_motor_stall"
                if act["do"] not in allowed:
                    continue
                call(act, act["do"])
                stalled = not stalled
            elif kind == "set_program":
                program = draw(prog_st)
                act["program"] = program_dict(program)
                call(act, "set_program", program=program)
            elif kind == "revise_catheter":
                act["volume_ul"] = float(draw(st.integers(0, _MAX_CATHETER_UL)))
                call(act, "revise_catheter", volume_ul=act["volume_ul"])
                if "start_priming_bolus" in allowed and draw(
                    st.booleans()
                ):  # prime the new catheter at once
                    plan = planned("priming", t)
                    if plan is not None:
                        call({"at": t, "do": "start_priming_bolus"}, "start_priming_bolus")
                        primings += 1
                        after = plan.duration
            elif (
                kind == "start_priming_bolus"
            ):  # a saline path (path_primed = false, a new catheter)
                plan = planned("priming", t)
                if plan is None:
                    continue
                call(act, "start_priming_bolus")
                primings += 1
                after = plan.duration
            elif kind == "refill":
                change = draw(st.sampled_from(["same", "up", "down"]))
                strengths = None if change == "same" else new_strength(program, change)
                new_conc = conc if strengths is None else draw(strengths)
                r = draw(refills(m, conc, min_added_ml=nl_to_ml(need_nl)))
                act.update(added_ml=r.added_ml, concentration_ug_per_ml=new_conc)
                if r.aspirated_ml is not None:
                    act["aspirated_ml"] = r.aspirated_ml
                call(
                    act,
                    "refill",
                    added_ml=r.added_ml,
                    concentration_ug_per_ml=new_conc,
                    aspirated_ml=r.aspirated_ml,
                )
                old, conc = conc, new_conc
                if conc != old:
                    prog_st = program_strategy(conc)
                if (
                    conc > old and "start_bridge_bolus" in allowed and draw(st.integers(0, 3)) > 0
                ):  # mostly a bridge at once
                    plan = planned("bridge", t)
                    if plan is not None:
                        call({"at": t, "do": "start_bridge_bolus"}, "start_bridge_bolus")
                        after = plan.duration
            elif kind in ("bolus", "set_patient_bolus_limits", "patient_bolus"):
                left = int((end - t) / timedelta(milliseconds=1))
                if kind == "patient_bolus" and limits is None:
                    kind = act["do"] = "set_patient_bolus_limits"
                    if kind not in allowed:
                        continue
                if kind == "patient_bolus":
                    assert limits is not None
                    after = timedelta(milliseconds=limits[1])
                    if t + after > end:
                        break
                    call(act, "patient_bolus")
                else:
                    parts = (
                        draw(
                            _bolus_parts(m, conc, bolus_budget, min(left, DAY_MS), None) | st.none()
                        )
                        if left > 0
                        else None
                    )
                    if parts is None:
                        continue
                    dose, duration = parts
                    act.update(dose_ug=dose, duration=_iso(duration))
                    if kind == "bolus":
                        after = duration
                        if "cancel_bolus" in allowed and draw(st.booleans()):
                            n_named += 1
                            act["name"] = f"b{n_named}"
                            bolus_id = call(act, "bolus", dose_ug=dose, duration=duration)
                            act = {"at": t, "do": "cancel_bolus", "name": act["name"]}
                            call(act, "cancel_bolus", bolus_id=bolus_id)
                        else:
                            call(act, "bolus", dose_ug=dose, duration=duration)
                    else:
                        lockout = draw(st.one_of(st.just(60), st.integers(0, 24 * 60)))
                        act.update(
                            lockout=_iso(timedelta(minutes=lockout)),
                            max_per_24h=draw(st.integers(1, _MAX_PER_24H)),
                        )
                        call(
                            act,
                            "set_patient_bolus_limits",
                            dose_ug=dose,
                            duration=duration,
                            lockout=timedelta(minutes=lockout),
                            max_per_24h=act["max_per_24h"],
                        )
                        limits = (ug_to_ng(dose, "dose_ug"), duration // timedelta(milliseconds=1))
            elif kind == "fault":
                if sync.now_ms != to_ms(t, "at"):
                    sync.advance_to(t)
                options = fault_actions(sync, min_added_ml=nl_to_ml(need_nl) if can_pump else 0.0)
                if options.is_empty:
                    continue
                fault = draw(options)
                if fault.kind == "pocket_fill" and not can_pump:
                    continue  # the reservoir must keep the horizon's budget (see refill)
                act = fault.action(t)
                call(act, fault.do, **fault.kwargs)
                stalled = sync.is_stalled
                program = sync.program  # a battery fault resets it to the minimum rate
            else:  # telemetry_session
                call(act, "telemetry_session")
            t = t + after
        until = max(end, t)
        return {"pump": pump, "actions": actions, "run": {"until": until}}

    return build()


# ----- invalid scenarios ------------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidScenario:
    """A scenario dict (``data``, the format of :func:`scenarios`) with one deliberate mistake, and
    where :mod:`itb.scenario` must report it: ``stage`` ``"load"`` (``from_dict`` raises
    :class:`itb.scenario.ScenarioError`) or ``"run"`` (it loads; ``run()`` raises it, at the
    mistaken action's time), with the error's ``entry`` (``"pump"``, ``"run"``, ``"actions[3]"``)
    and ``field`` (``"reservoir_ml"``, ``"program.ug_per_day"``, ``"at"``…); ``what`` says what
    was broken."""

    data: dict[str, Any]
    stage: str
    entry: str
    field: str
    what: str


_INVALID_SCENARIO_KINDS = (
    "overfilled_pump",
    "negative_fill",
    "concentration_out_of_range",
    "program_out_of_range",
    "catheter_too_large",
    "until_before_start",
    "action_out_of_order",
    "action_after_until",
    "unknown_key",
    "unknown_action",
    "cancel_of_unknown_bolus",
    "bolus_without_dose",
    "refill_overfills",
    "program_out_of_range_at_run",
    "catheter_too_large_at_run",
    "too_many_patient_boluses",
)


def invalid_scenarios(
    max_actions: int = 4,
    horizon: timedelta = timedelta(days=1),
    presets_only: bool = False,
) -> st.SearchStrategy[InvalidScenario]:
    """:class:`InvalidScenario`: a :func:`scenarios` draw with exactly one mistake — at load time
    (overfilled or negative reservoir, concentration outside 1..100000, a program outside the
    model's rates, a catheter above 10 mL, ``[run] until`` before the start, an action out of time
    order or after ``until``, an unknown key or action, ``cancel_bolus`` of an unknown name, a
    bolus of 0 or less µg) or at run time (a refill that overfills, a program outside the rates at
    the concentration of the time, a catheter revision above 10 mL, more than 24 patient boluses a
    day) — with the entry and field the :class:`itb.scenario.ScenarioError` must name."""
    import copy

    @st.composite
    def build(draw: Any) -> InvalidScenario:
        from ...scenario import from_dict

        data = copy.deepcopy(draw(scenarios(max_actions, horizon, presets_only)))
        m = from_dict(data).model
        ex = m.exact()
        pump, actions, until = data["pump"], data["actions"], data["run"]["until"]
        conc = pump["concentration_ug_per_ml"]
        for a in actions:  # the concentration in the reservoir at `until`
            if a["do"] == "refill":
                conc = a["concentration_ug_per_ml"]
        cap_ul = ex["reservoir_nl"] // 1000
        kind = draw(st.sampled_from(_INVALID_SCENARIO_KINDS))
        k = len(actions)  # index of an appended action
        n = draw(st.integers(1, 1000), label="amount")
        minutes = timedelta(minutes=n)

        def bad_rate_ug(c: int) -> float:
            lo, hi = _ng_bounds(ex["min_rate_nl_per_day"], ex["max_rate_nl_per_day"], c)
            options = [st.integers(hi + 1, min(_MAX_DOSE_NG, 2 * hi + 1000))]
            if lo > 1:
                options.insert(0, st.integers(1, lo - 1))
            return _ug(draw(st.one_of(options), label="ng_per_day"))

        def append(action: dict[str, Any]) -> None:
            actions.append({"at": until, **action})

        if kind == "overfilled_pump":
            pump["reservoir_ml"] = (cap_ul + n) / 1000
            where = ("load", "pump", "reservoir_ml")
        elif kind == "negative_fill":
            pump["reservoir_ml"] = -n / 1000
            where = ("load", "pump", "reservoir_ml")
        elif kind == "concentration_out_of_range":
            pump["concentration_ug_per_ml"] = draw(st.sampled_from([0, -n, _MAX_CONC + n]))
            where = ("load", "pump", "concentration_ug_per_ml")
        elif kind == "program_out_of_range":
            pump["program"] = {
                "kind": "continuous",
                "ug_per_day": bad_rate_ug(pump["concentration_ug_per_ml"]),
            }
            where = ("load", "pump", "program.ug_per_day")
        elif kind == "catheter_too_large":
            pump["catheter_volume_ul"] = float(_CORE_MAX_CATHETER_UL + n)
            where = ("load", "pump", "catheter_volume_ul")
        elif kind == "until_before_start":
            data["run"]["until"] = pump["start"] - minutes
            where = ("load", "run", "until")
        elif kind == "action_out_of_order":
            if actions:
                i = draw(st.integers(0, len(actions) - 1), label="index")
                previous = actions[i - 1]["at"] if i else pump["start"]
                actions[i]["at"] = previous - minutes
            else:
                i = 0
                actions.append({"at": pump["start"] - minutes, "do": "telemetry_session"})
            where = ("load", f"actions[{i}]", "at")
        elif kind == "action_after_until":
            actions.append({"at": until + minutes, "do": "telemetry_session"})
            where = ("load", f"actions[{k}]", "at")
        elif kind == "unknown_key":
            append({"do": "telemetry_session", "colour": "blue"})
            where = ("load", f"actions[{k}]", "colour")
        elif kind == "unknown_action":
            append({"do": "frobnicate"})
            where = ("load", f"actions[{k}]", "do")
        elif kind == "cancel_of_unknown_bolus":
            append({"do": "cancel_bolus", "name": "never_named"})
            where = ("load", f"actions[{k}]", "name")
        elif kind == "bolus_without_dose":
            append(
                {
                    "do": "bolus",
                    "dose_ug": -n / 10 if draw(st.booleans()) else 0.0,
                    "duration": "PT30M",
                }
            )
            where = ("load", f"actions[{k}]", "dose_ug")
        elif kind == "refill_overfills":
            append(
                {"do": "refill", "added_ml": (cap_ul + n) / 1000, "concentration_ug_per_ml": conc}
            )
            where = ("run", f"actions[{k}]", "added_ml")
        elif kind == "program_out_of_range_at_run":
            append(
                {
                    "do": "set_program",
                    "program": {"kind": "continuous", "ug_per_day": bad_rate_ug(conc)},
                }
            )
            where = ("run", f"actions[{k}]", "program.ug_per_day")
        elif kind == "catheter_too_large_at_run":
            append({"do": "revise_catheter", "volume_ul": float(_CORE_MAX_CATHETER_UL + n)})
            where = ("run", f"actions[{k}]", "volume_ul")
        else:  # too_many_patient_boluses
            append(
                {
                    "do": "set_patient_bolus_limits",
                    "dose_ug": 1.0,
                    "duration": "PT10M",
                    "max_per_24h": _MAX_PER_24H + n,
                }
            )
            where = ("load", f"actions[{k}]", "max_per_24h")  # the file's own range, 1 to 24
        return InvalidScenario(data, *where, kind)

    return build()
