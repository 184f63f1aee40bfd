"""A measured zero prints as 0, never "-0" (a blank run with no evaporation)."""

from __future__ import annotations

import pytest
from itb.cli import main
from itb.hardware.metrology import Measurement


def test_negative_zero_prints_as_zero() -> None:
    m = Measurement.measured(-0.0, 0.00032, "mg/h", "evaporation")
    assert str(m) == "0 ± 0.00064 mg/h (k = 2)"
    assert str(Measurement.measured(-0.5, 0.1, "mg/h", "x")).startswith("-0.5 ± ")


def test_accuracy_evaporation_line_has_no_negative_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["rig", "accuracy", "--duration", "P2D"])
    out = capsys.readouterr().out
    assert "evaporation 0 ± " in out and "-0 ±" not in out
