"""Typed device interfaces: what the control layer may ask of a device.

Controllers import only these names, never a driver. Each interface says what
state every call leaves the device in, because the safety rules depend on it:
``output_off`` must be callable in any state and leave output off, and every
reading is a frozen value stamped with the host clock time it was taken at.

A driver that talks some other wire protocol implements the same Protocol and
registers itself under the ``devicectl.drivers`` entry-point group.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast, runtime_checkable


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


# --------------------------------------------------------------------------- IPL

IPL_FILTERS_NM = (515, 560, 590, 640, 695)


class IPLStatus(enum.IntFlag):
    """Status bits reported by an IPL source (see docs/protocols/ipl.md)."""

    NONE = 0
    CHARGED = 1 << 0
    CHARGING = 1 << 1
    ARMED = 1 << 2
    FILTER_OK = 1 << 3  # a recognised cut-off filter is inserted
    CONTACT_OK = 1 << 4  # crystal in contact with skin
    BLOCK_OVERTEMP = 1 << 5  # lamp block over 45 degC: firing stopped (latched)
    WATCHDOG_TRIPPED = 1 << 6  # host went silent: disarmed and dumped (latched)
    POWER_ON_RESET = 1 << 7  # rebooted since the last clear
    SENSOR_FAULT = 1 << 8  # crystal or block thermistor open


@dataclass(frozen=True)
class IPLParams:
    """What one trigger of the handpiece delivers: a train of ``pulse_count`` pulses."""

    filter_nm: int
    fluence_j_cm2: float
    pulse_width_ms: float
    pulse_count: int = 1
    pulse_delay_ms: float = 0.0  # between pulses of a train; 0 for a single pulse


@dataclass(frozen=True)
class IPLReading:
    """One status sample of an IPL source; ``last_fluence_j_cm2`` is the photodiode's
    measure of the most recent flash (0.0 before the first)."""

    t_s: float
    status: IPLStatus
    charge_pct: float
    crystal_temp_c: float  # NaN when the thermistor reads open
    block_temp_c: float
    shot_count: int
    last_fluence_j_cm2: float
    filter_nm: int  # 0 when no recognised filter is inserted
    lamp_life_pct: float = 100.0  # lamp life remaining

    def has(self, flag: IPLStatus) -> bool:
        return bool(int(self.status) & int(flag))


@runtime_checkable
class IPLSource(Protocol):
    """An intense-pulsed-light flash-lamp handpiece.

    ``set_params``, ``charge``, ``arm`` and ``fire`` are sent once (never
    retried blindly). ``disarm`` dumps the capacitor and disarms: the safe
    state, callable in any state, may be retried.
    """

    def identify(self) -> DeviceIdentity: ...

    def read(self) -> IPLReading: ...

    def set_params(self, params: IPLParams) -> None: ...

    def charge(self) -> None: ...

    def arm(self) -> None: ...

    def fire(self) -> None: ...

    def disarm(self) -> None:
        """Disarm and dump the capacitor: no flash is possible until charged and armed again."""
        ...

    def clear_status(self) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- LED

LED_WAVELENGTHS_NM = (633, 830)


class LEDFault(enum.IntFlag):
    """Fault bits of an LED canopy (input register 5, see docs/protocols/led.md)."""

    NONE = 0
    WATCHDOG_TRIPPED = 1 << 0
    PANEL_OVERTEMP = 1 << 1
    SKIN_OVERTEMP = 1 << 2
    INTERLOCK_OPEN = 1 << 3
    STRING_FAIL = 1 << 4
    POWER_ON_RESET = 1 << 5


@dataclass(frozen=True)
class LEDReading:
    t_s: float
    wavelength_nm: int
    setpoint_mw_cm2: float
    irradiance_mw_cm2: float  # measured
    output_on: bool
    panel_temp_c: float
    skin_temp_c: float
    interlock_closed: bool  # canopy at treatment distance
    elapsed_s: float  # output-on time since the last enable
    faults: LEDFault


@runtime_checkable
class LEDPanel(Protocol):
    """A red / near-infrared LED canopy.

    ``output_off`` is the safe state, callable in any state, may be retried;
    ``set_output(True)`` is sent once.
    """

    def identify(self) -> DeviceIdentity: ...

    def read(self) -> LEDReading: ...

    def set_wavelength(self, wavelength_nm: int) -> None: ...

    def set_irradiance(self, irradiance_mw_cm2: float) -> None: ...

    def output_on(self) -> None: ...

    def output_off(self) -> None: ...

    def output_is_on(self) -> bool: ...

    def clear_status(self) -> None: ...

    def close(self) -> None: ...


_T = TypeVar("_T")


def frozen_constructor(cls: type[_T]) -> Callable[..., _T]:
    """``make(*fields)`` for the frozen dataclass ``cls`` (every field, in order, or by
    name), for the readings a driver builds every tick.

    A frozen dataclass's generated ``__init__`` sets each field through
    ``object.__setattr__`` (its own ``__setattr__`` refuses): for a reading of
    seven to ten fields that is a large share of a driver's ``read()`` against a
    simulator. ``make`` fills the instance's ``__dict__`` directly: the object
    is the one the class builds (equal, hashable, still frozen), about three
    times faster. Only for classes with no ``__post_init__`` and no
    ``__slots__``: others are refused.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} has a __post_init__ or __slots__")
    names = [f.name for f in dataclasses.fields(cast(Any, cls))]  # InitVars are not fields
    if not all(n.isidentifier() for n in names):
        raise TypeError(f"{cls.__name__}: a field name that is not an identifier")
    body = "".join(f"    d[{n!r}] = {n}\n" for n in names)
    head = f"def make({', '.join(names)}):\n    obj = new(cls)\n    d = obj.__dict__\n"
    source = head + body + "    return obj\n"
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(source, namespace)  # built from the dataclass's own field names only
    make: Callable[..., _T] = namespace["make"]
    make.__qualname__ = f"frozen_constructor({cls.__name__})"
    return make
