"""The state machine alone catches patient-bolus bugs: a device whose own patient-bolus logic has
one realistic bug (``_kit_devices.MUTANTS``: the lockout compared strictly, the 24 h window per
calendar day, a grant exactly 24 h old still counted, the lockout counted from denied attempts)
is caught within 300 examples in at least 7 of 8 hypothesis seeds, with the patient actions only
and with every action; the correct logic passes.

The full count (8 seeds × 300 examples × 4 mutants × 2 action sets, a few minutes) runs with
``ITB_KIT_MUTANT_COUNTS=1`` and prints the counts; the default run checks two seeds per mutant
with fewer examples, which still fails if the exploration stops reaching the boundaries."""

from __future__ import annotations

import os

import pytest
from _kit_devices import MUTANTS, caught, patient_machine

FULL = os.environ.get("ITB_KIT_MUTANT_COUNTS") == "1"


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_patient_bolus_mutant_is_caught_by_the_machine_alone(mutant):
    hits = [caught(patient_machine(mutant, everything=False), seed, 150) for seed in (0, 1)]
    assert all(hits), (mutant, hits)


def test_the_correct_patient_logic_is_never_flagged():
    assert not caught(patient_machine(None, everything=False), 0, 60)
    assert not caught(patient_machine(None, everything=True), 1, 30)


@pytest.mark.skipif(not FULL, reason="set ITB_KIT_MUTANT_COUNTS=1 (a few minutes)")
@pytest.mark.parametrize("everything", [False, True], ids=["patient actions", "all actions"])
@pytest.mark.parametrize("mutant", MUTANTS)
def test_mutant_counts_8_seeds_300_examples(mutant, everything, capsys):
    hits = sum(caught(patient_machine(mutant, everything), seed, 300) for seed in range(8))
    with capsys.disabled():
        print(
            f"\n{mutant} ({'all' if everything else 'patient'} actions): caught in {hits}/8 seeds"
        )
    assert hits >= 7, (mutant, everything, hits)
