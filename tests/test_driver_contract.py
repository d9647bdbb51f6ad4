"""What every built-in driver does the same way.

Closing, for all three: ``close`` is idempotent; after it every command is a
``PortError`` and nothing reaches the port (the safe-state command included:
the device's own watchdog makes it safe once the host is silent); a port that
fails while closing is a ``PortError`` and the driver counts as closed all the
same. Declaring, for every driver registered under ``devicectl.drivers``: the class
says which device interface it implements (``implements``, readable before any
port is opened) and really has that interface's methods. For the
sequence-numbered RF and IPL drivers (``drivers/devicectl_drivers/sequenced_port.py``):
a port without a finite positive read timeout, or a bad retry count, is refused
at construction, and a port that fails while dropping stale input is a
``PortError``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import serial

from devicectl.devices import IPLSource, LEDPanel, RFGenerator
from devicectl.errors import ConfigError, PortError
from devicectl.plugins import DRIVER_GROUP, list_plugins, load_plugin
from devicectl_drivers.ipl_cobs import IPLCobsDriver
from devicectl_drivers.led_modbus import LEDModbusDriver
from devicectl_drivers.rf_scpi import RFScpiDriver
from tests.scripted_port import ScriptedPort

# Each driver, and its safe-state command (the one most worth trying after close).
DRIVERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "rf_scpi": (RFScpiDriver, "output_off"),
    "ipl_cobs": (IPLCobsDriver, "disarm"),
    "led_modbus": (LEDModbusDriver, "output_off"),
}


@pytest.fixture(params=sorted(DRIVERS))
def rig(request: pytest.FixtureRequest) -> tuple[Any, ScriptedPort, str]:
    cls, safe_command = DRIVERS[request.param]
    port = ScriptedPort()
    return cls(port), port, safe_command


def test_close_is_idempotent_and_later_calls_are_port_errors(
    rig: tuple[Any, ScriptedPort, str],
) -> None:
    driver, port, safe_command = rig
    driver.close()
    driver.close()
    assert port.closes == 1 and driver.closed
    with pytest.raises(PortError, match="closed"):
        getattr(driver, safe_command)()
    with pytest.raises(PortError, match="closed"):
        driver.read()
    assert port.writes == []


def test_close_failure_is_a_port_error_and_still_closes(
    rig: tuple[Any, ScriptedPort, str],
) -> None:
    driver, port, _ = rig
    port.close_error = OSError("EIO")
    with pytest.raises(PortError, match="closing"):
        driver.close()
    assert driver.closed
    driver.close()
    assert port.closes == 1


def test_context_manager_closes(rig: tuple[Any, ScriptedPort, str]) -> None:
    driver, port, _ = rig
    with driver:
        pass
    assert port.closes == 1


SEQUENCED = {"rf_scpi": RFScpiDriver, "ipl_cobs": IPLCobsDriver}


@pytest.mark.parametrize("name", sorted(SEQUENCED))
@pytest.mark.parametrize("timeout", [None, 0, -1, math.inf, math.nan, True])
def test_a_port_without_a_finite_positive_timeout_is_refused(
    name: str, timeout: float | None
) -> None:
    with pytest.raises(ConfigError, match="read timeout"):
        SEQUENCED[name](ScriptedPort(timeout=timeout))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(SEQUENCED))
@pytest.mark.parametrize("retries", [-1, 1.5, True])
def test_bad_read_retries_is_refused(name: str, retries: int) -> None:
    with pytest.raises(ConfigError, match="read_retries"):
        SEQUENCED[name](ScriptedPort(), read_retries=retries)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(SEQUENCED))
def test_port_failure_on_reset_is_a_port_error(name: str) -> None:
    class BrokenPort(ScriptedPort):
        def reset_input_buffer(self) -> None:
            raise serial.SerialException("gone")

    driver = SEQUENCED[name](BrokenPort())  # type: ignore[arg-type]
    with pytest.raises(PortError, match="gone"):
        driver.identify()


# The interface each ``implements`` name stands for (devicectl/devices.py).
INTERFACES: dict[str, type] = {"rf": RFGenerator, "ipl": IPLSource, "led": LEDPanel}
REGISTERED = [info.name for info in list_plugins(DRIVER_GROUP)]


def test_the_built_in_drivers_are_registered() -> None:
    assert set(DRIVERS) <= set(REGISTERED)


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_driver_declares_the_interface_it_implements(name: str) -> None:
    cls = load_plugin(DRIVER_GROUP, name)
    implements = getattr(cls, "implements", None)
    assert implements in INTERFACES, f"{name} declares implements = {implements!r}"
    assert typing.get_type_hints(cls)["implements"] == ClassVar[str]
    assert issubclass(cls, INTERFACES[implements])  # the interface's methods, on the class
    assert cls.modality == implements  # the older name still answers
