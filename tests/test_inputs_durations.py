"""One rule per kind of input, on every surface: durations and bools (docs: guide/inputs.md).

The public Python calls with a duration parameter are found by walking the package (annotation
``timedelta``/``Duration``), so a new one cannot escape: each must have an entry in ``CALLS``
(how to call it validly with that parameter set) or in ``EXEMPT`` (with the reason). Scenario keys
and command-line options are enumerated from the schema and the parser the same way.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import itb
import itb.analysis
import itb.clinical
import itb.export
import itb.scenario as sc
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from itb import _time
from itb.scenario.spec import ACTIONS, BatterySpec, parse_duration

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 5, 8)
M30 = timedelta(minutes=30)


def _hw() -> Any:
    return importlib.import_module("itb.hardware.metrology")


def _bal() -> Any:
    return importlib.import_module("itb.hardware.balance")


def _emu() -> Any:
    return importlib.import_module("itb.hardware.balance.emulator")


def _acc() -> Any:
    return importlib.import_module("itb.hardware.accuracy")


def _acc_run() -> Any:
    t = [timedelta(seconds=60 * k) for k in range(301)]
    return _acc().GravimetricRun(t, [0.001 * k for k in range(301)], 0.001)


@__import__("functools").cache
def _report_files() -> tuple[str, str]:
    import tempfile

    from itb.cli import main

    d = Path(tempfile.mkdtemp(prefix="itb-dur-report-"))
    args = ["rig", "accuracy", "--duration", "P2D", "--balance-out", str(d / "b.csv")]
    main([*args, "--record-out", str(d / "r.csv")])
    return str(d / "r.csv"), str(d / "b.csv")


def _log_balance(**kw: Any) -> Any:
    """A balance log that stops at once (into a new file each call)."""
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="itb-dur-log-")) / "b.csv"
    kw.setdefault("interval", timedelta(seconds=1))
    logger = importlib.import_module("itb.hardware.balance.logger")
    return logger.log_balance(None, out, stop=lambda: True, **kw)


def _report(**kw: Any) -> Any:
    return importlib.import_module("itb.hardware.report").build_report(*_report_files(), **kw)


_TAUS = [timedelta(seconds=330 + 600 * k) for k in range(6, 30)]


def pump(**kw: Any) -> itb.Pump:
    args: dict[str, Any] = dict(
        now=T0, reservoir_ml=40.0, concentration_ug_per_ml=2000, program=itb.Continuous(400)
    )
    return itb.Pump(itb.models.SYNCHROMED_II_40, **{**args, **kw})


def scenario() -> sc.Scenario:
    return sc.load(ROOT / "examples" / "adult_sci_2000.toml")


def fleet() -> itb.fleet.Fleet:
    return itb.fleet.Fleet(
        {
            "model": ["SYNCHROMED_II_40"],
            "now": np.array([T0], dtype="datetime64[ms]"),
            "reservoir_ml": [40.0],
            "concentration_ug_per_ml": [2000],
            "ug_per_day": [400.0],
        }
    )


def battery(**kw: Any) -> Any:
    fields = {
        k: getattr(itb.models.NOMINAL_BATTERY, k)
        for k in ("capacity_mah", "quiescent_ua", "stroke_uc", "tone_uc", "telemetry_uc")
    }
    return itb.models.BatteryModel(**fields, eri_mah=1.0, eos_mah=0.5, **kw)


def trial_response(**kw: Any) -> Any:
    trial = itb.clinical.ScreeningTrial()
    trial.give(50, at=T0)
    return trial.record_response(True, at=T0 + timedelta(hours=6), **kw)


#: (qualified name, parameter) → a call with that parameter set to ``value`` (others valid).
CALLS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("itb.pump.Pump.bolus", "duration"): lambda v: pump().bolus(50.0, v),
    ("itb.pump.Pump.bolus_many", "durations"): lambda v: pump().bolus_many([T0], [5.0], [v]),
    ("itb.pump.Pump.set_patient_bolus_limits", "duration"): lambda v: (
        pump().set_patient_bolus_limits(25.0, v, M30, 3)
    ),
    ("itb.pump.Pump.set_patient_bolus_limits", "lockout"): lambda v: (
        pump().set_patient_bolus_limits(25.0, M30, v, 3)
    ),
    ("itb.pump.Pump.advance", "duration"): lambda v: pump().advance(v),
    ("itb.pump.Pump.project", "horizon"): lambda v: pump().project(v),
    ("itb.fleet.Fleet.forecast", "horizon"): lambda v: fleet().forecast(v),
    ("itb.pump.project_many", "horizon"): lambda v: itb.pump.project_many([pump()], v),
    ("itb.clinical.refill.plan_refill", "margin"): lambda v: itb.clinical.plan_refill(pump(), v),
    ("itb.clinical.refill.plan_refill", "stability"): lambda v: itb.clinical.plan_refill(
        pump(), stability=v
    ),
    ("itb.clinical.refill.plan_refill", "horizon"): lambda v: itb.clinical.plan_refill(
        pump(), horizon=v
    ),
    ("itb.clinical.clinic.plan_clinic", "margin"): lambda v: itb.clinical.plan_clinic(
        [itb.clinical.ClinicPatient("a", pump())], slots_per_day=4, margin=v
    ),
    ("itb.clinical.clinic.ClinicPatient.__init__", "min_interval"): lambda v: (
        itb.clinical.plan_clinic(
            [itb.clinical.ClinicPatient("a", pump(), min_interval=v)], slots_per_day=4
        )
    ),
    ("itb.clinical.clinic.ClinicPatient.__init__", "stability"): lambda v: itb.clinical.plan_clinic(
        [itb.clinical.ClinicPatient("a", pump(), stability=v)], slots_per_day=4
    ),
    ("itb.clinical.ScreeningTrial.record_response", "effect_duration"): lambda v: trial_response(
        effect_duration=v
    ),
    ("itb.models.BatteryModel.__init__", "non_critical_tone"): lambda v: battery(
        non_critical_tone=v
    ),
    ("itb.models.BatteryModel.__init__", "critical_tone"): lambda v: battery(critical_tone=v),
    ("itb.export.timeseries", "every"): lambda v: itb.export.timeseries(
        scenario(), v, until=scenario().start + timedelta(days=1)
    ),
    ("itb.scenario.run.ScenarioResult.timeseries", "every"): lambda v: (
        scenario().run(until=timedelta(days=1)).timeseries(v)
    ),
    ("itb.scenario.run.Scenario.run", "until"): lambda v: scenario().run(until=v),
    ("itb.scenario.run.Scenario.steps", "until"): lambda v: list(scenario().steps(until=v)),
    ("itb.scenario.run.Scenario.stroke_times", "until"): lambda v: scenario().stroke_times(until=v),
    ("itb.plots.figure", "every"): lambda v: _plot(every=v),
    ("itb.plots.figure", "dose_window"): lambda v: _plot(dose_window=v),
    ("itb.plots.plot_result", "every"): lambda v: _plot(every=v),
    ("itb.plots.plot_result", "dose_window"): lambda v: _plot(dose_window=v),
    ("itb.plots.default_every", "span"): lambda v: _default_every(v),
    ("itb.plots.resolution", "span"): lambda v: _resolution(v),
    ("itb.plots.pump_history_figure", "every"): lambda v: _history(every=v),
    ("itb.plots.pump_history_figure", "dose_window"): lambda v: _history(dose_window=v),
    ("itb.plots.plot_pump_history", "every"): lambda v: _history(every=v),
    ("itb.plots.plot_pump_history", "dose_window"): lambda v: _history(dose_window=v),
    ("itb.interop.fhir.bundle", "utc_offset"): lambda v: _interop("fhir", v),
    ("itb.interop.hl7v2.messages", "utc_offset"): lambda v: _interop("hl7v2", v),
    ("itb.hardware.metrology.evaporation_rate", "elapsed"): lambda v: _hw().evaporation_rate(
        [timedelta(0), v], [1.0, 0.9], 0.01
    ),
    ("itb.hardware.balance.base.LineLink.__init__", "timeout"): lambda v: _bal().LineLink(None, v),
    ("itb.hardware.balance.base.open_port", "timeout"): lambda v: (
        _bal().open_port("loop://", timeout=v).close()
    ),
    ("itb.hardware.balance.sics.SicsBalance.__init__", "timeout"): lambda v: _bal().SicsBalance(
        None, v
    ),
    ("itb.hardware.balance.sbi.SbiBalance.__init__", "timeout"): lambda v: _bal().SbiBalance(
        None, v
    ),
    ("itb.hardware.balance.sbi.SbiBalance.__init__", "poll"): lambda v: _bal().SbiBalance(
        None, poll=v
    ),
    ("itb.hardware.accuracy.GravimetricRun.__init__", "elapsed"): lambda v: _acc().GravimetricRun(
        [timedelta(0), v], [0.0, 1.0], 0.01
    ),
    ("itb.hardware.accuracy.trumpet_curve", "windows"): lambda v: _acc().trumpet_curve(
        _acc_run(), 1.0, [v], timedelta(minutes=1)
    ),
    ("itb.hardware.accuracy.trumpet_curve", "sample_interval"): lambda v: _acc().trumpet_curve(
        _acc_run(), 1.0, [timedelta(minutes=30)], v
    ),
    ("itb.hardware.accuracy.trumpet_curve", "period"): lambda v: _acc().trumpet_curve(
        _acc_run(), 1.0, [timedelta(minutes=2)], timedelta(minutes=1), (timedelta(0), v)
    ),
    ("itb.hardware.accuracy.low_flow_curve", "windows"): lambda v: _acc().low_flow_curve(
        _acc_run(), 1.2, 0.2, _TAUS, [v], timedelta(hours=1)
    ),
    ("itb.hardware.accuracy.low_flow_curve", "exclude"): lambda v: _acc().low_flow_curve(
        _acc_run(), 1.2, 0.2, _TAUS, [timedelta(hours=1)], v
    ),
    ("itb.hardware.accuracy.low_flow_curve", "stroke_times"): lambda v: _acc().low_flow_curve(
        _acc_run(), 1.2, 0.2, [v, *_TAUS], [timedelta(hours=1)], M30
    ),
    ("itb.hardware.accuracy.startup_curve", "period"): lambda v: _acc().startup_curve(
        _acc_run(), 1.0, v
    ),
    ("itb.hardware.report.build_report", "windows"): lambda v: _report(windows=[v]),
    ("itb.hardware.report.build_report", "exclude"): lambda v: _report(exclude=v),
    ("itb.hardware.accuracy.run_emulated", "duration"): lambda v: _acc().run_emulated(v),
    ("itb.hardware.accuracy.run_emulated", "sample_interval"): lambda v: _acc().run_emulated(
        timedelta(hours=1), sample_interval=v
    ),
    ("itb.hardware.accuracy.run_emulated", "blank"): lambda v: _acc().run_emulated(
        timedelta(hours=1), blank=v
    ),
    (
        "itb.hardware.balance.emulator.EmulatedBalance.__init__",
        "stability_timeout",
    ): lambda v: _emu().EmulatedBalance(stability_timeout=v),
    (
        "itb.hardware.balance.emulator.EmulatedBalance.__init__",
        "repeat_interval",
    ): lambda v: _emu().EmulatedBalance(repeat_interval=v),
    ("itb.hardware.balance.logger.log_balance", "interval"): lambda v: _log_balance(interval=v),
    ("itb.hardware.balance.logger.log_balance", "duration"): lambda v: _log_balance(duration=v),
    ("itb.analysis.trumpet", "sample_interval"): lambda v: _trumpet(
        sample_interval=v, windows=(timedelta(hours=1),)
    ),
    ("itb.analysis.trumpet", "windows"): lambda v: _trumpet(windows=(v,)),
    ("itb.hardware.client.SerialDriver.__init__", "timeout"): lambda v: importlib.import_module(
        "itb.hardware.client"
    ).SerialDriver(_NoLink(), bytes(range(32)), timeout=v),
    ("itb.interop.mllp.send", "timeout"): lambda v: _mllp_send(v),
    ("itb.cli.common.progress_callback", "delay"): lambda v: _progress(v),
}


def _trumpet(**kw: Any) -> Any:
    """A 2-hour constant flow of 1.2 mL/h sampled every 10 s."""
    t = np.arange(0.0, 7200.0 + 5, 10.0)
    return itb.analysis.trumpet(t, 1.2 * t / 3600, rate_ml_per_h=1.2, **kw)


class _NoLink:
    """An open byte stream that never answers (the driver connects on first use)."""

    def read(self, n: int) -> bytes:
        return b""

    def write(self, data: bytes) -> int:
        return len(data)


def _mllp_send(timeout: Any) -> Any:
    from itb.interop import mllp

    with mllp.Receiver() as rx:
        return mllp.send([], "127.0.0.1", rx.port, timeout=timeout)


def _progress(delay: Any) -> None:
    from itb.cli.common import progress_callback

    with progress_callback("x", delay=delay):
        pass


#: Duration parameters with another rule, and why.
EXEMPT = {
    "itb.pump.Bolus.__init__": "a result record built by itb, not an input",
    "itb.pump.BolusPlan.__init__": "a result record built by itb, not an input",
    "itb.clinical.ScreeningDose.__init__": "a result record built by itb, not an input",
    "itb.clinical.clinic.ClinicVisit.__init__": "a result record built by itb, not an input",
    "itb.clinical.initial_daily_dose": "effect_hours: the parameter's name states its unit",
    "itb.testing.": "device_* hooks and asserts a test suite implements or calls with its own values",
    "itb.strategies.": "hypothesis strategy arguments: InvalidArgument (tests/test_strategies.py)",
    "itb.hardware.accuracy.WindowError.": "a result record built by itb, not an input",
    "itb.hardware.accuracy.AccuracyCurve.": "a result record built by itb, not an input",
    "itb.hardware.accuracy.StartupCurve.": "a result record built by itb, not an input",
    "itb.hardware.accuracy.EmulatedAccuracyRun.": "a result record built by itb, not an input",
    "itb.interop.fhir.": "utc_offset: a signed offset from UTC, not a duration (timedelta only, ±14 h)",
    "itb.interop.hl7v2.": "utc_offset: a signed offset from UTC, not a duration (timedelta only, ±14 h)",
}


def _plot(**kw: Any) -> Any:
    pytest.importorskip("matplotlib")
    import itb.plots

    result = scenario().run(until=timedelta(days=2))
    return itb.plots.figure(result, **kw)


def _interop(module: str, offset: Any) -> Any:
    pytest.importorskip("fhir.resources")
    pytest.importorskip("hl7apy")
    import itb.interop.fhir
    import itb.interop.hl7v2

    result = scenario().run(until=timedelta(days=2))
    if module == "fhir":
        return itb.interop.fhir.bundle(result, utc_offset=offset, validate=False)
    return itb.interop.hl7v2.messages(result, utc_offset=offset)


def _history(**kw: Any) -> Any:
    pytest.importorskip("matplotlib")
    import itb.plots

    pump = scenario().run(until=timedelta(hours=1)).pump
    return itb.plots.pump_history_figure(pump, pump.now + timedelta(days=2), **kw)


def _resolution(span: Any) -> Any:
    import itb.plots

    return itb.plots.resolution(span)


def _default_every(span: Any) -> Any:
    import itb.plots

    return itb.plots.default_every(span)


def duration_parameters() -> set[tuple[str, str]]:
    """Every (qualified name, parameter) of the public package annotated as a duration."""
    found: set[tuple[str, str]] = set()
    for info in pkgutil.walk_packages(itb.__path__, "itb."):
        if "._" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (e.g. pyserial) that is not installed
            continue
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            members = [(name, obj)] if inspect.isfunction(obj) else []
            if inspect.isclass(obj):
                members = [
                    (f"{name}.{k}", getattr(v, "__func__", v))
                    for k, v in vars(obj).items()
                    if (not k.startswith("_") or k == "__init__")
                    and callable(getattr(v, "__func__", v))
                ]
            for qual, fn in members:
                try:
                    params = inspect.signature(fn).parameters.values()
                except (TypeError, ValueError):
                    continue
                for p in params:
                    if any(w in str(p.annotation) for w in ("timedelta", "Duration")):
                        found.add((f"{module.__name__}.{qual}", p.name))
    return found


def test_every_duration_parameter_is_covered() -> None:
    found = duration_parameters()
    assert len(found) > 20  # the walk sees the package
    missing = sorted(
        k for k in found if k not in CALLS and not any(k[0].startswith(e) for e in EXEMPT)
    )
    assert not missing, f"duration parameters without a rule test: {missing}"
    assert set(CALLS) <= found  # no stale entries


BARE = [30, 30.0, 0, True, False, np.int64(30), np.float64(30.0), "PT30M", "30min"]


@pytest.mark.parametrize("key", sorted(CALLS), ids="{0[0]}:{0[1]}".format)
def test_a_duration_is_never_a_bare_number(key: tuple[str, str]) -> None:
    call = CALLS[key]
    valid = timedelta(days=3650) if key[1] in ("until", "horizon", "stability") else M30
    call(valid)
    call(np.timedelta64(valid))  # numpy's duration too
    for bad in BARE:
        with pytest.raises(itb.ValidationError) as err:
            call(bad)
        assert err.value.field.split("[")[0] == key[1], (bad, err.value)
        if not isinstance(bad, str) and type(bad) not in (bool, np.bool_):
            assert "timedelta(" in str(err.value) or "bare number" in str(err.value), bad


def test_durations_beyond_the_clock_are_refused_not_overflowed() -> None:
    span = timedelta(milliseconds=_time.MAX_DURATION_MS)
    for bad in (span + timedelta(milliseconds=1), timedelta(days=999_999_999)):
        with pytest.raises(itb.ValidationError, match="whole span") as err:
            pump().bolus(50.0, bad)
        assert err.value.field == "duration"
        assert "P3652058DT23H59M59.999S" in str(err.value)
    # the longest accepted bolus runs exactly: 25 000 nL at 1 nL/day (ceil(V·day/T)) from 10:00
    p = pump()
    p.bolus(50.0, span, start=datetime(2026, 1, 5, 10))
    (bolus,) = p.boluses
    assert (bolus.volume_nl, bolus.rate_nl_per_day) == (25_000, 1)
    assert bolus.end == datetime(2026, 1, 5, 10) + timedelta(days=25_000)
    assert bolus.end == datetime(2094, 6, 17, 10)


def test_duration_errors_say_what_was_given_in_iso() -> None:
    with pytest.raises(itb.ValidationError) as err:
        pump().bolus(50.0, timedelta(0))
    assert str(err.value) == (
        "duration: PT0S is zero; it must be at least 1 ms (allowed: PT0.001S to "
        "P3652058DT23H59M59.999S)"
    )
    with pytest.raises(itb.ValidationError) as err:
        pump().bolus(50.0, 30)
    assert "timedelta(minutes=30)" in str(err.value) and "datetime.timedelta" not in str(err.value)


# ----- the examples ---------------------------------------------------------------


def test_project_with_a_number_is_refused() -> None:
    with pytest.raises(itb.ValidationError, match="horizon: got the bare number 3650"):
        pump().project(3650)
    assert pump().project(timedelta(days=3650)).low_reservoir == datetime(2026, 7, 14, 8)


def test_plan_refill_margin_number_is_refused() -> None:
    with pytest.raises(itb.ValidationError) as err:
        itb.clinical.plan_refill(pump(), margin=7)
    assert err.value.field == "margin"


def test_bolus_duration_number_blames_duration_not_dose() -> None:
    with pytest.raises(itb.ValidationError) as err:
        pump().bolus(50, duration=30)
    assert err.value.field == "duration" and "dose_ug" not in str(err.value)


# ----- text: scenario files and the command line --------------------------------------------


@pytest.mark.parametrize(
    "text, ms",
    [
        ("PT30M", 1_800_000),
        ("P1DT2H", 93_600_000),
        ("PT0.5S", 500),
        ("P2W", 1_209_600_000),
        ("PT1H30.5M", 5_430_000),
        ("pt1m", 60_000),
        ("PT0S", 0),
        ("P3652058DT23H59M59.999S", _time.MAX_DURATION_MS),
    ],
)
def test_iso_durations(text: str, ms: int) -> None:
    assert _time.parse_iso_duration(text) == ms
    assert _time.parse_duration_text(text) == ms


@pytest.mark.parametrize(
    "text, why",
    [
        ("P1M", "months and years"),
        ("P1Y", "months and years"),
        ("P1000000000D", "whole span"),
        ("P99999999D", "whole span"),
        ("PT0.0001S", "whole number of milliseconds"),
        ("PT1.5H30M", "smallest part"),
        ("-PT1M", "not an ISO 8601"),
        ("P", "not an ISO 8601"),
        ("PT", "not an ISO 8601"),
        ("P1DT", "not an ISO 8601"),
        ("30 minutes", "not an ISO 8601"),
    ],
)
def test_bad_iso_durations(text: str, why: str) -> None:
    with pytest.raises(_time.DurationError, match=why):
        _time.parse_iso_duration(text)


@pytest.mark.parametrize(
    "text, ms",
    [
        ("7d", 604_800_000),
        ("30min", 1_800_000),
        ("90s", 90_000),
        ("500ms", 500),
        ("1.5h", 5_400_000),
        ("2w", 1_209_600_000),
        ("3 days", 259_200_000),
        ("P7D", 604_800_000),
    ],
)
def test_command_line_durations(text: str, ms: int) -> None:
    assert _time.parse_duration_text(text) == ms


@pytest.mark.parametrize(
    "text, why",
    [
        ("7", "bare number"),
        ("0.5", "bare number"),
        ("30m", "ambiguous"),
        ("1y", "ambiguous"),
        ("7parsecs", "unknown unit"),
        ("0.0001s", "whole number of milliseconds"),
        ("99999999999d", "whole span"),
        ("seven days", "not a duration"),
    ],
)
def test_bad_command_line_durations(text: str, why: str) -> None:
    with pytest.raises(_time.DurationError, match=why):
        _time.parse_duration_text(text)


@given(st.integers(0, _time.MAX_DURATION_MS))
def test_iso_text_round_trips_exactly(ms: int) -> None:
    text = _time.format_duration_ms(ms)
    assert _time.parse_iso_duration(text) == ms
    assert _time.parse_duration_text(text) == ms
    assert parse_duration(text) == timedelta(milliseconds=ms)


@given(st.integers(_time.MAX_DURATION_MS + 1, 10**30))
def test_iso_text_beyond_the_clock_is_refused(ms: int) -> None:
    with pytest.raises(_time.DurationError, match="whole span"):
        _time.parse_iso_duration(_time.format_duration_ms(ms))


def duration_keys() -> list[tuple[str, str]]:
    """(do or table, key) of every duration key of scenario files, from the schema's models."""
    keys = []
    for owner, cls in [*ACTIONS.items(), ("battery", BatterySpec)]:
        for key, field in cls.model_fields.items():
            if "timedelta" in str(field.annotation):
                keys.append((owner, key))
    return keys


BASE = """\
[pump]
model = "SYNCHROMED_II_40"
start = 2026-01-05T08:00:00
reservoir_ml = 40.0
concentration_ug_per_ml = 2000
program = { kind = "continuous", ug_per_day = 400.0 }
"""


def with_duration(owner: str, key: str, value: str) -> str:
    if owner == "battery":
        return BASE.replace(
            'model = "SYNCHROMED_II_40"',
            f'model = {{ preset = "SYNCHROMED_II_40", battery = {{ preset = "NOMINAL", {key} = {value} }} }}',
        )
    extra = {
        "bolus": 'dose_ug = 50.0\nduration = "PT30M"\n',
        "set_patient_bolus_limits": 'dose_ug = 25.0\nduration = "PT10M"\n',
    }
    body = extra.get(owner, "")
    lines = [ln for ln in body.splitlines() if not ln.startswith(f"{key} =")]
    lines.append(f"{key} = {value}")
    return (
        BASE
        + f'\n[[actions]]\nat = 2026-01-05T10:00:00\ndo = "{owner}"\n'
        + "\n".join(lines)
        + "\n"
    )


def test_scenario_duration_keys_are_found() -> None:
    assert set(duration_keys()) >= {
        ("bolus", "duration"),
        ("set_patient_bolus_limits", "duration"),
        ("set_patient_bolus_limits", "lockout"),
        ("battery", "non_critical_tone"),
        ("battery", "critical_tone"),
    }


@pytest.mark.parametrize("owner, key", duration_keys())
def test_scenario_durations_are_iso_strings(owner: str, key: str) -> None:
    sc.loads(with_duration(owner, key, '"PT30M"'))  # valid
    for value, why in [
        ("30", "'PT30S' (30 seconds)"),
        ("0.5", "bare number"),
        ("true", "bool is never a duration"),
        ('"P1M"', "months and years"),
        ('"P1000000000D"', "whole span"),
        ('"-PT1M"', "not an ISO 8601"),
        ("nan", "not a duration"),
        ("inf", "not a duration"),
    ]:
        with pytest.raises(sc.ScenarioError) as err:
            sc.loads(with_duration(owner, key, value), source="x.toml")
        assert err.value.field.endswith(key) and err.value.line is not None, value
        assert why in str(err.value), (value, str(err.value))


def test_huge_scenario_duration_is_a_scenario_error_with_the_line() -> None:
    text = with_duration("bolus", "duration", '"P1000000000D"')
    with pytest.raises(sc.ScenarioError) as err:
        sc.loads(text, source="big.toml")
    assert (err.value.entry, err.value.field, err.value.line) == ("actions[0]", "duration", 12)
    assert str(err.value).startswith("big.toml:12: actions[0].duration: P1000000000D is longer")
    assert "P3652058DT23H59M59.999S" in str(err.value)


def test_pt0s_message_is_in_iso_not_a_python_repr() -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.loads(with_duration("bolus", "duration", '"PT0S"'), source="z.toml")
    assert "datetime.timedelta" not in str(err.value) and "PT0S" in str(err.value)


# ----- command-line options ------------------------------------------------------------------


def duration_options() -> list[tuple[list[str], str]]:
    """(command path, option) of every command-line option whose type is a duration."""
    from itb.cli import common as _cli_common
    from itb.cli import rig

    kinds = (
        _cli_common.duration,
        _cli_common.positive_duration,
        _cli_common.when,
        rig._seconds,
        rig._durations,  # comma-separated durations (--windows)
    )
    return [(p, a.option_strings[-1]) for p, a in _all_options() if a.type in kinds]


def _all_options() -> list[tuple[list[str], argparse.Action]]:
    from itb.cli.app import _parser

    out = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.option_strings and action.help != argparse.SUPPRESS:
                out.append((path, action))

    walk(_parser(), [])
    return out


#: Options whose name sounds like a duration but that take something else, and why.
NOT_DURATIONS = {
    ("trumpet", "--period"): "START,END on the data file's own time_s axis (instants, in s)",
    ("rig run", "--speed"): "a speed factor (pump ms per real ms), not a duration",
}
_DURATION_WORDS = ("duration", "interval", "timeout", "lockout", "window", "margin", "horizon")
_DURATION_WORDS += ("every", "period", "delay", "stability", "exclude", "blank", "until", "speed")


def test_every_duration_sounding_option_takes_a_duration() -> None:
    """An option named like a duration is read by the duration parser (a bare number refused),
    unless listed with its reason: nothing on the command line takes seconds or minutes bare."""
    typed = {(" ".join(p), o) for p, o in duration_options()}
    sounding = {
        (" ".join(p), a.option_strings[-1])
        for p, a in _all_options()
        if any(w in a.dest for w in _DURATION_WORDS) and a.nargs != 0
    }
    assert sounding, "the walk sees the parser"
    untyped = sorted(k for k in sounding - typed if k not in NOT_DURATIONS)
    assert not untyped, f"duration options that take a bare number: {untyped}"
    assert set(NOT_DURATIONS) <= sounding  # no stale entries


def test_trumpet_windows_and_sample_interval_take_durations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from itb.cli import main

    t = np.arange(0.0, 7200.0 + 5, 30.0)
    data = tmp_path / "flow.csv"
    data.write_text("time_s,cumulative_ml\n" + "".join(f"{a},{1.2 * a / 3600}\n" for a in t))
    args = ["trumpet", str(data), "--rate", "1.2", "--json"]
    assert main([*args, "--windows", "2min,PT5M", "--sample-interval", "30s"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["windows_min"] == [2.0, 5.0] and out["sample_interval_s"] == 30.0
    assert main([*args, "--windows", "90s", "--sample-interval", "PT0.5M"]) == 0
    assert json.loads(capsys.readouterr().out)["windows_min"] == [1.5]
    for option, bad in [("--windows", "2,5"), ("--windows", "2min,5"), ("--sample-interval", "30")]:
        assert main([*args, option, bad]) == 2
        err = capsys.readouterr().err
        assert option in err and "bare number" in err, err
    # a window that is not a whole number of intervals names the window and the nearest fits
    assert main([*args, "--windows", "2min,45s", "--sample-interval", "30s"]) == 2
    assert "windows[1]: PT45S is not a whole number of PT30S" in capsys.readouterr().err


def test_rig_limits_minute_options_were_replaced_by_durations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from itb.cli import main

    base = ["rig", "limits", "--port", "loop://", "--key-file", "k", "--dose-ug", "25"]
    for old, new in (("--duration-min", "--duration"), ("--lockout-min", "--lockout")):
        assert main([*base, old, "10"]) == 2
        assert f"{new} 10min" in capsys.readouterr().err


def test_command_line_duration_options_are_found() -> None:
    found = {(" ".join(p), o) for p, o in duration_options()}
    assert {("plan-refill", "--margin"), ("project", "--horizon"), ("run", "--every")} <= found
    assert {("rig status", "--timeout"), ("rig measure", "--interval")} <= found


@pytest.mark.parametrize("path, option", duration_options(), ids=lambda x: str(x))
def test_command_line_durations_need_a_unit(
    path: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from itb.cli import main

    code = main([*path, option, "7"])
    err = capsys.readouterr().err
    assert code == 2 and option in err and "bare number" in err and "7d" in err, err


def test_plan_refill_margin_seven_is_refused_and_7d_is_seven_days(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from itb.cli import main

    toml = str(ROOT / "examples" / "adult_sci_2000.toml")
    assert main(["plan-refill", toml, "--margin", "7"]) == 2
    assert "--margin" in capsys.readouterr().err
    assert main(["plan-refill", toml, "--margin", "7d", "--json"]) == 0
    by_text = json.loads(capsys.readouterr().out)
    assert main(["plan-refill", toml, "--margin", "P7D", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_text


# ----- bools ------------------------------------------------------------------------------------


def test_a_number_is_never_a_bool_in_python() -> None:
    for bad in (1, 0, 1.0, "yes", None):
        with pytest.raises(itb.ValidationError) as err:
            pump(path_primed=bad)
        assert err.value.field == "path_primed"
        with pytest.raises(itb.ValidationError) as err:
            pump().project(timedelta(days=30), assume_refills=bad)
        assert err.value.field == "assume_refills"
        with pytest.raises(itb.ValidationError) as err:
            fleet().forecast(timedelta(days=30), assume_refills=bad)
        assert err.value.field == "assume_refills"
    assert pump(path_primed=np.bool_(False)).path_pg == 0  # saline


NUMBER_CALLS: dict[str, Callable[[Any], Any]] = {
    "reservoir_ml": lambda v: pump(reservoir_ml=v),
    "concentration_ug_per_ml": lambda v: pump(concentration_ug_per_ml=v),
    "catheter_volume_ul": lambda v: pump(catheter_volume_ul=v),
    "stroke_error_ppm": lambda v: pump(stroke_error_ppm=v),
    "now": lambda v: pump(now=v),
    "dose_ug": lambda v: pump().bolus(v, M30),
    "start": lambda v: pump().bolus(5.0, M30, v),
    "ug_per_day": lambda v: itb.Continuous(v),
    "steps[0].ug_per_day": lambda v: itb.Flex("day", [(time(0), v)]),
    "added_ml": lambda v: pump(reservoir_ml=10.0).refill(v, 2000),
    "aspirated_ml": lambda v: pump(reservoir_ml=10.0).refill(1.0, 2000, v),
    "max_per_24h": lambda v: pump().set_patient_bolus_limits(25.0, M30, M30, v),
    "bolus_id": lambda v: pump().cancel_bolus(v),
    "until": lambda v: pump().advance_to(v),
    "volume_ul": lambda v: pump().revise_catheter(v),
    "fill_ml": lambda v: itb.clinical.plan_refill(pump(), fill_ml=v),
    "vial_ml": lambda v: itb.clinical.plan_refill(pump(), vial_ml=v),
}


@pytest.mark.parametrize("field", sorted(NUMBER_CALLS))
@pytest.mark.parametrize("bad", [True, False, np.bool_(True)])
def test_a_bool_is_never_a_number_in_python(field: str, bad: Any) -> None:
    with pytest.raises(itb.ValidationError) as err:
        NUMBER_CALLS[field](bad)
    assert err.value.field == field


@pytest.mark.parametrize(
    "key", ["reservoir_ml", "concentration_ug_per_ml", "catheter_volume_ul", "stroke_error_ppm"]
)
def test_a_bool_is_never_a_number_in_scenario_files(key: str) -> None:
    text = (
        BASE + f"{key} = true\n"
        if key not in BASE
        else BASE.replace(
            next(ln for ln in BASE.splitlines() if ln.startswith(key)), f"{key} = true"
        )
    )
    with pytest.raises(sc.ScenarioError) as err:
        sc.loads(text, source="b.toml")
    assert err.value.field == key and "bool is never a number" in str(err.value)


def test_scenario_numbers_refuse_text_and_yes_no_refuses_numbers() -> None:
    for text, field, why in [
        (BASE.replace("reservoir_ml = 40.0", 'reservoir_ml = "40"'), "reservoir_ml", "a string"),
        (BASE + "path_primed = 1\n", "path_primed", "expected true or false"),
        (BASE.replace("= 2000\n", "= 2000.5\n"), "concentration_ug_per_ml", "whole number"),
        (BASE.replace("reservoir_ml = 40.0", "reservoir_ml = nan"), "reservoir_ml", "finite"),
    ]:
        with pytest.raises(sc.ScenarioError) as err:
            sc.loads(text)
        assert err.value.field == field and why in str(err.value), str(err.value)
    # a whole float is a whole number, as itb.Pump takes it
    assert sc.loads(BASE.replace("= 2000\n", "= 2000.0\n")).pump().concentration_ug_per_ml == 2000
