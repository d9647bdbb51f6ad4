"""What a chiller handpiece is to a controller: its interface, reading and fault bits.

A driver implements :class:`ChillerHandpiece`; the controller knows nothing
else about it. Temperatures are degC; a sensor the device reports open reads
NaN (and the device sets ``SENSOR``), never a made-up number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from devicectl.devices import DeviceIdentity


class ChillerFault(enum.IntFlag):
    """The fault byte of a ``MEAS`` reply (README.md, "Fault bits")."""

    NONE = 0
    WATCHDOG_TRIPPED = 0x01  # no valid host frame for 250 ms: output turned off
    SENSOR = 0x02  # a temperature sensor reads open: output turned off
    SKIN_CUTOFF = 0x04  # the firmware's own skin limit (8 degC) turned output off
    POWER_ON_RESET = 0x08  # the device rebooted


DEFINED_FAULTS = (
    ChillerFault.WATCHDOG_TRIPPED
    | ChillerFault.SENSOR
    | ChillerFault.SKIN_CUTOFF
    | ChillerFault.POWER_ON_RESET
)


@dataclass(frozen=True)
class ChillerReading:
    """One ``MEAS?`` answer, taken at ``t_s`` on the station's clock."""

    t_s: float
    plate_c: float  # the cold plate against the skin (NaN: sensor open)
    skin_c: float  # the skin under the plate (NaN: sensor open)
    setpoint_c: float  # the plate setpoint the device holds
    output_on: bool  # the cooling stage is running
    faults: ChillerFault


class ChillerHandpiece(Protocol):
    """The device interface every chiller driver implements."""

    def identify(self) -> DeviceIdentity: ...

    def read(self) -> ChillerReading: ...

    def clear_status(self) -> None: ...

    def close(self) -> None: ...

    def set_setpoint(self, plate_c: float) -> None: ...

    def output_on(self) -> None: ...

    def output_off(self) -> None: ...

    def output_is_on(self) -> bool: ...
