"""The LED supervisor: skin temperature, irradiance against setpoint, dose and time.

Independent of the controller's own dose bookkeeping: it integrates the
measured irradiance itself, so a controller bug cannot over-expose a patient.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.events import Alarm, AlarmPriority, fault_alarm
from devicectl.control.limits import LEDLimits
from devicectl.control.slope import SlopeEstimator
from devicectl.devices import LEDFault, LEDReading

_FAULT_TEXT = (
    (LEDFault.WATCHDOG_TRIPPED, "led.firmware_watchdog", "device watchdog turned output off"),
    (LEDFault.PANEL_OVERTEMP, "led.panel_overtemp", "panel over temperature"),
    (LEDFault.SKIN_OVERTEMP, "led.firmware_skin_cutoff", "firmware skin cut-off tripped"),
    (LEDFault.STRING_FAIL, "led.string_fail", "LED string failure"),
    (LEDFault.POWER_ON_RESET, "led.device_reset", "device rebooted"),
)
# Interlock opening is handled by the controller (pause), not latched here.
_FAULT_MASK = int(
    LEDFault.WATCHDOG_TRIPPED
    | LEDFault.PANEL_OVERTEMP
    | LEDFault.SKIN_OVERTEMP
    | LEDFault.STRING_FAIL
    | LEDFault.POWER_ON_RESET
)
# Every bit the protocol defines (docs/protocols/led.md, input 5); any other is a
# fault the host cannot name, never a healthy canopy.
_DEFINED_FAULTS = _FAULT_MASK | int(LEDFault.INTERLOCK_OPEN)


@dataclass(frozen=True)
class LEDContext:
    output_expected: bool
    setpoint_mw_cm2: float
    step_active: bool  # delivering or paused: dose and time count toward the step


class LEDSupervisor:
    def __init__(self, limits: LEDLimits, device: str = "led") -> None:
        self.limits = limits
        self.device = device
        self.dose_j_cm2 = 0.0
        self.on_time_s = 0.0
        self._missed_ticks = 0
        self._last_t_s: float | None = None
        self._on_since_s: float | None = None
        self._low_since_s: float | None = None
        self._high_since_s: float | None = None
        self._lit_since_s: float | None = None  # light measured while output expected off
        self._stuck: tuple[float, float] | None = None
        self._active: set[str] = set()
        # Skin slope while lit: at least 2 s of samples before it speaks.
        self._fall = SlopeEstimator(limits.skin_fall_window_s, min_samples=40)

    def begin_step(self) -> None:
        self.dose_j_cm2 = 0.0
        self.on_time_s = 0.0

    def reset(self) -> None:
        self._missed_ticks = 0
        self._last_t_s = None
        self._on_since_s = None
        self._low_since_s = None
        self._high_since_s = None
        self._lit_since_s = None
        self._stuck = None
        self._active.clear()
        self._fall.clear()

    def _fault(self, code: str, message: str, value: float | None, limit: float | None) -> Alarm:
        return fault_alarm(self.device, code, message, value, limit)

    def check(self, now_s: float, reading: LEDReading | None, ctx: LEDContext) -> list[Alarm]:
        lim = self.limits
        out: list[Alarm] = []
        if reading is None:
            self._missed_ticks += 1  # the gap is integrated when a reading returns
            if self._missed_ticks >= lim.stale_ticks:
                out.append(
                    self._fault(
                        "led.stale",
                        f"no valid reading for {self._missed_ticks} ticks",
                        self._missed_ticks,
                        lim.stale_ticks,
                    )
                )
            return out
        self._missed_ticks = 0
        faults = int(reading.faults)
        if faults & _FAULT_MASK:
            for bit, code, text in _FAULT_TEXT:
                if faults & bit:
                    out.append(self._fault(code, text, None, None))
        undefined = faults & ~_DEFINED_FAULTS
        if undefined:
            out.append(
                self._fault(
                    "led.implausible",
                    f"fault bits 0x{undefined:04X} that the protocol does not define",
                    faults,
                    None,
                )
            )
        skin = reading.skin_temp_c
        if not (lim.plausible_min_c <= skin <= lim.plausible_max_c):
            out.append(self._fault("led.implausible", f"skin sensor reads {skin}", skin, None))
            return out
        if skin > lim.skin_max_c:
            out.append(
                self._fault(
                    "led.skin_overtemp",
                    f"skin {skin:.1f} degC under the canopy",
                    skin,
                    lim.skin_max_c,
                )
            )
        if skin >= lim.skin_warn_c and "led.skin_warm" not in self._active:
            self._active.add("led.skin_warm")
            out.append(
                Alarm(
                    self.device,
                    "led.skin_warm",
                    AlarmPriority.MEDIUM,
                    f"{self.device}: skin {skin:.1f} degC approaching {lim.skin_max_c} degC",
                    False,
                    skin,
                    lim.skin_max_c,
                )
            )
        elif skin < lim.skin_warn_c - 0.5:
            self._active.discard("led.skin_warm")
        if reading.output_on and not ctx.output_expected:
            out.append(self._fault("led.output_unexpected", "output on while not delivering", 1, 0))
        elif ctx.output_expected and not reading.output_on and reading.interlock_closed:
            out.append(self._fault("led.output_dropped", "output dropped while delivering", 0, 1))
        self._check_irradiance(now_s, reading, ctx, out)
        self._check_stuck(now_s, skin, reading.output_on, out)
        self._check_fall(now_s, skin, ctx.output_expected and reading.output_on, out)
        if ctx.step_active and self._last_t_s is not None and reading.output_on:
            dt = now_s - self._last_t_s
            self.dose_j_cm2 += reading.irradiance_mw_cm2 * dt / 1000.0
            self.on_time_s += dt
        self._last_t_s = now_s
        if self.dose_j_cm2 > lim.dose_max_j_cm2:
            out.append(
                self._fault(
                    "led.dose",
                    f"dose {self.dose_j_cm2:.1f} J/cm2",
                    self.dose_j_cm2,
                    lim.dose_max_j_cm2,
                )
            )
        if self.on_time_s > lim.duration_max_s + lim.duration_grace_s:
            out.append(
                self._fault(
                    "led.duration",
                    f"{self.on_time_s:.0f} s of exposure",
                    self.on_time_s,
                    lim.duration_max_s,
                )
            )
        return out

    def _check_irradiance(
        self, now_s: float, reading: LEDReading, ctx: LEDContext, out: list[Alarm]
    ) -> None:
        lim = self.limits
        measured = reading.irradiance_mw_cm2
        # Above the setpoint only counts while on: after an off command the light
        # decays over a few tenths of a second.
        if measured > lim.irradiance_max_mw_cm2 or (
            ctx.output_expected
            and measured > ctx.setpoint_mw_cm2 * (1 + lim.over_irradiance_fraction) + 2.0
        ):
            out.append(
                self._fault(
                    "led.over_irradiance",
                    f"irradiance {measured:.1f} mW/cm2 against {ctx.setpoint_mw_cm2:.1f} set",
                    measured,
                    ctx.setpoint_mw_cm2,
                )
            )
        # Light that outlives an off: the safe state is read back from the status
        # bit, which a driver stage stuck on would not change; the photodiode is
        # the independent word. After a real off the light decays with 0.2 s
        # (docs/protocols/led.md), so it is gone well within settle_s.
        if not ctx.output_expected and measured > lim.dark_max_mw_cm2:
            if self._lit_since_s is None:
                self._lit_since_s = now_s
            elif now_s - self._lit_since_s >= lim.settle_s:
                out.append(
                    self._fault(
                        "led.output_unexpected",
                        f"irradiance {measured:.1f} mW/cm2 measured "
                        f"{now_s - self._lit_since_s:.1f} s after the output should be off",
                        measured,
                        lim.dark_max_mw_cm2,
                    )
                )
        else:
            self._lit_since_s = None
        if not (ctx.output_expected and reading.output_on):
            self._on_since_s = None
            self._low_since_s = None
            self._high_since_s = None
            return
        if self._on_since_s is None:
            self._on_since_s = now_s
        if now_s - self._on_since_s < lim.settle_s:
            return
        # Collapse: a failed LED string under-treats and hides a hardware fault.
        if measured < ctx.setpoint_mw_cm2 * lim.collapse_fraction:
            if self._low_since_s is None:
                self._low_since_s = now_s
            elif now_s - self._low_since_s >= lim.collapse_s:
                out.append(
                    self._fault(
                        "led.irradiance_collapse",
                        f"irradiance {measured:.1f} "
                        f"mW/cm2, under half of {ctx.setpoint_mw_cm2:.1f} set",
                        measured,
                        ctx.setpoint_mw_cm2,
                    )
                )
        else:
            self._low_since_s = None
        # High: a driver regulating a little above its setpoint (a drifted sense
        # resistor) stays under the 20 % limit yet over-doses the whole step.
        high_limit = ctx.setpoint_mw_cm2 * (1 + lim.irradiance_high_fraction)
        if measured > high_limit:
            if self._high_since_s is None:
                self._high_since_s = now_s
            elif now_s - self._high_since_s >= lim.irradiance_high_s - 1e-9:
                out.append(
                    self._fault(
                        "led.irradiance_high",
                        f"irradiance {measured:.1f} mW/cm2 against {ctx.setpoint_mw_cm2:.1f} "
                        f"set, over {high_limit:.1f} (setpoint + "
                        f"{lim.irradiance_high_fraction:.0%}) for "
                        f"{now_s - self._high_since_s:.1f} s",
                        measured,
                        high_limit,
                    )
                )
        else:
            self._high_since_s = None

    def _check_fall(self, now_s: float, skin: float, lit: bool, out: list[Alarm]) -> None:
        """A skin reading falling fast under a lit canopy is lying (see ``LEDLimits``)."""
        if not lit:
            self._fall.clear()
            return
        self._fall.add(now_s, skin)
        rate = self._fall.slope()
        limit = self.limits.skin_fall_max_c_per_s
        if rate is not None and rate < -limit:
            out.append(
                self._fault(
                    "led.sensor_fall",
                    f"skin sensor falling {-rate:.2f} degC/s under the lit canopy "
                    "(drifting low, or off the skin)",
                    rate,
                    -limit,
                )
            )

    def _check_stuck(self, now_s: float, skin: float, on: bool, out: list[Alarm]) -> None:
        if not on:
            self._stuck = None
            return
        if self._stuck is None or self._stuck[0] != skin:
            self._stuck = (skin, now_s)
        elif now_s - self._stuck[1] >= self.limits.stuck_s:
            out.append(
                self._fault(
                    "led.sensor_stuck",
                    f"skin sensor stuck at {skin:.1f} degC",
                    now_s - self._stuck[1],
                    self.limits.stuck_s,
                )
            )
