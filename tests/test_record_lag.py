"""In real time the record writer must keep up (safety rule 6).

The recorder watches the writer's lag on every tick: a medium
``records.lagging`` alarm above ``lag_warn_ticks`` (once, re-armed below
half of it), and the session's record-lost path above ``lag_lost_ticks``. A
stub writer stands in for a slow database so the lag is exact.
"""

from __future__ import annotations

from typing import Any

from devicectl.clock import SimClock
from devicectl.control.events import AlarmPriority, Event
from devicectl.session.recorder import SessionRecorder
from devicectl.station import Station


class SlowWriter:
    """Accepts everything, commits nothing until told: ``pending_ticks`` is the lag."""

    error = None

    def __init__(self) -> None:
        self.pending_ticks = 0
        self.events: list[Event] = []

    def end_tick(self) -> int:
        self.pending_ticks += 1
        return self.pending_ticks

    def append_event(self, event: Event, step: int | None) -> None:
        self.events.append(event)

    def append_trace(self, *args: Any) -> None:
        pass


def _rig(real_time: bool) -> tuple[Station, SlowWriter, list[str], list[Any]]:
    station = Station(SimClock())
    writer = SlowWriter()
    lost: list[str] = []
    alarms: list[Any] = []
    station.loop.subscribe(lambda e: alarms.append(e.data["alarm"]) if e.kind == "alarm" else None)
    SessionRecorder(
        station,
        writer,  # type: ignore[arg-type]
        step_index=lambda: None,
        on_record_lost=lost.append,
        real_time=real_time,
        lag_warn_ticks=5,
        lag_lost_ticks=12,
    )
    return station, writer, lost, alarms


def test_a_lagging_writer_warns_once_then_stops_the_session() -> None:
    station, writer, lost, alarms = _rig(real_time=True)
    for _ in range(5):
        station.loop.tick()
    assert alarms == [] and lost == []
    station.loop.tick()  # 6 behind
    assert [(a.code, a.priority, a.latches) for a in alarms] == [
        ("records.lagging", AlarmPriority.MEDIUM, False)
    ]
    assert any(e.kind == "alarm" for e in writer.events)  # the alarm is in the record too
    for _ in range(6):
        station.loop.tick()  # 12 behind: still only the warning
    assert len(alarms) == 1 and lost == []
    station.loop.tick()  # 13 behind
    assert len(lost) == 1 and "13 ticks behind" in lost[0]
    station.loop.tick()
    assert len(lost) == 1  # said once


def test_the_warning_re_arms_once_the_writer_caught_up() -> None:
    station, writer, _lost, alarms = _rig(real_time=True)
    for _ in range(6):
        station.loop.tick()
    assert len(alarms) == 1
    writer.pending_ticks = 1
    station.loop.tick()
    writer.pending_ticks = 6
    station.loop.tick()
    assert [a.code for a in alarms] == ["records.lagging", "records.lagging"]


def test_simulated_time_does_not_watch_the_lag() -> None:
    station, _writer, lost, alarms = _rig(real_time=False)
    for _ in range(50):
        station.loop.tick()
    assert alarms == [] and lost == []
