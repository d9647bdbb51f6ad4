"""Helpers for tests that run the LED controller against the in-process simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devicectl.modalities.led.controller import LEDController, LEDState
from devicectl.modalities.led.limits import LEDStep
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for

OPERATOR = "tech-042"


@dataclass
class LEDRig:
    station: Station
    led: LEDController
    url: str

    @classmethod
    def create(cls, seed: int = 3, faults: tuple[str, ...] = ()) -> LEDRig:
        station = Station.simulated()
        url = f"sim://led?seed={seed}" + "".join(f"&fault={f}" for f in faults)
        led = station.add_led(url)
        rig = cls(station, led, url)
        station.loop.run(max_duration_s=0.2)
        return rig

    @property
    def sim(self) -> Any:
        return simulator_for(self.url, self.station.clock)

    def start(self, wavelength_nm: int = 633, irradiance: float = 100.0, duration_s: float = 60.0):
        step = LEDStep(wavelength_nm, irradiance, duration_s)
        self.station.command("led", "load", OPERATOR, step=step)
        self.station.command("led", "start", OPERATOR)

    def run_until(self, states: tuple[LEDState, ...], max_s: float) -> bool:
        return self.station.loop.run(until=lambda: self.led.state in states, max_duration_s=max_s)

    def run_for(self, seconds: float) -> None:
        self.station.loop.run(max_duration_s=seconds)
