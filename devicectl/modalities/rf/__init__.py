"""RF skin heating: zones heated one after another to a 42 degC target and held.

Its controller (:mod:`.controller`), independent supervisor (:mod:`.supervisor`)
and limits (:mod:`.limits`), the ``rf`` protocol-file step (:mod:`.step`), the runner's plan
(:mod:`.plan`), the report section (:mod:`.report`) and the console panel
(:mod:`.console`), behind one :class:`RFModality` registered as ``rf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from transitions import Machine

from devicectl.modalities.rf import controller as rf_controller
from devicectl.modalities.rf import plan as rf_plan
from devicectl.modalities.rf import step as rf_step
from devicectl.modalities.rf.limits import RFLimits
from devicectl.modalities.rf.step import RFStep
from devicectl.modality import Modality, Plan, PlanRun
from devicectl.records.models import EventRecord, TracePoint

__all__ = ["RFModality", "RFStep"]


class RFModality(Modality):
    name: ClassVar[str] = "rf"
    title: ClassVar[str] = "RF handpiece"
    order: ClassVar[int] = 10
    default_driver: ClassVar[str] = "rf_scpi"
    simulator: ClassVar[str] = "rf"
    controller_type: ClassVar[type | None] = rf_controller.RFController
    limits_type: ClassVar[type | None] = RFLimits
    step_type: ClassVar[type] = RFStep
    step_keys: ClassVar[tuple[str, ...]] = rf_step.KEYS

    def machine(self, model: object, *, graph: bool = False) -> Machine:
        return rf_controller.build_machine(model, graph=graph)

    def read_step(self, t: Any, limits: Any, memo: dict[str, Any]) -> RFStep | None:
        return rf_step.read_step(t, limits, memo)

    def step_problems(self, step: Any, limits: Any, memo: dict[str, Any]) -> list[str]:
        return rf_step.step_problems(step, limits, memo)

    def planned_s(self, step: Any, limits: Any) -> float:
        return rf_step.planned_s(step)

    def plan(self, run: PlanRun, step: Any, progress: Any) -> Plan:
        return rf_plan.plan(run, step, progress)

    def progress_line(self, controller: Any, progress: Any) -> tuple[float, str]:
        st = controller.status()
        skin = max(st["skin1_c"] or 0.0, st["skin2_c"] or 0.0)
        zones = len(progress.detail.get("zones_done", []))
        return 0.0, (
            f"zone {st['zone']} ({zones} done) {st['state']} skin {skin:4.1f} degC "
            f"CEM43 {st['cem43']:.2f}"
        )

    def milestone(self, controller: Any, progress: Any) -> str | None:
        zone = controller.zone
        return f"zone {zone.name}" if zone is not None else None

    def summary_line(self, step: Mapping[str, Any]) -> str:
        return "\n".join(
            f"{z['name']}: {z['time_to_target_s'] or 0:.0f} s to target, "
            f"peak {z['peak_c']:.1f} degC, CEM43 {z['cem43']:.2f}"
            for z in step.get("zones", [])
        )

    def trace_channels(self, controller: Any, reading: Any) -> list[tuple[str, float | None]]:
        zone = controller.zone
        return [
            ("skin1_c", reading.skin1_c),
            ("skin2_c", reading.skin2_c),
            ("power_w", controller.commanded_power_w),
            ("target_c", zone.target_c if zone is not None else None),
            ("cem43", controller.supervisor.dose.dose),
        ]

    def report_parts(
        self, points: list[TracePoint], events: list[EventRecord], controller_limits: Any
    ) -> list[str]:
        # The plots' library loads here, when a report is drawn: not in every
        # process that runs a session (about half a second of start-up).
        from devicectl.modalities.rf import report as rf_report
        from devicectl.plots import table

        parts: list[str] = []
        rows = rf_report.site_rows(events)
        if rows:
            parts.append("<h4>RF results per site (whole session)</h4>")
            parts.append(table(rf_report.SITE_COLUMNS, rows))
        return parts + rf_report.zone_plots(points, events, controller_limits)

    def console_view(self, controller: Any, runner: Any) -> Any:
        from devicectl.modalities.rf import console

        return console.view(controller, runner)

    def view_from_status(self, status: Mapping[str, Any]) -> Any:
        from devicectl.modalities.rf import console
        from devicectl.panel_generic import frozen_view

        return frozen_view(console.RFView, status) or super().view_from_status(status)

    def render_panel(self, view: Any) -> Any:
        from devicectl.modalities.rf import console

        return console.render(view)

    def energy_summary(self, controller: Any) -> str | None:
        from devicectl.modalities.rf import console

        return console.energy_summary(controller)

    def console_trace(self, controller: Any) -> tuple[str, float | None] | None:
        from devicectl.modalities.rf import console

        return console.trace(controller)

    def console_trace_lines(self, view: Any) -> tuple[tuple[str, float], ...]:
        from devicectl.modalities.rf import console

        return console.trace_lines(view)
