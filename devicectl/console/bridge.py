"""The hand-off between the control loop's thread and the console's UI thread.

Loop -> UI. The bridge is a loop subscriber, so ``_on_event`` runs on the loop
thread; it only ever appends to bounded deques or swaps one reference, never
blocks and never calls into Textual:

- alarms and rejected commands go to bounded deques (oldest dropped first if
  the UI stalls for thousands of them, which a slow screen must not turn into
  a slow loop);
- a full :class:`Snapshot` is built at the end of a tick only when the UI has
  asked for one since the last (``request``), so a loop running thousands of
  ticks a second in simulated time spends one flag test per tick on the
  console, and a frozen or slow UI costs the loop nothing;
- the temperature trace is sampled every ``trace_period_s`` of loop time, so
  it is the same however fast the UI polls.

UI -> loop. Commands go through ``ControlLoop.submit`` only; the bridge never
waits for their future: a refusal comes back as a notice for the status line.

The UI polls (``poll``) on a timer, 10 times a second.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from devicectl.console.snapshot import Snapshot
from devicectl.control.events import Alarm, Command, Event
from devicectl.control.loop import ControlLoop
from devicectl.errors import DevicectlError

TRACE_PERIOD_S = 0.5
TRACE_POINTS = 720  # six minutes of trace at 0.5 s
MAX_PENDING = 1000


@dataclass(frozen=True)
class TracePoint:
    t_s: float
    # (label, skin degC or None) of every device whose modality offers a trace
    # (``Modality.console_trace``), in registry order
    skin_c: tuple[tuple[str, float | None], ...]
    # the device of each channel of ``skin_c``, in the same order
    devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlarmEvent:
    t_s: float
    alarm: Alarm


@dataclass(frozen=True)
class Poll:
    snapshot: Snapshot | None  # None: no new snapshot since the last poll
    alarms: list[AlarmEvent]
    notices: list[str]
    trace: list[TracePoint]  # the whole trace window, oldest first


class LoopBridge:
    def __init__(
        self,
        loop: ControlLoop,
        snapshot_fn: Callable[[float, int], Snapshot],
        trace_fn: Callable[[float], TracePoint],
        trace_period_s: float = TRACE_PERIOD_S,
    ) -> None:
        self.loop = loop
        self._snapshot_fn = snapshot_fn
        self._trace_fn = trace_fn
        self._trace_period_s = trace_period_s
        self._next_trace_s = -1e300
        self._wanted = True
        self._latest: Snapshot | None = None
        self._alarms: collections.deque[AlarmEvent] = collections.deque(maxlen=MAX_PENDING)
        self._notices: collections.deque[str] = collections.deque(maxlen=MAX_PENDING)
        self._trace: collections.deque[TracePoint] = collections.deque(maxlen=TRACE_POINTS)
        self._trace_lock = threading.Lock()
        self._unsubscribe = loop.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    # -- the loop thread ---------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        kind = event.kind
        if kind == "tick":
            t = event.t_s
            if t >= self._next_trace_s:
                self._next_trace_s = t + self._trace_period_s
                point = self._trace_fn(t)
                with self._trace_lock:  # held for one append; the UI copies under it
                    self._trace.append(point)
            if self._wanted:
                self._wanted = False
                self._latest = self._snapshot_fn(t, int(event.data.get("tick", 0)))
        elif kind == "alarm":
            self._alarms.append(AlarmEvent(event.t_s, event.data["alarm"]))
        elif kind == "command_rejected":
            self._notices.append(f"{event.device}: {event.data.get('error', 'refused')}")

    # -- the UI thread --------------------------------------------------------------------

    def poll(self) -> Poll:
        """What arrived since the last poll; asks the loop for the next snapshot."""
        snapshot, self._latest = self._latest, None
        self._wanted = True
        alarms = _drain(self._alarms)
        notices = _drain(self._notices)
        with self._trace_lock:
            trace = list(self._trace)
        return Poll(snapshot, alarms, notices, trace)

    def send(self, command: Command) -> Future[Any]:
        """Queue ``command`` for the loop; never waits. Errors other than the
        ``command_rejected`` the loop reports itself become a notice."""
        future = self.loop.submit(command)
        future.add_done_callback(self._on_done)
        return future

    def _on_done(self, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None and not isinstance(exc, DevicectlError):
            self._notices.append(f"error: {exc!r}")


def _drain(items: collections.deque[Any]) -> list[Any]:
    out = []
    while True:
        try:
            out.append(items.popleft())
        except IndexError:
            return out
