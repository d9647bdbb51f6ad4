"""Helpers for tests that run the RF controller against the in-process simulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from devicectl.control.limits import RFZone
from devicectl.control.rf_controller import RFController, RFState
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for

OPERATOR = "tech-042"


@dataclass
class RFRig:
    """A simulated station with one RF controller, and its simulator for inspection."""

    station: Station
    rf: RFController
    url: str
    skin_trace: list[tuple[float, float, float]] = field(default_factory=list)

    @classmethod
    def create(cls, seed: int = 7, faults: tuple[str, ...] = ()) -> RFRig:
        station = Station.simulated()
        url = f"sim://rf?seed={seed}" + "".join(f"&fault={f}" for f in faults)
        rf = station.add_rf(url)
        rig = cls(station, rf, url)
        station.loop.run(max_duration_s=0.2)
        return rig

    @property
    def sim(self):  # the simulator has no type we import: it is the device side
        return simulator_for(self.url, self.station.clock)

    def start_zone(self, name: str = "forehead", target_c: float = 42.0, hold_s: float = 120.0):
        self.station.command("rf", "load", OPERATOR, zone=RFZone(name, target_c, hold_s))
        self.station.command("rf", "arm", OPERATOR)
        self.station.command("rf", "start", OPERATOR)

    def run_until(self, states: tuple[RFState, ...], max_s: float) -> bool:
        def done() -> bool:
            r = self.rf.reading
            if r is not None:
                self.skin_trace.append((self.station.clock.now(), r.skin1_c, r.skin2_c))
            return self.rf.state in states

        return self.station.loop.run(until=done, max_duration_s=max_s)

    def run_for(self, seconds: float) -> None:
        self.station.loop.run(max_duration_s=seconds)
