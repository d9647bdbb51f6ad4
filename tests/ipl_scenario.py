"""Helpers for tests that run the IPL controller against the in-process simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devicectl.modalities.ipl.controller import IPLController, IPLState
from devicectl.modalities.ipl.limits import IPLPass
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for

OPERATOR = "tech-042"


@dataclass
class IPLRig:
    station: Station
    ipl: IPLController
    url: str

    @classmethod
    def create(
        cls, seed: int = 5, faults: tuple[str, ...] = (), options: str = "filter=560"
    ) -> IPLRig:
        station = Station.simulated()
        url = f"sim://ipl?seed={seed}&{options}" + "".join(f"&fault={f}" for f in faults)
        ipl = station.add_ipl(url)
        rig = cls(station, ipl, url)
        station.loop.run(max_duration_s=0.2)
        return rig

    @property
    def sim(self) -> Any:
        return simulator_for(self.url, self.station.clock)

    def load(self, flashes: int = 3, fluence: float = 15.0, filter_nm: int = 560, **kw: Any):
        kw.setdefault("pulse_width_ms", 10.0)
        p = IPLPass(filter_nm=filter_nm, fluence_j_cm2=fluence, flashes=flashes, **kw)
        self.station.command("ipl", "load", OPERATOR, ipl_pass=p)

    def arm(self) -> None:
        self.station.command("ipl", "arm", OPERATOR, eye_protection=True)

    def wait_armed(self, max_s: float = 10.0) -> bool:
        return self.run_until((IPLState.ARMED, IPLState.FAULT), max_s) and (
            self.ipl.state is IPLState.ARMED
        )

    def flash(self) -> None:
        """Wait until a trigger is accepted (armed and >= 1 s since the last), then pull it."""
        assert self.wait_armed(), self.ipl.status()
        self.station.loop.run(until=lambda: self.ipl._may_fire(), max_duration_s=5.0)
        self.station.command("ipl", "fire", OPERATOR)

    def run_until(self, states: tuple[IPLState, ...], max_s: float) -> bool:
        return self.station.loop.run(until=lambda: self.ipl.state in states, max_duration_s=max_s)

    def run_for(self, seconds: float) -> None:
        self.station.loop.run(max_duration_s=seconds)
