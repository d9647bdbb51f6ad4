"""The RF supervisor: independent hard limits, checked every tick.

It runs after the readings and before any command, and it shares nothing with
the regulator but the reading: its own slope estimator, its own dose
accumulator, its own idea of how long the zone has been at target. A protocol
file cannot turn it off or change its limits.

It is a list of checks (``checks.py``) in the order they run, plus what only RF
has: the output field against its status bit, the output against what the
controller expects, and no rise under power. Every alarm names the device, the
condition, the value, the limit and the section of docs/safety.md that
explains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devicectl.control.checks import (
    DeviceBits,
    Dose,
    Plausible,
    Rate,
    Stale,
    Stuck,
    Threshold,
    make_alarm,
)
from devicectl.control.events import Alarm, AlarmPriority
from devicectl.devices import RFReading, RFStatus
from devicectl.modalities.rf.cem43 import CEM43Accumulator
from devicectl.modalities.rf.limits import RFLimits
from devicectl.modalities.rf.observer import Observed, SkinObserver, SkinObserverParams

_DEVICE_FAULT_BITS = (
    (RFStatus.OVERTEMP_CUTOFF, "rf.firmware_cutoff", "firmware over-temperature cut-off tripped"),
    (RFStatus.WATCHDOG_TRIPPED, "rf.firmware_watchdog", "device watchdog cut output"),
    (RFStatus.POWER_ON_RESET, "rf.device_reset", "device rebooted"),
    (RFStatus.SENSOR_FAULT, "rf.sensor_fault", "device reports a sensor fault"),
)

_OUTPUT_ON = int(RFStatus.OUTPUT_ON)


@dataclass(frozen=True)
class SupervisorContext:
    """What the controller tells the supervisor about this tick."""

    output_expected: bool  # the controller believes output is on (delivering)
    commanded_power_w: float
    zone_active: bool  # a zone is being delivered (delivering or paused)
    target_c: float


# The drift advisory re-arms once the sensors are back this much closer.
DRIFT_CLEAR_MARGIN_C = 0.25


class SensorDrift:
    """The two skin sensors more than ``sensor_drift_warn_c`` apart for
    ``sensor_drift_warn_s``: a LOW, non-latching alarm, raised once until they are
    back within the level less ``DRIFT_CLEAR_MARGIN_C``. It asks the operator to
    look at the handpiece's contact before ``rf.sensor_disagree`` turns output
    off; it changes nothing itself. A quick jump past the disagreement limit
    raises only that fault."""

    def __init__(self, device: str, limits: RFLimits) -> None:
        self.device, self.limits = device, limits
        self._since_s: float | None = None
        self.raised = False

    def reset(self) -> None:
        self._since_s = None
        self.raised = False

    def check(self, now_s: float, apart_c: float) -> Alarm | None:
        lim = self.limits
        if not apart_c > lim.sensor_drift_warn_c:  # NaN is the implausible check's
            self._since_s = None
            if not apart_c > lim.sensor_drift_warn_c - DRIFT_CLEAR_MARGIN_C:
                self.raised = False
            return None
        if self._since_s is None:
            self._since_s = now_s
        if self.raised or now_s - self._since_s < lim.sensor_drift_warn_s:
            return None
        self.raised = True
        return make_alarm(
            self.device,
            "rf.sensor_drift",
            "skin sensors drifting apart",
            f"{apart_c:.1f} degC apart for {lim.sensor_drift_warn_s:g} s",
            f"{lim.sensor_disagree_max_c:g} degC (then output off)",
            apart_c,
            lim.sensor_disagree_max_c,
            latches=False,
            priority=AlarmPriority.LOW,
        )


class RFSupervisor:
    def __init__(
        self,
        limits: RFLimits,
        device: str = "rf",
        observer_params: SkinObserverParams | None = None,
    ) -> None:
        lim = self.limits = limits
        self.device = d = device
        self.dose = CEM43Accumulator()
        self._stale = Stale(d, "rf.stale", lim.stale_ticks)
        self._bits = DeviceBits(d, "status", _DEVICE_FAULT_BITS)
        self._plausible = Plausible(
            d, "rf.implausible", lim.plausible_min_c, lim.plausible_max_c, "degC"
        )
        self._disagree = Threshold(
            d,
            "rf.sensor_disagree",
            "skin sensors disagree",
            lim.sensor_disagree_max_c,
            "degC",
            inclusive=False,
        )
        self._drift = SensorDrift(d, lim)
        self._overtemp = Threshold(
            d, "rf.overtemp", "skin at the software cut-off", lim.cutoff_c, "degC"
        )
        self._alarm_temp = Threshold(
            d,
            "rf.alarm_temp",
            "skin at or above the alarm level",
            lim.alarm_c,
            "degC",
            latching=False,
            clear=lim.alarm_clear_c,  # hysteresis: re-armed at or below alarm_clear_c
        )
        # Runaway: rising faster than any healthy heating does.
        self._rise = Rate(
            d, "rf.runaway", "skin rising", lim.rise_max_c_per_s, lim.rise_window_s, min_samples=8
        )
        self._power = Threshold(
            d, "rf.power", "power over the limit", lim.power_max_w, "W", inclusive=False
        )
        self._stuck = (
            Stuck(d, "rf.sensor_stuck", "skin sensor 1", lim.stuck_s, "degC"),
            Stuck(d, "rf.sensor_stuck", "skin sensor 2", lim.stuck_s, "degC"),
        )
        # Rule 10: delivered power against the skin model, blind to sensor agreement.
        self._heating = Observed(d, "rf.implausible_heating", observer_params)
        self._cem43 = Dose(
            d,
            "rf.dose",
            "site dose",
            lim.cem43_max,
            "CEM43",
            digits=2,
            warn_code="rf.dose_warn",
            warn_fraction=lim.cem43_warn_fraction,
        )
        self._at_target = Dose(
            d,
            "rf.time_at_target",
            "time at target on one site",
            lim.time_at_target_max_s,
            "s",
            digits=0,
        )
        self._no_rise_ref: tuple[float, float] | None = None  # (t_s, temp_c)
        self._last_t_s: float | None = None

    @property
    def observer(self) -> SkinObserver:
        return self._heating.observer

    @property
    def time_at_target_s(self) -> float:
        return self._at_target.total

    @property
    def last_rate_c_per_s(self) -> float | None:
        return self._rise.rate

    def begin_zone(self, prior_cem43: float = 0.0, prior_time_at_target_s: float = 0.0) -> None:
        """A new zone on a site that has already had ``prior_*`` this session.

        Dose belongs to the site (safety rule 8): the dose and time-at-target
        limits are checked against the site's total, so they start from it.
        """
        self.dose.reset()
        self.dose.dose = prior_cem43
        self._at_target.total = prior_time_at_target_s
        self._no_rise_ref = None
        self.observer.reset()

    def reset(self) -> None:
        """After an operator acknowledgement: start every observation afresh."""
        self._stale.reset()
        self._rise.reset()
        for stuck in self._stuck:
            stuck.reset()
        self._no_rise_ref = None
        self._last_t_s = None
        self._alarm_temp.reset()
        self._drift.reset()
        self._cem43.reset()
        self.dose.pause()
        self._heating.reset()  # restarts from the next reading, as a warm site: cooler

    def check(self, now_s: float, reading: RFReading | None, ctx: SupervisorContext) -> list[Alarm]:
        """Every alarm this tick raises; latching ones mean: go to the safe state now."""
        lim = self.limits
        # Stale: the dose gap is integrated when readings return.
        stale = self._stale.check(reading is not None)
        if reading is None:
            return [stale] if stale is not None else []
        t1, t2 = reading.skin1_c, reading.skin2_c
        status = int(reading.status)
        out = self._bits.check(status)
        # Implausible: an open sensor (NaN) or a value no skin can have.
        for idx, skin in ((1, t1), (2, t2)):
            _add(out, self._plausible.check(f"skin sensor {idx}", skin))
        # Measured power: the device reports 0.0 W and up (docs/protocols/rf.md); a NaN
        # would make the power check below compare False and pass whatever it hides.
        if not 0.0 <= reading.power_w < math.inf:
            out.append(
                make_alarm(
                    self.device,
                    "rf.implausible",
                    "measured power implausible",
                    f"{reading.power_w} W",
                    "a finite 0.0 W or more",
                    reading.power_w,
                    None,
                )
            )
        # One reading, two words on the output: the ON/OFF field and status bit 0. If
        # they disagree the device's report of its own energy cannot be trusted.
        if reading.output_on != bool(status & _OUTPUT_ON):
            out.append(
                make_alarm(
                    self.device,
                    "rf.implausible",
                    "output field and status bit OUTPUT_ON disagree",
                    f"output {'ON' if reading.output_on else 'OFF'}, bit "
                    f"{'set' if status & _OUTPUT_ON else 'clear'}",
                    "the same",
                    None,
                    None,
                )
            )
        if out:
            return out
        temp = t1 if t1 >= t2 else t2
        # Disagreement: one of two sensors lies (drift, detached); we can't tell which.
        disagree = self._disagree.check(abs(t1 - t2))
        _add(out, disagree)
        if disagree is None:  # short of that, drifting apart: an early word (LOW)
            _add(out, self._drift.check(now_s, abs(t1 - t2)))
        # Over-temperature: software cut-off below the firmware's own; then the alarm.
        _add(out, self._overtemp.check(temp))
        _add(out, self._alarm_temp.check(temp))
        # Runaway: too fast anywhere, or still heating fast at the alarm level.
        runaway = self._rise.check(now_s, temp)
        if runaway is None and temp >= lim.alarm_c:
            runaway = self._rise.beyond(
                lim.hot_rise_max_c_per_s,
                f"skin rising at {temp:.1f} degC (at or above the {lim.alarm_c} degC alarm level)",
            )
        _add(out, runaway)
        # Output the device reports against what the controller expects.
        if reading.output_on and not ctx.output_expected:
            out.append(
                self._output_alarm("rf.output_unexpected", "output on while not delivering", True)
            )
        elif ctx.output_expected and not reading.output_on and reading.contact_ok:
            # Contact loss turns output off by design (the controller pauses); anything
            # else that drops it (watchdog, reset, cut-off) means the device acted alone.
            out.append(
                self._output_alarm("rf.output_dropped", "output dropped while delivering", False)
            )
        # Power: measured or commanded above the host limit.
        _add(out, self._power.check(max(reading.power_w, ctx.commanded_power_w)))
        # Stuck: a live sensor with 0.05 degC noise never repeats itself exactly for
        # seconds while the skin is being heated; a frozen ADC does.
        for stuck, skin in zip(self._stuck, (t1, t2), strict=True):
            _add(out, stuck.check(now_s, skin, reading.output_on))
        self._check_no_rise(now_s, temp, ctx, out)
        if ctx.zone_active:
            self._check_dose(now_s, temp, ctx, reading.output_on, out)
            # Implausible heating: the delivered power, run through the skin model, says
            # the skin is clearly hotter than both sensors read, for long enough. Two
            # sensors drifting low together agree, so only this check can see them.
            power_w = reading.power_w if reading.output_on else 0.0
            _add(out, self._heating.check(now_s, (t1, t2), power_w))
        self._last_t_s = now_s
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

    def _check_no_rise(
        self, now_s: float, temp: float, ctx: SupervisorContext, out: list[Alarm]
    ) -> None:
        # Too slow (Klipper's verify_heater idea): real power for a long time with no
        # rise means the sensor is not where the heat is.
        lim = self.limits
        heating = ctx.output_expected and ctx.commanded_power_w >= lim.no_rise_power_w
        if not heating or temp >= ctx.target_c - lim.no_rise_min_c:
            self._no_rise_ref = None
            return
        if self._no_rise_ref is None or temp - self._no_rise_ref[1] >= lim.no_rise_min_c:
            self._no_rise_ref = (now_s, temp)
            return
        elapsed = now_s - self._no_rise_ref[0]
        if elapsed >= lim.no_rise_s:
            rise = temp - self._no_rise_ref[1]
            out.append(
                make_alarm(
                    self.device,
                    "rf.no_rise",
                    f"skin not rising at {ctx.commanded_power_w:.0f} W "
                    "(sensor off the heated skin?)",
                    f"{rise:.1f} degC in {elapsed:.0f} s",
                    f"{lim.no_rise_min_c} degC in {lim.no_rise_s} s",
                    rise,
                    lim.no_rise_min_c,
                )
            )

    def _check_dose(
        self, now_s: float, temp: float, ctx: SupervisorContext, heating: bool, out: list[Alarm]
    ) -> None:
        # Thermal dose: cumulative damage, whatever the temperature path.
        self._cem43.total = self.dose.add(now_s, temp)
        if (
            self._last_t_s is not None
            and heating
            and temp >= ctx.target_c - self.limits.at_target_band_c
        ):
            self._at_target.add(now_s - self._last_t_s)
        out += self._cem43.check()
        out += self._at_target.check()


def _add(out: list[Alarm], alarm: Alarm | None) -> None:
    if alarm is not None:
        out.append(alarm)
