"""The host-facing side every simulator shares: the bytes it has sent, in clock time.

A simulator advances its physics lazily, to the clock's current time, whenever
the host touches it. ``take``, ``pending``, ``close`` and ``advance`` are the
same for every device; each firmware adds ``feed`` (its own framing, written
from its own wire spec) and ``_advance_to`` (its own physics and events).
"""

from __future__ import annotations

from devicectl.clock import Clock


class SimulatedStream:
    """Mixin: needs ``_clock``, ``_t`` (time simulated up to), ``_closed``, ``_out``."""

    device_name = "device"
    _clock: Clock
    _t: float
    _closed: bool
    _out: bytes

    def _advance_to(self, now: float) -> None:
        raise NotImplementedError

    def take(self, max_bytes: int = -1) -> bytes:
        """Bytes the device has sent up to ``clock.now()`` (all, or at most ``max_bytes``)."""
        if self._closed:
            raise ValueError(f"the {self.device_name} simulator is closed")
        now = self._clock.now()
        if now > self._t:
            self._advance_to(now)
        out = self._out
        if max_bytes < 0 or max_bytes >= len(out):
            self._out = b""
            return out
        self._out = out[max_bytes:]
        return out[:max_bytes]

    def pending(self) -> int:
        """How many bytes :meth:`take` would return now."""
        if self._closed:
            raise ValueError(f"the {self.device_name} simulator is closed")
        now = self._clock.now()
        if now > self._t:
            self._advance_to(now)
        return len(self._out)

    def close(self) -> None:
        """Stop serving; later ``feed``/``take``/``pending`` raise ValueError."""
        self._closed = True

    def advance(self) -> None:
        """Bring the simulation up to ``clock.now()``."""
        now = self._clock.now()
        if now > self._t:
            self._advance_to(now)
