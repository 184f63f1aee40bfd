"""Interop exports, item by item: the pump/catheter Devices and the Observations against hand
computations, every alarm kind as a DetectedIssue and as a PCD-10 alarm message, the R4→R5 renames,
a weekly flex prescription as timing, a priming bolus, the remainder rule on hand cases and on
random weights (hypothesis), the PCD-10 message structure read through hl7apy's own tree, and the
guide's JSON excerpt and HL7 message compared with what the export writes."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fhir.resources")
pytest.importorskip("hl7apy")

from itb import scenario  # noqa: E402
from itb.interop import codes, fhir, history_of, hl7v2  # noqa: E402
from itb.interop.history import _apportion  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide" / "interop.md"

# 800 µg/day at 2000 µg/mL = 0.4 mL/day from a 3 mL reservoir, the battery read at 14 mAh (below
# ERI 32 mAh, above EOS 10 mAh of the nominal battery), a 1 h motor stall on day 1, and on
# Wednesday 7 Jan a weekly flex program: 800 µg/day from Monday, 400 µg/day from Saturday.
#   low reservoir (2 mL left, 1 mL delivered): 2.5 days of delivery + the 1 h stall
#     -> 2026-01-07 21:00;
#   empty: to Sat 10 Jan 00:00, 4 d 16 h - 1 h = 4.625 d x 0.4 = 1.85 mL; Sat+Sun 2 d x 0.2 =
#     0.4 mL (2.25 mL by Mon 00:00); the last 0.75 mL at 0.4 mL/day = 1.875 d -> 2026-01-13 21:00.
ALARMS = """
[pump]
model = "SYNCHROMED_II_20"
start = 2026-01-05T08:00:00
reservoir_ml = 3.0
concentration_ug_per_ml = 2000
catheter_volume_ul = 100.0
program = { kind = "continuous", ug_per_day = 800.0 }
battery_mah = 14.0
implanted = 2020-06-15T10:00:00

[[actions]]
at = 2026-01-06T08:00:00
do = "inject_motor_stall"

[[actions]]
at = 2026-01-06T09:00:00
do = "clear_fault"

[[actions]]
at = 2026-01-07T08:00:00
do = "set_program"
program = { kind = "flex", period = "week", steps = [["mon 00:00", 800.0], ["sat 00:00", 400.0]] }

[run]
until = 2026-02-05T00:00:00
"""

# 2 days of 400 µg/day at 2000 µg/mL with the path (100 µL pump path + 100 µL catheter) full of
# saline and a priming bolus at the start.
PRIMING = """
[pump]
model = "SYNCHROMED_II_20"
start = 2026-01-05T08:00:00
reservoir_ml = 20.0
concentration_ug_per_ml = 2000
catheter_volume_ul = 100.0
path_primed = false
program = { kind = "continuous", ug_per_day = 400.0 }

[[actions]]
at = 2026-01-05T08:00:00
do = "start_priming_bolus"

[run]
until = 2026-01-07T08:00:00
"""


@pytest.fixture(scope="module")
def alarms():
    return scenario.loads(ALARMS, source="alarms.toml").run()


def _of(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _url(bundle: dict, kind: str, ident: str | None = None) -> str:
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == kind and (ident is None or r["identifier"][0]["value"] == ident):
            return str(e["fullUrl"])
    raise AssertionError(f"no {kind} {ident}")


def _doses(bundle: dict) -> list[Decimal]:
    data = json.loads(json.dumps(bundle), parse_float=Decimal)
    return [Decimal(a["dosage"]["dose"]["value"]) for a in _of(data, "MedicationAdministration")]


# ----- FHIR: alarms, devices, observations -------------------------------------------------------


@pytest.mark.parametrize("version", ["R5", "R4B"])
def test_every_alarm_kind_is_a_detected_issue(alarms, version):
    b = fhir.bundle(alarms, version=version)
    issues = _of(b, "DetectedIssue")
    by_kind = {i["detail"].split(" ")[0]: i for i in issues}
    assert set(by_kind) == {"eri", "fault", "low_reservoir", "reservoir_empty", "eos"}
    assert by_kind["eri"]["identifiedDateTime"] == "2026-01-05T08:00:00.000+00:00"
    assert by_kind["fault"]["identifiedDateTime"] == "2026-01-06T08:00:00.000+00:00"
    assert by_kind["low_reservoir"]["identifiedDateTime"] == "2026-01-07T21:00:00.000+00:00"
    assert by_kind["reservoir_empty"]["identifiedDateTime"] == "2026-01-13T21:00:00.000+00:00"
    assert "2026-01-13T21" < by_kind["eos"]["identifiedDateTime"] < "2026-02-05"
    # delivery-stopping alarms are high, warnings moderate (decisions/interop.md)
    assert {k: i["severity"] for k, i in by_kind.items()} == {
        "eri": "moderate",
        "low_reservoir": "moderate",
        "fault": "high",
        "reservoir_empty": "high",
        "eos": "high",
    }
    pump = _url(b, "Device", "pump")
    patient = _url(b, "Patient")
    for i in issues:
        assert i["author"]["reference"] == pump
        assert i["subject" if version == "R5" else "patient"]["reference"] == patient
    # the whole 3 mL reservoir left the primed tip at 2000 µg/mL: 6000 µg
    assert sum(_doses(b)) == Decimal(6000)
    # the battery observation says ERI and EOS were reached; the reservoir reads empty
    battery = next(o for o in _of(b, "Observation") if "battery" in o["code"]["text"])
    assert {c["code"]["text"]: c["valueBoolean"] for c in battery["component"]} == {
        "elective replacement indicator": True,
        "end of service": True,
    }
    reservoir = next(o for o in _of(b, "Observation") if "reservoir" in o["code"]["text"])
    assert reservoir["valueQuantity"]["value"] == 0
    assert _of(b, "DeviceUsage" if version == "R5" else "DeviceUseStatement")[0]["status"] == (
        "completed"  # EOS ends the use of the pump
    )


def test_weekly_flex_prescription_is_timing(alarms):
    b = fhir.bundle(alarms, version="R5")
    requests = _of(b, "MedicationRequest")
    assert len(requests) == 2
    first, flex = requests
    assert first["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"]["value"] == 800
    assert first["dispenseRequest"]["validityPeriod"] == {
        "start": "2026-01-05T08:00:00.000+00:00",
        "end": "2026-01-07T08:00:00.000+00:00",
    }
    steps = flex["dosageInstruction"]
    assert [s["timing"]["repeat"]["dayOfWeek"] for s in steps] == [["mon"], ["sat"]]
    assert [s["timing"]["repeat"]["timeOfDay"] for s in steps] == [["00:00:00"], ["00:00:00"]]
    # Monday to Saturday is 5 days, Saturday to the end of the week 2 days
    assert [s["timing"]["repeat"]["duration"] for s in steps] == [5 * 86_400, 2 * 86_400]
    assert {s["timing"]["repeat"]["periodUnit"] for s in steps} == {"wk"}
    assert [s["doseAndRate"][0]["rateQuantity"]["value"] for s in steps] == [800, 400]
    assert {s["doseAndRate"][0]["rateQuantity"]["code"] for s in steps} == {"ug/d"}
    route = {s["route"]["coding"][0]["code"] for s in steps}
    assert route == {codes.INTRATHECAL_ROUTE_SNOMED[0]}
    # the drug: one Medication at 2000 µg/mL, named in SNOMED CT, RxNorm and ATC
    (med,) = _of(b, "Medication")
    assert flex["medication"]["reference"]["reference"] == _url(b, "Medication")
    systems = {c["system"]: c["code"] for c in med["code"]["coding"]}
    assert systems == {
        "http://snomed.info/sct": "387342009",
        "http://www.nlm.nih.gov/research/umls/rxnorm": "1292",
        "http://www.whocc.no/atc": "M03BX01",
    }
    strength = med["ingredient"][0]["strengthRatio"]
    assert strength["numerator"]["value"] == 2000 and strength["denominator"]["code"] == "mL"


def test_devices_and_observations_hand_checked():
    """The fixed scenario of test_interop.RICH: 6 mL of 500 µg/mL, flex 200/400/200 µg/day
    (00-08-20 h), a 50 µg bolus on day 1, a 2 h suspension in the 400 µg/day step on day 2, refill
    on day 3 at 10:00 with 1 mL aspirated. Delivered by then: day 1 300 + 50 µg, day 2 300 - 2 h x
    400/24 = 266.667 µg, day 3 8 h x 200/24 + 2 h x 400/24 = 100 µg -> 716.667 µg = 1.433333 mL,
    so the firmware expects 6 - 1.433333 = 4.566667 mL (within a 2 µL stroke)."""
    from test_interop import RICH

    r = scenario.loads(RICH, source="rich.toml").run()
    for version in ("R5", "R4B"):
        b = fhir.bundle(r, version=version)
        pump, channel, catheter = _of(b, "Device")
        assert pump["modelNumber"] == r.pump.model.name == "SynchroMed II 40 mL (nominal)"
        name = pump["name"][0]["value"] if version == "R5" else pump["deviceName"][0]["name"]
        assert name == "SynchroMed II 40 mL (nominal)"
        props = {
            p["type"]["text"]: (p["valueQuantity"] if version == "R5" else p["valueQuantity"][0])
            for p in pump["property"]
        }
        assert props["reservoir capacity"]["value"] == 40 and props["reservoir capacity"]["code"]
        assert props["stroke volume"]["value"] == 2 and props["stroke volume"]["code"] == "uL"
        assert "battery remaining" in props and props["battery remaining"]["code"] == "mA.h"
        dead = catheter["property"][0]
        dead_q = dead["valueQuantity"] if version == "R5" else dead["valueQuantity"][0]
        assert dead["type"]["text"] == "dead volume" and (dead_q["value"], dead_q["code"]) == (
            100,
            "uL",
        )
        (refill,) = [o for o in _of(b, "Observation") if o["code"]["text"].startswith("refill")]
        comp = {c["code"]["text"]: c["valueQuantity"]["value"] for c in refill["component"]}
        assert comp["aspirated volume"] == 1 and comp["added volume"] == 20
        assert abs(comp["expected reservoir volume"] - 4.566667) <= 0.002
        assert refill["valueQuantity"]["value"] == pytest.approx(
            comp["aspirated volume"] - comp["expected reservoir volume"], abs=1e-6
        )
        assert refill["effectiveDateTime"] == "2026-03-04T10:00:00.000+00:00"
        assert refill["interpretation"][0]["text"] == "beyond tolerance"
        battery = next(o for o in _of(b, "Observation") if "battery" in o["code"]["text"])
        assert [c["valueBoolean"] for c in battery["component"]] == [False, False]


@pytest.mark.parametrize("version", ["R5", "R4B"])
def test_r4_to_r5_renames(version):
    """R4B DeviceUseStatement(subject, device: Reference) → R5 DeviceUsage(patient, device:
    CodeableReference); medicationReference → medication (CodeableReference); effective[x] →
    occurence[x]; deviceName → name; Device.type one → many. Each version's bundle is refused by
    the other version's models, so the difference is real, not cosmetic."""
    r = scenario.loads(PRIMING, source="priming.toml").run()
    b = fhir.bundle(r, version=version)
    other = "fhir.resources.R4B.bundle" if version == "R5" else "fhir.resources.bundle"
    # fhir.resources 8 raises KeyError (not a ValidationError) for a type its R4B models lack
    with pytest.raises((ValueError, KeyError)):
        __import__(other, fromlist=["Bundle"]).Bundle.model_validate(b)
    pump, patient, med = _url(b, "Device", "pump"), _url(b, "Patient"), _url(b, "Medication")
    kinds = {e["resource"]["resourceType"] for e in b["entry"]}
    assert not kinds & {"MedicationUsage", "MedicationStatement"}  # decisions/interop.md
    ma = _of(b, "MedicationAdministration")
    if version == "R5":
        (use,) = _of(b, "DeviceUsage")
        assert use["patient"]["reference"] == patient
        assert use["device"]["reference"]["reference"] == pump
        assert all(a["medication"]["reference"]["reference"] == med for a in ma)
        assert all("occurencePeriod" in a and "effectivePeriod" not in a for a in ma)
        assert all(a["device"][0]["reference"]["reference"] == pump for a in ma)
        assert isinstance(_of(b, "Device")[0]["type"], list)
        assert "name" in _of(b, "Device")[0] and "deviceName" not in _of(b, "Device")[0]
    else:
        (use,) = _of(b, "DeviceUseStatement")
        assert use["subject"]["reference"] == patient and use["device"]["reference"] == pump
        assert all(a["medicationReference"]["reference"] == med for a in ma)
        assert all("effectivePeriod" in a and "occurencePeriod" not in a for a in ma)
        assert all(a["device"][0]["reference"] == pump for a in ma)
        assert isinstance(_of(b, "Device")[0]["type"], dict)
        assert "deviceName" in _of(b, "Device")[0]


def test_r5_has_medication_statement_not_medication_usage():
    """R5 5.0.0 kept MedicationStatement (MedicationUsage was the name in the 2022 R5 ballot only):
    the models the export validates with say the same (decisions/interop.md#fhir-resource-choices)."""
    import importlib

    importlib.import_module("fhir.resources.medicationstatement")
    importlib.import_module("fhir.resources.deviceusage")
    importlib.import_module("fhir.resources.R4B.deviceusestatement")
    with pytest.raises(ImportError):
        importlib.import_module("fhir.resources.medicationusage")


def test_priming_bolus_is_its_own_administration():
    """The priming bolus pushes the saline out of the 200 µL path: it moves 198.333 µL, i.e. 99
    whole 2 µL strokes (198 µL) of drug into the path, and what leaves the tip meanwhile is saline
    (0 µg). Over the 2 days the basal 400 µg/day moves 400 µL; of the 598 µL moved in all, the
    first 200 µL out of the tip are saline: 398 µL x 2000 µg/mL = 796 µg at the tip."""
    r = scenario.loads(PRIMING, source="priming.toml").run()
    h = history_of(r)
    (priming,) = [a for a in h.administrations if a.kind == "priming"]
    (basal,) = [a for a in h.administrations if a.kind == "basal"]
    assert priming.tip_pg == 0 and priming.status == "completed"
    assert basal.tip_pg == 796_000_000 == r.pump.delivered_pg
    b = fhir.bundle(r, version="R5")
    cats = [a["category"][0]["text"] for a in _of(b, "MedicationAdministration")]
    assert sorted(cats) == ["basal", "priming bolus"]
    msgs = hl7v2.messages(r)
    start = next(m for m in msgs if m.kind == "bolus_started")
    assert "^pump-source-info-loading" in start.text
    assert [m.event for m in msgs] == [
        "MDC_EVT_PUMP_DELIV_START",
        "MDC_EVT_PUMP_DELIV_START",
        "MDC_EVT_PUMP_DELIV_COMP",
    ]


# ----- the remainder rule ---------------------------------------------------------------------------


def test_remainder_rule_hand_cases():
    # 10 pg over three equal flows: 3 each, the 1 pg left to the first (basal first on ties)
    assert _apportion(10, [(Fraction(1), 0), (Fraction(1), 1), (Fraction(1), 2)]) == [
        (0, 4),
        (1, 3),
        (2, 3),
    ]
    # 7 pg by 1:2: 2.333 and 4.667 -> floors 2 and 4, the 1 pg left to the larger fraction
    assert _apportion(7, [(Fraction(1), 0), (Fraction(2), 1)]) == [(0, 2), (1, 5)]
    # 5 pg by 1:1:2: 1.25, 1.25, 2.5 -> 1, 1, 2 and the 1 left to the .5
    assert _apportion(5, [(Fraction(1), 0), (Fraction(1), 1), (Fraction(2), 2)]) == [
        (0, 1),
        (1, 1),
        (2, 3),
    ]


@settings(max_examples=200)
@given(
    st.integers(0, 10**12),
    st.lists(st.integers(1, 10**9), min_size=1, max_size=6),
)
def test_remainder_rule_is_largest_remainder(mass, weights):
    shares = [s for _, s in _apportion(mass, [(Fraction(w), i) for i, w in enumerate(weights)])]
    assert sum(shares) == mass
    exact = [Fraction(mass * w, sum(weights)) for w in weights]
    fracs = [x - (x.numerator // x.denominator) for x in exact]
    up = [i for i, (s, x) in enumerate(zip(shares, exact)) if s > x]
    down = [i for i, (s, x) in enumerate(zip(shares, exact)) if s <= x]
    for s, x in zip(shares, exact):
        assert x - 1 < s < x + 1
    # every pg handed out went to a fraction at least as large as any left without one, and
    # among equal fractions to the earlier flow
    for i in up:
        for j in down:
            if fracs[j] == 0:
                continue
            assert fracs[i] > fracs[j] or (fracs[i] == fracs[j] and i < j)


# ----- PCD-10 -------------------------------------------------------------------------------------


def test_alarm_and_program_change_messages(alarms):
    msgs = hl7v2.messages(alarms)
    assert [(m.kind, m.event) for m in msgs] == [
        ("start", "MDC_EVT_PUMP_DELIV_START"),
        ("eri", "eri"),
        ("fault", "MDC_EVT_PUMP_DELIV_STOP"),
        ("fault", "fault"),
        ("fault_cleared", "MDC_EVT_PUMP_DELIV_START"),
        ("program_changed", "MDC_EVT_PUMP_DELIV_STOP"),
        ("program_changed", "MDC_EVT_PUMP_DELIV_START"),
        ("low_reservoir", "low_reservoir"),
        ("reservoir_empty", "MDC_EVT_PUMP_DELIV_STOP"),
        ("reservoir_empty", "reservoir_empty"),
        ("eos", "MDC_EVT_PUMP_DELIV_STOP"),
        ("eos", "eos"),
    ]
    for m in msgs:
        hl7v2.validate(m.text)
        cond = next(s for s in m.text.split("\r") if "^MDC_ATTR_EVT_COND^" in s).split("|")
        if m.event == m.kind:  # an alarm: local code 0 with itb's kind, at its own time
            assert cond[5] == f"0^{m.kind}^99ITB"
    stop, start = [m.text for m in msgs if m.kind == "program_changed"]
    # the rate change: the old continuous program stops (transitioning), the weekly flex starts
    assert "^pump-program-delivery-mode-continuous|" in stop
    assert "^pump-delivery-status-transitioning" in stop
    assert "^pump-program-delivery-mode-multi-step|" in start
    assert "20260107080000.000+0000" in stop and "20260107080000.000+0000" in start
    empty = next(m for m in msgs if m.kind == "reservoir_empty" and m.event != m.kind).text
    # the whole 3 mL reservoir delivered at the tip; infusing status off; drug and strength
    assert "|157993^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.2.8|3|263762^MDC_DIM_MILLI_L^MDC^" in empty
    assert "|184519^MDC_PUMP_INFUSING_STATUS^MDC|1.1.1.1|^pump-status-not-infusing|" in empty
    assert "|0^MDC_DEV_PUMP_NOT_DELIVERING_REASON^MDC|1.1.2.3|^pump-stopped-alarming|" in empty
    assert "|184514^MDC_DRUG_NAME_LABEL^MDC|1.1.2.9|baclofen|" in empty
    assert "|157760^MDC_CONC_DRUG^MDC|1.1.2.10|2|264306^MDC_DIM_MILLI_G_PER_ML^MDC^" in empty
    # 800 µg/day at 2000 µg/mL = 0.4 mL/day = 0.016667 mL/h (half-even to 6 places)
    assert "|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.2.5|0.016667|" in empty
    assert "|157924^MDC_RATE_DOSE^MDC|1.1.2.6|800|ug/d^ug/d^UCUM|" in empty


#: What IHE PCD TF-2 (PCD-01/PCD-10 message, Appendix B) asks of each segment, written out here
#: independently of hl7v2.REQUIRED_FIELDS and checked on hl7apy's parsed tree.
PCD_REQUIRED = {
    "MSH": ["msh_1", "msh_2", "msh_3", "msh_7", "msh_9", "msh_10", "msh_11", "msh_12", "msh_21"],
    "PID": ["pid_3", "pid_5"],
    "OBR": ["obr_1", "obr_3", "obr_4", "obr_7"],
    "OBX": ["obx_1", "obx_3", "obx_4", "obx_11"],
}


def _segments(node):
    from hl7apy.core import Segment

    for child in node.children:
        if isinstance(child, Segment):
            yield child
        else:
            yield from _segments(child)


def test_pcd10_structure_through_hl7apy_tree(alarms):
    from test_interop import RICH

    rich = scenario.loads(RICH, source="rich.toml").run()
    msgs = hl7v2.messages(alarms) + hl7v2.messages(rich)
    for m in msgs:
        parsed = hl7v2.validate(m.text)
        segs = list(_segments(parsed))
        names = [s.name for s in segs]
        assert names[:3] == ["MSH", "PID", "OBR"] and set(names[3:]) == {"OBX"}
        for s in segs:
            for f in PCD_REQUIRED.get(s.name, []):
                assert getattr(s, f).value, (m.kind, s.name, f)
        msh = parsed.msh
        assert msh.msh_9.value == "ORU^R42^ORU_R01" and msh.msh_12.value == "2.6"
        assert msh.msh_21.msh_21_3.value == "1.3.6.1.4.1.19376.1.6.4.10"
        assert (msh.msh_15.value, msh.msh_16.value) == ("AL", "NE")
        obx = [s for s in segs if s.name == "OBX"]
        # OBX-1 numbers 1..n; OBX-4 is a unique MDS.VMD.CHAN.METRIC dotted address
        assert [int(s.obx_1.value) for s in obx] == list(range(1, len(obx) + 1))
        subids = [s.obx_4.value for s in obx]
        assert len(set(subids)) == len(subids)
        assert all(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", x) for x in subids)
        for s in obx:
            system = s.obx_3.obx_3_3.value
            assert system in ("MDC", codes.LOCAL_SYSTEM)
            if system == "MDC":  # an MDC code is the one the table gives for its reference id
                code, ref = int(s.obx_3.obx_3_1.value), s.obx_3.obx_3_2.value
                assert (code, ref) in codes.MDC.values()
            if s.obx_2.value == "NM":
                assert s.obx_6.value  # a number has its unit
        cond = next(s for s in obx if s.obx_3.obx_3_2.value == "MDC_ATTR_EVT_COND")
        obr = next(s for s in segs if s.name == "OBR")
        assert cond.obx_14.value == msh.msh_7.value == obr.obr_7.value


# ----- the guide shows what the export writes -------------------------------------------------------


def _contains(excerpt, actual) -> bool:
    """``excerpt`` is ``actual`` with keys left out; strings ending in … are prefixes."""
    if isinstance(excerpt, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(v, actual[k]) for k, v in excerpt.items()
        )
    if isinstance(excerpt, list):
        return (
            isinstance(actual, list)
            and len(excerpt) == len(actual)
            and all(_contains(x, y) for x, y in zip(excerpt, actual))
        )
    if isinstance(excerpt, str) and excerpt.endswith("…"):
        return isinstance(actual, str) and actual.startswith(excerpt[:-1])
    return bool(excerpt == actual and type(excerpt) is type(actual))


def test_guide_excerpts_are_what_the_export_writes():
    page = GUIDE.read_text(encoding="utf-8")
    first = re.findall(r"```python\n(.*?)```", page, re.S)[0]
    ns: dict[str, object] = {}
    exec(compile(first, "interop.md[0]", "exec"), ns)
    bundle, result = ns["bundle"], ns["result"]
    excerpt = json.loads(re.search(r"```json\n(.*?)```", page, re.S).group(1))
    administrations = _of(bundle, "MedicationAdministration")  # type: ignore[arg-type]
    assert len(administrations) == 91  # the page says 91: 3 steps x 30 days + the bolus
    assert sum(1 for a in administrations if _contains(excerpt, a)) == 1
    shown = re.search(r"```text\n(.*?)```", page, re.S).group(1)
    start = next(m for m in hl7v2.messages(result) if m.kind == "bolus_started")
    assert shown.replace("\n", "\r") == start.text


def test_codes_sent_as_zero_are_listed_in_the_guide():
    page = GUIDE.read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| ")]
    for ref in codes.UNASSIGNED:
        assert any(f"`0` {ref}" in row for row in rows), ref
    for name, (code, ref) in codes.MDC.items():
        if code:
            assert any(str(code) in row for row in rows), (name, ref)
    # each code the bundles write has a row with its source
    for code in ("387342009", "M03BX01", "1292", "72607000"):
        (row,) = [r for r in rows if f"`{code}`" in r]
        assert row.rstrip(" |").split("|")[-1].strip(), code


def test_a_bare_pump_is_refused_with_the_way_to_export_it():
    """A pump's own events lack the tip dose per segment (decisions/interop.md): a bare pump is a
    ValidationError naming the Recorder; the same pump driven through one exports, and both
    exports agree with its ledger."""
    from datetime import datetime, timedelta

    import itb
    from itb.errors import ValidationError
    from itb.interop import Recorder

    def pump():
        return itb.Pump(
            itb.models.SYNCHROMED_II_40,
            now=datetime(2026, 1, 5),
            reservoir_ml=40.0,
            concentration_ug_per_ml=2000,
            program=itb.Continuous(ug_per_day=400),
        )

    bare = pump()
    for export in (fhir.bundle, hl7v2.messages):
        with pytest.raises(ValidationError, match="Recorder") as e:
            export(bare)
        assert e.value.field == "source"
    rec = Recorder(pump())
    rec.pump.bolus(dose_ug=20.0, duration=timedelta(minutes=20), start=datetime(2026, 1, 5, 6))
    rec.advance_to(datetime(2026, 1, 7))
    # 2 days at 400 µg/day + a 20 µg bolus, path primed: 820 µg at the tip
    assert rec.pump.delivered_pg == 820_000_000
    assert sum(_doses(fhir.bundle(rec, version="R5"))) == Decimal(820)
    kinds = [m.kind for m in hl7v2.messages(rec)]
    assert kinds == ["start", "bolus_started", "bolus_completed"]


def test_the_itb_command_exports_both_forms(tmp_path):
    """The installed ``itb`` command end to end: the default FHIR version is R5 on stdout (parsed
    here by fhir.resources), ``--fhir-version R4B -o`` writes R4B, ``export hl7 -o`` writes one
    message per event that hl7apy parses strictly on its own, and ``--mllp`` delivers the same
    messages to a receiver on 127.0.0.1."""
    import shutil
    import subprocess
    import sys

    from hl7apy import parser
    from hl7apy.consts import VALIDATION_LEVEL
    from itb.interop import mllp

    exe = shutil.which("itb") or str(Path(sys.executable).with_name("itb"))
    src = str(ROOT / "examples" / "ptm_patient_bolus.toml")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "export", *args], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )

    out = run("fhir", src)
    assert out.returncode == 0, out.stderr
    from fhir.resources.bundle import Bundle

    r5 = Bundle.model_validate_json(out.stdout)
    assert {e.resource.get_resource_type() for e in r5.entry} >= {"DeviceUsage", "Device"}
    assert run("fhir", src, "--fhir-version", "R4B", "-o", "b.json").returncode == 0
    from fhir.resources.R4B.bundle import Bundle as BundleR4B

    r4b = BundleR4B.model_validate_json((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert any(e.resource.get_resource_type() == "DeviceUseStatement" for e in r4b.entry)

    assert run("hl7", src, "-o", "events.hl7").returncode == 0
    texts = [t for t in (tmp_path / "events.hl7").read_bytes().decode().split("\r\n") if t]
    result = scenario.load(src).run()
    assert texts == [m.text for m in hl7v2.messages(result)]
    for t in texts:
        msg = parser.parse_message(t, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
        assert msg.msh.msh_21.msh_21_3.value == "1.3.6.1.4.1.19376.1.6.4.10"
    with mllp.Receiver("127.0.0.1", 0) as rx:
        sent = run("hl7", src, "--mllp", f"127.0.0.1:{rx.port}", "--no-validate")
    assert sent.returncode == 0, sent.stderr
    assert rx.messages == texts


def _random_scenarios():
    from test_interop import scenarios

    return scenarios()


@settings(max_examples=20, deadline=None)
@given(_random_scenarios())
def test_both_versions_carry_the_same_doses(data):
    """On random scenarios (the strategy of test_interop) the R4B and R5 bundles list the same
    doses in the same order, and each adds up to the pump's tip ledger to the pg."""
    from test_interop import _run

    result = _run(data)
    if result is None:
        return
    r5 = _doses(fhir.bundle(result, version="R5", validate=False))
    r4b = _doses(fhir.bundle(result, version="R4B", validate=False))
    assert r5 == r4b
    assert sum(r5) == Decimal(result.pump.delivered_pg) / 10**6
