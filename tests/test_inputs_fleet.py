"""A fleet is as strict as a pump (docs: guide/inputs.md#fleet-columns): whole concentrations,
bools refused, tz-aware time columns refused from Arrow, pandas and Python objects alike, every
error naming ``column[row]``, and naive times the same in every container."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import itb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from itb.fleet import Fleet

# Check values (presets, primed path), computed by hand from the delivery model:
# 40 mL at 2000 µg/mL, 400 µg/day = 0.2 mL/day; low at 2 mL: (40 − 2) / 0.2 = 190 days.
# 20 mL at 500 µg/mL, 250 µg/day = 0.5 mL/day; low at 3 mL: (20 − 3) / 0.5 = 34 days.
NOW = [datetime(2026, 1, 5, 8, 0), datetime(2026, 2, 1, 9, 30)]
LOW = [datetime(2026, 7, 14, 8, 0), datetime(2026, 3, 7, 9, 30)]
assert [b - a for a, b in zip(NOW, LOW)] == [timedelta(days=190), timedelta(days=34)]


def columns(now: Any) -> dict[str, Any]:
    return {
        "model": ["SYNCHROMED_II_40", "PROMETRA_II_20"],
        "now": now,
        "reservoir_ml": [40.0, 20.0],
        "concentration_ug_per_ml": [2000, 500],
        "ug_per_day": [400.0, 250.0],
    }


def low_reservoir(fleet: Fleet) -> list[datetime]:
    got = fleet.forecast(timedelta(days=3650), assume_refills=False)["low_reservoir"]
    return [v.astype("datetime64[ms]").astype(datetime) for v in got]


def naive_containers() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("list", list(NOW)),
        ("tuple", tuple(NOW)),
        ("object array", np.array(NOW, dtype=object)),
        ("int ms", [int((t - datetime(1970, 1, 1)) / timedelta(milliseconds=1)) for t in NOW]),
    ]
    out += [
        (f"datetime64[{u}]", np.array(NOW, dtype=f"datetime64[{u}]")) for u in "s ms ns".split()
    ]
    try:
        import pandas as pd

        out += [
            (f"pandas {u}", pd.Series(np.array(NOW, dtype=f"datetime64[{u}]")))
            for u in "s ms ns".split()
        ]
    except ImportError:
        pass
    try:
        import pyarrow as pa

        out += [(f"arrow {u}", pa.array(NOW, type=pa.timestamp(u))) for u in "s ms ns".split()]
        out.append(
            ("arrow chunked", pa.chunked_array([[NOW[0]], [NOW[1]]], type=pa.timestamp("ms")))
        )
    except ImportError:
        pass
    return out


@pytest.mark.parametrize(
    "name, now", naive_containers(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_naive_times_are_the_same_in_every_container(name: str, now: Any) -> None:
    assert low_reservoir(Fleet(columns(now))) == LOW, name


def test_a_pyarrow_table_with_naive_times() -> None:
    pa = pytest.importorskip("pyarrow")
    cols = columns(pa.array(NOW, type=pa.timestamp("ms")))
    table = pa.table({k: v for k, v in cols.items()})
    assert low_reservoir(Fleet(table)) == LOW


def aware_containers() -> list[tuple[str, Any]]:
    ny, berlin = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
    out: list[tuple[str, Any]] = [
        ("list NY", [t.replace(tzinfo=ny) for t in NOW]),
        ("list UTC", [t.replace(tzinfo=UTC) for t in NOW]),
        ("list mixed", [NOW[0], NOW[1].replace(tzinfo=berlin)]),
    ]
    try:
        import pandas as pd

        out.append(("pandas NY", pd.Series(pd.DatetimeIndex(NOW).tz_localize("America/New_York"))))
        out.append(("pandas Berlin", pd.Series(pd.DatetimeIndex(NOW).tz_localize("Europe/Berlin"))))
    except ImportError:
        pass
    try:
        import pyarrow as pa

        for unit in "s ms ns".split():
            out.append(
                (f"arrow {unit} NY", pa.array(NOW, type=pa.timestamp(unit, tz="America/New_York")))
            )
        out.append(("arrow Berlin", pa.array(NOW, type=pa.timestamp("ms", tz="Europe/Berlin"))))
    except ImportError:
        pass
    return out


@pytest.mark.parametrize(
    "name, now", aware_containers(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_tz_aware_time_columns_are_refused(name: str, now: Any) -> None:
    with pytest.raises(itb.ValidationError) as err:
        Fleet(columns(now))
    assert err.value.field.split("[")[0] == "now" and "naive" in str(err.value), name


def test_tz_aware_arrow_table_is_refused_not_read_as_utc() -> None:
    pa = pytest.importorskip("pyarrow")
    cols = columns(pa.array(NOW, type=pa.timestamp("ms", tz="America/New_York")))
    with pytest.raises(itb.ValidationError) as err:
        Fleet(pa.table(cols))
    assert err.value.field == "now" and "America/New_York" in str(err.value)


@pytest.mark.parametrize(
    "column, value, field, words",
    [
        ("reservoir_ml", [True, 20.0], "reservoir_ml[0]", "bool is never a number"),
        ("reservoir_ml", np.array([True, False]), "reservoir_ml[0]", "bool is never a number"),
        ("concentration_ug_per_ml", [2000.9, 500.0], "concentration_ug_per_ml[0]", "whole number"),
        ("concentration_ug_per_ml", [2000, 500.5], "concentration_ug_per_ml[1]", "whole number"),
        ("concentration_ug_per_ml", [2000, True], "concentration_ug_per_ml[1]", "bool"),
        ("concentration_ug_per_ml", [2000.0, np.nan], "concentration_ug_per_ml[1]", "finite"),
        (
            "concentration_ug_per_ml",
            np.array([2000.0, np.nan]),
            "concentration_ug_per_ml[1]",
            "whole",
        ),
        ("ug_per_day", np.array([True, True]), "ug_per_day[0]", "bool is never a number"),
        ("ug_per_day", ["400", 250.0], "ug_per_day[0]", "expected a number"),
        ("ug_per_day", [400.0, float("nan")], "ug_per_day[1]", "finite"),
        (
            "model",
            ["SYNCHROMED_II_40", "PROMETRA_II_2O"],
            "model[1]",
            "did you mean 'PROMETRA_II_20'",
        ),
        ("model", [0, 7], "model[1]", "allowed: 0 to 3"),
        ("model", [0, -1], "model[1]", "allowed: 0 to 3"),
        ("model", [True, 0], "model[0]", "bool"),
        ("now", [NOW[0], None], "now[1]", "NoneType"),
        ("now", [NOW[0], True], "now[1]", "bool"),
        ("now", np.array(["2026-01-05T08:00", "NaT"], dtype="datetime64[ms]"), "now[1]", "NaT"),
        ("now", [1.5, 2.5], "now[0]", "float"),
        ("now", np.array([1.5, 2.5]), "now", "floats"),
        ("reservoir_ml", [40.0], "reservoir_ml", "1 rows; the other columns have 2"),
    ],
)
def test_bad_values_name_column_and_row(column: str, value: Any, field: str, words: str) -> None:
    cols = columns(list(NOW))
    cols[column] = value
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols)
    assert err.value.field == field and words in str(err.value), str(err.value)


def test_whole_float_concentrations_are_whole_numbers() -> None:
    cols = columns(list(NOW))
    cols["concentration_ug_per_ml"] = [2000.0, 500.0]
    assert low_reservoir(Fleet(cols)) == LOW


def test_extra_columns_are_normal_and_near_misses_get_did_you_mean() -> None:
    cols = columns(list(NOW)) | {"patient_id": ["a", "b"], "ward": ["3B", "ICU"]}
    assert low_reservoir(Fleet(cols)) == LOW
    # a misspelt optional column would be ignored silently: refused, naming the present column
    for typo, wanted in [
        ("batery_mah", "battery_mah"),
        ("implant", "implanted"),
        ("eri_sinse", "eri_since"),
        ("programs", "program"),
    ]:
        with pytest.raises(itb.ValidationError) as err:
            Fleet(columns(list(NOW)) | {"patient_id": ["a", "b"], typo: [1.0, 2.0]})
        assert err.value.field == typo and f"did you mean {wanted!r}" in str(err.value)
    # the right name is read (and a close extra beside it is just an extra)
    full = columns(list(NOW)) | {"battery_mah": [400.0, 400.0], "batery_mah": [1.0, 2.0]}
    assert low_reservoir(Fleet(full)) == LOW
    cols = columns(list(NOW))
    cols["reservoir_mL"] = cols.pop("reservoir_ml")
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols)
    assert err.value.field == "reservoir_ml" and "did you mean 'reservoir_mL'" in str(err.value)
    cols = columns(list(NOW))
    cols["ug_per_dya"] = cols.pop("ug_per_day")
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols)
    assert err.value.field == "ug_per_day" and "did you mean 'ug_per_dya'" in str(err.value)


def test_program_index_rows_are_checked() -> None:
    cols = columns(list(NOW))
    del cols["ug_per_day"]
    cols["program"] = [0, 1]
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols, programs=[itb.Continuous(400)])
    assert err.value.field == "program[1]" and "allowed: -1 to 0" in str(err.value)
    cols["program"] = [0, -1]
    with pytest.raises(itb.ValidationError) as err:
        Fleet(cols, programs=[itb.Continuous(400)])
    assert err.value.field == "program[1]"
    cols["program"] = [0, 1]
    fleet = Fleet(cols, programs=[itb.Continuous(400), itb.Continuous(250)])
    assert low_reservoir(fleet) == LOW


@given(
    value=st.one_of(
        st.booleans(),
        st.floats(),
        st.integers(-(2**70), 2**70),
        st.text(max_size=5),
        st.none(),
        st.datetimes(timezones=st.sampled_from([UTC, ZoneInfo("Europe/Berlin")])),
    ),
    column=st.sampled_from(
        ["model", "now", "reservoir_ml", "concentration_ug_per_ml", "ug_per_day"]
    ),
)
def test_any_cell_gives_a_fleet_or_a_named_itb_error(value: Any, column: str) -> None:
    cols = columns(list(NOW))
    cols[column] = [cols[column][0], value]
    try:
        fleet = Fleet(cols)
        fleet.forecast(timedelta(days=3650))
    except itb.ItbError as err:
        if not err.field.startswith(column):
            # a valid cell that makes the row's dose unprogrammable (concentration 1 µg/mL:
            # 250 µg/day is 250 mL/day), named at the dose of the same row
            assert isinstance(err, itb.ProgrammingError), (err.field, column)
            assert column in ("model", "concentration_ug_per_ml"), (err.field, column)
            assert err.field == "ug_per_day[1]", (err.field, column)
