"""Fault actions (docs: guide/faults.md): catheter occlusion, leak, disconnection, tip migration,
pocket fill at a refill, battery fault, motor stall, and clearing each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from ...pump import Pump
from ._common import InvalidArgument, _names

#: What :func:`fault_actions` draws, simplest first (a failing example shrinks towards the front:
#: a complete occlusion). ``pocket_fill`` is a ``refill`` with ``pocket_ml``; the others are the
#: pump methods (and scenario ``do`` names) of the same name.
FAULT_KINDS: tuple[str, ...] = (
    "inject_occlusion",
    "inject_leak",
    "inject_disconnection",
    "inject_tip_migration",
    "pocket_fill",
    "inject_battery_fault",
    "inject_motor_stall",
    "clear_occlusion",
    "clear_leak",
    "clear_tip_migration",
    "clear_battery_fault",
    "clear_fault",
)

#: The fault each clearing ends (``clear_fault`` ends a motor stall).
_CLEARS = {
    "clear_occlusion": "inject_occlusion",
    "clear_leak": "inject_leak",
    "clear_tip_migration": "inject_tip_migration",
    "clear_battery_fault": "inject_battery_fault",
    "clear_fault": "inject_motor_stall",
}


@dataclass(frozen=True)
class FaultRequest:
    """One fault action: ``kind`` (one of :data:`FAULT_KINDS`) and the keyword arguments of the
    pump method, in its units (``pass_pct`` %, ``position_ul`` µL from the pump connector;
    a pocket fill: ``added_ml``, ``concentration_ug_per_ml``, ``pocket_ml``)."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def do(self) -> str:
        """The scenario ``do`` name (and pump method): ``refill`` for a pocket fill."""
        return "refill" if self.kind == "pocket_fill" else self.kind

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def apply(self, pump: Pump) -> Any:
        """Call it on ``pump`` (``pump.refill(...)`` for a pocket fill, returning its report)."""
        kw = self.kwargs
        if self.kind == "pocket_fill":
            return pump.refill(
                kw["added_ml"], kw["concentration_ug_per_ml"], pocket_ml=kw["pocket_ml"]
            )
        return getattr(pump, self.kind)(**kw)

    def action(self, at: datetime) -> dict[str, Any]:
        """The scenario action (a TOML ``[[actions]]`` table as a dict) at ``at``."""
        return {"at": at, "do": self.do, **self.kwargs}


def _active(pump: Pump) -> set[str]:
    """The injections in force on ``pump`` (as :data:`FAULT_KINDS` names)."""
    f = pump.active_faults
    on = {
        "inject_occlusion": f["occlusion_pass_pct"] is not None,
        "inject_leak": f["leak"] is not None,
        "inject_tip_migration": bool(f["tip_migrated"]),
        "inject_battery_fault": bool(f["battery_fault"]),
        "inject_motor_stall": bool(f["motor_stall"]),
    }
    return {k for k, v in on.items() if v}


def fault_actions(
    pump: Pump | None = None,
    kinds: Sequence[str] | None = None,
    *,
    max_position_ul: int = 150,
    min_added_ml: float = 0.0,
) -> st.SearchStrategy[FaultRequest]:
    """:class:`FaultRequest` s of ``kinds`` (default all of :data:`FAULT_KINDS`).

    With ``pump``: only what ``pump`` accepts now — an injection of a fault not in force (an
    occlusion, a leak or disconnection within its catheter, a migration, a battery fault while not
    at EOS, a stall), the clearing of one in force, a pocket fill (a refill at its concentration
    that fits the reservoir, part or all of it into the pocket); an empty strategy when none is
    possible. Without ``pump``: any of them (leak positions 0 .. ``max_position_ul`` µL), which a
    pump may refuse (a clearing with nothing in force, an injection already in force). A pocket
    fill's refill adds at least ``min_added_ml`` (so that the firmware's count cannot run out).

    Shrinking: towards the first kind of :data:`FAULT_KINDS` (a complete occlusion), a leak at the
    pump connector (0 µL), an occlusion passing 0 %, 25 %, 50 % or 90 %, a pocket fill of all of
    a whole-mL refill. ``kinds`` may be one name (``"inject_leak"`` is ``("inject_leak",)``).
    Errors: ``InvalidArgument`` (``pump`` not an ``itb.Pump``, an empty ``kinds`` or an unknown
    kind, ``max_position_ul`` < 0)."""
    if pump is not None and not isinstance(pump, Pump):
        raise InvalidArgument(
            f"pump={pump!r}: expected an itb.Pump or None, not {type(pump).__name__} (the kinds "
            f"are the second argument or kinds=...)"
        )
    wanted = _names(kinds, FAULT_KINDS, "kinds")
    if isinstance(max_position_ul, bool) or not isinstance(max_position_ul, int):
        raise InvalidArgument(f"max_position_ul: expected an int (µL), got {max_position_ul!r}")
    if max_position_ul < 0:
        raise InvalidArgument(f"max_position_ul: {max_position_ul} µL is below 0 µL")
    if isinstance(min_added_ml, bool) or not isinstance(min_added_ml, (int, float)):
        raise InvalidArgument(f"min_added_ml: expected a number (mL), got {min_added_ml!r}")
    low_ul = max(1, -int(-min_added_ml * 1000 // 1))  # whole µL, rounded up
    order = [k for k in FAULT_KINDS if k in wanted]
    cap_ul = None
    conc = 2000
    max_pos = max_position_ul
    if pump is not None:
        active = _active(pump)

        def possible(k: str) -> bool:
            if k in _CLEARS:
                return _CLEARS[k] in active
            if k == "pocket_fill":
                return not pump.is_eos
            if k == "inject_disconnection":  # a disconnection is a leak of its own name
                return "inject_leak" not in active
            return k not in active and not (k == "inject_battery_fault" and pump.is_eos)

        order = [k for k in order if possible(k)]
        cap_ul = pump.model.exact()["reservoir_nl"] // 1000
        conc = pump.concentration_ug_per_ml
        max_pos = int(pump.catheter_volume_ul)  # whole µL within the catheter
    if not order:
        return st.nothing()

    top_ul = cap_ul if cap_ul is not None else 40_000
    pct_st = st.sampled_from([0.0, 25.0, 50.0, 90.0]) | st.integers(1, 99).map(float)

    @st.composite
    def build(draw: Any) -> FaultRequest:
        # Every kind draws the same values in the same order, so shrinking compares like with
        # like: towards the first kind, then round arguments.
        kind = draw(st.sampled_from(order))
        pct = draw(pct_st)
        pos = float(draw(st.integers(0, max_pos)))
        ml = draw(st.integers(max(1, -(-low_ul // 1000)), max(1, top_ul // 1000)))
        added = min(top_ul, max(low_ul, ml * 1000 + draw(st.integers(0, 999))))
        pocket = added - draw(st.integers(0, added - 1))  # all of it first
        if kind == "inject_occlusion":
            return FaultRequest(kind, (("pass_pct", pct),))
        if kind in ("inject_leak", "inject_disconnection"):
            return FaultRequest(kind, (("position_ul", pos),))
        if kind == "pocket_fill":
            return FaultRequest(
                kind,
                (
                    ("added_ml", added / 1000),
                    ("concentration_ug_per_ml", conc),
                    ("pocket_ml", pocket / 1000),
                ),
            )
        return FaultRequest(kind)

    if "pocket_fill" in order and low_ul > top_ul:
        order.remove("pocket_fill")  # no refill of that size fits
        if not order:
            return st.nothing()
    return build()
