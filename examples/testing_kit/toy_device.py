"""A toy device under test for the itb testing kit: firmware-like pump software that keeps its own
stroke accumulator (integers, like the real thing) for a continuous program.

``ToyPump`` is correct. ``BuggyToyPump`` has a seeded bug: it restarts its accumulator when the
program changes, so the partial stroke built up so far is lost and the device falls behind.
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
