"""The event log (docs: concepts.md): a Sequence[Event] backed by Rust columns. Its columns, its
filters and its slices must say exactly what its materialized Events say."""

from __future__ import annotations

import pickle
from datetime import datetime, time, timedelta

import itb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 1, 5, 8, 0)


def busy_pump(
    days: int, dose: float, reservoir_ml: float, bolus_every_h: int
) -> tuple[itb.Pump, itb.EventLog]:
    p = itb.Pump(
        itb.models.SYNCHROMED_II_20,
        now=T0,
        reservoir_ml=reservoir_ml,
        concentration_ug_per_ml=2000,
        catheter_volume_ul=50.0,
        path_primed=False,
        program=itb.Flex(
            period="day", steps=[(time(0), dose), (time(8), 2 * dose), (time(22), dose)]
        ),
    )
    p.set_patient_bolus_limits(
        dose_ug=5.0, duration=timedelta(minutes=5), lockout=timedelta(hours=2), max_per_24h=3
    )
    t = T0
    while t < T0 + timedelta(days=days):
        try:
            p.bolus(dose_ug=10.0, duration=timedelta(minutes=20), start=t + timedelta(minutes=30))
        except itb.ReservoirError:
            pass  # empty by now: the log goes on with alarms and denials
        p.patient_bolus(at=t + timedelta(hours=1))
        t += timedelta(hours=bolus_every_h)
    return p, p.advance_to(T0 + timedelta(days=days))


@settings(max_examples=25, deadline=None)
@given(
    days=st.integers(1, 30),
    dose=st.sampled_from([100.0, 400.0, 1500.0]),
    reservoir_ml=st.sampled_from([2.5, 5.0, 20.0]),
    every=st.integers(3, 48),
)
def test_columns_say_what_the_events_say(days, dose, reservoir_ml, every):
    _, log = busy_pump(days, dose, reservoir_ml, every)
    events = list(log)
    assert len(events) == len(log) and all(isinstance(e, itb.Event) for e in events)
    cols = log.to_numpy()
    assert cols["time_ms"].tolist() == [e.time_ms for e in events]
    assert cols["time"].astype("int64").tolist() == [e.time_ms for e in events]
    assert cols["seq"].tolist() == [e.seq for e in events]
    assert cols["kind"].tolist() == [e.kind for e in events] == log.kinds.tolist()
    assert cols["severity"].tolist() == [e.severity or "" for e in events]
    keys = {k for e in events for k in e.data}
    assert keys | {"time", "time_ms", "seq", "kind", "severity"} == set(cols)
    for key in keys:
        col = cols[key]
        for i, e in enumerate(events):
            if key not in e.data:
                assert (
                    col[i] is np.ma.masked if isinstance(col, np.ma.MaskedArray) else col[i] is None
                )
            else:
                assert col[i] == e.data[key]
    for kind in (
        "stroke_batch",
        "bolus_started",
        "patient_bolus_granted",
        "low_reservoir",
        "drug_at_tip",
    ):
        assert list(log.of_kind(kind)) == [e for e in events if e.kind == kind]
    assert list(log.of_kind("bolus_started", "bolus_completed")) == [
        e for e in events if e.kind in ("bolus_started", "bolus_completed")
    ]


def test_sequence_behaviour():
    _, log = busy_pump(3, 400.0, 20.0, 12)
    events = list(log)
    assert log == events and events == list(log) and log[-1] == events[-1] and log[0] == events[0]
    assert list(log[2:7]) == events[2:7] and isinstance(log[2:7], itb.EventLog)
    assert log[::3] == events[::3]
    assert list(log[5:2]) == [] and len(log[-3:]) == 3
    assert (log + log) == events + events and isinstance(log + log, itb.EventLog)
    assert log + events[:2] == events + events[:2] and events[:2] + log == events[:2] + events
    assert pickle.loads(pickle.dumps(log)) == events
    assert log.count(events[0]) == 1 and log.index(events[4]) == 4 and events[3] in log
    frame = log.to_pandas()
    assert len(frame) == len(log) and frame["kind"].tolist() == [e.kind for e in events]
    assert str(frame["bolus_id"].dtype) == "Int64"
    try:
        log[len(log)]
    except IndexError:
        pass
    else:  # pragma: no cover
        raise AssertionError("out of range must be an IndexError")
    try:
        log.of_kind("no_such_kind")
    except itb.ValidationError as err:
        assert err.field == "kinds"
    else:  # pragma: no cover
        raise AssertionError("unknown kinds must be refused")


def test_empty_log():
    p = itb.Pump(
        itb.models.SYNCHROMED_II_20,
        now=T0,
        reservoir_ml=20.0,
        concentration_ug_per_ml=2000,
        program=itb.Continuous(ug_per_day=0),
    )
    log = p.advance(timedelta(hours=1))
    assert (
        len(log) == 0
        and log == []
        and log.kinds.tolist() == []
        and log.to_numpy()["kind"].tolist() == []
    )
