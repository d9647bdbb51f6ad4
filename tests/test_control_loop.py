"""The ControlLoop with tiny fake controllers: tick order, the command queue across
threads, rejected commands, broken subscribers, the emergency path and the schedule."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from devicectl.clock import RealClock, SimClock
from devicectl.control.events import Command, Event
from devicectl.control.loop import ControlLoop
from devicectl.errors import ControlError, DevicectlError


class FakeController:
    """Records every call the loop makes, with the clock time and the thread."""

    def __init__(
        self,
        name: str,
        calls: list[tuple[Any, ...]],
        *,
        clock: SimClock | None = None,
        busy_s: float = 0.0,
    ) -> None:
        self.name = name
        self.calls = calls
        self.clock = clock
        self.busy_s = busy_s  # simulated I/O time spent in sample
        self.refuse: DevicectlError | None = None
        self.explode_in: str | None = None
        self.estop_raises = False
        self.threads: dict[str, set[int]] = {}
        self.estops = 0

    def _record(self, phase: str, *extra: Any) -> None:
        self.calls.append((phase, self.name, *extra))
        self.threads.setdefault(phase, set()).add(threading.get_ident())
        if self.explode_in == phase:
            raise RuntimeError(f"{self.name}: bug in {phase}")

    def sample(self, now_s: float) -> None:
        self._record("sample", now_s)
        if self.clock is not None and self.busy_s:
            self.clock.sleep(self.busy_s)

    def supervise(self, now_s: float) -> None:
        self._record("supervise", now_s)

    def act(self, now_s: float) -> None:
        self._record("act", now_s)

    def handle(self, command: Command) -> Any:
        self._record("handle", command.action)
        if self.refuse is not None:
            raise self.refuse
        return f"{self.name} did {command.action}"

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        self.estops += 1
        self.calls.append(("estop", self.name))
        if self.estop_raises:
            raise RuntimeError(f"{self.name}: estop failed")
        return True


def make_loop(*names: str, **kwargs: Any) -> tuple[ControlLoop, list[tuple[Any, ...]], SimClock]:
    clock = SimClock()
    loop = ControlLoop(clock)
    calls: list[tuple[Any, ...]] = []
    for name in names:
        loop.add(FakeController(name, calls, clock=clock, **kwargs))
    return loop, calls, clock


def fake(loop: ControlLoop, name: str) -> FakeController:
    controller = loop.controllers[name]
    assert isinstance(controller, FakeController)
    return controller


def test_tick_samples_all_then_supervises_all_then_commands_then_steps() -> None:
    loop, calls, _clock = make_loop("a", "b", "c")
    f1 = loop.submit(Command("b", "start"))
    f2 = loop.submit(Command("a", "pause"))
    loop.tick()
    assert [c[:2] for c in calls] == [
        ("sample", "a"),
        ("sample", "b"),
        ("sample", "c"),
        ("supervise", "a"),
        ("supervise", "b"),
        ("supervise", "c"),
        ("handle", "b"),  # commands in the order they were submitted
        ("handle", "a"),
        ("act", "a"),
        ("act", "b"),
        ("act", "c"),
    ]
    assert f1.result(0) == "b did start" and f2.result(0) == "a did pause"
    assert loop.tick_count == 1
    # a tick without commands does not handle anything
    calls.clear()
    loop.tick()
    assert [c[0] for c in calls] == ["sample"] * 3 + ["supervise"] * 3 + ["act"] * 3


def test_every_phase_of_a_tick_sees_the_tick_start_time() -> None:
    loop, calls, clock = make_loop("a", "b", busy_s=0.01)
    clock.sleep(1.0)
    loop.tick()
    times = [c[2] for c in calls if c[0] in ("sample", "supervise", "act")]
    assert times == [1.0] * 6
    assert clock.now() == pytest.approx(1.02)  # the fakes' I/O took time


def test_commands_from_other_threads_run_on_the_loop_thread() -> None:
    loop = ControlLoop(RealClock(), period_s=0.005)
    calls: list[tuple[Any, ...]] = []
    controller = FakeController("rf", calls)
    loop.add(controller)
    loop.start()
    try:
        with pytest.raises(RuntimeError):
            loop.start()
        futures = [loop.submit(Command("rf", f"main-{i}")) for i in range(3)]
        worker_futures: list[Any] = []
        worker = threading.Thread(
            target=lambda: worker_futures.extend(
                loop.submit(Command("rf", f"worker-{i}")) for i in range(3)
            )
        )
        worker.start()
        worker.join(2.0)
        results = [f.result(timeout=2.0) for f in futures + worker_futures]
    finally:
        loop.stop()
    assert results == [f"rf did main-{i}" for i in range(3)] + [
        f"rf did worker-{i}" for i in range(3)
    ]
    (loop_thread,) = controller.threads["sample"]
    assert controller.threads["handle"] == {loop_thread}
    assert controller.threads["act"] == {loop_thread}
    assert loop_thread not in (threading.get_ident(), worker.ident)
    # stopped: the thread is gone and no more ticks happen
    assert loop._thread is None
    ticks = loop.tick_count
    assert ticks >= 1
    threading.Event().wait(0.05)  # real time is the point: a live thread would tick
    assert loop.tick_count == ticks


def test_restarting_a_stopped_loop_is_not_an_overrun() -> None:
    """Time spent stopped is not a late tick: the schedule starts afresh on start().
    (Real time is the point here; the period is long enough that a busy machine does
    not overrun for real.)"""
    loop = ControlLoop(RealClock(), period_s=0.05)
    loop.add(FakeController("rf", []))
    loop.start()
    threading.Event().wait(0.07)
    loop.stop()
    first_ticks = loop.tick_count
    assert first_ticks >= 1
    assert loop.overruns == 0
    threading.Event().wait(0.25)  # stopped for five periods
    loop.start()
    threading.Event().wait(0.07)
    loop.stop()
    assert loop.tick_count > first_ticks
    assert loop.overruns == 0


def test_command_for_an_unknown_device_is_rejected() -> None:
    loop, calls, _clock = make_loop("rf")
    events: list[Event] = []
    loop.subscribe(events.append)
    future = loop.submit(Command("ipl", "arm", operator_id="tech-1"))
    loop.tick()
    assert future.done()
    exc = future.exception(0)
    assert isinstance(exc, DevicectlError) and "ipl" in str(exc)
    (rejected,) = [e for e in events if e.kind == "command_rejected"]
    assert rejected.device == "ipl"
    assert rejected.data == {"action": "arm", "error": str(exc)}
    assert not [c for c in calls if c[0] == "handle"]
    assert loop.tick_count == 1  # the tick went on


def test_refused_command_resolves_its_future_with_the_error() -> None:
    loop, _calls, _clock = make_loop("rf", "led")
    events: list[Event] = []
    loop.subscribe(events.append)
    refusal = ControlError("rf: cannot arm while idle")
    fake(loop, "rf").refuse = refusal
    bad = loop.submit(Command("rf", "arm"))
    good = loop.submit(Command("led", "arm"))
    loop.tick()
    assert bad.exception(0) is refusal
    assert good.result(0) == "led did arm"  # one refusal does not block the queue
    rejected = [e for e in events if e.kind == "command_rejected"]
    assert [(e.device, e.data["action"], e.data["error"]) for e in rejected] == [
        ("rf", "arm", str(refusal))
    ]
    with pytest.raises(ControlError):
        bad.result(0)


def test_execute_raises_the_refusal_and_a_cancelled_command_is_skipped() -> None:
    loop, calls, _clock = make_loop("rf")
    fake(loop, "rf").refuse = ControlError("no")
    with pytest.raises(ControlError, match="no"):
        loop.execute(Command("rf", "arm"))
    fake(loop, "rf").refuse = None
    cancelled = loop.submit(Command("rf", "start"))
    assert cancelled.cancel()
    assert loop.execute(Command("rf", "pause")) == "rf did pause"
    assert [c[2] for c in calls if c[0] == "handle"] == ["arm", "pause"]


def test_a_subscriber_that_raises_is_dropped_and_the_loop_goes_on() -> None:
    loop, calls, _clock = make_loop("rf")
    seen: list[Event] = []
    broken_calls: list[Event] = []

    def broken(event: Event) -> None:
        broken_calls.append(event)
        raise ValueError("display gone")

    loop.subscribe(broken)
    loop.subscribe(seen.append)
    loop.tick()
    loop.tick()
    loop.tick()
    assert len(broken_calls) == 1
    assert [e.data["tick"] for e in seen if e.kind == "tick"] == [1, 2, 3]
    assert loop.tick_count == 3
    assert [c[0] for c in calls].count("act") == 3


def test_unsubscribe() -> None:
    loop, _calls, _clock = make_loop("rf")
    seen: list[Event] = []
    remove = loop.subscribe(seen.append)
    loop.tick()
    remove()
    loop.tick()
    assert len(seen) == 1


@pytest.mark.parametrize("phase", ["sample", "supervise", "handle", "act"])
def test_an_exception_from_a_controller_stops_every_controller_and_propagates(
    phase: str,
) -> None:
    loop, calls, _clock = make_loop("rf", "ipl", "led")
    fake(loop, "ipl").explode_in = phase
    fake(loop, "rf").estop_raises = True  # a failing stop must not spare the others
    future = loop.submit(Command("ipl", "start"))
    with pytest.raises(RuntimeError, match=f"bug in {phase}"):
        loop.tick()
    assert [fake(loop, n).estops for n in ("rf", "ipl", "led")] == [1, 1, 1]
    assert calls[-3:] == [("estop", "rf"), ("estop", "ipl"), ("estop", "led")]
    assert loop.tick_count == 0
    handled = [c for c in calls if c[0] == "handle"]
    if phase in ("sample", "supervise"):
        # the tick died before the command phase: no command reaches a device
        assert handled == [] and not future.done()
    if phase == "act":
        assert future.result(0) == "ipl did start"


def test_a_command_whose_handler_crashes_still_resolves_its_future() -> None:
    """A front-end waiting on ``future.result()`` must learn that its command died
    with the loop, not wait forever."""
    loop, _calls, _clock = make_loop("rf")
    fake(loop, "rf").explode_in = "handle"
    future = loop.submit(Command("rf", "start"))
    with pytest.raises(RuntimeError):
        loop.tick()
    assert fake(loop, "rf").estops == 1
    assert future.done(), "the command's future is left pending forever"
    exc = future.exception(0)
    assert isinstance(exc, RuntimeError) and "bug in handle" in str(exc)


def test_a_devicectl_error_outside_a_command_is_not_treated_as_a_refusal() -> None:
    loop, _calls, _clock = make_loop("rf", "led")
    controller = fake(loop, "rf")

    def failing_act(now_s: float) -> None:
        raise ControlError("rf: act failed")

    controller.act = failing_act  # type: ignore[method-assign]
    with pytest.raises(ControlError):
        loop.tick()
    assert fake(loop, "led").estops == 1 and controller.estops == 1


def test_sim_clock_ticks_on_an_exact_grid() -> None:
    loop, calls, _clock = make_loop("rf", busy_s=0.013)  # each tick spends 13 ms in I/O
    assert loop.run(max_duration_s=1.0) is False
    times = [c[2] for c in calls if c[0] == "sample"]
    assert len(times) >= 20
    for i, t in enumerate(times):
        assert math.isclose(t, i * 0.05, abs_tol=1e-9), (i, t)
    # a second run carries on from the next deadline: no tick twice, no gap
    loop.run(max_duration_s=0.5)
    more = [c[2] for c in calls if c[0] == "sample"][len(times) :]
    assert more
    for i, t in enumerate(more, start=len(times)):
        assert math.isclose(t, i * 0.05, abs_tol=1e-9), (i, t)
    assert loop.overruns == 0
    assert loop.tick_count == len(times) + len(more)


def test_run_until_stops_as_soon_as_the_condition_holds() -> None:
    loop, _calls, clock = make_loop("rf")
    assert loop.run(until=lambda: loop.tick_count >= 7, max_duration_s=10.0) is True
    assert loop.tick_count == 7
    assert clock.now() == pytest.approx(0.30)


def test_a_tick_longer_than_a_period_is_an_overrun_and_the_schedule_restarts() -> None:
    loop, calls, clock = make_loop("rf")
    controller = fake(loop, "rf")
    controller.busy_s = 0.0
    slow_tick = 3

    def sample(now_s: float) -> None:
        calls.append(("sample", "rf", now_s))
        if len([c for c in calls if c[0] == "sample"]) == slow_tick:
            clock.sleep(0.12)  # a stalled port

    controller.sample = sample  # type: ignore[method-assign]
    loop.run(max_duration_s=0.5)
    times = [c[2] for c in calls if c[0] == "sample"]
    assert loop.overruns == 1
    assert times[:3] == pytest.approx([0.0, 0.05, 0.10])
    # the late tick ended at 0.22; the next starts then, and the grid follows from it
    assert times[3] == pytest.approx(0.22)
    assert times[4] == pytest.approx(0.27)


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ControlLoop(SimClock(), period_s=0.0)


def test_two_controllers_with_one_name_are_refused() -> None:
    loop, calls, _clock = make_loop("rf")
    with pytest.raises(ValueError, match="rf"):
        loop.add(FakeController("rf", calls))


class SlowHandler(FakeController):
    """A controller whose commands each take ``handle_s`` of (simulated) I/O time."""

    def __init__(self, name: str, calls: list[tuple[Any, ...]], clock: SimClock, handle_s: float):
        super().__init__(name, calls, clock=clock)
        self.handle_s = handle_s

    def handle(self, command: Command) -> Any:
        result = super().handle(command)
        assert self.clock is not None
        self.clock.sleep(self.handle_s)
        return result


def _handled(calls: list[tuple[Any, ...]]) -> list[str]:
    return [c[2] for c in calls if c[0] == "handle"]


def test_a_burst_of_commands_is_spread_over_ticks_within_the_budget() -> None:
    clock = SimClock()
    loop = ControlLoop(clock)  # budget: half of 50 ms
    calls: list[tuple[Any, ...]] = []
    loop.add(SlowHandler("chair", calls, clock, handle_s=0.01))
    futures = [loop.submit(Command("chair", f"start-{i}")) for i in range(7)]
    loop.tick()
    assert _handled(calls) == ["start-0", "start-1", "start-2"]  # 30 ms >= 25 ms: stop
    assert [f.done() for f in futures] == [True] * 3 + [False] * 4
    loop.tick()
    loop.tick()
    assert _handled(calls) == [f"start-{i}" for i in range(7)]  # order kept
    assert all(f.done() for f in futures)
    # Every tick still sampled and supervised the devices.
    assert sum(1 for c in calls if c[0] == "sample") == 3


def test_one_command_runs_every_tick_however_long_it_takes() -> None:
    clock = SimClock()
    loop = ControlLoop(clock)
    calls: list[tuple[Any, ...]] = []
    loop.add(SlowHandler("chair", calls, clock, handle_s=0.2))
    for i in range(2):
        loop.submit(Command("chair", f"slow-{i}"))
    loop.tick()
    assert _handled(calls) == ["slow-0"]
    loop.tick()
    assert _handled(calls) == ["slow-0", "slow-1"]


def test_an_emergency_stop_jumps_the_queue_and_is_never_deferred() -> None:
    clock = SimClock()
    loop = ControlLoop(clock)
    calls: list[tuple[Any, ...]] = []
    loop.add(SlowHandler("chair", calls, clock, handle_s=0.03))  # each over the budget
    for i in range(4):
        loop.submit(Command("chair", f"start-{i}"))
    stops = [loop.submit(Command("chair", "estop")) for _ in range(2)]
    loop.tick()
    # Both stops in this tick, though the first alone spent the budget; then one more.
    assert _handled(calls) == ["estop", "estop"]
    assert all(f.done() for f in stops)
    loop.tick()
    assert _handled(calls) == ["estop", "estop", "start-0"]
