"""Coverage-guided fuzzing of the rig protocol parser (atheris). Runs only on request:

    pip install atheris
    python fuzz/fuzz_protocol.py -atheris_runs=200000        # or -max_total_time=60

Each input is split into chunks fed to an emulator ``Link`` (framing, tag check, session,
payload parsing) with and without an established session, or turned into correctly tagged
frames of the session with fuzzed command, seq and payload. The properties: only
``ProtocolError`` may escape the pure parser, the link never raises, no unauthenticated input
executes anything on the rig, and authenticated input keeps the rig's invariants. Without atheris, ``ITB_FUZZ_EXAMPLES=N pytest
tests/test_hardware_protocol.py`` runs the hypothesis properties N times as long.
"""

from __future__ import annotations

import hashlib
import hmac
import sys

import atheris

with atheris.instrument_imports():
    from itb.errors import ProtocolError
    from itb.hardware.emulator import Link
    from itb.hardware.protocol import HEAD, LENGTH, TAG_SIZE, ClientSession, Role, parse_frame
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
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode:
        client = ClientSession(Role.CLINICIAN, KEYS[Role.CLINICIAN])
        link.receive(client.auth(link.receive(client.hello())))
    if mode == 2:
        # authenticated frames of this session with fuzzed command, seq and payload: the rig
        # may execute them, but must answer or refuse, never raise, and keep its invariants
        while fdp.remaining_bytes():
            command = fdp.ConsumeIntInRange(0, 255)
            seq = fdp.ConsumeIntInRange(0, 2**64 - 1)
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
            link.receive(_signed(command, client.session, seq, payload))
        assert 0 <= rig.last_stroke_id <= 64 * 200 and rig.reservoir_nl >= 0
        return
    while fdp.remaining_bytes():
        link.receive(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 600)))
    link.idle()
    assert rig.last_stroke_id == 0 and not rig.stopped and not rig.patient_boluses, (
        "unauthenticated input executed"
    )


def _signed(command: int, session: int, seq: int, payload: bytes) -> bytes:
    body = (
        LENGTH.pack(HEAD.size + len(payload) + TAG_SIZE)
        + HEAD.pack(1, command, 1, session, seq)
        + payload
    )
    return body + hmac.new(KEYS[Role.CLINICIAN], body, hashlib.sha256).digest()


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
