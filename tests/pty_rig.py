"""A station whose devices are simulators served on real ptys, in simulated time.

:class:`PtyRig` serves one simulator on a pseudo-terminal with
``PtyServer(factory, clock=station.clock)``: the controller opens the slave path
with the ordinary ``serial.Serial(path)`` code path of ``open_port`` and its real
driver, exactly as with hardware, while the simulator's physics, faults and
250 ms watchdog run on the station's :class:`~devicectl.clock.SimClock`.

Why this is sound (checked by ``test_sim_time_stands_still_while_a_reply_is_in_flight``):

- Simulated time moves only when the control loop sleeps (``SimClock.sleep_until``
  between ticks, ``clock.sleep`` in a connect wait). While the loop thread is in
  a driver call it is blocked in pyserial's ``read`` (a *wall-clock* timeout, 50 ms)
  and does not touch the clock, so every request is fed to the simulator, and
  every reply produced, at the same simulated instant: the round trip is 0 s of
  simulated time, as with the in-process ``sim://`` port.
- The server thread reads the shared clock (a float; one writer, the loop
  thread) and brings the simulator up to it on every turn, so time-driven
  behaviour (watchdog, fault starts, boot) happens at the simulated time it is
  due, whatever the wall time.
- A reply that never comes (``no_reply``, ``garble``, a booting device) costs
  wall time (the port timeout, per try) but no simulated time. ``sim://``
  instead advances simulated time by the timeout; the pty path is therefore the
  stricter one for latency bounds (a missed reply gives the device no extra time).

The rig also records, for the fault matrix, every tick's reading as the
controller received it (``ticks``, with the controller's state then in
``states``), every event of the loop (``events``) and the
session's durable record (a :class:`~devicectl.session.recorder.SessionRecorder`
writing into a :class:`~devicectl.records.RecordStore`), which is verified after
each scenario.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devicectl.clock import SimClock
from devicectl.control.events import Alarm, Command, Event
from devicectl.plugins import SIMULATOR_GROUP, load_plugin
from devicectl.records import RecordStore, RecordWriter
from devicectl.session.recorder import SessionRecorder
from devicectl.station import Station
from devicectl.transport import DEFAULT_TIMEOUT_S
from devicectl_simulators.pty_server import PtyServer

OPERATOR = "tech-hil"
BOOT_S = 1.0  # every simulator boots silent for 1 s (docs/simulators.md)
DEFAULT_OPTIONS = {"rf": {}, "ipl": {"filter": "560"}, "led": {}}


@dataclass
class PtyRig:
    """One controller on a ``Station(SimClock())``, its simulator on a real pty."""

    modality: str
    station: Station
    server: PtyServer
    controller: Any
    path: str
    ticks: list[tuple[float, Any]] = field(default_factory=list)
    states: list[str] = field(default_factory=list)  # the controller's state at each sample
    events: list[Event] = field(default_factory=list)
    writer: RecordWriter | None = None
    session_id: str | None = None
    recorder: SessionRecorder | None = None
    # (simulated time, wall s): from the first tick at or after that time, the port's
    # reply timeout is this (see ``reply_timeout_from``)
    _timeout_from: tuple[float, float] | None = None

    @classmethod
    def create(
        cls,
        modality: str,
        *,
        seed: int,
        faults: Sequence[str] = (),
        options: dict[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        store: RecordStore | None = None,
        session_name: str = "pty fault matrix",
    ) -> PtyRig:
        """Serve the simulator, let it boot in simulated time, connect the controller.

        ``timeout_s`` is the ports' wall-clock read timeout. On this path a
        timeout costs no simulated time, only wall time; the production 50 ms
        leaves a loaded machine (two cores shared with other test runs) too
        little margin for the server thread to be scheduled, and a late reply
        to a command that is never retried (``OUTP ON``, ``FIRE``) is, rightly,
        a fault. Everything else is the ordinary ``open_port`` + driver path.
        With ``store`` a session is begun and every event of the loop is
        recorded into it, committed per tick (safety rule 6).
        """
        station = Station(SimClock(), port_timeout_s=timeout_s)
        factory = load_plugin(SIMULATOR_GROUP, modality)
        opts = {**DEFAULT_OPTIONS[modality], **(options or {})}
        server = PtyServer(
            functools.partial(factory, seed=seed, faults=tuple(faults), **opts),
            clock=station.clock,
        )
        path = server.start()
        try:
            # The simulator drops everything while it boots; waiting here in simulated
            # time spares the controller's connect loop twenty wall-clock timeouts.
            station.clock.sleep(BOOT_S)
            add: dict[str, Callable[[str], Any]] = {
                "rf": station.add_rf,
                "ipl": station.add_ipl,
                "led": station.add_led,
            }
            controller = add[modality](path)
        except BaseException:
            server.stop()
            raise
        rig = cls(modality, station, server, controller, path)
        station.loop.subscribe(rig.events.append)
        sample = controller.sample

        def recording_sample(now_s: float) -> None:
            if rig._timeout_from is not None and now_s >= rig._timeout_from[0]:
                rig._set_reply_timeout(rig._timeout_from[1])
                rig._timeout_from = None
            sample(now_s)
            rig.ticks.append((now_s, controller.reading))
            rig.states.append(controller.state.name)

        controller.sample = recording_sample
        if store is not None:
            rig.session_id = store.begin_session(
                protocol_name=session_name, operator_id=OPERATOR, unattended=True
            )
            rig.writer = RecordWriter(store, rig.session_id)
            rig.recorder = SessionRecorder(
                station, rig.writer, step_index=lambda: 1, on_record_lost=rig._record_lost
            )
            rig.writer.begin_step(1, modality, session_name, station.clock.now())
        return rig

    def reply_timeout_from(self, t_s: float, timeout_s: float) -> None:
        """From the first tick at or after simulated time ``t_s`` on, the port's
        wall-clock reply timeout is ``timeout_s``.

        For a fault that loses replies by design from ``t_s`` on (the simulator
        applies a fault from the first request at or after its start, the same
        comparison of the same clock): each lost reply costs this timeout times the
        driver's tries, in wall time only, and a short one changes nothing the
        scenario measures in simulated time. Every reply before ``t_s`` still gets
        the generous timeout the rig was created with.
        """
        self._timeout_from = (t_s, timeout_s)

    def _set_reply_timeout(self, timeout_s: float) -> None:
        device = self.controller.device
        if device is not None:  # closed: nothing left to wait for
            device._port.timeout = timeout_s

    def _record_lost(self, why: str) -> None:
        raise AssertionError(f"the record could not be kept: {why}")

    # -- driving -----------------------------------------------------------------------

    @property
    def clock(self) -> SimClock:
        clock = self.station.clock
        assert isinstance(clock, SimClock)
        return clock

    def now(self) -> float:
        return self.station.clock.now()

    def command(self, action: str, **args: Any) -> Any:
        return self.station.loop.execute(Command(self.modality, action, args, OPERATOR))

    def run_until(self, predicate: Callable[[], bool], max_s: float) -> bool:
        return self.station.loop.run(until=predicate, max_duration_s=max_s)

    def run_to(self, t_s: float, stop: Callable[[], bool] | None = None) -> None:
        """Tick until the simulated time is ``t_s`` (or ``stop()`` is true)."""

        def done() -> bool:
            return self.now() >= t_s - 1e-9 or (stop is not None and stop())

        self.station.loop.run(until=done, max_duration_s=max(t_s - self.now(), 0.0) + 1.0)

    def run_for(self, seconds: float) -> None:
        self.station.loop.run(max_duration_s=seconds)

    def sim(self, function: Callable[[Any], Any]) -> Any:
        """``function(simulator)`` on the server's thread lock, at the current simulated time."""
        return self.server.inspect(lambda sim: (sim.advance(), function(sim))[1])

    # -- what happened -------------------------------------------------------------------

    def alarms(self) -> list[tuple[float, Alarm]]:
        return [(e.t_s, e.data["alarm"]) for e in self.events if e.kind == "alarm"]

    def latched_at(self) -> tuple[float, Alarm] | None:
        """The first latching alarm that became this controller's fault, and when."""
        fault = self.controller.fault_alarm
        for t_s, alarm in self.alarms():
            if alarm is fault:
                return t_s, alarm
        return None

    def safe_state_results(self) -> list[tuple[float, dict[str, Any]]]:
        return [
            (e.t_s, e.data)
            for e in self.events
            if e.kind == "device_command" and e.data.get("command") == "safe_state"
        ]

    def close(self, outcome: str = "fault") -> None:
        """Record the last tick, close the record, stop serving (idempotent)."""
        try:
            if self.recorder is not None and self.writer is not None:
                self.station.loop.tick()
                self.recorder.close()
                self.writer.end_step(1, outcome, self.now())
                self.writer.end_tick()
                self.writer.close(outcome)
                self.recorder = None
        finally:
            self.server.stop()
