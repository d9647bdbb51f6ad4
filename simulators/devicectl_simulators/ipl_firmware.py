"""IPL flash-lamp firmware emulation: the device side of docs/protocols/ipl.md (IPLB/1).

Written from the protocol page only; it shares no codec with the host driver
(the host uses the ``cobs`` package, this module has its own COBS, below). An
:class:`IPLFirmware` has the shape of ``devicectl.transport.SimulatedDevice``
(``feed``/``take``/``pending``/``close``/``output_on``) and runs on the caller's
clock: every public call first brings the simulation up to ``clock.now()``.

What is guaranteed:

- Replies appear in the output buffer as soon as a complete frame (its 0x00
  delimiter) is fed (zero wire latency), one per valid frame, in order.
- Nothing is stepped: the crystal and lamp-block temperatures are exact
  exponentials between pulses, evaluated when needed, and every event happens at
  its exact time (the simulation jumps from event to event): the watchdog
  deadline (last valid frame + 0.25 s), boot end, charge complete, the 30 s
  charge-hold expiry, each pulse of a train and the train's end, and each
  fault's start and end. Events due at the same instant are handled in this
  order: fault edges, boot end, watchdog, charge complete, hold expiry, pulses.
  A frame arriving at time t sees every event due at or before t.
- Everything random (pulse-to-pulse light noise, garbling) comes from generators
  seeded by ``seed``, so the same seed and the same sequence of calls at the same
  clock times give the same bytes.

``output_on`` is **ARMED**: a flash is possible (a FIRE would be accepted
timing permitting) or a train is being delivered. Charged but not armed is not
"on": the trigger is dead until ARM.
"""

from __future__ import annotations

import math
import random
import struct
from binascii import crc_hqx
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devicectl_simulators.faults import FaultSpec
from devicectl_simulators.stream import SimulatedDevice, check_options

if TYPE_CHECKING:
    from devicectl.clock import Clock

# ---------------------------------------------------------------------- protocol

VERSION = 0x01
MIN_PACKET = 5  # version, seq, msg, CRC (2)
MAX_PACKET = 69  # ... plus a 64-byte payload
MAX_CHUNK = MAX_PACKET + 1  # COBS adds one byte to a packet shorter than 254
MAX_PAYLOAD = 64

HEARTBEAT = 0x01
IDENTIFY = 0x02
SET_PARAMS = 0x10
CHARGE = 0x11
ARM = 0x12
FIRE = 0x13
DISARM = 0x14
STATUS = 0x20
CLEAR = 0x21

ACK = 0x80
NAK = 0x81
IDENTITY = 0x82
STATUS_REPLY = 0xA0

NAK_BAD_PAYLOAD = 1
NAK_OUT_OF_RANGE = 2
NAK_NOT_CHARGED = 3
NAK_NOT_ARMED = 4
NAK_INTERVAL = 5
NAK_BLOCK_HOT = 6
NAK_FILTER = 7
NAK_UNKNOWN = 8
NAK_BUSY = 9
NAK_NO_CONTACT = 10
NAK_SENSOR = 11

CHARGED = 1 << 0
CHARGING = 1 << 1
ARMED = 1 << 2
FILTER_OK = 1 << 3
CONTACT_OK = 1 << 4
BLOCK_OVERTEMP = 1 << 5
WATCHDOG_TRIPPED = 1 << 6
POWER_ON_RESET = 1 << 7
SENSOR_FAULT = 1 << 8

STATUS_FORMAT = struct.Struct("<HBhhIHHBH")  # 18 bytes, see the STATUS_REPLY table
_STATUS_BODY = struct.Struct("<BHBhhIHHBH")  # the message id, then STATUS_FORMAT
OPEN_READING = 0x7FFF

# ---------------------------------------------------------------------- firmware

FILTERS_NM = (515, 560, 590, 640, 695)
HOLD_S = 30.0
MIN_INTERVAL_S = 1.0
CHARGE_BASE_S = 0.4
CHARGE_PER_FULL_S = 1.6  # at 25 J/cm2
FLUENCE_MIN = 500  # 0.01 J/cm2
FLUENCE_MAX = 2500
WIDTH_MIN = 10  # 0.1 ms
WIDTH_MAX = 1000
COUNT_MIN = 1
COUNT_MAX = 5
DELAY_MIN_MS = 5
DELAY_MAX_MS = 500

CRYSTAL_REST_C = 5.0
CRYSTAL_TAU_S = 4.0
CRYSTAL_RISE_C_PER_15 = 0.6  # per pulse at 15 J/cm2, proportional to fluence
CRYSTAL_ARM_MAX_TENTHS = 100  # ARM needs the crystal at or below 10.0 degC
BLOCK_AMBIENT_C = 25.0
BLOCK_TAU_S = 90.0
BLOCK_RISE_C_PER_15 = 0.35
BLOCK_STOP_TENTHS = 450  # 45.0 degC: BLOCK_OVERTEMP latches
BLOCK_CLEAR_TENTHS = 400  # CLEAR resets BLOCK_OVERTEMP only below 40.0 degC

LAMP_LIFE_SHOTS = 100_000
LAMP_END_FACTOR = 0.85
LIGHT_NOISE = 0.02  # relative sigma of each pulse's delivered fluence

IDN_VENDOR = "devicectl-sim"
IDN_MODEL = "IPL-25"
IDN_FIRMWARE = "1.0.0"

OPTIONS = ("filter", "shots")
DEFAULT_FILTER_NM = 560
MAX_SHOTS = 0xFFFFFFFF

SENSOR_CRYSTAL = 0  # fault parameter sensor=1
SENSOR_BLOCK = 1  # fault parameter sensor=2

_INF = math.inf
_CACHE_LIMIT = 4096
_CODE = tuple(bytes((length + 1,)) for length in range(254))  # COBS code byte of a part
_MIDDLES: dict[bytes, bytes] = {}  # COBS of the inner parts of short packets, memoised


# ---------------------------------------------------------------------- COBS


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (Cheshire & Baker): no zero byte in the result.

    A run of 254 non-zero bytes is one 0xFF block with no implied zero; a
    trailing 0xFF block is not followed by an empty ``01`` block (the usual
    convention, the one the ``cobs`` package follows).
    """
    size = len(data)
    if size < 254:  # no part can reach 254 bytes: one code byte per zero-separated part
        first = data.find(0)
        if first < 0:
            return _CODE[size] + data
        last = data.rfind(0)
        # COBS(a + 0 + b) == COBS(a) + COBS(b): the first and last parts carry the
        # sequence number and the CRC; the parts between them repeat tick after tick.
        middle = b""
        if first < last:
            inner = data[first + 1 : last]
            cached = _MIDDLES.get(inner)
            if cached is None:
                cached = b"".join([_CODE[len(part)] + part for part in inner.split(b"\x00")])
                if len(_MIDDLES) >= _CACHE_LIMIT:
                    _MIDDLES.clear()
                _MIDDLES[inner] = cached
            middle = cached
        return _CODE[first] + data[:first] + middle + _CODE[size - last - 1] + data[last + 1 :]
    parts = data.split(b"\x00")
    out = bytearray()
    last = len(parts) - 1
    for index, part in enumerate(parts):
        while len(part) >= 254:
            out.append(0xFF)
            out += part[:254]
            part = part[254:]
            if not part and index == last:
                return bytes(out)
        out.append(len(part) + 1)
        out += part
    return bytes(out)


def cobs_decode(chunk: bytes) -> bytes:
    """Decode one COBS chunk (without its 0x00 delimiter); ValueError if malformed."""
    out = bytearray()
    size = len(chunk)
    i = 0
    while i < size:
        code = chunk[i]
        if code == 0:
            raise ValueError("zero byte inside a COBS chunk")
        end = i + code
        if end > size:
            raise ValueError("COBS code points past the end of the chunk")
        block = chunk[i + 1 : end]
        if 0 in block:
            raise ValueError("zero byte inside a COBS chunk")
        out += block
        i = end
        if code != 0xFF and i < size:
            out.append(0)
    return bytes(out)


def _parse_chunk(chunk: bytes) -> tuple[int, int, bytes] | None:
    """``(seq, msg, payload)`` of a valid chunk, None if it is to be discarded."""
    if not chunk or len(chunk) > MAX_CHUNK:
        return None
    try:
        packet = cobs_decode(chunk)
    except ValueError:
        return None
    if not MIN_PACKET <= len(packet) <= MAX_PACKET or packet[0] != VERSION:
        return None
    if crc_hqx(packet[:-2], 0xFFFF) != (packet[-2] << 8 | packet[-1]):
        return None
    return packet[1], packet[2], packet[3:-2]


def _wire(seq: int, body: bytes) -> bytes:
    """The encoded frame of a reply: version, seq, ``body`` (msg + payload), CRC, 0x00."""
    packet = bytes((VERSION, seq)) + body
    return cobs_encode(packet + crc_hqx(packet, 0xFFFF).to_bytes(2, "big")) + b"\x00"


def tenths(value_c: float) -> int:
    """``value_c`` in whole tenths of a degree, halves rounded up."""
    return math.floor(value_c * 10.0 + 0.5)


_CRYSTAL_REST_TENTHS = tenths(CRYSTAL_REST_C)
_BLOCK_AMBIENT_TENTHS = tenths(BLOCK_AMBIENT_C)
_exp = math.exp


# ---------------------------------------------------------------------- state


@dataclass(frozen=True)
class PulseParams:
    """Parameters accepted by SET_PARAMS, in wire units."""

    filter_nm: int
    fluence: int  # 0.01 J/cm2
    width: int  # 0.1 ms
    count: int
    delay_ms: int

    @property
    def fluence_j_cm2(self) -> float:
        return self.fluence / 100.0

    @property
    def charge_time_s(self) -> float:
        return CHARGE_BASE_S + CHARGE_PER_FULL_S * self.fluence_j_cm2 / 25.0

    @property
    def width_s(self) -> float:
        return self.width / 10_000.0

    @property
    def period_s(self) -> float:
        """From the start of one pulse to the start of the next."""
        return self.width_s + self.delay_ms / 1000.0

    @property
    def train_s(self) -> float:
        """From the start of the first pulse to the end of the last."""
        return (self.count - 1) * self.period_s + self.width_s


def _check_params(payload: bytes, detected_nm: int) -> PulseParams | int:
    """Validated parameters, or the NAK code (7 filter, 2 out of range)."""
    filter_nm, fluence, width, count, delay_ms = struct.unpack("<HHHBH", payload)
    if filter_nm not in FILTERS_NM or filter_nm != detected_nm:
        return NAK_FILTER
    if not FLUENCE_MIN <= fluence <= FLUENCE_MAX:
        return NAK_OUT_OF_RANGE
    if not WIDTH_MIN <= width <= WIDTH_MAX:
        return NAK_OUT_OF_RANGE
    if not COUNT_MIN <= count <= COUNT_MAX:
        return NAK_OUT_OF_RANGE
    if count == 1:
        if delay_ms != 0:
            return NAK_OUT_OF_RANGE
    elif not DELAY_MIN_MS <= delay_ms <= DELAY_MAX_MS:
        return NAK_OUT_OF_RANGE
    return PulseParams(filter_nm, fluence, width, count, delay_ms)


def _whole_option(name: str, value: object, low: int, high: int) -> int:
    try:
        number = int(str(value), 10)
    except ValueError:
        raise ValueError(f"option {name}={value!r} is not a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"option {name}={value!r} is out of range ({low}-{high})")
    return number


def lamp_factor(shots: int) -> float:
    """Lamp output factor: 1.0 new, falling linearly to 0.85 at 100,000 shots, then 0.85."""
    used = min(shots, LAMP_LIFE_SHOTS) / LAMP_LIFE_SHOTS
    return 1.0 - (1.0 - LAMP_END_FACTOR) * used


def lamp_life_pct(shots: int) -> int:
    """Lamp life remaining, whole percent rounded down (0 at and after 100,000 shots)."""
    return max(0, (LAMP_LIFE_SHOTS - shots) * 100 // LAMP_LIFE_SHOTS)


class IPLFirmware(SimulatedDevice):
    """Simulated IPL handpiece: protocol, charge/arm/fire, thermal models, faults.

    Options: ``filter`` (nm of the cut-off filter in the handpiece, one of
    515/560/590/640/695, or 0 for none; default 560) and ``shots`` (the lamp's
    shot counter at start, default 0).

    Test hooks (not on the wire): :attr:`output_on` (= armed), :attr:`armed`,
    :attr:`charged`, :attr:`flashes`, :attr:`output_log`,
    :attr:`crystal_temp_c`, :attr:`block_temp_c`, :attr:`shots`,
    :meth:`insert_filter` and :meth:`advance`.
    """

    device_name = "ipl"
    output_reasons = (
        "host",
        "fired",
        "params",
        "hold",
        "watchdog",
        "overtemp",
        "contact",
        "sensor",
        "reset",
        "filter",
    )

    def __init__(
        self,
        clock: Clock,
        seed: int = 0,
        faults: Sequence[str] = (),
        **options: object,
    ) -> None:
        check_options("ipl", options, OPTIONS)
        filter_nm = DEFAULT_FILTER_NM
        if "filter" in options:
            filter_nm = _whole_option("filter", options["filter"], 0, 65535)
            if filter_nm != 0 and filter_nm not in FILTERS_NM:
                raise ValueError(
                    f"option filter={options['filter']!r} is not a filter "
                    f"(0 for none, or one of {', '.join(map(str, FILTERS_NM))})"
                )
        shots = 0
        if "shots" in options:
            shots = _whole_option("shots", options["shots"], 0, MAX_SHOTS)
        super().__init__(clock, seed, faults)
        self._light_rng = random.Random(f"ipl-light:{seed}")
        self._identity = self._identity_text(seed).encode("ascii")

        now = self._t
        self._flashes: list[tuple[float, float, float]] = []

        # The handpiece (survives reboots).
        self._filter_nm = filter_nm
        self._shots = shots
        self._life_pct = lamp_life_pct(shots)
        self._crystal_c = CRYSTAL_REST_C  # value at _crystal_t
        self._crystal_t = now
        self._block_c = BLOCK_AMBIENT_C
        self._block_t = now

        # Firmware state (set again on every reboot).
        self._params: PulseParams | None = None
        self._charge_start_s = _INF
        self._charge_end_s = _INF  # charging completes (CHARGING while finite)
        self._charged = False
        self._hold_end_s = _INF  # a held charge dumps itself
        self._armed = False
        self._train: PulseParams | None = None  # the train being fired
        self._train_start_s = _INF
        self._train_next_s = _INF  # next pulse, or the train's end after the last
        self._train_fired = 0  # pulses delivered so far
        self._train_sum = 0.0  # their delivered fluences
        self._next_fire_s = -_INF  # 1 s after the start of the last train
        self._last_fluence = 0  # 0.01 J/cm2
        self._latched = 0
        self._frame_errors = 0

        # The combined effect of the active faults (see _apply_faults).
        self._stuck_value_c: dict[int, float] = {}
        self._open = [False, False]  # crystal, block thermistor
        self._stuck: list[float | None] = [None, None]
        self._sensor_faults = False  # a thermistor is open or stuck
        self._contact_lost = False
        self._misfire: float | None = None

        self._decoded: dict[bytes, tuple[int, int, bytes]] = {}
        self._replies: dict[tuple[int, bytes], bytes] = {}
        self._handlers: dict[int, tuple[int, Callable[[int, bytes], bytes]]] = {
            HEARTBEAT: (0, self._cmd_heartbeat),
            IDENTIFY: (0, self._cmd_identify),
            SET_PARAMS: (9, self._cmd_set_params),
            CHARGE: (0, self._cmd_charge),
            ARM: (0, self._cmd_arm),
            FIRE: (0, self._cmd_fire),
            DISARM: (0, self._cmd_disarm),
            STATUS: (0, self._cmd_status),
            CLEAR: (0, self._cmd_clear),
        }
        self._power_on()

    # ------------------------------------------------------------------ contract

    def feed(self, data: bytes) -> None:
        """Bytes from the host, arriving at ``clock.now()``; replies are queued at once."""
        data = self._arrival(data)
        if not data:
            return
        buf = self._inbuf
        if not buf and not self._discarding and data.find(b"\x00") == len(data) - 1:
            # the usual case: exactly one whole frame
            self._handle_chunk(data[:-1] if type(data) is bytes else bytes(data[:-1]))
            return
        buf += data
        while True:
            end = buf.find(b"\x00")
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
                self._frame_errors = (self._frame_errors + 1) & 0xFFFF
            else:
                self._handle_chunk(bytes(buf[:end]))
            del buf[: end + 1]
        if len(buf) > MAX_CHUNK:  # can no longer be a valid frame: drop to the next 0x00
            self._discarding = True
            buf.clear()

    @property
    def output_on(self) -> bool:
        """ARMED at ``clock.now()``: a flash is possible, or a train is being fired."""
        self.advance()
        return self._armed

    # ------------------------------------------------------------------ test hooks

    @property
    def armed(self) -> bool:
        """The ARMED flag now (the same as :attr:`output_on`)."""
        self.advance()
        return self._armed

    @property
    def charged(self) -> bool:
        """The CHARGED flag now: a full charge is held."""
        self.advance()
        return self._charged

    @property
    def crystal_temp_c(self) -> float:
        """True crystal temperature now (what an unfaulted thermistor would read, unrounded)."""
        self.advance()
        return self._crystal_at(self._t)

    @property
    def block_temp_c(self) -> float:
        """True lamp-block temperature now (unrounded, whatever its thermistor says)."""
        self.advance()
        return self._block_at(self._t)

    @property
    def shots(self) -> int:
        """The lamp's shot counter now."""
        self.advance()
        return self._shots

    @property
    def flashes(self) -> list[tuple[float, float, float]]:
        """Every train fired: (start time, set fluence, mean delivered fluence), J/cm2.

        A train is listed when it ends (or is cut short: then the mean is over
        the pulses delivered).
        """
        self.advance()
        return self._flashes

    def insert_filter(self, filter_nm: int) -> None:
        """The technician swaps the handpiece's cut-off filter (0 = takes it out).

        Not on the wire: it is what a hand does. A change disarms and dumps
        (reason ``filter``); parameters set for the old filter no longer match
        (CHARGE gets NAK 7 until SET_PARAMS names the new one).
        """
        if filter_nm != 0 and filter_nm not in FILTERS_NM:
            raise ValueError(f"{filter_nm} nm is not a filter")
        self.advance()
        if filter_nm != self._filter_nm:
            self._filter_nm = filter_nm
            self._dump(self._t, "filter")
            self._reschedule()

    # ------------------------------------------------------------------ time

    def _next_physics_event_s(self) -> float:
        return min(self._charge_end_s, self._hold_end_s, self._train_next_s)

    def _on_watchdog(self, t: float) -> None:
        self._latched |= WATCHDOG_TRIPPED
        self._dump(t, "watchdog")

    def _on_physics_events(self, t: float) -> None:
        """Charge complete, hold expiry, then a pulse or the train's end."""
        if self._charge_end_s <= t:
            self._charge_end_s = _INF
            self._charged = True
            self._hold_end_s = t + HOLD_S
        if self._hold_end_s <= t:
            self._dump(t, "hold")
        if self._train_next_s <= t:
            train = self._train
            assert train is not None
            if self._train_fired < train.count:
                self._pulse(t)
            else:
                self._end_train(t, "fired")

    # ------------------------------------------------------------------ thermal

    def _crystal_at(self, t: float) -> float:
        excess = self._crystal_c - CRYSTAL_REST_C
        if excess == 0.0:
            return CRYSTAL_REST_C
        return CRYSTAL_REST_C + excess * math.exp((self._crystal_t - t) / CRYSTAL_TAU_S)

    def _block_at(self, t: float) -> float:
        excess = self._block_c - BLOCK_AMBIENT_C
        if excess == 0.0:
            return BLOCK_AMBIENT_C
        return BLOCK_AMBIENT_C + excess * math.exp((self._block_t - t) / BLOCK_TAU_S)

    def _reading_c(self, sensor: int, t: float) -> float | None:
        """What the firmware reads from a thermistor (None if open, frozen if stuck)."""
        if self._open[sensor]:
            return None
        frozen = self._stuck[sensor]
        if frozen is not None:
            return frozen
        return self._crystal_at(t) if sensor == SENSOR_CRYSTAL else self._block_at(t)

    def _reading_tenths(self, sensor: int, t: float) -> int:
        value = self._reading_c(sensor, t)
        if value is None:
            return OPEN_READING
        return max(-32768, min(32766, tenths(value)))

    def _check_block(self, t: float) -> None:
        """Latch BLOCK_OVERTEMP (disarm, dump) if the block thermistor reads >= 45.0."""
        if self._latched & BLOCK_OVERTEMP:
            return
        value = self._reading_c(SENSOR_BLOCK, t)
        if value is not None and tenths(value) >= BLOCK_STOP_TENTHS:
            self._latched |= BLOCK_OVERTEMP
            self._dump(t, "overtemp")

    # ------------------------------------------------------------------ charge, arm, fire

    def _set_armed(self, armed: bool, reason: str, t: float) -> None:
        if armed != self._armed:
            self._armed = armed
            self._output_log.append((t, armed, reason))

    def _disarm(self, t: float, reason: str) -> None:
        """Disarm; a train being fired stops (its remaining pulses are not delivered)."""
        if self._train is not None:
            self._end_train(t, reason)
        else:
            self._set_armed(False, reason, t)

    def _dump(self, t: float, reason: str) -> None:
        """Disarm, stop charging and dump the capacitor."""
        self._disarm(t, reason)
        self._charged = False
        self._charge_start_s = self._charge_end_s = self._hold_end_s = _INF

    def _pulse(self, t: float) -> None:
        train = self._train
        assert train is not None
        fluence = train.fluence_j_cm2
        factor = self._misfire if self._misfire is not None else lamp_factor(self._shots)
        delivered = fluence * factor * (1.0 + self._light_rng.gauss(0.0, LIGHT_NOISE))
        self._train_sum += max(0.0, delivered)
        self._train_fired += 1
        self._shots = min(self._shots + 1, MAX_SHOTS)
        self._life_pct = lamp_life_pct(self._shots)
        self._crystal_c = self._crystal_at(t) + CRYSTAL_RISE_C_PER_15 * fluence / 15.0
        self._crystal_t = t
        self._block_c = self._block_at(t) + BLOCK_RISE_C_PER_15 * fluence / 15.0
        self._block_t = t
        if self._train_fired < train.count:
            self._train_next_s = self._train_start_s + self._train_fired * train.period_s
        else:
            self._train_next_s = self._train_start_s + train.train_s
        self._check_block(t)  # may cut the train short

    def _end_train(self, t: float, reason: str) -> None:
        train = self._train
        assert train is not None
        mean = self._train_sum / self._train_fired
        self._flashes.append((self._train_start_s, train.fluence_j_cm2, mean))
        self._last_fluence = min(0xFFFF, math.floor(mean * 100.0 + 0.5))
        self._train = None
        self._train_next_s = _INF
        self._train_fired = 0
        self._train_sum = 0.0
        self._charged = False
        self._set_armed(False, reason, t)

    def _on_reboot(self, t: float) -> None:
        self._dump(t, "reset")
        self._params = None
        self._next_fire_s = -_INF
        self._last_fluence = 0
        self._latched = POWER_ON_RESET
        self._frame_errors = 0

    # ------------------------------------------------------------------ faults

    def _on_fault_start(self, index: int, spec: FaultSpec, t: float) -> None:
        if spec.kind == "sensor_stuck":
            sensor = int(spec.param("sensor")) - 1
            value = self._reading_c(sensor, t)
            if value is None:  # stuck while open: it will read the model when it closes
                value = self._crystal_at(t) if sensor == SENSOR_CRYSTAL else self._block_at(t)
            self._stuck_value_c[index] = value

    def _apply_faults(self, t: float) -> None:
        is_open = [False, False]
        stuck: list[float | None] = [None, None]
        contact_lost = False
        misfire: float | None = None
        for index in self._active:  # in start order
            spec = self._specs[index]
            kind = spec.kind
            if kind == "sensor_open":
                is_open[int(spec.param("sensor")) - 1] = True
            elif kind == "sensor_stuck":
                i = int(spec.param("sensor")) - 1
                if stuck[i] is None:  # the earliest active one holds
                    stuck[i] = self._stuck_value_c[index]
            elif kind == "contact_loss":
                contact_lost = True
            elif kind == "misfire":
                misfire = spec.param("factor")  # the latest started wins
        newly_open = any(is_open[i] and not self._open[i] for i in (0, 1))
        newly_lost = contact_lost and not self._contact_lost
        self._open, self._stuck = is_open, stuck
        self._sensor_faults = any(is_open) or stuck != [None, None]
        self._contact_lost = contact_lost
        self._misfire = misfire
        if newly_open:
            self._dump(t, "sensor")
        if newly_lost:
            self._disarm(t, "contact")
        self._check_block(t)  # a block thermistor that stops being stuck may read hot

    # ------------------------------------------------------------------ framing

    def _handle_chunk(self, chunk: bytes) -> None:
        decoded = self._decoded.get(chunk)
        if decoded is None:
            decoded = _parse_chunk(chunk)
            if decoded is None:
                self._frame_errors = (self._frame_errors + 1) & 0xFFFF
                return
            if len(self._decoded) >= _CACHE_LIMIT:
                self._decoded.clear()
            self._decoded[chunk] = decoded
        seq, msg, payload = decoded
        self._feed_watchdog()  # a valid frame, NAKed or not
        if msg == STATUS and not payload:  # the every-tick query
            body = self._cmd_status(msg, payload)
        elif (entry := self._handlers.get(msg)) is None:
            body = bytes((NAK, msg, NAK_UNKNOWN))
        elif len(payload) != entry[0]:
            body = bytes((NAK, msg, NAK_BAD_PAYLOAD))
        else:
            body = entry[1](msg, payload)
        key = (seq, body)
        out = self._replies.get(key)
        if out is None:
            out = _wire(seq, body)
            if len(self._replies) >= _CACHE_LIMIT:
                self._replies.clear()
            self._replies[key] = out
        self._send(out)

    # ------------------------------------------------------------------ commands

    @staticmethod
    def _identity_text(seed: int) -> str:
        head, tail = f"{IDN_VENDOR},{IDN_MODEL},SIM", f",{IDN_FIRMWARE}"
        serial = str(seed)[: MAX_PAYLOAD - len(head) - len(tail)]
        return f"{head}{serial}{tail}"

    def _busy(self) -> bool:
        return self._charge_end_s != _INF or self._train is not None

    def _cmd_heartbeat(self, msg: int, payload: bytes) -> bytes:
        return bytes((ACK, msg))

    def _cmd_identify(self, msg: int, payload: bytes) -> bytes:
        return bytes((IDENTITY,)) + self._identity

    def _cmd_set_params(self, msg: int, payload: bytes) -> bytes:
        if self._busy():
            return bytes((NAK, msg, NAK_BUSY))
        checked = _check_params(payload, self._filter_nm)
        if isinstance(checked, int):
            return bytes((NAK, msg, checked))
        self._params = checked
        self._dump(self._t, "params")
        self._reschedule()
        return bytes((ACK, msg))

    def _cmd_charge(self, msg: int, payload: bytes) -> bytes:
        if self._busy():
            return bytes((NAK, msg, NAK_BUSY))
        if self._latched & BLOCK_OVERTEMP:
            return bytes((NAK, msg, NAK_BLOCK_HOT))
        params = self._params
        if self._filter_nm not in FILTERS_NM or (
            params is not None and params.filter_nm != self._filter_nm
        ):
            return bytes((NAK, msg, NAK_FILTER))
        if params is None:
            return bytes((NAK, msg, NAK_OUT_OF_RANGE))
        if not self._charged:
            t = self._t
            self._charge_start_s = t
            self._charge_end_s = t + params.charge_time_s
            self._reschedule()
        return bytes((ACK, msg))

    def _cmd_arm(self, msg: int, payload: bytes) -> bytes:
        if self._busy():
            return bytes((NAK, msg, NAK_BUSY))
        if self._contact_lost:
            return bytes((NAK, msg, NAK_NO_CONTACT))
        if self._open[0] or self._open[1]:
            return bytes((NAK, msg, NAK_SENSOR))
        if not self._charged:
            return bytes((NAK, msg, NAK_NOT_CHARGED))
        if self._reading_tenths(SENSOR_CRYSTAL, self._t) > CRYSTAL_ARM_MAX_TENTHS:
            return bytes((NAK, msg, NAK_OUT_OF_RANGE))
        self._set_armed(True, "host", self._t)
        return bytes((ACK, msg))

    def _cmd_fire(self, msg: int, payload: bytes) -> bytes:
        if self._busy():
            return bytes((NAK, msg, NAK_BUSY))
        if self._contact_lost:
            return bytes((NAK, msg, NAK_NO_CONTACT))
        t = self._t
        if self._latched & BLOCK_OVERTEMP or (
            self._reading_tenths(SENSOR_BLOCK, t) >= BLOCK_STOP_TENTHS
            and not self._open[SENSOR_BLOCK]
        ):
            return bytes((NAK, msg, NAK_BLOCK_HOT))
        if not self._charged:
            return bytes((NAK, msg, NAK_NOT_CHARGED))
        if not self._armed:
            return bytes((NAK, msg, NAK_NOT_ARMED))
        if t < self._next_fire_s:
            return bytes((NAK, msg, NAK_INTERVAL))
        params = self._params
        assert params is not None  # charged implies parameters
        self._charged = False  # the capacitor is discharging into the lamp
        self._hold_end_s = _INF
        self._train = params
        self._train_start_s = t
        self._train_fired = 0
        self._train_sum = 0.0
        self._next_fire_s = t + MIN_INTERVAL_S
        self._pulse(t)  # the first pulse is now
        self._reschedule()
        return bytes((ACK, msg))

    def _cmd_disarm(self, msg: int, payload: bytes) -> bytes:
        self._dump(self._t, "host")
        self._reschedule()
        return bytes((ACK, msg))

    def _cmd_clear(self, msg: int, payload: bytes) -> bytes:
        latched = self._latched & ~(WATCHDOG_TRIPPED | POWER_ON_RESET)
        if latched & BLOCK_OVERTEMP:
            value = self._reading_c(SENSOR_BLOCK, self._t)
            if value is not None and tenths(value) < BLOCK_CLEAR_TENTHS:
                latched &= ~BLOCK_OVERTEMP
        self._latched = latched
        return bytes((ACK, msg))

    def _cmd_status(self, msg: int, payload: bytes) -> bytes:
        # The control loop's every-tick query: kept to plain arithmetic.
        t = self._t
        flags = self._latched
        charge = 0
        if self._charged:
            flags |= CHARGED
            charge = 100
        elif self._charge_end_s != _INF:
            flags |= CHARGING
            start = self._charge_start_s
            charge = min(99, int(100.0 * (t - start) / (self._charge_end_s - start)))
        elif self._train is not None:
            train = self._train
            charge = 100 * (train.count - self._train_fired) // train.count
        if self._armed:
            flags |= ARMED
        if self._filter_nm:
            flags |= FILTER_OK
        if not self._contact_lost:
            flags |= CONTACT_OK
        if self._sensor_faults:
            if self._open[0] or self._open[1]:
                flags |= SENSOR_FAULT
            crystal = self._reading_tenths(SENSOR_CRYSTAL, t)
            block = self._reading_tenths(SENSOR_BLOCK, t)
        else:  # _crystal_at and _block_at inlined; both are well above zero
            excess = self._crystal_c - CRYSTAL_REST_C
            crystal = _CRYSTAL_REST_TENTHS
            if excess:
                value = CRYSTAL_REST_C + excess * _exp((self._crystal_t - t) / CRYSTAL_TAU_S)
                crystal = int(value * 10.0 + 0.5)
            excess = self._block_c - BLOCK_AMBIENT_C
            block = _BLOCK_AMBIENT_TENTHS
            if excess:
                value = BLOCK_AMBIENT_C + excess * _exp((self._block_t - t) / BLOCK_TAU_S)
                block = int(value * 10.0 + 0.5)
        return _STATUS_BODY.pack(
            STATUS_REPLY,
            flags,
            charge,
            crystal,
            block,
            self._shots,
            self._last_fluence,
            self._filter_nm,
            self._life_pct,
            self._frame_errors,
        )
