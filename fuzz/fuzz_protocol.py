"""Coverage-guided fuzzing of the rig protocol parser (atheris). Runs only on request:

    pip install atheris
    python fuzz/fuzz_protocol.py -atheris_runs=200000        # or -max_total_time=60

Each input is split into chunks fed to an emulator ``Link`` (framing, tag check, session,
payload parsing) with and without an established session. The properties: only ``ItbError``
subclasses may escape the pure parser, the link never raises, and no unauthenticated input
executes anything on the rig. Without atheris, ``ITB_FUZZ_EXAMPLES=N pytest
tests/test_hardware_protocol.py`` runs the hypothesis properties N times as long.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from itb.errors import ProtocolError
    from itb.hardware.emulator import Link
    from itb.hardware.protocol import ClientSession, Role, parse_frame
    from itb.hardware.rig import Rig

KEYS = {Role.CLINICIAN: bytes(range(32)), Role.PATIENT: bytes(range(32, 64))}


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    try:
        parse_frame(data, KEYS)
    except ProtocolError:
        pass
    rig = Rig()
    link = Link(rig, KEYS)
    if fdp.ConsumeBool():
        client = ClientSession(Role.CLINICIAN, KEYS[Role.CLINICIAN])
        link.receive(client.auth(link.receive(client.hello())))
    while fdp.remaining_bytes():
        link.receive(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 600)))
    link.idle()
    assert rig.last_stroke_id == 0 and not rig.stopped and not rig.patient_boluses, "unauthenticated input executed"


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
