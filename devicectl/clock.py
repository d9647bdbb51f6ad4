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
