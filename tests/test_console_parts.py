"""The console's parts without a screen: the loop bridge, the alarm list, the paced clock."""

from __future__ import annotations

import time

import pytest

from devicectl.clock import PacedSimClock, SimClock
from devicectl.console.alarms import AlarmBoard
from devicectl.console.bridge import MAX_PENDING, AlarmEvent, LoopBridge, TracePoint
from devicectl.console.panels import output_badge, render_alarms
from devicectl.console.snapshot import Snapshot
from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.control.loop import ControlLoop
from devicectl.modalities.ipl.console import IPLView
from devicectl.modality import modality


class _Quiet:
    """A loop member that only raises an alarm every tick (a flood)."""

    name = "quiet"

    def __init__(self, loop: ControlLoop) -> None:
        self.loop = loop

    def sample(self, now_s: float) -> None: ...

    def supervise(self, now_s: float) -> None: ...

    def act(self, now_s: float) -> None:
        alarm = Alarm("quiet", "quiet.flood", AlarmPriority.LOW, "flood", latches=False)
        self.loop.emit(Event(now_s, "alarm", "quiet", {"alarm": alarm}))

    def handle(self, command: Command) -> bool:
        return True

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        return True


def _bridge() -> tuple[ControlLoop, LoopBridge, list[int]]:
    loop = ControlLoop(SimClock())
    loop.add(_Quiet(loop))
    built: list[int] = []

    def snapshot(t_s: float, tick: int) -> Snapshot:
        built.append(tick)
        return Snapshot(t_s, tick, None)

    return loop, LoopBridge(loop, snapshot, lambda t: TracePoint(t, (("RF skin", 33.0),))), built


def test_a_ui_that_never_polls_costs_the_loop_one_snapshot_and_bounded_queues() -> None:
    loop, bridge, built = _bridge()
    loop.run(max_duration_s=200.0)  # 4,000 ticks, 4,000 alarms, nobody reading
    assert loop.tick_count > 3000
    assert built == [1]  # only the one asked for at start
    poll = bridge.poll()
    assert poll.snapshot is not None and poll.snapshot.tick == 1
    assert len(poll.alarms) == MAX_PENDING  # the oldest were dropped, not queued forever
    assert len(poll.trace) > 300 and poll.trace[-1].t_s > poll.trace[0].t_s
    loop.run(max_duration_s=1.0)
    assert len(built) == 2 and bridge.poll().snapshot is not None  # the next tick after asking


def test_commands_go_through_submit_and_never_block_the_caller() -> None:
    loop, bridge, _ = _bridge()
    future = bridge.send(Command("nobody", "fire", {}, "tech-1"))
    assert not future.done()  # nothing ran on this thread
    loop.run(max_duration_s=0.1)
    assert isinstance(future.exception(), Exception)
    assert "no device named 'nobody'" in str(future.exception())


def _alarm(t: float, code: str, priority: AlarmPriority, device: str = "rf") -> AlarmEvent:
    return AlarmEvent(t, Alarm(device, code, priority, f"{device}: {code}", latches=False))


def test_alarms_oldest_unacknowledged_first_repeats_counted_ack_needs_an_operator() -> None:
    board = AlarmBoard()
    board.add(_alarm(5.0, "rf.contact_lost", AlarmPriority.MEDIUM))
    board.add(_alarm(2.0, "led.step_done", AlarmPriority.LOW, "led"))
    board.add(_alarm(9.0, "rf.runaway", AlarmPriority.HIGH))
    board.add(_alarm(12.0, "rf.contact_lost", AlarmPriority.MEDIUM))  # the same, again
    assert [e.alarm.code for e in board.ordered()] == [
        "led.step_done",
        "rf.contact_lost",
        "rf.runaway",
    ]
    assert board.ordered()[1].count == 2
    oldest = board.oldest()
    assert oldest is not None
    with pytest.raises(ValueError):
        board.acknowledge(oldest, " ")
    board.acknowledge(oldest, "tech-1")
    assert [e.alarm.code for e in board.ordered()] == [
        "rf.contact_lost",
        "rf.runaway",
        "led.step_done",  # acknowledged ones go last
    ]
    text = render_alarms(board.ordered())
    assert text.plain.splitlines()[1].startswith(" HIGH ")
    assert "(ack tech-1)" in text.plain.splitlines()[2]
    high = [s for s in text.spans if "on red" in str(s.style)]
    assert high, "a HIGH alarm is drawn on red"


def test_output_is_said_in_words_not_only_colour() -> None:
    assert "OUTPUT ON" in output_badge(True).plain
    assert "output off" in output_badge(False).plain
    assert "NO READING" in output_badge(None).plain


def test_the_ipl_panel_says_energy_on_only_for_a_charged_handpiece() -> None:
    # A dumped charge is the controller's business now (ipl.charge_dumped pauses the
    # pass): the panel only has to show the energy the device reports.
    render_ipl = modality("ipl").render_panel
    charged = IPLView("armed", True, 100.0, 5.0, 10.0, 12, 11.9, 12.0, 3, 40, None)
    assert "ENERGY ON" in render_ipl(charged).plain
    dumped = IPLView("paused", False, 0.0, 5.0, 10.0, 12, 11.9, 12.0, 3, 40, None)
    assert "ENERGY ON" not in render_ipl(dumped).plain
    assert "energy off" in render_ipl(dumped).plain


def test_paced_clock_holds_simulated_time_to_speed_times_wall_time() -> None:
    clock = PacedSimClock(speed=200.0)
    start = time.monotonic()
    for _ in range(40):
        clock.sleep(0.5)  # 20 simulated seconds
    assert time.monotonic() - start >= 20.0 / 200.0 * 0.9
    clock.set_speed(0)
    start = time.monotonic()
    clock.sleep(1000.0)
    assert time.monotonic() - start < 0.05  # unpaced
    assert clock.now() == pytest.approx(1020.0)


def test_starting_the_console_moves_start_up_objects_out_of_the_collector() -> None:
    # A full collection pauses the loop thread too; what start-up built is frozen so
    # that collections scan only what the session adds (safety.md section 6, item 46).
    import gc

    from console_helpers import PORE_PATROL

    from devicectl.console.backend import ConsoleBackend, ConsoleConfig

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    backend = ConsoleBackend(ConsoleConfig(PORE_PATROL, fast=True, speed=0, record=False))
    try:
        backend.start()
        assert gc.get_freeze_count() > 0
    finally:
        backend.close()
