"""pyserial handler for ``sim://NAME?seed=N&fault=SPEC&KEY=VALUE``.

Opens the simulator registered as NAME (``devicectl.simulators`` entry point)
in this process. The port and the simulator share one clock, passed as
``clock=`` to ``serial_for_url`` (``devicectl.transport.open_port`` does it);
without one the simulator runs on a :class:`~devicectl.clock.RealClock`.

Reads honour the port timeout in clock time: with a :class:`SimClock` a read
that finds no reply advances virtual time by the timeout, exactly as a real
port would make the caller wait. Replies are available as soon as the
simulator has produced them (zero wire latency, documented in
docs/simulators.md).

A simulated device outlives its port, as a real one stays powered when the
host closes its port: opening the same URL again on the same clock reconnects
to the same simulator (``simulator_for`` finds it, for tests).

Query keys: ``seed`` (int, default 0), ``fault`` (repeatable, see the fault
grammar), any other key is handed to the simulator, which rejects unknown ones.
"""

from __future__ import annotations

import weakref
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import serial

from devicectl.clock import Clock, RealClock
from devicectl.errors import ConfigError
from devicectl.plugins import SIMULATOR_GROUP, load_plugin
from devicectl.transport import SimulatedDevice

_POLL_S = 0.005  # how finely a blocking read re-checks the simulator

_DEVICES: weakref.WeakKeyDictionary[Clock, dict[str, SimulatedDevice]] = weakref.WeakKeyDictionary()


def simulator_for(url: str, clock: Clock) -> SimulatedDevice:
    """The simulator that ``url`` opened on ``clock`` (KeyError if none)."""
    return _DEVICES[clock][url]


def parse_sim_url(url: str) -> tuple[str, int, list[str], dict[str, str]]:
    """Split a sim URL into (name, seed, faults, options); ConfigError if malformed."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sim" or not parts.netloc:
        raise ConfigError(f"{url}: expected sim://NAME?seed=N&fault=SPEC")
    seed = 0
    faults: list[str] = []
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise ConfigError(f"{url}: seed must be a whole number, not {value!r}") from None
        elif key == "fault":
            faults.append(value)
        else:
            options[key] = value
    return parts.netloc, seed, faults, options


class Serial(serial.SerialBase):  # type: ignore[misc]
    """A pyserial port whose other end is an in-process simulator."""

    def __init__(self, *args: Any, clock: Clock | None = None, **kwargs: Any) -> None:
        self._clock: Clock = clock if clock is not None else RealClock()
        self.simulator: SimulatedDevice | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self._port is None:
            raise serial.SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise serial.SerialException("Port is already open.")
        url = self.portstr
        devices = _DEVICES.setdefault(self._clock, {})
        if url not in devices:
            name, seed, faults, options = parse_sim_url(url)
            factory = load_plugin(SIMULATOR_GROUP, name)
            try:
                devices[url] = factory(self._clock, seed=seed, faults=faults, **options)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{url}: {exc}") from exc
        self.simulator = devices[url]
        self.is_open: bool = True

    def close(self) -> None:
        """Close the port; the simulated device stays powered (see module doc)."""
        self.simulator = None
        self.is_open = False

    def _reconfigure_port(self) -> None:
        """Baud rate and framing mean nothing to an in-process simulator."""

    def _sim(self) -> SimulatedDevice:
        sim = self.simulator  # None whenever the port is closed
        if sim is None:
            raise serial.PortNotOpenError()
        return sim

    # The per-tick calls below check ``self.simulator`` inline (what ``_sim`` does).

    @property
    def in_waiting(self) -> int:
        sim = self.simulator
        if sim is None:
            raise serial.PortNotOpenError()
        return sim.pending()

    def read(self, size: int = 1) -> bytes:
        sim = self.simulator
        if sim is None:
            raise serial.PortNotOpenError()
        data = sim.take(size)
        if data or not self._timeout:
            return data
        clock = self._clock
        deadline = clock.now() + self._timeout
        while True:
            clock.sleep(min(_POLL_S, deadline - clock.now()))
            data = sim.take(size)
            if data or clock.now() >= deadline:
                return data

    def write(self, data: bytes) -> int:
        sim = self.simulator
        if sim is None:
            raise serial.PortNotOpenError()
        sim.feed(data if type(data) is bytes else bytes(data))
        return len(data)

    def reset_input_buffer(self) -> None:
        sim = self.simulator
        if sim is None:
            raise serial.PortNotOpenError()
        sim.take(-1)

    def reset_output_buffer(self) -> None:
        """Writes reach the simulator at once; nothing is ever buffered."""

    def flush(self) -> None:
        """Writes reach the simulator at once; nothing to wait for."""
