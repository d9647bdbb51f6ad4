"""The one exception hierarchy of devicectl.

Every failure the controller can meet is a subclass of :class:`DevicectlError`,
so a front-end can catch one type and show one clear line, and an energy path
can tell a recoverable read problem from a fault that must reach the safe state.

Drivers raise :class:`DeviceError` subclasses only; the control layer turns
them into latched faults (it never swallows them). Validation problems are
:class:`ValidationError` and are raised before anything is armed.
"""

from __future__ import annotations

from pathlib import Path


class DevicectlError(Exception):
    """Base of every error devicectl raises on purpose."""


class ConfigError(DevicectlError):
    """A bad URL, option, or plugin name: nothing was opened or started."""


class DeviceConfigError(ConfigError):
    """A ``--device`` port cannot be opened, or no device of its kind answers on
    it. Found before any session is recorded; nothing was energised.

    The message is one line naming the device and the port, e.g.
    ``rf device at /dev/ttyUSB9: cannot open the port (No such file or directory)``.
    """

    def __init__(self, device: str, port: str, reason: str) -> None:
        self.device = device
        self.port = port
        self.reason = reason
        super().__init__(f"{device} device at {port}: {reason}")


class ValidationError(DevicectlError):
    """Requested parameters violate a limit; raised before anything is armed.

    ``problems`` holds one human-readable line per violated field, so a whole
    request (a zone, a protocol file) is rejected at once with every reason.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ProtocolFileError(ValidationError):
    """A session protocol file cannot be used: missing, unreadable, not TOML, or
    any key or value in it is wrong. The whole file is rejected.

    ``path`` is the file as given; ``problems`` holds one line per problem, each
    starting with the file's name (``pore-patrol.toml: step 3 (rf): target_c ...``).
    """

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        super().__init__(problems)


class DeviceError(DevicectlError):
    """Anything that went wrong talking to a device."""


class PortError(DeviceError):
    """The port could not be opened, or it failed or closed under us."""


class DeviceTimeout(DeviceError):
    """No complete reply arrived within the driver's timeout."""


class ProtocolError(DeviceError):
    """Bytes arrived but do not form a valid frame (framing, CRC, sequence)."""


class CRCError(ProtocolError):
    """A frame's checksum does not match its content."""


class SequenceError(ProtocolError):
    """A reply carries a sequence number other than the one we sent."""


class DeviceRejected(DeviceError):
    """The device understood the command and refused it (its own error code)."""

    def __init__(self, code: int, text: str, command: str) -> None:
        self.code = code
        self.text = text
        self.command = command
        super().__init__(f"device rejected {command!r}: {code} {text}")


class ControlError(DevicectlError):
    """A command is not allowed in the controller's current state."""


class FaultLatched(ControlError):
    """The controller is in a latched fault; only acknowledge can leave it."""


class RecordError(DevicectlError):
    """The session record store could not be opened, read or written.

    The message names the database (password hidden) and the reason in one
    line, e.g. ``record store sqlite:///x.sqlite: attempt to write a readonly
    database``; ``db`` holds that name.
    """

    def __init__(self, db: str, reason: str) -> None:
        self.db = db
        self.reason = reason
        super().__init__(f"record store {db}: {reason}")
