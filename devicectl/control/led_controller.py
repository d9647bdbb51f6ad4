"""The LED controller: a `transitions` machine around one LED canopy.

Lifecycle::

    idle -> ready (step loaded and validated) -> delivering (start: interlock closed)
    delivering -> paused (operator, or canopy interlock opened) -> delivering (resume)
    delivering -> complete (duration reached: output off automatically)
    any -> fault | estop ; fault/estop -> idle (acknowledge with operator id)

Output is on only in ``delivering``; every exit from it turns output off,
confirmed by readback. Dose (J/cm2) is the measured irradiance integrated over
output-on time; pause and resume keep it. The supervisor integrates its own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import Machine

from devicectl.clock import Clock
from devicectl.control.base import ControllerCore, machine_from_table
from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.control.led_supervisor import LEDContext, LEDSupervisor
from devicectl.control.limits import LEDLimits, LEDStep
from devicectl.devices import LEDFault, LEDPanel, LEDReading
from devicectl.errors import ControlError, DeviceError


class LEDState(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    DELIVERING = "delivering"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAULT = "fault"
    ESTOP = "estop"


S = LEDState
_NOT_SAFE = [s for s in LEDState if s not in (S.FAULT, S.ESTOP)]

STATES: list[dict[str, Any]] = [
    {"name": S.IDLE},
    {"name": S.READY},
    {"name": S.DELIVERING, "on_enter": ["_enter_delivering"], "on_exit": ["_exit_delivering"]},
    {"name": S.PAUSED},
    {"name": S.COMPLETE},
    {"name": S.FAULT, "on_enter": ["_enter_safe_state"]},
    {"name": S.ESTOP, "on_enter": ["_enter_safe_state"]},
]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "load", "source": [S.IDLE, S.READY, S.COMPLETE], "dest": S.READY},
    {"trigger": "start", "source": S.READY, "dest": S.DELIVERING, "conditions": ["_may_start"]},
    {"trigger": "pause", "source": S.DELIVERING, "dest": S.PAUSED},
    {"trigger": "resume", "source": S.PAUSED, "dest": S.DELIVERING, "conditions": ["_may_start"]},
    {"trigger": "step_done", "source": S.DELIVERING, "dest": S.COMPLETE},
    {"trigger": "abort", "source": [S.READY, S.DELIVERING, S.PAUSED, S.COMPLETE], "dest": S.IDLE},
    {"trigger": "fault", "source": _NOT_SAFE, "dest": S.FAULT},
    {"trigger": "estop", "source": [*_NOT_SAFE, S.FAULT], "dest": S.ESTOP},
    {
        "trigger": "acknowledge",
        "source": [S.FAULT, S.ESTOP],
        "dest": S.IDLE,
        "conditions": ["_ack_allowed"],
    },
]


def build_machine(model: object, *, graph: bool = False) -> Machine:
    """The machine from this module's table (see ``machine_from_table``)."""
    return machine_from_table(model, STATES, TRANSITIONS, S.IDLE, graph=graph)


@dataclass(frozen=True)
class LEDResult:
    wavelength_nm: int
    outcome: str
    on_time_s: float
    dose_j_cm2: float
    peak_skin_c: float


class LEDController(ControllerCore[LEDPanel, LEDReading]):
    modality = "led"
    OPERATOR_ACTIONS = ("load", "start", "pause", "resume", "abort", "estop", "acknowledge")

    def __init__(
        self,
        opener: Callable[[], LEDPanel],
        clock: Clock,
        *,
        name: str = "led",
        limits: LEDLimits | None = None,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.limits = limits or LEDLimits()
        self.supervisor = LEDSupervisor(self.limits, device=name)
        self.step_plan: LEDStep | None = None
        self.dose_j_cm2 = 0.0
        self.on_time_s = 0.0
        self.peak_skin_c = float("nan")
        self.pause_reason: str | None = None
        self.paused_at_s: float | None = None
        self.results: list[LEDResult] = []
        self._step_open = False
        self._last_step_s: float | None = None
        super().__init__(
            opener, clock, name=name, emit=emit, machine_factory=build_machine, initial=S.IDLE
        )

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.step_plan.duration_s - self.on_time_s) if self.step_plan else 0.0

    # -- tick phases ---------------------------------------------------------------

    def _check(self, now_s: float) -> None:
        plan = self.step_plan
        delivering = self.state is S.DELIVERING
        ctx = LEDContext(
            output_expected=delivering,
            setpoint_mw_cm2=plan.irradiance_mw_cm2 if plan and delivering else 0.0,
            step_active=self.state in (S.DELIVERING, S.PAUSED),
        )
        self._apply_alarms(self.supervisor.check(now_s, self.reading, ctx))

    def step(self, now_s: float) -> None:
        if self._pending_fault is not None:
            self._trip(self._pending_fault)
            return
        reading = self.reading
        if reading is None:
            return
        if self.state is S.PAUSED:
            if (
                self.pause_reason == "interlock open"
                and self.paused_at_s is not None
                and not reading.interlock_closed
                and now_s - self.paused_at_s > self.limits.interlock_timeout_s
            ):
                self._trip(
                    self._host_fault(
                        "interlock_timeout",
                        "canopy interlock not closed "
                        f"within {self.limits.interlock_timeout_s:.0f} s",
                    )
                )
            return
        if self.state is not S.DELIVERING:
            return
        plan = self.step_plan
        assert plan is not None
        if not reading.interlock_closed:
            self._pause("interlock open")
            self._raise(
                Alarm(
                    self.name,
                    "led.interlock_open",
                    AlarmPriority.MEDIUM,
                    f"{self.name}: canopy interlock opened; step paused",
                    False,
                )
            )
            return
        if not self.peak_skin_c >= reading.skin_temp_c:
            self.peak_skin_c = reading.skin_temp_c
        # Integrate since the last reading that was integrated: a tick without a
        # reading (one is tolerated) is counted when the next one arrives.
        last = self._last_step_s
        self._last_step_s = now_s
        if last is not None and reading.output_on:
            dt = now_s - last
            self.on_time_s += dt
            self.dose_j_cm2 += reading.irradiance_mw_cm2 * dt / 1000.0
        if self.on_time_s >= plan.duration_s:
            self._fire("step_done")

    # -- commands --------------------------------------------------------------------

    def _do_load(self, command: Command) -> bool:
        plan = command.args.get("step")
        if not isinstance(plan, LEDStep):
            raise ControlError(f"{self.name}: load needs an LEDStep, got {type(plan).__name__}")
        plan.validate(self.limits)
        if self.state not in (S.IDLE, S.READY, S.COMPLETE):
            raise ControlError(f"{self.name}: cannot load a step while {self.state.value}")
        self.step_plan = plan
        self.dose_j_cm2 = 0.0
        self.on_time_s = 0.0
        self.peak_skin_c = float("nan")
        self.supervisor.begin_step()
        self._step_open = True
        return self._fire("load")

    def _do_pause(self, command: Command) -> bool:
        return self._pause("operator")

    def _do_abort(self, command: Command) -> bool:
        if "abort" in self.machine.get_triggers(self.state):
            self._close_step("aborted")
        return self._trigger_checked("abort")

    # -- guards ---------------------------------------------------------------------------

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
        if not r.interlock_closed:
            return "canopy interlock open (canopy not at treatment distance)"
        if not r.skin_temp_c < self.limits.skin_max_c:
            return f"skin {r.skin_temp_c} degC not below {self.limits.skin_max_c} degC"
        return ""

    # -- state callbacks ------------------------------------------------------------------

    def _enter_delivering(self, event: Any) -> None:
        plan = self.step_plan
        assert plan is not None and self.device is not None
        self._last_step_s = self.clock.now()
        reading = self.reading
        try:
            if reading is not None and reading.faults & LEDFault.INTERLOCK_OPEN:
                # The opening already paused the step; the firmware latches it
                # too and refuses output until it is cleared. Any other latched
                # bit would have faulted this controller, so only that one is here.
                self.device.clear_status()
            self.device.set_wavelength(plan.wavelength_nm)
            self.device.set_irradiance(plan.irradiance_mw_cm2)
            self.device.output_on()
            self._emit(
                "device_command",
                command="output_on",
                wavelength_nm=plan.wavelength_nm,
                irradiance_mw_cm2=plan.irradiance_mw_cm2,
            )
        except DeviceError as exc:
            self._pending_fault = self._host_fault("command_failed", f"output on: {exc}")
            return
        self.pause_reason = None
        self.paused_at_s = None

    def _exit_delivering(self, event: Any) -> None:
        self.last_safe_state = self._safe_state()

    def _came_from_energy_state(self, event: Any) -> bool:
        return bool(event.transition.source == S.DELIVERING.name)

    def _shows_energy(self, reading: LEDReading) -> bool:
        return reading.output_on

    def _turn_off(self, device: LEDPanel) -> None:
        device.output_off()

    def _confirm_off(self, device: LEDPanel) -> bool:
        return not device.output_is_on()

    def _on_acknowledged(self) -> None:
        self.supervisor.reset()

    def _on_trip(self, alarm: Alarm) -> None:
        self._close_step("estop" if alarm.code.endswith(".estop") else "fault")

    def _after_state_change(self, event: Any) -> None:
        super()._after_state_change(event)
        if self.state is S.COMPLETE:
            self._close_step("complete")

    def _pause(self, reason: str) -> bool:
        if self.state is not S.DELIVERING:
            raise ControlError(f"{self.name}: cannot pause while {self.state.value}")
        self.pause_reason = reason
        self.paused_at_s = self.clock.now()
        return self._fire("pause")

    def _close_step(self, outcome: str) -> None:
        plan = self.step_plan
        if plan is None or not self._step_open:
            return
        self._step_open = False
        result = LEDResult(
            plan.wavelength_nm, outcome, self.on_time_s, self.dose_j_cm2, self.peak_skin_c
        )
        self.results.append(result)
        self._emit("step_result", result=result)
        self.log.info("step_result", **result.__dict__)

    def status(self) -> dict[str, Any]:
        r = self.reading
        return {
            "state": self.state.value,
            "irradiance_mw_cm2": r.irradiance_mw_cm2 if r else None,
            "elapsed_s": self.on_time_s,
            "remaining_s": self.remaining_s,
            "dose_j_cm2": self.dose_j_cm2,
            "skin_c": r.skin_temp_c if r else None,
            "fault": self.fault_alarm.message if self.fault_alarm else None,
        }
