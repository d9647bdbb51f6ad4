"""IPL: one pass of flashes, each on the operator's trigger, eye protection confirmed.

Its controller (:mod:`.controller`), supervisor (:mod:`.supervisor`) and limits
(:mod:`.limits`), the
``ipl`` protocol-file step (:mod:`.step`), the runner's plan (:mod:`.plan`),
the report section (:mod:`.report`) and the console panel (:mod:`.console`),
behind one :class:`IPLModality`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from transitions import Machine

from devicectl.modalities.ipl import controller as ipl_controller
from devicectl.modalities.ipl import plan as ipl_plan
from devicectl.modalities.ipl import step as ipl_step
from devicectl.modalities.ipl.limits import IPLLimits
from devicectl.modalities.ipl.step import IPLStep
from devicectl.modality import Modality, Plan, PlanRun
from devicectl.records.models import EventRecord, TracePoint

__all__ = ["IPLModality", "IPLStep"]


class IPLModality(Modality):
    name: ClassVar[str] = "ipl"
    title: ClassVar[str] = "IPL handpiece"
    order: ClassVar[int] = 20
    default_driver: ClassVar[str] = "ipl_cobs"
    simulator: ClassVar[str] = "ipl"
    sim_options: ClassVar[str] = "filter=560"
    controller_type: ClassVar[type | None] = ipl_controller.IPLController
    limits_type: ClassVar[type | None] = IPLLimits
    step_type: ClassVar[type] = IPLStep
    step_keys: ClassVar[tuple[str, ...]] = ipl_step.KEYS
    needs_person_on_real_devices: ClassVar[bool] = True

    # The console's trigger: one key press per flash, sent to the device as "fire".
    console_actions: ClassVar[tuple[tuple[str, str, str], ...]] = (("f", "fire", "Flash (F)"),)

    def machine(self, model: object, *, graph: bool = False) -> Machine:
        return ipl_controller.build_machine(model, graph=graph)

    def read_step(self, t: Any, limits: Any, memo: dict[str, Any]) -> IPLStep | None:
        return ipl_step.read_step(t, limits, memo)

    def step_problems(self, step: Any, limits: Any, memo: dict[str, Any]) -> list[str]:
        return ipl_step.step_problems(step, limits, memo)

    def planned_s(self, step: Any, limits: Any) -> float:
        return ipl_step.planned_s(step, limits)

    def plan(self, run: PlanRun, step: Any, progress: Any) -> Plan:
        return ipl_plan.plan(run, step, progress)

    def on_secure(self, run: PlanRun, controller: Any, progress: Any, action: str | None) -> None:
        # A train the session aborts mid-way counts as fired: never given twice.
        ipl_plan.note_flashes(
            run,
            progress,
            controller,
            interrupting=action == "abort" and controller.state is ipl_controller.IPLState.FIRING,
        )

    def progress_line(self, controller: Any, progress: Any) -> tuple[float, str]:
        st = controller.status()
        planned = st["flashes_planned"] or 1
        return st["flashes_done"] / planned, (
            f"{st['state']} flash {st['flashes_done']}/{st['flashes_planned']} "
            f"crystal {st['crystal_c']} degC"
        )

    def milestone(self, controller: Any, progress: Any) -> str | None:
        done = progress.detail.get("flashes_done", 0)
        return f"flash {done}" if done else None

    def summary_line(self, step: Mapping[str, Any]) -> str:
        delivered = step.get("delivered_j_cm2", [])
        if not delivered:
            return ""
        return f"{len(delivered)} flashes, {min(delivered):.1f}-{max(delivered):.1f} J/cm2"

    def trace_channels(self, controller: Any, reading: Any) -> list[tuple[str, float | None]]:
        return [
            ("crystal_c", reading.crystal_temp_c),
            ("block_c", reading.block_temp_c),
            ("charge_pct", reading.charge_pct),
        ]

    def report_parts(
        self, points: list[TracePoint], events: list[EventRecord], controller_limits: Any
    ) -> list[str]:
        # The plots' library loads here, when a report is drawn: not in every
        # process that runs a session (about half a second of start-up).
        from devicectl.modalities.ipl import report as ipl_report

        return ipl_report.step_results(events) + ipl_report.fluence_plot(events, controller_limits)

    def console_view(self, controller: Any, runner: Any) -> Any:
        from devicectl.modalities.ipl import console

        return console.view(controller, runner)

    def view_from_status(self, status: Mapping[str, Any]) -> Any:
        from devicectl.modalities.ipl import console
        from devicectl.panel_generic import frozen_view

        return frozen_view(console.IPLView, status) or super().view_from_status(status)

    def render_panel(self, view: Any) -> Any:
        from devicectl.modalities.ipl import console

        return console.render(view)

    def energy_summary(self, controller: Any) -> str | None:
        from devicectl.modalities.ipl import console

        return console.energy_summary(controller)
