"""The single-output lifecycle: one output, switched on only in ``delivering``.

RF and LED are the same machine with different parameters (``single_output_table``)::

    idle -> ready (load: a plan validated against the limits)
    ready [-> armed (arm, RF only)] -> delivering (start: the guard ``_may_energise``)
    delivering -> paused (operator, or the watched condition lost: contact, interlock)
    paused -> delivering (resume: ``_may_energise`` again)
    delivering -> complete (the plan is done) -> ready (load the next)
    any -> fault | estop ; fault/estop -> idle (acknowledge: ``base.lifecycle_table``)

Guarantees (safety rules 1 and 2 of DESIGN.md): output is switched on only
when ``delivering`` is entered, through a guarded transition, as one audited
``output_on`` command whose failure latches a fault before the next command of
the tick; every exit from ``delivering`` runs the safe state (output off,
confirmed by an ``output_is_on`` readback, else the port closed).

A modality gives its states, its plan (what ``load`` takes), what "the watched
condition is lost" means, how to switch its output on, how a tick of delivery
is accounted, and the result of a plan (``zone_result``, ``step_result``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

from transitions import Machine

from devicectl.clock import Clock
from devicectl.control.base import ControllerCore, Device, R, lifecycle_table
from devicectl.control.events import Alarm, Command, Event
from devicectl.errors import ControlError, DeviceError

ENERGISE_GUARD = "_may_energise"


def single_output_table(
    states: type[enum.Enum], *, armed: bool, done: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The table of a single-output controller; ``armed`` adds the ``armed`` step
    between ``ready`` and ``delivering``; ``done`` is the trigger that completes."""
    S: Any = states
    guard = [ENERGISE_GUARD]
    middle_states: list[dict[str, Any]] = [
        *([{"name": S.ARMED}] if armed else []),
        {"name": S.DELIVERING, "on_enter": ["_enter_delivering"], "on_exit": ["_exit_delivering"]},
    ]
    middle_transitions: list[dict[str, Any]] = [
        *(
            [{"trigger": "arm", "source": S.READY, "dest": S.ARMED, "conditions": guard}]
            if armed
            else []
        ),
        {
            "trigger": "start",
            "source": S.ARMED if armed else S.READY,
            "dest": S.DELIVERING,
            "conditions": guard,
        },
        {"trigger": done, "source": S.DELIVERING, "dest": S.COMPLETE},
    ]
    return lifecycle_table(
        S,
        middle_states,
        middle_transitions,
        pause_from=[S.DELIVERING],
        resume_to=S.DELIVERING,
        guard=ENERGISE_GUARD,
    )


class SingleOutputDevice(Device, Protocol):
    def output_on(self) -> None: ...

    def output_off(self) -> None: ...

    def output_is_on(self) -> bool: ...


OD = TypeVar("OD", bound=SingleOutputDevice)


class SingleOutputController(ControllerCore[OD, R]):
    """What RF and LED share: load, deliver, pause with a watched condition, finish."""

    S: ClassVar[Any]  # the modality's state Enum
    DONE_TRIGGER: ClassVar[str]  # the table's trigger from delivering to complete
    PLAN_ARG: ClassVar[str]  # the ``load`` command's argument: "zone", "step"
    PLAN_TYPE: ClassVar[type]
    PLAN_NAME: ClassVar[str]  # in messages: "cannot load a zone while ..."
    RESULT_EVENT: ClassVar[str]  # the event (and log line) of a plan's result
    limits: Any
    supervisor: Any

    def __init__(
        self,
        opener: Callable[[], OD],
        clock: Clock,
        *,
        name: str,
        emit: Callable[[Event], None] | None,
        machine_factory: Callable[[object], Machine],
    ) -> None:
        self.results: list[Any] = []
        self._plan_open = False
        self._last_step_s: float | None = None
        super().__init__(
            opener,
            clock,
            name=name,
            emit=emit,
            machine_factory=machine_factory,
            initial=self.S.IDLE,
        )

    # -- the tick --------------------------------------------------------------------

    def _step(self, now_s: float) -> None:
        reading = self.reading
        if self.state is self.S.PAUSED:
            self._step_paused(now_s, reading)
            return
        if self.state is not self.S.DELIVERING or reading is None:
            return
        lost = self._condition_lost(reading)
        if lost is not None:
            assert self.PAUSE_WATCHED is not None
            self._pause(self.PAUSE_WATCHED)
            self._raise(lost)
            return
        self._deliver(now_s, reading)

    def _condition_lost(self, reading: R) -> Alarm | None:
        """The medium alarm if ``reading`` shows the watched condition lost (then it pauses)."""
        raise NotImplementedError

    def _deliver(self, now_s: float, reading: R) -> None:
        """A tick of delivery: account it, regulate, fire ``DONE_TRIGGER`` when done."""
        raise NotImplementedError

    # -- operator commands --------------------------------------------------------------

    def _do_load(self, command: Command) -> bool:
        plan = command.args.get(self.PLAN_ARG)
        if not isinstance(plan, self.PLAN_TYPE):
            raise ControlError(
                f"{self.name}: load needs an {self.PLAN_TYPE.__name__}, got {type(plan).__name__}"
            )
        return self.load_plan(plan)

    def load_plan(self, plan: Any) -> bool:
        """Validate ``plan`` against the limits and load it (from idle, ready or complete)."""
        plan.validate(self.limits)
        if self.state not in (self.S.IDLE, self.S.READY, self.S.COMPLETE):
            raise ControlError(
                f"{self.name}: cannot load a {self.PLAN_NAME} while {self.state.value}"
            )
        self._begin_plan(plan)
        self._plan_open = True
        return self._fire("load")

    def _begin_plan(self, plan: Any) -> None:
        """Take ``plan`` as the one to deliver (or refuse it with a ControlError)."""
        raise NotImplementedError

    def _do_abort(self, command: Command) -> bool:
        if "abort" in self.machine.get_triggers(self.state):
            self._close_plan("aborted")
        return self._trigger_checked("abort")

    # -- guards ----------------------------------------------------------------------------

    def _may_energise(self, event: Any = None) -> bool:
        return self._refusal_reason() == ""

    # -- delivering: the only state with output on -------------------------------------------

    def _enter_delivering(self, event: Any) -> None:
        device = self.device
        assert device is not None
        now = self.clock.now()
        self._last_step_s = now
        args = self._prepare_output(now)
        try:
            with self.audit.command("output_on", **args):
                self._output_on(device, args)
        except DeviceError as exc:
            # The state is already `delivering`; the fault (and its safe state)
            # latches as soon as this command returns (``handle``), before any
            # other command of the tick.
            self._pending_fault = self._host_fault("command_failed", f"output on: {exc}")
            return
        self.pause_reason = None
        self.paused_at_s = None

    def _prepare_output(self, now_s: float) -> dict[str, Any]:
        """What ``output_on`` will set (recorded as the command's arguments)."""
        raise NotImplementedError

    def _output_on(self, device: OD, args: dict[str, Any]) -> None:
        """The device calls that switch the output on with ``args``."""
        raise NotImplementedError

    def _exit_delivering(self, event: Any) -> None:
        self.last_safe_state = self._safe_state()

    def _came_from_energy_state(self, event: Any) -> bool:
        return bool(event.transition.source == self.S.DELIVERING.name)

    def _turn_off(self, device: OD) -> None:
        device.output_off()

    def _confirm_off(self, device: OD) -> bool:
        return not device.output_is_on()

    # -- the plan's end ------------------------------------------------------------------

    def _on_acknowledged(self) -> None:
        self.supervisor.reset()

    def _on_trip(self, alarm: Alarm) -> None:
        self._close_plan("estop" if alarm.code.endswith(".estop") else "fault")

    def _after_state_change(self, event: Any) -> None:
        super()._after_state_change(event)
        if self.state is self.S.COMPLETE:
            self._close_plan("complete")

    def _close_plan(self, outcome: str) -> None:
        if not self._plan_open:
            return
        self._plan_open = False
        result = self._plan_result(outcome)
        self.results.append(result)
        self._emit(self.RESULT_EVENT, result=result)
        self.log.info(self.RESULT_EVENT, **result.__dict__)

    def _plan_result(self, outcome: str) -> Any:
        """The loaded plan's result, ended with ``outcome``."""
        raise NotImplementedError

    @property
    def output_expected(self) -> bool:
        return self.state is self.S.DELIVERING
