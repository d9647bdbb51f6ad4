"""The host-facing side every simulator shares: the bytes it has sent, in clock time.

A simulator advances its physics lazily, to the clock's current time, whenever
the host touches it. ``take``, ``pending``, ``close`` and ``advance`` are the
same for every device, and so is what happens to host bytes before the
firmware parses them (``_arrival``: the no_reply and garble faults); each
firmware adds ``feed`` (its own framing, written from its own wire spec) and
``_advance_to`` (its own physics and events).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from devicectl.clock import Clock

WATCHDOG_S = 0.25  # every device's host watchdog (DESIGN.md)


def check_options(device: str, options: Mapping[str, object], allowed: Sequence[str]) -> None:
    """Refuse a sim:// URL option the simulator does not know (a typo must not pass)."""
    for name in options:
        if name not in allowed:
            raise ValueError(
                f"unknown option {name!r} for the {device} simulator "
                f"(allowed: {', '.join(allowed)})"
            )


class SimulatedStream:
    """Mixin: needs ``_clock``, ``_t`` (time simulated up to), ``_closed``, ``_out``,
    ``_deaf`` (the no_reply fault is active), ``_garble_rate`` and ``_garble_rng``."""

    device_name = "device"
    _clock: Clock
    _t: float
    _closed: bool
    _out: bytes
    _deaf: bool
    _garble_rate: float
    _garble_rng: random.Random
    _timeline: list[tuple[float, int, int]]  # (time, starting, fault index), sorted
    _timeline_pos: int
    _boot_end_s: float
    _wd_deadline_s: float
    _no_reply: bool

    def _advance_to(self, now: float) -> None:
        raise NotImplementedError

    def _fault_edge(self, index: int, starting: bool, t: float) -> None:
        raise NotImplementedError

    def _refresh_faults(self, t: float) -> None:
        raise NotImplementedError

    def _next_fault_s(self) -> float:
        """When the next fault starts or ends (infinity if none is left)."""
        pos = self._timeline_pos
        return self._timeline[pos][0] if pos < len(self._timeline) else math.inf

    def _timeline_due(self, t: float) -> None:
        """What every firmware does first at an event time ``t``: apply the fault
        edges due by then (one refresh after them all), and end the boot, which
        arms the host watchdog and lets a no_reply fault make the firmware deaf."""
        timeline = self._timeline
        changed = False
        while self._timeline_pos < len(timeline) and timeline[self._timeline_pos][0] <= t:
            _, starting, index = timeline[self._timeline_pos]
            self._timeline_pos += 1
            self._fault_edge(index, bool(starting), t)
            changed = True
        if changed:
            self._refresh_faults(t)
        if self._boot_end_s <= t:
            self._wd_deadline_s = self._boot_end_s + WATCHDOG_S
            self._boot_end_s = math.inf
            self._deaf = self._no_reply

    def _arrival(self, data: bytes) -> bytes:
        """Host bytes arriving at ``clock.now()``, as the firmware receives them.

        The simulation is brought up to now first. A deaf firmware (no_reply)
        receives nothing (``b""``); a garbling line corrupts each byte with
        probability ``_garble_rate``, from its own seeded generator.
        """
        if self._closed:
            raise ValueError(f"the {self.device_name} simulator is closed")
        now = self._clock.now()
        if now > self._t:
            self._advance_to(now)
        if self._deaf or not data:
            return b""
        return self._garble(data) if self._garble_rate else data

    def _garble(self, data: bytes) -> bytes:
        """``data`` with each byte replaced by a random one with probability
        ``_garble_rate`` (the garble fault, on the wire in either direction)."""
        rng = self._garble_rng
        rate = self._garble_rate
        out = bytearray(data)
        for i in range(len(out)):
            if rng.random() < rate:
                out[i] = rng.randrange(256)
        return bytes(out)

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
