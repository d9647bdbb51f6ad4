"""Late is unsafe (safety rule 11): a tick more than 2 periods late is a MEDIUM alarm,
more than 4 periods late a HIGH alarm that puts every device in its safe state.

Lateness is made deterministic in simulated time in the two ways it happens in
real time: the loop thread wakes late (``LateClock``: its next ``sleep_until``
overshoots) or a tick takes too long (a controller that spends simulated time).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing

from devicectl.clock import RealClock, SimClock
from devicectl.control import realtime
from devicectl.control.events import AlarmPriority, Event
from devicectl.control.loop import ControlLoop
from devicectl.modalities.rf.controller import RFState
from devicectl.modalities.rf.limits import RFZone
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for
from tests.served_process import devicectl_script
from tests.test_control_loop import FakeController

OPERATOR = "tech-042"


class LateClock(SimClock):
    """A SimClock whose ``sleep_until`` overshoots: the loop thread woke late.

    ``wake_late(at_s, late_s)``: the first sleep to a deadline at or after
    ``at_s`` returns ``late_s`` after that deadline.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lates: list[tuple[float, float]] = []

    def wake_late(self, at_s: float, late_s: float) -> None:
        self._lates.append((at_s, late_s))
        self._lates.sort()

    def sleep_until(self, deadline_s: float) -> None:
        if self._lates and deadline_s >= self._lates[0][0] - 1e-9:
            _, late_s = self._lates.pop(0)
            deadline_s += late_s
        super().sleep_until(deadline_s)


def loop_alarms(events: list[Event]) -> list[Any]:
    return [e.data["alarm"] for e in events if e.kind == "alarm" and e.device == "loop"]


def make_fake_loop(
    clock: SimClock, *names: str
) -> tuple[ControlLoop, list[Event], list[FakeController]]:
    loop = ControlLoop(clock)
    calls: list[tuple[Any, ...]] = []
    fakes = [FakeController(name, calls, clock=clock) for name in names]
    for controller in fakes:
        loop.add(controller)
    events: list[Event] = []
    loop.subscribe(events.append)
    return loop, events, fakes


def test_a_tick_over_two_periods_late_raises_the_medium_alarm_once_with_its_length() -> None:
    clock = LateClock()
    loop, events, fakes = make_fake_loop(clock, "rf", "led")
    clock.wake_late(0.2, 0.15)  # 3 periods
    clock.wake_late(0.6, 0.09)  # under 2 periods: an overrun, not an alarm
    clock.wake_late(1.0, 0.18)
    loop.run(max_duration_s=1.5)

    alarms = loop_alarms(events)
    assert [a.code for a in alarms] == ["loop.tick_late", "loop.tick_late"]
    assert [a.value for a in alarms] == pytest.approx([150.0, 180.0])
    for alarm in alarms:
        assert alarm.priority is AlarmPriority.MEDIUM
        assert alarm.latches is False
        assert alarm.limit == pytest.approx(100.0)
        assert alarm.device == "loop"
        assert "docs/safety.md#loop-tick_late" in alarm.message
    assert loop.late_ticks == 2
    assert loop.too_late_ticks == 0
    assert loop.overruns == 3
    assert all(f.estops == 0 for f in fakes)  # late, not too late: nothing stopped


def test_a_tick_that_took_too_long_makes_the_next_one_late() -> None:
    """A stalled port in one tick: the next tick starts late by what the stall overran."""
    clock = SimClock()
    loop, events, fakes = make_fake_loop(clock, "rf")
    stalled = []

    def sample(now_s: float) -> None:
        if loop.tick_count == 3 and not stalled:
            stalled.append(now_s)
            clock.sleep(0.2)  # ends 0.15 after the next tick's deadline

    fakes[0].sample = sample  # type: ignore[method-assign]
    loop.run(max_duration_s=0.6)
    alarms = loop_alarms(events)
    assert [a.code for a in alarms] == ["loop.tick_late"]
    assert alarms[0].value == pytest.approx(150.0)


def test_a_tick_over_four_periods_late_stops_every_device_with_a_high_alarm() -> None:
    clock = LateClock()
    loop, events, fakes = make_fake_loop(clock, "rf", "ipl", "led")
    clock.wake_late(0.2, 0.25)
    loop.run(max_duration_s=0.5)

    alarms = loop_alarms(events)
    assert [a.code for a in alarms] == ["loop.tick_too_late"]
    (alarm,) = alarms
    assert alarm.priority is AlarmPriority.HIGH
    assert alarm.value == pytest.approx(250.0)
    assert alarm.limit == pytest.approx(200.0)
    assert [f.estops for f in fakes] == [1, 1, 1]
    assert loop.too_late_ticks == 1
    assert loop.late_ticks == 0  # the high alarm, not both


def test_the_first_tick_of_a_run_is_not_judged_on_an_earlier_runs_schedule() -> None:
    """Time between two runs on the caller's thread (a device booting) is the caller's."""
    clock = SimClock()
    loop, events, fakes = make_fake_loop(clock, "rf")
    loop.run(max_duration_s=0.2)
    clock.sleep(1.0)  # e.g. add() waiting out a device's boot
    loop.run(max_duration_s=0.2)
    assert loop_alarms(events) == []
    assert fakes[0].estops == 0


# -- with the RF simulator delivering ---------------------------------------------------


def delivering_rf(period_s: float) -> tuple[Station, LateClock, Any, str, list[Event]]:
    clock = LateClock()
    station = Station(clock, period_s=period_s)
    url = "sim://rf?seed=7"
    station.add_rf(url)
    events: list[Event] = []
    station.loop.subscribe(events.append)
    station.loop.run(max_duration_s=0.2)
    station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 120.0))
    station.command("rf", "arm", OPERATOR)
    station.command("rf", "start", OPERATOR)
    station.loop.run(max_duration_s=1.0)
    sim = simulator_for(url, clock)
    assert station.loop.controllers["rf"].state is RFState.DELIVERING
    assert sim.output_on
    return station, clock, sim, url, events


def test_a_late_tick_while_rf_delivers_is_alarmed_and_delivery_goes_on() -> None:
    station, clock, sim, _, events = delivering_rf(0.05)
    clock.wake_late(clock.now() + 0.2, 0.12)
    station.loop.run(max_duration_s=0.5)
    assert [a.code for a in loop_alarms(events)] == ["loop.tick_late"]
    assert station.loop.controllers["rf"].state is RFState.DELIVERING
    assert sim.output_on


@pytest.mark.parametrize("period_s", [0.05, 0.02])
def test_a_tick_too_late_turns_rf_delivery_off_at_the_simulator_and_latches(
    period_s: float,
) -> None:
    station, clock, sim, _, events = delivering_rf(period_s)
    clock.wake_late(clock.now() + 0.2, 5 * period_s)
    station.loop.run(until=lambda: bool(loop_alarms(events)), max_duration_s=1.0)
    rf: Any = station.loop.controllers["rf"]
    assert [a.code for a in loop_alarms(events)] == ["loop.tick_too_late"]
    assert rf.state is RFState.ESTOP
    assert rf.latched
    assert rf.last_safe_state is not None and rf.last_safe_state.confirmed
    assert not sim.output_on
    _t_off, on, reason = sim.output_log[-1]
    assert not on
    if period_s < 0.05:
        # 5 periods of 20 ms is inside the device's 250 ms watchdog: the host cut it.
        assert reason == "host"
    # At 50 ms, a tick 4 periods late comes 250 ms after the last frames: the
    # watchdog may have cut first; the host's safe state latched it either way.
    station.loop.run(max_duration_s=0.5)
    assert rf.state is RFState.ESTOP
    assert not sim.output_on


# -- real time: scheduling and the GC policy ------------------------------------------------


def test_real_time_setup_is_a_no_op_in_simulated_time() -> None:
    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    gc_threshold = __import__("gc").get_threshold()
    clock = SimClock()
    loop, _, _ = make_fake_loop(clock, "rf")
    loop.start()
    try:
        deadline = time.monotonic() + 5.0
        while loop.tick_count < 10 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert __import__("gc").get_threshold() == gc_threshold
    finally:
        loop.stop()
    assert loop.scheduling is not None and loop.scheduling.policy == "none"
    assert loop.gc_policy is None
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == before


def fresh_realtime_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """``realtime``'s module logger anew: one used since ``devicectl.logs`` configured
    structlog (cache on first use) would bypass ``capture_logs``."""
    from devicectl.control import realtime

    monkeypatch.setattr(realtime, "log", structlog.get_logger("devicectl.realtime"))


def test_real_time_around_run_on_the_callers_thread_is_set_up_and_undone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    fresh_realtime_log(monkeypatch)
    gc.unfreeze()  # a freeze left by an earlier test would not be the policy's to undo
    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    gc_threshold = gc.get_threshold()
    loop, _, _ = make_fake_loop(RealClock(), "rf")
    with structlog.testing.capture_logs() as logs, loop.real_time():
        assert loop.gc_policy is not None and loop.gc_policy.active
        assert gc.get_threshold()[2] > 1e8  # automatic full collections off
        if os.geteuid() == 0:  # root may lock memory: every page of the process in RAM
            assert loop.memory_locked and locked_kb(os.getpid()) > 0
        loop.run(until=lambda: loop.tick_count >= 3, max_duration_s=5.0)
    assert not loop.memory_locked and locked_kb(os.getpid()) == 0
    (lock_said,) = [e for e in logs if e["event"] == "memory_lock"]
    assert lock_said["locked"] is (os.geteuid() == 0)
    assert loop.scheduling is not None and loop.scheduling.policy in ("fifo", "nice")
    (said,) = [e for e in logs if e["event"] == "realtime"]
    assert said["policy"] == {"fifo": "SCHED_FIFO", "nice": "SCHED_OTHER"}[loop.scheduling.policy]
    assert gc.get_threshold() == gc_threshold  # undone: the thread is the caller's
    assert not loop.gc_policy.active
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == before
    sim_loop, _, _ = make_fake_loop(SimClock(), "rf")
    with sim_loop.real_time():
        assert sim_loop.gc_policy is None and gc.get_threshold() == gc_threshold
    assert sim_loop.scheduling is None


def locked_kb(pid: int) -> int:
    """The process's locked memory (``VmLck`` of /proc/PID/status), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    raise AssertionError("no VmLck line")


def test_memory_is_not_locked_where_a_later_allocation_could_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not root, with a bounded RLIMIT_MEMLOCK: MCL_FUTURE would turn an allocation past
    # the limit into a MemoryError, so nothing is locked and the log says why.
    fresh_realtime_log(monkeypatch)
    monkeypatch.setattr(realtime.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(realtime.resource, "getrlimit", lambda _: (65536, 65536))
    before = locked_kb(os.getpid())
    with structlog.testing.capture_logs() as logs:
        assert realtime.lock_memory() is False
    assert locked_kb(os.getpid()) == before
    (said,) = [e for e in logs if e["event"] == "memory_lock"]
    assert said["locked"] is False and "65536" in said["reason"]


@pytest.mark.skipif(os.geteuid() != 0, reason="locking memory needs root here")
def test_a_served_simulator_locks_its_memory(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [devicectl_script(), "sim", "serve", "rf", "--pty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        serving = json.loads(proc.stdout.readline())
        assert serving["event"] == "serving"
        assert locked_kb(proc.pid) > 0
    finally:
        proc.terminate()
        proc.wait(10)


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_under_cpu_load_every_tick_over_two_periods_late_is_alarmed() -> None:
    """Real time, with a CPU hog per core: what is guaranteed is that a tick starting
    more than 2 periods late raises an alarm, whatever the machine does. Between two
    tick starts more than 3 periods apart, the second tick is more than 2 periods
    late (its deadline is at most one period after the first's start)."""
    import gc

    hogs = [
        multiprocessing.get_context("spawn").Process(target=_burn, args=(20.0,), daemon=True)
        for _ in range(os.cpu_count() or 2)
    ]
    threshold = gc.get_threshold()
    loop = ControlLoop(RealClock(), period_s=0.05)
    loop.add(FakeController("rf", []))
    starts: list[float] = []
    alarmed: set[int] = set()  # indexes in ``starts`` of the ticks that raised a loop alarm

    def on_event(event: Event) -> None:
        if event.kind == "tick":
            starts.append(event.t_s)
        elif event.kind == "alarm" and event.device == "loop":
            alarmed.add(len(starts))  # raised before its tick's own event

    loop.subscribe(on_event)
    try:
        for hog in hogs:
            hog.start()
        loop.start()
        threading.Event().wait(0.5)
        running_threshold = gc.get_threshold()
        threading.Event().wait(2.0)
    finally:
        loop.stop()
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join(5.0)
    assert loop.scheduling is not None and loop.scheduling.policy in ("fifo", "nice")
    assert running_threshold[2] > 1e8  # automatic full collections off while it ran
    assert gc.get_threshold() == threshold  # and back after stop
    assert len(starts) > 10
    late = [i for i in range(1, len(starts)) if starts[i] - starts[i - 1] > 0.15]
    assert set(late) <= alarmed
    assert loop.gc_policy is not None and loop.gc_policy.max_pause_s >= 0.0


def test_the_gc_policy_turns_automatic_full_collections_off_times_them_and_restores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    fresh_realtime_log(monkeypatch)

    from devicectl.control.realtime import NO_FULL_THRESHOLD, GCPolicy

    # A freeze left by an earlier test in this process (a console's start-up) would
    # make the policy's own freeze unrestorable to an exact count: start clean.
    gc.unfreeze()
    threshold = gc.get_threshold()
    freeze_count = gc.get_freeze_count()
    callbacks = list(gc.callbacks)
    policy = GCPolicy(slack_s=0.02)
    policy.start()
    try:
        assert gc.get_threshold() == (threshold[0], threshold[1], NO_FULL_THRESHOLD)
        assert gc.get_freeze_count() > 0  # what start-up built is out of the collector
        gc.collect(0)
        garbage: list[list[Any]] = [[] for _ in range(threshold[0] // 2 + 10)]  # gen 0 half full
        for item in garbage:
            item.append(item)  # cycles: only the collector frees them
        del garbage
        assert policy.in_slack(0.001) is False  # too little time left before the next tick
        assert policy.in_slack(0.04) is True
        # A full collection asked for (between sessions) is made in the next slack.
        policy.request_full()
        assert policy.in_slack(0.001) is False and policy.full_collections == 0
        with structlog.testing.capture_logs() as logs:
            assert policy.in_slack(0.04) is True
        assert policy.full_collections == 1
        assert policy.last_full_pause_s is not None and policy.last_full_pause_s > 0.0
        (logged,) = [e for e in logs if e["event"] == "gc_full"]
        assert logged["pause_ms"] >= 0.0 and "freed" in logged
        assert policy.collections >= 2
        assert policy.max_pause_s > 0.0
    finally:
        policy.stop()
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == freeze_count
    assert gc.callbacks == callbacks
    assert policy.max_pause_ms > 0.0  # the figure outlives the policy


def _policy_in_thread(body: Any) -> tuple[Any, tuple[int, int]]:
    """Run ``body`` on a fresh thread; what it returned and the thread's policy after."""
    out: dict[str, Any] = {}

    def run() -> None:
        out["inside"] = body()
        out["after"] = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10.0)
    return out["inside"], out["after"]


def test_a_gil_sharer_runs_below_the_loop_above_normal_and_is_restored() -> None:
    """The station service's thread shares the GIL with the loop: preempted by a busy
    process while holding it, it would hold the loop up. Inside ``gil_sharer`` it runs
    at SCHED_FIFO below the loop; threads it starts inherit that; after, it is back."""
    from devicectl.control.realtime import FIFO_PRIORITY, SHARER_PRIORITY, gil_sharer

    def body() -> tuple[str, int, int, int]:
        with gil_sharer(RealClock()) as got:
            policy = os.sched_getscheduler(0)
            child: dict[str, int] = {}
            started = threading.Thread(target=lambda: child.update(policy=os.sched_getscheduler(0)))
            started.start()
            started.join(5.0)
            return got.policy, policy, os.sched_getparam(0).sched_priority, child["policy"]

    (got, policy, priority, child_policy), after = _policy_in_thread(body)
    assert after == (os.SCHED_OTHER, 0)
    if got != "fifo":
        pytest.skip(f"SCHED_FIFO not allowed here (got {got}): nothing more to check")
    assert (policy, priority, child_policy) == (os.SCHED_FIFO, SHARER_PRIORITY, os.SCHED_FIFO)
    assert 0 < SHARER_PRIORITY < FIFO_PRIORITY


def test_a_gil_sharer_changes_nothing_in_simulated_time() -> None:
    from devicectl.control.realtime import gil_sharer

    def body() -> tuple[str, int]:
        with gil_sharer(SimClock()) as got:
            return got.policy, os.sched_getscheduler(0)

    (got, policy), after = _policy_in_thread(body)
    assert (got, policy, after) == ("none", os.SCHED_OTHER, (os.SCHED_OTHER, 0))
