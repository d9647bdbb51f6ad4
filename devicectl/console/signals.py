"""SIGINT, SIGTERM and SIGHUP at the console: the session aborted, every device read back.

A console ends on a signal the way ``devicectl run`` and ``demo`` do
(:mod:`devicectl.session.signals`): a service manager's SIGTERM, a closed
terminal's SIGHUP or a SIGINT never leaves a device energised behind it. Textual
reads Ctrl-C as a key in its raw terminal, so the three signals come from
outside (``kill``, ``systemctl stop``, a hang-up); without a handler SIGTERM and
SIGHUP would kill the process on the spot.

:class:`ConsoleSignals` is entered around ``app.run()`` on the main thread. The
handler only notes the first signal and hands the stop to the app's own asyncio
loop, where :func:`stop_session` runs:

- a client of the station (:class:`~devicectl.console.remote.StationBackend`):
  if an operator is signed in on this console, it asks the station to ``abort``
  the session (the station puts every device in its safe state, confirmed by
  readback), then waits until every device reports its output off; a console
  with nobody signed in has no session of its own to abort and only reports
  what the devices say;
- in-process simulators (:class:`~devicectl.console.backend.ConsoleBackend`):
  the loop stops, the session is aborted, every device is commanded safe and
  read back (``confirm_safe``), and the record is closed ``aborted``.

Then the app exits with 128 + the signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP)
and the caller prints one line naming the session and each device's state. A
second signal changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import structlog

from devicectl.console.backend import ConsoleBackend
from devicectl.console.remote import FINISHED_STATES, StationBackend
from devicectl.session.signals import StopSignals

SAFE_WAIT_S = 3.0
SAFE_POLL_S = 0.05
OUTCOMES = {"complete": "complete", "ended": "fault"}

log = structlog.get_logger("devicectl.console").bind(device="console")


@dataclass(frozen=True)
class ConsoleStopped:
    """What a signal left: the session (None if there was none) and each device's
    safe state (None: output off confirmed; else why not)."""

    session_id: str | None
    outcome: str
    safe_states: dict[str, str | None] = field(default_factory=dict)


def _station_safe_states(state: dict[str, Any]) -> dict[str, str | None]:
    return {
        name: None
        if view.get("output_on") is False
        else ("output reported on" if view.get("output_on") else "no reading")
        for name, view in sorted((state.get("devices") or {}).items())
    }


async def _stop_at_station(backend: StationBackend) -> ConsoleStopped:
    client = backend.client
    if client is None:
        return ConsoleStopped(None, "not connected")
    session = client.state.get("session") or {}
    session_id = session.get("session_id")
    if backend.operator_id is None or not session or session.get("state") in FINISHED_STATES:
        # Nobody signed in here, or nothing under way: no session of this console's.
        return ConsoleStopped(None, "none", _station_safe_states(client.state))
    try:
        await client.call("abort")
    except Exception as exc:  # noqa: BLE001 - reported; the devices are read below
        log.error("signal_abort_failed", error=str(exc))
    aloop = asyncio.get_running_loop()
    deadline = aloop.time() + SAFE_WAIT_S
    while True:
        state = client.state
        session = state.get("session") or {}
        devices_off = all(
            view.get("output_on") is False for view in (state.get("devices") or {}).values()
        )
        if (devices_off and session.get("state") in FINISHED_STATES) or aloop.time() >= deadline:
            break
        await asyncio.sleep(SAFE_POLL_S)
    outcome = str(session.get("state") or "none")
    return ConsoleStopped(session_id, OUTCOMES.get(outcome, outcome), _station_safe_states(state))


def _stop_here(backend: ConsoleBackend) -> ConsoleStopped:
    """The in-process station: loop stopped, session aborted, every device read back."""
    from devicectl.session.api import confirm_safe

    backend.station.loop.stop()
    runner = backend.desk.runner
    if runner is not None and not runner.finished:
        runner.abort(runner.operator_id)
    safe = confirm_safe(backend.station)
    backend.close()  # records the last tick and closes the record with its outcome
    if runner is None:
        return ConsoleStopped(None, "none", safe)
    outcome = runner.state.value
    return ConsoleStopped(backend.session_id, OUTCOMES.get(outcome, outcome), safe)


async def stop_session(backend: ConsoleBackend | StationBackend) -> ConsoleStopped:
    """Abort this console's session with every device read back (see the module)."""
    if isinstance(backend, StationBackend):
        return await _stop_at_station(backend)
    return await asyncio.get_running_loop().run_in_executor(None, _stop_here, backend)


class ConsoleSignals(StopSignals):
    """Around ``app.run()``: each of SIGINT, SIGTERM, SIGHUP stops ``app`` as the
    module says; ``stopped`` then holds what the stop found."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app
        self.stopped: ConsoleStopped | None = None
        self._task: asyncio.Future[None] | None = None

    def __enter__(self) -> ConsoleSignals:
        super().__enter__()
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # a second signal changes nothing
        super()._handle(signum, frame)
        try:
            aloop = asyncio.get_running_loop()  # the app's, on this (the main) thread
        except RuntimeError:
            return  # the app is not running: its unmount closes the backend
        aloop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        self._task = asyncio.ensure_future(self._stop())

    async def _stop(self) -> None:
        received = self.received
        assert received is not None
        log.warning("console_signal", signal=received.name)
        try:
            self.stopped = await stop_session(self.app.backend)
        finally:
            with contextlib.suppress(Exception):
                self.app.exit(return_code=self.exit_code)
