"""The ``chiller`` modality: what devicectl needs to know about the cooling handpiece.

Registered as ``chiller`` in the ``devicectl.modalities`` entry-point group;
the station, runner, protocol-file reader, CLI, console, recorder and report
find it there. A protocol file's step::

    [[step]]
    kind = "chiller"
    title = "Pre-cool cheeks"   # optional, default "Skin cooling"
    setpoint_c = 5.0            # plate setpoint, 4-15 degC
    duration_s = 60             # cooling time, 1-300 s

The runner's plan loads what is left of the step, starts (gated by the
operator in the console), and waits for the step to complete; a step begun
again after a fault continues with the cooling time that is left.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from transitions import Machine

from devicectl.clock import Clock
from devicectl.control.events import Event
from devicectl.errors import ControlError
from devicectl.modality import Modality, Plan, PlanRun
from devicectl.records.models import EventRecord, TracePoint
from devicectl.step_table import StepTable
from devicectl_example_chiller import controller as chiller_controller
from devicectl_example_chiller.controller import ChillerController, ChillerState
from devicectl_example_chiller.limits import ChillerLimits, ChillerStep

KEYS: Final = ("kind", "title", "setpoint_c", "duration_s")
LEFT_MIN_S: Final = 0.05
# Rough duration only (progress display): the plate needs a few seconds to get cold.
PLATE_SETTLE_S: Final = 8.0


@dataclass(frozen=True)
class ChillerCoolingStep:
    """One cooling step of a protocol (``step`` is the controller's own plan object)."""

    kind: ClassVar[str] = "chiller"
    title: str
    step: ChillerStep


def read_step(t: StepTable, lim: ChillerLimits) -> ChillerCoolingStep | None:
    """A :class:`ChillerCoolingStep` from its table, or None with every problem recorded."""
    title = t.text("title", default="Skin cooling")
    setpoint = t.number("setpoint_c")
    duration = t.number("duration_s")
    probe = ChillerStep(
        lim.setpoint_min_c if setpoint is None else setpoint,
        lim.duration_min_s if duration is None else duration,
    )
    t.limit_lines(probe.problems(lim))
    if title is None or setpoint is None or duration is None:
        return None
    return ChillerCoolingStep(title, ChillerStep(setpoint, duration))


def plan(run: PlanRun, step: ChillerCoolingStep, progress: Any) -> Plan:
    """Load what is left of the step, start, wait for it to complete."""
    chiller: ChillerController = run.device("chiller")
    planned = step.step
    first = run.results_start(progress, "chiller", chiller.results)
    note_cooling(progress, chiller, first)
    remaining = planned.duration_s - progress.detail["cooling_s"]
    if remaining <= LEFT_MIN_S:
        return
    run.do("chiller", "load", step=replace(planned, duration_s=remaining))
    yield lambda: chiller.reading is not None
    yield from run.gate(progress, "start", "start skin cooling")
    run.do("chiller", "start", run.gated_by())

    # A fault or a session pause ends the wait without this plan running on: the
    # step's cooling is then noted by ``on_secure``.
    yield lambda: chiller.state in (ChillerState.COMPLETE, ChillerState.FAULT, ChillerState.ESTOP)
    note_cooling(progress, chiller, first)
    if chiller.state is not ChillerState.COMPLETE:
        raise ControlError(f"chiller: step did not complete ({chiller.results[-1].outcome})")


def note_cooling(progress: Any, chiller: ChillerController, first: int) -> None:
    """The step's cooling so far: every result since the step began (resumes too),
    and the cooling under way."""
    results = chiller.results[first:]
    cooling = sum(r.cooling_s for r in results)
    skins = [r.min_skin_c for r in results]
    setpoint = results[-1].setpoint_c if results else None
    if chiller.step_open and chiller.step_plan is not None:
        cooling += chiller.cooling_s
        skins.append(chiller.min_skin_c)
        setpoint = chiller.step_plan.setpoint_c
    skins = [s for s in skins if not math.isnan(s)]
    progress.detail["cooling_s"] = cooling
    progress.detail["min_skin_c"] = min(skins) if skins else None
    progress.detail["setpoint_c"] = setpoint


def _c(value: Any) -> str:
    return "-" if not isinstance(value, int | float) or math.isnan(value) else f"{value:.1f}"


class ChillerModality(Modality):
    name: ClassVar[str] = "chiller"
    title: ClassVar[str] = "Chiller handpiece"
    order: ClassVar[int] = 40
    default_driver: ClassVar[str] = "chiller_ascii"
    simulator: ClassVar[str] = "chiller"
    step_type: ClassVar[type] = ChillerCoolingStep
    step_keys: ClassVar[tuple[str, ...]] = KEYS

    def limits(self) -> ChillerLimits:
        return ChillerLimits()

    def controller(
        self,
        opener: Callable[[], Any],
        clock: Clock,
        *,
        name: str,
        limits: Any | None,
        emit: Callable[[Event], None] | None,
    ) -> ChillerController:
        return ChillerController(opener, clock, name=name, limits=limits, emit=emit)

    def machine(self, model: object, *, graph: bool = False) -> Machine:
        return chiller_controller.build_machine(model, graph=graph)

    def read_step(self, t: StepTable, limits: Any, memo: dict[str, Any]) -> Any | None:
        return read_step(t, limits)

    def step_problems(self, step: Any, limits: Any, memo: dict[str, Any]) -> list[str]:
        return list(step.step.problems(limits))

    def planned_s(self, step: Any, limits: Any) -> float:
        return float(step.step.duration_s) + PLATE_SETTLE_S

    def plan(self, run: PlanRun, step: Any, progress: Any) -> Plan:
        return plan(run, step, progress)

    def on_secure(self, run: PlanRun, controller: Any, progress: Any, action: str | None) -> None:
        # A pause or abort by the session, or the chiller's own fault: the cooling
        # so far is the step's, not lost.
        note_cooling(
            progress, controller, run.results_start(progress, self.name, controller.results)
        )

    def progress_line(self, controller: Any, progress: Any) -> tuple[float, str]:
        st = controller.status()
        total = st["elapsed_s"] + st["remaining_s"] or 1.0
        return st["elapsed_s"] / total, (
            f"{st['state']} {st['elapsed_s']:.0f}/{total:.0f} s plate {_c(st['plate_c'])} "
            f"skin {_c(st['skin_c'])} degC"
        )

    def summary_line(self, step: Mapping[str, Any]) -> str:
        return (
            f"{step.get('cooling_s') or 0:.0f} s at {_c(step.get('setpoint_c'))} degC, "
            f"skin min {_c(step.get('min_skin_c'))} degC"
        )

    def trace_channels(self, controller: Any, reading: Any) -> list[tuple[str, float | None]]:
        plan_ = controller.step_plan
        return [
            ("plate_c", reading.plate_c),
            ("skin_c", reading.skin_c),
            ("setpoint_c", plan_.setpoint_c if plan_ is not None else None),
            ("cooling_s", controller.cooling_s),
        ]

    def console_view(self, controller: Any, runner: Any) -> Any:
        from devicectl_example_chiller import console

        return console.view(controller)

    def render_panel(self, view: Any) -> Any:
        from devicectl_example_chiller import console

        return console.render(view)

    def console_trace(self, controller: Any) -> tuple[str, float | None] | None:
        from devicectl_example_chiller import console

        return console.trace(controller)

    def report_parts(
        self, points: list[TracePoint], events: list[EventRecord], controller_limits: Any
    ) -> list[str]:
        from devicectl_example_chiller.report import cooling_parts

        return cooling_parts(points, events, controller_limits)
