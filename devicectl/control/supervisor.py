"""The RF supervisor: independent hard limits, checked every tick.

It runs after the readings and before any command, and it shares nothing with
the regulator but the reading: its own slope estimator, its own dose
accumulator, its own idea of how long the zone has been at target. A protocol
file cannot turn it off or change its limits.

Each check is a few lines with one comment saying what it protects against;
every fault message names the device, the condition, the value, the limit and
the section of docs/safety.md that explains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devicectl.control.cem43 import CEM43Accumulator
from devicectl.control.events import Alarm, AlarmPriority, fault_alarm
from devicectl.control.limits import RFLimits
from devicectl.control.observer import SkinObserver, SkinObserverParams
from devicectl.control.slope import SlopeEstimator
from devicectl.devices import RFReading, RFStatus

_DEVICE_FAULT_BITS = (
    (RFStatus.OVERTEMP_CUTOFF, "rf.firmware_cutoff", "firmware over-temperature cut-off tripped"),
    (RFStatus.WATCHDOG_TRIPPED, "rf.firmware_watchdog", "device watchdog cut output"),
    (RFStatus.POWER_ON_RESET, "rf.device_reset", "device rebooted"),
    (RFStatus.SENSOR_FAULT, "rf.sensor_fault", "device reports a sensor fault"),
)

_OUTPUT_ON = int(RFStatus.OUTPUT_ON)

_DEVICE_FAULT_MASK = int(
    RFStatus.OVERTEMP_CUTOFF
    | RFStatus.WATCHDOG_TRIPPED
    | RFStatus.POWER_ON_RESET
    | RFStatus.SENSOR_FAULT
)


@dataclass(frozen=True)
class SupervisorContext:
    """What the controller tells the supervisor about this tick."""

    output_expected: bool  # the controller believes output is on (delivering)
    commanded_power_w: float
    zone_active: bool  # a zone is being delivered (delivering or paused)
    target_c: float


class RFSupervisor:
    def __init__(
        self,
        limits: RFLimits,
        device: str = "rf",
        observer_params: SkinObserverParams | None = None,
    ) -> None:
        self.limits = limits
        self.device = device
        self.dose = CEM43Accumulator()
        # Rule 10: delivered power against the skin model, blind to sensor agreement.
        self.observer = SkinObserver(observer_params)
        self._slope = SlopeEstimator(limits.rise_window_s, min_samples=8)
        self._missed_ticks = 0
        self._stuck: list[tuple[float, float]] = []  # per sensor: (value, since_t_s)
        self._no_rise_ref: tuple[float, float] | None = None  # (t_s, temp_c)
        self.time_at_target_s = 0.0
        self._last_t_s: float | None = None
        self._active: set[str] = set()  # non-latching alarms currently raised
        self.last_rate_c_per_s: float | None = None

    def begin_zone(self, prior_cem43: float = 0.0, prior_time_at_target_s: float = 0.0) -> None:
        """A new zone on a site that has already had ``prior_*`` this session.

        Dose belongs to the site (safety rule 8): the dose and time-at-target
        limits are checked against the site's total, so they start from it.
        """
        self.dose.reset()
        self.dose.dose = prior_cem43
        self.time_at_target_s = prior_time_at_target_s
        self._no_rise_ref = None
        self.observer.reset()

    def reset(self) -> None:
        """After an operator acknowledgement: start every observation afresh."""
        self._missed_ticks = 0
        self._slope.clear()
        self._stuck = []
        self._no_rise_ref = None
        self._last_t_s = None
        self._active.clear()
        self.dose.pause()
        self.observer.reset()  # restarts from the next reading, as a warm site: cooler

    def _fault(self, code: str, message: str, value: float | None, limit: float | None) -> Alarm:
        return fault_alarm(self.device, code, message, value, limit)

    def _edge(
        self,
        code: str,
        active: bool,
        priority: AlarmPriority,
        message: str,
        value: float,
        limit: float,
        out: list[Alarm],
    ) -> None:
        """Raise a non-latching alarm once when its condition starts (message built then)."""
        if not active:
            if self._active:
                self._active.discard(code)
            return
        if code not in self._active:
            self._active.add(code)
            text = f"{self.device}: {message.format(value=value, limit=limit)}"
            out.append(Alarm(self.device, code, priority, text, False, value, limit))

    def check(self, now_s: float, reading: RFReading | None, ctx: SupervisorContext) -> list[Alarm]:
        """Every alarm this tick raises; latching ones mean: go to the safe state now."""
        lim = self.limits
        out: list[Alarm] = []
        # Stale: no valid reading for stale_ticks ticks is comms loss, never "last value".
        if reading is None:
            self._missed_ticks += 1  # the dose gap is integrated when readings return
            if self._missed_ticks >= lim.stale_ticks:
                out.append(
                    self._fault(
                        "rf.stale",
                        f"no valid reading for {self._missed_ticks} ticks (comms loss)",
                        self._missed_ticks,
                        lim.stale_ticks,
                    )
                )
            return out
        self._missed_ticks = 0
        t1, t2 = reading.skin1_c, reading.skin2_c
        # Device-reported faults: the firmware already acted; the host must latch too.
        status = int(reading.status)
        if status & _DEVICE_FAULT_MASK:
            for bit, code, text in _DEVICE_FAULT_BITS:
                if status & bit:
                    out.append(self._fault(code, text, None, None))
        # Implausible: an open sensor (NaN) or a value no skin can have.
        low, high = lim.plausible_min_c, lim.plausible_max_c
        for idx, temp in ((1, t1), (2, t2)):
            if not (low <= temp <= high):  # NaN fails too
                out.append(
                    self._fault(
                        "rf.implausible",
                        f"skin sensor {idx} reads {temp} degC, outside "
                        f"{lim.plausible_min_c}-{lim.plausible_max_c} degC",
                        temp,
                        None,
                    )
                )
        # Measured power: the device reports 0.0 W and up (docs/protocols/rf.md); a NaN
        # would make the power check below compare False and pass whatever it hides.
        if not 0.0 <= reading.power_w < math.inf:
            out.append(
                self._fault(
                    "rf.implausible",
                    f"measured power reads {reading.power_w} W, not a finite number of "
                    "watts of 0.0 or more",
                    reading.power_w,
                    None,
                )
            )
        # One reading, two words on the output: the ON/OFF field and status bit 0. If
        # they disagree the device's report of its own energy cannot be trusted.
        if reading.output_on != bool(status & _OUTPUT_ON):
            out.append(
                self._fault(
                    "rf.implausible",
                    f"output reported {'ON' if reading.output_on else 'OFF'} but status "
                    f"bit OUTPUT_ON is {'set' if status & _OUTPUT_ON else 'clear'}",
                    None,
                    None,
                )
            )
        if out:
            return out
        temp = t1 if t1 >= t2 else t2
        # Disagreement: one of two sensors lies (drift, detached); we can't tell which.
        diff = abs(t1 - t2)
        if diff > lim.sensor_disagree_max_c:
            out.append(
                self._fault(
                    "rf.sensor_disagree",
                    f"skin sensors disagree by {diff:.1f} degC",
                    diff,
                    lim.sensor_disagree_max_c,
                )
            )
        # Over-temperature: software cut-off below the firmware's own.
        if temp >= lim.cutoff_c:
            out.append(
                self._fault("rf.overtemp", f"skin {temp:.1f} degC at cut-off", temp, lim.cutoff_c)
            )
        self._edge(
            "rf.alarm_temp",
            temp >= lim.alarm_c or ("rf.alarm_temp" in self._active and temp > lim.alarm_clear_c),
            AlarmPriority.HIGH,
            "skin {value:.1f} degC at or above alarm {limit} degC",
            temp,
            lim.alarm_c,
            out,
        )
        # Runaway: rising faster than any healthy heating does.
        self._slope.add(now_s, temp)
        rate = self._slope.slope()
        self.last_rate_c_per_s = rate
        if rate is not None and rate > lim.rise_max_c_per_s:
            out.append(
                self._fault(
                    "rf.runaway",
                    f"skin rising {rate:.2f} degC/s",
                    rate,
                    lim.rise_max_c_per_s,
                )
            )
        elif rate is not None and temp >= lim.alarm_c and rate > lim.hot_rise_max_c_per_s:
            out.append(
                self._fault(
                    "rf.runaway",
                    f"skin rising {rate:.2f} degC/s at {temp:.1f} degC (at or above the "
                    f"{lim.alarm_c} degC alarm level)",
                    rate,
                    lim.hot_rise_max_c_per_s,
                )
            )
        # Output the device reports against what the controller expects.
        if reading.output_on and not ctx.output_expected:
            out.append(self._fault("rf.output_unexpected", "output on while not delivering", 1, 0))
        elif ctx.output_expected and not reading.output_on and reading.contact_ok:
            # Contact loss turns output off by design (the controller pauses); anything
            # else that drops it (watchdog, reset, cut-off) means the device acted alone.
            out.append(self._fault("rf.output_dropped", "output dropped while delivering", 0, 1))
        # Power: measured or commanded above the host limit.
        power = max(reading.power_w, ctx.commanded_power_w)
        if power > lim.power_max_w:
            out.append(
                self._fault("rf.power", f"power {power:.1f} W over limit", power, lim.power_max_w)
            )
        self._check_stuck(now_s, (t1, t2), reading.output_on, out)
        self._check_no_rise(now_s, temp, ctx, out)
        if ctx.zone_active:
            self._check_dose(now_s, temp, ctx, reading.output_on, out)
            self._check_heating(now_s, (t1, t2), reading, out)
        self._last_t_s = now_s
        return out

    def _check_stuck(
        self, now_s: float, temps: tuple[float, float], heating: bool, out: list[Alarm]
    ) -> None:
        # Stuck: a live sensor with 0.05 degC noise never repeats itself exactly for
        # seconds while the skin is being heated; a frozen ADC does.
        if not heating:
            self._stuck = []
            return
        if not self._stuck:
            self._stuck = [(temps[0], now_s), (temps[1], now_s)]
            return
        for idx in (0, 1):
            value, since = self._stuck[idx]
            if temps[idx] != value:
                self._stuck[idx] = (temps[idx], now_s)
            elif now_s - since >= self.limits.stuck_s:
                out.append(
                    self._fault(
                        "rf.sensor_stuck",
                        f"skin sensor {idx + 1} stuck at {value:.1f} degC "
                        f"for {now_s - since:.1f} s while heating",
                        now_s - since,
                        self.limits.stuck_s,
                    )
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
            out.append(
                self._fault(
                    "rf.no_rise",
                    f"skin rose {temp - self._no_rise_ref[1]:.1f} degC in {elapsed:.0f} s "
                    f"at {ctx.commanded_power_w:.0f} W (sensor off the heated skin?)",
                    temp - self._no_rise_ref[1],
                    lim.no_rise_min_c,
                )
            )

    def _check_heating(
        self, now_s: float, temps: tuple[float, float], reading: RFReading, out: list[Alarm]
    ) -> None:
        # Implausible heating: the delivered power, run through the skin model, says
        # the skin is clearly hotter than both sensors read, for long enough. Two
        # sensors drifting low together agree, so only this check can see them.
        power_w = reading.power_w if reading.output_on else 0.0
        verdict = self.observer.update(now_s, temps, power_w)
        if verdict is None or not verdict.failed:
            return
        params = self.observer.params
        gap_c = verdict.model_c - verdict.measured_c
        out.append(
            self._fault(
                "rf.implausible_heating",
                f"delivered power heats the skin model to {verdict.model_c:.1f} degC but "
                f"the hotter sensor reads {verdict.measured_c:.1f} degC: {gap_c:.1f} degC "
                f"apart, over the {params.margin_c} degC margin for "
                f"{verdict.error_c_s:.1f} degC*s (limit {params.max_error_c_s}); "
                "both sensors reading low?",
                gap_c,
                params.margin_c,
            )
        )

    def _check_dose(
        self, now_s: float, temp: float, ctx: SupervisorContext, heating: bool, out: list[Alarm]
    ) -> None:
        lim = self.limits
        dose = self.dose.add(now_s, temp)
        if self._last_t_s is not None and heating and temp >= ctx.target_c - 0.5:
            self.time_at_target_s += now_s - self._last_t_s
        # Thermal dose: cumulative damage, whatever the temperature path.
        if dose > lim.cem43_max:
            out.append(self._fault("rf.dose", f"site dose {dose:.2f} CEM43", dose, lim.cem43_max))
        self._edge(
            "rf.dose_warn",
            dose >= lim.cem43_max * lim.cem43_warn_fraction,
            AlarmPriority.MEDIUM,
            "site dose {value:.2f} CEM43 approaching {limit}",
            dose,
            lim.cem43_max,
            out,
        )
        if self.time_at_target_s > lim.time_at_target_max_s:
            out.append(
                self._fault(
                    "rf.time_at_target",
                    f"{self.time_at_target_s:.0f} s at target on one site",
                    self.time_at_target_s,
                    lim.time_at_target_max_s,
                )
            )
