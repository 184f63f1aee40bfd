"""Alarms already sounding when the pump was read (``[pump.active_alarms]``, ``Pump.from_reading``)
are exported: one FHIR ``DetectedIssue`` each (R5 and R4B, validated by fhir.resources) identified
when the alarm began, one PCD-10 alarm message each (parsed strictly by hl7apy) sent at the start
with the alarm's own time in OBR-7, never doubled, and an alarm raised again later in the run is
its own, separate entry."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

pytest.importorskip("fhir.resources")
pytest.importorskip("hl7apy")

import itb  # noqa: E402
from itb import scenario  # noqa: E402
from itb.interop import Recorder, fhir, hl7v2  # noqa: E402
from itb.interop.history import sounding_at_start  # noqa: E402

# A pump read at 1.5 mL (below the 2 mL low-reservoir threshold of the SynchroMed II 40 mL) and
# 25 mAh (below ERI at 32 mAh, above EOS at 10 mAh). On 6 Jan the 1.2 mL left (0.3 mL/day:
# 1.5 - 0.3 mL) is aspirated and 5 mL added, which clears the low-reservoir alarm; 3 mL later at
# 0.3 mL/day (10 days) it sounds again: 2026-01-16 08:00.
READ = """
[pump]
model = "SYNCHROMED_II_40"
start = 2026-01-05T08:00:00
reservoir_ml = 1.5
concentration_ug_per_ml = 2000
program = { kind = "continuous", ug_per_day = 600.0 }
battery_mah = 25.0
implanted = 2020-06-15T10:00:00

[pump.active_alarms]
eri = 2026-01-01T08:00:00
low_reservoir = 2026-01-04T08:00:00

[[actions]]
at = 2026-01-06T08:00:00
do = "refill"
added_ml = 5.0
aspirated_ml = 1.2
concentration_ug_per_ml = 2000

[run]
until = 2026-01-25T00:00:00
"""
ERI_SINCE = "2026-01-01T08:00:00.000+01:00"
LOW_SINCE = "2026-01-04T08:00:00.000+01:00"


@pytest.fixture(scope="module")
def result():
    return scenario.loads(READ, source="read.toml").run()


def _issues(bundle: dict) -> list[dict]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"
    ]


@pytest.mark.parametrize("version", ["R5", "R4B"])
def test_sounding_alarms_are_detected_issues_when_they_began(result, version):
    b = fhir.bundle(result, version=version, utc_offset=timedelta(hours=1))  # validates
    issues = _issues(b)
    eri = [i for i in issues if i["detail"].startswith("eri ")]
    assert [i["identifiedDateTime"] for i in eri] == [ERI_SINCE]
    assert eri[0]["severity"] == "moderate"  # ERI is non-critical
    assert "sounding when the pump was read at 2026-01-05T08:00:00.000+01:00" in eri[0]["detail"]
    low = sorted(i["identifiedDateTime"] for i in issues if i["detail"].startswith("low_reservoir"))
    # the one sounding at the start, and the one raised again after the refill (its own event)
    assert low == [LOW_SINCE, "2026-01-16T08:00:00.000+01:00"]


def test_sounding_alarms_are_pcd10_alarm_messages(result):
    msgs = hl7v2.messages(result, utc_offset=timedelta(hours=1), validate_each=True)
    eri = [m for m in msgs if m.kind == "eri"]
    assert len(eri) == 1
    segs = [s.split("|") for s in eri[0].text.split("\r") if s]
    msh = segs[0]
    obr = next(s for s in segs if s[0] == "OBR")
    cond = next(s for s in segs if s[0] == "OBX" and s[3].startswith("68487^"))
    assert msh[6] == "20260105080000.000+0100"  # sent at the start (the reading)
    assert obr[7] == cond[14] == "20260101080000.000+0100"  # the alarm's own time
    assert cond[5] == "0^eri^99ITB"
    # right after the start message, in time order
    assert [m.kind for m in msgs[:3]] == ["start", "eri", "low_reservoir"]
    assert [m.time_ms for m in msgs] == sorted(m.time_ms for m in msgs)
    assert sum(m.kind == "low_reservoir" for m in msgs) == 2


def _read_pump(**alarms: datetime) -> itb.Pump:
    return itb.Pump.from_reading(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 1, 5, 8),
        reservoir_ml=1.5,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=600),
        battery_mah=25.0,
        implanted=datetime(2020, 6, 15, 10),
        active_alarms=alarms,
    )


def test_recorder_exports_the_alarms_sounding_when_it_started():
    rec = Recorder(_read_pump(eri=datetime(2026, 1, 1, 8)))
    rec.advance(timedelta(days=1))
    issues = _issues(fhir.bundle(rec))
    assert [i["identifiedDateTime"] for i in issues if i["detail"].startswith("eri ")] == [
        "2026-01-01T08:00:00.000+00:00"
    ]
    assert sum(m.kind == "eri" for m in hl7v2.messages(rec, validate_each=True)) == 1


def test_an_alarm_whose_event_is_in_the_history_is_not_written_twice():
    pump = _read_pump(eri=datetime(2026, 1, 1, 8), low_reservoir=datetime(2026, 1, 4, 8))
    own = itb.Event(
        int((datetime(2026, 1, 4, 8) - datetime(1970, 1, 1)).total_seconds() * 1000),
        "low_reservoir",
        "non_critical",
    )
    kinds = [e.kind for e in sounding_at_start(pump, [own])]
    assert kinds == ["eri"]
    assert [e.kind for e in sounding_at_start(pump)] == ["eri", "low_reservoir"]


def test_a_pump_read_stalled_is_not_delivering_from_the_start():
    """A motor stall sounding at the reading: delivery is stopped until the fault is cleared 5 h
    later, so the only basal segment runs from the restart (13:00), with 600 µg/day x 1 day =
    600 µg at the tip, and the first PCD-10 message is a stop (pump-stopped-alarming)."""
    pump = itb.Pump.from_reading(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 1, 5, 8),
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=600),
        battery_mah=100.0,
        active_alarms={"motor_stall": datetime(2026, 1, 4, 8)},
    )
    rec = Recorder(pump)
    rec.advance(timedelta(hours=5))
    rec.pump.clear_fault()
    rec.advance(timedelta(days=1))
    basal = [a for a in rec.history().administrations if a.kind == "basal"]
    assert [(a.start, a.end, a.tip_pg) for a in basal] == [
        (datetime(2026, 1, 5, 13), datetime(2026, 1, 6, 13), 600_000_000)
    ]
    msgs = hl7v2.messages(rec, validate_each=True)
    assert [(m.kind, m.event) for m in msgs] == [
        ("start", "MDC_EVT_PUMP_DELIV_STOP"),
        ("fault", "fault"),
        ("fault_cleared", "MDC_EVT_PUMP_DELIV_START"),
    ]
    assert "pump-stopped-alarming" in msgs[0].text
    issues = _issues(fhir.bundle(rec, version="R4B"))
    assert [i["identifiedDateTime"] for i in issues] == ["2026-01-04T08:00:00.000+00:00"]
