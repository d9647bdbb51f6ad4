"""The IPL supervisor: independent limits on every status reading of the flash lamp.

It checks what the controller cannot be trusted to check about itself: that
a flash happened only when one was commanded, that every flash delivered the
fluence it was set to (photodiode within +-20 %), that the lamp block and the
crystal are where they must be, and that the device is not armed when the
controller believes it is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.events import Alarm, AlarmPriority, fault_alarm
from devicectl.control.limits import IPLLimits
from devicectl.devices import IPLReading, IPLStatus

_DEVICE_FAULTS = (
    (IPLStatus.BLOCK_OVERTEMP, "ipl.block_overtemp", "device stopped: lamp block over temperature"),
    (IPLStatus.WATCHDOG_TRIPPED, "ipl.firmware_watchdog", "device watchdog disarmed the lamp"),
    (IPLStatus.POWER_ON_RESET, "ipl.device_reset", "device rebooted"),
    (IPLStatus.SENSOR_FAULT, "ipl.sensor_fault", "device reports a thermistor fault"),
)
_DEVICE_FAULT_MASK = int(
    IPLStatus.BLOCK_OVERTEMP
    | IPLStatus.WATCHDOG_TRIPPED
    | IPLStatus.POWER_ON_RESET
    | IPLStatus.SENSOR_FAULT
)
_ENERGY_BITS = int(IPLStatus.ARMED | IPLStatus.CHARGED | IPLStatus.CHARGING)
STUCK_FLASHES = 3


@dataclass(frozen=True)
class IPLContext:
    energy_expected: bool  # charging, armed or firing
    set_fluence_j_cm2: float | None  # of the loaded pass
    pulses_commanded: int  # pulses of every train fired since the last reset


class IPLSupervisor:
    def __init__(self, limits: IPLLimits, device: str = "ipl") -> None:
        self.limits = limits
        self.device = device
        self._missed_ticks = 0
        self._shots_base: int | None = None  # shot counter when counting started
        self._last_shots: int | None = None  # the counter in the last reading
        self._flashes_without_rise = 0
        self._trains_without_block_rise = 0
        self._active: set[str] = set()

    def reset(self) -> None:
        """After an acknowledgement or a reconnect: count shots afresh."""
        self._missed_ticks = 0
        self._shots_base = None
        self._last_shots = None
        self._flashes_without_rise = 0
        self._trains_without_block_rise = 0
        self._active.clear()

    def _fault(self, code: str, message: str, value: float | None, limit: float | None) -> Alarm:
        return fault_alarm(self.device, code, message, value, limit)

    def _warn(
        self,
        code: str,
        value: float,
        threshold: float,
        message: str,
        out: list[Alarm],
        above: bool = False,
    ) -> None:
        """A medium alarm once when ``value`` reaches ``threshold`` (or passes it, with
        ``above``); it re-arms only after the value fell ``warn_clear_margin_c`` below
        the threshold (hysteresis)."""
        if code in self._active:
            if not value > threshold - self.limits.warn_clear_margin_c:  # NaN clears too
                self._active.discard(code)
        elif value > threshold or (value == threshold and not above):
            self._active.add(code)
            out.append(
                Alarm(
                    self.device,
                    code,
                    AlarmPriority.MEDIUM,
                    f"{self.device}: {message}",
                    False,
                    value,
                    threshold,
                )
            )

    def check(self, reading: IPLReading | None, ctx: IPLContext) -> list[Alarm]:
        lim = self.limits
        out: list[Alarm] = []
        # Stale: comms loss is a fault, never "last value".
        if reading is None:
            self._missed_ticks += 1
            if self._missed_ticks >= lim.stale_ticks:
                out.append(
                    self._fault(
                        "ipl.stale",
                        f"no valid status for {self._missed_ticks} ticks",
                        self._missed_ticks,
                        lim.stale_ticks,
                    )
                )
            return out
        self._missed_ticks = 0
        status = int(reading.status)
        if status & _DEVICE_FAULT_MASK:
            for bit, code, text in _DEVICE_FAULTS:
                if status & bit:
                    out.append(self._fault(code, text, None, None))
        # Implausible temperatures: an open thermistor is NaN and fails the range.
        for what, temp in (
            ("crystal", reading.crystal_temp_c),
            ("lamp block", reading.block_temp_c),
        ):
            if not (lim.plausible_min_c <= temp <= lim.plausible_max_c):
                out.append(
                    self._fault("ipl.implausible", f"{what} temperature reads {temp}", temp, None)
                )
        if reading.block_temp_c >= lim.block_stop_c:
            out.append(
                self._fault(
                    "ipl.block_overtemp",
                    f"lamp block {reading.block_temp_c:.1f} degC",
                    reading.block_temp_c,
                    lim.block_stop_c,
                )
            )
        # Energy stored or armed while the controller believes the lamp is safe.
        if status & _ENERGY_BITS and not ctx.energy_expected:
            out.append(
                self._fault(
                    "ipl.energy_unexpected",
                    "charged or armed while not treating",
                    status & _ENERGY_BITS,
                    0,
                )
            )
        # The shot counter is the lamp's life count: it never goes back. One that
        # does cannot be trusted to show an uncommanded flash (the drop would make
        # as many flashes look commanded).
        last_shots, self._last_shots = self._last_shots, reading.shot_count
        if last_shots is not None and reading.shot_count < last_shots:
            out.append(
                self._fault(
                    "ipl.implausible",
                    f"shot counter went back from {last_shots} to {reading.shot_count}",
                    reading.shot_count,
                    last_shots,
                )
            )
        # Every flash must have been commanded, and must have delivered its fluence.
        if self._shots_base is None:
            self._shots_base = reading.shot_count - ctx.pulses_commanded
        fired = reading.shot_count - self._shots_base
        allowed = ctx.pulses_commanded
        if fired > allowed:
            out.append(
                self._fault(
                    "ipl.unexpected_flash",
                    f"{fired - allowed} flash(es) that were never commanded",
                    fired - allowed,
                    0,
                )
            )
        self._warn(
            "ipl.block_warm",
            reading.block_temp_c,
            lim.block_warn_c,
            f"lamp block {reading.block_temp_c:.1f} degC approaching {lim.block_stop_c} degC",
            out,
        )
        self._warn(  # arming needs the crystal at or below the limit
            "ipl.crystal_warm",
            reading.crystal_temp_c,
            lim.crystal_arm_max_c,
            f"crystal {reading.crystal_temp_c:.1f} degC above {lim.crystal_arm_max_c} "
            "degC: waiting for it to cool",
            out,
            above=True,
        )
        return out

    def check_flash(
        self, reading: IPLReading, set_fluence_j_cm2: float, pulse_count: int, before: IPLReading
    ) -> Alarm | None:
        """After a confirmed train (``before``: the last reading before FIRE): the
        photodiode's fluence against the set one, and the two thermistors that every
        flash must warm.

        The crystal: one that did not rise over STUCK_FLASHES trains in a row is
        frozen (a frozen reading would let a warm crystal arm). The lamp block:
        a train whose pulses must warm it by at least ``block_stuck_min_rise_c``
        (so that even after quantisation and cooling it reads at least 0.1 degC
        higher) and that left it unchanged, ``block_stuck_trains`` times in a row,
        is a frozen thermistor: nothing else would stop the block overheating.
        Lighter trains prove nothing either way and leave the count alone.
        """
        lim = self.limits
        if reading.crystal_temp_c > before.crystal_temp_c:
            self._flashes_without_rise = 0
        else:
            self._flashes_without_rise += 1
            if self._flashes_without_rise >= STUCK_FLASHES:
                return self._fault(
                    "ipl.crystal_stuck",
                    f"crystal thermistor did not rise over {STUCK_FLASHES} flashes "
                    f"(reads {reading.crystal_temp_c:.1f} degC)",
                    reading.crystal_temp_c,
                    None,
                )
        expected_rise_c = lim.block_rise_c_per_j_cm2 * set_fluence_j_cm2 * pulse_count
        if expected_rise_c >= lim.block_stuck_min_rise_c:
            if reading.block_temp_c > before.block_temp_c:
                self._trains_without_block_rise = 0
            else:
                self._trains_without_block_rise += 1
                if self._trains_without_block_rise >= lim.block_stuck_trains:
                    return self._fault(
                        "ipl.block_stuck",
                        f"lamp block thermistor did not rise over {lim.block_stuck_trains} "
                        f"trains that each should warm it {expected_rise_c:.2f} degC "
                        f"(reads {reading.block_temp_c:.1f} degC)",
                        reading.block_temp_c,
                        None,
                    )
        delivered = reading.last_fluence_j_cm2
        error = abs(delivered - set_fluence_j_cm2) / set_fluence_j_cm2
        if error > self.limits.energy_tolerance:
            return self._fault(
                "ipl.energy_mismatch",
                f"flash delivered {delivered:.2f} J/cm2 against {set_fluence_j_cm2:.2f} set "
                f"({error:.0%} off)",
                delivered,
                set_fluence_j_cm2,
            )
        return None
