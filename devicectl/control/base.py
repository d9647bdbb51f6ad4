"""What every modality controller (RF, IPL, LED) shares.

A controller owns one device through an *opener* (so it can reconnect after an
acknowledged fault closed the port), one `transitions` machine built from its
own table, and the fault latch. This base holds the parts whose logic is the
same for every modality:

- the lifecycle table (:func:`lifecycle_table`): ``idle -> ready -> <the
  modality's own states> -> complete``, ``pause``/``resume``, ``abort``, and
  the ``fault``/``estop``/``acknowledge`` rows, written once here;
- connecting with a boot wait, sampling, raising and latching alarms, the safe
  state and its latched watch, acknowledgement, emergency stop, pausing with a
  timeout on the condition that paused, and command dispatch;
- the audited command path: the device is wrapped in an
  :class:`~devicectl.control.audit.AuditedDevice`, so every driver call is
  recorded as a ``device_command`` event (``audit.py``).

A subclass provides its states (an Enum with ``IDLE``, ``READY``, ``PAUSED``,
``COMPLETE``, ``FAULT`` and ``ESTOP``) and the table's middle, ``_turn_off``
and ``_confirm_off`` for its device, ``_shows_energy``, ``_check`` (its
supervisor), ``_step`` (its part of the tick) and the guards its table names.
RF and LED share one more layer, the single-output lifecycle of
``lifecycle.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, cast

import structlog
from transitions import Machine

from devicectl.clock import Clock
from devicectl.control.audit import AuditedDevice, CommandAudit
from devicectl.control.events import Alarm, AlarmPriority, Command, Event, fault_alarm
from devicectl.control.safe_state import SafeStateResult, make_safe
from devicectl.devices import DeviceIdentity
from devicectl.errors import ControlError, DeviceError, DeviceTimeout, FaultLatched

CONNECT_TIMEOUT_S = 3.0  # a device may take this long to boot before it answers
# On the loop thread a reconnect may try a few frames (the first after line noise
# can be lost) but must stay well inside the other devices' 250 ms watchdogs.
RECONNECT_WAIT_S = 0.1


def lifecycle_table(
    states: type[enum.Enum],
    middle_states: list[dict[str, Any]],
    middle_transitions: list[dict[str, Any]],
    *,
    pause_from: list[enum.Enum],
    resume_to: enum.Enum,
    guard: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``STATES``/``TRANSITIONS`` table every controller's machine is built from.

    ``idle -> ready`` (``load``) and ``-> idle`` (``abort``) from every active
    state; between ``ready`` and ``complete`` the modality's ``middle_states``
    and ``middle_transitions`` (its energy states and how they are entered and
    left); ``pause`` from ``pause_from`` and ``resume`` to ``resume_to``,
    guarded by ``guard``; ``fault`` from every state but the two latched ones,
    ``estop`` from every state but itself, and ``acknowledge`` out of both
    latched states back to ``idle``. Both latched states run the safe state on
    entry (``_enter_safe_state``).
    """
    S: Any = states
    latched = (S.FAULT, S.ESTOP)
    not_safe = [s for s in S if s not in latched]
    active = [s for s in not_safe if s is not S.IDLE]
    table_states = [
        {"name": S.IDLE},
        {"name": S.READY},
        *middle_states,
        {"name": S.PAUSED},
        {"name": S.COMPLETE},
        *({"name": s, "on_enter": ["_enter_safe_state"]} for s in latched),
    ]
    table_transitions = [
        {"trigger": "load", "source": [S.IDLE, S.READY, S.COMPLETE], "dest": S.READY},
        *middle_transitions,
        {"trigger": "pause", "source": pause_from, "dest": S.PAUSED},
        {"trigger": "resume", "source": S.PAUSED, "dest": resume_to, "conditions": [guard]},
        {"trigger": "abort", "source": active, "dest": S.IDLE},
        {"trigger": "fault", "source": not_safe, "dest": S.FAULT},
        {"trigger": "estop", "source": [*not_safe, S.FAULT], "dest": S.ESTOP},
        {
            "trigger": "acknowledge",
            "source": list(latched),
            "dest": S.IDLE,
            "conditions": ["_ack_allowed"],
        },
    ]
    return table_states, table_transitions


def machine_from_table(
    model: object,
    states: list[dict[str, Any]],
    transitions: list[dict[str, Any]],
    initial: enum.Enum,
    *,
    graph: bool = False,
) -> Machine:
    """A controller's machine from its table; ``graph=True`` gives a mermaid GraphMachine.

    The live controller and ``devicectl diagram`` both build from here, so the
    drawing is the running machine's table, never a copy of it.
    """
    kwargs: dict[str, Any] = {
        "model": model,
        "states": states,
        "transitions": transitions,
        "initial": initial,
        "auto_transitions": False,
        "send_event": True,
        "ignore_invalid_triggers": False,
        "after_state_change": None if graph else "_after_state_change",
    }
    if graph:
        from transitions.extensions import GraphMachine

        return GraphMachine(graph_engine="mermaid", show_conditions=True, **kwargs)
    return Machine(**kwargs)


class Device(Protocol):
    def identify(self) -> DeviceIdentity: ...

    def read(self) -> Any: ...

    def clear_status(self) -> None: ...

    def close(self) -> None: ...


class Timestamped(Protocol):
    """A reading: taken at ``t_s`` on the station's clock."""

    @property
    def t_s(self) -> float: ...


D = TypeVar("D", bound=Device)
R = TypeVar("R", bound=Timestamped)


class ControllerCore(Generic[D, R]):
    """Shared machinery; ``state`` is an Enum with ``FAULT`` and ``ESTOP`` members."""

    modality = "device"
    SAFE_STATE_NAMES = ("FAULT", "ESTOP")
    OPERATOR_ACTIONS: tuple[str, ...] = ("abort", "estop", "acknowledge")
    # Commands that can put energy on (output on, a lamp charged or fired). While a
    # session holds the device (paused, faulted, ended) they are refused here, in the
    # controller, whoever sends them: a console key, a script, a second client.
    ENERGY_ACTIONS: tuple[str, ...] = ("arm", "fire", "start", "resume")
    # The states in which the device has energy on or stored (output on, a lamp
    # charged or armed). The session checks these after it makes a device safe.
    ENERGY_STATE_VALUES: frozenset[str] = frozenset({"delivering"})
    # Where this modality's alarm codes are documented, one section per code (None:
    # docs/safety.md). A third-party modality points at its own documentation.
    ALARM_DOC: str | None = None

    def __init__(
        self,
        opener: Callable[[], D],
        clock: Clock,
        *,
        name: str,
        emit: Callable[[Event], None] | None,
        machine_factory: Callable[[object], Machine],
        initial: enum.Enum,
    ) -> None:
        self.name = name
        self.clock = clock
        self._opener = opener
        self._emit_cb = emit
        self.log = structlog.get_logger(f"devicectl.{self.modality}").bind(device=name)
        self.device: D | None = None
        self.reading: R | None = None
        self.reading_error: str | None = None
        self.fault_alarm: Alarm | None = None
        # Who pressed the emergency stop that put this device in ESTOP ("" if nobody
        # was signed in); None when it is not in ESTOP.
        self.estop_by: str | None = None
        self.last_safe_state: SafeStateResult | None = None
        self.safe_state_confirmed_at_s: float | None = None
        self._pending_fault: Alarm | None = None
        # The reading the supervisor last checked and passed in a non-latched state:
        # the only one an energise guard may rely on (``_unchecked_reading``).
        self._passed_reading: R | None = None
        self._clear_on_first_tick = False
        self._energy_while_latched = False
        # Why the session forbids energy now (None: it does not). Set and cleared only
        # by the session runner on the loop thread (safety rule 9).
        self.session_hold: str | None = None
        # Why the last connect failed, and at which stage ("open": the port;
        # "identify": nothing of this kind answered on it); None once connected.
        # A front-end checks these before it records a session: a port that was
        # never this device is a configuration error, not a treatment fault.
        self.connect_error: DeviceError | None = None
        self.connect_stage: str | None = None
        # Why the controller paused (None when it did not) and when, for the
        # timeout on the condition that paused it (``_step_paused``).
        self.pause_reason: str | None = None
        self.paused_at_s: float | None = None
        self.audit = CommandAudit(clock, self._emit)
        self.state: Any = initial
        self.machine = machine_factory(self)
        self._connect()

    # -- plumbing -------------------------------------------------------------

    def _emit(self, kind: str, **data: Any) -> None:
        if self._emit_cb is not None:
            self._emit_cb(Event(self.clock.now(), kind, self.name, data))

    def _fire(self, trigger: str, **kwargs: Any) -> bool:
        """Run a trigger of the machine; False if its conditions refused it."""
        return bool(self.machine.events[trigger].trigger(self, **kwargs))

    @property
    def energised(self) -> bool:
        """The controller is in one of its energy states (``ENERGY_STATE_VALUES``)."""
        return bool(self.state._value_ in self.ENERGY_STATE_VALUES)  # Enum's value, unwrapped

    @property
    def latched(self) -> bool:
        return self.state._name_ in self.SAFE_STATE_NAMES  # Enum's name, without its property

    def _connect(self, boot_wait_s: float = CONNECT_TIMEOUT_S) -> None:
        """Open the device, clear its power-on flags, and say who it is.

        At start-up it waits up to ``boot_wait_s`` for a device that is still
        booting. On the loop thread (reconnecting on an acknowledgement) it is
        called with a short wait only, so the other devices' ticks are barely held up.
        The whole attempt is one audited ``connect`` command, every try included.
        """
        with self.audit.command("connect", boot_wait_s=boot_wait_s) as step:
            ident = self._open_and_identify(boot_wait_s)
            step.result = ident
            if ident is None:
                step.ok = False
                step.error = f"{self.connect_stage}: {self.connect_error}"
        if ident is None:
            return
        self.connect_error = self.connect_stage = None
        # Flags latched while the host was not yet ticking (another device's boot
        # wait, a reconnect) are cleared once more on the first tick.
        self._clear_on_first_tick = True
        self.log.info("device_connected", model=ident.model, serial=ident.serial)
        self._emit("connected", model=ident.model, serial=ident.serial, firmware=ident.firmware)

    def _open_and_identify(self, boot_wait_s: float) -> DeviceIdentity | None:
        """``_connect``'s device work: None (with the error and the fault kept) if it failed."""
        try:
            opened = self._opener()
        except DeviceError as exc:
            self.connect_error, self.connect_stage = exc, "open"
            self._pending_fault = self._host_fault("connect", f"cannot open device: {exc}")
            return None
        device = cast(D, AuditedDevice(opened, self.audit))
        self.device = device
        # A device that was just powered (or reset) takes a moment to boot.
        deadline = self.clock.now() + boot_wait_s
        while True:
            try:
                device.clear_status()
                return device.identify()
            except DeviceTimeout as exc:
                if self.clock.now() < deadline:
                    self.clock.sleep(0.05)
                    continue
                error: DeviceError = exc
            except DeviceError as exc:
                error = exc
            self.connect_error, self.connect_stage = error, "identify"
            self._pending_fault = self._host_fault("connect", f"device does not answer: {error}")
            self.device = None  # an unanswering device is not connected
            try:
                device.close()
            except DeviceError as exc:
                self.log.warning("close_failed", error=str(exc))
            return None

    def _host_fault(self, condition: str, message: str) -> Alarm:
        """A latching fault of this controller's own finding, linked to its documentation."""
        code = f"{self.modality}.{condition}"
        doc = None if self.ALARM_DOC is None else f"{self.ALARM_DOC}#{code.replace('.', '-')}"
        return fault_alarm(self.name, code, message, doc=doc)

    # -- tick phases ------------------------------------------------------------

    def sample(self, now_s: float) -> None:
        """Take this tick's reading (None, with the error kept, if it failed)."""
        if self.device is None:
            self.reading = None
            self.reading_error = "port closed"
            return
        try:
            if self._clear_on_first_tick:
                self._clear_on_first_tick = False
                self.device.clear_status()
            self.reading = self.device.read()
            self.reading_error = None
        except DeviceError as exc:
            self.reading = None
            self.reading_error = f"{type(exc).__name__}: {exc}"

    # -- faults -------------------------------------------------------------------

    def _raise(self, alarm: Alarm) -> None:
        level = "error" if alarm.priority is AlarmPriority.HIGH else "warning"
        getattr(self.log, level)(
            "alarm",
            code=alarm.code,
            priority=alarm.priority.name,
            message=alarm.message,
            value=alarm.value,
            limit=alarm.limit,
            latches=alarm.latches,
        )
        self._emit("alarm", alarm=alarm)

    def _apply_alarms(self, alarms: list[Alarm]) -> None:
        """Raise every alarm of this tick; latch the first latching one (all are recorded)."""
        first = None
        for alarm in alarms:
            if alarm.latches and first is None:
                first = alarm
            else:
                self._raise(alarm)
        if first is not None:
            self._trip(first)

    def _trip(self, alarm: Alarm) -> None:
        """Latch ``alarm`` as this controller's fault and go to the safe state."""
        self._pending_fault = None
        if self.latched:
            return
        self.fault_alarm = alarm
        self._raise(alarm)
        if self.latched:
            # A subscriber told of the alarm latched the controller itself (an
            # emergency stop from a display's alarm handler); that path already ran
            # the safe state, and `fault` cannot be entered from it.
            return
        self._on_trip(alarm)
        self.last_safe_state = None
        self._fire("fault")

    def _on_trip(self, alarm: Alarm) -> None:
        """Hook: close the step's result before the safe state (default: nothing)."""

    def _shows_energy(self, reading: R) -> bool:
        """Whether ``reading`` shows energy enabled or stored (output on, lamp armed)."""
        raise NotImplementedError

    def reported_energy(self) -> bool | None:
        """Whether the device last reported energy on (output on, lamp charged or armed).

        None before any reading. A safe state confirmed by readback after the
        tick's reading was taken overrides that reading: the readback is the
        newer word from the device, so a front-end never shows "on" for the rest
        of the tick in which an emergency stop turned it off.
        """
        reading = self.reading
        if reading is None:
            return None
        confirmed_at = self.safe_state_confirmed_at_s
        if confirmed_at is not None and reading.t_s <= confirmed_at:
            return False
        return self._shows_energy(reading)

    def supervise(self, now_s: float) -> None:
        """Run the modality's supervisor on this tick's reading; latch the first fault.

        While latched the supervisor does not run; the device is only watched for
        energy (``_watch_latched``). Guaranteed: a reading this method did not pass
        in a non-latched state is never accepted by an energise guard - in the tick
        of an acknowledgement nobody checked it, and a condition still present
        (sensors disagreeing, a device fault bit) would otherwise go unseen.
        """
        self._passed_reading = None
        if self.latched:
            self._watch_latched()
            return
        self._check(now_s)
        if self._pending_fault is not None:
            self._trip(self._pending_fault)
        if not self.latched:
            self._passed_reading = self.reading

    def act(self, now_s: float) -> None:
        """The tick's last phase, after supervision and commands.

        A fault a command of this tick left pending latches now; otherwise the
        modality's own part of the tick runs (``_step``).
        """
        if self._pending_fault is not None:
            self._trip(self._pending_fault)
            return
        self._step(now_s)

    def _step(self, now_s: float) -> None:
        """The modality's part of the tick: regulate, account, finish (``step``)."""
        raise NotImplementedError

    def _check(self, now_s: float) -> None:
        """The modality's supervision of ``self.reading`` (alarms through ``_apply_alarms``)."""
        raise NotImplementedError

    def _unchecked_reading(self) -> str:
        """Why this tick's reading may not be relied on to energise ('' if it may)."""
        if self.reading is None:
            return "no fresh reading from the device"
        if self.reading is not self._passed_reading:
            return "this tick's reading has not been checked by the supervisor; try again"
        return ""

    def _watch_latched(self) -> None:
        """Safety rule 2 for as long as a fault or e-stop is latched, not only on entry.

        The supervisor's limits are about treatment; while latched there is no
        treatment, and the one thing that must hold is that the device stays
        safe. A reading that shows energy (a device that switched itself on, a
        second host on the line) raises a high alarm once per episode, recorded
        like any other, and runs the safe state again on every such tick: off,
        readback, and if that fails the port is closed and the device's own
        watchdog cuts the output. The latch itself is unchanged.
        """
        reading = self.reading
        if reading is None or not self._shows_energy(reading):
            self._energy_while_latched = False
            return
        if not self._energy_while_latched:
            self._energy_while_latched = True
            self._raise(
                self._host_fault(
                    "energy_while_latched",
                    f"device reports energy on while {self.state.value}: safe state again",
                )
            )
        self.last_safe_state = self._safe_state()

    def _turn_off(self, device: D) -> None:
        raise NotImplementedError

    def _confirm_off(self, device: D) -> bool:
        raise NotImplementedError

    def _safe_state(self) -> SafeStateResult:
        device = self.device
        if device is None:
            return SafeStateResult(confirmed=False, port_closed=True, error="port already closed")
        with self.audit.command("safe_state") as step:
            result = make_safe(
                lambda: self._turn_off(device), lambda: self._confirm_off(device), device.close
            )
            step.ok, step.error = result.confirmed, result.error
            step.fields.update(confirmed=result.confirmed, port_closed=result.port_closed)
        if result.port_closed:
            self.device = None
            alarm = self._host_fault(
                "safe_state_unconfirmed",
                f"output off not confirmed ({result.error}); port closed, "
                "device watchdog cuts output",
            )
            self.log.error("safe_state_unconfirmed", error=result.error)
            self._raise(alarm)
            if not self.latched:
                self._pending_fault = alarm
        else:
            self.safe_state_confirmed_at_s = self.clock.now()
            self.log.info("safe_state_confirmed")
        return result

    def confirm_safe(self) -> SafeStateResult:
        """Output off and read back now, in whatever state the controller is.

        For the end of a process (a signal) after the session was aborted: the
        abort's own safe state covers a delivering device; this covers every
        device, and says so device by device. Runs on the loop's thread only.
        A failed readback closes the port and raises the usual
        ``safe_state_unconfirmed`` alarm (``_safe_state``).
        """
        self.last_safe_state = self._safe_state()
        return self.last_safe_state

    def _enter_safe_state(self, event: Any) -> None:
        """FAULT/ESTOP entry: make safe unless the exit from delivering just did."""
        if self.last_safe_state is None or not self._came_from_energy_state(event):
            self.last_safe_state = self._safe_state()

    def _came_from_energy_state(self, event: Any) -> bool:
        return False

    def acknowledge(self, operator_id: str) -> bool:
        """Leave a latched fault: needs an operator id; reconnects a closed port."""
        if not operator_id.strip():
            raise ControlError(f"{self.name}: acknowledging a fault needs an operator id")
        if not self.latched:
            raise ControlError(f"{self.name}: nothing to acknowledge while {self.state.value}")
        if self.device is None:
            self._connect(boot_wait_s=RECONNECT_WAIT_S)
            failure = self._pending_fault
            if self.device is None and failure is not None:
                # Still unreachable: the fault stays latched, now with this reason.
                self._pending_fault = None
                self.fault_alarm = failure
                self._raise(failure)
                raise ControlError(f"{self.name}: cannot acknowledge: {failure.message}")
        else:
            try:
                self.device.clear_status()
            except DeviceError as exc:
                self.log.warning("clear_status_failed", error=str(exc))
        self._pending_fault = None
        ok = self._fire("acknowledge", operator_id=operator_id)
        if ok:
            self.log.info(
                "fault_acknowledged",
                operator_id=operator_id,
                fault=self.fault_alarm.code if self.fault_alarm else None,
            )
            self._emit("acknowledged", operator_id=operator_id)
            self.fault_alarm = None
            self.estop_by = None
            self._on_acknowledged()
        return ok

    def _on_acknowledged(self) -> None:
        """Hook: reset supervision after an acknowledgement."""

    def _ack_allowed(self, event: Any) -> bool:
        return self.device is not None

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        self.log.warning("emergency_stop", operator_id=operator_id)
        if self.state.name == "ESTOP":
            return True
        self.estop_by = (operator_id or "").strip()
        self._on_trip(self._host_fault("estop", "emergency stop"))
        return self._fire("estop")

    # -- pausing ----------------------------------------------------------------------

    # The pause reason whose condition (contact, the canopy interlock) must come back
    # within ``_pause_timeout``; a pause by the operator has no timeout.
    PAUSE_WATCHED: str | None = None

    def _do_pause(self, command: Command) -> bool:
        return self._pause("operator")

    def _pause(self, reason: str) -> bool:
        """Leave the energy state for ``paused`` (its exit makes the device safe)."""
        if "pause" not in self.machine.get_triggers(self.state):
            raise ControlError(f"{self.name}: cannot pause while {self.state.value}")
        self.pause_reason = reason
        self.paused_at_s = self.clock.now()
        self._on_pause()
        return self._fire("pause")

    def _on_pause(self) -> None:
        """Hook: what else stops when delivery pauses (default: nothing)."""

    def _step_paused(self, now_s: float, reading: R | None) -> None:
        """A ``PAUSE_WATCHED`` pause whose condition has not come back in time latches."""
        if self.pause_reason != self.PAUSE_WATCHED or self.paused_at_s is None:
            return
        if self._pause_condition_back(reading):
            return  # the operator resumes
        timeout_s, alarm = self._pause_timeout()
        if now_s - self.paused_at_s > timeout_s:
            self._trip(alarm)

    def _pause_condition_back(self, reading: R | None) -> bool:
        """Whether the condition of a ``PAUSE_WATCHED`` pause is back (or cannot be judged)."""
        raise NotImplementedError

    def _pause_timeout(self) -> tuple[float, Alarm]:
        """The timeout (s) of a ``PAUSE_WATCHED`` pause, and the fault that latches after it."""
        raise NotImplementedError

    # -- commands --------------------------------------------------------------------

    def handle(self, command: Command) -> Any:
        """Carry out an operator or runner command; ControlError if not allowed now.

        ``acknowledge`` and ``estop`` work in every state; everything else is
        refused while a fault is latched. An action with a ``_do_<action>``
        method runs it; any other is the machine trigger of that name.
        """
        action = command.action
        if action not in self.OPERATOR_ACTIONS:
            raise ControlError(
                f"{self.name}: unknown action {action!r} "
                f"(known: {', '.join(self.OPERATOR_ACTIONS)})"
            )
        self.log.info("command", action=action, operator_id=command.operator_id, **command.args)
        self._emit("command", action=action, operator_id=command.operator_id, args=command.args)
        if action == "acknowledge":
            return self.acknowledge(command.operator_id or "")
        if action == "estop":
            return self.emergency_stop(command.operator_id)
        if self.latched:
            raise FaultLatched(
                f"{self.name}: {action} refused: fault latched"
                + (f" ({self.fault_alarm.message})" if self.fault_alarm else "")
                + "; acknowledge it first"
            )
        if action in self.ENERGY_ACTIONS and self.session_hold is not None:
            raise ControlError(f"{self.name}: {action} refused: the session is {self.session_hold}")
        custom = getattr(self, f"_do_{action}", None)
        try:
            if custom is not None:
                return custom(command)
            return self._trigger_checked(action)
        finally:
            # A fault found while carrying out the command (an energy command whose
            # reply was lost, a safe state on exit that could not be confirmed)
            # latches now, before the next queued command of this tick can run:
            # otherwise a pause and resume queued behind a failed start would send
            # the energy command again.
            if self._pending_fault is not None:
                self._trip(self._pending_fault)

    def _trigger_checked(self, action: str) -> bool:
        if action not in self.machine.get_triggers(self.state):
            raise ControlError(f"{self.name}: cannot {action} while {self.state.value}")
        ok = self._fire(action)
        if not ok:
            raise ControlError(f"{self.name}: {action} refused: {self._refusal_reason()}")
        return ok

    def _refusal_reason(self) -> str:
        return "conditions not met"

    def _after_state_change(self, event: Any) -> None:
        src = event.transition.source
        self.log.info("state", state=self.state.value, source=src, trigger=event.event.name)
        self._emit("state", state=self.state.value, source=src, trigger=event.event.name)
