"""A treatment station: one clock, one control loop, controllers wired to ports.

This is where URLs become devices: the driver is found through the
``devicectl.drivers`` entry point, the port is opened with
:func:`devicectl.transport.open_port`, and the controller gets an *opener* so
that it can reconnect after an acknowledged fault closed its port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from devicectl.clock import Clock, SimClock
from devicectl.control.events import Command
from devicectl.control.ipl_controller import IPLController
from devicectl.control.led_controller import LEDController
from devicectl.control.limits import IPLLimits, LEDLimits, RFLimits
from devicectl.control.loop import DEFAULT_PERIOD_S, ControlLoop
from devicectl.control.rf_controller import RFController
from devicectl.plugins import DRIVER_GROUP, load_plugin
from devicectl.transport import DEFAULT_TIMEOUT_S, open_port

DEFAULT_DRIVERS = {"rf": "rf_scpi", "ipl": "ipl_cobs", "led": "led_modbus"}
C = TypeVar("C", RFController, IPLController, LEDController)


def device_opener(
    url: str, clock: Clock, driver: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Callable[[], Any]:
    """A function that opens ``url`` (read timeout ``timeout_s``) and wraps the port
    in the named driver; drivers take their reply timeout from the port."""
    driver_cls = load_plugin(DRIVER_GROUP, driver)

    def open_device() -> Any:
        return driver_cls(open_port(url, clock=clock, timeout_s=timeout_s), now=clock.now)

    return open_device


class Station:
    def __init__(
        self,
        clock: Clock,
        period_s: float = DEFAULT_PERIOD_S,
        port_timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """``port_timeout_s``: how long a driver waits for a reply before calling it
        lost (50 ms by default; more for a slow USB adapter, see PITFALLS.md)."""
        self.clock = clock
        self.port_timeout_s = port_timeout_s
        self.loop = ControlLoop(clock, period_s)

    @classmethod
    def simulated(cls, period_s: float = DEFAULT_PERIOD_S) -> Station:
        """A station in simulated time (SimClock)."""
        return cls(SimClock(), period_s)

    def add_rf(
        self,
        url: str,
        *,
        name: str = "rf",
        driver: str = DEFAULT_DRIVERS["rf"],
        limits: RFLimits | None = None,
    ) -> RFController:
        return self._add(
            RFController(
                self._opener(url, driver), self.clock, name=name, limits=limits, emit=self.loop.emit
            )
        )

    def add_ipl(
        self,
        url: str,
        *,
        name: str = "ipl",
        driver: str = DEFAULT_DRIVERS["ipl"],
        limits: IPLLimits | None = None,
    ) -> IPLController:
        return self._add(
            IPLController(
                self._opener(url, driver), self.clock, name=name, limits=limits, emit=self.loop.emit
            )
        )

    def add_led(
        self,
        url: str,
        *,
        name: str = "led",
        driver: str = DEFAULT_DRIVERS["led"],
        limits: LEDLimits | None = None,
    ) -> LEDController:
        return self._add(
            LEDController(
                self._opener(url, driver), self.clock, name=name, limits=limits, emit=self.loop.emit
            )
        )

    def _opener(self, url: str, driver: str) -> Callable[[], Any]:
        return device_opener(url, self.clock, driver, self.port_timeout_s)

    def _add(self, controller: C) -> C:
        self.loop.add(controller)
        return controller

    def command(self, device: str, action: str, operator_id: str | None = None, **args: Any) -> Any:
        """Carry out one command on the loop (scripted, same-thread use)."""
        return self.loop.execute(Command(device, action, args, operator_id))
