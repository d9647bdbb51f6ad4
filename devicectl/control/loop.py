"""The ControlLoop: the one thread that owns all device I/O.

Every tick, at a fixed period (50 ms by default) on the loop's clock:

1. every controller samples its device (one round trip each);
2. every controller's supervisor checks the readings and latches faults:
   after the readings, before any command;
3. queued commands from front-ends are carried out, emergency stops first
   (an acknowledge queued before an emergency stop is refused: it was meant
   for an earlier fault, not for the stop), within a time budget (half a
   period by default): the rest wait for the next tick, so that a burst of
   commands (forty chairs started at once) can never hold the loop past the
   devices' 250 ms watchdogs;
4. every controller acts (``act``): regulates and sends this tick's commands
   (the tick's phases are sample, supervise, commands, act; "step" is kept for
   a protocol's steps);
5. subscribers are told what happened.

Front-ends never touch a driver: they ``submit`` commands (thread-safe) and
``subscribe`` to events. Subscribers run on the loop thread and must only hand
the event on (put it on a queue); a subscriber that raises is dropped and
logged, it can never stop a safety action.

An exception escaping a controller is a bug on an energy path: the loop puts
every device in its safe state and re-raises, it never carries on.

Late is unsafe (safety rule 11). A tick that starts more than
``LATE_PERIODS`` (2) periods after its deadline raises the MEDIUM alarm
``loop.tick_late``; one more than ``TOO_LATE_PERIODS`` (4) periods late raises
the HIGH alarm ``loop.tick_too_late`` and emergency-stops every device before
the tick runs: supervision was not on time, so nothing it would have caught
can be ruled out, and the devices' own 250 ms watchdogs are close. Both are
``alarm`` events of device ``loop``, told to every subscriber. Lateness is
judged on the loop's own schedule: from the second tick of a ``run`` (the
time between two ``run`` calls on the caller's thread is the caller's, and
``start`` begins a fresh schedule). Any tick more than one period late also
counts as an overrun, and the schedule restarts from it.

With a SimClock, ``run`` drives the loop on the caller's thread in virtual
time, where a tick is late only if a controller spends simulated time (a
stalled port) or a test makes it so; with a RealClock, ``start`` runs it on
its own thread in real time, at real-time priority with bounded GC pauses
(``realtime.py``), and ``real_time`` gives a ``run`` on the caller's thread
the same set-up (``devicectl run`` on real devices).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol

import structlog

from devicectl.clock import Clock
from devicectl.control import realtime
from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.devices import frozen_constructor
from devicectl.errors import ControlError, DevicectlError

DEFAULT_PERIOD_S = 0.05
LATE_PERIODS = 2  # a tick later than this many periods is an alarm
TOO_LATE_PERIODS = 4  # ... and later than this, every device goes to its safe state

_new_event = frozen_constructor(Event)  # the tick's own event, built fast


class ModalityController(Protocol):
    """What the loop needs of a controller (RF, IPL, LED)."""

    name: str

    def sample(self, now_s: float) -> None: ...

    def supervise(self, now_s: float) -> None: ...

    def act(self, now_s: float) -> None: ...

    def handle(self, command: Command) -> Any: ...

    def emergency_stop(self, operator_id: str | None = None) -> bool: ...


Subscriber = Callable[[Event], None]


class ControlLoop:
    def __init__(
        self,
        clock: Clock,
        period_s: float = DEFAULT_PERIOD_S,
        command_budget_s: float | None = None,
    ) -> None:
        """``command_budget_s`` (default half the period): once a tick's commands have
        taken that long, the rest wait for the next tick (at least one runs per tick)."""
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.clock = clock
        self.period_s = period_s
        self.command_budget_s = period_s / 2 if command_budget_s is None else command_budget_s
        self._pending: deque[tuple[Command, Future[Any]]] = deque()
        self.controllers: dict[str, ModalityController] = {}
        self.tick_count = 0
        self.overruns = 0
        self.late_ticks = 0  # ticks that raised loop.tick_late
        self.too_late_ticks = 0  # ticks that raised loop.tick_too_late
        self.max_lateness_s = 0.0  # the latest tick start judged, after its deadline
        self.scheduling: realtime.Scheduling | None = None  # what the loop thread got
        self.gc_policy: realtime.GCPolicy | None = None  # in real time, from start()
        self.memory_locked = False  # in real time, from start(): realtime.lock_memory
        self.log = structlog.get_logger("devicectl.loop")
        self._commands: queue.SimpleQueue[tuple[Command, Future[Any]]] = queue.SimpleQueue()
        self._subscribers: list[Subscriber] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_deadline_s: float | None = None

    # -- wiring ------------------------------------------------------------------

    def add(self, controller: ModalityController) -> None:
        if controller.name in self.controllers:
            raise ValueError(f"a controller named {controller.name!r} is already on this loop")
        self.controllers[controller.name] = controller

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # noqa: BLE001 - a broken display must not stop a safety action
                self._subscribers.remove(subscriber)
                self.log.error("subscriber_dropped", subscriber=repr(subscriber), error=repr(exc))

    def submit(self, command: Command) -> Future[Any]:
        """Queue a command for the loop thread (thread-safe); the future holds the result."""
        future: Future[Any] = Future()
        self._commands.put((command, future))
        return future

    # -- the tick --------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock.now()
        controllers = self.controllers.values()
        try:
            for c in controllers:
                c.sample(now)
            for c in controllers:
                c.supervise(now)
            self._run_commands()
            for c in controllers:
                c.act(now)
        except BaseException:
            self._emergency_all("unhandled error in the control loop")
            raise
        self.tick_count += 1
        if self._subscribers:
            self.emit(_new_event(now, "tick", "loop", {"tick": self.tick_count}))

    def _run_commands(self) -> None:
        pending = self._pending
        commands = self._commands
        while not commands.empty():
            try:
                pending.append(commands.get_nowait())
            except queue.Empty:
                break
        if not pending:
            return
        if len(pending) > 1 and any(c.action == "estop" for c, _ in pending):
            # An emergency stop goes before whatever was queued ahead of it (what
            # follows an e-stop is refused while it is latched anyway). The one
            # command not refused while latched is acknowledge: one queued before
            # the stop was meant for an earlier fault and must not clear the stop.
            last_stop = max(i for i, (c, _) in enumerate(pending) if c.action == "estop")
            superseded = [
                item
                for i, item in enumerate(pending)
                if i < last_stop and item[0].action == "acknowledge"
            ]
            dropped = {id(future) for _, future in superseded}
            ordered = sorted(
                (item for item in pending if id(item[1]) not in dropped),
                key=lambda item: item[0].action != "estop",
            )
            pending.clear()
            pending.extend(ordered)
            for command, future in superseded:
                if future.set_running_or_notify_cancel():
                    self._reject(
                        command,
                        future,
                        ControlError(
                            f"{command.device}: acknowledge refused: an emergency stop was "
                            "issued after it; acknowledge again"
                        ),
                    )
        clock = self.clock
        started_s = clock.now()
        while pending:
            command, future = pending.popleft()
            self._run_command(command, future)
            if pending and clock.now() - started_s >= self.command_budget_s:
                if pending[0][0].action == "estop":
                    continue  # never deferred
                self.log.warning(
                    "commands_deferred",
                    deferred=len(pending),
                    spent_s=round(clock.now() - started_s, 4),
                )
                return

    def _run_command(self, command: Command, future: Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        controller = self.controllers.get(command.device)
        try:
            if controller is None:
                raise DevicectlError(f"no device named {command.device!r} on this loop")
            future.set_result(controller.handle(command))
        except DevicectlError as exc:
            self._reject(command, future, exc)
        except BaseException as exc:
            # A bug on the loop thread: the caller must not wait forever; the
            # tick re-raises it after putting every device in its safe state.
            future.set_exception(exc)
            raise

    def _reject(self, command: Command, future: Future[Any], exc: DevicectlError) -> None:
        """A refused command: logged, told to subscribers, its future holds the error."""
        self.log.warning(
            "command_rejected", device=command.device, action=command.action, error=str(exc)
        )
        self.emit(
            Event(
                self.clock.now(),
                "command_rejected",
                command.device,
                {"action": command.action, "error": str(exc)},
            )
        )
        future.set_exception(exc)

    def _judge_lateness(self, late_s: float) -> None:
        """Rule 11 for a tick that starts ``late_s`` after its deadline."""
        if late_s > self.max_lateness_s:
            self.max_lateness_s = late_s
        period = self.period_s
        if late_s > TOO_LATE_PERIODS * period:
            self.too_late_ticks += 1
            self._raise_alarm(
                "loop.tick_too_late",
                AlarmPriority.HIGH,
                "tick started too late to trust supervision: every device to its safe state",
                late_s,
                TOO_LATE_PERIODS * period,
            )
            self._emergency_all("tick too late")
        elif late_s > LATE_PERIODS * period:
            self.late_ticks += 1
            self._raise_alarm(
                "loop.tick_late",
                AlarmPriority.MEDIUM,
                "tick started late",
                late_s,
                LATE_PERIODS * period,
            )

    def _raise_alarm(
        self, code: str, priority: AlarmPriority, condition: str, late_s: float, limit_s: float
    ) -> None:
        """The loop's own alarm (device ``loop``): logged, and emitted to every subscriber."""
        value_ms, limit_ms = round(late_s * 1000, 1), round(limit_s * 1000, 1)
        anchor = code.replace(".", "-")
        alarm = Alarm(
            device="loop",
            code=code,
            priority=priority,
            message=(
                f"loop: {condition}: {value_ms} ms after its deadline, limit {limit_ms} ms; "
                f"see docs/safety.md#{anchor}"
            ),
            latches=False,
            value=value_ms,
            limit=limit_ms,
            doc=f"docs/safety.md#{anchor}",
        )
        level = "error" if priority is AlarmPriority.HIGH else "warning"
        getattr(self.log, level)(
            "alarm", code=code, priority=priority.name, value=value_ms, limit=limit_ms
        )
        self.emit(Event(self.clock.now(), "alarm", "loop", {"alarm": alarm}))

    def _emergency_all(self, reason: str) -> None:
        self.log.critical("loop_emergency", reason=reason)
        for c in self.controllers.values():
            try:
                c.emergency_stop(None)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others; each is logged
                self.log.critical("emergency_stop_failed", device=c.name, error=repr(exc))

    # -- running -----------------------------------------------------------------------

    def run(
        self, until: Callable[[], bool] | None = None, max_duration_s: float | None = None
    ) -> bool:
        """Tick at the period until ``until()`` is true, ``stop()`` or the time runs out.

        Returns True if ``until`` became true. Deadlines advance by one period
        per tick (no drift); a tick that starts more than a period late counts
        as an overrun and the schedule restarts from it. From the second tick
        of a run, a tick more than 2 or 4 periods late is alarmed
        (``_judge_lateness``, safety rule 11).
        """
        clock = self.clock
        period = self.period_s
        end = None if max_duration_s is None else clock.now() + max_duration_s
        deadline = self._next_deadline_s if self._next_deadline_s is not None else clock.now()
        judged = False  # the first tick's deadline may come from an earlier run
        gc_policy = self.gc_policy
        while not self._stop.is_set():
            if until is not None and until():
                self._next_deadline_s = deadline
                return True
            if end is not None and deadline > end:
                self._next_deadline_s = deadline
                return False
            clock.sleep_until(deadline)
            late_s = clock.now() - deadline
            if judged:
                self._judge_lateness(late_s)
            judged = True
            if late_s > period:
                self.overruns += 1
                self.log.warning("tick_overrun", late_s=round(late_s, 4))
                deadline = clock.now()
            self.tick()
            deadline += period
            if gc_policy is not None:
                gc_policy.in_slack(deadline - clock.now())
        self._next_deadline_s = deadline
        return False

    def execute(self, command: Command, max_duration_s: float = 5.0) -> Any:
        """Submit a command and tick until it is done (same thread, for scripted runs)."""
        future = self.submit(command)
        self.run(until=future.done, max_duration_s=max_duration_s)
        if not future.done():
            raise DevicectlError(f"{command.device}: {command.action} not carried out in time")
        return future.result()

    def start(self) -> None:
        """Run the loop on its own thread (real-time use).

        On a RealClock the process's GC pauses are bounded from here on
        (``realtime.GCPolicy``) and its memory locked (``realtime.lock_memory``),
        both undone by ``stop``, and the loop thread asks for
        real-time scheduling as it starts (``realtime.enter``). In simulated
        time neither is touched.
        """
        if self._thread is not None:
            raise RuntimeError("loop already started")
        self._stop.clear()
        self._next_deadline_s = None  # a restarted loop starts its schedule afresh
        self._start_gc_policy()
        self._thread = threading.Thread(
            target=self._run_thread, name="devicectl-control-loop", daemon=True
        )
        self._thread.start()

    def _start_gc_policy(self) -> None:
        """The process's part of real time: bounded GC pauses and its memory locked."""
        if realtime.is_real_time(self.clock):
            self.gc_policy = realtime.GCPolicy(slack_s=self.period_s / 2)
            self.gc_policy.start()
            self.memory_locked = realtime.lock_memory()

    def _stop_gc_policy(self) -> None:
        if self.gc_policy is not None:
            self.gc_policy.stop()  # its figures stay readable (gc_policy.max_pause_ms)
        if self.memory_locked:
            realtime.unlock_memory()
            self.memory_locked = False

    def _run_thread(self) -> None:
        self.scheduling = realtime.enter(self.clock)
        self.run()

    @contextlib.contextmanager
    def real_time(self) -> Iterator[None]:
        """Real time for ``run`` on the calling thread, as :meth:`start` sets up its thread.

        For a loop driven by ``run`` on a RealClock (``devicectl run`` on real
        devices): the process's GC pauses bounded (``realtime.GCPolicy``), its
        memory locked (``realtime.lock_memory``) and the calling thread's real-time
        scheduling asked for (``realtime.enter``, which logs what it got). All are
        undone on leaving: the thread is the
        caller's. In simulated time nothing is touched.
        """
        if not realtime.is_real_time(self.clock):
            yield
            return
        self._start_gc_policy()
        try:
            with realtime.scheduled(self.clock) as self.scheduling:
                yield
        finally:
            self._stop_gc_policy()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._stop_gc_policy()
