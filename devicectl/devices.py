"""Typed device interfaces: what the control layer may ask of a device.

Controllers import only these names, never a driver. Each interface says what
state every call leaves the device in, because the safety rules depend on it:
``output_off`` must be callable in any state and leave output off, and every
reading is a frozen value stamped with the host clock time it was taken at.

A driver that talks some other wire protocol implements the same Protocol and
registers itself under the ``devicectl.drivers`` entry-point group.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class DeviceIdentity:
    """What ``*IDN?`` (or the device's equivalent) reports."""

    vendor: str
    model: str
    serial: str
    firmware: str


class RFStatus(enum.IntFlag):
    """Status bits reported by an RF generator (see docs/protocols/rf.md)."""

    NONE = 0
    OUTPUT_ON = 1 << 0
    CONTACT_OK = 1 << 1
    OVERTEMP_CUTOFF = 1 << 2  # firmware's own 45 degC cut-off latched
    WATCHDOG_TRIPPED = 1 << 3  # host went silent for the watchdog period
    POWER_ON_RESET = 1 << 4  # device rebooted since the host last cleared it
    SENSOR_FAULT = 1 << 5  # firmware sees an open or shorted sensor
    ERROR_QUEUED = 1 << 6  # SYST:ERR? has something to say


_CONTACT_OK = int(RFStatus.CONTACT_OK)


@dataclass(frozen=True)
class RFReading:
    """One coherent sample of an RF generator, taken in one round trip.

    Temperatures are NaN when a sensor reads open; impedance is ``inf`` when
    the electrode is off the skin. ``t_s`` is host clock time.
    """

    t_s: float
    skin1_c: float
    skin2_c: float
    impedance_ohm: float
    power_w: float
    output_on: bool
    status: RFStatus

    @property
    def skin_max_c(self) -> float:
        """The hotter sensor: what regulation and limits act on (NaN if any is NaN)."""
        if math.isnan(self.skin1_c) or math.isnan(self.skin2_c):
            return math.nan
        return max(self.skin1_c, self.skin2_c)

    @property
    def contact_ok(self) -> bool:
        return bool(int(self.status) & _CONTACT_OK)


@runtime_checkable
class RFGenerator(Protocol):
    """A radio-frequency skin-heating generator with two skin sensors.

    Energy-enabling calls (``set_power``, ``output_on``) are sent once: a
    driver never retries them blindly, because a lost reply does not say
    whether the device acted. Reads may be retried a bounded number of times.
    Every failure is a :class:`devicectl.errors.DeviceError`.
    """

    def identify(self) -> DeviceIdentity:
        """Who the device is; no change of state."""
        ...

    def read(self) -> RFReading:
        """Temperatures, impedance, delivered power, output and status."""
        ...

    def set_power(self, power_w: float) -> None:
        """Set the power setpoint; output state unchanged."""
        ...

    def output_on(self) -> None:
        """Enable RF output at the current setpoint (device may refuse)."""
        ...

    def output_off(self) -> None:
        """Disable RF output. Safe in every state; may be retried."""
        ...

    def output_is_on(self) -> bool:
        """Readback of the output state, straight from the device."""
        ...

    def clear_status(self) -> None:
        """Clear latched device flags and the error queue (after an operator ack)."""
        ...

    def close(self) -> None:
        """Release the port. The device's watchdog turns output off on its own."""
        ...
