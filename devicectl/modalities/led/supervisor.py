"""The LED supervisor: skin temperature, irradiance against setpoint, dose and time.

Independent of the controller's own dose bookkeeping: it integrates the
measured irradiance itself, so a controller bug cannot over-expose a patient.
It is a list of checks (``checks.py``) in the order they run, plus what only
the canopy has: irradiance against its setpoint, and light after an off.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.checks import (
    DeviceBits,
    Dose,
    Plausible,
    Rate,
    Stale,
    Stuck,
    Sustained,
    Threshold,
    make_alarm,
)
from devicectl.control.events import Alarm, AlarmPriority
from devicectl.devices import LEDFault, LEDReading
from devicectl.modalities.led.limits import LEDLimits

_FAULT_TEXT = (
    (LEDFault.WATCHDOG_TRIPPED, "led.firmware_watchdog", "device watchdog turned output off"),
    (LEDFault.PANEL_OVERTEMP, "led.panel_overtemp", "panel over temperature"),
    (LEDFault.SKIN_OVERTEMP, "led.firmware_skin_cutoff", "firmware skin cut-off tripped"),
    (LEDFault.STRING_FAIL, "led.string_fail", "LED string failure"),
    (LEDFault.POWER_ON_RESET, "led.device_reset", "device rebooted"),
)
# Interlock opening is handled by the controller (pause), not latched here.
# Every bit the protocol defines (docs/protocols/led.md, input 5); any other is a
# fault the host cannot name, never a healthy canopy.
_DEFINED_FAULTS = int(
    LEDFault.WATCHDOG_TRIPPED
    | LEDFault.PANEL_OVERTEMP
    | LEDFault.SKIN_OVERTEMP
    | LEDFault.STRING_FAIL
    | LEDFault.POWER_ON_RESET
    | LEDFault.INTERLOCK_OPEN
)


@dataclass(frozen=True)
class LEDContext:
    output_expected: bool
    setpoint_mw_cm2: float
    step_active: bool  # delivering or paused: dose and time count toward the step


class LEDSupervisor:
    def __init__(self, limits: LEDLimits, device: str = "led") -> None:
        lim = self.limits = limits
        self.device = d = device
        self._stale = Stale(d, "led.stale", lim.stale_ticks)
        self._bits = DeviceBits(
            d, "fault", _FAULT_TEXT, defined=_DEFINED_FAULTS, undefined_code="led.implausible"
        )
        self._plausible = Plausible(
            d, "led.implausible", lim.plausible_min_c, lim.plausible_max_c, "degC"
        )
        self._skin_over = Threshold(
            d,
            "led.skin_overtemp",
            "skin over the limit under the canopy",
            lim.skin_max_c,
            "degC",
            inclusive=False,
        )
        self._skin_warm = Threshold(
            d,
            "led.skin_warm",
            "skin approaching the limit",
            lim.skin_warn_c,
            "degC",
            latching=False,
            priority=AlarmPriority.MEDIUM,
            clear=lim.skin_warn_c - lim.warn_clear_margin_c,  # hysteresis: re-arm below
            clear_inclusive=False,
            limit=lim.skin_max_c,
        )
        self._stuck = Stuck(d, "led.sensor_stuck", "skin sensor", lim.stuck_s, "degC")
        # Skin slope while lit: at least 2 s of samples before it speaks.
        self._fall = Rate(
            d,
            "led.sensor_fall",
            "skin sensor falling under the lit canopy (drifting low, or off the skin)",
            lim.skin_fall_max_c_per_s,
            lim.skin_fall_window_s,
            min_samples=40,
            falling=True,
        )
        self._dose = Dose(d, "led.dose", "dose", lim.dose_max_j_cm2, "J/cm2")
        self._on_time = Dose(
            d,
            "led.duration",
            "exposure time",
            lim.duration_max_s,
            "s",
            digits=0,
            level=lim.duration_max_s + lim.duration_grace_s,
        )
        self._lit = Sustained(lim.settle_s)  # light measured while output expected off
        self._low = Sustained(lim.collapse_s)
        self._high = Sustained(lim.irradiance_high_s - 1e-9)
        self._on_since_s: float | None = None
        self._last_t_s: float | None = None

    @property
    def dose_j_cm2(self) -> float:
        return self._dose.total

    @property
    def on_time_s(self) -> float:
        return self._on_time.total

    def begin_step(self) -> None:
        self._dose.total = 0.0
        self._on_time.total = 0.0

    def reset(self) -> None:
        self._stale.reset()
        self._last_t_s = None
        self._on_since_s = None
        self._low.reset()
        self._high.reset()
        self._lit.reset()
        self._stuck.reset()
        self._skin_warm.reset()
        self._fall.reset()

    def check(self, now_s: float, reading: LEDReading | None, ctx: LEDContext) -> list[Alarm]:
        # Stale: the gap is integrated when a reading returns.
        stale = self._stale.check(reading is not None)
        if reading is None:
            return [stale] if stale is not None else []
        out = self._bits.check(int(reading.faults))
        skin = reading.skin_temp_c
        implausible = self._plausible.check("skin sensor", skin)
        if implausible is not None:
            out.append(implausible)
            return out
        _add(out, self._skin_over.check(skin))
        _add(out, self._skin_warm.check(skin))
        if reading.output_on and not ctx.output_expected:
            out.append(
                self._output_alarm("led.output_unexpected", "output on while not delivering", True)
            )
        elif ctx.output_expected and not reading.output_on and reading.interlock_closed:
            out.append(
                self._output_alarm("led.output_dropped", "output dropped while delivering", False)
            )
        self._check_irradiance(now_s, reading, ctx, out)
        _add(out, self._stuck.check(now_s, skin, reading.output_on))
        # A skin reading falling fast under a lit canopy is lying (see ``LEDLimits``).
        if ctx.output_expected and reading.output_on:
            _add(out, self._fall.check(now_s, skin))
        else:
            self._fall.reset()
        if ctx.step_active and self._last_t_s is not None and reading.output_on:
            dt = now_s - self._last_t_s
            self._dose.add(reading.irradiance_mw_cm2 * dt / 1000.0)
            self._on_time.add(dt)
        self._last_t_s = now_s
        out += self._dose.check()
        out += self._on_time.check()
        return out

    def _output_alarm(self, code: str, condition: str, on: bool) -> Alarm:
        return make_alarm(
            self.device,
            code,
            condition,
            "on" if on else "off",
            "off" if on else "on",
            1 if on else 0,
            0 if on else 1,
        )

    def _irradiance_alarm(
        self, code: str, condition: str, measured: float, limit: float, shown_limit: str
    ) -> Alarm:
        return make_alarm(
            self.device, code, condition, f"{measured:.1f} mW/cm2", shown_limit, measured, limit
        )

    def _check_irradiance(
        self, now_s: float, reading: LEDReading, ctx: LEDContext, out: list[Alarm]
    ) -> None:
        lim = self.limits
        measured = reading.irradiance_mw_cm2
        setpoint = ctx.setpoint_mw_cm2
        # Above the setpoint only counts while on: after an off command the light
        # decays over a few tenths of a second.
        relative_max = setpoint * (1 + lim.over_irradiance_fraction) + 2.0
        if measured > lim.irradiance_max_mw_cm2 or (
            ctx.output_expected and measured > relative_max
        ):
            out.append(
                self._irradiance_alarm(
                    "led.over_irradiance",
                    f"irradiance over the limit against {setpoint:.1f} mW/cm2 set",
                    measured,
                    setpoint,
                    f"{lim.irradiance_max_mw_cm2} mW/cm2, or {relative_max:.1f} mW/cm2 "
                    f"(setpoint + {lim.over_irradiance_fraction:.0%} + 2) while delivering",
                )
            )
        # Light that outlives an off: the safe state is read back from the status
        # bit, which a driver stage stuck on would not change; the photodiode is
        # the independent word. After a real off the light decays with 0.2 s
        # (docs/protocols/led.md), so it is gone well within settle_s.
        lit_s = self._lit.check(now_s, not ctx.output_expected and measured > lim.dark_max_mw_cm2)
        if lit_s is not None:
            out.append(
                self._irradiance_alarm(
                    "led.output_unexpected",
                    f"light measured {lit_s:.1f} s after the output should be off",
                    measured,
                    lim.dark_max_mw_cm2,
                    f"{lim.dark_max_mw_cm2} mW/cm2",
                )
            )
        if not (ctx.output_expected and reading.output_on):
            self._on_since_s = None
            self._low.reset()
            self._high.reset()
            return
        if self._on_since_s is None:
            self._on_since_s = now_s
        if now_s - self._on_since_s < lim.settle_s:
            return
        # Collapse: a failed LED string under-treats and hides a hardware fault.
        low_s = self._low.check(now_s, measured < setpoint * lim.collapse_fraction)
        if low_s is not None:
            out.append(
                self._irradiance_alarm(
                    "led.irradiance_collapse",
                    f"irradiance under {lim.collapse_fraction:.0%} of {setpoint:.1f} "
                    f"mW/cm2 set for {low_s:.1f} s",
                    measured,
                    setpoint,
                    f"{setpoint * lim.collapse_fraction:.1f} mW/cm2",
                )
            )
        # High: a driver regulating a little above its setpoint (a drifted sense
        # resistor) stays under the 20 % limit yet over-doses the whole step.
        high_limit = setpoint * (1 + lim.irradiance_high_fraction)
        high_s = self._high.check(now_s, measured > high_limit)
        if high_s is not None:
            out.append(
                self._irradiance_alarm(
                    "led.irradiance_high",
                    f"irradiance over setpoint + {lim.irradiance_high_fraction:.0%} against "
                    f"{setpoint:.1f} mW/cm2 set for {high_s:.1f} s",
                    measured,
                    high_limit,
                    f"{high_limit:.1f} mW/cm2",
                )
            )


def _add(out: list[Alarm], alarm: Alarm | None) -> None:
    if alarm is not None:
        out.append(alarm)
