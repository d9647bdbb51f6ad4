"""Host side of CHL/1, the chiller's ASCII line protocol (README.md, "Wire protocol").

A driver knows bytes and units, never sessions, limits or state machines: it
takes an open pyserial port and ``now=`` (the station's clock), and raises
only ``devicectl.errors`` types. Every line is ``<body>*<XX>\\n`` with ``XX``
the XOR of the body's bytes in hex; a reply with a bad checksum or of the
wrong kind is a :class:`ProtocolError`, an ``ERR`` reply a
:class:`DeviceRejected`, no reply within the port's timeout a
:class:`DeviceTimeout`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final

from devicectl.devices import DeviceIdentity
from devicectl.errors import CRCError, DeviceRejected, DeviceTimeout, ProtocolError
from devicectl_example_chiller.device import ChillerFault, ChillerReading

MAX_LINE: Final = 80  # longer than any reply: the line is garbage
OPEN: Final = "OPEN"  # a sensor the device reports open


def checksum(body: bytes) -> int:
    """XOR of every byte of ``body``."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def frame(body: str) -> bytes:
    """``body`` as one CHL/1 line."""
    raw = body.encode("ascii")
    return raw + b"*" + f"{checksum(raw):02X}".encode("ascii") + b"\n"


def unframe(line: bytes) -> str:
    """The body of one received line (without its LF); ProtocolError if malformed."""
    body, star, tail = line.rstrip(b"\r").rpartition(b"*")
    if not star or len(tail) != 2:
        raise ProtocolError(f"chiller: malformed reply {line!r}")
    try:
        sent = int(tail, 16)
    except ValueError:
        raise ProtocolError(f"chiller: malformed checksum in {line!r}") from None
    if sent != checksum(body):
        raise CRCError(f"chiller: bad checksum in {line!r}")
    try:
        return body.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"chiller: non-ASCII reply {line!r}") from None


def _temperature(text: str, what: str) -> float:
    if text == OPEN:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ProtocolError(f"chiller: bad {what} {text!r}") from None
    if not math.isfinite(value):
        raise ProtocolError(f"chiller: bad {what} {text!r}")
    return value


class ChillerDriver:
    """The ``chiller_ascii`` driver: a :class:`~.device.ChillerHandpiece` over CHL/1."""

    modality: ClassVar[str] = "chiller"
    implements: ClassVar[str] = "chiller"
    default_simulator: ClassVar[str] = "chiller"

    def __init__(self, port: Any, *, now: Callable[[], float] = time.monotonic) -> None:
        self._port = port
        self._now = now
        self._buf = b""

    def _ask(self, body: str, expect: str) -> list[str]:
        """Send ``body``; the reply's fields after its keyword ``expect``."""
        self._port.reset_input_buffer()
        self._buf = b""
        self._port.write(frame(body))
        while b"\n" not in self._buf:
            chunk = self._port.read(self._port.in_waiting or 1)
            if not chunk:
                raise DeviceTimeout(f"chiller: no reply to {body!r}")
            self._buf += chunk
            if len(self._buf) > MAX_LINE and b"\n" not in self._buf:
                raise ProtocolError(f"chiller: reply to {body!r} too long")
        line, _, self._buf = self._buf.partition(b"\n")
        fields = unframe(line).split(" ")
        if fields[0] == "ERR":
            code = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else -1
            raise DeviceRejected(code, " ".join(fields[2:]), body)
        if fields[0] != expect:
            raise ProtocolError(f"chiller: expected {expect} to {body!r}, got {line!r}")
        return fields[1:]

    def identify(self) -> DeviceIdentity:
        fields = " ".join(self._ask("ID?", "ID")).split(",")
        if len(fields) != 4:
            raise ProtocolError(f"chiller: bad identity {fields!r}")
        return DeviceIdentity(*fields)

    def read(self) -> ChillerReading:
        fields = self._ask("MEAS?", "MEAS")
        if len(fields) != 5 or fields[3] not in ("0", "1"):
            raise ProtocolError(f"chiller: bad measurement {' '.join(fields)!r}")
        try:
            faults = ChillerFault(int(fields[4], 16))
        except ValueError:
            raise ProtocolError(f"chiller: bad fault byte {fields[4]!r}") from None
        return ChillerReading(
            t_s=self._now(),
            plate_c=_temperature(fields[0], "plate temperature"),
            skin_c=_temperature(fields[1], "skin temperature"),
            setpoint_c=_temperature(fields[2], "setpoint"),
            output_on=fields[3] == "1",
            faults=faults,
        )

    def clear_status(self) -> None:
        self._ask("CLR", "OK")

    def set_setpoint(self, plate_c: float) -> None:
        self._ask(f"SET {plate_c:.1f}", "OK")

    def output_on(self) -> None:
        self._ask("OUT 1", "OK")

    def output_off(self) -> None:
        self._ask("OUT 0", "OK")

    def output_is_on(self) -> bool:
        return self.read().output_on

    def close(self) -> None:
        self._port.close()
