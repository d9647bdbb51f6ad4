"""The LED controller: a `transitions` machine around one LED canopy.

Lifecycle (the single-output lifecycle of ``lifecycle.py``, no ``armed`` step)::

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
from devicectl.control.base import machine_from_table
from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.control.lifecycle import SingleOutputController, single_output_table
from devicectl.devices import LEDFault, LEDPanel, LEDReading
from devicectl.modalities.led.limits import LEDLimits, LEDStep
from devicectl.modalities.led.supervisor import LEDContext, LEDSupervisor


class LEDState(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    DELIVERING = "delivering"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAULT = "fault"
    ESTOP = "estop"


S = LEDState

STATES, TRANSITIONS = single_output_table(LEDState, armed=False, done="step_done")


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


class LEDController(SingleOutputController[LEDPanel, LEDReading]):
    modality = "led"
    OPERATOR_ACTIONS = ("load", "start", "pause", "resume", "abort", "estop", "acknowledge")
    S = LEDState
    DONE_TRIGGER = "step_done"
    PLAN_ARG, PLAN_TYPE, PLAN_NAME, RESULT_EVENT = "step", LEDStep, "step", "step_result"
    PAUSE_WATCHED = "interlock open"
    results: list[LEDResult]

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
        self._ctx_key: tuple[object, ...] | None = None
        self._ctx = LEDContext(False, 0.0, False)
        super().__init__(opener, clock, name=name, emit=emit, machine_factory=build_machine)

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.step_plan.duration_s - self.on_time_s) if self.step_plan else 0.0

    # -- tick phases ---------------------------------------------------------------

    def _check(self, now_s: float) -> None:
        plan = self.step_plan
        state = self.state
        key = (state, plan)
        if key != self._ctx_key:  # the context changes a few times per step, not per tick
            self._ctx_key = key
            delivering = state is S.DELIVERING
            self._ctx = LEDContext(
                output_expected=delivering,
                setpoint_mw_cm2=plan.irradiance_mw_cm2 if plan and delivering else 0.0,
                step_active=state in (S.DELIVERING, S.PAUSED),
            )
        alarms = self.supervisor.check(now_s, self.reading, self._ctx)
        if alarms:
            self._apply_alarms(alarms)

    def _condition_lost(self, reading: LEDReading) -> Alarm | None:
        if reading.interlock_closed:
            return None
        return Alarm(
            self.name,
            "led.interlock_open",
            AlarmPriority.MEDIUM,
            f"{self.name}: canopy interlock opened; step paused",
            False,
        )

    def _pause_condition_back(self, reading: LEDReading | None) -> bool:
        return reading is None or reading.interlock_closed  # no reading: judged on the next

    def _pause_timeout(self) -> tuple[float, Alarm]:
        timeout_s = self.limits.interlock_timeout_s
        return timeout_s, self._host_fault(
            "interlock_timeout", f"canopy interlock not closed within {timeout_s:.0f} s"
        )

    def _deliver(self, now_s: float, reading: LEDReading) -> None:
        plan = self.step_plan
        assert plan is not None
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
            self._fire(self.DONE_TRIGGER)

    # -- commands --------------------------------------------------------------------

    def _begin_plan(self, plan: LEDStep) -> None:
        self.step_plan = plan
        self.dose_j_cm2 = 0.0
        self.on_time_s = 0.0
        self.peak_skin_c = float("nan")
        self.supervisor.begin_step()

    # -- guards ---------------------------------------------------------------------------

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

    # -- delivering -----------------------------------------------------------------------

    def _prepare_output(self, now_s: float) -> dict[str, Any]:
        plan = self.step_plan
        assert plan is not None
        return {"wavelength_nm": plan.wavelength_nm, "irradiance_mw_cm2": plan.irradiance_mw_cm2}

    def _output_on(self, device: LEDPanel, args: dict[str, Any]) -> None:
        reading = self.reading
        if reading is not None and reading.faults & LEDFault.INTERLOCK_OPEN:
            # The opening already paused the step; the firmware latches it
            # too and refuses output until it is cleared. Any other latched
            # bit would have faulted this controller, so only that one is here.
            device.clear_status()
        device.set_wavelength(args["wavelength_nm"])
        device.set_irradiance(args["irradiance_mw_cm2"])
        device.output_on()

    def _shows_energy(self, reading: LEDReading) -> bool:
        return reading.output_on

    def _plan_result(self, outcome: str) -> LEDResult:
        plan = self.step_plan
        assert plan is not None
        return LEDResult(
            plan.wavelength_nm, outcome, self.on_time_s, self.dose_j_cm2, self.peak_skin_c
        )

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
