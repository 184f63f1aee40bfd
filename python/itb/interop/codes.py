"""Codes the exports write, each with its public source (the table in docs: guide/interop.md
lists them; docs: decisions/interop.md says where no code is known and what is used instead)."""

from __future__ import annotations

__all__ = [
    "UCUM",
    "SNOMED",
    "ATC",
    "BACLOFEN_SNOMED",
    "BACLOFEN_ATC",
    "RXNORM",
    "BACLOFEN_RXNORM",
    "INTRATHECAL_ROUTE_SNOMED",
    "MDC",
    "MDC_UNITS",
    "UNASSIGNED",
    "LOCAL",
    "LOCAL_SYSTEM",
]

#: Unified Code for Units of Measure (https://ucum.org): ``ug``, ``ug/d``, ``mL``, ``mL/d``,
#: ``ug/mL``, ``uL``, ``mA.h``, ``min``, ``%``.
UCUM = "http://unitsofmeasure.org"
#: SNOMED CT (the FHIR system URI).
SNOMED = "http://snomed.info/sct"
#: WHO Anatomical Therapeutic Chemical classification (the FHIR system URI).
ATC = "http://www.whocc.no/atc"

#: RxNorm (US National Library of Medicine; the FHIR system URI).
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
#: Baclofen, RxNorm ingredient (TTY ``IN``) RxCUI 1292 (NLM RxNav,
#: https://rxnav.nlm.nih.gov/REST/rxcui/1292/properties.json; the clinical-drug RxCUIs of the
#: intrathecal products name a vial and are not used: the exports name the ingredient and give the
#: strength in the Medication).
BACLOFEN_RXNORM = ("1292", "baclofen")
#: Baclofen (substance), SNOMED CT 387342009 (in the SNOMED CT International release; e.g. the
#: Swiss eHealth substance value set maps it to ATC M03BX01).
BACLOFEN_SNOMED = ("387342009", "Baclofen (substance)")
#: Baclofen, ATC M03BX01 (WHO ATC index: M03BX "other centrally acting agents").
BACLOFEN_ATC = ("M03BX01", "baclofen")
#: Intrathecal route (qualifier value), SNOMED CT 72607000 (in the FHIR value set SNOMED CT
#: Route Codes, http://hl7.org/fhir/R4/valueset-route-codes.html; DICOM PS3.16 CID 11 "Route of
#: Administration" lists it as "Intrathecal route").
INTRATHECAL_ROUTE_SNOMED = ("72607000", "Intrathecal route")

#: IEEE 11073-10101 (MDC) codes as they appear in the IHE PCD-10 (IPEC) sample message:
#: ``name: (code, reference id)``. ``0`` where no code is published for the term (the IHE PCD
#: convention for a term without an assigned code: code 0, the reference id in CWE-2):
#: ``MDC_EVT_PUMP_DELIV_STOP``, ``MDC_EVT_PUMP_DELIV_COMP``, ``MDC_DEV_PUMP_NOT_DELIVERING_REASON``
#: (:data:`UNASSIGNED`; listed in the codes table of docs: guide/interop.md).
MDC = {
    "evt_cond": (68487, "MDC_ATTR_EVT_COND"),
    "evt_source": (68488, "MDC_ATTR_EVT_SOURCE"),
    "deliv_start": (197288, "MDC_EVT_PUMP_DELIV_START"),
    "deliv_stop": (0, "MDC_EVT_PUMP_DELIV_STOP"),
    "deliv_comp": (0, "MDC_EVT_PUMP_DELIV_COMP"),
    "delivery_info": (70067, "MDC_DEV_PUMP_DELIVERY_INFO"),
    "infusing_status": (184519, "MDC_PUMP_INFUSING_STATUS"),
    "flow_current": (158014, "MDC_FLOW_FLUID_PUMP_CURRENT"),
    "active_sources": (158016, "MDC_DEV_PUMP_ACTIVE_SOURCES"),
    "source_primary": (70071, "MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY"),
    "delivery_status": (158005, "MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS"),
    "delivery_mode": (158008, "MDC_DEV_PUMP_PROGRAM_DELIVERY_MODE"),
    "not_delivering_reason": (0, "MDC_DEV_PUMP_NOT_DELIVERING_REASON"),
    "channel_label": (158012, "MDC_DEV_PUMP_SOURCE_CHANNEL_LABEL"),
    "rate": (157784, "MDC_FLOW_FLUID_PUMP"),
    "dose_rate": (157924, "MDC_RATE_DOSE"),
    "vol_tbi": (157884, "MDC_VOL_FLUID_TBI"),
    "vol_delivered_total": (157993, "MDC_VOL_FLUID_DELIV_TOTAL"),
    "drug_name": (184514, "MDC_DRUG_NAME_LABEL"),
    "concentration": (157760, "MDC_CONC_DRUG"),
}
#: Local terms (HL7 v2 local coding system ``99ITB``, sent with code 0): the implanted pump's
#: MDS and VMD (the IHE sample's MDS/VMD codes are for large-volume and syringe pumps) and the
#: alarm conditions, named by itb's event kinds.
LOCAL_SYSTEM = "99ITB"
LOCAL = {
    "pump_mds": "implanted_intrathecal_pump_mds",
    "pump_vmd": "implanted_intrathecal_pump_vmd",
}
#: MDC units of the IHE PCD-10 sample: ``name: (code, reference id, UCUM)``; a unit the sample
#: does not have (µg/day) is sent in UCUM alone (``ug/d^ug/d^UCUM``).
MDC_UNITS = {
    "mL/h": (265266, "MDC_DIM_MILLI_L_PER_HR", "mL/h"),
    "mL": (263762, "MDC_DIM_MILLI_L", "mL"),
    "mg/mL": (264306, "MDC_DIM_MILLI_G_PER_ML", "mg/mL"),
}
#: The terms sent with code 0 (no IEEE 11073-10101 code in the IHE PCD-10 sample, or none
#: defined for an implantable pump).
UNASSIGNED = sorted(ref for code, ref in MDC.values() if code == 0)
