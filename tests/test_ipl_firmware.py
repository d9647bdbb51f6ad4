"""The IPL firmware simulator against docs/protocols/ipl.md: exact bytes in, exact bytes out.

Frames are built here with the test's own COBS (the classic byte-at-a-time
algorithm) and its own bitwise CRC, never with the simulator's or the driver's
code.
"""

from __future__ import annotations

import math
import statistics
import struct
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicectl.clock import SimClock
from devicectl_simulators.ipl_firmware import IPLFirmware, cobs_decode, cobs_encode

T0 = 100.0  # clocks start away from zero so "seconds after creation" is really tested
TICK = 0.05
IDENTITY_TEXT = b"devicectl-sim,IPL-25,SIM0,1.0.0"

HEARTBEAT, IDENTIFY, STATUS, CLEAR = 0x01, 0x02, 0x20, 0x21
SET_PARAMS, CHARGE, ARM, FIRE, DISARM = 0x10, 0x11, 0x12, 0x13, 0x14
ACK, NAK, IDENTITY, STATUS_REPLY = 0x80, 0x81, 0x82, 0xA0

CHARGED, CHARGING, ARMED, FILTER_OK, CONTACT_OK = 1, 2, 4, 8, 16
BLOCK_OVERTEMP, WATCHDOG_TRIPPED, POWER_ON_RESET, SENSOR_FAULT = 32, 64, 128, 256
OPEN = 0x7FFF


# --------------------------------------------------------------------------- the test's codec


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit (poly 0x1021, init 0xFFFF, no reflection/xor)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_enc(data: bytes) -> bytes:
    """Classic byte-at-a-time COBS encoder (fine below 254 bytes, all these tests need)."""
    out = bytearray([0])
    code_at, code = 0, 1
    for byte in data:
        if byte == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(byte)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_dec(chunk: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(chunk):
        code = chunk[i]
        assert code != 0 and i + code <= len(chunk), chunk.hex()
        out += chunk[i + 1 : i + code]
        i += code
        if code < 0xFF and i < len(chunk):
            out.append(0)
    return bytes(out)


def packet(seq: int, msg: int, payload: bytes = b"", version: int = 1) -> bytes:
    head = bytes((version, seq, msg)) + payload
    return head + crc16(head).to_bytes(2, "big")


def frame(seq: int, msg: int, payload: bytes = b"") -> bytes:
    """A correctly framed packet on the wire (commands and replies share the framing)."""
    return cobs_enc(packet(seq, msg, payload)) + b"\x00"


def ack(seq: int, msg: int) -> bytes:
    return frame(seq, ACK, bytes((msg,)))


def nak(seq: int, msg: int, code: int) -> bytes:
    return frame(seq, NAK, bytes((msg, code)))


class Status(NamedTuple):
    flags: int
    charge: int
    crystal: int  # 0.1 degC
    block: int
    shots: int
    fluence: int  # 0.01 J/cm2
    filter_nm: int
    life: int
    errors: int


def status_frame(seq: int, status: Status) -> bytes:
    return frame(seq, STATUS_REPLY, struct.pack("<HBhhIHHBH", *status))


def params(
    fluence: float = 15.0,
    width_ms: float = 10.0,
    count: int = 1,
    delay_ms: int = 0,
    filter_nm: int = 560,
) -> bytes:
    return struct.pack(
        "<HHHBH", filter_nm, round(fluence * 100), round(width_ms * 10), count, delay_ms
    )


def charge_time_s(fluence: float) -> float:
    return 0.4 + 1.6 * fluence / 25.0


class Host:
    """A minimal host written for these tests: sends frames, checks replies."""

    def __init__(self, clock: SimClock, device: IPLFirmware) -> None:
        self.clock = clock
        self.device = device
        self.seq = 0

    def ask(self, msg: int, payload: bytes = b"") -> tuple[int, bytes]:
        seq = self.seq
        self.seq = (seq + 1) & 0xFF
        self.device.feed(frame(seq, msg, payload))
        return seq, self.device.take()

    def ok(self, msg: int, payload: bytes = b"") -> None:
        seq, got = self.ask(msg, payload)
        assert got == ack(seq, msg), f"{msg:#x}: {got.hex()}"

    def refused(self, msg: int, payload: bytes = b"") -> int:
        """Send, expect a NAK for ``msg``, return its code."""
        seq, got = self.ask(msg, payload)
        assert got[-1:] == b"\x00", got.hex()
        body = cobs_dec(got[:-1])
        assert body == packet(seq, NAK, body[3:5]), f"{msg:#x}: not a NAK: {got.hex()}"
        assert body[3] == msg
        return body[4]

    def status(self) -> Status:
        seq, got = self.ask(STATUS)
        assert got[-1:] == b"\x00" and got.count(0) == 1, got.hex()
        body = cobs_dec(got[:-1])
        assert len(body) == 23 and body[:3] == bytes((1, seq, STATUS_REPLY)), got.hex()
        assert crc16(body[:-2]) == int.from_bytes(body[-2:], "big")
        return Status(*struct.unpack("<HBhhIHHBH", body[3:-2]))

    def tick_until(self, t_end: float, msg: int = STATUS) -> None:
        """Talk every 50 ms (keeps the watchdog fed) until ``t_end``, then sleep to it."""
        while self.clock.now() + TICK <= t_end + 1e-9:
            self.clock.sleep(TICK)
            self.ask(msg)
        self.clock.sleep_until(t_end)

    def wait(self, duration_s: float) -> None:
        self.tick_until(self.clock.now() + duration_s)

    def charge_and_arm(self) -> float:
        """CHARGE, wait (ticking) until CHARGED, ARM; the time of the CHARGE."""
        self.ok(CHARGE)
        start = self.clock.now()
        while not self.status().flags & CHARGED:
            assert self.clock.now() - start < 3.0, "never charged"
            self.clock.sleep(TICK)
        self.ok(ARM)
        return start


def make(*faults: str, seed: int = 0, **options: str) -> tuple[SimClock, IPLFirmware, Host]:
    clock = SimClock(T0)
    device = IPLFirmware(clock, seed=seed, faults=faults, **options)
    return clock, device, Host(clock, device)


def booted(*faults: str, seed: int = 0, **options: str) -> tuple[SimClock, IPLFirmware, Host]:
    """A device just out of its 1 s boot, spoken to at once (no watchdog trip yet)."""
    clock, device, host = make(*faults, seed=seed, **options)
    clock.sleep_until(T0 + 1.0)
    return clock, device, host


def ready(
    *faults: str, seed: int = 0, payload: bytes | None = None, **options: str
) -> tuple[SimClock, IPLFirmware, Host]:
    """Booted, flags cleared, parameters set (15 J/cm2, one 10 ms pulse by default)."""
    clock, device, host = booted(*faults, seed=seed, **options)
    host.ok(CLEAR)
    host.ok(SET_PARAMS, params() if payload is None else payload)
    return clock, device, host


def armed(
    *faults: str, seed: int = 0, payload: bytes | None = None, **options: str
) -> tuple[SimClock, IPLFirmware, Host]:
    clock, device, host = ready(*faults, seed=seed, payload=payload, **options)
    host.charge_and_arm()
    assert device.output_on
    return clock, device, host


def fresh(shots: int = 0, errors: int = 0, flags: int = 0) -> Status:
    """STATUS of an idle device at rest (560 nm filter, contact)."""
    life = max(0, (100_000 - shots) * 100 // 100_000)
    return Status(flags | FILTER_OK | CONTACT_OK, 0, 50, 250, shots, 0, 560, life, errors)


# --------------------------------------------------------------------------- the test's codec


def test_the_test_codec_matches_the_spec_and_published_examples() -> None:
    assert crc16(b"123456789") == 0x29B1
    for raw, encoded in [
        ("00", "0101"),
        ("0000", "010101"),
        ("11220033", "0311220233"),
        ("11223344", "0511223344"),
        ("11000000", "0211010101"),
    ]:
        assert cobs_enc(bytes.fromhex(raw)) == bytes.fromhex(encoded)
        assert cobs_dec(bytes.fromhex(encoded)) == bytes.fromhex(raw)
    # HEARTBEAT seq 7 and its ACK, written out by hand once
    assert frame(7, HEARTBEAT) == bytes.fromhex("06010701721a00")
    assert ack(7, HEARTBEAT) == bytes.fromhex("07010780017c5d00")


@given(st.binary(max_size=300))
def test_simulator_cobs_round_trips_and_matches_the_classic_encoder(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data
    assert cobs_dec(encoded) == data
    if len(data) < 254:
        assert encoded == cobs_enc(data)


@pytest.mark.parametrize("chunk", ["", "00", "0301", "02010501", "ff01"])
def test_simulator_cobs_decode_rejects_malformed_chunks(chunk: str) -> None:
    if chunk == "":
        assert cobs_decode(b"") == b""  # empty decodes to nothing: the firmware discards it
        return
    with pytest.raises(ValueError):
        cobs_decode(bytes.fromhex(chunk))


# --------------------------------------------------------------------------- exact replies


def test_exact_heartbeat_identify_and_status_replies() -> None:
    _, device, _ = booted()
    device.feed(bytes.fromhex("06010701721a00"))
    assert device.take() == bytes.fromhex("07010780017c5d00")
    device.feed(frame(8, IDENTIFY))
    assert device.take() == frame(8, IDENTITY, IDENTITY_TEXT)
    device.feed(frame(9, STATUS))
    expected = Status(POWER_ON_RESET | FILTER_OK | CONTACT_OK, 0, 50, 250, 0, 0, 560, 100, 0)
    assert device.take() == status_frame(9, expected)
    assert expected.flags == 0x98


def test_nothing_is_answered_during_the_1_s_boot() -> None:
    clock, device, host = make()
    device.feed(frame(1, HEARTBEAT))
    assert device.take() == b""
    clock.sleep_until(T0 + 1.0 - 1e-6)
    device.feed(frame(2, HEARTBEAT))
    device.feed(b"\x05garbage\x00")  # not even counted as a frame error
    assert device.take() == b""
    clock.sleep_until(T0 + 1.0)
    device.feed(frame(3, HEARTBEAT))
    assert device.take() == ack(3, HEARTBEAT)
    assert host.status() == fresh(flags=POWER_ON_RESET)


def test_seq_is_echoed_for_every_value() -> None:
    _, device, _ = booted()
    for seq in [*range(256), 255, 0, 17]:
        device.feed(frame(seq, HEARTBEAT))
        assert device.take() == ack(seq, HEARTBEAT)


def test_two_frames_in_one_write_and_a_frame_split_byte_by_byte() -> None:
    _, device, _ = booted()
    device.feed(frame(1, HEARTBEAT) + frame(2, IDENTIFY))
    assert device.take() == ack(1, HEARTBEAT) + frame(2, IDENTITY, IDENTITY_TEXT)
    for byte in frame(3, CLEAR):
        device.feed(bytes([byte]))
    assert device.take() == ack(3, CLEAR)
    device.feed(frame(4, HEARTBEAT)[:3])
    device.feed(frame(4, HEARTBEAT)[3:] + frame(5, HEARTBEAT)[:2])
    assert device.take() == ack(4, HEARTBEAT)
    device.feed(frame(5, HEARTBEAT)[2:])
    assert device.take() == ack(5, HEARTBEAT)


def test_take_in_pieces_and_pending() -> None:
    _, device, _ = booted()
    device.feed(frame(1, IDENTIFY))
    whole = frame(1, IDENTITY, IDENTITY_TEXT)
    assert device.pending() == len(whole)
    assert device.take(5) + device.take(5) + device.take() == whole
    assert device.pending() == 0


def test_clear_resets_power_on_reset() -> None:
    _, _, host = booted()
    host.ok(CLEAR)
    assert host.status() == fresh()


@pytest.mark.parametrize(
    ("options", "filter_nm"), [({}, 560), ({"filter": "695"}, 695), ({"filter": "0"}, 0)]
)
def test_detected_filter_and_filter_ok(options: dict[str, str], filter_nm: int) -> None:
    _, _, host = booted(**options)
    status = host.status()
    assert status.filter_nm == filter_nm
    assert bool(status.flags & FILTER_OK) == (filter_nm != 0)


@pytest.mark.parametrize(("shots", "life"), [(0, 100), (500, 99), (50_000, 50), (100_000, 0)])
def test_shot_counter_and_lamp_life_from_the_option(shots: int, life: int) -> None:
    _, _, host = booted(shots=str(shots))
    status = host.status()
    assert (status.shots, status.life) == (shots, life)


# --------------------------------------------------------------------------- frame errors


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"\x00", id="empty chunk"),
        pytest.param(cobs_enc(packet(1, HEARTBEAT))[:-1] + b"\x00", id="truncated"),
        pytest.param(b"\x09\x01\x02\x00", id="bad cobs"),
        pytest.param(cobs_enc(packet(1, HEARTBEAT, version=2)) + b"\x00", id="version 2"),
        pytest.param(cobs_enc(b"\x01\x01\x01\x01") + b"\x00", id="4 bytes"),
        pytest.param(cobs_enc(packet(1, HEARTBEAT, b"\x00" * 65)) + b"\x00", id="70 bytes"),
        pytest.param(cobs_enc(packet(1, HEARTBEAT)[:-1] + b"\x55") + b"\x00", id="bad crc"),
        pytest.param(b"\x07" * 200 + b"\x00", id="long garbage"),
    ],
)
def test_bad_frames_are_dropped_silently_and_counted(bad: bytes) -> None:
    _, device, host = booted()
    device.feed(bad)
    assert device.take() == b""
    assert host.status().errors == 1
    device.feed(bad + bad)
    assert device.take() == b""
    assert host.status().errors == 3


def test_an_endless_frame_is_dropped_up_to_its_delimiter() -> None:
    _, device, host = booted()
    for _ in range(1000):
        device.feed(b"\x07" * 10)
        assert len(device._inbuf) <= 70  # memory stays bounded (private: not on the wire)
    device.feed(b"\x07\x00" + frame(1, HEARTBEAT))
    assert device.take() == ack(1, HEARTBEAT)
    assert host.status().errors == 1


def test_a_64_byte_payload_is_a_valid_frame() -> None:
    _, device, _ = booted()
    device.feed(frame(1, HEARTBEAT, bytes(range(1, 65))))
    assert device.take() == nak(1, HEARTBEAT, 1)  # valid frame, wrong length for HEARTBEAT


# --------------------------------------------------------------------------- NAK codes


@pytest.mark.parametrize(
    ("msg", "payload"),
    [
        (HEARTBEAT, b"\x00"),
        (STATUS, b"\x01\x02"),
        (CLEAR, b"\x01"),
        (DISARM, b"\x01"),
        (SET_PARAMS, params()[:-1]),
        (SET_PARAMS, params() + b"\x00"),
    ],
)
def test_nak_1_wrong_payload_length(msg: int, payload: bytes) -> None:
    _, _, host = booted()
    assert host.refused(msg, payload) == 1


@pytest.mark.parametrize(
    "payload",
    [
        params(fluence=4.99),
        params(fluence=25.01),
        params(width_ms=0.9),
        params(width_ms=100.1),
        params(count=0),
        params(count=6, delay_ms=10),
        params(count=1, delay_ms=5),
        params(count=2, delay_ms=0),
        params(count=2, delay_ms=4),
        params(count=2, delay_ms=501),
    ],
)
def test_nak_2_out_of_range_leaves_the_parameters_unchanged(payload: bytes) -> None:
    clock, _, host = ready(payload=params(fluence=5.0))
    assert host.refused(SET_PARAMS, payload) == 2
    # the 5 J/cm2 parameters still hold: charging takes 0.72 s, not longer
    host.ok(CHARGE)
    start = clock.now()
    host.tick_until(start + charge_time_s(5.0))
    assert host.status().flags & CHARGED


@pytest.mark.parametrize(
    "payload",
    [
        params(fluence=5.0),
        params(fluence=25.0),
        params(width_ms=1.0),
        params(width_ms=100.0),
        params(count=5, delay_ms=5),
        params(count=2, delay_ms=500),
    ],
)
def test_limits_of_the_ranges_are_accepted(payload: bytes) -> None:
    _, _, host = booted()
    host.ok(SET_PARAMS, payload)


def test_nak_2_charge_without_parameters() -> None:
    _, _, host = booted()
    host.ok(CLEAR)
    assert host.refused(CHARGE) == 2
    host.ok(SET_PARAMS, params())
    host.ok(CHARGE)


def test_nak_3_and_4() -> None:
    _, _, host = ready()
    assert host.refused(ARM) == 3
    assert host.refused(FIRE) == 3
    host.ok(CHARGE)
    host.wait(charge_time_s(15.0))
    assert host.refused(FIRE) == 4


def test_nak_5_minimum_interval_of_1_s_from_the_start_of_the_last_train() -> None:
    clock, device, host = armed(payload=params(fluence=5.0, width_ms=1.0))
    host.ok(FIRE)
    fired_at = clock.now()
    host.wait(0.001)
    host.charge_and_arm()  # 0.72 s: ready again before 1 s has passed
    assert clock.now() < fired_at + 1.0
    assert host.refused(FIRE) == 5
    clock.sleep_until(fired_at + 1.0 - 1e-6)
    assert host.refused(FIRE) == 5
    clock.sleep_until(fired_at + 1.0)
    host.ok(FIRE)
    assert [t for t, _, _ in device.flashes] == [fired_at]  # the second still firing
    host.wait(0.01)
    assert [t for t, _, _ in device.flashes] == [fired_at, fired_at + 1.0]


def test_nak_7_filter_mismatch_or_none() -> None:
    _, _, host = booted()
    assert host.refused(SET_PARAMS, params(filter_nm=640)) == 7
    assert host.refused(SET_PARAMS, params(filter_nm=600)) == 7
    assert host.refused(SET_PARAMS, params(filter_nm=0)) == 7
    host.ok(SET_PARAMS, params(filter_nm=560))
    _, _, host = booted(filter="0")
    for filter_nm in (515, 560, 590, 640, 695, 0):
        assert host.refused(SET_PARAMS, params(filter_nm=filter_nm)) == 7
    host.ok(CLEAR)
    assert host.refused(CHARGE) == 7


def test_nak_7_after_the_filter_is_swapped() -> None:
    _, device, host = armed()
    device.insert_filter(640)
    assert not device.output_on and not device.charged
    assert device.output_log[-1][1:] == (False, "filter")
    assert host.status().filter_nm == 640
    assert host.refused(CHARGE) == 7
    host.ok(SET_PARAMS, params(filter_nm=640))
    host.ok(CHARGE)


@pytest.mark.parametrize("msg", [0x00, 0x03, 0x15, 0x22, 0x80, 0x81, 0xA0, 0xFF])
def test_nak_8_unknown_message(msg: int) -> None:
    _, _, host = booted()
    assert host.refused(msg) == 8
    assert host.refused(msg, b"\x01\x02\x03") == 8  # unknown wins over length


def test_nak_9_busy_while_charging_and_while_a_train_is_fired() -> None:
    _, _, host = ready()
    host.ok(CHARGE)
    assert host.refused(CHARGE) == 9
    assert host.refused(ARM) == 9
    assert host.refused(FIRE) == 9
    assert host.refused(SET_PARAMS, params()) == 9
    host.ok(DISARM)  # always accepted: it stops charging
    assert not host.status().flags & (CHARGING | CHARGED)
    host.ok(SET_PARAMS, params(fluence=10.0, width_ms=20.0, count=3, delay_ms=100))
    host.charge_and_arm()
    host.ok(FIRE)
    for msg in (FIRE, ARM, CHARGE):
        assert host.refused(msg) == 9
    assert host.refused(SET_PARAMS, params()) == 9


def test_nak_10_no_contact() -> None:
    _clock, device, host = armed("contact_loss@3s+2s")
    host.tick_until(T0 + 3.0)
    assert not device.output_on
    assert device.output_log[-1] == (T0 + 3.0, False, "contact")
    status = host.status()
    assert not status.flags & (CONTACT_OK | ARMED) and status.flags & CHARGED
    assert host.refused(ARM) == 10
    assert host.refused(FIRE) == 10
    host.tick_until(T0 + 5.0)
    assert host.status().flags & CONTACT_OK
    host.ok(ARM)
    host.ok(FIRE)


@pytest.mark.parametrize("sensor", [1, 2])
def test_nak_11_sensor_fault(sensor: int) -> None:
    _clock, device, host = armed(f"sensor_open@3s+2s:sensor={sensor}")
    host.tick_until(T0 + 3.0)
    assert not device.output_on and not device.charged
    assert device.output_log[-1] == (T0 + 3.0, False, "sensor")
    status = host.status()
    assert status.flags & SENSOR_FAULT
    assert (status.crystal, status.block) == ((OPEN, 250) if sensor == 1 else (50, OPEN))
    host.ok(CHARGE)  # the page does not make CHARGE wait for the sensor
    host.wait(charge_time_s(15.0))
    assert host.refused(ARM) == 11
    host.tick_until(T0 + 5.0)
    status = host.status()
    assert not status.flags & SENSOR_FAULT and (status.crystal, status.block) == (50, 250)
    host.ok(ARM)


# --------------------------------------------------------------------------- charging


@pytest.mark.parametrize("fluence", [5.0, 15.0, 25.0])
def test_charge_time_and_percent(fluence: float) -> None:
    clock, _, host = ready(payload=params(fluence=fluence))
    host.ok(CHARGE)
    start = clock.now()
    duration = charge_time_s(fluence)
    status = host.status()
    assert status.flags & CHARGING and not status.flags & CHARGED and status.charge == 0
    host.tick_until(start + duration / 4)
    assert host.status().charge in (24, 25)
    host.tick_until(start + duration - 1e-6)
    status = host.status()
    assert status.flags & CHARGING and not status.flags & CHARGED and status.charge == 99
    clock.sleep_until(start + duration)
    status = host.status()
    assert status.flags & CHARGED and not status.flags & CHARGING and status.charge == 100


def test_charge_is_held_30_s_then_dumped_and_disarmed() -> None:
    clock, device, host = ready()
    host.ok(CHARGE)
    charged_at = clock.now() + charge_time_s(15.0)
    host.tick_until(charged_at)
    host.ok(ARM)
    host.ok(CHARGE)  # already charged: accepted, nothing changes (the hold keeps running)
    host.tick_until(charged_at + 30.0 - 1e-6)
    assert host.status().flags & (CHARGED | ARMED) == CHARGED | ARMED
    clock.sleep_until(charged_at + 30.0)
    status = host.status()
    assert not status.flags & (CHARGED | ARMED | CHARGING) and status.charge == 0
    assert device.output_log[-1] == (charged_at + 30.0, False, "hold")
    assert host.refused(FIRE) == 3


def test_set_params_disarms_and_dumps() -> None:
    _, device, host = armed()
    host.ok(SET_PARAMS, params(fluence=20.0))
    status = host.status()
    assert not status.flags & (CHARGED | ARMED)
    assert device.output_log[-1][1:] == (False, "params")


def test_disarm_dumps_and_is_always_accepted() -> None:
    _, device, host = armed()
    host.ok(DISARM)
    assert not device.output_on and not device.charged
    assert device.output_log[-1][1:] == (False, "host")
    host.ok(DISARM)
    _, _, host = booted()
    host.ok(DISARM)


# --------------------------------------------------------------------------- firing


def test_fire_delivers_one_pulse_and_disarms_at_its_end() -> None:
    clock, device, host = armed(payload=params(fluence=15.0, width_ms=20.0))
    assert device.output_log == [(clock.now(), True, "host")]
    host.ok(FIRE)
    fired_at = clock.now()
    status = host.status()
    assert status.shots == 1 and status.flags & ARMED and not status.flags & CHARGED
    assert status.fluence == 0  # the photodiode's mean is ready when the train ends
    clock.sleep_until(fired_at + 0.02)
    status = host.status()
    assert not status.flags & (ARMED | CHARGED) and status.charge == 0
    (flash,) = device.flashes
    assert flash[:2] == (fired_at, 15.0)
    assert status.fluence == math.floor(flash[2] * 100 + 0.5)
    assert abs(flash[2] / 15.0 - 1.0) < 0.1
    assert device.output_log[-1] == (fired_at + 0.02, False, "fired")
    assert host.refused(FIRE) == 3  # the host charges and arms again for the next flash


def test_pulse_train_timing_and_shot_counter() -> None:
    # 3 pulses of 10 ms, 100 ms apart: starts at 0, 110, 220 ms, the train ends at 230 ms
    clock, device, host = armed(
        payload=params(fluence=10.0, width_ms=10.0, count=3, delay_ms=100), shots="41"
    )
    host.ok(FIRE)
    t0 = clock.now()
    expected = [(0.0, 42, 66), (0.11 - 1e-6, 42, 66), (0.11, 43, 33), (0.22, 44, 0)]
    for offset, shots, charge in expected:
        clock.sleep_until(t0 + offset)
        status = host.status()
        assert (status.shots, status.charge) == (shots, charge), offset
        assert status.flags & ARMED and not status.flags & CHARGED
    clock.sleep_until(t0 + 0.23 - 1e-6)
    assert device.output_on and device.flashes == []
    clock.sleep_until(t0 + 0.23)
    assert not device.output_on
    assert device.output_log[-1] == (t0 + 0.23, False, "fired")
    (flash,) = device.flashes
    assert flash[:2] == (t0, 10.0)
    assert host.status().shots == 44


def test_disarm_cuts_a_train_short() -> None:
    clock, device, host = armed(payload=params(fluence=10.0, width_ms=10.0, count=5, delay_ms=500))
    host.ok(FIRE)
    t0 = clock.now()
    host.tick_until(t0 + 0.6)  # second pulse at 0.51 s
    host.ok(DISARM)
    host.tick_until(t0 + 3.0)
    assert host.status().shots == 2
    assert len(device.flashes) == 1 and not device.output_on


def test_delivered_fluence_noise_is_about_2_percent() -> None:
    _clock, device, host = ready(payload=params(fluence=10.0, width_ms=5.0))
    for _ in range(60):
        host.charge_and_arm()
        host.ok(FIRE)
        host.wait(0.3)
    ratios = [delivered / set_ for _, set_, delivered in device.flashes]
    assert len(ratios) == 60
    assert abs(statistics.fmean(ratios) - 1.0) < 0.01
    assert 0.012 < statistics.stdev(ratios) < 0.03


@pytest.mark.parametrize(("shots", "factor"), [(0, 1.0), (50_000, 0.925), (100_000, 0.85)])
def test_lamp_ageing(shots: int, factor: float) -> None:
    _clock, device, host = ready(
        payload=params(fluence=20.0, width_ms=2.0, count=2, delay_ms=5), shots=str(shots)
    )
    for _ in range(20):
        host.charge_and_arm()
        host.ok(FIRE)
        host.wait(0.1)
    means = [delivered / set_ for _, set_, delivered in device.flashes]
    assert abs(statistics.fmean(means) - factor) < 0.012
    status = host.status()
    assert status.shots == shots + 40
    assert status.life == max(0, (100_000 - shots - 40) * 100 // 100_000)
    assert abs(status.fluence / 2000 - means[-1]) < 0.001


# --------------------------------------------------------------------------- thermal


def test_crystal_warms_per_pulse_and_recovers_with_4_s() -> None:
    clock, device, host = armed(payload=params(fluence=15.0, width_ms=10.0, count=2, delay_ms=90))
    assert device.crystal_temp_c == 5.0
    host.ok(FIRE)
    t0 = clock.now()
    assert device.crystal_temp_c == pytest.approx(5.6)  # +0.6 degC at 15 J/cm2
    clock.sleep_until(t0 + 0.1)
    expected = 5.0 + 0.6 * math.exp(-0.1 / 4.0) + 0.6
    assert device.crystal_temp_c == pytest.approx(expected, abs=1e-9)
    assert host.status().crystal == math.floor(expected * 10 + 0.5)
    clock.sleep_until(t0 + 4.1)
    assert device.crystal_temp_c == pytest.approx(5.0 + (expected - 5.0) / math.e, abs=1e-9)
    clock.sleep_until(t0 + 60.0)
    assert device.crystal_temp_c == pytest.approx(5.0, abs=1e-4)


def test_block_warms_per_pulse_and_cools_with_90_s() -> None:
    clock, device, host = armed(payload=params(fluence=25.0, width_ms=1.0, count=1))
    host.ok(FIRE)
    t0 = clock.now()
    rise = 0.35 * 25.0 / 15.0
    assert device.block_temp_c == pytest.approx(25.0 + rise)
    clock.sleep_until(t0 + 90.0)
    assert device.block_temp_c == pytest.approx(25.0 + rise / math.e, abs=1e-9)


def test_nak_2_arm_with_a_warm_crystal_until_it_recovers() -> None:
    # 5-pulse trains at 25 J/cm2 (+5 degC each) as fast as charging allows
    _clock, device, host = ready(payload=params(fluence=25.0, width_ms=1.0, count=5, delay_ms=5))
    trains = 0
    while True:
        host.ok(CHARGE)
        host.wait(charge_time_s(25.0))
        if host.status().crystal > 100:
            break
        host.ok(ARM)  # at or below 10.0 degC still arms
        host.ok(FIRE)
        trains += 1
        host.wait(0.05)
        assert trains < 10, "the crystal never got above 10.0 degC"
    assert trains >= 2
    refusals = 0
    while host.status().crystal > 100:
        assert host.refused(ARM) == 2
        assert device.crystal_temp_c > 10.0
        refusals += 1
        host.wait(TICK)
    assert refusals > 2
    host.ok(ARM)
    assert 9.95 <= device.crystal_temp_c < 10.05


def test_block_overtemp_after_many_rapid_flashes_at_25_j() -> None:
    _clock, device, host = ready(payload=params(fluence=25.0, width_ms=10.0))
    flashes = 0
    while not host.status().flags & BLOCK_OVERTEMP:
        assert flashes < 200, "the block never reached 45 degC"
        before = host.status().block
        assert before < 450
        host.charge_and_arm()
        host.ok(FIRE)
        flashes += 1
        host.wait(0.02)
    status = host.status()
    assert 40 < flashes < 120
    assert status.block >= 450 and device.block_temp_c >= 44.95
    assert not status.flags & (ARMED | CHARGED)
    assert device.output_log[-1][1:] == (False, "overtemp")
    assert host.refused(CHARGE) == 6
    assert host.refused(FIRE) == 6
    # CLEAR keeps BLOCK_OVERTEMP until the block reads below 40.0 degC
    waited = 0.0
    while host.status().block >= 400:
        host.ok(CLEAR)
        assert host.status().flags & BLOCK_OVERTEMP
        host.wait(0.5)
        waited += 0.5
    assert 20.0 < waited < 40.0  # 90 s * ln(20/15) = 26 s from 45 to 40 degC
    host.ok(CLEAR)
    assert not host.status().flags & BLOCK_OVERTEMP
    host.ok(CHARGE)


# --------------------------------------------------------------------------- watchdog


def test_watchdog_trips_exactly_250_ms_after_the_last_valid_frame() -> None:
    clock, device, host = armed()
    last = clock.now()
    clock.sleep_until(last + 0.25 - 1e-6)
    assert device.output_on
    host.ok(HEARTBEAT)  # feeds it
    last = clock.now()
    clock.sleep_until(last + 0.25 - 1e-6)
    assert device.output_on and device.charged
    clock.sleep_until(last + 0.25)
    assert not device.output_on and not device.charged
    assert device.output_log[-1] == (last + 0.25, False, "watchdog")
    assert host.status().flags & WATCHDOG_TRIPPED
    host.ok(CLEAR)
    assert not host.status().flags & WATCHDOG_TRIPPED


def test_watchdog_runs_from_boot_end() -> None:
    clock, _, host = make()
    clock.sleep_until(T0 + 1.25 - 1e-6)
    assert not host.status().flags & WATCHDOG_TRIPPED
    _, _, host = make()
    clock = host.clock
    clock.sleep_until(T0 + 1.25)
    assert host.status().flags & WATCHDOG_TRIPPED


def test_bad_frames_do_not_feed_the_watchdog_but_naks_do() -> None:
    clock, device, host = armed()
    last = clock.now()
    for offset in (0.05, 0.1, 0.15, 0.2):
        clock.sleep_until(last + offset)
        device.feed(cobs_enc(packet(1, HEARTBEAT)[:-1] + b"\x00") + b"\x00")  # bad CRC
        device.feed(cobs_enc(packet(1, HEARTBEAT, version=3)) + b"\x00")
        assert device.take() == b""
    clock.sleep_until(last + 0.25)
    assert not device.output_on
    status = host.status()
    assert status.flags & WATCHDOG_TRIPPED and status.errors == 8

    clock, device, host = armed()
    for _ in range(10):
        clock.sleep(0.2)
        assert host.refused(0x77) == 8  # valid frame, unknown message: still fed
    assert device.output_on


# --------------------------------------------------------------------------- faults


def test_reset_fault_reboots() -> None:
    clock, device, host = armed("reset@5s", shots="7")
    host.ok(FIRE)
    host.wait(0.1)
    host.charge_and_arm()
    host.tick_until(T0 + 5.0 - 0.01)
    device.feed(b"\x01\x00")  # a frame error, forgotten by the reboot
    before = host.status()
    assert before.flags & ARMED and before.fluence > 0 and before.shots == 8
    assert before.errors == 1
    clock.sleep_until(T0 + 5.0)
    assert not device.output_on
    assert device.output_log[-1] == (T0 + 5.0, False, "reset")
    _seq, got = host.ask(STATUS)
    assert got == b""  # booting
    clock.sleep_until(T0 + 6.0)
    status = host.status()
    assert status._replace(crystal=50, block=250) == fresh(shots=8, flags=POWER_ON_RESET)
    assert status.crystal > 50 and status.block > 250  # the handpiece is still warm
    host.ok(CLEAR)
    assert host.refused(CHARGE) == 2  # no parameters after a reboot


def test_no_reply_fault_silences_the_device_and_its_watchdog_fires() -> None:
    clock, device, host = armed("no_reply@3s+1s")
    host.tick_until(T0 + 3.0 - 0.01)
    host.ok(HEARTBEAT)
    last = clock.now()
    clock.sleep_until(T0 + 3.0)
    device.feed(frame(200, HEARTBEAT)[:4])  # a partial frame at the fault start is lost
    _seq, got = host.ask(HEARTBEAT)
    assert got == b""
    clock.sleep_until(last + 0.25)
    assert not device.output_on
    assert device.output_log[-1] == (last + 0.25, False, "watchdog")
    clock.sleep_until(T0 + 4.0)
    status = host.status()
    assert status.flags & WATCHDOG_TRIPPED and status.errors == 0


def test_no_reply_that_spans_the_boot_end_keeps_the_device_silent() -> None:
    clock, _, host = make("no_reply@500ms+1s")
    clock.sleep_until(T0 + 1.0)
    assert host.ask(HEARTBEAT)[1] == b""
    clock.sleep_until(T0 + 1.5 - 1e-6)
    assert host.ask(HEARTBEAT)[1] == b""
    clock.sleep_until(T0 + 1.5)
    host.ok(HEARTBEAT)
    assert host.status().flags & WATCHDOG_TRIPPED  # 250 ms after boot end, nobody heard


def test_garble_corrupts_both_ways_then_stops() -> None:
    clock, device, host = booted("garble@2s+5s:rate=0.2", seed=4)
    host.ok(CLEAR)
    missing = corrupt = 0
    clock.sleep_until(T0 + 2.0)
    for i in range(60):
        clock.sleep(0.05)
        device.feed(frame(i, HEARTBEAT))
        got = device.take()
        if not got:
            missing += 1
        elif got != ack(i, HEARTBEAT):
            corrupt += 1
    assert missing > 5 and corrupt > 5
    clock.sleep_until(T0 + 7.0)
    status = host.status()
    assert status.errors >= missing // 2  # dropped commands count as frame errors
    for _ in range(20):
        host.ok(HEARTBEAT)


def test_contact_loss_keeps_the_charge_but_stops_a_train() -> None:
    _clock, device, host = armed(
        "contact_loss@3s",
        payload=params(fluence=10.0, width_ms=10.0, count=5, delay_ms=400),
    )
    host.tick_until(T0 + 2.5)
    host.ok(FIRE)  # pulses at 0, 0.41, 0.82, ... s: contact lost after the second
    host.tick_until(T0 + 3.0)
    assert not device.output_on
    assert device.output_log[-1] == (T0 + 3.0, False, "contact")
    assert host.status().shots == 2 and len(device.flashes) == 1


@pytest.mark.parametrize("sensor", [1, 2])
def test_sensor_stuck_freezes_the_reading_and_the_firmware_believes_it(sensor: int) -> None:
    _clock, device, host = ready(
        f"sensor_stuck@2s:sensor={sensor}",
        payload=params(fluence=25.0, width_ms=1.0, count=5, delay_ms=5),
    )
    host.tick_until(T0 + 2.0)
    frozen = host.status()
    for _ in range(3):
        host.charge_and_arm()  # with a stuck crystal it always arms, however warm
        host.ok(FIRE)
        host.wait(0.1)
    status = host.status()
    assert status.shots == 15
    if sensor == 1:
        assert status.crystal == frozen.crystal == 50 and device.crystal_temp_c > 10.5
        assert status.block > frozen.block
    else:
        assert status.block == frozen.block == 250 and device.block_temp_c > 30.0
        assert status.crystal > frozen.crystal
    assert not status.flags & SENSOR_FAULT


def test_stuck_block_thermistor_that_recovers_reveals_overtemp() -> None:
    clock, device, host = ready(
        "sensor_stuck@1s+80s:sensor=2",
        payload=params(fluence=25.0, width_ms=1.0, count=2, delay_ms=5),
    )
    while clock.now() < T0 + 77.0:
        host.charge_and_arm()
        host.ok(FIRE)
        host.wait(0.01)
    host.charge_and_arm()
    status = host.status()
    assert device.block_temp_c > 50.0 and status.block == 250  # the firmware reads 25.0
    assert not status.flags & BLOCK_OVERTEMP
    host.tick_until(T0 + 81.0)
    assert device.block_temp_c > 45.0
    status = host.status()
    assert status.flags & BLOCK_OVERTEMP and status.block >= 450
    assert not status.flags & (ARMED | CHARGED)
    assert device.output_log[-1] == (T0 + 81.0, False, "overtemp")


def test_misfire_delivers_a_fraction_of_the_set_fluence() -> None:
    _clock, device, host = ready("misfire@3s+5s:factor=0.4", payload=params(fluence=20.0))
    for _ in range(6):
        host.charge_and_arm()
        host.ok(FIRE)
        host.wait(0.3)
    host.tick_until(T0 + 8.0)
    host.charge_and_arm()
    host.ok(FIRE)
    host.wait(0.3)
    for t, set_, delivered in device.flashes:
        expected = 0.4 if T0 + 3.0 <= t < T0 + 8.0 else 1.0
        assert abs(delivered / set_ - expected) < 0.08, (t, delivered)
    assert any(T0 + 3.0 <= t < T0 + 8.0 for t, _, _ in device.flashes)
    assert device.flashes[-1][0] >= T0 + 8.0
    assert host.status().fluence > 1800


# --------------------------------------------------------------------------- determinism


def script(seed: int) -> tuple[bytes, list[tuple[float, float, float]]]:
    clock = SimClock(T0)
    device = IPLFirmware(clock, seed=seed, faults=["garble@6s+1s:rate=0.3"])
    host = Host(clock, device)
    clock.sleep_until(T0 + 1.0)
    wire = b""
    host.ok(CLEAR)
    host.ok(SET_PARAMS, params(fluence=12.0, width_ms=3.0, count=3, delay_ms=20))
    for _ in range(3):
        host.charge_and_arm()
        host.ok(FIRE)
        host.wait(0.2)
    for i in range(40):
        clock.sleep(0.05)
        device.feed(frame(i, STATUS))
        wire += device.take()
    return wire, device.flashes


def test_same_seed_same_bytes_other_seed_other_light() -> None:
    first = script(3)
    assert script(3) == first
    other = script(4)
    assert other[0] != first[0]
    assert [d for _, _, d in other[1]] != [d for _, _, d in first[1]]


# --------------------------------------------------------------------------- options, URL


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"unknown option 'colour'.*filter, shots"):
        IPLFirmware(SimClock(), colour="blue")
    with pytest.raises(ValueError, match="filter"):
        IPLFirmware(SimClock(), filter="600")
    with pytest.raises(ValueError, match="shots"):
        IPLFirmware(SimClock(), shots="-1")
    with pytest.raises(ValueError, match="shots"):
        IPLFirmware(SimClock(), shots="1.5")
    with pytest.raises(ValueError, match="unknown kind 'runaway'"):
        IPLFirmware(SimClock(), faults=["runaway@1s"])


def test_closed_device_refuses_io() -> None:
    _, device, _ = booted()
    device.close()
    with pytest.raises(ValueError):
        device.feed(frame(1, HEARTBEAT))
    with pytest.raises(ValueError):
        device.take()
    with pytest.raises(ValueError):
        device.pending()


def test_served_through_a_sim_url() -> None:
    from devicectl.transport import open_port

    clock = SimClock()
    port = open_port("sim://ipl?seed=3&filter=640", clock=clock)
    try:
        clock.sleep(1.0)
        port.write(frame(4, IDENTIFY))
        assert port.read(64) == frame(4, IDENTITY, b"devicectl-sim,IPL-25,SIM3,1.0.0")
        port.write(frame(5, STATUS))
        status = Status(POWER_ON_RESET | FILTER_OK | CONTACT_OK, 0, 50, 250, 0, 0, 640, 100, 0)
        assert port.read(port.in_waiting) == status_frame(5, status)
        port.write(frame(6, SET_PARAMS, params(filter_nm=640)))
        assert port.read(64) == ack(6, SET_PARAMS)
    finally:
        port.close()


@pytest.mark.parametrize("query", ["colour=blue", "filter=600", "shots=x"])
def test_bad_sim_url_options_are_config_errors(query: str) -> None:
    from devicectl.errors import ConfigError
    from devicectl.transport import open_port

    with pytest.raises(ConfigError, match=query.split("=")[0]):
        open_port(f"sim://ipl?{query}", clock=SimClock())
