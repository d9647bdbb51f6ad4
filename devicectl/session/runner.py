"""The session runner: walks a protocol's steps on the control loop.

Each step is a *plan*: a generator that yields conditions ("wait until the RF
zone is complete") and is advanced by one tick's ``step`` at a time, on the
loop thread, after every device controller has sampled, been supervised and
regulated (the runner is added to the loop last). This is bluesky's shape:
pause, resume and abort fall out of it, and nothing blocks the loop.

Guarantees:
- Manual steps wait for a confirmation with an operator id; with
  ``auto_confirm`` (``--yes``) they are confirmed by the runner and the record
  says so (operator ``auto``, ``unattended`` in the session row).
- The IPL eye-protection confirmation and the flash triggers come from a
  person, except in an unattended run whose devices are all simulators.
- With ``operator_gates`` (the technician console), the runner also waits for
  the operator's ``arm`` and ``start`` of each RF zone, ``next_zone`` after
  moving the handpiece, ``confirm`` (eye protection) of an IPL pass and ``start``
  of an LED exposure; each arrives as a command with the operator's id, so the
  record holds who did it. Without it (scripted runs) those happen by themselves.
- A device fault stops the session at that step (state ``faulted``). After the
  operator acknowledges the device, ``resume`` carries on with what is left of
  that step (remaining zones, flashes or exposure time); ``end`` closes the
  session as faulted. The record sees the step end ``fault`` at the fault and
  start again on resume, so an abandoned step is never left ``running``.
- ``abort`` puts every device in its safe state (abort on the devices that are
  in a treatment state, emergency stop on any that refuse) and ends the session.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from devicectl.control.base import ControllerCore
from devicectl.control.events import Command, Event
from devicectl.errors import ControlError, DevicectlError
from devicectl.modality import modalities
from devicectl.session import offers as offering
from devicectl.station import Station

AUTO_OPERATOR = "auto"
GATE_ACTIONS = ("confirm", "arm", "start", "next_zone")  # answers to a WAITING_CONFIRM prompt
Wait = Callable[[], bool]
Plan = Generator[Wait, None, None]


class SessionState(enum.Enum):
    RUNNING = "running"
    WAITING_CONFIRM = "waiting_confirm"
    PAUSED = "paused"
    FAULTED = "faulted"
    COMPLETE = "complete"
    ABORTED = "aborted"
    ENDED = "ended"  # closed by the operator after a fault


FINISHED = (SessionState.COMPLETE, SessionState.ABORTED, SessionState.ENDED)


@dataclass
class StepProgress:
    index: int
    kind: str
    title: str
    outcome: str = "pending"  # pending, running, complete, fault, aborted
    started_s: float | None = None
    ended_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Technician(Protocol):
    """What the runner asks of the hands at the chair when nobody is there (--yes, demo)."""

    def move_to_next_zone(self, device: str) -> None: ...


class SessionRunner:
    """Runs one protocol on a station; add it to the station's loop after the devices."""

    name = "session"

    def __init__(
        self,
        station: Station,
        protocol: Any,
        *,
        operator_id: str,
        auto_confirm: bool = False,
        technician: Technician | None = None,
        move_s: float = 5.0,
        simulated: bool = False,
        operator_gates: bool = False,
    ) -> None:
        if not operator_id.strip():
            raise ControlError("a session needs an operator id")
        self.station = station
        self.protocol = protocol
        self.operator_id = operator_id
        self.auto_confirm = auto_confirm
        self.simulated = simulated  # every device is a simulator: nobody can be hurt
        self.prompt: str | None = None  # what a WAITING_CONFIRM state waits for
        self.awaiting: str | None = None  # the action that answers the prompt
        self.operator_gates = operator_gates
        self.technician = technician
        self.move_s = move_s
        self.state = SessionState.RUNNING
        self.started_s = station.clock.now()  # the loop clock at sign-in
        self.steps = [
            StepProgress(i + 1, step_kind(step), getattr(step, "title", step_kind(step)))
            for i, step in enumerate(protocol.steps)
        ]
        self.current = 0  # index into steps
        self.fault_message: str | None = None
        self.log = structlog.get_logger("devicectl.session").bind(device="session")
        self._plan: Plan | None = None
        self._wait: Wait | None = None
        self._confirmed_by: str | None = None
        # Who the runner's own device commands are recorded as: in an unattended run
        # nobody is at the chair, so "auto" (safety rule 12); else the session's operator.
        self.author = AUTO_OPERATOR if auto_confirm else operator_id
        self._replan_on_resume = False
        # Per (step index, device): where that step's results begin in the
        # controller's result list, so a step begun again continues with what is left.
        self._results_from: dict[tuple[int, str], int] = {}
        # Per step index: the modality's own bookkeeping across plan restarts.
        self._memos: dict[int, dict[str, Any]] = {}
        self._emit = station.loop.emit
        self._devices_cache: tuple[int, dict[str, Any]] | None = None
        station.loop.add(self)
        # A new session on the station: the last one's hold (complete, aborted, ended)
        # no longer applies; this session holds the devices again as it needs to.
        self._release()

    # -- what the loop calls -----------------------------------------------------------

    def sample(self, now_s: float) -> None:
        """The runner reads no device."""

    def supervise(self, now_s: float) -> None:
        """Device supervision belongs to the device controllers."""

    def act(self, now_s: float) -> None:
        if self.state in FINISHED or self.state is SessionState.FAULTED:
            return
        faulted = self._faulted_device()
        if faulted is not None:
            self._fault(faulted)
            return
        if self.state is SessionState.PAUSED:
            return
        if self.current >= len(self.steps):
            self._finish(SessionState.COMPLETE)
            return
        if self._plan is None:
            self._start_step(now_s)
        self._advance(now_s)

    def handle(self, command: Command) -> Any:
        action = command.action
        operator = command.operator_id or ""
        self.log.info("command", action=action, operator_id=operator)
        self._emit(
            Event(
                self.station.clock.now(),
                "command",
                self.name,
                {"action": action, "operator_id": operator},
            )
        )
        if action in GATE_ACTIONS:
            if not operator.strip():
                raise ControlError(f"{action} needs an operator id")
            if self.state is not SessionState.WAITING_CONFIRM:
                raise ControlError(f"nothing to {action} while {self.state.value}")
            if action != self.awaiting:
                raise ControlError(f"{action} refused: waiting for {self.awaiting} ({self.prompt})")
            self._confirmed_by = operator
            return True
        if action == "pause":
            return self._pause(operator or self.author)
        if action == "resume":
            return self._resume(operator or self.author)
        if action == "abort":
            self.abort(operator)
            return True
        if action == "end":
            if self.state is not SessionState.FAULTED:
                raise ControlError(
                    f"end closes a faulted session; the session is {self.state.value}"
                )
            self._finish(SessionState.ENDED)
            return True
        raise ControlError(f"session: unknown action {action!r}")

    def handle_end(self) -> bool:
        """Close a faulted session (the devices are already in their safe state)."""
        if self.state is not SessionState.FAULTED:
            raise ControlError(f"end closes a faulted session; the session is {self.state.value}")
        self._finish(SessionState.ENDED)
        return True

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        self.abort(operator_id or "")
        return True

    # -- control -------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def abort(self, operator_id: str) -> None:
        """Every device to its safe state, confirmed, then the session ends as aborted."""
        step = self._current_progress()
        self._secure("aborted", operator_id or self.author, pause=False)
        if step is not None and step.outcome == "running":
            self._end_step(step, "aborted")
        self._finish(SessionState.ABORTED)

    def _secure(self, hold: str, author: str, *, pause: bool) -> dict[str, bool]:
        """Safety rules 7 and 9: no device of the session energised, confirmed.

        Every device that is in a treatment state is paused (``pause=True``, where
        the device can pause: RF delivering, LED lit, IPL charging or armed - each
        pause exit turns the output off or disarms and dumps, with readback) or
        aborted (otherwise, and always when ``pause`` is False: an IPL train is
        aborted mid-train). A device that refuses is emergency-stopped. Then every
        device holds ``hold``: energy commands are refused in the controller
        until the session resumes. Returns, per device, whether it is confirmed
        non-energised (False: its port was closed, its own watchdog cuts output).
        """
        confirmed: dict[str, bool] = {}
        progress = self._current_progress()
        for name, controller in self._devices().items():
            controller.session_hold = hold
            mod = modalities().get(controller.modality)
            if controller.latched:
                if mod is not None and progress is not None and progress.kind == mod.name:
                    # Its own fault made it safe: the plan's bookkeeping still closes.
                    mod.on_secure(self, controller, progress, None)
                confirmed[name] = controller.device is not None or not bool(
                    controller.reported_energy()
                )
                continue
            triggers = controller.machine.get_triggers(controller.state)
            action = None
            if pause and "pause" in triggers:
                action = "pause"
            elif _in_treatment(controller) and "abort" in triggers:
                action = "abort"
                self._replan_on_resume = True
            if mod is not None and progress is not None and progress.kind == mod.name:
                mod.on_secure(self, controller, progress, action)
            if action is not None:
                try:
                    controller.handle(Command(name, action, {}, author))
                except DevicectlError as exc:
                    self.log.error("secure_failed", device=name, action=action, error=str(exc))
                    controller.emergency_stop(author)
            if controller.latched or controller.energised:
                # A pause or abort that did not leave it safe: stop it outright.
                controller.emergency_stop(author)
            result = controller.last_safe_state
            confirmed[name] = not (result is not None and result.port_closed)
        self.log.info("session_secured", hold=hold, confirmed=confirmed)
        self._emit(
            Event(
                self.station.clock.now(),
                "session_secured",
                self.name,
                {"hold": hold, "author": author, "confirmed": confirmed},
            )
        )
        return confirmed

    def _release(self) -> None:
        for controller in self._devices().values():
            controller.session_hold = None

    def _pause(self, author: str) -> bool:
        if self.state not in (SessionState.RUNNING, SessionState.WAITING_CONFIRM):
            raise ControlError(f"cannot pause a session that is {self.state.value}")
        self._secure("paused", author, pause=True)
        self._set_state(SessionState.PAUSED)
        return True

    def _resume_paused_devices(self, author: str) -> list[str]:
        """Resume every device found paused, whoever paused it, through its own guards."""
        devices = self._devices()
        resumed = offering.paused_devices(devices)
        for name in resumed:
            devices[name].handle(Command(name, "resume", {}, author))
        return resumed

    def _resume(self, author: str) -> bool:
        if self.state is SessionState.PAUSED:
            self._release()
            if self._replan_on_resume:
                # A device was aborted to make the pause safe (an IPL train): the
                # step begins again with what is left of it.
                self._replan_on_resume = False
                self._plan = None
                self.prompt = None
                self.awaiting = None
                self._set_state(SessionState.RUNNING)
                return True
            try:
                self._resume_paused_devices(author)
            except DevicectlError:
                # Its guard refused (no contact, no fresh reading): the session stays
                # paused and every device held; the operator tries again.
                self._secure("paused", author, pause=True)
                raise
            # Paused while a prompt was open: the prompt still waits for its answer.
            waiting = self.awaiting is not None
            self._set_state(SessionState.WAITING_CONFIRM if waiting else SessionState.RUNNING)
            return True
        if self.state is SessionState.FAULTED:
            still = self._faulted_device()
            if still is not None:
                raise ControlError(f"{still}: acknowledge the device fault first")
            self._release()
            self._replan_on_resume = False
            self._plan = None  # the step starts again with what is left of it
            self.prompt = None
            self.awaiting = None
            self.fault_message = None
            self._set_state(SessionState.RUNNING)
            return True
        # A device paused itself (contact lost, a charge dumped unused): the
        # session's resume is how the operator carries on.
        running = self.state in (SessionState.RUNNING, SessionState.WAITING_CONFIRM)
        if running and self._resume_paused_devices(author):
            return True
        raise ControlError(f"nothing to resume while {self.state.value}")

    # -- plans ---------------------------------------------------------------------------

    def _start_step(self, now_s: float) -> None:
        progress = self.steps[self.current]
        step = self.protocol.steps[self.current]
        # Every log line of the loop thread (devices, loop, runner) carries the step
        # until it ends; the runner runs on the loop thread, so this binds there.
        structlog.contextvars.bind_contextvars(step=progress.index)
        # A step that faulted begins again on resume: the record shows it running
        # again (the store updates the step's row), then ending as it does.
        if progress.outcome in ("pending", "fault"):
            if progress.outcome == "pending":
                progress.started_s = now_s
            progress.outcome = "running"
            progress.ended_s = None
            self.log.info(
                "step_started", step=progress.index, kind=progress.kind, title=progress.title
            )
            self._emit(
                Event(
                    now_s,
                    "step_started",
                    self.name,
                    {"step": progress.index, "kind": progress.kind, "title": progress.title},
                )
            )
        if progress.kind == "manual":
            self._plan = self._manual_plan(step, progress)
        else:
            self._plan = modalities()[progress.kind].plan(self, step, progress)
        self._wait = None

    def _advance(self, now_s: float) -> None:
        assert self._plan is not None
        try:
            while self._wait is None or self._wait():
                self._wait = next(self._plan)
        except StopIteration:
            progress = self.steps[self.current]
            self._end_step(progress, "complete")
            self._plan = None
            self.current += 1
        except ControlError as exc:
            self._fault(str(exc))

    def _devices(self) -> dict[str, Any]:
        """The station's device controllers (the runner itself is on the loop too).

        Asked every tick; controllers are only ever added, so the answer is
        kept until the loop holds a different number of them.
        """
        controllers = self.station.loop.controllers
        if self._devices_cache is None or self._devices_cache[0] != len(controllers):
            devices = {name: c for name, c in controllers.items() if isinstance(c, ControllerCore)}
            self._devices_cache = (len(controllers), devices)
        return self._devices_cache[1]

    def device(self, name: str) -> Any:
        device = self._devices().get(name)
        if device is None:
            raise ControlError(f"this protocol needs a {name} device, and the station has none")
        return device

    def do(self, kind: str, action: str, operator_id: str | None = None, **args: Any) -> Any:
        """Send ``action`` to the ``kind`` device, as ``operator_id`` or the runner's author."""
        controller = self.device(kind)
        return controller.handle(Command(kind, action, args, operator_id or self.author))

    def move_to_next_site(self, kind: str) -> Iterator[Wait]:
        """The technician moves the ``kind`` handpiece to the next site (``move_s``).

        With ``operator_gates`` the operator's ``next_zone`` answer, which the plan
        asks for next, is the move: its prompt comes at once (after a resume too),
        never after ``move_s`` of a screen asking for nothing."""
        if self.technician is not None:
            self.technician.move_to_next_zone(kind)
        if self.operator_gates:
            return
        clock = self.station.clock
        until = clock.now() + self.move_s
        yield lambda: clock.now() >= until

    def wait_confirmation(
        self, progress: StepProgress, prompt: str, action: str = "confirm"
    ) -> Iterator[Wait]:
        """Wait for an operator's ``action`` (with their id) answering ``prompt``."""
        self._confirmed_by = None
        self.prompt = prompt
        self.awaiting = action
        self._set_state(SessionState.WAITING_CONFIRM)
        yield lambda: self._confirmed_by is not None
        self.prompt = None
        self.awaiting = None
        self._set_state(SessionState.RUNNING)

    def offers(self) -> tuple[str, ...]:
        """The actions this runner and the devices would take now (``offers.py``)."""
        return offering.offers(self, self._devices())

    def paused_devices(self) -> list[str]:
        """The devices a ``resume`` would resume now, through their own guards."""
        return offering.paused_devices(self._devices())

    def energy_summary(self) -> str | None:
        """What the current step's device will deliver when its energy goes on."""
        return offering.energy_summary(self, self._devices())

    @property
    def instructions(self) -> str | None:
        """The current step's ``instructions`` (a manual step's) while its prompt waits."""
        if self.awaiting is None or self.current >= len(self.protocol.steps):
            return None
        text = getattr(self.protocol.steps[self.current], "instructions", None)
        return str(text) if text else None

    def confirmed_by(self) -> str | None:
        """The operator id that answered the last prompt (None while it waits)."""
        return self._confirmed_by

    def results_start(self, progress: StepProgress, kind: str, results: list[Any]) -> int:
        """Where ``progress``'s step begins in a controller's ``results``: a step begun
        again after a fault counts what it did before, never starts from nothing."""
        return self._results_from.setdefault((progress.index, kind), len(results))

    def memo(self, progress: StepProgress) -> dict[str, Any]:
        """A modality's scratch space for one step, kept across plan restarts."""
        return self._memos.setdefault(progress.index, {})

    def gated_by(self) -> str | None:
        """Who answered the last gate (the runner's operator when there are no gates)."""
        return self._confirmed_by if self.operator_gates else None

    def gate(self, progress: StepProgress, action: str, prompt: str) -> Iterator[Wait]:
        """With ``operator_gates``, wait for the operator's ``action``; else nothing."""
        if self.operator_gates:
            yield from self.wait_confirmation(progress, prompt, action)

    def _manual_plan(self, step: Any, progress: StepProgress) -> Plan:
        if not getattr(step, "confirm", True):
            return
        if self.auto_confirm:
            self._record_confirmation(progress, AUTO_OPERATOR)
            return
        yield from self.wait_confirmation(progress, f"confirm: {progress.title}")
        self._record_confirmation(progress, self._confirmed_by or "")

    def _record_confirmation(self, progress: StepProgress, operator: str) -> None:
        progress.detail["confirmed_by"] = operator
        self.log.info(
            "manual_step_confirmed",
            step=progress.index,
            operator_id=operator,
            unattended=operator == AUTO_OPERATOR,
        )
        self._emit(
            Event(
                self.station.clock.now(),
                "operator_confirmed",
                self.name,
                {
                    "step": progress.index,
                    "operator_id": operator,
                    "unattended": operator == AUTO_OPERATOR,
                },
            )
        )

    # -- bookkeeping ------------------------------------------------------------------------

    def _faulted_device(self) -> str | None:
        """What stops the session: a latched device's fault, or an emergency stop.

        An emergency stop puts every device in ESTOP at once; it is the station's,
        by its operator, not the fault of whichever device is looked at first."""
        devices = self._devices()
        latched = [(name, c) for name, c in devices.items() if c.latched]
        if not latched:  # every tick of a healthy session
            return None
        for _, controller in latched:
            if controller.fault_alarm is None:
                by = getattr(controller, "estop_by", None)
                if by is not None:
                    return f"EMERGENCY STOP by {by or 'nobody signed in'}"
        name, controller = latched[0]
        alarm = controller.fault_alarm
        # An alarm's message already starts with its device's name.
        return alarm.message if alarm else f"{name}: {controller.state.value}"

    def _fault(self, message: str) -> None:
        """Safety rule 7: one fault, one safe session - every device, not only the
        one that faulted, is made safe (aborted, confirmed) and held."""
        if self.state is SessionState.FAULTED:
            return
        self._secure("faulted", self.author, pause=False)
        self.fault_message = message
        progress = self._current_progress()
        if progress is not None:
            progress.detail["fault"] = message
            if progress.outcome == "running":
                # Recorded now: if nobody resumes, the record must not leave the
                # step 'running' in a session that ended at its fault.
                self._end_step(progress, "fault")
            progress.outcome = "fault"
        self._plan = None
        self.log.error(
            "session_faulted", step=progress.index if progress else None, message=message
        )
        self._set_state(SessionState.FAULTED)

    def _current_progress(self) -> StepProgress | None:
        return self.steps[self.current] if self.current < len(self.steps) else None

    def _end_step(self, progress: StepProgress, outcome: str) -> None:
        progress.outcome = outcome
        progress.ended_s = self.station.clock.now()
        self.log.info("step_ended", step=progress.index, kind=progress.kind, outcome=outcome)
        structlog.contextvars.unbind_contextvars("step")
        self._emit(
            Event(
                progress.ended_s,
                "step_ended",
                self.name,
                {
                    "step": progress.index,
                    "kind": progress.kind,
                    "outcome": outcome,
                    "detail": dict(progress.detail),
                },
            )
        )

    def _set_state(self, state: SessionState) -> None:
        if state is self.state:
            return
        self.state = state
        self.log.info("session_state", state=state.value)
        self._emit(
            Event(self.station.clock.now(), "session_state", self.name, {"state": state.value})
        )

    def _finish(self, state: SessionState) -> None:
        """The session is over: every device safe and held, whatever the outcome."""
        self._plan = None
        if state is not SessionState.ABORTED:  # abort has just secured every device
            self._secure(state.value, self.author, pause=False)
        self._set_state(state)
        structlog.contextvars.unbind_contextvars("step")


def step_kind(step: Any) -> str:
    """The protocol-file kind of a step object ("manual", or its modality's name)."""
    kind = getattr(step, "kind", None)
    if isinstance(kind, str):
        return kind
    raise ControlError(f"unknown step type {type(step).__name__} (it has no kind)")


def _in_treatment(controller: Any) -> bool:
    """A device with a treatment loaded or under way (anything but idle or complete)."""
    return controller.state.value not in ("idle", "complete") and not controller.latched
