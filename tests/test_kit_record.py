"""Recorded hardware: a device log written while driving a device, loaded back and replayed
offline against the oracle; ``Oracle(scenario).results``; a failing machine's counter-example
exported as a scenario TOML file that rebuilds the same oracle."""

from __future__ import annotations

from datetime import timedelta

import itb
import itb.scenario as sc
import pytest
from _kit_devices import T0, PumpAsDevice
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from itb.testing import Oracle, demo_pump
from itb.testing.machine import ACTIONS
from itb.testing.record import DeviceLog, pump_table, replay, scenario_table


def test_oracle_of_a_scenario_returns_each_calls_result():
    """50 µg patient boluses, lockout 3 h, 2 per 24 h: 09:00 granted, 10:00 in the lockout,
    12:00 granted (exactly 3 h later), 15:00 the daily maximum (two in the last 24 h)."""
    text = f"""
[pump]
model = "SYNCHROMED_II_40"
start = {T0.isoformat()}
reservoir_ml = 40.0
concentration_ug_per_ml = 2000
program = {{ kind = "continuous", ug_per_day = 400.0 }}

[[actions]]
at = 2026-01-05T08:30:00
do = "set_patient_bolus_limits"
dose_ug = 50.0
duration = "PT30M"
lockout = "PT3H"
max_per_24h = 2
""" + "".join(
        f'\n[[actions]]\nat = 2026-01-05T{h:02}:00:00\ndo = "patient_bolus"\n'
        for h in (9, 10, 12, 15)
    )
    oracle = Oracle(sc.loads(text))
    results = oracle.results
    assert [m for _t, m, _r in results] == ["set_patient_bolus_limits"] + ["patient_bolus"] * 4
    assert [r.reason for _t, _m, r in results[1:]] == [
        "granted",
        "lockout",
        "granted",
        "daily_maximum",
    ]
    assert results[0][2] is None and results[1][0] == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    "pump",
    [
        demo_pump(),
        itb.Pump(
            itb.models.PROMETRA_II_20,
            now=T0,
            reservoir_ml=2.1,
            concentration_ug_per_ml=500,
            program=itb.Continuous(ug_per_day=150),
            catheter_volume_ul=200.0,
        ),
    ],
)
def test_pump_table_rebuilds_the_same_pump(pump):
    table = pump_table(pump)
    assert sc.from_dict({"pump": table, "actions": []}).pump().snapshot() == pump.snapshot()


def test_pump_table_refuses_a_pump_with_history():
    pump = demo_pump()
    pump.advance(timedelta(hours=5))
    pump.suspend()
    with pytest.raises(itb.ValidationError, match="write the table yourself"):
        pump_table(pump)


def _drive(dev: itb.Pump, log: DeviceLog) -> None:
    """A suite driving a device (here an itb.Pump) and recording what it sent and read."""
    t = T0
    for hours, action in [
        (2, ("bolus", {"dose_ug": 40.0, "duration": timedelta(hours=1), "name": "b1"})),
        (3, ("set_program", {"program": itb.Continuous(ug_per_day=600)})),
        (4, ("refill", {"added_ml": 5.0, "concentration_ug_per_ml": 2000})),
    ]:
        t += timedelta(hours=hours)
        dev.advance_to(t)
        log.reading(t, dev.pumped_nl)
        log.reading(t, dev.delivered_pg, "delivered_pg")
        method, kwargs = action
        getattr(dev, method)(**{k: v for k, v in kwargs.items() if k != "name"})
        log.call(t, method, **kwargs)
    t += timedelta(days=2)
    for e in dev.advance_to(t):
        if e.severity is not None:
            log.alarm(e.time, e.kind)
    log.reading(t, dev.pumped_nl)


def test_a_recorded_run_replays_offline(tmp_path):
    dev = demo_pump()
    log = DeviceLog(pump_table(dev))
    _drive(dev, log)
    path = tmp_path / "run.jsonl"
    log.save(path)
    back = DeviceLog.load(path)
    assert back == log
    oracle = replay(back)
    # 400 µg/day at 2000 µg/mL for 5 h is 0.2 mL/day × 5/24 = 41 2/3 µL: 20 strokes, + the
    # 40 µg bolus's 20 µL = 10 strokes, then 600 µg/day (0.3 mL/day)
    assert oracle.expected(T0 + timedelta(hours=5)).strokes == 30
    assert [m for _t, m, _r in oracle.results] == ["bolus", "set_program", "refill"]
    # a reading one stroke short is where the replay says the device diverged
    tampered = DeviceLog(log.pump, [dict(e) for e in log.entries])
    last = tampered.entries[-1]
    last["value"] -= 2000
    with pytest.raises(AssertionError, match=r"under by 2000 nL = 1 stroke\(s\) \(tolerance 0\)"):
        replay(tampered)
    # the TOML view is a scenario with the same calls
    scen = sc.loads(log.scenario_toml())
    assert [a.do for a in scen.actions] == ["bolus", "set_program", "refill"]


def test_a_broken_log_is_a_validation_error(tmp_path):
    with pytest.raises(itb.ValidationError, match="not an itb-device-log file"):
        DeviceLog.loads('{"pump": {}}\n')
    with pytest.raises(itb.ValidationError, match=r"<string>:2: not JSON"):
        DeviceLog.loads('{"format": "itb-device-log", "version": 1, "pump": {}}\n{oops\n')
    with pytest.raises(itb.ValidationError, match="version 9"):
        DeviceLog.loads('{"format": "itb-device-log", "version": 9, "pump": {}}\n')
    log = DeviceLog(pump_table(demo_pump()))
    with pytest.raises(TypeError, match="whole number"):
        log.reading(T0, 1.5)
    with pytest.raises(itb.ValidationError, match="not a scenario action"):
        log.call(T0, "advance_to")
    log.reading(T0 + timedelta(hours=1), 0)
    with pytest.raises(itb.ValidationError, match="before the latest entry"):
        log.reading(T0, 0)


def test_a_failing_machine_exports_its_counterexample_as_a_scenario(tmp_path):
    class LosesCancelledBoluses(PumpAsDevice):  # bug: a cancel is ignored
        unsupported = frozenset(ACTIONS) - {"bolus", "cancel_bolus", "set_program"}
        export_dir = str(tmp_path)

        def make_pump(self):
            return demo_pump()

        def device_cancel_bolus(self, handle):
            pass

        def device_alarms(self):
            return None

    with pytest.raises(AssertionError) as err:
        run_state_machine_as_test(
            LosesCancelledBoluses,
            settings=settings(
                max_examples=100,
                deadline=None,
                derandomize=True,
                report_multiple_bugs=False,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            ),
        )
    path = tmp_path / "LosesCancelledBoluses.toml"
    assert f"(the counter-example as a scenario: {path})" in str(err.value)
    scen = sc.load(path)
    assert "cancel_bolus" in [a.do for a in scen.actions]
    # the file rebuilds the oracle: replaying it gives the volume the machine expected
    expected = int(__import__("re").search(r"expected (\d+) nL pumped", str(err.value)).group(1))
    assert Oracle(scen).expected().pumped_nl == expected
    assert scenario_table(demo_pump(), [])["actions"] == []
