"""The alarms the console shows, in IEC 60601-1-8 order: oldest unacknowledged first.

Colours follow IEC 60601-1-8: HIGH red, MEDIUM yellow, LOW cyan; the priority
is also written out, so colour is never the only cue. An alarm that repeats
(same device and code) while still unacknowledged is counted on its row, not
added again, so a flapping condition cannot push older alarms off the screen.
Acknowledging needs the operator's id and is kept on the row.

Entries are immutable: a repeat or an acknowledgement replaces the entry, so
the list the panel is given compares unequal to the one it last drew, and the
row is redrawn at once.

Each alarm is shown with two times a person can read: the time into the
session (mm:ss on the loop clock from sign-in, so simulated time in ``--fast``
and never the time spent before signing in) and the clock time (HH:MM:SS) at
which the console received it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from devicectl.console.bridge import AlarmEvent
from devicectl.control.events import Alarm, AlarmPriority

PRIORITY_STYLE = {
    AlarmPriority.HIGH: "bold white on red",
    AlarmPriority.MEDIUM: "bold black on yellow",
    AlarmPriority.LOW: "bold black on cyan",
}
PRIORITY_LABEL = {
    AlarmPriority.HIGH: "HIGH",
    AlarmPriority.MEDIUM: "MED ",
    AlarmPriority.LOW: "LOW ",
}
MAX_ACKNOWLEDGED = 50


@dataclass(frozen=True)
class AlarmEntry:
    t_s: float
    alarm: Alarm
    count: int = 1
    acknowledged_by: str | None = None
    session_s: float | None = None  # into the session; None: before sign-in
    wall_s: float | None = None  # the clock time (epoch seconds) it was received

    @property
    def session_time(self) -> str:
        """mm:ss into the session, or "--:--" before the session began."""
        if self.session_s is None:
            return "--:--"
        minutes, seconds = divmod(int(max(self.session_s, 0.0)), 60)
        return f"{minutes:02d}:{seconds:02d}"

    @property
    def clock_time(self) -> str:
        """HH:MM:SS, local time."""
        if self.wall_s is None:
            return "--:--:--"
        return time.strftime("%H:%M:%S", time.localtime(self.wall_s))

    @property
    def key(self) -> tuple[str, str]:
        return (self.alarm.device, self.alarm.code)


class AlarmBoard:
    """The console's alarm list; lives on the UI thread only."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._entries: list[AlarmEntry] = []
        self._wall_clock = wall_clock
        # The loop clock when the session began (its snapshot's ``started_s``).
        self.session_start_s: float | None = None

    def add(self, event: AlarmEvent) -> bool:
        """Add an alarm; True if it is a new row, False if it repeats one (counted)."""
        alarm = event.alarm
        for i, entry in enumerate(self._entries):
            if entry.acknowledged_by is None and entry.key == (alarm.device, alarm.code):
                # the latest value and message, one more time
                self._entries[i] = replace(entry, count=entry.count + 1, alarm=alarm)
                return False
        start = self.session_start_s
        session_s = event.t_s - start if start is not None and event.t_s >= start else None
        self._entries.append(
            AlarmEntry(event.t_s, alarm, session_s=session_s, wall_s=self._wall_clock())
        )
        return True

    def highest_pending(self) -> AlarmPriority | None:
        """The highest priority among the unacknowledged alarms (what sounds)."""
        pending = [e.alarm.priority for e in self._entries if e.acknowledged_by is None]
        return max(pending, key=int) if pending else None

    def unacknowledged(self) -> list[AlarmEntry]:
        """Oldest first; among the same time, the higher priority first."""
        pending = [e for e in self._entries if e.acknowledged_by is None]
        return sorted(pending, key=lambda e: (e.t_s, -int(e.alarm.priority)))

    def ordered(self) -> list[AlarmEntry]:
        """What the panel lists: unacknowledged oldest first, then acknowledged newest first."""
        done = [e for e in self._entries if e.acknowledged_by is not None]
        done.sort(key=lambda e: -e.t_s)
        return self.unacknowledged() + done[:MAX_ACKNOWLEDGED]

    def oldest(self) -> AlarmEntry | None:
        pending = self.unacknowledged()
        return pending[0] if pending else None

    def acknowledge(self, entry: AlarmEntry, operator_id: str) -> AlarmEntry:
        """Replace ``entry`` (one of this board's) by its acknowledged copy, and return it."""
        if not operator_id.strip():
            raise ValueError("acknowledging an alarm needs the operator's id")
        i = next((i for i, e in enumerate(self._entries) if e is entry), None)
        if i is None:
            raise ValueError("that alarm is not on the board (already acknowledged?)")
        done = replace(entry, acknowledged_by=operator_id)
        self._entries[i] = done
        acked = [e for e in self._entries if e.acknowledged_by is not None]
        if len(acked) > MAX_ACKNOWLEDGED * 2:  # keep the list bounded
            oldest = min(acked, key=lambda e: e.t_s)
            self._entries = [e for e in self._entries if e is not oldest]
        return done
