"""Regressions from a new-user trial of the rig layer (``itb rig …``, ``itb.hardware``): each input
here was accepted, crashed or gave a message without the option, the place or the range."""

from __future__ import annotations

import pytest
from itb.cli import main
from itb.errors import ValidationError
from itb.hardware import Controller, Journal, SimulatedDriver
from itb.hardware.protocol import parse_therapy, therapy_payload

# THERAPY carries the speed as a u32 of pump ms per 1000 ms (guide/rig.md, the frame table)
U32_MAX = 4_294_967_295


@pytest.mark.parametrize(
    "speed",
    [1e308, float("inf"), 5_000_000.0, U32_MAX / 1000 + 0.001, 1e-9, 0.0, -1.0, float("nan"), True],
)
def test_speed_outside_what_therapy_carries_is_refused_naming_speed(tmp_path, speed) -> None:
    with Journal(tmp_path / "j.db") as j, pytest.raises(ValidationError) as e:
        Controller(SimulatedDriver(), j, [0, 1000, 2000], speed=speed)
    assert e.value.field == "speed"
    assert "0.001" in str(e.value) and "4294967.295" in str(e.value)


@pytest.mark.parametrize("speed", [0.001, 1.0, 3600.0, U32_MAX / 1000])
def test_speed_at_the_ends_of_the_range_is_carried_exactly(tmp_path, speed) -> None:
    driver = SimulatedDriver()
    with Journal(tmp_path / "j.db") as j:
        c = Controller(driver, j, [0], speed=speed)
        c._therapy(0)
    milli = driver.rig._speed_milli
    assert 1 <= milli == round(speed * 1000) <= U32_MAX
    assert parse_therapy(therapy_payload(500, 0, milli)) == (500, 0, milli)


@pytest.mark.parametrize("text", ["1e308", "5000000", "1e-9", "0", "inf", "nan", "fast"])
def test_cli_speed_out_of_range_is_a_usage_error(tmp_path, capsys, text) -> None:
    argv = ["rig", "run", str(tmp_path / "s.toml"), "--port", "/dev/null", "--key-file"]
    argv += [str(tmp_path / "k"), "--journal", str(tmp_path / "j.db"), "--speed", text]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--speed" in err and "4294967.295" in err and "internal error" not in err
