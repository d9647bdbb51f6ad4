"""What every driver of a sequence-numbered request/reply protocol shares.

The RF (RFP/1) and IPL (IPLB/1) drivers each send one frame and wait for the
one reply that carries the same sequence number, over a pyserial port they
were handed open. This base holds what does not depend on the wire format:

- the port must have a finite positive read timeout (``None`` would block the
  control loop forever on a silent device; 0 would call every reply lost
  before it could arrive), checked once at construction;
- sequence numbers 0..``MAX_SEQ``, wrapping, one fresh number per frame sent
  (a retry included, so a late reply to the first try cannot pass for the
  second's);
- bounded retries for reads only (:func:`devicectl_drivers.retry.retry_reads`);
- ``close`` is idempotent, and every failure of the port while closing is a
  :class:`~devicectl.errors.PortError`; the device's own watchdog makes it
  safe once the host falls silent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

import serial

from devicectl.errors import ConfigError, PortError
from devicectl_drivers.port_errors import PORT_ERRORS
from devicectl_drivers.retry import retry_reads

_T = TypeVar("_T")


class SequencedPortDriver:
    """Base of a driver that numbers its frames; subclasses set ``implements``
    (with ``modality``, its older name, equal to it) and ``MAX_SEQ``."""

    implements: ClassVar[str]
    modality: ClassVar[str]
    MAX_SEQ: ClassVar[int]

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        now: Callable[[], float] = time.monotonic,
        read_retries: int = 2,
    ) -> None:
        if isinstance(read_retries, bool) or not isinstance(read_retries, int) or read_retries < 0:
            raise ConfigError(f"read_retries must be a whole number >= 0, not {read_retries!r}")
        timeout_s = getattr(port, "timeout", None)
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, int | float)
            or not (0 < timeout_s < math.inf)
        ):
            raise ConfigError(
                f"the {self.modality.upper()} port needs a finite positive read timeout "
                f"in seconds, not {timeout_s!r}"
            )
        self._port = port
        self._now = now
        self._tries = read_retries + 1
        self._seq = 0
        self._closed = False

    @property
    def next_seq(self) -> int:
        """The sequence number the next command will carry (0..``MAX_SEQ``)."""
        return self._seq

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called; every command then raises ``PortError``."""
        return self._closed

    def close(self) -> None:
        """Close the port (idempotent). The device watchdog makes the device safe by itself."""
        if self._closed:
            return
        self._closed = True
        try:
            self._port.close()
        except PORT_ERRORS as exc:
            raise PortError(f"{self.modality.upper()} port failed while closing: {exc}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """Reads only: see :func:`devicectl_drivers.retry.retry_reads`."""
        return retry_reads(attempt, self._tries)

    def _take_seq(self) -> int:
        seq = self._seq
        self._seq = 0 if seq == self.MAX_SEQ else seq + 1
        return seq
