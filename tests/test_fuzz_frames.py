"""Fuzz every frame parser, device side and host side, with random and mutated frames.

Device side (the three simulators on a :class:`SimClock`): garbage and damaged
command frames never raise, never turn an output on, get no reply and change no
state (apart from the frame-error bookkeeping each protocol documents); a valid
command afterwards is answered exactly as a twin simulator that saw no garbage
answers it (the stream resynchronises).

Host side (the three drivers' ``read()`` over a fake port, and the pure codec
parsers): whatever bytes arrive, only :class:`~devicectl.errors.DeviceError`
subclasses escape; never ValueError, IndexError, struct.error,
UnicodeDecodeError or a pymodbus exception.

``tests/test_rf_codec.py`` and ``tests/test_ipl_codec.py`` already cover
random bytes and single-byte corruption of the codecs; this file adds
multi-step mutations (flip, insert, delete, truncate, splice), the simulators'
stream parsers, and the drivers end to end. Frames are built here with
``binascii``/``cobs``, not with the code under test (except IPL commands, built
with ``devicectl_drivers.ipl_codec.encode_command``, which ``test_ipl_codec.py`` checks
against a reference).
"""

from __future__ import annotations

import math
import re
import struct
from binascii import crc_hqx
from collections import deque
from collections.abc import Callable

import pytest
from cobs import cobs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from devicectl.clock import SimClock
from devicectl.devices import IPLReading, LEDReading, RFReading
from devicectl.errors import CRCError, DeviceError, ProtocolError
from devicectl_drivers import ipl_codec, rf_codec
from devicectl_drivers.ipl_cobs import IPLCobsDriver
from devicectl_drivers.led_modbus import LEDModbusDriver
from devicectl_drivers.rf_scpi import RFScpiDriver
from devicectl_simulators import ipl_firmware as ipl_sim
from devicectl_simulators.ipl_firmware import IPLFirmware
from devicectl_simulators.led_firmware import LEDFirmware
from devicectl_simulators.rf_firmware import RFFirmware

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
BOOTED_S = 1.5  # every simulator is deaf for 1 s after power-on


# ----------------------------------------------------------------- mutation


@st.composite
def mutated(draw: st.DrawFn, frame: bytes, max_ops: int = 4) -> bytes:
    """``frame`` after 1..max_ops random edits: flip, insert, delete, truncate, duplicate."""
    out = bytearray(frame)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "dup")))
        n = len(out)
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            out[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out.insert(draw(st.integers(0, n)), draw(st.integers(0, 255)))
        elif op == "delete" and n:
            del out[draw(st.integers(0, n - 1))]
        elif op == "truncate" and n:
            del out[draw(st.integers(0, n - 1)) :]
        elif op == "dup" and n:
            i = draw(st.integers(0, n - 1))
            j = draw(st.integers(i, n))
            out[j:j] = out[i:j]
    return bytes(out)


def garbage_or_mutants(frames: list[bytes], max_pieces: int = 4) -> st.SearchStrategy[bytes]:
    """A byte stream of random pieces and mutated copies of ``frames``, concatenated."""
    piece = st.one_of(
        st.binary(max_size=80),
        st.sampled_from(frames).flatmap(mutated),
    )
    return st.lists(piece, min_size=1, max_size=max_pieces).map(b"".join)


# ----------------------------------------------------------------- RF helpers


def rf_line(seq: int, body: bytes) -> bytes:
    head = b"%d %s" % (seq, body)
    return head + b"*%04X\n" % crc_hqx(head, 0xFFFF)


_RF_CMD = re.compile(rb"(0|[1-9][0-9]{0,4}) ([ -~]+)\*([0-9A-F]{4})")


def rf_may_hold_a_valid_line(stream: bytes) -> bool:
    """Conservative oracle: some LF-terminated line of ``stream`` is a CRC-valid command."""
    for line in stream.split(b"\n")[:-1]:
        match = _RF_CMD.fullmatch(line)
        if match and int(match[3], 16) == crc_hqx(line[:-5], 0xFFFF):
            return True
    return False


RF_COMMANDS = [
    rf_line(7, b"OUTP ON"),
    rf_line(8, b"SOUR:POW 55.0"),
    rf_line(9, b"*CLS"),
    rf_line(10, b"SYST:HEART"),
    rf_line(11, b"MEAS:ALL?"),
    rf_line(65535, b"OUTP ON"),
]


def rf_booted(clock: SimClock) -> RFFirmware:
    """An RF simulator after boot, latch cleared and 10 W set: OUTP ON would switch on."""
    sim = RFFirmware(clock, seed=3)
    clock.sleep(BOOTED_S)
    sim.feed(rf_line(1, b"*CLS"))
    sim.feed(rf_line(2, b"SOUR:POW 10.0"))
    assert sim.take() == rf_line(1, b"OK") + rf_line(2, b"OK")
    return sim


def rf_state(sim: RFFirmware) -> bytes:
    """Replies to the state queries (no noise drawn): setpoint, output, status bits."""
    for seq, body in ((100, b"SOUR:POW?"), (101, b"OUTP?"), (102, b"SYST:HEART")):
        sim.feed(rf_line(seq, body))
    return sim.take()


def test_rf_prepared_simulator_would_switch_on_for_a_valid_outp_on() -> None:
    """The fuzz below is meaningful: an undamaged OUTP ON does turn the output on."""
    clock = SimClock()
    sim = rf_booted(clock)
    sim.feed(rf_line(7, b"OUTP ON"))
    assert sim.take() == rf_line(7, b"OK")
    assert sim.output_on


@FUZZ
@given(stream=garbage_or_mutants(RF_COMMANDS))
def test_rf_simulator_ignores_garbage_and_damaged_frames(stream: bytes) -> None:
    assume(not rf_may_hold_a_valid_line(stream + b"\n"))
    clock, twin_clock = SimClock(), SimClock()
    sim, twin = rf_booted(clock), rf_booted(twin_clock)
    log_before = list(sim.output_log)

    sim.feed(stream)  # must not raise
    assert sim.take() == b""  # no reply to anything that fails framing or CRC
    assert not sim.output_on
    assert sim.output_log == log_before

    sim.feed(b"\n")  # end whatever partial line the garbage left
    sim.take()
    # Resynchronised, and nothing changed: same answers as the twin that saw no garbage.
    # (STAT? is not compared: bit 6 says the error queue holds the -301 frame errors.)
    assert rf_state(sim) == rf_state(twin)
    sim.feed(rf_line(200, b"STAT?"))
    reply = rf_codec.decode_reply(sim.take())
    assert reply.seq == 200
    assert rf_codec.parse_status(reply.payload) & 0x01 == 0  # output bit off


@FUZZ
@given(chunks=st.lists(garbage_or_mutants(RF_COMMANDS, 2), min_size=1, max_size=6))
def test_rf_simulator_survives_garbage_split_into_arbitrary_feeds(chunks: list[bytes]) -> None:
    assume(not rf_may_hold_a_valid_line(b"".join(chunks) + b"\n"))
    clock = SimClock()
    sim = rf_booted(clock)
    sim.take()
    for chunk in chunks:
        sim.feed(chunk)
    assert sim.take() == b""
    assert not sim.output_on
    sim.feed(b"\n" + rf_line(42, b"SYST:HEART"))
    assert sim.take() == rf_line(42, b"OK")


# ----------------------------------------------------------------- IPL helpers


def ipl_cmd(seq: int, msg: int, payload: bytes = b"") -> bytes:
    return ipl_codec.encode_command(seq, msg, payload)


def _ipl_packet_ok(packet: bytes) -> bool:
    return (
        ipl_sim.MIN_PACKET <= len(packet) <= ipl_sim.MAX_PACKET
        and packet[0] == ipl_sim.VERSION
        and crc_hqx(packet, 0xFFFF) == 0
    )


def ipl_may_hold_a_valid_chunk(stream: bytes) -> bool:
    """Conservative oracle: some 0x00-terminated chunk decodes (either COBS) to a good packet."""
    for chunk in stream.split(b"\x00")[:-1]:
        if not chunk or len(chunk) > ipl_sim.MAX_CHUNK:
            continue
        for decode in (cobs.decode, ipl_sim.cobs_decode):
            try:
                packet = decode(chunk)
            except (cobs.DecodeError, ValueError):
                continue
            if _ipl_packet_ok(packet):
                return True
    return False


IPL_COMMANDS = [
    ipl_cmd(7, ipl_sim.CHARGE),
    ipl_cmd(8, ipl_sim.ARM),
    ipl_cmd(9, ipl_sim.FIRE),
    ipl_cmd(10, ipl_sim.HEARTBEAT),
    ipl_cmd(11, ipl_sim.STATUS),
    ipl_cmd(12, ipl_sim.CLEAR),
    ipl_cmd(0, ipl_sim.SET_PARAMS, bytes(range(1, 9))),
]


def ipl_booted(clock: SimClock) -> IPLFirmware:
    sim = IPLFirmware(clock, seed=5)
    clock.sleep(BOOTED_S)
    return sim


def ipl_status(sim: IPLFirmware, seq: int) -> ipl_codec.StatusReply:
    sim.feed(ipl_cmd(seq, ipl_sim.STATUS))
    out = sim.take()
    assert out.endswith(b"\x00") and out.count(b"\x00") == 1
    frame = ipl_codec.decode_frame(out[:-1])
    payload = ipl_codec.expect_reply(frame, seq, ipl_sim.STATUS, ipl_sim.STATUS_REPLY, "STATUS")
    return ipl_codec.parse_status_reply(payload)


@FUZZ
@given(stream=garbage_or_mutants(IPL_COMMANDS))
def test_ipl_simulator_ignores_garbage_and_damaged_frames(stream: bytes) -> None:
    assume(not ipl_may_hold_a_valid_chunk(stream + b"\x00"))
    clock, twin_clock = SimClock(), SimClock()
    sim, twin = ipl_booted(clock), ipl_booted(twin_clock)
    log_before = list(sim.output_log)

    sim.feed(stream)  # must not raise
    assert sim.take() == b""
    assert not sim.output_on
    assert not sim.armed and not sim.charged
    assert sim.output_log == log_before
    assert sim.shots == 0

    sim.feed(b"\x00")  # end whatever partial chunk the garbage left
    assert sim.take() == b""
    sim.feed(ipl_cmd(42, ipl_sim.HEARTBEAT))
    assert sim.take() == twin_heartbeat(twin)
    got, want = ipl_status(sim, 43), ipl_status(twin, 43)
    # Only the documented frame-error counter may differ.
    assert got._replace(frame_errors=0) == want._replace(frame_errors=0)
    assert got.frame_errors >= want.frame_errors


def twin_heartbeat(twin: IPLFirmware) -> bytes:
    twin.feed(ipl_cmd(42, ipl_sim.HEARTBEAT))
    return twin.take()


# ----------------------------------------------------------------- LED helpers


def _modbus_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_MODBUS_TABLE = _modbus_table()


def crc_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _MODBUS_TABLE[(crc ^ byte) & 0xFF]
    return crc


def adu(body: bytes) -> bytes:
    return body + crc_modbus(body).to_bytes(2, "little")


def led_write(register: int, value: int, unit: int = 1) -> bytes:
    return adu(struct.pack(">BBHH", unit, 0x06, register, value))


def led_read(function: int, address: int, count: int, unit: int = 1) -> bytes:
    return adu(struct.pack(">BBHH", unit, function, address, count))


def led_valid_windows(stream: bytes) -> set[tuple[int, int]]:
    """Every (start, length) window of 4..264 bytes whose Modbus CRC is right.

    A superset of what the simulator can take as a frame (from any unit).
    """
    found = set()
    n = len(stream)
    for i in range(n):
        crc = 0xFFFF
        for k in range(min(n - i, 264) - 2):
            crc = (crc >> 8) ^ _MODBUS_TABLE[(crc ^ stream[i + k]) & 0xFF]
            if k >= 1 and stream[i + k + 1] == crc & 0xFF and stream[i + k + 2] == crc >> 8:
                found.add((i, k + 3))
    return found


LED_COMMANDS = [
    led_write(2, 1),  # output enable
    led_write(1, 1100),  # setpoint
    led_write(0, 830),  # wavelength
    led_write(4, 1),  # clear faults
    led_write(3, 1),  # heartbeat
    led_read(0x04, 0, 8),
    adu(struct.pack(">BBHHB", 1, 0x10, 0, 3, 6) + struct.pack(">HHH", 830, 1100, 1)),
]


def led_booted(clock: SimClock) -> LEDFirmware:
    """An LED simulator after boot, faults cleared and a setpoint: enable would switch on."""
    sim = LEDFirmware(clock, seed=9)
    clock.sleep(BOOTED_S)
    sim.feed(led_write(4, 1))
    sim.feed(led_write(1, 500))
    assert sim.take() == led_write(4, 1) + led_write(1, 500)
    return sim


def test_led_prepared_simulator_would_switch_on_for_a_valid_enable() -> None:
    clock = SimClock()
    sim = led_booted(clock)
    sim.feed(led_write(2, 1))
    assert sim.take() == led_write(2, 1)
    assert sim.output_on


@FUZZ
@given(stream=garbage_or_mutants(LED_COMMANDS))
def test_led_simulator_ignores_garbage_and_damaged_frames(stream: bytes) -> None:
    heartbeat = led_write(3, 1)
    holding = led_read(0x03, 0, 5)
    resync = heartbeat + holding
    windows = led_valid_windows(stream + resync)
    own = {(len(stream), len(heartbeat)), (len(stream) + len(heartbeat), len(holding))}
    assume(windows <= own)
    clock, twin_clock = SimClock(), SimClock()
    sim, twin = led_booted(clock), led_booted(twin_clock)
    log_before = list(sim.output_log)

    sim.feed(stream)  # must not raise
    assert sim.take() == b""
    assert not sim.output_on
    assert sim.output_log == log_before

    sim.feed(resync)
    twin.feed(resync)
    assert sim.take() == twin.take()  # heartbeat echo + holding registers, unchanged


# ----------------------------------------------------------------- fake port


class FakePort:
    """A duck-typed pyserial port: each write makes the next scripted reply readable.

    No reply left (or ``b""``) is silence: ``read`` returns ``b""`` as a real
    port does after its timeout.
    """

    def __init__(self, replies: list[bytes]) -> None:
        self.timeout: float | None = 0.05
        self.baudrate = 115200
        self.is_open = True
        self._replies = deque(replies)
        self._rx = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def write(self, data: bytes) -> int:
        self._rx += self._replies.popleft() if self._replies else b""
        return len(data)

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def close(self) -> None:
        self.is_open = False


def only_device_errors(call: Callable[[], object]) -> object:
    """Run ``call``; a DeviceError is fine (returned), anything else fails the test."""
    try:
        return call()
    except DeviceError as exc:
        return exc


# ----------------------------------------------------------------- RF host side

RF_GOOD_REPLIES = [
    b"OK 41.8,42.1,123,25.0,ON,19",
    b"OK NAN,39.5,OPEN,0.0,OFF,32",
    b'ERR -301,"Frame error"',
    b"OK",
]


def rf_reply_candidates(seq: int) -> st.SearchStrategy[bytes]:
    good = [rf_line(seq, body) for body in RF_GOOD_REPLIES]
    return st.one_of(
        st.sampled_from(good),
        st.sampled_from(good).flatmap(mutated),
        st.binary(max_size=140),
        st.binary(max_size=40).map(lambda b: b + b"\n"),
    )


@FUZZ
@given(data=st.data())
def test_rf_codec_parsers_on_mutated_replies(data: st.DataObject) -> None:
    seq = data.draw(st.sampled_from([0, 1, 9, 65535]))
    line = data.draw(rf_reply_candidates(seq))
    fast = rf_codec.fast_all_reply(line, seq)  # never raises
    try:
        fields = rf_codec.split_reply(line)
    except ProtocolError as exc:
        assert fast is None
        with pytest.raises(type(exc)):
            rf_codec.decode_reply(line)
        return
    assert rf_codec.decode_reply(line) == rf_codec.Reply(*fields)
    reply_seq, ok, payload, _, _ = fields
    try:
        parsed = rf_codec.parse_all(payload) if ok else None
    except ProtocolError:
        assert fast is None
        return
    if fast is not None:
        assert reply_seq == seq
        assert parsed is not None
        assert _same(fast, parsed)


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        or x == y
        for x, y in zip(a, b, strict=True)
    )


@FUZZ
@given(data=st.data())
def test_rf_driver_read_raises_only_device_errors(data: st.DataObject) -> None:
    replies = [data.draw(rf_reply_candidates(seq)) for seq in range(3)]
    driver = RFScpiDriver(FakePort(replies), now=lambda: 1.0, read_retries=2)
    result = only_device_errors(driver.read)
    assert isinstance(result, DeviceError | RFReading)


# ----------------------------------------------------------------- IPL host side


def ipl_reply(seq: int, msg: int, payload: bytes) -> bytes:
    packet = bytes((1, seq, msg)) + payload
    packet += crc_hqx(packet, 0xFFFF).to_bytes(2, "big")
    return cobs.encode(packet) + b"\x00"


GOOD_STATUS = struct.pack("<HBhhIHHBH", 0x18, 0, 50, 250, 12, 1500, 560, 99, 3)


def ipl_reply_candidates(seq: int) -> st.SearchStrategy[bytes]:
    good = [
        ipl_reply(seq, ipl_sim.STATUS_REPLY, GOOD_STATUS),
        ipl_reply(seq, ipl_sim.NAK, bytes((ipl_sim.STATUS, 8))),
        ipl_reply(seq, ipl_sim.ACK, bytes((ipl_sim.STATUS,))),
    ]
    return st.one_of(
        st.sampled_from(good),
        st.sampled_from(good).flatmap(mutated),
        st.binary(max_size=90),
        st.binary(max_size=40).map(lambda b: b + b"\x00"),
    )


def test_ipl_good_status_reply_reads() -> None:
    driver = IPLCobsDriver(FakePort([ipl_reply(0, ipl_sim.STATUS_REPLY, GOOD_STATUS)]))
    assert driver.read().shot_count == 12


@FUZZ
@given(data=st.data())
def test_ipl_codec_parsers_on_mutated_replies(data: st.DataObject) -> None:
    seq = data.draw(st.sampled_from([0, 1, 255]))
    wire = data.draw(ipl_reply_candidates(seq))
    chunk = wire.split(b"\x00")[0]
    fast = ipl_codec.fast_status_reply(chunk, seq)  # never raises
    try:
        frame = ipl_codec.decode_frame(chunk)
        payload = ipl_codec.expect_reply(frame, seq, ipl_sim.STATUS, ipl_sim.STATUS_REPLY, "STATUS")
        full = ipl_codec.unpack_status_reply(payload)
    except DeviceError:
        assert fast is None
        return
    assert fast == full


@FUZZ
@given(data=st.data())
def test_ipl_driver_read_raises_only_device_errors(data: st.DataObject) -> None:
    replies = [data.draw(ipl_reply_candidates(seq)) for seq in range(3)]
    driver = IPLCobsDriver(FakePort(replies), now=lambda: 1.0, read_retries=2)
    assert isinstance(only_device_errors(driver.read), DeviceError | IPLReading)


# ----------------------------------------------------------------- LED host side


def led_regs(function: int, registers: list[int], unit: int = 1) -> bytes:
    body = struct.pack(f">BBB{len(registers)}H", unit, function, 2 * len(registers), *registers)
    return adu(body)


LED_GOOD_REPLIES = [
    led_regs(0x04, [500, 300, 340, 1, 10, 0, 1, 0x0100]),
    led_regs(0x03, [633, 500]),
    adu(bytes((1, 0x84, 2))),
    led_regs(0x04, [500, 300, 340, 1, 10, 0, 1]),  # one register short
]


def led_reply_candidates() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(LED_GOOD_REPLIES),
        st.sampled_from(LED_GOOD_REPLIES).flatmap(mutated),
        st.binary(max_size=40),
    )


@settings(FUZZ, max_examples=40)
@given(replies=st.lists(led_reply_candidates(), min_size=1, max_size=4))
def test_led_driver_read_raises_only_device_errors(replies: list[bytes]) -> None:
    driver = LEDModbusDriver(FakePort(replies), now=lambda: 1.0, timeout_s=0.001, retries=1)
    assert isinstance(only_device_errors(driver.read), DeviceError | LEDReading)


def test_crc_error_is_a_protocol_error() -> None:
    """The typed errors the fuzz accepts form the documented hierarchy."""
    assert issubclass(CRCError, ProtocolError)
    assert issubclass(ProtocolError, DeviceError)
