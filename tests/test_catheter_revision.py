"""Procedures that change the fluid path say which part they replace (docs:
decisions/core.md#catheter-revision-replaces-only-the-catheter): a catheter revision replaces the
catheter only (the pump tubing keeps its drug), a new implant / pump replacement replaces the whole
path. Values by hand; the property test compares with the independent reference model
(tests/reference.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import itb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import RefPump

T0 = datetime(2026, 1, 5, 8, 0)
MS_PER_DAY = 86_400_000


def _synchromed_after_ten_days() -> itb.Pump:
    # SynchroMed II 40 mL: pump tubing 100 µL; 400 µg/day at 2000 µg/mL = 200 000 nL/day, one
    # 2 000 nL stroke every 14.4 min; after 10 days 1 000 strokes (2 mL) have filled the 250 µL
    # path with drug and the accumulator's remainder is exactly 0.
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=T0,
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        catheter_volume_ul=150.0,
        program=itb.Continuous(ug_per_day=400),
    )
    pump.advance(timedelta(days=10))
    assert pump.strokes == 1000 and pump.path_pg == 250_000 * 2000
    return pump


def test_a_catheter_revision_replaces_only_the_catheter() -> None:
    pump = _synchromed_after_ten_days()
    withdrawn_nl, withdrawn_pg = pump.withdrawn_nl, pump.withdrawn_pg
    pump.revise_catheter(120.0)
    # the tubing keeps its 100 µL of drug; the new 120 µL catheter holds saline
    assert pump.path_nl == 220_000 and pump.path_pg == 100_000 * 2000 == 200_000_000
    assert pump.tip_concentration_ug_per_ml == 0
    # withdrawn: the old catheter's 150 µL of drug
    assert pump.withdrawn_nl - withdrawn_nl == 150_000
    assert pump.withdrawn_pg - withdrawn_pg == 150_000 * 2000
    [ev] = [e for e in pump.advance(timedelta(0)) if e.kind == "path_replaced"]
    assert ev.data["part"] == "catheter"
    assert (ev.data["removed_nl"], ev.data["removed_pg"], ev.data["saline_nl"]) == (
        150_000,
        300_000_000,
        120_000,
    )


def test_the_priming_plan_after_a_revision_fills_only_the_new_catheter() -> None:
    pump = _synchromed_after_ten_days()
    pump.revise_catheter(120.0)
    plan = pump.priming_bolus_plan()
    # 120 000 nL of saline at the model's 24 mL/day: 120 000 / 24e6 day = 432 000 ms; the
    # 200 000 nL/day basal pushes 1 000 nL of it, the bolus the other 119 000 nL (23.8 mL/day)
    assert plan.duration == timedelta(milliseconds=432_000)
    assert plan.volume_nl == 119_000 and plan.rate_nl_per_day == 23_800_000
    pump.start_priming_bolus()
    delivered_pg = pump.delivered_pg
    events = pump.advance(plan.duration)
    # no drug leaves the tip before the plan ends beyond one stroke (2 000 nL × 2000 µg/mL)
    assert pump.delivered_pg - delivered_pg <= 2000 * 2000
    assert [e for e in events if e.kind == "drug_at_tip"] or pump.delivered_pg == delivered_pg
    assert pump.tip_concentration_ug_per_ml in (0, 2000)
    # the drug that then flows is the tubing's own at the basal rate, never the 196 µg recall
    pump.advance(timedelta(minutes=10))
    assert pump.delivered_pg - delivered_pg <= 2 * 2000 * 2000


def test_a_new_implant_replaces_the_whole_path_with_saline() -> None:
    pump = _synchromed_after_ten_days()
    withdrawn_nl = pump.withdrawn_nl
    pump.replace_fluid_path(catheter_volume_ul=120.0)
    assert pump.path_nl == 220_000 and pump.path_pg == 0
    assert pump.withdrawn_nl - withdrawn_nl == 250_000
    [ev] = [e for e in pump.advance(timedelta(0)) if e.kind == "path_replaced"]
    assert ev.data["part"] == "tubing_and_catheter" and ev.data["saline_nl"] == 220_000
    plan = pump.priming_bolus_plan()
    # 220 000 nL at 24 mL/day = 792 000 ms, of which the basal pushes 1 833.3 nL
    assert plan.duration == timedelta(milliseconds=792_000)
    assert plan.volume_nl == 220_000 - 1834


@pytest.mark.parametrize("call", ["revise_catheter", "replace_fluid_path"])
def test_a_path_change_out_of_range_names_the_field_in_microlitres(call: str) -> None:
    pump = _synchromed_after_ten_days()
    before = pump.snapshot()
    with pytest.raises(itb.ValidationError) as err:
        getattr(pump, call)(20_000.0)
    assert "µL" in str(err.value) and "..=" not in str(err.value) and "10000 µL" in str(err.value)
    assert err.value.field == ("volume_ul" if call == "revise_catheter" else "catheter_volume_ul")
    assert pump.snapshot() == before


@settings(max_examples=40, deadline=None)
@given(
    conc=st.sampled_from([500, 2000]),
    ug_per_day=st.sampled_from([100.0, 400.0, 1500.0]),
    catheter_nl=st.integers(0, 300_000),
    new_catheter_nl=st.integers(0, 300_000),
    before_ms=st.integers(0, 5 * MS_PER_DAY),
    after_ms=st.integers(0, 5 * MS_PER_DAY),
    primed=st.booleans(),
    whole=st.booleans(),
)
def test_path_changes_match_the_reference_model(
    conc: int,
    ug_per_day: float,
    catheter_nl: int,
    new_catheter_nl: int,
    before_ms: int,
    after_ms: int,
    primed: bool,
    whole: bool,
) -> None:
    model = itb.models.SYNCHROMED_II_20
    pump = itb.Pump(
        model,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=conc,
        catheter_volume_ul=catheter_nl / 1000,
        program=itb.Continuous(ug_per_day=ug_per_day),
        path_primed=primed,
    )
    ref = RefPump(
        now_ms=pump.now_ms,
        stroke_nl=model.stroke_nl,
        capacity_nl=round(model.reservoir_ml * 1_000_000),
        reservoir_nl=20_000_000,
        low_reservoir_nl=round(model.low_reservoir_ml * 1_000_000),
        conc_ug_per_ml=conc,
        program=("continuous", round(ug_per_day * 1000)),
        pump_path_nl=round(model.pump_path_ul * 1000),
        catheter_nl=catheter_nl,
        path_primed=primed,
    )
    pump.advance(timedelta(milliseconds=before_ms))
    ref.advance_to(pump.now_ms)
    if whole:
        pump.replace_fluid_path(new_catheter_nl / 1000)
        ref.replace_fluid_path(new_catheter_nl)
    else:
        pump.revise_catheter(new_catheter_nl / 1000)
        ref.revise_catheter(new_catheter_nl)
    pump.advance(timedelta(milliseconds=after_ms))
    ref.advance_to(pump.now_ms)
    assert pump.core.path_parcels == ref.path_parcels
    assert (pump.withdrawn_nl, pump.withdrawn_pg) == (
        ref.withdrawn_fl // 1_000_000,
        ref.withdrawn_ag // 1_000_000,
    )
    assert (pump.delivered_nl, pump.delivered_pg) == (ref.delivered_nl, ref.delivered_pg)
    assert ref.conservation_fl()[0] == ref.conservation_fl()[1]
    assert (
        pump.filled_nl == pump.reservoir_nl + pump.path_nl + pump.delivered_nl + pump.withdrawn_nl
    )
    assert pump.filled_pg == (
        pump.true_reservoir_nl * conc + pump.path_pg + pump.delivered_pg + pump.withdrawn_pg
    )
