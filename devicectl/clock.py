"""Time for devicectl: the only place that reads wall time or sleeps.

Every controller, regulator and check takes its time from a :class:`Clock`.
With :class:`RealClock` the same code runs against a serial port in real time;
with :class:`SimClock` it runs against in-process simulators in virtual time
that moves only when the owner of the loop sleeps, so a 20-minute session runs
in well under a second and every run with the same seeds is identical.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Monotonic seconds and a way to wait for them."""

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...

    def sleep_until(self, deadline_s: float) -> None:
        """Return at or after ``deadline_s``; return at once if it is past."""
        ...

    def sleep(self, duration_s: float) -> None:
        """Wait ``duration_s`` seconds (never negative)."""
        ...


class RealClock:
    """Monotonic wall time.

    ``sleep_until`` sleeps to an absolute deadline (Python 3.11+ sleeps on
    the monotonic clock with ~50 us timer slack), so a loop that advances its
    deadline by one period per tick does not accumulate drift.
    """

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline_s: float) -> None:
        remaining = deadline_s - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def sleep(self, duration_s: float) -> None:
        if duration_s > 0:
            time.sleep(duration_s)


class SimClock:
    """Virtual time: starts at ``start_s`` and advances only when slept.

    Sleeping returns immediately after moving the time forward, so simulated
    sessions run as fast as the CPU allows. It is meant to be owned by one
    thread (the control loop's); simulators read it to advance their physics.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = float(start_s)

    def now(self) -> float:
        return self._now_s

    def sleep_until(self, deadline_s: float) -> None:
        if deadline_s > self._now_s:
            self._now_s = deadline_s

    def sleep(self, duration_s: float) -> None:
        if duration_s > 0:
            self._now_s += duration_s


class PacedSimClock(SimClock):
    """Virtual time that is held to at most ``speed`` times wall time.

    For a person watching simulated devices (the console's ``--fast``): a
    20-minute LED step takes 20 wall seconds at ``speed=60``. Every advance of
    virtual time sleeps until the wall clock has caught up with
    ``virtual / speed``; it only ever slows the owner down, never skips ticks,
    so the controllers see exactly the ticks they would at full speed.
    ``speed <= 0`` means no pacing (as fast as the CPU allows: tests), but
    every advance still yields the GIL once, so a UI thread in the same
    process is never starved by a loop running flat out.
    If the owner falls behind by more than a second (a slow machine), pacing
    restarts from now instead of racing to catch up.
    """

    MAX_LAG_S = 1.0
    MIN_SLEEP_S = 0.002  # below this, let a few ticks run before sleeping

    def __init__(self, speed: float, start_s: float = 0.0) -> None:
        super().__init__(start_s)
        self.speed = speed
        self._anchor_virtual = float(start_s)
        self._anchor_wall = time.monotonic()

    def set_speed(self, speed: float) -> None:
        """Change the pace from now on (the time already run is not paced again)."""
        self.speed = speed
        self._anchor_virtual = self.now()
        self._anchor_wall = time.monotonic()

    def sleep_until(self, deadline_s: float) -> None:
        super().sleep_until(deadline_s)
        self._pace()

    def sleep(self, duration_s: float) -> None:
        super().sleep(duration_s)
        self._pace()

    def _pace(self) -> None:
        if self.speed <= 0:
            return
        wall = time.monotonic()
        due = self._anchor_wall + (self.now() - self._anchor_virtual) / self.speed
        ahead = due - wall
        if ahead > self.MIN_SLEEP_S:
            time.sleep(ahead)
        elif ahead < -self.MAX_LAG_S:
            self._anchor_virtual = self.now()
            self._anchor_wall = wall
