"""Reaching the safe state: output off, confirmed by readback, or the port closed.

This is the one piece of code every fault, every emergency stop and every exit
from delivering runs through (safety rules 1 and 2). It never raises: it
returns what it achieved, so the transition that called it always completes
into its safe state, and the caller records and escalates a failure. When the
readback does not confirm output off, the port is closed; the device's own
250 ms watchdog then cuts the output, because no valid host frame arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.devices import RFGenerator
from devicectl.errors import DeviceError


@dataclass(frozen=True)
class SafeStateResult:
    confirmed: bool  # output off was read back from the device
    port_closed: bool  # readback failed and the port was closed (watchdog cuts output)
    error: str | None = None


def make_safe(device: RFGenerator) -> SafeStateResult:
    """Command output off and read it back; close the port if that fails."""
    try:
        device.output_off()
        if not device.output_is_on():
            return SafeStateResult(confirmed=True, port_closed=False)
        error = "device still reports output on after OUTP OFF"
    except DeviceError as exc:
        error = f"{type(exc).__name__}: {exc}"
    try:
        device.close()
    except DeviceError as exc:
        error = f"{error}; closing the port failed too: {exc}"
    return SafeStateResult(confirmed=False, port_closed=True, error=error)
