"""IHE PCD-10 (Infusion Pump Event Communication) HL7 v2.6 event messages of a therapy history:
one ``ORU^R42^ORU_R01`` message per event, MSH-21 profile ``1.3.6.1.4.1.19376.1.6.4.10``.

Events and what they become (docs: guide/interop.md has the table and a sample message):

- the start of the history, ``resumed``, ``fault_cleared``, a refill that ends an empty reservoir:
  ``MDC_EVT_PUMP_DELIV_START`` (basal source);
- ``bolus_started``: ``MDC_EVT_PUMP_DELIV_START`` of the bolus (clinician / PCA / loading source);
- ``bolus_completed``: ``MDC_EVT_PUMP_DELIV_COMP`` (transitioning back to basal);
- ``bolus_cancelled``, ``suspended``, ``fault``, ``reservoir_empty``, ``eos``:
  ``MDC_EVT_PUMP_DELIV_STOP`` (not delivering, with the reason);
- ``program_changed``, ``concentration_changed``: a rate change, as IHE describes it: a
  ``DELIV_STOP`` (transitioning, old rates) then a ``DELIV_START`` (new rates);
- alarms (``low_reservoir``, ``reservoir_empty``, ``eri``, ``eos``, ``fault``) and
  ``refill_discrepancy``: an event message whose condition is the alarm, code 0 (no IEEE
  11073-10101 code for these conditions of an implanted pump) with itb's kind in CWE-2;
  alarms already sounding when the pump was read: one such message each, right after the start
  message, sent at the start (MSH-7) with the time the alarm began in OBR-7 and OBX-14.

Each message carries the event's own time (MSH-7, OBR-7, OBX-14) on the pump clock with the given
UTC offset, the rate (mL/h), the dose rate (µg/day), the concentration (mg/mL), the drug name and
the infusing status; stops and completions carry the volume delivered (mL, at the catheter tip,
since the start of the history). Codes are those of the IHE PCD-10 sample
(:data:`itb.interop.codes.MDC`); terms without a published code are sent as ``0``.

Messages are built as ER7 text here (fast); :func:`validate` parses one strictly with ``hl7apy``
(``pip install 'itb-pump[hl7]'``) and checks the fields the profile requires.

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Any

from .._extras import require
from .._limits import MS_PER_DAY, MS_PER_HOUR
from .._time import from_ms
from ..errors import ValidationError
from . import codes
from .history import (
    TherapyHistory,
    alarm_detail,
    concentration_data,
    history_of,
    refill_data,
    step_dose,
    utc_offset_minutes,
)

__all__ = ["messages", "dumps", "validate", "PROFILE_OID", "REQUIRED_FIELDS", "Message"]

PROFILE_OID = "1.3.6.1.4.1.19376.1.6.4.10"
_PROFILE = f"IHE_PCD_010^IHE PCD^{PROFILE_OID}^ISO"
_DRUG = f"{codes.BACLOFEN_SNOMED[0]}^Baclofen^SCT"
_ALARM_KINDS = ("low_reservoir", "reservoir_empty", "eri", "eos", "fault", "refill_discrepancy")
_STOP_REASON = {
    "suspended": "pump-stopped-by-clinician",
    "bolus_cancelled": "pump-stopped-by-clinician",
    "fault": "pump-stopped-alarming",
    "reservoir_empty": "pump-stopped-alarming",
    "eos": "pump-stopped-alarming",
}
_BOLUS_SOURCE = {
    "timed": "pump-source-info-clinician",
    "bridge": "pump-source-info-clinician",
    "priming": "pump-source-info-loading",
    "patient": "pump-source-info-pca",
}
#: Fields each segment must carry (HL7 v2.6 required fields and the PCD-10 profile's additions),
#: checked by :func:`validate`: ``segment: [field numbers]``.
REQUIRED_FIELDS = {
    "MSH": [1, 2, 3, 7, 9, 10, 11, 12, 21],
    "PID": [3, 5],
    "OBR": [1, 3, 4, 7],
    "OBX": [1, 3, 4, 11],
}


@dataclass(frozen=True)
class Message:
    """One PCD-10 message: ``text`` (ER7, segments separated by CR), the event's time (ms), its
    itb event kind (``"start"`` for the start of the history) and the PCD-10 event name."""

    text: str
    time_ms: int
    kind: str
    event: str
    control_id: str


def messages(
    source: Any,
    *,
    utc_offset: timedelta = timedelta(0),
    patient_id: str = "itb-patient",
    device_id: str = "0000000000000001",
    validate_each: bool = False,
) -> list[Message]:
    """The PCD-10 messages of ``source`` (a :class:`~itb.scenario.ScenarioResult`, an
    :class:`itb.interop.Recorder` or a :class:`~itb.interop.TherapyHistory`), in event order.

    ``utc_offset``: the pump clock's offset from UTC (``timedelta``, whole minutes, ±14 h);
    ``patient_id``: PID-3; ``device_id``: the pump's EUI-64 (16 hex digits, MSH-3 and OBX-18);
    ``validate_each``: parse every message with ``hl7apy`` (:func:`validate`) before returning.
    Errors: ``ValidationError`` naming the argument."""
    offset = _offset(utc_offset)
    if not isinstance(patient_id, str) or not patient_id:
        raise ValidationError("patient_id: expected a non-empty string", "patient_id")
    if (
        not isinstance(device_id, str)
        or len(device_id) != 16
        or any(c not in "0123456789ABCDEFabcdef" for c in device_id)
    ):
        raise ValidationError(
            f"device_id: {device_id!r} must be an EUI-64 of 16 hex digits", "device_id"
        )
    history = history_of(source)
    out = list(_Writer(history, offset, patient_id, device_id.upper()).messages())
    if validate_each:
        for m in out:
            validate(m.text)
    return out


def dumps(source: Any, **options: Any) -> str:
    """The messages of :func:`messages` as one text: each message's segments end with CR and
    messages are separated by a blank line (``\\r\\n``), the usual batch-file layout."""
    return "".join(m.text + "\r\n" for m in messages(source, **options))


def _offset(value: Any) -> str:
    minutes = utc_offset_minutes(value, "utc_offset")
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}{m:02d}"


def escape(text: str) -> str:
    """HL7 v2 escaping of the delimiters ``| ^ ~ \\ &`` (and CR / LF as spaces)."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    out = out.replace("~", "\\R\\").replace("&", "\\T\\")
    return out.replace("\r", " ").replace("\n", " ")


def number(value: Fraction | int, places: int = 6) -> str:
    """A decimal with at most ``places`` decimals, rounded half-even, without trailing zeros."""
    q = Fraction(value) * 10**places
    n = round(q)  # Python rounds a Fraction half to even
    sign = "-" if n < 0 else ""
    whole, frac = divmod(abs(n), 10**places)
    text = f"{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")
    return sign + text if text != "0" else "0"


class _Writer:
    def __init__(self, h: TherapyHistory, offset: str, patient_id: str, device_id: str) -> None:
        self.h = h
        self.offset = offset
        self.patient = escape(patient_id)
        self.device = device_id
        self.count = 0
        self.concentration = h.initial_concentration_ug_per_ml
        self.program = h.programs[0][1]
        self.program_i = 0
        self.boluses = {a.bolus_id: a for a in h.administrations if a.bolus_id is not None}

    def ts(self, ms: int) -> str:
        t = from_ms(ms)
        return t.strftime("%Y%m%d%H%M%S") + f".{t.microsecond // 1000:03d}" + self.offset

    def program_at(self, t: int) -> tuple[Any, ...]:
        return self.h.program_at(t)

    # -- values --
    def basal_rates(self, t: int, program: tuple[Any, ...] | None = None) -> tuple[str, str]:
        """(mL/h, µg/day) of the basal step in force just after ``t``."""
        ng = step_dose(program or self.program_at(t), t)
        c = self.concentration
        ml_per_h = Fraction(ng, 1000 * c * 24) if c else Fraction(0)
        return number(ml_per_h), number(Fraction(ng, 1000), 3)

    def messages(self) -> Iterator[Message]:
        h = self.h
        stopped = [e.kind for e in h.active_at_start if e.kind in _STOP_REASON]
        if stopped:  # read stalled, empty or at EOS: not delivering from the start
            reason = _STOP_REASON[stopped[0]]
            yield self.delivery(h.start_ms, "start", "deliv_stop", reason=reason)
        else:
            yield self.delivery(h.start_ms, "start", "deliv_start")
        for e in h.active_at_start:  # sounding when the pump was read: reported at the start
            yield self.alarm(e, sent_ms=h.start_ms)
        empty = "reservoir_empty" in stopped
        for e in h.events:
            k = e.kind
            if k == "concentration_changed":
                yield self.delivery(e.time_ms, k, "deliv_stop", transitioning=True)
                self.concentration = int(concentration_data(e)["to_ug_per_ml"])
                yield self.delivery(e.time_ms, k, "deliv_start")
            elif k == "program_changed" and e.time_ms > h.start_ms:
                old = self.program_at(e.time_ms - 1)
                yield self.delivery(e.time_ms, k, "deliv_stop", transitioning=True, program=old)
                yield self.delivery(e.time_ms, k, "deliv_start")
            elif k in ("resumed", "fault_cleared"):
                yield self.delivery(e.time_ms, k, "deliv_start")
            elif (
                k == "refilled" and empty and refill_data(e).get("added_nl", 0) >= h.model.stroke_nl
            ):
                empty = False
                yield self.delivery(e.time_ms, k, "deliv_start")
            elif k in ("suspended", "fault", "reservoir_empty", "eos"):
                empty = empty or k == "reservoir_empty"
                yield self.delivery(e.time_ms, k, "deliv_stop", reason=_STOP_REASON[k])
            elif k == "bolus_started":
                yield self.bolus(e, "deliv_start")
            elif k == "bolus_completed":
                yield self.bolus(e, "deliv_comp")
            elif k == "bolus_cancelled":
                yield self.bolus(e, "deliv_stop")
            if k in _ALARM_KINDS:
                yield self.alarm(e)

    # -- segments --
    def header(
        self, t: int, kind: str, event: str, observed: int | None = None
    ) -> tuple[list[str], str]:
        """MSH, PID, OBR of a message sent at ``t`` (MSH-7) about an event at ``observed``
        (OBR-7; default ``t``)."""
        self.count += 1
        control = f"ITB{t}-{self.count}"
        stamp = self.ts(t)
        segs = [
            f"MSH|^~\\&|ITB_PUMP^{self.device}^EUI-64|ITB|||{stamp}||ORU^R42^ORU_R01|{control}|P|2.6"
            f"|||AL|NE||UNICODE UTF-8|en^English^ISO639||{_PROFILE}",
            f"PID|||{self.patient}^^^ITB^PI||^^^^^^U",
            f"OBR|1||{control}^ITB_PUMP^{self.device}^EUI-64|{_DRUG}|||"
            f"{self.ts(t if observed is None else observed)}",
        ]
        return segs, control

    def obx(
        self,
        segs: list[str],
        vtype: str,
        term: tuple[int, str],
        sub: str,
        value: str = "",
        units: str = "",
        status: str = "R",
        at: str = "",
        equipment: str = "",
    ) -> None:
        n = sum(1 for s in segs if s.startswith("OBX|")) + 1
        fields = [
            "OBX",
            str(n),
            vtype,
            f"{term[0]}^{term[1]}^MDC",
            sub,
            value,
            units,
            "",
            "",
            "",
            "",
            status,
            "",
            "",
            at,
            "",
            "",
            "",
            equipment,
        ]
        segs.append("|".join(fields).rstrip("|"))

    def local(self, segs: list[str], name: str, sub: str, equipment: str = "") -> None:
        n = sum(1 for s in segs if s.startswith("OBX|")) + 1
        fields = [
            "OBX",
            str(n),
            "",
            f"0^{name}^{codes.LOCAL_SYSTEM}",
            sub,
            "",
            "",
            "",
            "",
            "",
            "",
            "X",
            "",
            "",
            "",
            "",
            "",
            "",
            equipment,
        ]
        segs.append("|".join(fields).rstrip("|"))

    def device_tree(
        self, segs: list[str], t: int, condition: str, condition_system: str = "MDC"
    ) -> None:
        M = codes.MDC
        self.local(
            segs,
            codes.LOCAL["pump_mds"],
            "1.0.0.0",
            equipment=f"{escape(self.h.model.name)}^^{self.device}^EUI-64",
        )
        cond_code, cond_name = M[condition] if condition_system == "MDC" else (0, condition)
        n = sum(1 for s in segs if s.startswith("OBX|")) + 1
        segs.append(
            f"OBX|{n}|CWE|{M['evt_cond'][0]}^{M['evt_cond'][1]}^MDC|1.0.0.1|"
            f"{cond_code}^{cond_name}^{condition_system}||||||R|||{self.ts(t)}"
        )
        self.obx(segs, "ST", M["evt_source"], "1.0.0.2", "1.1.2.0")
        self.local(segs, codes.LOCAL["pump_vmd"], "1.1.0.0")

    def delivery(
        self,
        t: int,
        kind: str,
        event: str,
        *,
        transitioning: bool = False,
        reason: str | None = None,
        program: tuple[Any, ...] | None = None,
    ) -> Message:
        M, U = codes.MDC, codes.MDC_UNITS
        segs, control = self.header(t, kind, event)
        self.device_tree(segs, t, event)
        ml_h, ug_d = self.basal_rates(t, program)
        delivering = reason is None
        flowing = delivering and ml_h != "0"
        self.obx(segs, "", M["delivery_info"], "1.1.1.0", status="X")
        self.obx(
            segs,
            "CWE",
            M["infusing_status"],
            "1.1.1.1",
            "^pump-status-infusing" if flowing else "^pump-status-not-infusing",
        )
        self.obx(
            segs, "NM", M["flow_current"], "1.1.1.2", ml_h if flowing else "0", _unit(U["mL/h"])
        )
        self.obx(segs, "CWE", M["active_sources"], "1.1.1.3", "^pump-source-info-primary")
        self.source(
            segs,
            "1.1.2",
            "basal",
            ml_h,
            ug_d,
            transitioning=transitioning,
            reason=reason,
            program=program or self.program_at(t),
            t=t,
            delivered=event != "deliv_start",
        )
        return Message("\r".join(segs) + "\r", t, kind, M[event][1], control)

    def source(
        self,
        segs: list[str],
        base: str,
        label: str,
        ml_h: str,
        ug_d: str,
        *,
        transitioning: bool,
        reason: str | None,
        program: tuple[Any, ...],
        t: int,
        delivered: bool,
        tbi_nl: int | None = None,
        delivered_nl: int | None = None,
    ) -> None:
        M, U = codes.MDC, codes.MDC_UNITS
        status = (
            "transitioning" if transitioning else ("not-delivering" if reason else "delivering")
        )
        mode = "continuous" if program[0] == "continuous" or label != "basal" else "multi-step"
        self.obx(segs, "", M["source_primary"], f"{base}.0", status="X")
        self.obx(segs, "CWE", M["delivery_status"], f"{base}.1", f"^pump-delivery-status-{status}")
        self.obx(
            segs, "CWE", M["delivery_mode"], f"{base}.2", f"^pump-program-delivery-mode-{mode}"
        )
        if reason is not None:
            self.obx(segs, "CWE", M["not_delivering_reason"], f"{base}.3", f"^{reason}")
        self.obx(segs, "ST", M["channel_label"], f"{base}.4", label)
        self.obx(segs, "NM", M["rate"], f"{base}.5", ml_h, _unit(U["mL/h"]))
        self.obx(segs, "NM", M["dose_rate"], f"{base}.6", ug_d, "ug/d^ug/d^UCUM")
        if tbi_nl is not None:
            self.obx(
                segs,
                "NM",
                M["vol_tbi"],
                f"{base}.7",
                number(Fraction(tbi_nl, 10**6)),
                _unit(U["mL"]),
            )
        if delivered:
            nl = delivered_nl if delivered_nl is not None else self.h.tip_at(t)[1]
            self.obx(
                segs,
                "NM",
                M["vol_delivered_total"],
                f"{base}.8",
                number(Fraction(nl, 10**6)),
                _unit(U["mL"]),
            )
        self.obx(segs, "ST", M["drug_name"], f"{base}.9", "baclofen")
        self.obx(
            segs,
            "NM",
            M["concentration"],
            f"{base}.10",
            number(Fraction(self.concentration, 1000)),
            _unit(U["mg/mL"]),
        )

    def bolus(self, e: Any, event: str) -> Message:
        M, U = codes.MDC, codes.MDC_UNITS
        d = e.data
        t = e.time_ms
        segs, control = self.header(t, e.kind, event)
        self.device_tree(segs, t, event)
        record = self.boluses.get(int(d["bolus_id"]))
        span = record.bolus_duration_ms if record and record.bolus_duration_ms else 1
        volume = int(d.get("volume_nl", record.bolus_volume_nl if record else 0) or 0)
        dose = int(d.get("dose_pg", record.bolus_dose_pg if record else 0) or 0)
        kind = str(d.get("bolus_kind", record.kind if record else "timed"))
        ml_h = number(Fraction(volume * MS_PER_HOUR, span * 10**6))
        ug_d = number(Fraction(dose * MS_PER_DAY, span * 10**6), 3)
        running = event == "deliv_start"
        basal_ml_h, _ = self.basal_rates(t)
        current = Fraction(volume * MS_PER_HOUR, span * 10**6) if running else Fraction(0)
        self.obx(segs, "", M["delivery_info"], "1.1.1.0", status="X")
        self.obx(segs, "CWE", M["infusing_status"], "1.1.1.1", "^pump-status-infusing")
        self.obx(
            segs,
            "NM",
            M["flow_current"],
            "1.1.1.2",
            number(current + Fraction(basal_ml_h)),
            _unit(U["mL/h"]),
        )
        self.obx(
            segs,
            "CWE",
            M["active_sources"],
            "1.1.1.3",
            f"^{_BOLUS_SOURCE.get(kind, 'pump-source-info-clinician')}",
        )
        self.source(
            segs,
            "1.1.2",
            f"{kind} bolus",
            ml_h,
            ug_d,
            transitioning=event == "deliv_comp",
            reason="pump-stopped-by-clinician" if event == "deliv_stop" else None,
            program=("continuous", 0),
            t=t,
            delivered=not running,
            tbi_nl=volume,
            delivered_nl=(self.h.tip_at(t)[1] if not running else None),
        )
        return Message("\r".join(segs) + "\r", t, e.kind, M[event][1], control)

    def alarm(self, e: Any, sent_ms: int | None = None) -> Message:
        """The alarm message of ``e``: sent at ``sent_ms`` (MSH-7; default the event's time),
        the alarm's own time (when it began) in OBR-7 and the condition's OBX-14."""
        t = e.time_ms
        sent = t if sent_ms is None else sent_ms
        segs, control = self.header(sent, e.kind, "alarm", observed=t)
        self.device_tree(segs, t, e.kind, condition_system=codes.LOCAL_SYSTEM)
        detail = alarm_detail(dict(e.data))
        if sent != t:
            detail = f"sounding when the pump was read, since {self.ts(t)}" + (
                f"; {detail}" if detail else ""
            )
        n = sum(1 for s in segs if s.startswith("OBX|")) + 1
        segs.append(
            f"OBX|{n}|ST|0^alarm_detail^{codes.LOCAL_SYSTEM}|1.0.0.3|"
            f"{escape(detail or e.kind)}||||||R|||{self.ts(t)}"
        )
        return Message("\r".join(segs) + "\r", sent, e.kind, e.kind, control)


def _unit(u: tuple[int, str, str]) -> str:
    return f"{u[0]}^{u[1]}^MDC^{u[2]}^{u[2]}^UCUM"


def validate(text: str) -> Any:
    """Parse one ER7 message strictly with ``hl7apy`` (HL7 v2.6 ``ORU_R01`` structure, groups
    found, every segment and field checked) and check the PCD-10 profile's parts: MSH-9
    ``ORU^R42^ORU_R01``, MSH-12 ``2.6``, MSH-21 the profile OID, the fields of
    :data:`REQUIRED_FIELDS`, and OBX-5 present when OBX-2 gives a type. Returns the parsed
    message; raises ``ValidationError`` (``field`` names the segment and field, e.g. ``OBX-4``)."""
    parser = require("hl7apy.parser", "hl7", "HL7 v2 validation")
    consts = require("hl7apy.consts", "hl7", "HL7 v2 validation")
    exceptions = require("hl7apy.exceptions", "hl7", "HL7 v2 validation")
    try:
        msg = parser.parse_message(
            text, validation_level=consts.VALIDATION_LEVEL.STRICT, find_groups=True
        )
        msg.validate()
    except exceptions.HL7apyException as exc:
        raise ValidationError(f"message: not valid HL7 v2.6 ORU_R01: {exc}", "message") from None
    segments = [s for s in text.replace("\n", "\r").split("\r") if s]
    for seg in segments:
        name = seg[:3]
        fields = seg.split("|")
        if name == "MSH":
            fields = ["MSH", "|"] + fields[1:]  # MSH-1 is the separator itself
        for number_ in REQUIRED_FIELDS.get(name, []):
            if len(fields) <= number_ or not fields[number_]:
                raise ValidationError(
                    f"{name}-{number_}: required by PCD-10, missing", f"{name}-{number_}"
                )
        if name == "MSH":
            if fields[9] != "ORU^R42^ORU_R01":
                raise ValidationError(f"MSH-9: {fields[9]!r} is not ORU^R42^ORU_R01", "MSH-9")
            if fields[12] != "2.6":
                raise ValidationError(f"MSH-12: {fields[12]!r} is not 2.6", "MSH-12")
            if fields[21].split("^")[2:3] != [PROFILE_OID]:
                raise ValidationError(f"MSH-21: profile is not {PROFILE_OID}", "MSH-21")
        if name == "OBX" and len(fields) > 2 and fields[2] and (len(fields) <= 5 or not fields[5]):
            raise ValidationError("OBX-5: a typed OBX (OBX-2) needs a value", "OBX-5")
    if not any(s.startswith("OBX|") and "^MDC_ATTR_EVT_COND^" in s for s in segments):
        raise ValidationError("OBX: no event condition (MDC_ATTR_EVT_COND)", "OBX-3")
    return msg
