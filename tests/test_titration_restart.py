"""The titration guard's restart rule (docs: decisions/core.md#titration-restart-from-0): a dose
stopped to 0 can be re-introduced up to the dose before the stop, flagged; the full pre-stop dose
carries an overdose warning; afterwards the usual per-24 h percentage applies from the restart dose.
Values by hand from the labelling's maintenance limit for spinal origin (+40 % per 24 h)."""

from __future__ import annotations

from datetime import datetime, timedelta

from itb.clinical import DoseChange, TitrationGuard

T0 = datetime(2026, 3, 2, 9, 0)
DAY = timedelta(days=1)
MS = timedelta(milliseconds=1)


def _stopped_guard() -> TitrationGuard:
    """History 0 → 150 → 400, then stopped (400 → 0) at T0 + 2 days."""
    guard = TitrationGuard(
        "spinal",
        "maintenance",
        max_ug_per_day=1000,
        history=[DoseChange(T0, 0, 150), DoseChange(T0 + DAY, 150, 400)],
    )
    stop = guard.apply(400, 0, at=T0 + 2 * DAY)
    assert stop.allowed and "stop" in stop.flags
    return guard


def test_a_restart_below_the_dose_before_the_stop_is_allowed_and_flagged() -> None:
    guard = _stopped_guard()
    d = guard.check(0, 150, at=T0 + 5 * DAY)  # three days after the stop
    assert d.allowed and d.code == "restart" and d.flags == ("restart",)
    assert d.limit_ug_per_day == 400.0 and "400 µg/day" in d.reason and "3 days" in d.reason
    assert d.next_increase_at == T0 + 6 * DAY


def test_the_full_pre_stop_dose_is_allowed_with_an_overdose_warning_and_above_it_denied() -> None:
    guard = _stopped_guard()
    d = guard.check(0, 400, at=T0 + 5 * DAY)
    assert d.allowed and d.flags == ("restart", "overdose_risk") and "6 h" in d.reason
    d = guard.check(0, 400.001, at=T0 + 5 * DAY)
    assert not d and d.code == "exceeds_restart" and d.limit_ug_per_day == 400.0


def test_a_restart_is_capped_by_the_absolute_maximum() -> None:
    guard = TitrationGuard(
        "spinal", "maintenance", max_ug_per_day=300, history=[DoseChange(T0, 400, 0)]
    )
    assert guard.check(0, 300, at=T0 + DAY).allowed
    d = guard.check(0, 300.001, at=T0 + DAY)
    assert d.code == "exceeds_maximum" and d.limit_ug_per_day == 300.0


def test_after_the_restart_the_usual_rule_applies_from_the_restart_dose() -> None:
    guard = _stopped_guard()
    restart_at = T0 + 5 * DAY
    assert guard.apply(0, 150, at=restart_at).allowed
    assert guard.current_ug_per_day == 150.0
    # +40 % of 150 = 210 µg/day, not before 24 h after the restart
    assert guard.check(150, 200, at=restart_at + DAY - MS).code == "too_soon"
    assert guard.check(150, 210, at=restart_at + DAY).allowed
    d = guard.check(150, 210.001, at=restart_at + DAY)
    assert not d and d.code == "exceeds_step" and d.limit_ug_per_day == 210.0


def test_a_restart_is_not_held_back_by_once_per_24_hours() -> None:
    # increase at T0, stop one hour later, restart one hour after that: ending an interruption
    # must not wait (abrupt withdrawal); the restart itself starts the next 24 h wait
    guard = TitrationGuard("spinal", "maintenance", max_ug_per_day=1000)
    h = timedelta(hours=1)
    assert guard.apply(100, 140, at=T0).allowed
    assert guard.apply(140, 0, at=T0 + h).allowed
    d = guard.apply(0, 140, at=T0 + 2 * h)
    assert d.allowed and d.flags == ("restart", "overdose_risk")
    assert guard.check(140, 150, at=T0 + 2 * h + DAY - MS).code == "too_soon"
    assert guard.check(140, 196, at=T0 + 2 * h + DAY).allowed


def test_a_start_from_0_with_no_dose_on_record_is_denied_with_what_to_seed() -> None:
    d = TitrationGuard("cerebral", "titration", max_ug_per_day=500).check(0, 100, at=T0)
    assert not d and d.code == "no_prior_dose" and "DoseChange" in d.reason
