"""Everything the console runs besides the screen: station, loop thread, desk, record.

Clock choice (how the simulators' time relates to the wall):

- ``--device KIND=URL``: real devices, :class:`RealClock` (the only choice).
- no ``--device``: every device is its in-process simulator on a
  :class:`RealClock`, in real time: the console then behaves exactly as at a
  real chair (a 20-minute LED step takes 20 minutes).
- ``--fast``: the simulators run in simulated time on a :class:`PacedSimClock`
  at ``speed`` times real time (default 60: a 20-minute LED step in 20 s, an
  RF zone in a few seconds). Pacing rather than "as fast as possible" because
  a person must be able to watch the numbers move and press keys between
  steps, and because a loop spinning flat out would hold the GIL against the
  UI thread. ``speed=0`` removes the pacing (tests run sessions that way: the
  session waits at every prompt anyway).

The station is built through the modality registry (``build_station``: each
device of the protocol on its simulator, or each ``--device`` with
``Station.add(kind, url)``); every registered modality gets a panel, and the
station's devices, in registry order, are read, traced and keyed.

In every mode the loop runs on its own thread (``ControlLoop.start``); the
console talks to it only through :class:`LoopBridge` and ``ConsoleDesk``.

The record: at sign-in a session row is opened for the operator (SQLite or
PostgreSQL, as ``devicectl run``), and a :class:`SessionRecorder` writes every
event of the loop into it from then on, through the writer thread, exactly as
a scripted run does. On close the session is aborted if still running (every
device to its safe state) and the record closed with its outcome.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from devicectl.clock import Clock, PacedSimClock, RealClock
from devicectl.console.bridge import LoopBridge, Poll, TracePoint
from devicectl.console.desk import DESK, ConsoleDesk
from devicectl.console.keys import KeyAction, key_actions
from devicectl.console.snapshot import Snapshot, take_snapshot
from devicectl.control.events import Command
from devicectl.modality import Modality, modalities
from devicectl.records.store import RecordStore
from devicectl.records.writer import RecordWriter
from devicectl.session.api import build_station, close_devices, is_simulator_url
from devicectl.session.protocol_file import SessionProtocol, load_protocol_and_sha256
from devicectl.session.recorder import SessionRecorder
from devicectl.session.runner import SessionRunner, SessionState, step_kind
from devicectl.station import Station
from devicectl.transport import DEFAULT_TIMEOUT_S

DEFAULT_SPEED = 60.0
OUTCOMES = {SessionState.COMPLETE: "complete", SessionState.ENDED: "fault"}


@dataclass
class ConsoleConfig:
    """What ``devicectl console`` was asked for."""

    protocol_path: Path
    devices: dict[str, str] | None = None
    drivers: dict[str, str] = field(default_factory=dict)
    fast: bool = False
    speed: float = DEFAULT_SPEED
    seed: int = 7
    faults: dict[str, list[str]] | None = None
    db: str | None = None
    record: bool = True
    port_timeout_s: float = DEFAULT_TIMEOUT_S  # real devices' reply timeout

    @property
    def real_devices(self) -> list[str]:
        """The ``--device`` kinds that are not ``sim://`` simulators."""
        return sorted(k for k, url in (self.devices or {}).items() if not is_simulator_url(url))

    @property
    def mode(self) -> str:
        """How the sign-in screen names the devices: a ``sim://`` one is a simulator."""
        real = self.real_devices
        if real:
            sims = sorted(set(self.devices or {}) - set(real))
            return f"real devices ({', '.join(real)})" + (
                f", simulators ({', '.join(sims)})" if sims else ""
            )
        if self.fast:
            pace = f"x{self.speed:g}" if self.speed > 0 else "unpaced"
            return f"simulators, simulated time {pace}"
        return "simulators, real time"


class ConsoleBackend:
    """Builds and owns the station, the loop thread, the desk and the bridge (in this
    process: simulators only, see ``devicectl console --help``)."""

    needs_pin = False  # the operator id is enough: no station, nobody else to tell apart

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.protocol: SessionProtocol
        self.protocol, self.protocol_sha256 = load_protocol_and_sha256(config.protocol_path)
        self.log = structlog.get_logger("devicectl.console").bind(device=DESK)
        needed = sorted({step_kind(s) for s in self.protocol.steps} - {"manual"})
        clock: Clock = PacedSimClock(config.speed) if config.fast else RealClock()
        self.station: Station
        self.station, self.technician = build_station(
            needed,
            config.devices,
            config.drivers,
            config.seed,
            config.faults,
            sim_clock=clock,
            port_timeout_s=config.port_timeout_s,
        )
        loop = self.station.loop
        # Every registered modality has a panel (a protocol's unused ones say so);
        # the station's devices, in registry order, are what is read and keyed.
        self.modalities: dict[str, Modality] = modalities()
        self.devices: dict[str, Modality] = {
            name: mod for name, mod in self.modalities.items() if name in loop.controllers
        }
        try:
            self.keys: list[KeyAction] = key_actions(self.devices)
        except BaseException:
            close_devices(self.station)
            raise
        self.desk = ConsoleDesk(loop, self._make_runner)
        loop.add(self.desk)
        self.bridge = LoopBridge(loop, self._snapshot, self._trace)
        self.store: RecordStore | None = None
        self.writer: RecordWriter | None = None
        self.recorder: SessionRecorder | None = None
        self.session_id: str | None = None
        self._started = False
        self._closed = False

    @property
    def mode(self) -> str:
        return self.config.mode

    # -- loop-thread callbacks ------------------------------------------------------

    def _make_runner(self, operator: str) -> SessionRunner:
        return SessionRunner(
            self.station,
            self.protocol,
            operator_id=operator,
            technician=self.technician,
            simulated=not self.config.real_devices,
            operator_gates=True,
        )

    def _snapshot(self, t_s: float, tick: int) -> Snapshot:
        controllers = self.station.loop.controllers
        return take_snapshot(t_s, tick, controllers, self.desk.runner, self.session_id)

    def _trace(self, t_s: float) -> TracePoint:
        controllers = self.station.loop.controllers
        channels, names = [], []
        for name, mod in self.devices.items():
            channel = mod.console_trace(controllers[name])
            if channel is not None:
                channels.append(channel)
                names.append(name)
        return TracePoint(t_s, tuple(channels), tuple(names))

    # -- lifecycle (UI thread) ---------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread: devices are read and shown before anyone signs in."""
        if not self._started:
            self._started = True
            # What start-up built (widgets, station, drivers, imported modules) lives
            # as long as the console: moved out of the collector's reach, so that a
            # full collection, which pauses the loop thread too, scans only what the
            # session adds. Measured on a whole Pore Patrol in the console: the longest
            # collection was 178 ms without this, 67 and 80 ms with it (two runs),
            # against the devices' 250 ms watchdog (docs/safety.md, section 6, item 46).
            gc.collect()
            gc.freeze()
            self.station.loop.start()
            self.log.info("console_started", mode=self.config.mode)

    def sign_in(self, operator: str) -> None:
        """Open the session's record for ``operator``, then create its runner on the loop.

        The record is opened here (database I/O), never on the loop thread.
        """
        operator = operator.strip()
        if self.config.record and self.store is None:
            store = RecordStore.open(self.config.db)
            store.mark_interrupted()
            self.session_id = store.begin_session(
                protocol_name=self.protocol.name,
                protocol_sha256=self.protocol_sha256,
                operator_id=operator,
                t_s=self.station.clock.now(),
            )
            self.store = store
            self.writer = RecordWriter(store, self.session_id)
            self.recorder = SessionRecorder(
                self.station,
                self.writer,
                step_index=self._step_index,
                on_record_lost=self._record_lost,
            )
            self.log.info("session_record_opened", session_id=self.session_id)
        self.send(DESK, "sign_in", operator, session_id=self.session_id)

    def _step_index(self) -> int | None:
        runner = self.desk.runner
        if runner is None or runner.current >= len(runner.steps):
            return None
        return runner.current + 1

    def _record_lost(self, why: str) -> None:
        # On the loop thread: the record can no longer be kept, so nothing may go on.
        self.log.error("record_lost", error=why)
        self.desk.estop_all(self.desk.operator_id)

    def poll(self) -> Poll:
        """What the loop copied out since the last poll (UI thread)."""
        return self.bridge.poll()

    def send(self, target: str, action: str, operator: str | None, **args: Any) -> None:
        """Queue ``action`` for ``target`` (a device, "session" or "console"); never waits."""
        self.bridge.send(Command(target, action, args, operator))

    def estop(self, operator: str | None) -> None:
        """Every device to its safe state on the next tick: one command to the desk."""
        self.send(DESK, "estop", operator)

    def close(self) -> None:
        """Stop the loop with every device safe, and close the record with its outcome."""
        if self._closed:
            return
        self._closed = True
        loop = self.station.loop
        loop.stop()
        runner = self.desk.runner
        if runner is not None and not runner.finished:
            runner.abort(runner.operator_id)
        for name, controller in self.desk.devices().items():
            if not controller.latched and "abort" in controller.machine.get_triggers(
                controller.state
            ):
                controller.handle(Command(name, "abort", {}, self.desk.operator_id))
        loop.tick()  # the loop thread is stopped: this thread may tick once to record it
        self.bridge.close()
        if self.recorder is not None:
            self.recorder.close()
        if self.writer is not None:
            state = runner.state if runner is not None else SessionState.ABORTED
            self.writer.close(OUTCOMES.get(state, "aborted"))
        if self.store is not None:
            self.store.close()
        self.log.info("console_closed", session_id=self.session_id)
