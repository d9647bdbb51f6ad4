"""The demo: an RF treatment of five face zones on the in-process simulator.

Runs in simulated time (a SimClock), so about 17 simulated minutes take a
second or so of wall time, with the same controller, supervisor, driver and
wire protocol as a real session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from devicectl.modalities.rf.controller import RFController, RFState, ZoneResult
from devicectl.modalities.rf.limits import FACE_ZONES, RFZone
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for

DEFAULT_HOLD_S = 180.0
MAX_ZONE_S = 600.0  # a zone that has not finished by then is a bug, not a slow patient
MOVE_S = 5.0  # the technician moves the handpiece to the next zone


@dataclass(frozen=True)
class DemoResult:
    zones: list[ZoneResult]
    simulated_s: float
    ticks: int
    overruns: int

    @property
    def ok(self) -> bool:
        return len(self.zones) == len(FACE_ZONES) and all(
            z.outcome == "complete" for z in self.zones
        )


ProgressFn = Callable[[RFController, int], None]


def run_rf_demo(
    *,
    seed: int = 7,
    hold_s: float = DEFAULT_HOLD_S,
    target_c: float = 42.0,
    faults: tuple[str, ...] = (),
    operator_id: str = "demo",
    progress: ProgressFn | None = None,
    progress_every_ticks: int = 20,
) -> DemoResult:
    """Treat the five face zones one after another; stop at the first fault."""
    station = Station.simulated()
    url = f"sim://rf?seed={seed}" + "".join(f"&fault={f}" for f in faults)
    rf = station.add_rf(url)
    loop = station.loop
    station.loop.run(max_duration_s=0.2)  # a few ticks: fresh readings before arming
    for index, name in enumerate(FACE_ZONES):
        if index:
            # The simulated technician's hand: a fresh site under the electrode.
            simulator_for(url, station.clock).reposition()  # type: ignore[attr-defined]
            loop.run(max_duration_s=MOVE_S)
        zone = RFZone(name=name, target_c=target_c, hold_s=hold_s)
        station.command("rf", "load", operator_id, zone=zone)
        station.command("rf", "arm", operator_id)
        station.command("rf", "start", operator_id)

        def zone_over(index: int = index) -> bool:
            if progress is not None and loop.tick_count % progress_every_ticks == 0:
                progress(rf, index)
            return rf.state in (RFState.COMPLETE, RFState.FAULT, RFState.ESTOP)

        loop.run(until=zone_over, max_duration_s=MAX_ZONE_S)
        if progress is not None:
            progress(rf, index)
        if rf.state is not RFState.COMPLETE:
            break
    return DemoResult(
        zones=list(rf.results),
        simulated_s=station.clock.now(),
        ticks=loop.tick_count,
        overruns=loop.overruns,
    )
