"""Feeds a session's events into its durable record, and samples traces.

Runs as a loop subscriber, so it sees every command, state change, alarm and
operator action in the order the loop produced them; the loop's ``tick`` event
marks the end of each tick, and the writer commits everything up to that
marker in one transaction (safety rule 6: a crash loses at most the tick in
flight). On the loop thread all of it is queue puts; the database work is the
writer thread's. The steps table follows the runner's chained ``step_started``
and ``step_ended`` events (the writer writes each row from its event), so
``records verify`` can tell an edited step row.

An alarm (every fault is a latching one) is recorded with the reading of the
tick that raised it: the controller's reading (both skin sensors, impedance,
power ...), its reading error if it had none, and the plotted channels
(commanded power, target, dose) under ``channels``. Those channels are also
written to the trace at the alarm's time, so the trace holds the reading that
tripped, whatever the sampling period (the periodic sample of that device in
the same tick is then skipped). Alarms are rare: this is the only per-event
work the recorder adds on the loop thread.

If the writer reports a database error, the record can no longer be kept: the
session is aborted (every device to its safe state) on that same tick.

In real time the writer must also keep up: safety rule 6 promises that a crash
loses at most the tick in flight, which holds only while the writer commits
each tick before the next one ends. A writer more than ``lag_warn_ticks``
behind (a slow disk, a PostgreSQL server far away) raises a medium
``records.lagging`` alarm, recorded like any other; one more than
``lag_lost_ticks`` behind means a crash now would lose seconds of treatment
record, and the session is aborted as if the record were lost. In simulated
time the loop runs thousands of times faster than any database by design, and
the writer batches whole ticks (nothing is lost but the ticks in flight when
the process dies), so the lag is not watched there, and the writer is asked to
commit at least ``SIM_BATCH_TICKS`` ticks (10 simulated seconds) at a time: fewer
commits, less of the loop's process spent on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from devicectl.clock import SimClock
from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.modality import modalities
from devicectl.records.writer import RecordWriter
from devicectl.station import Station

TRACE_PERIOD_S = 1.0
LAG_WARN_TICKS = 20  # 1 s at the default 50 ms period
LAG_LOST_TICKS = 100  # 5 s
SIM_BATCH_TICKS = 200  # ticks per commit at least (10 simulated s), in simulated time only


class SessionRecorder:
    def __init__(
        self,
        station: Station,
        writer: RecordWriter,
        step_index: Callable[[], int | None],
        on_record_lost: Callable[[str], None],
        trace_period_s: float = TRACE_PERIOD_S,
        real_time: bool | None = None,
        lag_warn_ticks: int = LAG_WARN_TICKS,
        lag_lost_ticks: int = LAG_LOST_TICKS,
    ) -> None:
        """``real_time`` (default: the station's clock is not a SimClock) turns the
        writer-lag watch on."""
        self.station = station
        self.writer = writer
        self._step_index = step_index
        self._on_record_lost = on_record_lost
        self._lost = False
        self.trace_period_s = trace_period_s
        self._next_trace_s = station.clock.now()
        self._watch_lag = (
            not isinstance(station.clock, SimClock) if real_time is None else real_time
        )
        if not self._watch_lag:
            batch_ticks = getattr(writer, "batch_ticks", None)
            if batch_ticks is not None:
                batch_ticks(SIM_BATCH_TICKS)  # never in real time (safety rule 6)
        self.lag_warn_ticks = lag_warn_ticks
        self.lag_lost_ticks = lag_lost_ticks
        self._lag_warned = False
        self._sampled_at: tuple[float, set[str]] = (math.nan, set())  # devices traced at t
        self._unsubscribe = station.loop.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: Event) -> None:
        writer = self.writer
        if writer.error is not None:
            if not self._lost:
                self._lost = True
                self._on_record_lost(str(writer.error))
            return
        kind = event.kind
        if kind == "tick" and event.device == "loop":
            if event.t_s >= self._next_trace_s:
                self._next_trace_s = event.t_s + self.trace_period_s
                self._sample_traces(event.t_s)
            writer.end_tick()
            if self._watch_lag:
                self._check_lag(event.t_s)
            return
        if kind == "alarm":
            event = self._with_reading(event)
        # The runner's step_started/step_ended events also make the step rows: the
        # writer derives each row from the event as chained, in the same commit.
        writer.append_event(event, self._step_index())

    def _with_reading(self, event: Event) -> Event:
        """The alarm event with its device's reading of this tick, also written to the trace."""
        controller = self.station.loop.controllers.get(event.device)
        if controller is None:  # the recorder's own or the session's alarms
            return event
        reading = getattr(controller, "reading", None)
        channels = dict(trace_channels(controller, reading)) if reading is not None else {}
        self._trace_device(event.t_s, event.device, channels)
        data = {
            **event.data,
            "reading": reading,
            "reading_error": getattr(controller, "reading_error", None),
            "channels": channels,
        }
        return Event(event.t_s, event.kind, event.device, data)

    def _trace_device(self, t_s: float, name: str, channels: dict[str, float | None]) -> None:
        t_prev, names = self._sampled_at
        if t_s != t_prev:
            names = set()
            self._sampled_at = (t_s, names)
        if name in names:
            return
        names.add(name)
        step = self._step_index()
        for channel, value in channels.items():
            if value is not None and not math.isnan(value):
                self.writer.append_trace(t_s, name, channel, float(value), step)

    def _check_lag(self, t_s: float) -> None:
        lag = self.writer.pending_ticks
        if lag > self.lag_lost_ticks:
            if self._lost:
                return
            self._lost = True
            self._on_record_lost(
                f"the record is {lag} ticks behind the treatment (limit {self.lag_lost_ticks}): "
                "a crash now would lose them"
            )
        elif lag > self.lag_warn_ticks and not self._lag_warned:
            self._lag_warned = True
            alarm = Alarm(
                "records",
                "records.lagging",
                AlarmPriority.MEDIUM,
                f"records: the record writer is {lag} ticks behind (warning above "
                f"{self.lag_warn_ticks}, session stops above {self.lag_lost_ticks})",
                False,
                lag,
                self.lag_warn_ticks,
                "docs/safety.md#records-lagging",
            )
            self.station.loop.emit(Event(t_s, "alarm", "records", {"alarm": alarm}))
        elif lag <= self.lag_warn_ticks // 2:
            self._lag_warned = False

    def _sample_traces(self, t_s: float) -> None:
        for name, controller in self.station.loop.controllers.items():
            reading = getattr(controller, "reading", None)
            if reading is None:
                continue
            self._trace_device(t_s, name, dict(trace_channels(controller, reading)))


def trace_channels(controller: Any, reading: Any) -> list[tuple[str, float | None]]:
    """What is worth plotting for a device, from its controller and last reading:
    its modality's channels (``Modality.trace_channels``)."""
    mod = modalities().get(getattr(controller, "modality", ""))
    return mod.trace_channels(controller, reading) if mod is not None else []
