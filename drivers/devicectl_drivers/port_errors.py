"""The exceptions a pyserial port raises when the wire or the port fails.

Every driver turns these into :class:`devicectl.errors.PortError`. On POSIX,
pyserial's ``reset_input_buffer`` and line-setting calls go through
``termios``, whose ``termios.error`` (for example EIO when a pty or USB adapter
is unplugged) derives from neither ``OSError`` nor ``SerialException``: missing
it here lets an unplugged port escape as an untyped error and kill the loop.
"""

from __future__ import annotations

import serial

try:
    import termios
except ImportError:  # not POSIX: pyserial does not use termios there
    termios = None  # type: ignore[assignment]

PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError) + (
    (termios.error,) if termios is not None else ()
)
