"""Helpers for tests that run the RF controller against the in-process simulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from devicectl.devices import RFReading, RFStatus
from devicectl.modalities.rf.controller import RFController, RFState
from devicectl.modalities.rf.limits import RFLimits, RFZone
from devicectl.station import Station
from devicectl.urlhandlers.protocol_sim import simulator_for

OPERATOR = "tech-042"
SLOPE_TIE_C_PER_S = 1e-9  # a slope equal to the limit up to rounding counts as over it
_DEVICE_FAULT_MASK = int(
    RFStatus.OVERTEMP_CUTOFF
    | RFStatus.WATCHDOG_TRIPPED
    | RFStatus.POWER_ON_RESET
    | RFStatus.SENSOR_FAULT
)


@dataclass
class RFRig:
    """A simulated station with one RF controller, and its simulator for inspection."""

    station: Station
    rf: RFController
    url: str
    skin_trace: list[tuple[float, float, float]] = field(default_factory=list)

    @classmethod
    def create(
        cls, seed: int = 7, faults: tuple[str, ...] = (), skin0_c: float | None = None
    ) -> RFRig:
        """A station and its RF simulator; ``skin0_c`` sets the simulated skin's rest."""
        station = Station.simulated()
        url = f"sim://rf?seed={seed}" + "".join(f"&fault={f}" for f in faults)
        if skin0_c is not None:
            url += f"&skin0={skin0_c}"
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


def first_observable(
    ticks: list[tuple[float, RFReading | None]], limits: RFLimits, from_s: float
) -> tuple[float, str] | tuple[None, None]:
    """The first tick at or after ``from_s`` whose reading violates a latching limit."""
    lim = limits
    stuck: list[tuple[float, float]] = []  # per sensor (value, since) while output is on
    for i, (t, r) in enumerate(ticks):
        if r is None:
            continue
        temps = (r.skin1_c, r.skin2_c)
        found = None
        if int(r.status) & _DEVICE_FAULT_MASK:
            found = "device status"
        elif not all(lim.plausible_min_c <= v <= lim.plausible_max_c for v in temps):
            found = "implausible"
        elif abs(temps[0] - temps[1]) > lim.sensor_disagree_max_c:
            found = "disagree"
        elif max(temps) >= lim.cutoff_c:
            found = "cutoff"
        else:
            window = [
                (tt, max(rr.skin1_c, rr.skin2_c))
                for tt, rr in ticks[max(0, i - 40) : i + 1]
                if rr is not None and tt >= t - lim.rise_window_s
            ]
            n = len(window)
            if n >= 8:
                mt = sum(x for x, _ in window) / n
                my = sum(y for _, y in window) / n
                sxx = sum((x - mt) ** 2 for x, _ in window)
                sxy = sum((x - mt) * (y - my) for x, y in window)
                slope = sxy / sxx if sxx > 0 else None
                if slope is not None and slope > lim.rise_max_c_per_s - SLOPE_TIE_C_PER_S:
                    found = "rise"
                elif (
                    slope is not None
                    and max(temps) >= lim.alarm_c
                    and slope > lim.hot_rise_max_c_per_s - SLOPE_TIE_C_PER_S
                ):
                    found = "hot rise"
            if r.output_on:
                if not stuck:
                    stuck = [(temps[0], t), (temps[1], t)]
                else:
                    for k in (0, 1):
                        if temps[k] != stuck[k][0]:
                            stuck[k] = (temps[k], t)
                        elif t - stuck[k][1] >= lim.stuck_s and found is None:
                            found = "stuck"
            else:
                stuck = []
        if found is not None and t >= from_s:
            return t, found
    return None, None
