"""The session runner's plan for an LED exposure: load what is left, start, wait.

The exposure so far is every LED result since the step began, so a step begun
again after a fault continues with the time that is left, never the whole.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from devicectl.errors import ControlError
from devicectl.modalities.led.controller import LEDController, LEDState
from devicectl.modalities.led.limits import LEDStep
from devicectl.modalities.led.step import LEDExposureStep
from devicectl.modality import Plan, PlanRun

LEFT_MIN_S: Final = 0.05


def plan(run: PlanRun, step: LEDExposureStep, progress: Any) -> Plan:
    led: LEDController = run.device("led")
    planned: LEDStep = step.step
    first = run.results_start(progress, "led", led.results)
    note_exposure(progress, led, first)
    remaining = planned.duration_s - progress.detail["on_time_s"]
    if remaining <= LEFT_MIN_S:
        return
    run.do("led", "load", step=replace(planned, duration_s=remaining))
    yield lambda: led.reading is not None
    yield from run.gate(progress, "start", "start LED exposure")
    run.do("led", "start", run.gated_by())
    yield lambda: led.state in (LEDState.COMPLETE, LEDState.FAULT, LEDState.ESTOP)
    note_exposure(progress, led, first)
    if led.state is not LEDState.COMPLETE:
        raise ControlError(f"led: step did not complete ({led.results[-1].outcome})")


def note_exposure(progress: Any, led: LEDController, first: int) -> None:
    """The step's exposure so far: every result since the step began (resumes too)."""
    results = led.results[first:]
    progress.detail["on_time_s"] = sum(r.on_time_s for r in results)
    progress.detail["dose_j_cm2"] = sum(r.dose_j_cm2 for r in results)
