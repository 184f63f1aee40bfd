"""HL7 FHIR export (R5 or R4B) of a therapy history: a ``Bundle`` of type ``collection``.

What it holds (docs: guide/interop.md has a worked example; docs: decisions/interop.md the rules):

- ``Patient`` (a placeholder with the identifier you give) and the pump ``Device`` (the MDS of
  the Point-of-Care Device IG) with a child ``Device`` for its delivery channel (VMD/channel,
  ``parent``) and below that the catheter;
- ``DeviceUsage`` (R5) / ``DeviceUseStatement`` (R4B): the pump implanted in the patient;
- one ``Medication`` per baclofen concentration used (SNOMED CT / ATC codes, strength in µg/mL);
- one ``MedicationRequest`` per program in force (intrathecal route, µg/day; flex steps as
  ``dosageInstruction`` entries with ``timing.repeat``: ``timeOfDay``, ``dayOfWeek``, ``duration``);
- one ``MedicationAdministration`` per basal segment and per bolus: its period, the dose that left
  the catheter tip (µg, exact to the pg) and its rate, the pump as device;
- ``Observation``: the reservoir volume and the battery at the end, and each refill's aspirated vs
  expected volume;
- ``DetectedIssue``: alarms (low reservoir, empty, ERI, EOS, faults) — those already sounding
  when the pump was read too, identified when each began —, refill discrepancies and
  titration-guard findings (denied or flagged changes) you pass in.

Times carry a UTC offset (FHIR requires one on a time of day): the pump clock is naive local
time, so ``utc_offset`` says how it relates to UTC (default 0: read as UTC).

Needs ``fhir.resources`` (``pip install 'itb-pump[fhir]'``), which validates every resource. R4B models
come from ``fhir.resources.R4B``; the R4→R5 renames handled here: ``DeviceUseStatement`` →
``DeviceUsage``, ``medication[x]`` → ``medication`` (a CodeableReference),
``effective[x]`` → ``occurence[x]``, ``Device.deviceName`` → ``Device.name``.

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from .._extras import require
from .._limits import MS_PER_DAY
from .._time import WEEKDAYS, from_ms, to_ms
from .._units import ng_to_ug, nl_to_ul, pc_to_mah
from ..errors import ValidationError
from . import codes
from .history import (
    Administration,
    TherapyHistory,
    alarm_detail,
    concentration_data,
    history_of,
    iter_alarms,
    refill_data,
    utc_offset_minutes,
)

__all__ = ["bundle", "dumps", "titration_findings", "VERSIONS"]

VERSIONS = ("R4B", "R5")
_NS = uuid.UUID("5b8c2a3e-1f0d-5c7e-9a4b-6d2e8f1a7c30")  # itb's namespace for entry UUIDs
#: FHIR's days-of-week codes are the pump clock's weekday names
_WEEKDAYS = WEEKDAYS
_SEVERITY = {"critical": "high", "non_critical": "moderate"}
_ALARM_TEXT = {
    "low_reservoir": "Low reservoir alarm",
    "reservoir_empty": "Reservoir empty: delivery stopped",
    "eri": "Elective replacement indicator (battery)",
    "eos": "End of service: delivery stopped for good",
    "fault": "Pump fault: delivery stopped",
    "refill_discrepancy": "Refill discrepancy: aspirated volume differs from expected",
}


def bundle(
    source: Any,
    *,
    version: str = "R5",
    utc_offset: timedelta = timedelta(0),
    patient_id: str = "itb-patient",
    titration: Iterable[Any] = (),
    validate: bool = True,
) -> dict[str, Any]:
    """The FHIR ``Bundle`` of ``source`` (a :class:`~itb.scenario.ScenarioResult`, an
    :class:`itb.interop.Recorder` or a :class:`~itb.interop.TherapyHistory`) as a JSON-ready dict.

    ``version``: ``"R5"`` or ``"R4B"``; ``utc_offset``: the pump clock's offset from UTC (a
    ``timedelta``, whole minutes, within ±14 h); ``patient_id``: the Patient's identifier value;
    ``titration``: :class:`itb.clinical.TitrationDecision` objects — denied or flagged ones become
    ``DetectedIssue`` entries. With ``validate`` (default) the bundle is parsed by
    ``fhir.resources`` (the version's models) before it is returned.

    Doses: each ``MedicationAdministration.dosage.dose`` is the µg that left the catheter tip with
    6 decimals (exact pg); they add up to the pump's delivered µg exactly (docs:
    decisions/interop.md#dose-apportioning). Errors: ``ValidationError`` (unknown version, bad
    offset, a source of the wrong type), ``MissingExtraError`` without ``fhir.resources``."""
    if version not in VERSIONS:
        raise ValidationError(
            f"version: {version!r} is not supported; allowed: 'R4B', 'R5'", "version"
        )
    offset = _offset(utc_offset)
    if not isinstance(patient_id, str) or not patient_id:
        raise ValidationError("patient_id: expected a non-empty string", "patient_id")
    history = history_of(source)
    decisions = _decisions(titration)
    data = _Builder(history, version, offset, patient_id, decisions).build()
    if validate:
        _validate(data, version)
    return data


def dumps(source: Any, *, indent: int | None = None, **options: Any) -> str:
    """:func:`bundle` as JSON text (``options`` as for :func:`bundle`)."""
    return json.dumps(bundle(source, **options), indent=indent, ensure_ascii=False)


def titration_findings(source: Any, *, origin: str, phase: str, max_ug_per_day: float) -> list[Any]:
    """The titration guard's view of every program change in ``source``'s history: each change
    is checked by an :class:`itb.clinical.TitrationGuard` (``origin``, ``phase``,
    ``max_ug_per_day``) seeded with the changes before it (the initial program at the start
    counts as one, from 0). Returns the :class:`~itb.clinical.TitrationDecision` objects, in time
    order; :func:`bundle` (``titration=``) keeps the denied or flagged ones as ``DetectedIssue``.

    A flex program's daily dose is its time-weighted mean over the period, to the nearest ng/day
    (half up). Errors: ``ValidationError`` for a bad ``origin``/``phase``/``max_ug_per_day``."""
    from ..clinical import DoseChange, TitrationGuard

    history = history_of(source)
    TitrationGuard(origin, phase, max_ug_per_day=max_ug_per_day)  # argument errors first
    changes: list[DoseChange] = []
    out: list[Any] = []
    for i, (at, program) in enumerate(history.programs):
        new = ng_to_ug(_daily_ng(program))
        if i == 0:
            changes.append(DoseChange(from_ms(at), 0, new))
            continue
        guard = TitrationGuard(origin, phase, max_ug_per_day=max_ug_per_day, history=changes)
        cur = changes[-1].to_ug_per_day
        out.append(guard.check(cur, new, from_ms(at)))
        changes.append(DoseChange(from_ms(at), cur, new))
    return out


def _daily_ng(program: tuple[Any, ...]) -> int:
    if program[0] == "continuous":
        return int(program[1])
    _, period, steps = program
    period_ms = MS_PER_DAY if period == "day" else 7 * MS_PER_DAY
    total = 0
    for i, (offset, ng) in enumerate(steps):
        nxt = steps[i + 1][0] if i + 1 < len(steps) else period_ms
        total += int(ng) * int(nxt - offset)
    return (2 * total + period_ms) // (2 * period_ms)


def _validate(data: dict[str, Any], version: str) -> Any:
    module = "fhir.resources.R4B.bundle" if version == "R4B" else "fhir.resources.bundle"
    models = require(module, "fhir", "the FHIR export")
    return models.Bundle.model_validate(data)


def _offset(value: Any) -> str:
    minutes = utc_offset_minutes(value, "utc_offset")
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _decisions(titration: Iterable[Any]) -> list[Any]:
    from ..clinical import TitrationDecision

    out = []
    for i, d in enumerate(titration):
        if not isinstance(d, TitrationDecision):
            raise ValidationError(
                f"titration[{i}]: expected itb.clinical.TitrationDecision, got {type(d).__name__}",
                f"titration[{i}]",
            )
        if not d.allowed or d.flags:
            out.append(d)
    return out


def decimal(value: int, places: int) -> int | float:
    """``value / 10**places`` as a JSON number whose decimal digits are exact (a float's
    shortest form is that decimal for up to 15 significant digits)."""
    if value % 10**places == 0:
        return int(value // 10**places)
    out = float(value / 10**places)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**places)
    text = f"{sign}{whole}.{frac:0{places}d}".rstrip("0")
    if repr(out) != text:  # more than 15 significant digits: keep the text's value
        raise ValueError(f"{text} has no exact JSON float form")  # pragma: no cover
    return out


def _qty(value: int | float, unit: str, code: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": codes.UCUM, "code": code or unit}


def _route() -> dict[str, Any]:
    code, display = codes.INTRATHECAL_ROUTE_SNOMED
    return {"coding": [{"system": codes.SNOMED, "code": code, "display": display}]}


class _Builder:
    def __init__(
        self,
        history: TherapyHistory,
        version: str,
        offset: str,
        patient_id: str,
        decisions: list[Any],
    ) -> None:
        self.h = history
        self.r5 = version == "R5"
        self.offset = offset
        self.patient_id = patient_id
        self.decisions = decisions
        self.entries: list[dict[str, Any]] = []

    # -- helpers --
    def ts(self, ms: int) -> str:
        return from_ms(ms).isoformat(timespec="milliseconds") + self.offset

    def url(self, key: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NS, key)}"

    def ref(self, key: str) -> dict[str, str]:
        return {"reference": self.url(key)}

    def add(self, key: str, resource: dict[str, Any]) -> None:
        self.entries.append({"fullUrl": self.url(key), "resource": resource})

    # -- resources --
    def build(self) -> dict[str, Any]:
        h = self.h
        self.patient()
        self.devices()
        self.device_use()
        self.medications()
        self.requests()
        for i, record in enumerate(h.administrations):
            self.administration(i, record)
        self.observations()
        self.issues()
        return {
            "resourceType": "Bundle",
            "identifier": {"system": "urn:ietf:rfc:3986", "value": self.url("bundle")},
            "type": "collection",
            "timestamp": self.ts(h.end_ms),
            "entry": self.entries,
        }

    def patient(self) -> None:
        self.add(
            "patient",
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:itb:patient", "value": self.patient_id}],
            },
        )

    def devices(self) -> None:
        h = self.h
        m = h.model
        props: list[tuple[str, int | float, str]] = [
            ("reservoir capacity", m.reservoir_ml, "mL"),
            ("reservoir volume (firmware count)", decimal(h.reservoir_nl, 6), "mL"),
            ("stroke volume", nl_to_ul(m.stroke_nl), "uL"),
            ("low-reservoir alarm threshold", m.low_reservoir_ml, "mL"),
        ]
        if h.battery_remaining_pc is not None:
            props.append(("battery remaining", round(pc_to_mah(h.battery_remaining_pc), 6), "mA.h"))
        status_text = "end of service" if h.eos else ("ERI" if h.eri else "in service")
        pump: dict[str, Any] = {
            "resourceType": "Device",
            "identifier": [{"system": "urn:itb:device", "value": "pump"}],
            "status": "active",
            "manufacturer": "itb simulation (nominal model, editable)",
            "modelNumber": m.name,
            "note": [{"text": f"Simulated implanted intrathecal pump; battery {status_text}."}],
        }
        pump_type = {"text": "Implantable programmable intrathecal infusion pump"}
        catheter_type = {"text": "Intrathecal catheter"}
        if self.r5:
            pump["name"] = [{"value": m.name, "type": "model-name"}]
            pump["type"] = [pump_type]
            pump["property"] = [
                {"type": {"text": t}, "valueQuantity": _qty(v, u)} for t, v, u in props
            ]
        else:
            pump["deviceName"] = [{"name": m.name, "type": "model-name"}]
            pump["type"] = pump_type
            pump["property"] = [
                {"type": {"text": t}, "valueQuantity": [_qty(v, u)]} for t, v, u in props
            ]
        self.add("pump", pump)
        # Point-of-Care Device IG hierarchy: the pump is the MDS, its one delivery channel the
        # VMD/channel (a child Device), the catheter a part below the channel. No IEEE
        # 11073-10101 MDS/VMD code is published for an implanted intrathecal pump (the IHE
        # samples code large-volume and syringe pumps): the types are text only
        # (docs: decisions/interop.md).
        channel: dict[str, Any] = {
            "resourceType": "Device",
            "identifier": [{"system": "urn:itb:device", "value": "channel"}],
            "status": "active",
            "parent": self.ref("pump"),
        }
        channel_type = {"text": "Infusion pump delivery channel (VMD/channel)"}
        channel["type"] = [channel_type] if self.r5 else channel_type
        self.add("channel", channel)
        catheter: dict[str, Any] = {
            "resourceType": "Device",
            "identifier": [{"system": "urn:itb:device", "value": "catheter"}],
            "status": "active",
            "parent": self.ref("channel"),
        }
        volume = _qty(decimal(h.catheter_nl, 3), "uL")
        if self.r5:
            catheter["type"] = [catheter_type]
            catheter["property"] = [{"type": {"text": "dead volume"}, "valueQuantity": volume}]
        else:
            catheter["type"] = catheter_type
            catheter["property"] = [{"type": {"text": "dead volume"}, "valueQuantity": [volume]}]
        self.add("catheter", catheter)

    def device_use(self) -> None:
        h = self.h
        period = {"start": self.ts(h.start_ms), "end": self.ts(h.end_ms)}
        if self.r5:
            self.add(
                "device-use",
                {
                    "resourceType": "DeviceUsage",
                    "status": "completed" if h.eos else "active",
                    "patient": self.ref("patient"),
                    "device": {"reference": self.ref("pump")},
                    "timingPeriod": period,
                },
            )
        else:
            self.add(
                "device-use",
                {
                    "resourceType": "DeviceUseStatement",
                    "status": "completed" if h.eos else "active",
                    "subject": self.ref("patient"),
                    "device": self.ref("pump"),
                    "timingPeriod": period,
                },
            )

    def concentrations(self) -> list[int]:
        seen = {self.h.initial_concentration_ug_per_ml}
        seen.update(a.concentration_ug_per_ml for a in self.h.administrations)
        seen.update(
            int(concentration_data(e)["to_ug_per_ml"])
            for e in self.h.events
            if e.kind == "concentration_changed"
        )
        return sorted(c for c in seen if c > 0)

    def medications(self) -> None:
        for c in self.concentrations():
            concept = {
                "coding": [
                    {
                        "system": codes.SNOMED,
                        "code": codes.BACLOFEN_SNOMED[0],
                        "display": codes.BACLOFEN_SNOMED[1],
                    },
                    {
                        "system": codes.RXNORM,
                        "code": codes.BACLOFEN_RXNORM[0],
                        "display": codes.BACLOFEN_RXNORM[1],
                    },
                    {
                        "system": codes.ATC,
                        "code": codes.BACLOFEN_ATC[0],
                        "display": codes.BACLOFEN_ATC[1],
                    },
                ],
                "text": "baclofen",
            }
            strength = {"numerator": _qty(c, "ug"), "denominator": _qty(1, "mL")}
            ingredient: dict[str, Any] = (
                {"item": {"concept": concept}, "isActive": True, "strengthRatio": strength}
                if self.r5
                else {"itemCodeableConcept": concept, "isActive": True, "strength": strength}
            )
            self.add(
                f"medication-{c}",
                {
                    "resourceType": "Medication",
                    "code": {**concept, "text": f"baclofen intrathecal {c} ug/mL"},
                    "ingredient": [ingredient],
                },
            )

    def medication(self, resource: dict[str, Any], concentration: int) -> None:
        key = f"medication-{concentration}" if concentration > 0 else None
        if key is None:  # saline at the tip (unprimed path): the drug still named, no strength
            key = f"medication-{self.concentrations()[0]}"
        if self.r5:
            resource["medication"] = {"reference": self.ref(key)}
        else:
            resource["medicationReference"] = self.ref(key)

    def requests(self) -> None:
        h = self.h
        for i, (at, program) in enumerate(h.programs):
            end = h.programs[i + 1][0] if i + 1 < len(h.programs) else None
            resource: dict[str, Any] = {
                "resourceType": "MedicationRequest",
                "identifier": [{"system": "urn:itb:program", "value": str(i + 1)}],
                "status": "active" if end is None and not h.eos else "completed",
                "intent": "order",
                "subject": self.ref("patient"),
                "authoredOn": self.ts(at),
                "dosageInstruction": self.dosage(program),
            }
            conc = _concentration_at(h, at)
            self.medication(resource, conc)
            if end is not None:
                resource["dispenseRequest"] = {
                    "validityPeriod": {"start": self.ts(at), "end": self.ts(end)}
                }
            self.add(f"request-{i}", resource)

    def dosage(self, program: tuple[Any, ...]) -> list[dict[str, Any]]:
        if program[0] == "continuous":
            ug = decimal(int(program[1]), 3)
            return [
                {
                    "sequence": 1,
                    "text": f"{ug} ug/day continuous, intrathecal",
                    "route": _route(),
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"rateQuantity": _qty(ug, "ug/d")}],
                }
            ]
        _, period, steps = program
        period_ms = MS_PER_DAY if period == "day" else 7 * MS_PER_DAY
        out = []
        for i, (offset, ng) in enumerate(steps):
            nxt = steps[i + 1][0] if i + 1 < len(steps) else period_ms
            day, into = divmod(int(offset), MS_PER_DAY)
            secs = into // 1000
            clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            repeat: dict[str, Any] = {
                "timeOfDay": [clock],
                "duration": decimal(int(nxt - offset), 3),
                "durationUnit": "s",
                "frequency": 1,
                "period": 1,
                "periodUnit": "d" if period == "day" else "wk",
            }
            when = clock
            if period == "week":
                repeat["dayOfWeek"] = [_WEEKDAYS[day]]
                when = f"{_WEEKDAYS[day]} {clock}"
            ug = decimal(int(ng), 3)
            out.append(
                {
                    "sequence": i + 1,
                    "text": f"step {i + 1}: {ug} ug/day from {when} (flex {period})",
                    "route": _route(),
                    "timing": {"repeat": repeat},
                    "doseAndRate": [{"rateQuantity": _qty(ug, "ug/d")}],
                }
            )
        return out

    def administration(self, i: int, a: Administration) -> None:
        h = self.h
        period = {"start": self.ts(a.start_ms), "end": self.ts(a.end_ms)}
        dose = _qty(decimal(a.tip_pg, 6), "ug")
        if a.kind == "basal":
            rate: dict[str, Any] = {"rateQuantity": _qty(decimal(a.ng_per_day or 0, 3), "ug/d")}
            text = f"basal segment at {decimal(a.ng_per_day or 0, 3)} ug/day"
        else:
            minutes = decimal(a.bolus_duration_ms or 0, 3)
            rate = {
                "rateRatio": {
                    "numerator": _qty(decimal(a.bolus_dose_pg or 0, 6), "ug"),
                    "denominator": _qty(minutes, "s"),
                }
            }
            text = (
                f"{a.kind} bolus {a.bolus_id}: {decimal(a.bolus_dose_pg or 0, 6)} ug programmed "
                f"({decimal(a.bolus_volume_nl or 0, 3)} uL at {a.concentration_ug_per_ml} ug/mL "
                "from the reservoir)"
            )
        resource: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "identifier": [{"system": "urn:itb:administration", "value": str(i + 1)}],
            "status": a.status,
            "subject": self.ref("patient"),
            "note": [{"text": f"{text}; dose = drug that left the catheter tip"}],
            "dosage": {"route": _route(), "dose": dose, **rate, "text": text},
        }
        self.medication(resource, a.concentration_ug_per_ml)
        if a.kind == "basal":
            resource["request"] = self.ref(f"request-{_program_index(h, a.start_ms)}")
        if self.r5:
            resource["occurencePeriod"] = period
            resource["device"] = [{"reference": self.ref("pump")}]
            resource["category"] = [{"text": "basal" if a.kind == "basal" else f"{a.kind} bolus"}]
        else:
            resource["effectivePeriod"] = period
            resource["device"] = [self.ref("pump")]
            resource["category"] = {"text": "basal" if a.kind == "basal" else f"{a.kind} bolus"}
        self.add(f"administration-{i}", resource)

    def observation(self, key: str, at_ms: int, text: str, **fields: Any) -> None:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": text},
            "subject": self.ref("patient"),
            "device": self.ref("pump"),
            "effectiveDateTime": self.ts(at_ms),
            **fields,
        }
        self.add(key, resource)

    def observations(self) -> None:
        h = self.h
        self.observation(
            "obs-reservoir",
            h.end_ms,
            "pump reservoir volume (firmware count)",
            valueQuantity=_qty(decimal(h.reservoir_nl, 6), "mL"),
        )
        if h.battery_remaining_pc is not None:
            self.observation(
                "obs-battery",
                h.end_ms,
                "pump battery remaining charge",
                valueQuantity=_qty(round(pc_to_mah(h.battery_remaining_pc), 6), "mA.h"),
                component=[
                    {"code": {"text": "elective replacement indicator"}, "valueBoolean": h.eri},
                    {"code": {"text": "end of service"}, "valueBoolean": h.eos},
                ],
            )
        flagged = {
            e.time_ms: e for e in h.events if e.kind == "refill_discrepancy"
        }  # at the refill's own time
        for n, e in enumerate(x for x in h.events if x.kind == "refilled"):
            d = refill_data(e)
            flag = flagged.get(e.time_ms)
            fields: dict[str, Any] = {
                "component": [
                    {
                        "code": {"text": "expected reservoir volume"},
                        "valueQuantity": _qty(decimal(int(d["expected_nl"]), 6), "mL"),
                    },
                    {
                        "code": {"text": "aspirated volume"},
                        "valueQuantity": _qty(decimal(int(d["aspirated_nl"]), 6), "mL"),
                    },
                    {
                        "code": {"text": "added volume"},
                        "valueQuantity": _qty(decimal(int(d["added_nl"]), 6), "mL"),
                    },
                ],
                "valueQuantity": _qty(
                    decimal(int(d["aspirated_nl"]) - int(d["expected_nl"]), 6), "mL"
                ),
                "interpretation": [
                    {"text": "beyond tolerance" if flag is not None else "within tolerance"}
                ],
            }
            reason = refill_data(flag).get("reason") if flag is not None else None
            if reason:
                fields["note"] = [{"text": f"flagged: {reason}"}]
            self.observation(
                f"obs-refill-{n}", e.time_ms, "refill: aspirated minus expected volume", **fields
            )

    def issue(
        self, key: str, at_ms: int, text: str, severity: str, detail: str, **extra: Any
    ) -> None:
        resource: dict[str, Any] = {
            "resourceType": "DetectedIssue",
            "status": "final",
            "code": {"text": text},
            "severity": severity,
            "detail": detail,
            **extra,
        }
        if self.r5:
            resource["subject"] = self.ref("patient")
            resource["identifiedDateTime"] = self.ts(at_ms)
        else:
            resource["patient"] = self.ref("patient")
            resource["identifiedDateTime"] = self.ts(at_ms)
        self.add(key, resource)

    def issues(self) -> None:
        h = self.h
        for n, e in enumerate(h.active_at_start):
            detail = alarm_detail(dict(e.data))
            self.issue(
                f"issue-active-{n}",
                e.time_ms,
                _ALARM_TEXT.get(e.kind, e.kind),
                _SEVERITY.get(e.severity or "", "moderate"),
                f"{e.kind} (sounding when the pump was read at {self.ts(h.start_ms)})"
                + (f": {detail}" if detail else ""),
                author=self.ref("pump"),
            )
        for n, e in enumerate(iter_alarms(h.events)):
            detail = alarm_detail(dict(e.data)) or e.kind
            self.issue(
                f"issue-alarm-{n}",
                e.time_ms,
                _ALARM_TEXT.get(e.kind, e.kind),
                _SEVERITY.get(e.severity or "", "moderate"),
                f"{e.kind} (event {e.seq}): {detail}",
                author=self.ref("pump"),
            )
        for n, d in enumerate(self.decisions):
            at = to_ms(d.at, "at")
            self.issue(
                f"issue-titration-{n}",
                at,
                f"titration guard: {d.code}" + (f" ({', '.join(d.flags)})" if d.flags else ""),
                "moderate" if not d.allowed else "low",
                d.reason,
                implicated=[self.ref(f"request-{_program_index(h, at)}")],
            )


def _program_index(h: TherapyHistory, t_ms: int) -> int:
    index = 0
    for i, (at, _) in enumerate(h.programs):
        if at <= t_ms:
            index = i
    return index


def _concentration_at(h: TherapyHistory, t_ms: int) -> int:
    c = h.initial_concentration_ug_per_ml
    for e in h.events:
        if e.kind == "concentration_changed" and e.time_ms <= t_ms:
            c = int(concentration_data(e)["to_ug_per_ml"])
    return c
