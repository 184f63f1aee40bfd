"""``itb rig report`` refuses inputs it cannot read — a missing or malformed record, a missing
journal — with a typed error naming the file (exit 2), and creates no file it was only to read."""

from __future__ import annotations

from pathlib import Path

import pytest
from itb.cli import main

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report_inputs")
    args = ["rig", "accuracy", "--duration", "P2D"]
    out = ["--balance-out", str(d / "b.csv"), "--record-out", str(d / "r.csv")]
    assert main([*args, *out, "--journal", str(d / "j.db")]) == 0
    return d


def _report(d: Path, record: Path, *extra: str) -> int:
    return main(
        [
            "rig",
            "report",
            "--record",
            str(record),
            "--balance",
            str(d / "b.csv"),
            "-o",
            str(d / "out.html"),
            *extra,
        ]
    )


def test_a_csv_that_is_not_a_record_names_file_and_line(
    run_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("id,name,ug_per_day\nA01,x,500\n", encoding="ascii")
    assert _report(run_files, plan) == 2
    err = capsys.readouterr().err
    assert f"{plan} line 1: expected stroke_id,time_ms" in err
    assert "internal error" not in err


def test_a_bad_row_after_good_ones_names_its_line(
    run_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = tmp_path / "r.csv"
    rec.write_text("stroke_id,time_ms\n1,1000\n2,x\n", encoding="ascii")
    assert _report(run_files, rec) == 2
    assert f"{rec} line 3: expected stroke_id,time_ms" in capsys.readouterr().err


def test_a_missing_record_says_cannot_read(
    run_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nope = tmp_path / "nope.csv"
    assert _report(run_files, nope) == 2
    err = capsys.readouterr().err
    assert f"cannot read {nope}" in err and "exclude" not in err
    assert not nope.exists()


def test_a_missing_journal_says_cannot_read_and_creates_nothing(
    run_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nope = tmp_path / "nope.db"
    assert _report(run_files, run_files / "r.csv", "--journal", str(nope)) == 2
    assert f"cannot read {nope}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not (run_files / "out.html").exists()


def test_an_output_named_pdf_is_refused_pointing_at_pdf(
    run_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.pdf"
    rc = main(
        [
            "rig",
            "report",
            "--record",
            str(run_files / "r.csv"),
            "--balance",
            str(run_files / "b.csv"),
            "-o",
            str(out),
        ]
    )
    assert rc == 2
    assert f"--pdf {out}" in capsys.readouterr().err
    assert not out.exists()


def test_key_fingerprints_are_labelled_unchecked(run_files: Path, tmp_path: Path) -> None:
    # keys made after the run: the run never used them, and the report must not imply it did
    keys = tmp_path / "keys2.toml"
    assert main(["rig", "keygen", str(keys)]) == 0
    out = tmp_path / "r.html"
    args = ["--record", str(run_files / "r.csv"), "--balance", str(run_files / "b.csv")]
    assert main(["rig", "report", *args, "--key-file", str(keys), "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    for role in ("clinician", "patient"):
        assert f"{role} key fingerprint (key file given, not checked against the run)" in html
