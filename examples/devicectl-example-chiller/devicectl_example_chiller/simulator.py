"""The chiller handpiece's firmware, simulated: the device side of CHL/1.

Written from the wire protocol in README.md only: it imports nothing from the
driver (a codec bug cannot hide by being on both sides) and nothing from
devicectl but the ``Clock`` type, for hints. It has the shape of
``devicectl.transport.SimulatedDevice`` (``feed``/``take``/``pending``/
``close``/``output_on``, plus ``advance`` and ``output_log`` for
``devicectl sim serve``), so it is served in-process (``sim://chiller``), on a
pty or over TCP like the built-in simulators.

Physics (a lumped model; magnitudes in README.md): the plate moves toward its
target with a first-order lag (the setpoint while cooling, tau 2.5 s; ambient
when off, tau 30 s); the skin under it is pulled toward the plate through the
contact (tau 10 s) and back toward its resting temperature by perfusion
(tau 15 s), so cooling at a 4 degC setpoint settles the skin near 16 degC.
Sensors add seeded gaussian noise and report 0.1 degC steps.

Firmware: boots silent for 0.5 s (``POWER_ON_RESET`` set); a host watchdog
turns the output off 250 ms after the last valid frame (``WATCHDOG_TRIPPED``);
its own skin cut-off at 8 degC turns the output off (``SKIN_CUTOFF``); an open
sensor turns it off and refuses ``OUT 1`` (``SENSOR``).

Faults (``fault=KIND@START[+DURATION]``, times with ``ms``, ``s`` or ``m``):

- ``no_reply``: every received byte is dropped; nothing is answered; the
  watchdog acts as for a silent host.
- ``sensor_open``: the skin sensor reads ``OPEN``; ``SENSOR`` is set while it
  lasts and the output turned off at its start.
- ``overcool``: the plate regulator fails and drives the plate toward
  -10 degC while cooling, with no fault bit (the host's supervisor must notice).

Options: ``skin0`` (resting skin, degC, 30-37, default 33.5) and ``ambient``
(degC, 15-35, default 25).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from devicectl.clock import Clock

BOOT_S: Final = 0.5
WATCHDOG_S: Final = 0.25
MAX_DT_S: Final = 0.01  # physics step
TAU_PLATE_ON_S: Final = 2.5
TAU_PLATE_OFF_S: Final = 30.0
TAU_CONTACT_S: Final = 10.0
TAU_PERFUSION_S: Final = 15.0
OVERCOOL_C: Final = -10.0
SKIN_CUTOFF_C: Final = 8.0
SKIN_CUTOFF_CLEAR_C: Final = 10.0
SETPOINT_MIN_C: Final = 4.0
SETPOINT_MAX_C: Final = 15.0
SKIN_NOISE_C: Final = 0.05
PLATE_NOISE_C: Final = 0.02
MAX_LINE: Final = 64

FB_WATCHDOG: Final = 0x01
FB_SENSOR: Final = 0x02
FB_SKIN_CUTOFF: Final = 0x04
FB_POWER_ON: Final = 0x08

KINDS: Final = ("no_reply", "sensor_open", "overcool")
OPTIONS: Final = ("skin0", "ambient")
_FAULT_RE = re.compile(
    r"(?P<kind>[a-z_]+)@(?P<start>[0-9.]+)(?P<su>ms|s|m)(?:[+ ](?P<dur>[0-9.]+)(?P<du>ms|s|m))?"
)
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Fault:
    kind: str
    start_s: float
    end_s: float  # inf: for ever

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


def parse_fault(text: str) -> Fault:
    """``KIND@START[+DURATION]``; ValueError naming what is wrong."""
    m = _FAULT_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"bad fault {text!r}: expected KIND@START[+DURATION], e.g. no_reply@5s")
    if m["kind"] not in KINDS:
        raise ValueError(
            f"bad fault {text!r}: unknown kind {m['kind']!r} for the chiller simulator "
            f"(known kinds: {', '.join(KINDS)})"
        )
    try:
        start = float(m["start"]) * _UNIT_S[m["su"]]
        duration = math.inf if m["dur"] is None else float(m["dur"]) * _UNIT_S[m["du"]]
    except ValueError:
        raise ValueError(f"bad fault {text!r}: not a number") from None
    if duration <= 0:
        raise ValueError(f"bad fault {text!r}: the duration must be above zero")
    return Fault(m["kind"], start, start + duration)


def _checksum(body: bytes) -> int:
    value = 0
    for byte in body:
        value ^= byte
    return value


def _option(options: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    if name not in options:
        return default
    try:
        value = float(options[name])
    except ValueError:
        raise ValueError(f"option {name}={options[name]!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"option {name}={options[name]!r} is outside {low}-{high}")
    return value


class ChillerFirmware:
    """One simulated chiller handpiece on ``clock``."""

    device_name = "chiller"

    def __init__(
        self, clock: Clock, seed: int = 0, faults: Sequence[str] = (), **options: str
    ) -> None:
        for name in options:
            if name not in OPTIONS:
                raise ValueError(
                    f"unknown option {name!r} for the chiller simulator "
                    f"(allowed: {', '.join(OPTIONS)})"
                )
        self._clock = clock
        self._seed = seed
        self._rng = random.Random(seed)
        self.faults = [parse_fault(text) for text in faults]
        self.skin0_c = _option(options, "skin0", 33.5, 30.0, 37.0)
        self.ambient_c = _option(options, "ambient", 25.0, 15.0, 35.0)
        self._t0 = clock.now()
        self._t = self._t0
        self._closed = False
        self._in = b""
        self._out = b""
        self.plate_c = self.ambient_c  # true values, noise free
        self.skin_c = self.skin0_c
        self.setpoint_c: float | None = None
        self._on = False
        self.flags = FB_POWER_ON
        self.frame_errors = 0
        self._boot_end_s = self._t0 + BOOT_S
        self._wd_deadline_s = math.inf
        self.output_log: list[tuple[float, bool, str]] = []
        self._sensor_was_open = False

    # -- test hooks ----------------------------------------------------------------------

    @property
    def output_on(self) -> bool:
        """The cooling stage really running (whatever the host believes)."""
        return self._on

    def _active(self, kind: str, t: float) -> bool:
        return any(f.kind == kind and f.active(t - self._t0) for f in self.faults)

    # -- time ------------------------------------------------------------------------------

    def _set_output(self, on: bool, t: float, reason: str) -> None:
        if on != self._on:
            self._on = on
            self.output_log.append((t, on, reason))

    def _next_edge(self, t: float) -> float:
        edges = [self._boot_end_s, self._wd_deadline_s]
        for f in self.faults:
            edges += [self._t0 + f.start_s, self._t0 + f.end_s]
        return min((e for e in edges if e > t), default=math.inf)

    def _advance_to(self, now: float) -> None:
        t = self._t
        while t < now:
            t_next = min(now, t + MAX_DT_S, self._next_edge(t))
            self._physics(t_next - t, t)
            t = t_next
            self._events(t)
        self._t = max(self._t, now)

    def _physics(self, dt: float, t: float) -> None:
        if self._on:
            overcool = self._active("overcool", t)
            target = OVERCOOL_C if overcool else (self.setpoint_c or self.ambient_c)
            tau = TAU_PLATE_ON_S
        else:
            target, tau = self.ambient_c, TAU_PLATE_OFF_S
        self.plate_c += (target - self.plate_c) * (1.0 - math.exp(-dt / tau))
        pull = (self.plate_c - self.skin_c) / TAU_CONTACT_S
        perfusion = (self.skin0_c - self.skin_c) / TAU_PERFUSION_S
        self.skin_c += (pull + perfusion) * dt

    def _events(self, t: float) -> None:
        if self._boot_end_s <= t:
            self._boot_end_s = math.inf
            self._wd_deadline_s = t + WATCHDOG_S
        if self._wd_deadline_s <= t:
            self._wd_deadline_s = math.inf
            self.flags |= FB_WATCHDOG
            self._set_output(False, t, "watchdog")
        sensor_open = self._active("sensor_open", t)
        if sensor_open:
            self.flags |= FB_SENSOR
            if not self._sensor_was_open:
                self._set_output(False, t, "sensor")
        self._sensor_was_open = sensor_open
        if self._on and self.skin_c < SKIN_CUTOFF_C:
            self.flags |= FB_SKIN_CUTOFF
            self._set_output(False, t, "cutoff")

    def advance(self) -> None:
        """Bring the simulation up to ``clock.now()``."""
        now = self._clock.now()
        if now > self._t:
            self._advance_to(now)

    # -- the wire --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the chiller simulator is closed")

    def feed(self, data: bytes) -> None:
        """Host bytes arriving at ``clock.now()``."""
        self._check_open()
        self.advance()
        now = self._t
        if self._boot_end_s < math.inf or self._active("no_reply", now):
            return  # booting or deaf: nothing is received
        self._in += data
        while b"\n" in self._in:
            line, _, self._in = self._in.partition(b"\n")
            self._line(line.rstrip(b"\r"), now)
        if len(self._in) > MAX_LINE:
            self._in = b""
            self.frame_errors += 1

    def _line(self, line: bytes, now: float) -> None:
        body, star, tail = line.rpartition(b"*")
        try:
            valid = bool(star) and len(tail) == 2 and int(tail, 16) == _checksum(body)
            text = body.decode("ascii")
        except (ValueError, UnicodeDecodeError):
            valid = False
        if not valid:
            self.frame_errors += 1
            return
        self._wd_deadline_s = now + WATCHDOG_S
        reply = self._command(text, now)
        raw = reply.encode("ascii")
        self._out += raw + b"*" + f"{_checksum(raw):02X}".encode("ascii") + b"\n"

    def _command(self, text: str, now: float) -> str:
        if text == "ID?":
            return f"ID devicectl-sim,CH-1,SIM{self._seed},1.0"
        if text == "MEAS?":
            return self._meas(now)
        if text == "CLR":
            self.flags &= ~(FB_WATCHDOG | FB_POWER_ON)
            if self.skin_c >= SKIN_CUTOFF_CLEAR_C:
                self.flags &= ~FB_SKIN_CUTOFF
            if not self._active("sensor_open", now):
                self.flags &= ~FB_SENSOR
            return "OK"
        if text.startswith("SET "):
            try:
                value = float(text[4:])
            except ValueError:
                return "ERR 2 setpoint not a number"
            if not SETPOINT_MIN_C <= value <= SETPOINT_MAX_C:
                return "ERR 2 setpoint out of range"
            self.setpoint_c = round(value, 1)
            return "OK"
        if text == "OUT 0":
            self._set_output(False, now, "host")
            return "OK"
        if text == "OUT 1":
            if self.flags & (FB_SENSOR | FB_SKIN_CUTOFF):
                return "ERR 3 fault latched"
            if self.setpoint_c is None:
                return "ERR 4 no setpoint"
            self._set_output(True, now, "host")
            return "OK"
        return "ERR 1 unknown command"

    def _meas(self, now: float) -> str:
        plate = f"{self.plate_c + self._rng.gauss(0.0, PLATE_NOISE_C):.1f}"
        skin = f"{self.skin_c + self._rng.gauss(0.0, SKIN_NOISE_C):.1f}"
        if self._active("sensor_open", now):
            skin = "OPEN"
        setpoint = "0.0" if self.setpoint_c is None else f"{self.setpoint_c:.1f}"
        return f"MEAS {plate} {skin} {setpoint} {int(self._on)} {self.flags:02X}"

    def take(self, max_bytes: int = -1) -> bytes:
        """Bytes the device has sent up to ``clock.now()``."""
        self._check_open()
        self.advance()
        out = self._out
        if max_bytes < 0 or max_bytes >= len(out):
            self._out = b""
            return out
        self._out = out[max_bytes:]
        return out[:max_bytes]

    def pending(self) -> int:
        self._check_open()
        self.advance()
        return len(self._out)

    def close(self) -> None:
        self._closed = True
