"""Reaching the safe state: output off, confirmed by readback, or the port closed.

This is the one piece of code every fault, every emergency stop and every exit
from an energy-delivering state runs through (safety rules 1 and 2), for every
modality. It never raises: it returns what it achieved, so the transition that
called it always completes into its safe state, and the caller records and
escalates a failure. When the readback does not confirm output off, the port is
closed; the device's own 250 ms watchdog then cuts the output, because no valid
host frame arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from devicectl.errors import DeviceError


@dataclass(frozen=True)
class SafeStateResult:
    confirmed: bool  # output off was read back from the device
    port_closed: bool  # readback failed and the port was closed (watchdog cuts output)
    error: str | None = None


def make_safe(
    turn_off: Callable[[], None], is_off: Callable[[], bool], close: Callable[[], None]
) -> SafeStateResult:
    """Command output off and read it back; close the port if that fails."""
    try:
        turn_off()
        if is_off():
            return SafeStateResult(confirmed=True, port_closed=False)
        error = "device still reports output on after the off command"
    except DeviceError as exc:
        error = f"{type(exc).__name__}: {exc}"
    try:
        close()
    except DeviceError as exc:
        error = f"{error}; closing the port failed too: {exc}"
    return SafeStateResult(confirmed=False, port_closed=True, error=error)
