"""The chiller supervisor: independent limits, run every tick on the reading.

Independent of the controller's bookkeeping (it keeps its own cooling clock).
Faults (high, latching): a stale reading, any device fault bit, an implausible
or open sensor, skin below ``skin_min_c``, a plate below ``plate_min_c``,
output on while not cooling or off while cooling, and cooling longer than the
per-step maximum. Skin below ``skin_warn_c`` is a medium alarm, once per episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from devicectl.control.events import Alarm, AlarmPriority, fault_alarm
from devicectl_example_chiller.device import DEFINED_FAULTS, ChillerFault, ChillerReading
from devicectl_example_chiller.limits import ChillerLimits

DOC: Final = "examples/devicectl-example-chiller/README.md#faults"

_FAULT_TEXT: Final = (
    (ChillerFault.WATCHDOG_TRIPPED, "chiller.firmware_watchdog", "device watchdog turned it off"),
    (ChillerFault.SENSOR, "chiller.sensor_fault", "device reports a temperature sensor open"),
    (ChillerFault.SKIN_CUTOFF, "chiller.firmware_skin_cutoff", "firmware skin cut-off tripped"),
    (ChillerFault.POWER_ON_RESET, "chiller.device_reset", "device rebooted"),
)


@dataclass(frozen=True)
class ChillerContext:
    output_expected: bool  # the controller is cooling
    step_active: bool  # cooling or paused: time counts toward the step


class ChillerSupervisor:
    def __init__(self, limits: ChillerLimits, device: str = "chiller") -> None:
        self.limits = limits
        self.device = device
        self.cooling_s = 0.0
        self._missed_ticks = 0
        self._last_t_s: float | None = None
        self._warned = False

    def begin_step(self) -> None:
        self.cooling_s = 0.0

    def reset(self) -> None:
        self._missed_ticks = 0
        self._last_t_s = None
        self._warned = False

    def check(
        self, now_s: float, reading: ChillerReading | None, ctx: ChillerContext
    ) -> list[Alarm]:
        lim = self.limits
        dev = self.device
        out: list[Alarm] = []
        if reading is None:
            self._missed_ticks += 1
            if self._missed_ticks >= lim.stale_ticks:
                out.append(
                    fault_alarm(
                        dev,
                        "chiller.stale",
                        f"no valid reading for {self._missed_ticks} ticks",
                        self._missed_ticks,
                        lim.stale_ticks,
                        doc=DOC,
                    )
                )
            return out
        self._missed_ticks = 0
        faults = int(reading.faults)
        for bit, code, text in _FAULT_TEXT:
            if faults & bit:
                out.append(fault_alarm(dev, code, text, doc=DOC))
        if faults & ~int(DEFINED_FAULTS):
            out.append(
                fault_alarm(
                    dev, "chiller.implausible", f"undefined fault bits 0x{faults:02X}", doc=DOC
                )
            )
        for name, value in (("skin", reading.skin_c), ("plate", reading.plate_c)):
            if not (math.isfinite(value) and lim.plausible_min_c <= value <= lim.plausible_max_c):
                out.append(
                    fault_alarm(dev, "chiller.implausible", f"{name} sensor reads {value}", doc=DOC)
                )
                return out
        skin = reading.skin_c
        if skin < lim.skin_min_c:
            out.append(
                fault_alarm(
                    dev,
                    "chiller.skin_too_cold",
                    f"skin {skin:.1f} degC under the plate, below {lim.skin_min_c:g} degC",
                    skin,
                    lim.skin_min_c,
                    doc=DOC,
                )
            )
        elif skin < lim.skin_warn_c and not self._warned:
            self._warned = True
            out.append(
                Alarm(
                    dev,
                    "chiller.skin_cold",
                    AlarmPriority.MEDIUM,
                    f"{dev}: skin {skin:.1f} degC approaching {lim.skin_min_c:g} degC",
                    False,
                    skin,
                    lim.skin_min_c,
                    DOC,
                )
            )
        elif skin >= lim.skin_warn_c + 0.5:
            self._warned = False
        if reading.plate_c < lim.plate_min_c:
            out.append(
                fault_alarm(
                    dev,
                    "chiller.plate_overcool",
                    f"plate {reading.plate_c:.1f} degC, below {lim.plate_min_c:g} degC",
                    reading.plate_c,
                    lim.plate_min_c,
                    doc=DOC,
                )
            )
        if reading.output_on and not ctx.output_expected:
            out.append(
                fault_alarm(dev, "chiller.output_unexpected", "cooling while not asked", doc=DOC)
            )
        elif ctx.output_expected and not reading.output_on:
            out.append(
                fault_alarm(dev, "chiller.output_dropped", "cooling stopped by itself", doc=DOC)
            )
        if ctx.step_active and self._last_t_s is not None and reading.output_on:
            self.cooling_s += now_s - self._last_t_s
        self._last_t_s = now_s
        if self.cooling_s > lim.duration_max_s + lim.duration_grace_s:
            out.append(
                fault_alarm(
                    dev,
                    "chiller.duration",
                    f"{self.cooling_s:.0f} s of cooling in one step",
                    self.cooling_s,
                    lim.duration_max_s,
                    doc=DOC,
                )
            )
        return out
