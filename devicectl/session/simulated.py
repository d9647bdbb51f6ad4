"""A station of simulated devices (RF, IPL, LED) on one SimClock, for demos and tests.

The simulated technician stands in for the hands at the chair: between RF zones
it lifts the handpiece and sets it on a fresh site (the simulator's
``reposition``), which no wire protocol carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devicectl.clock import Clock
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for

DEFAULT_OPTIONS = {"rf": "", "ipl": "filter=560", "led": ""}


def sim_url(device: str, seed: int, faults: list[str] | tuple[str, ...] = ()) -> str:
    options = DEFAULT_OPTIONS.get(device, "")
    url = f"sim://{device}?seed={seed}" + (f"&{options}" if options else "")
    return url + "".join(f"&fault={f}" for f in faults)


@dataclass
class SimulatedTechnician:
    clock: Clock
    urls: dict[str, str] = field(default_factory=dict)

    def move_to_next_zone(self, device: str) -> None:
        url = self.urls.get(device)
        if url is None:
            return
        simulator = simulator_for(url, self.clock)
        reposition = getattr(simulator, "reposition", None)
        if reposition is not None:
            reposition()


def simulated_station(
    seed: int = 7,
    faults: dict[str, list[str]] | None = None,
    devices: tuple[str, ...] = ("rf", "ipl", "led"),
    clock: Clock | None = None,
) -> tuple[Station, SimulatedTechnician]:
    """Every device its in-process simulator, in simulated time (or on ``clock``:
    a RealClock runs them in real time, as the console does without ``--fast``)."""
    station = Station.simulated() if clock is None else Station(clock)
    technician = SimulatedTechnician(station.clock)
    for device in devices:
        url = sim_url(device, seed, (faults or {}).get(device, []))
        technician.urls[device] = url
        if device == "rf":
            station.add_rf(url)
        elif device == "ipl":
            station.add_ipl(url)
        elif device == "led":
            station.add_led(url)
        else:
            raise ValueError(f"no simulated {device!r} device (rf, ipl, led)")
    return station, technician
