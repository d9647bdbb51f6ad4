"""Example third-party driver: a contact chiller speaking ``TEMP?`` / ``SET <c>`` lines.

It shows the whole contract a device package meets: a class taking an open
pyserial port and ``now=``, a ``modality`` and ``default_simulator``, typed
readings, errors from ``devicectl.errors`` only, and an entry point in the
``devicectl.drivers`` group of its own ``pyproject.toml``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devicectl.devices import DeviceIdentity
from devicectl.errors import DeviceTimeout, ProtocolError


@dataclass(frozen=True)
class ChillerReading:
    t_s: float
    plate_temp_c: float


class ChillerDriver:
    modality = "chiller"
    default_simulator = "chiller"

    def __init__(self, port: Any, *, now: Callable[[], float] = time.monotonic) -> None:
        self._port = port
        self._now = now

    def _ask(self, line: str) -> str:
        self._port.reset_input_buffer()
        self._port.write(line.encode("ascii") + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = self._port.read(self._port.in_waiting or 1)
            if not chunk:
                raise DeviceTimeout(f"chiller: no reply to {line!r}")
            buf += chunk
        return buf.decode("ascii", "replace").strip()

    def identify(self) -> DeviceIdentity:
        return DeviceIdentity("example", "chiller", "0", "1.0")

    def read(self) -> ChillerReading:
        reply = self._ask("TEMP?")
        try:
            return ChillerReading(self._now(), float(reply))
        except ValueError:
            raise ProtocolError(f"chiller: bad temperature reply {reply!r}") from None

    def clear_status(self) -> None:
        """Nothing latches in this device."""

    def close(self) -> None:
        self._port.close()
