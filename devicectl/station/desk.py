"""The service's seat on the control loop: sessions, E-stop, snapshots, attendance.

``StationDesk`` is a loop member (like a device controller that reads no
device), so everything it does runs on the loop thread, in the command phase
of a tick or in its ``step``:

- ``start_session`` creates the session runner (operator gates on: every arm,
  start, flash and confirmation comes from an operator) for the signed-in
  operator; a finished runner is taken off the loop first. An ``unattended``
  session (a script's ``--yes``) has the runner confirm manual steps and send
  its own commands as ``auto``; the gates stay the operator's.
- ``estop`` puts every device in its emergency-stop state in one call; it needs
  no operator and is refused by nothing.
- ``acknowledge`` acknowledges a device's latched fault (or every latched one).
- ``refused`` records a command the service refused (an energy command from a
  connection with nobody signed in, a supervisor's method from an operator): it
  becomes an event of the record and a log line, naming who tried it, if anyone.
- ``snapshot`` copies the whole station state, consistent at one tick.
- Garbage: once a session has ended and no device is energised, ``act`` asks
  the loop's GC policy for one full collection (``GCPolicy.request_full``),
  made in the slack after the next tick: what the sessions left in the oldest
  generation is freed between sessions, never during one.
- Attendance: while energy is delivered and no signed-in client has been
  connected for ``unattended_s`` (3 s), ``step`` pauses the session (author
  ``auto``): every device non-energised; only an operator's resume carries on.
  The service refreshes ``attended_at_s`` from its own thread; if that thread
  stalls, the session pauses too.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from typing import Any

import structlog

from devicectl.control.base import ControllerCore
from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.control.loop import ControlLoop
from devicectl.errors import ControlError, DevicectlError
from devicectl.modality import modalities
from devicectl.session.runner import (
    AUTO_OPERATOR,
    FINISHED,
    SessionRunner,
    SessionState,
)
from devicectl.session.summary import session_ended_s, site_totals, step_result

DESK = "station"
UNATTENDED_S = 3.0
RunnerFactory = Callable[[Any, str, bool], SessionRunner]


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts, enums by value, NaN as None."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, enum.Enum):
        return value.name.lower() if isinstance(value, enum.IntEnum) else plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def device_view(controller: Any, runner: Any = None) -> dict[str, Any]:
    """One device as clients see it: its status, and the output as the device reports it.

    ``console`` is its modality's console view (``Modality.console_view``) as plain
    data, and ``trace`` its modality's trace channel (``[label, degC]`` or null):
    what a console client draws its panel and trace from (``view_from_status``).
    Called on the loop thread.
    """
    status = controller.status() if hasattr(controller, "status") else {}
    view = plain(status)
    view["state"] = controller.state.value
    kind = getattr(controller, "modality", None)
    view["modality"] = kind
    view["latched"] = bool(controller.latched)
    view["output_on"] = controller.reported_energy()
    alarm = controller.fault_alarm
    view["fault"] = alarm.message if alarm is not None else None
    mod = modalities().get(kind) if isinstance(kind, str) else None
    if mod is not None:
        view["console"] = plain(mod.console_view(controller, runner))
        trace = mod.console_trace(controller)
        view["trace"] = plain(list(trace)) if trace is not None else None
    return dict(view)


def alarm_view(alarm: Alarm) -> dict[str, Any]:
    return {
        "device": alarm.device,
        "code": alarm.code,
        "priority": alarm.priority.name.lower(),
        "message": alarm.message,
        "latches": alarm.latches,
        "value": plain(alarm.value),
        "limit": plain(alarm.limit),
        "doc": alarm.doc,
    }


class StationDesk:
    """A loop member with no device: the service's actions on the loop thread."""

    name = DESK

    def __init__(
        self,
        loop: ControlLoop,
        make_runner: RunnerFactory,
        unattended_s: float = UNATTENDED_S,
    ) -> None:
        self.loop = loop
        self.make_runner = make_runner
        self.runner: SessionRunner | None = None
        self.session_id: str | None = None
        self.unattended_s = unattended_s
        # Refreshed by the service thread while a signed-in client is connected.
        self.attended_at_s = loop.clock.now()
        self.unattended_pauses = 0
        self._collected_after: SessionRunner | None = None  # the runner last collected after
        self.log = structlog.get_logger("devicectl.station").bind(device=DESK)

    # -- what the loop calls ---------------------------------------------------------

    def sample(self, now_s: float) -> None:
        """The desk reads no device."""

    def supervise(self, now_s: float) -> None:
        """Supervision belongs to the device controllers."""

    def act(self, now_s: float) -> None:
        self._collect_between_sessions()
        runner = self.runner
        if runner is None or runner.state not in (
            SessionState.RUNNING,
            SessionState.WAITING_CONFIRM,
        ):
            return
        if now_s - self.attended_at_s <= self.unattended_s or not self.energised():
            return
        # Nobody signed in has been connected for unattended_s while energy is on.
        self.unattended_pauses += 1
        self.log.warning("unattended_pause", unattended_s=round(now_s - self.attended_at_s, 2))
        self._emit(
            "unattended",
            operator_id=AUTO_OPERATOR,
            unattended_s=round(now_s - self.attended_at_s, 2),
        )
        runner.handle(Command(runner.name, "pause", {"reason": "unattended"}, AUTO_OPERATOR))

    def _collect_between_sessions(self) -> None:
        """Once per ended session, with no device energised: a full collection asked for."""
        runner = self.runner
        policy = self.loop.gc_policy
        if (
            policy is None
            or runner is None
            or runner is self._collected_after
            or runner.state not in FINISHED
            or self.energised()
        ):
            return
        self._collected_after = runner
        policy.request_full()

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        """The loop's own emergency path reaches every controller itself."""
        return True

    def handle(self, command: Command) -> Any:
        action = command.action
        operator = (command.operator_id or "").strip() or None
        if action == "snapshot":
            return self.snapshot()
        if action == "refused":
            self.log.warning("command_refused", operator_id=operator, **command.args)
            self._emit("command_refused", operator_id=operator, **command.args)
            return True
        self.log.info("command", action=action, operator_id=operator)
        self._emit("command", action=action, operator_id=operator, args=plain(command.args))
        if action == "estop":
            return self.estop_all(operator)
        if operator is None:
            raise ControlError(f"station: {action} needs a signed-in operator")
        if action == "start_session":
            return self._start_session(operator, command.args)
        if action == "acknowledge":
            return self._acknowledge(operator, command.args.get("device"))
        if action == "silence":
            return {"silenced_s": command.args.get("seconds")}  # recorded above
        raise ControlError(f"station: unknown action {action!r}")

    # -- actions ---------------------------------------------------------------------

    def devices(self) -> dict[str, Any]:
        return {n: c for n, c in self.loop.controllers.items() if isinstance(c, ControllerCore)}

    def energised(self) -> bool:
        """Any device in an energy state, or reporting its output on."""
        return any(c.energised or bool(c.reported_energy()) for c in self.devices().values())

    def estop_all(self, operator_id: str | None) -> list[str]:
        """Every device to its emergency-stop state, now, whatever it was doing."""
        stopped = []
        for name, controller in self.devices().items():
            try:
                controller.handle(Command(name, "estop", {}, operator_id))
            except DevicectlError as exc:
                self.log.critical("estop_command_failed", target=name, error=str(exc))
                controller.emergency_stop(operator_id)
            stopped.append(name)
        who = operator_id or "a client not signed in"
        self.log.warning("emergency_stop_all", operator_id=operator_id, devices=stopped)
        alarm = Alarm(
            DESK,
            "station.estop",
            AlarmPriority.HIGH,
            f"EMERGENCY STOP by {who}: every device in its safe state "
            f"({', '.join(stopped) or 'no devices'})",
            latches=False,
        )
        self._emit("alarm", alarm=alarm)
        return stopped

    def _start_session(self, operator: str, args: dict[str, Any]) -> dict[str, Any]:
        if self.runner is not None and self.runner.state not in FINISHED:
            raise ControlError(f"station: a session is {self.runner.state.value}; end it first")
        if self.runner is not None:
            del self.loop.controllers[self.runner.name]  # the command phase: not iterating
        self.session_id = args.get("session_id")
        unattended = bool(args.get("unattended", False))
        self.runner = self.make_runner(args["protocol"], operator, unattended)
        self._emit(
            "session_started",
            operator_id=operator,
            session_id=self.session_id,
            unattended=unattended,
        )
        return {"session_id": self.session_id}

    def _acknowledge(self, operator: str, device: str | None) -> list[str]:
        targets = self.devices()
        if device is not None:
            if device not in targets:
                raise ControlError(f"station: no device named {device!r}")
            targets = {device: targets[device]}
        done = []
        for name, controller in targets.items():
            if controller.latched:
                controller.handle(Command(name, "acknowledge", {}, operator))
                done.append(name)
        return done

    # -- views -------------------------------------------------------------------------

    def session_view(self) -> dict[str, Any] | None:
        runner = self.runner
        if runner is None:
            return None
        current = runner.current + 1 if runner.current < len(runner.steps) else None
        return {
            "session_id": self.session_id,
            "protocol": str(runner.protocol.name),
            "operator_id": runner.operator_id,
            "unattended": runner.auto_confirm,
            "state": runner.state.value,
            "current_step": current,
            "prompt": runner.prompt,
            "awaiting": runner.awaiting,
            "fault": runner.fault_message,
            "started_s": round(runner.started_s, 3),
            "instructions": runner.instructions,
            "offers": list(runner.offers()),
            "paused": runner.paused_devices(),
            "energy": runner.energy_summary(),
            "ended_s": session_ended_s(runner),
            "steps": [
                {
                    "index": s.index,
                    "kind": s.kind,
                    "title": s.title,
                    "outcome": s.outcome,
                    "result": step_result(s.kind, s.outcome, s.detail),
                }
                for s in runner.steps
            ],
            "sites": plain(site_totals(self.devices().values())),
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole station, read on the loop thread between two phases of one tick."""
        devices = self.devices()
        alarms = [alarm_view(c.fault_alarm) for c in devices.values() if c.fault_alarm is not None]
        return {
            "t_s": round(self.loop.clock.now(), 3),
            "tick": self.loop.tick_count,
            "devices": {name: device_view(c, self.runner) for name, c in devices.items()},
            "session": self.session_view(),
            "alarms": alarms,
        }

    def _emit(self, kind: str, **data: Any) -> None:
        self.loop.emit(Event(self.loop.clock.now(), kind, DESK, data))
