"""Opening device ports: every URL goes through pyserial's ``serial_for_url``.

Real ports (``/dev/ttyUSB0``), ``socket://`` and ``rfc2217://`` go straight to
pyserial. ``sim://NAME?seed=N&fault=SPEC`` opens the simulator registered as
NAME in the ``devicectl.simulators`` entry-point group, in this process, on the
caller's :class:`~devicectl.clock.Clock` (see ``devicectl/urlhandlers``).

The contract a simulator meets to be served this way is :class:`SimulatedDevice`;
simulators do not import it (they share only the wire protocol with the host),
they just have that shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import serial

from devicectl.clock import Clock
from devicectl.errors import ConfigError, PortError

URL_HANDLER_PACKAGE = "devicectl.urlhandlers"
DEFAULT_TIMEOUT_S = 0.05


class SimulatedDevice(Protocol):
    """Device side of an in-process simulator: bytes in, bytes out, in clock time."""

    def feed(self, data: bytes) -> None:
        """Bytes from the host, arriving at the clock's current time."""
        ...

    def take(self, max_bytes: int = -1) -> bytes:
        """Bytes the device has sent up to the clock's current time."""
        ...

    def pending(self) -> int:
        """How many bytes ``take`` would return now."""
        ...

    def close(self) -> None: ...

    @property
    def output_on(self) -> bool:
        """The real output state at the device, for tests and the safety case."""
        ...


class SimulatorFactory(Protocol):
    def __call__(
        self, clock: Clock, seed: int = 0, faults: Sequence[str] = (), **options: str
    ) -> SimulatedDevice: ...


def register_url_handlers() -> None:
    """Make ``sim://`` known to pyserial (idempotent)."""
    if URL_HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(URL_HANDLER_PACKAGE)


NETWORK_SCHEMES = ("socket", "rfc2217")


def check_network_url(url: str) -> None:
    """ConfigError naming the URL if a ``socket://`` or ``rfc2217://`` URL lacks a host
    or a port of 1-65535 (pyserial's own messages for these say nothing a technician
    can act on). Other URLs pass unchecked."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in NETWORK_SCHEMES:
        return
    expected = f"expected {scheme}://HOST:PORT with PORT 1-65535"
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 1 <= port <= 65535:
        raise ConfigError(f"cannot open {url}: {expected}")


def open_port(
    url: str,
    *,
    clock: Clock | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    baudrate: int = 115200,
    exclusive: bool = True,
) -> serial.SerialBase:
    """Open ``url`` and return an open pyserial port.

    ``clock`` is handed to ``sim://`` ports only (a simulator must share the
    loop's clock); real ports are opened with ``exclusive=True`` so that a
    second controller gets a clear "port in use" error instead of stealing
    bytes. Every failure is a :class:`PortError` or :class:`ConfigError`
    naming the URL.
    """
    register_url_handlers()
    check_network_url(url)
    kwargs: dict[str, Any] = {"timeout": timeout_s, "baudrate": baudrate}
    if not url.startswith("rfc2217://"):  # pyserial 3.5's RFC 2217 client refuses it
        kwargs["write_timeout"] = 1.0
    if url.startswith("sim://"):
        kwargs["clock"] = clock
    elif "://" not in url:
        kwargs["exclusive"] = exclusive
    try:
        return serial.serial_for_url(url, **kwargs)
    except ConfigError:
        raise
    except serial.SerialException as exc:
        raise PortError(f"cannot open {url}: {exc}") from exc
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot open {url}: {exc}") from exc
