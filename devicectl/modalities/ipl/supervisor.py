"""The IPL supervisor: independent limits on every status reading of the flash lamp.

It checks what the controller cannot be trusted to check about itself: that
a flash happened only when one was commanded, that every flash delivered the
fluence it was set to (photodiode within +-20 %), that the lamp block and the
crystal are where they must be, and that the device is not armed when the
controller believes it is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.checks import DeviceBits, Plausible, Stale, Threshold, make_alarm
from devicectl.control.events import Alarm, AlarmPriority
from devicectl.devices import IPLReading, IPLStatus
from devicectl.modalities.ipl.limits import IPLLimits

_DEVICE_FAULTS = (
    (IPLStatus.BLOCK_OVERTEMP, "ipl.block_overtemp", "device stopped: lamp block over temperature"),
    (IPLStatus.WATCHDOG_TRIPPED, "ipl.firmware_watchdog", "device watchdog disarmed the lamp"),
    (IPLStatus.POWER_ON_RESET, "ipl.device_reset", "device rebooted"),
    (IPLStatus.SENSOR_FAULT, "ipl.sensor_fault", "device reports a thermistor fault"),
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
        lim = self.limits = limits
        self.device = d = device
        self._stale = Stale(d, "ipl.stale", lim.stale_ticks)
        self._bits = DeviceBits(d, "status", _DEVICE_FAULTS)
        self._plausible = Plausible(
            d, "ipl.implausible", lim.plausible_min_c, lim.plausible_max_c, "degC"
        )
        self._block_stop = Threshold(
            d, "ipl.block_overtemp", "lamp block at the stop temperature", lim.block_stop_c, "degC"
        )
        # Warnings re-arm only warn_clear_margin_c below their threshold (hysteresis).
        self._block_warm = Threshold(
            d,
            "ipl.block_warm",
            f"lamp block approaching the {lim.block_stop_c} degC stop",
            lim.block_warn_c,
            "degC",
            latching=False,
            priority=AlarmPriority.MEDIUM,
            clear=lim.block_warn_c - lim.warn_clear_margin_c,
        )
        self._crystal_warm = Threshold(  # arming needs the crystal at or below the limit
            d,
            "ipl.crystal_warm",
            "crystal too warm to arm: waiting for it to cool",
            lim.crystal_arm_max_c,
            "degC",
            inclusive=False,
            latching=False,
            priority=AlarmPriority.MEDIUM,
            clear=lim.crystal_arm_max_c - lim.warn_clear_margin_c,
        )
        self._shots_base: int | None = None  # shot counter when counting started
        self._last_shots: int | None = None  # the counter in the last reading
        self._flashes_without_rise = 0
        self._trains_without_block_rise = 0

    def reset(self) -> None:
        """After an acknowledgement or a reconnect: count shots afresh."""
        self._stale.reset()
        self._shots_base = None
        self._last_shots = None
        self._flashes_without_rise = 0
        self._trains_without_block_rise = 0
        self._block_warm.reset()
        self._crystal_warm.reset()

    def _fault(
        self,
        code: str,
        condition: str,
        shown_value: str,
        shown_limit: str,
        value: float | None,
        limit: float | None,
    ) -> Alarm:
        return make_alarm(self.device, code, condition, shown_value, shown_limit, value, limit)

    def check(self, reading: IPLReading | None, ctx: IPLContext) -> list[Alarm]:
        # Stale: comms loss is a fault, never "last value".
        stale = self._stale.check(reading is not None)
        if reading is None:
            return [stale] if stale is not None else []
        status = int(reading.status)
        out = self._bits.check(status)
        # Implausible temperatures: an open thermistor is NaN and fails the range.
        for what, temp in (
            ("crystal temperature", reading.crystal_temp_c),
            ("lamp block temperature", reading.block_temp_c),
        ):
            _add(out, self._plausible.check(what, temp))
        _add(out, self._block_stop.check(reading.block_temp_c))
        # Energy stored or armed while the controller believes the lamp is safe.
        if status & _ENERGY_BITS and not ctx.energy_expected:
            out.append(
                self._fault(
                    "ipl.energy_unexpected",
                    "charged or armed while not treating",
                    f"status 0x{status & _ENERGY_BITS:04X}",
                    "none of CHARGING, CHARGED, ARMED",
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
                    "shot counter went back",
                    f"{reading.shot_count} after {last_shots}",
                    f"{last_shots} or more",
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
                    "flashes that were never commanded",
                    f"{fired - allowed} flash(es)",
                    "0 flashes",
                    fired - allowed,
                    0,
                )
            )
        _add(out, self._block_warm.check(reading.block_temp_c))
        _add(out, self._crystal_warm.check(reading.crystal_temp_c))
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
                    f"crystal thermistor did not rise over {self._flashes_without_rise} flashes",
                    f"reads {reading.crystal_temp_c:.1f} degC",
                    f"a rise within {STUCK_FLASHES} flashes",
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
                        f"lamp block thermistor did not rise over "
                        f"{self._trains_without_block_rise} trains that each should warm it "
                        f"{expected_rise_c:.2f} degC",
                        f"reads {reading.block_temp_c:.1f} degC",
                        f"a rise within {lim.block_stuck_trains} trains",
                        reading.block_temp_c,
                        None,
                    )
        delivered = reading.last_fluence_j_cm2
        error = abs(delivered - set_fluence_j_cm2) / set_fluence_j_cm2
        if error > self.limits.energy_tolerance:
            return self._fault(
                "ipl.energy_mismatch",
                f"flash delivered {delivered:.2f} J/cm2 against {set_fluence_j_cm2:.2f} set",
                f"{error:.0%} off",
                f"{self.limits.energy_tolerance:.0%}",
                delivered,
                set_fluence_j_cm2,
            )
        return None


def _add(out: list[Alarm], alarm: Alarm | None) -> None:
    if alarm is not None:
        out.append(alarm)
