"""Fault-injection grammar for the simulators (the ``fault=`` values of a sim URL).

One fault per value::

    KIND@START[+DURATION][:KEY=VALUE[,KEY=VALUE...]]

``START`` and ``DURATION`` are a non-negative number with a unit, ``ms``, ``s``
or ``m`` (``250ms``, ``90s``, ``1.5m``); ``START`` counts from the simulator's
creation on its clock; without ``DURATION`` the fault lasts forever. Values are
decimal numbers. Because a URL query decodes ``+`` to a space, a single space
is accepted in place of the ``+`` (write ``%2B`` in a URL to be explicit).

:func:`parse_fault` turns a value into a :class:`FaultSpec` with every
parameter of its kind filled in (defaults for those not given), or raises
ValueError naming the text and what is wrong. :func:`format_fault` is its
inverse: ``parse_fault(format_fault(spec)) == spec`` for every valid spec.
What each kind does is the firmware's business (see ``rf_firmware.py`` and
docs/simulators.md); this module only knows names, parameters and ranges.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_TIME_RE = re.compile(rf"({_NUMBER})(ms|s|m)")
_VALUE_RE = re.compile(rf"[+-]?{_NUMBER}")
_UNIT_DIVISOR = {"ms": 1000.0, "s": 1.0}  # division keeps 300ms == 0.3 exactly
_UNIT_FACTOR = {"m": 60.0}


@dataclass(frozen=True)
class ParamRule:
    """One parameter of a fault kind: its default and the values it accepts."""

    default: float
    check: Callable[[float], bool]
    accepts: str  # human description for error messages


def _is_sensor(value: float) -> bool:
    return value in (1.0, 2.0)


KINDS: dict[str, dict[str, ParamRule]] = {
    "sensor_open": {"sensor": ParamRule(1.0, _is_sensor, "1 or 2")},
    "sensor_stuck": {"sensor": ParamRule(1.0, _is_sensor, "1 or 2")},
    "sensor_drift": {
        "sensor": ParamRule(2.0, _is_sensor, "1 or 2"),
        "rate": ParamRule(-0.3, math.isfinite, "any number of degC per s"),
    },
    "runaway": {
        "gain": ParamRule(6.0, lambda v: v > 0, "a number above 0"),
        "floor_w": ParamRule(25.0, lambda v: v >= 0, "a number of W, 0 or more"),
    },
    "no_reply": {},
    "garble": {"rate": ParamRule(0.3, lambda v: 0.0 <= v <= 1.0, "a probability, 0 to 1")},
    "contact_loss": {},
    "reset": {},
    # IPL: the photodiode reads far from the set fluence (lamp or capacitor fault).
    "misfire": {"factor": ParamRule(0.5, lambda v: v >= 0, "a factor of the set fluence, >= 0")},
    # LED: a string of LEDs fails open; irradiance collapses to a fraction of the setpoint.
    "led_string_fail": {
        "factor": ParamRule(0.2, lambda v: 0.0 <= v <= 1.0, "a fraction of the setpoint, 0 to 1")
    },
    # LED: the current driver regulates off its setpoint (a drifted sense resistor);
    # irradiance settles to gain x the setpoint, with no fault bit.
    "led_overdrive": {"gain": ParamRule(1.19, lambda v: v > 0, "a number above 0")},
}
"""Every fault kind and its parameters, in canonical order, with defaults."""

DEVICE_KINDS: dict[str, tuple[str, ...]] = {
    "rf": (
        "sensor_open",
        "sensor_stuck",
        "sensor_drift",
        "runaway",
        "no_reply",
        "garble",
        "contact_loss",
        "reset",
    ),
    "ipl": (
        "sensor_open",
        "sensor_stuck",
        "no_reply",
        "garble",
        "contact_loss",
        "reset",
        "misfire",
    ),
    "led": (
        "sensor_open",
        "sensor_stuck",
        "sensor_drift",
        "no_reply",
        "garble",
        "contact_loss",
        "reset",
        "led_string_fail",
        "led_overdrive",
    ),
}
"""The kinds each simulator implements; for the LED canopy ``contact_loss`` is the
distance interlock opening, for the IPL handpiece the crystal leaving the skin."""


@dataclass(frozen=True)
class FaultSpec:
    """One injected fault: what, when (seconds after creation), how long, with what.

    ``params`` holds every parameter of the kind in canonical order, defaults
    filled in, so two texts that mean the same fault give equal specs.
    ``duration_s`` None means the fault lasts forever.
    """

    kind: str
    start_s: float
    duration_s: float | None = None
    params: tuple[tuple[str, float], ...] = ()

    def param(self, key: str) -> float:
        """The value of parameter ``key``; KeyError if the kind has no such parameter."""
        for name, value in self.params:
            if name == key:
                return value
        raise KeyError(f"fault {self.kind!r} has no parameter {key!r}")

    @property
    def end_s(self) -> float | None:
        """When the fault ends (seconds after creation), None if it never does."""
        return None if self.duration_s is None else self.start_s + self.duration_s

    def __str__(self) -> str:
        return format_fault(self)


def _bad(text: str, what: str) -> ValueError:
    return ValueError(f"bad fault {text!r}: {what}")


def _parse_time_s(text: str, part: str, what: str) -> float:
    match = _TIME_RE.fullmatch(part)
    if match is None:
        raise _bad(text, f"{what} {part!r} is not a number with a unit ms, s or m (e.g. 250ms)")
    number, unit = float(match.group(1)), match.group(2)
    value_s = number * _UNIT_FACTOR[unit] if unit == "m" else number / _UNIT_DIVISOR[unit]
    if not math.isfinite(value_s):
        raise _bad(text, f"{what} {part!r} is not finite")
    return value_s


def parse_fault(text: str, device: str | None = None) -> FaultSpec:
    """Parse ``KIND@START[+DURATION][:KEY=VALUE,...]``; ValueError saying what is wrong.

    With ``device`` ("rf", "ipl", "led"), only the kinds that simulator
    implements are accepted.
    """
    kind, at, rest = text.partition("@")
    if not at:
        raise _bad(text, "expected KIND@START[+DURATION][:KEY=VALUE,...] (no '@')")
    known = DEVICE_KINDS[device] if device is not None else tuple(KINDS)
    if kind not in known:
        where = f" for the {device} simulator" if device is not None else ""
        raise _bad(text, f"unknown kind {kind!r}{where} (known kinds: {', '.join(known)})")
    timing, colon, params_text = rest.partition(":")
    start_text, plus, duration_text = timing.replace(" ", "+", 1).partition("+")
    start_s = _parse_time_s(text, start_text, "start")
    duration_s: float | None = None
    if plus:
        duration_s = _parse_time_s(text, duration_text, "duration")
        if duration_s <= 0:
            raise _bad(text, f"duration {duration_text!r} must be above zero")
    rules = KINDS[kind]
    given: dict[str, float] = {}
    if colon:
        if not rules:
            raise _bad(text, f"{kind} takes no parameters")
        for item in params_text.split(","):
            key, eq, value_text = item.partition("=")
            if not eq:
                raise _bad(text, f"parameter {item!r} is not KEY=VALUE")
            if key not in rules:
                raise _bad(
                    text, f"unknown parameter {key!r} for {kind} (allowed: {', '.join(rules)})"
                )
            if key in given:
                raise _bad(text, f"parameter {key!r} given twice")
            if _VALUE_RE.fullmatch(value_text) is None:
                raise _bad(text, f"{key}={value_text!r} is not a decimal number")
            value = float(value_text)
            if not (math.isfinite(value) and rules[key].check(value)):
                raise _bad(text, f"{key}={value_text} is out of range ({rules[key].accepts})")
            given[key] = value
    params = tuple((key, given.get(key, rule.default)) for key, rule in rules.items())
    return FaultSpec(kind=kind, start_s=start_s, duration_s=duration_s, params=params)


def format_fault(spec: FaultSpec) -> str:
    """The canonical text of ``spec`` (times in seconds, every parameter written)."""
    text = f"{spec.kind}@{spec.start_s!r}s"
    if spec.duration_s is not None:
        text += f"+{spec.duration_s!r}s"
    if spec.params:
        text += ":" + ",".join(f"{key}={value!r}" for key, value in spec.params)
    return text


def parse_faults(texts: list[str] | tuple[str, ...], device: str | None = None) -> list[FaultSpec]:
    """Parse several ``fault=`` values, in order (the first bad one raises)."""
    return [parse_fault(text, device) for text in texts]
