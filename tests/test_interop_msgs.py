"""Clinical units in alarm text: the FHIR DetectedIssue.detail and the PCD-10 alarm OBX-5 give
volumes in mL (exact decimals of the pump's nL), never the internal nL figures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("fhir.resources")
pytest.importorskip("hl7apy")

from itb import scenario  # noqa: E402
from itb.interop import fhir, hl7v2  # noqa: E402
from itb.interop.history import alarm_detail  # noqa: E402

REFILL = """
[pump]
model = "SYNCHROMED_II_20"
start = 2026-03-02T00:00:00
reservoir_ml = 18.0
concentration_ug_per_ml = 500
program = { kind = "continuous", ug_per_day = 500.0 }

[[actions]]
at = 2026-03-04T00:00:00
do = "refill"
added_ml = 18.0
concentration_ug_per_ml = 500
aspirated_ml = 10.5

[run]
until = 2026-03-04T01:00:00
"""


def test_alarm_detail_hand_cases():
    d = {"aspirated_nl": 10_500_000, "discrepancy_nl": -6_548_000, "expected_nl": 17_048_000}
    assert alarm_detail(d) == "aspirated=10.5 mL, discrepancy=-6.548 mL, expected=17.048 mL"
    assert alarm_detail({"reservoir_nl": 1, "threshold_nl": 2_000_000}) == (
        "reservoir=0.000001 mL, threshold=2 mL"
    )
    assert alarm_detail({"pocket_pg": 1_500_000, "dose_ng_per_day": 250_500}) == (
        "dose=250.5 µg/day, pocket=1.5 µg"
    )
    assert alarm_detail({"fault": "occlusion", "pass_ppm": 5}) == "fault=occlusion, pass_ppm=5"


@given(st.integers(-(10**12), 10**12))
def test_alarm_detail_is_exact(nl):
    text = alarm_detail({"x_nl": nl})
    assert text.startswith("x=") and text.endswith(" mL")
    assert Decimal(text[2:-3]) == Decimal(nl) / 10**6  # exact, no rounding


def test_refill_discrepancy_reads_in_ml():
    result = scenario.loads(REFILL, source="refill.toml").run()
    ev = next(e for e in result.events if e.kind == "refill_discrepancy")
    expected = Decimal(ev.data["expected_nl"]) / 10**6
    assert ev.data["aspirated_nl"] == 10_500_000
    issues = [
        r["resource"]["detail"]
        for r in fhir.bundle(result)["entry"]
        if r["resource"]["resourceType"] == "DetectedIssue"
        and "refill_discrepancy" in r["resource"]["detail"]
    ]
    assert len(issues) == 1
    assert "aspirated=10.5 mL" in issues[0] and "_nl" not in issues[0]
    assert f"expected={expected.normalize():f} mL" in issues[0]
    obx = [
        seg
        for m in hl7v2.messages(result)
        if m.kind == "refill_discrepancy"
        for seg in m.text.split("\r")
        if "alarm_detail" in seg
    ]
    assert len(obx) == 1
    assert "aspirated=10.5 mL" in obx[0] and "_nl" not in obx[0]


def test_refill_report_repr_in_ml():
    # 500 µg/day at 500 µg/mL is 1 mL/day: after 2 days 18 - 2 = 16 mL is expected.
    from datetime import datetime, timedelta

    import itb
    from itb.models import SYNCHROMED_II_20

    pump = itb.Pump(
        SYNCHROMED_II_20,
        now=datetime(2026, 3, 2),
        reservoir_ml=18.0,
        concentration_ug_per_ml=500,
        program=itb.Continuous(ug_per_day=500),
    )
    pump.advance(timedelta(days=2))
    text = repr(pump.refill(18.0, 500, aspirated_ml=10.5))
    assert text.startswith("RefillReport(expected=16 mL, aspirated=10.5 mL, ")
    assert "discrepancy=-5.5 mL (-34.4 %)" in text and "flagged=True" in text
    assert "_nl" not in text and "000000" not in text


def _rich(tmp_path):
    from test_interop import RICH

    src = tmp_path / "rich.toml"
    src.write_text(RICH, encoding="utf-8")
    return src


def test_cli_export_to_a_file_prints_a_summary(tmp_path, capsys):
    import json

    from itb.cli import main

    src = _rich(tmp_path)
    out = tmp_path / "x.json"
    assert main(["export", "fhir", str(src), "-o", str(out)]) == 0
    n = len(json.loads(out.read_text(encoding="utf-8"))["entry"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"wrote a FHIR R5 bundle of {n} resources to {out}"
    hl7 = tmp_path / "x.hl7"
    assert main(["export", "hl7", str(src), "-o", str(hl7)]) == 0
    count = sum(1 for t in hl7.read_bytes().decode().split("\r\n") if t.startswith("MSH|"))
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"wrote {count} HL7 messages to {hl7}"
    )
    # to stdout: the document only, no summary mixed in
    assert main(["export", "fhir", str(src)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["resourceType"] == "Bundle" and "wrote" not in captured.err


def test_cli_mllp_connection_refused_exits_2(tmp_path, capsys):
    import socket

    from itb.cli import main

    src = _rich(tmp_path)
    with socket.socket() as s:  # a free loopback port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["export", "hl7", str(src), "--mllp", f"127.0.0.1:{port}", "--no-validate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"itb: error: --mllp 127.0.0.1:{port}: cannot connect (")
    assert err.count(f"127.0.0.1:{port}") == 1 and "Errno" not in err
