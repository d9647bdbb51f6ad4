"""LED: one exposure of the canopy at a wavelength, irradiance and duration.

Its controller (:mod:`.controller`), supervisor (:mod:`.supervisor`) and limits
(:mod:`.limits`), the
``led`` protocol-file step (:mod:`.step`), the runner's plan (:mod:`.plan`),
the report section (:mod:`.report`) and the console panel (:mod:`.console`),
behind one :class:`LEDModality`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from transitions import Machine

from devicectl.modalities.led import controller as led_controller
from devicectl.modalities.led import plan as led_plan
from devicectl.modalities.led import step as led_step
from devicectl.modalities.led.limits import LEDLimits
from devicectl.modalities.led.step import LEDExposureStep
from devicectl.modality import Modality, Plan, PlanRun
from devicectl.records.models import EventRecord, TracePoint

__all__ = ["LEDExposureStep", "LEDModality"]


class LEDModality(Modality):
    name: ClassVar[str] = "led"
    title: ClassVar[str] = "LED canopy"
    order: ClassVar[int] = 30
    default_driver: ClassVar[str] = "led_modbus"
    simulator: ClassVar[str] = "led"
    controller_type: ClassVar[type | None] = led_controller.LEDController
    limits_type: ClassVar[type | None] = LEDLimits
    step_type: ClassVar[type] = LEDExposureStep
    step_keys: ClassVar[tuple[str, ...]] = led_step.KEYS

    def machine(self, model: object, *, graph: bool = False) -> Machine:
        return led_controller.build_machine(model, graph=graph)

    def read_step(self, t: Any, limits: Any, memo: dict[str, Any]) -> LEDExposureStep | None:
        return led_step.read_step(t, limits, memo)

    def step_problems(self, step: Any, limits: Any, memo: dict[str, Any]) -> list[str]:
        return led_step.step_problems(step, limits, memo)

    def planned_s(self, step: Any, limits: Any) -> float:
        return led_step.planned_s(step)

    def plan(self, run: PlanRun, step: Any, progress: Any) -> Plan:
        return led_plan.plan(run, step, progress)

    def progress_line(self, controller: Any, progress: Any) -> tuple[float, str]:
        st = controller.status()
        total = st["elapsed_s"] + st["remaining_s"] or 1.0
        return st["elapsed_s"] / total, (
            f"{st['state']} {st['elapsed_s']:.0f}/{total:.0f} s dose {st['dose_j_cm2']:.1f} J/cm2"
        )

    def summary_line(self, step: Mapping[str, Any]) -> str:
        return f"{step.get('on_time_s', 0):.0f} s, {step.get('dose_j_cm2', 0):.1f} J/cm2"

    def trace_channels(self, controller: Any, reading: Any) -> list[tuple[str, float | None]]:
        return [
            ("irradiance_mw_cm2", reading.irradiance_mw_cm2),
            ("skin_c", reading.skin_temp_c),
            ("dose_j_cm2", controller.dose_j_cm2),
        ]

    def report_parts(
        self, points: list[TracePoint], events: list[EventRecord], controller_limits: Any
    ) -> list[str]:
        # The plots' library loads here, when a report is drawn: not in every
        # process that runs a session (about half a second of start-up).
        from devicectl.modalities.led import report as led_report

        return led_report.step_results(events) + led_report.dose_plot(points, events)

    def console_view(self, controller: Any, runner: Any) -> Any:
        from devicectl.modalities.led import console

        return console.view(controller)

    def view_from_status(self, status: Mapping[str, Any]) -> Any:
        from devicectl.modalities.led import console
        from devicectl.panel_generic import frozen_view

        return frozen_view(console.LEDView, status) or super().view_from_status(status)

    def render_panel(self, view: Any) -> Any:
        from devicectl.modalities.led import console

        return console.render(view)

    def energy_summary(self, controller: Any) -> str | None:
        from devicectl.modalities.led import console

        return console.energy_summary(controller)

    def console_trace(self, controller: Any) -> tuple[str, float | None] | None:
        from devicectl.modalities.led import console

        return console.trace(controller)

    def console_trace_lines(self, view: Any) -> tuple[tuple[str, float], ...]:
        from devicectl.modalities.led import console

        return console.trace_lines(view)
