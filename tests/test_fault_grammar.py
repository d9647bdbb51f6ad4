"""The fault grammar: KIND@START[+DURATION][:KEY=VALUE,...]."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicectl_simulators.faults import KINDS, FaultSpec, format_fault, parse_fault, parse_faults


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no_reply@2s", FaultSpec("no_reply", 2.0, None, ())),
        ("no_reply@250ms+1.5s", FaultSpec("no_reply", 0.25, 1.5, ())),
        ("reset@1.5m", FaultSpec("reset", 90.0, None, ())),
        ("contact_loss@300ms+2m", FaultSpec("contact_loss", 0.3, 120.0, ())),
        ("sensor_open@1s", FaultSpec("sensor_open", 1.0, None, (("sensor", 1.0),))),
        ("sensor_open@1s:sensor=2", FaultSpec("sensor_open", 1.0, None, (("sensor", 2.0),))),
        ("sensor_stuck@0s", FaultSpec("sensor_stuck", 0.0, None, (("sensor", 1.0),))),
        (
            "sensor_drift@5s",
            FaultSpec("sensor_drift", 5.0, None, (("sensor", 2.0), ("rate", -0.3))),
        ),
        (
            "sensor_drift@5s+10s:rate=0.5,sensor=1",
            FaultSpec("sensor_drift", 5.0, 10.0, (("sensor", 1.0), ("rate", 0.5))),
        ),
        ("runaway@10s", FaultSpec("runaway", 10.0, None, (("gain", 6.0), ("floor_w", 25.0)))),
        (
            "runaway@10s+5s:gain=3,floor_w=10.5",
            FaultSpec("runaway", 10.0, 5.0, (("gain", 3.0), ("floor_w", 10.5))),
        ),
        ("garble@0ms", FaultSpec("garble", 0.0, None, (("rate", 0.3),))),
        ("garble@1s:rate=1", FaultSpec("garble", 1.0, None, (("rate", 1.0),))),
        # A URL query decodes "+" to a space: accepted in its place.
        ("no_reply@2s 3s", FaultSpec("no_reply", 2.0, 3.0, ())),
    ],
)
def test_examples_parse(text: str, expected: FaultSpec) -> None:
    assert parse_fault(text) == expected


def test_spec_helpers() -> None:
    spec = parse_fault("runaway@10s+5s:gain=3")
    assert spec.param("gain") == 3.0
    assert spec.param("floor_w") == 25.0
    assert spec.end_s == 15.0
    assert parse_fault("reset@1s").end_s is None
    with pytest.raises(KeyError):
        spec.param("rate")
    assert parse_fault(str(spec)) == spec


def test_parse_faults_keeps_order() -> None:
    specs = parse_faults(["reset@1s", "no_reply@2s"])
    assert [s.kind for s in specs] == ["reset", "no_reply"]


@pytest.mark.parametrize(
    ("text", "message_parts"),
    [
        ("runaway", ["no '@'"]),
        ("explode@1s", ["unknown kind 'explode'", "sensor_open", "runaway", "reset"]),
        ("Runaway@1s", ["unknown kind"]),
        ("runaway@1", ["start '1'", "ms, s or m"]),
        ("runaway@1h", ["start '1h'"]),
        ("runaway@-1s", ["start '-1s'"]),
        ("runaway@s", ["start 's'"]),
        ("runaway@1s+", ["duration ''"]),
        ("runaway@1s+0s", ["duration '0s' must be above zero"]),
        ("runaway@1s+2s+3s", ["duration '2s+3s'"]),
        ("runaway@1s:gain", ["'gain' is not KEY=VALUE"]),
        ("runaway@1s:power=3", ["unknown parameter 'power'", "allowed: gain, floor_w"]),
        ("runaway@1s:gain=0", ["gain=0 is out of range"]),
        ("runaway@1s:gain=abc", ["gain='abc' is not a decimal number"]),
        ("runaway@1s:gain=nan", ["is not a decimal number"]),
        ("runaway@1s:gain=inf", ["is not a decimal number"]),
        ("runaway@1s:gain=2,gain=3", ["'gain' given twice"]),
        ("runaway@1s:", ["'' is not KEY=VALUE"]),
        ("sensor_open@1s:sensor=3", ["sensor=3 is out of range", "1 or 2"]),
        ("sensor_stuck@1s:sensor=1.5", ["out of range"]),
        ("garble@1s:rate=1.5", ["rate=1.5 is out of range"]),
        ("no_reply@1s:rate=1", ["no_reply takes no parameters"]),
        ("reset@1e400s", ["not finite"]),
    ],
)
def test_bad_texts_are_rejected_with_a_useful_message(text: str, message_parts: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        parse_fault(text)
    message = str(info.value)
    assert repr(text) in message
    for part in message_parts:
        assert part in message


_finite = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)
_durations = st.none() | st.floats(min_value=1e-6, max_value=1e7, allow_nan=False)
_PARAM_VALUES = {
    "sensor": st.sampled_from([1.0, 2.0]),
    "rate": st.floats(min_value=0.0, max_value=1.0),  # valid for garble and drift alike
    "gain": st.floats(min_value=1e-3, max_value=1e3),
    "factor": st.floats(min_value=0.0, max_value=1.0),  # valid for misfire and led_string_fail
    "floor_w": st.floats(min_value=0.0, max_value=1e3),
}


@st.composite
def fault_specs(draw: st.DrawFn) -> FaultSpec:
    kind = draw(st.sampled_from(sorted(KINDS)))
    params = tuple((key, draw(_PARAM_VALUES[key])) for key in KINDS[kind])
    return FaultSpec(kind, draw(_finite), draw(_durations), params)


@given(fault_specs())
def test_format_then_parse_round_trips(spec: FaultSpec) -> None:
    assert parse_fault(format_fault(spec)) == spec


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


@given(
    kind=st.sampled_from(sorted(KINDS)),
    start=st.integers(min_value=0, max_value=10**6),
    start_unit=st.sampled_from(sorted(_UNITS)),
    duration=st.none() | st.integers(min_value=1, max_value=10**6),
    duration_unit=st.sampled_from(sorted(_UNITS)),
    data=st.data(),
)
def test_hand_written_texts_parse_to_their_meaning(
    kind: str,
    start: int,
    start_unit: str,
    duration: int | None,
    duration_unit: str,
    data: st.DataObject,
) -> None:
    rules = KINDS[kind]
    keys = data.draw(st.lists(st.sampled_from(sorted(rules)), unique=True)) if rules else []
    values = {key: data.draw(_PARAM_VALUES[key]) for key in keys}
    text = f"{kind}@{start}{start_unit}"
    if duration is not None:
        text += f"+{duration}{duration_unit}"
    if values:
        text += ":" + ",".join(f"{key}={value!r}" for key, value in values.items())
    spec = parse_fault(text)
    assert spec.kind == kind
    assert spec.start_s == pytest.approx(start * _UNITS[start_unit])
    if duration is None:
        assert spec.duration_s is None
    else:
        assert spec.duration_s == pytest.approx(duration * _UNITS[duration_unit])
    for key, rule in rules.items():
        assert spec.param(key) == values.get(key, rule.default)


@given(st.text(max_size=40))
def test_arbitrary_text_either_parses_or_raises_value_error(text: str) -> None:
    try:
        spec = parse_fault(text)
    except ValueError as exc:
        assert repr(text) in str(exc)
    else:
        assert spec.kind in KINDS
        assert math.isfinite(spec.start_s) and spec.start_s >= 0
        assert parse_fault(format_fault(spec)) == spec


@given(spec=fault_specs(), junk=st.sampled_from(["x", "@", "!", "=", "-"]), data=st.data())
def test_junk_in_the_kind_or_times_is_rejected(
    spec: FaultSpec, junk: str, data: st.DataObject
) -> None:
    text = format_fault(spec)
    at = text.index("@")
    # Anywhere inside KIND@START, a stray character breaks the kind or the start time.
    position = data.draw(st.integers(min_value=0, max_value=at + 2))
    broken = text[:position] + junk + text[position:]
    with pytest.raises(ValueError):
        parse_fault(broken)


def test_each_device_accepts_only_the_kinds_its_simulator_implements() -> None:
    assert parse_fault("misfire@1s", "ipl").param("factor") == 0.5
    assert parse_fault("led_string_fail@1s", "led").param("factor") == 0.2
    with pytest.raises(ValueError, match="unknown kind 'misfire' for the rf simulator"):
        parse_fault("misfire@1s", "rf")
    with pytest.raises(ValueError, match="for the ipl simulator"):
        parse_fault("runaway@1s", "ipl")
