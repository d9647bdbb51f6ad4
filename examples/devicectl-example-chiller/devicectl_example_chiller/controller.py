"""The chiller controller: a ``transitions`` machine around one cooling handpiece.

Lifecycle (devicectl's shared lifecycle table, ``base.lifecycle_table``)::

    idle -> ready (step loaded and validated) -> cooling (start: skin warm enough)
    cooling -> paused (operator or session) -> cooling (resume)
    cooling -> complete (cooling time reached: output off automatically)
    any -> fault | estop ; fault/estop -> idle (acknowledge with operator id)

The cooling stage runs only in ``cooling``, the controller's one energy state
(``ENERGY_STATE_VALUES``: what the session checks after it makes the device
safe); every exit from it turns the output off, confirmed by readback
(``ControllerCore._safe_state``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import Machine

from devicectl.clock import Clock
from devicectl.control.base import ControllerCore, lifecycle_table, machine_from_table
from devicectl.control.events import Alarm, Command, Event, fault_alarm
from devicectl.errors import ControlError, DeviceError
from devicectl_example_chiller.device import ChillerHandpiece, ChillerReading
from devicectl_example_chiller.limits import ChillerLimits, ChillerStep
from devicectl_example_chiller.supervisor import DOC, ChillerContext, ChillerSupervisor


class ChillerState(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    COOLING = "cooling"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAULT = "fault"
    ESTOP = "estop"


S = ChillerState
GUARD = "_may_start"

STATES, TRANSITIONS = lifecycle_table(
    ChillerState,
    [{"name": S.COOLING, "on_enter": ["_enter_cooling"], "on_exit": ["_exit_cooling"]}],
    [
        {"trigger": "start", "source": S.READY, "dest": S.COOLING, "conditions": [GUARD]},
        {"trigger": "step_done", "source": S.COOLING, "dest": S.COMPLETE},
    ],
    pause_from=[S.COOLING],
    resume_to=S.COOLING,
    guard=GUARD,
)


def build_machine(model: object, *, graph: bool = False) -> Machine:
    """The machine from this module's table (the live one and ``devicectl diagram``'s)."""
    return machine_from_table(model, STATES, TRANSITIONS, S.IDLE, graph=graph)


@dataclass(frozen=True)
class ChillerResult:
    setpoint_c: float
    outcome: str  # complete, aborted, fault, estop
    cooling_s: float
    min_skin_c: float
    min_plate_c: float


class ChillerController(ControllerCore[ChillerHandpiece, ChillerReading]):
    modality = "chiller"
    ENERGY_STATE_VALUES = frozenset({S.COOLING.value})
    OPERATOR_ACTIONS = ("load", "start", "pause", "resume", "abort", "estop", "acknowledge")

    def __init__(
        self,
        opener: Callable[[], ChillerHandpiece],
        clock: Clock,
        *,
        name: str = "chiller",
        limits: ChillerLimits | None = None,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.limits = limits or ChillerLimits()
        self.supervisor = ChillerSupervisor(self.limits, device=name)
        self.step_plan: ChillerStep | None = None
        self.cooling_s = 0.0
        self.min_skin_c = math.nan
        self.min_plate_c = math.nan
        self.results: list[ChillerResult] = []
        self._step_open = False
        self._last_act_s: float | None = None
        super().__init__(
            opener, clock, name=name, emit=emit, machine_factory=build_machine, initial=S.IDLE
        )

    @property
    def step_open(self) -> bool:
        """A step is loaded and has no result yet (its cooling is still counting)."""
        return self._step_open

    @property
    def remaining_s(self) -> float:
        plan = self.step_plan
        return max(0.0, plan.duration_s - self.cooling_s) if plan else 0.0

    # -- tick phases ------------------------------------------------------------------

    def _check(self, now_s: float) -> None:
        ctx = ChillerContext(
            output_expected=self.state is S.COOLING,
            step_active=self.state in (S.COOLING, S.PAUSED),
        )
        self._apply_alarms(self.supervisor.check(now_s, self.reading, ctx))

    def _step(self, now_s: float) -> None:
        """The tick's last phase (``act``): account the cooling, complete the step."""
        reading = self.reading
        if reading is None or self.state is not S.COOLING:
            return
        plan = self.step_plan
        assert plan is not None
        if not self.min_skin_c <= reading.skin_c:
            self.min_skin_c = reading.skin_c
        if not self.min_plate_c <= reading.plate_c:
            self.min_plate_c = reading.plate_c
        last = self._last_act_s
        self._last_act_s = now_s
        if last is not None and reading.output_on:
            self.cooling_s += now_s - last
        if self.cooling_s >= plan.duration_s:
            self._fire("step_done")

    # -- commands ------------------------------------------------------------------------

    def _do_load(self, command: Command) -> bool:
        plan = command.args.get("step")
        if not isinstance(plan, ChillerStep):
            raise ControlError(f"{self.name}: load needs a ChillerStep, got {type(plan).__name__}")
        plan.validate(self.limits)
        if self.state not in (S.IDLE, S.READY, S.COMPLETE):
            raise ControlError(f"{self.name}: cannot load a step while {self.state.value}")
        self.step_plan = plan
        self.cooling_s = 0.0
        self.min_skin_c = math.nan
        self.min_plate_c = math.nan
        self.supervisor.begin_step()
        self._step_open = True
        return self._fire("load")

    def _do_abort(self, command: Command) -> bool:
        if "abort" in self.machine.get_triggers(self.state):
            self._close_step("aborted")
        return self._trigger_checked("abort")

    # -- guards -------------------------------------------------------------------------

    def _may_start(self, event: Any = None) -> bool:
        return self._refusal_reason() == ""

    def _refusal_reason(self) -> str:
        r = self.reading
        if self.step_plan is None:
            return "no step loaded"
        if self.device is None or r is None:
            return "no fresh reading from the device"
        if unchecked := self._unchecked_reading():
            return unchecked
        if not r.skin_c >= self.limits.skin_warn_c:
            return f"skin {r.skin_c} degC is below {self.limits.skin_warn_c:g} degC already"
        return ""

    # -- state callbacks ------------------------------------------------------------------

    def _enter_cooling(self, event: Any) -> None:
        plan = self.step_plan
        assert plan is not None and self.device is not None
        self._last_act_s = self.clock.now()
        try:
            self.device.set_setpoint(plan.setpoint_c)
            self.device.output_on()  # both recorded by the audited device
        except DeviceError as exc:
            self._pending_fault = fault_alarm(
                self.name, "chiller.command_failed", f"output on: {exc}", doc=DOC
            )

    def _exit_cooling(self, event: Any) -> None:
        self.last_safe_state = self._safe_state()

    def _came_from_energy_state(self, event: Any) -> bool:
        return bool(event.transition.source == S.COOLING.name)

    def _host_fault(self, condition: str, message: str) -> Alarm:
        # The core's own faults of this device (connect, safe state unconfirmed,
        # emergency stop) link to this package's README, not to devicectl's docs.
        return fault_alarm(self.name, f"{self.modality}.{condition}", message, doc=DOC)

    def _shows_energy(self, reading: ChillerReading) -> bool:
        return reading.output_on

    def _turn_off(self, device: ChillerHandpiece) -> None:
        device.output_off()

    def _confirm_off(self, device: ChillerHandpiece) -> bool:
        return not device.output_is_on()

    def _on_acknowledged(self) -> None:
        self.supervisor.reset()

    def _on_trip(self, alarm: Alarm) -> None:
        self._close_step("estop" if alarm.code.endswith(".estop") else "fault")

    def _after_state_change(self, event: Any) -> None:
        super()._after_state_change(event)
        if self.state is S.COMPLETE:
            self._close_step("complete")

    def _close_step(self, outcome: str) -> None:
        plan = self.step_plan
        if plan is None or not self._step_open:
            return
        self._step_open = False
        result = ChillerResult(
            plan.setpoint_c, outcome, self.cooling_s, self.min_skin_c, self.min_plate_c
        )
        self.results.append(result)
        self._emit("step_result", result=result)
        self.log.info("step_result", **result.__dict__)

    def status(self) -> dict[str, Any]:
        r = self.reading
        plan = self.step_plan
        return {
            "state": self.state.value,
            "plate_c": r.plate_c if r else None,
            "skin_c": r.skin_c if r else None,
            "setpoint_c": plan.setpoint_c if plan else None,
            "skin_min_c": self.limits.skin_min_c,
            "elapsed_s": self.cooling_s,
            "remaining_s": self.remaining_s,
            "min_skin_c": self.min_skin_c,
            "fault": self.fault_alarm.message if self.fault_alarm else None,
        }
