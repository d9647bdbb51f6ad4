"""LED canopy firmware emulation: the device side of docs/protocols/led.md (Modbus RTU).

Written from the protocol page only: RTU framing and CRC-16/MODBUS are
implemented here, not with pymodbus, so the host driver (which uses pymodbus)
and this simulator are independent. An :class:`LEDFirmware` has the shape of
``devicectl.transport.SimulatedDevice`` (``feed``/``take``/``pending``/
``close``/``output_on``) and runs on the caller's clock: every public call first
brings the simulation up to ``clock.now()``.

What is guaranteed:

- Replies appear in the output buffer as soon as a complete request is fed
  (zero wire latency), one per valid request addressed to this unit, in order.
- Frames are delimited by parsing, not by silent intervals (a byte stream has
  no timing): the function code gives the request length (03/04/06: 8 bytes,
  10: 9 + byte count); a candidate that fails its CRC loses its first byte and
  parsing resynchronises on the next. A request with an unsupported function
  code, addressed to this unit, ends at the first length (4 to 256 bytes) whose
  CRC matches, and is answered with exception 01.
- Time is advanced exactly: irradiance, panel and skin are a cascade of
  first-order lags driven by a constant input between events, solved in closed
  form, so splitting an interval differently changes nothing but float
  rounding. Time is split at every event: the watchdog deadline (last valid
  frame + 0.25 s exactly), boot end, each fault's start and end, and the
  instants the measured irradiance crosses half the setpoint (the LED-string
  check). While output is on, steps are at most 0.1 s and the firmware's panel
  and skin limits are checked after each (noise-free values).
- Everything random comes from generators seeded by ``seed``, so the same seed
  and the same sequence of calls at the same clock times give the same bytes.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING

from devicectl_simulators.faults import FaultSpec
from devicectl_simulators.stream import SimulatedDevice, check_options

if TYPE_CHECKING:
    from devicectl.clock import Clock

MAX_ON_STEP_S = 0.1  # the firmware checks its limits at least every 100 ms while on
STRING_FAIL_S = 1.0  # below half the setpoint this long while on: LED string failure
STRING_FAIL_FRACTION = 0.5

TAU_IRRADIANCE_S = 0.2
TAU_PANEL_S = 120.0
TAU_SKIN_S = 180.0
PANEL_RISE_C_PER_MW = 15.0 / 110.0  # 15 degC above ambient at 110 mW/cm2
SKIN_RISE_C_PER_MW = 0.03
AMBIENT_C = 25.0
SKIN0_C = 33.5
SKIN_NOISE_C = 0.05
PANEL_LIMIT_C = 60.0
SKIN_LIMIT_C = 42.0
DARK_MW = 1e-4  # below this total irradiance the panel and skin no longer need sampling

WAVELENGTHS = (633, 830)  # channel 0 red, channel 1 near-infrared
MAX_SETPOINT = 1100  # 0.1 mW/cm2
FIRMWARE_VERSION = 0x0100  # 1.0
SENSOR_OPEN = 0x7FFF

# Holding registers.
HR_WAVELENGTH = 0
HR_SETPOINT = 1
HR_OUTPUT_ENABLE = 2
HR_HEARTBEAT = 3
HR_CLEAR_FAULTS = 4
HOLDING_COUNT = 5
INPUT_COUNT = 8

# fault_bits (input register 5).
FB_WATCHDOG = 1 << 0
FB_PANEL = 1 << 1
FB_SKIN = 1 << 2
FB_INTERLOCK = 1 << 3
FB_LED_STRING = 1 << 4
FB_POWER_ON = 1 << 5

# Modbus exception codes.
ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
DEVICE_FAILURE = 4

FC_READ_HOLDING = 0x03
FC_READ_INPUT = 0x04
FC_WRITE_SINGLE = 0x06
FC_WRITE_MULTIPLE = 0x10
MAX_READ = 125
MAX_WRITE = 123
MAX_ADU = 256  # longest RTU frame
MAX_FC10_ADU = 9 + 255  # the byte-count field allows this much before the CRC is checked

OPTIONS = ("unit", "skin0", "ambient")

_INF = math.inf
_FRAME = 0
_NEED_MORE = 1
_BAD = 2
_UP, _DOWN, _TRIP = 0, 1, 2  # LED-string events: crosses half the setpoint upward/downward
_VALID_CACHE_LIMIT = 1024


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def _crc_word_table(table: tuple[int, ...]) -> tuple[int, ...]:
    """The CRC register after two bytes: with ``v = crc ^ (b0 | b1 << 8)`` the
    16-bit register is shifted out entirely, so two bytes cost one lookup."""
    words = []
    for value in range(1 << 16):
        first = (value >> 8) ^ table[value & 0xFF]
        words.append((first >> 8) ^ table[first & 0xFF])
    return tuple(words)


_CRC_TABLE = _crc_table()
_CRC_WORDS = _crc_word_table(_CRC_TABLE)  # 65536 entries, about 2.4 MB, 20 ms at import
_LE_WORDS = tuple(struct.Struct(f"<{count}H") for count in range(MAX_FC10_ADU // 2 + 1))


def crc16_modbus(data: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    """CRC-16/MODBUS of ``data[start:end]`` (reflected poly 0xA001, init 0xFFFF);
    it is sent low byte first."""
    if end is None:
        end = len(data)
    pairs = (end - start) >> 1
    crc = 0xFFFF
    words = _CRC_WORDS
    for word in _LE_WORDS[pairs].unpack_from(data, start):
        crc = words[crc ^ word]
    if (end - start) & 1:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ data[end - 1]) & 0xFF]
    return crc


def _with_crc(body: bytes) -> bytes:
    crc = crc16_modbus(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def _crc_ok(frame: bytes | bytearray, start: int, length: int) -> bool:
    end = start + length - 2
    crc = crc16_modbus(frame, start, end)
    return frame[end] == crc & 0xFF and frame[end + 1] == crc >> 8


_READ_REPLY = tuple(struct.Struct(f">BBB{count}H") for count in range(MAX_READ + 1))


def _unit_normal_table(bits: int) -> tuple[float, ...]:
    """Standard normal quantiles at the midpoints of 2**bits equal-probability bins,
    rescaled to unit variance: indexing it with uniform random bits draws gaussian
    noise (tails cut at about 3.5 sigma) far faster than ``random.gauss``."""
    size = 1 << bits
    quantiles = [NormalDist().inv_cdf((i + 0.5) / size) for i in range(size)]
    rms = math.sqrt(sum(z * z for z in quantiles) / size)
    return tuple(z / rms for z in quantiles)


_NOISE_BITS = 12
_UNIT_NORMAL = _unit_normal_table(_NOISE_BITS)


def _reg(value: float) -> int:
    """A signed reading in tenths as a 16-bit register (two's complement, clamped)."""
    tenths = round(value * 10.0)
    if tenths > 0x7FFE:  # 0x7FFF means "sensor open": a reading never produces it
        tenths = 0x7FFE
    elif tenths < -0x8000:
        tenths = -0x8000
    return tenths & 0xFFFF


def _option_float(options: dict[str, str], name: str, default: float) -> float:
    if name not in options:
        return default
    try:
        value = float(options[name])
    except ValueError:
        raise ValueError(f"option {name}={options[name]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"option {name}={options[name]!r} is not finite")
    return value


class LEDFirmware(SimulatedDevice):
    """Simulated LED canopy: Modbus RTU server, protections, physics, faults.

    Test hooks (not on the wire): :attr:`output_on`, :attr:`output_log`,
    :attr:`irradiance_mw_cm2`, :attr:`panel_c`, :attr:`skin_true_c`,
    :attr:`peak_skin_c` and :meth:`advance`.
    """

    device_name = "led"
    output_reasons = (
        "host",
        "watchdog",
        "panel",
        "skin",
        "sensor",
        "interlock",
        "led_string",
        "wavelength",
        "reset",
    )

    def __init__(
        self,
        clock: Clock,
        seed: int = 0,
        faults: Sequence[str] = (),
        **options: str,
    ) -> None:
        check_options("led", options, OPTIONS)
        unit = 1
        if "unit" in options:
            text = options["unit"]
            if not text.isdigit() or not 1 <= int(text) <= 247:
                raise ValueError(f"option unit={text!r} must be a whole number from 1 to 247")
            unit = int(text)
        skin0_c = _option_float(options, "skin0", SKIN0_C)
        if not 24.0 <= skin0_c < SKIN_LIMIT_C:
            raise ValueError(f"option skin0={skin0_c!r} must lie from 24 up to (not including) 42")
        ambient_c = _option_float(options, "ambient", AMBIENT_C)
        if not 0.0 <= ambient_c < PANEL_LIMIT_C:
            raise ValueError(
                f"option ambient={ambient_c!r} must lie from 0 up to (not including) 60"
            )
        super().__init__(clock, seed, faults)
        self._unit = unit
        self._skin0_c = skin0_c
        self._ambient_c = ambient_c
        self._noise_bits = random.Random(f"led-noise:{seed}").getrandbits
        self._noise_table = tuple(SKIN_NOISE_C * z for z in _UNIT_NORMAL)
        self._valid8: dict[bytes, bool] = {}  # CRC verdicts of 8-byte requests (they repeat)
        self._read_replies: dict[tuple[int, ...], bytes] = {}  # read replies by their content

        now = self._t

        # Physics: irradiance per channel (mW/cm2), panel and true skin (degC).
        self._e = [0.0, 0.0]
        self._panel_c = ambient_c
        self._skin_c = skin0_c
        self._peak_c = skin0_c
        self._drive_mw = 0.0  # irradiance the lit channel settles to
        self._channel = 0  # channel the drive goes to

        # Firmware state (set again on every reboot).
        self._output_on = False
        self._wavelength = WAVELENGTHS[0]
        self._setpoint = 0  # 0.1 mW/cm2
        self._latched = 0
        self._on_since = now  # elapsed counts from here ...
        self._on_until: float | None = now  # ... to here (None while on)
        self._below_since: float | None = None  # measured < half the setpoint since
        self._string_event_s = _INF
        self._string_kind = _UP

        # The combined effect of the active faults (see _apply_faults).
        self._stuck_value: dict[int, int] = {}  # fault index -> frozen reading (tenths)
        self._sensor_open = False
        self._stuck: int | None = None
        self._drift: list[tuple[float, float]] = []  # (rate degC/s, start)
        self._string_factor = 1.0
        self._overdrive = 1.0  # led_overdrive gain: no fault bit, the driver believes it
        self._interlock_open = False

        self._power_on()

    # ------------------------------------------------------------------ contract

    def feed(self, data: bytes) -> None:
        """Bytes from the host, arriving at ``clock.now()``; replies are queued at once."""
        data = self._arrival(data)
        if not data:
            return
        buf = self._inbuf
        if not buf and len(data) == 8 and data[1] in (FC_READ_INPUT, FC_READ_HOLDING):
            # The usual case: exactly one whole read request.
            data = bytes(data)
            valid = self._valid8.get(data)
            if valid is None:
                valid = _crc_ok(data, 0, 8)
                if len(self._valid8) >= _VALID_CACHE_LIMIT:
                    self._valid8.clear()
                self._valid8[data] = valid
            if valid:
                self._handle(data)
                return
        buf += data
        self._parse()

    @property
    def output_on(self) -> bool:
        """The output state the firmware holds at ``clock.now()``."""
        self.advance()
        return self._output_on

    # ------------------------------------------------------------------ test hooks

    @property
    def irradiance_mw_cm2(self) -> float:
        """True irradiance at the skin now, both channels (what the photodiode sees)."""
        self.advance()
        return self._e[0] + self._e[1]

    @property
    def panel_c(self) -> float:
        """True LED panel temperature now."""
        self.advance()
        return self._panel_c

    @property
    def skin_true_c(self) -> float:
        """True skin temperature under the canopy now (no offset, drift or noise)."""
        self.advance()
        return self._skin_c

    @property
    def peak_skin_c(self) -> float:
        """Highest true skin temperature since creation (sampled at every step end)."""
        self.advance()
        return self._peak_c

    @property
    def unit(self) -> int:
        """The Modbus server address this device answers."""
        return self._unit

    # ------------------------------------------------------------------ time

    def _advance_physics(self, t: float, end: float) -> float:
        next_event_s = self._next_event_s
        while t < end:
            on = self._output_on
            remaining = end - t
            if (on or self._e[0] + self._e[1] > DARK_MW) and remaining > MAX_ON_STEP_S * (
                1.0 + 1e-9
            ):
                h = remaining / math.ceil(remaining / MAX_ON_STEP_S - 1e-9)
                t_next = t + h
            else:
                h = remaining
                t_next = end
            self._step(h)
            self._t = t = t_next
            if self._skin_c > self._peak_c:
                self._peak_c = self._skin_c
            if on:
                self._check_limits(t)
                if self._next_event_s != next_event_s:
                    break  # a limit turned output off and rescheduled: split from here
        return t

    def _step(self, h: float) -> None:
        """Advance the physics exactly by ``h`` s with the drive held constant.

        Total irradiance E(t) = Ef + (E0 - Ef) exp(-t/tau_e); a lag x driven by
        ``a + b E`` with time constant tau then has the closed form
        x(t) = xss + C exp(-t/tau_e) + (x0 - xss - C) exp(-t/tau),
        xss = a + b Ef, C = b (E0 - Ef) tau_e / (tau_e - tau).
        """
        ee = math.exp(-h / TAU_IRRADIANCE_S)
        drive = self._drive_mw
        e = self._e
        total0 = e[0] + e[1]
        if self._channel == 0:
            e[0] = drive + (e[0] - drive) * ee
            e[1] *= ee
        else:
            e[0] *= ee
            e[1] = drive + (e[1] - drive) * ee
        excess = total0 - drive
        xss = self._ambient_c + PANEL_RISE_C_PER_MW * drive
        c = PANEL_RISE_C_PER_MW * excess * (TAU_IRRADIANCE_S / (TAU_IRRADIANCE_S - TAU_PANEL_S))
        self._panel_c = xss + c * ee + (self._panel_c - xss - c) * math.exp(-h / TAU_PANEL_S)
        xss = self._skin0_c + SKIN_RISE_C_PER_MW * drive
        c = SKIN_RISE_C_PER_MW * excess * (TAU_IRRADIANCE_S / (TAU_IRRADIANCE_S - TAU_SKIN_S))
        self._skin_c = xss + c * ee + (self._skin_c - xss - c) * math.exp(-h / TAU_SKIN_S)

    def _next_physics_event_s(self) -> float:
        return self._string_event_s

    def _on_watchdog(self, t: float) -> None:
        self._latched |= FB_WATCHDOG
        self._set_output(False, "watchdog", t)

    def _on_physics_events(self, t: float) -> None:
        """The LED-string check: the measured irradiance crossed half the setpoint,
        or stayed below it for 1 s."""
        if self._string_event_s <= t:
            kind = self._string_kind
            if kind == _UP:
                self._below_since = None
                self._schedule_string(t)
            elif kind == _DOWN:
                self._below_since = t
                self._schedule_string(t)
            else:
                self._latched |= FB_LED_STRING
                self._set_output(False, "led_string", t)

    # ------------------------------------------------------------------ protections

    def _set_output(self, on: bool, reason: str, t: float) -> None:
        if on != self._output_on:
            self._output_on = on
            self._output_log.append((t, on, reason))
            if on:
                self._on_since = t
                self._on_until = None
            else:
                self._on_until = t
            self._update_drive(t)

    def _update_drive(self, t: float) -> None:
        """The lit channel's target follows output, setpoint, wavelength and faults."""
        if self._output_on:
            self._drive_mw = self._setpoint * 0.1 * self._string_factor * self._overdrive
        else:
            self._drive_mw = 0.0
        self._channel = 0 if self._wavelength == WAVELENGTHS[0] else 1
        self._recheck_string(t)

    def _recheck_string(self, t: float) -> None:
        """Inputs changed at ``t``: is the measured irradiance below half the setpoint?"""
        if not self._output_on or self._setpoint == 0:
            self._below_since = None
            self._string_event_s = _INF
        else:
            threshold = self._setpoint * 0.1 * STRING_FAIL_FRACTION
            if self._e[0] + self._e[1] < threshold:
                if self._below_since is None:
                    self._below_since = t
            else:
                self._below_since = None
            self._schedule_string(t)
        self._reschedule()

    def _schedule_string(self, t: float) -> None:
        """Next LED-string event from the current state (crossings solved exactly)."""
        threshold = self._setpoint * 0.1 * STRING_FAIL_FRACTION
        drive = self._drive_mw
        total = self._e[0] + self._e[1]
        if self._below_since is not None:
            trip = self._below_since + STRING_FAIL_S
            up = _INF
            if drive > threshold:
                ratio = (drive - total) / (drive - threshold)
                up = t + TAU_IRRADIANCE_S * math.log(ratio) if ratio > 1.0 else t
            if up <= trip:
                self._string_event_s, self._string_kind = up, _UP
            else:
                self._string_event_s, self._string_kind = trip, _TRIP
        elif drive < threshold:
            ratio = (total - drive) / (threshold - drive)
            down = t + TAU_IRRADIANCE_S * math.log(ratio) if ratio > 1.0 else t
            self._string_event_s, self._string_kind = down, _DOWN
        else:
            self._string_event_s = _INF

    def _skin_sensor_clean_c(self, t: float) -> float:
        """Noise-free skin sensor value as the faults leave it (NaN if open)."""
        if self._sensor_open:
            return math.nan
        if self._stuck is not None:
            return self._stuck / 10.0
        value = self._skin_c
        for rate, start in self._drift:
            value += rate * (t - start)
        return value

    def _limit_fault(self, t: float) -> tuple[int, str] | None:
        """The firmware limit reached now, as (fault bit, log reason), or None."""
        if self._panel_c >= PANEL_LIMIT_C:
            return FB_PANEL, "panel"
        if self._sensor_open:
            return FB_SKIN, "sensor"
        if self._skin_sensor_clean_c(t) >= SKIN_LIMIT_C:
            return FB_SKIN, "skin"
        return None

    def _check_limits(self, t: float) -> None:
        hit = self._limit_fault(t)
        if hit is not None:
            self._latched |= hit[0]
            self._set_output(False, hit[1], t)

    def _on_reboot(self, t: float) -> None:
        self._set_output(False, "reset", t)
        self._setpoint = 0
        self._wavelength = WAVELENGTHS[0]
        self._latched = FB_POWER_ON
        self._on_since = self._on_until = t  # elapsed reads 0
        self._update_drive(t)

    # ------------------------------------------------------------------ faults

    def _on_fault_start(self, index: int, spec: FaultSpec, t: float) -> None:
        if spec.kind == "sensor_stuck":
            value = self._skin_sensor_clean_c(t)
            self._stuck_value[index] = SENSOR_OPEN if value != value else round(value * 10.0)

    def _apply_faults(self, t: float) -> None:
        sensor_open = interlock_open = False
        stuck: int | None = None
        drift: list[tuple[float, float]] = []
        factor = 1.0
        overdrive = 1.0
        for index, start in self._active.items():
            spec = self._specs[index]
            kind = spec.kind
            if kind == "sensor_open":
                sensor_open = True
            elif kind == "sensor_stuck":
                if stuck is None:  # the earliest active one holds
                    stuck = self._stuck_value[index]
            elif kind == "sensor_drift":
                drift.append((spec.param("rate"), start))
            elif kind == "led_string_fail":
                factor = min(factor, spec.param("factor"))
            elif kind == "led_overdrive":
                overdrive = max(overdrive, spec.param("gain"))
            elif kind == "contact_loss":
                interlock_open = True
        self._sensor_open = sensor_open
        self._stuck = stuck
        self._drift = drift
        self._interlock_open = interlock_open
        if interlock_open and self._output_on:
            self._latched |= FB_INTERLOCK
            self._set_output(False, "interlock", t)
        if self._output_on:
            self._check_limits(t)  # an open or stuck-high sensor acts at once
        if factor != self._string_factor or overdrive != self._overdrive:
            self._string_factor = factor
            self._overdrive = overdrive
            self._update_drive(t)

    # ------------------------------------------------------------------ framing

    def _candidate(self, buf: bytearray, i: int, known_only: bool) -> tuple[int, int]:
        """What starts at ``buf[i]``: (_FRAME, length), (_NEED_MORE, 0) or (_BAD, 0)."""
        n = len(buf) - i
        if n < 2:
            return _NEED_MORE, 0
        fc = buf[i + 1]
        if fc in (FC_READ_HOLDING, FC_READ_INPUT, FC_WRITE_SINGLE):
            length = 8
        elif fc == FC_WRITE_MULTIPLE:
            if n < 7:
                return _NEED_MORE, 0
            length = 9 + buf[i + 6]
        elif known_only or buf[i] != self._unit:
            return _BAD, 0  # another unit's unknown function: its length cannot be known
        else:
            # An unsupported function for us: the shortest length whose CRC matches.
            crc = 0xFFFF
            table = _CRC_TABLE
            limit = min(n, MAX_ADU)
            for k in range(limit - 2):
                crc = (crc >> 8) ^ table[(crc ^ buf[i + k]) & 0xFF]
                if k >= 1 and buf[i + k + 1] == crc & 0xFF and buf[i + k + 2] == crc >> 8:
                    return _FRAME, k + 3
            return (_NEED_MORE, 0) if n < MAX_ADU else (_BAD, 0)
        if n < length:
            return _NEED_MORE, 0
        return (_FRAME, length) if _crc_ok(buf, i, length) else (_BAD, 0)

    def _parse(self) -> None:
        buf = self._inbuf
        while buf:
            status, length = self._candidate(buf, 0, False)
            if status == _FRAME:
                frame = bytes(buf[:length])
                del buf[:length]
                self._handle(frame)
            elif status == _BAD:
                del buf[0]  # resynchronise one byte later
            else:
                # Incomplete: unless a whole valid frame starts later on (the head
                # was noise or a truncated frame), wait for more bytes.
                for k in range(1, len(buf) - 7):  # a known frame is 8+ bytes
                    if self._candidate(buf, k, True)[0] == _FRAME:
                        del buf[:k]
                        break
                else:
                    if len(buf) > MAX_FC10_ADU:
                        del buf[0]
                        continue
                    return

    def _handle(self, frame: bytes) -> None:
        """One CRC-valid frame; answered only if addressed to this unit."""
        if frame[0] != self._unit:
            return
        self._feed_watchdog()  # every valid frame to us
        fc = frame[1]
        if fc in (FC_READ_INPUT, FC_READ_HOLDING):
            address, count = struct.unpack_from(">HH", frame, 2)
            if not 1 <= count <= MAX_READ:
                reply = self._exception(fc, ILLEGAL_VALUE)
            elif address + count > (INPUT_COUNT if fc == FC_READ_INPUT else HOLDING_COUNT):
                reply = self._exception(fc, ILLEGAL_ADDRESS)
            else:
                regs = (
                    self._inputs(address, count)
                    if fc == FC_READ_INPUT
                    else self._holding()[address : address + count]
                )
                # An idle canopy repeats a few register sets: their frames are kept.
                key = (self._unit, fc, *regs)
                known = self._read_replies.get(key)
                if known is None:
                    known = _with_crc(_READ_REPLY[count].pack(self._unit, fc, 2 * count, *regs))
                    if len(self._read_replies) >= _VALID_CACHE_LIMIT:
                        self._read_replies.clear()
                    self._read_replies[key] = known
                reply = known
        elif fc == FC_WRITE_SINGLE:
            address, value = struct.unpack_from(">HH", frame, 2)
            if address >= HOLDING_COUNT:
                reply = self._exception(fc, ILLEGAL_ADDRESS)
            else:
                code = self._write(address, (value,))
                reply = self._exception(fc, code) if code else frame  # echo the request
        elif fc == FC_WRITE_MULTIPLE:
            address, count, byte_count = struct.unpack_from(">HHB", frame, 2)
            if not 1 <= count <= MAX_WRITE or byte_count != 2 * count:
                reply = self._exception(fc, ILLEGAL_VALUE)
            elif address + count > HOLDING_COUNT:
                reply = self._exception(fc, ILLEGAL_ADDRESS)
            else:
                values = struct.unpack_from(f">{count}H", frame, 7)
                code = self._write(address, values)
                reply = (
                    self._exception(fc, code)
                    if code
                    else _with_crc(struct.pack(">BBHH", self._unit, fc, address, count))
                )
        else:
            reply = self._exception(fc, ILLEGAL_FUNCTION)
        self._send(reply)

    def _exception(self, fc: int, code: int) -> bytes:
        return _with_crc(bytes((self._unit, (fc | 0x80) & 0xFF, code)))

    # ------------------------------------------------------------------ registers

    def _holding(self) -> list[int]:
        return [self._wavelength, self._setpoint, 1 if self._output_on else 0, 0, 0]

    def _inputs(self, address: int, count: int) -> list[int]:
        """Input registers ``address``..``address + count - 1``; skin noise is drawn
        only when register 2 is among them."""
        t = self._t
        e = self._e
        irradiance = round((e[0] + e[1]) * 10.0)
        values = [
            irradiance if irradiance < 0xFFFF else 0xFFFF,
            _reg(self._panel_c),
            self._skin_register(t) if address <= 2 < address + count else 0,
            0 if self._interlock_open else 1,
            self._elapsed_tenths(t),
            self._latched,
            1 if self._output_on else 0,
            FIRMWARE_VERSION,
        ]
        if address == 0 and count == INPUT_COUNT:
            return values
        return values[address : address + count]

    def _skin_register(self, t: float) -> int:
        if self._sensor_open:
            return SENSOR_OPEN
        if self._stuck is not None:
            return self._stuck & 0xFFFF  # a stuck sensor repeats itself exactly
        noise_c = self._noise_table[self._noise_bits(_NOISE_BITS)]
        return _reg(self._skin_sensor_clean_c(t) + noise_c)

    def _elapsed_tenths(self, t: float) -> int:
        end = t if self._on_until is None else self._on_until
        tenths = int((end - self._on_since) * 10.0 + 1e-6)  # whole tenths elapsed
        return tenths if tenths < 0xFFFF else 0xFFFF

    def _write(self, address: int, values: Sequence[int]) -> int:
        """Write holding registers from ``address``; 0 or a Modbus exception code.

        The whole write is checked before anything is applied (03 for a bad
        value, 04 for a refused ``output_enable = 1``), then applied in address
        order, so a refused write changes nothing.
        """
        t = self._t
        new_setpoint = self._setpoint
        enable: int | None = None
        for offset, value in enumerate(values):
            register = address + offset
            if register == HR_WAVELENGTH:
                if value not in WAVELENGTHS:
                    return ILLEGAL_VALUE
            elif register == HR_SETPOINT:
                if value > MAX_SETPOINT:
                    return ILLEGAL_VALUE
                new_setpoint = value
            elif register == HR_OUTPUT_ENABLE:
                if value > 1:
                    return ILLEGAL_VALUE
                enable = value
            elif register == HR_CLEAR_FAULTS and value > 1:
                return ILLEGAL_VALUE
        if enable == 1:
            if self._interlock_open or self._latched or new_setpoint == 0:
                return DEVICE_FAILURE
            hit = self._limit_fault(t)
            if hit is not None:
                self._latched |= hit[0]  # the firmware's own limit is reached right now
                return DEVICE_FAILURE
        for offset, value in enumerate(values):
            register = address + offset
            if register == HR_WAVELENGTH:
                if value != self._wavelength:
                    self._set_output(False, "wavelength", t)
                    self._wavelength = value
                    self._update_drive(t)
            elif register == HR_SETPOINT:
                if value != self._setpoint:
                    self._setpoint = value
                    self._update_drive(t)
            elif register == HR_OUTPUT_ENABLE:
                self._set_output(value == 1, "host", t)
            elif register == HR_CLEAR_FAULTS and value == 1:
                self._clear_faults(t)
        return 0

    def _clear_faults(self, t: float) -> None:
        """Clear the latched bits whose cause is gone."""
        keep = 0
        if self._panel_c >= PANEL_LIMIT_C:
            keep |= FB_PANEL
        if self._sensor_open or self._skin_sensor_clean_c(t) >= SKIN_LIMIT_C:
            keep |= FB_SKIN
        if self._interlock_open:
            keep |= FB_INTERLOCK
        if self._string_factor < 1.0:
            keep |= FB_LED_STRING  # the driver still senses an open string
        self._latched &= keep
