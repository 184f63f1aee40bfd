"""Option errors: a misspelt option gets "did you mean" (any subcommand). ``itb rig accuracy``: a
dose rate outside the pump model's range at the given concentration names --ug-per-day (exit 2);
the range follows the concentration; a fractional concentration is refused as not a whole
number."""

from __future__ import annotations

import pytest
from itb.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        rc = main(["rig", "accuracy", "--duration", "PT3H", *args])
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    return rc, capsys.readouterr().err


def test_a_rate_the_pump_cannot_run_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    # SynchroMed II: at most 24 mL/day; 60000 µg/day at 2000 µg/mL is 30 mL/day
    rc, err = _run(capsys, "--ug-per-day", "60000")
    assert rc == 2
    assert "--ug-per-day" in err and "30 mL/day" in err
    assert "cannot program ug_per_day" not in err


def test_the_low_end_follows_the_concentration(capsys: pytest.CaptureFixture[str]) -> None:
    # 30 µg/day at 500 µg/mL is 0.06 mL/day, above the model's 0.048 mL/day minimum
    rc, err = _run(
        capsys, "--ug-per-day", "30", "--concentration", "500", "--duration", "P2D", "--json"
    )
    assert "not between" not in err
    assert rc in (0, 1)  # ran: pass or fail is the accuracy's business
    # 20 µg/day at 500 µg/mL is 0.04 mL/day: below the minimum, named in mL/day
    rc, err = _run(capsys, "--ug-per-day", "20", "--concentration", "500")
    assert rc == 2 and "--ug-per-day" in err and "0.04 mL/day" in err and "e+" not in err


def test_zero_or_negative_rate_is_refused_with_its_unit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, err = _run(capsys, "--ug-per-day", "0")
    assert rc == 2 and "--ug-per-day" in err and "µg/day" in err


def test_a_fractional_concentration_is_not_a_whole_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, err = _run(capsys, "--concentration", "2000.5")
    assert rc == 2 and "'2000.5' must be a whole number" in err


def test_a_misspelt_required_option_is_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = (main(["rig", "accuracy", "--durtion", "P2D"]), capsys.readouterr().err)
    assert rc == 2
    assert "required: --duration" in err and "--durtion (did you mean --duration?)" in err


def test_an_abbreviation_is_not_called_unrecognized(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["rig", "report", "--rec", "r.csv", "-o", "x.html"])  # --balance missing
    err = capsys.readouterr().err
    assert rc == 2
    assert "required: --balance" in err and "unrecognized" not in err


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["clinic", "plan", "examples/clinic_patients.csv", "--capcity", "2"], "--capacity"),
        (["run", "examples/adult_sci_2000.toml", "--untill", "P1D"], "--until"),
    ],
)
def test_a_misspelt_option_of_a_subcommand_is_suggested(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    hint: str,
) -> None:
    # the top-level parser reports it; the hint is the subcommand's own option
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert f"unrecognized arguments: {argv[-2]}" in err
    assert f"{argv[-2]}: did you mean {hint}?" in err


def test_an_unknown_option_far_from_any_gets_no_guess(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--zzzzzz"])
    err = capsys.readouterr().err
    assert rc == 2 and "unrecognized arguments: --zzzzzz" in err and "did you mean" not in err
