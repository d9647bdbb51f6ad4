"""SIGINT, SIGTERM and SIGHUP end a session the same way: every device safe, then the record.

A process running a session must not leave a device energised because someone
pressed Ctrl-C, a service manager sent SIGTERM, or the terminal went away
(SIGHUP). Without a handler SIGTERM and SIGHUP kill the process on the spot:
the RF output stays on until the device's own 250 ms watchdog cuts it, and the
record says ``running`` until the next start marks it interrupted. (Typer turns
KeyboardInterrupt into exit 130 before a front-end's own handler runs, so SIGINT
needs a handler too.)

:class:`StopSignals` installs one handler for all three with
:func:`signal.signal` before the loop starts. The handler only notes the
signal: the session loop sees it at its next tick boundary (at most one 50 ms
period later), so no driver exchange is cut in half and the safe state runs on
the loop's own thread, with readback, before the outcome is written
(``run_protocol(stop=...)``). A second signal while that happens changes
nothing; a loop that never reaches a tick boundary stops sending frames, and
the devices' watchdogs cut their output.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Final

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """A context that turns SIGINT, SIGTERM and SIGHUP into a stop request.

    Guaranteed while it is entered (on the main thread): none of the three ends
    the process by itself; ``received`` holds the first one, and ``__call__``
    (the ``stop`` of :func:`~devicectl.session.api.run_protocol`) is true from
    then on. On exit the previous handlers are back.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __call__(self) -> bool:
        return self.received is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 SIGINT, 143 SIGTERM, 129 SIGHUP); 0 if none."""
        return 0 if self.received is None else 128 + int(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed on the main thread")
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
