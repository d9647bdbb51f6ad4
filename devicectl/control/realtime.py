"""Real time for the control loop's process: the loop thread's priority and bounded GC pauses.

Safety rule 11 says a late tick is unsafe. Two things of the process can make
a tick late that the loop's own code cannot: the kernel running something else
on the loop's core, and the garbage collector stopping every thread of the
process. This module deals with both, in real time only (a loop on a
``RealClock``); a simulated-time run never changes the process.

- :func:`enter`, called on the loop thread as it starts (``ControlLoop.start``,
  or ``ControlLoop.real_time`` around a ``run`` on the caller's thread, as
  ``devicectl run`` on real devices does), asks for
  ``SCHED_FIFO`` at a modest priority (:data:`FIFO_PRIORITY`: above every
  normal process, below the kernel's own real-time threads); that needs root
  or ``CAP_SYS_NICE``. Without it, the thread gets the lowest nice value it is
  allowed (an unprivileged process cannot go below its current one). It logs
  one ``realtime`` line saying which it got, and returns it.
- :class:`GCPolicy` collects and freezes what start-up built, then turns off
  automatic collections of the oldest generation (the ones that walk the whole
  heap: 50-200 ms in a console's process, ``docs/safety.md`` item 46). The two
  young generations still collect automatically, and the loop collects them
  itself in a tick's slack (:meth:`GCPolicy.in_slack`), so they seldom land in
  a tick. Every collection is timed (``gc.callbacks``): :attr:`GCPolicy.max_pause_s`
  is the longest pause the loop's process has seen. :meth:`GCPolicy.stop`
  puts the collector back as it was.

- :func:`lock_memory` locks every page of the process in RAM (``mlockall``), now
  and from now on. A kernel that writes out pages it thinks cold (proactive
  reclaim, as on this project's test machines) otherwise makes the loop thread
  wait for a disk read the first time it touches one again: stalls of 100-340 ms
  were seen, longer than a device's watchdog, at any priority. It needs root or
  ``CAP_IPC_LOCK``; otherwise (or with a bounded ``RLIMIT_MEMLOCK``, where a later
  allocation could fail) it locks nothing and says so. :func:`unlock_memory`
  undoes it.

- :func:`gil_sharer`, for the other threads of the loop's process that run
  Python (the station service's asyncio thread, and the threads it starts,
  such as the record writer, which inherit its policy): ``SCHED_FIFO`` at
  :data:`SHARER_PRIORITY`, below the loop's. In CPython every thread takes the
  GIL to run; a thread holding it that the kernel preempts for a busy process
  makes the loop thread wait, whatever the loop's own priority (priority
  inversion through the GIL). Above every normal process, such a thread is
  not preempted while it holds the GIL; below the loop, it never delays a
  tick that is due.

Cyclic garbage that survives into the oldest generation is no longer freed
while the policy is on. :meth:`GCPolicy.request_full` asks for one full
collection, which the loop makes in the slack after its next tick
(:meth:`GCPolicy.in_slack`); the station asks for it between sessions, once a
session has ended with no device energised. It is timed like any other
collection and logged (``gc_full`` with its pause).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import resource
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from devicectl.clock import Clock, RealClock

FIFO_PRIORITY = 10  # of 1-99: above every SCHED_OTHER process, below the kernel's threads
SHARER_PRIORITY = 5  # the loop process's other Python threads: above normal, below the loop
BEST_NICE = -10  # the nice value asked for when SCHED_FIFO is refused
# Automatic collection of the oldest generation never comes: the collector only
# looks at it after this many collections of the middle one.
NO_FULL_THRESHOLD = 1_000_000_000
MCL_CURRENT, MCL_FUTURE = 1, 2  # mlockall's flags (<sys/mman.h>, Linux)

log = structlog.get_logger("devicectl.realtime")


@dataclass(frozen=True)
class Scheduling:
    """What the loop thread got: ``policy`` is ``"fifo"``, ``"nice"`` or ``"none"``."""

    policy: str
    priority: int | None = None  # SCHED_FIFO priority
    nice: int | None = None
    error: str | None = None  # why SCHED_FIFO was refused


def is_real_time(clock: Clock) -> bool:
    """Whether a loop on ``clock`` runs in real time (only then is the process changed)."""
    return isinstance(clock, RealClock)


def enter(clock: Clock, priority: int = FIFO_PRIORITY) -> Scheduling:
    """Ask for real-time scheduling of the calling thread (the loop's); no-op in simulated time."""
    if not is_real_time(clock):
        return Scheduling("none")
    try:
        # On Linux, pid 0 is the calling thread, not the whole process.
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    else:
        got = Scheduling("fifo", priority=priority)
        log.info("realtime", policy="SCHED_FIFO", priority=priority)
        return got
    nice = _lowest_nice()
    got = Scheduling("nice", nice=nice, error=error)
    log.warning("realtime", policy="SCHED_OTHER", nice=nice, fifo_refused=error)
    return got


@dataclass(frozen=True)
class SavedScheduling:
    """The calling thread's scheduling before :func:`enter`, for :func:`restore`."""

    policy: int | None
    priority: int | None
    nice: int | None


def save() -> SavedScheduling:
    """The calling thread's scheduling policy, priority and nice value now."""
    try:
        policy: int | None = os.sched_getscheduler(0)
        priority: int | None = os.sched_getparam(0).sched_priority
    except (OSError, AttributeError):
        policy = priority = None
    try:
        nice: int | None = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (OSError, AttributeError):
        nice = None
    return SavedScheduling(policy, priority, nice)


def restore(saved: SavedScheduling) -> None:
    """Put the calling thread's scheduling back as :func:`save` found it (best effort:
    giving up a priority is always allowed; a refusal is logged, never raised)."""
    try:
        if saved.policy is not None and saved.priority is not None:
            os.sched_setscheduler(0, saved.policy, os.sched_param(saved.priority))
        if saved.nice is not None:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), saved.nice)
    except (OSError, AttributeError) as exc:
        log.warning("realtime_restore_failed", error=f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def scheduled(clock: Clock, priority: int = FIFO_PRIORITY) -> Iterator[Scheduling]:
    """The calling thread at real-time ``priority`` while inside (:func:`enter`, which
    logs what it got); its own scheduling restored on leaving, however it leaves. In
    simulated time nothing is touched (``Scheduling("none")``). Threads started
    inside inherit the policy."""
    if not is_real_time(clock):
        yield Scheduling("none")
        return
    saved = save()
    try:
        yield enter(clock, priority=priority)
    finally:
        restore(saved)


def gil_sharer(clock: Clock) -> contextlib.AbstractContextManager[Scheduling]:
    """The calling thread at :data:`SHARER_PRIORITY` while inside: for a thread that
    shares the GIL with a real-time loop (see the module doc)."""
    return scheduled(clock, SHARER_PRIORITY)


def lock_memory() -> bool:
    """Lock the process's pages in RAM, the present ones and every later one; whether
    it did. Logs one ``memory_lock`` line either way.

    Only where the lock cannot later turn an allocation into a failure: as root
    (``CAP_IPC_LOCK`` ignores the limit) or with an unlimited ``RLIMIT_MEMLOCK``.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY:
        log.warning("memory_lock", locked=False, reason=f"RLIMIT_MEMLOCK is {soft} bytes")
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0
        error = os.strerror(ctypes.get_errno()) if failed else ""
    except (OSError, AttributeError) as exc:
        failed, error = True, f"{type(exc).__name__}: {exc}"
    if failed:
        log.warning("memory_lock", locked=False, reason=error)
        return False
    log.info("memory_lock", locked=True)
    return True


def unlock_memory() -> None:
    """Undo :func:`lock_memory` (``munlockall``); a failure is logged, never raised."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.munlockall() != 0:
            log.warning("memory_unlock_failed", reason=os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as exc:
        log.warning("memory_unlock_failed", reason=f"{type(exc).__name__}: {exc}")


def _lowest_nice() -> int | None:
    """Set the calling thread's nice value as low as allowed, from BEST_NICE up; the result."""
    tid = threading.get_native_id()  # on Linux setpriority on a thread id is per thread
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
    except (OSError, AttributeError):
        return None
    for nice in range(BEST_NICE, current):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            continue
        return nice
    return current


class GCPolicy:
    """Bounded GC pauses for the loop's process; :meth:`start` and :meth:`stop` it once each.

    ``slack_s``: :meth:`in_slack` collects the young generations only when at
    least this long is left before the next tick.
    """

    def __init__(self, slack_s: float = 0.02) -> None:
        self.slack_s = slack_s
        self.max_pause_s = 0.0
        self.max_pause_generation: int | None = None
        self.collections = 0
        self.full_collections = 0
        self.last_full_pause_s: float | None = None
        self.active = False
        self._full_requested = False
        self._started_at = 0.0
        self._saved_threshold: tuple[int, int, int] | None = None
        self._froze = False

    # -- timing every collection ------------------------------------------------------

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
            return
        pause = time.perf_counter() - self._started_at
        self.collections += 1
        if pause > self.max_pause_s:
            self.max_pause_s = pause
            self.max_pause_generation = info.get("generation")

    @property
    def max_pause_ms(self) -> float:
        return self.max_pause_s * 1000

    # -- on and off ---------------------------------------------------------------------

    def start(self) -> None:
        """Collect and freeze start-up's objects; turn off automatic full collections."""
        if self.active:
            return
        gc.collect()
        self._froze = gc.get_freeze_count() == 0
        gc.freeze()
        threshold0, threshold1, threshold2 = gc.get_threshold()
        self._saved_threshold = (threshold0, threshold1, threshold2)
        gc.set_threshold(threshold0, threshold1, NO_FULL_THRESHOLD)
        gc.callbacks.append(self._on_gc)
        self.active = True
        log.info(
            "gc_policy",
            frozen=gc.get_freeze_count(),
            threshold=list(gc.get_threshold()),
        )

    def stop(self) -> None:
        """Put the collector back as :meth:`start` found it (the pause figures stay)."""
        if not self.active:
            return
        self.active = False
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._saved_threshold is not None:
            gc.set_threshold(*self._saved_threshold)
        if self._froze:
            gc.unfreeze()  # only what this policy froze: a freeze found in place stays

    # -- collecting at chosen moments ------------------------------------------------------

    def in_slack(self, left_s: float) -> bool:
        """Collect the young generations if ``left_s`` before the next tick allows; did it?

        Called by the loop after a tick. It collects only once the youngest
        generation is at least half-way to its automatic threshold, so an idle
        loop does not collect every tick.
        """
        if not self.active or left_s < self.slack_s:
            return False
        if self._full_requested:
            self.collect_full()
            return True
        threshold0 = gc.get_threshold()[0]
        count0, count1, _ = gc.get_count()
        if count0 < threshold0 // 2:
            return False
        threshold1 = gc.get_threshold()[1]
        gc.collect(1 if count1 + 1 >= threshold1 else 0)
        return True

    def request_full(self) -> None:
        """Ask for one full collection in the slack after the next tick (any thread).

        For a moment with no treatment running: the pause stops every thread of
        the process, the loop's included."""
        self._full_requested = True

    def collect_full(self) -> float:
        """A full collection now, timed and logged; its pause in seconds."""
        self._full_requested = False
        started = time.perf_counter()
        freed = gc.collect()
        pause_s = time.perf_counter() - started
        self.full_collections += 1
        self.last_full_pause_s = pause_s
        log.info("gc_full", pause_ms=round(pause_s * 1000, 3), freed=freed)
        return pause_s
