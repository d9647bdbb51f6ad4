"""What the console shows, copied out of the controllers on the loop thread.

Every value the screen needs is read here, in one go, at the end of a tick,
into frozen dataclasses: the UI thread then renders a consistent picture and
never reads a controller (whose state only the loop thread may touch). Two
snapshots of an unchanged station compare equal, so a panel can skip redrawing.

Output state comes from the device's own reading (what it reports, not what we
asked), so "OUTPUT ON" on screen means the device says its output is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devicectl.control.ipl_controller import IPLController
from devicectl.control.led_controller import LEDController
from devicectl.control.rf_controller import RFController
from devicectl.devices import IPLStatus

_IPL_ENERGY = IPLStatus.ARMED | IPLStatus.CHARGED | IPLStatus.CHARGING


@dataclass(frozen=True)
class StepView:
    index: int
    title: str
    kind: str
    outcome: str  # pending, running, complete, fault, aborted


@dataclass(frozen=True)
class SessionView:
    protocol: str
    operator: str
    state: str  # a SessionState value
    current: int  # 1-based index of the current step; 0 once past the last
    prompt: str | None
    awaiting: str | None  # the action that answers the prompt
    fault: str | None
    steps: tuple[StepView, ...]


@dataclass(frozen=True)
class RFView:
    state: str
    output_on: bool | None  # None: no reading from the device
    zone: str | None
    zones_done: int
    zones_total: int
    phase: str
    skin1_c: float | None
    skin2_c: float | None
    target_c: float
    alarm_c: float
    cutoff_c: float
    held_s: float
    hold_s: float
    cem43: float
    cem43_max: float
    power_w: float
    fault: str | None


@dataclass(frozen=True)
class IPLView:
    state: str
    energy: bool | None  # the device reports charging, charged or armed
    charge_pct: float | None
    crystal_c: float | None
    crystal_max_c: float
    shots: int | None
    last_fluence_j_cm2: float | None
    set_fluence_j_cm2: float | None
    flashes_done: int
    flashes_planned: int
    fault: str | None


@dataclass(frozen=True)
class LEDView:
    state: str
    output_on: bool | None
    irradiance_mw_cm2: float | None
    setpoint_mw_cm2: float | None
    elapsed_s: float
    remaining_s: float
    dose_j_cm2: float
    dose_max_j_cm2: float
    skin_c: float | None
    fault: str | None


@dataclass(frozen=True)
class Snapshot:
    t_s: float  # the loop clock's time at the end of the tick
    tick: int
    session: SessionView | None
    rf: RFView | None
    ipl: IPLView | None
    led: LEDView | None

    def device_states(self) -> dict[str, str]:
        views = {"rf": self.rf, "ipl": self.ipl, "led": self.led}
        return {name: view.state for name, view in views.items() if view is not None}


def _fault(controller: Any) -> str | None:
    alarm = controller.fault_alarm
    if alarm is not None:
        return str(alarm.message)
    return "emergency stop" if controller.state.name == "ESTOP" else None


def rf_view(rf: RFController, runner: Any) -> RFView:
    r = rf.reading
    zone = rf.zone
    status = rf.status()
    done, total = 0, 0
    if runner is not None:
        for progress, step in zip(runner.steps, runner.protocol.steps, strict=True):
            if progress.kind == "rf" and progress.outcome in ("running", "fault"):
                done = len(progress.detail.get("zones_done", []))
                total = len(step.zones)
    return RFView(
        state=rf.state.value,
        output_on=rf.reported_energy(),
        zone=zone.name if zone is not None else None,
        zones_done=done,
        zones_total=total,
        phase=rf.phase,
        skin1_c=r.skin1_c if r is not None else None,
        skin2_c=r.skin2_c if r is not None else None,
        target_c=zone.target_c if zone is not None else rf.limits.target_max_c,
        alarm_c=rf.limits.alarm_c,
        cutoff_c=rf.limits.cutoff_c,
        held_s=float(status["held_s"]),
        hold_s=zone.hold_s if zone is not None else 0.0,
        cem43=float(status["cem43"]),
        cem43_max=rf.limits.cem43_max,
        power_w=rf.commanded_power_w,
        fault=_fault(rf),
    )


def ipl_view(ipl: IPLController) -> IPLView:
    r = ipl.reading
    p = ipl.ipl_pass
    return IPLView(
        state=ipl.state.value,
        energy=ipl.reported_energy(),
        charge_pct=r.charge_pct if r is not None else None,
        crystal_c=r.crystal_temp_c if r is not None else None,
        crystal_max_c=ipl.limits.crystal_arm_max_c,
        shots=r.shot_count if r is not None else None,
        last_fluence_j_cm2=r.last_fluence_j_cm2 if r is not None else None,
        set_fluence_j_cm2=p.fluence_j_cm2 if p is not None else None,
        flashes_done=len(ipl.flashes),
        flashes_planned=p.flashes if p is not None else 0,
        fault=_fault(ipl),
    )


def led_view(led: LEDController) -> LEDView:
    r = led.reading
    plan = led.step_plan
    return LEDView(
        state=led.state.value,
        output_on=led.reported_energy(),
        irradiance_mw_cm2=r.irradiance_mw_cm2 if r is not None else None,
        setpoint_mw_cm2=plan.irradiance_mw_cm2 if plan is not None else None,
        elapsed_s=led.on_time_s,
        remaining_s=led.remaining_s,
        dose_j_cm2=led.dose_j_cm2,
        dose_max_j_cm2=led.limits.dose_max_j_cm2,
        skin_c=r.skin_temp_c if r is not None else None,
        fault=_fault(led),
    )


def session_view(runner: Any) -> SessionView:
    current = runner.current + 1 if runner.current < len(runner.steps) else 0
    return SessionView(
        protocol=str(runner.protocol.name),
        operator=str(runner.operator_id),
        state=runner.state.value,
        current=current,
        prompt=runner.prompt,
        awaiting=runner.awaiting,
        fault=runner.fault_message,
        steps=tuple(StepView(s.index, s.title, s.kind, s.outcome) for s in runner.steps),
    )


def take_snapshot(t_s: float, tick: int, controllers: dict[str, Any], runner: Any) -> Snapshot:
    """Copy what the screen shows; call only on the loop thread, between ticks."""
    rf = controllers.get("rf")
    ipl = controllers.get("ipl")
    led = controllers.get("led")
    return Snapshot(
        t_s=t_s,
        tick=tick,
        session=session_view(runner) if runner is not None else None,
        rf=rf_view(rf, runner) if isinstance(rf, RFController) else None,
        ipl=ipl_view(ipl) if isinstance(ipl, IPLController) else None,
        led=led_view(led) if isinstance(led, LEDController) else None,
    )
