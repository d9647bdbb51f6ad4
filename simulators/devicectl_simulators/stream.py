"""What every simulated device shares: :class:`SimulatedDevice`, the base of each firmware.

A simulated device runs on the caller's clock and advances lazily, to the
clock's current time, whenever the host touches it. The base class owns
everything that is the same on every device:

- the clock, the seed, and the bytes the device has sent (``take``,
  ``pending``, ``close``, ``advance``);
- the fault timeline built from the parsed ``fault=`` values: each fault's
  start and end at its exact time, the ``reset`` fault (a reboot), the
  ``no_reply`` fault (the firmware drops what it receives, a partial frame is
  lost) and the ``garble`` fault (each byte in either direction replaced, with
  probability ``rate``, by a seeded random byte);
- the boot (1 s during which every received byte is dropped unread) and the
  host watchdog (armed at boot end; the deadline is the last valid frame's time
  + 0.25 s exactly);
- the event loop: time advances from event to event (fault edges, boot end,
  watchdog, then the firmware's own events), the firmware's physics between them.

Each firmware adds its protocol (``feed``, and the replies it hands to
:meth:`SimulatedDevice._send`) and its physics, through these hooks:

- :meth:`~SimulatedDevice._on_reboot`: firmware state back to power-on;
- :meth:`~SimulatedDevice._on_watchdog`: the watchdog expired (latch, output off);
- :meth:`~SimulatedDevice._on_fault_start`: what a fault captures as it starts
  (a stuck sensor's value);
- :meth:`~SimulatedDevice._apply_faults`: enforce the combined effect of the
  active faults (those not shared: sensors, contact, power);
- :meth:`~SimulatedDevice._next_physics_event_s`,
  :meth:`~SimulatedDevice._on_physics_events` and
  :meth:`~SimulatedDevice._advance_physics`: the firmware's own timed events
  and its physics between events.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol

from devicectl.clock import Clock
from devicectl_simulators.faults import FaultSpec, parse_fault

WATCHDOG_S = 0.25  # every device's host watchdog (DESIGN.md)
BOOT_S = 1.0  # after power-on and every reboot, received bytes are dropped this long

_INF = math.inf


class ServedDevice(Protocol):
    """What a server (pty, TCP) needs of a simulator: bytes in and out in clock time.

    Every :class:`SimulatedDevice` has it; so does any simulator of the
    ``devicectl.transport.SimulatedDevice`` shape. A server also calls
    ``advance()`` when the simulator has one (else ``pending()``) to let time act.
    """

    def feed(self, data: bytes) -> None: ...

    def take(self, max_bytes: int = -1) -> bytes: ...

    def pending(self) -> int: ...

    def close(self) -> None: ...


def check_options(device: str, options: Mapping[str, object], allowed: Sequence[str]) -> None:
    """Refuse a sim:// URL option the simulator does not know (a typo must not pass)."""
    for name in options:
        if name not in allowed:
            raise ValueError(
                f"unknown option {name!r} for the {device} simulator "
                f"(allowed: {', '.join(allowed)})"
            )


class SimulatedDevice:
    """Base of every simulated firmware: clock, seed, faults, boot, watchdog, byte stream.

    A subclass checks its options, calls ``super().__init__`` (which parses the
    faults), sets up its own state, then calls :meth:`_power_on`. It has the
    shape of ``devicectl.transport.SimulatedDevice`` once it adds ``feed`` and
    ``output_on``.
    """

    device_name: ClassVar[str] = "device"
    output_reasons: ClassVar[tuple[str, ...]] = ()
    """The reasons :attr:`output_log` may give, documented by each firmware."""

    def __init__(self, clock: Clock, seed: int, faults: Sequence[str]) -> None:
        specs = [parse_fault(text, self.device_name) for text in faults]
        now = clock.now()
        self._clock = clock
        self._seed = seed
        self._closed = False
        self._t = now  # the simulation has reached this clock time
        self._out = b""  # sent, not yet taken by the host
        self._inbuf = bytearray()  # received, not yet a whole frame
        self._discarding = False  # inside an over-long frame, dropping to its end
        self._output_log: list[tuple[float, bool, str]] = []
        self._garble_rng = random.Random(f"{self.device_name}-garble:{seed}")

        self._boot_end_s = _INF
        self._wd_deadline_s = _INF
        self._deaf = False  # booting or no_reply: input is dropped unread
        self._no_reply = False
        self._garble_rate = 0.0

        # Faults: a sorted timeline of (time, 0=end/1=start, index).
        self._specs = specs
        timeline: list[tuple[float, int, int]] = []
        for index, spec in enumerate(specs):
            start = now + spec.start_s
            timeline.append((start, 1, index))
            if spec.duration_s is not None and spec.kind != "reset":
                timeline.append((start + spec.duration_s, 0, index))
        timeline.sort()
        self._timeline = timeline
        self._timeline_pos = 0
        self._active: dict[int, float] = {}  # fault index -> absolute start time, in start order

        self._other_next_s = _INF  # the next event but the watchdog
        self._next_event_s = _INF  # the next event of any kind

    def _power_on(self) -> None:
        """Boot at creation; faults at +0 s apply before the constructor returns."""
        now = self._t
        self._reboot(now)
        self._reschedule()
        self._advance_to(now)

    # ------------------------------------------------------------------ hooks

    def _on_reboot(self, t: float) -> None:
        """Firmware state back to power-on at ``t`` (output off, reason ``reset``)."""

    def _on_watchdog(self, t: float) -> None:
        """The host watchdog expired at ``t``: latch its flag and turn output off."""

    def _on_fault_start(self, index: int, spec: FaultSpec, t: float) -> None:
        """Fault ``index`` (neither reset nor no_reply) starts at ``t``: capture what it needs."""

    def _apply_faults(self, t: float) -> None:
        """Enforce the combined effect of the active faults (:attr:`_active`) at ``t``;
        no_reply and garble are already applied."""

    def _next_physics_event_s(self) -> float:
        """When the firmware's own next timed event is due (infinity if none)."""
        return _INF

    def _on_physics_events(self, t: float) -> None:
        """Handle the firmware's own events due at ``t`` (after faults, boot and watchdog)."""

    def _advance_physics(self, t: float, end: float) -> float:
        """Advance the physics from ``t`` (= the simulated time) towards ``end`` (no
        event falls before it) and set the simulated time; return the time reached:
        ``end``, or earlier if a step scheduled an event before ``end``."""
        self._t = end
        return end

    # ------------------------------------------------------------------ time

    def _advance_to(self, now: float) -> None:
        """Bring the simulation up to ``now``: every event at its exact time, the
        physics in between."""
        t = self._t
        while True:
            if self._next_event_s <= t:
                self._process_events(t)
            if t >= now:
                return
            end = self._next_event_s
            if end > now:
                end = now
            t = self._advance_physics(t, end)

    def _process_events(self, t: float) -> None:
        """Everything due at ``t``, in order: fault edges (one refresh after them
        all), boot end, watchdog, then the firmware's own events."""
        self._t = t
        timeline = self._timeline
        changed = False
        while self._timeline_pos < len(timeline) and timeline[self._timeline_pos][0] <= t:
            _, starting, index = timeline[self._timeline_pos]
            self._timeline_pos += 1
            self._fault_edge(index, bool(starting), t)
            changed = True
        if changed:
            self._refresh_faults(t)
        if self._boot_end_s <= t:  # boot ends: the watchdog is armed, no_reply may deafen
            self._wd_deadline_s = self._boot_end_s + WATCHDOG_S
            self._boot_end_s = _INF
            self._deaf = self._no_reply
        if self._wd_deadline_s <= t:
            self._wd_deadline_s = _INF
            self._on_watchdog(t)
        self._on_physics_events(t)
        self._reschedule()

    def _reschedule(self) -> None:
        """Recompute the next event after a change of any event time."""
        pos = self._timeline_pos
        timeline = self._timeline
        fault_next = timeline[pos][0] if pos < len(timeline) else _INF
        other = min(fault_next, self._boot_end_s, self._next_physics_event_s())
        self._other_next_s = other
        wd = self._wd_deadline_s
        self._next_event_s = wd if wd < other else other

    def _feed_watchdog(self) -> None:
        """A valid frame arrived now: the watchdog deadline moves to now + 0.25 s.

        Frames are read only after boot, so the next event is the new deadline
        or the next other event.
        """
        deadline = self._t + WATCHDOG_S
        self._wd_deadline_s = deadline
        other = self._other_next_s
        self._next_event_s = deadline if deadline < other else other

    def _reboot(self, t: float) -> None:
        """Power-on at ``t``: the firmware's state, partial input lost, 1 s deaf."""
        self._boot_end_s = t + BOOT_S
        self._wd_deadline_s = _INF
        self._inbuf.clear()
        self._discarding = False
        self._deaf = True
        self._on_reboot(t)

    # ------------------------------------------------------------------ faults

    def _fault_edge(self, index: int, starting: bool, t: float) -> None:
        spec = self._specs[index]
        if spec.kind == "reset":
            self._reboot(t)
            return
        if not starting:
            self._active.pop(index, None)
            return
        if spec.kind == "no_reply":
            self._inbuf.clear()  # a partial frame is lost; input is dropped until the end
            self._discarding = False
        else:
            self._on_fault_start(index, spec, t)
        self._active[index] = t

    def _refresh_faults(self, t: float) -> None:
        """Recompute the combined effect of the active faults and enforce it."""
        no_reply = False
        garble_rate = 0.0
        specs = self._specs
        for index in self._active:
            spec = specs[index]
            if spec.kind == "no_reply":
                no_reply = True
            elif spec.kind == "garble":
                garble_rate = max(garble_rate, spec.param("rate"))
        self._no_reply = no_reply
        self._deaf = no_reply or self._boot_end_s != _INF
        self._garble_rate = garble_rate
        self._apply_faults(t)

    def fault_specs(self) -> list[FaultSpec]:
        """The faults this simulator was created with, parsed."""
        return list(self._specs)

    # ------------------------------------------------------------------ bytes

    def _arrival(self, data: bytes) -> bytes:
        """Host bytes arriving at ``clock.now()``, as the firmware receives them.

        The simulation is brought up to now first. A deaf firmware (booting or
        no_reply) receives nothing (``b""``); a garbling line corrupts each byte
        with probability ``_garble_rate``, from its own seeded generator.
        """
        if self._closed:
            raise ValueError(f"the {self.device_name} simulator is closed")
        now = self._clock.now()
        if now > self._t:
            self._advance_to(now)
        if self._deaf or not data:
            return b""
        return self._garble(data) if self._garble_rate else data

    def _send(self, data: bytes) -> None:
        """Queue ``data`` for the host (garbled on the way while a garble fault lasts)."""
        if self._garble_rate:
            data = self._garble(data)
        self._out = self._out + data if self._out else data

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

    @property
    def output_log(self) -> list[tuple[float, bool, str]]:
        """Every change of the output: (clock time, on, reason), reasons as listed
        in :attr:`output_reasons`."""
        self.advance()
        return self._output_log
