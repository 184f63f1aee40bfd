"""A toy device under test for the itb testing kit: firmware-like pump software that keeps its own
stroke accumulator (integers, like the real thing) for a continuous program.

``ToyPump`` is correct. ``BuggyToyPump`` has a seeded bug: it restarts its accumulator when the
program changes, so the partial stroke built up so far is lost and the device falls behind.

``PatientBolusLogic`` is the toy's patient-bolus decision (lockout from the last grant, at most
``max_per_24h`` grants in any rolling 24 h), in integer ms. ``BuggyPatientBolusLogic`` has a
seeded bug: it restarts the lockout at every activation, refused ones too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

EPOCH = datetime(1970, 1, 1)
DAY_MS = 86_400_000


def _ms(t: datetime) -> int:
    return (t - EPOCH) // timedelta(milliseconds=1)


def _rate_nl_per_day(ng_per_day: int, conc_ug_per_ml: int) -> int:
    """Dose rate → volume rate, rounded half to even: ng/day × 1000 / µg/mL."""
    q, r = divmod(ng_per_day * 1000, conc_ug_per_ml)
    if 2 * r > conc_ug_per_ml or (2 * r == conc_ug_per_ml and q % 2 == 1):
        q += 1
    return q


class ToyPump:
    restart_on_program_change = False

    def __init__(
        self,
        *,
        stroke_nl: int,
        reservoir_nl: int,
        conc_ug_per_ml: int,
        ug_per_day: float,
        now: datetime,
    ) -> None:
        self.stroke_nl = stroke_nl
        self.reservoir_nl = reservoir_nl
        self.conc = conc_ug_per_ml
        self.rate = _rate_nl_per_day(round(ug_per_day * 1000), conc_ug_per_ml)
        self.now_ms = _ms(now)
        self.acc = 0  # nL·ms/day not yet turned into strokes
        self.strokes = 0
        self.suspended = False

    @property
    def pumped_nl(self) -> int:
        return self.strokes * self.stroke_nl

    def run_until(self, until: datetime) -> None:
        t = _ms(until)
        if not self.suspended and self.reservoir_nl >= self.stroke_nl:
            self.acc += self.rate * (t - self.now_ms)
            per_stroke = self.stroke_nl * DAY_MS
            n = min(self.acc // per_stroke, self.reservoir_nl // self.stroke_nl)
            self.strokes += n
            self.reservoir_nl -= n * self.stroke_nl
            self.acc -= n * per_stroke
        self.now_ms = t

    def set_program(self, ug_per_day: float) -> None:
        self.rate = _rate_nl_per_day(round(ug_per_day * 1000), self.conc)
        if self.restart_on_program_change:
            self.acc = 0  # BUG: the partial stroke is thrown away

    def suspend(self) -> None:
        self.suspended = True

    def resume(self) -> None:
        self.suspended = False


class BuggyToyPump(ToyPump):
    restart_on_program_change = True


class PatientBolusLogic:
    """Patient-bolus decisions: ``"not_enabled"``, ``"lockout"``, ``"daily_maximum"`` or
    ``"granted"`` (the rules: docs/guide/testing-kit.md#patient-bolus-rules-a-device-must-match)."""

    lockout_from_every_attempt = False

    def __init__(self) -> None:
        self.limits: tuple[int, int] | None = None  # (lockout ms, max per 24 h)
        self.grants: list[int] = []  # ms of granted activations
        self.last_attempt: int | None = None

    def set_limits(self, lockout: timedelta | None, max_per_24h: int) -> None:
        """Limits (``lockout=None`` disables the patient bolus; the grants are kept)."""
        self.limits = (
            None if lockout is None else (lockout // timedelta(milliseconds=1), max_per_24h)
        )

    def activate(self, now: datetime) -> str:
        t = _ms(now)
        if self.limits is None:
            return "not_enabled"
        lockout_ms, max_per_24h = self.limits
        last = (
            self.last_attempt
            if self.lockout_from_every_attempt
            else (self.grants[-1] if self.grants else None)
        )
        self.last_attempt = t
        if last is not None and t - last < lockout_ms:
            return "lockout"
        if sum(1 for g in self.grants if g > t - DAY_MS) >= max_per_24h:
            return "daily_maximum"
        self.grants.append(t)
        return "granted"


class BuggyPatientBolusLogic(PatientBolusLogic):
    lockout_from_every_attempt = True
