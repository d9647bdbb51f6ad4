"""The IPL controller: a `transitions` machine around one flash-lamp handpiece.

Lifecycle::

    idle -> ready (pass loaded, validated, parameters sent)
    ready -> charging (arm: recognised filter, crystal <= 10 degC, contact, and the
             operator's confirmation that eye protection is on, recorded with their id)
    charging -> armed (capacitor charged; crystal cool) -> firing (fire: the handpiece
             trigger or footswitch, >= 1 s apart)
    firing -> charging (flash confirmed, more to go) | complete (last flash)
    charging/armed -> paused (operator, or contact lost) -> charging (resume)
    any -> fault | estop ; fault/estop -> idle (acknowledge with operator id)

The energy states are charging, armed and firing. Every transition out of them
to a state that is not one of them disarms and dumps the capacitor, confirmed
by a status readback (safety rules 1 and 2). Every flash needs its own trigger
(handpiece trigger, footswitch or front-end command); every flash's delivered
fluence is checked by the supervisor against the set fluence (+-20 %).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import Machine

from devicectl.clock import Clock
from devicectl.control.base import ControllerCore, lifecycle_table, machine_from_table
from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.devices import IPLParams, IPLReading, IPLSource, IPLStatus
from devicectl.errors import ControlError, DeviceError
from devicectl.modalities.ipl.limits import IPLLimits, IPLPass
from devicectl.modalities.ipl.supervisor import IPLContext, IPLSupervisor

# A status read at least this long after CHARGE that shows neither charging nor
# charged means the device dumped its charge; earlier ones may predate the command.
RECHARGE_AFTER_S = 0.2


class IPLState(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    CHARGING = "charging"
    ARMED = "armed"
    FIRING = "firing"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAULT = "fault"
    ESTOP = "estop"


S = IPLState
ENERGY_STATES = (S.CHARGING, S.ARMED, S.FIRING)
_ENERGY_NAMES = {s.name for s in ENERGY_STATES}
_ENERGY_BITS = int(IPLStatus.ARMED | IPLStatus.CHARGED | IPLStatus.CHARGING)
_HELD_BITS = int(IPLStatus.ARMED | IPLStatus.CHARGED)  # what an armed handpiece reports

# The shared lifecycle (``base.lifecycle_table``) with the IPL's own energy states.
STATES, TRANSITIONS = lifecycle_table(
    IPLState,
    [
        {"name": S.CHARGING, "on_enter": ["_enter_charging"], "on_exit": ["_exit_energy"]},
        {"name": S.ARMED, "on_enter": ["_enter_armed"], "on_exit": ["_exit_energy"]},
        {"name": S.FIRING, "on_enter": ["_enter_firing"], "on_exit": ["_exit_energy"]},
    ],
    [
        {"trigger": "arm", "source": S.READY, "dest": S.CHARGING, "conditions": ["_may_arm"]},
        {"trigger": "charged", "source": S.CHARGING, "dest": S.ARMED},
        {"trigger": "fire", "source": S.ARMED, "dest": S.FIRING, "conditions": ["_may_fire"]},
        {"trigger": "recharge", "source": S.FIRING, "dest": S.CHARGING},
        {"trigger": "pass_done", "source": S.FIRING, "dest": S.COMPLETE},
    ],
    pause_from=[S.CHARGING, S.ARMED],
    resume_to=S.CHARGING,
    guard="_may_arm",
)


def build_machine(model: object, *, graph: bool = False) -> Machine:
    """The machine from this module's table (see ``machine_from_table``)."""
    return machine_from_table(model, STATES, TRANSITIONS, S.IDLE, graph=graph)


def _train_s(p: IPLPass) -> float:
    """How long a pulse train lasts: every pulse's width and the delays between them."""
    return (p.pulse_count * p.pulse_width_ms + (p.pulse_count - 1) * p.pulse_delay_ms) / 1000.0


@dataclass(frozen=True)
class FlashRecord:
    t_s: float
    set_fluence_j_cm2: float
    delivered_j_cm2: float
    shot_count: int


class IPLController(ControllerCore[IPLSource, IPLReading]):
    """One IPL handpiece: pass loading, eye-protection gate, flash-by-flash triggers."""

    modality = "ipl"
    PAUSE_WATCHED = "contact lost"
    ENERGY_STATE_VALUES = frozenset(s.value for s in ENERGY_STATES)
    OPERATOR_ACTIONS = (
        "load",
        "arm",
        "fire",
        "pause",
        "resume",
        "abort",
        "estop",
        "acknowledge",
    )

    def __init__(
        self,
        opener: Callable[[], IPLSource],
        clock: Clock,
        *,
        name: str = "ipl",
        limits: IPLLimits | None = None,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.limits = limits or IPLLimits()
        self.supervisor = IPLSupervisor(self.limits, device=name)
        self.ipl_pass: IPLPass | None = None
        self.flashes: list[FlashRecord] = []
        self.eye_protection_confirmed_by: str | None = None
        self._pulses_commanded = 0
        self._ctx_key: tuple[object, ...] | None = None
        self._ctx = IPLContext(False, None, 0)
        self._fired_at_s: float | None = None
        self._shots_before_fire = 0
        self._reading_before_fire: IPLReading | None = None
        self._charge_requested_s: float | None = None
        super().__init__(
            opener, clock, name=name, emit=emit, machine_factory=build_machine, initial=S.IDLE
        )

    # -- tick phases ---------------------------------------------------------------

    def _check(self, now_s: float) -> None:
        p = self.ipl_pass
        key = (self.state, p, self._pulses_commanded)
        if key != self._ctx_key:  # the context changes with a pass or a pulse, not per tick
            self._ctx_key = key
            self._ctx = IPLContext(
                energy_expected=self.state in ENERGY_STATES,
                set_fluence_j_cm2=p.fluence_j_cm2 if p else None,
                pulses_commanded=self._pulses_commanded,
            )
        alarms = self.supervisor.check(self.reading, self._ctx)
        if alarms:
            self._apply_alarms(alarms)

    def _step(self, now_s: float) -> None:
        reading = self.reading
        state = self.state
        if reading is None:
            return
        if state is S.PAUSED:
            self._step_paused(now_s, reading)
            return
        if state in (S.CHARGING, S.ARMED) and not reading.has(IPLStatus.CONTACT_OK):
            self._pause("contact lost")
            self._raise(
                Alarm(
                    self.name,
                    "ipl.contact_lost",
                    AlarmPriority.MEDIUM,
                    f"{self.name}: crystal lost skin contact; pass paused",
                    False,
                )
            )
            return
        if state is S.CHARGING:
            self._step_charging(now_s, reading)
        elif state is S.FIRING:
            self._step_firing(now_s, reading)
        elif state is S.ARMED and not int(reading.status) & _HELD_BITS:
            # The handpiece dumps a charge held unused for 30 s (docs/protocols/ipl.md)
            # and disarms: no trigger can fire until it is charged again, which only
            # the operator's resume asks for.
            self._pause("charge dumped")
            self._raise(
                Alarm(
                    self.name,
                    "ipl.charge_dumped",
                    AlarmPriority.MEDIUM,
                    f"{self.name}: the handpiece dumped a charge held unused; pass paused "
                    "(resume to recharge)",
                    False,
                )
            )

    def _step_charging(self, now_s: float, reading: IPLReading) -> None:
        if reading.has(IPLStatus.CHARGED):
            if reading.crystal_temp_c <= self.limits.crystal_arm_max_c:
                self._fire("charged")
            return
        requested = self._charge_requested_s
        if (
            not reading.has(IPLStatus.CHARGING)
            and requested is not None
            and reading.t_s > requested + RECHARGE_AFTER_S
        ):
            # The device dumped an unused charge (it holds one for 30 s): charge again.
            self._charge_requested_s = now_s
            self._device_call("charge", lambda d: d.charge())

    def _step_firing(self, now_s: float, reading: IPLReading) -> None:
        p = self.ipl_pass
        assert p is not None and self._fired_at_s is not None
        # The train is over when every pulse is counted and the device has disarmed:
        # only then does the photodiode's figure cover this whole train.
        if reading.shot_count >= self._shots_before_fire + p.pulse_count and not reading.has(
            IPLStatus.ARMED
        ):
            record = FlashRecord(
                now_s, p.fluence_j_cm2, reading.last_fluence_j_cm2, reading.shot_count
            )
            self.flashes.append(record)
            self._emit("flash", record=record)
            self.log.info(
                "flash",
                delivered_j_cm2=record.delivered_j_cm2,
                set_j_cm2=record.set_fluence_j_cm2,
                shots=record.shot_count,
            )
            before = self._reading_before_fire
            alarm = (
                self.supervisor.check_flash(reading, p.fluence_j_cm2, p.pulse_count, before)
                if before is not None
                else None
            )
            if alarm is not None:
                self._trip(alarm)
                return
            self._fire("pass_done" if len(self.flashes) >= p.flashes else "recharge")
        elif now_s - self._fired_at_s > self.limits.flash_confirm_s + _train_s(p):
            self._trip(
                self._host_fault(
                    "flash_unconfirmed",
                    "no complete flash seen in the shot counter "
                    f"{self.limits.flash_confirm_s + _train_s(p):.2f} s after FIRE",
                )
            )

    def _pause_condition_back(self, reading: IPLReading | None) -> bool:
        return reading is not None and reading.has(IPLStatus.CONTACT_OK)

    def _pause_timeout(self) -> tuple[float, Alarm]:
        timeout_s = self.limits.contact_timeout_s
        return timeout_s, self._host_fault(
            "contact_timeout", f"contact not restored within {timeout_s:.0f} s"
        )

    # -- commands --------------------------------------------------------------------

    def _do_load(self, command: Command) -> bool:
        ipl_pass = command.args.get("ipl_pass")
        if not isinstance(ipl_pass, IPLPass):
            raise ControlError(f"{self.name}: load needs an IPLPass, got {type(ipl_pass).__name__}")
        ipl_pass.validate(self.limits)
        if self.state not in (S.IDLE, S.READY, S.COMPLETE):
            raise ControlError(f"{self.name}: cannot load a pass while {self.state.value}")
        if self.device is None:
            raise ControlError(f"{self.name}: device not connected")
        params = IPLParams(
            ipl_pass.filter_nm,
            ipl_pass.fluence_j_cm2,
            ipl_pass.pulse_width_ms,
            ipl_pass.pulse_count,
            ipl_pass.pulse_delay_ms,
        )
        try:
            self.device.set_params(params)
        except DeviceError as exc:
            # A lost reply does not say whether SET_PARAMS acted: the device may hold
            # the new parameters, the old pass, or neither. Keeping the old pass
            # loaded would let `arm` charge for parameters nobody checked against
            # it, so no pass stays loaded until a load succeeds.
            self.ipl_pass = None
            self.eye_protection_confirmed_by = None
            if self.state is not S.IDLE:
                self._fire("abort")
            raise ControlError(
                f"{self.name}: the parameters were not confirmed by the device ({exc}); "
                "no pass is loaded, load it again"
            ) from exc
        self.ipl_pass = ipl_pass
        self.flashes = []
        self.eye_protection_confirmed_by = None
        return self._fire("load")

    def _do_arm(self, command: Command) -> bool:
        operator = (command.operator_id or "").strip()
        if not (command.args.get("eye_protection") is True and operator):
            raise ControlError(
                f"{self.name}: arming needs the operator's confirmation that eye "
                "protection is on (eye_protection=True with an operator id)"
            )
        if "arm" not in self.machine.get_triggers(self.state):
            raise ControlError(f"{self.name}: cannot arm while {self.state.value}")
        # The record names who confirmed eye protection for the arming that happened:
        # a refused arm neither records a confirmation nor replaces the last one.
        previous = self.eye_protection_confirmed_by
        self.eye_protection_confirmed_by = operator
        refusal = self._arm_refusal()
        if refusal:
            self.eye_protection_confirmed_by = previous
            raise ControlError(f"{self.name}: arm refused: {refusal}")
        self.log.info("eye_protection_confirmed", operator_id=operator)
        self._emit("eye_protection_confirmed", operator_id=operator)
        return self._trigger_checked("arm")

    # -- guards ------------------------------------------------------------------------

    def _may_arm(self, event: Any = None) -> bool:
        return self._arm_refusal() == ""

    def _arm_refusal(self) -> str:
        p = self.ipl_pass
        r = self.reading
        if p is None:
            return "no pass loaded"
        if self.eye_protection_confirmed_by is None:
            return "eye protection not confirmed"
        if self.device is None or r is None:
            return "no fresh status from the device"
        if unchecked := self._unchecked_reading():
            return unchecked
        if not r.has(IPLStatus.FILTER_OK) or r.filter_nm != p.filter_nm:
            return f"filter {r.filter_nm or 'none'} nm inserted, {p.filter_nm} nm required"
        if not r.crystal_temp_c <= self.limits.crystal_arm_max_c:
            return f"crystal {r.crystal_temp_c} degC above {self.limits.crystal_arm_max_c} degC"
        if not r.has(IPLStatus.CONTACT_OK):
            return "no skin contact"
        return ""

    def _may_fire(self, event: Any = None) -> bool:
        return self._fire_refusal() == ""

    def _fire_refusal(self) -> str:
        r = self.reading
        if r is None:
            return "no fresh status from the device"
        if unchecked := self._unchecked_reading():
            return unchecked
        if not r.has(IPLStatus.ARMED):
            return "device does not report armed yet"
        if not r.has(IPLStatus.CONTACT_OK):
            # The contact-loss pause runs after the tick's commands; the firmware's
            # own contact interlock is layer 1 and must not be the only one.
            return "no skin contact"
        p = self.ipl_pass
        if p is None or not r.has(IPLStatus.FILTER_OK) or r.filter_nm != p.filter_nm:
            # A filter swapped after arming: the firmware dumps the charge (layer 1);
            # the host does not rely on it either.
            planned = p.filter_nm if p is not None else "no"
            return f"filter {r.filter_nm or 'none'} nm inserted, {planned} nm planned"
        if self._fired_at_s is not None and (
            self.clock.now() - self._fired_at_s < self.limits.min_interval_s
        ):
            return f"less than {self.limits.min_interval_s} s since the last flash"
        if not r.crystal_temp_c <= self.limits.crystal_arm_max_c:
            return "crystal too warm"
        return ""

    def _refusal_reason(self) -> str:
        if self.state in (S.READY, S.PAUSED):
            return self._arm_refusal()
        return self._fire_refusal()

    # -- state callbacks ---------------------------------------------------------------

    def _device_call(self, what: str, call: Callable[[IPLSource], None]) -> bool:
        """One energy-path command, audited; a failure becomes a latched fault this same tick."""
        try:
            with self.audit.command(what) as step:
                if self.device is None:
                    step.ok, step.error = False, "port closed"
                    self._pending_fault = self._host_fault("command_failed", f"{what}: port closed")
                    return False
                call(self.device)
        except DeviceError as exc:
            self._pending_fault = self._host_fault("command_failed", f"{what}: {exc}")
            return False
        return True

    def _enter_charging(self, event: Any) -> None:
        self._charge_requested_s = self.clock.now()
        self._device_call("charge", lambda d: d.charge())

    def _enter_armed(self, event: Any) -> None:
        self._device_call("arm", lambda d: d.arm())

    def _enter_firing(self, event: Any) -> None:
        r = self.reading
        self._shots_before_fire = r.shot_count if r is not None else 0
        self._reading_before_fire = r
        self._fired_at_s = self.clock.now()
        # Counted before sending: a lost ACK may still have fired.
        self._pulses_commanded += self.ipl_pass.pulse_count if self.ipl_pass else 1
        self._device_call("fire", lambda d: d.fire())

    def _exit_energy(self, event: Any) -> None:
        if event.transition.dest not in _ENERGY_NAMES:
            self.last_safe_state = self._safe_state()

    def _came_from_energy_state(self, event: Any) -> bool:
        return bool(event.transition.source in _ENERGY_NAMES)

    def _shows_energy(self, reading: IPLReading) -> bool:
        return bool(int(reading.status) & _ENERGY_BITS)

    def _turn_off(self, device: IPLSource) -> None:
        device.disarm()

    def _confirm_off(self, device: IPLSource) -> bool:
        return not int(device.read().status) & _ENERGY_BITS

    def _on_acknowledged(self) -> None:
        self.supervisor.reset()
        self._pulses_commanded = 0

    # -- what front-ends show ------------------------------------------------------

    def status(self) -> dict[str, Any]:
        r = self.reading
        p = self.ipl_pass
        return {
            "state": self.state.value,
            "flashes_done": len(self.flashes),
            "flashes_planned": p.flashes if p else 0,
            "charge_pct": r.charge_pct if r else None,
            "crystal_c": r.crystal_temp_c if r else None,
            "block_c": r.block_temp_c if r else None,
            "shots": r.shot_count if r else None,
            "lamp_life_pct": r.lamp_life_pct if r else None,
            "last_fluence_j_cm2": r.last_fluence_j_cm2 if r else None,
            "fault": self.fault_alarm.message if self.fault_alarm else None,
        }
