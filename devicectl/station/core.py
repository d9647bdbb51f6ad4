"""A treatment station: one clock, one control loop, controllers wired to ports.

This is where URLs become devices: the driver is found through the
``devicectl.drivers`` entry point, the port is opened with
:func:`devicectl.transport.open_port`, and the controller gets an *opener* so
that it can reconnect after an acknowledged fault closed its port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devicectl.clock import Clock, SimClock
from devicectl.control.events import Command
from devicectl.control.loop import DEFAULT_PERIOD_S, ControlLoop
from devicectl.errors import ConfigError
from devicectl.modality import modality
from devicectl.plugins import DRIVER_GROUP, load_plugin
from devicectl.transport import DEFAULT_TIMEOUT_S, open_port


def driver_interface(driver_cls: Any) -> str | None:
    """The device interface a driver class declares it implements (its modality)."""
    declared = getattr(driver_cls, "implements", None) or getattr(driver_cls, "modality", None)
    return declared if isinstance(declared, str) else None


def checked_driver(kind: str, driver: str) -> Any:
    """The driver class named ``driver``, refused unless it implements ``kind``.

    Checked before any port is opened: a driver for another device would build,
    then fail on the first tick deep in the supervisor.
    """
    driver_cls = load_plugin(DRIVER_GROUP, driver)
    declared = driver_interface(driver_cls)
    if declared != kind:
        raise ConfigError(
            f"driver {driver!r} implements {declared or 'no declared device interface'}, "
            f"not {kind}: it cannot drive a {kind} device"
        )
    return driver_cls


def device_opener(
    url: str,
    clock: Clock,
    driver: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    kind: str | None = None,
) -> Callable[[], Any]:
    """A function that opens ``url`` (read timeout ``timeout_s``) and wraps the port
    in the named driver; drivers take their reply timeout from the port. With
    ``kind`` the driver must implement that device interface."""
    driver_cls = checked_driver(kind, driver) if kind else load_plugin(DRIVER_GROUP, driver)

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

    def add(
        self,
        kind: str,
        url: str,
        *,
        name: str | None = None,
        driver: str | None = None,
        limits: Any | None = None,
    ) -> Any:
        """A controller of modality ``kind`` for the device at ``url``, on this loop.

        The driver (the modality's default unless named) must declare that it
        implements ``kind``; a mismatch is a ConfigError before the port opens.
        """
        mod = modality(kind)
        opener = device_opener(
            url, self.clock, driver or mod.default_driver, self.port_timeout_s, kind=kind
        )
        controller = mod.controller(
            opener, self.clock, name=name or kind, limits=limits, emit=self.loop.emit
        )
        self.loop.add(controller)
        return controller

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        """``add_<kind>(url, ...)``: :meth:`add` for a registered modality."""
        if attr.startswith("add_"):
            kind = attr[len("add_") :]

            def add_kind(url: str, **kwargs: Any) -> Any:
                return self.add(kind, url, **kwargs)

            return add_kind
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def command(self, device: str, action: str, operator_id: str | None = None, **args: Any) -> Any:
        """Carry out one command on the loop (scripted, same-thread use)."""
        return self.loop.execute(Command(device, action, args, operator_id))
