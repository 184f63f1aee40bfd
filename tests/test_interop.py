"""Interop exports: FHIR R5/R4B bundles validated by fhir.resources, IHE PCD-10 messages parsed
strictly by hl7apy, the dose-sum equality (hand-computed cases and hypothesis), the recorder
against the scenario replay, MLLP on 127.0.0.1, and the command line."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fhir.resources")
pytest.importorskip("hl7apy")

import itb  # noqa: E402
from itb import scenario  # noqa: E402
from itb.errors import ProtocolError, ValidationError  # noqa: E402
from itb.interop import Recorder, fhir, history_of, hl7v2, mllp  # noqa: E402

LOOPBACK = "127.0.0.1"

RICH = """
[pump]
model = "SYNCHROMED_II_40"
start = 2026-03-02T00:00:00
reservoir_ml = 6.0
concentration_ug_per_ml = 500
catheter_volume_ul = 100.0
program = { kind = "flex", period = "day", steps = [["00:00:00", 200.0], ["08:00:00", 400.0], ["20:00:00", 200.0]] }

[[actions]]
at = 2026-03-02T10:00:00
do = "bolus"
dose_ug = 50.0
duration = "PT30M"

[[actions]]
at = 2026-03-03T09:00:00
do = "suspend"

[[actions]]
at = 2026-03-03T11:00:00
do = "resume"

[[actions]]
at = 2026-03-04T10:00:00
do = "refill"
added_ml = 20.0
concentration_ug_per_ml = 2000
aspirated_ml = 1.0

[[actions]]
at = 2026-03-04T10:00:00
do = "start_bridge_bolus"

[[actions]]
at = 2026-03-05T08:00:00
do = "set_patient_bolus_limits"
dose_ug = 25.0
duration = "PT15M"
lockout = "PT3H"
max_per_24h = 3

[[actions]]
at = 2026-03-05T12:00:00
do = "patient_bolus"

[[actions]]
at = 2026-03-05T12:30:00
do = "patient_bolus"

[[actions]]
at = 2026-03-06T09:00:00
do = "inject_motor_stall"

[[actions]]
at = 2026-03-06T10:00:00
do = "clear_fault"

[[actions]]
at = 2026-03-07T00:00:00
do = "set_program"
program = { kind = "continuous", ug_per_day = 300.0 }

[run]
until = 2026-03-10T00:00:00
"""


def _doses(bundle: dict) -> list[Decimal]:
    data = json.loads(json.dumps(bundle), parse_float=Decimal)
    return [
        Decimal(e["resource"]["dosage"]["dose"]["value"])
        for e in data["entry"]
        if e["resource"]["resourceType"] == "MedicationAdministration"
    ]


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.fixture(scope="module")
def rich():
    return scenario.loads(RICH, source="rich.toml").run()


# ----- FHIR --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["R5", "R4B"])
def test_bundle_validates_and_doses_add_up(rich, version):
    b = fhir.bundle(rich, version=version)  # validated by fhir.resources inside
    module = "fhir.resources.R4B.bundle" if version == "R4B" else "fhir.resources.bundle"
    parsed = __import__(module, fromlist=["Bundle"]).Bundle.model_validate_json(json.dumps(b))
    assert parsed.type == "collection"
    assert sum(_doses(b)) == Decimal(rich.pump.delivered_pg) / 10**6
    kinds = {e["resource"]["resourceType"] for e in b["entry"]}
    use = "DeviceUsage" if version == "R5" else "DeviceUseStatement"
    assert {"Device", use, "MedicationRequest", "MedicationAdministration"} <= kinds
    assert {"Observation", "DetectedIssue", "Medication", "Patient"} <= kinds
    # one MedicationRequest per program; two Medications (500 and 2000 µg/mL)
    assert len(_resources(b, "MedicationRequest")) == 2
    strengths = sorted(
        m["ingredient"][0]["strengthRatio" if version == "R5" else "strength"]["numerator"]["value"]
        for m in _resources(b, "Medication")
    )
    assert strengths == [500, 2000]
    # PoCD hierarchy: pump (MDS) <- channel (VMD) <- catheter, each parent the one above
    devices = _resources(b, "Device")
    urls = {
        e["resource"]["identifier"][0]["value"]: e["fullUrl"]
        for e in b["entry"]
        if e["resource"]["resourceType"] == "Device"
    }
    assert [d["identifier"][0]["value"] for d in devices] == ["pump", "channel", "catheter"]
    assert "parent" not in devices[0]
    assert devices[1]["parent"]["reference"] == urls["pump"]
    assert devices[2]["parent"]["reference"] == urls["channel"]
    # alarms became DetectedIssues: the refill discrepancy and the motor stall at least
    issues = " ".join(i["detail"] for i in _resources(b, "DetectedIssue"))
    assert "refill_discrepancy" in issues and "fault" in issues


def test_one_administration_per_bolus_and_basal_segment(rich):
    h = history_of(rich)
    started = [e for e in rich.events if e.kind == "bolus_started"]
    boluses = [a for a in h.administrations if a.kind != "basal"]
    assert [a.bolus_id for a in boluses] == [e.data["bolus_id"] for e in started]
    assert {a.kind for a in boluses} == {"timed", "bridge", "patient"}
    for a, e in zip(boluses, started):
        assert a.start_ms == e.time_ms  # the period starts at the event
    # basal segments never overlap a stop: the suspension 2026-03-03 09:00-11:00 is a gap
    basal = [a for a in h.administrations if a.kind == "basal"]
    t9, t11 = datetime(2026, 3, 3, 9), datetime(2026, 3, 3, 11)
    assert not any(a.start < t11 and a.end > t9 for a in basal)
    assert any(a.end == t9 for a in basal) and any(a.start == t11 for a in basal)
    # and they do not overlap each other
    for x, y in zip(basal, basal[1:]):
        assert x.end <= y.start


def test_flex_segments_hand_computed():
    """240 µg/day 00:00-12:00, 480 µg/day 12:00-24:00 at 2000 µg/mL: 0.12 and 0.24 mL/day, i.e.
    30 and 60 strokes of 2 µL per half day, the last stroke of each exactly at the boundary;
    with the path primed at the same strength the tip gets 120 µg and 240 µg per segment."""
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 3, 2),
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Flex(period="day", steps=[(time(0), 240.0), (time(12), 480.0)]),
    )
    rec = Recorder(pump)
    rec.advance_to(datetime(2026, 3, 5))
    h = rec.history()
    basal = [(a.start, a.end, a.tip_pg) for a in h.administrations]
    expected = []
    for day in range(2, 5):
        d = datetime(2026, 3, day)
        expected += [(d, d + timedelta(hours=12), 120_000_000)]
        expected += [(d + timedelta(hours=12), d + timedelta(days=1), 240_000_000)]
    assert basal == expected
    b = fhir.bundle(rec, version="R4B")
    ma = _resources(b, "MedicationAdministration")
    assert [m["effectivePeriod"]["start"] for m in ma][:2] == [
        "2026-03-02T00:00:00.000+00:00",
        "2026-03-02T12:00:00.000+00:00",
    ]
    assert [m["dosage"]["rateQuantity"]["value"] for m in ma][:2] == [240, 480]
    assert _doses(b) == [Decimal(120), Decimal(240)] * 3
    rx = _resources(b, "MedicationRequest")[0]
    steps = rx["dosageInstruction"]
    assert [s["timing"]["repeat"]["timeOfDay"] for s in steps] == [["00:00:00"], ["12:00:00"]]
    assert [s["timing"]["repeat"]["duration"] for s in steps] == [43200, 43200]
    assert steps[0]["route"]["coding"][0]["code"] == "72607000"


def test_bridge_bolus_tip_dose_is_the_old_drug():
    """After 500 → 2000 µg/mL the bridge bolus pushes the path's old 500 µg/mL drug out: what
    reaches the tip during it is a quarter of what it takes from the reservoir (hand check: the
    path is 200 µL; the bridge moves 149.333 µL of 2000 µg/mL = 298.666 µg, all of which, like the
    basal fluid at the same time, pushes 500 µg/mL fluid out of the tip)."""
    r = scenario.load("examples/concentration_change_bridge.toml").run()
    h = history_of(r)
    bridge = next(a for a in h.administrations if a.kind == "bridge")
    assert bridge.bolus_dose_pg == 298_666_000
    # everything that left the tip during the bridge was old drug: its share is < 1/4 of the
    # reservoir dose + the basal alongside (a stroke at most more)
    assert bridge.tip_pg * 4 <= bridge.bolus_dose_pg + 4 * 2000 * 500
    assert sum(a.tip_pg for a in h.administrations) == r.pump.delivered_pg


def test_bad_arguments_are_validation_errors(rich):
    with pytest.raises(ValidationError) as e:
        fhir.bundle(rich, version="R4")
    assert e.value.field == "version" and "R4B" in str(e.value)
    with pytest.raises(ValidationError, match="utc_offset"):
        fhir.bundle(rich, utc_offset=60)
    with pytest.raises(ValidationError, match="utc_offset"):
        fhir.bundle(rich, utc_offset=timedelta(hours=15))
    with pytest.raises(ValidationError, match="source"):
        fhir.bundle(object())
    with pytest.raises(ValidationError, match="titration"):
        fhir.bundle(rich, titration=[1])
    with pytest.raises(ValidationError, match="device_id"):
        hl7v2.messages(rich, device_id="xyz")


def test_utc_offset_and_titration_findings(rich):
    from itb.clinical import TitrationGuard

    guard = TitrationGuard("spinal", "titration", max_ug_per_day=1000)
    ok = guard.apply(300, 390, at=datetime(2026, 3, 7, 9))
    denied = guard.check(390, 600, at=datetime(2026, 3, 7, 10))
    assert ok and not denied
    b = fhir.bundle(rich, utc_offset=timedelta(hours=1), titration=[ok, denied])
    issues = [i for i in _resources(b, "DetectedIssue") if "titration" in i["code"]["text"]]
    assert len(issues) == 1 and issues[0]["identifiedDateTime"] == "2026-03-07T10:00:00.000+01:00"
    assert b["timestamp"].endswith("+01:00")


def test_recorder_refuses_outside_advances():
    pump = itb.Pump(
        itb.models.SYNCHROMED_II_40,
        now=datetime(2026, 1, 5),
        reservoir_ml=40.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=400),
    )
    rec = Recorder(pump)
    pump.advance(timedelta(hours=1))
    with pytest.raises(ValidationError, match="outside the recorder"):
        rec.history()
    with pytest.raises(ValidationError):
        Recorder("pump")
    fresh = Recorder(pump)
    with pytest.raises(ValidationError):
        fresh.advance_to(datetime(2026, 1, 4))  # in the past: the pump's own refusal


# ----- random scenarios (hypothesis) --------------------------------------------------------------


@st.composite
def scenarios(draw):
    start = datetime(2026, 1, 5) + timedelta(minutes=draw(st.integers(0, 60 * 24 * 6)))
    conc = draw(st.sampled_from([500, 1000, 2000]))
    primed = draw(st.booleans())
    if draw(st.booleans()):
        program = {"kind": "continuous", "ug_per_day": draw(st.sampled_from([100.0, 333.3, 800.0]))}
    else:
        period = draw(st.sampled_from(["day", "week"]))
        top = 23 if period == "day" else 167
        n = draw(st.integers(2, 4))
        hours = sorted(draw(st.sets(st.integers(1, top), min_size=n - 1, max_size=n - 1)))
        doses = draw(st.lists(st.sampled_from([0.0, 150.0, 275.5, 600.0]), min_size=n, max_size=n))
        days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        when = [
            f"{h:02d}:00:00" if period == "day" else f"{days[h // 24]} {h % 24:02d}:00"
            for h in [0, *hours]
        ]
        program = {"kind": "flex", "period": period, "steps": [[w, d] for w, d in zip(when, doses)]}
    actions = []
    t = start
    if not primed and draw(st.booleans()):
        actions.append({"at": t, "do": "start_priming_bolus"})
    if draw(st.booleans()):
        actions.append(
            {
                "at": t,
                "do": "set_patient_bolus_limits",
                "dose_ug": 10.0,
                "duration": "PT30M",
                "lockout": "PT2H",
                "max_per_24h": 4,
            }
        )
    for _ in range(draw(st.integers(0, 6))):
        t = t + timedelta(minutes=draw(st.integers(1, 60 * 30)))
        kind = draw(st.sampled_from(["bolus", "suspend", "refill", "stall", "program", "patient"]))
        if kind == "bolus":
            actions.append(
                {
                    "at": t,
                    "do": "bolus",
                    "dose_ug": draw(st.sampled_from([10.0, 25.0, 50.0])),
                    "duration": f"PT{draw(st.integers(30, 240))}M",
                }
            )
        elif kind == "refill":
            new = draw(st.sampled_from([500, 2000]))
            actions.append(
                {
                    "at": t,
                    "do": "refill",
                    "added_ml": draw(st.sampled_from([0.0, 5.0, 15.0])),
                    "concentration_ug_per_ml": new,
                }
            )
            if new > conc and draw(st.booleans()):
                actions.append({"at": t, "do": "start_bridge_bolus"})
            conc = new
        elif kind in ("stall", "suspend"):
            on, off = (
                ("inject_motor_stall", "clear_fault") if kind == "stall" else ("suspend", "resume")
            )
            actions.append({"at": t, "do": on})
            t = t + timedelta(minutes=draw(st.integers(1, 600)))
            actions.append({"at": t, "do": off})
        elif kind == "program":
            actions.append(
                {
                    "at": t,
                    "do": "set_program",
                    "program": {"kind": "continuous", "ug_per_day": 250.0},
                }
            )
        else:
            actions.append({"at": t, "do": "patient_bolus"})
    data = {
        "pump": {
            "model": "SYNCHROMED_II_20",
            "start": start,
            "reservoir_ml": draw(st.sampled_from([1.0, 4.0, 20.0])),
            "concentration_ug_per_ml": draw(st.sampled_from([500, 1000, 2000])),
            "catheter_volume_ul": draw(st.sampled_from([0.0, 50.0, 150.0])),
            "path_primed": primed,
            "program": program,
        },
        "actions": actions,
        "run": {"until": t + timedelta(days=draw(st.integers(0, 4)), hours=1)},
    }
    return data


def _run(data):
    try:
        return scenario.from_dict(data).run()
    except scenario.ScenarioError:
        return None  # the pump refused an action (e.g. a bolus from an empty reservoir)


@settings(max_examples=40)
@given(scenarios())
def test_dose_sum_equals_the_tip_ledger(data):
    result = _run(data)
    if result is None:
        return
    h = history_of(result)
    assert sum(a.tip_pg for a in h.administrations) == result.pump.delivered_pg
    assert all(
        a.tip_pg >= 0 and h.start_ms <= a.start_ms <= a.end_ms <= h.end_ms
        for a in h.administrations
    )
    b = fhir.bundle(result, version="R5", validate=False)
    assert sum(_doses(b)) == Decimal(result.pump.delivered_pg) / 10**6
    # apportioning: with one strength everywhere (primed path, no change) and no stop during
    # it, a finished bolus got what it took from the reservoir, within a stroke of drug either
    # way (the stroke quantisation of the stretches it ran in)
    same = data["pump"]["path_primed"] and not any(
        e.kind in ("concentration_changed", "refilled") for e in result.events
    )
    stops = [
        e.time_ms for e in result.events if e.kind in ("suspended", "fault", "reservoir_empty")
    ]
    stroke_pg = result.pump.model.stroke_nl * data["pump"]["concentration_ug_per_ml"]
    for a in h.administrations:
        if (
            same
            and a.kind == "timed"
            and a.status == "completed"
            and not any(a.start_ms <= t <= a.end_ms for t in stops)
        ):
            assert abs(a.tip_pg - a.bolus_dose_pg) <= 2 * stroke_pg, a


@settings(max_examples=8)
@given(scenarios())
def test_random_bundles_validate_in_both_versions(data):
    result = _run(data)
    if result is None:
        return
    for version in ("R5", "R4B"):
        fhir.bundle(result, version=version)


@settings(max_examples=25)
@given(scenarios())
def test_recorder_agrees_with_the_scenario_replay(data):
    """Two independent ways to place the marks — the recorder's projection-driven stops on a
    pump driven by hand, and the replay at event times — give the same segments and doses."""
    result = _run(data)
    if result is None:
        return
    sc = scenario.from_dict(data)
    rec = Recorder(sc.pump())
    for action in sc.actions:
        rec.advance_to(action.at)
        getattr(rec.pump, action.do)(**action.kwargs())
    rec.advance_to(sc.until)
    assert rec.pump.delivered_pg == result.pump.delivered_pg
    mine = [(a.kind, a.start_ms, a.end_ms, a.tip_pg) for a in rec.history().administrations]
    theirs = [(a.kind, a.start_ms, a.end_ms, a.tip_pg) for a in history_of(result).administrations]
    assert mine == theirs


# ----- HL7 v2 (IHE PCD-10) ------------------------------------------------------------------------


@settings(max_examples=4)
@given(scenarios())
def test_random_histories_give_valid_pcd10_messages(data):
    result = _run(data)
    if result is None:
        return
    msgs = hl7v2.messages(result)
    assert msgs[0].time_ms == history_of(result).start_ms
    assert [m.time_ms for m in msgs] == sorted(m.time_ms for m in msgs)  # event order
    for m in msgs:
        hl7v2.validate(m.text)
    assert len({m.control_id for m in msgs}) == len(msgs)


def test_every_message_parses_strictly_and_keeps_event_times(rich):
    msgs = hl7v2.messages(rich, utc_offset=timedelta(hours=-5))
    assert msgs[0].event == "MDC_EVT_PUMP_DELIV_START"
    for m in msgs:
        parsed = hl7v2.validate(m.text)
        assert parsed.msh.msh_9.value == "ORU^R42^ORU_R01"
        t = itb.Event(m.time_ms, "x").time
        expected = t.strftime("%Y%m%d%H%M%S") + f".{t.microsecond // 1000:03d}-0500"
        msh = m.text.split("\r")[0].split("|")
        assert msh[6] == expected  # MSH-7 (the first field is MSH-2 after the split)
        assert f"|{expected}" in m.text.split("\r")[2]  # OBR-7
    # one message per event: bolus start + complete per bolus, stop/start around the suspension
    kinds = [m.kind for m in msgs]
    starts = sum(1 for e in rich.events if e.kind == "bolus_started")
    assert kinds.count("bolus_started") == starts
    assert kinds.count("suspended") == 1 and kinds.count("resumed") == 1
    assert kinds.count("fault") == 2  # the stop and the alarm
    events = {(m.kind, m.event) for m in msgs}
    assert ("bolus_completed", "MDC_EVT_PUMP_DELIV_COMP") in events
    assert ("suspended", "MDC_EVT_PUMP_DELIV_STOP") in events


def test_rates_and_volumes_hand_checked():
    r = scenario.load("examples/ptm_patient_bolus.toml").run()
    msgs = hl7v2.messages(r)
    first = msgs[0].text
    # 300 µg/day at 2000 µg/mL = 0.15 mL/day = 0.00625 mL/h; 2 mg/mL
    assert "|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.2.5|0.00625|" in first
    assert "|157924^MDC_RATE_DOSE^MDC|1.1.2.6|300|ug/d^ug/d^UCUM|" in first
    assert "|157760^MDC_CONC_DRUG^MDC|1.1.2.10|2|" in first
    bolus = next(m for m in msgs if m.kind == "bolus_started").text
    # 25 µg over 15 min = 12.5 µL in 0.25 h = 0.05 mL/h (2400 µg/day)
    assert "|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.2.5|0.05|" in bolus
    assert "|157884^MDC_VOL_FLUID_TBI^MDC|1.1.2.7|0.0125|" in bolus
    assert "^pump-source-info-pca" in bolus


def test_validate_refuses_what_the_profile_requires():
    r = scenario.load("examples/ptm_patient_bolus.toml").run()
    text = hl7v2.messages(r)[0].text
    with pytest.raises(ValidationError) as e:
        hl7v2.validate(text.replace("|P|2.6|", "||2.6|"))
    assert "MSH" in str(e.value)
    with pytest.raises(ValidationError):
        hl7v2.validate(text.replace("1.3.6.1.4.1.19376.1.6.4.10", "1.2.3"))
    with pytest.raises(ValidationError):
        hl7v2.validate(text.replace("ORU^R42^ORU_R01", "ORU^R01^ORU_R01"))
    with pytest.raises(ValidationError):
        hl7v2.validate(text.replace("|1.1.2.5|", "||"))  # OBX-4 missing


def test_escape_keeps_delimiters_out_of_fields():
    r = scenario.load("examples/ptm_patient_bolus.toml").run()
    text = hl7v2.messages(r, patient_id="a|b^c&d")[0].text
    assert "PID|||a\\F\\b\\S\\c\\T\\d^^^ITB^PI" in text
    hl7v2.validate(text)


# ----- MLLP ----------------------------------------------------------------------------------------


def test_mllp_round_trip_on_loopback(rich):
    msgs = hl7v2.messages(rich)
    with mllp.Receiver(LOOPBACK, 0, check=hl7v2.validate) as rx:
        acks = mllp.send(msgs, LOOPBACK, rx.port)
    assert rx.messages == [m.text for m in msgs]
    assert all("\rMSA|AA|" + m.control_id in a for a, m in zip(acks, msgs))


def test_mllp_refusal_and_dead_port():
    with mllp.Receiver(LOOPBACK, 0, check=hl7v2.validate) as rx:
        with pytest.raises(ProtocolError) as e:
            mllp.send(["MSH|^~\\&|X|Y|||20260101||ORU^R42^ORU_R01|1|P|2.6\r"], LOOPBACK, rx.port)
        assert e.value.field == "ack"
        port = rx.port
    with pytest.raises(ProtocolError) as e:
        mllp.send(["MSH|x\r"], LOOPBACK, port, timeout=timedelta(seconds=2))
    assert e.value.field == "connect"
    with pytest.raises(ValidationError):
        mllp.parse_address("localhost")


def test_frames_split_across_reads():
    import socket

    a, b = socket.socketpair()
    with a, b:
        a.sendall(mllp.frame("one")[:3])
        a.sendall(mllp.frame("one")[3:] + mllp.frame("two"))
        buf = bytearray()
        assert mllp.read_frame(b, buf) == "one"
        assert mllp.read_frame(b, buf) == "two"
        a.sendall(b"junk" + mllp.END)
        with pytest.raises(ProtocolError):
            mllp.read_frame(b, buf)


# ----- command line ---------------------------------------------------------------------------------


def test_cli_exports(tmp_path):
    from itb.cli import main

    src = tmp_path / "rich.toml"
    src.write_text(RICH, encoding="utf-8")
    out = tmp_path / "bundle.json"
    assert main(["export", "fhir", str(src), "--fhir-version", "R4B", "-o", str(out)]) == 0
    b = json.loads(out.read_text(encoding="utf-8"))
    assert b["resourceType"] == "Bundle" and any(
        e["resource"]["resourceType"] == "DeviceUseStatement" for e in b["entry"]
    )
    hl7 = tmp_path / "events.hl7"
    assert main(["export", "hl7", str(src), "-o", str(hl7), "--utc-offset", "+01:00"]) == 0
    texts = [t for t in hl7.read_bytes().decode().split("\r\n") if t]
    assert all(t.startswith("MSH|") for t in texts) and "+0100" in texts[0]
    with mllp.Receiver(LOOPBACK, 0) as rx:
        assert (
            main(["export", "hl7", str(src), "--mllp", f"{LOOPBACK}:{rx.port}", "--no-validate"])
            == 0
        )
    assert len(rx.messages) == len(texts)

    def refuse(text):
        raise ValueError("not today")

    with mllp.Receiver(LOOPBACK, 0, check=refuse) as rx:
        assert (
            main(["export", "hl7", str(src), "--mllp", f"{LOOPBACK}:{rx.port}", "--no-validate"])
            == 1
        )
    assert main(["export", "fhir", str(src), "--fhir-version", "R6"]) == 2
    assert main(["export", "hl7", str(src), "--mllp", "nohost"]) == 2
    assert main(["export", "fhir", str(tmp_path / "missing.toml")]) == 2
    assert main(["export"]) == 2


def test_the_guide_examples_run():
    """Every python block of docs/guide/interop.md runs as it stands."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "guide" / "interop.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 3
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page.name}[{i}]", "exec"), {})


def test_medication_codes_name_baclofen_in_rxnorm_snomed_and_atc() -> None:
    pytest.importorskip("fhir.resources")
    from itb.interop import codes

    assert codes.BACLOFEN_RXNORM == ("1292", "baclofen")
    assert codes.RXNORM == "http://www.nlm.nih.gov/research/umls/rxnorm"


def test_cli_fhir_titration_guard_findings(tmp_path):
    # adult_sci_2000: 400 -> 480 µg/day on day 14 (+20 %): within spinal titration (+30 %),
    # beyond cerebral titration (+15 %), so only the cerebral guard writes a DetectedIssue.
    pytest.importorskip("fhir.resources")
    from pathlib import Path

    from itb.cli import main

    src = Path(__file__).resolve().parents[1] / "examples" / "adult_sci_2000.toml"

    def issues(guard: str) -> list[str]:
        out = tmp_path / f"{guard.replace(':', '_')}.json"
        args = ["export", "fhir", str(src), "--until", "P30D", "-o", str(out)]
        assert main([*args, "--titration-guard", guard, "--max-ug-per-day", "1000"]) == 0
        b = json.loads(out.read_text(encoding="utf-8"))
        return [
            e["resource"]["code"]["text"]
            for e in b["entry"]
            if e["resource"]["resourceType"] == "DetectedIssue"
            and e["resource"]["code"]["text"].startswith("titration guard")
        ]

    assert issues("spinal:titration") == []
    assert issues("cerebral:titration") == ["titration guard: exceeds_step"]
    assert main(["export", "fhir", str(src), "--titration-guard", "spinal:titration"]) != 0


def test_flex_daily_dose_is_the_time_weighted_mean():
    from itb.interop.fhir import _daily_ng

    day = 86_400_000
    # 6 h at 100 µg/day, 18 h at 200 µg/day -> 175 µg/day
    assert _daily_ng(("flex", "day", [(0, 100_000), (day // 4, 200_000)])) == 175_000
    assert _daily_ng(("continuous", 480_000)) == 480_000
