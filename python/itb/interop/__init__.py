"""Interoperability: a therapy history as HL7 FHIR (R5 / R4B) and as IHE PCD-10 HL7 v2 event
messages, with an MLLP sender and receiver.

- :mod:`itb.interop.fhir` — ``bundle(result_or_recorder, version="R5")`` (``itb[fhir]``);
- :mod:`itb.interop.hl7v2` — ``messages(result_or_recorder)`` (``itb[hl7]``);
- :mod:`itb.interop.mllp` — ``send(messages, host, port)``, ``Receiver`` (standard library);
- :class:`Recorder` — drive a :class:`itb.Pump` so its history can be exported;
- :class:`TherapyHistory` — what both exports read (segments, boluses, doses at the tip).

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

from .history import Administration, Recorder, TherapyHistory, history_of

__all__ = ["Administration", "Recorder", "TherapyHistory", "history_of"]
