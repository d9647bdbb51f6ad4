"""The console's seat on the control loop: sign-in, emergency stop, acknowledgements.

``ConsoleDesk`` is added to the loop like a device controller (it reads no
device and regulates nothing), so everything it does runs on the loop thread,
between the readings and the regulation of one tick:

- ``sign_in`` creates the session runner for the signed-in operator. The
  runner joins the loop's controllers there, in the command phase, where no
  iteration over the controllers is under way (adding it from the UI thread
  could race the tick).
- ``estop`` puts every device in its emergency-stop state in that one call:
  one command, one tick, all devices; the session then faults at its step.
  It works before sign-in too, and is refused by nothing.
- ``acknowledge`` acknowledges a device's latched fault (or every latched
  device) with the operator's id; ``alarm_ack`` records that the operator saw
  a non-latching alarm, and ``alarm_silence`` that they paused the alarm sound
  (``seconds``: for how long).

Every action goes to the controllers through their ``handle`` with the
operator id, so the log and the record carry who did what.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.control.loop import ControlLoop
from devicectl.errors import ControlError, DevicectlError
from devicectl.session.runner import SessionRunner

DESK = "console"
RunnerFactory = Callable[[str], SessionRunner]


class ConsoleDesk:
    """A loop member with no device: the console's operator actions."""

    name = DESK

    def __init__(self, loop: ControlLoop, make_runner: RunnerFactory | None) -> None:
        self.loop = loop
        self.make_runner = make_runner
        self.runner: SessionRunner | None = None
        self.operator_id: str | None = None
        self.log = structlog.get_logger("devicectl.console").bind(device=DESK)

    # -- what the loop calls ------------------------------------------------------

    def sample(self, now_s: float) -> None:
        """The desk reads no device."""

    def supervise(self, now_s: float) -> None:
        """Supervision belongs to the device controllers."""

    def act(self, now_s: float) -> None:
        """Nothing to regulate."""

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        """The loop's own emergency path reaches every controller itself."""
        return True

    def handle(self, command: Command) -> Any:
        action = command.action
        operator = (command.operator_id or "").strip()
        self.log.info("command", action=action, operator_id=operator or None, **command.args)
        self._emit("command", action=action, operator_id=operator or None, args=command.args)
        if action == "estop":
            return self.estop_all(operator or None)
        if not operator:
            raise ControlError(f"console: {action} needs a signed-in operator")
        if action == "sign_in":
            return self._sign_in(operator, command.args.get("session_id"))
        if action == "acknowledge":
            return self._acknowledge(operator, command.args.get("device"))
        if action in ("alarm_ack", "alarm_silence"):
            return True  # the command event above is the record of it
        raise ControlError(f"console: unknown action {action!r}")

    # -- actions -------------------------------------------------------------------

    def devices(self) -> dict[str, Any]:
        return {
            name: c
            for name, c in self.loop.controllers.items()
            if c is not self and not isinstance(c, SessionRunner)
        }

    def estop_all(self, operator_id: str | None) -> bool:
        """Every device to its emergency-stop state, now, whatever it was doing."""
        stopped = []
        for name, controller in self.devices().items():
            try:
                controller.handle(Command(name, "estop", {}, operator_id))
                stopped.append(name)
            except DevicectlError as exc:
                # handle() refuses nothing for estop; if a device does, stop it directly.
                self.log.critical("estop_command_failed", target=name, error=str(exc))
                controller.emergency_stop(operator_id)
                stopped.append(name)
        who = operator_id or "console (not signed in)"
        self.log.warning("emergency_stop_all", operator_id=operator_id, devices=stopped)
        self._emit(
            "alarm",
            alarm=Alarm(
                DESK,
                "console.estop",
                AlarmPriority.HIGH,
                f"EMERGENCY STOP by {who}: every device in its safe state "
                f"({', '.join(stopped) or 'no devices'})",
                latches=False,
            ),
        )
        return True

    def _sign_in(self, operator: str, session_id: str | None) -> bool:
        if self.runner is not None:
            raise ControlError(f"console: already signed in as {self.operator_id}")
        self.operator_id = operator
        # Every later log line of the loop thread carries who is signed in, and the session.
        structlog.contextvars.bind_contextvars(operator_id=operator)
        if session_id is not None:
            structlog.contextvars.bind_contextvars(session_id=session_id)
        if self.make_runner is not None:
            self.runner = self.make_runner(operator)
        self._emit("signed_in", operator_id=operator)
        return True

    def _acknowledge(self, operator: str, device: str | None) -> list[str]:
        """Acknowledge ``device`` (or every latched device); the names acknowledged."""
        targets = self.devices()
        if device is not None and device != DESK:
            if device not in targets:
                raise ControlError(f"console: no device named {device!r}")
            targets = {device: targets[device]}
        done = []
        for name, controller in targets.items():
            if controller.latched:
                controller.handle(Command(name, "acknowledge", {}, operator))
                done.append(name)
        return done

    def _emit(self, kind: str, **data: Any) -> None:
        self.loop.emit(Event(self.loop.clock.now(), kind, DESK, data))
