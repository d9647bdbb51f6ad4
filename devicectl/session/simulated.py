"""A station of simulated devices (RF, IPL, LED) on one SimClock, for demos and tests.

The simulated technician stands in for the hands at the chair: between RF zones
it lifts the handpiece and sets it on a fresh site (the simulator's
``reposition``), which no wire protocol carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devicectl.clock import Clock
from devicectl.modality import modalities, modality
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for


def sim_url(device: str, seed: int, faults: list[str] | tuple[str, ...] = ()) -> str:
    """The ``sim://`` URL of ``device``'s simulator, with its modality's options."""
    mod = modality(device)
    options = mod.sim_options
    url = f"sim://{mod.simulator}?seed={seed}" + (f"&{options}" if options else "")
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
    devices: tuple[str, ...] | None = None,
    clock: Clock | None = None,
) -> tuple[Station, SimulatedTechnician]:
    """Every device its in-process simulator, in simulated time (or on ``clock``:
    a RealClock runs them in real time, as the console does without ``--fast``).
    ``devices`` defaults to every registered modality."""
    station = Station.simulated() if clock is None else Station(clock)
    technician = SimulatedTechnician(station.clock)
    for device in devices if devices is not None else tuple(modalities()):
        url = sim_url(device, seed, (faults or {}).get(device, []))
        technician.urls[device] = url
        station.add(device, url)
    return station, technician
