"""Serve a simulator on a real pseudo-terminal, in real time.

A :class:`PtyServer` opens a pty pair, puts it in raw mode (bytes pass
unchanged: no echo, no line discipline, no CR/LF translation) and runs one
thread that shuttles bytes between the pty's master side and a simulator of
the ``devicectl.transport.SimulatedDevice`` shape (``feed``/``take``/
``pending``/``close``/``output_on``). A host opens the slave path like any
serial port (``serial.Serial(path)``, pymodbus ``ModbusSerialClient(port=path)``)
and cannot tell it from hardware, except that there is no baud-rate timing.

The loop waits at most ``poll_s`` (2 ms by default) for host bytes, feeds
whatever arrived, writes back whatever the simulator has sent, and calls the
simulator's ``advance`` (or ``pending``) every turn, so time-driven behaviour
such as the 250 ms watchdog acts on time even when the host is silent.

The simulator is created by ``simulator_factory(clock)`` in :meth:`start` and
is then driven by the server thread only; to look at it from another thread
(test hooks such as ``output_on``), use :meth:`inspect`, which holds the same
lock the loop holds around every call.

Only ``devicectl.clock`` is imported from devicectl (the default clock).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pty
import select
import threading
import tty
from collections.abc import Callable
from typing import Any, TypeVar

from devicectl.clock import Clock, RealClock
from devicectl_simulators.stream import ServedDevice

POLL_S = 0.002
READ_CHUNK = 4096

T = TypeVar("T")


class PtyServer:
    """One simulator on one pty, served by a background thread in real time."""

    def __init__(
        self,
        simulator_factory: Callable[[Clock], ServedDevice],
        clock: Clock | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self._factory = simulator_factory
        self._clock: Clock = clock if clock is not None else RealClock()
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = -1
        self._slave = -1
        self._path: str | None = None
        self._simulator: ServedDevice | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> str:
        """Open the pty, create the simulator, start serving; the slave's path."""
        if self._thread is not None:
            raise RuntimeError("this PtyServer is already started")
        master, slave = pty.openpty()
        try:
            tty.setraw(slave)  # bytes pass unchanged (the host's pyserial sets raw mode too)
            os.set_blocking(master, False)
            path = os.ttyname(slave)
            simulator = self._factory(self._clock)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # The slave stays open here too: with no holder a Linux pty master reads
        # EIO whenever the host closes its end, and would lose bytes in between.
        self._master, self._slave, self._path = master, slave, path
        self._simulator = simulator
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"pty-server {path}", daemon=True)
        self._thread.start()
        return path

    def stop(self) -> None:
        """Stop serving, close the simulator and the pty (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._thread = None
        with self._lock, contextlib.suppress(Exception):
            if self._simulator is not None:
                self._simulator.close()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> PtyServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def path(self) -> str | None:
        """The slave device path a host opens (None before :meth:`start`)."""
        return self._path

    @property
    def simulator(self) -> ServedDevice | None:
        """The served simulator; touch it from other threads only via :meth:`inspect`."""
        return self._simulator

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the serving thread, if any."""
        return self._error

    def inspect(self, function: Callable[[Any], T]) -> T:
        """``function(simulator)`` under the loop's lock (safe from any thread).

        ``function`` gets the simulator as its own class (``Any``): it is how a
        test reaches the firmware's test hooks (``output_log``, ``skin_true_c``...).
        """
        with self._lock:
            return function(self._simulator)

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        master = self._master
        simulator = self._simulator
        assert simulator is not None  # start() creates it before the thread
        lock = self._lock
        stop = self._stop
        poll_s = self._poll_s
        advance: Callable[[], object] = getattr(simulator, "advance", None) or simulator.pending
        backlog = b""  # sent by the simulator, not yet accepted by the pty
        try:
            while not stop.is_set():
                readable, _, _ = select.select([master], [master] if backlog else [], [], poll_s)
                data = b""
                if readable:
                    try:
                        data = os.read(master, READ_CHUNK)
                    except BlockingIOError:
                        data = b""
                    except OSError as exc:
                        if exc.errno != errno.EIO:
                            raise
                        data = b""  # no host holds the slave open: nothing to read
                with lock:
                    if data:
                        simulator.feed(data)
                    else:
                        advance()
                    out = simulator.take()
                if out:
                    backlog += out
                if backlog:
                    try:
                        written = os.write(master, backlog)
                    except BlockingIOError:
                        written = 0
                    backlog = backlog[written:]
        except BaseException as exc:  # reported through .error; the thread must not die silently
            self._error = exc
            raise
