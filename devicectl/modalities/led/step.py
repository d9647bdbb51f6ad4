"""The LED step of a protocol file: one exposure (wavelength, irradiance, duration).

Values are checked by :meth:`LEDStep.problems`; this module adds the file's
shape (``duration_s`` or ``duration_min``, not both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from devicectl.modalities.led.limits import LEDLimits, LEDStep
from devicectl.step_table import StepTable, field_of

KEYS: Final = (
    "kind",
    "title",
    "wavelength_nm",
    "irradiance_mw_cm2",
    "duration_s",
    "duration_min",
)


@dataclass(frozen=True)
class LEDExposureStep:
    """One LED exposure (``step`` is the LED controller's own plan object)."""

    kind: ClassVar[str] = "led"
    title: str
    step: LEDStep


def read_step(t: StepTable, lim: LEDLimits, memo: dict[str, Any]) -> LEDExposureStep | None:
    """An :class:`LEDExposureStep` from its table, or None with every problem recorded."""
    title = t.text("title", default="LED")
    wavelength = t.whole("wavelength_nm")
    irradiance = t.number("irradiance_mw_cm2")
    duration_s: float | None = None
    minutes: float | None = None
    if t.has("duration_s") and t.has("duration_min"):
        t.bad |= {"duration_s", "duration_min"}
        t.problem("duration_s and duration_min: give one of them, not both")
    elif t.has("duration_min"):
        minutes = t.number("duration_min")
        duration_s = None if minutes is None else minutes * 60.0
    elif t.has("duration_s"):
        duration_s = t.number("duration_s")
    else:
        t.field_problem("duration_s", "is missing (or give duration_min)")
    if duration_s is None:
        t.bad.add("duration_s")
    probe = LEDStep(
        lim.wavelengths_nm[0] if wavelength is None else wavelength,
        0.1 if irradiance is None else irradiance,
        1.0 if duration_s is None else duration_s,
    )
    lines = probe.problems(lim)
    if minutes is not None:
        lines = [
            f"duration_min {minutes} = {p}" if field_of(p) == "duration_s" else p for p in lines
        ]
    skip = {"dose"} if {"irradiance_mw_cm2", "duration_s"} & t.bad else set()
    t.limit_lines(lines, frozenset(skip))
    if title is None or wavelength is None or irradiance is None or duration_s is None:
        return None
    return LEDExposureStep(title, LEDStep(wavelength, irradiance, duration_s))


def step_problems(step: LEDExposureStep, lim: LEDLimits, memo: dict[str, Any]) -> list[str]:
    return step.step.problems(lim)


def planned_s(step: LEDExposureStep) -> float:
    return step.step.duration_s
